//! Notification when the OOM killer hits a container: v1 registers an eventfd for
//! memory.oom_control through cgroup.event_control; v2 waits for memory.events to change
//! (kernfs wakes poll(2) with POLLPRI) and counts `oom_kill`. Only watching: no limits are set here.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::PollFlags;

use super::hierarchy::Dirs;
use crate::error::{Error, Result, SysContext};

pub enum OomWatch {
    V1 {
        efd: File,
        dir: PathBuf,
        // Kept open: the registration lasts as long as this fd.
        _control: File,
    },
    V2 {
        events: File,
        oom_kills: u64,
    },
}

impl OomWatch {
    /// Watches the container's memory cgroup (the v1 hierarchy with `memory`, else the
    /// unified one). None when there is no memory controller for it.
    pub fn open(dirs: &Dirs) -> Result<Option<OomWatch>> {
        if let Some(dir) = dirs.v1("memory") {
            return Self::open_v1(dir).map(Some);
        }
        match dirs.unified() {
            Some((_, dir)) if dir.join("memory.events").exists() => Self::open_v2(dir).map(Some),
            _ => Ok(None),
        }
    }

    fn open_v1(dir: &Path) -> Result<OomWatch> {
        let efd: OwnedFd = crate::sys::eventfd::eventfd().ctx(|| "eventfd for OOM notification".to_string())?;
        let control_path = dir.join("memory.oom_control");
        let control = File::open(&control_path).ctx(|| format!("open {}", control_path.display()))?;
        let reg = dir.join("cgroup.event_control");
        let line = format!("{} {}", std::os::fd::AsRawFd::as_raw_fd(&efd), std::os::fd::AsRawFd::as_raw_fd(&control));
        std::fs::write(&reg, line).ctx(|| format!("register OOM eventfd in {}", reg.display()))?;
        Ok(OomWatch::V1 { efd: File::from(efd), dir: dir.to_path_buf(), _control: control })
    }

    fn open_v2(dir: &Path) -> Result<OomWatch> {
        let path = dir.join("memory.events");
        let mut events = File::open(&path).ctx(|| format!("open {}", path.display()))?;
        let oom_kills = read_oom_kills(&mut events).ctx(|| format!("read {}", path.display()))?;
        Ok(OomWatch::V2 { events, oom_kills })
    }

    /// The fd to poll and the events that mean "look again".
    pub fn poll_fd(&self) -> (BorrowedFd<'_>, PollFlags) {
        match self {
            OomWatch::V1 { efd, .. } => (efd.as_fd(), PollFlags::POLLIN),
            OomWatch::V2 { events, .. } => (events.as_fd(), PollFlags::POLLPRI),
        }
    }

    /// After poll reported the fd ready: how many OOM events happened since the last call, or
    /// an error once the cgroup is gone (v1 signals the eventfd when the cgroup is removed).
    pub fn take(&mut self) -> Result<u64> {
        match self {
            OomWatch::V1 { efd, dir, .. } => {
                let mut buf = [0u8; 8];
                efd.read_exact(&mut buf).map_err(|e| Error::io("read OOM eventfd", e))?;
                if !dir.join("memory.oom_control").exists() {
                    return Err(Error::msg(format!("cgroup {} removed", dir.display())));
                }
                Ok(u64::from_ne_bytes(buf))
            }
            OomWatch::V2 { events, oom_kills } => {
                let now = read_oom_kills(events).map_err(|e| Error::io("read memory.events", e))?;
                let new = now.saturating_sub(*oom_kills);
                *oom_kills = now;
                Ok(new)
            }
        }
    }
}

fn read_oom_kills(f: &mut File) -> std::io::Result<u64> {
    f.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(oom_kill_count(&text))
}

/// The `oom_kill` counter of a v2 memory.events file.
pub fn oom_kill_count(memory_events: &str) -> u64 {
    super::stats::key_values(memory_events).get("oom_kill").copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_oom_kill_not_oom() {
        // memory.events: `oom` counts reclaim failures, `oom_kill` processes killed; runc
        // reports an event per kill.
        let text = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(super::oom_kill_count(text), 2);
    }
}
