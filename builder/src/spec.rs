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

/// A config.json for `root` (absolute or bundle-relative) running `p`.
pub fn config(root: &str, p: &Process, hostname: &str, network: Network, cgroups_path: Option<&str>) -> Value {
    let caps: Vec<&str> = DEFAULT_CAPS.to_vec();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
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
}
