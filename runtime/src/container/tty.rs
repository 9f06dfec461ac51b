//! The foreground terminal of `run` and `exec` without `--console-socket`, as runc gives it: the
//! container's process sends its pty master over a socketpair skiff keeps, and skiff relays it to
//! the caller: the caller's terminal in raw mode (restored on every way out), the pty given the
//! caller's window size and resized on SIGWINCH, stdin copied to the pty and the pty to stdout,
//! other signals forwarded, until the process exits with the status `run` exits with.
//! A caller without a terminal (stdin a file or pipe) still gets the relay, without raw mode.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{self, OutputFlags, SetArg, Termios};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};
use crate::sys;

/// A connected pair: the first end stays with skiff, the second goes to the container's process
/// in place of a connection to `--console-socket`.
pub fn channel() -> Result<(UnixStream, UnixStream)> {
    UnixStream::pair().ctx(|| "socketpair for the container's pty".into())
}

/// Receives the pty master the container's process sent on our end of [`channel`].
pub fn receive_master(ours: &UnixStream) -> Result<OwnedFd> {
    // The process sent it before create returned; the timeout only guards against a bug.
    ours.set_read_timeout(Some(Duration::from_secs(10))).ctx(|| "set a timeout on the pty channel".into())?;
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        ours.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive the container's pty master".into())?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().ctx(|| "receive the container's pty master".into())? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(received) = c {
            fds.extend(received.into_iter().map(sys::owned_fd));
        }
    }
    match fds.len() {
        1 => Ok(fds.remove(0)),
        n => Err(Error::msg(format!("the container's process sent {n} fds instead of its pty master"))),
    }
}

/// The caller's terminal in raw mode until dropped: runc takes the first of stderr, stdout and
/// stdin that is a terminal, else /dev/tty.
struct HostTerminal {
    fd: OwnedFd,
    saved: Termios,
}

impl HostTerminal {
    /// None when the caller has no terminal at all.
    fn raw() -> Result<Option<HostTerminal>> {
        let Some(fd) = find_host_terminal() else { return Ok(None) };
        let saved = termios::tcgetattr(&fd).ctx(|| "read the terminal's settings".into())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Output processing stays on, as runc's console.SetRaw keeps it: the caller's terminal
        // turns the container's "\n" into "\r\n" (the pty itself has ONLCR cleared).
        raw.output_flags |= OutputFlags::OPOST;
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw).ctx(|| "put the terminal in raw mode".into())?;
        Ok(Some(HostTerminal { fd, saved }))
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        if let Err(e) = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved) {
            crate::log::warn(&format!("restore the terminal's settings: {e}"));
        }
    }
}

fn find_host_terminal() -> Option<OwnedFd> {
    for fd in [2, 1, 0] {
        if nix::unistd::isatty(fd).unwrap_or(false) {
            let borrowed = match fd {
                0 => std::io::stdin().as_fd().try_clone_to_owned(),
                1 => std::io::stdout().as_fd().try_clone_to_owned(),
                _ => std::io::stderr().as_fd().try_clone_to_owned(),
            };
            if let Ok(owned) = borrowed {
                return Some(owned);
            }
        }
    }
    let f =
        nix::fcntl::open("/dev/tty", OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty());
    f.ok().map(sys::owned_fd)
}

/// The pty of a foreground container and the caller's terminal, set up; [`Relay::run`] relays.
pub struct Relay {
    master: OwnedFd,
    host: Option<HostTerminal>,
}

impl Relay {
    /// Takes the master, puts the caller's terminal in raw mode and gives the pty its size. Done
    /// before the container's program starts, so it starts with the right size and no echo of
    /// the caller's own terminal doubles what it prints.
    pub fn new(master: OwnedFd) -> Result<Relay> {
        // As runc does: the pty does not add "\r" to "\n"; the caller's terminal does.
        let mut t = termios::tcgetattr(&master).ctx(|| "read the pty's settings".into())?;
        t.output_flags.remove(OutputFlags::ONLCR);
        termios::tcsetattr(&master, SetArg::TCSANOW, &t).ctx(|| "clear ONLCR on the pty".into())?;
        let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL).ctx(|| "fcntl F_GETFL on the pty".into())?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(master.as_raw_fd(), FcntlArg::F_SETFL(flags)).ctx(|| "make the pty non-blocking".into())?;
        let relay = Relay { master, host: HostTerminal::raw()? };
        relay.resize();
        Ok(relay)
    }

    /// [`Relay::new`] for a container with a terminal, None for one without.
    pub fn new_opt(master: Option<OwnedFd>) -> Result<Option<Relay>> {
        master.map(Relay::new).transpose()
    }

    /// Copies the caller's window size to the pty (the kernel then sends SIGWINCH inside).
    fn resize(&self) {
        let Some(host) = &self.host else { return };
        if let Ok((rows, cols)) = sys::window_size(host.fd.as_fd()) {
            if let Err(e) = sys::set_window_size(self.master.as_fd(), rows, cols) {
                crate::log::warn(&format!("resize the container's pty: {e}"));
            }
        }
    }

    /// Relays until `child` exits; returns its exit code (128+N for a signal). `sfd` reads every
    /// signal skiff blocked: SIGWINCH resizes, SIGCHLD reaps, the rest go to `child`.
    pub fn run(self, sfd: &SignalFd, child: Pid) -> Result<i32> {
        let stdin = std::io::stdin();
        let mut stdin_open = true;
        let mut master_open = true;
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            if let Some(code) = super::run::reap(child)? {
                if master_open {
                    self.drain(&mut buf);
                }
                return Ok(code);
            }
            let want_stdin = stdin_open && pending.len() < 64 * 1024;
            let mut master_events = PollFlags::POLLIN;
            if !pending.is_empty() {
                master_events |= PollFlags::POLLOUT;
            }
            let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            if master_open {
                fds.push(PollFd::new(self.master.as_fd(), master_events));
            }
            if want_stdin {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll the container's pty", e)),
            }
            let revents: Vec<PollFlags> = fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())).collect();
            drop(fds);
            let mut i = 1;
            if master_open {
                let ev = revents[i];
                i += 1;
                if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    master_open = copy_out(self.master.as_fd(), &mut buf);
                }
                if master_open && ev.contains(PollFlags::POLLOUT) {
                    match nix::unistd::write(&self.master, &pending) {
                        Ok(n) => drop(pending.drain(..n)),
                        Err(Errno::EAGAIN | Errno::EINTR) => {}
                        // The slave side is gone: nothing will read what is typed any more.
                        Err(_) => pending.clear(),
                    }
                }
            }
            if want_stdin && !revents[i].is_empty() {
                match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
                if !master_open {
                    pending.clear();
                }
            }
            if !revents[0].is_empty() {
                match sfd.read_signal() {
                    Ok(Some(info)) => match info.ssi_signo as i32 {
                        libc::SIGCHLD => {}
                        libc::SIGWINCH => self.resize(),
                        sig => {
                            let _ = sys::kill_raw(child.as_raw(), sig);
                        }
                    },
                    Ok(None) | Err(Errno::EINTR | Errno::EAGAIN) => {}
                    Err(e) => return Err(Error::sys("read signalfd", e)),
                }
            }
        }
    }

    /// After the process exited: what it wrote may still be on its way through the pty. Read
    /// until the pty reports every slave closed (EIO), or, if something else in the container
    /// still holds it open, until it has been quiet for a moment.
    fn drain(&self, buf: &mut [u8]) {
        loop {
            let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(0) => return,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
            if !copy_out(self.master.as_fd(), buf) {
                return;
            }
        }
    }
}

/// Copies what the pty has to stdout. Returns false once the pty has no slave left (EIO).
fn copy_out(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    match nix::unistd::read(master.as_raw_fd(), buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut out = std::io::stdout().lock();
            // A caller that closed its stdout loses the output, not the container.
            let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
            true
        }
        Err(Errno::EAGAIN | Errno::EINTR) => true,
        Err(_) => false,
    }
}
