//! Mount options as the runtime spec lists them, turned into a plan: mount(2) flags, recursive
//! mount attributes (mount_setattr), propagation changes, the filesystem data string and the
//! extensions (tmpcopyup, idmap). Pure logic, table-tested; the mounting itself is in `mod.rs`.
//! `check` refuses, before anything is created, what cannot be applied (runc 1.2's rules).

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};

/// MS_NOSYMFOLLOW (Linux 5.10), which nix 0.29's MsFlags lacks. Kept with `from_bits_retain`:
/// never combine it with `!`, which drops bits MsFlags does not name (use `-` instead).
pub const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// Recursive mount attributes: MOUNT_ATTR_* bits to set and to clear on a whole subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecAttr {
    pub set: u64,
    pub clr: u64,
}

impl RecAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0
    }
}

/// `idmap` (only the mount itself) or `ridmap` (its submounts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdmapOption {
    pub recursive: bool,
}

/// What one mount's `options` array asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw`, `suid`, `dev`...).
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// `rro`, `rnosuid`... applied with mount_setattr(AT_RECURSIVE) after the mount.
    pub rec: RecAttr,
    /// Everything that is no option of the tables below, joined with commas: filesystem data,
    /// handed to the kernel for a new filesystem, refused for a bind mount (see `check`).
    pub data: String,
    /// `tmpcopyup`: the tmpfs starts with a copy of what the image has under the mount point.
    pub tmpcopyup: bool,
    /// `idmap` / `ridmap`.
    pub idmap: Option<IdmapOption>,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    /// Flags that a bind mount can only get through a remount (everything but BIND/REC).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// runc's mountFlags table (libcontainer/specconv): name -> (clears?, flag).
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("iversion", false, MsFlags::MS_I_VERSION),
    ("lazytime", false, MsFlags::MS_LAZYTIME),
    ("loud", true, MsFlags::MS_SILENT),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("noiversion", true, MsFlags::MS_I_VERSION),
    ("nolazytime", true, MsFlags::MS_LAZYTIME),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("nosymfollow", false, MS_NOSYMFOLLOW),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("silent", false, MsFlags::MS_SILENT),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("symfollow", true, MS_NOSYMFOLLOW),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

/// The flags of FLAGS that belong to the filesystem, not to the mount.
const SUPERBLOCK_FLAGS: &[MsFlags] = &[
    MsFlags::MS_SYNCHRONOUS,
    MsFlags::MS_DIRSYNC,
    MsFlags::MS_MANDLOCK,
    MsFlags::MS_LAZYTIME,
    MsFlags::MS_I_VERSION,
    MsFlags::MS_SILENT,
];

const PROPAGATION: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// runc's recAttrFlags table (runtime-spec 1.1): name -> (clears?, MOUNT_ATTR_* bit).
/// MOUNT_ATTR_RELATIME is 0: the atime modes are an enum inside MOUNT_ATTR__ATIME.
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", false, libc::MOUNT_ATTR_RDONLY),
    ("rrw", true, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", false, libc::MOUNT_ATTR_NOSUID),
    ("rsuid", true, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", false, libc::MOUNT_ATTR_NODEV),
    ("rdev", true, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", false, libc::MOUNT_ATTR_NOEXEC),
    ("rexec", true, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, libc::MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, libc::MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", false, libc::MOUNT_ATTR_NOATIME),
    ("ratime", true, libc::MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, libc::MOUNT_ATTR_STRICTATIME),
    ("rnosymfollow", false, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// Options that are neither flags nor attributes: runc's extensionFlags and complexFlags.
const EXTENSIONS: &[&str] = &["tmpcopyup", "idmap", "ridmap"];

/// Every option name skiff applies, sorted, for `skiff features`.
pub fn known() -> Vec<&'static str> {
    let mut all: Vec<&str> = FLAGS.iter().map(|f| f.0).collect();
    all.extend(PROPAGATION.iter().map(|p| p.0));
    all.extend(REC_ATTRS.iter().map(|r| r.0));
    all.extend(EXTENSIONS);
    all.sort_unstable();
    all
}

fn propagation_for(name: &str) -> Option<MsFlags> {
    PROPAGATION.iter().find(|p| p.0 == name).map(|p| p.1)
}

/// Parses a mount's options. Later options override earlier ones (`ro,rw` is rw), as in runc.
/// Words that are no option go to `data`, as runc puts them; `check` decides if that is allowed.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        rec: RecAttr::default(),
        data: String::new(),
        tmpcopyup: false,
        idmap: None,
    };
    let mut data = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        if let Some(&(_, clear, flag)) = FLAGS.iter().find(|f| f.0 == opt) {
            if clear {
                out.flags.remove(flag);
                out.cleared.insert(flag);
            } else {
                out.flags.insert(flag);
                out.cleared.remove(flag);
            }
        } else if let Some(p) = propagation_for(opt) {
            out.propagation.push(p);
        } else if let Some(&(_, clear, attr)) = REC_ATTRS.iter().find(|r| r.0 == opt) {
            let atime = attr & libc::MOUNT_ATTR__ATIME == attr;
            if clear {
                out.rec.clr |= attr;
                out.rec.set &= !attr;
            } else {
                if atime {
                    // The atime modes are one value: the last one given wins (runc ORs them).
                    out.rec.set &= !libc::MOUNT_ATTR__ATIME;
                }
                out.rec.set |= attr;
                out.rec.clr &= !attr;
            }
            if atime {
                // mount_setattr(2): an atime mode is only changed with MOUNT_ATTR__ATIME in attr_clr.
                out.rec.clr |= libc::MOUNT_ATTR__ATIME;
            }
        } else if opt == "tmpcopyup" {
            out.tmpcopyup = true;
        } else if opt == "idmap" || opt == "ridmap" {
            out.idmap = Some(IdmapOption { recursive: opt == "ridmap" });
        } else {
            data.push(opt);
        }
    }
    out.data = data.join(",");
    out
}

/// Whether the mount is a bind mount, as runc decides it: type "bind", or a bind/rbind option.
pub fn is_bind_mount(m: &Mount, opts: &MountOptions) -> bool {
    opts.is_bind() || m.typ().as_deref() == Some("bind")
}

/// The checks runc 1.2 makes on a mount before anything is created (libcontainer/configs/validate
/// checkBindOptions, checkIDMapMounts) plus skiff's own: what cannot be applied is refused.
pub fn check(index: usize, m: &Mount, in_userns: bool) -> Result<()> {
    let opts = parse(m.options().as_deref().unwrap_or_default());
    let path = format!("mounts[{index}].options");
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = is_bind_mount(m, &opts);
    if bind && !opts.data.is_empty() {
        // runc 1.2: "bind mounts cannot have any filesystem-specific options applied" — the
        // kernel ignores data on a bind, so it would go nowhere.
        return Err(Error::config(
            path,
            format!(
                "{:?}: no mount option skiff knows, and a bind mount cannot take filesystem options \
                 (known: {})",
                opts.data,
                known().join(",")
            ),
        ));
    }
    if bind {
        // Superblock flags: a bind remount changes only per-mount flags, so these would go
        // nowhere (runc and crun pass them to the kernel, which ignores them).
        let superblock = SUPERBLOCK_FLAGS.iter().fold(MsFlags::empty(), |a, f| a | *f);
        let options = m.options().as_deref().unwrap_or_default();
        if let Some(o) = options.iter().find(|o| FLAGS.iter().any(|f| f.0 == o.as_str() && superblock.intersects(f.2)))
        {
            return Err(Error::config(
                path,
                format!("{o:?} is a filesystem (superblock) flag, which a bind mount cannot change"),
            ));
        }
    }
    if opts.tmpcopyup && typ != "tmpfs" {
        return Err(Error::config(path, format!("tmpcopyup applies to tmpfs mounts only, not to type {typ:?}")));
    }
    let uid = m.uid_mappings().as_ref().is_some_and(|u| !u.is_empty());
    let gid = m.gid_mappings().as_ref().is_some_and(|g| !g.is_empty());
    if (uid || gid || opts.idmap.is_some()) && !bind {
        // runc 1.2: "id-mapped mounts are only supported for bind-mounts".
        let at = if uid || gid { format!("mounts[{index}].uidMappings") } else { path };
        return Err(Error::config(
            at,
            format!("id-mapped mounts are only supported for bind mounts, not type {typ:?}"),
        ));
    }
    if uid != gid {
        let missing = if uid { "gidMappings" } else { "uidMappings" };
        return Err(Error::config(
            format!("mounts[{index}].{missing}"),
            "an id-mapped mount needs both uidMappings and gidMappings",
        ));
    }
    if opts.idmap.is_some() && !uid && !in_userns {
        return Err(Error::config(
            path,
            "idmap without uidMappings and gidMappings needs a user namespace to take them from",
        ));
    }
    Ok(())
}

/// The propagation value of `linux.rootfsPropagation`.
pub fn rootfs_propagation(name: &str) -> Option<MsFlags> {
    propagation_for(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    const ATIME: u64 = libc::MOUNT_ATTR__ATIME;

    #[test]
    fn every_known_option_is_understood() {
        for name in known() {
            let o = opts(&[name]);
            let understood = o.data.is_empty()
                && (o.flags != MsFlags::empty()
                    || o.cleared != MsFlags::empty()
                    || !o.propagation.is_empty()
                    || !o.rec.is_empty()
                    || o.tmpcopyup
                    || o.idmap.is_some()
                    || name == "defaults");
            assert!(understood, "{name}: {o:?}");
        }
    }

    #[test]
    fn flags_map_like_runc() {
        // (options, flags set, flags cleared, data): each row pins runc's specconv behaviour.
        let rows: &[(&[&str], MsFlags, MsFlags, &str)] = &[
            // runc's default /dev/pts: flags plus fs data kept in order.
            (
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
                MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
                MsFlags::empty(),
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
            ),
            // the last of ro/rw wins, and rw is remembered as cleared.
            (&["ro", "rw"], MsFlags::empty(), MsFlags::MS_RDONLY, ""),
            (&["rw", "ro"], MsFlags::MS_RDONLY, MsFlags::empty(), ""),
            // rbind is BIND|REC.
            (&["rbind"], MsFlags::MS_BIND.union(MsFlags::MS_REC), MsFlags::empty(), ""),
            // nosymfollow is the per-mount MS_NOSYMFOLLOW (runc 1.2, Linux 5.10); symfollow clears it.
            (&["nosymfollow"], MS_NOSYMFOLLOW, MsFlags::empty(), ""),
            (&["nosymfollow", "symfollow"], MsFlags::empty(), MS_NOSYMFOLLOW, ""),
            // unknown words are fs data (e.g. tmpfs size), in order.
            (&["size=65536k", "mode=755"], MsFlags::empty(), MsFlags::empty(), "size=65536k,mode=755"),
            // rro is no flag: a bind with it has no remount flags (it is a recursive attribute).
            (&["rbind", "rro"], MsFlags::MS_BIND.union(MsFlags::MS_REC), MsFlags::empty(), ""),
        ];
        for (list, set, cleared, data) in rows {
            let o = opts(list);
            assert_eq!((o.flags, o.cleared, o.data.as_str()), (*set, *cleared, *data), "{list:?}");
        }
        // ro on a bind needs the remount; nosymfollow survives the mask (no `!` on MsFlags).
        assert_eq!(opts(&["rbind", "ro", "nosymfollow"]).remount_flags(), MsFlags::MS_RDONLY | MS_NOSYMFOLLOW);
        // propagation is separate from the flags, in order.
        let o = opts(&["bind", "rslave", "shared"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_SHARED]);
    }

    #[test]
    fn recursive_attributes_map_like_runc() {
        use libc::{
            MOUNT_ATTR_NOATIME as NOATIME, MOUNT_ATTR_NODEV as NODEV, MOUNT_ATTR_NODIRATIME as NODIRATIME,
            MOUNT_ATTR_NOEXEC as NOEXEC, MOUNT_ATTR_NOSUID as NOSUID, MOUNT_ATTR_NOSYMFOLLOW as NOSYMFOLLOW,
            MOUNT_ATTR_RDONLY as RDONLY, MOUNT_ATTR_STRICTATIME as STRICTATIME,
        };
        // (options, attr_set, attr_clr): runc's recAttrFlags and parseMountOptions.
        let rows: &[(&[&str], u64, u64)] = &[
            (&["rro"], RDONLY, 0),
            (&["rrw"], 0, RDONLY),
            (&["rro", "rrw"], 0, RDONLY),
            (&["rrw", "rro"], RDONLY, 0),
            (&["rnosuid", "rnodev", "rnoexec"], NOSUID | NODEV | NOEXEC, 0),
            (&["rsuid", "rdev", "rexec"], 0, NOSUID | NODEV | NOEXEC),
            (&["rnodiratime"], NODIRATIME, 0),
            (&["rdiratime"], 0, NODIRATIME),
            (&["rnosymfollow"], NOSYMFOLLOW, 0),
            (&["rsymfollow"], 0, NOSYMFOLLOW),
            // an atime mode always clears MOUNT_ATTR__ATIME (mount_setattr(2) requires it).
            (&["rnoatime"], NOATIME, ATIME),
            (&["rstrictatime"], STRICTATIME, ATIME),
            // RELATIME is 0: rrelatime sets the atime field to relatime.
            (&["rrelatime"], 0, ATIME),
            // the clearing atime options leave the kernel's default, relatime (as runc: mount(8)'s
            // "atime"/"norelatime" mean "the default").
            (&["ratime"], 0, ATIME),
            (&["rnorelatime"], 0, ATIME),
            (&["rnostrictatime"], 0, ATIME),
            (&["rnoatime", "ratime"], 0, ATIME),
            // skiff differs from runc here: the last atime mode wins (runc ORs NOATIME with
            // RELATIME's 0 and keeps noatime, its own FIXME).
            (&["rnoatime", "rrelatime"], 0, ATIME),
            (&["rnoatime", "rstrictatime"], STRICTATIME, ATIME),
            // diratime is no atime mode: it does not touch MOUNT_ATTR__ATIME.
            (&["rnoatime", "rnodiratime"], NOATIME | NODIRATIME, ATIME),
        ];
        for (list, set, clr) in rows {
            let o = opts(list);
            assert_eq!((o.rec.set, o.rec.clr), (*set, *clr), "{list:?}");
            assert!(o.data.is_empty() && o.flags.is_empty(), "{list:?}: {o:?}");
        }
    }

    #[test]
    fn check_refuses_what_cannot_be_applied() {
        let mount = |v: serde_json::Value| -> Mount { serde_json::from_value(v).unwrap() };
        // (mount, expected error fragment or None): runc 1.2's validate rules plus skiff's.
        let rows: Vec<(serde_json::Value, Option<&str>)> = vec![
            // the case: rro on an rbind is applied, not dropped.
            (serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind", "rro"]}), None),
            // what containerd, docker and podman send for binds and tmpfs.
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s",
                    "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec", "ro"]}),
                None,
            ),
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                    "options": ["rw", "noexec", "nosuid", "nodev", "tmpcopyup", "size=65536k", "mode=1777"]}),
                None,
            ),
            // runc 1.2 checkBindOptions: a bind takes no filesystem data (runc 1.1 dropped it).
            (
                serde_json::json!({"destination": "/m", "source": "/s", "options": ["rbind", "rr0"]}),
                Some("mounts[0].options: \"rr0\": no mount option skiff knows"),
            ),
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s", "options": ["size=1m"]}),
                Some("a bind mount cannot take filesystem options"),
            ),
            // A bind remount cannot change superblock flags (runc passes them and the kernel
            // ignores them): refused, setting or clearing.
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s", "options": ["rbind", "sync"]}),
                Some("mounts[0].options: \"sync\" is a filesystem (superblock) flag"),
            ),
            (
                serde_json::json!({"destination": "/m", "source": "/s", "options": ["bind", "ro", "nolazytime"]}),
                Some("\"nolazytime\" is a filesystem (superblock) flag"),
            ),
            // ... which a new filesystem takes.
            (
                serde_json::json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["sync", "dirsync"]}),
                None,
            ),
            // crun: tmpcopyup is for tmpfs only (runc ignores it elsewhere).
            (
                serde_json::json!({"destination": "/m", "type": "proc", "source": "proc", "options": ["tmpcopyup"]}),
                Some("tmpcopyup applies to tmpfs mounts only"),
            ),
            // runc 1.2 checkIDMapMounts: id-mapped mounts are binds with both maps.
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s", "options": ["rbind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
                None,
            ),
            (
                serde_json::json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
                Some("mounts[0].uidMappings: id-mapped mounts are only supported for bind mounts"),
            ),
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s", "options": ["rbind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
                Some("mounts[0].gidMappings: an id-mapped mount needs both"),
            ),
            // idmap with no mapping of its own takes the container's user namespace's: none here.
            (
                serde_json::json!({"destination": "/m", "type": "bind", "source": "/s", "options": ["rbind", "idmap"]}),
                Some("mounts[0].options: idmap without uidMappings"),
            ),
        ];
        for (i, (v, want)) in rows.into_iter().enumerate() {
            let m = mount(v.clone());
            match (check(0, &m, false), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "row {i}: {e}"),
                (got, _) => panic!("row {i} {v}: got {got:?}, want {want:?}"),
            }
        }
    }
}
