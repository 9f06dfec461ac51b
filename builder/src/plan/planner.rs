//! The planner: global ARGs, the stage graph, then each needed stage in build order with the
//! state planning sees (the image config as far as instructions set it, the declared ARGs),
//! one step per instruction. Base images come through `Images` (the store, or a registry
//! behind it); COPY sources from the context.

use super::copy::plan_copy;
use super::graph::{self, Graph};
use super::meta::{plan_config, platform_args};
use super::run::{plan_run, RunFlags, RunOptions};
use super::state::{At, State};
use super::{Action, Base, BuildError, ConfigChange, Origin, Plan, StagePlan, Step, Stop};
use crate::cache::Inputs;
use crate::context::Context;
use crate::dockerfile::parser;
use crate::dockerfile::shell::Lexer;
use crate::instructions::{self, Command, Instruction, Stages};
use crate::registry::Platform;
use crate::rootfs;
use crate::spec::Network;
use crate::store::image::ImageConfig;
use crate::store::Image;

/// Where base images (`FROM`, `COPY --from=IMAGE`) come from: the store, or a registry
/// behind it (`build.rs` joins them).
pub trait Images {
    /// The image `name` (a name or ID) means, for `platform` where it has several (else this
    /// machine's). Lines for the build log go to `log`; the error says why there is none.
    fn resolve(&self, name: &str, platform: Option<&Platform>, log: &mut Vec<String>) -> Result<Image, String>;

    /// Whether a `--build-context` stands for `name` on `platform` (a stage of that name is
    /// then replaced by it: [`replace_named_stages`]).
    fn named(&self, _name: &str, _platform: &Platform) -> bool {
        false
    }
}

/// Where ADD's remote sources are looked at while planning (`build.rs` joins them to `fetch`
/// and the store): what they hold now is the step's key, as in BuildKit.
pub trait Remotes {
    /// What an http(s) URL serves now: its content's sha256 digest (a blob of the store once
    /// this returns) and Last-Modified time.
    fn http(&self, url: &str) -> Result<(String, Option<i64>), String>;
    /// The commit a git reference names now, and the full ref it was found under.
    fn git(&self, g: &crate::fetch::git::GitRef) -> Result<(String, String), String>;
}

/// What the planner takes from the command line.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The Dockerfile's name in messages.
    pub file: &'a str,
    pub build_args: &'a [(String, String)],
    pub target: Option<&'a str>,
    /// `build --network`: what RUN steps get unless they say otherwise.
    pub network: Network,
    /// `build --platform`: the platform base images are resolved for (`FROM --platform` wins).
    pub platform: Option<Platform>,
    /// `build --label`: a LABEL step at the end of the target stage.
    pub labels: &'a [(String, String)],
    /// Plan every stage, not only those the target needs (`build --check`, as BuildKit's lint
    /// request dispatches all stages).
    pub all_stages: bool,
    /// Global ARGs whose value is replaced once all are evaluated, where one of that name is
    /// declared (None: it has none): SOURCE_DATE_EPOCH, resolved to seconds (`epoch`).
    pub set_global_args: &'a [(String, Option<String>)],
    /// The Dockerfile asks for a labs frontend (`# syntax=docker/dockerfile:1-labs`): its
    /// features (`RUN --device`) are on.
    pub labs: bool,
    /// The CDI devices `RUN --device` resolves against.
    pub devices: &'a crate::cdi::Devices,
}

struct Planner<'a> {
    stages: &'a Stages,
    lexer: Lexer,
    ctx: &'a mut Context,
    images: &'a dyn Images,
    remotes: &'a dyn Remotes,
    opts: &'a Options<'a>,
    /// Global ARGs with values.
    meta: Vec<(String, Option<String>)>,
    /// The final config of each stage planned so far, by Dockerfile index.
    done: Vec<Option<ImageConfig>>,
    /// The SBOM scan ARGs of each stage planned so far, by Dockerfile index (a stage that
    /// starts from it inherits them).
    scan_args: Vec<Vec<(String, String)>>,
    /// `--label` as a last step of the target stage: (target, the LABEL instruction).
    label: Option<(usize, Command)>,
    /// The platform the build is for (`--platform`, else this machine's) and this machine's.
    target_platform: Platform,
    build_platform: Platform,
    /// Each planned stage's platform (`FROM --platform`, its base stage's, else the target's).
    platforms: Vec<Option<Platform>>,
    /// The stage being planned.
    cur: usize,
    /// The proxy variables every RUN step gets from the build args.
    proxy_env: Vec<String>,
}

/// Plans a build of `stages` (escape character `escape`). Never fails: where planning stops,
/// `Plan::stop` says why, after what could be planned.
pub fn plan(
    stages: &Stages,
    escape: char,
    ctx: &mut Context,
    images: &dyn Images,
    remotes: &dyn Remotes,
    opts: &Options,
) -> Plan {
    let mut out = Plan {
        stages: Vec::new(),
        target: 0,
        total: 0,
        declared_args: Default::default(),
        stop: None,
        context_paths: Default::default(),
    };
    let lexer = Lexer::new(escape);
    let target_platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let build_platform = Platform::host();
    let meta = match meta_args(stages, &lexer, opts, &target_platform, &build_platform) {
        Ok(m) => m,
        Err(e) => {
            out.stop = Some(stop(e));
            return out;
        }
    };
    let replaced = replace_named_stages(stages, &lexer, &env_of(&meta), &target_platform, &|n, p| images.named(n, p));
    let stages = replaced.as_ref().unwrap_or(stages);
    let mut p = Planner {
        stages,
        lexer,
        ctx,
        images,
        remotes,
        opts,
        meta,
        done: vec![None; stages.stages.len()],
        scan_args: vec![Vec::new(); stages.stages.len()],
        label: None,
        target_platform,
        build_platform,
        platforms: vec![None; stages.stages.len()],
        cur: 0,
        proxy_env: super::run::proxy_env(opts.build_args),
    };
    if let Err(stop) = p.run(&mut out) {
        out.stop = Some(stop);
    }
    out
}

/// The global ARGs of a build for `target` (`global_args`), with the values the build decided
/// after evaluating them (SOURCE_DATE_EPOCH resolved: `Options::set_global_args`).
fn meta_args(
    stages: &Stages,
    lexer: &Lexer,
    opts: &Options,
    target: &Platform,
    build: &Platform,
) -> Result<Vec<(String, Option<String>)>, BuildError> {
    let mut meta = global_args(stages, lexer, opts.file, opts.build_args, target, build)?;
    for (k, v) in opts.set_global_args {
        for (_, value) in meta.iter_mut().filter(|(n, _)| n == k) {
            *value = v.clone();
        }
    }
    Ok(meta)
}

/// ARGs with values, as variables for expansion.
fn env_of(meta: &[(String, Option<String>)]) -> Vec<(String, String)> {
    meta.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
}

/// The stages with each one a `--build-context` stands for replaced by it: `FROM NAME` (which
/// the planner resolves to the context) with no instructions, its FROM line and
/// `FROM --platform` kept, as BuildKit's frontend replaces a stage (convert.go
/// buildDispatchStates). Asked per stage for its platform: its `FROM --platform` (expanded with
/// the global ARGs `meta`), else `target`, the platform being built, so that a context for one
/// platform (`NAME::PLATFORM`) replaces the stage on that platform only. A `FROM --platform`
/// that does not read leaves the stage as it is: planning it says why. None: none replaced.
pub fn replace_named_stages(
    stages: &Stages,
    lexer: &Lexer,
    meta: &dyn crate::dockerfile::shell::Env,
    target: &Platform,
    named: &dyn Fn(&str, &Platform) -> bool,
) -> Option<Stages> {
    let mut out: Option<Stages> = None;
    for (i, s) in stages.stages.iter().enumerate() {
        let Some(name) = &s.name else { continue };
        let platform = match &s.platform {
            Some(p) => match lexer.process_word(p, meta).ok().map(|p| Platform::parse(&p)) {
                Some(Ok(p)) => p,
                _ => continue,
            },
            None => target.clone(),
        };
        if named(name, &platform) {
            let r = &mut out.get_or_insert_with(|| stages.clone()).stages[i];
            r.base = name.clone();
            r.commands.clear();
        }
    }
    out
}

/// The global ARGs (before the first FROM) with their values, as BuildKit's buildMetaArgs
/// evaluates them: after the automatic platform ARGs, each takes the build arg of its name,
/// else its default (expanded with those before it), else an automatic ARG's value.
pub fn global_args(
    stages: &Stages,
    lexer: &Lexer,
    file: &str,
    build_args: &[(String, String)],
    target: &Platform,
    build: &Platform,
) -> Result<Vec<(String, Option<String>)>, BuildError> {
    let mut meta = platform_args(target, build);
    for cmd in &stages.meta_args {
        if let Instruction::Arg(list) = &cmd.inst {
            for (k, d) in list {
                let env: Vec<(String, String)> =
                    meta.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
                let d = match d {
                    Some(d) => Some(At { lexer, file, line: cmd.line }.expand(d, &env)?),
                    None => None,
                };
                let auto = meta.iter().rev().find(|(n, _)| n == k).and_then(|(_, v)| v.clone());
                let given = build_args.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                let v = given.or(d).or(auto);
                meta.push((k.clone(), v));
            }
        }
    }
    Ok(meta)
}

/// Go's `path.Join("/", p)` made relative: `.` and `..` resolved lexically, never above the
/// root ("" for it).
fn clean_abs(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// Adds what `action` reads of the build context to `paths` (BuildKit's ctxPaths: the sources
/// of a COPY or ADD from the context and of a RUN bind mount of it, as written), as patterns
/// of .dockerignore's syntax.
fn context_paths(action: &Action, paths: &mut std::collections::BTreeSet<String>) {
    match action {
        // the sources as written, patterns and all: BuildKit's path.Join("/", src), relative
        Action::Copy(c) => {
            for src in &c.context_reads {
                paths.insert(clean_abs(src));
            }
        }
        Action::Run(r) => {
            for m in &r.mounts {
                if let super::Mount::Bind(b) = m {
                    if b.from == Origin::Context {
                        paths.insert(clean_abs(&b.written));
                    }
                }
            }
        }
        _ => {}
    }
}

/// What planning a stage came to.
enum Planned {
    Done,
    /// Its base's ONBUILD triggers read these stages, not planned yet.
    Needs(Vec<usize>),
}

/// The names an ARG instruction declares.
fn arg_names(inst: &Instruction) -> Option<impl Iterator<Item = String> + '_> {
    match inst {
        Instruction::Arg(list) => Some(list.iter().map(|(k, _)| k.clone())),
        _ => None,
    }
}

fn stop(error: BuildError) -> Stop {
    Stop { shown: None, notes: Vec::new(), error }
}

impl<'a> Planner<'a> {
    fn at(&self, line: usize) -> At<'_> {
        At { lexer: &self.lexer, file: self.opts.file, line }
    }

    fn build_arg(&self, name: &str) -> Option<String> {
        self.opts.build_args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Global ARGs with values, as variables for expansion.
    fn meta_env(&self) -> Vec<(String, String)> {
        env_of(&self.meta)
    }

    fn run(&mut self, out: &mut Plan) -> Result<(), Stop> {
        let meta_env = self.meta_env();
        let g = Graph::new(self.stages, &self.lexer, &meta_env).map_err(|(line, msg)| stop(self.at(line).err(msg)))?;
        let target = match self.opts.target {
            Some(t) => g
                .stage_index(t)
                .ok_or_else(|| stop(BuildError::Other(format!("target stage \"{t}\" could not be found"))))?,
            None => self.stages.stages.len() - 1,
        };
        self.label = self.label_step(&self.stages.stages[target]).map(|c| (target, c));
        let order: Vec<usize> =
            if self.opts.all_stages { (0..self.stages.stages.len()).collect() } else { g.needed(target) };
        out.target = target;
        out.total = usize::from(self.label.is_some());
        out.declared_args = self.stages.meta_args.iter().filter_map(|c| arg_names(&c.inst)).flatten().collect();
        // Stages are planned lowest index first. An ONBUILD trigger of a stage's base may name a
        // stage (BuildKit's resolveStages + initOnBuildTriggers): it joins the plan, with the
        // stages it needs, and the stage is planned again once they are (they are all earlier
        // in the file, so this ends).
        let mut pending = std::collections::BTreeSet::new();
        self.add_stages(&order, &mut pending, out);
        while let Some(&i) = pending.first() {
            match self.stage(i, &g, out)? {
                Planned::Done => {
                    pending.remove(&i);
                }
                Planned::Needs(js) => {
                    let more: Vec<usize> = js.iter().flat_map(|&j| g.needed(j)).collect();
                    self.add_stages(&more, &mut pending, out);
                }
            }
        }
        out.stages.sort_by_key(|s| s.index);
        Ok(())
    }

    /// Adds the stages of `list` not yet planned nor pending to `pending`, counting their steps
    /// and declared ARGs.
    fn add_stages(&self, list: &[usize], pending: &mut std::collections::BTreeSet<usize>, out: &mut Plan) {
        for &i in list {
            if self.done[i].is_some() || !pending.insert(i) {
                continue;
            }
            let commands = &self.stages.stages[i].commands;
            out.total += 1 + commands.len();
            out.declared_args.extend(commands.iter().filter_map(|c| arg_names(&c.inst)).flatten());
        }
    }

    /// The stages the ONBUILD triggers `onbuild` of stage `i`'s base copy or mount from
    /// (`COPY --from=`, `RUN --mount=from=`), refused where BuildKit refuses them: a stage not
    /// before stage `i` (it dispatches stages in file order) and an index out of range. A name
    /// that is no stage is an image (planned as the step is); a trigger that does not parse is
    /// left to the step, which says why.
    fn trigger_stages(&self, i: usize, onbuild: &[String]) -> Result<Vec<usize>, BuildError> {
        let stage = &self.stages.stages[i];
        let names: Vec<Option<String>> = self.stages.stages.iter().map(|s| s.name.clone()).collect();
        let me = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
        let at = self.at(stage.line);
        let meta = self.meta_env();
        let mut out = Vec::new();
        for t in onbuild {
            let Ok(df) = parser::parse(t) else { continue };
            for node in &df.nodes {
                let Ok(inst) = instructions::parse_node(node) else { continue };
                let froms: Vec<(String, Option<String>)> = match &inst {
                    // `--from=$X` is refused by the step (BuildKit: no expansion)
                    Instruction::Copy(a) => {
                        a.from.iter().filter(|f| !f.contains('$')).map(|f| (f.clone(), None)).collect()
                    }
                    Instruction::Run { mounts, .. } => mounts
                        .iter()
                        .filter_map(|m| {
                            let f = crate::runmount::raw_from(m).ok().flatten()?;
                            let f = self.lexer.process_word(&f, &meta).ok()?;
                            Some((f, Some(crate::runmount::raw_target(m))))
                        })
                        .collect(),
                    _ => continue,
                };
                for (f, target) in froms {
                    let j = match f.parse::<usize>() {
                        Ok(n) if n >= names.len() => {
                            return Err(at.err(format!("ONBUILD trigger {t:?}: invalid stage index {n}")))
                        }
                        Ok(n) => n,
                        Err(_) => match graph::last_named(&names, &f) {
                            Some(j) => j,
                            None => continue,
                        },
                    };
                    if j >= i {
                        let msg = match target {
                            None => format!(
                                "cannot copy from stage {f:?}, it needs to be defined before current stage {me:?}"
                            ),
                            Some(to) => format!(
                                "cannot mount from stage {f:?} to {to:?}, stage needs to be defined before current command"
                            ),
                        };
                        return Err(at.err(format!("ONBUILD trigger {t:?}: {msg}")));
                    }
                    if !out.contains(&j) {
                        out.push(j);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Plans stage `i` onto `out` (as far as it can be planned), or says which stages its base's
    /// ONBUILD triggers read that are not planned yet.
    fn stage(&mut self, i: usize, g: &Graph, out: &mut Plan) -> Result<Planned, Stop> {
        self.cur = i;
        let stage = &self.stages.stages[i];
        let at = self.at(stage.line);
        let at_from = |e: BuildError, notes: Vec<String>| Stop { shown: Some(stage.original.clone()), notes, error: e };
        let mut notes = Vec::new();
        // FROM --platform: what the stage is built for (its base pulled for, its config says)
        let from_platform = match &stage.platform {
            Some(p) => {
                let p = at.expand(p, &self.meta_env()).map_err(|e| at_from(e, vec![]))?;
                let p = Platform::parse(&p).map_err(|e| at_from(at.err(format!("FROM --platform: {e}")), vec![]))?;
                Some(p)
            }
            None => None,
        };
        let platform_of_stage;
        let (config, base, deps) = match &g.bases[i] {
            graph::Base::Scratch => {
                let p = from_platform.clone().unwrap_or_else(|| self.target_platform.clone());
                let mut c = ImageConfig::scratch();
                c.os = p.os.clone();
                c.architecture = p.architecture.clone();
                c.variant = p.variant.clone().unwrap_or_default();
                platform_of_stage = p;
                (c, Base::Scratch, vec![])
            }
            graph::Base::Stage(j) => {
                let c = self.done[*j].clone().ok_or_else(|| at_from(at.err("FROM: stage was not built"), vec![]))?;
                let theirs = self.platforms[*j].clone().unwrap_or_else(|| self.target_platform.clone());
                if let Some(p) = from_platform.as_ref().filter(|p| **p != theirs) {
                    let msg = format!("FROM --platform={p}: the stage it starts from is built for {theirs}");
                    return Err(at_from(at.err(msg), vec![]));
                }
                platform_of_stage = theirs;
                (c, Base::Stage(*j), vec![*j])
            }
            graph::Base::Image(name) => {
                let platform = from_platform.clone().or_else(|| self.opts.platform.clone());
                platform_of_stage = platform.clone().unwrap_or_else(|| self.target_platform.clone());
                let img = self.images.resolve(name, platform.as_ref(), &mut notes).map_err(|e| {
                    let wanted = platform.as_ref().map(|p| format!(" for {p}")).unwrap_or_default();
                    let msg = format!("FROM {name}: not in the store{wanted}, and the pull failed: {e}");
                    at_from(at.err(msg), std::mem::take(&mut notes))
                })?;
                (img.config.clone(), Base::Image { name: name.clone(), image: Box::new(img) }, vec![])
            }
        };
        let platform: Platform = platform_of_stage;
        self.platforms[i] = Some(platform.clone());
        let mut st = State::new(config);
        if let Base::Stage(j) = &base {
            st.scan_args = self.scan_args[*j].clone();
        }
        // ONBUILD triggers of the base run first, then are dropped from the child
        let onbuild = std::mem::take(&mut st.config.config.on_build);
        let needs = self.trigger_stages(i, &onbuild).map_err(|e| at_from(e, vec![]))?;
        let missing: Vec<usize> = needs.into_iter().filter(|&j| self.done[j].is_none()).collect();
        if !missing.is_empty() {
            return Ok(Planned::Needs(missing));
        }
        let mut sp = StagePlan {
            index: i,
            name: stage.name.clone(),
            line: stage.line,
            text: stage.original.clone(),
            base,
            deps,
            platform,
            notes,
            onbuild: onbuild.clone(),
            steps: Vec::new(),
            sbom: Default::default(),
        };
        let res = self.steps(stage, &onbuild, &mut st, &mut sp);
        sp.sbom = self.sbom_scan(i, &st);
        for step in &sp.steps {
            context_paths(&step.action, &mut out.context_paths);
        }
        out.stages.push(sp);
        res?;
        self.done[i] = Some(st.config);
        self.scan_args[i] = st.scan_args;
        Ok(Planned::Done)
    }

    /// What the SBOM scan takes of stage `i` (final state `st`), as BuildKit's dispatchStages
    /// decides it: the global ARG's value, then each of the stage's own with a value.
    fn sbom_scan(&self, i: usize, st: &State) -> super::SbomScan {
        let stage = &self.stages.stages[i];
        // BuildKit names a Dockerfile's only dispatch state "" (a COPY --from an image and each
        // RUN --mount not from a stage add one of their own)
        let lone = self.stages.stages.len() == 1
            && !stage.commands.iter().any(|c| match &c.inst {
                Instruction::Copy(a) => a.from.is_some(),
                Instruction::Run { mounts, .. } => !mounts.is_empty(),
                _ => false,
            });
        let name = match &stage.name {
            _ if lone => String::new(),
            Some(n) => n.clone(),
            None => format!("stage-{i}"),
        };
        let on = |arg: &str| {
            let global = self.meta.iter().rev().find(|(k, _)| k == arg).and_then(|(_, v)| v.as_deref());
            let own = st.scan_args.iter().rev().find(|(k, _)| k == arg).map(|(_, v)| v.as_str());
            own.or(global).is_some_and(|v| super::scan_enabled_for(&name, v))
        };
        super::SbomScan { stage: on(super::SBOM_SCAN_STAGE), context: on(super::SBOM_SCAN_CONTEXT), name }
    }

    fn steps(
        &mut self,
        stage: &instructions::Stage,
        onbuild: &[String],
        st: &mut State,
        sp: &mut StagePlan,
    ) -> Result<(), Stop> {
        for t in onbuild {
            let df = parser::parse(t)
                .map_err(|e| stop(self.at(stage.line).err(format!("ONBUILD trigger {t:?}: {}", e.msg))))?;
            // BuildKit's initOnBuildTriggers: a trigger is one instruction (with its heredocs)
            if df.nodes.len() != 1 {
                let msg = format!("ONBUILD trigger {t:?}: onbuild trigger should be a single expression");
                return Err(stop(self.at(stage.line).err(msg)));
            }
            for node in &df.nodes {
                let inst = instructions::parse_node(node)
                    .map_err(|e| stop(self.at(stage.line).err(format!("ONBUILD trigger {t:?}: {e}"))))?;
                let cmd = Command { inst, line: stage.line, original: node.original.clone() };
                let step = self.step(st, &cmd, false).map_err(stop)?;
                self.note_deps(&step, sp);
                sp.steps.push(step);
            }
        }
        let label = self.label.as_ref().filter(|(t, _)| *t == sp.index).map(|(_, c)| c.clone());
        for cmd in stage.commands.iter().chain(label.as_ref()) {
            let step = self.step(st, cmd, true).map_err(|e| Stop {
                shown: Some(cmd.original.clone()),
                notes: Vec::new(),
                error: e,
            })?;
            self.note_deps(&step, sp);
            sp.steps.push(step);
        }
        Ok(())
    }

    /// `--label`, as docker's classic builder takes it: a LABEL step at the end of the target
    /// stage, so it goes through the cache and the last ` ---> ID` is the image's.
    fn label_step(&self, stage: &instructions::Stage) -> Option<Command> {
        if self.opts.labels.is_empty() {
            return None;
        }
        let line = stage.commands.last().map_or(stage.line, |c| c.line);
        let esc = self.lexer.escape;
        let quote = |w: &str| -> String {
            let mut out = String::new();
            for c in w.chars() {
                if c == esc || matches!(c, '$' | '"' | '\'' | ' ' | '\t') {
                    out.push(esc);
                }
                out.push(c);
            }
            out
        };
        let pairs: Vec<(String, String)> = self.opts.labels.iter().map(|(k, v)| (quote(k), quote(v))).collect();
        let original =
            format!("LABEL {}", self.opts.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
        Some(Command { inst: Instruction::Label(pairs), line, original })
    }

    fn note_deps(&self, step: &Step, sp: &mut StagePlan) {
        for j in step.stage_deps() {
            if !sp.deps.contains(&j) {
                sp.deps.push(j);
            }
        }
    }

    /// One instruction: its words expanded, its action and cache inputs.
    fn step(&mut self, st: &mut State, cmd: &Command, counted: bool) -> Result<Step, BuildError> {
        let line = cmd.line;
        let (inputs, created_by, action) = match &cmd.inst {
            Instruction::From { .. } => return Err(self.at(line).err("FROM inside a stage")),
            Instruction::Workdir(p) => {
                let p = self.at(line).expand(p, &st.env())?;
                let path = rootfs::join_container_path(&st.config.config.working_dir, &p);
                let text = format!("WORKDIR {path}");
                let inputs = Inputs {
                    keyword: "WORKDIR".into(),
                    text: format!("{text} user={}", st.config.config.user),
                    ..Default::default()
                };
                st.config.config.working_dir = path.clone();
                (inputs, text, Action::Workdir(path))
            }
            Instruction::Run { cmd: run, network, security, mounts, devices } => {
                let at = At { lexer: &self.lexer, file: self.opts.file, line };
                let (stages, done, images) = (self.stages, &self.done, self.images);
                let platform = self.opts.platform.as_ref();
                let resolve = |f: &str| resolve_from(&at, stages, done, images, platform, "RUN --mount from", f);
                let flags = RunFlags { network: network.as_deref(), security: security.as_deref(), mounts, devices };
                let ns = self.build_arg("BUILDKIT_CACHE_MOUNT_NS");
                let ropts = RunOptions {
                    network: self.opts.network,
                    cache_ns: ns.as_deref(),
                    labs: self.opts.labs,
                    devices: (!self.opts.all_stages).then_some(self.opts.devices),
                    proxy_env: &self.proxy_env,
                };
                let mut p = plan_run(&at, st, run, &flags, &ropts, self.ctx, &resolve)?;
                let platform = self.platforms[self.cur].clone().unwrap_or_else(|| self.target_platform.clone());
                p.run.platform = (platform != self.build_platform).then_some(platform);
                let inputs = Inputs {
                    keyword: "RUN".into(),
                    text: format!(
                        "{} user={} cwd={} env={:?}{}",
                        p.created_by, p.run.user, p.run.cwd, st.config.config.env, p.key_text
                    ),
                    args: st.arg_values(),
                    files: p.files,
                    ..Default::default()
                };
                (inputs, p.created_by, Action::Run(p.run))
            }
            Instruction::Copy(a) | Instruction::Add(a) => {
                let is_add = matches!(cmd.inst, Instruction::Add(_));
                let at = At { lexer: &self.lexer, file: self.opts.file, line };
                let (stages, done, images) = (self.stages, &self.done, self.images);
                let platform = self.opts.platform.as_ref();
                let kw = if is_add { "ADD --from" } else { "COPY --from" };
                let resolve = |f: &str| resolve_from(&at, stages, done, images, platform, kw, f);
                let (copy, inputs, created_by) = plan_copy(&at, st, a, is_add, self.ctx, self.remotes, &resolve)?;
                (inputs, created_by, Action::Copy(copy))
            }
            inst => {
                let build_arg = |k: &str| self.build_arg(k);
                let Some((text, change)) = plan_config(&self.at(line), st, inst, &self.meta, &build_arg)? else {
                    return Err(self.at(line).err(format!("{}: not planned", inst.keyword())));
                };
                change.apply(&mut st.config);
                if let ConfigChange::Env(pairs) = &change {
                    for (k, v) in pairs {
                        st.set_var(k, v);
                    }
                }
                let mut inputs = Inputs { keyword: inst.keyword().into(), text: text.clone(), ..Default::default() };
                // ONBUILD adds no history entry (ConfigChange::has_history); a step cached when it
                // did is not to be used
                if !change.has_history() {
                    inputs.text.push_str(" (no history)");
                }
                (inputs, text, Action::Config(change))
            }
        };
        Ok(Step { line, text: cmd.original.clone(), counted, inputs, created_by, action })
    }
}

/// `--from=` a stage name, a stage index, or an image: the origin and its identity for the key
/// (a stage's is known once it is built, so empty here).
fn resolve_from(
    at: &At,
    stages: &Stages,
    done: &[Option<ImageConfig>],
    images: &dyn Images,
    platform: Option<&Platform>,
    kw: &str,
    f: &str,
) -> Result<(Origin, String), BuildError> {
    let idx = f
        .parse::<usize>()
        .ok()
        .or_else(|| stages.stages.iter().rposition(|s| s.name.as_deref() == Some(f.to_ascii_lowercase().as_str())));
    if let Some(i) = idx {
        if !matches!(done.get(i), Some(Some(_))) {
            return Err(at.err(format!("{kw}={f}: stage is not built before this one")));
        }
        return Ok((Origin::Stage(i), String::new()));
    }
    let img = images.resolve(f, platform, &mut Vec::new()).map_err(|e| {
        at.err(format!("{kw}={f}: no stage named {f:?}, no such image in the store, and the pull failed: {e}"))
    })?;
    let id = img.config_digest.clone();
    Ok((Origin::Image(Box::new(img)), id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parser::parse;
    use crate::plan::{ConfigChange, Dest, Mount, Sharing, Source};
    use crate::store::image::{Descriptor, Manifest};
    use std::fs;

    /// Images by name, as a store or a registry would answer.
    #[derive(Default)]
    struct Fake(Vec<(String, Image)>);

    impl Images for Fake {
        fn resolve(&self, name: &str, _: Option<&Platform>, log: &mut Vec<String>) -> Result<Image, String> {
            log.push(format!("resolving {name}"));
            self.0.iter().find(|(n, _)| n == name).map(|(_, i)| i.clone()).ok_or_else(|| "no such image".into())
        }
    }

    /// Remote sources as a web server and a git remote would answer: a URL serves content
    /// named by the URL (`missing` in it: a 404), every ref is one commit.
    impl Remotes for Fake {
        fn http(&self, url: &str) -> Result<(String, Option<i64>), String> {
            if url.contains("missing") {
                return Err(format!("GET {url}: invalid response status 404"));
            }
            Ok((crate::store::image::digest_of(url.as_bytes()), Some(1_600_000_000)))
        }
        fn git(&self, g: &crate::fetch::git::GitRef) -> Result<(String, String), String> {
            let r = if g.ref_name.is_empty() { "refs/heads/main".to_string() } else { g.ref_name.clone() };
            Ok(("c".repeat(40), r))
        }
    }

    fn image(env: &[&str], onbuild: &[&str]) -> Image {
        let mut config = ImageConfig::scratch();
        config.config.env = env.iter().map(|e| e.to_string()).collect();
        config.config.on_build = onbuild.iter().map(|t| t.to_string()).collect();
        let d = |digest: &str| Descriptor {
            media_type: String::new(),
            digest: digest.into(),
            size: 0,
            annotations: Default::default(),
            platform: None,
        };
        Image {
            manifest_digest: "sha256:m".into(),
            manifest: Manifest {
                schema_version: 2,
                media_type: String::new(),
                config: d("sha256:c"),
                layers: vec![],
                annotations: Default::default(),
            },
            config_digest: "sha256:c".into(),
            config,
        }
    }

    /// BuildKit's SBOM scan extras (dockerfile2llb convert.go dispatchStages, isEnabledForStage),
    /// each row (Dockerfile, build args) -> per planned stage (name, stage, context).
    #[test]
    fn sbom_scan_extras_as_buildkit_decides_them() {
        type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [(&'a str, bool, bool)]);
        let rows: &[Row] = &[
            // declared with true in the stage: that stage only
            (
                "FROM scratch AS a\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nFROM scratch AS b\nCOPY --from=a / /\n",
                &[],
                &[("a", true, false), ("b", false, false)],
            ),
            // a global ARG holds for every stage; a stage's own false wins over it
            (
                "ARG BUILDKIT_SBOM_SCAN_STAGE=1\nFROM scratch AS a\nFROM scratch AS b\nARG BUILDKIT_SBOM_SCAN_STAGE=false\n\
                 FROM scratch\nCOPY --from=a / /\nCOPY --from=b / /\n",
                &[],
                &[("a", true, false), ("b", false, false), ("stage-2", true, false)],
            ),
            // a list names stages (unnamed ones as stage-N), exactly as written
            (
                "ARG BUILDKIT_SBOM_SCAN_STAGE=stage-0,b\nFROM scratch\nFROM scratch AS b\nFROM scratch AS c\n\
                 COPY --from=0 / /\nCOPY --from=b / /\nARG BUILDKIT_SBOM_SCAN_CONTEXT=c\n",
                &[],
                &[("stage-0", true, false), ("b", true, false), ("c", false, true)],
            ),
            (
                "FROM scratch AS a\nARG BUILDKIT_SBOM_SCAN_STAGE=\" a\"\nFROM scratch\nCOPY --from=a / /\n",
                &[],
                &[("a", false, false), ("stage-1", false, false)],
            ),
            // --build-arg overrides a declared ARG, and is nothing where none is declared
            (
                "FROM scratch AS a\nARG BUILDKIT_SBOM_SCAN_STAGE=false\nFROM scratch AS b\nFROM scratch\n\
                 COPY --from=a / /\nCOPY --from=b / /\n",
                &[("BUILDKIT_SBOM_SCAN_STAGE", "true")],
                &[("a", true, false), ("b", false, false), ("stage-2", false, false)],
            ),
            // ARG without a value takes the global's; a later one without a value changes nothing
            (
                "ARG BUILDKIT_SBOM_SCAN_CONTEXT=T\nFROM scratch AS a\nARG BUILDKIT_SBOM_SCAN_CONTEXT\n\
                 ARG BUILDKIT_SBOM_SCAN_STAGE=true\nARG BUILDKIT_SBOM_SCAN_STAGE\n",
                &[],
                &[("", true, true)],
            ),
            // a stage inherits its base stage's ARGs, read with its own name
            (
                "FROM scratch AS a\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nFROM a AS b\nFROM scratch AS c\n\
                 ARG BUILDKIT_SBOM_SCAN_STAGE=c\nFROM c AS d\nFROM scratch\nCOPY --from=b / /\nCOPY --from=d / /\n",
                &[],
                &[("a", true, false), ("b", true, false), ("c", true, false), ("d", false, false), ("stage-4", false, false)],
            ),
            // a Dockerfile of one stage calls it "" (its name lists nothing), unless a COPY --from
            // or a RUN --mount adds a state
            ("FROM scratch AS one\nARG BUILDKIT_SBOM_SCAN_CONTEXT=one\n", &[], &[("", false, false)]),
            (
                "FROM scratch AS one\nARG BUILDKIT_SBOM_SCAN_CONTEXT=one\nCOPY --from=img / /\n",
                &[],
                &[("one", false, true)],
            ),
        ];
        let images = Fake(vec![("img".into(), image(&[], &[]))]);
        for (df, args, want) in rows {
            let p = plan_of(df, &[], &images, args);
            assert!(p.stop.is_none(), "{df}: {:?}", p.stop);
            let got: Vec<(&str, bool, bool)> =
                p.stages.iter().map(|s| (s.sbom.name.as_str(), s.sbom.stage, s.sbom.context)).collect();
            assert_eq!(&got, want, "{df} {args:?}");
        }
        // never in RUN's environment nor in expansion (BuildKit's nonEnvArgs), still in history
        let p = plan_of(
            "FROM img\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nENV X=a${BUILDKIT_SBOM_SCAN_STAGE}\nRUN true\n",
            &[],
            &images,
            &[],
        );
        let steps = &p.stages[0].steps;
        assert!(
            matches!(&steps[1].action, Action::Config(ConfigChange::Env(e)) if e == &[("X".to_string(), "a".to_string())])
        );
        let Action::Run(r) = &steps[2].action else { panic!("{:?}", steps[2].action) };
        assert!(!r.env.iter().any(|e| e.contains("SBOM")), "{:?}", r.env);
        assert!(steps[2].created_by.contains("|1 BUILDKIT_SBOM_SCAN_STAGE=true "), "{}", steps[2].created_by);
    }

    /// What the stages read of the context, for the scan's context extra (BuildKit's ctxPaths).
    #[test]
    fn context_paths_are_what_the_stages_read() {
        let files = [("a.txt", "a"), ("b.txt", "b"), ("d/c", "c"), ("w[1].txt", "w")];
        let p = plan_of(
            "FROM img AS x\nCOPY a.txt /\nFROM img\nCOPY *.txt d /\nCOPY --from=x /a.txt /y\n\
             RUN --mount=type=bind,source=d,target=/m true\n",
            &files,
            &Fake(vec![("img".into(), image(&[], &[]))]),
            &[],
        );
        assert!(p.stop.is_none(), "{:?}", p.stop);
        let got: Vec<&str> = p.context_paths.iter().map(|s| s.as_str()).collect();
        // the sources as written (BuildKit's ctxPaths), not the --from one
        assert_eq!(got, ["*.txt", "a.txt", "d"]);
        let p = plan_of("FROM img\nCOPY . /\n", &files, &Fake(vec![("img".into(), image(&[], &[]))]), &[]);
        assert_eq!(p.context_paths.iter().collect::<Vec<_>>(), [""]);
        // cleaned as Go's path.Join("/", src); a bind mount's source resolved
        let p = plan_of(
            "FROM img\nCOPY ./d/../a.txt /b.txt /\nRUN --mount=type=bind,source=./d/c,target=/w true\n",
            &files,
            &Fake(vec![("img".into(), image(&[], &[]))]),
            &[],
        );
        assert!(p.stop.is_none(), "{:?}", p.stop);
        assert_eq!(p.context_paths.iter().collect::<Vec<_>>(), ["a.txt", "b.txt", "d/c"]);
    }

    /// Plans `dockerfile` over a context of `files` (path, content).
    fn plan_of(dockerfile: &str, files: &[(&str, &str)], images: &Fake, args: &[(&str, &str)]) -> Plan {
        plan_for(dockerfile, files, images, args, None)
    }

    /// [`plan_of`] for `build --platform`.
    fn plan_for(
        dockerfile: &str,
        files: &[(&str, &str)],
        images: &Fake,
        args: &[(&str, &str)],
        platform: Option<&str>,
    ) -> Plan {
        let t = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let f = t.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, c).unwrap();
        }
        let df = parse(dockerfile).unwrap();
        let stages = instructions::stages(&df).unwrap();
        let mut ctx = Context::open(t.path(), None).unwrap();
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let opts = Options {
            file: "Dockerfile",
            build_args: &args,
            target: None,
            network: Network::None,
            platform: platform.map(|p| Platform::parse(p).unwrap()),
            labels: &[],
            all_stages: false,
            set_global_args: &[],
            labs: false,
            devices: &Default::default(),
        };
        plan(&stages, df.escape, &mut ctx, images, images, &opts)
    }

    /// The plan of `dockerfile` alone, which must plan through.
    fn plain(dockerfile: &str) -> Plan {
        let p = plan_of(dockerfile, &[], &Fake::default(), &[]);
        assert!(p.stop.is_none(), "{p}");
        p
    }

    #[test]
    fn named_stages_are_replaced_for_their_own_platform() {
        // the platform each stage asks its name for, as dockerfile2llb's buildDispatchStates
        // does: its FROM --platform expanded with the global ARGs, else the one being built
        let df = "ARG P=linux/s390x\n\
                  FROM --platform=$BUILDPLATFORM bb AS tools\nRUN a\n\
                  FROM scratch AS deps\nCOPY a /a\n\
                  FROM --platform=$P bb AS fixed\nRUN b\n\
                  FROM --platform=$NOPE bb AS bad\nRUN c\n\
                  FROM deps\nRUN d\n";
        let df = parse(df).unwrap();
        let stages = instructions::stages(&df).unwrap();
        let lexer = Lexer::new(df.escape);
        let (host, target) = (Platform::host(), Platform::parse("linux/riscv64").unwrap());
        let meta = global_args(&stages, &lexer, "Dockerfile", &[], &target, &host).unwrap();
        let asked = std::cell::RefCell::new(Vec::new());
        let named = |n: &str, p: &Platform| {
            asked.borrow_mut().push(format!("{n} {p}"));
            n != "fixed"
        };
        let out = replace_named_stages(&stages, &lexer, &env_of(&meta), &target, &named).unwrap();
        assert_eq!(
            *asked.borrow(),
            [format!("tools {host}"), "deps linux/riscv64".into(), "fixed linux/s390x".into()],
            "an unnamed stage and one whose platform does not expand are not asked"
        );
        let shape = |s: &instructions::Stage| (s.base.clone(), s.platform.clone(), s.commands.len());
        // replaced: FROM the name, no instructions, the FROM --platform kept for planning
        assert_eq!(shape(&out.stages[0]), ("tools".into(), Some("$BUILDPLATFORM".into()), 0));
        assert_eq!(shape(&out.stages[1]), ("deps".into(), None, 0));
        assert_eq!(shape(&out.stages[2]), shape(&stages.stages[2]));
        assert_eq!(shape(&out.stages[3]), shape(&stages.stages[3]));
        assert_eq!(shape(&out.stages[4]), shape(&stages.stages[4]));
        assert!(replace_named_stages(&stages, &lexer, &env_of(&meta), &target, &|_, _| false).is_none());
    }

    #[test]
    fn metadata_steps_carry_their_config_change_and_key() {
        let p = plan_of(
            "FROM scratch\nENV A=1 B=${A}2\nARG V=d\nLABEL l=$V\nWORKDIR app\nCMD run\nENTRYPOINT [\"/e\"]\n",
            &[],
            &Fake::default(),
            &[("V", "given")],
        );
        assert!(p.stop.is_none(), "{p}");
        assert_eq!((p.stages.len(), p.total, p.target), (1, 7, 0));
        let s = &p.stages[0];
        assert!(matches!(s.base, Base::Scratch));
        let actions: Vec<String> = s.steps.iter().map(|s| format!("{:?}", s.action)).collect();
        // each value sees the environment from before its instruction (B=2, not B=12)
        assert_eq!(
            actions[0],
            format!(
                "{:?}",
                Action::Config(ConfigChange::Env(vec![("A".into(), "1".into()), ("B".into(), "2".into())]))
            )
        );
        assert_eq!(s.steps[1].created_by, "ARG V=given");
        assert_eq!(
            actions[2],
            format!("{:?}", Action::Config(ConfigChange::Labels(vec![("l".into(), "given".into())])))
        );
        assert_eq!(actions[3], format!("{:?}", Action::Workdir("/app".into())));
        assert_eq!(s.steps[3].inputs.text, "WORKDIR /app user=");
        // CMD's shell form goes through the shell; ENTRYPOINT after a CMD of the stage keeps it
        assert_eq!(s.steps[4].created_by, r#"CMD ["/bin/sh" "-c" "run"]"#);
        let Action::Config(ConfigChange::Entrypoint { keep_cmd, .. }) = &s.steps[5].action else { panic!("{s}") };
        assert!(keep_cmd);
        assert!(s.steps.iter().all(|s| s.counted && s.inputs.keyword == s.text.split(' ').next().unwrap()));
    }

    #[test]
    fn a_later_arg_replaces_an_env_of_the_same_name_as_in_buildkit() {
        // BuildKit keeps ENV and ARG values in one list (the LLB state's env): whichever was
        // set last wins, in expansion and in RUN's environment; the image config keeps ENV's.
        // docker 20.10's BuildKit built this Dockerfile with B=arg and D=envc in the config.
        let p = plan_of(
            "FROM scratch\nENV A=env\nARG A=arg\nENV B=${A}\nARG C=argc\nENV C=envc\nENV D=${C}\nARG E\nENV E=${E:-unset}\nRUN true\n",
            &[],
            &Fake::default(),
            &[],
        );
        assert!(p.stop.is_none(), "{p}");
        let steps = &p.stages[0].steps;
        assert_eq!(steps[2].created_by, "ENV B=arg");
        assert_eq!(steps[5].created_by, "ENV D=envc");
        // an ARG without a value (and no --build-arg) sets nothing
        assert_eq!(steps[7].created_by, "ENV E=unset");
        let Action::Run(r) = &steps[8].action else { panic!("{p}") };
        let want = ["A=arg", "B=arg", "C=envc", "D=envc", "E=unset"];
        assert_eq!(r.env.iter().filter(|e| !e.starts_with("PATH=")).cloned().collect::<Vec<_>>(), want);
        // the config keeps what ENV set
        let Action::Config(ConfigChange::Env(a)) = &steps[0].action else { panic!("{p}") };
        assert_eq!(a, &[("A".to_string(), "env".to_string())]);
        // a --build-arg given for an ARG without a default replaces the ENV as well
        let p = plan_of("FROM scratch\nENV A=env\nARG A\nENV B=$A\n", &[], &Fake::default(), &[("A", "given")]);
        assert_eq!(p.stages[0].steps[2].created_by, "ENV B=given");
    }

    #[test]
    fn run_steps_get_env_args_shell_and_script_mounts() {
        let df = "FROM base\nARG X=1\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo $X\nRUN <<EOF\n#!/bin/sh\necho hi\nEOF\nRUN --network=host [\"true\"]\n";
        let images = Fake(vec![("base".into(), image(&["FROM_IMAGE=yes"], &[]))]);
        let p = plan_of(df, &[], &images, &[]);
        assert!(p.stop.is_none(), "{p}");
        assert!(matches!(&p.stages[0].base, Base::Image { name, .. } if name == "base"));
        let run = |i: usize| match &p.stages[0].steps[i].action {
            Action::Run(r) => r.clone(),
            a => panic!("{a:?}"),
        };
        let r = run(2);
        assert_eq!(r.args, ["/bin/bash", "-c", "echo $X"]);
        // the image's ENV, then build args the config does not set, then a default PATH
        assert_eq!(r.env[..2], ["FROM_IMAGE=yes".to_string(), "X=1".to_string()]);
        assert!(r.env[2].starts_with("PATH="));
        assert_eq!(r.network, Network::None);
        assert_eq!(p.stages[0].steps[2].created_by, "RUN |1 X=1 /bin/bash -c echo $X # buildkit");
        assert_eq!(p.stages[0].steps[2].inputs.args.get("X").map(String::as_str), Some("1"));
        // a `#!` heredoc is mounted as a script and run directly
        let r = run(3);
        assert_eq!(r.args, ["/dev/pipes/EOF"]);
        assert_eq!(
            r.mounts,
            [Mount::Script { target: "/dev/pipes/EOF".into(), content: "#!/bin/sh\necho hi\n".into() }]
        );
        assert_eq!(run(4).network, Network::Host);
        // the host's network is BuildKit's network.host entitlement, checked on the whole plan
        let e = p.entitlements("Dockerfile", false, false, &Default::default()).unwrap_err().to_string();
        assert_eq!(
            e,
            "Dockerfile:9: RUN --network=host: network.host is not allowed (grant it with build --allow network.host)"
        );
        assert!(p.entitlements("Dockerfile", false, true, &Default::default()).is_ok());
    }

    #[test]
    fn run_mounts_planned_with_buildkits_defaults() {
        let p = plan_of(
            "FROM scratch AS st\nFROM scratch\nWORKDIR /w\nARG D=pip\n             RUN --mount=type=cache,target=.cache/$D --mount=type=secret,id=tok --mount=type=ssh --mount=type=bind,source=src,target=/src --mount=type=bind,from=st,target=/st --security=sandbox true\n             RUN --mount=type=secret,id=t,env=T --mount=type=tmpfs,target=/t,size=1k true\n",
            &[("src/a.txt", "a")],
            &Fake::default(),
            &[],
        );
        assert!(p.stop.is_none(), "{p}");
        let step = &p.stages[1].steps[2];
        let Action::Run(r) = &step.action else { panic!("{step:?}") };
        let targets: Vec<&str> = r.mounts.iter().map(|m| m.target()).collect();
        // parents first; a relative target is joined onto WORKDIR, the id is the target as written
        assert_eq!(targets, ["/src", "/st", "/w/.cache/pip", "/run/secrets/tok", "/run/buildkit/ssh_agent.0"]);
        let Mount::Cache(c) = &r.mounts[2] else { panic!() };
        assert_eq!((c.id.as_str(), c.sharing, c.readonly), (".cache/pip", Sharing::Shared, false));
        let Mount::Secret(sec) = &r.mounts[3] else { panic!() };
        assert_eq!((sec.mode, sec.required), (0o400, false));
        assert!(r.env.contains(&"SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0".to_string()), "{:?}", r.env);
        // the definitions are in the key, the context files a bind shows too; stage 0 is a dep
        assert!(step.inputs.text.contains("mount=[cache target=/w/.cache/pip"), "{}", step.inputs.text);
        assert!(step.inputs.files.contains_key("mount /src: src/a.txt"), "{:?}", step.inputs.files);
        assert_eq!(p.stages[1].deps, [0]);
        // env= only: no file; tmpfs size
        let Action::Run(r) = &p.stages[1].steps[3].action else { panic!() };
        assert!(matches!(&r.mounts[0], Mount::Secret(s) if s.target.is_none() && s.env.as_deref() == Some("T")));
        assert!(matches!(&r.mounts[1], Mount::Tmpfs { size: Some(1024), .. }));
        // insecure needs --allow
        let p = plan_of("FROM scratch\nRUN true\nRUN --security=insecure true\n", &[], &Fake::default(), &[]);
        let e = p.entitlements("Dockerfile", false, true, &Default::default()).unwrap_err().to_string();
        assert!(e.starts_with("Dockerfile:3: RUN --security=insecure: security.insecure is not allowed"), "{e}");
        assert!(p.entitlements("Dockerfile", true, false, &Default::default()).is_ok());
    }

    #[test]
    fn copy_sources_are_typed_and_fingerprinted_once() {
        let files = [("a.txt", "a"), ("b.txt", "b"), ("src/x.rs", "x"), ("Dockerfile", "")];
        let p = plan_of(
            "FROM scratch\nWORKDIR /w\nCOPY *.txt sub/\nCOPY src /s\nCOPY <<EOF <<'RAW' /h/\n$HOME\nEOF\n$HOME\nRAW\n",
            &files,
            &Fake::default(),
            &[],
        );
        assert!(p.stop.is_none(), "{p}");
        let copy = |i: usize| match &p.stages[0].steps[i].action {
            Action::Copy(c) => c,
            a => panic!("{a:?}"),
        };
        let c = copy(1);
        assert!(matches!(c.from, Origin::Context));
        let paths = [
            Source::Path { path: "a.txt".into(), extract: false },
            Source::Path { path: "b.txt".into(), extract: false },
        ];
        assert_eq!(c.sources, paths);
        assert_eq!(c.dest, Dest { path: "/w/sub".into(), dir: true });
        let keys: Vec<&String> = p.stages[0].steps[1].inputs.files.keys().collect();
        assert_eq!(keys, ["a.txt", "b.txt"]);
        assert_eq!(copy(2).dest, Dest { path: "/s".into(), dir: false });
        assert!(p.stages[0].steps[2].inputs.files.contains_key("src/x.rs"));
        // heredoc bodies: expanded unless the delimiter is quoted
        let h = &copy(3).sources;
        assert_eq!(h[0], Source::Heredoc { name: "EOF".into(), content: "\n".into() });
        assert_eq!(h[1], Source::Heredoc { name: "RAW".into(), content: "$HOME\n".into() });
        // BuildKit's history names a heredoc `<<NAME`, after the paths (dispatchCopy)
        assert_eq!(p.stages[0].steps[3].created_by, "COPY <<EOF <<RAW /h/ # buildkit");
    }

    #[test]
    fn copy_history_is_buildkits_commit_message() {
        // convert_copy.go dispatchCopy: `--parents`, `--chown`, `--chmod`, the paths, then the
        // heredocs; no `--from`, `--exclude` or `--link` (docker 20.10's BuildKit leaves out
        // `--from` too). The cache key still tells such steps apart.
        let files = [("a.txt", "a"), ("b.txt", "b")];
        let p = plan_of(
            "FROM scratch AS s\nFROM scratch\nCOPY --from=s --link --chown=1:2 /x /y\n\
             COPY --exclude=*.md --chmod=644 <<EOF a.txt /d/\nhi\nEOF\nCOPY a.txt /d/\n",
            &files,
            &Fake::default(),
            &[],
        );
        assert!(p.stop.is_none(), "{p}");
        let steps = &p.stages[1].steps;
        assert_eq!(steps[0].created_by, "COPY --chown=1:2 /x /y # buildkit");
        assert_eq!(steps[1].created_by, "COPY --chmod=644 a.txt <<EOF /d/ # buildkit");
        assert!(steps[0].inputs.text.contains("--from=s"), "{}", steps[0].inputs.text);
        assert!(steps[1].inputs.text.contains("--exclude=*.md"), "{}", steps[1].inputs.text);
        assert_ne!(steps[1].inputs.text, steps[2].inputs.text);
    }

    #[test]
    fn only_needed_stages_with_explicit_deps() {
        let p = plain(
            "FROM scratch AS a\nENV A=1\nFROM scratch AS unused\nFROM a AS b\nFROM scratch\nCOPY --from=b /x /y\nCOPY --from=0 /x /z\n",
        );
        let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
        assert_eq!(idx, [0, 2, 3]);
        assert_eq!(p.total, 2 + 1 + 3);
        assert!(matches!(p.stages[1].base, Base::Stage(0)));
        assert_eq!(p.stages[1].deps, [0]);
        assert_eq!(p.stages[2].deps, [2, 0]);
        let Action::Copy(c) = &p.stages[2].steps[0].action else { panic!() };
        assert!(matches!(c.from, Origin::Stage(2)));
        // a stage's state exists once it is built: the executor puts it in the key
        assert_eq!(p.stages[2].steps[0].inputs.extra, "");
        assert_eq!(c.sources, [Source::Path { path: "/x".into(), extract: false }]);
    }

    #[test]
    fn onbuild_triggers_read_stages_which_join_the_plan() {
        // BuildKit's resolveStages + initOnBuildTriggers: a stage a trigger of the base copies or
        // mounts from is built first, though nothing else needs it
        let img = image(&[], &["COPY --from=build /app /app", "RUN --mount=from=cfg,target=/c cat /c/x"]);
        let imgs = Fake(vec![("onb".into(), img)]);
        let df = "FROM scratch AS build\nFROM scratch AS unused\nFROM scratch AS cfg\nFROM onb\n";
        let p = plan_of(df, &[], &imgs, &[]);
        assert!(p.stop.is_none(), "{p}");
        let order: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
        assert_eq!(order, [0, 2, 3]);
        assert_eq!(p.stages[2].deps, [0, 2]);
        assert_eq!(p.total, 3);
        // a stage of the Dockerfile with triggers: the same for its children
        let df = "FROM scratch AS src\nFROM scratch AS base\nONBUILD COPY --from=src /f /f\nFROM base\n";
        let p = plan_of(df, &[], &imgs, &[]);
        assert!(p.stop.is_none(), "{p}");
        assert_eq!(p.stages.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(p.stages[2].deps, [1, 0]);
        // refused as BuildKit refuses them: a stage not before this one (itself included), an
        // index out of range
        for (trigger, want) in [
            (
                "COPY --from=later /f /f",
                "cannot copy from stage \"later\", it needs to be defined before current stage \"app\"",
            ),
            (
                "COPY --from=app /f /f",
                "cannot copy from stage \"app\", it needs to be defined before current stage \"app\"",
            ),
            (
                "RUN --mount=from=later,target=/m true",
                "cannot mount from stage \"later\" to \"/m\", stage needs to be defined before current command",
            ),
            ("COPY --from=5 /f /f", "invalid stage index 5"),
        ] {
            let imgs = Fake(vec![("onb".into(), image(&[], &[trigger]))]);
            let p = plan_of("FROM onb AS app\nFROM scratch AS later\nCOPY --from=app / /\n", &[], &imgs, &[]);
            let stop = p.stop.as_ref().map(|s| s.error.to_string()).unwrap_or_default();
            assert!(stop.contains(want), "{trigger}: {stop}");
        }
    }

    #[test]
    fn onbuild_triggers_are_uncounted_first_steps() {
        let img = image(&[], &["ENV T=1", "LABEL from=trigger"]);
        let p = plan_of("FROM base\nENV U=$T\n", &[], &Fake(vec![("base".into(), img)]), &[]);
        assert!(p.stop.is_none(), "{p}");
        let s = &p.stages[0];
        assert_eq!(s.onbuild.len(), 2);
        let counted: Vec<bool> = s.steps.iter().map(|s| s.counted).collect();
        assert_eq!(counted, [false, false, true]);
        assert_eq!(s.steps[2].created_by, "ENV U=1", "the trigger's ENV is seen by the stage");
        assert_eq!(p.total, 2);
    }

    #[test]
    fn planning_stops_where_a_step_cannot_be_planned() {
        // (Dockerfile, steps planned before the stop, the instruction shown, the error)
        let rows: &[(&str, usize, Option<&str>, &str)] = &[
            (
                "FROM scratch\nENV A=1\nCOPY missing /\nENV B=2\n",
                1,
                Some("COPY missing /"),
                "Dockerfile:3: COPY: source \"missing\" not found",
            ),
            (
                "FROM scratch AS a\nENV A=1\nFROM nosuch\nCOPY --from=a / /\n",
                1,
                Some("FROM nosuch"),
                "Dockerfile:3: FROM nosuch: not in the store, and the pull failed: no such image",
            ),
            ("FROM scratch\nEXPOSE 99999\n", 0, Some("EXPOSE 99999"), "Dockerfile:2: EXPOSE: invalid port"),
            ("FROM scratch\nENV X=${NOPE:?unset}\n", 0, Some("ENV X=${NOPE:?unset}"), "NOPE: unset"),
            ("FROM ${NOPE:?nobase}\n", 0, None, "Dockerfile:1: NOPE: nobase"),
        ];
        for (df, planned, shown, error) in rows {
            let p = plan_of(df, &[], &Fake::default(), &[]);
            let n: usize = p.stages.iter().map(|s| s.steps.len()).sum();
            assert_eq!(n, *planned, "{df}: {p}");
            let stop = p.stop.as_ref().expect(df);
            assert_eq!(stop.shown.as_deref(), *shown, "{df}");
            assert!(stop.error.to_string().contains(error), "{df}: {}", stop.error);
        }
    }

    #[test]
    fn onbuild_triggers_with_heredocs() {
        // BuildKit's parseOnBuild keeps a trigger's heredoc bodies after its line, each ended by
        // its name (bodies as written: `<<-` strips its tabs when the trigger runs); the stage
        // below runs it as one RUN
        let df = crate::dockerfile::parser::parse("FROM base\nONBUILD RUN <<-EOF\n\techo a\n\tEOF\n").unwrap();
        let st = crate::instructions::stages(&df).unwrap();
        let trig = "RUN <<-EOF\n\techo a\nEOF";
        assert_eq!(st.stages[0].commands[0].inst, Instruction::Onbuild(trig.into()));
        let img = image(&[], &[trig]);
        let p = plan_of("FROM base\n", &[], &Fake(vec![("base".into(), img)]), &[]);
        assert!(p.stop.is_none(), "{p}");
        let Action::Run(r) = &p.stages[0].steps[0].action else { panic!("{p}") };
        assert_eq!(r.args.last().map(String::as_str), Some("echo a\n"));
        // a trigger is one instruction (initOnBuildTriggers)
        let img = image(&[], &["RUN a\nRUN b"]);
        let p = plan_of("FROM base\n", &[], &Fake(vec![("base".into(), img)]), &[]);
        let stop = p.stop.as_ref().map(|s| s.error.to_string()).unwrap_or_default();
        assert!(stop.contains("onbuild trigger should be a single expression"), "{stop}");
    }

    #[test]
    fn plans_print() {
        let p = plan_of("FROM scratch AS x\nCOPY a /a\nRUN true\n", &[("a", "1")], &Fake::default(), &[]);
        let text = p.to_string();
        for want in [
            "stage 0 \"x\" (line 1): FROM scratch AS x",
            "copy from context to \"/a\"",
            "run: [\"/bin/sh\", \"-c\", \"true\"]",
            "key files: 1 fingerprint(s)",
        ] {
            assert!(text.contains(want), "{want:?} in:\n{text}");
        }
    }

    #[test]
    fn platform_args_follow_buildkits_scopes() {
        let host = Platform::host();
        // FROM lines see the automatic ARGs undeclared; a stage only once it declares them (a
        // --build-arg or a default wins); a global ARG's default may use them
        let df = "ARG G=$TARGETARCH\nFROM --platform=$BUILDPLATFORM scratch AS b\nENV U=x${TARGETARCH}\n\
                  ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH G\n\
                  ENV T=$TARGETPLATFORM/$TARGETOS/$TARGETARCH/$TARGETVARIANT B=$BUILDPLATFORM/$BUILDARCH G=$G\n\
                  FROM scratch\nARG TARGETARCH=mine\nENV A=$TARGETARCH\nCOPY --from=b /x /x\n";
        let p = plan_for(df, &[], &Fake::default(), &[], Some("linux/arm/v7"));
        assert!(p.stop.is_none(), "{p}");
        assert_eq!(p.stages[0].steps[0].created_by, "ENV U=x");
        let want = format!("ENV T=linux/arm/v7/linux/arm/v7 B={host}/{} G=arm", host.architecture);
        assert_eq!(p.stages[0].steps[2].created_by, want);
        assert_eq!(p.stages[1].steps[1].created_by, "ENV A=mine");
        // the stage's platform: FROM --platform's, else the build's; RUN is marked foreign only
        // where it is not this machine's
        assert_eq!(p.stages[0].platform, host);
        assert_eq!(p.stages[1].platform.to_string(), "linux/arm/v7");
        let p = plan_for(
            "FROM --platform=$BUILDPLATFORM scratch AS b\nRUN true\nFROM scratch\nRUN true\nCOPY --from=b /x /x\n",
            &[],
            &Fake::default(),
            &[],
            Some("linux/s390x"),
        );
        let Action::Run(native) = &p.stages[0].steps[0].action else { panic!("{p}") };
        let Action::Run(foreign) = &p.stages[1].steps[0].action else { panic!("{p}") };
        assert_eq!(native.platform, None);
        assert_eq!(foreign.platform.as_ref().map(|p| p.to_string()).as_deref(), Some("linux/s390x"));
        // a stage starts from a stage of its own platform; FROM --platform may not say another
        let p = plan_for(
            "FROM scratch AS a\nFROM --platform=linux/s390x a\n",
            &[],
            &Fake::default(),
            &[],
            Some("linux/arm64"),
        );
        let e = p.error().unwrap().to_string();
        assert!(
            e.contains("Dockerfile:2: FROM --platform=linux/s390x: the stage it starts from is built for linux/arm64"),
            "{e}"
        );
        let p = plan_of("FROM --platform=linux scratch\n", &[], &Fake::default(), &[]);
        assert!(p.error().unwrap().to_string().contains("FROM --platform: platform \"linux\""), "{p}");
    }
}
