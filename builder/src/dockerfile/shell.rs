//! Word expansion as BuildKit's shell lexer does it: quotes, escapes and `$` parameter forms.
//! It never runs a shell and never touches the process environment; callers pass the variables.

use crate::wildcard::{self, Item, Pattern, Syntax, Tok};
use thiserror::Error;

/// An expansion error; the caller adds the file and line.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ShellError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ShellError> {
    Err(ShellError(msg.into()))
}

/// Variable lookup used during expansion.
pub trait Env {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.as_slice().lookup(name)
    }
}

/// An environment with no variables.
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _name: &str) -> Option<String> {
        None
    }
}

/// The lexer's options, as BuildKit's `shell.Lex`.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave unset variables as written instead of expanding them to "".
    pub skip_unset: bool,
    /// Quotes are ordinary characters (BuildKit's `SkipProcessQuotes`).
    pub skip_process_quotes: bool,
}

impl Lexer {
    pub fn new(escape: char) -> Lexer {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_unset: false, skip_process_quotes: false }
    }

    /// Expands one word (quotes removed, no field splitting).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        let mut w = Word::new(self, word, env);
        let (s, _) = w.process_stop_on(None, self.raw_escapes)?;
        Ok(s)
    }

    /// Expands the body of a COPY/ADD heredoc whose delimiter is unquoted, as BuildKit's
    /// `SourcesAndDest.ExpandRaw` does: one word of a lexer with the escape `\\` (whatever the
    /// Dockerfile's) to which quotes are ordinary characters, so `$` forms expand and an escape
    /// gives the character after it (`\\$x` is `$x`, `\\\\` is `\\`, `\\` before a newline is
    /// the newline; dockerfile_heredoc_test.go testCopyHeredocSpecialSymbols).
    pub fn expand_heredoc(body: &str, env: &dyn Env) -> Result<String, ShellError> {
        let mut lex = Lexer::new('\\');
        lex.skip_process_quotes = true;
        lex.process_word(body, env)
    }

    /// Expands and splits into words on unquoted whitespace.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let mut w = Word::new(self, word, env);
        let (_, words) = w.process_stop_on(None, self.raw_escapes)?;
        Ok(words)
    }
}

#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct Word<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
}

impl<'a> Word<'a> {
    fn new(lex: &'a Lexer, s: &str, env: &'a dyn Env) -> Word<'a> {
        Word { lex, chars: s.chars().collect(), pos: 0, env }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '\'' | '"' if self.lex.skip_process_quotes => {
                    self.next();
                    result.push(ch);
                    words.add_char(ch);
                }
                '\'' => {
                    let t = self.single_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '"' => {
                    let t = self.double_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '$' => {
                    let t = self.dollar()?;
                    result.push_str(&t);
                    check_size(&result)?;
                    words.add_string(&t);
                }
                '<' => {
                    // BuildKit's processPossibleHeredoc (moby/buildkit 0b77373ab): `<<` keeps the
                    // blanks after it in its word, so `<< EOF` is one heredoc word
                    self.next();
                    let mut t = String::from("<");
                    if self.peek() == Some('<') {
                        self.next();
                        t.push('<');
                        while let Some(b) = self.peek().filter(|c| matches!(c, ' ' | '\t' | '\r')) {
                            self.next();
                            t.push(b);
                        }
                    }
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.lex.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        match self.next() {
                            None => break,
                            Some(c) => {
                                ch = c;
                                words.add_raw_char(ch);
                            }
                        }
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(s) = stop {
            return err(format!("unexpected end of statement while looking for matching {s}"));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.next() {
                None => return err("unexpected end of statement while looking for matching single-quote"),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        let q = self.next();
        if self.lex.raw_quotes {
            result.extend(q);
        }
        loop {
            match self.peek() {
                None => return err("unexpected end of statement while looking for matching double-quote"),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    result.push_str(&v);
                    check_size(&result)?;
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.lex.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(|c| c.is_ascii_digit()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.env.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{') | Some('}') | Some(':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        let Some(mut ch) = self.next() else {
            return err("syntax error: missing '}'");
        };
        let mut chs = ch.to_string();
        let value = self.env.lookup(&name);
        match ch {
            '}' => Ok(match value {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let mut null_is_unset = false;
                if ch == ':' {
                    null_is_unset = true;
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            chs.push(c);
                        }
                        None => return err("syntax error: missing '}'"),
                    }
                    if !matches!(ch, '+' | '-' | '?') {
                        return err(format!("unsupported modifier ({chs}) in substitution"));
                    }
                }
                let raw = ch == '#' || ch == '%';
                let word = match self.process_stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return err("syntax error: missing '}'");
                        }
                        return Err(e);
                    }
                };
                let set = value.is_some();
                if self.lex.skip_unset && !set {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let v = value.unwrap_or_default();
                let unset_or_null = !set || (null_is_unset && v.is_empty());
                match ch {
                    '-' => Ok(if unset_or_null { word } else { v }),
                    '+' => Ok(if unset_or_null { String::new() } else { word }),
                    '?' => {
                        if !set {
                            let m = if word.is_empty() { "is not allowed to be unset".to_string() } else { word };
                            return err(format!("{name}: {m}"));
                        }
                        if null_is_unset && v.is_empty() {
                            let m = if word.is_empty() { "is not allowed to be empty".to_string() } else { word };
                            return err(format!("{name}: {m}"));
                        }
                        Ok(v)
                    }
                    _ => {
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = shell_pattern(&pat, self.lex.escape)?;
                        Ok(if ch == '%' { trim_suffix(pat, &v, greedy) } else { trim_prefix(pat, &v, greedy) })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let (pattern, _) = self.process_stop_on(Some('/'), true)?;
                let (replacement, _) = self.process_stop_on(Some('}'), true)?;
                let Some(v) = value else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let pat = shell_pattern(&pattern, self.lex.escape)?;
                let out = replace(pat, &v, &replacement, all);
                if out.len() > v.len() + MAX_GROWTH {
                    return err(format!("${{{name}//...}}: the replacement grows the value by over 128 KiB"));
                }
                Ok(out)
            }
            _ => err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }
}

/// A shell pattern of the `%`, `#` and `/` modifiers, as BuildKit converts them: `*` and `?`
/// are wildcards that match `/` too, everything else (brackets too) is literal, and an escape may
/// only precede a non-alphanumeric character. Each run of `*` is one token (the same language).
/// Matched by `wildcard`'s NFA, whose prefix matching the trims and replacements need.
fn shell_pattern(p: &str, escape: char) -> Result<Vec<Tok>, ShellError> {
    let syntax = Syntax { escape, escape_alnum: false, classes: false };
    let items = wildcard::scan(p, syntax).map_err(|_| ShellError(format!("invalid escape in pattern {p:?}")))?;
    let mut toks = Vec::new();
    for it in items {
        match it {
            Item::Star if toks.last() == Some(&Tok::Rest) => {}
            Item::Star => toks.push(Tok::Rest),
            Item::Question => toks.push(Tok::Any),
            Item::Char(c) | Item::Escaped(c) => toks.push(Tok::Lit(c)),
            Item::Class { .. } => {} // never scanned without `classes`
        }
    }
    Ok(toks)
}

fn trim_prefix(p: Vec<Tok>, v: &str, greedy: bool) -> String {
    let cs: Vec<char> = v.chars().collect();
    let m = Pattern::new(p).prefixes(&cs);
    let n = if greedy { m.iter().rposition(|&x| x) } else { m.iter().position(|&x| x) };
    match n {
        Some(n) => cs[n..].iter().collect(),
        None => v.to_string(),
    }
}

fn trim_suffix(mut p: Vec<Tok>, v: &str, greedy: bool) -> String {
    // A suffix matches the pattern exactly when its reverse matches the reversed pattern.
    let rev: Vec<char> = v.chars().rev().collect();
    p.reverse();
    let m = Pattern::new(p).prefixes(&rev);
    let n = if greedy { m.iter().rposition(|&x| x) } else { m.iter().position(|&x| x) };
    match n {
        Some(n) => rev[n..].iter().rev().collect(),
        None => v.to_string(),
    }
}

/// The longest a word may grow by expansion. Far beyond any real one: Linux refuses a single
/// exec argument over 128 KiB, so a RUN line this long could not run anyway; but repeating a
/// long variable makes output quadratic in the input (a 64 KiB Dockerfile could ask for GBs).
const MAX_WORD: usize = 1 << 20;

fn check_size(word: &str) -> Result<(), ShellError> {
    if word.len() > MAX_WORD {
        return err("the expanded word is over 1 MiB");
    }
    Ok(())
}

/// How much longer than the value `${V//pattern/rep}` may make it. Every other form gives at
/// most its inputs back; this one multiplies (an empty pattern puts `rep` between every two
/// characters, and `rep` may hold `$V` again: a fuzz input of 80 characters made 7.5 MB).
const MAX_GROWTH: usize = 128 << 10;

/// `${V/pattern/rep}` and `${V//pattern/rep}`: at the first (each) position where a match
/// starts, the longest match is replaced. Stops adding once the value grew by MAX_GROWTH.
fn replace(p: Vec<Tok>, v: &str, rep: &str, all: bool) -> String {
    let p = Pattern::new(p);
    let cs: Vec<char> = v.chars().collect();
    // Where a match can start, for every position in one pass: the reversed pattern, unanchored,
    // over the reversed value (a match of it ending at n - i is a match starting at i).
    let rev: Vec<char> = cs.iter().rev().copied().collect();
    let ends_rev = p.reversed().scan(&rev, true);
    let starts = |i: usize| ends_rev[cs.len() - i];
    let mut out = String::new();
    let mut i = 0;
    while i <= cs.len() && out.len() <= v.len() + MAX_GROWTH {
        let found = if starts(i) { p.prefixes(&cs[i..]).iter().rposition(|&x| x).map(|n| i + n) } else { None };
        match found {
            Some(e) => {
                out.push_str(rep);
                if e == i {
                    if i < cs.len() {
                        out.push(cs[i]);
                    }
                    i += 1;
                } else {
                    i = e;
                }
                if !all {
                    out.extend(&cs[i.min(cs.len())..]);
                    return out;
                }
            }
            None => {
                if i < cs.len() {
                    out.push(cs[i]);
                }
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        [
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("EMPTY", ""),
            ("FILE", "a.tar.gz"),
            ("P", "/usr/local/bin"),
            ("SP", "a b  c"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn process_word_table() {
        // (input, expected) — rows follow BuildKit's shell/envVarTest cases.
        let ok: &[(&str, &str)] = &[
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he\"ll\"o", "hello"),
            ("'$PWD'", "$PWD"),    // no expansion in single quotes
            ("\"$PWD\"", "/home"), // expansion in double quotes
            ("$PWD", "/home"),
            ("${PWD}", "/home"),
            ("${PWD}x", "/homex"),
            ("$PWDx", ""),          // name is PWDx, unset
            ("\\$PWD", "$PWD"),     // escaped dollar
            ("\"\\$PWD\"", "$PWD"), // escaped inside double quotes
            ("\"a\\nb\"", "a\\nb"), // other escapes kept inside double quotes
            ("a\\ b", "a b"),
            ("$", "$"),
            ("$.", "$."),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"), // ':' treats null as unset
            ("${EMPTY-def}", ""),     // without ':' only unset
            ("${UNSET-def}", "def"),
            ("${PWD:-def}", "/home"),
            ("${PWD:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("${UNSET:-$PWD}", "/home"), // nested expansion in the word
            ("${UNSET:-'a b'}", "a b"),
            ("${PWD:?msg}", "/home"),
            ("${FILE%.*}", "a.tar"),  // shortest suffix
            ("${FILE%%.*}", "a"),     // longest suffix
            ("${FILE#*.}", "tar.gz"), // shortest prefix
            ("${FILE##*.}", "gz"),    // longest prefix
            ("${P#/usr}", "/local/bin"),
            ("${P/local/LOCAL}", "/usr/LOCAL/bin"),
            ("${P//\\//:}", ":usr:local:bin"), // replace all, escaped slash pattern
            ("${P/l*l/X}", "/usr/X/bin"),
            ("${UNSET/a/b}", ""),
            ("$1", ""),
            ("${SP}", "a b  c"),
        ];
        let lex = Lexer::new('\\');
        for (input, want) in ok {
            assert_eq!(lex.process_word(input, &env()).as_deref(), Ok(*want), "input {input}");
        }
    }

    #[test]
    fn buildkit_process_with_matches_table() {
        // (input, env, expected) — rows of BuildKit's TestProcessWithMatches.
        fn e(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        }
        let fb = [("FOO", "xxx"), ("BAR", "")];
        type Row<'a> = (&'a str, Vec<(String, String)>, Option<&'a str>);
        let rows: Vec<Row> = vec![
            ("x ${UNUSED}", e(&[]), Some("x ")),
            ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", e(&fb), Some("xxx  ccc")),
            ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", e(&fb), Some("xxx bbb ccc")),
            ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", e(&fb), Some("aaa bbb ")),
            ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", e(&fb), Some("aaa  ")),
            ("${BAR?bbb}", e(&fb), Some("")),
            ("${BAZ?ccc}", e(&fb), None),
            ("${BAR:?bbb}", e(&fb), None),
            ("${BAZ:?}", e(&fb), None),
            ("${FOO=aaa}", e(&fb), None),
            ("${FOO=:aaa}", e(&fb), None),
            ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", e(&[("FOO", "()[]{}^$.*?|\\x")]), Some("x")),
            ("${FOO%%\\**}", e(&[("FOO", "xx**")]), Some("xx")),
            ("${FOO#*x*y}", e(&[("FOO", "xxyy")]), Some("y")),
            ("${FOO#*}", e(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO#$BAR}", e(&[("FOO", "xxyy"), ("BAR", "x")]), Some("xyy")),
            ("${FOO#}", e(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO##*x}", e(&[("FOO", "xxyy")]), Some("yy")),
            ("${FOO#?\\?}", e(&[("FOO", "???y")]), Some("?y")),
            ("${ABC:-.}${FOO%x}${ABC:-.}", e(&[("FOO", "xxyy")]), Some(".xxyy.")),
            ("${FOO%%\\**\\*}", e(&[("FOO", "a***yy*")]), Some("a")),
            (
                "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
                e(&[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")]),
                Some("/foo.*/*.txt - /foo..*.txt"),
            ),
            (
                "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
                e(&[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")]),
                Some("/tmp/bar.txt - /bar.txt"),
            ),
            (
                "${FOO/$N/$R} - ${FOO//$N/$R}",
                e(&[("FOO", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")]),
                Some("/foo/b/c.txt - /foo/c.txt"),
            ),
            ("${FOO//\\//\\/}", e(&[("FOO", "/tmp/foo.txt")]), Some("\\/tmp\\/foo.txt")),
            ("${FOO/$BAR/ww}", e(&[("FOO", "xxyy"), ("BAR", "")]), Some("wwxxyy")),
            ("${FOO//ww}", e(&[("FOO", "xxyy")]), None),
            ("${FOO//}", e(&[("FOO", "xxyy")]), None),
            ("${FOO///}", e(&[("FOO", "xxyy")]), Some("xxyy")),
            ("${FOO///}", e(&[]), Some("")),
            ("${VAR:?message here$ARG}", e(&[("VAR", ""), ("ARG", "x")]), None),
            ("${VAR?message here$ARG}", e(&[("VAR", ""), ("ARG", "x")]), Some("")),
            ("${FOO#\\x}", e(&[("FOO", "xy")]), None), // escaping a letter is invalid
        ];
        let lex = Lexer::new('\\');
        for (input, env, want) in rows {
            let got = lex.process_word(input, &env);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(w), "input {input}"),
                None => assert!(got.is_err(), "input {input} should fail, got {got:?}"),
            }
        }
        let got = lex.process_word("${VAR:?message here$ARG}", &e(&[("ARG", "x")]));
        assert_eq!(got, Err(ShellError("VAR: message herex".into())));
    }

    #[test]
    fn errors_table() {
        let bad: &[(&str, &str)] = &[
            ("${UNSET:?is required}", "UNSET: is required"),
            ("${UNSET?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${PWD", "syntax error: missing '}'"),
            ("${}", "syntax error: bad substitution"),
            ("${:x}", "syntax error: bad substitution"),
            ("${PWD:#x}", "unsupported modifier (:#) in substitution"),
            ("'abc", "unexpected end of statement while looking for matching single-quote"),
            ("\"abc", "unexpected end of statement while looking for matching double-quote"),
        ];
        let lex = Lexer::new('\\');
        for (input, want) in bad {
            assert_eq!(lex.process_word(input, &env()), Err(ShellError(want.to_string())), "input {input}");
        }
    }

    #[test]
    fn backtick_escape() {
        // `# escape=\`` makes the backtick the escape and backslash a plain char
        let lex = Lexer::new('`');
        assert_eq!(lex.process_word("c:\\dir`$x", &env()).unwrap(), "c:\\dir$x");
        assert_eq!(lex.process_word("a` b", &env()).unwrap(), "a b");
    }

    #[test]
    fn words_split_on_expansion() {
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_words("x $SP", &env()).unwrap(), ["x", "a", "b", "c"]);
        assert_eq!(lex.process_words("\"$SP\" y", &env()).unwrap(), ["a b  c", "y"]);
    }

    #[test]
    fn heredoc_bodies() {
        // BuildKit's ExpandRaw of a COPY heredoc: quotes are text, `$` forms expand, an escape
        // gives the next character (dockerfile_heredoc_test.go testCopyHeredocSpecialSymbols:
        // `\` before a newline is the newline, `\\` is `\`, `\$` is `$`)
        let rows: &[(&str, &str)] = &[
            ("a '$PWD' \"${SHELL}\" \\$x\n", "a '/home' \"bash\" $x\n"),
            ("\"quotes in file\"\n", "\"quotes in file\"\n"),
            ("\\\n", "\n"),
            ("\\\\\n", "\\\n"),
            ("\\$\n", "$\n"),
            ("a\\nb\n", "anb\n"),
            ("${NOPE:-'d e'} ${SP}\n", "'d e' a b  c\n"),
            ("cat << EOF\n", "cat << EOF\n"),
        ];
        for (body, want) in rows {
            assert_eq!(Lexer::expand_heredoc(body, &env()).unwrap(), *want, "{body:?}");
        }
    }

    #[test]
    fn blanks_after_a_heredoc_operator_stay_in_its_word() {
        // BuildKit's processPossibleHeredoc (0b77373ab): `<< EOF` is one word, `<` alone is not
        // special, and the result of a single word is unchanged
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_words("cat << EOF > f", &NoEnv).unwrap(), ["cat", "<< EOF", ">", "f"]);
        assert_eq!(lex.process_words("cat <<-\tEOF", &NoEnv).unwrap(), ["cat", "<<-", "EOF"]);
        assert_eq!(lex.process_words("a < b <<  c", &NoEnv).unwrap(), ["a", "<", "b", "<<  c"]);
        assert_eq!(lex.process_word("a <<  b", &NoEnv).unwrap(), "a <<  b");
    }

    #[test]
    fn skip_unset_keeps_text() {
        let mut lex = Lexer::new('\\');
        lex.skip_unset = true;
        assert_eq!(lex.process_word("$NOPE ${NOPE} ${NOPE:-x}", &NoEnv).unwrap(), "$NOPE ${NOPE} ${NOPE:-x}");
    }

    /// Every pattern over {a, b, *, ?} of up to 5 characters against every prefix of every
    /// string over {a, b} of up to 6: the NFA says what plain backtracking says.
    #[test]
    fn pattern_nfa_agrees_with_backtracking() {
        fn naive(p: &[char], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some(('*', rest)) => (0..=s.len()).any(|i| naive(rest, &s[i..])),
                Some(('?', rest)) => !s.is_empty() && naive(rest, &s[1..]),
                Some((c, rest)) => s.first() == Some(c) && naive(rest, &s[1..]),
            }
        }
        fn all(alphabet: &[char], max: usize) -> Vec<Vec<char>> {
            let mut out = vec![vec![]];
            let mut last = vec![vec![]];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|w: &Vec<char>| alphabet.iter().map(move |c| [&w[..], &[*c]].concat()))
                    .collect();
                out.extend(last.clone());
            }
            out
        }
        let texts = all(&['a', 'b'], 6);
        for p in all(&['a', 'b', '*', '?'], 5) {
            let pat: String = p.iter().collect();
            let g = Pattern::new(shell_pattern(&pat, '\\').unwrap());
            for t in &texts {
                let got = g.prefixes(t);
                for k in 0..=t.len() {
                    assert_eq!(got[k], naive(&p, &t[..k]), "{pat:?} against {:?}", &t[..k]);
                }
            }
        }
        // replace, against the same thing built on backtracking
        fn naive_replace(p: &[char], v: &[char], rep: &str, all: bool) -> String {
            let mut out = String::new();
            let mut i = 0;
            while i <= v.len() {
                match (i..=v.len()).rev().find(|&e| naive(p, &v[i..e])) {
                    Some(e) => {
                        out.push_str(rep);
                        if e == i {
                            out.extend(v.get(i));
                            i += 1;
                        } else {
                            i = e;
                        }
                        if !all {
                            out.extend(&v[i.min(v.len())..]);
                            return out;
                        }
                    }
                    None => {
                        out.extend(v.get(i));
                        i += 1;
                    }
                }
            }
            out
        }
        for p in all(&['a', 'b', '*', '?'], 4) {
            let pat: String = p.iter().collect();
            let g = shell_pattern(&pat, '\\').unwrap();
            for t in &texts {
                let text: String = t.iter().collect();
                for every in [false, true] {
                    assert_eq!(
                        replace(g.clone(), &text, "_", every),
                        naive_replace(&p, t, "_", every),
                        "{pat:?} in {text:?}"
                    );
                }
            }
        }
        // and the forms built on it
        let g = |p: &str| shell_pattern(p, '\\').unwrap();
        assert_eq!(trim_prefix(g("*a"), "banana", true), "");
        assert_eq!(trim_prefix(g("*a"), "banana", false), "nana");
        assert_eq!(trim_suffix(g("a*"), "banana", true), "b");
        assert_eq!(trim_suffix(g("a*"), "banana", false), "banan");
        assert_eq!(replace(g("a?"), "banana", "_", true), "b__a");
        let big = vec![("A".to_string(), "x".repeat(2000))];
        let e = Lexer::new('\\').process_word("${A///${A}}", &big).unwrap_err();
        assert!(e.0.contains("${A//...}: the replacement grows the value by over 128 KiB"), "{e}");
        assert_eq!(Lexer::new('\\').process_word("${A//x/yy}", &big).unwrap().len(), 4000);
        let many = "$A".repeat(530);
        let e = Lexer::new('\\').process_word(&many, &big).unwrap_err();
        assert_eq!(e.0, "the expanded word is over 1 MiB");
        let e = Lexer::new('\\').process_word(&format!("\"{many}\""), &big).unwrap_err();
        assert_eq!(e.0, "the expanded word is over 1 MiB");
        assert_eq!(Lexer::new('\\').process_word(&"$A".repeat(500), &big).unwrap().len(), 1_000_000);
    }
}
