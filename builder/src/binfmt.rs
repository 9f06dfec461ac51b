//! Whether this machine can run executables of another architecture: a RUN step of a stage
//! built for a foreign platform needs an enabled binfmt_misc handler (qemu-user's, usually)
//! whose magic matches that architecture's ELF header. Reads /proc/sys/fs/binfmt_misc; never
//! registers a handler (that is kernel-wide, the administrator's choice).

use std::fs;
use std::path::Path;

pub const DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The first 20 bytes of an ELF executable of Go's architecture `arch`: magic, class,
/// byte order, version, ABI and padding, `e_type` EXEC and `e_machine`. None for an
/// architecture we know no ELF machine number of.
pub fn elf_header(arch: &str) -> Option<[u8; 20]> {
    // (64-bit, big-endian, e_machine) as the ELF specification numbers them
    let (wide, big, machine): (bool, bool, u16) = match arch {
        "amd64" => (true, false, 62),
        "arm64" => (true, false, 183),
        "arm" => (false, false, 40),
        "386" => (false, false, 3),
        "ppc64le" => (true, false, 21),
        "ppc64" => (true, true, 21),
        "s390x" => (true, true, 22),
        "riscv64" => (true, false, 243),
        "mips64le" => (true, false, 8),
        "mips64" => (true, true, 8),
        "mipsle" => (false, false, 8),
        "mips" => (false, true, 8),
        "loong64" => (true, false, 258),
        _ => return None,
    };
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if wide { 2 } else { 1 };
    h[5] = if big { 2 } else { 1 };
    h[6] = 1;
    let (t, m) =
        if big { (2u16.to_be_bytes(), machine.to_be_bytes()) } else { (2u16.to_le_bytes(), machine.to_le_bytes()) };
    h[16..18].copy_from_slice(&t);
    h[18..20].copy_from_slice(&m);
    Some(h)
}

/// One handler's file as the kernel shows it: enabled, offset 0, and its magic matching
/// `header` under its mask.
fn handler_matches(text: &str, header: &[u8]) -> bool {
    let mut enabled = false;
    let mut offset = 0usize;
    let mut magic = None;
    let mut mask = None;
    for l in text.lines() {
        if l == "enabled" {
            enabled = true;
        } else if let Some(v) = l.strip_prefix("offset ") {
            offset = v.trim().parse().unwrap_or(usize::MAX);
        } else if let Some(v) = l.strip_prefix("magic ") {
            magic = hex::decode(v.trim()).ok();
        } else if let Some(v) = l.strip_prefix("mask ") {
            mask = hex::decode(v.trim()).ok();
        }
    }
    let Some(magic) = magic else { return false };
    if !enabled || offset != 0 || magic.is_empty() || magic.len() > header.len() {
        return false;
    }
    magic.iter().enumerate().all(|(i, m)| {
        let k = mask.as_ref().and_then(|k| k.get(i).copied()).unwrap_or(0xff);
        header[i] & k == m & k
    })
}

/// The handler in `dir` that runs executables of `arch` (its name), or why there is none.
pub fn handler_in(dir: &Path, arch: &str) -> Result<String, String> {
    let Some(header) = elf_header(arch) else {
        return Err(format!("slipway knows no ELF machine number for architecture {arch:?}"));
    };
    match fs::read_to_string(dir.join("status")) {
        Ok(s) if s.trim() == "enabled" => {}
        Ok(_) => return Err(format!("binfmt_misc is disabled ({}/status)", dir.display())),
        Err(_) => return Err(format!("binfmt_misc is not mounted at {}", dir.display())),
    }
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "status" && n != "register")
        .collect();
    names.sort();
    for n in names {
        if fs::read_to_string(dir.join(&n)).is_ok_and(|t| handler_matches(&t, &header)) {
            return Ok(n);
        }
    }
    Err(format!("no enabled binfmt_misc handler in {} runs {arch} executables", dir.display()))
}

/// [`handler_in`] of this machine.
pub fn handler(arch: &str) -> Result<String, String> {
    handler_in(Path::new(DIR), arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // what qemu-user-static's Debian package registers (update-binfmts --display)
    const QEMU_AARCH64: &str =
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n\
        magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";
    const QEMU_ARM: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/arm-binfmt-P\nflags: POCF\noffset 0\n\
        magic 7f454c4601010100000000000000000002002800\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn handlers_match_the_elf_header_of_their_architecture() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        // not mounted: said so
        assert!(handler_in(d, "arm64").unwrap_err().contains("not mounted"));
        fs::write(d.join("status"), "enabled\n").unwrap();
        fs::write(d.join("register"), "").unwrap();
        assert!(handler_in(d, "arm64").unwrap_err().contains("no enabled binfmt_misc handler"));
        fs::write(d.join("qemu-aarch64"), QEMU_AARCH64).unwrap();
        fs::write(d.join("qemu-arm"), QEMU_ARM).unwrap();
        assert_eq!(handler_in(d, "arm64").unwrap(), "qemu-aarch64");
        assert_eq!(handler_in(d, "arm").unwrap(), "qemu-arm");
        assert!(handler_in(d, "s390x").is_err());
        assert!(handler_in(d, "amd64").is_err());
        assert!(handler_in(d, "pdp11").unwrap_err().contains("no ELF machine number"));
        // a disabled handler runs nothing
        fs::write(d.join("qemu-aarch64"), QEMU_AARCH64.replace("enabled", "disabled")).unwrap();
        assert!(handler_in(d, "arm64").is_err());
        fs::write(d.join("status"), "disabled\n").unwrap();
        assert!(handler_in(d, "arm").unwrap_err().contains("disabled"));
    }

    #[test]
    fn elf_headers() {
        let h = elf_header("amd64").unwrap();
        assert_eq!(hex::encode(h), "7f454c4602010100000000000000000002003e00");
        let h = elf_header("s390x").unwrap();
        assert_eq!(hex::encode(h), "7f454c4602020100000000000000000000020016");
    }
}
