//! Thin wrappers over the few raw calls nix does not cover; the only home of `unsafe`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `lgetxattr`; `Ok(None)` when the attribute is absent or unsupported.
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let p = cpath(path)?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    // SAFETY: p and n are valid NUL-terminated strings; buf is a writable buffer of buf.len()
    // bytes that outlives the call.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast::<libc::c_void>(), buf.len()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

/// `lsetxattr`.
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let p = cpath(path)?;
    let n = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: p and n are valid NUL-terminated strings; value is a readable slice of
    // value.len() bytes for the duration of the call.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast::<libc::c_void>(), value.len(), 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The write end of the pipe that wakes [`catch_interrupts`]' watchdog (-1 until it exists).
static WAKE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn note_interrupt(sig: libc::c_int) {
    // async-signal-safe: an atomic swap; a second signal ends the process the default way
    // (signal and raise are async-signal-safe too)
    if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        end_by(sig);
    }
    let fd = WAKE.load(std::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        let b = u8::try_from(sig).unwrap_or(0);
        // SAFETY: write(2) is async-signal-safe; fd is the pipe's write end, never closed, and
        // b is a readable byte on this stack frame. A full pipe (impossible: one byte per
        // process) would only lose the wake-up.
        unsafe { libc::write(fd, std::ptr::addr_of!(b).cast::<libc::c_void>(), 1) };
    }
}

/// Restores `sig`'s default disposition and raises it: the process ends as the signal says.
fn end_by(sig: libc::c_int) {
    // SAFETY: restoring the default disposition and raising the signal again are
    // async-signal-safe calls with valid arguments.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// From now on SIGINT, SIGTERM and SIGHUP only set a flag ([`interrupted`]): the build stops
/// at the next point it looks and cleans up (mounts, temp dirs, the step's container) on its
/// way out, instead of dying with them in place. A second signal ends the process at once
/// (the next command cleans up what it left), and so does a watchdog `grace` after the first
/// one: a blocking read of a server that sends nothing never looks at the flag (the HTTP
/// client has no way to cancel it), and one ^C or `kill` must still end the command.
pub fn catch_interrupts(grace: std::time::Duration) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use std::io::Read;
    use std::os::fd::IntoRawFd;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    // the write end lives as long as the process: the handler may write to it at any time
    WAKE.store(w.into_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    std::thread::Builder::new().name("interrupt-watchdog".into()).spawn(move || {
        let mut b = [0u8];
        if std::fs::File::from(r).read_exact(&mut b).is_err() {
            return;
        }
        std::thread::sleep(grace);
        let name = Signal::try_from(libc::c_int::from(b[0])).map(Signal::as_str).unwrap_or("a signal");
        eprintln!(
            "slipway: {name} {} s ago and the command has not stopped (a network read does not look \
             for it): ending now; the next command cleans up what is left",
            grace.as_secs()
        );
        end_by(libc::c_int::from(b[0]));
    })?;
    let act = SigAction::new(SigHandler::Handler(note_interrupt), SaFlags::SA_RESTART, SigSet::empty());
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic and writes a byte to a pipe, which are
        // async-signal-safe; no other handler for these signals is installed by slipway.
        unsafe { sigaction(s, &act) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// `pidfd_open(2)`: a descriptor that turns readable when process `pid` exits (Linux 5.3+;
/// nix 0.29 has no wrapper). The caller must hold `pid` unreaped (its child) so that the number
/// cannot name another process.
pub fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags (0) and returns a new descriptor or -1; no
    // memory is passed.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = std::os::fd::RawFd::try_from(r).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: fd is a descriptor the kernel just returned to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// True once a signal [`catch_interrupts`] caught has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// A file's bytes mapped read-only (private, all pages mapped at once), unmapped on drop: a
/// large file read whole without copying it into fresh memory. Only for files replaced by
/// rename and never rewritten in place (the store's write_atomic): a file truncated while
/// mapped would fault on the pages it lost.
pub struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; sharing or moving its
// address between threads is as safe as a &[u8]'s.
unsafe impl Send for Mapped {}
// SAFETY: as above: nothing ever writes through it.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps the file at `path`.
    pub fn open(path: &Path) -> io::Result<Mapped> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        let len = usize::try_from(f.metadata()?.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        if len == 0 {
            return Ok(Mapped { ptr: std::ptr::null_mut(), len: 0 });
        }
        // SAFETY: a new private read-only mapping of an open file descriptor, at an address the
        // kernel chooses; nothing else refers to that memory. The descriptor may be closed
        // afterwards: the mapping keeps the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped { ptr, len })
    }
}

impl std::ops::Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ptr is a live mapping of len readable bytes until drop, never written.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>(), self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: ptr and len are the mapping made in open, unmapped once, here.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len)
    }
}

/// Makes `cmd`'s child die with the thread that spawns it (PR_SET_PDEATHSIG: a crashed or
/// killed build leaves no helper behind), start in a network namespace of its own when
/// `new_netns`, and inherit `keep` (descriptors opened close-on-exec, so that no other child
/// gets them).
pub fn child_setup(cmd: &mut std::process::Command, new_netns: bool, keep: Vec<std::os::fd::RawFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (prctl, unshare, fcntl) on values it owns; it allocates
    // nothing (`keep` was moved in before the fork).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if new_netns && libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            for &fd in &keep {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
