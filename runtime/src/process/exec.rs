//! `exec`: a new process in a running container. Like `create`, the parent forks a setup process
//! and puts it in the container's cgroups; the setup process joins every namespace of the
//! container's init (user first; pid last, which only applies to children), then forks the new
//! process as the parent's child. That process applies the process config and execs.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Process};

use super::channel::{Channel, Msg};
use super::{clone_flag, init};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};

pub struct ExecConfig<'a> {
    pub init_pid: i32,
    pub process: &'a Process,
    /// The container's namespace types, in config order.
    pub namespaces: Vec<LinuxNamespaceType>,
    pub seccomp: Option<&'a LinuxSeccomp>,
    /// The container's `linux.memoryPolicy`: exec'd processes get it too, as in runc.
    pub memory_policy: Option<&'a oci_spec::runtime::LinuxMemoryPolicy>,
    /// The container's state JSON, for a seccomp listener.
    pub state: serde_json::Value,
    pub cgroup: &'a Cgroup,
    /// The container's resctrl group (`linux.intelRdt`), joined like the cgroups.
    pub resctrl: Option<crate::resctrl::Plan>,
    pub console: Option<&'a UnixStream>,
    pub preserve_fds: u32,
    /// The container's lock, held by the caller: released once the setup process is in the cgroups.
    pub lock: std::os::fd::BorrowedFd<'a>,
}

/// Starts the process; returns its host pid once it has exec'd (or the error that stopped it).
pub fn spawn(cfg: &ExecConfig) -> Result<i32> {
    // Open every namespace before joining any: after the mount namespace /proc may differ.
    let mut order: Vec<LinuxNamespaceType> = cfg.namespaces.clone();
    order.sort_by_key(|t| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    let mut fds: Vec<(CloneFlags, OwnedFd)> = Vec::new();
    for t in order {
        let name = ns_file(t);
        let path = format!("/proc/{}/ns/{name}", cfg.init_pid);
        // Joining a namespace we are already in is refused for user namespaces (EINVAL).
        if std::fs::read_link(&path).ok() == std::fs::read_link(format!("/proc/self/ns/{name}")).ok() {
            continue;
        }
        let f = std::fs::File::open(&path).ctx(|| format!("open {path}"))?;
        fds.push((clone_flag(t), f.into()));
    }
    let (parent, child) = Channel::pair()?;
    match sys::fork().ctx(|| "fork the exec setup process".into())? {
        Forked::Child => {
            drop(parent);
            let _ = nix::unistd::close(std::os::fd::AsRawFd::as_raw_fd(&cfg.lock));
            let res = setup(&child, cfg, &fds);
            if let Err(e) = res {
                let _ = child.send(&Msg::Error(e.to_string()));
                std::process::exit(1);
            }
            std::process::exit(0);
        }
        Forked::Parent(setup_pid) => {
            drop(child);
            drop(fds);
            let res = drive(&parent, setup_pid.as_raw(), cfg);
            if res.is_err() {
                let _ = nix::sys::signal::kill(setup_pid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = waitpid(setup_pid, None);
            res
        }
    }
}

fn drive(chan: &Channel, setup: i32, cfg: &ExecConfig) -> Result<i32> {
    let affinity = cfg.process.exec_cpu_affinity().as_ref();
    if let Some(initial) = affinity.and_then(|a| a.initial().as_deref()) {
        // Where the process runs until it is in the container's cgroup (and cpuset).
        super::attrs::set_affinity(setup, initial, "process.execCPUAffinity.initial")?;
    }
    cfg.cgroup.join(setup)?;
    if let Some(p) = &cfg.resctrl {
        crate::resctrl::join(p, setup)?;
    }
    // The container lock kept `delete` from removing the cgroups until the setup process was in
    // them; now it is, so let go. In a frozen container (`--ignore-paused`) the setup process
    // sleeps until a `resume`, which takes this lock: holding it on would wait for ever.
    sys::flock_unlock(cfg.lock);
    chan.send(&Msg::Go)?;
    let mut pid = None;
    loop {
        match chan.recv_fd()? {
            Some((Msg::InitPid(p), _)) => pid = Some(p),
            Some((Msg::SeccompFd, Some(fd))) => {
                let (s, p) = cfg.seccomp.zip(pid).ok_or_else(|| Error::msg("sync: seccomp fd out of order"))?;
                crate::security::seccomp::send_to_listener(s, p, &cfg.state, fd.as_fd())?;
            }
            Some((Msg::Ready, _)) => {}
            Some((Msg::Error(e), _)) => {
                if let Some(p) = pid {
                    let _ = waitpid(nix::unistd::Pid::from_raw(p), None);
                }
                return Err(Error::Msg(e));
            }
            Some((other, _)) => return Err(Error::msg(format!("sync: unexpected {other:?}"))),
            // Both ends closed: the setup process exited and the new process exec'd (its end
            // of the channel is close-on-exec).
            None => return pid.ok_or_else(|| Error::msg("exec: the setup process exited early")),
        }
    }
}

fn setup(chan: &Channel, cfg: &ExecConfig, fds: &[(CloneFlags, OwnedFd)]) -> Result<()> {
    chan.expect(Msg::Go)?;
    for (flag, fd) in fds {
        nix::sched::setns(fd, *flag).ctx(|| format!("join the container's {flag:?} namespace"))?;
    }
    match sys::fork_as_sibling().ctx(|| "fork the exec process".into())? {
        Forked::Child => {
            let err = match run(chan, cfg) {
                Ok(program) => program.exec(),
                Err(e) => e,
            };
            let _ = chan.send(&Msg::Error(err.to_string()));
            std::process::exit(127);
        }
        Forked::Parent(pid) => chan.send(&Msg::InitPid(pid.as_raw())),
    }
}

fn run(chan: &Channel, cfg: &ExecConfig) -> Result<init::Program> {
    let p = cfg.process;
    if let Some(last) = p.exec_cpu_affinity().as_ref().and_then(|a| a.cpu_affinity_final().as_deref()) {
        super::attrs::set_affinity(0, last, "process.execCPUAffinity.final")?;
    }
    if let Some(m) = cfg.memory_policy {
        super::attrs::set_mempolicy(&super::attrs::plan_mempolicy(m)?)?;
    }
    if p.terminal().unwrap_or(false) {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        init::setup_terminal(cfg.console, p)?;
    }
    let mut program = init::finalize(p, cfg.seccomp, cfg.preserve_fds)?;
    program.send_notify_fd(chan)?;
    chan.send(&Msg::Ready)?;
    Ok(program)
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}
