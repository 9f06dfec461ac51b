//! `linux.intelRdt`: the container's processes in a resctrl group (Intel RDT / AMD PQoS cache and
//! memory-bandwidth allocation), as runc's intelrdt manager does it: the group is
//! `<resctrl>/<closID>` (shared, made if missing) or `<resctrl>/<container id>`, the schemata
//! lines are written to its `schemata` file, pids to its `tasks` file, and `enableMonitoring`
//! (or the older enableCMT/enableMBM) adds a monitoring group `mon_groups/<container id>`.
//! Where no resctrl filesystem is mounted the field is refused before anything is made.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIntelRdt, Spec};

use crate::error::{Error, Result};

/// What to make and write, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The resctrl group directory.
    pub group: PathBuf,
    /// True when the group is the container's own (no closID): `delete` removes it.
    pub own_group: bool,
    /// Lines for the group's `schemata` file, in order.
    pub schemata: Vec<String>,
    /// The monitoring group, when monitoring is asked for.
    pub monitor: Option<PathBuf>,
}

/// Where the resctrl filesystem is mounted, from /proc/self/mountinfo.
fn mount_point() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if post.split_whitespace().next()? != "resctrl" {
            return None;
        }
        pre.split_whitespace().nth(4).map(PathBuf::from)
    })
}

fn rdt(spec: &Spec) -> Option<&LinuxIntelRdt> {
    spec.linux().as_ref()?.intel_rdt().as_ref()
}

/// The plan for `spec`, or None without `linux.intelRdt`. Fails, naming the field, where the
/// host has no resctrl filesystem or the closID could leave it.
pub fn plan(spec: &Spec, id: &str) -> Result<Option<Plan>> {
    let Some(r) = rdt(spec) else { return Ok(None) };
    let root = mount_point().ok_or_else(|| {
        Error::config(
            "linux.intelRdt",
            "this host has no resctrl filesystem mounted (no Intel RDT or AMD PQoS, or resctrl is not mounted)",
        )
    })?;
    plan_at(&root, r, id).map(Some)
}

#[allow(deprecated)] // enableCMT/enableMBM: runtime-spec 1.3 folds them into enableMonitoring
fn plan_at(root: &Path, r: &LinuxIntelRdt, id: &str) -> Result<Plan> {
    let (group, own_group) = match r.clos_id().as_deref().filter(|c| !c.is_empty()) {
        Some(c) => {
            if c.contains('/') || c == "." || c == ".." {
                return Err(Error::config("linux.intelRdt.closID", format!("{c:?} is not a resctrl group name")));
            }
            (root.join(c), false)
        }
        None => (root.join(id), true),
    };
    let mut schemata = Vec::new();
    if let Some(lines) = r.schemata() {
        schemata.extend(lines.iter().filter(|l| !l.trim().is_empty()).cloned());
    }
    for (name, v) in [("l3CacheSchema", r.l3_cache_schema()), ("memBwSchema", r.mem_bw_schema())] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            if v.contains('\n') && name == "memBwSchema" {
                return Err(Error::config(format!("linux.intelRdt.{name}"), "must be one line"));
            }
            schemata.push(v.to_string());
        }
    }
    let monitoring =
        r.enable_monitoring().unwrap_or(false) || r.enable_cmt().unwrap_or(false) || r.enable_mbm().unwrap_or(false);
    let monitor = monitoring.then(|| group.join("mon_groups").join(id));
    Ok(Plan { group, own_group, schemata, monitor })
}

/// Makes the group (and monitoring group) and writes the schemata. Before any pid joins.
pub fn apply(p: &Plan) -> Result<()> {
    let err = |what: String, e: std::io::Error| Error::msg(format!("linux.intelRdt: {what}: {e}"));
    match std::fs::create_dir(&p.group) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && !p.own_group => {}
        Err(e) => return Err(err(format!("mkdir {}", p.group.display()), e)),
    }
    if !p.schemata.is_empty() {
        let file = p.group.join("schemata");
        let text = p.schemata.join("\n") + "\n";
        std::fs::write(&file, &text).map_err(|e| {
            // The kernel says why in info/last_cmd_status.
            let why = p
                .group
                .parent()
                .and_then(|r| std::fs::read_to_string(r.join("info/last_cmd_status")).ok())
                .map(|s| format!(" ({})", s.trim()))
                .unwrap_or_default();
            Error::msg(format!("linux.intelRdt.schemata: write {text:?} to {}: {e}{why}", file.display()))
        })?;
    }
    if let Some(m) = &p.monitor {
        std::fs::create_dir(m).map_err(|e| err(format!("mkdir {}", m.display()), e))?;
    }
    Ok(())
}

/// Puts `pid` in the group (and its monitoring group).
pub fn join(p: &Plan, pid: i32) -> Result<()> {
    let dir = p.monitor.as_ref().unwrap_or(&p.group);
    let tasks = dir.join("tasks");
    std::fs::write(&tasks, pid.to_string())
        .map_err(|e| Error::msg(format!("linux.intelRdt: write {pid} to {}: {e}", tasks.display())))
}

/// Removes what `apply` made for this container: its monitoring group and its own group
/// (a shared closID group stays). Missing directories are fine.
pub fn remove(p: &Plan) -> Result<()> {
    let mut dirs: Vec<&PathBuf> = p.monitor.iter().collect();
    if p.own_group {
        dirs.push(&p.group);
    }
    for d in dirs {
        match std::fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::msg(format!("linux.intelRdt: remove {}: {e}", d.display()))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(v: serde_json::Value) -> LinuxIntelRdt {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn intel_rdt_groups_and_schemata_as_runc_plans_them() {
        let root = Path::new("/sys/fs/resctrl");
        let p = plan_at(root, &rdt(serde_json::json!({"l3CacheSchema": "L3:0=ff", "memBwSchema": "MB:0=50"})), "c1")
            .unwrap();
        assert_eq!(
            p,
            Plan {
                group: root.join("c1"),
                own_group: true,
                schemata: vec!["L3:0=ff".into(), "MB:0=50".into()],
                monitor: None
            }
        );
        let p = plan_at(
            root,
            &rdt(serde_json::json!({"closID": "gold", "schemata": ["L3:0=f", "MB:0=20"], "enableMonitoring": true})),
            "c2",
        )
        .unwrap();
        assert_eq!(p.group, root.join("gold"));
        assert!(!p.own_group, "a closID group is shared: delete leaves it");
        assert_eq!(p.schemata, ["L3:0=f", "MB:0=20"]);
        assert_eq!(p.monitor, Some(root.join("gold/mon_groups/c2")));
        let err = plan_at(root, &rdt(serde_json::json!({"closID": "../x"})), "c3").unwrap_err().to_string();
        assert!(err.contains("linux.intelRdt.closID"), "{err}");
    }
}
