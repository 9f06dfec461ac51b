//! Device access control on cgroup v2: the ordered rules (the same ones a v1 devices cgroup
//! gets as devices.allow/deny lines) are reduced the way the v1 controller reduces them (a
//! default plus exceptions; runc's emulator semantics, including its refusal to punch a hole in
//! a wildcard exception), then compiled into eBPF instructions for a BPF_PROG_TYPE_CGROUP_DEVICE
//! program. `attach` loads it and puts it in place of the cgroup's old one through sys/bpf.rs.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Kind, Rule, Sourced, ACC_ALL};
use crate::error::{Error, Result};

/// BPF_DEVCG_DEV_* values.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

type Key = (Kind, Option<u64>, Option<u64>);

/// The state the v1 controller keeps: a default and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulator {
    pub default_allow: bool,
    pub exceptions: BTreeMap<Key, u8>,
}

impl Default for Emulator {
    /// A new v2 cgroup without a program allows everything, but runc (and the v1 semantics
    /// skiff follows) start from "deny" once any rule is given.
    fn default() -> Self {
        Emulator { default_allow: false, exceptions: BTreeMap::new() }
    }
}

impl Emulator {
    pub fn apply(&mut self, r: &Rule) -> Result<()> {
        if r.kind == Kind::All {
            // "a" resets: allow-all or deny-all, whatever the numbers and access say.
            *self = Emulator { default_allow: r.allow, exceptions: BTreeMap::new() };
            return Ok(());
        }
        let key = (r.kind, r.major, r.minor);
        if r.allow != self.default_allow {
            // An exception to the default: merge the access bits.
            *self.exceptions.entry(key).or_insert(0) |= r.access;
            return Ok(());
        }
        // A rule agreeing with the default removes access from the exact exception. Removing
        // part of a wider wildcard exception is silently ignored by v1; runc refuses it.
        for wider in [(r.kind, None, r.minor), (r.kind, r.major, None), (r.kind, None, None)] {
            if wider != key && self.exceptions.get(&wider).is_some_and(|a| a & r.access != 0) {
                return Err(Error::msg(format!(
                    "device rule {}: cannot punch a hole in the wider rule {}",
                    describe(key, r.access),
                    describe(wider, self.exceptions[&wider])
                )));
            }
        }
        if let Some(a) = self.exceptions.get_mut(&key) {
            *a &= !r.access;
            if *a == 0 {
                self.exceptions.remove(&key);
            }
        }
        Ok(())
    }
}

fn describe((kind, major, minor): Key, access: u8) -> String {
    Rule { allow: true, kind, major, minor, access }.to_string()
}

/// One `struct bpf_insn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, dst, src, off, imm }
    }

    /// The kernel's layout: code, dst_reg in the low nibble and src_reg in the high one, then
    /// the little-endian offset and immediate.
    pub fn encode(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [self.code, (self.src << 4) | (self.dst & 0x0f), off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }
}

// Opcodes (class | op | source).
pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
pub const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// The program for `rules` applied in order. Registers after the prologue: r2 the device type,
/// r3 the requested access, r4 the major, r5 the minor (from `struct bpf_cgroup_dev_ctx`:
/// u32 access_type = access << 16 | type, u32 major, u32 minor, at r1). Then one block per
/// exception: any mismatch jumps to the next block, a match returns the exception's verdict;
/// the last block returns the default. Every rule is checked before any is applied.
pub fn program(rules: &[Sourced]) -> Result<Vec<Insn>> {
    for r in rules {
        r.rule.check_v2().map_err(|why| Error::msg(format!("{}: {why}", r.source)))?;
    }
    let mut emu = Emulator::default();
    for r in rules {
        emu.apply(&r.rule).map_err(|e| Error::msg(format!("linux.resources.devices: {e}")))?;
    }
    Ok(compile(&emu))
}

pub fn compile(emu: &Emulator) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU32_AND_K, 2, 0, 0, 0xffff),
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU32_RSH_K, 3, 0, 0, 16),
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    let verdict = |allow: bool| [Insn::new(ALU32_MOV_K, 0, 0, 0, allow as i32), Insn::new(JMP_EXIT, 0, 0, 0, 0)];
    for (&(kind, major, minor), &access) in &emu.exceptions {
        let ty = if kind == Kind::Block { DEV_BLOCK } else { DEV_CHAR };
        // Each test is (code, dst, src, imm); the jump offset is filled in below.
        let mut tests: Vec<Vec<Insn>> = vec![vec![Insn::new(JMP_JNE_K, 2, 0, 0, ty)]];
        if access != ACC_ALL {
            // (requested & allowed) != requested: some requested access is not in the rule.
            tests.push(vec![
                Insn::new(ALU32_MOV_X, 1, 3, 0, 0),
                Insn::new(ALU32_AND_K, 1, 0, 0, access as i32),
                Insn::new(JMP_JNE_X, 1, 3, 0, 0),
            ]);
        }
        if let Some(m) = major {
            tests.push(vec![Insn::new(JMP_JNE_K, 4, 0, 0, m as i32)]);
        }
        if let Some(m) = minor {
            tests.push(vec![Insn::new(JMP_JNE_K, 5, 0, 0, m as i32)]);
        }
        let mut block: Vec<Insn> = tests.into_iter().flatten().collect();
        block.extend(verdict(!emu.default_allow));
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
                // Past the end of this block: the next one starts at len.
                insn.off = (len - 1 - i) as i16;
            }
        }
        p.extend(block);
    }
    p.extend(verdict(emu.default_allow));
    p
}

/// Loads `insns` (from [`program`]) and makes it the only device program attached to the v2
/// cgroup `dir`: at create nothing is attached yet; at `update` the container's old program is
/// replaced in one step (BPF_F_REPLACE), so the cgroup is never without one.
/// runc's LoadAttachCgroupDeviceFilter does the same: replace when exactly one program is
/// attached, else attach with BPF_F_ALLOW_MULTI and then detach the others.
pub fn attach(insns: &[Insn], dir: &Path) -> Result<()> {
    use crate::sys::bpf;
    use std::os::fd::AsFd;
    let bytes: Vec<u8> = insns.iter().flat_map(|i| i.encode()).collect();
    let license = c"Apache";
    let prog = match bpf::load_cgroup_device_prog(&bytes, license, "skiff_dev", &mut []) {
        Ok(fd) => fd,
        Err(first) => {
            // Again with the verifier's log, for the message.
            let mut log = vec![0u8; 64 * 1024];
            let detail = match bpf::load_cgroup_device_prog(&bytes, license, "skiff_dev", &mut log) {
                Ok(_) => String::new(),
                Err(_) => String::from_utf8_lossy(&log).trim_end_matches('\0').trim().to_string(),
            };
            return Err(Error::msg(format!("load the cgroup device program: {first} {detail}")));
        }
    };
    let cg = std::fs::File::open(dir).map_err(|e| Error::io(format!("open cgroup {}", dir.display()), e))?;
    let old_ids = bpf::query_cgroup_device(cg.as_fd())
        .map_err(|e| Error::msg(format!("list the device programs of {}: {e}", dir.display())))?;
    let mut old = Vec::new();
    for id in old_ids {
        match bpf::prog_fd_by_id(id) {
            Ok(fd) => old.push(fd),
            // Detached and freed since the query: nothing to replace.
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(Error::msg(format!("open device program {id} of {}: {e}", dir.display()))),
        }
    }
    let attach_err = |e| Error::msg(format!("attach the device program to {}: {e}", dir.display()));
    if let [one] = old.as_slice() {
        let flags = bpf::BPF_F_ALLOW_MULTI | bpf::BPF_F_REPLACE;
        match bpf::attach_cgroup_device(prog.as_fd(), cg.as_fd(), flags, Some(one.as_fd())) {
            Ok(()) => return Ok(()),
            // A kernel before 5.6 has no BPF_F_REPLACE: attach, then detach, below.
            Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(attach_err(e)),
        }
    }
    bpf::attach_cgroup_device(prog.as_fd(), cg.as_fd(), bpf::BPF_F_ALLOW_MULTI, None).map_err(attach_err)?;
    for fd in &old {
        bpf::detach_cgroup_device(fd.as_fd(), cg.as_fd())
            .map_err(|e| Error::msg(format!("detach the old device program from {}: {e}", dir.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::{line, ACC_MKNOD, ACC_READ, ACC_WRITE};

    /// Runs a program the way the kernel would for one access: a tiny interpreter for the
    /// instructions `compile` emits (anything else fails the test).
    fn run(p: &[Insn], ty: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | ty as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (d, s) = (i.dst as usize, i.src as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(s, 1, "loads only from the context");
                    r[d] = ctx[i.off as usize / 4] as u64;
                }
                ALU32_AND_K => r[d] = (r[d] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[d] = ((r[d] as u32) >> i.imm) as u64,
                ALU32_MOV_K => r[d] = i.imm as u32 as u64,
                ALU32_MOV_X => r[d] = r[s] as u32 as u64,
                JMP_JNE_K => {
                    if r[d] != i.imm as i64 as u64 {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                JMP_JNE_X => {
                    if r[d] != r[s] {
                        pc = (pc as i64 + i.off as i64) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not exit");
    }

    fn rules(lines: &[(bool, &str)]) -> Vec<Sourced> {
        lines.iter().map(|(a, l)| Sourced { source: format!("rule {l}"), rule: line(*a, l) }).collect()
    }

    const C: i32 = DEV_CHAR;
    const B: i32 = DEV_BLOCK;

    #[test]
    fn runc_default_rules() {
        // runc's spec: deny all, then its default allow list (null, zero, full, tty, ptmx,
        // pts, mknod of anything).
        let r = rules(&[
            (false, "a *:* rwm"),
            (true, "c *:* m"),
            (true, "b *:* m"),
            (true, "c 1:3 rwm"),
            (true, "c 1:5 rwm"),
            (true, "c 136:* rwm"),
            (true, "c 5:2 rwm"),
        ]);
        let p = program(&r).unwrap();
        assert_eq!(run(&p, C, ACC_READ, 1, 3), 1, "/dev/null readable");
        assert_eq!(run(&p, C, ACC_WRITE, 1, 5), 1, "/dev/zero writable");
        assert_eq!(run(&p, C, ACC_READ | ACC_WRITE, 136, 7), 1, "any pty");
        assert_eq!(run(&p, C, ACC_READ, 1, 11), 0, "/dev/kmsg not listed");
        assert_eq!(run(&p, B, ACC_READ, 8, 0), 0, "no disk reads");
        assert_eq!(run(&p, B, ACC_MKNOD, 8, 0), 1, "mknod of any block device");
        assert_eq!(run(&p, C, ACC_MKNOD | ACC_READ, 10, 1), 0, "mknod+read is more than m");
        assert_eq!(run(&p, B, ACC_READ, 1, 3), 0, "type matters: b 1:3 is not c 1:3");
    }

    #[test]
    fn later_rules_change_earlier_ones() {
        // Allow-all then deny one device: default allow with one deny exception.
        let p = program(&rules(&[(true, "a"), (false, "c 1:11 w")])).unwrap();
        assert_eq!(run(&p, C, ACC_WRITE, 1, 11), 0);
        assert_eq!(run(&p, C, ACC_READ, 1, 11), 1, "only w was denied");
        assert_eq!(run(&p, B, ACC_READ, 8, 1), 1);
        // Deny-all, allow rw, then deny w again: only r is left.
        let p = program(&rules(&[(false, "a"), (true, "c 1:11 rw"), (false, "c 1:11 w")])).unwrap();
        assert_eq!(run(&p, C, ACC_READ, 1, 11), 1);
        assert_eq!(run(&p, C, ACC_WRITE, 1, 11), 0);
        // A final "a" resets everything before it.
        let p = program(&rules(&[(false, "a"), (true, "c 1:3 rwm"), (true, "a")])).unwrap();
        assert_eq!(run(&p, B, ACC_WRITE, 8, 0), 1);
        // No rules: deny everything (runc's starting point).
        assert_eq!(run(&program(&[]).unwrap(), C, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn cannot_punch_holes_in_wildcards() {
        // runc refuses what v1 would silently ignore.
        let err = program(&rules(&[(false, "a"), (true, "c *:* rwm"), (false, "c 1:3 r")])).unwrap_err();
        assert!(err.to_string().contains("punch a hole"), "{err}");
        // Disjoint access is fine.
        assert!(program(&rules(&[(false, "a"), (true, "c *:* m"), (false, "c 1:3 r")])).is_ok());
    }

    #[test]
    fn rules_v2_cannot_express_change_nothing() {
        // Every rule is checked before the program is built; the error names the rule's place.
        let err = program(&rules(&[(false, "a"), (true, "p 1:2 r")])).unwrap_err().to_string();
        assert!(err.starts_with("rule p 1:2 r: device rule \"p 1:2 r\": type \"p\""), "{err}");
    }

    #[test]
    fn encodes_the_kernel_layout() {
        // r2 = *(u32 *)(r1 + 4): dst in the low nibble, src in the high one.
        assert_eq!(Insn::new(LDX_MEM_W, 2, 1, 4, 0).encode(), [0x61, 0x12, 4, 0, 0, 0, 0, 0]);
        assert_eq!(Insn::new(JMP_JNE_K, 4, 0, 3, 136).encode(), [0x55, 0x04, 3, 0, 136, 0, 0, 0]);
    }

    #[test]
    fn jumps_land_on_the_next_block() {
        let p = program(&rules(&[(false, "a"), (true, "c 1:3 r"), (true, "b 8:0 rwm")])).unwrap();
        // Every jump target is the first instruction of a block or the final default.
        let starts: Vec<usize> = (0..p.len()).filter(|&i| i == 6 || (i > 0 && p[i - 1].code == JMP_EXIT)).collect();
        for (i, insn) in p.iter().enumerate() {
            if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
                let target = i + 1 + insn.off as usize;
                assert!(starts.contains(&target), "jump at {i} lands on {target}, blocks start at {starts:?}");
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
    }
}
