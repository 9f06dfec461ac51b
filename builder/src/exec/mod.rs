//! The executor: takes a plan's stages and steps in order and runs each through the build
//! cache. A step's key hashes its planned inputs with the state it starts from; a hit restores
//! the cached state, a miss runs the step's action (a config change or WORKDIR here, RUN in
//! `run.rs`, COPY/ADD in `copy.rs`) and records the result. It decides nothing the plan did not
//! say; `progress` prints the log. Images reach the store only in `commit`, names last, so a
//! failed build leaves no new name behind.

mod copy;
mod mounts;
pub mod progress;
mod run;

use crate::cache::{self, Inputs};
use crate::context::Context;
use crate::layer::{self, overlay, Layer};
use crate::plan::{Action, Base, BuildError, Origin, Plan, StagePlan, Step};
use crate::rootfs;
use crate::runner::Runtime;
use crate::store::image::{rfc3339, History, ImageConfig};
use crate::store::{Image, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What the executor takes from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Dockerfile's name in messages.
    pub file: String,
    pub no_cache: bool,
    pub explain_cache: bool,
    /// SOURCE_DATE_EPOCH, or 0: the mtime of every file the build writes in a layer.
    pub epoch: u64,
    /// The time written in `created` (the image's and its history's).
    pub created: u64,
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
}

/// A stage's state between steps.
#[derive(Debug, Clone)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    /// Config digest of this state: the parent identity for cache keys.
    pub id: String,
    /// No miss yet in this stage.
    pub cache_ok: bool,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    /// The names set in the store.
    pub tags: Vec<String>,
    /// The store names to push (`--push`, `type=image,push=true`).
    pub push: Vec<String>,
    /// The cache key of every step the build went through (what `--cache-to` exports).
    pub keys: Vec<String>,
    /// The cache mounts the build's RUN steps used (`--cache-to ...,cache-mounts=true`).
    pub cache_mounts: Vec<crate::store::mounts::Meta>,
    /// BuildKit's exporter response (`--metadata-file`).
    pub metadata: std::collections::BTreeMap<String, serde_json::Value>,
}

pub struct Executor<'a> {
    pub store: &'a Store,
    pub opts: &'a Options,
    /// The build context (COPY reads its files; the plan resolved which).
    pub ctx: &'a mut Context,
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
    pub imported: Vec<crate::registry::cache::Imported>,
    /// The cache mounts RUN steps used (each once).
    cache_mounts: Vec<crate::store::mounts::Meta>,
    /// ssh-agents of our own (`--ssh ID=KEY`), started on first use, ended with the build.
    agents: BTreeMap<String, crate::secrets::Agent>,
    agents_dir: Option<crate::store::TempDir>,
}

impl<'a> Executor<'a> {
    pub fn new(
        store: &'a Store,
        opts: &'a Options,
        ctx: &'a mut Context,
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
            agents: BTreeMap::new(),
            agents_dir: None,
        }
    }

    /// The agent socket of `build --ssh` id `id`, starting our own agent for key files.
    fn agent_socket(&mut self, id: &str) -> Result<Option<PathBuf>, String> {
        let Some(src) = self.opts.ssh.get(id) else { return Ok(None) };
        match src {
            crate::secrets::SshSource::Socket(p) => Ok(Some(p.clone())),
            crate::secrets::SshSource::Keys(keys) => {
                if let Some(a) = self.agents.get(id) {
                    return Ok(Some(a.socket.clone()));
                }
                if self.agents_dir.is_none() {
                    self.agents_dir = Some(self.store.tempdir("ssh").map_err(|e| e.to_string())?);
                }
                let dir = self.agents_dir.as_ref().map(|d| d.path.clone()).unwrap_or_default();
                let sock = dir.join(format!("agent-{}.sock", self.agents.len()));
                let a = crate::secrets::start_agent(&sock, keys)?;
                self.agents.insert(id.to_string(), a);
                Ok(Some(sock))
            }
        }
    }

    pub fn err(&self, line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::At { file: self.opts.file.clone(), line, msg: msg.into(), excerpt: Box::default() }
    }

    /// Runs the plan; returns the target stage's final state.
    pub fn run(&mut self, plan: Plan) -> Result<State, BuildError> {
        let total = plan.total;
        for stage in plan.stages {
            let index = stage.index;
            let st = self.stage(stage, total)?;
            self.done.insert(index, st);
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

    fn stage(&mut self, stage: StagePlan, total: usize) -> Result<State, BuildError> {
        self.step += 1;
        self.progress.step(self.step, total, &stage.text);
        for n in &stage.notes {
            self.progress.note(n);
        }
        let mut st = match &stage.base {
            Base::Scratch => {
                let config = ImageConfig::scratch();
                let (id, _) = self.store.put_json(&config)?;
                State { config, layers: Vec::new(), id, cache_ok: true }
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
        for s in stage.steps {
            self.step(&mut st, s, total)?;
        }
        Ok(st)
    }

    /// One step through the cache.
    fn step(&mut self, st: &mut State, s: Step, total: usize) -> Result<(), BuildError> {
        if crate::sys::interrupted() {
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
                inputs.extra = from.id.clone();
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
                extra.push(format!("{target}={}", from.id));
            }
            inputs.extra = extra.join(",");
        }
        // The times the step writes are inputs too: a build with another SOURCE_DATE_EPOCH must
        // not reuse layers and configs stamped with the old one.
        let created = if self.opts.created_now { "now".to_string() } else { self.opts.created.to_string() };
        let key = cache::key(&format!("{}\0mtime={}\0created={created}", st.id, self.opts.epoch), &inputs);
        self.keys.push(key.clone());
        if !self.opts.no_cache && st.cache_ok {
            let hit = match self.cache_get(&key) {
                Some(e) => Some(e),
                None => self.cache_import(&key)?,
            };
            if let Some(e) = hit {
                st.config = self.store.read_json(&e.config)?;
                st.layers = e.layers;
                st.id = e.config;
                self.progress.cached(&st.id);
                return Ok(());
            }
        }
        if self.opts.explain_cache && !self.opts.no_cache {
            for w in self.explain(&st.id, &inputs, st.cache_ok) {
                self.progress.note(&format!(" ---> Cache miss: {w}"));
            }
        }
        st.cache_ok = false;
        let parent = st.id.clone();
        match s.action {
            Action::Config(change) => {
                change.apply(&mut st.config);
                self.history(st, s.created_by, true);
            }
            Action::Workdir(path) => self.workdir(st, s.line, path, s.created_by)?,
            Action::Run(r) => run::run(self, st, s.line, r, s.created_by)?,
            Action::Copy(c) => copy::copy(self, st, s.line, c, s.created_by)?,
        }
        let (id, _) = self.store.put_json(&st.config)?;
        st.id = id;
        self.cache_put(&key, &parent, inputs, st)?;
        self.progress.done(Some(&st.id));
        Ok(())
    }

    fn cache_get(&self, key: &str) -> Option<cache::Hit> {
        let e: cache::Hit = self.store.read_record(&format!("cache/steps/{key}.json"))?;
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
                    return Ok(Some(cache::Hit { config: e.config, layers: e.layers }));
                }
                Ok(None) => {}
                Err(e) => self.progress.note(&format!("WARNING: cache from {from}: {e}")),
            }
        }
        Ok(None)
    }

    fn cache_put(&self, key: &str, parent: &str, inputs: Inputs, st: &State) -> Result<(), BuildError> {
        let e = cache::Entry { parent: parent.to_string(), inputs, config: st.id.clone(), layers: st.layers.clone() };
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
        let l = layer::commit_layer(self.store, entries, self.opts.epoch)?;
        st.config.rootfs.diff_ids.push(l.diff_id.clone());
        st.layers.push(l);
        self.history(st, created_by, false);
        Ok(())
    }

    /// Diffs the upper dir of `rootfs` into a new layer on `st`.
    fn diff_layer(&self, st: &mut State, rootfs: &mut overlay::Rootfs, created_by: String) -> Result<(), BuildError> {
        rootfs.unmount()?;
        let entries = layer::plan_diff(&rootfs.upper)?;
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
        rootfs::mkdir_all(&rfs.merged, &path, owner).map_err(|e| self.err(line, format!("WORKDIR {path}: {e}")))?;
        self.diff_layer(st, &mut rfs, created_by)
    }

    /// Writes the image of the final state unchanged, so its ID is the last step's ` ---> ID`
    /// (the outputs name it, or write it elsewhere).
    pub fn image(&mut self, st: &State) -> Result<Image, BuildError> {
        let descs: Vec<_> = st.layers.iter().map(Layer::descriptor).collect();
        let (manifest, id) = self.store.put_image(&st.config, &descs)?;
        // what `inspect` shows as CreatedFrom (the config has the time, not where it came from)
        let rel = format!("cache/created/{}.json", id.trim_start_matches("sha256:"));
        if self.store.read_record::<String>(&rel).as_deref() != Some(&self.opts.created_from) {
            self.store.write_record(&rel, &self.opts.created_from)?;
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
    pub fn take_keys(&mut self) -> Vec<String> {
        std::mem::take(&mut self.keys)
    }

    /// The cache mounts the build's RUN steps used.
    pub fn take_cache_mounts(&mut self) -> Vec<crate::store::mounts::Meta> {
        std::mem::take(&mut self.cache_mounts)
    }
}
