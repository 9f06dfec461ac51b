//! bpf(2) for cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program, list the
//! ones attached to a cgroup, attach (or atomically replace) and detach them. The program itself is built (and unit-tested) in cgroups/devices.rs; this
//! file only moves bytes into the kernel.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs may be attached to one cgroup; all of them (and its ancestors') must allow.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// With BPF_F_ALLOW_MULTI: put the new program in the place of `replace_bpf_fd`'s, in one step
/// (Linux 5.6).
pub const BPF_F_REPLACE: u32 = 1 << 2;

/// The BPF_PROG_LOAD part of `union bpf_attr` (up to expected_attach_type); the kernel treats
/// the fields after it as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

/// The BPF_PROG_GET_FD_BY_ID part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with `attr` as the command's part of `union bpf_attr`.
///
/// # Safety
/// `attr` must be a fully initialised repr(C) prefix of union bpf_attr for `cmd`, and every
/// pointer in it must point at live memory of the size given next to it, for the duration of
/// the call: the kernel reads and writes through them.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> libc::c_long {
    // SAFETY: the caller's contract above; the kernel reads at most size_of::<T>() bytes of attr.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>() as libc::c_uint) }
}

/// Loads a cgroup device program. `insns` are encoded `struct bpf_insn`s (8 bytes each);
/// `log`, when not empty, receives the verifier's report (log level 1).
pub fn load_cgroup_device_prog(insns: &[u8], license: &CStr, name: &str, log: &mut [u8]) -> Result<OwnedFd, Errno> {
    if !insns.len().is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: (insns.len() / 8) as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    if !log.is_empty() {
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    // The name is at most 15 bytes of [A-Za-z0-9_.] plus the NUL the zeroed array provides.
    for (dst, src) in attr.prog_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    // SAFETY: `attr` is a ProgLoadAttr; its pointers (instructions, license, log buffer) borrow
    // live memory of the sizes given, for the duration of the call. The kernel returns a new fd
    // that nothing else owns.
    let ret = unsafe { bpf(BPF_PROG_LOAD, &mut attr) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(super::owned_fd(ret as i32))
}

/// Attaches a loaded cgroup device program to the cgroup directory `cgroup` (an open fd).
/// With `replace` (and BPF_F_REPLACE in `flags`) it takes that attached program's place.
pub fn attach_cgroup_device(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> Result<(), Errno> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
    };
    // SAFETY: a ProgAttachAttr holds only integers.
    Errno::result(unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }).map(drop)
}

/// Detaches the attached program `prog` from `cgroup`.
pub fn detach_cgroup_device(prog: BorrowedFd<'_>, cgroup: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: a ProgAttachAttr holds only integers.
    Errno::result(unsafe { bpf(BPF_PROG_DETACH, &mut attr) }).map(drop)
}

/// The ids of the device programs attached to `cgroup` itself (not its ancestors').
pub fn query_cgroup_device(cgroup: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    // At most 64 programs can be attached to one cgroup; ENOSPC says how many there are.
    let mut ids = vec![0u32; 64];
    for _ in 0..10 {
        let mut attr = ProgQueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: prog_ids points at `ids`, which has room for prog_cnt u32s and outlives the call.
        let ret = unsafe { bpf(BPF_PROG_QUERY, &mut attr) };
        let count = attr.prog_cnt as usize;
        match Errno::result(ret) {
            Ok(_) => {
                ids.truncate(count);
                return Ok(ids);
            }
            Err(Errno::ENOSPC) => ids = vec![0u32; count.max(ids.len() * 2)],
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ENOSPC)
}

/// A new fd for the loaded program with id `id`.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = GetFdByIdAttr { prog_id: id, ..Default::default() };
    // SAFETY: a GetFdByIdAttr holds only integers; the kernel returns a new fd nothing else owns.
    let ret = Errno::result(unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) })?;
    Ok(super::owned_fd(ret as i32))
}
