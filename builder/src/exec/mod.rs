//! The executor: takes a plan's stages and steps in order and runs each through the build
//! cache. A step's key hashes its planned inputs with the state it starts from; a hit restores
//! the cached state, a miss runs the step's action (a config change or WORKDIR here, RUN in
//! `run.rs`, COPY/ADD in `copy.rs`) and records the result. It decides nothing the plan did not
//! say; `progress` prints the log. Images reach the store only in `commit`, names last, so a
//! failed build leaves no new name behind. Stages the plan does not order (neither needs the
//! other) run at once, up to `--jobs` (`run_parallel`): each in a worker of its own that shares
//! the store, the context, the log and the runtime's cancel flag, and sees the states of the
//! stages it depends on. A step's key depends only on its inputs and the state it starts from,
//! so a build run at once makes the same images as one run in order.

mod copy;
mod mounts;
pub mod progress;
mod run;
pub(crate) use run::host_resolv_conf;

use crate::cache::{self, Inputs};
use crate::context::{Context, ContextError, CtxEntry};
use crate::layer::{self, overlay, Layer};
use crate::plan::{Action, Base, BuildError, Origin, Plan, StagePlan, Step};
use crate::rootfs;
use crate::runner::Runtime;
use crate::store::image::{rfc3339, History, ImageConfig};
use crate::store::{Image, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// What the executor takes from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Dockerfile's name in messages.
    pub file: String,
    pub no_cache: bool,
    pub explain_cache: bool,
    /// The mtimes of what the build writes in its layers: SOURCE_DATE_EPOCH (or 0), or the files'
    /// own (`rewrite-timestamp=false`), as the build's outputs need (`build::with_output_times`).
    pub mtimes: layer::Mtimes,
    /// The time written in `created` (the image's and its history's).
    pub created: i64,
    /// `--timestamp now`: `created` is the build's time, so it stays out of cache keys (a cached
    /// step keeps the time it was built at, as in docker).
    pub created_now: bool,
    /// Where `created` came from, for `inspect` (e.g. "SOURCE_DATE_EPOCH=1700000000").
    pub created_from: String,
    /// RUN output is not streamed (shown only when the step fails).
    pub quiet: bool,
    /// Print each RUN's bundle, lower dirs and config.json to stderr.
    pub debug: bool,
    /// `build --secret`: what `RUN --mount=type=secret` mounts.
    pub secrets: crate::secrets::Secrets,
    /// `build --ssh`: the agents `RUN --mount=type=ssh` forwards, by id.
    pub ssh: std::collections::BTreeMap<String, crate::secrets::SshSource>,
    /// `build --jobs`: how many stages may run at once.
    pub jobs: usize,
    /// `build --add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent`, the resource limits:
    /// every RUN step gets them (and its cache key names all but the limits).
    pub run_extras: crate::spec::RunExtras,
    /// `build --no-cache-filter`: the stages (Dockerfile index -> the name given) whose steps
    /// run without the cache.
    pub no_cache_stages: BTreeMap<usize, String>,
}

/// The build context, shared by the stages that run at once (its walk and hashes are cached,
/// so reading it changes it).
pub struct SharedContext(Mutex<Context>);

impl SharedContext {
    pub fn new(ctx: Context) -> SharedContext {
        SharedContext(Mutex::new(ctx))
    }

    /// Runs `f` on the context (planning reads and caches through it).
    pub fn with<R>(&self, f: impl FnOnce(&mut Context) -> R) -> R {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.with(|c| c.path(rel))
    }

    pub fn subtree(&self, rel: &str) -> Result<Vec<CtxEntry>, ContextError> {
        self.with(|c| c.subtree(rel))
    }

    /// `Context::parents_tree` (`COPY --parents`).
    pub fn parents_tree(
        &self,
        root: &str,
        include: &crate::dockerignore::Matcher,
    ) -> Result<Vec<CtxEntry>, ContextError> {
        self.with(|c| c.parents_tree(root, include))
    }

    /// Saves the context's stat cache to the store.
    pub fn save(&self, store: &Store) {
        self.with(|c| c.save(store))
    }
}

/// ssh-agents of our own (`--ssh ID=KEY`), started on first use, ended with the build.
#[derive(Default)]
struct Agents {
    running: BTreeMap<String, crate::secrets::Agent>,
    dir: Option<crate::store::TempDir>,
}

/// The parent a `COPY --link` step is cached under instead of the state below it: its own
/// instruction text (so `explain` compares it with earlier builds of the same step).
fn link_parent(inputs: &Inputs) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(format!("link\0{}", inputs.text).as_bytes())))
}

/// What a step's result can depend on in the state below it, as its cache key's parent: the
/// layers and the platform. Every config field a step reads (RUN's env, user, working dir and
/// shell; WORKDIR's user; COPY's working dir, in its resolved destination) is in the step's own
/// key text, so a changed LABEL, ENV or ARG above a COPY does not invalidate it; BuildKit's
/// metadata instructions make no LLB op and leave the file ops below them cached the same way.
pub(crate) fn fs_id(config: &ImageConfig) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!("slipway-fs-v1\0{}\0{}\0{}\0", config.os, config.architecture, config.variant).as_bytes());
    for d in &config.rootfs.diff_ids {
        h.update(d.as_bytes());
        h.update([0]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The final states of a build's stages, by Dockerfile index.
pub type StageStates = BTreeMap<usize, State>;

/// A stage's state between steps.
#[derive(Debug, Clone)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    /// Config digest of this state: the parent identity for cache keys.
    pub id: String,
    /// No miss yet in this stage.
    pub cache_ok: bool,
    /// How many of `layers` and of the config's history entries are the base image's (of the
    /// stage's `FROM`, or of the stage it starts from): what the build did not write.
    pub base: (usize, usize),
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    /// The names set in the store.
    pub tags: Vec<String>,
    /// The store names to push (`--push`, `type=image,push=true`).
    pub push: Vec<crate::output::PushTarget>,
    /// The cache key of every step the build went through (what `--cache-to` exports).
    pub keys: Vec<String>,
    /// The config digest of each platform's result: `--cache-to ...,mode=min` exports the
    /// steps of their chains.
    pub results: Vec<String>,
    /// The cache mounts the build's RUN steps used (`--cache-to ...,cache-mounts=true`).
    pub cache_mounts: Vec<crate::store::mounts::Meta>,
    /// BuildKit's exporter response (`--metadata-file`).
    pub metadata: std::collections::BTreeMap<String, serde_json::Value>,
}

pub struct Executor<'a> {
    pub store: &'a Store,
    pub opts: &'a Options,
    /// The build context (COPY reads its files; the plan resolved which).
    pub ctx: &'a SharedContext,
    pub runtime: Runtime,
    pub progress: progress::Progress<'a>,
    /// The final state of each built stage, by Dockerfile index.
    done: BTreeMap<usize, State>,
    /// Steps logged so far (`Step N/M`).
    step: usize,
    /// The cache key of every step this build went through (hit or not): recorded with the
    /// image, so that `prune` keeps the cache of named images.
    keys: Vec<String>,
    /// `--cache-from` caches: a step missing from the store's cache is looked up there.
    pub imported: Vec<Arc<crate::registry::cache::Imported>>,
    /// The cache mounts RUN steps used (each once).
    cache_mounts: Vec<crate::store::mounts::Meta>,
    agents: Arc<Mutex<Agents>>,
}

impl<'a> Executor<'a> {
    pub fn new(
        store: &'a Store,
        opts: &'a Options,
        ctx: &'a SharedContext,
        runtime: Runtime,
        progress: progress::Progress<'a>,
    ) -> Executor<'a> {
        Executor {
            store,
            opts,
            ctx,
            runtime,
            progress,
            done: BTreeMap::new(),
            step: 0,
            keys: Vec::new(),
            imported: Vec::new(),
            cache_mounts: Vec::new(),
            agents: Arc::default(),
        }
    }

    /// An executor for one stage that runs beside others: it shares the store, the context,
    /// the log (through a handle labelled `name`), the runtime and the agents; it sees the
    /// states of `done` (the stages it depends on); its step numbers start after `step`.
    /// `opts`: its platform's (each platform has its own times: see `run_platforms`).
    fn worker(&self, name: &str, done: BTreeMap<usize, State>, step: usize, opts: &'a Options) -> Executor<'a> {
        Executor {
            store: self.store,
            opts,
            ctx: self.ctx,
            runtime: self.runtime.clone(),
            progress: self.progress.stage(name),
            done,
            step,
            keys: Vec::new(),
            imported: self.imported.clone(),
            cache_mounts: Vec::new(),
            agents: self.agents.clone(),
        }
    }

    /// The agent socket of `build --ssh` id `id`, starting our own agent for key files.
    fn agent_socket(&mut self, id: &str) -> Result<Option<PathBuf>, String> {
        let Some(src) = self.opts.ssh.get(id) else { return Ok(None) };
        match src {
            crate::secrets::SshSource::Socket(p) => Ok(Some(p.clone())),
            crate::secrets::SshSource::Keys(keys) => {
                let mut agents = match self.agents.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                if let Some(a) = agents.running.get(id) {
                    return Ok(Some(a.socket.clone()));
                }
                if agents.dir.is_none() {
                    agents.dir = Some(self.store.tempdir("ssh").map_err(|e| e.to_string())?);
                }
                let dir = agents.dir.as_ref().map(|d| d.path.clone()).unwrap_or_default();
                let sock = dir.join(format!("agent-{}.sock", agents.running.len()));
                let a = crate::secrets::start_agent(&sock, keys)?;
                agents.running.insert(id.to_string(), a);
                Ok(Some(sock))
            }
        }
    }

    pub fn err(&self, line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::At { file: self.opts.file.clone(), line, msg: msg.into(), excerpt: Box::default() }
    }

    /// The final state of each stage built so far, by Dockerfile index.
    pub fn states(&self) -> &BTreeMap<usize, State> {
        &self.done
    }

    /// Runs the plan; returns the target stage's final state.
    pub fn run(&mut self, plan: Plan) -> Result<State, BuildError> {
        let total = plan.total;
        if self.opts.jobs > 1 && has_independent_stages(&plan.stages) {
            self.run_parallel(plan.stages, total)?;
        } else {
            for stage in plan.stages {
                let index = stage.index;
                let st = self.stage(stage, total)?;
                self.done.insert(index, st);
            }
        }
        if let Some(stop) = plan.stop {
            if let Some(text) = stop.shown {
                self.step += 1;
                self.progress.step(self.step, total, &text);
            }
            for n in &stop.notes {
                self.progress.note(n);
            }
            return Err(stop.error);
        }
        self.done.get(&plan.target).cloned().ok_or_else(|| BuildError::Other("target stage was not built".into()))
    }

    /// Runs the stages, each as soon as the stages it depends on are built, up to `--jobs` at
    /// once (`schedule`); step numbers are those of a build in plan order.
    fn run_parallel(&mut self, stages: Vec<StagePlan>, total: usize) -> Result<(), BuildError> {
        let mut units = units(0, None, stages, total);
        // after the steps logged before (none in a fresh executor); a stop's step comes after
        for u in &mut units {
            u.first += self.step;
        }
        self.step += units.iter().map(|u| 1 + u.plan.steps.iter().filter(|s| s.counted).count()).sum::<usize>();
        for ((_, i), st) in self.schedule(units, &[self.opts])? {
            self.done.insert(i, st);
        }
        Ok(())
    }

    /// `--platform a,b,...` with `--jobs` above 1: the plans of all the platforms (label, plan)
    /// run in one scheduler, so that the stages of one platform run beside those of another,
    /// as BuildKit solves them. Each platform keeps its own step numbers (those of its build
    /// alone) and its lines say the platform (`[linux/arm64 stage-0 2/3]`), and its own
    /// options (its SOURCE_DATE_EPOCH, so its times, may differ from another's). The first step
    /// that fails stops all platforms. Returns each platform's target state and the final
    /// states of all its stages by Dockerfile index, in order. Plans that stopped early are for
    /// [`Executor::run`], one at a time.
    pub fn run_platforms(
        &mut self,
        plans: Vec<(String, Plan, &'a Options)>,
    ) -> Result<Vec<(State, StageStates)>, BuildError> {
        let mut all = Vec::new();
        let mut targets = Vec::new();
        let mut opts = Vec::new();
        for (g, (label, plan, o)) in plans.into_iter().enumerate() {
            if plan.stop.is_some() {
                return Err(BuildError::Other(format!("{label}: the plan stopped early: build it alone")));
            }
            targets.push(plan.target);
            opts.push(o);
            all.extend(units(g, Some(&label), plan.stages, plan.total));
        }
        let done = self.schedule(all, &opts)?;
        let mut out = Vec::new();
        for (g, t) in targets.into_iter().enumerate() {
            let stages: BTreeMap<usize, State> =
                done.iter().filter(|((pg, _), _)| *pg == g).map(|((_, i), s)| (*i, s.clone())).collect();
            let target =
                stages.get(&t).cloned().ok_or_else(|| BuildError::Other("target stage was not built".into()))?;
            out.push((target, stages));
        }
        Ok(out)
    }

    /// Runs `units` (stages of one or more plans), each as soon as the stages of its plan it
    /// depends on are built, up to `--jobs` at once. The first step that fails stops the build:
    /// the others are cancelled (their containers deleted), and its error names its stage.
    /// The keys and cache mounts used are recorded in unit order (a build in plan order's).
    /// Returns the states by (plan, Dockerfile index). `opts`: each plan's options.
    fn schedule(
        &mut self,
        units: Vec<Unit>,
        opts: &[&'a Options],
    ) -> Result<BTreeMap<(usize, usize), State>, BuildError> {
        self.progress.set_parallel();
        let n = units.len();
        let meta: Vec<(usize, usize, Vec<usize>, String, usize, usize)> = units
            .iter()
            .map(|u| (u.group, u.plan.index, u.plan.deps.clone(), u.name.clone(), u.first, u.total))
            .collect();
        let mut pending: Vec<Option<StagePlan>> = units.into_iter().map(|u| Some(u.plan)).collect();
        let mut done: BTreeMap<(usize, usize), State> = BTreeMap::new();
        let mut keys: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut mounts: Vec<Vec<crate::store::mounts::Meta>> = vec![Vec::new(); n];
        let mut failed: Option<BuildError> = None;
        let cancel = self.runtime.cancel.clone();
        type Done = (State, Vec<String>, Vec<crate::store::mounts::Meta>);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Done, BuildError>)>();
        std::thread::scope(|scope| {
            let mut running = 0;
            loop {
                if failed.is_none() && !crate::sys::interrupted() {
                    for k in 0..n {
                        if running >= self.opts.jobs {
                            break;
                        }
                        let (g, _, deps, name, first, total) = &meta[k];
                        let ready = pending[k].is_some() && deps.iter().all(|d| done.contains_key(&(*g, *d)));
                        let Some(sp) = pending[k].take_if(|_| ready) else { continue };
                        let seen = deps.iter().filter_map(|d| done.get(&(*g, *d)).map(|s| (*d, s.clone()))).collect();
                        let o = opts.get(*g).copied().unwrap_or(self.opts);
                        let mut w = self.worker(name, seen, *first, o);
                        let (tx, cancel, total) = (tx.clone(), cancel.clone(), *total);
                        scope.spawn(move || {
                            // a working directory of its own: mounting an overlay changes it
                            // for a moment (layer::overlay), which must not move the others'
                            let _ = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS);
                            let r = w.stage(sp, total);
                            if r.is_err() {
                                if cancel.load(Ordering::SeqCst) {
                                    w.progress.canceled();
                                } else {
                                    w.progress.fail();
                                }
                            }
                            let _ = tx.send((k, r.map(|st| (st, w.keys, w.cache_mounts))));
                        });
                        running += 1;
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((k, r)) = rx.recv() else { break };
                running -= 1;
                match r {
                    Ok((st, k_keys, k_mounts)) => {
                        done.insert((meta[k].0, meta[k].1), st);
                        keys[k] = k_keys;
                        mounts[k] = k_mounts;
                    }
                    // the first failure is the build's; what fails after it was cancelled
                    Err(e) if failed.is_none() => {
                        cancel.store(true, Ordering::SeqCst);
                        failed = Some(in_stage(e, &meta[k].3));
                    }
                    Err(_) => {}
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if crate::sys::interrupted() || pending.iter().any(Option::is_some) {
            return Err(BuildError::Other("interrupted".into()));
        }
        self.keys.extend(keys.into_iter().flatten());
        for m in mounts.into_iter().flatten() {
            if !self.cache_mounts.iter().any(|c| c.id == m.id && c.base == m.base) {
                self.cache_mounts.push(m);
            }
        }
        Ok(done)
    }

    fn stage(&mut self, stage: StagePlan, total: usize) -> Result<State, BuildError> {
        self.step += 1;
        self.progress.step(self.step, total, &stage.text);
        for n in &stage.notes {
            self.progress.note(n);
        }
        let mut st = match &stage.base {
            Base::Scratch => {
                let mut config = ImageConfig::scratch();
                config.os = stage.platform.os.clone();
                config.architecture = stage.platform.architecture.clone();
                config.variant = stage.platform.variant.clone().unwrap_or_default();
                let (id, _) = self.store.put_json(&config)?;
                State { config, layers: Vec::new(), id, cache_ok: true, base: (0, 0) }
            }
            Base::Stage(j) => {
                let mut s =
                    self.done.get(j).cloned().ok_or_else(|| self.err(stage.line, "FROM: stage was not built"))?;
                s.cache_ok = true;
                s
            }
            Base::Image { image, .. } => State {
                config: image.config.clone(),
                layers: image.layers(),
                id: image.config_digest.clone(),
                cache_ok: true,
                // a `--build-context NAME=DIR`'s image is the build's own writing
                base: if image.config.history.iter().any(|h| h.comment == crate::named_context::DIR_COMMENT) {
                    (0, 0)
                } else {
                    (image.layers().len(), image.config.history.len())
                },
            },
        };
        // `FROM scratch` (or a stage that is still scratch) is no image: no ID to print.
        let is_image = match &stage.base {
            Base::Scratch => false,
            Base::Image { .. } => true,
            Base::Stage(_) => !(st.layers.is_empty() && st.config.history.is_empty()),
        };
        self.progress.done(is_image.then_some(st.id.as_str()));
        // the base's ONBUILD triggers are the stage's first steps; the child does not inherit them
        st.config.config.on_build.clear();
        if !stage.onbuild.is_empty() {
            let n = stage.onbuild.len();
            self.progress.note(&format!("# Executing {n} build trigger{}", if n == 1 { "" } else { "s" }));
        }
        let filtered = self.opts.no_cache_stages.get(&stage.index).cloned();
        for s in stage.steps {
            self.step(&mut st, s, total, filtered.as_deref())?;
        }
        Ok(st)
    }

    /// One step through the cache (not looked up in it when `--no-cache-filter` named the
    /// stage: `filtered`).
    fn step(&mut self, st: &mut State, s: Step, total: usize, filtered: Option<&str>) -> Result<(), BuildError> {
        if crate::sys::interrupted() || self.runtime.cancel.load(Ordering::SeqCst) {
            return Err(BuildError::Other("interrupted".into()));
        }
        if s.counted {
            self.step += 1;
            self.progress.step(self.step, total, &s.text);
        }
        let mut inputs = s.inputs;
        if let Action::Copy(c) = &s.action {
            if let Origin::Stage(j) = c.from {
                let from = self.done.get(&j).ok_or_else(|| {
                    self.err(s.line, format!("{} --from={j}: stage is not built before this one", c.kw))
                })?;
                inputs.extra = fs_id(&from.config);
            }
        }
        if let Action::Run(r) = &s.action {
            // the state of each stage a mount shows (or a cache mount starts from)
            let mut extra = Vec::new();
            for m in &r.mounts {
                let (target, j) = match m {
                    crate::plan::Mount::Bind(b) => match b.from {
                        Origin::Stage(j) => (&b.target, j),
                        _ => continue,
                    },
                    crate::plan::Mount::Cache(c) => match c.from {
                        Some(Origin::Stage(j)) => (&c.target, j),
                        _ => continue,
                    },
                    _ => continue,
                };
                let from = self.done.get(&j).ok_or_else(|| {
                    self.err(s.line, format!("RUN --mount from={j}: stage is not built before this one"))
                })?;
                extra.push(format!("{target}={}", fs_id(&from.config)));
            }
            inputs.extra = extra.join(",");
            inputs.text.push_str(&self.opts.run_extras.key_text());
        }
        // The times the step writes are inputs too: a build with another SOURCE_DATE_EPOCH, or
        // asking for the files' own mtimes, must not reuse layers and configs stamped otherwise.
        let created = if self.opts.created_now { "now".to_string() } else { self.opts.created.to_string() };
        inputs.times = format!("{}, created {created}", self.opts.mtimes.describe());
        // `COPY --link`: the layer does not depend on the state below, so neither does the key
        // (its parent is the step's own text); a hit puts the cached layer on any state
        let link = matches!(&s.action, Action::Copy(c) if c.link);
        let parent = if link { link_parent(&inputs) } else { fs_id(&st.config) };
        let config_parent = st.id.clone();
        let key = cache::key(&format!("{parent}\0{}\0created={created}", self.opts.mtimes.key()), &inputs);
        self.keys.push(key.clone());
        if let (Some(name), false) = (filtered, self.opts.no_cache) {
            self.progress.note(&format!(" ---> Cache skipped: --no-cache-filter {name}"));
        }
        if !self.opts.no_cache && filtered.is_none() && (st.cache_ok || link) {
            let hit = match self.cache_get(&key) {
                Some(e) => Some(e),
                None => self.cache_import(&key)?,
            };
            if let Some(e) = hit {
                if link {
                    let l = e.layers.last().cloned().ok_or_else(|| {
                        BuildError::Other(format!("cache entry {key}: a --link step without its layer"))
                    })?;
                    st.config.rootfs.diff_ids.push(l.diff_id.clone());
                    st.layers.push(l);
                    self.history(st, s.created_by, false);
                    let (id, _) = self.store.put_json(&st.config)?;
                    st.id = id;
                    self.progress.cached(&st.id);
                    return Ok(());
                } else if e.config_parent == st.id {
                    st.config = self.store.read_json(&e.config)?;
                    st.layers = e.layers;
                    st.id = e.config;
                    self.progress.cached(&st.id);
                    return Ok(());
                } else if self.replay(st, &e, &s.action, s.created_by.clone())? {
                    self.progress.cached(&st.id);
                    return Ok(());
                }
            }
        }
        if self.opts.explain_cache && !self.opts.no_cache && filtered.is_none() {
            for w in self.explain(&parent, &inputs, st.cache_ok || link) {
                self.progress.note(&format!(" ---> Cache miss: {w}"));
            }
        }
        // a config change alters nothing a later step's key reads from the state below
        if !link && !matches!(s.action, Action::Config(_)) {
            st.cache_ok = false;
        }
        match s.action {
            Action::Config(change) => {
                let history = change.has_history();
                change.apply(&mut st.config);
                if history {
                    self.history(st, s.created_by, true);
                }
            }
            Action::Workdir(path) => self.workdir(st, s.line, path, s.created_by)?,
            Action::Run(r) => run::run(self, st, s.line, r, s.created_by)?,
            Action::Copy(c) => copy::copy(self, st, s.line, c, s.created_by)?,
        }
        let (id, _) = self.store.put_json(&st.config)?;
        st.id = id;
        self.cache_put(&key, &parent, &config_parent, inputs, st)?;
        self.progress.done(Some(&st.id));
        Ok(())
    }

    /// A hit on a state that has the cached step's layers below it but another config (a
    /// LABEL or ENV changed above): the step's layers (none for a config change, or a WORKDIR
    /// whose directory was there) go on this state and its config change is made again, with a
    /// history entry of this build. False when the entry's layers do not start with this
    /// state's (then the step runs).
    fn replay(&self, st: &mut State, e: &cache::Hit, action: &Action, created_by: String) -> Result<bool, BuildError> {
        let n = st.layers.len();
        let same_below = e.layers.len() >= n
            && e.layers[..n].iter().zip(&st.layers).all(|(a, b)| a.diff_id == b.diff_id)
            && (n == e.layers.len() || !matches!(action, Action::Config(_)));
        if !same_below {
            return Ok(false);
        }
        match action {
            Action::Config(change) => change.apply(&mut st.config),
            Action::Workdir(path) => st.config.config.working_dir = path.clone(),
            Action::Run(_) | Action::Copy(_) => {}
        }
        let added = &e.layers[n..];
        for l in added {
            st.config.rootfs.diff_ids.push(l.diff_id.clone());
            st.layers.push(l.clone());
        }
        if !matches!(action, Action::Config(c) if !c.has_history()) {
            self.history(st, created_by, added.is_empty());
        }
        let (id, _) = self.store.put_json(&st.config)?;
        st.id = id;
        Ok(true)
    }

    fn cache_get(&self, key: &str) -> Option<cache::Hit> {
        let e: cache::Hit = self.store.read_large_record(&format!("cache/steps/{key}.json"))?;
        let ok = self.store.has_blob(&e.config) && e.layers.iter().all(|l| self.store.has_blob(&l.digest));
        ok.then_some(e)
    }

    /// A step from a `--cache-from` cache: its blobs come into the store and its entry
    /// becomes the store's own (so the next build hits it locally).
    fn cache_import(&mut self, key: &str) -> Result<Option<cache::Hit>, BuildError> {
        for i in 0..self.imported.len() {
            let got = self.imported[i].fetch(self.store, key);
            let from = self.imported[i].from.to_string();
            match got {
                Ok(Some(e)) => {
                    self.store.write_record(&format!("cache/steps/{key}.json"), &e)?;
                    self.progress.note(&format!(" ---> Using cache from {from}"));
                    return Ok(Some(cache::Hit { config_parent: e.config_parent, config: e.config, layers: e.layers }));
                }
                Ok(None) => {}
                Err(e) => self.progress.note(&format!("WARNING: cache from {from}: {e}")),
            }
        }
        Ok(None)
    }

    fn cache_put(
        &self,
        key: &str,
        parent: &str,
        config_parent: &str,
        inputs: Inputs,
        st: &State,
    ) -> Result<(), BuildError> {
        let e = cache::Entry {
            parent: parent.to_string(),
            config_parent: config_parent.to_string(),
            inputs,
            config: st.id.clone(),
            layers: st.layers.clone(),
        };
        self.store.write_record(&format!("cache/steps/{key}.json"), &e)?;
        let _g = self.store.lock()?;
        let rel = format!("cache/parents/{}.json", parent.trim_start_matches("sha256:"));
        let mut keys: Vec<String> = self.store.read_record(&rel).unwrap_or_default();
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
            self.store.write_record(&rel, &keys)?;
        }
        Ok(())
    }

    fn explain(&self, parent: &str, now: &Inputs, chain_ok: bool) -> Vec<String> {
        if !chain_ok {
            return vec!["an earlier step was rebuilt".into()];
        }
        let rel = format!("cache/parents/{}.json", parent.trim_start_matches("sha256:"));
        let keys: Vec<String> = self.store.read_record(&rel).unwrap_or_default();
        let prev: Vec<cache::Entry> = keys
            .iter()
            .filter_map(|k| self.store.read_record(&format!("cache/steps/{k}.json")))
            .filter(|e: &cache::Entry| e.inputs.keyword == now.keyword)
            .collect();
        match prev.last() {
            None => vec!["no cached step of this kind on this parent".into()],
            Some(p) => {
                let e = cache::explain(&p.inputs, now);
                if e.is_empty() {
                    vec!["cached result is missing from the store".into()]
                } else {
                    e
                }
            }
        }
    }

    /// Adds a history entry (docker's format for BuildKit builds).
    /// The image's `created` is the time of its last step, as in docker.
    fn history(&self, st: &mut State, created_by: String, empty_layer: bool) {
        let created = rfc3339(self.opts.created);
        st.config.created = created.clone();
        st.config.history.push(History { created, created_by, comment: "buildkit.dockerfile.v0".into(), empty_layer });
    }

    /// The snapshot dirs of a state's layers (overlay lower dirs, bottom first).
    fn lowers(&self, layers: &[Layer]) -> Result<Vec<PathBuf>, BuildError> {
        layers.iter().map(|l| layer::snapshot(self.store, l).map_err(BuildError::from)).collect()
    }

    /// Writes `entries` as a new layer on `st`.
    fn push_layer(&self, st: &mut State, entries: &[layer::Entry], created_by: String) -> Result<(), BuildError> {
        let l = layer::commit_layer(self.store, entries, self.opts.mtimes)?;
        st.config.rootfs.diff_ids.push(l.diff_id.clone());
        st.layers.push(l);
        self.history(st, created_by, false);
        Ok(())
    }

    /// Diffs the upper dir of `rootfs` into a new layer on `st`.
    fn diff_layer(&self, st: &mut State, rootfs: &mut overlay::Rootfs, created_by: String) -> Result<(), BuildError> {
        self.diff_layer_with(st, rootfs, created_by, &std::collections::HashMap::new())
    }

    /// `diff_layer`, the entries named in `times` (layer paths) with those mtimes (`true`: a
    /// time of the source's own, see [`layer::Entry::own_mtime`]) rather than their files'.
    fn diff_layer_with(
        &self,
        st: &mut State,
        rootfs: &mut overlay::Rootfs,
        created_by: String,
        times: &std::collections::HashMap<String, (i64, bool)>,
    ) -> Result<(), BuildError> {
        rootfs.unmount()?;
        let mut entries = layer::plan_diff(&rootfs.upper)?;
        for e in &mut entries {
            if let Some(&(t, own)) = times.get(&e.path) {
                (e.mtime, e.own_mtime) = (Some(t), own);
            }
        }
        self.push_layer(st, &entries, created_by)
    }

    /// WORKDIR: the config's working dir; the directory is made (owned by USER) when missing.
    fn workdir(&mut self, st: &mut State, line: usize, path: String, created_by: String) -> Result<(), BuildError> {
        st.config.config.working_dir = path.clone();
        if path == "/" {
            self.history(st, created_by, true);
            return Ok(());
        }
        let lowers = self.lowers(&st.layers)?;
        let mut rfs = overlay::mount_rootfs(self.store, &lowers, true)?;
        let target = rootfs::resolve_in_root(&rfs.merged, &path, true);
        if target.is_dir() {
            drop(rfs);
            self.history(st, created_by, true);
            return Ok(());
        }
        let owner = if st.config.config.user.is_empty() {
            None
        } else {
            let id = rootfs::resolve_user(&rfs.merged, &st.config.config.user)
                .map_err(|e| self.err(line, format!("WORKDIR: {e}")))?;
            Some((id.uid, id.gid))
        };
        // the directories made: SOURCE_DATE_EPOCH's time where the layer keeps the files' own
        let mut made = std::collections::HashMap::new();
        if let layer::Mtimes::Kept(Some(t)) = self.opts.mtimes {
            let mut prefix = String::new();
            for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
                prefix = format!("{prefix}/{c}");
                if !rootfs::resolve_in_root(&rfs.merged, &prefix, true).exists() {
                    made.insert(prefix.trim_start_matches('/').to_string(), (t, false));
                }
            }
        }
        rootfs::mkdir_all(&rfs.merged, &path, owner).map_err(|e| self.err(line, format!("WORKDIR {path}: {e}")))?;
        self.diff_layer_with(st, &mut rfs, created_by, &made)
    }

    /// Writes the image of the final state unchanged, so its ID is the last step's ` ---> ID`
    /// (the outputs name it, or write it elsewhere).
    /// `created_from`: where the time in its config came from (its platform's options' when
    /// several platforms were built by this executor).
    pub fn image(&mut self, st: &State, created_from: &str) -> Result<Image, BuildError> {
        let descs: Vec<_> = st.layers.iter().map(Layer::descriptor).collect();
        let (manifest, id) = self.store.put_image(&st.config, &descs)?;
        // what `inspect` shows as CreatedFrom (the config has the time, not where it came from)
        let rel = format!("cache/created/{}.json", id.trim_start_matches("sha256:"));
        if self.store.read_record::<String>(&rel).as_deref() != Some(created_from) {
            self.store.write_record(&rel, &created_from.to_string())?;
        }
        Ok(self.store.image_by_manifest(&manifest.digest)?)
    }

    /// Records which cache entries built the image (or index) `manifest`, with those of earlier
    /// builds of it, so that `prune` keeps the cache of named images.
    pub fn record_keys(&self, manifest: &str) -> Result<(), BuildError> {
        let rel = format!("cache/images/{}.json", manifest.trim_start_matches("sha256:"));
        let _g = self.store.lock()?;
        let before: Vec<String> = self.store.read_record(&rel).unwrap_or_default();
        let mut keys = before.clone();
        keys.extend(self.keys.iter().cloned());
        keys.sort();
        keys.dedup();
        if keys != before {
            self.store.write_record(&rel, &keys)?; // a no-op rebuild writes nothing
        }
        Ok(())
    }

    /// The cache key of every step the build went through.
    /// Keys and cache mounts of other runs of the same build (the other platforms), recorded
    /// with this one's.
    pub fn add_keys(&mut self, keys: Vec<String>, mounts: Vec<crate::store::mounts::Meta>) {
        self.keys.extend(keys);
        for m in mounts {
            if !self.cache_mounts.iter().any(|c| c.id == m.id && c.base == m.base) {
                self.cache_mounts.push(m);
            }
        }
    }

    /// The cache keys of the steps run so far.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    pub fn take_keys(&mut self) -> Vec<String> {
        std::mem::take(&mut self.keys)
    }

    /// The cache mounts the build's RUN steps used.
    pub fn take_cache_mounts(&mut self) -> Vec<crate::store::mounts::Meta> {
        std::mem::take(&mut self.cache_mounts)
    }
}

/// A stage of one of the plans a scheduler runs.
struct Unit {
    /// Which plan (platform) it is of.
    group: usize,
    plan: StagePlan,
    /// Its name in the log: the stage's, after the platform's when there are several.
    name: String,
    /// The step number before its first step (a build of its plan in order).
    first: usize,
    /// Its plan's step count.
    total: usize,
}

/// The stages of plan `group` as units: step numbers as the plan's build in order, names
/// after `label` (the platform) when given.
fn units(group: usize, label: Option<&str>, stages: Vec<StagePlan>, total: usize) -> Vec<Unit> {
    let mut step = 0;
    let mut out = Vec::with_capacity(stages.len());
    for s in stages {
        let stage = s.name.clone().unwrap_or_else(|| format!("stage-{}", s.index));
        let name = match label {
            Some(l) => format!("{l} {stage}"),
            None => stage,
        };
        let first = step;
        step += 1 + s.steps.iter().filter(|s| s.counted).count();
        out.push(Unit { group, plan: s, name, first, total });
    }
    out
}

/// Two of the stages could run at once: neither needs the other, directly or not.
fn has_independent_stages(stages: &[StagePlan]) -> bool {
    // the stages each needs (itself included); the plan lists a stage after those it needs
    let mut needs: BTreeMap<usize, std::collections::BTreeSet<usize>> = BTreeMap::new();
    for s in stages {
        let mut set: std::collections::BTreeSet<usize> = [s.index].into();
        for d in &s.deps {
            if let Some(n) = needs.get(d) {
                set.extend(n.iter().copied());
            }
        }
        needs.insert(s.index, set);
    }
    stages.iter().enumerate().any(|(i, a)| {
        stages[i + 1..].iter().any(|b| !needs[&b.index].contains(&a.index) && !needs[&a.index].contains(&b.index))
    })
}

/// An error of a stage that ran beside others: it names the stage.
fn in_stage(e: BuildError, name: &str) -> BuildError {
    match e {
        BuildError::At { file, line, msg, excerpt } => {
            BuildError::At { file, line, msg: format!("stage {name}: {msg}"), excerpt }
        }
        BuildError::Other(m) => BuildError::Other(format!("stage {name}: {m}")),
        e => e,
    }
}
