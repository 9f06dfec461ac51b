//! `resume ID`: thaw a paused container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(about = "Thaw a paused container", after_help = "Examples:\n  skiff resume app")]
pub struct ResumeArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

pub fn run(root: &Root, args: &ResumeArgs) -> Result<()> {
    container::resume(root, &args.id)
}
