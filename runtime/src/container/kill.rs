//! `kill`: send a signal to the init, or with `--all` to every process in the container's cgroup.

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::state;
use crate::state::{Root, Status};

/// Parses a signal as runc does: a number, or a name with or without `SIG`, in any case.
pub fn parse_signal(raw: &str) -> Result<i32> {
    if let Ok(n) = raw.parse::<i32>() {
        return Ok(n);
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<Signal>().map(|s| s as i32).map_err(|_| Error::msg(format!("unknown signal {raw:?}")))
}

pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?;
    let status = c.status();
    if all {
        if status == Status::Stopped {
            return Ok(());
        }
        let cgroup = st.cgroup();
        let frozen = cgroup.freeze().is_ok();
        // (a rootless container without cgroups: the processes of its pid namespace)
        let mut pids = if st.cgroup_paths.is_empty() {
            super::pause::pidns_members(st).unwrap_or_default()
        } else {
            cgroup.pids()
        };
        if pids.is_empty() {
            pids.push(st.pid);
        }
        for pid in pids {
            let _ = send(pid, sig);
        }
        if frozen {
            cgroup.thaw()?;
        }
        return Ok(());
    }
    if matches!(status, Status::Stopped | Status::Creating) || !state::process_alive(st.pid, st.start_time) {
        return Err(Error::NotRunning);
    }
    send(st.pid, sig)
}

/// kill(2) with any number, real-time signals included (nix's enum lacks them).
fn send(pid: i32, sig: i32) -> Result<()> {
    crate::sys::kill_raw(pid, sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => Error::NotRunning,
        e => Error::sys(format!("kill {pid} with signal {sig}"), e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        for (raw, want) in
            [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("TERM", 15), ("sigusr1", 10), ("40", 40)]
        {
            assert_eq!(parse_signal(raw).unwrap(), want, "{raw}");
        }
        assert!(parse_signal("FOO").unwrap_err().to_string().contains("unknown signal"));
    }
}
