//! The defence against CVE-2019-5736: a container process that can see a skiff process (the
//! init before its execve, an `exec` entering the container) could open `/proc/PID/exe` and,
//! once skiff is done with it, write through that fd into the skiff binary on the host. So
//! `create`, `run` and `exec` first re-execute skiff from a sealed memfd copy of itself: every
//! process that ever enters a container then runs from an anonymous file that nobody can write
//! (F_SEAL_WRITE, or F_SEAL_FUTURE_WRITE when its pages are busy: see `seal`) or resize, and
//! the binary on disk is never reachable from inside.
//!
//! runc 1.1 makes the same copy on every `runc init`. A copy cached on disk would need a
//! read-only mount kept on the host to stay unwritable, so skiff copies per invocation; the cost
//! (a 3.9 MB sendfile into tmpfs plus one execve) is measured by `make bench`.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use crate::error::{Error, Result, SysContext};

/// The memfd's name; /proc/self/exe of the sealed copy reads `/memfd:skiff (deleted)` and the
/// process name (comm) `memfd:skiff`.
const NAME: &CStr = c"skiff";

/// True if this process already runs from the sealed copy.
pub fn is_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.as_os_str().as_bytes().starts_with(b"/memfd:skiff "))
        .unwrap_or(false)
}

/// Re-executes this process from a sealed memfd copy of its binary, with the same arguments and
/// environment. Returns only if already sealed (Ok) or on failure (Err); before anything of the
/// container is made, so nothing needs undoing.
pub fn ensure_sealed() -> Result<()> {
    if is_sealed() {
        return Ok(());
    }
    let mut exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe to clone skiff".into())?;
    let memfd = memfd_create(NAME, MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING)
        .ctx(|| "memfd_create for the sealed skiff copy".into())?;
    let mut copy = File::from(memfd);
    std::io::copy(&mut exe, &mut copy).ctx(|| "copy skiff into its sealed memfd".into())?;
    seal(&copy)?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::msg("an argument contains a NUL byte"))?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::msg("an environment variable contains a NUL byte"))?;
    // MFD_CLOEXEC is fine: fexecve (execveat AT_EMPTY_PATH) opens the ELF before closing fds.
    let err = nix::unistd::fexecve(copy.as_raw_fd(), &args, &env).unwrap_err();
    Err(Error::sys("re-execute skiff from its sealed copy", err))
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
