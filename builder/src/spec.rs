//! OCI runtime `config.json` documents for RUN containers and `unpack` bundles, as plain data.
//! Writes nothing and runs nothing.

use serde_json::{json, Value};

/// docker's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What a container process is.
#[derive(Debug, Clone)]
pub struct Process {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A new, empty network namespace.
    None,
    /// The host's network namespace.
    Host,
}

/// Mount targets the runtime creates in the rootfs if missing.
pub fn mount_targets(network: Network) -> Vec<&'static str> {
    let mut v = vec!["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"];
    if network == Network::Host {
        v.extend(["/etc/resolv.conf", "/etc/hosts"]);
    }
    v
}

/// The tty group (5) owns the ptys, as docker's; a rootless slipway whose user namespace has no
/// gid 5 (a user without subordinate ranges) leaves it out, as `runc spec --rootless` does.
fn devpts_options() -> Vec<&'static str> {
    let mut o = vec!["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"];
    if crate::userns::maps_gid(5) {
        o.push("gid=5");
    }
    o
}

/// A config.json for `root` (absolute or bundle-relative) running `p`.
pub fn config(root: &str, p: &Process, hostname: &str, network: Network, cgroups_path: Option<&str>) -> Value {
    let caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts_options()}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    let mut namespaces =
        vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    match network {
        Network::None => namespaces.push(json!({"type": "network"})),
        Network::Host => {
            for f in ["/etc/resolv.conf", "/etc/hosts"] {
                if std::path::Path::new(f).exists() {
                    mounts.push(json!({"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}));
                }
            }
        }
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        "resources": {"devices": [{"allow": false, "access": "rwm"}]}
    });
    if let Some(c) = cgroups_path {
        linux["cgroupsPath"] = json!(c);
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids},
            "args": p.args,
            "env": p.env,
            "cwd": p.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": false
        },
        "root": {"path": root, "readonly": false},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux
    })
}

/// Capability names by number (linux/capability.h).
const CAP_NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities in a `CapBnd:`-style hex mask, by name (bits without a name are left out).
pub fn caps_of_mask(mask: u64) -> Vec<&'static str> {
    CAP_NAMES.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, n)| *n).collect()
}

/// The bounding set of this process: what "every capability" can mean here (a host without
/// CAP_SYS_RESOURCE cannot give it to a container).
fn own_bounding_set() -> Vec<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(0);
    caps_of_mask(mask)
}

/// Devices BuildKit's insecure mode adds when the host has them.
const INSECURE_DEVICES: &[(&str, &str, u64, u64)] = &[
    ("/dev/kmsg", "c", 1, 11),
    ("/dev/cuse", "c", 10, 203),
    ("/dev/fuse", "c", 10, 229),
    ("/dev/kvm", "c", 10, 232),
    ("/dev/net/tun", "c", 10, 200),
    ("/dev/loop-control", "c", 10, 237),
];

/// Turns a RUN config into BuildKit's insecure mode (`RUN --security=insecure`, allowed by
/// `build --allow security.insecure`; util/entitlements/security): every capability, no masked
/// or read-only /proc paths, /sys writable, every device allowed and the host's fuse, tun, kvm,
/// loop and kmsg devices made. (slipway gives RUN steps no seccomp filter in either mode.)
pub fn insecure(config: &mut Value) {
    let caps = own_bounding_set();
    for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
        config["process"]["capabilities"][set] = json!(caps);
    }
    config["linux"]["maskedPaths"] = json!([]);
    config["linux"]["readonlyPaths"] = json!([]);
    config["linux"]["resources"]["devices"] =
        json!([{"allow": true, "type": "c", "access": "rwm"}, {"allow": true, "type": "b", "access": "rwm"}]);
    let mut devices = Vec::new();
    for (path, kind, major, minor) in INSECURE_DEVICES {
        if std::path::Path::new(path).exists() {
            devices.push(json!({"path": path, "type": kind, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0}));
        }
    }
    config["linux"]["devices"] = json!(devices);
    if let Some(mounts) = config["mounts"].as_array_mut() {
        for m in mounts.iter_mut() {
            if m["type"] == "sysfs" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "rw"]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_none_gets_a_netns() {
        let p = Process {
            args: vec!["true".into()],
            env: vec![],
            cwd: "/".into(),
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
        };
        let c = config("/r", &p, "h", Network::None, Some("/slipway/x"));
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.iter().any(|n| n["type"] == "network"));
        assert_eq!(c["linux"]["cgroupsPath"], "/slipway/x");
        assert_eq!(c["process"]["user"]["additionalGids"][0], 3);
        let c = config("/r", &p, "h", Network::Host, None);
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
    }

    #[test]
    fn insecure_mode_is_buildkits() {
        assert_eq!(caps_of_mask(0x3), ["CAP_CHOWN", "CAP_DAC_OVERRIDE"]);
        assert!(caps_of_mask(1 << 24).contains(&"CAP_SYS_RESOURCE"));
        let p = Process { args: vec![], env: vec![], cwd: "/".into(), uid: 0, gid: 0, additional_gids: vec![] };
        let mut c = config("/r", &p, "h", Network::None, None);
        insecure(&mut c);
        assert_eq!(c["linux"]["maskedPaths"], json!([]));
        assert_eq!(c["linux"]["readonlyPaths"], json!([]));
        assert_eq!(c["linux"]["resources"]["devices"][0]["allow"], true);
        let sys = c["mounts"].as_array().unwrap().iter().find(|m| m["type"] == "sysfs").unwrap().clone();
        assert!(sys["options"].as_array().unwrap().contains(&json!("rw")));
        let eff = c["process"]["capabilities"]["effective"].as_array().unwrap();
        assert!(eff.len() >= DEFAULT_CAPS.len(), "{eff:?}");
    }
}
