//! `linux.resources` as cgroup file writes. `plan` turns the config into plain data — which
//! controller, which file, which value, and the JSON path it came from — for v1 and for v2
//! (with runc's conversions: shares -> weight, blkio weight -> io.bfq.weight or io.weight, ...); `apply` only
//! writes files. On a hybrid host a controller goes to the v1 hierarchy that has it, else to the
//! unified one.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::devices::{self, Rule, Sourced};
use super::hierarchy::{Dirs, Hierarchy};
use crate::error::{Error, Result};

/// One cgroup file write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// Where in config.json the value came from, for error messages.
    pub source: String,
    /// When `file` does not exist in the cgroup: this file and value instead.
    pub fallback: Option<(String, String)>,
}

/// hugepageLimits[].limit is "the limit of reservations (if supported) or usage" (runtime-spec):
/// it goes to the usage limit and, where the kernel has them (Linux 5.7+), to the reservation
/// limit as well, as runc writes both. Without the rsvd files the usage limit alone applies.
const RSVD_V1: &str = "rsvd.limit_in_bytes";
const RSVD_V2: &str = "rsvd.max";

fn s(controller: &'static str, file: impl Into<String>, value: impl ToString, source: &str) -> Setting {
    Setting {
        controller,
        file: file.into(),
        value: value.to_string(),
        source: format!("linux.resources.{source}"),
        fallback: None,
    }
}

/// runc's ConvertBlkIOToIOWeightValue: blkio weight [10, 1000] -> io.weight [1, 10000]. Outside
/// that range the result is out of range too and the kernel refuses it.
pub fn io_weight(blkio_weight: u16) -> i64 {
    1 + (blkio_weight as i64 - 10) * 9999 / 990
}

/// The v1 writes for `res`, in the order they must happen. `devices` are the container's device
/// rules ([`devices::rules`]: the config's, runc's defaults, its nodes), written last.
pub fn plan_v1(res: &LinuxResources, devices: &[Sourced]) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        // Raising the limit above memsw fails and lowering memsw below the limit fails, so the
        // order depends on the direction; `apply` retries the pair the other way round.
        if let Some(v) = m.limit() {
            out.push(s("memory", "memory.limit_in_bytes", v, "memory.limit"));
        }
        if let Some(v) = m.swap() {
            out.push(s("memory", "memory.memsw.limit_in_bytes", v, "memory.swap"));
        }
        if let Some(v) = m.reservation() {
            out.push(s("memory", "memory.soft_limit_in_bytes", v, "memory.reservation"));
        }
        // Deprecated (runtime-spec 1.3) and gone from Linux 6.1 on (the kernel refuses the
        // write): applied where the kernel still can, else an error naming the field.
        out.extend(plan_kmem(m));
        if let Some(v) = m.use_hierarchy() {
            out.push(s("memory", "memory.use_hierarchy", u8::from(v), "memory.useHierarchy"));
        }
        if let Some(v) = m.swappiness() {
            out.push(s("memory", "memory.swappiness", v, "memory.swappiness"));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(s("memory", "memory.oom_control", 1, "memory.disableOOMKiller"));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(v) = c.shares().filter(|v| *v != 0) {
            out.push(s("cpu", "cpu.shares", v, "cpu.shares"));
        }
        if let Some(v) = c.period().filter(|v| *v != 0) {
            out.push(s("cpu", "cpu.cfs_period_us", v, "cpu.period"));
        }
        if let Some(v) = c.quota().filter(|v| *v != 0) {
            out.push(s("cpu", "cpu.cfs_quota_us", v, "cpu.quota"));
        }
        if let Some(v) = c.burst() {
            out.push(s("cpu", "cpu.cfs_burst_us", v, "cpu.burst"));
        }
        if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
            out.push(s("cpu", "cpu.rt_period_us", v, "cpu.realtimePeriod"));
        }
        if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
            out.push(s("cpu", "cpu.rt_runtime_us", v, "cpu.realtimeRuntime"));
        }
        out.extend(plan_cpu_alike(c));
    }
    out.extend(plan_pids(res));
    if let Some(b) = res.block_io() {
        out.extend(plan_weight(b, Version::V1));
        if let Some(v) = b.leaf_weight().filter(|v| *v != 0) {
            out.push(s("blkio", "blkio.leaf_weight", v, "blockIO.leafWeight"));
        }
        for (i, d) in b.weight_device().iter().flatten().enumerate() {
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                let line = format!("{}:{} {w}", d.major(), d.minor());
                let mut set = s("blkio", "blkio.bfq.weight_device", &line, &format!("blockIO.weightDevice[{i}]"));
                set.fallback = Some(("blkio.weight_device".into(), line));
                out.push(set);
            }
            if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
                out.push(s(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {w}", d.major(), d.minor()),
                    &format!("blockIO.weightDevice[{i}]"),
                ));
            }
        }
        out.extend(plan_throttles(b, Version::V1));
    }
    out.extend(plan_hugetlb(res, Version::V1));
    if let Some(n) = res.network() {
        if let Some(v) = n.class_id() {
            out.push(s("net_cls", "net_cls.classid", v, "network.classID"));
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            out.push(s(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
                &format!("network.priorities[{i}]"),
            ));
        }
    }
    out.extend(plan_rdma(res));
    for d in devices {
        let file = if d.rule.allow { "devices.allow" } else { "devices.deny" };
        let value = d.rule.to_string();
        out.push(Setting { controller: "devices", file: file.into(), value, source: d.source.clone(), fallback: None });
    }
    out
}

/// The v2 writes for `res`, with runc's conversions from the v1-shaped spec values.
pub fn plan_v2(res: &LinuxResources) -> Vec<Setting> {
    let mut out = Vec::new();
    let max = |v: i64| if v < 0 { "max".to_string() } else { v.to_string() };
    if let Some(m) = res.memory() {
        if let Some(v) = m.limit() {
            out.push(s("memory", "memory.max", max(v), "memory.limit"));
        }
        if let Some(v) = m.reservation() {
            out.push(s("memory", "memory.low", max(v), "memory.reservation"));
        }
        // v1 swap is memory+swap; v2 swap.max is swap alone.
        if let Some(v) = m.swap() {
            let swap = match (v, m.limit()) {
                (v, _) if v < 0 => "max".to_string(),
                (v, Some(l)) if l >= 0 => (v - l).max(0).to_string(),
                (v, _) => v.to_string(),
            };
            out.push(s("memory", "memory.swap.max", swap, "memory.swap"));
        }
        // cgroup v2 has no kernel memory limits and is always hierarchical: these files do not
        // exist there, so asking for them is an error naming the field, never a silent drop.
        out.extend(plan_kmem(m));
        if m.use_hierarchy() == Some(false) {
            out.push(s("memory", "memory.use_hierarchy", 0, "memory.useHierarchy"));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(v) = c.shares().filter(|v| *v != 0) {
            // runc's ConvertCPUSharesToCgroupV2Value: [2, 262144] -> [1, 10000].
            let weight = 1 + ((v.clamp(2, 262_144) - 2) * 9999) / 262_142;
            out.push(s("cpu", "cpu.weight", weight, "cpu.shares"));
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c.quota().filter(|q| *q > 0).map(|q| q.to_string()).unwrap_or_else(|| "max".into());
            // Without a period the kernel keeps the current one (runc writes the quota alone).
            let value = match c.period().filter(|p| *p != 0) {
                Some(period) => format!("{quota} {period}"),
                None => quota,
            };
            out.push(s("cpu", "cpu.max", value, "cpu.quota"));
        }
        if let Some(v) = c.burst() {
            out.push(s("cpu", "cpu.max.burst", v, "cpu.burst"));
        }
        out.extend(plan_cpu_alike(c));
    }
    out.extend(plan_pids(res));
    if let Some(b) = res.block_io() {
        out.extend(plan_weight(b, Version::V2));
        out.extend(plan_throttles(b, Version::V2));
    }
    out.extend(plan_hugetlb(res, Version::V2));
    out.extend(plan_rdma(res));
    // Last, so they win over the typed fields, as in runc. Sorted: the map has no order.
    let mut unified: Vec<_> = res.unified().iter().flatten().collect();
    unified.sort();
    for (k, v) in unified {
        let controller = k.split('.').next().unwrap_or("");
        // `unified` keys name their own controller; keep a static str for known ones ("" for
        // cgroup.* files, which need none; [`check_unified`] refuses the rest).
        let c = V2_CONTROLLERS.into_iter().find(|c| *c == controller).unwrap_or("");
        out.push(s(c, k.clone(), v, &format!("unified[{k:?}]")));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// memory.kernel and memory.kernelTCP: v1's kmem files (which v2 does not have).
fn plan_kmem(m: &LinuxMemory) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(v) = m.kernel() {
        out.push(s("memory", "memory.kmem.limit_in_bytes", v, "memory.kernel"));
    }
    if let Some(v) = m.kernel_tcp() {
        out.push(s("memory", "memory.kmem.tcp.limit_in_bytes", v, "memory.kernelTCP"));
    }
    out
}

/// The cpu settings v1 and v2 write alike: cpu.idle, cpuset.cpus and cpuset.mems.
fn plan_cpu_alike(c: &LinuxCpu) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(v) = c.idle() {
        out.push(s("cpu", "cpu.idle", v, "cpu.idle"));
    }
    if let Some(v) = c.cpus().as_ref().filter(|v| !v.is_empty()) {
        out.push(s("cpuset", "cpuset.cpus", v, "cpu.cpus"));
    }
    if let Some(v) = c.mems().as_ref().filter(|v| !v.is_empty()) {
        out.push(s("cpuset", "cpuset.mems", v, "cpu.mems"));
    }
    out
}

/// pids.max, the same file on v1 and v2; a limit of 0 or less is no limit.
fn plan_pids(res: &LinuxResources) -> Option<Setting> {
    let p = res.pids().as_ref()?;
    Some(s("pids", "pids.max", if p.limit() > 0 { p.limit().to_string() } else { "max".into() }, "pids.limit"))
}

/// blockIO.weight; 0 is "unset" to runc (docker sends weight 0 for every container). BFQ's file
/// where the kernel has BFQ (on v1 the only weight since 5.0 removed CFQ), else v1's CFQ-era
/// blkio.weight, or v2's io.weight (iocost) with the converted value (runc's fs2 setIo).
fn plan_weight(b: &LinuxBlockIo, version: Version) -> Option<Setting> {
    let v = b.weight().filter(|v| *v != 0)?;
    let (set, fallback) = match version {
        Version::V1 => (s("blkio", "blkio.bfq.weight", v, "blockIO.weight"), ("blkio.weight", v.to_string())),
        Version::V2 => (s("io", "io.bfq.weight", v, "blockIO.weight"), ("io.weight", io_weight(v).to_string())),
    };
    Some(Setting { fallback: Some((fallback.0.into(), fallback.1)), ..set })
}

/// blockIO's throttle lists: v1 writes each to its blkio.throttle.*_device file, v2 writes
/// io.max lines with the list's key.
fn plan_throttles(b: &LinuxBlockIo, version: Version) -> Vec<Setting> {
    let lists = [
        ("read_bps", "rbps", "throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("write_bps", "wbps", "throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("read_iops", "riops", "throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("write_iops", "wiops", "throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    let mut out = Vec::new();
    for (v1_name, v2_key, name, list) in lists {
        for (i, d) in list.iter().flatten().enumerate() {
            let (dev, source) = (format!("{}:{}", d.major(), d.minor()), format!("blockIO.{name}[{i}]"));
            out.push(match version {
                Version::V1 => {
                    s("blkio", format!("blkio.throttle.{v1_name}_device"), format!("{dev} {}", d.rate()), &source)
                }
                Version::V2 => s("io", "io.max", format!("{dev} {v2_key}={}", d.rate()), &source),
            });
        }
    }
    out
}

/// hugepageLimits: each page size's usage limit and its reservation limit (see [`RSVD_V1`]);
/// v2 writes a negative limit as "max".
fn plan_hugetlb(res: &LinuxResources, version: Version) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, h) in res.hugepage_limits().iter().flatten().enumerate() {
        let (files, value) = match version {
            Version::V1 => (["limit_in_bytes", RSVD_V1], h.limit().to_string()),
            Version::V2 if h.limit() < 0 => (["max", RSVD_V2], "max".to_string()),
            Version::V2 => (["max", RSVD_V2], h.limit().to_string()),
        };
        for file in files {
            let source = format!("hugepageLimits[{i}]");
            out.push(s("hugetlb", format!("hugetlb.{}.{file}", h.page_size()), &value, &source));
        }
    }
    out
}

/// runc's fscommon RdmaSet, the same on v1 and v2: one rdma.max write per device,
/// `DEVICE hca_handle=N hca_object=M` with only the fields given (the kernel keeps the other
/// limit as it is; neither given writes the bare name). Sorted by device: the map has no order.
fn plan_rdma(res: &LinuxResources) -> Vec<Setting> {
    let mut devices: Vec<_> = res.rdma().iter().flatten().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    devices
        .into_iter()
        .map(|(dev, limits)| {
            let mut line = dev.clone();
            if let Some(n) = limits.hca_handles() {
                line.push_str(&format!(" hca_handle={n}"));
            }
            if let Some(n) = limits.hca_objects() {
                line.push_str(&format!(" hca_object={n}"));
            }
            s("rdma", "rdma.max", line, &format!("rdma[{dev:?}]"))
        })
        .collect()
}

/// `linux.resources.rdma` needs an rdma controller: a v1 rdma hierarchy, else the unified one
/// if its root lists rdma. Checked before anything is written. With neither (this kernel or
/// mount has no rdma cgroup), a non-empty map is refused, as runc 1.1.5 refuses it ("cannot set
/// rdma limit: container could not join or create cgroup"); an empty one is fine.
fn check_rdma(res: &LinuxResources, dirs: &Dirs) -> Result<()> {
    let mut devices: Vec<&String> = res.rdma().iter().flat_map(|m| m.keys()).collect();
    devices.sort();
    let Some(first) = devices.first() else { return Ok(()) };
    let has_rdma = |h: &Hierarchy| match h.version {
        1 => h.has("rdma"),
        _ => std::fs::read_to_string(h.mount_point.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "rdma"),
    };
    if dirs.iter().any(|(h, _)| has_rdma(h)) {
        return Ok(());
    }
    Err(Error::msg(format!("linux.resources.rdma[{first:?}]: no rdma cgroup on this host")))
}

const V2_CONTROLLERS: [&str; 8] = ["memory", "cpu", "cpuset", "io", "pids", "hugetlb", "rdma", "misc"];

/// runc's checks of one `linux.resources.unified` key (fs2's setUnified): a file name, of the
/// form CONTROLLER.PARAMETER, of a controller in `available` (the hierarchy's
/// cgroup.controllers) or a `cgroup.*` file. Err is the reason.
pub fn check_unified_key(key: &str, available: &[&str]) -> std::result::Result<(), String> {
    if key.contains('/') {
        // "../pids.max" would be the parent's file.
        return Err("must be a file name (no slashes)".into());
    }
    let Some((controller, _)) = key.split_once('.').filter(|(c, p)| !c.is_empty() && !p.is_empty()) else {
        return Err("must be in the form CONTROLLER.PARAMETER".into());
    };
    if controller != "cgroup" && !available.contains(&controller) {
        return Err(format!("can't be set: controller {controller:?} not available"));
    }
    Ok(())
}

/// `linux.resources.unified`, checked before anything is written. runc refuses any key when
/// /sys/fs/cgroup is not cgroup2 (v1 or hybrid: "cannot use unified on cgroup v1"), even for a
/// controller that only the hybrid unified mount has; an empty map is fine. On v2 each key must
/// pass [`check_unified_key`] and, if its controller is enabled in the container's cgroup, name
/// a file that exists there.
fn check_unified(res: &LinuxResources, dirs: &Dirs) -> Result<()> {
    let mut keys: Vec<&String> = res.unified().iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    let Some(first) = keys.first() else { return Ok(()) };
    let source = |k: &str| format!("linux.resources.unified[{k:?}]");
    let (h, dir) = match dirs.v2_only() {
        Some(u) => u,
        None => {
            return Err(Error::msg(format!(
                "{}: cannot use unified on cgroup v1 (this host mounts cgroup v1 hierarchies)",
                source(first)
            )))
        }
    };
    let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let available = read(h.mount_point.join("cgroup.controllers"));
    let available: Vec<&str> = available.split_whitespace().collect();
    let enabled = read(dir.join("cgroup.controllers"));
    for k in keys {
        check_unified_key(k, &available).map_err(|why| Error::msg(format!("{}: {why}", source(k))))?;
        let controller = k.split('.').next().unwrap_or("");
        let ready = controller == "cgroup" || enabled.split_whitespace().any(|c| c == controller);
        if ready && !dir.join(k).exists() {
            return Err(Error::msg(format!("{}: no such file in {}", source(k), dir.display())));
        }
    }
    Ok(())
}

/// What [`apply`] checks before it writes anything: the unified keys, rdma, the device rules
/// (and their eBPF program where one would be made). The systemd driver calls it before it
/// changes the unit, so a refused update changes nothing there either.
pub fn check(res: &LinuxResources, nodes: &[Rule], dirs: &Dirs) -> Result<()> {
    check_unified(res, dirs)?;
    check_rdma(res, dirs)?;
    let device_rules = devices::rules(res, nodes)?;
    if !device_rules.is_empty() && dirs.v1("devices").is_none() && dirs.unified().is_some() {
        devices::program(&device_rules)?;
    }
    Ok(())
}

/// Writes the plan into the container's cgroups. `nodes` are the rules for the container's
/// device nodes; `dirs` are the container's directories.
pub fn apply(res: &LinuxResources, nodes: &[Rule], dirs: &Dirs) -> Result<()> {
    check_unified(res, dirs)?;
    check_rdma(res, dirs)?;
    let device_rules = devices::rules(res, nodes)?;
    let v1 = plan_v1(res, &device_rules);
    let v2 = plan_v2(res);
    let unified = dirs.unified().map(|(_, dir)| dir);
    let device_prog = if !device_rules.is_empty() && dirs.v1("devices").is_none() && unified.is_some() {
        Some(devices::program(&device_rules)?)
    } else {
        None
    };
    // A shared v1 devices cgroup that already holds exactly these rules is left as it is: the
    // deny-all that starts them would otherwise, for a moment, refuse another container of the
    // same cgroup the mknod of its device nodes (runc's devices emulator skips it likewise)
    let devices_in_place = dirs.v1("devices").is_some_and(|d| devices_in_place(d, &v1));
    // Controllers handled by a v1 hierarchy take the v1 plan; the rest go to the unified one.
    for set in v1.iter() {
        if set.controller == "devices" && devices_in_place {
            continue;
        }
        if let Some(dir) = dirs.v1(set.controller) {
            write_one(dir, set)?;
        }
    }
    let v1_controllers =
        ["memory", "cpu", "cpuset", "pids", "blkio", "hugetlb", "net_cls", "net_prio", "devices", "rdma"];
    for set in v2.iter() {
        let v1_name = if set.controller == "io" { "blkio" } else { set.controller };
        if dirs.v1(v1_name).is_some() {
            continue;
        }
        match unified {
            Some(dir) => {
                enable_controller(dir, set.controller)?;
                write_one(dir, set)?;
            }
            None => return Err(Error::msg(format!("{}: no {} controller on this host", set.source, set.controller))),
        }
    }
    // No v1 devices controller: the same ordered rules become an eBPF program on the unified
    // cgroup, as runc does on v2 (compiled before any file is written: a bad rule changes nothing).
    if let (Some(insns), Some(dir)) = (&device_prog, unified) {
        devices::attach(insns, dir).map_err(|e| Error::msg(format!("linux.resources.devices: {e}")))?;
    }
    // A v1-only setting whose controller is not mounted at all (net_cls here) is an error, as in runc.
    for set in v1.iter().filter(|s| dirs.v1(s.controller).is_none()) {
        // With a unified hierarchy the v2 plan above carried it (or said why not); only the
        // v1-only network controllers have no v2 home.
        if unified.is_some() && !["net_cls", "net_prio"].contains(&set.controller) {
            continue;
        }
        let in_v2 = v2.iter().any(|x| x.source == set.source);
        if !in_v2 && v1_controllers.contains(&set.controller) {
            return Err(Error::msg(format!("{}: no {} cgroup on this host", set.source, set.controller)));
        }
    }
    Ok(())
}

/// Whether the v1 devices cgroup at `dir` lists exactly what the plan's device rules would
/// leave: they start with a deny of everything, and the rest are allows, so the kernel's list
/// after them is those allows.
fn devices_in_place(dir: &Path, plan: &[Setting]) -> bool {
    let rules: Vec<&Setting> = plan.iter().filter(|s| s.controller == "devices").collect();
    let Some((first, allows)) = rules.split_first() else { return false };
    if first.file != "devices.deny" || first.value != "a *:* rwm" || allows.iter().any(|s| s.file != "devices.allow") {
        return false;
    }
    let Ok(list) = std::fs::read_to_string(dir.join("devices.list")) else { return false };
    let have: std::collections::BTreeSet<&str> = list.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let want: std::collections::BTreeSet<&str> = allows.iter().map(|s| s.value.as_str()).collect();
    have == want
}

fn write_one(dir: &Path, set: &Setting) -> Result<()> {
    let path = dir.join(&set.file);
    // A cgroupfs file that is not there cannot be made (the write fails with EACCES): the kernel
    // lacks the feature, and the message says so instead of "Permission denied".
    if !path.exists() {
        if set.file.ends_with(RSVD_V1) || set.file.ends_with(RSVD_V2) {
            return Ok(());
        }
        if let Some((file, value)) = set.fallback.as_ref().filter(|(alt, _)| dir.join(alt).exists()) {
            let alt = Setting { file: file.clone(), value: value.clone(), fallback: None, ..set.clone() };
            return write_one(dir, &alt);
        }
        let tried = match &set.fallback {
            Some((alt, _)) => format!("no {} or {alt} in {}", set.file, dir.display()),
            None => format!("no {}", path.display()),
        };
        let why = if set.file.contains(".bfq.") { ": the kernel has no BFQ I/O scheduler" } else { "" };
        return Err(Error::msg(format!("{}: this host's kernel cannot set it ({tried}){why}", set.source)));
    }
    let err =
        |e: std::io::Error| Error::msg(format!("{}: write {:?} to {}: {e}", set.source, set.value, path.display()));
    match std::fs::write(&path, &set.value) {
        // Linux 5.16+ takes kmem limits and does nothing with them: read back, and refuse what
        // the kernel did not keep (a limit is kept rounded down to whole pages).
        Ok(()) if set.file.starts_with("memory.kmem.") => {
            let asked: i64 = set.value.parse().unwrap_or(-1);
            let kept: i64 = std::fs::read_to_string(&path).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(-1);
            if asked >= 0 && kept != asked - asked % 4096 {
                return Err(Error::msg(format!(
                    "{}: this host's kernel ignores kernel memory limits (it kept {kept} in {}; Linux 5.16 deprecated them)",
                    set.source,
                    path.display()
                )));
            }
            Ok(())
        }
        Ok(()) => Ok(()),
        // memory.limit above memsw (or memsw below the limit) is refused: lift the other bound
        // first, then write again; the next setting of the pair puts it where the config wants.
        Err(_) if set.file == "memory.memsw.limit_in_bytes" || set.file == "memory.limit_in_bytes" => {
            let other = if set.file == "memory.limit_in_bytes" {
                "memory.memsw.limit_in_bytes"
            } else {
                "memory.limit_in_bytes"
            };
            let _ = std::fs::write(dir.join(other), "-1");
            std::fs::write(&path, &set.value).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// Makes `controller` available in `dir` on v2 by enabling it in each ancestor's
/// cgroup.subtree_control (the root of the hierarchy included).
fn enable_controller(dir: &Path, controller: &str) -> Result<()> {
    if controller.is_empty() {
        return Ok(());
    }
    let mut ancestors: Vec<&Path> =
        dir.ancestors().skip(1).take_while(|p| p.join("cgroup.subtree_control").exists()).collect();
    ancestors.reverse();
    for a in ancestors {
        let file = a.join("cgroup.subtree_control");
        let current = std::fs::read_to_string(&file).unwrap_or_default();
        if current.split_whitespace().any(|c| c == controller) {
            continue;
        }
        std::fs::write(&file, format!("+{controller}"))
            .map_err(|e| Error::msg(format!("enable {controller} in {}: {e}", file.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn v1_plan_follows_runc() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152, "swappiness": 10},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
            "pids": {"limit": 0},
            "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]
        }));
        let plan = plan_v1(&r, &devices::rules(&r, &[]).unwrap());
        let find = |f: &str| plan.iter().find(|s| s.file == f).map(|s| s.value.clone());
        assert_eq!(find("memory.limit_in_bytes").as_deref(), Some("1048576"));
        assert_eq!(find("memory.memsw.limit_in_bytes").as_deref(), Some("2097152"));
        assert_eq!(find("pids.max").as_deref(), Some("max"), "0 means unlimited");
        let period = plan.iter().position(|s| s.file == "cpu.cfs_period_us").unwrap();
        let quota = plan.iter().position(|s| s.file == "cpu.cfs_quota_us").unwrap();
        assert!(period < quota, "period before quota");
        let devs: Vec<_> = plan.iter().filter(|s| s.controller == "devices").map(|s| s.value.as_str()).collect();
        assert_eq!(devs[0], "a *:* rwm", "deny-all first, in config order");
        assert_eq!(devs[1], "c 10:229 rw");
        assert!(devs.contains(&"c 1:3 rwm"), "runc's defaults keep /dev/null usable");
    }

    #[test]
    fn throttles_and_hugepages_land_in_each_versions_files() {
        // runc's fs blkio.throttle.* files and fs2 io.max lines; hugetlb usage and reservation
        // limits, with v2's "max" for no limit.
        let r = res(serde_json::json!({
            "blockIO": {
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 5}]
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": -1}]
        }));
        let files = |plan: Vec<Setting>| -> Vec<(String, String, String)> {
            plan.into_iter()
                .map(|s| (s.file, s.value, s.source.trim_start_matches("linux.resources.").into()))
                .collect()
        };
        let row = |f: &str, v: &str, src: &str| (f.to_string(), v.to_string(), src.to_string());
        assert_eq!(
            files(plan_v1(&r, &[])),
            [
                row("blkio.throttle.read_bps_device", "8:0 100", "blockIO.throttleReadBpsDevice[0]"),
                row("blkio.throttle.write_iops_device", "8:16 5", "blockIO.throttleWriteIOPSDevice[0]"),
                row("hugetlb.2MB.limit_in_bytes", "-1", "hugepageLimits[0]"),
                row("hugetlb.2MB.rsvd.limit_in_bytes", "-1", "hugepageLimits[0]"),
            ]
        );
        assert_eq!(
            files(plan_v2(&r)),
            [
                row("io.max", "8:0 rbps=100", "blockIO.throttleReadBpsDevice[0]"),
                row("io.max", "8:16 wiops=5", "blockIO.throttleWriteIOPSDevice[0]"),
                row("hugetlb.2MB.max", "max", "hugepageLimits[0]"),
                row("hugetlb.2MB.rsvd.max", "max", "hugepageLimits[0]"),
            ]
        );
    }

    #[test]
    fn blkio_weight_zero_is_unset() {
        // runc writes blkio.weight only when it is not 0; dockerd sends {"weight": 0} for every
        // container, and blkio.weight is not writable on every host
        let r = res(serde_json::json!({"blockIO": {"weight": 0, "leafWeight": 0}}));
        assert_eq!(plan_v1(&r, &[]), vec![]);
        assert_eq!(plan_v2(&r), vec![]);
    }

    #[test]
    fn unified_keys_are_checked_like_runc() {
        // runc's fs2 setUnified: file names only, CONTROLLER.PARAMETER, a controller the host
        // has; cgroup.* files need no controller.
        let have = ["memory", "pids"];
        for ok in ["pids.max", "memory.high", "cgroup.max.depth"] {
            assert_eq!(check_unified_key(ok, &have), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("../pids.max", "no slashes"),
            ("pids/../../x.y", "no slashes"),
            ("pidsmax", "CONTROLLER.PARAMETER"),
            (".max", "CONTROLLER.PARAMETER"),
            ("pids.", "CONTROLLER.PARAMETER"),
            ("io.weight", "controller \"io\" not available"),
            ("foo.bar", "controller \"foo\" not available"),
        ] {
            let err = check_unified_key(bad, &have).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn v2_plan_converts_like_runc() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1000, "swap": 3000},
            "cpu": {"shares": 1024, "quota": 20000},
            "blockIO": {"weight": 500}
        }));
        let plan = plan_v2(&r);
        let find = |f: &str| plan.iter().find(|s| s.file == f).map(|s| s.value.clone());
        assert_eq!(find("memory.swap.max").as_deref(), Some("2000"), "v2 swap excludes memory");
        assert_eq!(find("cpu.weight").as_deref(), Some("39"), "runc maps shares 1024 to weight 39");
        assert_eq!(find("cpu.max").as_deref(), Some("20000"), "no period: the kernel keeps its own");
        assert_eq!(find("io.bfq.weight").as_deref(), Some("500"));
        let weight = plan.iter().find(|s| s.file == "io.bfq.weight").unwrap();
        assert_eq!(weight.fallback, Some(("io.weight".to_string(), "4950".to_string())), "runc: 1 + 490 * 9999 / 990");
    }

    #[test]
    fn rdma_lines_carry_only_the_given_limits_like_runc() {
        // runc's createCmdString: the device, then hca_handle and hca_object when set; the same
        // rdma.max line on v1 and v2, one per device in name order.
        let r = res(serde_json::json!({"rdma": {
            "rxe0": {"hcaHandles": 3, "hcaObjects": 100},
            "mlx5_1": {"hcaObjects": 7},
            "mlx5_0": {"hcaHandles": 0},
            "bare": {}
        }}));
        let want = [
            ("bare", r#"rdma["bare"]"#),
            ("mlx5_0 hca_handle=0", r#"rdma["mlx5_0"]"#),
            ("mlx5_1 hca_object=7", r#"rdma["mlx5_1"]"#),
            ("rxe0 hca_handle=3 hca_object=100", r#"rdma["rxe0"]"#),
        ];
        for plan in [plan_v1(&r, &[]), plan_v2(&r)] {
            let got: Vec<_> = plan
                .iter()
                .map(|s| {
                    (s.controller, s.file.as_str(), s.value.as_str(), s.source.trim_start_matches("linux.resources."))
                })
                .collect();
            let want: Vec<_> = want.iter().map(|(v, src)| ("rdma", "rdma.max", *v, *src)).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn blkio_weight_converts_to_io_weight_like_runc() {
        // runc's ConvertBlkIOToIOWeightValue maps the ends of [10, 1000] to those of [1, 10000].
        for (blkio, io) in [(10, 1), (100, 910), (500, 4950), (1000, 10000)] {
            assert_eq!(io_weight(blkio), io, "{blkio}");
        }
    }
}
