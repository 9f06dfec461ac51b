//! The caller's end of `--console-socket`: a unix socket listener that receives the pty master
//! the runtime sends with SCM_RIGHTS, and reads the container's terminal output from it. Also a
//! pty of our own for a client (`docker run -it`) to run on.

use crate::host::PATIENCE;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on `path` (which must not exist yet).
    pub fn bind(path: &Path) -> ConsoleSocket {
        let listener =
            UnixListener::bind(path).unwrap_or_else(|e| panic!("bind console socket {}: {e}", path.display()));
        listener.set_nonblocking(true).expect("nonblocking listener");
        ConsoleSocket { listener, path: path.to_path_buf() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one connection and returns the file descriptor passed over it (the pty master).
    #[track_caller]
    pub fn receive_pty(&self) -> OwnedFd {
        let deadline = Instant::now() + PATIENCE;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no connection on console socket after {PATIENCE:?}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept on console socket: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking stream");
        stream.set_read_timeout(Some(PATIENCE)).expect("stream read timeout");
        receive_with_fd(&stream).1
    }
}

/// Receives one message and the single fd passed with it (SCM_RIGHTS) on a connected socket.
#[track_caller]
pub fn receive_with_fd(stream: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .unwrap_or_else(|e| panic!("recvmsg: {e}"));
    let mut fds = Vec::new();
    for c in msg.cmsgs().expect("decode control messages") {
        if let ControlMessageOwned::ScmRights(received) = c {
            fds.extend(received);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 1, "expected exactly one fd with the message, got {fds:?}");
    // SAFETY: the kernel just installed this descriptor in our table for us; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    (buf[..n].to_vec(), fd)
}

/// Reads the pty master until the slave side is closed by every process (EIO) or [`PATIENCE`]
/// passes. Returns everything read, lossily decoded.
pub fn read_pty_to_end(master: OwnedFd) -> String {
    let mut file = std::fs::File::from(master);
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        // Poll with a short timeout so a container that never closes its tty cannot hang us.
        let ready = {
            let mut pfd = [nix::poll::PollFd::new(file.as_fd(), nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16))
        };
        match ready {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: the last slave fd was closed.
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `data` to the pty master (the container's terminal input).
pub fn write_pty(master: &OwnedFd, data: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::File::from(master.try_clone().expect("dup pty master"));
    f.write_all(data).expect("write to pty master");
}

/// Runs `cmd` (a client such as `docker run -it`) on a fresh pty of `rows` x `cols` — its stdin,
/// stdout and stderr are the slave — after writing `input` to the master. Returns the exit code
/// (None if killed) and everything the terminal showed. A client still running after
/// [`PATIENCE`] is killed.
pub fn run_in_pty(mut cmd: std::process::Command, rows: u16, cols: u16, input: &[u8]) -> (Option<i32>, String) {
    let size = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let dup = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().expect("dup pty slave"));
    cmd.stdin(dup(&pty.slave)).stdout(dup(&pty.slave)).stderr(dup(&pty.slave));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // only the client may hold the slave, so the master reads EIO once it exits
    drop(cmd);
    drop(pty.slave);
    if !input.is_empty() {
        write_pty(&pty.master, input);
    }
    let mut file = std::fs::File::from(pty.master);
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut status = None;
    loop {
        let ready = {
            let mut pfd = [nix::poll::PollFd::new(file.as_fd(), nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(100u16))
        };
        let eof = match ready {
            Ok(0) | Err(nix::errno::Errno::EINTR) => false,
            Ok(_) => match file.read(&mut buf) {
                Ok(0) => true,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::Interrupted,
            },
            Err(_) => true,
        };
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        if (eof && status.is_some()) || Instant::now() > deadline {
            break;
        }
        if eof {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let code = match status {
        Some(s) => s.code(),
        None => {
            let _ = child.kill();
            child.wait().ok().and_then(|s| s.code())
        }
    };
    (code, String::from_utf8_lossy(&out).into_owned())
}

/// A client (`skiff run` in the foreground) on a pty the test owns, as a user's terminal: the
/// client is the session leader with the pty as its controlling terminal (`setsid --ctty`), so
/// resizing the pty sends it SIGWINCH. The test types on the master, reads what the terminal
/// shows, resizes it and reads its settings (raw or not). Drop kills a client still running.
pub struct PtySession {
    master: std::fs::File,
    /// Kept open so the pty's settings survive the client's exit and can be checked.
    slave: OwnedFd,
    child: std::process::Child,
    /// The terminal's settings before the client started (a fresh pty: cooked, echoing).
    pub initial: nix::sys::termios::Termios,
    /// Everything the terminal showed so far.
    pub seen: String,
    consumed: usize,
}

impl PtySession {
    /// Starts `program args...` on a fresh `rows` x `cols` pty.
    pub fn spawn(program: &Path, args: &[&str], rows: u16, cols: u16) -> PtySession {
        let size = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let initial = nix::sys::termios::tcgetattr(&pty.slave).expect("tcgetattr on the test's pty");
        let dup = |fd: &OwnedFd| std::process::Stdio::from(fd.try_clone().expect("dup pty slave"));
        let mut cmd = std::process::Command::new("setsid");
        cmd.arg("--ctty").arg(program).args(args);
        cmd.stdin(dup(&pty.slave)).stdout(dup(&pty.slave)).stderr(dup(&pty.slave));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let master = std::fs::File::from(pty.master);
        nix::fcntl::fcntl(
            master.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_RDWR),
        )
        .expect("make the pty master non-blocking");
        PtySession { master, slave: pty.slave, child, initial, seen: String::new(), consumed: 0 }
    }

    /// Types `text` on the terminal.
    pub fn type_text(&mut self, text: &str) {
        use std::io::Write;
        self.master.write_all(text.as_bytes()).expect("write to the pty master");
    }

    /// Reads what the terminal shows until `needle` appears after what earlier `expect`s
    /// consumed; returns the text up to and including it. Panics with everything seen after
    /// [`PATIENCE`].
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(at) = self.seen[self.consumed..].find(needle) {
                let end = self.consumed + at + needle.len();
                let text = self.seen[self.consumed..end].to_string();
                self.consumed = end;
                return text;
            }
            assert!(Instant::now() < deadline, "the terminal never showed {needle:?}; it showed {:?}", self.seen);
            self.read_some(Duration::from_millis(100));
        }
    }

    fn read_some(&mut self, wait: Duration) {
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut pfd = [nix::poll::PollFd::new(self.master.as_fd(), nix::poll::PollFlags::POLLIN)];
        if !matches!(nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)), Ok(n) if n > 0) {
            return;
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = self.master.read(&mut buf) {
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }

    /// Resizes the terminal, as a terminal emulator does when its window changes: the kernel
    /// sends SIGWINCH to the client.
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads a `struct winsize` from the pointer, which points at a live local.
        let ret = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) };
        assert_eq!(ret, 0, "TIOCSWINSZ on the test's pty: {}", std::io::Error::last_os_error());
    }

    /// The terminal's current settings (what `stty` would show on it).
    pub fn termios(&self) -> nix::sys::termios::Termios {
        nix::sys::termios::tcgetattr(&self.slave).expect("tcgetattr on the test's pty")
    }

    /// Waits for the client to exit, reading what it still shows; returns its exit code.
    #[track_caller]
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the client") {
                self.read_some(Duration::from_millis(50));
                return status.code();
            }
            assert!(Instant::now() < deadline, "the client still runs after {PATIENCE:?}; it showed {:?}", self.seen);
            self.read_some(Duration::from_millis(50));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
