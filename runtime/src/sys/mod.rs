//! Thin wrappers over raw syscalls that nix does not cover safely. This is the only home of `unsafe`
//! in skiff; every block says why it is sound. Nothing here allocates between fork and exec.

pub mod bpf;
pub mod eventfd;
pub mod mount;

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// The outcome of a fork-like call, as seen by the calling process.
pub enum Forked {
    Parent(Pid),
    Child,
}

/// fork(2). skiff is single-threaded (no async runtime, no helper threads), so the child may
/// keep using the allocator and std after the fork.
pub fn fork() -> Result<Forked, Errno> {
    // SAFETY: skiff never starts a second thread, so no lock can be held by a thread that does
    // not exist in the child; the child is a full copy of a single-threaded process.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// clone3(2) with CLONE_INTO_CGROUP (Linux 5.7): a fork whose child starts in the cgroup v2
/// directory `cgroup` (an fd opened on it, not O_PATH), so no process is migrated: a write to
/// cgroup.procs waits for an RCU grace period (the threadgroup lock), a fork does not.
pub fn fork_into_cgroup(cgroup: BorrowedFd<'_>) -> Result<Forked, Errno> {
    // struct clone_args of linux/sched.h up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: with no stack clone3 behaves like fork(2) (the child runs on a copy of the
    // caller's stack); `args` is a valid clone_args of the size passed and outlives the call.
    // Same single-threaded argument as `fork` above.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// clone(2) with CLONE_PARENT: the child becomes a sibling of the caller, i.e. a child of the
/// caller's parent. The intermediate setup process uses it so that the container's init is a child
/// of `skiff create/run` and, once that exits, is reparented to the caller's subreaper.
pub fn fork_as_sibling() -> Result<Forked, Errno> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: with a null stack pointer clone(2) behaves like fork(2): the child runs on a copy of
    // the caller's stack. Same single-threaded argument as `fork` above.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(Pid::from_raw(pid as i32))),
    }
}

/// Marks every fd from `first` upwards close-on-exec (close_range(2), CLOSE_RANGE_CLOEXEC).
/// Falls back to walking /proc/self/fd on kernels (or seccomp profiles) without close_range.
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags of this process; no memory is touched.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if Errno::result(ret).is_ok() {
        return Ok(());
    }
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|_| Errno::last())?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd: &RawFd| *fd >= first as RawFd)
        .collect();
    for fd in fds {
        // The directory's own fd is gone by now: EBADF is expected for it.
        match nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)) {
            Ok(_) | Err(Errno::EBADF) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes `fd` (a tty) the controlling terminal of this session (ioctl TIOCSCTTY).
pub fn set_controlling_tty(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: TIOCSCTTY takes an int argument by value, no pointer.
    let ret = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

/// Sets a tty's window size (ioctl TIOCSWINSZ).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), Errno> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `struct winsize` from the pointer, which points at a live local.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) };
    Errno::result(ret).map(drop)
}

/// A tty's window size as (rows, cols) (ioctl TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> Result<(u16, u16), Errno> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a `struct winsize` through the pointer, which points at a live local.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    Errno::result(ret).map(|_| (ws.ws_row, ws.ws_col))
}

/// setdomainname(2), which nix does not wrap.
pub fn set_domainname(name: &str) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe the bytes of a live &str.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// Brings the loopback interface up in the current network namespace, as runc does for a new one.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: socket(2) with constant arguments; the fd is closed below on every path.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(Errno::last());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq behind a valid pointer to a local.
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req as *mut libc::ifreq) < 0 {
            Err(Errno::last())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            Errno::result(libc::ioctl(sock, libc::SIOCSIFFLAGS, &req as *const libc::ifreq)).map(drop)
        }
    };
    // SAFETY: `sock` is an fd this function opened and nothing else owns.
    unsafe { libc::close(sock) };
    result
}

/// Resets every catchable signal to its default disposition and unblocks all signals, so the
/// container process does not inherit skiff's ignored SIGPIPE or blocked set across execve.
pub fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code; invalid numbers just fail.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&empty), None);
}

/// flock(2) LOCK_UN: releases the lock for every fd sharing the open file description (a
/// forked child's copy included).
pub fn flock_unlock(fd: BorrowedFd<'_>) {
    // SAFETY: flock only takes an fd and a flag.
    let _ = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
}

/// flock(2) on an fd, blocking, exclusive.
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    loop {
        // SAFETY: flock only takes an fd and a flag.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) };
        match Errno::result(ret) {
            Err(Errno::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING): gives the container a session keyring of its own, so
/// it does not share the caller's keys. nix has no keyctl wrapper.
pub fn join_session_keyring(name: &std::ffi::CStr) -> Result<(), Errno> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: the name pointer is a NUL-terminated string alive for the call.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// execve(2) wrapper returning only on failure.
pub fn execve(path: &std::ffi::CStr, args: &[std::ffi::CString], env: &[std::ffi::CString]) -> Errno {
    match nix::unistd::execve(path, args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// Takes ownership of a raw fd that a nix call returned to us.
pub fn owned_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: callers pass fds freshly returned by open/openat or just received with SCM_RIGHTS,
    // owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// kill(2) with any signal number, including real-time signals nix's enum lacks.
pub fn kill_raw(pid: i32, sig: i32) -> Result<(), Errno> {
    // SAFETY: kill takes two integers.
    Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// pidfd_open(2) (Linux 5.3): an fd that polls readable once `pid` has exited. Neither nix nor
/// the libc crate bind it.
pub fn pidfd_open(pid: i32) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    Ok(owned_fd(fd as RawFd))
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio) for the calling process; glibc has no wrapper.
pub fn set_io_priority(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    const IOPRIO_CLASS_SHIFT: u32 = 13;
    let prio = (class << IOPRIO_CLASS_SHIFT) | level;
    // SAFETY: ioprio_set takes three integers.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio as libc::c_int) };
    Errno::result(ret).map(drop)
}

/// The kernel's `struct sched_attr` (SCHED_ATTR_SIZE_VER0, 48 bytes).
#[repr(C)]
#[derive(Default)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// sched_setattr(0, attr, 0) for the calling thread; glibc has no wrapper.
pub fn sched_setattr(attr: &mut SchedAttr) -> Result<(), Errno> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel reads `size` bytes from a pointer to a live, fully initialised repr(C)
    // struct laid out as its struct sched_attr.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr as *mut SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// set_mempolicy(2): the calling thread's NUMA policy, inherited across fork and execve.
/// `nodemask` holds one bit per node, 64 nodes per word.
pub fn set_mempolicy(mode_and_flags: i32, nodemask: &[u64]) -> Result<(), Errno> {
    // The kernel reads `maxnode - 1` bits (mm/mempolicy.c get_nodes, a historical off-by-one).
    let maxnode = (nodemask.len() * 64 + 1) as libc::c_ulong;
    let mask = if nodemask.is_empty() { std::ptr::null() } else { nodemask.as_ptr() };
    // SAFETY: the kernel reads at most maxnode - 1 bits, i.e. nodemask.len() words, from `mask`,
    // which points into a live slice (or is null with maxnode 1, and then nothing is read).
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode_and_flags, mask, maxnode) };
    Errno::result(ret).map(drop)
}

/// The extended attribute names of an open file (flistxattr), NUL-separated as the kernel gives
/// them. nix has no xattr calls.
pub fn list_xattrs(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    // SAFETY: `buf` is null with size 0 (the kernel only reports the size) or a live buffer the
    // kernel writes at most `size` bytes into.
    read_sized(|buf, size| unsafe { libc::flistxattr(fd.as_raw_fd(), buf.cast(), size) })
}

/// The value of one extended attribute of an open file (fgetxattr).
pub fn get_xattr(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> Result<Vec<u8>, Errno> {
    // SAFETY: `name` is NUL-terminated; `buf` as for `list_xattrs`.
    read_sized(|buf, size| unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.cast(), size) })
}

/// The xattr calls' size protocol: `call(null, 0)` says how many bytes there are, then
/// `call(buf, len)` fills the buffer; ERANGE there means the value grew in between: ask again.
fn read_sized(mut call: impl FnMut(*mut u8, usize) -> libc::ssize_t) -> Result<Vec<u8>, Errno> {
    loop {
        let size = Errno::result(call(std::ptr::null_mut(), 0))?;
        let mut buf = vec![0u8; size as usize];
        match Errno::result(call(buf.as_mut_ptr(), buf.len())) {
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
        }
    }
}

/// Sets one extended attribute of an open file (fsetxattr, create or replace).
pub fn set_xattr(fd: BorrowedFd<'_>, name: &std::ffi::CStr, value: &[u8]) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and `value` is a live slice whose length is passed; the
    // kernel only reads them.
    let ret = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    Errno::result(ret).map(drop)
}

/// _exit(2): ends the process at once, without atexit handlers or flushing std's buffers (a
/// forked helper must not flush output it copied from its parent).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns; skipping Rust destructors is the point.
    unsafe { libc::_exit(code) }
}
