//! The new mount API (Linux 5.2+, mount_setattr 5.12+), which nix does not wrap: per-mount
//! attributes for a whole subtree (`rro`, `rnosuid`...), and detached copies of a tree that can
//! be id-mapped before they are attached. No `mount_attr` is ever read back from the kernel.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

/// What one mount_setattr(2) call changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountAttr {
    /// MOUNT_ATTR_* bits to set.
    pub set: u64,
    /// MOUNT_ATTR_* bits to clear (with MOUNT_ATTR__ATIME whenever an atime mode is set).
    pub clr: u64,
    /// MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE, or 0 to leave propagation alone.
    pub propagation: u64,
    /// A user namespace whose mapping MOUNT_ATTR_IDMAP puts on the mount.
    pub userns: Option<std::os::fd::RawFd>,
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr): changes the mount `fd` is the
/// root of (an O_PATH fd opened on it, or one open_tree returned), and with `recursive` every
/// mount below it too.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> Result<(), Errno> {
    let mut raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: attr.propagation,
        userns_fd: attr.userns.map(|fd| fd as u64).unwrap_or(0),
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a NUL-terminated empty string literal, `raw` is a live, fully
    // initialised struct mount_attr and its size is passed with it; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            &mut raw as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH [| AT_RECURSIVE]): a
/// detached copy of the mount `fd` names (with every mount below it when `recursive`), the
/// bind-mount-to-be that mount_setattr can change before move_mount attaches it.
pub fn open_tree_clone(fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let flags = libc::OPEN_TREE_CLONE
        | libc::OPEN_TREE_CLOEXEC
        | libc::AT_EMPTY_PATH as libc::c_uint
        | if recursive { libc::AT_RECURSIVE as libc::c_uint } else { 0 };
    // SAFETY: the path is a NUL-terminated empty string literal; no memory is written.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
    Errno::result(ret).map(|fd| super::owned_fd(fd as std::os::fd::RawFd))
}

/// move_mount(from, "", to, "", F_EMPTY_PATH | T_EMPTY_PATH): attaches the detached tree `from`
/// on the file `to` is open on.
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: both paths are NUL-terminated empty string literals; no memory is written.
    let ret = unsafe {
        libc::syscall(libc::SYS_move_mount, from.as_raw_fd(), c"".as_ptr(), to.as_raw_fd(), c"".as_ptr(), flags)
    };
    Errno::result(ret).map(drop)
}
