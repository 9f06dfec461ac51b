//! `run ID [create's flags] [--detach] [--keep]`: create and start; in the foreground, wait and
//! return the container's exit status as skiff's.

use clap::Args;

use super::create::CreateArgs;
use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container has started.
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
}

/// Returns the exit code skiff exits with.
pub fn run(root: &Root, args: &RunArgs, cgroups_may_be_missing: bool) -> Result<i32> {
    container::run(root, &args.create.opts(cgroups_may_be_missing), args.detach, args.keep)
}
