//! bpf(2) for cgroup v2 device control: load a BPF_PROG_TYPE_CGROUP_DEVICE program and attach
//! it to a cgroup. The program itself is built (and unit-tested) in cgroups/devices.rs; this
//! file only moves bytes into the kernel.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs may be attached to one cgroup; all of them (and its ancestors') must allow.
pub const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

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
    // SAFETY: `attr` is a live, fully initialised repr(C) prefix of union bpf_attr; the pointers
    // in it (instructions, license, log buffer) point at live memory of the sizes given, for the
    // duration of the call. The kernel returns a new fd that nothing else owns.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &mut attr as *mut ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(super::owned_fd(ret as i32))
}

/// Attaches a loaded cgroup device program to the cgroup directory `cgroup` (an open fd).
pub fn attach_cgroup_device(prog: BorrowedFd<'_>, cgroup: BorrowedFd<'_>, flags: u32) -> Result<(), Errno> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    // SAFETY: `attr` is a live repr(C) prefix of union bpf_attr holding only integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &mut attr as *mut ProgAttachAttr,
            std::mem::size_of::<ProgAttachAttr>() as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}
