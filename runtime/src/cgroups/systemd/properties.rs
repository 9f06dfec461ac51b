//! `linux.resources` as systemd unit properties (systemd.resource-control(5)), as plain data:
//! which property, which value, from which JSON path. Only what systemd has a property for;
//! everything (these too) is also written to the cgroup files afterwards by resources.rs, as runc
//! does, so the kernel gets exactly the config's values and systemd keeps the same limits when it
//! re-applies its own (daemon-reload, SetUnitProperties by someone else). The conversions are
//! runc's (libcontainer/cgroups/systemd/{common,v1,v2}.go); where runc drops a value systemd
//! would later undo, the comment says so.

use oci_spec::runtime::LinuxResources;

use crate::cgroups::resources::io_weight;
use crate::error::{Error, Result};

/// systemd's USEC_INFINITY / CGROUP_LIMIT_MAX: "infinity".
pub const INFINITY: u64 = u64::MAX;

/// The period systemd assumes without CPUQuotaPeriodUSec (and the kernel's default).
const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// A property value, in the D-Bus types systemd expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `ay`: a CPU or NUMA node mask, bit N of byte N/8 for CPU N.
    Bits(Vec<u8>),
    /// `a(st)`: device path and limit (IO*BandwidthMax, IO*IOPSMax).
    DeviceLimits(Vec<(String, u64)>),
    /// `au`: process ids (PIDs).
    Pids(Vec<u32>),
    /// The other scalar types an `org.systemd.property.*` annotation may give (see
    /// annotations.rs): `y`, `n`, `q`, `i`, `u`, `x`, and `d` (kept as its bits, so Value is Eq).
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    Double(u64),
    /// `as`
    StrList(Vec<String>),
}

/// One unit property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// skiff's names are static; an annotation's comes from config.json.
    pub name: std::borrow::Cow<'static, str>,
    pub value: Value,
    /// Where in config.json it came from.
    pub source: String,
}

pub fn prop(name: &'static str, value: Value, source: &str) -> Property {
    Property { name: name.into(), value, source: format!("linux.resources.{source}") }
}

/// A byte count or -1 ("unlimited"), as the spec's memory fields hold them.
fn bytes(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// The properties for `res` on a host with cgroup v2 (`unified`) or v1, for systemd `version`
/// (properties newer than the running systemd are left to the cgroup files, as runc leaves
/// them). `block_device` turns a major:minor into the whole-disk device path systemd wants for
/// the IO limits (None: not a whole disk on this host; see [`io_limits`]).
pub fn plan(
    res: &LinuxResources,
    unified: bool,
    version: u32,
    block_device: &dyn Fn(i64, i64) -> Option<String>,
) -> Result<Vec<Property>> {
    let mut out = Vec::new();
    if let Some(m) = res.memory() {
        if let Some(v) = m.limit().filter(|v| *v != 0) {
            let name = if unified { "MemoryMax" } else { "MemoryLimit" };
            out.push(prop(name, Value::U64(bytes(v)), "memory.limit"));
        }
        if unified {
            if let Some(v) = m.reservation().filter(|v| *v != 0) {
                out.push(prop("MemoryLow", Value::U64(bytes(v)), "memory.reservation"));
            }
            // v1's swap is memory+swap, v2's swap alone (the same conversion as the file).
            // runc leaves out a converted 0 (swap == limit: no swap); systemd would then put
            // memory.swap.max back to "max" at its next re-apply, so 0 is sent too.
            if let Some(v) = m.swap() {
                let swap = match (v, m.limit()) {
                    (v, _) if v < 0 => INFINITY,
                    (v, Some(l)) if l >= 0 => (v - l).max(0) as u64,
                    (v, _) => v as u64,
                };
                out.push(prop("MemorySwapMax", Value::U64(swap), "memory.swap"));
            }
        }
    }
    if let Some(c) = res.cpu() {
        let idle = unified && c.idle() == Some(1) && version >= 252;
        if idle {
            // CPUWeight=0 is systemd's way to set cpu.idle to 1 (v252+).
            out.push(prop("CPUWeight", Value::U64(0), "cpu.idle"));
        }
        if let Some(v) = c.shares().filter(|v| *v != 0) {
            if !unified {
                out.push(prop("CPUShares", Value::U64(v), "cpu.shares"));
            } else if !idle {
                // runc's ConvertCPUSharesToCgroupV2Value, as the cpu.weight file gets it.
                let weight = 1 + ((v.clamp(2, 262_144) - 2) * 9999) / 262_142;
                out.push(prop("CPUWeight", Value::U64(weight), "cpu.shares"));
            }
        }
        out.extend(cpu_quota(c.quota().unwrap_or(0), c.period().unwrap_or(0), version, "cpu.quota"));
        if version >= 244 {
            if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
                out.push(prop("AllowedCPUs", Value::Bits(range_to_bits(v, "cpu.cpus")?), "cpu.cpus"));
            }
            if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
                out.push(prop("AllowedMemoryNodes", Value::Bits(range_to_bits(v, "cpu.mems")?), "cpu.mems"));
            }
        }
    }
    if let Some(p) = res.pids() {
        // The file gets "max" for 0 and below (skiff's and runc 1.1's reading); systemd's
        // infinity says the same. (runc 1.3 sends 1 for 0: systemd refuses TasksMax=0.)
        let v = if p.limit() > 0 { p.limit() as u64 } else { INFINITY };
        out.push(prop("TasksMax", Value::U64(v), "pids.limit"));
    }
    if let Some(b) = res.block_io() {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            // runc sets BlockIOWeight on v1 and nothing on v2; IOWeight is the v2 property, in
            // io.weight's range (the file plan's conversion).
            let (name, value) = if unified { ("IOWeight", io_weight(w) as u64) } else { ("BlockIOWeight", w as u64) };
            out.push(prop(name, Value::U64(value), "blockIO.weight"));
        }
        if unified {
            out.extend(io_limits(res, block_device));
        }
    }
    if unified {
        out.extend(unified_props(res, version)?);
    }
    Ok(out)
}

/// CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec from systemd v242), runc's addCPUQuota: a quota
/// without a period assumes the default period; no quota (0 or -1) with a period is infinity.
/// systemd keeps the quota as a whole percentage of a CPU, so a fraction is rounded up to the
/// next 10 ms per second, as runc does (the file keeps the config's exact value).
fn cpu_quota(quota: i64, period: u64, version: u32, source: &str) -> Vec<Property> {
    let mut out = Vec::new();
    if period != 0 && version >= 242 {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period), source));
    }
    if quota != 0 || period != 0 {
        let per_sec = if quota > 0 {
            let period = if period == 0 { DEFAULT_CPU_PERIOD } else { period };
            let v = (quota as u64).saturating_mul(1_000_000) / period;
            v.div_ceil(10_000) * 10_000
        } else {
            INFINITY
        };
        out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec), source));
    }
    out
}

/// The blkio throttles as IO{Read,Write}{Bandwidth,IOPS}Max. systemd takes a device path and
/// applies the limit to the whole disk the path is on; for a partition that is another device
/// than the config names (youki sends the partition's path and so limits the disk), so only
/// whole disks get the property; a partition's limit is in io.max alone.
fn io_limits(res: &LinuxResources, block_device: &dyn Fn(i64, i64) -> Option<String>) -> Vec<Property> {
    let Some(b) = res.block_io() else { return Vec::new() };
    let lists = [
        ("IOReadBandwidthMax", "throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("IOWriteBandwidthMax", "throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("IOReadIOPSMax", "throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("IOWriteIOPSMax", "throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    let mut out = Vec::new();
    for (name, field, list) in lists {
        let limits: Vec<(String, u64)> =
            list.iter().flatten().filter_map(|d| Some((block_device(d.major(), d.minor())?, d.rate()))).collect();
        if !limits.is_empty() {
            out.push(prop(name, Value::DeviceLimits(limits), &format!("blockIO.{field}")));
        }
    }
    out
}

/// `linux.resources.unified` keys systemd has a property for (runc's unifiedResToSystemdProps);
/// the rest go to their files only. Sorted by key: the map has no order.
fn unified_props(res: &LinuxResources, version: u32) -> Result<Vec<Property>> {
    let Some(map) = res.unified() else { return Ok(Vec::new()) };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let idle = map.get("cpu.idle").is_some_and(|v| v.trim() == "1") && version >= 252;
    let mut out = Vec::new();
    for k in keys {
        let v = map[k].trim();
        let source = format!("unified[{k:?}]");
        let bad = |why: String| Error::msg(format!("linux.resources.{source}: {why}"));
        let number = |v: &str| -> Result<u64> {
            if v == "max" {
                return Ok(INFINITY);
            }
            v.parse::<u64>().map_err(|_| bad(format!("{v:?} is not a number or \"max\"")))
        };
        match k.as_str() {
            "cpu.idle" if idle => out.push(prop("CPUWeight", Value::U64(0), &source)),
            "cpu.weight" if !idle => out.push(prop("CPUWeight", Value::U64(number(v)?), &source)),
            "cpu.max" => {
                let mut f = v.split_whitespace();
                let (q, p) = (f.next(), f.next());
                if q.is_none() || f.next().is_some() {
                    return Err(bad(format!("{v:?} is not \"QUOTA [PERIOD]\"")));
                }
                let quota = match q {
                    Some("max") | None => 0,
                    Some(q) => q.parse::<i64>().map_err(|_| bad(format!("quota {q:?} is not a number")))?,
                };
                let period = match p {
                    Some(p) => p.parse::<u64>().map_err(|_| bad(format!("period {p:?} is not a number")))?,
                    None => DEFAULT_CPU_PERIOD,
                };
                out.extend(cpu_quota(quota, period, version, &source));
            }
            "cpuset.cpus" | "cpuset.mems" if version >= 244 => {
                let name = if k == "cpuset.cpus" { "AllowedCPUs" } else { "AllowedMemoryNodes" };
                out.push(prop(name, Value::Bits(range_to_bits(v, &source)?), &source));
            }
            "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
                let name = match k.as_str() {
                    "memory.high" => "MemoryHigh",
                    "memory.low" => "MemoryLow",
                    "memory.min" => "MemoryMin",
                    "memory.max" => "MemoryMax",
                    _ => "MemorySwapMax",
                };
                out.push(prop(name, Value::U64(number(v)?), &source));
            }
            "pids.max" => out.push(prop("TasksMax", Value::U64(number(v)?), &source)),
            _ => {}
        }
    }
    Ok(out)
}

/// A cpuset list ("0-3,7") as the byte mask AllowedCPUs/AllowedMemoryNodes take: bit N%8 of
/// byte N/8 for CPU N (runc's RangeToBits builds the same little-endian mask).
pub fn range_to_bits(list: &str, source: &str) -> Result<Vec<u8>> {
    let bad = || Error::msg(format!("linux.resources.{source}: {list:?} is not a list of numbers and ranges"));
    let mut bits: Vec<u8> = Vec::new();
    for part in list.trim().split(',') {
        let (lo, hi) = match part.trim().split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let n = part.trim().parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        // 8192 CPUs is the kernel's NR_CPUS maximum.
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        for n in lo..=hi {
            if bits.len() <= n / 8 {
                bits.resize(n / 8 + 1, 0);
            }
            bits[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn no_disk(_: i64, _: i64) -> Option<String> {
        None
    }

    fn find<'a>(props: &'a [Property], name: &str) -> Option<&'a Value> {
        props.iter().find(|p| p.name == name).map(|p| &p.value)
    }

    #[test]
    fn v2_properties_follow_runc() {
        let r = res(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 1048576, "swap": 134217728},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
            "pids": {"limit": 50},
            "blockIO": {"weight": 500}
        }));
        let p = plan(&r, true, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(67108864)));
        assert_eq!(find(&p, "MemoryLow"), Some(&Value::U64(1048576)));
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(67108864)), "v2 swap excludes memory");
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(39)), "runc maps shares 1024 to weight 39");
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100000)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500000)));
        assert_eq!(find(&p, "AllowedCPUs"), Some(&Value::Bits(vec![0b1011])));
        assert_eq!(find(&p, "AllowedMemoryNodes"), Some(&Value::Bits(vec![1])));
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(50)));
        assert_eq!(find(&p, "IOWeight"), Some(&Value::U64(4950)));
        assert!(find(&p, "MemoryLimit").is_none() && find(&p, "CPUShares").is_none(), "no v1 names on v2");
    }

    #[test]
    fn v1_properties_follow_runc() {
        let r = res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152},
            "cpu": {"shares": 512, "quota": 20000},
            "blockIO": {"weight": 300}
        }));
        let p = plan(&r, false, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "MemoryLimit"), Some(&Value::U64(1048576)));
        assert_eq!(find(&p, "CPUShares"), Some(&Value::U64(512)));
        assert_eq!(find(&p, "BlockIOWeight"), Some(&Value::U64(300)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(200000)), "default period");
        assert!(find(&p, "CPUQuotaPeriodUSec").is_none(), "no period given");
        assert!(find(&p, "MemorySwapMax").is_none() && find(&p, "MemoryMax").is_none());
    }

    #[test]
    fn quotas_round_up_to_whole_percents_like_runc() {
        // systemd keeps CPUQuota as an integer percentage: 33333/100000 is 33.333% -> 34%.
        let q = |quota, period, version| cpu_quota(quota, period, version, "cpu.quota");
        assert_eq!(q(33333, 100000, 252)[1].value, Value::U64(340000));
        assert_eq!(q(-1, 100000, 252)[1].value, Value::U64(INFINITY), "no quota with a period: infinity");
        assert_eq!(q(50000, 0, 252), vec![prop("CPUQuotaPerSecUSec", Value::U64(500000), "cpu.quota")]);
        assert_eq!(q(50000, 50000, 241).len(), 1, "CPUQuotaPeriodUSec needs systemd v242");
        assert!(q(0, 0, 252).is_empty());
    }

    #[test]
    fn limits_of_unlimited_are_infinity() {
        let r = res(serde_json::json!({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": 0}}));
        let p = plan(&r, true, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "MemoryMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(INFINITY)), "0 is unlimited, as in the file plan");
        let no_swap = res(serde_json::json!({"memory": {"limit": 1000, "swap": 1000}}));
        let p = plan(&no_swap, true, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "MemorySwapMax"), Some(&Value::U64(0)), "swap == limit: no swap, sent as 0");
    }

    #[test]
    fn old_systemd_gets_no_newer_properties() {
        let r = res(serde_json::json!({"cpu": {"cpus": "0", "idle": 1, "shares": 1024}}));
        let p = plan(&r, true, 243, &no_disk).unwrap();
        assert!(find(&p, "AllowedCPUs").is_none(), "AllowedCPUs needs v244");
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(39)), "no idle before v252");
        let p = plan(&r, true, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(0)), "idle wins over shares, as in runc");
        assert_eq!(p.iter().filter(|p| p.name == "CPUWeight").count(), 1);
    }

    #[test]
    fn unified_keys_map_like_runc() {
        let r = res(serde_json::json!({"unified": {
            "memory.high": "67108864", "memory.min": "max", "pids.max": "7",
            "cpu.max": "max 50000", "cpu.weight": "200", "cpuset.cpus": "2", "io.weight": "default 100"
        }}));
        let p = plan(&r, true, 252, &no_disk).unwrap();
        assert_eq!(find(&p, "MemoryHigh"), Some(&Value::U64(67108864)));
        assert_eq!(find(&p, "MemoryMin"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "TasksMax"), Some(&Value::U64(7)));
        assert_eq!(find(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(INFINITY)));
        assert_eq!(find(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(50000)));
        assert_eq!(find(&p, "CPUWeight"), Some(&Value::U64(200)));
        assert_eq!(find(&p, "AllowedCPUs"), Some(&Value::Bits(vec![4])));
        assert_eq!(p.len(), 7, "io.weight has no property here: its file only");
        let bad = res(serde_json::json!({"unified": {"memory.high": "lots"}}));
        let err = plan(&bad, true, 252, &no_disk).unwrap_err().to_string();
        assert!(err.contains("unified[\"memory.high\"]"), "{err}");
    }

    #[test]
    fn io_limits_go_to_whole_disks_only() {
        let r = res(serde_json::json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}, {"major": 8, "minor": 1, "rate": 5}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 1, "rate": 10}]
        }}));
        let disk = |major: i64, minor: i64| (major == 8 && minor == 0).then(|| "/dev/sda".to_string());
        let p = plan(&r, true, 252, &disk).unwrap();
        assert_eq!(find(&p, "IOReadBandwidthMax"), Some(&Value::DeviceLimits(vec![("/dev/sda".into(), 1048576)])));
        assert!(find(&p, "IOWriteIOPSMax").is_none(), "8:1 is a partition: io.max only");
    }

    #[test]
    fn cpu_lists_become_masks() {
        assert_eq!(range_to_bits("0", "x").unwrap(), vec![1]);
        assert_eq!(range_to_bits("0-7,9", "x").unwrap(), vec![0xff, 2]);
        assert_eq!(range_to_bits(" 10 ", "x").unwrap(), vec![0, 4]);
        for bad in ["", "a", "3-1", "1-", "0,,1", "99999"] {
            assert!(range_to_bits(bad, "cpu.cpus").is_err(), "{bad:?}");
        }
    }
}
