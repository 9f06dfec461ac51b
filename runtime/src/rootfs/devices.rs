//! /dev inside the container: runc's default device nodes (listed with their cgroup rules in
//! cgroups/devices) plus `linux.devices`, the /dev/fd and std* links and /dev/ptmx -> pts/ptmx.
//! Inside a user namespace mknod is not allowed, so nodes are bind mounts of the host's device
//! files instead (as runc does).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::path::resolve_in_root;
use crate::cgroups::devices::{Kind, Rule, DEFAULT_DEVICES};
use crate::error::{Result, SysContext};

/// One device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// runc's default devices that have a path (cgroups::devices::DEFAULT_DEVICES).
fn defaults() -> impl Iterator<Item = Node> {
    DEFAULT_DEVICES.iter().filter_map(|d| {
        let kind = if d.rule.kind == Kind::Block { SFlag::S_IFBLK } else { SFlag::S_IFCHR };
        Some(Node {
            path: d.path?.into(),
            kind,
            major: d.rule.major?,
            minor: d.rule.minor?,
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
    })
}

/// The nodes to create: the config's devices, then any default the config does not name.
pub fn plan(spec: &Spec) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for d in spec.linux().as_ref().and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        out.push(Node {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for d in defaults() {
        if !out.iter().any(|o| o.path == d.path) {
            out.push(d);
        }
    }
    out
}

/// The cgroup rules that let the container use its nodes ("c 1:3 rwm"), allowed after the
/// config's `linux.resources.devices` rules as runc allows them.
pub fn cgroup_rules(spec: &Spec) -> Vec<Rule> {
    plan(spec).iter().map(|n| Rule::for_node(n.kind == SFlag::S_IFBLK, n.major, n.minor)).collect()
}

pub fn create_all(spec: &Spec, rootfs: &Path, in_userns: bool) -> Result<()> {
    let dev = resolve_in_root(rootfs, Path::new("/dev"))?;
    std::fs::create_dir_all(&dev).ctx(|| format!("mkdir {}", dev.display()))?;
    for node in plan(spec) {
        let dest = resolve_in_root(rootfs, &node.path)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).ctx(|| format!("mkdir {}", parent.display()))?;
        }
        if in_userns {
            bind_host_device(&node, &dest)?;
        } else {
            make_node(&node, &dest)?;
        }
    }
    let links = [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    for (target, name) in links {
        let link = dev.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(target, &link).ctx(|| format!("symlink {}", link.display()))?;
        }
    }
    if Path::new("/proc/kcore").exists() {
        let link = dev.join("core");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("/proc/kcore", &link).ctx(|| format!("symlink {}", link.display()))?;
        }
    }
    // /dev/ptmx must be the devpts instance's ptmx, not the host's.
    let ptmx = dev.join("ptmx");
    let _ = std::fs::remove_file(&ptmx);
    std::os::unix::fs::symlink("pts/ptmx", &ptmx).ctx(|| format!("symlink {}", ptmx.display()))?;
    Ok(())
}

fn make_node(node: &Node, dest: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        let _ = std::fs::remove_file(dest);
    }
    let dev = makedev(node.major, node.minor);
    mknod(dest, node.kind, Mode::from_bits_truncate(node.mode), dev)
        .ctx(|| format!("mknod {}", node.path.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(node.mode))
        .ctx(|| format!("chmod {}", node.path.display()))?;
    std::os::unix::fs::chown(dest, Some(node.uid), Some(node.gid)).ctx(|| format!("chown {}", node.path.display()))?;
    Ok(())
}

fn bind_host_device(node: &Node, dest: &Path) -> Result<()> {
    if !dest.exists() {
        std::fs::File::create(dest).ctx(|| format!("create {}", dest.display()))?;
    }
    mount(Some(&node.path), dest, Some("bind"), MsFlags::MS_BIND, None::<&str>)
        .ctx(|| format!("bind host device {} on {}", node.path.display(), dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_devices_override_defaults_by_path() {
        let v = serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "r"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"devices": [
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 5},
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
            ]}
        });
        let spec: Spec = serde_json::from_value(v).unwrap();
        let nodes = plan(&spec);
        assert_eq!(nodes.len(), 7, "6 defaults + fuse, null not doubled");
        assert_eq!(nodes[0].mode, 0o600);
        assert_eq!(nodes[0].uid, 5);
        assert_eq!(nodes[1].mode, 0o666, "fileMode defaults to 0666");
        assert!(nodes.iter().any(|n| n.path == Path::new("/dev/tty")));
    }
}
