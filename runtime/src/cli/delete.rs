//! `delete ID [--force]`: remove a stopped container's resources; --force kills a running one first.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(root: &Root, args: &DeleteArgs) -> Result<()> {
    container::delete(root, &args.id, args.force)
}
