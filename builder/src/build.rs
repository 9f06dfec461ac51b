//! `slipway build`: read and parse the Dockerfile, plan the build (`plan`, base images from the
//! store or pulled through `registry`), run the plan (`exec`, with `--cache-from` caches), write
//! and name the image. This file only joins the rooms; each does its part.

use crate::context::Context;
use crate::dockerfile::parser;
use crate::exec::{self, progress, Executor};
use crate::instructions::{self, Stages};
use crate::plan::{self, Plan};
use crate::registry::{self, base::Remote, Platform};
use crate::runner::Runtime;
use crate::spec::Network;
use crate::store::{Image, Store};
use std::path::PathBuf;

pub use crate::exec::Built;
pub use crate::plan::BuildError;

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
    /// Print the plan, and each RUN's bundle, lower dirs and config.json, to stderr.
    pub debug: bool,
    /// How base images not in the store (all of them, with `--pull`) come from registries.
    pub remote: Remote,
    /// `--platform`: the platform base images are pulled for (`FROM --platform` wins).
    pub platform: Option<Platform>,
    /// `--cache-from`: caches whose steps count as hits in this build.
    pub cache_from: Vec<registry::cache::Spec>,
}

/// Base images for the planner: the store's, else pulled into it.
struct Bases<'a> {
    store: &'a Store,
    remote: &'a Remote,
}

impl plan::Images for Bases<'_> {
    fn resolve(&self, name: &str, platform: Option<&Platform>, log: &mut Vec<String>) -> Result<Image, String> {
        registry::base::resolve(self.store, name, self.remote, platform, log).map_err(|e| e.to_string())
    }
}

/// The Dockerfile read and typed.
struct Source {
    path: PathBuf,
    /// Its name in messages.
    file: String,
    escape: char,
    stages: Stages,
}

fn read(opts: &BuildOptions) -> Result<Source, BuildError> {
    let path = match &opts.dockerfile {
        Some(p) => p.clone(),
        None => opts.context.join("Dockerfile"),
    };
    let file = opts.dockerfile.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "Dockerfile".into());
    let src = std::fs::read_to_string(&path)
        .map_err(|e| BuildError::Other(format!("read Dockerfile {}: {e}", path.display())))?;
    let df = parser::parse(&src).map_err(|e| BuildError::At { file: file.clone(), line: e.line, msg: e.msg })?;
    let stages =
        instructions::stages(&df).map_err(|e| BuildError::At { file: file.clone(), line: e.line, msg: e.msg })?;
    Ok(Source { path, file, escape: df.escape, stages })
}

fn make_plan(store: &Store, opts: &BuildOptions, src: &Source, ctx: &mut Context) -> Plan {
    let popts = plan::Options {
        file: &src.file,
        build_args: &opts.build_args,
        target: opts.target.as_deref(),
        network: opts.network,
        platform: opts.platform.clone(),
        labels: &opts.labels,
    };
    plan::plan(&src.stages, src.escape, ctx, &Bases { store, remote: &opts.remote }, &popts)
}

/// The plan of a build, without running it (`slipway plan`).
pub fn plan_only(store: &Store, opts: &BuildOptions) -> Result<Plan, BuildError> {
    let src = read(opts)?;
    let mut ctx = Context::open_for(&opts.context, Some(store), Some(&src.path))?;
    Ok(make_plan(store, opts, &src, &mut ctx))
}

/// Runs a build.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    let src = read(opts)?;
    let tags = opts.tags.iter().map(|t| crate::store::normalize_ref(t)).collect::<Result<Vec<_>, _>>()?;
    let _in_use = store.use_lock()?;
    let mut ctx = Context::open_for(&opts.context, Some(store), Some(&src.path))?;
    let plan = make_plan(store, opts, &src, &mut ctx);
    if opts.debug {
        eprint!("debug: {plan}");
    }
    let eopts = exec::Options {
        file: src.file.clone(),
        no_cache: opts.no_cache,
        explain_cache: opts.explain_cache,
        epoch: opts.epoch,
        created: opts.created,
        created_now: opts.created_now,
        created_from: opts.created_from.clone(),
        quiet: opts.quiet,
        debug: opts.debug,
    };
    let out: Box<dyn std::io::Write> = if opts.quiet { Box::new(std::io::sink()) } else { Box::new(std::io::stdout()) };
    let runtime = Runtime { bin: opts.runtime.clone(), state_root: store.root.join("tmp/runtime") };
    let mut x = Executor::new(store, &eopts, &mut ctx, runtime, progress::Progress::new(opts.progress, out));
    for from in &opts.cache_from {
        match registry::cache::import(&opts.remote.options, from) {
            Ok(i) => {
                x.progress.note(&format!("importing cache from {from}: {} steps", i.len()));
                x.imported.push(i);
            }
            // as BuildKit does: an unreadable cache is a warning, the build goes on without it
            Err(e) => x.progress.note(&format!("WARNING: cache from {from} not imported: {e}")),
        }
    }
    let res = x.run(plan);
    x.ctx.save(store);
    x.commit(res?, tags)
}
