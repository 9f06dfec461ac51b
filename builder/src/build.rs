//! `slipway build`: read and parse the Dockerfile, plan the build (`plan`, base images from the
//! store or pulled through `registry`), run the plan (`exec`, with `--cache-from` caches), write
//! and name the image. This file only joins the rooms; each does its part.

use crate::context::Context;
use crate::dockerfile::parser;
use crate::dockerignore::Matcher;
use crate::exec::{self, progress, Executor};
use crate::instructions::{self, Stages};
use crate::layer;
use crate::lint;
use crate::named_context::{self, NamedContexts, Value};
use crate::output;
use crate::plan::{self, Plan};
use crate::registry::{self, base::Remote, Platform};
use crate::retime;
use crate::runner::Runtime;
use crate::spec::Network;
use crate::store::{Image, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

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
    /// `--timestamp`: how `created` (and `epoch`, `created_now`, `created_from`,
    /// `source_date_epoch`) are chosen once SOURCE_DATE_EPOCH is resolved; those fields are
    /// set by the build from it and the build args (what a caller puts there is replaced).
    pub timestamp: Timestamp,
    /// SOURCE_DATE_EPOCH (or `--timestamp N`), or 0: the limit of the mtimes the build writes in
    /// its layers (the files' own with an output's `rewrite-timestamp=false`: `with_output_times`).
    /// Seconds since 1970, negative before, as BuildKit's `time.Unix(sde, 0)`.
    pub epoch: i64,
    /// The time written in `created` (the image's and its history's); `epoch` unless
    /// `--timestamp` says otherwise.
    pub created: i64,
    /// `--timestamp now`: `created` is the build's time, so it stays out of cache keys (a cached
    /// step keeps the time it was built at, as in docker).
    pub created_now: bool,
    /// Where `created` came from, for `inspect` (e.g. "SOURCE_DATE_EPOCH=1700000000").
    pub created_from: String,
    /// Print the plan, and each RUN's bundle, lower dirs and config.json, to stderr.
    pub debug: bool,
    /// How base images not in the store (all of them, with `--pull`) come from registries.
    pub remote: Remote,
    /// The platform of this build (`--platform`; `FROM --platform` wins for its stage): bases
    /// are pulled for it, the TARGET* ARGs say it. None: this machine's.
    pub platform: Option<Platform>,
    /// `--platform a,b,...`: several build one image each (`platform` set to each) and an OCI
    /// index over them; with `jobs` above 1 their stages run in one scheduler.
    pub platforms: Vec<Platform>,
    /// `--cache-from`: caches whose steps count as hits in this build.
    pub cache_from: Vec<registry::cache::Import>,
    /// `--cache-to type=inline`: the result's cache in its image config.
    pub inline_cache: bool,
    /// `--allow security.insecure`: `RUN --security=insecure` may run.
    pub allow_insecure: bool,
    /// `--allow network.host` (or `--network host`): `RUN --network=host` may run.
    pub allow_network_host: bool,
    /// `--cdi-spec-dir` and `--allow device[=NAME]`: the CDI devices `RUN --device` gets.
    pub devices: crate::cdi::Devices,
    /// `--secret`: what `RUN --mount=type=secret` mounts.
    pub secrets: crate::secrets::Secrets,
    /// `--ssh`: the agents `RUN --mount=type=ssh` forwards, by id.
    pub ssh: std::collections::BTreeMap<String, crate::secrets::SshSource>,
    /// `--output`s (none: the store, under the `-t` names).
    pub outputs: Vec<output::Output>,
    /// `--annotation`s.
    pub annotations: Vec<output::Annotation>,
    /// `--provenance`, `--sbom`, `--attest` as given (the `BUILDKIT_ATTEST_*` build args join
    /// them in [`crate::attest::resolve`]).
    pub attest: crate::attest::Flags,
    /// `--push`.
    pub push: bool,
    /// SOURCE_DATE_EPOCH when given (`--build-arg` or the environment): local and tar outputs
    /// set every file's mtime to it, as BuildKit's do.
    pub source_date_epoch: Option<i64>,
    /// `--build-context`s.
    pub named_contexts: NamedContexts,
    /// `--jobs`: how many stages may run at once.
    pub jobs: usize,
    /// `--add-host`, `--ulimit`, `--shm-size`, `--cgroup-parent`, the resource limits.
    pub run_extras: crate::spec::RunExtras,
    /// `--no-cache-filter`: stage names.
    pub no_cache_filter: Vec<String>,
    /// Global ARGs given a value after evaluation (SOURCE_DATE_EPOCH resolved to seconds, or
    /// to none); set by the build.
    pub set_global_args: Vec<(String, Option<String>)>,
    /// buildx's `vcs:*` frontend attributes of a local git context (keys without `vcs:`):
    /// the provenance's `buildkit_metadata.vcs` (see [`crate::vcs`]).
    pub vcs: std::collections::BTreeMap<String, String>,
}

/// `--timestamp`: what the image's `created` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timestamp {
    /// SOURCE_DATE_EPOCH, else 0 (equal inputs give equal digests).
    #[default]
    Epoch,
    /// `now`: the build's time (file mtimes stay SOURCE_DATE_EPOCH, else 0).
    Now,
    /// Seconds since 1970 (negative before): `created` and every file mtime.
    At(i64),
}

/// Base images for the planner: a `--build-context` of that name, else the store's, else
/// pulled into it.
struct Bases<'a> {
    store: &'a Store,
    remote: &'a Remote,
    named: &'a NamedContexts,
    /// The `created` of a directory context's image.
    epoch: i64,
    /// The mtimes of its files.
    mtimes: layer::Mtimes,
    /// Directory and OCI layout contexts made into images, by key and platform (a directory's
    /// config says the platform): once per build.
    made: Mutex<BTreeMap<(String, String), Image>>,
    /// The contexts the plan used, by key.
    used: Mutex<std::collections::BTreeSet<String>>,
    /// What the plan resolved, for the provenance's materials.
    materials: Mutex<Vec<crate::attest::Material>>,
}

impl Bases<'_> {
    /// Records an image the plan resolved as a material: the reference normalized, the
    /// platform asked for, and the digest the name stands for (the store's entry of that name,
    /// an index for a multi-platform image, else the image's manifest).
    fn record_image(&self, name: &str, platform: Option<&Platform>, img: &Image) {
        let Ok(r) = registry::reference::Reference::parse(name) else { return };
        let mut reference = format!("{}/{}", r.registry, r.repository);
        if let Some(t) = &r.tag {
            reference.push_str(&format!(":{t}"));
        }
        let digest = match &r.digest {
            Some(d) => {
                reference.push_str(&format!("@{d}"));
                d.clone()
            }
            None => {
                let names: Vec<String> = [name.to_string(), r.store_name()]
                    .iter()
                    .filter_map(|n| crate::store::normalize_ref(n).ok())
                    .collect();
                let named = self.store.index().ok().and_then(|idx| {
                    idx.manifests.into_iter().find(|m| {
                        m.annotations.get(crate::store::image::ANN_REF_NAME).is_some_and(|n| names.contains(n))
                    })
                });
                named.map_or_else(|| img.manifest_digest.clone(), |m| m.digest)
            }
        };
        if r.tag.is_none() && r.digest.is_none() {
            reference.push_str(":latest");
        }
        let platform = Some(platform.cloned().unwrap_or_else(Platform::host));
        if let Ok(mut m) = self.materials.lock() {
            m.push(crate::attest::Material::Image { reference, platform, digest });
        }
    }
}

impl Bases<'_> {
    /// The image of context `key` (value `v`) for `platform` (None: this machine's).
    fn named(&self, key: &str, v: &Value, platform: Option<&Platform>, log: &mut Vec<String>) -> Result<Image, String> {
        let for_platform = platform.cloned().unwrap_or_else(Platform::host);
        let made_key = (key.to_string(), for_platform.normalized().to_string());
        if let Some(img) = self.made.lock().ok().and_then(|m| m.get(&made_key).cloned()) {
            return Ok(img);
        }
        let img = match v {
            Value::Image(r) => {
                log.push(format!("build context {key}: docker-image://{r}"));
                let img = registry::base::resolve(self.store, r, self.remote, platform, log)
                    .map_err(|e| format!("--build-context {key}=docker-image://{r}: {e}"))?;
                self.record_image(r, platform, &img);
                return Ok(img);
            }
            Value::Dir(d) => {
                log.push(format!("build context {key}: directory {}", d.display()));
                named_context::dir_image(self.store, key, d, true, self.epoch, self.mtimes, &for_platform)?
            }
            Value::Remote(url, r) => {
                let err = |e: &dyn std::fmt::Display| format!("--build-context {key}={url}: {e}");
                let f = crate::fetch::context::fetch(self.store, url, r, crate::fetch::context::Use::Named, false)
                    .map_err(|e| err(&e))?;
                log.push(format!("build context {key}: {}", f.note));
                named_context::dir_image(self.store, key, &f.dir, false, self.epoch, self.mtimes, &for_platform)
                    .map_err(|e| err(&e))?
            }
            Value::OciLayout { dir, tag, digest } => {
                log.push(format!("build context {key}: oci-layout://{}", dir.display()));
                crate::archive::layout_image(self.store, dir, tag.as_deref(), digest.as_deref(), &for_platform)
                    .map_err(|e| format!("--build-context {key}=oci-layout://{}: {e}", dir.display()))?
            }
        };
        if let Ok(mut m) = self.made.lock() {
            m.insert(made_key, img.clone());
        }
        Ok(img)
    }
}

impl plan::Images for Bases<'_> {
    fn named(&self, name: &str, platform: &Platform) -> bool {
        self.named.lookup(name, platform).is_some()
    }

    fn resolve(&self, name: &str, platform: Option<&Platform>, log: &mut Vec<String>) -> Result<Image, String> {
        let for_platform = platform.cloned().unwrap_or_else(Platform::host);
        if let Some((key, v)) = self.named.lookup(name, &for_platform) {
            if let Ok(mut u) = self.used.lock() {
                u.insert(key.to_string());
            }
            return self.named(key, v, platform, log);
        }
        let img = registry::base::resolve(self.store, name, self.remote, platform, log).map_err(|e| e.to_string())?;
        self.record_image(name, platform, &img);
        Ok(img)
    }
}

/// ADD's remote sources for the planner: fetched through `fetch`, kept in the store.
impl plan::Remotes for Bases<'_> {
    fn http(&self, url: &str) -> Result<(String, Option<i64>), String> {
        let r = crate::fetch::http::resolve(self.store, url).map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.materials.lock() {
            m.push(crate::attest::Material::Http { url: url.to_string(), digest: r.digest.clone() });
        }
        Ok((r.digest, r.last_modified))
    }
    fn git(&self, g: &crate::fetch::git::GitRef) -> Result<(String, String), String> {
        let (commit, full_ref) = crate::fetch::git::resolve(g).map_err(|e| e.to_string())?;
        if let Ok(mut m) = self.materials.lock() {
            m.push(crate::attest::Material::Git { url: g.remote.clone(), commit: commit.clone() });
        }
        Ok((commit, full_ref))
    }
}

/// The Dockerfile read and typed.
struct Source {
    /// The context directory (a remote one fetched into the store).
    context: PathBuf,
    /// What a remote context was (the log's line); None for a local directory.
    remote: Option<String>,
    /// A remote context as fetched (its time, when SOURCE_DATE_EPOCH names it).
    fetched: Option<crate::fetch::context::Fetched>,
    path: PathBuf,
    /// Its name in messages.
    file: String,
    escape: char,
    stages: Stages,
    /// The text, for the excerpt around a failing line.
    text: String,
    /// Each instruction's (first, last) line.
    spans: Vec<(usize, usize)>,
    /// The parsed Dockerfile, for the build checks.
    df: parser::Dockerfile,
    /// The syntax asks for a labs frontend.
    labs: bool,
    /// The older frontend the syntax pins (`None`: the newest).
    pin: Option<crate::syntax_pin::Pin>,
}

/// Fills in the excerpt of a Dockerfile error from the file's text; `spans` are the
/// instructions' (first, last) lines.
fn with_excerpt(mut e: BuildError, src: &str, spans: &[(usize, usize)]) -> BuildError {
    if let BuildError::At { file, line, excerpt, .. } = &mut e {
        let end = spans.iter().find(|(s, _)| s == line).map_or(*line, |(_, e)| *e);
        *excerpt = dockerfile_excerpt(file, src, *line, end).into();
    }
    e
}

/// The lines `start..=end` of a Dockerfile marked `>>>`, with context, as BuildKit prints a
/// failing instruction: two lines either side of a one-line instruction, one of a longer one.
pub fn dockerfile_excerpt(file: &str, src: &str, start: usize, end: usize) -> String {
    let lines: Vec<&str> = src.split('\n').collect();
    if start < 1 || start > lines.len() {
        return String::new();
    }
    let end = end.clamp(start, lines.len());
    let (mut first, mut last) = (start, end);
    let pad = if start == end { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if first > 1 {
            first -= 1;
            p += 1;
        }
        if last != lines.len() {
            last += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{file}:{start}\n--------------------\n");
    for (i, text) in lines.iter().enumerate().take(last).skip(first - 1) {
        let n = i + 1;
        let mark = if (start..=end).contains(&n) { ">>>" } else { "   " };
        out.push_str(&format!(" {n:>3} | {mark} {text}\n"));
    }
    out.push_str("--------------------\n");
    out
}

/// docker's warning for `--build-arg`s no ARG declared (the proxy variables, which RUN gets
/// without an ARG, excepted).
/// The build args BuildKit's Dockerfile frontend reads itself (dockerui/config.go's
/// `build-arg:BUILDKIT_*` keys, and BUILDKIT_SYNTAX, read by the frontend's builder):
/// consumed whether or not a stage declares them (BUILDKIT_DOCKERFILE_CHECK: `PREDEFINED`).
const FRONTEND_ARGS: [&str; 7] = [
    // buildx build/opt.go: true (Go's ParseBool) asks for --cache-to type=inline
    "BUILDKIT_INLINE_CACHE",
    "BUILDKIT_CACHE_MOUNT_NS",
    "BUILDKIT_MULTI_PLATFORM",
    "BUILDKIT_SANDBOX_HOSTNAME",
    "BUILDKIT_SYNTAX",
    "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
    // refused true (`read`), of no effect false, as in BuildKit
    "BUILDKIT_DISABLE_FILEOP",
];

/// Build args BuildKit or buildx act on and slipway does not implement (a trailing `*`: every
/// arg of that prefix): each one given gets a warning naming it, rather than pass as "not
/// consumed" or silently. One row each: take a row out when slipway implements it.
const UNIMPLEMENTED_ARGS: [(&str, &str); 2] = [
    // buildx util/history/name.go
    ("BUILDKIT_BUILD_NAME", "the build's name in buildx's build history"),
    // buildx build/opt.go (deprecated build info)
    ("BUILDKIT_INLINE_BUILDINFO_ATTRS", "build info attributes in the image config"),
];

/// The row of `UNIMPLEMENTED_ARGS` that names build arg `k`.
fn unimplemented_arg(k: &str) -> Option<&'static str> {
    UNIMPLEMENTED_ARGS
        .iter()
        .find(|(n, _)| match n.strip_suffix('*') {
            Some(prefix) => k.starts_with(prefix),
            None => k == *n,
        })
        .map(|(_, what)| *what)
}

/// The Dockerfile frontend's own images: a `# syntax=` naming one of them (any tag or digest)
/// gets slipway's built-in frontend, which follows the newest one.
const DOCKERFILE_FRONTENDS: [&str; 2] = ["docker/dockerfile", "docker/dockerfile-upstream"];

/// The frontend a `# syntax=` directive or the `BUILDKIT_SYNTAX` build arg (which wins, as in
/// BuildKit) names. BuildKit runs that image as a gateway frontend; slipway has no gateway, so
/// it takes the Dockerfile frontend's images and refuses any other, rather than build the file
/// with semantics other than those it asks for. Only the image (the first word) is read, as
/// BuildKit reads it; `Err` has the message and, for the directive, its line. `Ok(true)`: a
/// labs image (a tag ending in `labs`: `1-labs`, `1.14-labs`, `labs`, upstream's `master-labs`),
/// whose features are on, and the older frontend a tag such as `1.4` pins (syntax_pin).
fn check_syntax(
    opts: &BuildOptions,
    directive: Option<&str>,
    src: &str,
) -> Result<(bool, Option<crate::syntax_pin::Pin>), (Option<usize>, String)> {
    let (value, line) = match build_arg(opts, "BUILDKIT_SYNTAX").filter(|v| !v.trim().is_empty()) {
        Some(v) => (v, None),
        None => match directive {
            Some(v) => {
                let line = src
                    .lines()
                    .position(|l| l.trim_start().starts_with('#') && l.to_ascii_lowercase().contains("syntax"));
                (v, Some(line.map_or(1, |i| i + 1)))
            }
            None => return Ok((false, None)),
        },
    };
    let image = value.split_whitespace().next().unwrap_or_default();
    // `BUILDKIT_SYNTAX=dockerfile.v0` is the built-in frontend, the directive ignored
    // (reference.md "BuildKit built-in build args"; llbsolver/solver.go routes that gateway
    // source to the builtin frontend, moby/buildkit 3f3c95735)
    if line.is_none() && image == "dockerfile.v0" {
        return Ok((false, None));
    }
    let what = match line {
        Some(_) => format!("syntax={value}"),
        None => format!("build arg BUILDKIT_SYNTAX={value}"),
    };
    let r = crate::registry::reference::Reference::parse(image).map_err(|e| (line, format!("{what}: {e}")))?;
    if r.registry == "docker.io" && DOCKERFILE_FRONTENDS.contains(&r.repository.as_str()) {
        let labs = r.tag.as_deref().is_some_and(|t| t.ends_with("labs"));
        // a digest names an image whose version slipway cannot know: the newest
        let pin = r.tag.as_deref().filter(|_| r.digest.is_none()).and_then(crate::syntax_pin::pin);
        return Ok((labs, pin));
    }
    Err((
        line,
        format!(
            "{what}: slipway builds with its built-in Dockerfile frontend (docker/dockerfile, the newest) and \
             cannot run another frontend image ({}/{})",
            r.registry, r.repository
        ),
    ))
}

/// The last value given for build arg `name`.
fn build_arg<'a>(opts: &'a BuildOptions, name: &str) -> Option<&'a str> {
    opts.build_args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Whether the result is an index (several platforms) or one image: `BUILDKIT_MULTI_PLATFORM`
/// asks for an index even for one platform (BuildKit's `multi-platform` frontend option, read
/// with Go's ParseBool); false with several platforms is BuildKit's conflict error.
fn multi_platform(opts: &BuildOptions, platforms: usize) -> Result<bool, String> {
    let Some(v) = build_arg(opts, "BUILDKIT_MULTI_PLATFORM").filter(|v| !v.is_empty()) else {
        return Ok(platforms > 1);
    };
    let Some(asked) = crate::gobool::parse(v) else {
        return Err(format!("BUILDKIT_MULTI_PLATFORM={v:?}: invalid boolean value for multi-platform"));
    };
    if !asked && platforms > 1 {
        return Err(
            "BUILDKIT_MULTI_PLATFORM=false: conflicting config: returning multiple target platforms is not allowed"
                .into(),
        );
    }
    Ok(asked || platforms > 1)
}

/// The RUN steps' extras, with `BUILDKIT_SANDBOX_HOSTNAME` (empty: BuildKit's default name).
fn run_extras(opts: &BuildOptions) -> Result<crate::spec::RunExtras, String> {
    let mut x = opts.run_extras.clone();
    if let Some(h) = build_arg(opts, "BUILDKIT_SANDBOX_HOSTNAME").filter(|h| !h.is_empty()) {
        // the kernel takes at most 64 bytes; a blank or a slash would break /etc/hosts' line
        if h.len() > 64 || h.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(format!(
                "BUILDKIT_SANDBOX_HOSTNAME={h:?}: not a hostname (at most 64 bytes, no blanks, control characters or '/')"
            ));
        }
        x.hostname = Some(h.to_string());
    }
    Ok(x)
}

fn warn_unused_build_args(opts: &BuildOptions, declared: &std::collections::BTreeSet<String>) {
    const PREDEFINED: [&str; 12] = [
        "SOURCE_DATE_EPOCH",
        // the build checks' configuration (lint::BUILD_ARG)
        "BUILDKIT_DOCKERFILE_CHECK",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    ];
    let mut given: Vec<&str> = opts.build_args.iter().map(|(k, _)| k.as_str()).collect();
    given.sort_unstable();
    given.dedup();
    for k in &given {
        if let Some(what) = unimplemented_arg(k) {
            eprintln!(
                "slipway: warning: --build-arg {k}: slipway does not implement {what}; the build goes on without it"
            );
        }
    }
    let unused: Vec<&str> = given
        .into_iter()
        .filter(|k| !declared.contains(*k) && !PREDEFINED.contains(k) && !FRONTEND_ARGS.contains(k))
        .filter(|k| unimplemented_arg(k).is_none())
        // BuildKit reads the attestation requests itself (crate::attest)
        .filter(|k| !k.starts_with(crate::attest::BUILD_ARG_PREFIX))
        .collect();
    if !unused.is_empty() {
        eprintln!("slipway: warning: one or more build-args were not consumed: {}", unused.join(", "));
    }
}

/// BuildKit's reading of `BUILDKIT_CONTEXT_KEEP_GIT_DIR` (Go's strconv.ParseBool; anything
/// else is unset).
fn keep_git_dir_arg(opts: &BuildOptions) -> bool {
    let v = opts.build_args.iter().rev().find(|(k, _)| k == "BUILDKIT_CONTEXT_KEEP_GIT_DIR");
    v.is_some_and(|(_, v)| crate::gobool::is_true(v))
}

/// Where a build reads its context and its Dockerfile.
struct Input {
    /// The context directory (a remote context's in the store).
    context: PathBuf,
    /// The Dockerfile, and its name in messages.
    dockerfile: PathBuf,
    file: String,
    /// What a remote context was, for the log; None for a local directory.
    remote: Option<String>,
    fetched: Option<crate::fetch::context::Fetched>,
}

/// The context directory and the Dockerfile, and for a remote context what was fetched. A
/// local directory wins over a URL of the same spelling (buildx's order); a remote context is
/// fetched into the store (`fetch::context`), where `-f` names a file of it when relative and a
/// local file when absolute, as buildx sends them.
fn input(store: &Store, opts: &BuildOptions) -> Result<Input, BuildError> {
    use crate::fetch::context::{stdin, Use};
    let arg = opts.context.to_string_lossy().into_owned();
    let stdin_file = opts.dockerfile.as_deref() == Some(std::path::Path::new("-"));
    if arg == "-" {
        // buildx: `build - < Dockerfile` or `build - < context.tar`
        if stdin_file {
            return Err(BuildError::Other(
                "invalid argument: can't use stdin for both build context and dockerfile".into(),
            ));
        }
        let f = stdin(store, Use::Main).map_err(|e| BuildError::Other(format!("build context -: {e}")))?;
        let (path, file) = match (&opts.dockerfile, &f.dockerfile) {
            (Some(p), Some(_)) => {
                return Err(BuildError::Other(format!(
                    "-f {}: stdin holds a Dockerfile, not an archive: there is no other file in the context",
                    p.display()
                )))
            }
            (Some(p), None) => {
                (crate::rootfs::resolve_in_root(&f.dir, &p.to_string_lossy(), true), p.display().to_string())
            }
            (None, Some(d)) => (d.clone(), "Dockerfile".to_string()),
            (None, None) => (f.dir.join("Dockerfile"), "Dockerfile".to_string()),
        };
        let remote = Some(format!("# build context {}", f.note));
        return Ok(Input { context: f.dir.clone(), dockerfile: path, file, remote, fetched: Some(f) });
    }
    if stdin_file {
        // buildx: `build -f - DIR < Dockerfile`: the Dockerfile from stdin, the context DIR
        let mut i = input(store, &BuildOptions { dockerfile: None, ..opts.clone() })?;
        let f = stdin(store, Use::Named).map_err(|e| BuildError::Other(format!("-f -: {e}")))?;
        i.dockerfile = f.dir.join("context");
        i.file = "Dockerfile".into();
        return Ok(i);
    }
    let remote = if opts.context.is_dir() {
        None
    } else {
        crate::fetch::context::parse(&arg).map_err(|e| BuildError::Other(format!("build context {arg}: {e}")))?
    };
    let Some(remote) = remote else {
        // before the Dockerfile is looked for in it (docker: "context must be a directory")
        match std::fs::metadata(&opts.context) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(crate::context::ContextError::NotDir(opts.context.clone()).into()),
            Err(e) => return Err(BuildError::Other(format!("open build context {}: {e}", opts.context.display()))),
        }
        let path = match &opts.dockerfile {
            Some(p) => p.clone(),
            None => opts.context.join("Dockerfile"),
        };
        let file = opts.dockerfile.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "Dockerfile".into());
        return Ok(Input { context: opts.context.clone(), dockerfile: path, file, remote: None, fetched: None });
    };
    let f =
        crate::fetch::context::fetch(store, &arg, &remote, crate::fetch::context::Use::Main, keep_git_dir_arg(opts))
            .map_err(|e| BuildError::Other(format!("build context {arg}: {e}")))?;
    let (path, file) = match (&opts.dockerfile, &f.dockerfile) {
        (Some(p), _) if p.is_absolute() => (p.clone(), p.display().to_string()),
        (Some(p), Some(_)) => {
            return Err(BuildError::Other(format!(
                "-f {}: the context {arg} is a Dockerfile, not an archive: there is no other file in it",
                p.display()
            )))
        }
        (Some(p), None) => {
            (crate::rootfs::resolve_in_root(&f.dir, &p.to_string_lossy(), true), p.display().to_string())
        }
        (None, Some(d)) => (d.clone(), arg.clone()),
        (None, None) => (f.dir.join("Dockerfile"), "Dockerfile".to_string()),
    };
    let remote = Some(format!("# build context {}", f.note));
    Ok(Input { context: f.dir.clone(), dockerfile: path, file, remote, fetched: Some(f) })
}

/// A Dockerfile named `Dockerfile` that is not there is read as `dockerfile` of the same
/// directory when that one is (moby/moby#10858): BuildKit's frontend falls back to it for any
/// file of that base name (dockerui/config.go, `DefaultDockerfileName`), and buildx names it
/// (build/opt.go `handleLowercaseDockerfile`), `-f DIR/Dockerfile` included; messages then name
/// `dockerfile`, and `dockerfile.dockerignore` is its own ignore file, as with buildx.
fn lowercase_dockerfile(path: PathBuf, file: String) -> (PathBuf, String) {
    let lower = path.with_file_name("dockerfile");
    if path.file_name() != Some(std::ffi::OsStr::new("Dockerfile"))
        || path.symlink_metadata().is_ok()
        || lower.symlink_metadata().is_err()
    {
        return (path, file);
    }
    let file = match file.strip_suffix("Dockerfile") {
        Some(dir) => format!("{dir}dockerfile"),
        None => file,
    };
    (lower, file)
}

/// `early` gets the build checks' warnings of a Dockerfile that fails to type (an unknown
/// instruction...): those found before the failing instruction, which BuildKit reports before
/// its error (testWarningsBeforeError), with the file, its text and the error's line and message.
fn read(
    store: &Store,
    opts: &BuildOptions,
    early: &mut dyn FnMut(&lint::Report, &str, &str, usize, &str),
) -> Result<Source, BuildError> {
    let Input { context, dockerfile: path, file, remote, fetched } = input(store, opts)?;
    let (path, file) = lowercase_dockerfile(path, file);
    let src = std::fs::read_to_string(&path).map_err(|e| {
        let shown = if remote.is_some() && !path.is_absolute() { file.clone() } else { path.display().to_string() };
        BuildError::Other(format!("read Dockerfile {shown}: {e}"))
    })?;
    let at = |line, msg| BuildError::At { file: file.clone(), line, msg, excerpt: Box::default() };
    // dockerui/config.go validateMinCaps: BuildKit refuses it true (Go's ParseBool), takes it false
    if build_arg(opts, "BUILDKIT_DISABLE_FILEOP").is_some_and(crate::gobool::is_true) {
        return Err(BuildError::Other(
            "support for \"BUILDKIT_DISABLE_FILEOP\" build-arg was removed in BuildKit 0.11".into(),
        ));
    }
    let df = parser::parse(&src).map_err(|e| with_excerpt(at(e.line, e.msg), &src, &[]))?;
    let (labs, pin) = check_syntax(opts, df.syntax.as_deref(), &src).map_err(|(line, msg)| match line {
        Some(l) => with_excerpt(at(l, msg), &src, &[]),
        None => BuildError::Other(msg),
    })?;
    // each instruction's lines, so that an error marks all of a continued one
    let spans: Vec<(usize, usize)> = df.nodes.iter().map(|n| (n.start_line, n.end_line)).collect();
    // a flag the pinned frontend does not know; its parser goes instruction by instruction, so
    // the first error of either kind wins
    let refused = pin.and_then(|p| {
        df.nodes.iter().find_map(|n| crate::syntax_pin::refused_flag(p, n).map(|msg| (n.start_line, msg)))
    });
    let stages = match instructions::stages(&df) {
        Ok(s) => s,
        Err(e) if refused.as_ref().is_some_and(|(l, _)| *l < e.line) => {
            let (line, msg) = refused.unwrap_or_default();
            return Err(with_excerpt(at(line, msg), &src, &spans));
        }
        Err(e) => {
            let config = lint::Config::for_build(df.check.as_deref(), &opts.build_args);
            if let Some(config) = config.ok().filter(|_| crate::syntax_pin::runs_checks(pin)) {
                let (dispatched, base) = (Default::default(), |_| None);
                let input = lint::check::Input {
                    df: &df,
                    config: &config,
                    build_args: &opts.build_args,
                    platform_args: platform_args(opts),
                    dispatched: &dispatched,
                    base: &base,
                    ignore: None,
                    platform_mismatches: Vec::new(),
                };
                early(&lint::check::check(&input), &file, &src, e.line, &e.msg);
            }
            return Err(with_excerpt(at(e.line, e.msg), &src, &spans));
        }
    };
    if let Some((line, msg)) = refused {
        return Err(with_excerpt(at(line, msg), &src, &spans));
    }
    Ok(Source { context, path, file, escape: df.escape, stages, text: src, spans, remote, fetched, df, labs, pin })
}

/// The build's context: a local directory with its `.dockerignore` applied, a remote one whole.
fn open_context(store: &Store, src: &Source) -> Result<Context, BuildError> {
    let ctx = Context::open_for(&src.context, Some(store), Some(&src.path))?;
    Ok(if src.remote.is_some() { ctx.unfiltered() } else { ctx })
}

/// The mtimes a build writes in its layers for an output of `rewrite-timestamp` `rewrite`:
/// SOURCE_DATE_EPOCH's (`epoch`, or 0 when `sde` is none), or the files' own.
fn mtimes_of(rewrite: bool, sde: Option<i64>, epoch: i64) -> layer::Mtimes {
    match (rewrite, sde, epoch) {
        (false, sde, _) => layer::Mtimes::Kept(sde),
        (true, None, 0) => layer::Mtimes::Zero,
        (true, _, t) => layer::Mtimes::Clamp(t),
    }
}

/// What a platform's provenance says of the build: the frontend's arguments as buildx sends
/// them (build args, labels, target, no-cache, named contexts), the Dockerfile's name, the
/// local directories read, a remote context, and what the plan resolved and runs.
fn attest_info(
    opts: &BuildOptions,
    src: &Source,
    plan: &Plan,
    mut materials: Vec<crate::attest::Material>,
) -> crate::attest::BuildInfo {
    use crate::attest::Material;
    let mut info = crate::attest::BuildInfo::default();
    for (k, v) in &opts.build_args {
        info.args.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in &opts.labels {
        info.args.insert(format!("label:{k}"), v.clone());
    }
    if let Some(t) = &opts.target {
        info.args.insert("target".into(), t.clone());
    }
    if opts.no_cache {
        info.args.insert("no-cache".into(), String::new());
    } else if !opts.no_cache_filter.is_empty() {
        info.args.insert("no-cache".into(), opts.no_cache_filter.join(","));
    }
    for (k, v) in &opts.named_contexts.by_key {
        let value = match v {
            Value::Dir(_) => {
                info.locals.push(k.clone());
                format!("local:{k}")
            }
            Value::Image(r) => format!("docker-image://{r}"),
            Value::OciLayout { dir, tag, digest } => {
                let at = match (tag, digest) {
                    (_, Some(d)) => format!("@{d}"),
                    (Some(t), None) => format!(":{t}"),
                    (None, None) => String::new(),
                };
                format!("oci-layout://{}{at}", dir.display())
            }
            Value::Remote(url, _) => url.clone(),
        };
        info.args.insert(format!("context:{k}"), value);
    }
    info.vcs = opts.vcs.clone();
    info.entry_point = src.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    use crate::fetch::context::Origin;
    let url = opts.context.to_string_lossy().into_owned();
    match src.fetched.as_ref().map(|f| &f.origin) {
        // a directory, or stdin's tar (buildx sends both as the local `context`)
        None | Some(Origin::Stdin) => info.locals.extend(["context".to_string(), "dockerfile".to_string()]),
        Some(Origin::Git { commit, .. }) => {
            materials.push(Material::Git { url: url.clone(), commit: commit.clone() });
            info.context_uri = Some(url);
        }
        Some(Origin::Http(r)) => {
            materials.push(Material::Http { url: url.clone(), digest: r.digest.clone() });
            info.context_uri = Some(url);
        }
    }
    info.materials = materials;
    crate::attest::from_plan(plan, &mut info);
    let (config, source, chains) = crate::attest::max_config(plan, &src.file, &src.text);
    info.build_config = Some(config);
    info.source = Some(source);
    info.chains = chains;
    info
}

/// The plan, and the `--build-context` names it used.
fn make_plan(
    store: &Store,
    opts: &BuildOptions,
    mtimes: layer::Mtimes,
    src: &Source,
    ctx: &mut Context,
    all_stages: bool,
) -> (Plan, std::collections::BTreeSet<String>, Vec<crate::attest::Material>) {
    let popts = plan::Options {
        file: &src.file,
        build_args: &opts.build_args,
        target: opts.target.as_deref(),
        network: opts.network,
        platform: opts.platform.clone(),
        labels: &opts.labels,
        all_stages,
        set_global_args: &opts.set_global_args,
        labs: src.labs,
        devices: &opts.devices,
    };
    let bases = Bases {
        store,
        remote: &opts.remote,
        named: &opts.named_contexts,
        epoch: opts.epoch,
        mtimes,
        made: Default::default(),
        used: Default::default(),
        materials: Default::default(),
    };
    let plan = plan::plan(&src.stages, src.escape, ctx, &bases, &bases, &popts);
    (plan, bases.used.into_inner().unwrap_or_default(), bases.materials.into_inner().unwrap_or_default())
}

/// The plan of a build, without running it (`slipway plan`).
pub fn plan_only(store: &Store, opts: &BuildOptions) -> Result<Plan, BuildError> {
    let _in_use = store.use_lock()?;
    let src = read(store, opts, &mut |_, _, _, _, _| {})?;
    let (opts, _, timing) = with_epoch(store, opts, &src).map_err(|e| with_excerpt(e, &src.text, &src.spans))?;
    let mut ctx = open_context(store, &src)?;
    Ok(make_plan(store, &opts, timing.build.mtimes, &src, &mut ctx, false).0)
}

/// The build checks of a planned build: the stages the plan dispatches, their base images as
/// the plan resolved them, the context's `.dockerignore`.
fn lint(opts: &BuildOptions, src: &Source, plan: &Plan, ignore: Option<&Matcher>) -> Result<lint::Report, BuildError> {
    // a frontend before 1.8 has no build checks and does not read `# check=`
    if !crate::syntax_pin::runs_checks(src.pin) {
        return Ok(lint::Report::default());
    }
    let config = lint::Config::for_build(src.df.check.as_deref(), &opts.build_args).map_err(BuildError::Other)?;
    let dispatched = plan.stages.iter().map(|s| s.index).collect();
    let base = |i: usize| {
        let sp = plan.stages.iter().find(|s| s.index == i)?;
        match &sp.base {
            crate::plan::Base::Image { image, .. } => Some(lint::check::BaseImage {
                env: image.config.config.env.iter().map(|e| e.split('=').next().unwrap_or("").to_string()).collect(),
                shell: !image.config.config.shell.is_empty(),
            }),
            crate::plan::Base::Scratch => Some(lint::check::BaseImage::default()),
            crate::plan::Base::Stage(_) => None,
        }
    };
    // InvalidBaseImagePlatform: the image's config says another OS or architecture
    let platform_mismatches = plan
        .stages
        .iter()
        .filter_map(|sp| match &sp.base {
            crate::plan::Base::Image { name, image } => {
                let c = &image.config;
                (c.os != sp.platform.os || c.architecture != sp.platform.architecture).then(|| {
                    let actual = Platform {
                        os: c.os.clone(),
                        architecture: c.architecture.clone(),
                        variant: Some(c.variant.clone()).filter(|v| !v.is_empty()),
                    };
                    (sp.index, name.clone(), sp.platform.to_string(), actual.to_string())
                })
            }
            _ => None,
        })
        .collect();
    let platform_args = platform_args(opts);
    let input = lint::check::Input {
        df: &src.df,
        config: &config,
        build_args: &opts.build_args,
        platform_args,
        dispatched: &dispatched,
        base: &base,
        ignore,
        platform_mismatches,
    };
    Ok(lint::check::check(&input))
}

/// The automatic platform ARGs (TARGETPLATFORM...) with their values, for the checks.
fn platform_args(opts: &BuildOptions) -> Vec<(String, String)> {
    let target = opts.platform.clone().unwrap_or_else(Platform::host);
    crate::plan::platform_args(&target, &Platform::host()).into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}

/// `build --check` (buildx's `--call=check`): the checks of every stage, nothing built. The
/// output (buildx's report, or with `json` BuildKit's JSON) and whether any warning was found.
/// `json`: a Dockerfile that fails to type prints BuildKit's JSON, with the error as its
/// `buildError`, before the error.
pub fn check(store: &Store, opts: &BuildOptions, json: bool) -> Result<crate::subrequest::CallResult, BuildError> {
    let _in_use = store.use_lock()?;
    // buildx prints the warnings found before a build error, then the error
    let src = read(store, opts, &mut |r, file, text, line, msg| {
        if json {
            print!("{}", r.check_json_with_error(file, text, Some((line, msg))));
        } else if !r.warnings.is_empty() {
            println!("{}", r.check_output(file, text));
        }
    })?;
    // SOURCE_DATE_EPOCH resolved first, as BuildKit's lint request converts the Dockerfile
    let (opts, _, timing) = with_epoch(store, opts, &src).map_err(|e| with_excerpt(e, &src.text, &src.spans))?;
    let mut ctx = open_context(store, &src)?;
    let (plan, _, _) = make_plan(store, &opts, timing.build.mtimes, &src, &mut ctx, true);
    let ignore = src.remote.is_none().then(|| ctx.ignore().clone());
    let report = lint(&opts, &src, &plan, ignore.as_ref())?;
    // planning stopped (a base image that does not resolve...): BuildKit's lint request fails
    // with that error, buildx printing the warnings found before it
    if let Some(stop) = plan.stop {
        if !report.warnings.is_empty() {
            println!("{}", report.check_output(&src.file, &src.text));
        }
        return Err(stop.error);
    }
    Ok(crate::subrequest::CallResult {
        text: report.check_output(&src.file, &src.text),
        json: report.check_json(&src.file, &src.text),
        status: i32::from(!report.warnings.is_empty()),
    })
}

/// `build --call=targets`: the Dockerfile's stages as BuildKit lists them; nothing built.
pub fn targets(store: &Store, opts: &BuildOptions) -> Result<crate::subrequest::CallResult, BuildError> {
    let _in_use = store.use_lock()?;
    let src = read(store, opts, &mut |_, _, _, _, _| {})?;
    Ok(crate::subrequest::CallResult {
        text: crate::subrequest::print_targets(&src.df, &src.text, false),
        json: crate::subrequest::print_targets(&src.df, &src.text, true),
        status: 0,
    })
}

/// `build --call=outline`: what the target's build takes, as BuildKit outlines it; nothing
/// built.
pub fn outline(store: &Store, opts: &BuildOptions) -> Result<crate::subrequest::CallResult, BuildError> {
    let _in_use = store.use_lock()?;
    let src = read(store, opts, &mut |_, _, _, _, _| {})?;
    let platform_args = platform_args(opts);
    // the stages the target's platform has a --build-context for are that context, as the
    // planner replaces them
    let (host, lexer) = (Platform::host(), crate::dockerfile::shell::Lexer::new(src.escape));
    let target = opts.platform.clone().unwrap_or_else(|| host.clone());
    let global = plan::global_args(&src.stages, &lexer, &src.file, &opts.build_args, &target, &host)?;
    let env: Vec<(String, String)> = global.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    let named = |n: &str, p: &Platform| opts.named_contexts.lookup(n, p).is_some();
    let replaced = plan::replace_named_stages(&src.stages, &lexer, &env, &target, &named);
    let input = crate::subrequest::OutlineInput {
        df: &src.df,
        stages: replaced.as_ref().unwrap_or(&src.stages),
        build_args: &opts.build_args,
        platform_args: &platform_args,
        target: opts.target.as_deref(),
    };
    let err = |e| BuildError::Other(format!("{}: {e}", src.file));
    Ok(crate::subrequest::CallResult {
        text: crate::subrequest::print_outline(&input, &src.text, false).map_err(err)?,
        json: crate::subrequest::print_outline(&input, &src.text, true).map_err(err)?,
        status: 0,
    })
}

/// Go's `strconv.ParseBool` of `BUILDX_METADATA_WARNINGS`: buildx writes the warnings into
/// `--metadata-file` only when it is true.
fn metadata_warnings_enabled() -> bool {
    std::env::var("BUILDX_METADATA_WARNINGS").is_ok_and(|v| crate::gobool::is_true(&v))
}

/// `--no-cache-filter` names as the stages' indices (each with the name as given; every stage
/// of a name two have, as BuildKit's `IsNoCache` asks by name); a name no stage has is an
/// error rather than a filter that filters nothing.
fn no_cache_stages(stages: &Stages, names: &[String]) -> Result<BTreeMap<usize, String>, BuildError> {
    let mut out = BTreeMap::new();
    for n in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let named = |s: &&crate::instructions::Stage| s.name.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(n));
        let found: Vec<usize> = stages.stages.iter().enumerate().filter(|(_, s)| named(s)).map(|(i, _)| i).collect();
        if found.is_empty() {
            return Err(BuildError::Other(format!("--no-cache-filter {n}: no stage named {n:?} in the Dockerfile")));
        }
        for i in found {
            out.insert(i, n.to_string());
        }
    }
    Ok(out)
}

/// The build checks' count at the end of the log, written when the build ends (also by an
/// error's early return).
struct Summary(String, Box<dyn std::io::Write + Send>);

impl Drop for Summary {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            // the log's own stream: a failed write has nowhere better to be reported
            let _ = self.1.write_all(self.0.as_bytes()).and_then(|_| self.1.flush());
        }
    }
}

/// Runs a build.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    // held from the fetch of a remote context on: prune waits
    let _in_use = store.use_lock()?;
    let src = read(store, opts, &mut |r, file, text, _, _| {
        // the log's stream (build_read's), as a build that got further shows them
        let mut out: Box<dyn std::io::Write> = if opts.quiet {
            Box::new(std::io::sink())
        } else if output::writes_stdout(&opts.outputs) {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        let lines: String = r.log_lines().iter().map(|l| format!("{l}\n")).collect();
        // the log's own stream: a failed write has nowhere better to be reported
        let _ = std::io::Write::write_all(&mut out, format!("{lines}{}", r.summary(file, text, opts.debug)).as_bytes());
    })?;
    crate::trace::point("dockerfile");
    for node in &src.df.nodes {
        if let Some(w) = instructions::unread_flags(node) {
            eprintln!("slipway: warning: {}:{}: {w}", src.file, node.start_line);
        }
    }
    // each platform built, with its own SOURCE_DATE_EPOCH
    let runs: Vec<Option<Platform>> = if opts.platforms.len() > 1 {
        opts.platforms.iter().cloned().map(Some).collect()
    } else {
        vec![opts.platform.clone()]
    };
    let runs = with_epochs(store, opts, &src, &runs)
        .and_then(with_output_times)
        .map_err(|e| with_excerpt(e, &src.text, &src.spans))?
        .into_iter()
        .zip(runs)
        .map(|((o, note, timing), platform)| (BuildOptions { platform, ..o }, note, timing))
        .collect();
    build_read(store, runs, &src).map_err(|e| with_excerpt(e, &src.text, &src.spans))
}

/// The options with SOURCE_DATE_EPOCH resolved (`with_epochs`) for a build of one platform
/// (`opts.platform`).
fn with_epoch(
    store: &Store,
    opts: &BuildOptions,
    src: &Source,
) -> Result<(BuildOptions, Option<String>, Timing), BuildError> {
    let one = with_output_times(with_epochs(store, opts, src, std::slice::from_ref(&opts.platform))?)?;
    one.into_iter().next().ok_or_else(|| BuildError::Other("SOURCE_DATE_EPOCH: no platform".into()))
}

/// The options of each platform of `runs` with SOURCE_DATE_EPOCH resolved (`epoch`: seconds,
/// or a name of what to read them from) and put where the build reads it: the build arg and
/// the global ARG become the seconds (or go, when the name gives none, as BuildKit's
/// setBuildArgValue does), and the times follow (`epoch`, `created`, `created_from`,
/// `source_date_epoch`, after `--timestamp`). With the log's line saying what a name gave.
/// A stage's source is expanded with each platform's ARGs (`$TARGETARCH` in its URL), so
/// each platform may get its own time, as BuildKit's frontend derives one per platform
/// (dockerui's `exporter.epoch/PLATFORM`); a source two platforms share is read once.
fn with_epochs(
    store: &Store,
    opts: &BuildOptions,
    src: &Source,
    runs: &[Option<Platform>],
) -> Result<Vec<(BuildOptions, Option<String>)>, BuildError> {
    use crate::epoch::{self, Meaning};
    let lexer = crate::dockerfile::shell::Lexer::new(src.escape);
    let host = Platform::host();
    let target = opts.platform.clone().unwrap_or_else(|| host.clone());
    let global = plan::global_args(&src.stages, &lexer, &src.file, &opts.build_args, &target, &host)?;
    let Some((v, from_build_arg)) = epoch::given(&opts.build_args, &global) else {
        return Ok(runs.iter().map(|_| (with_times(opts, None, None), None)).collect());
    };
    let meaning = epoch::meaning(&v, &opts.named_contexts, &src.stages).map_err(BuildError::Other)?;
    // what a name gives: (seconds, what they are), the same for every platform but a stage's
    type Derived = (Option<i64>, String);
    let shared: Option<Derived> = match &meaning {
        Meaning::Unset | Meaning::Seconds(_) | Meaning::Stage(_) => None,
        Meaning::Context => Some(match &src.fetched {
            None => (None, "the build context is a local directory, which has no time".to_string()),
            Some(f) => f.time(store).map_err(|e| BuildError::Other(format!("SOURCE_DATE_EPOCH={v}: {e}")))?,
        }),
        Meaning::Named(key) => {
            let value = &opts.named_contexts.by_key[key];
            Some(
                epoch::named_time(store, key, value)
                    .map_err(|e| BuildError::Other(format!("SOURCE_DATE_EPOCH={v}: {e}")))?,
            )
        }
    };
    let mut read: Vec<(epoch::StageSource, Derived)> = Vec::new();
    let mut derived: Vec<Option<Derived>> = Vec::new();
    for p in runs {
        derived.push(match &meaning {
            Meaning::Stage(i) => {
                let stage = &src.stages.stages[*i];
                let at = |msg: String| BuildError::At {
                    file: src.file.clone(),
                    line: stage.line,
                    msg,
                    excerpt: Box::default(),
                };
                let p = p.clone().unwrap_or_else(|| host.clone());
                let g = plan::global_args(&src.stages, &lexer, &src.file, &opts.build_args, &p, &host)?;
                let env: Vec<(String, String)> =
                    g.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
                let s = epoch::stage_source(stage, &env, &opts.build_args, &lexer).map_err(at)?;
                match read.iter().find(|(r, _)| *r == s) {
                    Some((_, t)) => Some(t.clone()),
                    None => {
                        let t = epoch::stage_source_time(store, &s)
                            .map_err(|e| at(format!("SOURCE_DATE_EPOCH={v}: {e}")))?;
                        read.push((s, t.clone()));
                        Some(t)
                    }
                }
            }
            _ => shared.clone(),
        });
    }
    // the log names the platform when platforms got different times
    let differ = derived.windows(2).any(|w| w[0] != w[1]);
    let mut out = Vec::new();
    for (p, d) in runs.iter().zip(derived) {
        let mut sde = match meaning {
            Meaning::Seconds(n) => Some(n),
            _ => None,
        };
        let (mut note, mut from) = (None, None);
        if let Some((t, what)) = d {
            if let Some(t) = t {
                crate::epoch::check_time(t)
                    .map_err(|e| BuildError::Other(format!("SOURCE_DATE_EPOCH={v}: {what} is {t}: {e}")))?;
            }
            sde = t;
            let named = match p.as_ref().filter(|_| differ) {
                Some(p) => format!("{v} for {p}"),
                None => v.clone(),
            };
            note = Some(match sde {
                Some(n) => format!("# SOURCE_DATE_EPOCH={named}: {n}, {what}"),
                None => {
                    format!("# SOURCE_DATE_EPOCH={named}: none ({what}): the build is one without SOURCE_DATE_EPOCH")
                }
            });
            from = Some(match sde {
                Some(n) => format!("SOURCE_DATE_EPOCH={v}: {n}, {what}"),
                None => format!("SOURCE_DATE_EPOCH={v} gave none ({what}): 0, slipway's reproducible default"),
            });
        }
        let mut o = opts.clone();
        // BuildKit's setBuildArgValue: the seconds where the value was, or nothing
        let secs = sde.map(|n| n.to_string());
        if from_build_arg {
            o.build_args.retain(|(k, _)| k != epoch::ARG);
            if let Some(s) = &secs {
                o.build_args.push((epoch::ARG.to_string(), s.clone()));
            }
        }
        o.set_global_args = vec![(epoch::ARG.to_string(), secs)];
        out.push((with_times(&o, sde, from), note));
    }
    Ok(out)
}

/// A platform's build and its outputs' times.
#[derive(Debug, Clone)]
struct Timing {
    /// What the build writes: its steps, their cache entries, its image.
    build: retime::Times,
    /// What each output (of `output::outputs`) writes, in order: the build's, or its own.
    outputs: Vec<retime::Times>,
    /// Each output's SOURCE_DATE_EPOCH: the mtime a local or tar output gives every file.
    epochs: Vec<Option<i64>>,
}

impl Timing {
    /// Whether an output writes times other than the build's (an image of its own).
    fn varies(&self) -> bool {
        self.outputs.iter().any(|t| !t.same_image(&self.build))
    }
}

/// The times of `o` (BuildOptions of one platform, after `with_times`) with `mtimes`.
fn times_of(o: &BuildOptions, mtimes: layer::Mtimes) -> retime::Times {
    retime::Times { mtimes, created: o.created, epoch: o.epoch, created_from: o.created_from.clone() }
}

/// Each run of `with_epochs` with its outputs' times, as BuildKit's exporters each take their
/// own: an output's `source-date-epoch=` (output.rs) wins over SOURCE_DATE_EPOCH of the build,
/// which an output without one takes (BuildKit's control.go gives the build arg only to
/// exporters without the option; the Dockerfile's `ARG SOURCE_DATE_EPOCH` never sees an
/// exporter's); its `rewrite-timestamp` says what its layers' mtimes are. When every output
/// writes the same times, the build writes them (its steps' cache entries are those of a build
/// with any one of them). Otherwise the build writes layers every output's can be made from by
/// lowering times (its own SOURCE_DATE_EPOCH's when they can, else an output's, else the files'
/// own), and each output whose times differ gets its own image (`retime`); outputs that cannot
/// be served by one build are refused before anything is built, naming them.
fn with_output_times(
    runs: Vec<(BuildOptions, Option<String>)>,
) -> Result<Vec<(BuildOptions, Option<String>, Timing)>, BuildError> {
    let mut out = Vec::new();
    for (run, note) in runs {
        let req = output::Request { outputs: &run.outputs, tags: &run.tags, push: run.push, ..Default::default() };
        let outs = output::outputs(&req);
        // each output's options as a build with only it would have them, and the layers it needs
        let mut own: Vec<(BuildOptions, Option<layer::Mtimes>)> = Vec::new();
        for o in &outs {
            let mut t = match o.source_date_epoch {
                Some(n) => with_times(&run, Some(n), Some(format!("source-date-epoch={n} of the output"))),
                None => run.clone(),
            };
            // BuildKit's exporter only clamps `created` and the history's times to its epoch
            // (writer.go patchImageConfig): the build's own earlier SOURCE_DATE_EPOCH, which the
            // frontend wrote there, stays
            if let (Some(n), Some(s), Timestamp::Epoch) = (o.source_date_epoch, run.source_date_epoch, run.timestamp) {
                if s < n {
                    t.created = s;
                    t.created_from = run.created_from.clone();
                }
            }
            if run.created_now {
                // `--timestamp now`: the one build time for every output
                t.created = run.created;
            }
            let needs = match (&o.kind, output::rewrites(o)) {
                (_, Some(rewrite)) => Some(mtimes_of(rewrite, t.source_date_epoch, t.epoch)),
                // every file of a local or tar output gets its SOURCE_DATE_EPOCH when it has one
                (output::Kind::Local { .. } | output::Kind::Tar { .. }, None) => {
                    t.source_date_epoch.is_none().then(|| mtimes_of(true, None, t.epoch))
                }
                _ => None,
            };
            own.push((t, needs));
        }
        let epochs = own.iter().map(|(t, _)| t.source_date_epoch).collect();
        let timed = |i: usize| !matches!(outs[i].kind, output::Kind::CacheOnly);
        // the candidates for what the build writes: the one every output writes, else the
        // build's own, each output's, the files' own times
        let wanted: Vec<(usize, retime::Times)> = own
            .iter()
            .enumerate()
            .filter(|(i, (_, n))| n.is_some() || timed(*i))
            .map(|(i, (t, n))| (i, times_of(t, n.unwrap_or_else(|| mtimes_of(true, t.source_date_epoch, t.epoch)))))
            .collect();
        let same = wanted.windows(2).all(|w| w[0].1.same_image(&w[1].1));
        let build_own = mtimes_of(true, run.source_date_epoch, run.epoch);
        let mut candidates: Vec<(BuildOptions, layer::Mtimes)> = Vec::new();
        match wanted.first() {
            Some((i, t)) if same => candidates.push((own[*i].0.clone(), t.mtimes)),
            _ => {
                candidates.push((run.clone(), build_own));
                candidates.extend(own.iter().filter_map(|(t, n)| n.map(|n| (t.clone(), n))));
                candidates.push((run.clone(), layer::Mtimes::Kept(run.source_date_epoch)));
            }
        }
        let needs: Vec<Option<layer::Mtimes>> = own.iter().map(|(_, n)| *n).collect();
        let mt: Vec<layer::Mtimes> = candidates.iter().map(|(_, m)| *m).collect();
        let k = output::layer_times(&outs, run.outputs.len(), &needs, &mt, layer::now()).map_err(BuildError::Other)?;
        let (base, mtimes) = candidates.swap_remove(k);
        let build = times_of(&base, mtimes);
        let outputs = own.iter().map(|(t, n)| n.map_or_else(|| build.clone(), |n| times_of(t, n))).collect();
        out.push((base, note, Timing { build, outputs, epochs }));
    }
    Ok(out)
}

/// `opts` with its times (`created`, `created_from`, `created_now`, `epoch`,
/// `source_date_epoch`) chosen after `--timestamp` from SOURCE_DATE_EPOCH `sde` (`from`: what
/// gave it, when a name did).
fn with_times(opts: &BuildOptions, sde: Option<i64>, from: Option<String>) -> BuildOptions {
    let mut o = opts.clone();
    let (created, created_from) = match opts.timestamp {
        Timestamp::Now => (layer::now(), "--timestamp now: the build's time".to_string()),
        Timestamp::At(n) => (n, format!("--timestamp {n}")),
        Timestamp::Epoch => match (sde, from) {
            (Some(e), Some(f)) => (e, f),
            (Some(e), None) => (e, format!("SOURCE_DATE_EPOCH={e}")),
            (None, Some(f)) => (0, f),
            (None, None) => (0, "SOURCE_DATE_EPOCH unset: 0, slipway's reproducible default".to_string()),
        },
    };
    o.created = created;
    o.created_from = created_from;
    o.created_now = opts.timestamp == Timestamp::Now;
    o.epoch = match opts.timestamp {
        Timestamp::At(n) => n,
        _ => sde.unwrap_or(0),
    };
    o.source_date_epoch = sde;
    o
}

/// Builds each platform of `runs` (its options, with its platform and times, and the log's line
/// on its SOURCE_DATE_EPOCH) and writes the outputs; what all platforms share is the first's.
fn build_read(
    store: &Store,
    runs: Vec<(BuildOptions, Option<String>, Timing)>,
    src: &Source,
) -> Result<Built, BuildError> {
    let Some(opts) = runs.first().map(|(o, _, _)| o.clone()) else {
        return Err(BuildError::Other("no platform to build for".into()));
    };
    let opts = &opts;
    // checked here; outputs take them as given (name-canonical and push-by-digest look at the tag)
    for t in &opts.tags {
        crate::store::normalize_ref(t)?;
    }
    let tags = opts.tags.clone();
    let started = std::time::SystemTime::now();
    let mut req = output::Request {
        outputs: &opts.outputs,
        tags: &tags,
        annotations: &opts.annotations,
        push: opts.push,
        attestations: None,
    };
    let outs = output::outputs(&req);
    for w in output::replaced_names(&req) {
        eprintln!("slipway: warning: {w}");
    }
    let requested = crate::attest::resolve(&opts.attest, &opts.build_args).map_err(BuildError::Other)?;
    let provenance = requested.provenance.clone();
    // capture-usage=true: the machine sampled from here to the provenance (BuildKit's
    // SysSampler records over the whole solve)
    let mut sys_sampler = provenance.as_ref().filter(|p| p.capture_usage).map(|_| crate::usage::Sampler::sys());
    let multi = multi_platform(opts, runs.len()).map_err(BuildError::Other)?;
    output::check(&outs, multi, requested.any()).map_err(BuildError::Other)?;
    let varies = runs.iter().any(|(_, _, t)| t.varies());
    if varies && inline_cache_asked(opts) {
        return Err(BuildError::Other(
            "--cache-to type=inline: the outputs write different times (rewrite-timestamp, source-date-epoch), so \
             each writes an image of its own, and the inline cache describes the build's steps, whose layers only \
             one of them has (give the outputs the same times, or export the cache another way)"
                .into(),
        ));
    }
    let ctx = exec::SharedContext::new(open_context(store, src)?);
    crate::trace::point("context");
    // each platform's executor options: its times are its own
    let mut eopts = Vec::new();
    for (o, _, timing) in &runs {
        eopts.push(exec::Options {
            file: src.file.clone(),
            no_cache: opts.no_cache,
            explain_cache: opts.explain_cache,
            mtimes: timing.build.mtimes,
            created: o.created,
            created_now: o.created_now,
            created_from: o.created_from.clone(),
            quiet: opts.quiet,
            debug: opts.debug,
            secrets: opts.secrets.clone(),
            ssh: opts.ssh.clone(),
            jobs: opts.jobs,
            run_extras: run_extras(opts).map_err(BuildError::Other)?,
            no_cache_stages: no_cache_stages(&src.stages, &opts.no_cache_filter)?,
        });
    }
    let eopts = eopts;
    // an output on stdout (`-o -`) sends the log to stderr
    let out = || -> Box<dyn std::io::Write + Send> {
        if opts.quiet {
            Box::new(std::io::sink())
        } else if output::writes_stdout(&outs) {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let new_executor = |eopts| {
        let runtime = Runtime {
            cgroup_parent: opts.run_extras.cgroup_parent.clone(),
            ..Runtime::new(opts.runtime.clone(), store.root.join("tmp/runtime"))
        };
        Executor::new(store, eopts, &ctx, runtime, progress::Progress::new(opts.progress, out()))
    };
    let mut x = new_executor(&eopts[0]);
    if let Some(n) = &src.remote {
        x.progress.note(n);
    }
    let mut notes: Vec<&String> = runs.iter().filter_map(|(_, n, _)| n.as_ref()).collect();
    notes.dedup();
    for n in notes {
        x.progress.note(n);
    }
    let imported = import_caches(opts, store, &mut x);
    x.imported = imported.clone();
    // every platform planned first: a plan reads no state of another platform's build
    let mut plans = Vec::new();
    // what each platform's provenance says (when asked for)
    let mut infos = Vec::new();
    for ((one, _, _), eo) in runs.iter().zip(&eopts) {
        let (plan, used_contexts, materials) = ctx.with(|c| make_plan(store, one, eo.mtimes, src, c, false));
        if provenance.is_some() {
            infos.push(attest_info(one, src, &plan, materials));
        }
        if opts.debug {
            eprint!("debug: {plan}");
        }
        plans.push((one.platform.clone(), plan, used_contexts));
    }
    crate::trace::point("plan");
    // the build checks, on the first platform's plan (BuildKit checks once per solve); shown
    // before any step runs, and with error=true the build stops here
    let report = match plans.first() {
        Some((_, plan, _)) => {
            let ignore = src.remote.is_none().then(|| ctx.with(|c| c.ignore().clone()));
            lint(opts, src, plan, ignore.as_ref())?
        }
        None => lint::Report::default(),
    };
    for line in report.log_lines() {
        x.progress.note(&line);
    }
    // buildx counts them when its progress closes, whether the build failed or not
    let _summary = Summary(report.summary(&src.file, &src.text, opts.debug), out());
    if let Some(msg) = report.failure() {
        x.progress.fail();
        let w = &report.warnings[0];
        return Err(BuildError::At { file: src.file.clone(), line: w.start, msg, excerpt: Box::default() });
    }
    // BuildKit checks the entitlements of the whole definition when it loads it for a solve,
    // before any step runs (`--check` solves nothing, so refuses none)
    for (_, plan, _) in &plans {
        plan.entitlements(&src.file, opts.allow_insecure, opts.allow_network_host, &opts.devices)?;
    }
    // BuildKit's worker logs "Optional device is not registered"; here the user sees it
    for (line, d) in plans.iter().flat_map(|(_, p, _)| p.missing_devices()).collect::<std::collections::BTreeSet<_>>() {
        eprintln!(
            "slipway: warning: {}:{line}: RUN --device={d}: optional device is not registered: the step runs without it",
            src.file
        );
    }
    // the SBOM generator, resolved (pulled) for the build platform before any step runs, as
    // BuildKit's frontend resolves its scanner before it solves
    let generator = match &requested.sbom {
        Some(s) => {
            let mut log = Vec::new();
            let g = crate::sbom::resolve(store, &opts.remote, s, &mut log);
            for l in log {
                x.progress.note(&l);
            }
            Some(g.map_err(BuildError::Other)?)
        }
        None => None,
    };
    // the declared ARGs and used contexts of all platforms, for the warnings
    let declared_args: std::collections::BTreeSet<String> =
        plans.iter().flat_map(|(_, p, _)| p.declared_args.iter().cloned()).collect();
    let used_contexts: std::collections::BTreeSet<String> =
        plans.iter().flat_map(|(_, _, u)| u.iter().cloned()).collect();
    let warn = || {
        warn_unused_build_args(opts, &declared_args);
        // a name nothing the target needs uses: said, not silently dropped
        for k in opts.named_contexts.by_key.keys().filter(|k| !used_contexts.contains(*k)) {
            eprintln!("slipway: warning: --build-context {k}: no FROM, COPY --from or RUN --mount from= of the built stages uses it");
        }
    };
    // the index entry says the platform asked for; the config what the stage was built for
    let entry = |platform: Option<Platform>, img: Image, epoch: Option<i64>, created: i64| {
        let c = &img.config;
        let platform = platform.filter(|_| multi).unwrap_or(Platform {
            os: c.os.clone(),
            architecture: c.architecture.clone(),
            variant: Some(c.variant.clone()).filter(|v| !v.is_empty()),
        });
        output::PlatformImage { platform, image: img, epoch, created }
    };
    // what each platform's scan takes besides its image (BuildKit's SBOM extras, each
    // platform's own): the stages other than the target whose ARG enables them, the context
    // when the target's does, and whether the scan runs without its cache (BuildKit's
    // IsIgnoreCache: the target or such a stage under --no-cache-filter)
    let picks: Vec<ScanPicks> = plans
        .iter()
        .zip(&eopts)
        .map(|((_, p, _), eo)| {
            let stages: Vec<(String, usize)> = p
                .stages
                .iter()
                .filter(|st| st.index != p.target && st.sbom.stage)
                .map(|st| (st.sbom.name.clone(), st.index))
                .collect();
            let context = p.stages.iter().any(|st| st.index == p.target && st.sbom.context);
            let no_cache = opts.no_cache
                || eo.no_cache_stages.contains_key(&p.target)
                || stages.iter().any(|(_, i)| eo.no_cache_stages.contains_key(i));
            // a remote context is the frontend's source as it is, whole (dockerui MainContext
            // returns it without the FollowPaths)
            let context_paths = if src.remote.is_some() { Default::default() } else { p.context_paths.clone() };
            ScanPicks { stages, context, context_paths, no_cache }
        })
        .collect();
    // the final states of the stages picked, per platform
    let mut picked_states: Vec<BTreeMap<usize, exec::State>> = Vec::new();
    let pick = |k: usize, states: &BTreeMap<usize, exec::State>| -> BTreeMap<usize, exec::State> {
        let Some(p) = picks.get(k).filter(|_| requested.sbom.is_some()) else { return BTreeMap::new() };
        p.stages.iter().filter_map(|(_, i)| states.get(i).map(|s| (*i, s.clone()))).collect()
    };
    let mut images = Vec::new();
    let (mut keys, mut mounts) = (Vec::new(), Vec::new());
    // the config digest of each platform's result (`--cache-to ...,mode=min` exports its chain)
    let mut results = Vec::new();
    let together = runs.len() > 1 && opts.jobs > 1 && plans.iter().all(|(_, p, _)| p.stop.is_none());
    let last = if together {
        // the platforms' stages in one scheduler, as BuildKit solves them
        let labelled = plans
            .into_iter()
            .zip(&eopts)
            .map(|((p, plan, _), eo)| (p.map(|p| p.to_string()).unwrap_or_default(), plan, eo))
            .collect();
        let res = x.run_platforms(labelled);
        crate::trace::point("steps");
        match &res {
            Err(_) => x.progress.fail(),
            Ok(_) => warn(),
        }
        ctx.save(store);
        crate::trace::point("stat-save");
        for (k, (((st, states), (one, _, _)), eo)) in res?.iter().zip(&runs).zip(&eopts).enumerate() {
            picked_states.push(pick(k, states));
            results.push(st.id.clone());
            let img = inline_cache(opts, store, x.image(st, &eo.created_from)?, x.keys(), &st.id)?;
            images.push((one.platform.clone(), img, st.base));
        }
        x
    } else {
        let mut first = Some(x);
        let mut last = None;
        for (k, ((platform, plan, _), eo)) in plans.into_iter().zip(&eopts).enumerate() {
            let mut x = first.take().unwrap_or_else(|| {
                let mut n = new_executor(eo);
                n.imported = imported.clone();
                n
            });
            if let Some(p) = platform.as_ref().filter(|_| multi) {
                x.progress.note(&format!("# building for {p}"));
            }
            let res = x.run(plan);
            crate::trace::point("steps");
            if res.is_err() {
                x.progress.fail();
            }
            ctx.save(store);
            crate::trace::point("stat-save");
            let st = res?;
            picked_states.push(pick(k, x.states()));
            results.push(st.id.clone());
            let img = inline_cache(opts, store, x.image(&st, &eo.created_from)?, x.keys(), &st.id)?;
            images.push((platform, img, st.base));
            keys.extend(x.take_keys());
            mounts.extend(x.take_cache_mounts());
            last = Some(x);
        }
        warn();
        match last {
            Some(x) => x,
            None => return Err(BuildError::Other("no platform to build for".into())),
        }
    };
    let mut x = last;
    x.add_keys(keys, mounts);
    // each platform's image scanned by the generator (BuildKit runs its scanner per platform)
    let mut sboms = Vec::new();
    if let (Some(s), Some(g)) = (&requested.sbom, &generator) {
        let runtime = Runtime {
            cgroup_parent: opts.run_extras.cgroup_parent.clone(),
            ..Runtime::new(opts.runtime.clone(), store.root.join("tmp/runtime"))
        };
        let scan = crate::sbom::Scan {
            store,
            runtime: &runtime,
            network: opts.network,
            extras: &eopts[0].run_extras,
            no_cache: opts.no_cache,
            debug: opts.debug,
        };
        for (k, (_, img, _)) in images.iter().enumerate() {
            let (p, states) = match (picks.get(k), picked_states.get(k)) {
                (Some(p), Some(s)) => (p, s),
                _ => return Err(BuildError::Other("sbom: a platform's scan extras went missing".into())),
            };
            // BuildKit's map: the context first, a stage of that name in its place
            let mut extras = crate::sbom::Extras::new();
            if p.context {
                let x = ctx.with(|c| crate::sbom::context_extra(c, &p.context_paths)).map_err(BuildError::Other)?;
                extras.insert("context".to_string(), x);
            }
            for (name, i) in &p.stages {
                if let Some(st) = states.get(i) {
                    let x = crate::sbom::Extra::Stage { layers: st.layers.clone(), id: exec::fs_id(&st.config) };
                    extras.insert(name.clone(), x);
                }
            }
            let scan = crate::sbom::Scan { no_cache: p.no_cache, ..scan.clone() };
            let c = &img.config;
            let what = Platform {
                os: c.os.clone(),
                architecture: c.architecture.clone(),
                variant: Some(c.variant.clone()).filter(|v| !v.is_empty()),
            }
            .to_string();
            let line = format!("[{what}] generating sbom using {}", g.reference);
            if let Some(kept) = scan.kept(g, s, img, &extras) {
                x.progress.note(&format!("CACHED {line}"));
                sboms.push(kept);
                continue;
            }
            x.progress.note(&line);
            match scan.scan(g, s, img, &extras, &what) {
                Ok(sc) => sboms.push(sc),
                Err(e) => {
                    x.progress.fail();
                    return Err(BuildError::Other(e));
                }
            }
        }
    }
    if let Some(p) = &provenance {
        let at = |t: std::time::SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (d.as_secs() as i64, d.subsec_nanos())
        };
        let times = opts.created_now.then(|| (at(started), at(std::time::SystemTime::now())));
        // one ID for the build (BuildKit's job ID), and only beside the times
        let id = match times {
            Some(_) => Some(crate::attest::invocation_id().map_err(BuildError::Other)?),
            None => None,
        };
        let sys_usage = match sys_sampler.take() {
            Some(s) => Some(s.close(true).map_err(|e| BuildError::Other(format!("provenance: capture-usage: {e}")))?),
            None => None,
        };
        let chains = infos.iter().map(|i| i.chains.clone()).collect();
        let predicates = infos
            .iter_mut()
            .map(|i| {
                i.times = times;
                i.invocation_id = id.clone();
                let mut pred = crate::attest::predicate(p, i)?;
                if let Some(s) = &sys_usage {
                    crate::attest::set_sys_usage(&mut pred, s);
                }
                Ok(pred)
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(BuildError::Other)?;
        req.attestations =
            Some(crate::attest::Attestations { provenance: Some(p.clone()), predicates, chains, sboms: Vec::new() });
    }
    if requested.sbom.is_some() {
        req.attestations.get_or_insert_with(Default::default).sboms = sboms;
    }
    // each output's images: the build's, or its own where its times differ (made once for
    // outputs that share them)
    let mut made: Vec<(usize, &retime::Times, Image)> = Vec::new();
    let mut per_output = Vec::new();
    for (i, o) in outs.iter().enumerate() {
        let mut imgs = Vec::new();
        for (p, ((platform, img, base), (_, _, timing))) in images.iter().zip(&runs).enumerate() {
            let to = &timing.outputs[i];
            let own = match made.iter().find(|(q, t, _)| *q == p && t.same_image(to)) {
                Some((_, _, im)) => im.clone(),
                None if to.same_image(&timing.build) => img.clone(),
                None => {
                    x.progress.note(&format!(
                        "# {}: its own times: {}, created {}",
                        output::which(i, o, opts.outputs.len()),
                        to.mtimes.describe(),
                        to.created
                    ));
                    let im = retime::image(store, img, *base, &timing.build, to)?;
                    made.push((p, to, im.clone()));
                    im
                }
            };
            imgs.push(entry(platform.clone(), own, timing.epochs[i], to.created));
        }
        per_output.push(imgs);
    }
    let progress = &mut x.progress;
    let done = output::export(store, &per_output, multi, &outs, &req, &mut |s| progress.note(s))?;
    for m in &done.manifests {
        x.record_keys(&m.digest)?;
    }
    let id = match (multi, done.manifests.first()) {
        (true, Some(d)) => d.digest.clone(),
        _ => per_output
            .first()
            .and_then(|v| v.first())
            .map_or_else(|| images[0].1.config_digest.clone(), |p| p.image.config_digest.clone()),
    };
    x.progress.finish(&id, &done.names);
    crate::trace::point("commit");
    Ok(Built {
        id,
        tags: done.names,
        push: done.push,
        keys: x.take_keys(),
        results,
        cache_mounts: x.take_cache_mounts(),
        metadata: {
            let mut m = done.metadata;
            if metadata_warnings_enabled() && !report.warnings.is_empty() {
                let w = report.warnings.iter().map(|w| w.metadata(&src.file, &src.text)).collect();
                m.insert("buildx.build.warnings".into(), serde_json::Value::Array(w));
            }
            m
        },
    })
}

/// What a platform's SBOM scan takes besides its image (`plan::SbomScan`).
struct ScanPicks {
    /// The stages other than the target the scan mounts: (BuildKit's stage name, index).
    stages: Vec<(String, usize)>,
    /// The context too (the target stage enables it).
    context: bool,
    /// What of the context (`Plan::context_paths`).
    context_paths: std::collections::BTreeSet<String>,
    /// Not taken from the scan cache.
    no_cache: bool,
}

/// `--cache-to type=inline` (or `--build-arg BUILDKIT_INLINE_CACHE=1`, as buildx reads it with
/// Go's ParseBool): `img` with the cache of the chain of its state `result` among `keys` in its
/// config, so that `--cache-from IMAGE` finds it; `img` as it is otherwise, or when no step of
/// this build made it.
fn inline_cache(
    opts: &BuildOptions,
    store: &Store,
    img: crate::store::Image,
    keys: &[String],
    result: &str,
) -> Result<crate::store::Image, BuildError> {
    if !inline_cache_asked(opts) {
        return Ok(img);
    }
    let p = store.blob_path(&img.config_digest);
    let raw = std::fs::read(&p).map_err(|e| BuildError::Other(format!("inline cache: read {}: {e}", p.display())))?;
    let with = registry::cache::inline_config(store, &raw, keys, result)
        .map_err(|e| BuildError::Other(format!("--cache-to type=inline: {e}")))?;
    let Some(config) = with else { return Ok(img) };
    let (manifest, id) = store.put_image_bytes(&config, &img.manifest.layers)?;
    // what `inspect` shows as CreatedFrom, recorded by the image's ID (Executor::image)
    let rel = |id: &str| format!("cache/created/{}.json", id.trim_start_matches("sha256:"));
    if let Some(from) = store.read_record::<String>(&rel(&img.config_digest)) {
        store.write_record(&rel(&id), &from)?;
    }
    Ok(store.image_by_manifest(&manifest.digest)?)
}

/// Whether the build writes its cache inline: `--cache-to type=inline`, or
/// `--build-arg BUILDKIT_INLINE_CACHE=1` as buildx reads it with Go's ParseBool.
fn inline_cache_asked(opts: &BuildOptions) -> bool {
    opts.inline_cache || build_arg(opts, "BUILDKIT_INLINE_CACHE").is_some_and(crate::gobool::is_true)
}

/// `--cache-from`: the caches whose steps count as hits (an unreadable one is a warning, as in
/// BuildKit: the build goes on without it).
fn import_caches(
    opts: &BuildOptions,
    store: &Store,
    x: &mut Executor,
) -> Vec<std::sync::Arc<registry::cache::Imported>> {
    let mut out = Vec::new();
    for import in &opts.cache_from {
        let from = &import.from;
        match registry::cache::import(&opts.remote.options, import) {
            Ok(i) => {
                let n = i.import_mounts(store).unwrap_or_else(|e| {
                    x.progress.note(&format!("WARNING: cache mounts from {from} not imported: {e}"));
                    0
                });
                let mounts = if n > 0 { format!(", {n} cache mounts") } else { String::new() };
                x.progress.note(&format!("importing cache from {from}: {} steps{mounts}", i.len()));
                out.push(std::sync::Arc::new(i));
            }
            Err(e) => x.progress.note(&format!("WARNING: cache from {from} not imported: {e}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_buildkits() {
        let src = "FROM scratch\nCOPY a /a\nENV A=1\nRUN exit 3\nCOPY b /b\n";
        assert_eq!(
            dockerfile_excerpt("Dockerfile", src, 4, 4),
            "Dockerfile:4\n--------------------\n   2 |     COPY a /a\n   3 |     ENV A=1\n   4 | >>> RUN exit 3\n\
             \x20  5 |     COPY b /b\n   6 |     \n--------------------\n"
        );
        // at the top the context is all below; a continued instruction is marked whole
        let src = "RUN a \\\n  b\nCOPY x /\nENV Z=1\n";
        assert_eq!(
            dockerfile_excerpt("df", src, 1, 2),
            "df:1\n--------------------\n   1 | >>> RUN a \\\n   2 | >>>   b\n   3 |     COPY x /\n--------------------\n"
        );
        assert_eq!(dockerfile_excerpt("df", "FROM x", 9, 9), "");
    }
}
