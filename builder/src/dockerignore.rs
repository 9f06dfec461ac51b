//! `.dockerignore` with docker's semantics (moby/patternmatcher and BuildKit's reader), not
//! gitignore's: patterns are cleaned, a leading `/` dropped, `**` spans directories, `!` lines
//! re-include, the last matching line wins, and a pattern matching a parent excludes the child.
//! It only decides; walking the context is `context.rs`'s job. Scanning and matching are
//! `wildcard.rs`'s; this file turns `**` and patternmatcher's shortcuts into its tokens.

use crate::glob;
use crate::wildcard::{self, BadPattern, Item, Tok};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IgnoreError {
    #[error(".dockerignore:{line}: illegal exclusion pattern: \"!\"")]
    BareBang { line: usize },
    #[error(".dockerignore:{line}: bad pattern {pattern:?}: syntax error in pattern")]
    Bad { line: usize, pattern: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

#[derive(Debug, Clone)]
struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
    nfa: wildcard::Pattern,
}

/// What BuildKit's dockerignore reader keeps of a file: cleaned patterns, `!` kept as prefix.
pub fn read_patterns(text: &str) -> Vec<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with('#') {
            continue;
        }
        let mut p = raw.trim();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim();
        }
        let mut p = p.to_string();
        if !p.is_empty() {
            p = glob::clean(&p);
            if p.len() > 1 && p.starts_with('/') {
                p = p[1..].to_string();
            }
        }
        if invert {
            p = format!("!{p}");
        }
        out.push((i + 1, p));
    }
    out
}

/// patternmatcher's reading of a pattern: its kind (plain string tests where it can) and the
/// tokens of the regexp it would compile: `**/` inside is `(.*/)?`, a trailing `**` is `.*`, a
/// class may match `/`. Fails where Go's `filepath.Match` syntax does (moby checks that first).
fn compile(p: &str) -> Result<(Kind, Vec<Tok>), BadPattern> {
    let items = wildcard::scan(p, wildcard::PATH)?;
    let mut kind = Kind::Exact;
    let mut toks = Vec::new();
    let mut i = 0;
    let mut n = 0; // index of the term, as patternmatcher's loop counter
    while i < items.len() {
        let item = &items[i];
        i += 1;
        match item {
            Item::Star if items.get(i) == Some(&Item::Star) => {
                i += 1;
                if items.get(i) == Some(&Item::Char('/')) {
                    i += 1;
                }
                if i >= items.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        toks.push(Tok::Rest);
                        kind = Kind::Regex;
                    }
                } else {
                    toks.push(Tok::Deep);
                    kind = Kind::Regex;
                }
                if n == 0 {
                    kind = Kind::Suffix;
                }
            }
            Item::Star => {
                toks.push(Tok::Star);
                kind = Kind::Regex;
            }
            Item::Question => {
                toks.push(Tok::One);
                kind = Kind::Regex;
            }
            Item::Escaped(c) => {
                toks.push(Tok::Lit(*c));
                kind = Kind::Regex;
            }
            Item::Class { neg, ranges } => {
                toks.push(Tok::Class { neg: *neg, ranges: ranges.clone(), slash: true });
                kind = Kind::Regex;
            }
            Item::Char(c) => toks.push(Tok::Lit(*c)),
        }
        n += 1;
    }
    Ok((kind, toks))
}

impl Pattern {
    /// Whether the pattern matches `path` or one of its parent directories; `ends` are the byte
    /// offsets of the '/'s in `path` (each ends a parent directory).
    fn matches_or_parent(&self, path: &str, ends: &[usize]) -> bool {
        if self.kind == Kind::Regex {
            // one pass of the NFA over the path answers for each parent directory too
            let cs: Vec<char> = path.chars().collect();
            let m = self.nfa.prefixes(&cs);
            // byte offsets to char counts: path[..e] has as many chars as chars before e
            let mut char_at = 0;
            let mut byte = 0;
            let mut hit = m[cs.len()];
            for &e in ends {
                while byte < e {
                    byte += cs[char_at].len_utf8();
                    char_at += 1;
                }
                hit |= m[char_at];
            }
            return hit;
        }
        self.matches(path) || ends.iter().any(|&e| self.matches(&path[..e]))
    }

    fn matches(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                if path.ends_with(suffix) {
                    return true;
                }
                suffix.starts_with('/') && path == &suffix[1..]
            }
            Kind::Regex => self.nfa.matches(path),
        }
    }
}

/// A pattern that matches the path `p` only: its wildcard characters escaped (and a leading
/// `!`, which would re-include).
pub fn literal(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    if out.starts_with('!') {
        out.insert(0, '\\');
    }
    out
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// Builds a matcher from `(line, pattern)` pairs as `read_patterns` returns them.
    pub fn new(patterns: &[(usize, String)]) -> Result<Matcher, IgnoreError> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for (line, p) in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = glob::clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(IgnoreError::BareBang { line: *line });
                }
                exclusion = true;
                exclusions = true;
                p = rest.to_string();
            }
            let Ok((kind, toks)) = compile(&p) else {
                return Err(IgnoreError::Bad { line: *line, pattern: p });
            };
            out.push(Pattern { cleaned: p, exclusion, kind, nfa: wildcard::Pattern::new(toks) });
        }
        Ok(Matcher { patterns: out, exclusions })
    }

    /// Parses the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<Matcher, IgnoreError> {
        Matcher::new(&read_patterns(text))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether there are `!` patterns (then an excluded directory may not be pruned).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether a pattern excludes every entry of the root (`*`, `**` or `**/*`; BuildKit's
    /// `copySourceRootIgnored`).
    pub fn excludes_all(&self) -> bool {
        self.patterns.iter().any(|p| !p.exclusion && matches!(p.cleaned.as_str(), "*" | "**" | "**/*"))
    }

    /// patternmatcher's `MatchesOrParentMatches`: is this context-relative path excluded?
    pub fn excluded(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let parent = match path.rfind('/') {
            Some(i) => &path[..i],
            None => ".",
        };
        // Each parent directory is a prefix of `path` ending before one of its '/'s (patternmatcher
        // joins the components again for each, which is quadratic in the depth).
        let ends: Vec<usize> =
            if parent == "." { Vec::new() } else { path.match_indices('/').map(|(i, _)| i).collect() };
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let hit = p.matches_or_parent(path, &ends);
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded directory can be skipped whole: no `!` pattern could re-include
    /// something below it.
    pub fn can_prune(&self, dir: &str) -> bool {
        if !self.exclusions {
            return true;
        }
        let dirs: Vec<&str> = dir.split('/').collect();
        !self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            // an exception could match below `dir` unless its leading literal components
            // already diverge from dir's
            let pdirs: Vec<&str> = p.cleaned.split('/').collect();
            for (i, d) in dirs.iter().enumerate() {
                let Some(pd) = pdirs.get(i) else {
                    return true;
                };
                if pd.contains(['*', '?', '[', '\\']) {
                    return true;
                }
                if pd != d {
                    return false;
                }
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pattern of up to three of these pieces against every path of up to five
    /// characters over {a, b, /}, and each prefix: the NFA over patternmatcher's tokens says
    /// what backtracking over them says.
    #[test]
    fn nfa_agrees_with_backtracking() {
        let pieces = ["a", "b", "/", "*", "?", "**", "**/", "[ab]", "[^a]"];
        let mut pats: Vec<String> = vec![String::new()];
        let mut last = pats.clone();
        for _ in 0..3 {
            last = last.iter().flat_map(|p| pieces.iter().map(move |x| format!("{p}{x}"))).collect();
            pats.extend(last.clone());
        }
        let mut paths: Vec<Vec<char>> = vec![vec![]];
        let mut lastp = paths.clone();
        for _ in 0..5 {
            lastp = lastp.iter().flat_map(|p| ['a', 'b', '/'].map(|c| [&p[..], &[c]].concat())).collect();
            paths.extend(lastp.clone());
        }
        for p in &pats {
            let (_, toks) = compile(p).unwrap();
            let nfa = wildcard::Pattern::new(toks.clone());
            for s in &paths {
                let got = nfa.prefixes(s);
                for k in 0..=s.len() {
                    let want = wildcard::backtrack(&toks, &s[..k]);
                    assert_eq!(got[k], want, "{p:?} against {:?}", s[..k].iter().collect::<String>());
                }
            }
        }
    }

    fn excluded(ignore: &str, path: &str) -> bool {
        Matcher::parse(ignore).unwrap().excluded(path)
    }

    #[test]
    fn docker_documented_examples() {
        // https://docs.docker.com/build/concepts/context/#dockerignore-files
        let ig = "# comment\n*/temp*\n*/*/temp*\ntemp?\n";
        let rows = [
            ("somedir/temporary.txt", true), // */temp*
            ("somedir/temp", true),
            ("somedir/subdir/temporary.txt", true), // */*/temp*
            ("tempa", true),                        // temp?
            ("tempb", true),
            ("temp", false),
            ("temporary.txt", false), // */temp* needs one dir level
            ("a/b/c/temp", false),
        ];
        for (p, want) in rows {
            assert_eq!(excluded(ig, p), want, "{p}");
        }
        // `*.md` then `!README.md`: everything markdown but the README
        let ig = "*.md\n!README.md\n";
        assert!(excluded(ig, "CHANGES.md"));
        assert!(!excluded(ig, "README.md"));
        assert!(!excluded(ig, "docs/x.md")); // * does not cross '/'
                                             // placement of the exception matters: the last match wins
        let ig = "*.md\nREADME-secret.md\n!README*.md\n";
        assert!(!excluded(ig, "README-secret.md"));
        let ig = "*.md\n!README*.md\nREADME-secret.md\n";
        assert!(excluded(ig, "README-secret.md"));
        assert!(!excluded(ig, "README-other.md"));
        // ** matches any number of directories, including none
        let ig = "**/*.go\n";
        assert!(excluded(ig, "a.go"));
        assert!(excluded(ig, "x/y/a.go"));
        assert!(!excluded(ig, "a.goo"));
    }

    #[test]
    fn differs_from_gitignore() {
        // gitignore: an unanchored `foo` matches at any depth; docker: only at the root.
        assert!(excluded("foo\n", "foo"));
        assert!(!excluded("foo\n", "a/foo"));
        // a leading slash is dropped, not an anchor marker
        assert!(excluded("/foo\n", "foo"));
        // a trailing slash is cleaned away, so `dir/` also matches a file named dir
        assert!(excluded("dir/\n", "dir"));
        // a pattern matching a parent excludes everything below it
        assert!(excluded("dir\n", "dir/a/b"));
        // gitignore cannot re-include below an excluded dir; docker can
        assert!(!excluded("dir\n!dir/keep\n", "dir/keep"));
        assert!(excluded("dir\n!dir/keep\n", "dir/other"));
        // `#` only starts a comment at column 0; cleaned paths, `.` segments dropped
        assert!(excluded(" #x\n", "#x"));
        assert!(excluded("./a/../b\n", "b"));
        // `**foo` is a suffix match in patternmatcher
        assert!(excluded("**foo\n", "barfoo"));
        assert!(excluded("**\n", "anything/at/all"));
        // Dockerfile and .dockerignore match like any file
        assert!(excluded("Dockerfile\n.dockerignore\n", "Dockerfile"));
        assert!(excluded("Dockerfile\n.dockerignore\n", ".dockerignore"));
        // a trailing `**` prefix-matches
        assert!(excluded("a/**\n", "a/b/c"));
        assert!(excluded("a**\n", "abc"));
        // classes and escapes
        assert!(excluded("[a-c].txt\n", "b.txt"));
        assert!(!excluded("[^a-c].txt\n", "b.txt"));
        assert!(excluded("a\\*b\n", "a*b")); // an escaped `*` is a literal star
        assert!(!excluded("a\\*b\n", "axb"));
    }

    #[test]
    fn patternmatcher_table() {
        // (pattern, path, excluded) — the behaviour of moby/patternmatcher's
        // MatchesOrParentMatches for one pattern, as its own test table pins it down.
        let rows: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "/", true),
            ("**/", "/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true),
            ("a\\\\", "a\\", true),
            ("a\\*b", "a*b", true),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
        ];
        for (p, path, want) in rows {
            assert_eq!(excluded(&format!("{p}\n"), path), *want, "pattern {p:?} path {path:?}");
        }
        // several patterns: the last match wins, exceptions re-include
        assert!(!excluded("**\n!util/docker/web\n", "util/docker/web/foo"));
        assert!(excluded("**\n!util/docker/web\nutil/docker/web/foo\n", "util/docker/web/foo"));
        assert!(!excluded("**\n!dist/*.whl\n", "dist/a-1+g0.whl"));
    }

    #[test]
    fn bad_patterns() {
        assert_eq!(Matcher::parse("!\n").unwrap_err(), IgnoreError::BareBang { line: 1 });
        assert!(matches!(Matcher::parse("ok\n[\n"), Err(IgnoreError::Bad { line: 2, .. })));
    }

    #[test]
    fn pruning() {
        let m = Matcher::parse("dir\n").unwrap();
        assert!(m.can_prune("dir"));
        let m = Matcher::parse("dir\n!dir/keep\n").unwrap();
        assert!(!m.can_prune("dir"));
        assert!(m.can_prune("other"));
        let m = Matcher::parse("*\n!**/keep\n").unwrap();
        assert!(!m.can_prune("any"));
    }
}
