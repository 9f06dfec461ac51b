//! `run`: create + start. In the foreground it waits for the init, forwards the signals it gets
//! to it, deletes the container and exits with the init's status (128+N for a signal). With
//! `process.terminal` and no `--console-socket`, it keeps the pty and relays it to the caller's
//! terminal, as runc does (see `tty`).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{create, delete, start, tty, CreateOpts};
use crate::error::{Error, Result};
use crate::state::Root;

/// Runs the container. Returns the exit code `skiff run` should exit with.
pub fn run(root: &Root, opts: &CreateOpts, detach: bool, keep: bool) -> Result<i32> {
    if detach {
        create(root, opts)?;
        if let Err(e) = start(root, &opts.id) {
            let _ = delete(root, &opts.id, true);
            return Err(e);
        }
        return Ok(0);
    }
    let sfd = block_signals()?;
    let (pid, pty, started) = super::create::create_keeping_pty(root, opts)?;
    let code = tty::Relay::new_opt(pty).and_then(|relay| {
        if started {
            super::start::started_at_once(root, &opts.id)?;
        } else {
            start(root, &opts.id)?;
        }
        crate::trace::point("started");
        match relay {
            Some(relay) => relay.run(&sfd, Pid::from_raw(pid)),
            None => wait_forwarding(&sfd, Pid::from_raw(pid)),
        }
    });
    crate::trace::point("exited");
    if !keep {
        if let Err(e) = delete(root, &opts.id, true) {
            crate::log::warn(&format!("delete {} after run: {e}", opts.id));
        }
        crate::trace::point("deleted");
    }
    code
}

/// Blocks the signals a foreground `run` or `exec` forwards, before anything is forked so none is
/// lost in between (the container's process resets its mask before exec), and returns the
/// signalfd that reads them.
pub fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| Error::sys("sigprocmask", e))?;
    SignalFd::new(&set).map_err(|e| Error::sys("signalfd", e))
}

/// Reaps every child that has exited (one SIGCHLD may stand for several exits); returns the exit
/// code of `init` (128+N for a signal) once it is among them.
pub fn reap(init: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == init => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Err(nix::errno::Errno::ECHILD) => return Err(Error::msg("the container init is not our child any more")),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("waitpid", e)),
        }
    }
}

/// Waits for `init` without a terminal to relay, forwarding every signal but SIGCHLD and
/// SIGWINCH (runc only resizes on SIGWINCH, and without a pty there is nothing to resize).
pub fn wait_forwarding(sfd: &SignalFd, init: Pid) -> Result<i32> {
    loop {
        if let Some(code) = reap(init)? {
            return Ok(code);
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD && sig != libc::SIGWINCH {
                    let _ = crate::sys::kill_raw(init.as_raw(), sig);
                }
            }
            Ok(None) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("read signalfd", e)),
        }
    }
}
