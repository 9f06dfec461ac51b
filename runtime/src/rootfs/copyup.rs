//! `tmpcopyup`: a new tmpfs starts with a copy of what the image has under its mount point, as
//! crun copies it (podman asks for it on every tmpfs). Works between two open directories (the
//! one the tmpfs now hides, and the tmpfs's root) with *at calls only, never following a
//! symlink, so nothing outside the rootfs is read or written. Kept: file contents, directories,
//! symlinks, device nodes, fifos and sockets, owner, mode (set-id bits included), extended
//! attributes (file capabilities among them) and times. Hard links become separate copies (crun
//! and runc copy them so too).

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::sys::time::TimeSpec;

use crate::error::{Error, Result};
use crate::sys;

/// Deeper trees than this are refused rather than risking the init's stack.
const MAX_DEPTH: usize = 256;

/// Copies everything in `from` into the empty directory `to`. `to` itself (the tmpfs's root)
/// keeps its owner, and the mode the mount gave it (the covered directory's, unless the options
/// set one), as in runc and crun. `what` names the mount point for errors.
pub fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>, what: &Path) -> Result<()> {
    copy_dir_contents(from, to, what, 0)
}

fn err(path: &Path, op: &str, e: Errno) -> Error {
    Error::msg(format!("tmpcopyup: {op} {}: {e}", path.display()))
}

fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: OFlag, mode: Mode) -> std::result::Result<OwnedFd, Errno> {
    nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW, mode)
        .map(sys::owned_fd)
}

fn copy_dir_contents(from: BorrowedFd<'_>, to: BorrowedFd<'_>, what: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::msg(format!("tmpcopyup: {} is nested more than {MAX_DEPTH} deep", what.display())));
    }
    // A fresh fd for the listing: Dir owns and closes it, `from` stays ours.
    let mut dir = Dir::openat(
        Some(from.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(what, "open", e))?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    drop(dir);
    for name in names {
        let name = OsStr::from_bytes(name.as_bytes());
        let path = what.join(name);
        copy_entry(from, to, name, &path, depth).map_err(|e| match e {
            e @ Error::Msg(_) => e,
            other => Error::msg(format!("tmpcopyup: {}: {other}", path.display())),
        })?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &OsStr, path: &Path, depth: usize) -> Result<()> {
    let st = nix::sys::stat::fstatat(Some(from.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| err(path, "stat", e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    match kind {
        SFlag::S_IFDIR => {
            nix::sys::stat::mkdirat(Some(to.as_raw_fd()), name, Mode::from_bits_truncate(0o700))
                .map_err(|e| err(path, "mkdir", e))?;
            let src = open_at(from, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(|e| err(path, "open", e))?;
            let dst = open_at(to, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(|e| err(path, "open the copy of", e))?;
            copy_dir_contents(src.as_fd(), dst.as_fd(), path, depth + 1)?;
            finish(dst.as_fd(), Some(src.as_fd()), &st, path)
        }
        SFlag::S_IFREG => {
            let src = open_at(from, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty())
                .map_err(|e| err(path, "open", e))?;
            let dst =
                open_at(to, name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, Mode::from_bits_truncate(0o600))
                    .map_err(|e| err(path, "create the copy of", e))?;
            let (mut r, mut w) = (std::fs::File::from(src), std::fs::File::from(dst));
            std::io::copy(&mut r, &mut w)
                .map_err(|e| Error::msg(format!("tmpcopyup: copy {}: {e}", path.display())))?;
            finish(w.as_fd(), Some(r.as_fd()), &st, path)
        }
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(Some(from.as_raw_fd()), name).map_err(|e| err(path, "readlink", e))?;
            nix::unistd::symlinkat(target.as_os_str(), Some(to.as_raw_fd()), name)
                .map_err(|e| err(path, "symlink", e))?;
            chown_at(to, name, &st, path)?;
            set_times_at(to, name, &st, path)
        }
        _ => {
            // Device nodes, fifos and sockets: the node itself, never its content.
            let perm = Mode::from_bits_truncate(st.st_mode & 0o7777);
            nix::sys::stat::mknodat(Some(to.as_raw_fd()), name, kind, perm, st.st_rdev)
                .map_err(|e| err(path, "mknod", e))?;
            chown_at(to, name, &st, path)?;
            nix::sys::stat::fchmodat(Some(to.as_raw_fd()), name, perm, nix::sys::stat::FchmodatFlags::FollowSymlink)
                .map_err(|e| err(path, "chmod", e))?;
            set_times_at(to, name, &st, path)
        }
    }
}

/// Owner, then mode (a chown clears set-id bits), then extended attributes (a chown drops
/// security.capability), then times (every change before moves mtime/ctime) of a copied file or
/// directory, open as `dst`.
fn finish(dst: BorrowedFd<'_>, src: Option<BorrowedFd<'_>>, st: &FileStat, path: &Path) -> Result<()> {
    let (uid, gid) = (nix::unistd::Uid::from_raw(st.st_uid), nix::unistd::Gid::from_raw(st.st_gid));
    nix::unistd::fchown(dst.as_raw_fd(), Some(uid), Some(gid)).map_err(|e| err(path, "chown the copy of", e))?;
    nix::sys::stat::fchmod(dst.as_raw_fd(), Mode::from_bits_truncate(st.st_mode & 0o7777))
        .map_err(|e| err(path, "chmod the copy of", e))?;
    if let Some(src) = src {
        copy_xattrs(src, dst, path)?;
    }
    let (atime, mtime) = times(st);
    nix::sys::stat::futimens(dst.as_raw_fd(), &atime, &mtime).map_err(|e| err(path, "set the times of the copy of", e))
}

fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat, path: &Path) -> Result<()> {
    let (uid, gid) = (nix::unistd::Uid::from_raw(st.st_uid), nix::unistd::Gid::from_raw(st.st_gid));
    nix::unistd::fchownat(Some(dir.as_raw_fd()), name, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| err(path, "chown the copy of", e))
}

fn set_times_at(dir: BorrowedFd<'_>, name: &OsStr, st: &FileStat, path: &Path) -> Result<()> {
    let (atime, mtime) = times(st);
    nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &atime,
        &mtime,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| err(path, "set the times of the copy of", e))
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (TimeSpec::new(st.st_atime, st.st_atime_nsec), TimeSpec::new(st.st_mtime, st.st_mtime_nsec))
}

/// Every extended attribute the source shows us. Names the destination's filesystem refuses
/// (EOPNOTSUPP, EINVAL: e.g. a namespace tmpfs lacks) are skipped, as crun skips them.
fn copy_xattrs(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, path: &Path) -> Result<()> {
    let names = match sys::list_xattrs(src) {
        Ok(n) => n,
        Err(Errno::EOPNOTSUPP) => return Ok(()),
        Err(e) => return Err(err(path, "list the extended attributes of", e)),
    };
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else { continue };
        let value = match sys::get_xattr(src, &cname) {
            Ok(v) => v,
            // Gone since it was listed.
            Err(Errno::ENODATA) => continue,
            Err(e) => return Err(err(path, &format!("read extended attribute {cname:?} of"), e)),
        };
        match sys::set_xattr(dst, &cname, &value) {
            Ok(()) | Err(Errno::EOPNOTSUPP | Errno::EINVAL) => {}
            Err(e) => return Err(err(path, &format!("set extended attribute {cname:?} on the copy of"), e)),
        }
    }
    Ok(())
}
