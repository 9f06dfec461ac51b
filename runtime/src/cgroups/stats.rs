//! A container's resource usage, read from its cgroup files (v1, v2, or the mix of a hybrid
//! host) into the shape `runc events` prints (runc 1.1's `types.Stats`: the same field names and
//! the same omitted-when-zero fields). Reading only: nothing here writes to a cgroup.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::hierarchy::Dirs;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq, Clone)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// skiff has no Intel RDT support: always empty, as runc prints it without RDT.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct IntelRdt {}

/// runc's field names (Go's, not renamed).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The v2 directory when `probe` (a file of the controller) exists there.
fn v2_with<'a>(dirs: &'a Dirs, probe: &str) -> Option<&'a Path> {
    dirs.unified().map(|(_, d)| d).filter(|d| d.join(probe).exists())
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// A number, with v2's "max" (and v1's huge "unlimited" values) read as u64::MAX.
fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file).map(|s| parse_num(s.trim())).unwrap_or(0)
}

fn parse_num(s: &str) -> u64 {
    if s == "max" {
        return u64::MAX;
    }
    s.parse().unwrap_or(0)
}

/// "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
pub fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// A cpuset list ("0-3,5") as the numbers in it.
pub fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// Every statistic skiff can read for a container whose cgroup directories are `dirs`, and
/// the network interfaces of `netns_pid` (the init, when it has its own network namespace).
pub fn read_all(dirs: &Dirs, netns_pid: Option<i32>) -> Stats {
    let mut st = Stats::default();
    if let Some(d) = dirs.v1("cpuacct") {
        cpu_v1(d, dirs.v1("cpu"), &mut st.cpu);
    } else if let Some(d) = v2_with(dirs, "cpu.stat") {
        cpu_v2(d, &mut st.cpu);
    }
    if let Some(d) = dirs.v1("cpuset") {
        cpuset_v1(d, &mut st.cpuset);
    } else if let Some(d) = v2_with(dirs, "cpuset.cpus.effective") {
        st.cpuset.cpus = parse_list(&read(d, "cpuset.cpus.effective").unwrap_or_default());
        st.cpuset.mems = parse_list(&read(d, "cpuset.mems.effective").unwrap_or_default());
    }
    if let Some(d) = dirs.v1("memory") {
        memory_v1(d, &mut st.memory);
    } else if let Some(d) = v2_with(dirs, "memory.current") {
        memory_v2(d, &mut st.memory);
    }
    if let Some(d) = dirs.v1("pids").or_else(|| v2_with(dirs, "pids.current")) {
        st.pids.current = num(d, "pids.current");
        // "max" means no limit, which runc reports as 0.
        st.pids.limit = match num(d, "pids.max") {
            u64::MAX => 0,
            n => n,
        };
    }
    if let Some(d) = dirs.v1("blkio") {
        blkio_v1(d, &mut st.blkio);
    } else if let Some(d) = v2_with(dirs, "io.stat") {
        blkio_v2(&read(d, "io.stat").unwrap_or_default(), &mut st.blkio);
    }
    if let Some(d) = dirs.v1("hugetlb") {
        st.hugetlb = hugetlb(d, true);
    } else if let Some((_, d)) = dirs.unified() {
        st.hugetlb = hugetlb(d, false);
    }
    st.network_interfaces = netns_pid.map(|pid| {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
        parse_net_dev(&text)
    });
    st
}

fn cpu_v1(acct: &Path, cpu: Option<&Path>, out: &mut Cpu) {
    out.usage.total = num(acct, "cpuacct.usage");
    let per = |file: &str| -> Vec<u64> {
        read(acct, file).map(|s| s.split_whitespace().filter_map(|n| n.parse().ok()).collect()).unwrap_or_default()
    };
    out.usage.percpu = per("cpuacct.usage_percpu");
    out.usage.percpu_kernel = per("cpuacct.usage_percpu_sys");
    out.usage.percpu_user = per("cpuacct.usage_percpu_user");
    // cpuacct.stat counts USER_HZ ticks (100 per second on Linux).
    let ticks = key_values(&read(acct, "cpuacct.stat").unwrap_or_default());
    let ns = |k: &str| ticks.get(k).copied().unwrap_or(0) * (1_000_000_000 / 100);
    out.usage.user = ns("user");
    out.usage.kernel = ns("system");
    if let Some(c) = cpu {
        let t = key_values(&read(c, "cpu.stat").unwrap_or_default());
        out.throttling.periods = t.get("nr_periods").copied().unwrap_or(0);
        out.throttling.throttled_periods = t.get("nr_throttled").copied().unwrap_or(0);
        out.throttling.throttled_time = t.get("throttled_time").copied().unwrap_or(0);
    }
}

/// v2's cpu.stat counts microseconds; runc reports nanoseconds.
fn cpu_v2(dir: &Path, out: &mut Cpu) {
    let t = key_values(&read(dir, "cpu.stat").unwrap_or_default());
    let get = |k: &str| t.get(k).copied().unwrap_or(0);
    out.usage.total = get("usage_usec") * 1000;
    out.usage.user = get("user_usec") * 1000;
    out.usage.kernel = get("system_usec") * 1000;
    out.throttling.periods = get("nr_periods");
    out.throttling.throttled_periods = get("nr_throttled");
    out.throttling.throttled_time = get("throttled_usec") * 1000;
}

fn cpuset_v1(dir: &Path, out: &mut CpuSet) {
    out.cpus = parse_list(&read(dir, "cpuset.cpus").unwrap_or_default());
    out.mems = parse_list(&read(dir, "cpuset.mems").unwrap_or_default());
    out.cpu_exclusive = num(dir, "cpuset.cpu_exclusive");
    out.mem_hardwall = num(dir, "cpuset.mem_hardwall");
    out.mem_exclusive = num(dir, "cpuset.mem_exclusive");
    out.memory_migrate = num(dir, "cpuset.memory_migrate");
    out.memory_spread_page = num(dir, "cpuset.memory_spread_page");
    out.memory_spread_slab = num(dir, "cpuset.memory_spread_slab");
    out.memory_pressure = num(dir, "cpuset.memory_pressure");
    out.sched_load_balance = num(dir, "cpuset.sched_load_balance");
    out.sched_relax_domain_level =
        read(dir, "cpuset.sched_relax_domain_level").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
}

fn memory_v1(dir: &Path, out: &mut Memory) {
    out.raw = key_values(&read(dir, "memory.stat").unwrap_or_default());
    out.cache = out.raw.get("cache").copied().unwrap_or(0);
    let entry = |prefix: &str| MemoryEntry {
        limit: num(dir, &format!("{prefix}.limit_in_bytes")),
        usage: num(dir, &format!("{prefix}.usage_in_bytes")),
        max: num(dir, &format!("{prefix}.max_usage_in_bytes")),
        failcnt: num(dir, &format!("{prefix}.failcnt")),
    };
    out.usage = entry("memory");
    out.swap = entry("memory.memsw");
    out.kernel = entry("memory.kmem");
    out.kernel_tcp = entry("memory.kmem.tcp");
}

/// runc's v2 reading: usage from memory.current/max/peak; swap reported as memory+swap (v1's
/// memsw), with no max; cache is memory.stat's `file`.
fn memory_v2(dir: &Path, out: &mut Memory) {
    out.raw = key_values(&read(dir, "memory.stat").unwrap_or_default());
    out.cache = out.raw.get("file").copied().unwrap_or(0);
    out.usage = MemoryEntry {
        limit: num(dir, "memory.max"),
        usage: num(dir, "memory.current"),
        max: num(dir, "memory.peak"),
        failcnt: 0,
    };
    if dir.join("memory.swap.current").exists() {
        let limit = num(dir, "memory.swap.max");
        out.swap = MemoryEntry {
            limit: if limit == u64::MAX { limit } else { limit.saturating_add(out.usage.limit) },
            usage: num(dir, "memory.swap.current") + out.usage.usage,
            max: 0,
            failcnt: 0,
        };
    }
}

/// v1 blkio: the CFQ/BFQ files when they have data, else the throttle ones (as runc does).
fn blkio_v1(dir: &Path, out: &mut Blkio) {
    let list = |names: &[&str]| -> Vec<BlkioEntry> {
        for name in names {
            let entries = parse_blkio_v1(&read(dir, name).unwrap_or_default());
            if !entries.is_empty() {
                return entries;
            }
        }
        Vec::new()
    };
    out.io_service_bytes_recursive = list(&[
        "blkio.io_service_bytes_recursive",
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    ]);
    out.io_serviced_recursive = list(&[
        "blkio.io_serviced_recursive",
        "blkio.bfq.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    ]);
    out.io_queued_recursive = list(&["blkio.io_queued_recursive"]);
    out.io_service_time_recursive = list(&["blkio.io_service_time_recursive"]);
    out.io_wait_time_recursive = list(&["blkio.io_wait_time_recursive"]);
    out.io_merged_recursive = list(&["blkio.io_merged_recursive"]);
    out.io_time_recursive = list(&["blkio.time_recursive"]);
    out.sectors_recursive = list(&["blkio.sectors_recursive"]);
}

/// "MAJ:MIN Op VALUE" lines (or "MAJ:MIN VALUE"); the "Total N" line is dropped.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some((maj, min)) = f.first().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else { continue };
        let (op, value) = match f.len() {
            3 => (f[1].to_string(), f[2]),
            2 => (String::new(), f[1]),
            _ => continue,
        };
        out.push(BlkioEntry { major, minor, op, value: value.parse().unwrap_or(0) });
    }
    out
}

/// io.stat ("MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...") as runc maps it: bytes to
/// ioServiceBytesRecursive, ios to ioServicedRecursive, ops Read and Write.
pub fn blkio_v2(text: &str, out: &mut Blkio) {
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else { continue };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let value = v.parse().unwrap_or(0);
            let (list, op) = match k {
                "rbytes" => (&mut out.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut out.io_service_bytes_recursive, "Write"),
                "rios" => (&mut out.io_serviced_recursive, "Read"),
                "wios" => (&mut out.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry { major, minor, op: op.to_string(), value });
        }
    }
}

/// Per page size ("2MB", "1GB"): v1 usage_in_bytes/max_usage_in_bytes/failcnt, v2 current and
/// the `max` counter of hugetlb.SIZE.events as the fail count.
fn hugetlb(dir: &Path, v1: bool) -> BTreeMap<String, Hugetlb> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let suffix = if v1 { ".usage_in_bytes" } else { ".current" };
        let Some(size) = name.strip_prefix("hugetlb.").and_then(|n| n.strip_suffix(suffix)) else { continue };
        if size.contains('.') {
            // hugetlb.2MB.rsvd.current and friends.
            continue;
        }
        let h = if v1 {
            Hugetlb {
                usage: num(dir, &name),
                max: num(dir, &format!("hugetlb.{size}.max_usage_in_bytes")),
                failcnt: num(dir, &format!("hugetlb.{size}.failcnt")),
            }
        } else {
            let events = key_values(&read(dir, &format!("hugetlb.{size}.events")).unwrap_or_default());
            Hugetlb { usage: num(dir, &name), max: 0, failcnt: events.get("max").copied().unwrap_or(0) }
        };
        out.insert(size.to_string(), h);
    }
    out
}

/// /proc/PID/net/dev: two header lines, then "name: rx_bytes rx_packets rx_errs rx_drop
/// fifo frame compressed multicast tx_bytes tx_packets tx_errs tx_drop ...".
pub fn parse_net_dev(text: &str) -> Vec<NetworkInterface> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            (n.len() >= 12).then(|| NetworkInterface {
                name: name.trim().to_string(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists() {
        // The kernel's list format: ranges and singles, comma separated.
        assert_eq!(parse_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
    }

    #[test]
    fn blkio_v1_lines_skip_the_total() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].major, e[0].minor, e[0].op.as_str(), e[0].value), (8, 0, "Read", 4096));
    }

    #[test]
    fn io_stat_maps_like_runc() {
        let mut b = Blkio::default();
        blkio_v2("254:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n", &mut b);
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(b.io_service_bytes_recursive[1].op, "Write");
        assert_eq!(b.io_service_bytes_recursive[1].value, 200);
        assert_eq!(b.io_serviced_recursive[0].value, 1);
    }

    #[test]
    fn net_dev_columns() {
        let text = "Inter-|   Receive  |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0\n";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        assert_eq!((n[0].name.as_str(), n[0].rx_bytes, n[0].tx_packets), ("lo", 140, 2));
    }

    #[test]
    fn serializes_with_runc_field_names() {
        // runc 1.1 always prints cpu.usage.kernel/user, memory.usage.limit/failcnt, the
        // intel_rdt object and network_interfaces (null without interfaces).
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(v["cpu"]["usage"], serde_json::json!({"kernel": 0, "user": 0}));
        assert_eq!(v["memory"]["kernelTCP"], serde_json::json!({"limit": 0, "failcnt": 0}));
        assert_eq!(v["intel_rdt"], serde_json::json!({}));
        assert!(v["network_interfaces"].is_null());
        assert_eq!(v["cpuset"]["sched_relax_domain_level"], 0);
        let mut s = Stats::default();
        s.cpu.throttling.throttled_periods = 3;
        s.blkio.io_queued_recursive.push(BlkioEntry { major: 8, ..Default::default() });
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(v["cpu"]["throttling"]["throttledPeriods"], 3);
        assert_eq!(v["blkio"]["ioQueueRecursive"][0]["major"], 8);
    }
}
