//! The walk of BuildKit's build checks over a parsed Dockerfile: the rules of each group
//! (`naming`, `forms`, `from_args`, `vars`, `copy`, `expose`, `descriptions`) are called where
//! BuildKit runs them. Where BuildKit checks while parsing (casing, stage names, descriptions,
//! MAINTAINER, FROM's ARGs) every stage is checked; where it checks while dispatching
//! (variables, ENV/LABEL forms, CMD, WORKDIR, COPY of ignored files...) only the stages the
//! build dispatches (`Input::dispatched`: the target's stages, or all for `build --check`).
//! Pure: it reads the nodes and what the caller says of base images and the context; it
//! changes nothing.

use super::vars::{NoVars, Site};
use super::*;
use crate::dockerfile::parser::{Dockerfile, Node};
use crate::dockerfile::shell::{Env, Lexer};
use crate::dockerignore::Matcher;
use crate::instructions::{parse_node, CmdForm, Instruction};
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

/// The keyword as written (the parser lowercases `cmd`).
pub(super) fn keyword(node: &Node) -> &str {
    node.original.split_whitespace().next().unwrap_or("")
}

/// The state of one dispatched stage, as far as the checks follow it.
#[derive(Debug, Clone, Default)]
struct StageState {
    /// Names of the variables set (base image env, ENV, ARG with a value).
    env: BTreeSet<String>,
    shell: bool,
    workdir_set: bool,
}

pub(super) struct Checker<'a> {
    pub(super) input: &'a Input<'a>,
    pub(super) lexer: Lexer,
    pub(super) out: Vec<Warning>,
}

impl Checker<'_> {
    pub(super) fn warn(&mut self, cfg: &Config, rule: &'static Rule, detail: String, lines: (usize, usize)) {
        if cfg.enabled(rule) {
            self.out.push(Warning { rule, detail, start: lines.0, end: lines.1 });
        }
    }

    /// Expands `word` with variables `vars`; the names it used, set and unset.
    pub(super) fn expand(
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
    // (FROM node, its instructions), and the ARGs before the first FROM
    let mut stages: Vec<(&Node, Vec<(&Node, Instruction)>)> = Vec::new();
    let mut meta: Vec<(&Node, Instruction)> = Vec::new();
    for node in &input.df.nodes {
        forms::empty_continuation(&mut c, cfg, node);
    }
    for node in &input.df.nodes {
        let ncfg = cfg.with_comments(&node.comments);
        let lines = (node.start_line, node.end_line);
        let Ok(inst) = parse_node(node) else {
            // the build fails here; BuildKit stops checking at the same point
            break;
        };
        match &inst {
            Instruction::Maintainer(_) => forms::maintainer(&mut c, &ncfg, lines),
            Instruction::From { alias, .. } => {
                naming::from_casing(&mut c, &ncfg, node);
                if let Some(name) = alias {
                    descriptions::definition_description(&mut c, &ncfg, node, "FROM", std::slice::from_ref(name));
                }
            }
            Instruction::Arg(list) => {
                let keys: Vec<String> = list.iter().map(|(k, _)| k.clone()).collect();
                descriptions::definition_description(&mut c, &ncfg, node, "ARG", &keys);
            }
            _ => {}
        }
        match (&inst, stages.last_mut()) {
            (Instruction::From { .. }, _) => stages.push((node, Vec::new())),
            (_, Some((_, cmds))) => cmds.push((node, inst)),
            (_, None) => meta.push((node, inst)),
        }
    }
    naming::stage_names(&mut c, &stages);
    naming::casing(&mut c, &stages);
    from_args::from_args(&mut c, &stages, &meta);
    from_args::base_platform(&mut c, &stages);
    dispatch(&mut c, &stages, &meta);
    // in the order found, as BuildKit's passes report them to the build's progress
    Report { warnings: c.out, error: cfg.error }
}

pub(super) type Stages<'a> = [(&'a Node, Vec<(&'a Node, Instruction)>)];

pub(super) fn alias(from: &Node) -> Option<String> {
    match parse_node(from) {
        Ok(Instruction::From { alias, .. }) => alias,
        _ => None,
    }
}

/// The global scope's variables: the platform ARGs, then the ARGs before the first FROM with
/// `--build-arg` values (or, with `defaults_only`, their defaults), as `buildMetaArgs`. Also
/// every name declared.
pub(super) fn meta_scope(
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

/// The checks of one dispatched stage's instructions, in order, following what each sets.
fn stage(c: &mut Checker, cmds: &[(&Node, Instruction)], global: &[(String, String)], st: &mut StageState) {
    // the ARGs the stage declared (set or not)
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
                for (k, v) in pairs {
                    undefined(c, &declared, k);
                    undefined(c, &declared, v);
                }
                forms::legacy_form(c, &cfg, node, lines);
                if matches!(inst, Instruction::Env(_)) {
                    for (k, _) in pairs {
                        let k = c.lexer.process_word(k, &NoVars).unwrap_or_else(|_| k.clone());
                        vars::secret_name(c, &cfg, "ENV", &k, lines);
                        st.env.insert(k);
                    }
                }
            }
            Instruction::Arg(list) => {
                for (k, d) in list {
                    vars::secret_name(c, &cfg, "ARG", k, lines);
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
                    forms::multiple(c, &cfg, &name, prev);
                }
                if matches!(f, CmdForm::Shell(_)) {
                    forms::json_args(c, &cfg, &name, st.shell, lines);
                }
            }
            Instruction::Healthcheck(_) => {
                if let Some(prev) = last.insert("HEALTHCHECK", lines) {
                    forms::multiple(c, &cfg, &name, prev);
                }
            }
            Instruction::Shell(_) => st.shell = true,
            Instruction::Workdir(p) => {
                let p = undefined(c, &declared, p);
                forms::workdir(c, &cfg, &p, st.workdir_set, lines);
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
                for s in copy::local_sources(a, add) {
                    srcs.push(undefined(c, &declared, s));
                }
                undefined(c, &declared, &a.dest);
                if a.from.is_none() {
                    copy::ignored_files(c, &cfg, &srcs, add, lines);
                }
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    expose::expose(c, &cfg, p, lines);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;

    /// A warning as (rule, line, message).
    pub(in crate::lint) type Found = (&'static str, usize, String);

    /// The warnings of `src` with every stage dispatched and image bases that set only PATH,
    /// as (rule, line, message).
    pub(in crate::lint) fn lint_with(
        src: &str,
        ignore: Option<&str>,
        build_args: &[(&str, &str)],
    ) -> Vec<(&'static str, usize, String)> {
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
        let mut found: Vec<Found> =
            check(&input).warnings.into_iter().map(|w| (w.rule.name, w.start, w.detail)).collect();
        // the rows list them by line (buildx's check report order)
        found.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
        found
    }

    /// `check` of `src` with only the `dispatched` stages, no config, build args or ignore file,
    /// bases that set nothing, and the base platform `mismatches`.
    pub(in crate::lint) fn check_plain(
        src: &str,
        dispatched: &[usize],
        mismatches: Vec<(usize, String, String, String)>,
    ) -> Report {
        let df = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        let config = Config::default();
        let dispatched = dispatched.iter().copied().collect();
        let base = |_| Some(BaseImage::default());
        let input = Input {
            df: &df,
            config: &config,
            build_args: &[],
            platform_args: vec![],
            dispatched: &dispatched,
            base: &base,
            ignore: None,
            platform_mismatches: mismatches,
        };
        check(&input)
    }

    pub(in crate::lint) fn lint(src: &str) -> Vec<(&'static str, usize, String)> {
        lint_with(src, None, &[])
    }

    pub(in crate::lint) fn w(rule: &'static str, line: usize, msg: &str) -> (&'static str, usize, String) {
        (rule, line, msg.to_string())
    }

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testRuleCheckOption
            ("#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n", vec![]),
            ("#check=skip=ConsistentInstructionCasing,FromAsCasing\nFROM scratch as base\ncopy Dockerfile .\n", vec![]),
            (
                "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n",
                vec![w("FromAsCasing", 2, "'as' and 'FROM' keywords' casing do not match")],
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
    fn only_dispatched_stages_get_dispatch_checks() {
        // testLegacyKeyValueFormat: a stage the target does not need is checked only by the
        // check request (here: dispatched = {0, 2})
        let src = "\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n";
        assert_eq!(check_plain(src, &[0, 2], vec![]).warnings, vec![]);
        assert_eq!(lint(src).len(), 2);
    }

    #[test]
    fn found_in_buildkits_pass_order_reported_by_line() {
        // the build log: parse-time rules per instruction (FromAsCasing, MaintainerDeprecated),
        // then the casing pass (ConsistentInstructionCasing); buildx's check report by line
        let src = "FROM scratch as base\ncopy Dockerfile .\nMAINTAINER me\n";
        let r = check_plain(src, &[0], vec![]);
        let lines: Vec<usize> = r.warnings.iter().map(|w| w.start).collect();
        assert_eq!(lines, [1, 3, 2]);
        let out = r.check_output("Dockerfile", src);
        let at = |rule: &str| out.find(&format!("WARNING: {rule}")).unwrap();
        assert!(at("FromAsCasing") < at("ConsistentInstructionCasing"));
        assert!(at("ConsistentInstructionCasing") < at("MaintainerDeprecated"));
    }
}
