//! `run`: create + start. In the foreground it waits for the init, forwards the signals it gets
//! to it, deletes the container and exits with the init's status (128+N for a signal).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{create, delete, start, CreateOpts};
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
    // Block the signals we forward before anything is forked, so none is lost in between; the
    // init resets its mask before exec.
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(|e| Error::sys("sigprocmask", e))?;
    let sfd = SignalFd::new(&set).map_err(|e| Error::sys("signalfd", e))?;
    let pid = create(root, opts)?;
    let code = match start(root, &opts.id) {
        Ok(()) => wait_forwarding(&sfd, Pid::from_raw(pid)),
        Err(e) => Err(e),
    };
    if !keep {
        if let Err(e) = delete(root, &opts.id, true) {
            crate::log::warn(&format!("delete {} after run: {e}", opts.id));
        }
    }
    code
}

pub fn wait_forwarding(sfd: &SignalFd, init: Pid) -> Result<i32> {
    loop {
        // Reap everything that has exited; one SIGCHLD may stand for several exits.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == init => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == init => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) => break,
                Err(nix::errno::Errno::ECHILD) => {
                    return Err(Error::msg("the container init is not our child any more"))
                }
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("waitpid", e)),
            }
        }
        match sfd.read_signal() {
            Ok(Some(info)) => {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    let _ = crate::sys::kill_raw(init.as_raw(), sig);
                }
            }
            Ok(None) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("read signalfd", e)),
        }
    }
}
