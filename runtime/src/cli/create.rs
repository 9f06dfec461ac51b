//! `create ID [--bundle DIR] [--pid-file F] [--console-socket S] ...`: set the container up and
//! leave its init blocked before it runs the program.

use std::path::PathBuf;

use clap::Args;

use crate::container::{self, CreateOpts};
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to this file.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container its own session keyring.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many fds beyond stdio (3, 4, ...) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateArgs {
    /// The options `create` and `run` share (`cgroups_may_be_missing`: the global `--rootless`,
    /// decided).
    pub fn opts(&self, cgroups_may_be_missing: bool) -> CreateOpts {
        // systemd socket activation passes LISTEN_FDS fds, which runc keeps too.
        let listen = std::env::var("LISTEN_FDS").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        CreateOpts {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds + listen,
            cgroups_may_be_missing,
        }
    }
}

pub fn run(root: &Root, args: &CreateArgs, cgroups_may_be_missing: bool) -> Result<()> {
    container::create(root, &args.opts(cgroups_may_be_missing))?;
    Ok(())
}
