//! `events`: the container's statistics once (`--stats`) or every interval, and an `oom` event
//! each time the OOM killer hits it, as runc prints them; ends when the container stops.
//! The state is read once and its lock released, so `delete` is never blocked by a watcher.

use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollTimeout};
use oci_spec::runtime::LinuxNamespaceType;
use serde::Serialize;

use crate::cgroups::stats;
use crate::error::{Error, Result};
use crate::state::{self, Root, Status};

/// runc's `types.Event`: `data` is absent for `oom`.
#[derive(Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<stats::Stats>,
}

pub struct EventsOpts {
    pub interval: Duration,
    /// Print the stats once and return.
    pub stats_only: bool,
}

/// How often a streaming watcher looks whether the container is still alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(500);

/// Emits events through `emit` until the container stops (or `emit` fails, e.g. a closed pipe).
pub fn events(root: &Root, id: &str, opts: &EventsOpts, emit: &mut dyn FnMut(&Event) -> Result<()>) -> Result<()> {
    if opts.interval.is_zero() {
        return Err(Error::msg("duration interval must be greater than 0"));
    }
    let st = {
        let c = root.load(id)?;
        if matches!(c.status(), Status::Stopped) {
            return Err(Error::msg(format!("container with id {id} is not running")));
        }
        c.state()?.clone()
    };
    let cgroup = st.cgroup();
    let own_netns = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    let stats_event =
        || Event { kind: "stats", id: id.to_string(), data: Some(cgroup.stats(own_netns.then_some(st.pid))) };
    if opts.stats_only {
        return emit(&stats_event());
    }
    let alive = || st.pid > 0 && state::process_alive(st.pid, st.start_time);
    let mut watch = cgroup.oom_watch()?;
    let mut next_stats = Instant::now() + opts.interval;
    while alive() {
        let now = Instant::now();
        if now >= next_stats {
            emit(&stats_event())?;
            next_stats += opts.interval;
            continue;
        }
        let wait = (next_stats - now).min(LIVENESS_CHECK);
        let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
        let Some(w) = watch.as_mut() else {
            std::thread::sleep(wait);
            continue;
        };
        let (fd, flags) = w.poll_fd();
        let mut fds = [PollFd::new(fd, flags)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(Error::msg(format!("events {id}: poll: {e}"))),
        }
        match w.take() {
            Ok(n) => {
                for _ in 0..n {
                    emit(&Event { kind: "oom", id: id.to_string(), data: None })?;
                }
            }
            // The cgroup went away (deleted under us): nothing more will happen.
            Err(_) => break,
        }
    }
    Ok(())
}
