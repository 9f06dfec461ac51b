//! Id-mapped bind mounts (runtime-spec 1.2: `mounts[].uidMappings`/`gidMappings`, `idmap`,
//! `ridmap`). The kernel lets only a process with CAP_SYS_ADMIN over the source's filesystem
//! (the host's user namespace) id-map it, so `skiff create` makes each tree here, before the
//! container's processes exist: open_tree(OPEN_TREE_CLONE) of the source, a user namespace made
//! for the mapping, mount_setattr(MOUNT_ATTR_IDMAP). The init inherits the detached trees across
//! its forks and attaches them with move_mount (`mod.rs`), as runc 1.2 and crun pass theirs.
//! Nothing here touches the container's mounts.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use super::options;
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, mount::MountAttr, Forked};

/// The mapping one id-mapped mount asks for, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Mapping {
    /// uid_map and gid_map lines ("containerID hostID size"), of the mount or of the container.
    Maps { uid: String, gid: String },
    /// The container joins this user namespace: its mapping is used as it is.
    Path(PathBuf),
}

/// One id-mapped mount to make: the plan, printable and testable without root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub index: usize,
    pub source: PathBuf,
    /// rbind: the tree is cloned with its submounts.
    pub recursive_clone: bool,
    /// ridmap: the submounts are id-mapped too.
    pub recursive_idmap: bool,
    pub mapping: Mapping,
}

fn map_lines(maps: &[LinuxIdMapping]) -> String {
    maps.iter().map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size())).collect()
}

/// The id-mapped mounts of `spec`, in order. `bundle` resolves relative sources. Options are
/// assumed checked (`options::check`): only binds, both maps or a user namespace to take them from.
pub fn plan(spec: &Spec, bundle: &Path) -> Result<Vec<Plan>> {
    let linux = spec.linux().as_ref();
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|ns| ns.iter().find(|n| n.typ() == LinuxNamespaceType::User).map(|n| n.path().clone()));
    let mut out = Vec::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = options::parse(m.options().as_deref().unwrap_or_default());
        let Some(idmap) = wanted(m, &opts) else { continue };
        let mapping = match (m.uid_mappings().as_deref(), m.gid_mappings().as_deref()) {
            (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => {
                Mapping::Maps { uid: map_lines(u), gid: map_lines(g) }
            }
            // runc 1.2: idmap without mappings of its own takes the container's user namespace.
            _ => match &userns {
                Some(Some(path)) => Mapping::Path(path.clone()),
                Some(None) => Mapping::Maps {
                    uid: map_lines(linux.and_then(|l| l.uid_mappings().as_deref()).unwrap_or_default()),
                    gid: map_lines(linux.and_then(|l| l.gid_mappings().as_deref()).unwrap_or_default()),
                },
                None => {
                    return Err(Error::config(
                        format!("mounts[{index}].options"),
                        "idmap without uidMappings and gidMappings needs a user namespace to take them from",
                    ))
                }
            },
        };
        let src = m.source().as_deref().ok_or_else(|| {
            Error::config(format!("mounts[{index}].source"), "an id-mapped bind mount needs a source")
        })?;
        out.push(Plan {
            index,
            source: if src.is_absolute() { src.to_path_buf() } else { bundle.join(src) },
            recursive_clone: opts.flags.contains(nix::mount::MsFlags::MS_REC),
            recursive_idmap: idmap.recursive,
            mapping,
        });
    }
    Ok(out)
}

/// Whether a mount is id-mapped: an `idmap`/`ridmap` option, or mappings alone (runc 1.2 takes
/// those as `idmap`).
pub fn wanted(m: &Mount, opts: &options::MountOptions) -> Option<options::IdmapOption> {
    let maps = m.uid_mappings().as_ref().is_some_and(|u| !u.is_empty())
        || m.gid_mappings().as_ref().is_some_and(|g| !g.is_empty());
    opts.idmap.or(maps.then_some(options::IdmapOption { recursive: false }))
}

/// A detached, id-mapped tree for the init to attach, by mount index.
pub struct Tree {
    pub index: usize,
    pub fd: OwnedFd,
}

/// Makes every planned tree. Runs in `skiff create`, in the host's namespaces, as root.
pub fn make(plans: &[Plan]) -> Result<Vec<Tree>> {
    let mut userns: HashMap<Mapping, OwnedFd> = HashMap::new();
    let mut trees = Vec::new();
    for p in plans {
        let label = |e: Error| Error::msg(format!("mounts[{}] (id-mapped {}): {e}", p.index, p.source.display()));
        let ns = match userns.get(&p.mapping) {
            Some(fd) => fd,
            None => {
                let fd = match &p.mapping {
                    Mapping::Maps { uid, gid } => user_namespace_for(uid, gid).map_err(label)?,
                    Mapping::Path(path) => std::fs::File::open(path)
                        .map(OwnedFd::from)
                        .ctx(|| format!("open user namespace {}", path.display()))
                        .map_err(label)?,
                };
                userns.entry(p.mapping.clone()).or_insert(fd)
            }
        };
        let src = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(&p.source)
            .ctx(|| format!("open {}", p.source.display()))
            .map_err(label)?;
        let tree = sys::mount::open_tree_clone(src.as_fd(), p.recursive_clone)
            .ctx(|| "open_tree(OPEN_TREE_CLONE)".into())
            .map_err(label)?;
        // A clone of a shared mount joins its peer group: mounts made in the container would then
        // reach the host. As a slave it gets the host's new mounts and sends none back, like
        // every other mount of the container (its root is made rslave first).
        let slave = MountAttr { propagation: libc::MS_SLAVE, ..MountAttr::default() };
        sys::mount::mount_setattr(tree.as_fd(), true, &slave)
            .ctx(|| "mount_setattr(MS_SLAVE)".into())
            .map_err(label)?;
        let idmap = MountAttr { set: libc::MOUNT_ATTR_IDMAP, userns: Some(ns.as_raw_fd()), ..MountAttr::default() };
        sys::mount::mount_setattr(tree.as_fd(), p.recursive_idmap, &idmap)
            .map_err(|e| {
                let why = match e {
                    nix::errno::Errno::EINVAL => {
                        " (the filesystem of the source, or of a mount below it, cannot be id-mapped on this kernel)"
                    }
                    nix::errno::Errno::ENOSYS => " (id-mapped mounts need Linux 5.12)",
                    _ => "",
                };
                Error::msg(format!("mount_setattr(MOUNT_ATTR_IDMAP): {e}{why}"))
            })
            .map_err(label)?;
        trees.push(Tree { index: p.index, fd: tree });
    }
    Ok(trees)
}

use std::os::unix::fs::OpenOptionsExt;

/// A user namespace with these uid and gid maps, held by an fd: a child unshares it and waits
/// while we write its maps and open /proc/CHILD/ns/user, then exits (the fd keeps the namespace).
fn user_namespace_for(uid_map: &str, gid_map: &str) -> Result<OwnedFd> {
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    match sys::fork().ctx(|| "fork a user namespace holder".into())? {
        Forked::Child => {
            drop(ready_r);
            drop(hold_w);
            let ok = nix::sched::unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = std::fs::File::from(ready_w).write_all(&[ok as u8]);
            // Blocks until the parent is done and closes its end.
            let _ = std::fs::File::from(hold_r).read(&mut [0u8; 1]);
            std::process::exit(0);
        }
        Forked::Parent(child) => {
            drop(ready_w);
            drop(hold_r);
            let result = (|| {
                let mut ok = [0u8; 1];
                std::fs::File::from(ready_r).read_exact(&mut ok).ctx(|| "wait for the user namespace holder".into())?;
                if ok[0] != 1 {
                    return Err(Error::msg("unshare(CLONE_NEWUSER) failed in the holder"));
                }
                for (file, map) in [("uid_map", uid_map), ("gid_map", gid_map)] {
                    let path = format!("/proc/{child}/{file}");
                    std::fs::write(&path, map).ctx(|| format!("write {path} ({:?})", map.trim_end()))?;
                }
                let path = format!("/proc/{child}/ns/user");
                std::fs::File::open(&path).map(OwnedFd::from).ctx(|| format!("open {path}"))
            })();
            drop(hold_w);
            if result.is_err() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn plans_follow_runc() {
        let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        let own = serde_json::json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "linux": {"namespaces": [{"type": "user"}, {"type": "mount"}], "uidMappings": map, "gidMappings": map},
            "mounts": [
                // 0: no idmap at all.
                {"destination": "/a", "type": "bind", "source": "/s", "options": ["rbind"]},
                // 1: mappings alone are idmap (runc 1.2), non-recursive, on a non-recursive clone.
                {"destination": "/b", "type": "bind", "source": "/s", "options": ["bind"],
                 "uidMappings": own, "gidMappings": own},
                // 2: ridmap without mappings: the container's own, recursive on an rbind clone.
                {"destination": "/c", "type": "bind", "source": "rel", "options": ["rbind", "ridmap"]},
                // 3: idmap on an rbind: the clone has submounts, only the top is mapped.
                {"destination": "/d", "type": "bind", "source": "/s", "options": ["rbind", "idmap"]}
            ]
        }));
        let plans = plan(&s, Path::new("/bundle")).unwrap();
        let own_maps = Mapping::Maps { uid: "1000 0 1\n".into(), gid: "1000 0 1\n".into() };
        let pod = Mapping::Maps { uid: "0 100000 65536\n".into(), gid: "0 100000 65536\n".into() };
        let got: Vec<_> = plans
            .iter()
            .map(|p| (p.index, p.source.clone(), p.recursive_clone, p.recursive_idmap, p.mapping.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, PathBuf::from("/s"), false, false, own_maps),
                (2, PathBuf::from("/bundle/rel"), true, true, pod.clone()),
                (3, PathBuf::from("/s"), true, false, pod),
            ]
        );
        // A joined user namespace lends its own mapping (runc: IDMapping.UserNSPath).
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]},
            "mounts": [{"destination": "/c", "type": "bind", "source": "/s", "options": ["rbind", "idmap"]}]
        }));
        assert_eq!(plan(&s, Path::new("/b")).unwrap()[0].mapping, Mapping::Path("/proc/1/ns/user".into()));
        // idmap with no mapping anywhere is refused, naming the mount.
        let s = spec(serde_json::json!({
            "ociVersion": "1.2.0",
            "mounts": [{"destination": "/c", "type": "bind", "source": "/s", "options": ["rbind", "idmap"]}]
        }));
        assert!(plan(&s, Path::new("/b")).unwrap_err().to_string().contains("mounts[0].options"));
    }
}
