//! eventfd(2), which the cgroup v1 OOM notification (cgroup.event_control) needs and nix
//! does not wrap without an extra feature.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

/// A new close-on-exec eventfd with a zero counter.
pub fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: eventfd takes two integers and returns a new fd or -1; nothing else owns it.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(super::owned_fd(fd))
}
