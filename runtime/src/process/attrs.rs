//! Runtime-spec 1.2/1.3 process attributes the kernel applies per process: `linux.personality`,
//! `linux.memoryPolicy`, `process.scheduler`, `process.ioPriority` and `process.execCPUAffinity`. Each function
//! turns one spec field into its syscall and names the field when the kernel refuses.

use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Scheduler,
};

use crate::error::{Error, Result};
use crate::sys;

/// personality(2) with the spec's domain. The spec defines no flag values yet; runc ignores
/// `flags` too, so any are logged and left alone.
pub fn set_personality(p: &LinuxPersonality) -> Result<()> {
    use nix::sys::personality::Persona;
    // PER_LINUX is 0, PER_LINUX32 is 0x0008 (include/uapi/linux/personality.h).
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => Persona::empty(),
        LinuxPersonalityDomain::PerLinux32 => Persona::from_bits_retain(0x0008),
    };
    if let Some(flags) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        crate::log::debug(&format!("linux.personality.flags {flags:?} ignored, as runc does"));
    }
    nix::sys::personality::set(domain)
        .map(drop)
        .map_err(|e| Error::msg(format!("linux.personality: personality({:?}): {e}", p.domain())))
}

/// sched_setattr(2) from `process.scheduler`.
pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    let policy = match s.policy() {
        LinuxSchedulerPolicy::SchedOther => 0,
        LinuxSchedulerPolicy::SchedFifo => 1,
        LinuxSchedulerPolicy::SchedRr => 2,
        LinuxSchedulerPolicy::SchedBatch => 3,
        LinuxSchedulerPolicy::SchedIso => 4,
        LinuxSchedulerPolicy::SchedIdle => 5,
        LinuxSchedulerPolicy::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        };
    }
    let mut attr = sys::SchedAttr {
        policy,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    sys::sched_setattr(&mut attr)
        .map_err(|e| Error::msg(format!("process.scheduler: sched_setattr({:?}): {e}", s.policy())))
}

/// ioprio_set(2) from `process.ioPriority`.
pub fn set_io_priority(p: &LinuxIOPriority) -> Result<()> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::config("process.ioPriority.priority", format!("{} is not in 0..7", p.priority())));
    }
    sys::set_io_priority(class, p.priority() as u32)
        .map_err(|e| Error::msg(format!("process.ioPriority: ioprio_set({:?}, {}): {e}", p.class(), p.priority())))
}

/// A CPU list such as `0-3,7` as a CpuSet; `field` names it in errors.
pub fn cpu_set(list: &str, field: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    let bad = || Error::config(field, format!("{list:?} is not a CPU list like 0-3,7"));
    for part in list.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => {
                (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?)
            }
            None => {
                let n = part.trim().parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        for cpu in lo..=hi {
            set.set(cpu).map_err(|_| Error::config(field, format!("CPU {cpu} is beyond what this kernel supports")))?;
        }
    }
    Ok(set)
}

/// sched_setaffinity(2) of `pid` (0: the caller) to the CPU list in `field`.
pub fn set_affinity(pid: i32, list: &str, field: &str) -> Result<()> {
    let set = cpu_set(list, field)?;
    nix::sched::sched_setaffinity(Pid::from_raw(pid), &set)
        .map_err(|e| Error::msg(format!("{field}: sched_setaffinity {list:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_like_the_kernel_s() {
        let s = cpu_set("0-2,5", "f").unwrap();
        let on: Vec<usize> = (0..8).filter(|c| s.is_set(*c).unwrap()).collect();
        assert_eq!(on, [0, 1, 2, 5]);
        for bad in ["", "a", "3-1", "1,,2", "-1"] {
            let e = cpu_set(bad, "process.execCPUAffinity.final").unwrap_err().to_string();
            assert!(e.contains("process.execCPUAffinity.final"), "{bad:?}: {e}");
        }
    }
}

/// `linux.memoryPolicy` as set_mempolicy(2) arguments: the mode with its flags OR'd in, and the
/// node mask. Checked as runc 1.3 checks it (libcontainer/configs/validate memoryPolicy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    pub mode: i32,
    pub nodes: Vec<u64>,
}

/// The highest node number accepted in `linux.memoryPolicy.nodes` (the kernel's own limit,
/// MAX_NUMNODES, is at most 1024).
const MAX_NODE: u32 = 1023;

pub fn plan_mempolicy(p: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    use MemoryPolicyModeType as M;
    // include/uapi/linux/mempolicy.h
    let mode = match p.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= match f {
            MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
            MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
            MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        };
    }
    let nodes = parse_node_list(p.nodes().as_deref().unwrap_or(""))
        .map_err(|e| Error::config("linux.memoryPolicy.nodes", e))?;
    let count: u32 = nodes.iter().map(|w| w.count_ones()).sum();
    match p.mode() {
        M::MpolDefault | M::MpolLocal if count != 0 => {
            return Err(Error::config(
                "linux.memoryPolicy.nodes",
                format!("mode {} takes no nodes, got {count}", p.mode()),
            ))
        }
        M::MpolBind | M::MpolInterleave | M::MpolPreferredMany | M::MpolWeightedInterleave if count == 0 => {
            return Err(Error::config("linux.memoryPolicy.nodes", format!("mode {} needs at least one node", p.mode())))
        }
        _ => {}
    }
    Ok(MemPolicy { mode: mode | flags, nodes })
}

/// "0-3,5,7-8" as a bit mask, 64 nodes per word.
fn parse_node_list(list: &str) -> std::result::Result<Vec<u64>, String> {
    let mut words: Vec<u64> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| -> std::result::Result<u32, String> {
            let n: u32 = s.trim().parse().map_err(|_| format!("{part:?} is not a node number or range"))?;
            if n > MAX_NODE {
                return Err(format!("node {n} is above {MAX_NODE}"));
            }
            Ok(n)
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(format!("range {part:?} is backwards"));
        }
        for n in lo..=hi {
            let w = (n / 64) as usize;
            if words.len() <= w {
                words.resize(w + 1, 0);
            }
            words[w] |= 1 << (n % 64);
        }
    }
    Ok(words)
}

/// Applies a planned memory policy to this thread (and so to the program it execs).
pub fn set_mempolicy(p: &MemPolicy) -> Result<()> {
    sys::set_mempolicy(p.mode, &p.nodes).map_err(|e| {
        let why = match e {
            nix::errno::Errno::EINVAL => ": the kernel refused this mode, flag or node set (a node this host lacks?)",
            nix::errno::Errno::ENOSYS => ": this kernel has no NUMA support",
            _ => "",
        };
        Error::msg(format!("linux.memoryPolicy: set_mempolicy: {e}{why}"))
    })
}

#[cfg(test)]
mod mempolicy_tests {
    use super::*;

    fn plan(v: serde_json::Value) -> std::result::Result<MemPolicy, String> {
        let p: LinuxMemoryPolicy = serde_json::from_value(v).map_err(|e| e.to_string())?;
        plan_mempolicy(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn memory_policy_modes_flags_and_nodes_as_runc_checks_them() {
        // (config, expected mode|flags and mask, or an error fragment), after runc 1.3's
        // specconv and validator.
        let ok = [
            (serde_json::json!({"mode": "MPOL_BIND", "nodes": "0"}), 2, vec![1]),
            (serde_json::json!({"mode": "MPOL_INTERLEAVE", "nodes": "0-2,5"}), 3, vec![0b100111]),
            (serde_json::json!({"mode": "MPOL_PREFERRED"}), 1, vec![]),
            (serde_json::json!({"mode": "MPOL_LOCAL"}), 4, vec![]),
            (serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": ""}), 0, vec![]),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "64", "flags": ["MPOL_F_STATIC_NODES"]}),
                2 | 1 << 15,
                vec![0, 1],
            ),
            (
                serde_json::json!({"mode": "MPOL_PREFERRED_MANY", "nodes": "1", "flags": ["MPOL_F_RELATIVE_NODES"]}),
                5 | 1 << 14,
                vec![2],
            ),
            (
                serde_json::json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}),
                2 | 1 << 13,
                vec![1],
            ),
            (serde_json::json!({"mode": "MPOL_WEIGHTED_INTERLEAVE", "nodes": "0"}), 6, vec![1]),
        ];
        for (cfg, mode, nodes) in ok {
            assert_eq!(plan(cfg.clone()), Ok(MemPolicy { mode, nodes }), "{cfg}");
        }
        let bad = [
            (serde_json::json!({"mode": "MPOL_BIND"}), "needs at least one node"),
            (serde_json::json!({"mode": "MPOL_LOCAL", "nodes": "0"}), "takes no nodes"),
            (serde_json::json!({"mode": "MPOL_BIND", "nodes": "x"}), "linux.memoryPolicy.nodes"),
            (serde_json::json!({"mode": "MPOL_BIND", "nodes": "3-1"}), "backwards"),
            (serde_json::json!({"mode": "MPOL_BIND", "nodes": "5000"}), "above"),
            (serde_json::json!({"mode": "MPOL_NOPE"}), "unknown variant"),
            (serde_json::json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}), "unknown variant"),
        ];
        for (cfg, want) in bad {
            let err = plan(cfg.clone()).expect_err(want);
            assert!(err.contains(want), "{cfg}: {err}");
        }
    }
}
