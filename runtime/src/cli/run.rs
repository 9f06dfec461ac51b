//! `run ID [create's flags] [--detach] [--keep]`: create and start; in the foreground, wait and
//! return the container's exit status as skiff's.

use clap::Args;

use super::create::CreateArgs;
use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Create and start a container; in the foreground, wait and exit with its status",
    long_about = "Create and start a container.\n\n\
        In the foreground (the default) skiff waits for the container's init, forwards the signals it gets \
        to it, deletes the container when it exits, and exits with its status (128+N for signal N). With \
        process.terminal true and no --console-socket, the container gets the caller's terminal, as with \
        runc: raw mode (restored on exit), its window size, resizes followed.",
    after_help = "Examples:\n  skiff spec && skiff run demo          a shell, in a bundle of the current directory\n  \
        skiff run -d -b /srv/app app           detached (process.terminal must be false, or give --console-socket)\n  \
        skiff run --keep -b /srv/job job; skiff state job"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container has started, leaving it running (as create + start).
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container (stopped) after it exits in the foreground, instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

/// Returns the exit code skiff exits with.
pub fn run(root: &Root, args: &RunArgs, cgroups_may_be_missing: bool, systemd_cgroup: bool) -> Result<i32> {
    container::run(root, &args.create.opts(cgroups_may_be_missing, systemd_cgroup), args.detach, args.keep)
}
