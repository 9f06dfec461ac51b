//! `delete`: stop what is left of a container and remove every trace of it: processes, cgroups,
//! the state entry. `destroy` works from what exists on the system, so it also finishes a
//! `create` that was killed half-way.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Error, Result};
use crate::state::{self, Container, Root, Status};
use crate::{hooks, log};

pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let c = match root.load(id) {
        Ok(c) => c,
        Err(Error::NotExist(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let status = c.status();
    match status {
        // `created` is deleted without --force, as runc does; `creating` while we hold the lock
        // means the creator died.
        Status::Stopped | Status::Created | Status::Creating => {}
        Status::Running | Status::Paused if force => {}
        Status::Running | Status::Paused => {
            return Err(Error::msg(format!("cannot delete container {id} that is not stopped: {}", status.as_str())));
        }
    }
    destroy(&c)?;
    if let Some(st) = &c.state {
        let hooks = st.config.hooks().as_ref();
        hooks::run_each_warning("poststop", hooks.and_then(|h| h.poststop().as_ref()), &st.oci_json(Status::Stopped));
    }
    Ok(())
}

/// Kills every process of the container, removes its cgroups and its state directory.
pub fn destroy(c: &Container) -> Result<()> {
    if let Some(st) = &c.state {
        let seen_empty = kill_all(st);
        crate::failpoint::hit("delete:processes-killed");
        // A cgroup still busy with processes that are not the container's (a shared
        // cgroupsPath) stays, with a warning, as in runc; the container itself is gone.
        if let Err(e) = st.cgroup().remove(seen_empty) {
            log::warn(&format!("delete {}: {e}", st.id));
        }
        crate::failpoint::hit("delete:cgroups-removed");
        // The plan is made again from the config; a host without resctrl has nothing to remove.
        if let Ok(Some(p)) = crate::resctrl::plan(&st.config, &st.id) {
            if let Err(e) = crate::resctrl::remove(&p) {
                log::warn(&format!("delete {}: {e}", st.id));
            }
        }
    }
    c.remove_dir()
}

/// SIGKILL to the init and, where that is not enough, to everything in its cgroup, then wait
/// until they are gone. With its own pid namespace the init's death ends every process in it;
/// without one (or when the init's pid was never recorded) the cgroup is frozen, every member
/// killed and thawed, so nothing can fork away (runc's rule). A cgroup the container did not
/// make (a cgroupsPath shared with others) is never emptied by force. Returns true when that
/// was already so at the first look, with the cgroup's every process list read empty (the
/// common case of a stopped container): its removal need not read them again.
pub(super) fn kill_all(st: &state::State) -> bool {
    let own_pidns = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none()));
    let cgroup = st.cgroup();
    let cgroup_ours = cgroup.is_own();
    let signal_cgroup = cgroup_ours && (!own_pidns || st.pid <= 0);
    let reap = || {
        if st.pid > 0 {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
    };
    let init_dead = || !(st.pid > 0 && state::process_alive(st.pid, st.start_time));
    // With its own pid namespace, what counts is the processes of that namespace: others in
    // the cgroup (a cgroupsPath shared with another container) are not waited for.
    let pidns = (own_pidns && st.pid > 0 && state::process_alive(st.pid, st.start_time))
        .then(|| std::fs::read_link(format!("/proc/{}/ns/pid", st.pid)).ok())
        .flatten();
    let cgroup_empty = || match &pidns {
        _ if !cgroup_ours => true,
        Some(ns) => {
            !cgroup.pids().iter().any(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == *ns))
        }
        None => cgroup.pids().is_empty(),
    };
    let done = || init_dead() && cgroup_empty();
    if done() {
        // Reap a zombie init that is our child (foreground run); nothing else to stop.
        reap();
        // done() read every cgroup.procs when the cgroup is ours and no pid namespace is alive.
        return cgroup_ours && pidns.is_none();
    }
    // Opened before the check, so that it is the init's and not a reused pid's.
    let pidfd = (st.pid > 0).then(|| crate::sys::pidfd_open(st.pid).ok()).flatten();
    let killed = st.pid > 0 && state::process_alive(st.pid, st.start_time);
    if killed {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    // A paused container only dies once thawed.
    if cgroup_ours && cgroup.is_frozen() {
        let _ = cgroup.thaw();
    }
    if signal_cgroup {
        let frozen = cgroup.freeze().is_ok();
        for pid in cgroup.pids() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if frozen {
            let _ = cgroup.thaw();
        }
    }
    // The init first (SIGKILL cannot be ignored; 10 s is for a loaded machine), then a short
    // wait for the rest of the cgroup: members of the pid namespace die with the init. Whatever
    // is still there after that belongs to someone sharing the cgroupsPath.
    if let Some(fd) = pidfd.as_ref().filter(|_| killed) {
        wait_exit(fd, Duration::from_secs(10));
    }
    wait_until(Duration::from_secs(10), || {
        reap();
        init_dead()
    });
    wait_until(Duration::from_secs(2), cgroup_empty);
    false
}

/// Waits until the process of `pidfd` has exited (or `limit` passed): woken by its exit itself,
/// where polling /proc would sleep past it (the SIGKILLed init needs a CPU to die, which under
/// load takes milliseconds). Whatever the outcome, the caller checks again.
fn wait_exit(pidfd: &std::os::fd::OwnedFd, limit: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Err(nix::errno::Errno::EINTR) if !left.is_zero() => continue,
            _ => return,
        }
    }
}

fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    let mut delay = Duration::from_micros(100);
    while !cond() && Instant::now() < deadline {
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}
