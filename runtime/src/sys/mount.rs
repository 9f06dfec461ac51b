//! The new mount API (Linux 5.2+, mount_setattr 5.12+), which nix does not wrap: per-mount
//! attributes for a whole subtree (`rro`, `rnosuid`...), detached copies of a tree that can
//! be id-mapped before they are attached, and detached mounts of a new filesystem (the overlay
//! skiff re-executes itself from, security/selfexe.rs). No `mount_attr` is ever read back from the kernel.

use std::ffi::CStr;
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

/// MOUNT_ATTR_* bits of fsmount(2) and mount_setattr(2) (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// fsopen(fstype, FSOPEN_CLOEXEC): a filesystem context to configure with [`fsconfig_string`].
pub fn fsopen(fstype: &CStr) -> Result<OwnedFd, Errno> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    // SAFETY: `fstype` is a NUL-terminated string that outlives the call; nothing is written.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    Errno::result(ret).map(|fd| super::owned_fd(fd as std::os::fd::RawFd))
}

/// fsconfig(ctx, FSCONFIG_SET_STRING, key, value, 0).
pub fn fsconfig_string(ctx: BorrowedFd<'_>, key: &CStr, value: &str) -> Result<(), Errno> {
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    let value = std::ffi::CString::new(value).map_err(|_| Errno::EINVAL)?;
    // SAFETY: key and value are NUL-terminated strings that outlive the call; nothing is written.
    let ret = unsafe {
        libc::syscall(libc::SYS_fsconfig, ctx.as_raw_fd(), FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr(), 0)
    };
    Errno::result(ret).map(drop)
}

/// fsconfig(ctx, FSCONFIG_CMD_CREATE): makes the superblock the context describes.
pub fn fsconfig_create(ctx: BorrowedFd<'_>) -> Result<(), Errno> {
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    // SAFETY: no pointer is passed (null key and value, as the command takes none).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            ctx.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// fsmount(ctx, FSMOUNT_CLOEXEC, attrs): a detached mount of the context's superblock, attached
/// nowhere; it lives as long as an fd or a file opened through it.
pub fn fsmount(ctx: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, Errno> {
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, ctx.as_raw_fd(), FSMOUNT_CLOEXEC, attrs as libc::c_uint) };
    Errno::result(ret).map(|fd| super::owned_fd(fd as std::os::fd::RawFd))
}
