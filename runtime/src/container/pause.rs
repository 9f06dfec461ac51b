//! `pause` / `resume`: freeze and thaw every process of the container through its freezer
//! cgroup (v1 freezer.state, v2 cgroup.freeze), waiting until the kernel reports it done.

use crate::error::{Error, Result};
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?;
    match c.status() {
        Status::Running => st.cgroup().freeze(),
        Status::Paused => Ok(()),
        other => Err(Error::msg(format!("container not running: {}", other.as_str()))),
    }
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?;
    match c.status() {
        Status::Paused => st.cgroup().thaw(),
        other => Err(Error::msg(format!("container not paused: {}", other.as_str()))),
    }
}

/// The host pids of every process in the container's cgroup.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let c = root.load(id)?;
    let st = c.state()?;
    let mut pids = st.cgroup().pids();
    pids.sort_unstable();
    Ok(pids)
}
