//! The cgroupfs driver: makes the planned directories (runc's cpuset and v2 controller
//! inheritance), moves processes into them, freezes and thaws, lists their processes and removes
//! them, under a host-wide lock against concurrent skiffs. Plain file operations: the systemd
//! driver will need them too for what systemd does not do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Dirs;
use crate::error::{Error, Result, SysContext};

/// The host-wide cgroup lock: a flock on the first hierarchy's mount point (a directory every
/// skiff on the host sees, so no lock file is needed). `create` holds it from planning its
/// directories until its setup process has joined them, and `delete` around its rmdirs. So a
/// `delete` never removes a directory that a concurrent `create` planned to use but has not
/// joined yet (a shared parent, or a `cgroupsPath` shared by several containers), and a
/// directory it keeps because a process is in it is removed by the last container out.
///
/// Forked children must close `raw_fd` (the flock belongs to the open file description);
/// dropping the lock releases it for them too.
pub struct Lock(Option<std::fs::File>);

impl Lock {
    /// Takes the lock; none on a host without cgroups (nothing to protect) or where flock
    /// does not work on cgroupfs.
    pub fn take() -> Lock {
        let Some(h) = super::hierarchy::hierarchies().into_iter().next() else { return Lock(None) };
        let Ok(dir) = std::fs::File::open(&h.mount_point) else { return Lock(None) };
        match crate::sys::flock_exclusive(std::os::fd::AsFd::as_fd(&dir)) {
            Ok(()) => Lock(Some(dir)),
            Err(_) => Lock(None),
        }
    }

    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        self.0.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            crate::sys::flock_unlock(std::os::fd::AsFd::as_fd(f));
        }
    }
}

/// The directories among `leaves` and their ancestors that do not exist yet, parents first.
pub fn missing_dirs(leaves: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for leaf in leaves {
        let mut chain = Vec::new();
        let mut cur = leaf.as_path();
        while !cur.exists() {
            chain.push(cur.to_path_buf());
            match cur.parent() {
                Some(p) => cur = p,
                None => break,
            }
        }
        out.extend(chain.into_iter().rev());
    }
    out
}

/// Makes the planned directories (parents first).
///
/// A parent that existed when the plan was made may be gone by now: the last container of
/// another skiff in it removed it (see [`remove`]). Then it is made again (and left in place,
/// as runc leaves parents) and the mkdir retried.
pub fn create(dirs: &[PathBuf]) -> Result<()> {
    for d in dirs {
        let mut made = std::fs::create_dir(d);
        for _ in 0..10 {
            match &made {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                _ => break,
            }
            if let Some(parent) = d.parent() {
                recreate_parent(parent)?;
            }
            made = std::fs::create_dir(d);
        }
        made_ready(d, made)?;
    }
    Ok(())
}

/// After the mkdir of a cgroup (`made`; one that existed already is fine): its cpuset and its
/// v2 controllers.
fn made_ready(dir: &Path, made: std::io::Result<()>) -> Result<()> {
    match made {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(format!("create cgroup {}", dir.display()), e)),
    }
    inherit_cpuset(dir)?;
    enable_v2_controllers(dir);
    Ok(())
}

/// On v2 a cgroup only has the files of the controllers its parent enables for its children.
/// Like runc, enable every controller the parent has, so limits can be set and stats read.
/// One that cannot be enabled (a parent with processes of its own) is left out, not an error:
/// setting a limit of that controller will say so.
fn enable_v2_controllers(dir: &Path) {
    let Some(parent) = dir.parent() else { return };
    let control = parent.join("cgroup.subtree_control");
    let Ok(available) = std::fs::read_to_string(parent.join("cgroup.controllers")) else { return };
    let enabled = std::fs::read_to_string(&control).unwrap_or_default();
    for c in available.split_whitespace().filter(|c| !enabled.split_whitespace().any(|e| e == *c)) {
        let _ = std::fs::write(&control, format!("+{c}"));
    }
}

/// mkdir -p for a parent cgroup removed under us, each new level given its cpuset.
fn recreate_parent(dir: &Path) -> Result<()> {
    if dir.exists() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        recreate_parent(parent)?;
    }
    made_ready(dir, std::fs::create_dir(dir))
}

/// A new v1 cpuset cgroup starts with empty cpus and mems, and nothing can join it until they
/// are set; like runc, copy them from the parent. The parent may be just as new (another skiff
/// made it a moment ago and has not filled it yet): like runc's cpusetEnsureParent, fill it
/// from its own parent first.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    // v2's cpuset.cpus starts empty too, but empty there means "the parent's".
    if dir.join("cgroup.controllers").exists() {
        return Ok(());
    }
    let Some(parent) = dir.parent() else { return Ok(()) };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(current) = std::fs::read_to_string(&own) else { continue };
        if !current.trim().is_empty() {
            continue;
        }
        let read =
            || std::fs::read_to_string(parent.join(file)).ctx(|| format!("read {}", parent.join(file).display()));
        let mut value = read()?;
        if value.trim().is_empty() {
            inherit_cpuset(parent)?;
            value = read()?;
        }
        std::fs::write(&own, value.trim()).ctx(|| format!("write {}", own.display()))?;
    }
    Ok(())
}

/// Moves `pid` into every leaf.
pub fn join(leaves: &[PathBuf], pid: i32) -> Result<()> {
    for leaf in leaves {
        let procs = leaf.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).ctx(|| format!("join cgroup {}", procs.display()))?;
    }
    Ok(())
}

/// Moves the calling process, single-threaded, into every leaf of `dirs` but the v2 one when
/// `in_v2` (a fork with CLONE_INTO_CGROUP already started it there). v1 through `tasks` with
/// "0": moving the caller's only thread skips the global threadgroup lock, whose every write
/// waits for an RCU grace period (a write of a pid to cgroup.procs takes it: the parent's ten
/// writes here took 9-11 ms at load 13-17, the setup process's own 0.4). Where `tasks` is not
/// writable (a rootless delegation of cgroup.procs alone), cgroup.procs.
pub fn join_self(dirs: &Dirs, in_v2: bool) -> Result<()> {
    for (h, leaf) in dirs.iter() {
        if h.version == 2 {
            if !in_v2 {
                let procs = leaf.join("cgroup.procs");
                std::fs::write(&procs, "0").ctx(|| format!("join cgroup {}", procs.display()))?;
            }
            continue;
        }
        let tasks = leaf.join("tasks");
        match std::fs::write(&tasks, "0") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let procs = leaf.join("cgroup.procs");
                std::fs::write(&procs, "0").ctx(|| format!("join cgroup {}", procs.display()))?;
            }
            Err(e) => return Err(Error::io(format!("join cgroup {}", tasks.display()), e)),
        }
    }
    Ok(())
}

/// The pids in the container's cgroup (from the first leaf that lists any).
pub fn pids(leaves: &[PathBuf]) -> Vec<i32> {
    for leaf in leaves {
        if let Ok(text) = std::fs::read_to_string(leaf.join("cgroup.procs")) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !pids.is_empty() {
                return pids;
            }
        }
    }
    Vec::new()
}

/// The container's freezer file: the v1 freezer's where there is one, as runc on a hybrid host
/// (whatever the order of the mounts: a hybrid host's cgroup2 tree at /sys/fs/cgroup/unified has
/// cgroup.freeze too, and systemd mounts it first), else cgroup v2's.
fn freezer(leaves: &[PathBuf]) -> Option<(PathBuf, bool)> {
    let v1 = leaves.iter().map(|l| l.join("freezer.state")).find(|f| f.exists());
    v1.map(|f| (f, true))
        .or_else(|| leaves.iter().map(|l| l.join("cgroup.freeze")).find(|f| f.exists()).map(|f| (f, false)))
}

pub fn is_frozen(leaves: &[PathBuf]) -> bool {
    match freezer(leaves) {
        Some((file, true)) => std::fs::read_to_string(file).map(|s| s.trim() == "FROZEN").unwrap_or(false),
        Some((file, false)) => std::fs::read_to_string(file).map(|s| s.trim() == "1").unwrap_or(false),
        None => false,
    }
}

/// Freezes (true) or thaws (false) the container and waits until the kernel says it is done.
pub fn set_frozen(leaves: &[PathBuf], frozen: bool) -> Result<()> {
    let Some((file, v1)) = freezer(leaves) else {
        return Err(Error::msg("no freezer cgroup for this container"));
    };
    let value = match (v1, frozen) {
        (true, true) => "FROZEN",
        (true, false) => "THAWED",
        (false, true) => "1",
        (false, false) => "0",
    };
    // v1 reports FREEZING until every task stopped; v2 says "frozen 1" in cgroup.events.
    let (done_file, done_text) = if v1 {
        (file.clone(), value.to_string())
    } else {
        (file.with_file_name("cgroup.events"), format!("frozen {value}"))
    };
    for _ in 0..1000 {
        std::fs::write(&file, value).ctx(|| format!("write {} to {}", value, file.display()))?;
        let now = std::fs::read_to_string(&done_file).ctx(|| format!("read {}", done_file.display()))?;
        if now.lines().any(|l| l.trim() == done_text) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::msg(format!("{}: did not reach {value}", file.display())))
}

/// Removes the container's cgroups: each leaf (and any sub-cgroups the container made in it)
/// that no process is in any more, then the parents skiff made for this container, deepest
/// first, where empty. A leaf that still has processes (a `cgroupsPath` shared with a container
/// that still runs) stays for the last container out to remove; like runc, a leaf is removed
/// whether or not skiff made it. EBUSY while processes die is retried for a while. Each rmdir
/// runs under the host-wide [`Lock`]. `seen_empty`: the caller has just read every leaf's
/// cgroup.procs empty ([`pids`] returned none), so they are not read again.
pub fn remove(leaves: &[PathBuf], created: &[PathBuf], seen_empty: bool) -> Result<()> {
    let mut first_err = None;
    let busy = || leaves.iter().find(|l| !pids(std::slice::from_ref(l)).is_empty());
    if let Some(busy) = (!seen_empty).then(busy).flatten() {
        // Someone else's processes: the whole container cgroup stays (every hierarchy alike).
        return Err(Error::msg(format!("cgroup {} still has processes: left for them", busy.display())));
    }
    // One lock for every rmdir, let go only to wait for a busy directory.
    let mut lock = None;
    for leaf in leaves {
        if let Err(e) = remove_tree(leaf, &mut lock) {
            first_err.get_or_insert(e);
        }
    }
    for dir in created.iter().rev() {
        if leaves.contains(dir) {
            continue;
        }
        // A parent shared with another container stays: ENOTEMPTY/EBUSY is fine here.
        lock.get_or_insert_with(Lock::take);
        let _ = std::fs::remove_dir(dir);
    }
    first_err.map_or(Ok(()), Err)
}

/// Removes `dir` and the directories under it, under `lock` (taken if None; let go while it
/// waits for a busy directory). rmdir first: the kernel refuses (EBUSY) a cgroup with a process
/// or a child cgroup in it, so only then are its children removed and its processes looked at.
/// One syscall per directory where nothing is in the way, instead of four (stat, list, read
/// cgroup.procs, rmdir), each waiting on locks other tenants' cgroup writes hold.
fn remove_tree(dir: &Path, lock: &mut Option<Lock>) -> Result<()> {
    let mut delay = Duration::from_millis(1);
    // About 1 s in all: long enough for exiting processes to leave the cgroup.
    for _ in 0..16 {
        lock.get_or_insert_with(Lock::take);
        let busy = match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        if !matches!(busy.raw_os_error(), Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) {
            return Err(Error::io(format!("remove cgroup {}", dir.display()), busy));
        }
        let children: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect()
            })
            .unwrap_or_default();
        if !children.is_empty() {
            for child in &children {
                remove_tree(child, lock)?;
            }
            continue;
        }
        if !pids(&[dir.to_path_buf()]).is_empty() {
            // A process joined since the check in `remove` (a create sharing the path).
            return Ok(());
        }
        *lock = None;
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
    Err(Error::msg(format!("remove cgroup {}: still busy", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A scratch directory of plain files standing in for a cgroup tree.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("skiff-cg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_half_made_parent_cpuset_is_filled_before_the_child() {
        // runc's cpusetEnsureParent: another create made `p` and has not copied cpus/mems into
        // it yet; copying its empty values would leave the leaf unjoinable (ENOSPC)
        let root = scratch("cpuset");
        let (p, leaf) = (root.join("p"), root.join("p/leaf"));
        std::fs::create_dir_all(&leaf).unwrap();
        for (dir, cpus, mems) in [(&root, "0-1\n", "0\n"), (&p, "\n", "\n"), (&leaf, "", "")] {
            std::fs::write(dir.join("cpuset.cpus"), cpus).unwrap();
            std::fs::write(dir.join("cpuset.mems"), mems).unwrap();
        }
        inherit_cpuset(&leaf).unwrap();
        for dir in [&p, &leaf] {
            assert_eq!(std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap(), "0-1");
            assert_eq!(std::fs::read_to_string(dir.join("cpuset.mems")).unwrap(), "0");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_parent_removed_after_planning_is_made_again() {
        // the plan saw `p` and only makes the leaf; the last container in `p` removed it since
        let root = scratch("gone");
        let leaf = root.join("p/q/leaf");
        create(std::slice::from_ref(&leaf)).unwrap();
        assert!(leaf.is_dir());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
