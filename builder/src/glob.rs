//! Go's `path/filepath` pieces docker relies on: `Match` (COPY/ADD wildcards) and `Clean`.
//! Pure string functions; nothing here reads the filesystem.

/// A pattern that `filepath.Match` would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    Star,
    One,
    Class { neg: bool, ranges: Vec<(char, char)> },
}

fn compile(p: &str) -> Result<Vec<Tok>, BadPattern> {
    let cs: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        match c {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::One),
            '\\' => {
                let Some(&n) = cs.get(i) else {
                    return Err(BadPattern);
                };
                out.push(Tok::Lit(n));
                i += 1;
            }
            '[' => {
                let mut neg = false;
                if cs.get(i) == Some(&'^') {
                    neg = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    match cs.get(i) {
                        None => return Err(BadPattern),
                        Some(']') if !first => {
                            i += 1;
                            break;
                        }
                        _ => {}
                    }
                    first = false;
                    let lo = class_char(&cs, &mut i)?;
                    let hi = if cs.get(i) == Some(&'-') {
                        i += 1;
                        class_char(&cs, &mut i)?
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(BadPattern);
                    }
                    ranges.push((lo, hi));
                }
                out.push(Tok::Class { neg, ranges });
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    Ok(out)
}

fn class_char(cs: &[char], i: &mut usize) -> Result<char, BadPattern> {
    match cs.get(*i) {
        None | Some('-') | Some(']') => Err(BadPattern),
        Some('\\') => {
            let c = *cs.get(*i + 1).ok_or(BadPattern)?;
            *i += 2;
            Ok(c)
        }
        Some(&c) => {
            *i += 1;
            Ok(c)
        }
    }
}

fn m(t: &[Tok], s: &[char]) -> bool {
    match t.first() {
        None => s.is_empty(),
        Some(Tok::Star) => {
            for i in 0..=s.len() {
                if m(&t[1..], &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some(Tok::One) => s.first().is_some_and(|&c| c != '/') && m(&t[1..], &s[1..]),
        Some(Tok::Lit(c)) => s.first() == Some(c) && m(&t[1..], &s[1..]),
        Some(Tok::Class { neg, ranges }) => match s.first() {
            Some(&c) if c != '/' => {
                let inr = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inr != *neg && m(&t[1..], &s[1..])
            }
            _ => false,
        },
    }
}

/// `filepath.Match(pattern, name)`.
pub fn matches(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let t = compile(pattern)?;
    let s: Vec<char> = name.chars().collect();
    Ok(m(&t, &s))
}

/// Whether the pattern contains wildcard characters (docker's `containsWildcards`).
pub fn has_wildcards(p: &str) -> bool {
    let mut esc = false;
    for c in p.chars() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' => esc = true,
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Go's `path.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_table() {
        // Rows from Go's filepath match_test.go.
        let rows: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("a\\", "a", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
            ("a?", "a/", Ok(false)),
        ];
        for (p, s, want) in rows {
            assert_eq!(&matches(p, s), want, "Match({p:?}, {s:?})");
        }
    }

    #[test]
    fn clean_table() {
        let rows = [
            ("", "."),
            ("abc/", "abc"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/../b", "b"),
            ("../a", "../a"),
            ("/../a", "/a"),
            ("/", "/"),
            ("a/./b/.", "a/b"),
        ];
        for (p, want) in rows {
            assert_eq!(clean(p), want, "{p}");
        }
    }
}
