//! The cgroup hierarchies of this host (from /proc/self/mountinfo) and where a container's
//! directory is in each: planned from `linux.cgroupsPath` as runc reads it, or paired again with
//! the hierarchies from the paths a container recorded. Paths only: nothing here makes,
//! writes or removes a cgroup.

use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// 1 for a v1 hierarchy, 2 for the unified one.
    pub version: u8,
    /// The v1 controllers (or `name=...`) of this hierarchy; empty for v2.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The cgroup hierarchies mounted in this mount namespace, from /proc/self/mountinfo, read once
/// per process: a command asks several times (the lock, the plan, each removal), and reading
/// mountinfo costs a millisecond on a host with many mounts. Only the host's skiff process asks
/// (a container's init never does), and the hierarchies a host mounts do not change under a
/// running command.
pub fn hierarchies() -> Vec<Hierarchy> {
    static CACHE: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(|| {
            let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            parse_mountinfo(&text)
        })
        .clone()
}

pub fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        // Fields: id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape(left[4]));
        let h = match right[0] {
            "cgroup2" => Hierarchy { mount_point, version: 2, controllers: Vec::new() },
            "cgroup" => {
                let known = ["rw", "ro", "nosuid", "nodev", "noexec", "relatime", "noatime", "xattr", "clone_children"];
                let controllers = right[2]
                    .split(',')
                    .filter(|o| !known.contains(o) && !o.starts_with("release_agent="))
                    .map(str::to_string)
                    .collect();
                Hierarchy { mount_point, version: 1, controllers }
            }
            _ => continue,
        };
        // The same hierarchy may be mounted twice (e.g. bind mounts); keep the first.
        if !out.iter().any(|o| o.version == h.version && o.controllers == h.controllers) {
            out.push(h);
        }
    }
    out
}

/// mountinfo escapes spaces and friends as \040 etc.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's own cgroup in a hierarchy, from /proc/self/cgroup.
pub(super) fn own_path(h: &Hierarchy, proc_cgroup: &str) -> String {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let matches = if h.version == 2 {
            ctrls.is_empty()
        } else {
            let mut a: Vec<&str> = ctrls.split(',').collect();
            let mut b: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        if matches {
            return path.to_string();
        }
    }
    "/".to_string()
}

/// The container's directory in every hierarchy. runc's rule: an absolute `cgroupsPath` is taken
/// from each hierarchy's root; a relative one (an empty one means the container id) is taken from
/// the runtime's own cgroup.
pub fn plan(cgroups_path: Option<&str>, id: &str) -> Dirs {
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let hs = hierarchies();
    let paths = plan_with(&hs, &proc_cgroup, cgroups_path, id);
    Dirs(hs.into_iter().zip(paths).collect())
}

/// [`plan`]'s paths, one per hierarchy of `hs`, in their order.
pub fn plan_with(hs: &[Hierarchy], proc_cgroup: &str, cgroups_path: Option<&str>, id: &str) -> Vec<PathBuf> {
    let wanted = cgroups_path.filter(|p| !p.is_empty()).unwrap_or(id);
    let clean: PathBuf =
        Path::new(wanted).components().filter(|c| matches!(c, std::path::Component::Normal(_))).collect();
    hs.iter()
        .map(|h| {
            if wanted.starts_with('/') {
                h.mount_point.join(&clean)
            } else {
                let own = own_path(h, proc_cgroup);
                h.mount_point.join(own.trim_start_matches('/')).join(&clean)
            }
        })
        .collect()
}

/// A container's directory in each cgroup hierarchy, paired with the hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirs(Vec<(Hierarchy, PathBuf)>);

impl Dirs {
    /// Pairs each of a container's recorded directories with the hierarchy it is in (the mount
    /// point that is the longest prefix of it); one under no mounted hierarchy is left out.
    pub fn recorded(hs: &[Hierarchy], leaves: &[PathBuf]) -> Dirs {
        let pair = |leaf: &PathBuf| {
            let h = hs
                .iter()
                .filter(|h| leaf.starts_with(&h.mount_point))
                .max_by_key(|h| h.mount_point.as_os_str().len())?;
            Some((h.clone(), leaf.clone()))
        };
        Dirs(leaves.iter().filter_map(pair).collect())
    }

    /// These directories split in two: those `keep` says yes to, and the rest.
    pub fn split(&self, keep: impl Fn(&Hierarchy, &Path) -> bool) -> (Dirs, Dirs) {
        let (yes, no) = self.0.iter().cloned().partition(|(h, d)| keep(h, d));
        (Dirs(yes), Dirs(no))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (Hierarchy, PathBuf)> {
        self.0.iter()
    }

    /// The directories alone, in hierarchy order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.iter().map(|(_, d)| d.clone()).collect()
    }

    /// The directory in the v1 hierarchy that has `controller`.
    pub fn v1(&self, controller: &str) -> Option<&Path> {
        self.0.iter().find(|(h, _)| h.version == 1 && h.has(controller)).map(|(_, d)| d.as_path())
    }

    /// The unified (v2) hierarchy and the directory in it.
    pub fn unified(&self) -> Option<(&Hierarchy, &Path)> {
        self.0.iter().find(|(h, _)| h.version == 2).map(|(h, d)| (h, d.as_path()))
    }

    /// The unified hierarchy and the directory in it on a host that mounts no v1 hierarchy.
    pub fn v2_only(&self) -> Option<(&Hierarchy, &Path)> {
        self.unified().filter(|_| !self.0.iter().any(|(h, _)| h.version == 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
";
    const PROC: &str = "4:memory:/session/abc\n3:cpu,cpuacct:/\n1:name=systemd:/\n0::/\n";

    #[test]
    fn parses_a_hybrid_host() {
        let hs = parse_mountinfo(HYBRID);
        assert_eq!(hs.len(), 4);
        assert_eq!(hs[0].version, 2);
        assert_eq!(hs[1].controllers, vec!["name=systemd"]);
        assert_eq!(hs[3].controllers, vec!["cpu", "cpuacct"]);
    }

    #[test]
    fn plans_paths_like_runc() {
        let hs = parse_mountinfo(HYBRID);
        // absolute: from each hierarchy's root
        let abs = plan_with(&hs, PROC, Some("/skiff/c1"), "c1");
        assert_eq!(abs[2], PathBuf::from("/sys/fs/cgroup/memory/skiff/c1"));
        // relative: from our own cgroup in that hierarchy
        let rel = plan_with(&hs, PROC, Some("skiff/c1"), "c1");
        assert_eq!(rel[2], PathBuf::from("/sys/fs/cgroup/memory/session/abc/skiff/c1"));
        assert_eq!(rel[3], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/skiff/c1"));
        // empty: the id, relative
        let empty = plan_with(&hs, PROC, None, "c1");
        assert_eq!(empty[0], PathBuf::from("/sys/fs/cgroup/unified/c1"));
        // `..` cannot climb out of the hierarchy
        let sneaky = plan_with(&hs, PROC, Some("/../../etc"), "c1");
        assert_eq!(sneaky[2], PathBuf::from("/sys/fs/cgroup/memory/etc"));
    }
}
