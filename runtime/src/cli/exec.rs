//! `exec ID [flags] [-p process.json | COMMAND...]`: run another process in a running container.

use std::path::PathBuf;

use clap::Args;

use crate::container::{self, ExecOpts};
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Run another process in a running container",
    long_about = "Run another process in a running container: in all its namespaces and cgroups, with the \
        container's process settings (user, capabilities, environment, rlimits, seccomp) changed by the flags, \
        or as a whole OCI process from --process. In the foreground skiff waits, forwards signals and exits \
        with the process's status; with -t and no --console-socket it gives the process the caller's \
        terminal.",
    after_help = "Examples:\n  skiff exec app ls -l /\n  skiff exec -t app sh                 an interactive shell\n  \
        skiff exec -e DEBUG=1 --cwd /srv -u 1000:1000 app ./task\n  skiff exec --process process.json app"
)]
pub struct ExecArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// The whole process as OCI JSON (the `process` object of config.json), instead of a command.
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Give the process a pty (with --console-socket, or the caller's terminal in the foreground).
    #[arg(short, long)]
    pub tty: bool,
    /// A Unix socket that receives the master of the process's pty (with -t).
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub console_socket: Option<PathBuf>,
    /// The working directory in the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (repeatable); it replaces one of the same name.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user: a uid, optionally with a gid.
    #[arg(short, long, value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Supplementary group ids, comma-separated.
    #[arg(short = 'g', long = "additional-gids", value_name = "GID,...", value_delimiter = ',')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NET_ADMIN...) to the bounding, effective and permitted sets
    /// (repeatable).
    #[arg(short, long = "cap", value_name = "CAP")]
    pub cap: Vec<String>,
    /// Set no_new_privs: the process and its children cannot gain privileges (setuid files).
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Return once the process has started, without waiting for it.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid (as the host sees it) to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Pass N more file descriptors to the process, from fd 3 on.
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    pub preserve_fds: u32,
    /// SELinux label for the process (applied where SELinux is enabled, ignored otherwise).
    #[arg(long = "process-label", value_name = "LABEL")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (applied where AppArmor is enabled, ignored otherwise).
    #[arg(long, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Exec into a paused container too (the process starts frozen, as in runc).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// The command and its arguments (without --process).
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
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
