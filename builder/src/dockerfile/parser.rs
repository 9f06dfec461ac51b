//! Turns Dockerfile text into a list of nodes with line numbers, as BuildKit's `parser` package:
//! directives, comments, continuations, heredocs, flags and the per-instruction argument forms.
//! It does not expand variables nor know what an instruction means.

use super::shell::{Lexer, NoEnv};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

/// One `<<EOF` body attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    /// `<<-`: leading tabs stripped from the body.
    pub chomp: bool,
    /// The delimiter was unquoted: the body is expanded.
    pub expand: bool,
}

/// The arguments of a node, in the form its instruction's parser produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// One string (shell form, MAINTAINER, USER, WORKDIR, STOPSIGNAL).
    Text(String),
    /// A list of words (JSON form, or whitespace-split).
    List(Vec<String>),
    /// `name=value` pairs (ENV, LABEL) with quotes still in.
    Pairs(Vec<(String, String)>),
    /// ARG: `name` with an optional default.
    Names(Vec<(String, Option<String>)>),
    /// ONBUILD's trigger.
    Sub(Box<Node>),
    /// Nothing after the keyword.
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Lowercase instruction keyword.
    pub cmd: String,
    /// The instruction as written after joining continuations.
    pub original: String,
    pub flags: Vec<String>,
    pub args: Args,
    /// JSON (exec) form.
    pub json: bool,
    pub heredocs: Vec<Heredoc>,
    pub start_line: usize,
    pub end_line: usize,
    /// The comments right above the instruction (each without its `#`; an empty `#` line
    /// clears them, as in BuildKit's `PrevComment`): build checks read them.
    pub comments: Vec<String>,
    /// A continuation of this instruction went over an empty line (BuildKit warns:
    /// NoEmptyContinuation).
    pub empty_continuation: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    /// The `# check=` directive's value (build checks' configuration).
    pub check: Option<String>,
    pub nodes: Vec<Node>,
}

struct Directives {
    escape: char,
    seen: Vec<String>,
    syntax: Option<String>,
    check: Option<String>,
    done: bool,
}

impl Directives {
    /// Reads a line of the directive block; true when it was a directive.
    fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        // ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(false);
        };
        let rest = rest.trim_start();
        let key_len = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_alphanumeric())))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (key, after) = rest.split_at(key_len);
        let after = after.trim_start();
        let value = after.strip_prefix('=').map(|v| v.trim());
        let (true, Some(value)) = (!key.is_empty(), value.filter(|v| !v.is_empty())) else {
            self.done = true;
            return Ok(false);
        };
        let key = key.to_ascii_lowercase();
        if key != "escape" && key != "syntax" && key != "check" {
            self.done = true;
            return Ok(false);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                if value != "`" && value != "\\" {
                    return Err(format!("invalid escape token '{value}' does not match ` or \\"));
                }
                self.escape = value.chars().next().unwrap_or('\\');
            }
            "syntax" => self.syntax = Some(value.to_string()),
            _ => self.check = Some(value.to_string()),
        }
        Ok(true)
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The line without its continuation escape, and whether it ends the instruction: BuildKit's
/// `lineContinuationRegex`, `([^\\])\\[ \t]*$|^\\[ \t]*$` for the escape `\`. An escape
/// right after another one is no continuation (`RUN echo a\\` ends there and prints `a\`).
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(s) if !s.ends_with(escape) => (s.to_string(), false),
        _ => (line.to_string(), true),
    }
}

fn split_lines(src: &str) -> Vec<String> {
    // Keep each line's newline: heredoc bodies need them.
    src.split_inclusive('\n').map(str::to_string).collect()
}

fn trim_newline(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

/// Parses a whole Dockerfile.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines = split_lines(src);
    let mut d = Directives { escape: '\\', seen: Vec::new(), syntax: None, check: None, done: false };
    let mut nodes = Vec::new();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = trim_newline(&lines[i]);
        let start_line = i + 1;
        i += 1;
        let directive = d.parse_line(raw.trim_start()).map_err(|msg| ParseError { line: start_line, msg })?;
        let first = raw.trim_start();
        if is_comment(first) {
            // BuildKit's PrevComment: directives are not comments; a bare `#` ends a run
            let text = first[1..].trim();
            if text.is_empty() {
                comments.clear();
            } else if !directive {
                comments.push(text.to_string());
            }
            continue;
        }
        let (mut line, mut eol) = trim_continuation(first, d.escape);
        if eol && line.trim().is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let next = trim_newline(&lines[i]);
            i += 1;
            d.parse_line(next).map_err(|msg| ParseError { line: i, msg })?;
            if is_comment(next) {
                continue;
            }
            if next.trim().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (cont, e) = trim_continuation(next, d.escape);
            line.push_str(&cont);
            eol = e;
        }
        let mut node = node_from_line(&line, d.escape).map_err(|msg| ParseError { line: start_line, msg })?;
        node.comments = std::mem::take(&mut comments);
        node.empty_continuation = empty_continuation;
        if can_contain_heredoc(&node) && line.contains("<<") {
            let mut docs = heredocs_from_line(&line);
            for doc in &mut docs {
                let mut terminated = false;
                while i < lines.len() {
                    let l = &lines[i];
                    i += 1;
                    let mut possible = trim_newline(l);
                    if doc.chomp {
                        possible = possible.trim_start_matches('\t');
                    }
                    if possible == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(l);
                }
                if !terminated {
                    return Err(ParseError { line: start_line, msg: "unterminated heredoc".into() });
                }
                // an ONBUILD trigger keeps its bodies as written: they are read again, with
                // the trigger, when it runs
                if doc.chomp && node.cmd != "onbuild" {
                    doc.content = chomp_heredoc(&doc.content);
                }
            }
            node.heredocs = docs;
        }
        node.start_line = start_line;
        node.end_line = i;
        nodes.push(node);
    }
    Ok(Dockerfile { escape: d.escape, syntax: d.syntax, check: d.check, nodes })
}

/// Strips the leading tabs of every line (`<<-`).
pub fn chomp_heredoc(s: &str) -> String {
    s.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

/// RUN, COPY and ADD in shell form, also as an ONBUILD trigger (BuildKit's
/// `heredocDirectives` and `heredocCompoundDirectives`).
fn can_contain_heredoc(n: &Node) -> bool {
    let n = match &n.args {
        Args::Sub(trigger) if n.cmd == "onbuild" => trigger,
        _ => n,
    };
    matches!(n.cmd.as_str(), "run" | "copy" | "add") && !n.json
}

/// Parses `<<[-]WORD` into a heredoc, as BuildKit's `ParseHeredoc`: `^(\d*)<<(-?)\s*([^<]*)$`,
/// blanks allowed before the word (moby/buildkit 0b77373ab).
pub fn parse_heredoc(word: &str) -> Option<Heredoc> {
    let digits = word.chars().take_while(|c| c.is_ascii_digit()).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut lex = Lexer::new('\\');
    lex.skip_unset = true;
    let words = lex.process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).ok()?;
    if raw.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    let expand = quotes(&words[0]) == quotes(&raw[0]);
    Some(Heredoc { name: words[0].clone(), content: String::new(), chomp, expand })
}

fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let trimmed = line.trim();
    let (cmd, rest) = match trimmed.find(char::is_whitespace) {
        Some(p) => (&trimmed[..p], trimmed[p..].trim_start()),
        None => (trimmed, ""),
    };
    let (flags, rest) = extract_flags(rest, escape);
    let rest = rest.trim();
    let cmd_l = cmd.to_ascii_lowercase();
    let mut json = false;
    let args = match cmd_l.as_str() {
        "add" | "copy" | "volume" => match parse_json(rest)? {
            Some(v) => {
                json = true;
                Args::List(v)
            }
            None => Args::List(split_ws(rest)),
        },
        "cmd" | "entrypoint" | "run" | "shell" => match parse_json(rest)? {
            Some(v) => {
                json = true;
                Args::List(v)
            }
            None if rest.is_empty() => Args::Empty,
            None => Args::Text(rest.to_string()),
        },
        "expose" | "from" => Args::List(split_ws(rest)),
        "env" | "label" => Args::Pairs(parse_name_val(&cmd_l, rest, escape)?),
        "arg" => Args::Names(parse_arg(rest, escape)?),
        "maintainer" | "stopsignal" | "user" | "workdir" => Args::Text(rest.to_string()),
        "onbuild" => {
            if rest.is_empty() {
                Args::Empty
            } else {
                Args::Sub(Box::new(node_from_line(rest, escape)?))
            }
        }
        "healthcheck" => {
            let (kind, after) = match rest.find(char::is_whitespace) {
                Some(p) => (&rest[..p], rest[p..].trim()),
                None => (rest, ""),
            };
            let mut v = vec![kind.to_string()];
            match parse_json(after)? {
                Some(list) => {
                    json = true;
                    v.extend(list);
                }
                None if !after.is_empty() => v.push(after.to_string()),
                None => {}
            }
            Args::List(v)
        }
        _ => Args::Text(rest.to_string()),
    };
    Ok(Node {
        cmd: cmd_l,
        original: trimmed.to_string(),
        flags,
        args,
        json,
        heredocs: Vec::new(),
        start_line: 0,
        end_line: 0,
        comments: Vec::new(),
        empty_continuation: false,
    })
}

fn split_ws(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// `Some(list)` for a valid JSON string array; `None` means shell form (invalid JSON falls back).
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    v.into_iter()
        .map(|x| match x {
            serde_json::Value::String(s) => Ok(s),
            _ => Err("when using JSON array syntax, arrays must be comprised of strings only".to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Leading `--flag[=value]` words, as BuildKit's `extractBuilderFlags`.
fn extract_flags(line: &str, escape: char) -> (Vec<String>, String) {
    let cs: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < cs.len() && cs[pos].is_whitespace() {
            pos += 1;
        }
        if pos + 1 >= cs.len() || cs[pos] != '-' || cs[pos + 1] != '-' {
            return (words, cs[pos.min(cs.len())..].iter().collect());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while pos < cs.len() {
            let ch = cs[pos];
            if let Some(q) = quote {
                if ch == q {
                    quote = None;
                } else if ch == escape && pos + 1 < cs.len() {
                    pos += 1;
                    word.push(cs[pos]);
                } else if ch != escape {
                    word.push(ch);
                }
                pos += 1;
                continue;
            }
            if ch.is_whitespace() {
                break;
            }
            if ch == '\'' || ch == '"' {
                quote = Some(ch);
                blank_ok = true;
            } else if ch == escape {
                if pos + 1 < cs.len() {
                    pos += 1;
                    word.push(cs[pos]);
                }
            } else {
                word.push(ch);
            }
            pos += 1;
        }
        if word == "--" {
            return (words, cs[pos..].iter().collect());
        }
        if blank_ok || !word.is_empty() {
            words.push(word);
        }
    }
}

/// Splits on whitespace outside quotes, keeping quotes and escapes (BuildKit's `parseWords`).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let cs: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos < cs.len() {
        let ch = cs[pos];
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                if pos + 1 == cs.len() {
                    pos += 1;
                    continue;
                }
                word.push(ch);
                pos += 1;
                word.push(cs[pos]);
            } else {
                word.push(ch);
            }
            pos += 1;
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            in_word = false;
            pos += 1;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            if pos + 1 == cs.len() {
                pos += 1;
                continue;
            }
            word.push(ch);
            pos += 1;
            word.push(cs[pos]);
            pos += 1;
            continue;
        }
        word.push(ch);
        pos += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

fn parse_name_val(cmd: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let up = cmd.to_ascii_uppercase();
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(format!("{up} requires at least one argument"));
    };
    if !first.contains('=') {
        // legacy `ENV key value...` form: the rest of the line is the value
        let t = rest.trim();
        let p = t.find(char::is_whitespace);
        let Some(p) = p else {
            return Err(format!("{up} must have two arguments"));
        };
        return Ok(vec![(t[..p].to_string(), t[p..].trim_start().to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value"));
        };
        if k.is_empty() {
            return Err(format!("{up} names can not be blank"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn parse_arg(rest: &str, escape: char) -> Result<Vec<(String, Option<String>)>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    Ok(words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str) -> Dockerfile {
        parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"))
    }

    #[test]
    fn continuation_comments_and_lines() {
        // BuildKit: comments and empty lines inside a continuation are dropped; the
        // node starts at the first line.
        let d = p("FROM scratch\n\nRUN echo a \\\n# comment\n\n  b\nCMD x\n");
        assert_eq!(d.nodes.len(), 3);
        assert_eq!(d.nodes[1].args, Args::Text("echo a   b".into()));
        assert_eq!((d.nodes[1].start_line, d.nodes[1].end_line), (3, 6));
        assert_eq!(d.nodes[2].start_line, 7);
    }

    #[test]
    fn comments_above_and_empty_continuations() {
        // BuildKit's PrevComment: the comments right above a node, a bare `#` clearing them,
        // directives not among them; an empty line does not clear them
        let d = p("# check=skip=all\n# one\n#\n# two\n\n#  three  \nFROM x AS y\nRUN a\n");
        assert_eq!(d.check.as_deref(), Some("skip=all"));
        assert_eq!(d.nodes[0].comments, ["two", "three"]);
        assert!(d.nodes[1].comments.is_empty());
        // an empty line inside a continuation: NoEmptyContinuation (a comment line is not one)
        let d = p("FROM x\nRUN a \\\n\n b\nRUN c \\\n# c\n d\n");
        assert!(d.nodes[1].empty_continuation);
        assert!(!d.nodes[2].empty_continuation);
    }

    #[test]
    fn an_escaped_escape_ends_the_line() {
        // BuildKit's lineContinuationRegex (parser.go), checked with docker 20.10's BuildKit:
        // `RUN echo a\\` is one instruction printing `a\`; so is a continuation line ` \\`
        let d = p("FROM x\nRUN echo a\\\\\nRUN echo x \\\n \\\\\nRUN echo end\n");
        assert_eq!(d.nodes.len(), 4);
        assert_eq!(d.nodes[1].args, Args::Text("echo a\\\\".into()));
        assert_eq!(d.nodes[2].args, Args::Text("echo x  \\\\".into()));
        assert_eq!(d.nodes[3].args, Args::Text("echo end".into()));
        // an escape alone on a line continues; one after a blank does too
        let d = p("RUN a \\\n\\\n b\n");
        assert_eq!(d.nodes[0].args, Args::Text("a  b".into()));
        // the same with the backtick escape
        let d = p("# escape=`\nRUN echo a``\nRUN echo b `\n c\n");
        assert_eq!(d.nodes[0].args, Args::Text("echo a``".into()));
        assert_eq!(d.nodes[1].args, Args::Text("echo b  c".into()));
    }

    #[test]
    fn directives() {
        let d = p("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n b\n");
        assert_eq!(d.escape, '`');
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.nodes[1].args, Args::Text("a  b".into()));
        // a directive after a comment is just a comment
        let d = p("# hello\n# escape=`\nFROM x\nRUN a \\\n b\n");
        assert_eq!(d.escape, '\\');
        assert!(parse("# escape=x\nFROM a").is_err());
        assert!(parse("# escape=`\n# escape=`\nFROM a").is_err());
    }

    #[test]
    fn json_and_shell_forms() {
        let d = p("CMD [\"a\", \"b\"]\nCMD [\"a\", b]\nRUN [ \"x\" ]\nENTRYPOINT echo hi\n");
        assert_eq!(d.nodes[0].args, Args::List(vec!["a".into(), "b".into()]));
        assert!(d.nodes[0].json);
        // invalid JSON falls back to the shell form
        assert_eq!(d.nodes[1].args, Args::Text("[\"a\", b]".into()));
        assert!(!d.nodes[1].json);
        assert!(d.nodes[2].json);
        assert!(parse("CMD [\"a\", 1]").is_err());
    }

    #[test]
    fn env_label_forms() {
        let d = p("ENV A=1 B=\"x y\" C=a\\ b\nENV legacy value with spaces\nLABEL \"k k\"=v\n");
        assert_eq!(
            d.nodes[0].args,
            Args::Pairs(vec![("A".into(), "1".into()), ("B".into(), "\"x y\"".into()), ("C".into(), "a\\ b".into())])
        );
        assert_eq!(d.nodes[1].args, Args::Pairs(vec![("legacy".into(), "value with spaces".into())]));
        assert_eq!(d.nodes[2].args, Args::Pairs(vec![("\"k k\"".into(), "v".into())]));
        assert!(parse("ENV A=1 B").is_err());
        assert!(parse("ENV A").is_err());
    }

    #[test]
    fn flags() {
        let d = p("COPY --from=build --chown=\"1:2\" a b\nRUN --network=none -- echo\n");
        assert_eq!(d.nodes[0].flags, ["--from=build", "--chown=1:2"]);
        assert_eq!(d.nodes[0].args, Args::List(vec!["a".into(), "b".into()]));
        assert_eq!(d.nodes[1].flags, ["--network=none"]);
    }

    #[test]
    fn heredocs() {
        let src = "FROM x\nRUN <<EOF\necho hi\nEOF\nCOPY <<-\"A\" /a <<B /b\n\tone $X\n\tA\ntwo\nB\nRUN cat\n";
        let d = p(src);
        let run = &d.nodes[1];
        assert_eq!(run.heredocs.len(), 1);
        assert_eq!(run.heredocs[0].content, "echo hi\n");
        assert!(run.heredocs[0].expand);
        let copy = &d.nodes[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[0].name, "A");
        assert_eq!(copy.heredocs[0].content, "one $X\n");
        assert!(!copy.heredocs[0].expand);
        assert!(copy.heredocs[0].chomp);
        assert_eq!(copy.heredocs[1].content, "two\n");
        assert_eq!(d.nodes[3].start_line, 10);
        assert_eq!(parse("RUN <<EOF\nx\n").unwrap_err().msg, "unterminated heredoc");
    }

    #[test]
    fn onbuild_and_healthcheck() {
        let d = p("ONBUILD RUN echo hi\nHEALTHCHECK --interval=5s CMD [\"true\"]\nHEALTHCHECK NONE\n");
        match &d.nodes[0].args {
            Args::Sub(n) => assert_eq!(n.cmd, "run"),
            a => panic!("{a:?}"),
        }
        assert_eq!(d.nodes[1].flags, ["--interval=5s"]);
        assert_eq!(d.nodes[1].args, Args::List(vec!["CMD".into(), "true".into()]));
        assert_eq!(d.nodes[2].args, Args::List(vec!["NONE".into()]));
    }

    #[test]
    fn heredocs_with_blanks_after_the_operator() {
        // moby/buildkit 0b77373ab (parser_heredoc_test.go): `<<  EOF` is a heredoc, also with a
        // redirection after it; `<< -EOF` is named `-EOF`. `<<- EOF` on a line is not one: the
        // lexer keeps only blanks right after `<<` in the word, so `<<-` and `EOF` part.
        let d = p("FROM x\nRUN <<  EOF\necho a\nEOF\nRUN cat <<  EOF  > foo\nb\nEOF\nRUN cat << -EOF\nc\n-EOF\n");
        assert_eq!(d.nodes.len(), 4);
        assert_eq!(d.nodes[1].heredocs[0].name, "EOF");
        assert_eq!(d.nodes[1].heredocs[0].content, "echo a\n");
        assert_eq!(d.nodes[2].heredocs[0].content, "b\n");
        assert_eq!(d.nodes[3].heredocs[0].name, "-EOF");
        assert!(!d.nodes[3].heredocs[0].chomp);
        assert_eq!(parse_heredoc("<<- EOF").map(|h| (h.name, h.chomp)), Some(("EOF".into(), true)));
        assert!(p("RUN cat <<- EOF\n").nodes[0].heredocs.is_empty());
    }

    #[test]
    fn arg_names() {
        let d = p("ARG A B=2 C=\n");
        assert_eq!(
            d.nodes[0].args,
            Args::Names(vec![("A".into(), None), ("B".into(), Some("2".into())), ("C".into(), Some("".into()))])
        );
    }

    #[test]
    fn parse_words_table() {
        assert_eq!(parse_words("a  'b c' \"d\\\"e\"", '\\'), ["a", "'b c'", "\"d\\\"e\""]);
        assert_eq!(parse_words("x=\"\"", '\\'), ["x=\"\""]);
    }
}
