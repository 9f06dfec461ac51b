//! `pause ID`: freeze every process of a running container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct PauseArgs {
    pub id: String,
}

pub fn run(root: &Root, args: &PauseArgs) -> Result<()> {
    container::pause(root, &args.id)
}
