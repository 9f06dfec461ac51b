//! Finds the warnings of BuildKit's build checks in a parsed Dockerfile. Where BuildKit checks
//! while parsing (casing, stage names, descriptions, MAINTAINER, FROM's ARGs) every stage is
//! checked; where it checks while dispatching (variables, ENV/LABEL forms, CMD, WORKDIR, COPY
//! of ignored files...) only the stages the build dispatches (`Input::dispatched`: the target's
//! stages, or all for `build --check`). Pure: it reads the nodes and what the caller says of
//! base images and the context; it changes nothing.

use super::*;
use crate::dockerfile::parser::{parse_words, Args, Dockerfile, Node};
use crate::dockerfile::shell::{Env, Lexer};
use crate::dockerignore::Matcher;
use crate::instructions::{parse_node, CmdForm, CopyArgs, CopySource, Instruction};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// What a stage's base image brings, as far as the checks care.
#[derive(Debug, Clone, Default)]
pub struct BaseImage {
    /// The names of its environment variables.
    pub env: Vec<String>,
    /// Its config sets SHELL.
    pub shell: bool,
}

/// What the checks read besides the Dockerfile.
pub struct Input<'a> {
    pub df: &'a Dockerfile,
    pub config: &'a Config,
    pub build_args: &'a [(String, String)],
    /// The automatic platform ARGs (TARGETPLATFORM...) with their values.
    pub platform_args: Vec<(String, String)>,
    /// The stages whose instructions the build dispatches, by Dockerfile index.
    pub dispatched: &'a BTreeSet<usize>,
    /// The base image of a stage that starts from an image (or scratch); None where unknown.
    pub base: &'a dyn Fn(usize) -> Option<BaseImage>,
    /// The context's `.dockerignore`, when COPY/ADD read a local context.
    pub ignore: Option<&'a Matcher>,
    /// Stages whose base image's platform differs from the one asked for:
    /// (stage index, image, expected, actual).
    pub platform_mismatches: Vec<(usize, String, String, String)>,
}

/// Records which variables an expansion looked up, and which were not set (BuildKit's
/// `ProcessWordWithMatches`).
struct Recorder<'a> {
    vars: &'a dyn Fn(&str) -> Option<String>,
    matched: RefCell<BTreeSet<String>>,
    unmatched: RefCell<BTreeSet<String>>,
}

impl<'a> Recorder<'a> {
    fn new(vars: &'a dyn Fn(&str) -> Option<String>) -> Recorder<'a> {
        Recorder { vars, matched: Default::default(), unmatched: Default::default() }
    }
}

impl Env for Recorder<'_> {
    fn lookup(&self, name: &str) -> Option<String> {
        let v = (self.vars)(name);
        if v.is_some() {
            self.matched.borrow_mut().insert(name.to_string());
        } else {
            self.unmatched.borrow_mut().insert(name.to_string());
        }
        v
    }
}

/// Levenshtein distance (BuildKit's `suggest` uses agext/levenshtein with unit costs).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// BuildKit's `suggest.Search` (case-sensitive): the closest option under distance 3, none on
/// an exact match.
fn suggest<'a>(val: &str, options: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let mut best: Option<(usize, &String)> = None;
    for o in options {
        if o == val {
            return None;
        }
        let d = levenshtein(val, o);
        if d < best.map_or(3, |(b, _)| b) {
            best = Some((d, o));
        }
    }
    best.map(|(_, o)| o.clone())
}

/// The keyword as written (the parser lowercases `cmd`).
fn keyword(node: &Node) -> &str {
    node.original.split_whitespace().next().unwrap_or("")
}

/// ENV/LABEL written `KEY VALUE` (no `=` in the first word): BuildKit's `NoDelim`.
fn legacy_key_value(node: &Node, escape: char) -> bool {
    let rest = node.original.trim_start()[keyword(node).len()..].trim_start();
    parse_words(rest, escape).first().is_some_and(|w| !w.contains('='))
}

/// The secret-looking names of SecretsUsedInArgOrEnv: a token of the deny list as the whole
/// name or its first or last `_` part, unless an allow-list token is (case-insensitive).
fn looks_secret(key: &str) -> bool {
    const DENY: [&str; 10] =
        ["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let k = key.to_ascii_lowercase();
    let parts: Vec<&str> = k.split('_').collect();
    // (?:_|^)TOKEN(?:_|$): the token is one whole `_`-separated part
    let has = |list: &[&str]| parts.iter().any(|p| list.contains(p));
    has(&DENY) && !has(&ALLOW)
}

/// The state of one dispatched stage, as far as the checks follow it.
#[derive(Debug, Clone, Default)]
struct StageState {
    /// Names of the variables set (base image env, ENV, ARG with a value).
    env: BTreeSet<String>,
    shell: bool,
    workdir_set: bool,
}

struct Checker<'a> {
    input: &'a Input<'a>,
    lexer: Lexer,
    out: Vec<Warning>,
}

impl Checker<'_> {
    fn warn(&mut self, cfg: &Config, rule: &'static Rule, detail: String, lines: (usize, usize)) {
        if cfg.enabled(rule) {
            self.out.push(Warning { rule, detail, start: lines.0, end: lines.1 });
        }
    }

    /// Expands `word` with variables `vars`; the names it used, set and unset.
    fn expand(
        &self,
        word: &str,
        vars: &dyn Fn(&str) -> Option<String>,
    ) -> (String, BTreeSet<String>, BTreeSet<String>) {
        let r = Recorder::new(vars);
        let s = self.lexer.process_word(word, &r).unwrap_or_default();
        (s, r.matched.into_inner(), r.unmatched.into_inner())
    }
}

/// Runs every enabled check; the warnings in line order.
pub fn check(input: &Input) -> Report {
    let mut c = Checker { input, lexer: Lexer::new(input.df.escape), out: Vec::new() };
    let cfg = input.config;
    // (stage index, FROM node, its instructions)
    let mut stages: Vec<(&Node, Vec<(&Node, Instruction)>)> = Vec::new();
    let mut meta: Vec<(&Node, Instruction)> = Vec::new();
    for node in &input.df.nodes {
        if node.empty_continuation {
            c.warn(cfg, &NO_EMPTY_CONTINUATION, "Empty continuation line".into(), (node.end_line, node.end_line));
        }
    }
    for node in &input.df.nodes {
        let ncfg = cfg.with_comments(&node.comments);
        let lines = (node.start_line, node.end_line);
        let Ok(inst) = parse_node(node) else {
            // the build fails here; BuildKit stops checking at the same point
            break;
        };
        match &inst {
            Instruction::Maintainer(_) => c.warn(
                &ncfg,
                &MAINTAINER_DEPRECATED,
                "Maintainer instruction is deprecated in favor of using label".into(),
                lines,
            ),
            Instruction::From { alias, .. } => {
                if let Args::List(a) = &node.args {
                    if a.len() == 3 {
                        if a[2] != a[2].to_lowercase() {
                            c.warn(
                                &ncfg,
                                &STAGE_NAME_CASING,
                                format!("Stage name '{}' should be lowercase", a[2]),
                                lines,
                            );
                        }
                        let from = keyword(node);
                        let (lower, upper) = (from == from.to_lowercase(), from == from.to_uppercase());
                        let mismatch = (lower && a[1] != a[1].to_lowercase()) || (upper && a[1] != a[1].to_uppercase());
                        if (lower || upper) && mismatch {
                            let msg = format!("'{}' and '{from}' keywords' casing do not match", a[1]);
                            c.warn(&ncfg, &FROM_AS_CASING, msg, lines);
                        }
                    }
                }
                if let Some(name) = alias {
                    definition_description(&mut c, &ncfg, node, "FROM", std::slice::from_ref(name));
                }
            }
            Instruction::Arg(list) => {
                let keys: Vec<String> = list.iter().map(|(k, _)| k.clone()).collect();
                definition_description(&mut c, &ncfg, node, "ARG", &keys);
            }
            _ => {}
        }
        match (&inst, stages.last_mut()) {
            (Instruction::From { .. }, _) => stages.push((node, Vec::new())),
            (_, Some((_, cmds))) => cmds.push((node, inst)),
            (_, None) => meta.push((node, inst)),
        }
    }
    stage_names(&mut c, &stages);
    casing(&mut c, &stages);
    from_args(&mut c, &stages, &meta);
    for (i, _, expected, actual) in &input.platform_mismatches {
        let Some((from, _)) = stages.get(*i) else { continue };
        let Some(Instruction::From { image, .. }) = parse_node(from).ok() else { continue };
        let msg =
            format!("Base image {image} was pulled with platform {actual:?}, expected {expected:?} for current build");
        c.warn(cfg, &INVALID_BASE_IMAGE_PLATFORM, msg, (from.start_line, from.end_line));
    }
    dispatch(&mut c, &stages, &meta);
    let mut warnings = c.out;
    warnings.sort_by(|a, b| (a.start, &a.detail).cmp(&(b.start, &b.detail)));
    Report { warnings, error: cfg.error }
}

/// InvalidDefinitionDescription (experimental): a comment right above a named FROM or an ARG
/// should start with the name.
fn definition_description(c: &mut Checker, cfg: &Config, node: &Node, inst: &str, keys: &[String]) {
    let (Some(last), Some(first)) = (node.comments.last(), keys.first()) else { return };
    let word = last.split(' ').next().unwrap_or("");
    if keys.iter().any(|k| k == word) {
        return;
    }
    let example = if keys.len() > 1 { "<arg_key>" } else { first.as_str() };
    let msg = format!("Comment for {inst} should follow the format: `# {example} <description>`");
    c.warn(cfg, &INVALID_DEFINITION_DESCRIPTION, msg, (node.start_line, node.end_line));
}

type Stages<'a> = [(&'a Node, Vec<(&'a Node, Instruction)>)];

fn alias(from: &Node) -> Option<String> {
    match parse_node(from) {
        Ok(Instruction::From { alias, .. }) => alias,
        _ => None,
    }
}

/// DuplicateStageName and ReservedStageName (BuildKit's `validateStageNames`).
fn stage_names(c: &mut Checker, stages: &Stages) {
    let cfg = c.input.config;
    let mut seen = BTreeSet::new();
    for (from, _) in stages {
        let Some(name) = alias(from) else { continue };
        let lines = (from.start_line, from.end_line);
        if name == "context" || name == "scratch" {
            c.warn(
                cfg,
                &RESERVED_STAGE_NAME,
                format!("Stage name should not use the same name as reserved stage {name:?}"),
                lines,
            );
        }
        if !seen.insert(name.clone()) {
            c.warn(
                cfg,
                &DUPLICATE_STAGE_NAME,
                format!("Duplicate stage name {name:?}, stage names should be unique"),
                lines,
            );
        }
    }
}

/// ConsistentInstructionCasing (BuildKit's `validateCommandCasing`): each keyword of the stages
/// (not the ARGs before the first FROM) all lower or all upper case, as most of them are.
fn casing(c: &mut Checker, stages: &Stages) {
    let cfg = c.input.config;
    let words: Vec<(&str, (usize, usize))> = stages
        .iter()
        .flat_map(|(from, cmds)| std::iter::once(*from).chain(cmds.iter().map(|(n, _)| *n)))
        .map(|n| (keyword(n), (n.start_line, n.end_line)))
        .collect();
    let (mut lower, mut upper) = (0, 0);
    for (w, _) in &words {
        if *w == w.to_lowercase() {
            lower += 1;
        } else if *w == w.to_uppercase() {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for (w, lines) in words {
        let want = if majority_lower && w != w.to_lowercase() {
            "lowercase"
        } else if !majority_lower && w != w.to_uppercase() {
            "uppercase"
        } else {
            continue;
        };
        c.warn(
            cfg,
            &CONSISTENT_INSTRUCTION_CASING,
            format!("Command '{w}' should match the case of the command majority ({want})"),
            lines,
        );
    }
}

/// The global scope's variables: the platform ARGs, then the ARGs before the first FROM with
/// `--build-arg` values (or, with `defaults_only`, their defaults), as `buildMetaArgs`. Also
/// every name declared.
fn meta_scope(
    c: &Checker,
    meta: &[(&Node, Instruction)],
    defaults_only: bool,
) -> (Vec<(String, String)>, BTreeSet<String>) {
    let mut env: Vec<(String, String)> = c.input.platform_args.clone();
    let mut declared = BTreeSet::new();
    for (_, inst) in meta {
        let Instruction::Arg(list) = inst else { continue };
        for (k, d) in list {
            declared.insert(k.clone());
            let given = if defaults_only {
                None
            } else {
                c.input.build_args.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            };
            let v = match (given, d) {
                (Some(v), _) => Some(v),
                (None, Some(d)) => c.lexer.process_word(d, &env).ok(),
                (None, None) => None,
            };
            if let Some(v) = v {
                env.retain(|(n, _)| n != k);
                env.push((k.clone(), v));
            }
        }
    }
    (env, declared)
}

/// The checks of FROM's words against the global ARGs: InvalidDefaultArgInFrom (defaults
/// only), UndefinedArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed.
fn from_args(c: &mut Checker, stages: &Stages, meta: &[(&Node, Instruction)]) {
    let cfg = c.input.config;
    let (defaults, _) = meta_scope(c, meta, true);
    for (from, _) in stages {
        let Ok(Instruction::From { image, .. }) = parse_node(from) else { continue };
        let lookup = |k: &str| defaults.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (name, _, _) = c.expand(&image, &lookup);
        if crate::registry::reference::Reference::parse(&name).is_err() && name != "scratch" {
            let msg = format!("Default value for ARG {image} results in empty or invalid base image name");
            c.warn(cfg, &INVALID_DEFAULT_ARG_IN_FROM, msg, (from.start_line, from.end_line));
        }
    }
    let (env, declared) = meta_scope(c, meta, false);
    let keys: BTreeSet<String> = declared.into_iter().chain(env.iter().map(|(k, _)| k.clone())).collect();
    let lookup = |k: &str| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (from, _) in stages {
        let Ok(Instruction::From { image, alias, platform }) = parse_node(from) else { continue };
        let ncfg = cfg.with_comments(&from.comments);
        let lines = (from.start_line, from.end_line);
        let undefined = |c: &mut Checker, unmatched: &BTreeSet<String>| {
            for a in unmatched.iter().filter(|a| !keys.contains(*a)) {
                let msg = match suggest(a, &keys) {
                    Some(s) => format!("FROM argument '{a}' is not declared (did you mean {s}?)"),
                    None => format!("FROM argument '{a}' is not declared"),
                };
                c.warn(&ncfg, &UNDEFINED_ARG_IN_FROM, msg, lines);
            }
        };
        let (_, _, unmatched) = c.expand(&image, &lookup);
        undefined(c, &unmatched);
        let Some(p) = platform else { continue };
        let (result, matched, unmatched) = c.expand(&p, &lookup);
        undefined(c, &unmatched);
        if matched.len() == 1
            && unmatched.is_empty()
            && matched.contains("TARGETPLATFORM")
            && lookup("TARGETPLATFORM").as_deref() == Some(result.as_str())
        {
            let msg =
                format!("Setting platform to predefined {p} in FROM is redundant as this is the default behavior");
            c.warn(&ncfg, &REDUNDANT_TARGET_PLATFORM, msg, lines);
        }
        if matched.is_empty() && unmatched.is_empty() {
            if let Ok(pl) = crate::registry::Platform::parse(&result) {
                let name = alias.unwrap_or_default();
                if !name.contains(&pl.os) && !name.contains(&pl.architecture) {
                    let msg = format!("FROM --platform flag should not use constant value {result:?}");
                    c.warn(&ncfg, &FROM_PLATFORM_FLAG_CONST_DISALLOWED, msg, lines);
                }
            }
        }
    }
}

/// The stage a FROM names, if an earlier stage has that name (the last one of it).
fn base_stage(stages: &Stages, i: usize, image: &str) -> Option<usize> {
    let image = image.to_ascii_lowercase();
    (0..i).rev().find(|&j| alias(stages[j].0).as_deref() == Some(image.as_str()))
}

/// The checks BuildKit makes while dispatching the stages the build dispatches.
fn dispatch(c: &mut Checker, stages: &Stages, meta: &[(&Node, Instruction)]) {
    let (global, _) = meta_scope(c, meta, false);
    let mut done: BTreeMap<usize, StageState> = BTreeMap::new();
    for (i, (from, cmds)) in stages.iter().enumerate() {
        if !c.input.dispatched.contains(&i) {
            continue;
        }
        let Ok(Instruction::From { image, .. }) = parse_node(from) else { continue };
        let image = c.lexer.process_word(&image, &global).unwrap_or(image);
        let mut st = match base_stage(stages, i, &image) {
            Some(j) => match done.get(&j) {
                Some(s) => s.clone(),
                None => continue,
            },
            None => match (c.input.base)(i) {
                Some(b) => StageState { env: b.env.into_iter().collect(), shell: b.shell, workdir_set: false },
                None => continue,
            },
        };
        // BuildKit always has a PATH (a default one where the image sets none)
        st.env.insert("PATH".into());
        stage(c, cmds, &global, &mut st);
        done.insert(i, st);
    }
}

/// Copy sources that are local paths of the context (not URLs nor heredocs).
fn local_sources(a: &CopyArgs, add: bool) -> Vec<&str> {
    a.sources
        .iter()
        .filter_map(|s| match s {
            CopySource::Path(p) => Some(p.as_str()),
            CopySource::Heredoc { .. } => None,
        })
        .filter(|p| !add || !(p.starts_with("http://") || p.starts_with("https://") || p.starts_with("git@")))
        .collect()
}

fn stage(c: &mut Checker, cmds: &[(&Node, Instruction)], global: &[(String, String)], st: &mut StageState) {
    let mut declared: BTreeSet<String> = BTreeSet::new();
    // the last CMD, ENTRYPOINT, HEALTHCHECK of the stage
    let mut last: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for (node, inst) in cmds {
        let cfg = c.input.config.with_comments(&node.comments);
        let lines = (node.start_line, node.end_line);
        let name = keyword(node).to_string();
        // UndefinedVar: the words BuildKit expands, with the variables set before the
        // instruction; names an ARG of the stage declared (even without a value) excepted
        let env = st.env.clone();
        let at = Site { cfg: &cfg, lines, env: &env };
        let undefined = |c: &mut Checker, declared: &BTreeSet<String>, word: &str| at.undefined(c, declared, word);
        match inst {
            Instruction::Env(pairs) | Instruction::Label(pairs) => {
                let is_env = matches!(inst, Instruction::Env(_));
                for (k, v) in pairs {
                    undefined(c, &declared, k);
                    undefined(c, &declared, v);
                }
                if legacy_key_value(node, c.input.df.escape) {
                    let msg =
                        format!("\"{name} key=value\" should be used instead of legacy \"{name} key value\" format");
                    c.warn(&cfg, &LEGACY_KEY_VALUE_FORMAT, msg, lines);
                }
                if is_env {
                    for (k, _) in pairs {
                        let k = c.lexer.process_word(k, &NoVars).unwrap_or_else(|_| k.clone());
                        if looks_secret(&k) {
                            c.warn(
                                &cfg,
                                &SECRETS_USED_IN_ARG_OR_ENV,
                                format!("Do not use ARG or ENV instructions for sensitive data (ENV {k:?})"),
                                lines,
                            );
                        }
                        st.env.insert(k);
                    }
                }
            }
            Instruction::Arg(list) => {
                for (k, d) in list {
                    if looks_secret(k) {
                        c.warn(
                            &cfg,
                            &SECRETS_USED_IN_ARG_OR_ENV,
                            format!("Do not use ARG or ENV instructions for sensitive data (ARG {k:?})"),
                            lines,
                        );
                    }
                    let given = c.input.build_args.iter().any(|(n, _)| n == k);
                    let has_value = if given {
                        true
                    } else if let Some(d) = d {
                        undefined(c, &declared, d);
                        true
                    } else {
                        global.iter().any(|(n, _)| n == k)
                    };
                    if has_value {
                        st.env.insert(k.clone());
                    }
                    declared.insert(k.clone());
                }
            }
            Instruction::Cmd(f) | Instruction::Entrypoint(f) => {
                let kind = if matches!(inst, Instruction::Cmd(_)) { "CMD" } else { "ENTRYPOINT" };
                if let Some(prev) = last.insert(kind, lines) {
                    multiple(c, &cfg, &name, prev);
                }
                if matches!(f, CmdForm::Shell(_)) && !st.shell {
                    let msg = format!(
                        "JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"
                    );
                    c.warn(&cfg, &JSON_ARGS_RECOMMENDED, msg, lines);
                }
            }
            Instruction::Healthcheck(_) => {
                if let Some(prev) = last.insert("HEALTHCHECK", lines) {
                    multiple(c, &cfg, &name, prev);
                }
            }
            Instruction::Shell(_) => st.shell = true,
            Instruction::Workdir(p) => {
                let p = undefined(c, &declared, p);
                if !st.workdir_set && !p.starts_with('/') {
                    let msg = format!("Relative workdir {p:?} can have unexpected results if the base image changes");
                    c.warn(&cfg, &WORKDIR_RELATIVE_PATH, msg, lines);
                }
                st.workdir_set = true;
            }
            Instruction::User(u) | Instruction::StopSignal(u) => {
                undefined(c, &declared, u);
            }
            Instruction::Volume(v) => {
                for w in v {
                    undefined(c, &declared, w);
                }
            }
            Instruction::Run { mounts, .. } => {
                for m in mounts {
                    undefined(c, &declared, m);
                }
            }
            Instruction::Copy(a) | Instruction::Add(a) => {
                let add = matches!(inst, Instruction::Add(_));
                for w in a.chown.iter().chain(&a.chmod).chain(if add { a.checksum.as_ref() } else { None }) {
                    undefined(c, &declared, w);
                }
                let mut srcs = Vec::new();
                for s in local_sources(a, add) {
                    srcs.push(undefined(c, &declared, s));
                }
                undefined(c, &declared, &a.dest);
                if a.from.is_none() {
                    ignored_files(c, &cfg, &srcs, add, lines);
                }
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    expose(c, &cfg, p, lines);
                }
            }
            _ => {}
        }
    }
}

/// Where an instruction's words are expanded, for UndefinedVar.
struct Site<'a> {
    cfg: &'a Config,
    lines: (usize, usize),
    env: &'a BTreeSet<String>,
}

impl Site<'_> {
    /// Expands `word`; warns of each variable neither set nor declared by an ARG.
    fn undefined(&self, c: &mut Checker, declared: &BTreeSet<String>, word: &str) -> String {
        let vars = |k: &str| self.env.contains(k).then(String::new);
        let (s, _, unmatched) = c.expand(word, &vars);
        for v in unmatched {
            if declared.contains(&v) || v == "BUILDKIT_SBOM_SCAN_CONTEXT" || v == "BUILDKIT_SBOM_SCAN_STAGE" {
                continue;
            }
            let msg = match suggest(&v, self.env) {
                Some(s) => format!("Usage of undefined variable '${v}' (did you mean ${s}?)"),
                None => format!("Usage of undefined variable '${v}'"),
            };
            c.warn(self.cfg, &UNDEFINED_VAR, msg, self.lines);
        }
        s
    }
}

/// An environment with nothing set, for expanding a name alone.
struct NoVars;
impl Env for NoVars {
    fn lookup(&self, _: &str) -> Option<String> {
        None
    }
}

/// MultipleInstructionsDisallowed, at the earlier instruction (the one that goes unused).
fn multiple(c: &mut Checker, cfg: &Config, name: &str, prev: (usize, usize)) {
    let msg = format!(
        "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
    );
    c.warn(cfg, &MULTIPLE_INSTRUCTIONS_DISALLOWED, msg, prev);
}

/// CopyIgnoredFile (BuildKit's `validateCopySourcePath`): not checked when `.dockerignore`
/// has `!` patterns; the context root only when a pattern excludes everything.
fn ignored_files(c: &mut Checker, cfg: &Config, srcs: &[String], add: bool, lines: (usize, usize)) {
    let Some(m) = c.input.ignore.filter(|m| !m.is_empty() && !m.has_exclusions()) else { return };
    for s in srcs {
        let s = crate::glob::clean(s);
        if (s == "." || s == "/") && !m.excludes_all() {
            continue;
        }
        if m.excluded(&s) {
            let cmd = if add { "Add" } else { "Copy" };
            c.warn(
                cfg,
                &COPY_IGNORED_FILE,
                format!("Attempting to {cmd} file {s:?} that is excluded by .dockerignore"),
                lines,
            );
        }
    }
}

/// ExposeProtoCasing and ExposeInvalidFormat, as BuildKit's `parsePort` splits a port.
fn expose(c: &mut Checker, cfg: &Config, raw: &str, lines: (usize, usize)) {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.len() {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        n => (&raw[..raw.len() - parts[n - 1].len() - parts[n - 2].len() - 2], parts[n - 2], parts[n - 1]),
    };
    let proto = container.split_once('/').map_or("", |(_, p)| p);
    if proto != proto.to_lowercase() {
        c.warn(
            cfg,
            &EXPOSE_PROTO_CASING,
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
            lines,
        );
    }
    if !ip.is_empty() || !host.is_empty() {
        let msg = format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'");
        c.warn(cfg, &EXPOSE_INVALID_FORMAT, msg, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    /// A warning as (rule, line, message).
    type Found = (&'static str, usize, String);

    /// The warnings of `src` with every stage dispatched and image bases that set only PATH,
    /// as (rule, line, message).
    fn lint_with(src: &str, ignore: Option<&str>, build_args: &[(&str, &str)]) -> Vec<(&'static str, usize, String)> {
        let df = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        let args: Vec<(String, String)> = build_args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::for_build(df.check.as_deref(), &args).unwrap();
        let dispatched = (0..df.nodes.len()).collect();
        let matcher = ignore.map(|t| Matcher::parse(t).unwrap());
        let base = |_| Some(BaseImage { env: vec!["PATH".into()], shell: false });
        let input = Input {
            df: &df,
            config: &config,
            build_args: &args,
            platform_args: vec![
                ("TARGETPLATFORM".into(), "linux/amd64".into()),
                ("BUILDPLATFORM".into(), "linux/amd64".into()),
            ],
            dispatched: &dispatched,
            base: &base,
            ignore: matcher.as_ref(),
            platform_mismatches: vec![],
        };
        check(&input).warnings.into_iter().map(|w| (w.rule.name, w.start, w.detail)).collect()
    }

    fn lint(src: &str) -> Vec<(&'static str, usize, String)> {
        lint_with(src, None, &[])
    }

    fn w(rule: &'static str, line: usize, msg: &str) -> (&'static str, usize, String) {
        (rule, line, msg.to_string())
    }

    #[test]
    fn table_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment). docker 20.10's BuildKit predates checks.
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testRuleCheckOption
            ("#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n", vec![]),
            ("#check=skip=ConsistentInstructionCasing,FromAsCasing\nFROM scratch as base\ncopy Dockerfile .\n", vec![]),
            (
                "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n",
                vec![w("FromAsCasing", 2, "'as' and 'FROM' keywords' casing do not match")],
            ),
            // testStageName
            (
                "\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning: 'as' should match 'FROM' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n",
                vec![
                    w("StageNameCasing", 4, "Stage name 'BadStageName' should be lowercase"),
                    w("FromAsCasing", 8, "'as' and 'FROM' keywords' casing do not match"),
                ],
            ),
            (
                "\n# warning: 'AS' should match 'from' cmd casing.\n#\nfrom scratch AS base\n\nfrom scratch as base2\n",
                vec![w("FromAsCasing", 4, "'AS' and 'from' keywords' casing do not match")],
            ),
            // testNoEmptyContinuation
            (
                "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n",
                vec![w("NoEmptyContinuation", 6, "Empty continuation line")],
            ),
            // testConsistentInstructionCasing
            (
                "\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'From' should match the case of the command majority (uppercase)")],
            ),
            (
                "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'copy' should match the case of the command majority (uppercase)")],
            ),
            (
                "\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n",
                vec![w("ConsistentInstructionCasing", 4, "Command 'frOM' should match the case of the command majority (lowercase)")],
            ),
            (
                "\nfrom scratch\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
                vec![w("ConsistentInstructionCasing", 3, "Command 'COPY' should match the case of the command majority (lowercase)")],
            ),
            (
                "\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n",
                vec![w("ConsistentInstructionCasing", 2, "Command 'from' should match the case of the command majority (uppercase)")],
            ),
            ("\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n", vec![]),
            ("\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n", vec![]),
            // testDuplicateStageName is below (slipway refuses the file); testReservedStageName
            (
                "\nFROM scratch AS scratch\nFROM scratch AS context\n",
                vec![
                    w("ReservedStageName", 2, "Stage name should not use the same name as reserved stage \"scratch\""),
                    w("ReservedStageName", 3, "Stage name should not use the same name as reserved stage \"context\""),
                ],
            ),
            ("\nFROM scratch\nFROM scratch AS a\n", vec![]),
            // testJSONArgsRecommended
            (
                "\nFROM scratch\nCMD mycommand\n",
                vec![w("JSONArgsRecommended", 3, "JSON arguments recommended for CMD to prevent unintended behavior related to OS signals")],
            ),
            (
                "\nFROM scratch\nENTRYPOINT mycommand\n",
                vec![w(
                    "JSONArgsRecommended",
                    3,
                    "JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals",
                )],
            ),
            ("\nFROM scratch\nSHELL [\"/usr/bin/customshell\"]\nCMD mycommand\n", vec![]),
            ("\nFROM scratch AS base\nSHELL [\"/usr/bin/customshell\"]\n\nFROM base\nENTRYPOINT mycommand\n", vec![]),
            // testMaintainerDeprecated
            (
                "\nFROM scratch\nMAINTAINER me@example.org\n",
                vec![w("MaintainerDeprecated", 3, "Maintainer instruction is deprecated in favor of using label")],
            ),
            ("\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n", vec![]),
            ("\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n", vec![]),
            // testUndeclaredArg
            ("\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n", vec![]),
            ("\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", vec![]),
            ("\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n", vec![]),
            ("\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n", vec![]),
            ("\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n", vec![]),
            (
                "\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n",
                vec![w("UndefinedArgInFrom", 2, "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)")],
            ),
            (
                "\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n",
                vec![w("UndefinedArgInFrom", 3, "FROM argument 'version' is not declared")],
            ),
            // testWorkdirRelativePath
            (
                "\nFROM scratch\nWORKDIR app/\n",
                vec![w("WorkdirRelativePath", 3, "Relative workdir \"app/\" can have unexpected results if the base image changes")],
            ),
            ("\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n", vec![]),
            ("\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n", vec![]),
            // testUnmatchedVars
            ("\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n", vec![]),
            ("\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n", vec![]),
            ("\nFROM alpine\nRUN echo $PATH\n", vec![]),
            (
                "\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n",
                vec![w("UndefinedVar", 3, "Usage of undefined variable '$foo'")],
            ),
            (
                "\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n",
                vec![w("UndefinedVar", 6, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)")],
            ),
            (
                "\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n",
                vec![w("UndefinedVar", 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)")],
            ),
            // testMultipleInstructionsDisallowed
            (
                "\nFROM scratch\nENTRYPOINT [\"/myapp\"]\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n",
                vec![
                    w("MultipleInstructionsDisallowed", 3, "Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used"),
                    w("MultipleInstructionsDisallowed", 5, "Multiple CMD instructions should not be used in the same stage because only the last one will be used"),
                    w("MultipleInstructionsDisallowed", 7, "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used"),
                ],
            ),
            (
                "\nFROM scratch AS a\nENTRYPOINT [\"/myapp\"]\nCMD [\"/myapp\"]\nHEALTHCHECK CMD [\"/myapp\"]\n\nFROM a AS b\nENTRYPOINT [\"/myotherapp\"]\nCMD [\"/myotherapp\"]\nHEALTHCHECK CMD [\"/myotherapp\"]\n",
                vec![],
            ),
            // testLegacyKeyValueFormat
            (
                "\nFROM scratch\nENV testkey value\nLABEL key value\n",
                vec![
                    w("LegacyKeyValueFormat", 3, "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"),
                    w("LegacyKeyValueFormat", 4, "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format"),
                ],
            ),
            ("\nFROM scratch\nENV testkey=value\nLABEL key=value\n", vec![]),
            (
                "\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n# check=skip=LegacyKeyValueFormat\nLABEL key value\n",
                vec![],
            ),
            // testRedundantTargetPlatform
            (
                "\nFROM --platform=$TARGETPLATFORM scratch\n",
                vec![w("RedundantTargetPlatform", 2, "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior")],
            ),
            (
                "\nFROM --platform=${TARGETPLATFORM} scratch\n",
                vec![w("RedundantTargetPlatform", 2, "Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior")],
            ),
            ("\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n", vec![]),
            // testFromPlatformFlagConstDisallowed
            (
                "\nFROM --platform=linux/amd64 scratch\n",
                vec![w("FromPlatformFlagConstDisallowed", 2, "FROM --platform flag should not use constant value \"linux/amd64\"")],
            ),
            ("\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n", vec![]),
            ("\nFROM --platform=linux/amd64 scratch AS linux\n", vec![]),
            // testExposeProtoCasing
            (
                "\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n",
                vec![
                    w("ExposeProtoCasing", 3, "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase"),
                    w("ExposeProtoCasing", 3, "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase"),
                ],
            ),
            // testExposeInvalidFormat
            (
                "\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n",
                vec![
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'"),
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '5000:5000'"),
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '[::1]:8080:8080'"),
                ],
            ),
            // testDefinitionDescription
            (
                "# check=skip=all;experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n",
                vec![],
            ),
            (
                "# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n",
                vec![
                    w("InvalidDefinitionDescription", 3, "Comment for ARG should follow the format: `# foo <description>`"),
                    w("InvalidDefinitionDescription", 5, "Comment for FROM should follow the format: `# base <description>`"),
                    w("InvalidDefinitionDescription", 7, "Comment for ARG should follow the format: `# version <description>`"),
                    w("InvalidDefinitionDescription", 9, "Comment for ARG should follow the format: `# <arg_key> <description>`"),
                ],
            ),
            // testAllTargetUnmarshal (the check request sees both stages)
            (
                "\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n",
                vec![
                    w("UndefinedVar", 3, "Usage of undefined variable '$foo'"),
                    w("UndefinedVar", 6, "Usage of undefined variable '$bar'"),
                ],
            ),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }

    #[test]
    fn secrets_used_in_arg_or_env() {
        // testSecretsUsedInArgOrEnv
        let src = "# check=skip=InvalidDefinitionDescription\n\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\nARG SECRET_PASSPHRASE_FILE\nENV password_file=bar secret_File=baz\nARG AUTH_MODULE_VERSION\n# check=skip=SecretsUsedInArgOrEnv // allow secret in environment\nENV password=bar\n# check=skip=SecretsUsedInArgOrEnv // allow secret in arg\nARG password\n# check=skip=all // is local to only this instruction\nENV alternate_password=bar\n# check=skip=all // is local to only this instruction\nARG alternate_password\n";
        let got: Vec<(usize, String)> = lint(src).into_iter().map(|(_, l, m)| (l, m)).collect();
        let d = |k: &str| format!("Do not use ARG or ENV instructions for sensitive data ({k})");
        assert_eq!(
            got,
            vec![
                (4, d("ARG \"SECRET_PASSPHRASE\"")),
                (5, d("ENV \"SUPER_Secret\"")),
                (6, d("ENV \"password\"")),
                (6, d("ENV \"secret\"")),
                (7, d("ARG \"auth\"")),
                (7, d("ARG \"super_duper_secret_token\"")),
                (8, d("ENV \"apikey\"")),
                (9, d("ENV \"git_key\"")),
            ]
        );
    }

    #[test]
    fn copy_ignored_file() {
        // testCopyIgnoredFiles
        let df = "\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
        assert_eq!(
            lint_with(df, Some("\nDockerfile\n"), &[]),
            vec![
                w("CopyIgnoredFile", 3, "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore"),
                w("CopyIgnoredFile", 4, "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore"),
            ]
        );
        let skip = "# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n";
        assert_eq!(lint_with(skip, Some("\nDockerfile\n"), &[]), vec![]);
        let from = "\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n";
        assert_eq!(lint_with(from, Some("\nfoobar\n"), &[]), vec![]);
        // `!` patterns: not checked
        assert_eq!(lint_with("\nFROM scratch\nCOPY ./Dockerfile .\n", Some("\n**\n!Dockerfile\n"), &[]), vec![]);
        // testCopyIgnoredFileContextRoot
        assert_eq!(lint_with("\nFROM scratch\nCOPY . .\n", Some("\n.*\n"), &[]), vec![]);
        assert_eq!(
            lint_with("\nFROM scratch\nCOPY . .\n", Some("\n*\n"), &[]),
            vec![w("CopyIgnoredFile", 3, "Attempting to Copy file \".\" that is excluded by .dockerignore")]
        );
    }

    #[test]
    fn invalid_default_arg_in_from() {
        // testInvalidDefaultArgInFrom: the defaults are checked, whatever --build-arg says
        let r = lint_with("\nARG VERSION\nFROM busybox:$VERSION\n", None, &[("VERSION", "latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG busybox:$VERSION results in empty or invalid base image name"
            )]
        );
        let r = lint_with("\nARG IMAGE\nFROM $IMAGE\n", None, &[("IMAGE", "busybox:latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG $IMAGE results in empty or invalid base image name"
            )]
        );
        let r = lint_with("\nARG SFX=\"box:\"\nFROM busy${SFX}\n", None, &[("SFX", "box:latest")]);
        assert_eq!(
            r,
            vec![w(
                "InvalidDefaultArgInFrom",
                3,
                "Default value for ARG busy${SFX} results in empty or invalid base image name"
            )]
        );
        assert_eq!(
            lint_with("\nARG VERSION=\"latest\"\nFROM busybox:${VERSION}\n", None, &[("VERSION", "latest")]),
            vec![]
        );
        assert_eq!(
            lint_with(
                "\nARG BUSYBOX_VARIANT=\"\"\nFROM busybox:stable${BUSYBOX_VARIANT}\n",
                None,
                &[("BUSYBOX_VARIANT", "-musl")]
            ),
            vec![]
        );
        assert_eq!(
            lint_with(
                "\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t",
                None,
                &[("BUSYBOX_VARIANT", "-musl")]
            ),
            vec![]
        );
    }

    #[test]
    fn only_dispatched_stages_get_dispatch_checks() {
        // testLegacyKeyValueFormat: a stage the target does not need is checked only by the
        // check request (here: dispatched = {0, 2})
        let src = "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n";
        let df = parse(src).unwrap();
        let config = Config::default();
        let dispatched = [0, 2].into_iter().collect();
        let base = |_| Some(BaseImage::default());
        let input = Input {
            df: &df,
            config: &config,
            build_args: &[],
            platform_args: vec![],
            dispatched: &dispatched,
            base: &base,
            ignore: None,
            platform_mismatches: vec![],
        };
        assert_eq!(check(&input).warnings, vec![]);
        assert_eq!(lint(src).len(), 2);
    }

    #[test]
    fn secrets_tokens() {
        for (k, yes) in
            [("GITHUB_TOKEN", true), ("api_key", true), ("KEYBOARD", false), ("PUBLIC_KEY", false), ("AUTH", true)]
        {
            assert_eq!(looks_secret(k), yes, "{k}");
        }
    }
}
