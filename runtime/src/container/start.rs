//! `start`: release a created container's init (it is blocked opening the exec fifo for writing)
//! and return as soon as it has gone on to exec; then run poststart hooks (one failing stops the
//! container and fails start).

use std::io::Read;
use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Error, Result, SysContext};
use crate::hooks;
use crate::state::{self, Root, Status};

pub fn start(root: &Root, id: &str) -> Result<()> {
    let c = root.load(id)?;
    match c.status() {
        Status::Created => {}
        Status::Stopped => return Err(Error::msg("cannot start a container that has stopped")),
        Status::Running => return Err(Error::msg("cannot start an already running container")),
        Status::Paused => return Err(Error::msg("cannot start a paused container")),
        Status::Creating => return Err(Error::msg("cannot start a container that is still being created")),
    }
    let st = c.state()?.clone();
    if st.config.process().is_none() {
        // runtime-spec: start MUST fail when `process` was not set (config.md: it is OPTIONAL
        // until start). A container that can never run is stopped, as after a failing poststart
        // hook, and left to `delete`.
        super::delete::kill_all(&st);
        return Err(Error::config("process", "not set: start has nothing to run; the container was stopped"));
    }
    // Bound before the container runs, so no message of it is lost.
    let notify = match super::notify::caller_socket() {
        Some(caller) => super::notify::bind(&c.dir)?.map(|sock| (sock, caller)),
        None => None,
    };
    let fifo_path = c.fifo_path();
    // Non-blocking open: if the init died we must not wait forever for a writer.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .ctx(|| format!("open {}", fifo_path.display()))?;
    crate::failpoint::hit("start:fifo-opened");
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => {
                let mut byte = [0u8; 1];
                match fifo.read(&mut byte) {
                    Ok(1) => break,
                    Ok(_) => return Err(Error::msg("container init exited before it was started")),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(Error::io(format!("read {}", fifo_path.display()), e)),
                }
            }
            Err(e) => return Err(Error::sys("poll the exec fifo", e)),
        }
        if !state::process_alive(st.pid, st.start_time) {
            return Err(Error::msg("container init exited before it was started"));
        }
    }
    drop(fifo);
    after_start(c, st, notify)
}

/// The rest of a foreground `run`'s start when its init went on without waiting for it (see
/// container::create::start_at_once): the fifo nobody will open goes, then poststart.
pub fn started_at_once(root: &Root, id: &str) -> Result<()> {
    let c = root.load(id)?;
    let st = c.state()?.clone();
    after_start(c, st, None)
}

/// Once the init went on to exec: the exec fifo removed, poststart hooks, sd_notify forwarded.
fn after_start(
    c: state::Container,
    st: state::State,
    notify: Option<(std::os::unix::net::UnixDatagram, String)>,
) -> Result<()> {
    let fifo_path = c.fifo_path();
    std::fs::remove_file(&fifo_path).ctx(|| format!("remove {}", fifo_path.display()))?;
    // state.json keeps `created`: the status is read live (the init alive, the fifo gone, the
    // freezer; see state::Container::status), and of the recorded one only `creating` counts.
    // Not rewriting it spares a write and an exchange (see state::write_atomic).
    crate::failpoint::hit("start:state-running");
    // A failing poststart hook fails start and stops the container (runtime-spec 1.3.0,
    // lifecycle step 9; before 1.3.0 the spec asked for a warning, which runc never did). The
    // hooks after it do not run. As runc does, the stopped container is left to `delete`, which
    // removes it and runs poststop.
    let hooks = st.config.hooks().as_ref();
    if let Err(e) =
        hooks::run_all("poststart", hooks.and_then(|h| h.poststart().as_ref()), &st.oci_json(Status::Running))
    {
        super::delete::kill_all(&st);
        return Err(Error::msg(format!("{e}; the container was stopped")));
    }
    // Like runc's, start returns once the container said READY (or died): the caller (systemd,
    // podman) takes that as the service being up. Others may use the container meanwhile.
    drop(c);
    if let Some((sock, caller)) = notify {
        super::notify::forward(&sock, &caller, st.pid, &|| state::process_alive(st.pid, st.start_time))?;
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;
