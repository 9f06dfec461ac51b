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
    /// BuildKit's default (sandbox): a namespace of the step's own with outbound access
    /// (`netns.rs`); the caller sets the namespace's path and /etc/resolv.conf.
    Sandbox,
    /// A new, empty network namespace.
    None,
    /// The host's network namespace.
    Host,
}

impl Network {
    /// `none`, `host` or `default` (the sandbox), as `--network` and `RUN --network` name them.
    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "default" | "sandbox" => Some(Network::Sandbox),
            "none" => Some(Network::None),
            "host" => Some(Network::Host),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Network::Sandbox => "default",
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// Mount targets the runtime creates in a RUN step's rootfs if missing (the hosts and
/// resolv.conf files [`RunExtras::apply`] binds included).
pub fn mount_targets() -> Vec<&'static str> {
    vec!["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/resolv.conf", "/etc/hosts"]
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
    // the host's network: its namespace (RUN steps get their /etc/hosts and resolv.conf from
    // RunExtras::apply, as BuildKit writes them for every network mode)
    if network != Network::Host {
        namespaces.push(json!({"type": "network"}));
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
        // the step's own cgroups, read-only, as BuildKit mounts them (executor/oci withCGroup):
        // what a step reads of its limits. (Without a cgroup of its own, a rootless step has
        // none to show.)
        mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
            "options": ["ro", "nosuid", "noexec", "nodev"]}));
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

/// What `build --add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent` and the resource limits
/// give every RUN step, as data: parsed once from the command line, applied to each config.json
/// by [`RunExtras::apply`]; all but the resource limits are part of each RUN's cache key (as in
/// BuildKit, whose exec op carries them; its resource limits are in the op's metadata).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunExtras {
    /// `--add-host HOST:IP`, in the order given.
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// `--ulimit NAME=SOFT[:HARD]`: the process's rlimits.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`: the size of /dev/shm in bytes (docker's default 64 MiB when unset).
    pub shm_size: Option<u64>,
    /// `--build-arg BUILDKIT_SANDBOX_HOSTNAME=NAME`: the steps' hostname (BuildKit's frontend
    /// option; `buildkitsandbox` when unset).
    pub hostname: Option<String>,
    /// `--cgroup-parent`: a cgroupfs path or a systemd slice the steps' cgroups go under (the
    /// runner names them); in the key, as BuildKit's exec op carries `cgroupParent`.
    pub cgroup_parent: Option<crate::resources::CgroupParent>,
    /// `--resource` and docker build's `--memory`, `--cpu-shares`...: `linux.resources`; not in
    /// the key.
    pub resources: crate::resources::Resources,
}

/// One `--ulimit`, as docker's go-units parses it (-1: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The OCI name, `RLIMIT_NOFILE`.
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// The names `--ulimit` takes (go-units' ulimitNameMapping).
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// What `--add-host NAME:host-gateway` stands for unless `--host-gateway-ip` says otherwise:
/// the address at which a RUN step reaches the host. slipway's steps have no bridge (dockerd's
/// host-gateway is its bridge's gateway): with the host's network the host is the step's own
/// loopback, and without a network no address reaches it. (A build with the sandbox network
/// takes the host's outward address instead: `netns::host_address`.)
pub const HOST_GATEWAY: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// `--add-host HOST:IP` (or `HOST=IP`, and `[IPv6]`), as docker's ValidateExtraHost; the IP
/// `host-gateway` is `gateway` (`--host-gateway-ip`, else [`HOST_GATEWAY`]), as buildx and
/// dockerd replace it.
pub fn parse_add_host(s: &str, gateway: std::net::IpAddr) -> Result<(String, std::net::IpAddr), String> {
    let flag = format!("--add-host {s}");
    let (host, ip) = match s.split_once('=') {
        Some(hi) => hi,
        None => s.split_once(':').ok_or_else(|| format!("{flag}: expected HOST:IP"))?,
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err(format!("{flag}: invalid host name {host:?}"));
    }
    if ip == "host-gateway" {
        return Ok((host.to_string(), gateway));
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip = ip.parse().map_err(|_| format!("{flag}: invalid IP address {ip:?}"))?;
    Ok((host.to_string(), ip))
}

/// The /etc/resolv.conf of a RUN step from the host's (`host`), as BuildKit's GetResolvConf
/// makes it: with the host's network the host's file as it is; else without the nameservers
/// on loopback (they are the host's, unreachable from another network namespace), and
/// libnetwork's default servers (Google's, IPv4 and IPv6) when none is left.
pub fn resolv_conf(host: &str, network: Network) -> String {
    if network == Network::Host {
        return host.to_string();
    }
    let loopback = |l: &str| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver")
            && w.next().and_then(|a| a.parse::<std::net::IpAddr>().ok()).is_some_and(|a| a.is_loopback())
    };
    let kept: Vec<&str> = host.split_inclusive('\n').filter(|l| !loopback(l)).collect();
    let mut out = kept.concat();
    if !kept.iter().any(|l| l.split_whitespace().next() == Some("nameserver")) && network == Network::Sandbox {
        // slirp4netns's forwarder asks the host's resolvers, loopback ones too
        out.push_str(&format!("\nnameserver {}\n", crate::netns::DNS));
    } else if !kept.iter().any(|l| l.split_whitespace().next() == Some("nameserver")) {
        out.push_str(
            "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844",
        );
    }
    out
}

/// `--ulimit NAME=SOFT[:HARD]`, as go-units' ParseUlimit.
pub fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let flag = format!("--ulimit {s}");
    let (name, vals) = s.split_once('=').ok_or_else(|| format!("{flag}: expected NAME=SOFT[:HARD]"))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("{flag}: invalid ulimit type {name:?} (one of {})", ULIMIT_NAMES.join(", ")));
    }
    let num = |v: &str| -> Result<u64, String> {
        match v.parse::<i64>() {
            Ok(-1) => Ok(u64::MAX),
            Ok(n) if n >= 0 => Ok(n as u64),
            _ => Err(format!("{flag}: invalid ulimit value {v:?}")),
        }
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if soft > hard {
        return Err(format!("{flag}: ulimit soft limit must be less than or equal to hard limit"));
    }
    Ok(Ulimit { kind: format!("RLIMIT_{}", name.to_ascii_uppercase()), soft, hard })
}

/// A size as docker's RAMInBytes reads it: `128m`, `1g`, `64MiB`, `1048576` (binary units).
pub fn parse_size(flag: &str, s: &str) -> Result<u64, String> {
    let bad = || format!("{flag} {s}: invalid size (a number with an optional unit b, k, m, g, t or p)");
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mul: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(bad()),
    };
    Ok((n * mul as f64) as u64)
}

impl RunExtras {
    pub fn is_empty(&self) -> bool {
        *self == RunExtras::default()
    }

    /// What RUN cache keys add (empty without the flags, so keys stay as they were; the
    /// resource limits never add anything).
    pub fn key_text(&self) -> String {
        if (RunExtras { resources: Default::default(), ..self.clone() }).is_empty() {
            return String::new();
        }
        let hosts: Vec<String> = self.hosts.iter().map(|(h, ip)| format!("{h}={ip}")).collect();
        let ul: Vec<String> = self.ulimits.iter().map(|u| format!("{}={}:{}", u.kind, u.soft, u.hard)).collect();
        let mut t = format!(" add-host={hosts:?} ulimit={ul:?} shm-size={:?}", self.shm_size);
        // BuildKit's hostname is part of the exec op, so of its cache key (added only when set:
        // the keys of builds without it stay as they were)
        if let Some(h) = &self.hostname {
            t.push_str(&format!(" hostname={h:?}"));
        }
        if let Some(p) = &self.cgroup_parent {
            t.push_str(&format!(" cgroup-parent={:?}", p.to_string()));
        }
        t
    }

    /// The steps' hostname: `BUILDKIT_SANDBOX_HOSTNAME`, else BuildKit's `buildkitsandbox`.
    pub fn hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or("buildkitsandbox")
    }

    /// The /etc/hosts of every RUN step, as BuildKit writes it for any network mode: localhost
    /// and the sandbox's `hostname`, then one `IP\tHOST` line per `--add-host`.
    pub fn hosts_file(&self, hostname: &str) -> String {
        let mut out = format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for (h, ip) in &self.hosts {
            out.push_str(&format!("{ip}\t{h}\n"));
        }
        out
    }

    /// Applies the flags to a RUN's config.json: the written `hosts` and `resolv` files bound
    /// read-only on /etc/hosts and /etc/resolv.conf in place of any other, the rlimits,
    /// /dev/shm's size, the resource limits.
    pub fn apply(&self, config: &mut Value, hosts: &str, resolv: &str) {
        self.resources.apply(config);
        if let Some(mounts) = config["mounts"].as_array_mut() {
            for (dest, src) in [("/etc/resolv.conf", resolv), ("/etc/hosts", hosts)] {
                mounts.retain(|m| m["destination"] != dest);
                mounts.push(json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "ro"]}));
            }
            if let Some(size) = self.shm_size {
                for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
                    m["options"] =
                        json!(["nosuid", "noexec", "nodev", "mode=1777", format!("size={}k", size.div_ceil(1024))]);
                }
            }
        }
        if !self.ulimits.is_empty() {
            config["process"]["rlimits"] = json!(self
                .ulimits
                .iter()
                .map(|u| json!({"type": u.kind, "soft": u.soft, "hard": u.hard}))
                .collect::<Vec<_>>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::CgroupParent;

    #[test]
    fn run_extras_parse_as_docker_and_apply_as_buildkit() {
        // docker's ValidateExtraHost: HOST:IP, the IP may be IPv6; 25's HOST=IP and [IPv6]
        let gw = HOST_GATEWAY;
        assert_eq!(parse_add_host("db:10.0.0.2", gw).unwrap(), ("db".into(), "10.0.0.2".parse().unwrap()));
        assert_eq!(parse_add_host("v6:::1", gw).unwrap().1, "::1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(parse_add_host("v6=[fe80::1]", gw).unwrap().1, "fe80::1".parse::<std::net::IpAddr>().unwrap());
        assert!(parse_add_host("db", gw).unwrap_err().contains("expected HOST:IP"));
        assert!(parse_add_host("db:300.1.1.1", gw).unwrap_err().contains("invalid IP"));
        // host-gateway: --host-gateway-ip's address, else the host's loopback
        assert_eq!(parse_add_host("gw:host-gateway", gw).unwrap(), ("gw".into(), "127.0.0.1".parse().unwrap()));
        let other = "192.168.1.9".parse().unwrap();
        assert_eq!(parse_add_host("gw=host-gateway", other).unwrap().1, other);
        // go-units' ParseUlimit: soft defaults to hard, -1 unlimited, soft <= hard
        assert_eq!(
            parse_ulimit("nofile=512:1024").unwrap(),
            Ulimit { kind: "RLIMIT_NOFILE".into(), soft: 512, hard: 1024 }
        );
        assert_eq!(parse_ulimit("core=-1").unwrap().hard, u64::MAX);
        assert!(parse_ulimit("nofile=2:1").unwrap_err().contains("soft limit"));
        assert!(parse_ulimit("files=1").unwrap_err().contains("invalid ulimit type"));
        assert!(parse_ulimit("nofile").unwrap_err().contains("NAME=SOFT"));
        // docker's RAMInBytes
        assert_eq!(parse_size("--shm-size", "128m").unwrap(), 128 << 20);
        assert_eq!(parse_size("--shm-size", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("--shm-size", "4096").unwrap(), 4096);
        assert!(parse_size("--shm-size", "12x").is_err());

        let x = RunExtras {
            hosts: vec![("db".into(), "10.0.0.2".parse().unwrap())],
            ulimits: vec![parse_ulimit("nofile=512:1024").unwrap()],
            shm_size: Some(128 << 20),
            hostname: None,
            cgroup_parent: None,
            resources: Default::default(),
        };
        // BuildKit's hosts file for a sandbox, then the extra hosts
        assert_eq!(
            x.hosts_file("buildkitsandbox"),
            "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.2\tdb\n"
        );
        assert_eq!(
            RunExtras::default().hosts_file("s"),
            "127.0.0.1\tlocalhost s\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
        assert_eq!(RunExtras::default().key_text(), "");
        assert_eq!(RunExtras::default().hostname(), "buildkitsandbox");
        let named = RunExtras { hostname: Some("box".into()), ..RunExtras::default() };
        assert!(named.key_text().contains("hostname=\"box\""), "{}", named.key_text());
        // the cgroup parent is in the key (BuildKit's exec op carries it); the resource limits
        // are not (they are in the op's metadata there), so limits alone keep the keys
        let parent = RunExtras { cgroup_parent: CgroupParent::parse("ci").unwrap(), ..RunExtras::default() };
        assert!(parent.key_text().contains("cgroup-parent=\"/ci\""), "{}", parent.key_text());
        let sd = RunExtras { cgroup_parent: CgroupParent::parse("ci.slice:b:").unwrap(), ..RunExtras::default() };
        assert!(sd.key_text().contains("cgroup-parent=\"ci.slice:b:\""), "{}", sd.key_text());
        let mut limited = RunExtras::default();
        limited.resources.memory = Some(64 << 20);
        assert_eq!(limited.key_text(), "");
        let both = RunExtras { resources: limited.resources.clone(), ..parent.clone() };
        assert_eq!(both.key_text(), parent.key_text());
        let p = Process { args: vec![], env: vec![], cwd: "/".into(), uid: 0, gid: 0, additional_gids: vec![] };
        let mut c = config("/r", &p, "h", Network::Host, None);
        x.apply(&mut c, "/b/hosts", "/b/resolv.conf");
        let m = c["mounts"].as_array().unwrap();
        for (dest, src) in [("/etc/hosts", "/b/hosts"), ("/etc/resolv.conf", "/b/resolv.conf")] {
            let found: Vec<_> = m.iter().filter(|m| m["destination"] == dest).collect();
            assert_eq!(found.len(), 1, "{dest}");
            assert_eq!(found[0]["source"], src);
        }
        let shm = m.iter().find(|m| m["destination"] == "/dev/shm").unwrap();
        assert!(shm["options"].as_array().unwrap().contains(&json!("size=131072k")));
        assert_eq!(c["process"]["rlimits"][0], json!({"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}));
    }

    #[test]
    fn resolv_conf_is_buildkits() {
        let host = "search lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\noptions edns0\n";
        assert_eq!(resolv_conf(host, Network::Host), host);
        assert_eq!(resolv_conf(host, Network::None), "search lan\nnameserver 10.0.0.1\noptions edns0\n");
        // only loopback servers (systemd-resolved's stub, dnsmasq): libnetwork's defaults
        assert_eq!(
            resolv_conf("nameserver 127.0.0.53\nnameserver ::1\n", Network::None),
            "\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844"
        );
        assert!(resolv_conf("", Network::None).contains("nameserver 8.8.8.8"));
        // the sandbox reaches the host's loopback resolver through slirp4netns's forwarder
        assert_eq!(resolv_conf("nameserver 127.0.0.53\n", Network::Sandbox), "\nnameserver 10.0.2.3\n");
        assert_eq!(resolv_conf("nameserver 10.0.0.1\n", Network::Sandbox), "nameserver 10.0.0.1\n");
    }

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
        // BuildKit's read-only view of the step's own cgroups; none without a cgroup
        let cg = |c: &Value| c["mounts"].as_array().unwrap().iter().find(|m| m["type"] == "cgroup").cloned();
        assert_eq!(cg(&c).unwrap()["destination"], "/sys/fs/cgroup");
        assert_eq!(c["process"]["user"]["additionalGids"][0], 3);
        let c = config("/r", &p, "h", Network::Host, None);
        let ns = c["linux"]["namespaces"].as_array().unwrap();
        assert!(!ns.iter().any(|n| n["type"] == "network"));
        assert!(cg(&c).is_none());
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
