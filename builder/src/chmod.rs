//! `COPY --chmod` / `ADD --chmod`: an octal mode, or chmod(1)'s symbolic form (`+x`,
//! `u=rwX,go=rX`, `g=u`), as BuildKit's Dockerfile frontend takes it. A symbolic mode is applied
//! to each copied entry's own mode, with BSD setmode(3)'s rules and a umask of 0 (BuildKit uses
//! a Go port of setmode). Written here because no maintained crate implements those rules: the
//! crates that parse symbolic modes follow GNU chmod, which differs where it matters (`X` looks
//! at the mode before the whole operation here, `=` without a who keeps the sticky bit, `s`
//! and `t` are dropped for `o`).

use std::fmt;

/// A parsed `--chmod` value; `Display` gives it as written (BuildKit's history text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chmod {
    text: String,
    how: How,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum How {
    Octal(u32),
    Symbolic(Vec<Op>),
}

/// One step of a symbolic mode, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Clear(u32),
    Set(u32),
    /// `X`: these bits when the entry is a directory or had an execute bit before.
    SetIfExec(u32),
    /// `u`, `g` or `o` as a source: that class's bits (as they are at this step) into the
    /// classes of `to` (a mask of the u/g/o read bits), added, taken away or replacing.
    Copy {
        from_shift: u32,
        to: u32,
        op: u8,
    },
}

const SETID: u32 = 0o6000;
const STICKY: u32 = 0o1000;
/// setmode's "standard bits": everything but the sticky bit.
const STANDARD: u32 = 0o6777;
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;

impl Chmod {
    /// Parses a value as BuildKit's frontend does: digits are an octal mode up to 07777, any
    /// other value chmod's symbolic form. The error says which was expected.
    pub fn parse(text: &str) -> Result<Chmod, String> {
        let how = if text.starts_with(|c: char| c.is_ascii_digit()) {
            match u32::from_str_radix(text, 8) {
                Ok(m) if m <= 0o7777 => How::Octal(m),
                _ => {
                    return Err(format!(
                        "invalid chmod parameter: '{text}'. it should be octal string and between 0 and 07777"
                    ))
                }
            }
        } else {
            How::Symbolic(
                symbolic(text)
                    .ok_or_else(|| format!("invalid chmod parameter: '{text}': invalid syntax (octal, or chmod's symbolic form such as u+x,go=rX)"))?,
            )
        };
        Ok(Chmod { text: text.to_string(), how })
    }

    /// The mode of the directories a COPY creates on the way to its destination: an octal
    /// mode's permission bits, as BuildKit's copy makes missing parents with `Mode`; 0755 for a
    /// symbolic mode (applied to copied entries only, as BuildKit's `ModeStr`).
    pub fn parent_dir_mode(chmod: Option<&Chmod>) -> u32 {
        match chmod.map(|c| &c.how) {
            Some(How::Octal(m)) => m & 0o777,
            _ => 0o755,
        }
    }

    /// The permission bits (07777) an entry whose `st_mode` is `mode` gets.
    pub fn apply(&self, mode: u32) -> u32 {
        let ops = match &self.how {
            How::Octal(m) => return *m,
            How::Symbolic(ops) => ops,
        };
        let before = mode & 0o7777;
        let is_dir = mode & S_IFMT == S_IFDIR;
        let mut m = before;
        for op in ops {
            match *op {
                Op::Clear(b) => m &= !b,
                Op::Set(b) => m |= b,
                Op::SetIfExec(b) => {
                    if is_dir || before & 0o111 != 0 {
                        m |= b
                    }
                }
                Op::Copy { from_shift, to, op } => {
                    let value = (m >> from_shift) & 0o7;
                    for (class_read, shift) in [(0o400, 6), (0o040, 3), (0o004, 0)] {
                        if to & class_read == 0 {
                            continue;
                        }
                        match op {
                            b'+' => m |= value << shift,
                            b'-' => m &= !(value << shift),
                            _ => m = (m & !(0o7 << shift)) | (value << shift),
                        }
                    }
                }
            }
        }
        m & 0o7777
    }
}

impl fmt::Display for Chmod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses `[who...]op[perms...][op[perms...]...][,...]`; `None` on a syntax error.
fn symbolic(text: &str) -> Option<Vec<Op>> {
    let s = text.as_bytes();
    let mut i = 0;
    let mut ops = Vec::new();
    loop {
        // who: u, g, o, a; none means all (the umask is 0)
        let mut who = 0u32;
        while let Some(&c) = s.get(i) {
            who |= match c {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o0007,
                b'a' => STANDARD,
                _ => break,
            };
            i += 1;
        }
        // one or more actions
        loop {
            let op = *s.get(i)?;
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            i += 1;
            who &= !STICKY;
            let (mut perm, mut exec_if, mut replaced) = (0u32, false, false);
            loop {
                match s.get(i).copied() {
                    Some(b'r') => perm |= 0o444,
                    Some(b'w') => perm |= 0o222,
                    Some(b'x') => perm |= 0o111,
                    Some(b'X') if op == b'-' => perm |= 0o111,
                    Some(b'X') => exec_if = true,
                    // set-id and sticky only where a user or group class is named (or none)
                    Some(b's') if who == 0 || who & !0o007 != 0 => perm |= SETID,
                    Some(b't') if who == 0 || who & !0o007 != 0 => {
                        who |= STICKY;
                        perm |= STICKY;
                    }
                    Some(b's' | b't') => {}
                    Some(c @ (b'u' | b'g' | b'o')) => {
                        if perm != 0 {
                            push(&mut ops, op, who, perm);
                            perm = 0;
                        }
                        replaced |= op == b'=';
                        if exec_if {
                            ops.push(Op::SetIfExec(masked(who, 0o111)));
                            exec_if = false;
                        }
                        let from_shift = match c {
                            b'u' => 6,
                            b'g' => 3,
                            _ => 0,
                        };
                        let to = if who == 0 { 0o444 } else { who & 0o444 };
                        ops.push(Op::Copy { from_shift, to, op });
                    }
                    _ => {
                        if perm != 0 || (op == b'=' && !replaced) {
                            push(&mut ops, op, who, perm);
                        }
                        if exec_if {
                            ops.push(Op::SetIfExec(masked(who, 0o111)));
                        }
                        break;
                    }
                }
                i += 1;
            }
            match s.get(i) {
                None => return Some(ops),
                Some(b',') => {
                    i += 1;
                    break;
                }
                // another action for the same who
                Some(_) => {}
            }
        }
    }
}

/// The bits of `perm` that `who` names; all of them when no who was given.
fn masked(who: u32, perm: u32) -> u32 {
    if who == 0 {
        perm
    } else {
        who & perm
    }
}

fn push(ops: &mut Vec<Op>, op: u8, who: u32, perm: u32) {
    match op {
        b'+' => ops.push(Op::Set(masked(who, perm))),
        b'-' => ops.push(Op::Clear(masked(who, perm))),
        _ => {
            // `=`: the named classes cleared first (without a who: all but the sticky bit)
            ops.push(Op::Clear(if who == 0 { STANDARD } else { who }));
            ops.push(Op::Set(masked(who, perm)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: u32 = 0o100000;
    const DIR: u32 = 0o040000;

    fn ap(m: &str, mode: u32) -> u32 {
        Chmod::parse(m).unwrap_or_else(|e| panic!("{m}: {e}")).apply(mode)
    }

    #[test]
    fn octal_is_the_mode() {
        assert_eq!(ap("755", FILE | 0o600), 0o755);
        assert_eq!(ap("0644", DIR | 0o777), 0o644);
        assert_eq!(ap("4755", FILE), 0o4755);
        assert_eq!(Chmod::parse("0755").unwrap().to_string(), "0755");
        for bad in ["10000", "8", "0x1", "12a"] {
            let e = Chmod::parse(bad).unwrap_err();
            assert!(e.contains("it should be octal string and between 0 and 07777"), "{bad}: {e}");
        }
    }

    /// The cases of BuildKit's docs and of chmod(1) (FreeBSD's, which BuildKit's port follows),
    /// checked by hand against `chmod` on Linux where GNU agrees.
    #[test]
    fn symbolic_modes_follow_setmode() {
        assert_eq!(ap("+x", FILE | 0o644), 0o755);
        assert_eq!(ap("u+x", FILE | 0o644), 0o744);
        assert_eq!(ap("a-w", FILE | 0o664), 0o444);
        assert_eq!(ap("go-rwx", FILE | 0o755), 0o700);
        assert_eq!(ap("u=rwX,go=rX", FILE | 0o600), 0o644);
        assert_eq!(ap("u=rwX,go=rX", FILE | 0o700), 0o755);
        assert_eq!(ap("u=rwX,go=rX", DIR | 0o700), 0o755);
        assert_eq!(ap("g=u", FILE | 0o640), 0o660);
        assert_eq!(ap("o=g", FILE | 0o750), 0o755);
        assert_eq!(ap("g+u", FILE | 0o700), 0o770);
        assert_eq!(ap("go-u", FILE | 0o577), 0o522);
        assert_eq!(ap("u+s", FILE | 0o755), 0o4755);
        assert_eq!(ap("g+s", DIR | 0o755), 0o2755);
        assert_eq!(ap("o+s", FILE | 0o755), 0o755);
        assert_eq!(ap("+t", DIR | 0o777), 0o1777);
        assert_eq!(ap("o+t", DIR | 0o777), 0o777);
        assert_eq!(ap("=", FILE | 0o4755), 0);
        assert_eq!(ap("=", DIR | 0o1777), 0o1000, "= without who keeps the sticky bit");
        assert_eq!(ap("u=", FILE | 0o4755), 0o055);
        assert_eq!(ap("=r", FILE | 0o777), 0o444);
        assert_eq!(ap("u+r-w", FILE | 0o200), 0o400);
        assert_eq!(ap("a=r,u+w", FILE | 0o777), 0o644);
        // X looks at the mode the entry had, not at what earlier clauses made
        assert_eq!(ap("a-x,a+X", FILE | 0o755), 0o755);
        assert_eq!(ap("a+x,a-x,a+X", FILE | 0o644), 0o644);
        assert_eq!(ap("a-X", FILE | 0o755), 0o644, "-X takes x away unconditionally");
        assert_eq!(ap("+", FILE | 0o640), 0o640);
        assert_eq!(Chmod::parse("u=rwX,go=rX").unwrap().to_string(), "u=rwX,go=rX");
    }

    #[test]
    fn bad_symbolic_modes_are_refused() {
        for bad in ["", "u", "a", "x", "u+x,", "u+xq", "u*x", ",u+x", "z=r"] {
            let e = Chmod::parse(bad).unwrap_err();
            assert!(e.contains("invalid syntax") || e.contains("octal"), "{bad:?}: {e}");
        }
    }
}
