//! The build: parse, pick the stages the target needs, then walk each stage's instructions
//! through the cache, printing docker's `Step N/M` log. One function per instruction lives in
//! `dispatch.rs`, COPY/ADD in `copy.rs`, the stage graph in `plan/graph.rs`. Images reach the
//! store only at the end (names last), so a failed build leaves no new name behind.

mod copy;
mod dispatch;
pub mod progress;

use crate::cache::{self, Inputs};
use crate::context::{Context, ContextError};
use crate::dockerfile::parser;
use crate::dockerfile::shell::{Env, Lexer};
use crate::instructions::{self, Command, Instruction, Stages};
use crate::layer::Layer;
use crate::plan::graph;
use crate::runner::Runtime;
use crate::spec::Network;
use crate::store::image::{History, ImageConfig};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub runtime: PathBuf,
    pub network: Network,
    pub labels: Vec<(String, String)>,
    pub quiet: bool,
    /// `--progress`, resolved against the terminal.
    pub progress: progress::Mode,
    pub explain_cache: bool,
    /// SOURCE_DATE_EPOCH, or 0: the mtime of every file the build writes in a layer.
    pub epoch: u64,
    /// The time written in `created` (the image's and its history's); `epoch` unless
    /// `--timestamp` says otherwise.
    pub created: u64,
    /// `--timestamp now`: `created` is the build's time, so it stays out of cache keys (a cached
    /// step keeps the time it was built at, as in docker).
    pub created_now: bool,
    /// Where `created` came from, for `inspect` (e.g. "SOURCE_DATE_EPOCH=1700000000").
    pub created_from: String,
    /// Print each RUN's plan (bundle, lower dirs, config.json) to stderr.
    pub debug: bool,
    /// How base images not in the store (all of them, with `--pull`) come from registries.
    pub remote: crate::registry::base::Remote,
    /// `--platform`: the platform base images are pulled for (`FROM --platform` wins).
    pub platform: Option<crate::registry::Platform>,
    /// `--cache-from`: caches whose steps count as hits in this build.
    pub cache_from: Vec<crate::registry::cache::Spec>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {msg}")]
    At { file: String, line: usize, msg: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("{0}")]
    Other(String),
}

/// The state of a stage between steps.
#[derive(Debug, Clone)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
    /// ARGs declared in this stage, in order, with their values.
    pub args: Vec<(String, Option<String>)>,
    /// A CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// Config digest of this state: the parent identity for cache keys.
    pub id: String,
    /// No miss yet in this stage.
    pub cache_ok: bool,
}

impl State {
    /// Variables for word expansion: ARG values, overridden by ENV (ENV wins).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        v.extend(self.config.env_pairs());
        v
    }

    /// Build args with values (what RUN sees in its environment).
    pub fn arg_values(&self) -> BTreeMap<String, String> {
        self.args.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect()
    }
}

/// What a step does once its inputs are known.
pub enum Action {
    /// A metadata-only change: the new config (history added by the step).
    Meta {
        config: Box<ImageConfig>,
        created_by: String,
    },
    Run(dispatch::RunPlan),
    Copy(copy::CopyPlan),
    Workdir {
        path: String,
        created_by: String,
    },
}

/// Builder state shared by all stages of one build.
pub struct Builder<'a> {
    pub store: &'a Store,
    pub opts: &'a BuildOptions,
    pub file: String,
    pub lexer: Lexer,
    pub ctx: Context,
    pub progress: progress::Progress<'a>,
    pub runtime: Runtime,
    pub stages: Stages,
    /// Global ARGs with values.
    pub meta: Vec<(String, Option<String>)>,
    /// Final state of each built stage.
    pub done: Vec<Option<State>>,
    step: usize,
    total: usize,
    /// The cache key of every step this build went through (hit or not): recorded with the
    /// image, so that `prune` keeps the cache of named images.
    keys: Vec<String>,
    /// `--cache-from` caches, read at the start.
    imported: Vec<crate::registry::cache::Imported>,
}

/// The result of a build.
#[derive(Debug, Clone)]
pub struct Built {
    pub id: String,
    pub manifest: crate::store::image::Descriptor,
    pub tags: Vec<String>,
    /// The cache key of every step the build went through (what `--cache-to` exports).
    pub keys: Vec<String>,
}

/// Runs a build.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    let df_path = match &opts.dockerfile {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => p.clone(),
        None => opts.context.join("Dockerfile"),
    };
    let file = opts.dockerfile.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "Dockerfile".into());
    let src = std::fs::read_to_string(&df_path)
        .map_err(|e| BuildError::Other(format!("read Dockerfile {}: {e}", df_path.display())))?;
    let df = parser::parse(&src).map_err(|e| BuildError::At { file: file.clone(), line: e.line, msg: e.msg })?;
    let stages =
        instructions::stages(&df).map_err(|e| BuildError::At { file: file.clone(), line: e.line, msg: e.msg })?;
    let tags = opts.tags.iter().map(|t| crate::store::normalize_ref(t)).collect::<Result<Vec<_>, _>>()?;
    let _in_use = store.use_lock()?;
    let ctx = Context::open_for(&opts.context, Some(store), Some(&df_path))?;
    let out: Box<dyn std::io::Write> = if opts.quiet { Box::new(std::io::sink()) } else { Box::new(std::io::stdout()) };
    let n = stages.stages.len();
    let mut b = Builder {
        store,
        opts,
        file,
        lexer: Lexer::new(df.escape),
        ctx,
        progress: progress::Progress::new(opts.progress, out),
        runtime: Runtime { bin: opts.runtime.clone(), state_root: store.root.join("tmp/runtime") },
        stages,
        meta: Vec::new(),
        done: vec![None; n],
        step: 0,
        total: 0,
        keys: Vec::new(),
        imported: Vec::new(),
    };
    for from in &opts.cache_from {
        match crate::registry::cache::import(&opts.remote.options, from) {
            Ok(i) => {
                b.progress.note(&format!("importing cache from {from}: {} steps", i.len()));
                b.imported.push(i);
            }
            // as BuildKit does: an unreadable cache is a warning, the build goes on without it
            Err(e) => b.progress.note(&format!("WARNING: cache from {from} not imported: {e}")),
        }
    }
    let res = b.run();
    b.ctx.save(store);
    let final_state = res?;
    b.commit(final_state, tags)
}

impl<'a> Builder<'a> {
    pub fn err(&self, line: usize, msg: impl Into<String>) -> BuildError {
        BuildError::At { file: self.file.clone(), line, msg: msg.into() }
    }

    /// Expands a word with `env`.
    pub fn expand(&self, line: usize, word: &str, env: &dyn Env) -> Result<String, BuildError> {
        self.lexer.process_word(word, env).map_err(|e| self.err(line, e.0))
    }

    fn build_arg(&self, name: &str) -> Option<String> {
        self.opts.build_args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn run(&mut self) -> Result<State, BuildError> {
        // global ARGs
        for cmd in self.stages.meta_args.clone() {
            if let Instruction::Arg(list) = &cmd.inst {
                for (k, d) in list {
                    let env: Vec<(String, String)> =
                        self.meta.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
                    let d = match d {
                        Some(d) => Some(self.expand(cmd.line, d, &env)?),
                        None => None,
                    };
                    let v = self.build_arg(k).or(d).or_else(|| dispatch::automatic_arg(k));
                    self.meta.push((k.clone(), v));
                }
            }
        }
        let meta_env: Vec<(String, String)> =
            self.meta.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
        let g = graph::Graph::new(&self.stages, &self.lexer, &meta_env).map_err(|(line, msg)| self.err(line, msg))?;
        let target = match &self.opts.target {
            Some(t) => {
                g.stage_index(t).ok_or_else(|| BuildError::Other(format!("target stage \"{t}\" could not be found")))?
            }
            None => self.stages.stages.len() - 1,
        };
        if !self.opts.labels.is_empty() {
            // As docker's classic builder: `--label` is a LABEL step at the end of the target
            // stage, so it goes through the cache and the last ` ---> ID` is the image's.
            let stage = &mut self.stages.stages[target];
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
            let original = format!(
                "LABEL {}",
                self.opts.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            );
            stage.commands.push(Command { inst: Instruction::Label(pairs), line, original });
        }
        let order = g.needed(target);
        self.total = order.iter().map(|&i| 1 + self.stages.stages[i].commands.len()).sum();
        for &i in &order {
            let st = self.stage(i, &g)?;
            self.done[i] = Some(st);
        }
        self.done[target].clone().ok_or_else(|| BuildError::Other("target stage was not built".into()))
    }

    fn stage(&mut self, i: usize, g: &graph::Graph) -> Result<State, BuildError> {
        let stage = self.stages.stages[i].clone();
        self.step += 1;
        let base = g.bases[i].clone();
        self.progress.step(self.step, self.total, &stage.original);
        let mut st = match &base {
            graph::Base::Scratch => {
                let config = ImageConfig::scratch();
                let (id, _) = self.store.put_json(&config)?;
                State { config, layers: Vec::new(), args: Vec::new(), cmd_set: false, id, cache_ok: true }
            }
            graph::Base::Stage(j) => {
                let mut s = self.done[*j].clone().ok_or_else(|| self.err(stage.line, "FROM: stage was not built"))?;
                s.args.clear();
                s.cmd_set = false;
                s.cache_ok = true;
                s
            }
            graph::Base::Image(name) => {
                let platform = match &stage.platform {
                    Some(p) => {
                        let env: Vec<(String, String)> =
                            self.meta.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
                        let p = self.expand(stage.line, p, &env)?;
                        Some(
                            crate::registry::Platform::parse(&p)
                                .map_err(|e| self.err(stage.line, format!("FROM --platform: {e}")))?,
                        )
                    }
                    None => self.opts.platform.clone(),
                };
                let mut log = Vec::new();
                let img =
                    crate::registry::base::resolve(self.store, name, &self.opts.remote, platform.as_ref(), &mut log);
                for l in log {
                    self.progress.note(&l);
                }
                let img = img.map_err(|e| {
                    self.err(stage.line, format!("FROM {name}: not in the store, and the pull failed: {e}"))
                })?;
                let layers = img.layers();
                State {
                    config: img.config.clone(),
                    layers,
                    args: Vec::new(),
                    cmd_set: false,
                    id: img.config_digest.clone(),
                    cache_ok: true,
                }
            }
        };
        // `FROM scratch` (or a stage that is still scratch) is no image: no ID to print.
        let is_image = match base {
            graph::Base::Scratch => false,
            graph::Base::Image(_) => true,
            graph::Base::Stage(_) => !(st.layers.is_empty() && st.config.history.is_empty()),
        };
        self.progress.done(is_image.then_some(st.id.as_str()));
        // ONBUILD triggers of the base run now, then are dropped from the child
        let triggers = std::mem::take(&mut st.config.config.on_build);
        if !triggers.is_empty() {
            self.progress.note(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            for t in &triggers {
                let df =
                    parser::parse(t).map_err(|e| self.err(stage.line, format!("ONBUILD trigger {t:?}: {}", e.msg)))?;
                for node in &df.nodes {
                    let inst = instructions::parse_node(node)
                        .map_err(|e| self.err(stage.line, format!("ONBUILD trigger {t:?}: {e}")))?;
                    let cmd = Command { inst, line: stage.line, original: node.original.clone() };
                    self.command(&mut st, &cmd, false)?;
                }
            }
        }
        for cmd in &stage.commands {
            self.command(&mut st, cmd, true)?;
        }
        Ok(st)
    }

    /// One instruction through the cache.
    fn command(&mut self, st: &mut State, cmd: &Command, counted: bool) -> Result<(), BuildError> {
        if counted {
            self.step += 1;
            self.progress.step(self.step, self.total, &cmd.original);
        }
        let (inputs, action) = self.prepare(st, cmd)?;
        let Some(action) = action else {
            return Ok(()); // ARG and friends that only change builder state
        };
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
            let why = self.explain(&st.id, &inputs, st.cache_ok);
            for w in why {
                self.progress.note(&format!(" ---> Cache miss: {w}"));
            }
        }
        st.cache_ok = false;
        let parent = st.id.clone();
        self.execute(st, cmd, action)?;
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
    pub fn history(&self, st: &mut State, created_by: String, empty_layer: bool) {
        let created = epoch_rfc3339(self.opts.created);
        st.config.created = created.clone();
        st.config.history.push(History { created, created_by, comment: "buildkit.dockerfile.v0".into(), empty_layer });
    }

    /// Writes the image of the final state unchanged, so its ID is the last step's ` ---> ID`.
    fn commit(&mut self, st: State, tags: Vec<String>) -> Result<Built, BuildError> {
        let descs: Vec<_> = st.layers.iter().map(Layer::descriptor).collect();
        let (manifest, id) = self.store.put_image(&st.config, &descs)?;
        // which cache entries built this image (with those of earlier builds of the same image)
        let rel = format!("cache/images/{}.json", manifest.digest.trim_start_matches("sha256:"));
        {
            let _g = self.store.lock()?;
            let before: Vec<String> = self.store.read_record(&rel).unwrap_or_default();
            let mut keys = before.clone();
            keys.extend(self.keys.iter().cloned());
            keys.sort();
            keys.dedup();
            if keys != before {
                self.store.write_record(&rel, &keys)?; // a no-op rebuild writes nothing
            }
        }
        for t in &tags {
            self.store.set_ref(t, manifest.clone())?;
        }
        // what `inspect` shows as CreatedFrom (the config has the time, not where it came from)
        let rel = format!("cache/created/{}.json", id.trim_start_matches("sha256:"));
        if self.store.read_record::<String>(&rel).as_deref() != Some(&self.opts.created_from) {
            self.store.write_record(&rel, &self.opts.created_from)?;
        }
        if tags.is_empty() {
            // docker keeps an untagged build as a dangling image: its ID works until rmi/prune
            self.store.add_unnamed(manifest.clone())?;
        }
        self.progress.finish(&id, &tags);
        Ok(Built { id, manifest, tags, keys: std::mem::take(&mut self.keys) })
    }
}

/// The 12-hex short form of an ID.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// RFC 3339 UTC for a Unix time (what docker writes in `created`).
pub fn epoch_rfc3339(t: u64) -> String {
    let days = (t / 86400) as i64;
    let secs = t % 86400;
    // civil-from-days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs / 60) % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(epoch_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(epoch_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(epoch_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
