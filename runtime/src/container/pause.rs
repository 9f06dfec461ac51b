//! `pause` / `resume`: freeze and thaw every process of the container through its freezer
//! cgroup (v1 freezer.state, v2 cgroup.freeze), waiting until the kernel reports it done; and
//! the container's processes, for `ps` and `kill --all`.

use crate::error::{Error, Result};
use crate::state::{Root, Status};

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?;
    if st.cgroup_paths.is_empty() {
        return Err(no_cgroups("pause"));
    }
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

/// The host pids of every process in the container's cgroup. A container without cgroups (run
/// rootless where the user may not write them) has those of its pid namespace instead.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let c = root.load(id)?;
    let st = c.state()?;
    let mut pids = if st.cgroup_paths.is_empty() { pidns_members(st)? } else { st.cgroup().pids() };
    pids.sort_unstable();
    Ok(pids)
}

fn no_cgroups(op: &str) -> Error {
    Error::msg(format!(
        "{op}: the container has no cgroups (skiff ran rootless, and this user may write no cgroup hierarchy)"
    ))
}

/// The processes in the pid namespace the container made (every one of them is the container's),
/// from /proc. Without a pid namespace of its own nothing tells its processes apart.
pub(super) fn pidns_members(st: &crate::state::State) -> Result<Vec<i32>> {
    let own_pidns = st.config.linux().as_ref().and_then(|l| l.namespaces().as_ref()).is_some_and(|ns| {
        ns.iter().any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none())
    });
    if !own_pidns {
        return Err(no_cgroups("list processes"));
    }
    if st.pid <= 0 || !crate::state::process_alive(st.pid, st.start_time) {
        return Ok(Vec::new());
    }
    let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", st.pid)) else { return Ok(Vec::new()) };
    let entries = std::fs::read_dir("/proc").map_err(|e| Error::io("read /proc", e))?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
        .collect())
}
