//! Runtime-spec 1.2 process attributes the kernel applies per process: `linux.personality`,
//! `process.scheduler`, `process.ioPriority` and `process.execCPUAffinity`. Each function
//! turns one spec field into its syscall and names the field when the kernel refuses.

use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
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
