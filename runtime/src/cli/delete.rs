//! `delete ID [--force]`: remove a stopped container's resources; --force kills a running one first.

use clap::Args;

use crate::container;
use crate::error::Result;
use crate::state::Root;

#[derive(Args, Debug)]
#[command(
    about = "Delete a container's resources; --force kills a running one first",
    long_about = "Delete a stopped (or created) container: its cgroups, its state under --root, and the \
        poststop hooks run. A running container is refused unless --force.",
    after_help = "Examples:\n  skiff delete app\n  skiff delete --force app     kill it first if it runs"
)]
pub struct DeleteArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
    /// Kill the container first (SIGKILL) if it still runs, and delete whatever is left of it.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(root: &Root, args: &DeleteArgs) -> Result<()> {
    container::delete(root, &args.id, args.force)
}
