//! The build as data. `plan` turns typed stages into the stages a target needs, in build order,
//! each with its base and its steps, and each step with all it needs to run and to be cached: the
//! expanded instruction, the config change, RUN's argv, environment and mounts, COPY's sources
//! and destination, and its cache key's parts (`Inputs`). Planning reads the Dockerfile, the
//! build context (COPY sources are resolved and fingerprinted here) and the configs of base
//! images; it runs, mounts and writes nothing, so it is tested without a store or a runtime.
//! `exec` runs the steps; `Display` prints a plan (`slipway --debug build`, `slipway plan`).

mod copy;
pub mod graph;
mod meta;
mod planner;
mod run;
mod state;

pub use meta::{go_quote_list, parse_duration, platform_args};
pub use planner::{global_args, plan, replace_named_stages, Images, Options, Remotes};

use crate::cache::Inputs;
use crate::context::ContextError;
use crate::dockerignore::Matcher;
use crate::spec::Network;
use crate::store::image::{Healthcheck, ImageConfig};
use crate::store::{Image, StoreError};
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{file}:{line}: {msg}")]
    At {
        file: String,
        line: usize,
        msg: String,
        /// The Dockerfile around the line, as BuildKit shows it (filled in by `build`; empty
        /// where the file is not at hand).
        excerpt: Box<str>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("{0}")]
    Other(String),
}

/// What a build does, in the order it does it.
#[derive(Debug)]
pub struct Plan {
    /// The stages the target needs, each after the stages it depends on.
    pub stages: Vec<StagePlan>,
    /// The target stage (its Dockerfile index); the image is its final state.
    pub target: usize,
    /// The steps the log counts (`Step N/M`): each needed stage's FROM and instructions.
    pub total: usize,
    /// Every name an ARG of the build declares (the global ones and those of the stages the
    /// target needs): a `--build-arg` none of them takes is reported unused, as docker does.
    pub declared_args: std::collections::BTreeSet<String>,
    /// Where planning stopped, when it did. What comes before it runs first, then the build
    /// fails with this error, as it would if each step were planned just before it ran.
    pub stop: Option<Stop>,
    /// What the planned stages read of the context (BuildKit's ctxPaths, the context's
    /// FollowPaths): context-relative patterns in .dockerignore's syntax, each taking what is
    /// below a path it matches; "" (the root) stands for all of it.
    pub context_paths: std::collections::BTreeSet<String>,
}

/// The point where planning failed.
#[derive(Debug)]
pub struct Stop {
    /// The counted instruction the log shows (`Step N/M`) before the error.
    pub shown: Option<String>,
    /// What resolving a base image said before it failed (pull progress), shown next.
    pub notes: Vec<String>,
    pub error: BuildError,
}

/// One stage of the plan.
#[derive(Debug)]
pub struct StagePlan {
    /// The stage's index in the Dockerfile (`COPY --from=N` counts these).
    pub index: usize,
    pub name: Option<String>,
    pub line: usize,
    /// The FROM line as written (the log shows it).
    pub text: String,
    pub base: Base,
    /// The stages that must be built first: the base stage and the `COPY --from` stages.
    pub deps: Vec<usize>,
    /// What the stage is built for: `FROM --platform`, else its base stage's, else the build's
    /// (`--platform`, else this machine's). A `FROM scratch` config says it.
    pub platform: crate::registry::Platform,
    /// What resolving the base image said (pull progress), shown after the FROM line.
    pub notes: Vec<String>,
    /// The base's ONBUILD triggers as written. They are the first steps (not counted).
    pub onbuild: Vec<String>,
    pub steps: Vec<Step>,
    /// What an SBOM scan takes of the stage besides the target (its ARGs
    /// `BUILDKIT_SBOM_SCAN_STAGE` / `BUILDKIT_SBOM_SCAN_CONTEXT`).
    pub sbom: SbomScan,
}

/// BuildKit's SBOM scan extras as a stage's ARGs enable them (dockerfile2llb convert.go):
/// `BUILDKIT_SBOM_SCAN_STAGE` makes the stage an extra of the scan when it is not the target,
/// `BUILDKIT_SBOM_SCAN_CONTEXT` on the target makes the build context one. Each takes `true`,
/// `false` (Go's ParseBool) or a comma-separated list of the stage names it is on for; the global
/// ARG's value holds for every stage, the last of the stage's own ARGs with a value (a base
/// stage's come first) wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbomScan {
    /// BuildKit's stageName, what the lists name and the extra is called by
    /// (`/run/src/extras/sbom-NAME`): the stage's name, else `stage-N` (N its Dockerfile
    /// index), "" in a Dockerfile of a single stage.
    pub name: String,
    pub stage: bool,
    pub context: bool,
}

/// The ARGs of the SBOM scan extras: read by the frontend, never part of an environment
/// (BuildKit's nonEnvArgs).
pub const SBOM_SCAN_STAGE: &str = "BUILDKIT_SBOM_SCAN_STAGE";
pub const SBOM_SCAN_CONTEXT: &str = "BUILDKIT_SBOM_SCAN_CONTEXT";

/// BuildKit's isEnabledForStage: a boolean as Go's ParseBool reads it, else a comma-separated
/// list of stage names (as written: no spaces trimmed) that holds `stage`.
pub fn scan_enabled_for(stage: &str, value: &str) -> bool {
    match crate::gobool::parse(value) {
        Some(b) => b,
        None => value.split(',').any(|n| n == stage),
    }
}

/// What a stage starts from.
#[derive(Debug)]
pub enum Base {
    Scratch,
    /// The final state of an earlier stage (its Dockerfile index).
    Stage(usize),
    /// An image of the store, by the name written.
    Image {
        name: String,
        image: Box<Image>,
    },
}

/// One instruction of a stage, planned.
#[derive(Debug)]
pub struct Step {
    pub line: usize,
    /// The instruction as written (the log shows it).
    pub text: String,
    /// The log counts it (`Step N/M`); ONBUILD triggers are not counted.
    pub counted: bool,
    /// The cache key's parts, with the state the step starts from: the expanded instruction,
    /// the build args it sees, its sources' fingerprints. `extra`, the state of a `--from`
    /// stage, exists only once that stage is built: the executor fills it in.
    pub inputs: Inputs,
    /// The image history's `created_by`.
    pub created_by: String,
    pub action: Action,
}

/// What a step does on a cache miss.
#[derive(Debug)]
pub enum Action {
    /// Only the image config changes (and history is added).
    Config(ConfigChange),
    /// WORKDIR: the config's working dir, and the directory made if missing.
    Workdir(String),
    Run(Run),
    Copy(Copy),
}

/// A change to the image config, as a metadata instruction makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// ARG: nothing but the history entry.
    Nothing,
    Env(Vec<(String, String)>),
    Labels(Vec<(String, String)>),
    Author(String),
    ExposedPorts(Vec<String>),
    Volumes(Vec<String>),
    User(String),
    StopSignal(String),
    Shell(Vec<String>),
    Cmd(Vec<String>),
    /// `keep_cmd`: a CMD was set earlier in this stage, so it stays.
    Entrypoint {
        argv: Vec<String>,
        keep_cmd: bool,
    },
    Onbuild(String),
    Healthcheck(Healthcheck),
}

impl ConfigChange {
    /// Whether the step adds a history entry: all but ONBUILD, which BuildKit's dispatchOnbuild
    /// only adds to the config (no commitToHistory; docker 20.10's BuildKit too).
    pub fn has_history(&self) -> bool {
        !matches!(self, ConfigChange::Onbuild(_))
    }

    pub fn apply(&self, c: &mut ImageConfig) {
        match self {
            ConfigChange::Nothing => {}
            ConfigChange::Env(pairs) => {
                for (k, v) in pairs {
                    c.env_set(k, v);
                }
            }
            ConfigChange::Labels(pairs) => {
                for (k, v) in pairs {
                    c.config.labels.insert(k.clone(), v.clone());
                }
            }
            ConfigChange::Author(a) => c.author = a.clone(),
            ConfigChange::ExposedPorts(ports) => {
                for p in ports {
                    c.config.exposed_ports.insert(p.clone(), Default::default());
                }
            }
            ConfigChange::Volumes(vols) => {
                for v in vols {
                    c.config.volumes.insert(v.clone(), Default::default());
                }
            }
            ConfigChange::User(u) => c.config.user = u.clone(),
            ConfigChange::StopSignal(s) => c.config.stop_signal = s.clone(),
            ConfigChange::Shell(v) => c.config.shell = v.clone(),
            ConfigChange::Cmd(v) => c.config.cmd = Some(v.clone()),
            ConfigChange::Entrypoint { argv, keep_cmd } => {
                c.config.entrypoint = Some(argv.clone());
                if !keep_cmd {
                    c.config.cmd = None;
                }
            }
            ConfigChange::Onbuild(t) => c.config.on_build.push(t.clone()),
            ConfigChange::Healthcheck(h) => c.config.healthcheck = Some(h.clone()),
        }
    }
}

/// A RUN step: the container's process and what is mounted besides the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// `USER`, resolved against the image's /etc/passwd when the step runs.
    pub user: String,
    pub cwd: String,
    pub network: Network,
    pub security: Security,
    /// In the order the runtime mounts them (a mount inside another's target comes after it).
    pub mounts: Vec<Mount>,
    /// The stage's platform where it is not this machine's: the step runs only through a
    /// binfmt_misc handler for its executables.
    pub platform: Option<crate::registry::Platform>,
    /// `RUN --device`: the CDI devices resolved and their edits to the container (boxed: most
    /// steps have none).
    pub devices: Box<crate::cdi::Injected>,
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// docker's default capabilities, masked and read-only /proc paths, read-only /sys.
    Sandbox,
    /// BuildKit's insecure mode (`build --allow security.insecure`): every capability this
    /// process has, nothing masked, /sys writable, all devices allowed.
    Insecure,
}

pub use crate::runmount::Sharing;

/// Something a RUN step's container sees besides its rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// A `#!` heredoc: the body as an executable file, bound read-only at `target`
    /// (`/dev/pipes/NAME`), which the step runs.
    Script { target: String, content: String },
    /// `type=cache`: a directory of the store that outlives the step and the build.
    Cache(CacheMount),
    /// `type=bind`: files of the context, a stage or an image.
    Bind(BindMount),
    /// `type=tmpfs`: an empty tmpfs.
    Tmpfs { target: String, size: Option<u64>, readonly: bool },
    /// `type=secret`: a `build --secret` as a file and/or an environment variable.
    Secret(SecretMount),
    /// `type=ssh`: an ssh-agent socket of `build --ssh`.
    Ssh(SshMount),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheMount {
    pub target: String,
    /// `id`, else the target as written (cleaned), as in BuildKit.
    pub id: String,
    pub sharing: Sharing,
    /// `from`: what a new cache directory starts with (`source` of it), else empty.
    pub from: Option<Origin>,
    /// The mounted path inside the cache directory, relative ("" for its root).
    pub source: String,
    /// The cache directory's mode and owner when made (`mode`, `uid`, `gid`).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub readonly: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub target: String,
    pub from: Origin,
    /// Relative to the context or to `/` of the stage or image ("" for the whole).
    pub source: String,
    /// Without `rw`; with it the step may write there, and what it writes is thrown away.
    pub readonly: bool,
    /// `source` as written (expanded and cleaned; a symlink in the context not followed): what
    /// BuildKit's ctxPaths record of a bind mount of the context.
    pub written: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMount {
    pub id: String,
    /// The file, unless only `env=` was given.
    pub target: Option<String>,
    pub env: Option<String>,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshMount {
    pub id: String,
    pub target: String,
    pub required: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Script { target, .. } | Mount::Tmpfs { target, .. } => target,
            Mount::Cache(c) => &c.target,
            Mount::Bind(b) => &b.target,
            Mount::Secret(s) => s.target.as_deref().unwrap_or(""),
            Mount::Ssh(s) => &s.target,
        }
    }

    /// What the step's cache key takes from this mount: its definition, never the content of
    /// a cache mount or a secret (a stage's state is added by the executor, context files are
    /// fingerprinted in the key's files).
    pub fn key(&self) -> String {
        let from = |o: &Origin| match o {
            Origin::Context => "context".to_string(),
            Origin::Stage(i) => format!("stage {i}"),
            Origin::Image(img) => format!("image {}", img.config_digest),
        };
        let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
        match self {
            Mount::Script { target, content } => format!("script {target} {}", content.len()),
            Mount::Cache(c) => format!(
                "cache target={} id={:?} sharing={:?} from={} source={:?} mode={} uid={} gid={} ro={}",
                c.target,
                c.id,
                c.sharing,
                c.from.as_ref().map(from).unwrap_or_default(),
                c.source,
                c.mode.map(|m| format!("{m:o}")).unwrap_or_default(),
                opt(c.uid),
                opt(c.gid),
                c.readonly
            ),
            Mount::Bind(b) => {
                format!("bind target={} from={} source={:?} ro={}", b.target, from(&b.from), b.source, b.readonly)
            }
            Mount::Tmpfs { target, size, readonly } => {
                format!("tmpfs target={target} size={} ro={readonly}", size.map(|s| s.to_string()).unwrap_or_default())
            }
            Mount::Secret(s) => format!(
                "secret id={:?} target={:?} env={:?} required={} mode={:o} uid={} gid={}",
                s.id, s.target, s.env, s.required, s.mode, s.uid, s.gid
            ),
            Mount::Ssh(s) => format!(
                "ssh id={:?} target={} required={} mode={:o} uid={} gid={}",
                s.id, s.target, s.required, s.mode, s.uid, s.gid
            ),
        }
    }
}

/// A COPY or ADD step.
#[derive(Debug)]
pub struct Copy {
    /// `COPY` or `ADD`, for messages.
    pub kw: &'static str,
    pub from: Origin,
    pub sources: Vec<Source>,
    pub dest: Dest,
    /// `--chown` as written (expanded); names are looked up in the image when the step runs.
    pub chown: Option<String>,
    /// `--chmod`: an octal mode, or a symbolic one applied to each entry's own mode.
    pub chmod: Option<crate::chmod::Chmod>,
    /// `--exclude` patterns, matched against source paths (context-relative, or relative to
    /// `/` of a `--from` filesystem).
    pub exclude: Matcher,
    /// `--link`: the layer is made on an empty filesystem (the destination's parents are new
    /// directories, nothing below is read or followed) and cached without the state below it,
    /// so a change there neither re-runs the step nor changes its layer. As BuildKit, not with
    /// `--chmod` (BuildKit's frontend makes such a step a plain copy).
    pub link: bool,
    /// The sources read from the context as written (expanded; no URL, no heredoc), as
    /// BuildKit's frontend records them in ctxPaths: what the SBOM scan's context extra takes.
    pub context_reads: Vec<String>,
}

/// Where a COPY's path sources (or a RUN bind mount's files) are.
#[derive(Debug, Clone)]
pub enum Origin {
    Context,
    /// `--from` an earlier stage (its Dockerfile index).
    Stage(usize),
    /// `--from` an image of the store.
    Image(Box<Image>),
}

impl PartialEq for Origin {
    fn eq(&self, o: &Origin) -> bool {
        match (self, o) {
            (Origin::Context, Origin::Context) => true,
            (Origin::Stage(a), Origin::Stage(b)) => a == b,
            (Origin::Image(a), Origin::Image(b)) => a.config_digest == b.config_digest,
            _ => false,
        }
    }
}

impl Eq for Origin {}

/// One source of a COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path: context-relative and resolved (wildcards expanded, "" the root) when the copy
    /// is from the context, where ADD extracts it when `extract`; as written, wildcards and
    /// all, in a `--from` filesystem (expanded once that is mounted).
    Path { path: String, extract: bool },
    /// A file with a heredoc's body (expanded unless its delimiter was quoted).
    Heredoc { name: String, content: String },
    /// `COPY --parents`: what `include` selects below the directory `root` (a pattern with
    /// .dockerignore's syntax, `**` included), copied with its path below `root`, the
    /// directories on the way included. `root` is the part before a `/./` pivot (the root
    /// when there is none): context-relative and resolved for a context copy, as written (a
    /// possible wildcard) in a `--from` filesystem. `required`: nothing in it is a wildcard,
    /// so the path must be there.
    Parents { root: String, include: String, required: bool },
    /// ADD of an http(s) URL: the file `name` (the URL path's last element, `__unnamed__`
    /// without one), not unpacked unless `--unpack`.
    Url(UrlSource),
    /// ADD of a git repository: the tree of `commit` (below `subdir`) copied into the
    /// destination.
    Git(GitSource),
}

/// An http(s) source of ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSource {
    pub url: String,
    pub name: String,
    /// `--checksum` (`sha256:...`, `sha384:...` or `sha512:...`): the content must have it,
    /// and it alone is the key (no request is made to plan the step).
    pub checksum: Option<String>,
    /// The content's sha256 digest and Last-Modified time (seconds), when planning fetched
    /// it (without `--checksum`); the digest names a blob of the store.
    pub fetched: Option<(String, Option<i64>)>,
    pub unpack: bool,
}

/// A git source of ADD (`https://host/repo.git#ref:subdir`, `git@host:repo.git`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository as git takes it (fragment and query removed).
    pub remote: String,
    /// The ref asked for (a branch, tag or commit; the remote's HEAD when empty).
    pub ref_name: String,
    /// What planning resolved it to with `git ls-remote` (the key).
    pub commit: String,
    /// The directory of the repository to copy (relative, "" for the top).
    pub subdir: String,
    pub keep_git_dir: bool,
    /// Submodules are checked out (the default, as BuildKit's).
    pub submodules: bool,
    /// `?mtime=commit`: files get the commit's time; else the build's epoch.
    pub mtime_commit: bool,
}

/// Where a COPY puts its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    /// Absolute and cleaned (a relative destination is joined onto WORKDIR).
    pub path: String,
    /// Written as a directory (ending in `/`, `/.` or being `.`).
    pub dir: bool,
}

impl Dest {
    /// docker's destination rule for a source named `name` (one of `sources`): inside `path`
    /// when that is a directory (written as one, or `is_dir` there) or there are several
    /// sources, else `path` itself.
    pub fn target(&self, name: &str, sources: usize, is_dir: bool) -> String {
        if self.dir || sources > 1 || is_dir {
            format!("{}/{name}", self.path.trim_end_matches('/'))
        } else {
            self.path.clone()
        }
    }
}

impl Step {
    /// The stages this step reads besides its own: `COPY --from` and `RUN --mount from=`.
    pub fn stage_deps(&self) -> Vec<usize> {
        match &self.action {
            Action::Copy(c) => match c.from {
                Origin::Stage(j) => vec![j],
                _ => vec![],
            },
            Action::Run(r) => r
                .mounts
                .iter()
                .filter_map(|m| match m {
                    Mount::Bind(BindMount { from: Origin::Stage(j), .. }) => Some(*j),
                    Mount::Cache(CacheMount { from: Some(Origin::Stage(j)), .. }) => Some(*j),
                    _ => None,
                })
                .collect(),
            _ => vec![],
        }
    }
}

impl Plan {
    /// The error planning stopped at, if any (a scheduler that fails before running anything
    /// asks this first).
    /// BuildKit's entitlement check (util/entitlements Set.Check and the device rule of
    /// llbsolver's ValidateEntitlements, which it makes on the whole definition before any step
    /// runs, in its words): the first RUN step that needs a privilege the build was not granted
    /// (`build --allow`), as an error at its line.
    pub fn entitlements(
        &self,
        file: &str,
        allow_insecure: bool,
        allow_network_host: bool,
        devices: &crate::cdi::Devices,
    ) -> Result<(), BuildError> {
        for step in self.stages.iter().flat_map(|s| &s.steps) {
            let Action::Run(r) = &step.action else { continue };
            let msg = if r.network == Network::Host && !allow_network_host {
                "RUN --network=host: network.host is not allowed (grant it with build --allow network.host)".into()
            } else if r.security == Security::Insecure && !allow_insecure {
                "RUN --security=insecure: security.insecure is not allowed (grant it with build --allow security.insecure)"
                    .into()
            } else if let Err(e) = devices.check(&r.devices) {
                format!("RUN --device: {e}")
            } else {
                continue;
            };
            return Err(BuildError::At { file: file.into(), line: step.line, msg, excerpt: Box::default() });
        }
        Ok(())
    }

    /// The optional devices (`RUN --device=NAME`, required=false) that are not registered, by
    /// line: the steps run without them, and the build says so.
    pub fn missing_devices(&self) -> Vec<(usize, &str)> {
        let mut out = Vec::new();
        for step in self.stages.iter().flat_map(|s| &s.steps) {
            if let Action::Run(r) = &step.action {
                out.extend(r.devices.missing.iter().map(|d| (step.line, d.as_str())));
            }
        }
        out
    }

    pub fn error(&self) -> Option<&BuildError> {
        self.stop.as_ref().map(|s| &s.error)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plan: {} stage(s), target stage {}, {} counted steps",
            self.stages.len(),
            self.target,
            self.total
        )?;
        for s in &self.stages {
            write!(f, "{s}")?;
        }
        if let Some(stop) = &self.stop {
            writeln!(f, "stop: {}", stop.error)?;
        }
        Ok(())
    }
}

impl fmt::Display for StagePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default();
        writeln!(f, "stage {}{name} (line {}): {}", self.index, self.line, self.text)?;
        let base = match &self.base {
            Base::Scratch => "scratch".to_string(),
            Base::Stage(i) => format!("stage {i}"),
            Base::Image { name, image } => format!("image {name} ({})", image.config_digest),
        };
        writeln!(f, "  base: {base}")?;
        writeln!(f, "  deps: {:?}", self.deps)?;
        writeln!(f, "  platform: {}", self.platform)?;
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        for t in &self.onbuild {
            writeln!(f, "  onbuild trigger: {t}")?;
        }
        if self.sbom.stage || self.sbom.context {
            let what = [(self.sbom.stage, "stage"), (self.sbom.context, "context")];
            let what: Vec<&str> = what.iter().filter(|(on, _)| *on).map(|(_, w)| *w).collect();
            writeln!(f, "  sbom scan extras: {} (as {:?})", what.join(", "), self.sbom.name)?;
        }
        for s in &self.steps {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trigger = if self.counted { "" } else { " (trigger)" };
        writeln!(f, "  step (line {}){trigger}: {}", self.line, self.text)?;
        let i = &self.inputs;
        writeln!(f, "    key: {} {:?}", i.keyword, i.text)?;
        if !i.args.is_empty() {
            writeln!(f, "    key args: {:?}", i.args)?;
        }
        if !i.files.is_empty() {
            let d = crate::context::digest_fingerprints(&i.files);
            writeln!(f, "    key files: {} fingerprint(s), digest {d}", i.files.len())?;
        }
        if !i.extra.is_empty() {
            writeln!(f, "    key extra: {}", i.extra)?;
        }
        match &self.action {
            Action::Config(c) => writeln!(f, "    config: {c:?}")?,
            Action::Workdir(p) => writeln!(f, "    workdir: {p}")?,
            Action::Run(r) => {
                writeln!(
                    f,
                    "    run: {:?} user={:?} cwd={:?} network={:?} security={:?}",
                    r.args, r.user, r.cwd, r.network, r.security
                )?;
                if let Some(p) = &r.platform {
                    writeln!(f, "    platform: {p} (not this machine's)")?;
                }
                writeln!(f, "    env: {:?}", r.env)?;
                for d in &r.devices.devices {
                    writeln!(f, "    device: {d}")?;
                }
                for d in &r.devices.missing {
                    writeln!(f, "    device: {d} (optional, not registered: skipped)")?;
                }
                for m in &r.mounts {
                    match m {
                        Mount::Script { target, content } => {
                            writeln!(f, "    mount: script at {target} ({} bytes)", content.len())?
                        }
                        m => writeln!(f, "    mount: {}", m.key())?,
                    }
                }
            }
            Action::Copy(c) => {
                let from = match &c.from {
                    Origin::Context => "context".to_string(),
                    Origin::Stage(i) => format!("stage {i}"),
                    Origin::Image(img) => format!("image {}", img.config_digest),
                };
                writeln!(f, "    copy from {from} to {:?}{}", c.dest.path, if c.dest.dir { " (dir)" } else { "" })?;
                for s in &c.sources {
                    match s {
                        Source::Path { path, extract } => {
                            writeln!(f, "    source: {path:?}{}", if *extract { " (extract)" } else { "" })?
                        }
                        Source::Heredoc { name, content } => {
                            writeln!(f, "    source: heredoc {name} ({} bytes)", content.len())?
                        }
                        Source::Parents { root, include, .. } => {
                            writeln!(f, "    source: {include:?} below {root:?} (parents)")?
                        }
                        Source::Url(u) => {
                            let what = match (&u.checksum, &u.fetched) {
                                (Some(c), _) => format!("checksum {c}"),
                                (None, Some((d, _))) => format!("fetched {d}"),
                                (None, None) => "not fetched".into(),
                            };
                            writeln!(f, "    source: url {} as {:?} ({what})", u.url, u.name)?
                        }
                        Source::Git(g) => writeln!(
                            f,
                            "    source: git {} {:?} at {} subdir {:?}{}",
                            g.remote,
                            g.ref_name,
                            g.commit,
                            g.subdir,
                            if g.keep_git_dir { " (keep .git)" } else { "" }
                        )?,
                    }
                }
                if c.link {
                    writeln!(f, "    link: the layer is made on an empty filesystem")?;
                }
                if let Some(c) = &c.chown {
                    writeln!(f, "    chown: {c}")?;
                }
                if let Some(m) = &c.chmod {
                    writeln!(f, "    chmod: {m}")?;
                }
            }
        }
        Ok(())
    }
}
