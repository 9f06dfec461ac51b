//! `update`: change a live container's resource limits, from runc's flags or a resources JSON.

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::state::{Root, Status};

/// runc's `update` flags; each is applied only when given.
#[derive(Debug, Clone, Default)]
pub struct UpdateOpts {
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// Parses a size as runc does (docker's RAMInBytes): a number with an optional binary suffix
/// b/k/m/g/t/p (case-insensitive, an optional trailing "b"), or -1 for unlimited.
pub fn parse_bytes(raw: &str) -> Result<i64> {
    let s = raw.trim().to_ascii_lowercase();
    if s == "-1" {
        return Ok(-1);
    }
    // "10mb" is "10m", "1024b" is "1024".
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        Some('p') => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    let value: f64 = num.parse().map_err(|_| Error::msg(format!("invalid size {raw:?}")))?;
    if value < 0.0 {
        return Err(Error::msg(format!("invalid size {raw:?}")));
    }
    Ok((value * mult as f64) as i64)
}

fn from_flags(o: &UpdateOpts) -> Result<LinuxResources> {
    let mut v = serde_json::json!({});
    let bytes = |s: &Option<String>| s.as_deref().map(parse_bytes).transpose();
    if let Some(m) = bytes(&o.memory)? {
        v["memory"]["limit"] = m.into();
    }
    if let Some(m) = bytes(&o.memory_reservation)? {
        v["memory"]["reservation"] = m.into();
    }
    if let Some(m) = bytes(&o.memory_swap)? {
        v["memory"]["swap"] = m.into();
    }
    let cpu = [
        ("period", o.cpu_period.map(serde_json::Value::from)),
        ("quota", o.cpu_quota.map(serde_json::Value::from)),
        ("shares", o.cpu_shares.map(serde_json::Value::from)),
        ("realtimePeriod", o.cpu_rt_period.map(serde_json::Value::from)),
        ("realtimeRuntime", o.cpu_rt_runtime.map(serde_json::Value::from)),
        ("cpus", o.cpuset_cpus.clone().map(serde_json::Value::from)),
        ("mems", o.cpuset_mems.clone().map(serde_json::Value::from)),
    ];
    for (k, val) in cpu {
        if let Some(val) = val {
            v["cpu"][k] = val;
        }
    }
    if let Some(p) = o.pids_limit {
        v["pids"]["limit"] = p.into();
    }
    if let Some(w) = o.blkio_weight {
        v["blockIO"]["weight"] = w.into();
    }
    serde_json::from_value(v).map_err(|e| Error::msg(format!("update: {e}")))
}

/// Parses `-r FILE` (or `-r -` on stdin) as a LinuxResources object, naming the JSON path on error.
pub fn from_json(text: &[u8], name: &str) -> Result<LinuxResources> {
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| Error::msg(format!("{name}: {e}")))?;
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(v, &mut track);
    <LinuxResources as serde::Deserialize>::deserialize(de)
        .map_err(|e| Error::msg(format!("{name}: {}: {e}", track.path())))
}

pub fn update(root: &Root, id: &str, res: Option<LinuxResources>, flags: &UpdateOpts) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?;
    if matches!(c.status(), Status::Stopped | Status::Creating) {
        return Err(Error::msg(format!("cannot update container {id}: it is not running")));
    }
    let mut res = match res {
        Some(r) => r,
        None => from_flags(flags)?,
    };
    // runc's update copies only the fields it has flags for into the cgroup config; rdma is not
    // among them, so `-r` with rdma limits changes nothing there (and is no error where the host
    // has no rdma cgroup). The limits stay as created.
    if res.rdma().is_some() {
        crate::log::debug(&format!("update {id}: linux.resources.rdma left as created (runc's update ignores it)"));
        res.set_rdma(None);
    }
    let cgroup = st.cgroup();
    // memory.checkBeforeUpdate (runc 1.1+): a limit below what the container already uses is
    // refused instead of making the kernel reclaim or OOM-kill.
    if let Some(m) = res.memory() {
        if let (Some(true), Some(limit)) = (m.check_before_update(), m.limit().filter(|l| *l >= 0)) {
            let usage = cgroup.stats(None).memory.usage.usage;
            if (limit as u64) < usage {
                return Err(Error::msg(format!(
                    "linux.resources.memory.limit: {limit} is below the container's current usage {usage} \
                     (memory.checkBeforeUpdate)"
                )));
            }
        }
    }
    // New device rules replace the old ones whole, with runc's defaults and the container's own
    // nodes allowed after them as at create. On v2 that is one atomic swap of the eBPF program.
    // Where the cgroup cannot swap them whole (v1), the rules stay as created, as runc 1.1's
    // update leaves them everywhere.
    let nodes = if !cgroup.can_replace_device_rules() {
        if res.devices().is_some() {
            crate::log::debug(&format!("update {id}: linux.resources.devices left as created (cgroup v1)"));
        }
        res.set_devices(None);
        Vec::new()
    } else {
        crate::rootfs::devices::cgroup_rules(&st.config)
    };
    cgroup.apply(&res, &nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        for (raw, want) in [
            ("1024", 1024),
            ("1k", 1024),
            ("1K", 1024),
            ("10m", 10 << 20),
            ("10mb", 10 << 20),
            ("1g", 1 << 30),
            ("1.5k", 1536),
            ("-1", -1),
        ] {
            assert_eq!(parse_bytes(raw).unwrap(), want, "{raw}");
        }
        for bad in ["", "x", "10q", "-5"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
