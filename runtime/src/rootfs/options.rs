//! Mount options as the runtime spec lists them, turned into mount(2) flags, propagation changes
//! and the data string. Pure logic, table-tested; the mounting itself is in `mounts.rs`.

use nix::mount::MsFlags;

/// What one mount's `options` array asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags to set.
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw`, `suid`, `dev`...).
    pub cleared: MsFlags,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Everything mount(2) does not know as a flag, joined with commas (fs-specific data).
    pub data: String,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    /// Flags that a bind mount can only get through a remount (everything but BIND/REC).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// Every option name `parse` understands, for `skiff features`.
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "rbind",
    "relatime",
    "remount",
    "ro",
    "rw",
    "silent",
    "strictatime",
    "suid",
    "sync",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// The option table of runc 1.1 (libcontainer/specconv): name -> (clear?, flag).
fn flag_for(name: &str) -> Option<(bool, MsFlags)> {
    Some(match name {
        "async" => (true, MsFlags::MS_SYNCHRONOUS),
        "atime" => (true, MsFlags::MS_NOATIME),
        "bind" => (false, MsFlags::MS_BIND),
        "defaults" => (false, MsFlags::empty()),
        "dev" => (true, MsFlags::MS_NODEV),
        "diratime" => (true, MsFlags::MS_NODIRATIME),
        "dirsync" => (false, MsFlags::MS_DIRSYNC),
        "exec" => (true, MsFlags::MS_NOEXEC),
        "iversion" => (false, MsFlags::MS_I_VERSION),
        "lazytime" => (false, MsFlags::MS_LAZYTIME),
        "loud" => (true, MsFlags::MS_SILENT),
        "mand" => (false, MsFlags::MS_MANDLOCK),
        "noatime" => (false, MsFlags::MS_NOATIME),
        "nodev" => (false, MsFlags::MS_NODEV),
        "nodiratime" => (false, MsFlags::MS_NODIRATIME),
        "noexec" => (false, MsFlags::MS_NOEXEC),
        "noiversion" => (true, MsFlags::MS_I_VERSION),
        "nolazytime" => (true, MsFlags::MS_LAZYTIME),
        "nomand" => (true, MsFlags::MS_MANDLOCK),
        "norelatime" => (true, MsFlags::MS_RELATIME),
        "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
        "nosuid" => (false, MsFlags::MS_NOSUID),
        "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
        "relatime" => (false, MsFlags::MS_RELATIME),
        "remount" => (false, MsFlags::MS_REMOUNT),
        "ro" => (false, MsFlags::MS_RDONLY),
        "rw" => (true, MsFlags::MS_RDONLY),
        "silent" => (false, MsFlags::MS_SILENT),
        "strictatime" => (false, MsFlags::MS_STRICTATIME),
        "suid" => (true, MsFlags::MS_NOSUID),
        "sync" => (false, MsFlags::MS_SYNCHRONOUS),
        _ => return None,
    })
}

fn propagation_for(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Parses a mount's options. Later options override earlier ones (`ro,rw` is rw), as in runc.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions {
        flags: MsFlags::empty(),
        cleared: MsFlags::empty(),
        propagation: Vec::new(),
        data: String::new(),
    };
    let mut data = Vec::new();
    for opt in options {
        if let Some((clear, flag)) = flag_for(opt) {
            if clear {
                out.flags.remove(flag);
                out.cleared.insert(flag);
            } else {
                out.flags.insert(flag);
                out.cleared.remove(flag);
            }
        } else if let Some(p) = propagation_for(opt) {
            out.propagation.push(p);
        } else if opt == "tmpcopyup" {
            // runc's tmpcopyup (copy the directory's contents into a new tmpfs) is not supported
            // yet; skipping it keeps the mount itself working.
            crate::log::debug("mount option tmpcopyup is not supported; ignored");
        } else {
            data.push(opt.as_str());
        }
    }
    out.data = data.join(",");
    out
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

    #[test]
    fn every_known_option_is_understood() {
        for name in KNOWN {
            assert!(flag_for(name).is_some() || propagation_for(name).is_some(), "{name}");
        }
    }

    #[test]
    fn options_map_like_runc() {
        // runc's default /dev/pts: flags plus fs data kept in order.
        let o = opts(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
        // rbind is BIND|REC; ro needs a remount for binds.
        let o = opts(&["rbind", "ro"]);
        assert!(o.is_bind());
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY);
        // the last of ro/rw wins.
        assert_eq!(opts(&["ro", "rw"]).flags, MsFlags::empty());
        assert!(opts(&["ro", "rw"]).cleared.contains(MsFlags::MS_RDONLY));
        // propagation is separate from the flags.
        let o = opts(&["bind", "rslave", "shared"]);
        assert_eq!(o.flags, MsFlags::MS_BIND);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_SHARED]);
        // unknown words are fs data (e.g. tmpfs size).
        assert_eq!(opts(&["size=65536k", "mode=755"]).data, "size=65536k,mode=755");
    }
}
