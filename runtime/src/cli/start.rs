//! `start ID`: let a created container run its program.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct StartArgs {
    pub id: String,
}

pub fn run(root: &Root, args: &StartArgs) -> Result<()> {
    container::start(root, &args.id)
}
