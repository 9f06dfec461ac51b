//! `state ID`: the OCI state JSON, with runc's extra fields.

use clap::Args;

use crate::error::Result;
use crate::state::{Container, Root};

/// The JSON runc prints for one container (`state`, and each element of `list --format json`).
pub fn json(c: &Container) -> Result<serde_json::Value> {
    let st = c.state()?;
    let status = c.status();
    let mut v = serde_json::json!({
        "ociVersion": st.oci_version,
        "id": st.id,
        "pid": if status == crate::state::Status::Stopped { 0 } else { st.pid },
        "status": status.as_str(),
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
        "owner": st.owner,
    });
    if !st.annotations.is_empty() {
        v["annotations"] = serde_json::to_value(&st.annotations).unwrap_or_default();
    }
    Ok(v)
}

#[derive(Args, Debug)]
#[command(
    about = "Print a container's state as JSON",
    long_about = "Print a container's state as the runtime spec's JSON (ociVersion, id, status, pid, bundle, \
        annotations), with runc's extra fields (rootfs, created, owner). status is one of creating, created, \
        running, paused, stopped, read live from the process table.",
    after_help = "Examples:\n  skiff state app | jq -r .status"
)]
pub struct StateArgs {
    /// The ID of the container (see `skiff list`).
    #[arg(value_name = "CONTAINER_ID")]
    pub id: String,
}

pub fn run(root: &Root, args: &StateArgs) -> Result<()> {
    let c = root.load(&args.id)?;
    let v = json(&c)?;
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(())
}
