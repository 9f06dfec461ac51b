//! `start ID`: let a created container run its program.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Let a created container run its program",
    long_about = "Let a created container run its program (process.args). Returns at once; the container \
        runs on its own.",
    after_help = "Examples:\n  skiff create app && skiff start app"
)]
pub struct StartArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

pub fn run(root: &Root, args: &StartArgs) -> Result<()> {
    container::start(root, &args.id)
}
