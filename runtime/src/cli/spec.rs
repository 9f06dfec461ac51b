//! `spec [--bundle DIR] [--rootless]`: writes the same default config.json runc 1.1 writes
//! (hostname `skiff`), or its rootless variant (a user namespace mapping the caller to root, no
//! network namespace, /sys bind-mounted, no devices cgroup rule).

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use crate::error::{Error, Result};

pub fn default_spec(rootless: bool) -> Value {
    template(rootless, cgroup2_unified())
}

/// True when /sys/fs/cgroup is a cgroup2 mount (runc's `IsCgroup2UnifiedMode`): then runc's
/// template gives the container a cgroup namespace of its own.
fn cgroup2_unified() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// runc 1.1's template, for a host where /sys/fs/cgroup is cgroup2 alone (`unified`) or not.
fn template(rootless: bool, unified: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut devpts = json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
    let mut sys = json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
    let mut namespaces =
        json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    if rootless {
        devpts = json!(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]);
        sys = json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        namespaces = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
    }
    if unified {
        // after mount, before the user namespace the rootless variant appends (runc's order)
        let list = namespaces.as_array_mut().expect("literal array");
        let at = list.iter().position(|n| n["type"] == "user").unwrap_or(list.len());
        list.insert(at, json!({"type": "cgroup"}));
    }
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": namespaces,
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    });
    if rootless {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        let obj = linux.as_object_mut().expect("literal object");
        obj.remove("resources");
        obj.insert("uidMappings".into(), json!([{"containerID": 0, "hostID": uid, "size": 1}]));
        obj.insert("gidMappings".into(), json!([{"containerID": 0, "hostID": gid, "size": 1}]));
    }
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "skiff",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            sys,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": linux
    })
}

#[derive(Args, Debug)]
#[command(
    about = "Write a default config.json for a new bundle, as runc's does",
    long_about = "Write runc's default config.json into a bundle directory: `sh` on a terminal as root in \
        new pid, network, ipc, uts and mount namespaces (and cgroup on a cgroup v2 host), with the rootfs \
        at ./rootfs, read-only. An existing config.json is not overwritten.",
    after_help = "Examples:\n  mkdir -p demo/rootfs && skiff spec --bundle demo\n  \
        skiff spec --rootless        for a user without root: a user namespace mapping you to root"
)]
pub struct SpecArgs {
    /// The bundle directory to write config.json into.
    #[arg(short, long, value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the rootless variant, for running as a user other than root: a user namespace that
    /// maps the caller's uid and gid to root, no network namespace, /sys bind-mounted, no cgroup
    /// device rule.
    #[arg(long)]
    pub rootless: bool,
}

/// Writes BUNDLE/config.json (the rootless variant with `--rootless`); refuses to overwrite one,
/// as runc does.
pub fn run(args: &SpecArgs) -> Result<()> {
    let path = args.bundle.join("config.json");
    if path.exists() {
        return Err(Error::msg(format!("File {} exists. Remove it first", path.display())));
    }
    let text = serde_json::to_string_pretty(&default_spec(args.rootless)).map_err(|e| Error::msg(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(format!("write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_pass_our_own_validation() {
        for (rootless, unified) in [(false, false), (true, false), (false, true), (true, true)] {
            let text = template(rootless, unified).to_string();
            let spec = crate::bundle::parse_config(text.as_bytes()).unwrap();
            crate::bundle::validate(&spec).unwrap();
        }
    }

    #[test]
    fn a_cgroup2_host_gets_a_cgroup_namespace_as_runc_gives_it() {
        let types = |v: Value| -> Vec<String> {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["type"].as_str().unwrap().to_string())
                .collect()
        };
        // runc 1.1.5 `spec` on a cgroup v2 host, and on a v1 or hybrid one
        assert_eq!(types(template(false, true)), ["pid", "network", "ipc", "uts", "mount", "cgroup"]);
        assert_eq!(types(template(false, false)), ["pid", "network", "ipc", "uts", "mount"]);
        // `spec --rootless` there (seen in make test-systemd's VM)
        assert_eq!(types(template(true, true)), ["pid", "ipc", "uts", "mount", "cgroup", "user"]);
        assert_eq!(types(template(true, false)), ["pid", "ipc", "uts", "mount", "user"]);
    }
}
