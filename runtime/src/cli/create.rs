//! `create ID [--bundle DIR] [--pid-file F] [--console-socket S] ...`: set the container up and
//! leave its init blocked before it runs the program.

use std::path::PathBuf;

use clap::Args;

use crate::container::{self, CreateOpts};
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug, Clone)]
#[command(
    about = "Create a container and leave it blocked before it runs its program",
    long_about = "Create a container from a bundle and leave it blocked before it runs its program.\n\n\
        Namespaces, cgroups, mounts, devices, the root filesystem, user, capabilities and rlimits are all set \
        up when create returns; `start` then runs process.args. The container's stdio is skiff's own, \
        unless process.terminal is true: then the pty goes to --console-socket.",
    after_help = "Examples:\n  skiff create --bundle /srv/app app && skiff start app\n  \
        skiff create --console-socket /run/console.sock --pid-file app.pid app"
)]
pub struct CreateArgs {
    /// The container's ID: a name unique under --root (letters, digits, `_`, `-`, `.`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// The bundle: the directory holding config.json and (usually) the root filesystem.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the pid of the container's init (as the host sees it) to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A Unix socket that receives the master of the container's pty (SCM_RIGHTS) when
    /// process.terminal is true; required then, refused otherwise.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// Enter the root filesystem with MS_MOVE and chroot instead of pivot_root (for a rootfs on a
    /// ramdisk, where pivot_root is not possible).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring instead of giving the container a new one.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more file descriptors to the container, from fd 3 on (after stdio and systemd's
    /// $LISTEN_FDS).
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
}

impl CreateArgs {
    /// The options `create` and `run` share (`cgroups_may_be_missing`: the global `--rootless`,
    /// decided; `systemd_cgroup`: the global `--systemd-cgroup`).
    pub fn opts(&self, cgroups_may_be_missing: bool, systemd_cgroup: bool) -> CreateOpts {
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
            systemd_cgroup,
        }
    }
}

pub fn run(root: &Root, args: &CreateArgs, cgroups_may_be_missing: bool, systemd_cgroup: bool) -> Result<()> {
    container::create(root, &args.opts(cgroups_may_be_missing, systemd_cgroup))?;
    Ok(())
}
