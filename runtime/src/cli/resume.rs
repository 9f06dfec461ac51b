//! `resume ID`: thaw a paused container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct ResumeArgs {
    pub id: String,
}

pub fn run(root: &Root, args: &ResumeArgs) -> Result<()> {
    container::resume(root, &args.id)
}
