//! `kill ID [SIGNAL] [--all]`: a signal by name or number (default SIGTERM) to the init, or to
//! every process of the container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
    long_about = "Send a signal to a container's init process, or with --all to every process of its cgroup.",
    after_help = "Examples:\n  skiff kill app               SIGTERM\n  skiff kill app KILL\n  \
        skiff kill --all app 9       every process of the container"
)]
pub struct KillArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// The signal: a name with or without SIG (TERM, SIGKILL), or a number (9); real-time
    /// signals as RTMIN+N.
    #[arg(value_name = "SIGNAL", default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container's cgroup, not only its init.
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(root: &Root, args: &KillArgs) -> Result<()> {
    let sig = container::parse_signal(&args.signal)?;
    container::kill(root, &args.id, sig, args.all)
}
