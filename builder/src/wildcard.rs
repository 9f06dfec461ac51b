//! One wildcard engine for the three pattern languages slipway reads: COPY/ADD sources (Go's
//! `filepath.Match`, `glob.rs`), `.dockerignore` (moby/patternmatcher: the same syntax plus
//! `**`, `dockerignore.rs`) and the `#`, `%` and `/` modifiers of word expansion (shell
//! patterns, `dockerfile/shell.rs`). They share the scanner (escapes, `*`, `?`, bracket classes),
//! the tokens, and one NFA that matches every prefix of a text in a single pass; each language
//! keeps only the few lines that make its tokens. Pure functions; nothing here reads files.
//!
//! The NFA is bit-parallel (shift-and): bit i of the state says "tokens `..i` matched the text so
//! far", so a character costs a pass over tokens/64 words, whatever the pattern. Backtracking was
//! exponential on `**/**/...` and `*a*a*a...`, and memoised still cubic: `make fuzz` found a
//! 400-directory path taking 3.4 s, and fifty `*` against a 400-character value taking 28 s. No
//! well-kept crate matches these three dialects (docker's escapes, patternmatcher's `**`,
//! BuildKit's shell escapes) with prefix matching, hence by hand.

/// A pattern that the language's parser would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// What the scanner sees: a character as written or escaped, `*`, `?` or a bracket class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Char(char),
    Escaped(char),
    Star,
    Question,
    Class { neg: bool, ranges: Vec<(char, char)> },
}

/// How a language writes patterns.
#[derive(Debug, Clone, Copy)]
pub struct Syntax {
    pub escape: char,
    /// A letter or digit may be escaped (Go's paths); BuildKit's shell patterns refuse it.
    pub escape_alnum: bool,
    /// `[...]` is a class (paths); in shell patterns a bracket is itself.
    pub classes: bool,
}

/// Go's `filepath.Match` syntax, which `.dockerignore` patterns are checked against too.
pub const PATH: Syntax = Syntax { escape: '\\', escape_alnum: true, classes: true };

/// Scans `p` into items, with Go's rules for classes (`[^a-z]`, escapes inside, no empty class,
/// no `-` or `]` where a character belongs).
pub fn scan(p: &str, syn: Syntax) -> Result<Vec<Item>, BadPattern> {
    let cs: Vec<char> = p.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        match c {
            '*' => out.push(Item::Star),
            '?' => out.push(Item::Question),
            c if c == syn.escape => match cs.get(i) {
                Some(&n) if syn.escape_alnum || !n.is_alphanumeric() => {
                    out.push(Item::Escaped(n));
                    i += 1;
                }
                _ => return Err(BadPattern),
            },
            '[' if syn.classes => {
                let mut neg = false;
                if cs.get(i) == Some(&'^') {
                    neg = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    match cs.get(i) {
                        None => return Err(BadPattern),
                        Some(']') if !ranges.is_empty() => {
                            i += 1;
                            break;
                        }
                        _ => {}
                    }
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
                out.push(Item::Class { neg, ranges });
            }
            c => out.push(Item::Char(c)),
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

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Lit(char),
    /// One character but `/` (a path's `?`).
    One,
    /// Any one character (a shell pattern's `?`).
    Any,
    /// One character of a class; `/` only when `slash` (a regexp class of patternmatcher).
    Class {
        neg: bool,
        ranges: Vec<(char, char)>,
        slash: bool,
    },
    /// Any run of characters but `/` (a path's `*`).
    Star,
    /// Any run of characters (a shell pattern's `*`, `.dockerignore`'s trailing `**`).
    Rest,
    /// `.dockerignore`'s `**/` inside a pattern: nothing, or any run that ends in `/`.
    Deep,
}

/// Go's `filepath.Match` pattern: `*`, `?` and classes never match `/`.
pub fn path_tokens(p: &str) -> Result<Vec<Tok>, BadPattern> {
    Ok(scan(p, PATH)?
        .into_iter()
        .map(|it| match it {
            Item::Char(c) | Item::Escaped(c) => Tok::Lit(c),
            Item::Star => Tok::Star,
            Item::Question => Tok::One,
            Item::Class { neg, ranges } => Tok::Class { neg, ranges, slash: false },
        })
        .collect())
}

/// A compiled pattern: its tokens and the bit masks the NFA steps with (a few allocations in
/// all: shell patterns are compiled per `${V%p}` expansion).
#[derive(Debug, Clone)]
pub struct Pattern {
    toks: Vec<Tok>,
    /// Words of 64 bits for tokens + 1 states.
    words: usize,
    /// `words` each, in one allocation: the tokens that consume a character and move on, for a
    /// character other than `/` (CONSUME) and for `/` (CONSUME + 1; `?` of a path is only in the
    /// first); that consume one and stay (STAY, STAY + 1; `*` of a path only in the first); `**/`
    /// (DEEP); that may match nothing (EPS: reaching i reaches i + 1 too).
    masks: Vec<u64>,
    has_deep: bool,
    has_eps: bool,
    /// The literal characters, sorted; the mask of `lit_chars[i]` is `lit_masks[i * words..]`.
    lit_chars: Vec<char>,
    lit_masks: Vec<u64>,
    classes: Vec<ClassBit>,
}

const CONSUME: usize = 0;
const STAY: usize = 2;
const DEEP: usize = 4;
const EPS: usize = 5;

/// A class token and its bit.
#[derive(Debug, Clone)]
struct ClassBit {
    bit: usize,
    neg: bool,
    ranges: Vec<(char, char)>,
    slash: bool,
}

impl Pattern {
    pub fn new(toks: Vec<Tok>) -> Pattern {
        let words = (toks.len() + 1).div_ceil(64);
        let mut masks = vec![0u64; 6 * words];
        let mut lit_chars: Vec<char> =
            toks.iter().filter_map(|t| if let Tok::Lit(c) = t { Some(*c) } else { None }).collect();
        lit_chars.sort_unstable();
        lit_chars.dedup();
        let mut lit_masks = vec![0u64; lit_chars.len() * words];
        let mut classes = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let (w, b) = (i / 64, 1u64 << (i % 64));
            let mut set = |m: usize| masks[m * words + w] |= b;
            match t {
                Tok::Lit(c) => {
                    if let Ok(k) = lit_chars.binary_search(c) {
                        lit_masks[k * words + w] |= b;
                    }
                }
                Tok::One => set(CONSUME),
                Tok::Any => {
                    set(CONSUME);
                    set(CONSUME + 1);
                }
                Tok::Class { neg, ranges, slash } => {
                    classes.push(ClassBit { bit: i, neg: *neg, ranges: ranges.clone(), slash: *slash })
                }
                Tok::Star => set(STAY),
                Tok::Rest => {
                    set(STAY);
                    set(STAY + 1);
                }
                Tok::Deep => set(DEEP),
            }
            if matches!(t, Tok::Star | Tok::Rest | Tok::Deep) {
                set(EPS);
            }
        }
        let any = |m: usize| masks[m * words..(m + 1) * words].iter().any(|w| *w != 0);
        let (has_deep, has_eps) = (any(DEEP), any(EPS));
        Pattern { toks, words, masks, has_deep, has_eps, lit_chars, lit_masks, classes }
    }

    fn mask(&self, m: usize) -> &[u64] {
        &self.masks[m * self.words..(m + 1) * self.words]
    }

    pub fn tokens(&self) -> &[Tok] {
        &self.toks
    }

    /// The pattern read backwards: it matches the reverse of what this one matches. Not for
    /// `**/` (`(.*/)?` backwards is `(/.*)?`, no token here); shell patterns have none.
    pub fn reversed(&self) -> Pattern {
        debug_assert!(!self.has_deep);
        Pattern::new(self.toks.iter().rev().cloned().collect())
    }

    /// Whether the pattern matches all of `s`.
    pub fn matches(&self, s: &str) -> bool {
        let cs: Vec<char> = s.chars().collect();
        self.prefixes(&cs)[cs.len()]
    }

    /// `m[k]`: whether the pattern matches all of `s[..k]`, for every k at once, stopping early
    /// once no longer prefix can match.
    pub fn prefixes(&self, s: &[char]) -> Vec<bool> {
        self.scan(s, false)
    }

    /// `m[k]` as `prefixes`; with `unanchored`, a match may start anywhere: `m[k]` says some
    /// `s[j..k]` matches.
    pub fn scan(&self, s: &[char], unanchored: bool) -> Vec<bool> {
        let n = self.toks.len();
        let words = self.words;
        let accept = |st: &[u64]| st[n / 64] & (1u64 << (n % 64)) != 0;
        let mut st = vec![0u64; words];
        let mut next = vec![0u64; words];
        let (mut dp, mut next_dp) =
            if self.has_deep { (vec![0u64; words], vec![0u64; words]) } else { (Vec::new(), Vec::new()) };
        // only the first `hi` words can hold bits: a step moves the set up one bit, and the
        // closure runs on as long as its carry does
        st[0] = 1;
        let mut hi = self.close(&mut st, 1);
        let mut out = vec![false; s.len() + 1];
        out[0] = accept(&st);
        for (k, &c) in s.iter().enumerate() {
            let reach = (hi + 1).min(words);
            let slash = usize::from(c == '/');
            let (consume, stay) = (self.mask(CONSUME + slash), self.mask(STAY + slash));
            let lit = self.lit_chars.binary_search(&c).ok().map(|k| &self.lit_masks[k * words..(k + 1) * words]);
            let mut carry = 0;
            for w in 0..reach {
                let cur = st[w];
                let moved = cur & (consume[w] | lit.map_or(0, |l| l[w]));
                next[w] = (moved << 1) | carry | (cur & stay[w]);
                carry = moved >> 63;
            }
            for k in &self.classes {
                let on = st[k.bit / 64] & (1u64 << (k.bit % 64)) != 0;
                if on && (slash == 0 || k.slash) && k.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != k.neg {
                    let b = k.bit + 1;
                    next[b / 64] |= 1u64 << (b % 64);
                }
            }
            if self.has_deep {
                let deep = self.mask(DEEP);
                // `**/`: from the token or inside its `.*`, any character stays inside, and a `/`
                // may also end it
                let mut carry = 0;
                for w in 0..reach {
                    let d = (st[w] | dp[w]) & deep[w];
                    next_dp[w] = d;
                    if slash == 1 {
                        next[w] |= (d << 1) | carry;
                        carry = d >> 63;
                    }
                }
                std::mem::swap(&mut dp, &mut next_dp);
            }
            if unanchored {
                next[0] |= 1;
            }
            hi = self.close(&mut next, reach);
            std::mem::swap(&mut st, &mut next);
            let inside = self.has_deep && dp[..reach].iter().any(|w| *w != 0);
            if !unanchored && !inside && st[..hi].iter().all(|w| *w == 0) {
                break;
            }
            out[k + 1] = accept(&st);
        }
        out
    }

    /// Closes `st` under the tokens that may match nothing (a set bit i on such a token sets
    /// i + 1, along runs of them), and returns how many words may now hold bits. Per word:
    /// adding the run mask to the run bits that are set carries each through to the end of its
    /// run and one past it, and the carry out of a word starts the next.
    fn close(&self, st: &mut [u64], hi: usize) -> usize {
        if !self.has_eps {
            return hi;
        }
        let eps = self.mask(EPS);
        let mut carry = 0u64;
        let mut w = 0;
        let mut top = hi;
        while w < self.words && (w < hi || carry != 0) {
            let s = st[w] | carry;
            let (sum, over) = (s & eps[w]).overflowing_add(eps[w]);
            st[w] = s | (sum ^ eps[w]);
            carry = u64::from(over);
            if st[w] != 0 {
                top = top.max(w + 1);
            }
            w += 1;
        }
        top
    }
}

/// The backtracking matcher the NFA replaced, memoised on (token, position): the reference the
/// tests of each language hold the NFA to.
#[cfg(test)]
pub(crate) fn backtrack(t: &[Tok], s: &[char]) -> bool {
    let mut memo = vec![None; (t.len() + 1) * (s.len() + 1)];
    tests::reference(t, s, 0, 0, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn reference(t: &[Tok], s: &[char], ti: usize, si: usize, memo: &mut [Option<bool>]) -> bool {
        let key = ti * (s.len() + 1) + si;
        if let Some(v) = memo[key] {
            return v;
        }
        let rest = &s[si..];
        let v = match t.get(ti) {
            None => rest.is_empty(),
            Some(Tok::Lit(c)) => rest.first() == Some(c) && reference(t, s, ti + 1, si + 1, memo),
            Some(Tok::One) => rest.first().is_some_and(|&c| c != '/') && reference(t, s, ti + 1, si + 1, memo),
            Some(Tok::Any) => !rest.is_empty() && reference(t, s, ti + 1, si + 1, memo),
            Some(Tok::Class { neg, ranges, slash }) => match rest.first() {
                Some(&c) if c != '/' || *slash => {
                    let inr = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                    inr != *neg && reference(t, s, ti + 1, si + 1, memo)
                }
                _ => false,
            },
            Some(Tok::Star) => {
                let mut found = false;
                for i in 0..=rest.len() {
                    if reference(t, s, ti + 1, si + i, memo) {
                        found = true;
                        break;
                    }
                    if i < rest.len() && rest[i] == '/' {
                        break;
                    }
                }
                found
            }
            Some(Tok::Rest) => (0..=rest.len()).any(|i| reference(t, s, ti + 1, si + i, memo)),
            Some(Tok::Deep) => {
                reference(t, s, ti + 1, si, memo)
                    || (0..rest.len()).any(|i| rest[i] == '/' && reference(t, s, ti + 1, si + i + 1, memo))
            }
        };
        memo[key] = Some(v);
        v
    }

    fn all(alphabet: &[char], max: usize) -> Vec<Vec<char>> {
        let mut out: Vec<Vec<char>> = vec![vec![]];
        let mut last = out.clone();
        for _ in 0..max {
            last = last.iter().flat_map(|p| alphabet.iter().map(move |c| [&p[..], &[*c]].concat())).collect();
            out.extend(last.clone());
        }
        out
    }

    #[test]
    fn nfa_agrees_with_backtracking() {
        // every token sequence of up to three pieces against every text of up to five
        // characters over {a, b, /}, each prefix, anchored and unanchored
        let class = |neg, slash| Tok::Class { neg, ranges: vec![('a', 'a')], slash };
        let pieces = [
            Tok::Lit('a'),
            Tok::Lit('/'),
            Tok::One,
            Tok::Any,
            Tok::Star,
            Tok::Rest,
            Tok::Deep,
            class(false, false),
            class(true, false),
            class(true, true),
        ];
        let mut pats: Vec<Vec<Tok>> = vec![vec![]];
        let mut last = pats.clone();
        for _ in 0..3 {
            last = last
                .iter()
                .flat_map(|p| pieces.iter().map(move |x| [&p[..], std::slice::from_ref(x)].concat()))
                .collect();
            pats.extend(last.clone());
        }
        let texts = all(&['a', 'b', '/'], 5);
        for toks in &pats {
            let p = Pattern::new(toks.clone());
            for s in &texts {
                let got = p.prefixes(s);
                let any = p.scan(s, true);
                for k in 0..=s.len() {
                    let mut memo = vec![None; (toks.len() + 1) * (k + 1)];
                    let want = reference(toks, &s[..k], 0, 0, &mut memo);
                    assert_eq!(got[k], want, "{toks:?} against {:?}", s[..k].iter().collect::<String>());
                    // a match ending at k that starts anywhere is `.*` then the pattern from 0
                    let rest: Vec<Tok> = [&[Tok::Rest][..], &toks[..]].concat();
                    let mut memo = vec![None; (rest.len() + 1) * (k + 1)];
                    let want_any = reference(&rest, &s[..k], 0, 0, &mut memo);
                    assert_eq!(any[k], want_any, "unanchored {toks:?} against {:?}", s[..k].iter().collect::<String>());
                }
            }
        }
    }

    #[test]
    fn long_runs_cross_words() {
        // 130 tokens: the state spans three words, runs of `*` and `**/` carry across them
        let mut toks = vec![Tok::Deep; 70];
        toks.extend(vec![Tok::Lit('a'); 59]);
        toks.push(Tok::Rest);
        let p = Pattern::new(toks);
        let s: Vec<char> = format!("x/y/{}zz", "a".repeat(59)).chars().collect();
        assert!(p.prefixes(&s)[s.len()]);
        let short: Vec<char> = "x/y/".chars().chain("a".repeat(58).chars()).collect();
        assert!(!p.prefixes(&short)[short.len()]);
        let stars = Pattern::new([vec![Tok::Star; 200], vec![Tok::Lit('b')]].concat());
        assert!(stars.matches("aaab") && !stars.matches("aa/ab"));
    }

    #[test]
    fn scanner_table() {
        // Go's filepath.Match syntax errors, and BuildKit's shell escapes
        let shell = Syntax { escape: '\\', escape_alnum: false, classes: false };
        assert_eq!(
            scan("a\\*[^b-d]", PATH),
            Ok(vec![Item::Char('a'), Item::Escaped('*'), Item::Class { neg: true, ranges: vec![('b', 'd')] }])
        );
        for bad in ["[]a]", "[-]", "[x-]", "[a-b-c]", "[", "[^", "a\\", "[z-a]"] {
            assert_eq!(scan(bad, PATH), Err(BadPattern), "{bad}");
        }
        assert_eq!(
            scan("[a]\\*", shell),
            Ok(vec![Item::Char('['), Item::Char('a'), Item::Char(']'), Item::Escaped('*')])
        );
        assert_eq!(scan("\\a", shell), Err(BadPattern));
        assert_eq!(scan("\\a", PATH), Ok(vec![Item::Escaped('a')]));
    }
}
