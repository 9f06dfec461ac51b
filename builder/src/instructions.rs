//! Typed instructions and stages from parser nodes, as BuildKit's `instructions` package:
//! flag checking, argument counts, stage splitting. No variable expansion happens here
//! (that needs the build state) and nothing touches the filesystem.

use crate::dockerfile::parser::{parse_heredoc, Args, Dockerfile, Heredoc, Node};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {msg}")]
pub struct InstructionError {
    pub line: usize,
    pub msg: String,
}

/// RUN/CMD/ENTRYPOINT arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdForm {
    Exec(Vec<String>),
    Shell(String),
}

/// What RUN runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCmd {
    /// JSON form: the argv as written.
    Exec(Vec<String>),
    /// Shell form; the bodies of its heredocs follow the line, each ended by its delimiter, as
    /// the shell reads here-documents.
    Shell(String),
    /// `RUN <<EOF` alone: the heredoc is the script (run directly when it starts with `#!`,
    /// else through the shell).
    Heredoc(Heredoc),
}

/// One COPY/ADD source as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// A path or wildcard pattern (words not expanded yet).
    Path(String),
    /// `<<EOF`: a file with the heredoc's body; `word` is the source as written.
    Heredoc { word: String, doc: Heredoc },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    pub sources: Vec<CopySource>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// `--exclude` patterns (docker's .dockerignore syntax).
    pub exclude: Vec<String>,
    /// COPY `--parents`: each source keeps its path (below a `/./` pivot, if any).
    pub parents: bool,
    /// ADD `--checksum` (not expanded yet).
    pub checksum: Option<String>,
    /// ADD `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// ADD `--unpack`, when given (by default local archives are unpacked, remote files not).
    pub unpack: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    None,
    Check {
        test: Vec<String>,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    From {
        image: String,
        alias: Option<String>,
        platform: Option<String>,
    },
    Run {
        cmd: RunCmd,
        network: Option<String>,
        /// `--security` as written (`sandbox` or `insecure`).
        security: Option<String>,
        /// `--mount` values as written (expanded and typed by the planner: `runmount`).
        mounts: Vec<String>,
        /// `--device` values (CDI devices, Dockerfile labs), parsed; never expanded, as in BuildKit.
        devices: Vec<crate::cdi::Request>,
    },
    Cmd(CmdForm),
    Entrypoint(CmdForm),
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Maintainer(String),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// The trigger text as written after `ONBUILD`.
    Onbuild(String),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
}

impl Instruction {
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From { .. } => "FROM",
            Instruction::Run { .. } => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub inst: Instruction,
    pub line: usize,
    /// The instruction text as written (continuations joined).
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub base: String,
    pub name: Option<String>,
    pub platform: Option<String>,
    pub line: usize,
    /// The FROM line as written (the build log shows it, as docker's does).
    pub original: String,
    pub commands: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stages {
    /// ARGs before the first FROM.
    pub meta_args: Vec<Command>,
    pub stages: Vec<Stage>,
}

/// How a flag takes its value, as BuildKit's `BFlags` (instructions/bflag.go): a bool
/// (`--link`, `--link=true|false`), a string given once, or strings that may repeat
/// (`--mount`, `--exclude`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    Str,
    Strs,
}

use FlagKind::{Bool, Str, Strs};

/// An instruction's flags, checked as BuildKit's `BFlags.Parse` checks them: an unknown flag,
/// a flag given twice (but for the repeatable ones), a string flag without `=value` and a bool
/// flag with a value other than true/false are errors, with BuildKit's wording.
struct Flags {
    /// Each flag given, with its value (`true`/`false` for a bool flag).
    values: Vec<(&'static str, String)>,
}

impl Flags {
    fn new(node: &Node, allowed: &[(&'static str, FlagKind)]) -> Result<Flags, String> {
        let mut values: Vec<(&'static str, String)> = Vec::new();
        for a in &node.flags {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (a.as_str(), None),
            };
            let arg = name.strip_prefix("--").unwrap_or(name);
            let Some(&(key, kind)) = allowed.iter().find(|(k, _)| *k == arg) else {
                let msg = format!("unknown flag: {name}");
                return Err(match suggest_flag(arg, allowed) {
                    Some(s) => format!("{msg} (did you mean {s}?)"),
                    None => msg,
                });
            };
            if kind != Strs && values.iter().any(|(k, _)| *k == key) {
                return Err(format!("duplicate flag specified: {name}"));
            }
            let v = match (kind, value) {
                (Bool, Some("")) | (Str | Strs, None) => return Err(format!("missing a value on flag: {name}")),
                (Bool, None) => "true".to_string(),
                (Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => return Err(format!("expecting boolean value for flag {name}, not: {v}")),
                },
                (Str | Strs, Some(v)) => v.to_string(),
            };
            values.push((key, v));
        }
        Ok(Flags { values })
    }
    fn string(&self, name: &str) -> Option<String> {
        self.values.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.values.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.clone()).collect()
    }
    fn boolean(&self, name: &str) -> bool {
        self.opt_boolean(name).unwrap_or(false)
    }
    /// A bool flag, None when it is not given.
    fn opt_boolean(&self, name: &str) -> Option<bool> {
        self.values.iter().find(|(k, _)| *k == name).map(|(_, v)| v == "true")
    }
}

/// The flag an unknown one is most likely a typo of, as BuildKit's `suggest.Search` picks it
/// (case-sensitive): the nearest by Levenshtein distance, if below 3.
fn suggest_flag(arg: &str, allowed: &[(&'static str, FlagKind)]) -> Option<&'static str> {
    let a: Vec<char> = arg.chars().collect();
    let mut best: Option<(usize, &'static str)> = None;
    for (k, _) in allowed {
        let d = levenshtein(&a, &k.chars().collect::<Vec<_>>());
        if d < best.map_or(3, |(b, _)| b) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Whether `b` is near enough to `a` to be suggested for it, as BuildKit's `suggest.Search`
/// decides (case-sensitive): a Levenshtein distance below 3.
pub(crate) fn near(a: &str, b: &str) -> bool {
    levenshtein(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>()) < 3
}

/// Insertions, deletions and substitutions (agext/levenshtein's default, which BuildKit uses).
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The instructions whose flags BuildKit never reads (instructions/parse.go: parseArg,
/// parseStopSignal and parseHealthcheck's NONE branch do not call `flags.Parse`): a build with
/// `STOPSIGNAL --foo 9` goes through there, so it goes through here too, but not silently: the
/// caller warns with this text. None for every other instruction (their flags are checked by
/// [`parse_node`]).
pub fn unread_flags(node: &Node) -> Option<String> {
    if let Args::Sub(trigger) = &node.args {
        return unread_flags(trigger).map(|w| format!("ONBUILD {w}"));
    }
    if node.flags.is_empty() {
        return None;
    }
    let what = match node.cmd.as_str() {
        "arg" | "stopsignal" => node.cmd.to_ascii_uppercase(),
        "healthcheck" if list(node).first().is_some_and(|t| t.eq_ignore_ascii_case("none")) => {
            "HEALTHCHECK NONE".into()
        }
        _ => return None,
    };
    Some(format!("{what}: flags ignored, as BuildKit ignores them: {}", node.flags.join(" ")))
}

fn cmd_form(node: &Node, up: &str) -> Result<CmdForm, String> {
    match &node.args {
        Args::List(v) if node.json => Ok(CmdForm::Exec(v.clone())),
        Args::Text(s) => Ok(CmdForm::Shell(s.clone())),
        Args::Empty if up != "RUN" => Ok(CmdForm::Exec(Vec::new())),
        _ => Err(format!("{up} requires at least one argument")),
    }
}

fn list(node: &Node) -> Vec<String> {
    match &node.args {
        Args::List(v) => v.clone(),
        Args::Text(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn text(node: &Node, up: &str) -> Result<String, String> {
    match &node.args {
        Args::Text(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(format!("{up} requires exactly one argument")),
    }
}

/// RUN's command with its heredocs, as BuildKit's dispatcher reads them: a shell line that is
/// just `<<EOF` with one heredoc runs that heredoc; otherwise every body follows the line.
fn run_cmd(node: &Node, form: CmdForm) -> RunCmd {
    match form {
        CmdForm::Exec(v) => RunCmd::Exec(v),
        CmdForm::Shell(s) if node.heredocs.is_empty() => RunCmd::Shell(s),
        CmdForm::Shell(s) => match (parse_heredoc(s.trim()), node.heredocs.as_slice()) {
            (Some(h), [doc]) if h.name == doc.name => RunCmd::Heredoc(doc.clone()),
            _ => {
                let mut full = s;
                for d in &node.heredocs {
                    full.push('\n');
                    full.push_str(&d.content);
                    full.push_str(&d.name);
                }
                RunCmd::Shell(full)
            }
        },
    }
}

/// A COPY/ADD source word: a heredoc when it is `<<NAME` and the instruction has that heredoc.
fn copy_source(node: &Node, word: String) -> CopySource {
    let doc = parse_heredoc(&word).and_then(|h| node.heredocs.iter().find(|d| d.name == h.name));
    match doc {
        Some(doc) => CopySource::Heredoc { doc: doc.clone(), word },
        None => CopySource::Path(word),
    }
}

/// Turns one parser node into a typed instruction.
pub fn parse_node(node: &Node) -> Result<Instruction, String> {
    let up = node.cmd.to_ascii_uppercase();
    let none: &[(&str, FlagKind)] = &[];
    Ok(match node.cmd.as_str() {
        "from" => {
            let f = Flags::new(node, &[("platform", Str)])?;
            let a = list(node);
            let (image, alias) = match a.as_slice() {
                [i] => (i.clone(), None),
                [i, as_, n] if as_.eq_ignore_ascii_case("as") => {
                    let n = n.to_ascii_lowercase();
                    let ok = n.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                    if !ok {
                        return Err(format!(
                            "invalid name for build stage: \"{n}\", name can't start with a number or contain symbols"
                        ));
                    }
                    (i.clone(), Some(n))
                }
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            Instruction::From { image, alias, platform: f.string("platform") }
        }
        "run" => {
            let f = Flags::new(node, &[("network", Str), ("mount", Strs), ("security", Str), ("device", Strs)])?;
            let mounts = f.strings("mount");
            for m in &mounts {
                // `from=` is read before expansion (the stage graph needs it), so check it now
                crate::runmount::raw_from(m)?;
            }
            let security = f.string("security");
            if let Some(s) = &security {
                if s != "sandbox" && s != "insecure" {
                    return Err(format!("security mode \"{s}\" is not supported (sandbox or insecure)"));
                }
            }
            // BuildKit parses `--device` in every frontend; only the labs one runs it (planner)
            let devices = f.strings("device").iter().map(|d| crate::cdi::parse_request(d)).collect::<Result<_, _>>()?;
            Instruction::Run {
                cmd: run_cmd(node, cmd_form(node, &up)?),
                network: f.string("network"),
                security,
                mounts,
                devices,
            }
        }
        "cmd" => {
            Flags::new(node, none)?;
            Instruction::Cmd(cmd_form(node, &up)?)
        }
        "entrypoint" => {
            Flags::new(node, none)?;
            Instruction::Entrypoint(cmd_form(node, &up)?)
        }
        "env" | "label" => {
            Flags::new(node, none)?;
            let Args::Pairs(p) = &node.args else {
                return Err(format!("{up} requires at least one argument"));
            };
            if node.cmd == "env" {
                Instruction::Env(p.clone())
            } else {
                Instruction::Label(p.clone())
            }
        }
        // flags on ARG are not read (BuildKit ignores them): see `unread_flags`
        "arg" => {
            let Args::Names(n) = &node.args else {
                return Err("ARG requires at least one argument".into());
            };
            Instruction::Arg(n.clone())
        }
        "maintainer" => {
            let m = text(node, &up)?;
            Flags::new(node, none)?;
            Instruction::Maintainer(m)
        }
        "expose" => {
            let a = list(node);
            if a.is_empty() {
                return Err("EXPOSE requires at least one argument".into());
            }
            Flags::new(node, none)?;
            Instruction::Expose(a)
        }
        "volume" => {
            let a = list(node);
            if a.is_empty() || a.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Flags::new(node, none)?;
            Instruction::Volume(a)
        }
        "user" => {
            let u = text(node, &up)?;
            Flags::new(node, none)?;
            Instruction::User(u)
        }
        "workdir" => {
            let w = text(node, &up)?;
            Flags::new(node, none)?;
            Instruction::Workdir(w)
        }
        "copy" | "add" => {
            // instructions/parse.go: parseCopy, parseAdd
            let allowed: &[(&str, FlagKind)] = if node.cmd == "copy" {
                &[("chown", Str), ("from", Str), ("chmod", Str), ("link", Bool), ("exclude", Strs), ("parents", Bool)]
            } else {
                &[
                    ("chown", Str),
                    ("chmod", Str),
                    ("link", Bool),
                    ("keep-git-dir", Bool),
                    ("checksum", Str),
                    ("unpack", Bool),
                    ("exclude", Strs),
                ]
            };
            let f = Flags::new(node, allowed)?;
            let mut a = list(node);
            if a.len() < 2 {
                return Err(format!("{up} requires at least two arguments, but got {}", a.len()));
            }
            let dest = a.pop().unwrap_or_default();
            // BuildKit's toCommand: `--from` names a stage, an image or a context as written
            // (the stage graph is made from it before anything is expanded)
            let from = if node.cmd == "copy" { f.string("from") } else { None };
            if let Some(from) = &from {
                let lex = crate::dockerfile::shell::Lexer::new('\\');
                if lex.process_word(from, &crate::dockerfile::shell::NoEnv).ok().as_ref() != Some(from) {
                    return Err("variable expansion is not supported for --from, define a new stage with FROM \
                                using ARG from global scope as a workaround"
                        .into());
                }
            }
            let args = CopyArgs {
                sources: a.into_iter().map(|w| copy_source(node, w)).collect(),
                dest,
                from,
                chown: f.string("chown"),
                chmod: f.string("chmod"),
                link: f.boolean("link"),
                exclude: f.strings("exclude"),
                parents: f.boolean("parents"),
                checksum: f.string("checksum"),
                keep_git_dir: f.opt_boolean("keep-git-dir"),
                unpack: f.opt_boolean("unpack"),
            };
            if node.cmd == "copy" {
                Instruction::Copy(args)
            } else {
                Instruction::Add(args)
            }
        }
        "onbuild" => {
            let Args::Sub(sub) = &node.args else {
                return Err("ONBUILD requires at least one argument".into());
            };
            Flags::new(node, none)?;
            match sub.cmd.as_str() {
                "onbuild" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
                "from" | "maintainer" => {
                    return Err(format!("{} isn't allowed as an ONBUILD trigger", sub.cmd.to_ascii_uppercase()))
                }
                _ => {}
            }
            parse_node(sub)?;
            let trig = node.original[node.cmd.len()..].trim_start();
            let trig = trig
                .get(..7)
                .filter(|k| k.eq_ignore_ascii_case("onbuild"))
                .map(|_| trig[7..].trim_start())
                .unwrap_or(trig);
            // BuildKit's parseOnBuild: the trigger's heredoc bodies, each ended by its
            // delimiter, follow its line
            let mut trig = trig.to_string();
            for d in &node.heredocs {
                trig.push('\n');
                trig.push_str(&d.content);
                trig.push_str(&d.name);
            }
            Instruction::Onbuild(trig)
        }
        "shell" => {
            Flags::new(node, none)?;
            match &node.args {
                Args::List(v) if node.json && !v.is_empty() => Instruction::Shell(v.clone()),
                _ => return Err("SHELL requires the arguments to be in JSON form".into()),
            }
        }
        // flags are not read (BuildKit ignores them): see `unread_flags`
        "stopsignal" => Instruction::StopSignal(text(node, &up)?),
        "healthcheck" => {
            let a = list(node);
            let typ = a.first().map(|s| s.to_ascii_uppercase());
            let hc_flags =
                [("interval", Str), ("timeout", Str), ("start-period", Str), ("start-interval", Str), ("retries", Str)];
            // BuildKit reads the flags after NONE is ruled out (instructions/parse.go parseHealthcheck)
            let f = match typ.as_deref() {
                Some("NONE") | None => Flags { values: Vec::new() },
                _ => Flags::new(node, &hc_flags)?,
            };
            match typ.as_deref() {
                Some("NONE") => {
                    // flags are not read here (BuildKit ignores them): see `unread_flags`
                    if a.len() > 1 {
                        return Err("HEALTHCHECK NONE takes no arguments".into());
                    }
                    Instruction::Healthcheck(Health::None)
                }
                Some("CMD") if a.len() > 1 => {
                    let test = if node.json {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(a[1..].iter().cloned());
                        t
                    } else {
                        vec!["CMD-SHELL".to_string(), a[1].clone()]
                    };
                    Instruction::Healthcheck(Health::Check {
                        test,
                        interval: f.string("interval"),
                        timeout: f.string("timeout"),
                        start_period: f.string("start-period"),
                        start_interval: f.string("start-interval"),
                        retries: f.string("retries"),
                    })
                }
                Some("CMD") => return Err("Missing command after HEALTHCHECK CMD".into()),
                Some(other) => return Err(format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)")),
                None => return Err("HEALTHCHECK requires an argument".into()),
            }
        }
        _ => {
            return Err(match did_you_mean(&up) {
                Some(name) => format!("unknown instruction: {up} (did you mean {name}?)"),
                None => format!("unknown instruction: {up}"),
            })
        }
    })
}

/// Every instruction keyword, for suggestions.
const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The keyword an unknown one is most likely a typo of, as BuildKit suggests one: the nearest
/// by edit distance (a swap of two neighbours counts one), if at most a third of the word's length
/// (`RUUN` is RUN; `FOO` is not FROM).
fn did_you_mean(word: &str) -> Option<&'static str> {
    let w: Vec<char> = word.chars().collect();
    KEYWORDS
        .iter()
        .map(|k| (edit_distance(&w, &k.chars().collect::<Vec<_>>()), *k))
        .filter(|(d, _)| *d * 3 <= w.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Splits a parsed Dockerfile into global ARGs and stages.
pub fn stages(df: &Dockerfile) -> Result<Stages, InstructionError> {
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &df.nodes {
        let e = |msg: String| InstructionError { line: node.start_line, msg };
        let inst = parse_node(node).map_err(e)?;
        let cmd = Command { inst, line: node.start_line, original: node.original.clone() };
        match (&cmd.inst, stages.last_mut()) {
            // two stages of one name are built, as BuildKit builds them (with the build check
            // DuplicateStageName): a name means the last stage of it (before a FROM: the last
            // before it)
            (Instruction::From { image, alias, platform }, _) => {
                stages.push(Stage {
                    base: image.clone(),
                    name: alias.clone(),
                    platform: platform.clone(),
                    line: node.start_line,
                    original: node.original.clone(),
                    commands: Vec::new(),
                });
            }
            (Instruction::Arg(_), None) => meta_args.push(cmd),
            (_, None) => {
                return Err(e(format!("{} before FROM: no build stage in current context", cmd.inst.keyword())))
            }
            (_, Some(stage)) => stage.commands.push(cmd),
        }
    }
    if stages.is_empty() {
        return Err(InstructionError {
            line: df.nodes.last().map(|n| n.start_line).unwrap_or(1),
            msg: "the Dockerfile has no FROM instruction".into(),
        });
    }
    Ok(Stages { meta_args, stages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    fn one(src: &str) -> Result<Instruction, String> {
        let df = parse(src).map_err(|e| e.msg)?;
        parse_node(&df.nodes[0])
    }

    #[test]
    fn typed_table() {
        // Each row: source, expected instruction (BuildKit instructions/parse.go behaviour).
        let rows: Vec<(&str, Instruction)> = vec![
            (
                "FROM busybox AS Build",
                Instruction::From { image: "busybox".into(), alias: Some("build".into()), platform: None },
            ),
            ("CMD [\"a\"]", Instruction::Cmd(CmdForm::Exec(vec!["a".into()]))),
            ("CMD a b", Instruction::Cmd(CmdForm::Shell("a b".into()))),
            ("SHELL [\"/bin/bash\", \"-c\"]", Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])),
            ("STOPSIGNAL SIGKILL", Instruction::StopSignal("SIGKILL".into())),
            ("VOLUME /a /b", Instruction::Volume(vec!["/a".into(), "/b".into()])),
            ("VOLUME [\"/a\"]", Instruction::Volume(vec!["/a".into()])),
            ("EXPOSE 80 443/udp", Instruction::Expose(vec!["80".into(), "443/udp".into()])),
            ("ONBUILD RUN echo hi", Instruction::Onbuild("RUN echo hi".into())),
            ("HEALTHCHECK NONE", Instruction::Healthcheck(Health::None)),
            (
                "HEALTHCHECK --retries=3 CMD curl x",
                Instruction::Healthcheck(Health::Check {
                    test: vec!["CMD-SHELL".into(), "curl x".into()],
                    interval: None,
                    timeout: None,
                    start_period: None,
                    start_interval: None,
                    retries: Some("3".into()),
                }),
            ),
            (
                "COPY --chown=1:2 --chmod=644 a b /d/",
                Instruction::Copy(CopyArgs {
                    sources: vec![CopySource::Path("a".into()), CopySource::Path("b".into())],
                    dest: "/d/".into(),
                    from: None,
                    chown: Some("1:2".into()),
                    chmod: Some("644".into()),
                    link: false,
                    exclude: vec![],
                    parents: false,
                    checksum: None,
                    keep_git_dir: None,
                    unpack: None,
                }),
            ),
            (
                "RUN a b",
                Instruction::Run {
                    cmd: RunCmd::Shell("a b".into()),
                    network: None,
                    security: None,
                    mounts: vec![],
                    devices: vec![],
                },
            ),
            (
                "RUN --network=none [\"a\", \"b\"]",
                Instruction::Run {
                    cmd: RunCmd::Exec(vec!["a".into(), "b".into()]),
                    network: Some("none".into()),
                    security: None,
                    mounts: vec![],
                    devices: vec![],
                },
            ),
            (
                "RUN --device=vendor1.com/device=foo --device=name=gpu,required [\"a\"]",
                Instruction::Run {
                    cmd: RunCmd::Exec(vec!["a".into()]),
                    network: None,
                    security: None,
                    mounts: vec![],
                    devices: vec![
                        crate::cdi::Request { name: "vendor1.com/device=foo".into(), required: false },
                        crate::cdi::Request { name: "gpu".into(), required: true },
                    ],
                },
            ),
        ];
        for (src, want) in rows {
            assert_eq!(one(src), Ok(want), "{src}");
        }
    }

    #[test]
    fn heredocs_typed_once() {
        let doc = |name: &str, content: &str| Heredoc {
            name: name.into(),
            content: content.into(),
            chomp: false,
            expand: true,
        };
        // `RUN <<EOF` alone runs the heredoc (BuildKit's dispatcher: the whole command is the body)
        assert_eq!(
            one("RUN <<EOF\necho hi\nEOF\n"),
            Ok(Instruction::Run {
                cmd: RunCmd::Heredoc(doc("EOF", "echo hi\n")),
                network: None,
                security: None,
                mounts: vec![],
                devices: vec![]
            })
        );
        // otherwise each body follows the line, ended by its delimiter, for the shell to read
        assert_eq!(
            one("RUN cat <<A <<B\none\nA\ntwo\nB\n"),
            Ok(Instruction::Run {
                cmd: RunCmd::Shell("cat <<A <<B\none\nA\ntwo\nB".into()),
                network: None,
                security: None,
                mounts: vec![],
                devices: vec![]
            })
        );
        // a source that names a heredoc of the instruction is that heredoc; others are paths
        let Ok(Instruction::Copy(a)) = one("COPY <<F a<<b /d/\nf\nF\n") else { panic!("COPY") };
        assert_eq!(
            a.sources,
            [CopySource::Heredoc { word: "<<F".into(), doc: doc("F", "f\n") }, CopySource::Path("a<<b".into())]
        );
    }

    const FROM_VAR: &str = "variable expansion is not supported for --from, define a new stage with FROM using ARG \
                            from global scope as a workaround";

    #[test]
    fn errors_table() {
        let rows = [
            ("FOO bar", "unknown instruction: FOO"),
            // BuildKit's suggestion for a typo
            ("RUUN true", "unknown instruction: RUUN (did you mean RUN?)"),
            ("FORM scratch", "unknown instruction: FORM (did you mean FROM?)"),
            ("workdri /x", "unknown instruction: WORKDRI (did you mean WORKDIR?)"),
            ("ENTRYPONT x", "unknown instruction: ENTRYPONT (did you mean ENTRYPOINT?)"),
            ("XY z", "unknown instruction: XY"),
            ("CDM x", "unknown instruction: CDM (did you mean CMD?)"),
            ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
            ("COPY a", "COPY requires at least two arguments, but got 1"),
            ("COPY --frm=x a b", "unknown flag: --frm (did you mean from?)"),
            ("FROM a b", "FROM requires either one or three arguments"),
            ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
            ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
            ("ADD --from=x a b", "unknown flag: --from"),
            ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            ("COPY --checksum=sha256:0 a /", "unknown flag: --checksum"),
            ("ADD --parents a /", "unknown flag: --parents"),
            ("ADD --unpack=maybe a /", "expecting boolean value for flag --unpack, not: maybe"),
            // instructions/bflag.go Parse: only true/false (any case) or no value for a bool
            ("COPY --link=1 a /", "expecting boolean value for flag --link, not: 1"),
            ("COPY --link= a /", "missing a value on flag: --link"),
            ("COPY --chmod a /", "missing a value on flag: --chmod"),
            // a flag given twice, but for the repeatable (strings) ones
            ("COPY --chmod=600 --chmod=644 a /", "duplicate flag specified: --chmod"),
            ("COPY --link --link=false a /", "duplicate flag specified: --link"),
            ("RUN --network=none --network=host true", "duplicate flag specified: --network"),
            // commands_rundevice.go ParseDevice, in every frontend
            ("RUN --device=a,b true", "invalid field 'b' must be a key=value pair"),
            ("RUN --device=a,required=maybe true", "invalid value for required: maybe"),
            ("RUN --device true", "missing a value on flag: --device"),
            ("FROM --platform=a --platform=b x", "duplicate flag specified: --platform"),
            ("HEALTHCHECK --retries=1 --retries=2 CMD x", "duplicate flag specified: --retries"),
            // every instruction whose parse calls flags.Parse with no flag declared
            ("WORKDIR --foo /x", "unknown flag: --foo"),
            ("USER --foo u", "unknown flag: --foo"),
            ("EXPOSE --foo 80", "unknown flag: --foo"),
            ("VOLUME --foo /v", "unknown flag: --foo"),
            ("MAINTAINER --foo me", "unknown flag: --foo"),
            ("SHELL --foo [\"sh\"]", "unknown flag: --foo"),
            ("ONBUILD --foo RUN x", "unknown flag: --foo"),
            ("ENV --foo A=1", "unknown flag: --foo"),
            ("LABEL --foo a=1", "unknown flag: --foo"),
            ("CMD --foo x", "unknown flag: --foo"),
            ("ENTRYPOINT --foo x", "unknown flag: --foo"),
            ("HEALTHCHECK --foo CMD x", "unknown flag: --foo"),
            ("FROM --foo x", "unknown flag: --foo"),
            ("RUN --mout=type=cache,target=/c x", "unknown flag: --mout (did you mean mount?)"),
            ("COPY --exclude a /", "missing a value on flag: --exclude"),
            // dockerfile_copy_test.go testDockerfileCopyFromArgs (convert.go toCommand): `--from`
            // is never expanded, so a `$` in it is refused rather than read as a name
            ("COPY --from=$FOO . .", FROM_VAR),
            ("COPY --from=${FOO:-build} . .", FROM_VAR),
            ("COPY --from=a\\$b . .", FROM_VAR),
            ("ONBUILD COPY --from=$FOO . .", FROM_VAR),
        ];
        for (src, want) in rows {
            assert_eq!(one(src), Err(want.to_string()), "{src}");
        }
    }

    #[test]
    fn repeatable_and_unread_flags() {
        // strings flags repeat (bflag.go: stringsType is exempt from the duplicate check)
        let Ok(Instruction::Copy(c)) = one("COPY --exclude=a --exclude=b --link=TRUE x /") else { panic!("COPY") };
        assert_eq!((c.exclude, c.link), (vec!["a".to_string(), "b".to_string()], true));
        let Ok(Instruction::Run { mounts, .. }) =
            one("RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b x")
        else {
            panic!("RUN")
        };
        assert_eq!(mounts.len(), 2);
        // ARG, STOPSIGNAL and HEALTHCHECK NONE: BuildKit never parses their flags, so they build
        // (flags unread: the caller warns); every other instruction checks them
        for (src, want) in [
            ("ARG --foo A=1", Some("ARG: flags ignored, as BuildKit ignores them: --foo")),
            ("STOPSIGNAL --foo=1 --bar 9", Some("STOPSIGNAL: flags ignored, as BuildKit ignores them: --foo=1 --bar")),
            (
                "HEALTHCHECK --interval=5s NONE",
                Some("HEALTHCHECK NONE: flags ignored, as BuildKit ignores them: --interval=5s"),
            ),
            ("ONBUILD STOPSIGNAL --foo 9", Some("ONBUILD STOPSIGNAL: flags ignored, as BuildKit ignores them: --foo")),
            ("STOPSIGNAL 9", None),
            ("HEALTHCHECK --interval=5s CMD x", None),
        ] {
            let df = parse(src).unwrap();
            assert!(parse_node(&df.nodes[0]).is_ok(), "{src}");
            assert_eq!(unread_flags(&df.nodes[0]).as_deref(), want, "{src}");
        }
    }

    #[test]
    fn stage_split() {
        let df = parse("ARG V=1\nFROM a AS one\nRUN x\nFROM one\nCMD y\n").unwrap();
        let s = stages(&df).unwrap();
        assert_eq!(s.meta_args.len(), 1);
        assert_eq!(s.stages.len(), 2);
        assert_eq!(s.stages[0].name.as_deref(), Some("one"));
        assert_eq!(s.stages[1].commands[0].line, 5);
        let df = parse("\nRUN x\nFROM a\n").unwrap();
        let e = stages(&df).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("no build stage"), "{}", e.msg);
    }
}
