//! The defence against CVE-2019-5736: a container process that can see a skiff process (the
//! init before its execve, an `exec` entering the container) could open `/proc/PID/exe` and,
//! once skiff is done with it, write through that fd into the skiff binary on the host. So
//! `create`, `run` and `exec` first re-execute skiff from a copy nobody can write: every process
//! that ever enters a container then runs from it, and the binary on disk is never reachable
//! from inside.
//!
//! The copy is, as in runc 1.2, the binary seen through a private overlayfs mount of its
//! directory: lower layers only (the binary's directory over the state root), so the filesystem
//! itself refuses every write (EROFS), mounted with fsmount(2) and never attached anywhere, so
//! nothing can reach or remount it, and sharing the binary's page cache, so it costs three
//! syscalls instead of a copy. Where the kernel or the caller's privileges refuse that mount
//! (rootless, no overlayfs, a state root that overlaps the binary's directory), skiff falls back
//! to a sealed memfd copy of itself (F_SEAL_WRITE, or F_SEAL_FUTURE_WRITE when its pages are
//! busy: see `seal`), as runc 1.1 does on every `runc init`. `make bench`'s phases, 40 runs
//! interleaved at load 17: re-exec and seal 4.0 ms through the overlay, 25 ms through the memfd
//! (its exit 3.7 ms against 7.8: freeing the copy); `run` 69 ms against 104.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, statfs, OVERLAYFS_SUPER_MAGIC};
use nix::sys::statvfs::FsFlags;

use crate::error::{Error, Result, SysContext};
use crate::sys::mount as newmount;

/// The memfd's name; /proc/self/exe of the sealed copy reads `/memfd:skiff (deleted)` and the
/// process name (comm) `memfd:skiff`.
const NAME: &CStr = c"skiff";

/// True if this process already runs from an unwritable copy: a read-only overlayfs (what
/// `overlay_copy` makes; a lower-only overlay refuses writes whatever its mount flags) or the
/// sealed memfd.
pub fn is_sealed() -> bool {
    if statfs("/proc/self/exe").is_ok_and(|s| is_readonly_overlay(&s)) {
        return true;
    }
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.as_os_str().as_bytes().starts_with(b"/memfd:skiff "))
        .unwrap_or(false)
}

fn is_readonly_overlay(s: &nix::sys::statfs::Statfs) -> bool {
    s.filesystem_type() == OVERLAYFS_SUPER_MAGIC && s.flags().contains(FsFlags::ST_RDONLY)
}

/// Re-executes this process from an unwritable copy of its binary, with the same arguments and
/// environment. `scratch` is a directory that is neither the binary's nor above or below it (the
/// state root): overlayfs needs a second lower layer. Returns only if already sealed (Ok) or on
/// failure (Err); before anything of the container is made, so nothing needs undoing.
pub fn ensure_sealed(scratch: &Path) -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let exe: OwnedFd = match overlay_copy(scratch) {
        Ok(fd) => fd,
        Err(e) => {
            crate::log::debug(&format!("no overlayfs copy of skiff ({e}): a sealed memfd copy instead"));
            memfd_copy()?
        }
    };
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::msg("an argument contains a NUL byte"))?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::msg("an environment variable contains a NUL byte"))?;
    // Close-on-exec is fine: fexecve (execveat AT_EMPTY_PATH) opens the ELF before closing fds.
    let err = nix::unistd::fexecve(exe.as_raw_fd(), &args, &env).unwrap_err();
    Err(Error::sys("re-execute skiff from its unwritable copy", err))
}

/// The binary through a detached, read-only overlayfs of its directory (runc 1.2's
/// sealedOverlayfs): an O_PATH fd, checked to be what [`is_sealed`] will see after the exec.
fn overlay_copy(scratch: &Path) -> Result<OwnedFd> {
    if crate::failpoint::fault("exe-overlay-refused") {
        return Err(Error::sys("fsopen overlay", nix::errno::Errno::EPERM));
    }
    let real = std::fs::read_link("/proc/self/exe").ctx(|| "readlink /proc/self/exe".into())?;
    let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
        return Err(Error::msg(format!("{}: no directory to mount", real.display())));
    };
    // Overlay layers are separated by ':' and escape with '\'.
    let escape = |p: &Path| p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:");
    // The binary's directory on top, so a file of the same name in the scratch layer is hidden.
    let lower = format!("{}:{}", escape(dir), escape(scratch));
    let ctx = newmount::fsopen(c"overlay").ctx(|| "fsopen overlay".into())?;
    newmount::fsconfig_string(ctx.as_fd(), c"lowerdir", &lower).ctx(|| format!("overlay lowerdir={lower}"))?;
    // xino would only log to dmesg when the layers are on different filesystems.
    let _ = newmount::fsconfig_string(ctx.as_fd(), c"xino", "off");
    newmount::fsconfig_create(ctx.as_fd()).ctx(|| format!("create overlay lowerdir={lower}"))?;
    let attrs = newmount::MOUNT_ATTR_RDONLY | newmount::MOUNT_ATTR_NODEV | newmount::MOUNT_ATTR_NOSUID;
    let mnt = newmount::fsmount(ctx.as_fd(), attrs).ctx(|| "fsmount the overlay".into())?;
    let fd = nix::fcntl::openat(
        Some(mnt.as_raw_fd()),
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {} in the overlay", name.to_string_lossy()))?;
    let file = File::from(crate::sys::owned_fd(fd));
    let st = fstatfs(&file).ctx(|| "fstatfs the overlay copy".into())?;
    if !is_readonly_overlay(&st) {
        return Err(Error::msg("the overlay copy is not a read-only overlayfs"));
    }
    // The same file as the one running: a binary replaced since our exec (an upgrade) fails
    // here and the memfd copy of what runs is taken instead.
    let (ours, theirs) = (
        std::fs::metadata("/proc/self/exe").ctx(|| "stat /proc/self/exe".into())?,
        file.metadata().ctx(|| "stat the overlay copy".into())?,
    );
    if (ours.size(), ours.mtime(), ours.mtime_nsec()) != (theirs.size(), theirs.mtime(), theirs.mtime_nsec()) {
        return Err(Error::msg(format!("{} changed since skiff started", real.display())));
    }
    Ok(file.into())
}

/// A sealed memfd copy of the binary (runc 1.1's way).
fn memfd_copy() -> Result<OwnedFd> {
    let mut exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe to clone skiff".into())?;
    let memfd = memfd_create(NAME, MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING)
        .ctx(|| "memfd_create for the sealed skiff copy".into())?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).ctx(|| "copy skiff into its sealed memfd".into())?;
    seal(&copy)?;
    Ok(copy.into())
}

/// Seals the copy against writes, resizing and further seal changes.
///
/// F_SEAL_WRITE fails with EBUSY while any page of the file has a reference the kernel cannot
/// account for (it waits about 70 ms for them to go: a page still in a per-CPU LRU batch or
/// being migrated under memory pressure). That is transient; under load CI saw it once in a
/// thousand creates. So the file is first sealed with F_SEAL_FUTURE_WRITE (Linux 5.1),
/// which forbids every write(2) and every new writable mapping and never waits, since only this
/// process has ever held the file and it never mapped it; F_SEAL_WRITE is then retried and, if
/// the pages stay busy, left out: the copy is already unwritable.
fn seal(copy: &File) -> Result<()> {
    let fd = copy.as_raw_fd();
    let base = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW;
    let future = match nix::fcntl::fcntl(fd, FcntlArg::F_ADD_SEALS(base | SealFlag::F_SEAL_FUTURE_WRITE)) {
        Ok(_) => true,
        Err(nix::errno::Errno::EINVAL) => false,
        Err(e) => return Err(Error::sys("seal the skiff copy (F_SEAL_FUTURE_WRITE)", e)),
    };
    let mut tries = 0;
    loop {
        let sealed = if crate::failpoint::fault("seal-write-busy") {
            Err(nix::errno::Errno::EBUSY)
        } else {
            nix::fcntl::fcntl(fd, FcntlArg::F_ADD_SEALS(base | SealFlag::F_SEAL_WRITE))
        };
        match sealed {
            Ok(_) => break,
            Err(nix::errno::Errno::EBUSY) if tries < 3 => tries += 1,
            Err(nix::errno::Errno::EBUSY) if future => break,
            Err(e) => return Err(Error::sys("seal the skiff copy (F_SEAL_WRITE)", e)),
        }
    }
    nix::fcntl::fcntl(fd, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SEAL))
        .ctx(|| "seal the skiff copy (F_SEAL_SEAL)".into())?;
    Ok(())
}
