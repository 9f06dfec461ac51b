//! `pause ID`: freeze every process of a running container.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Freeze every process of a running container",
    long_about = "Freeze every process of a running container (the v1 freezer, or cgroup.freeze on v2) \
        until `skiff resume`.",
    after_help = "Examples:\n  skiff pause app; skiff state app | jq .status; skiff resume app"
)]
pub struct PauseArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

pub fn run(root: &Root, args: &PauseArgs) -> Result<()> {
    container::pause(root, &args.id)
}
