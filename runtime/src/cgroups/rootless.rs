//! Cgroups for a rootless skiff, as runc's rootless cgroup manager has them. A hierarchy where this
//! user cannot make the container's directory and move a process into it is left out: the
//! container stays in skiff's own cgroup there, with a warning (an explicit `linux.cgroupsPath`
//! there is an error instead). A subtree delegated to the user (a cgroup v2 directory chowned to
//! it, as systemd's `Delegate=yes` gives a user's services) passes the same test and is used as
//! root uses it: limits, pause, stats. A limit that would go to a hierarchy left out is an error
//! naming it. Device rules are not applied at all, as in runc: a user namespace cannot mknod,
//! and the host's nodes it binds keep the host's permissions.

use std::path::{Path, PathBuf};

use nix::unistd::AccessFlags;
use oci_spec::runtime::LinuxResources;

use super::hierarchy::{own_path, Dirs, Hierarchy};
use super::resources::{plan_v1, plan_v2};
use crate::error::{Error, Result};

/// True when this process may make `leaf` (or use it, if it exists) and move a process from its
/// own cgroup (`proc_cgroup`: /proc/self/cgroup) into it. The kernel's rules: a new directory
/// needs write access to its parent; joining needs write access to the leaf's cgroup.procs, and
/// on v2 also to the cgroup.procs of the nearest cgroup above both the source and the leaf.
pub fn usable(h: &Hierarchy, leaf: &Path, proc_cgroup: &str) -> bool {
    let may = |p: &Path, mode| nix::unistd::faccessat(None, p, mode, nix::fcntl::AtFlags::AT_EACCESS).is_ok();
    let mut existing = leaf;
    while !existing.exists() {
        match existing.parent() {
            Some(p) => existing = p,
            None => return false,
        }
    }
    let reachable = if existing == leaf {
        may(&leaf.join("cgroup.procs"), AccessFlags::W_OK)
    } else {
        // The directories skiff makes are its own, with their cgroup.procs.
        may(existing, AccessFlags::W_OK | AccessFlags::X_OK)
    };
    if !reachable || h.version != 2 {
        return reachable;
    }
    let own = h.mount_point.join(own_path(h, proc_cgroup).trim_start_matches('/'));
    let common = common_ancestor(&own, leaf);
    // The common ancestor is the leaf itself only when skiff already is in it.
    common == leaf || may(&common.join("cgroup.procs"), AccessFlags::W_OK)
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components().zip(b.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

/// Fails with the first limit of `res` that would go to a hierarchy of `all` that `kept` lacks
/// (the routing of `resources::apply`: a controller a v1 hierarchy has goes there, the rest to the
/// unified one). Device rules do not count: rootless skiff does not apply them.
pub fn check_limits(res: &LinuxResources, all: &Dirs, kept: &Dirs) -> Result<()> {
    let left_out = |h: &Hierarchy| !kept.iter().any(|(k, _)| k == h);
    let refuse = |source: &str, h: &Hierarchy, dir: &Path| {
        Error::msg(format!(
            "{source}: cannot be applied: skiff runs rootless and may not write the cgroup {} \
             (its hierarchy {} is not delegated to this user)",
            dir.display(),
            h.mount_point.display()
        ))
    };
    for set in plan_v1(res, &[]) {
        if let Some((h, dir)) = all.iter().find(|(h, _)| h.version == 1 && h.has(set.controller)) {
            if left_out(h) {
                return Err(refuse(&set.source, h, dir));
            }
        }
    }
    let unified = all.iter().find(|(h, _)| h.version == 2);
    for set in plan_v2(res) {
        let v1_name = if set.controller == "io" { "blkio" } else { set.controller };
        if all.v1(v1_name).is_some() {
            continue;
        }
        if let Some((h, dir)) = unified.filter(|(h, _)| left_out(h)) {
            return Err(refuse(&set.source, h, dir));
        }
    }
    if let Some((h, dir)) = unified.filter(|(h, _)| left_out(h)) {
        if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(refuse("linux.resources.unified", h, dir));
        }
    }
    Ok(())
}

/// `res` without its device rules, which a rootless skiff does not apply.
pub fn without_devices(res: &LinuxResources) -> LinuxResources {
    let mut res = res.clone();
    res.set_devices(None);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::hierarchy::parse_mountinfo;

    const HYBRID: &str = "\
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
";

    #[test]
    fn the_common_ancestor_is_where_a_v2_move_is_checked() {
        let own = Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/shell");
        let leaf = Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/skiff/c1");
        assert_eq!(
            common_ancestor(own, leaf),
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service")
        );
        assert_eq!(common_ancestor(leaf, leaf), leaf);
    }

    #[test]
    fn limits_for_a_hierarchy_left_out_are_refused_by_name() {
        let hs = parse_mountinfo(HYBRID);
        let all = crate::cgroups::hierarchy::Dirs::recorded(
            &hs,
            &["/sys/fs/cgroup/unified/c1", "/sys/fs/cgroup/memory/c1", "/sys/fs/cgroup/pids/c1"].map(PathBuf::from),
        );
        // only the unified hierarchy is delegated
        let (kept, _) = all.split(|h, _| h.version == 2);
        let res = |v: serde_json::Value| -> LinuxResources { serde_json::from_value(v).unwrap() };
        let mem = res(serde_json::json!({"memory": {"limit": 1048576}}));
        let e = check_limits(&mem, &all, &kept).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.limit") && e.contains("/sys/fs/cgroup/memory/c1"), "{e}");
        // device rules alone need nothing
        let devices = res(serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]}));
        check_limits(&devices, &all, &kept).unwrap();
        assert!(without_devices(&devices).devices().is_none());
        // hugetlb has no v1 hierarchy here: it goes to the unified one, which is kept
        let huge = res(serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}));
        check_limits(&huge, &all, &kept).unwrap();
        let (none, _) = all.split(|_, _| false);
        let e = check_limits(&huge, &all, &none).unwrap_err().to_string();
        assert!(e.contains("hugepageLimits") && e.contains("unified"), "{e}");
    }
}
