//! `delete`: stop what is left of a container and remove every trace of it: processes, cgroups,
//! the state entry. `destroy` works from what exists on the system, so it also finishes a
//! `create` that was killed half-way.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::state::{self, Container, Root, Status};
use crate::{cgroups, hooks, log};

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
        if let Err(e) =
            hooks::run_all("poststop", hooks.and_then(|h| h.poststop().as_ref()), &st.oci_json(Status::Stopped))
        {
            log::warn(&e.to_string());
        }
    }
    Ok(())
}

/// Kills every process of the container, removes its cgroups and its state directory.
pub fn destroy(c: &Container) -> Result<()> {
    if let Some(st) = &c.state {
        kill_all(st);
        cgroups::remove(&st.cgroup_paths, &st.cgroup_created)?;
    }
    c.remove_dir()
}

/// SIGKILL to the init and everything in its cgroup, then wait until they are gone. The
/// cgroup is frozen around the signal so nothing can fork away from it (runc's `kill --all`).
fn kill_all(st: &state::State) {
    let init_alive = st.pid > 0 && state::process_alive(st.pid, st.start_time);
    if !init_alive && cgroups::pids(&st.cgroup_paths).is_empty() {
        // Reap a zombie init that is our child (foreground run), nothing else to stop.
        if st.pid > 0 {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
        return;
    }
    let frozen = !st.cgroup_paths.is_empty() && cgroups::set_frozen(&st.cgroup_paths, true).is_ok();
    if st.pid > 0 && state::process_alive(st.pid, st.start_time) {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    }
    for pid in cgroups::pids(&st.cgroup_paths) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    if frozen {
        let _ = cgroups::set_frozen(&st.cgroup_paths, false);
    }
    // Reap the init if it is our child (create/run), then wait for the cgroup to empty.
    if st.pid > 0 {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut delay = Duration::from_micros(100);
    while Instant::now() < deadline {
        let init_alive = st.pid > 0 && state::process_alive(st.pid, st.start_time);
        if !init_alive && cgroups::pids(&st.cgroup_paths).is_empty() {
            break;
        }
        if st.pid > 0 {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(st.pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
}
