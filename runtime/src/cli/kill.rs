//! `kill ID [SIGNAL] [--all]`: a signal by name or number (default SIGTERM) to the init, or to
//! every process of the container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(root: &Root, args: &KillArgs) -> Result<()> {
    let sig = container::parse_signal(&args.signal)?;
    container::kill(root, &args.id, sig, args.all)
}
