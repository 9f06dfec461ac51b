//! The RUN steps' cgroup as data: `build --cgroup-parent` (where their cgroups go) and the
//! resource limits (`--resource KEY=VALUE`, and docker build's `--memory`, `--cpu-shares`...),
//! parsed as docker parses them and written as config.json's `linux.resources`. Touches no
//! cgroup: the runtime applies them.

use serde_json::{json, Value};
use std::path::Path;

/// The keys `--resource` takes (buildx's build/utils.go, docker run's flag names); each is also
/// a flag of its own (`--memory`...), as docker build has them.
pub const KEYS: &[&str] =
    &["memory", "memory-swap", "cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems"];

/// The limits every RUN step gets: BuildKit's `LinuxResources` (frontend options memory,
/// memswap, cpushares, cpuperiod, cpuquota, cpusetcpus, cpusetmems). Unlike `--ulimit` they are
/// no part of a step's cache key: BuildKit carries them in the op's metadata, not the op
/// (solver/pb/ops.proto: "without affecting the cache key").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<u64>,
    /// Memory plus swap in bytes, or -1: unlimited swap.
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Microseconds.
    pub cpu_period: Option<u64>,
    /// Microseconds per period.
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// Sets `key` (one of [`KEYS`]) from `value` as docker parses it: sizes with units (`512m`,
    /// `1g`, go-units' RAMInBytes), `-1` for unlimited swap, integers, cpuset lists (`0-3,5`).
    /// `0` is docker's "not set" (and `-1` for cpu-quota: no quota). `flag` names the value in
    /// errors (`--memory 12x`, `--resource memory=12x`).
    pub fn set(&mut self, key: &str, value: &str, flag: &str) -> Result<(), String> {
        let v = value.trim();
        let int = |what: &str| -> Result<i64, String> {
            v.parse::<i64>().map_err(|_| format!("{flag}: invalid {what} {v:?} (an integer)"))
        };
        let size = || {
            crate::spec::parse_size(key, v)
                .map_err(|_| format!("{flag}: invalid size (a number with an optional unit b, k, m, g, t or p)"))
        };
        match key {
            "memory" => {
                let n = size()?;
                self.memory = (n > 0).then_some(n);
            }
            "memory-swap" => {
                self.memory_swap = match v {
                    "-1" => Some(-1),
                    _ => {
                        let n = size()?;
                        let n = i64::try_from(n).map_err(|_| format!("{flag}: memory-swap {v:?} is too large"))?;
                        (n > 0).then_some(n)
                    }
                }
            }
            "cpu-shares" => {
                let n = int("cpu shares")?;
                if n < 0 {
                    return Err(format!("{flag}: cpu shares must be 0 (not set) or more, not {n}"));
                }
                self.cpu_shares = (n > 0).then_some(n as u64);
            }
            "cpu-period" => {
                let n = int("CPU CFS period")?;
                // dockerd's check (daemon_unix.go): the kernel's bounds
                if n != 0 && !(1000..=1_000_000).contains(&n) {
                    return Err(format!(
                        "{flag}: CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                    ));
                }
                self.cpu_period = (n > 0).then_some(n as u64);
            }
            "cpu-quota" => {
                let n = int("CPU CFS quota")?;
                if n < -1 || (n > 0 && n < 1000) {
                    return Err(format!("{flag}: CPU cfs quota can not be less than 1ms (i.e. 1000)"));
                }
                self.cpu_quota = (n > 0).then_some(n);
            }
            "cpuset-cpus" | "cpuset-mems" => {
                let what = if key == "cpuset-cpus" { "cpuset cpus" } else { "cpuset mems" };
                parse_cpuset(v).map_err(|e| format!("{flag}: invalid value {v:?} for {what}: {e}"))?;
                let slot = if key == "cpuset-cpus" { &mut self.cpuset_cpus } else { &mut self.cpuset_mems };
                *slot = (!v.is_empty()).then(|| v.to_string());
            }
            _ => return Err(format!("{flag}: unknown resource {key:?} (one of {})", KEYS.join(", "))),
        }
        Ok(())
    }

    /// The limits of a build's flags, in buildx's order: docker build's own flags (`legacy`:
    /// the key and the value given, as `--memory 512m` is `memory`), then each `--resource`
    /// (a later one of a key wins); then checked together ([`Resources::check`]) and against
    /// this host ([`Resources::check_host`]).
    pub fn from_flags(legacy: &[(&str, Option<&str>)], entries: &[String]) -> Result<Resources, String> {
        let mut r = Resources::default();
        for (key, value) in legacy {
            if let Some(v) = value {
                r.set(key, v, &format!("--{key} {v}"))?;
            }
        }
        for e in entries {
            r.set_entry(e)?;
        }
        r.check()?;
        if r.cpuset_cpus.is_some() || r.cpuset_mems.is_some() {
            let read = |p: &str| std::fs::read_to_string(p).ok();
            // no NUMA in the kernel: node 0 alone
            let mems = read("/sys/devices/system/node/online").unwrap_or_else(|| "0".into());
            let cpus = read("/sys/devices/system/cpu/online")
                .ok_or("--cpuset-cpus: cannot read /sys/devices/system/cpu/online: the host's CPUs are unknown")?;
            r.check_host(&cpus, &mems)?;
        }
        Ok(r)
    }

    /// `--resource KEY=VALUE`, as buildx's ParseResourceLimits.
    pub fn set_entry(&mut self, entry: &str) -> Result<(), String> {
        let flag = format!("--resource {entry}");
        let (k, v) = entry.split_once('=').ok_or_else(|| format!("{flag}: expected KEY=VALUE"))?;
        self.set(k.trim(), v, &flag)
    }

    /// What docker's daemon checks of the limits together (daemon_unix.go): swap is memory plus
    /// swap, so it needs a memory limit and is at least that.
    pub fn check(&self) -> Result<(), String> {
        match (self.memory, self.memory_swap) {
            (None, Some(s)) if s > 0 => {
                Err("--memory-swap: you should always set the memory limit when using a memoryswap limit".into())
            }
            (Some(m), Some(s)) if s > 0 && (s as u64) < m => {
                Err("--memory-swap: minimum memoryswap limit should be larger than memory limit".into())
            }
            _ => Ok(()),
        }
    }

    /// The CPUs and memory nodes the cpuset flags name must be the host's (dockerd's
    /// "Requested CPUs are not available"): the kernel refuses others with a bare EINVAL.
    /// `online_cpus` and `online_mems` are the host's lists (/sys/devices/system/*/online).
    pub fn check_host(&self, online_cpus: &str, online_mems: &str) -> Result<(), String> {
        for (flag, asked, online) in
            [("--cpuset-cpus", &self.cpuset_cpus, online_cpus), ("--cpuset-mems", &self.cpuset_mems, online_mems)]
        {
            let Some(asked) = asked else { continue };
            let have = parse_cpuset(online).unwrap_or_default();
            let missing: Vec<u32> = parse_cpuset(asked)?.into_iter().filter(|c| !have.contains(c)).collect();
            if !missing.is_empty() {
                let what = if flag == "--cpuset-cpus" { "CPUs" } else { "memory nodes" };
                return Err(format!(
                    "{flag} {asked}: requested {what} are not available - requested {asked}, available: {}",
                    online.trim()
                ));
            }
        }
        Ok(())
    }

    /// Writes the limits into a RUN's config.json `linux.resources`, as BuildKit's
    /// generateLinuxResourceOpts does (nothing for what is not set).
    pub fn apply(&self, config: &mut Value) {
        if self.is_empty() {
            return;
        }
        let res = &mut config["linux"]["resources"];
        if self.memory.is_some() || self.memory_swap.is_some() {
            let mut m = json!({});
            if let Some(v) = self.memory {
                m["limit"] = json!(v);
            }
            if let Some(v) = self.memory_swap {
                m["swap"] = json!(v);
            }
            res["memory"] = m;
        }
        let mut cpu = json!({});
        if let Some(v) = self.cpu_shares {
            cpu["shares"] = json!(v);
        }
        if let Some(v) = self.cpu_period {
            cpu["period"] = json!(v);
        }
        if let Some(v) = self.cpu_quota {
            cpu["quota"] = json!(v);
        }
        if let Some(v) = &self.cpuset_cpus {
            cpu["cpus"] = json!(v);
        }
        if let Some(v) = &self.cpuset_mems {
            cpu["mems"] = json!(v);
        }
        if cpu.as_object().is_some_and(|o| !o.is_empty()) {
            res["cpu"] = cpu;
        }
    }
}

/// The largest CPU or node number a cpuset list may name (BuildKit's util/cpuset MaxCPU): a
/// bound on what a list like `0-999999999` would make.
const MAX_CPU: u32 = 8192;

/// A cpuset list (`0-3,5,7-9`) as BuildKit's util/cpuset.Parse reads it: numbers and ranges,
/// blanks around them and empty elements allowed; the numbers, sorted.
pub fn parse_cpuset(s: &str) -> Result<Vec<u32>, String> {
    let mut out = std::collections::BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            None => {
                let n: u32 = part.parse().map_err(|_| format!("invalid cpuset element {part:?}"))?;
                (n, n)
            }
            Some((a, b)) => match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                (Ok(a), Ok(b)) if a <= b => (a, b),
                _ => return Err(format!("invalid cpuset range {part:?}")),
            },
        };
        if hi > MAX_CPU {
            return Err(format!("cpuset element {part:?} exceeds maximum {MAX_CPU}"));
        }
        out.extend(lo..=hi);
    }
    Ok(out.into_iter().collect())
}

/// `--cgroup-parent`: where the RUN steps' cgroups go, as BuildKit's executor reads its
/// `cgroup-parent` option (executor/oci/spec.go): a value with `.slice` that ends in `:` is
/// systemd's `SLICE:PREFIX:` (dockerd's systemd driver passes `system.slice:docker:`), to which
/// each step's container id is added as the name; anything else is a cgroupfs path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupParent {
    /// A cgroupfs path, cleaned (`/a/b`): each step's cgroup is `/a/b/<id>` in every hierarchy.
    Path(String),
    /// `SLICE:PREFIX:`: each step is the scope unit `PREFIX-<id>.scope` in `SLICE`, made by the
    /// runtime's systemd cgroup driver (`--systemd-cgroup`, cgroupsPath `SLICE:PREFIX:<id>`).
    Systemd { slice: String, prefix: String },
}

impl std::fmt::Display for CgroupParent {
    /// As given once cleaned: in the steps' cache keys (BuildKit's exec op carries the string).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CgroupParent::Path(p) => f.write_str(p),
            CgroupParent::Systemd { slice, prefix } => write!(f, "{slice}:{prefix}:"),
        }
    }
}

impl CgroupParent {
    /// `--cgroup-parent VALUE`, checked; None when empty (BuildKit's "not set"). A cgroupfs path
    /// may not leave the tree (`..`); a systemd parent names a slice systemd accepts and a prefix
    /// (the unit's name is the step's: a value `SLICE:PREFIX:NAME` is refused).
    pub fn parse(s: &str) -> Result<Option<CgroupParent>, String> {
        let flag = format!("--cgroup-parent {s:?}");
        if s.is_empty() {
            return Ok(None);
        }
        if s.contains(':') {
            return parse_systemd(s).map(Some).map_err(|why| format!("{flag}: {why}"));
        }
        let mut parts = Vec::new();
        for c in s.split('/').filter(|c| !c.is_empty() && *c != ".") {
            if c == ".." || c.chars().any(|ch| ch.is_control()) {
                return Err(format!("{flag}: invalid cgroup path element {c:?}"));
            }
            parts.push(c);
        }
        Ok(Some(CgroupParent::Path(format!("/{}", parts.join("/")))))
    }

    /// The cgroupsPath of container `id` under this parent.
    pub fn cgroups_path(&self, id: &str) -> String {
        match self {
            CgroupParent::Path(p) => format!("{}/{id}", p.trim_end_matches('/')),
            CgroupParent::Systemd { slice, prefix } => format!("{slice}:{prefix}:{id}"),
        }
    }

    pub fn is_systemd(&self) -> bool {
        matches!(self, CgroupParent::Systemd { .. })
    }

    /// Whether this host can do what the parent asks, before any step runs: the systemd form
    /// needs systemd as pid 1 (sd_booted's test, runc's too: `/run/systemd/system` is a
    /// directory) and its D-Bus system bus, through which the runtime starts each step's unit.
    pub fn check_host(&self) -> Result<(), String> {
        let bus = std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").is_some();
        self.check_host_at(Path::new("/run"), bus)
    }

    fn check_host_at(&self, run: &Path, bus_address_set: bool) -> Result<(), String> {
        if !self.is_systemd() {
            return Ok(());
        }
        let flag = format!("--cgroup-parent {:?}", self.to_string());
        if !run.join("systemd/system").is_dir() {
            return Err(format!(
                "{flag}: a systemd slice needs systemd as the init (pid 1) to make each RUN step's scope unit, \
                 and this host does not run systemd ({} is not a directory); give a cgroupfs path (e.g. build/ci)",
                run.join("systemd/system").display()
            ));
        }
        let socket = run.join("dbus/system_bus_socket");
        if !bus_address_set && !socket.exists() {
            return Err(format!(
                "{flag}: a systemd slice needs systemd's D-Bus system bus (the runtime starts each RUN step's \
                 scope unit through it), and {} does not exist",
                socket.display()
            ));
        }
        Ok(())
    }
}

/// `SLICE:PREFIX:` as BuildKit tells it from a path (`.slice` in it, `:` last) and as runc's
/// systemd driver reads the slice (`a-b.slice` is a.slice/a-b.slice, no empty `-` parts).
fn parse_systemd(s: &str) -> Result<CgroupParent, String> {
    let form = "expected a cgroupfs path or systemd's SLICE:PREFIX: (e.g. system.slice:slipway:; \
                each RUN step's container id is added as the unit's name)";
    let [slice, prefix, name] = s.split(':').collect::<Vec<_>>()[..] else {
        return Err(form.to_string());
    };
    if !name.is_empty() {
        return Err(format!("{form}; {name:?} after the second ':' would name every step's unit alike"));
    }
    let unit_chars = |t: &str| t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let base = slice.strip_suffix(".slice").unwrap_or_default();
    if base.is_empty() || !unit_chars(base) || base.split('-').any(str::is_empty) {
        return Err(format!(
            "{form}; invalid slice name {slice:?} (NAME.slice, NAME of letters, digits, '_', '.' \
             and '-' between non-empty parts)"
        ));
    }
    if prefix.is_empty() || !unit_chars(prefix) {
        return Err(format!("{form}; invalid unit prefix {prefix:?} (letters, digits, '_', '.', '-')"));
    }
    Ok(CgroupParent::Systemd { slice: slice.to_string(), prefix: prefix.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_as_docker_and_buildx() {
        let mut r = Resources::default();
        // go-units' RAMInBytes (binary units), as docker's MemBytes; -1 unlimited swap
        r.set_entry("memory=512m").unwrap();
        r.set("memory-swap", "1g", "--memory-swap").unwrap();
        assert_eq!((r.memory, r.memory_swap), (Some(512 << 20), Some(1 << 30)));
        r.set("memory-swap", "-1", "--memory-swap").unwrap();
        assert_eq!(r.memory_swap, Some(-1));
        r.set_entry("cpu-shares=512").unwrap();
        r.set_entry("cpu-period=100000").unwrap();
        r.set_entry("cpu-quota=50000").unwrap();
        r.set_entry("cpuset-cpus=0-1").unwrap();
        r.set_entry("cpuset-mems=0").unwrap();
        let mut c = json!({"linux": {"resources": {"devices": []}}});
        r.apply(&mut c);
        assert_eq!(c["linux"]["resources"]["memory"], json!({"limit": 512u64 << 20, "swap": -1}));
        assert_eq!(
            c["linux"]["resources"]["cpu"],
            json!({"shares": 512, "period": 100000, "quota": 50000, "cpus": "0-1", "mems": "0"})
        );
        assert_eq!(c["linux"]["resources"]["devices"], json!([]), "the devices rules stay");
        // 0 is docker's "not set"; so is cpu-quota -1
        r.set("memory", "0", "--memory").unwrap();
        r.set("cpu-quota", "-1", "--cpu-quota").unwrap();
        assert_eq!((r.memory, r.cpu_quota), (None, None));
        let mut c = json!({"linux": {"resources": {}}});
        Resources::default().apply(&mut c);
        assert_eq!(c["linux"]["resources"], json!({}));
        // refused, naming the flag and the value
        for (k, v, want) in [
            ("memory", "lots", "invalid size"),
            ("memory", "-5m", "invalid size"),
            ("memory-swap", "-2", "invalid size"),
            ("cpu-shares", "x", "invalid cpu shares"),
            ("cpu-shares", "-2", "must be 0"),
            ("cpu-period", "10", "can not be less than 1ms"),
            ("cpu-period", "2000000", "larger than 1s"),
            ("cpu-quota", "999", "can not be less than 1ms"),
            ("cpuset-cpus", "1-0", "invalid cpuset range"),
            ("cpuset-cpus", "a", "invalid cpuset element"),
            ("cpuset-mems", "0-9000", "exceeds maximum 8192"),
            ("blkio-weight", "10", "unknown resource"),
        ] {
            let flag = format!("--resource {k}={v}");
            let e = Resources::default().set(k, v, &flag).unwrap_err();
            assert!(e.contains(want) && e.starts_with(&flag), "{k}={v}: {e}");
        }
        assert!(Resources::default().set_entry("memory").unwrap_err().contains("expected KEY=VALUE"));
        // dockerd's rules for memory and swap together
        let swap_only = Resources { memory_swap: Some(1 << 30), ..Default::default() };
        assert!(swap_only.check().unwrap_err().contains("always set the memory limit"));
        let smaller = Resources { memory: Some(2 << 30), memory_swap: Some(1 << 30), ..Default::default() };
        assert!(smaller.check().unwrap_err().contains("larger than memory limit"));
        assert!(Resources { memory_swap: Some(-1), ..Default::default() }.check().is_ok());
    }

    #[test]
    fn cpusets_parse_as_buildkits_and_are_checked_against_the_host() {
        assert_eq!(parse_cpuset("0-3, 5,,7-8").unwrap(), [0, 1, 2, 3, 5, 7, 8]);
        assert_eq!(parse_cpuset("").unwrap(), Vec::<u32>::new());
        let r = Resources { cpuset_cpus: Some("0-3".into()), ..Default::default() };
        let e = r.check_host("0-1\n", "0\n").unwrap_err();
        assert!(e.contains("--cpuset-cpus 0-3") && e.contains("available: 0-1"), "{e}");
        assert!(r.check_host("0-7\n", "0\n").is_ok());
        let r = Resources { cpuset_mems: Some("1".into()), ..Default::default() };
        assert!(r.check_host("0-1", "0").unwrap_err().contains("memory nodes"));
    }

    #[test]
    fn cgroup_parents_are_cgroupfs_paths_or_systemd_slices() {
        let p = |s: &str| CgroupParent::parse(s).map(|p| p.map(|p| p.to_string()));
        assert_eq!(p("build/ci").unwrap().as_deref(), Some("/build/ci"));
        assert_eq!(p("/build//ci/").unwrap().as_deref(), Some("/build/ci"));
        assert_eq!(p("/").unwrap().as_deref(), Some("/"));
        assert_eq!(p("").unwrap(), None);
        assert!(p("a/../../b").unwrap_err().contains("invalid cgroup path element \"..\""));
        // a slice alone is a cgroupfs path, as BuildKit reads it (no ':' last)
        assert_eq!(p("ci.slice").unwrap().as_deref(), Some("/ci.slice"));
        // dockerd's systemd driver passes `system.slice:docker:`; BuildKit adds the id
        let sd = CgroupParent::parse("system.slice:docker:").unwrap().unwrap();
        assert_eq!(sd, CgroupParent::Systemd { slice: "system.slice".into(), prefix: "docker".into() });
        assert_eq!(sd.cgroups_path("slipway-ab12"), "system.slice:docker:slipway-ab12");
        assert_eq!(sd.to_string(), "system.slice:docker:");
        assert!(sd.is_systemd());
        let path = CgroupParent::parse("ci").unwrap().unwrap();
        assert_eq!(path.cgroups_path("slipway-ab12"), "/ci/slipway-ab12");
        assert_eq!(p("a-b_c.slice:ci.x:").unwrap().as_deref(), Some("a-b_c.slice:ci.x:"));
        for (bad, why) in [
            ("system.slice:docker:name", "would name every step's unit alike"),
            ("system.slice:docker", "expected a cgroupfs path or systemd's SLICE:PREFIX:"),
            ("a:b:c:d", "expected a cgroupfs path"),
            (":docker:", "invalid slice name \"\""),
            ("system:docker:", "invalid slice name \"system\""),
            ("a--b.slice:docker:", "invalid slice name"),
            ("-a.slice:docker:", "invalid slice name"),
            ("a/b.slice:docker:", "invalid slice name"),
            ("system.slice::", "invalid unit prefix \"\""),
            ("system.slice:a+b:", "invalid unit prefix"),
        ] {
            let e = p(bad).unwrap_err();
            assert!(e.starts_with(&format!("--cgroup-parent {bad:?}: ")) && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_systemd_parent_needs_systemd_and_its_bus() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        let sd = CgroupParent::parse("ci.slice:slipway:").unwrap().unwrap();
        let e = sd.check_host_at(run, false).unwrap_err();
        assert!(e.starts_with("--cgroup-parent \"ci.slice:slipway:\": ") && e.contains("does not run systemd"), "{e}");
        // a cgroupfs path needs neither
        assert!(CgroupParent::parse("ci").unwrap().unwrap().check_host_at(run, false).is_ok());
        std::fs::create_dir_all(run.join("systemd/system")).unwrap();
        assert!(sd.check_host_at(run, false).unwrap_err().contains("D-Bus system bus"));
        assert!(sd.check_host_at(run, true).is_ok(), "DBUS_SYSTEM_BUS_ADDRESS names the bus");
        std::fs::create_dir_all(run.join("dbus")).unwrap();
        std::fs::write(run.join("dbus/system_bus_socket"), "").unwrap();
        assert!(sd.check_host_at(run, false).is_ok());
    }
}
