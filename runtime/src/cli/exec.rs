//! `exec ID [flags] [-p process.json | COMMAND...]`: run another process in a running container.

use std::path::PathBuf;

use clap::Args;

use crate::container::{self, ExecOpts};
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The process as OCI JSON (process.json); otherwise the command after the id.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label for the process (applied where SELinux is enabled, ignored otherwise).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (applied where AppArmor is enabled, ignored otherwise).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Exec into a paused container too (the process starts frozen, as in runc).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Returns the exit code skiff exits with (the process's status in the foreground).
pub fn run(root: &Root, a: &ExecArgs) -> Result<i32> {
    let opts = ExecOpts {
        id: a.id.clone(),
        process_file: a.process.clone(),
        args: a.command.clone(),
        tty: a.tty,
        console_socket: a.console_socket.clone(),
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        process_label: a.process_label.clone(),
        apparmor: a.apparmor.clone(),
        ignore_paused: a.ignore_paused,
    };
    container::exec(root, &opts)
}
