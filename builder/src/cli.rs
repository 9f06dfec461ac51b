//! slipway's command line as clap definitions: every subcommand, argument and flag with its
//! description. main.rs dispatches them; the man pages and shell completions are generated from
//! these same definitions (`docgen`). No logic here.

use crate::registry;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
Build OCI images from Dockerfiles.

slipway builds a Dockerfile as BuildKit does, runs its RUN steps in an OCI runtime through the
runtime's command line (skiff by default), caches every step by content, and keeps images in an OCI
image layout (--root) that docker, podman and containerd load. It pulls from and pushes to registries
with docker's credentials.

The global options go before the command.";

const EXAMPLES: &str = "\
Examples:
  slipway build -t app:1 .                      build ./Dockerfile with . as the context
  slipway images
  slipway save app:1 | docker load              hand the image to docker
  docker save debian:bookworm | slipway load    a base image from docker, offline
  slipway unpack app:1 /tmp/app && skiff run -b /tmp/app app";

#[derive(Parser, Debug)]
#[command(name = "slipway", version, about = "Build OCI images from Dockerfiles", long_about = LONG_ABOUT,
          after_help = EXAMPLES)]
pub struct Cli {
    /// The image store: an OCI image layout with slipway's build cache beside it [default:
    /// /var/lib/slipway, or ~/.local/share/slipway when run rootless]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Print the build's plan, and each RUN's bundle, lower directories and config.json, to stderr.
    #[arg(long)]
    pub debug: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// What decides a build's plan.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The Dockerfile (default: CONTEXT/Dockerfile); a relative path that does not exist is
    /// taken in the context (always, for a URL context). A FILE.dockerignore beside it wins over
    /// the context's .dockerignore.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build argument an ARG declares (repeatable); NAME alone takes $NAME from the
    /// environment. One no ARG declares gets docker's warning.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// Build this stage (FROM ... AS NAME) and the stages it needs, not the last one.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The network of RUN steps: default (BuildKit's sandbox: a namespace of the step's own
    /// reaching out through slirp4netns; not the host's loopback), none (an empty namespace)
    /// or host (the host's). Not given, and slirp4netns cannot run here (not installed, or
    /// /dev/net/tun closed to this user): none, with a warning.
    #[arg(long, value_name = "MODE", value_parser = ["default", "none", "host"])]
    pub network: Option<String>,
    /// Grant an extra privilege to RUN steps (repeatable), BuildKit's entitlements:
    /// security.insecure lets `RUN --security=insecure` run with every capability and nothing
    /// masked; network.host lets `RUN --network=host` have the host's network (`--network host`
    /// grants it, as buildx does); buildx.local.delete lets a `type=local,mode=delete` output
    /// remove files outside the working directory; device lets `RUN --device` have any CDI
    /// device, device=NAME that one (a kind, `vendor/class=*` or a class annotation too), and
    /// device=NAME,alias=ALIAS gives NAME to `RUN --device=ALIAS`. Devices whose spec says
    /// `org.mobyproject.buildkit.device.autoallow: "true"` need none.
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_parser = entitlement)]
    pub allow: Vec<String>,
    /// A directory of CDI spec files (*.json, *.yaml) for `RUN --device` (repeatable; a later
    /// one wins a device two define), replacing BuildKit's defaults /etc/cdi, /var/run/cdi and
    /// /etc/buildkit/cdi (buildkitd's and dockerd's --cdi-spec-dir).
    #[arg(long = "cdi-spec-dir", value_name = "DIR")]
    pub cdi_spec_dirs: Vec<std::path::PathBuf>,
    /// A named context (repeatable) that `FROM NAME`, `COPY --from=NAME` and
    /// `RUN --mount from=NAME` use instead of the image or stage of that name: a directory
    /// (its .dockerignore applied), docker-image://REF, oci-layout://DIR[:TAG|@DIGEST], a git
    /// URL (REPO#REF:SUBDIR) or an http(s) URL (one file, `context`). NAME::PLATFORM=VALUE
    /// serves that platform only, tried before NAME (BuildKit's `context:NAME::PLATFORM`).
    #[arg(long = "build-context", value_name = "NAME[::PLATFORM]=DIR|docker-image://REF|oci-layout://DIR|URL")]
    pub build_contexts: Vec<String>,
    /// The build context: the directory COPY and ADD read from (with .dockerignore applied), or
    /// a git URL (https://host/repo.git#REF:SUBDIR, git://, ssh://, git@host:repo) or an http(s)
    /// URL of a tar archive or of a Dockerfile, fetched by the builder.
    #[arg(value_name = "CONTEXT|URL")]
    pub context: PathBuf,
}

/// Where a build's result goes (BuildKit's exporters).
#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Where the result goes (repeatable): type=image (the store, the default; name=NAME[,NAME],
    /// push=true, push-by-digest=true, name-canonical=true, unpack=true), registry (image with push=true), local (dest=DIR: the filesystem), tar
    /// (dest=FILE|-: the filesystem as a tar), oci (dest=FILE|-[,tar=false]: an OCI layout),
    /// docker (dest=FILE|-: a docker-archive; without dest, loaded into docker) or cacheonly. DIR
    /// alone is type=local, - a tar on stdout. With outputs and no type=image, the store names
    /// nothing.
    #[arg(short = 'o', long = "output", value_name = "type=TYPE[,KEY=VALUE...]|DIR|-")]
    pub outputs: Vec<String>,
    /// Load the image into docker (`docker load` through the docker CLI): `-o type=docker`, as in
    /// buildx.
    #[arg(long)]
    pub load: bool,
    /// Annotate the image manifest (repeatable); TYPE manifest (default), manifest-descriptor,
    /// index or index-descriptor (the last two for several platforms), PLATFORM one of them.
    #[arg(long = "annotation", value_name = "[TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Write BuildKit's result metadata as JSON (containerimage.digest,
    /// containerimage.config.digest, containerimage.descriptor, image.name), as buildx does.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Attach an attestation (repeatable): type=provenance[,mode=min|max,builder-id=ID,
    /// filename=NAME,reproducible=true,inline-only=true,complete-materials=true,version=v1|v0.2]
    /// (SLSA v1 by default, as BuildKit writes it); type=sbom[,generator=IMAGE,KEY=VALUE...]
    /// (BuildKit's SBOM protocol: the generator image, default docker/buildkit-syft-scanner:stable-1,
    /// scans the image; each KEY=VALUE reaches it as BUILDKIT_SCAN_KEY). None by default, so equal
    /// inputs give equal digests.
    #[arg(long = "attest", value_name = "type=TYPE[,KEY=VALUE...]")]
    pub attests: Vec<String>,
    /// Shorthand for --attest type=provenance: true (mode=max), false, or its options
    /// (mode=min). Off by default.
    #[arg(long, value_name = "true|false|mode=min|max[,KEY=VALUE...]")]
    pub provenance: Option<String>,
    /// Shorthand for --attest type=sbom: true (BuildKit's default generator), false, or its
    /// options (generator=IMAGE). Off by default.
    #[arg(long, value_name = "true|false|generator=IMAGE[,KEY=VALUE...]")]
    pub sbom: Option<String>,
}

/// How RUN steps run and which steps the cache may answer.
#[derive(Args, Debug)]
pub struct StepArgs {
    /// Add a line to the /etc/hosts of RUN steps (repeatable): HOST:IP (or HOST=IP); the IP
    /// host-gateway is the host as RUN steps reach it (--host-gateway-ip, else the host's
    /// outward address with the sandbox network, 127.0.0.1 with the host's).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// The address --add-host NAME:host-gateway stands for (dockerd's --host-gateway-ip;
    /// default: the host's outward address with the sandbox network, else 127.0.0.1).
    #[arg(long = "host-gateway-ip", value_name = "IP")]
    pub host_gateway_ip: Option<std::net::IpAddr>,
    /// Set an rlimit of RUN steps (repeatable): NAME=SOFT[:HARD], NAME one of nofile, nproc,
    /// core, cpu, data, fsize, locks, memlock, msgqueue, nice, rss, rtprio, rttime,
    /// sigpending, stack; -1 is unlimited.
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,
    /// The size of RUN steps' /dev/shm (128m, 1g; default 64m).
    #[arg(long = "shm-size", value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// The cgroup under which RUN steps' cgroups go (a cgroupfs path under each hierarchy's
    /// root): PATH/<container> rather than /slipway/<container>. Part of the steps' cache keys.
    #[arg(long = "cgroup-parent", value_name = "PATH")]
    pub cgroup_parent: Option<String>,
    /// Limit RUN steps' resources (repeatable, as buildx): memory=SIZE (512m, 1g),
    /// memory-swap=SIZE|-1 (memory plus swap; -1 unlimited), cpu-shares=N,
    /// cpu-period=MICROSECONDS, cpu-quota=MICROSECONDS, cpuset-cpus=LIST (0-3,5),
    /// cpuset-mems=LIST. docker build's --memory/-m, --memory-swap, --cpu-shares/-c,
    /// --cpu-period, --cpu-quota, --cpuset-cpus and --cpuset-mems are taken too (--resource
    /// wins). Not part of the steps' cache keys, as in BuildKit.
    #[arg(long = "resource", value_name = "KEY=VALUE")]
    pub resources: Vec<String>,
    /// --resource memory=SIZE.
    #[arg(short = 'm', long = "memory", value_name = "SIZE", hide = true)]
    pub memory: Option<String>,
    /// --resource memory-swap=SIZE|-1.
    #[arg(long = "memory-swap", value_name = "SIZE", hide = true, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// --resource cpu-shares=N.
    #[arg(short = 'c', long = "cpu-shares", value_name = "N", hide = true, allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// --resource cpu-period=MICROSECONDS.
    #[arg(long = "cpu-period", value_name = "MICROSECONDS", hide = true, allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// --resource cpu-quota=MICROSECONDS.
    #[arg(long = "cpu-quota", value_name = "MICROSECONDS", hide = true, allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// --resource cpuset-cpus=LIST.
    #[arg(long = "cpuset-cpus", value_name = "LIST", hide = true)]
    pub cpuset_cpus: Option<String>,
    /// --resource cpuset-mems=LIST.
    #[arg(long = "cpuset-mems", value_name = "LIST", hide = true)]
    pub cpuset_mems: Option<String>,
    /// Run every step of these stages, using no cached result (repeatable, or comma-separated
    /// stage names); the log says so at each step.
    #[arg(long = "no-cache-filter", value_name = "STAGE[,STAGE]")]
    pub no_cache_filter: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Build an image from a Dockerfile
    #[command(
        long_about = "Build an image from a Dockerfile, as BuildKit does: stages in dependency order, each step \
            through the cache (its key: the parent, the instruction, the build args it sees, the content of \
            what it copies), RUN steps in an OCI runtime. The image goes into the store, named by each -t; a \
            build without -t is kept unnamed (`<none>` in `slipway images`) and is used by its ID.",
        after_help = "Examples:\n  slipway build -t app:1 .\n  \
            slipway build -t app:1 -f docker/Dockerfile --build-arg VERSION=2.1 --target release .\n  \
            slipway build -q . > image-id                   only the image ID on stdout\n  \
            slipway build --progress plain --no-cache -t app .\n  \
            SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) slipway build -t app .   reproducible times\n  \
            slipway build -t registry.example.com/app:1 --push .\n  \
            slipway build -o type=local,dest=out .           the image's files into ./out\n  \
            slipway build -t app:1 -o type=oci,dest=app.tar --metadata-file meta.json ."
    )]
    Build {
        #[command(flatten)]
        plan: Box<PlanArgs>,
        /// Name the image NAME[:TAG] (repeatable; the tag defaults to latest).
        #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
        tags: Vec<String>,
        /// Run every step, using no cached result (results are still cached for later builds).
        #[arg(long)]
        no_cache: bool,
        /// How to show progress: tty is a compact view redrawn in place (BuildKit's words), plain
        /// the classic log (Step N/M, ---> ID); auto is tty on a terminal, plain otherwise; quiet
        /// is -q (the image ID printed at the end), none shows nothing, as in buildx.
        #[arg(long, value_name = "TYPE", default_value = "auto", value_parser = ["auto", "plain", "tty", "quiet", "none"])]
        progress: String,
        /// The OCI runtime that runs RUN steps, through its runc-compatible command line (default:
        /// the skiff beside slipway, else runc from PATH).
        #[arg(long, value_name = "PATH")]
        runtime: Option<PathBuf>,
        /// Set a label on the image (repeatable): a last LABEL step, as in docker's classic builder.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Write the image ID (sha256:...) to this file.
        #[arg(long, value_name = "FILE")]
        iidfile: Option<PathBuf>,
        /// Print only the image ID on stdout; the progress and RUN output are not shown.
        #[arg(short, long)]
        quiet: bool,
        /// For each cache miss, say what changed (the instruction, a build arg, a file).
        #[arg(long)]
        explain_cache: bool,
        #[command(flatten)]
        registry: Box<registry::cli::BuildArgs>,
        /// The image's creation time: `now` (the build's time, as docker; file mtimes stay at
        /// most SOURCE_DATE_EPOCH, or 0), or seconds since 1970 (file mtimes at most that too).
        /// Default: SOURCE_DATE_EPOCH, else 0, so equal inputs give equal digests (an output's
        /// `rewrite-timestamp=false` keeps the files' own mtimes, as BuildKit). Seconds before
        /// 1970 are negative (`--timestamp -86400`, the value taken whatever it starts with, as
        /// buildah's flag parser takes it).
        #[arg(long, value_name = "now|SECONDS", allow_hyphen_values = true)]
        timestamp: Option<String>,
        /// A secret for `RUN --mount=type=secret` (repeatable): id=ID,src=PATH (a file) or
        /// id=ID,env=VAR (an environment variable); id=ID alone is $ID if set, else the file ID.
        /// Never written to a layer, the config, the cache or the log.
        #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
        secrets: Vec<String>,
        /// An ssh agent for `RUN --mount=type=ssh` (repeatable): default ($SSH_AUTH_SOCK),
        /// ID=SOCKET, or ID=KEY[,KEY] (an ssh-agent of slipway's own holding those keys).
        #[arg(long = "ssh", value_name = "default|ID=SOCKET|ID=KEY")]
        ssh: Vec<String>,
        #[command(flatten)]
        out: Box<OutputArgs>,
        #[command(flatten)]
        legacy: Box<LegacyArgs>,
        /// How many stages may build at once (default: the number of cores). A stage starts when
        /// the stages it needs (FROM, COPY --from, RUN --mount from=) are built; images and
        /// cache keys are the same for any N.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        #[command(flatten)]
        steps: Box<StepArgs>,
        /// Run only the build checks (BuildKit's Dockerfile linter) on every stage and print
        /// their warnings; build nothing. Exits 1 when there is a warning (buildx's
        /// --call=check).
        #[arg(long)]
        check: bool,
        /// What the build does, as buildx's --call: build (the default), check (as --check),
        /// targets (list the stages and their descriptions) or outline (the build args, secrets
        /// and ssh agents the target takes); `,format=json` prints the result as BuildKit's
        /// JSON, `,ignorestatus=true` exits 0 despite check's warnings.
        #[arg(long, value_name = "build|check|outline|targets[,format=json][,ignorestatus=true]")]
        call: Option<String>,
    },
    /// Print the plan of a build (stages, steps, cache key inputs) without running it
    #[command(hide = true)]
    Plan {
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// List images
    #[command(
        long_about = "List the images in the store: named ones, then untagged builds and loads as <none>. SIZE is \
            the unpacked size (the layers' files), CREATED how long ago, as docker shows them.",
        after_help = "Examples:\n  slipway images"
    )]
    Images,
    /// Show images' details as JSON
    #[command(
        long_about = "Show images' details as a JSON array, in docker's field names: Id, RepoTags, Created (and \
            CreatedFrom: where a slipway build took that time from), Config, RootFS, Size (unpacked).",
        after_help = "Examples:\n  slipway inspect app:1 | jq '.[0].Config.Env'\n  slipway inspect 3f2a1c"
    )]
    Inspect {
        /// Images: NAME[:TAG], an image ID, or a unique prefix of one (4 hex digits or more).
        #[arg(value_name = "IMAGE", required = true)]
        names: Vec<String>,
    },
    /// Show an image's history
    #[command(after_help = "Examples:\n  slipway history app:1")]
    History {
        /// The image: NAME[:TAG], an ID, or a unique prefix of one.
        #[arg(value_name = "IMAGE")]
        name: String,
    },
    /// Give an image another name
    #[command(
        after_help = "Examples:\n  slipway tag app:1 app:latest\n  slipway tag 3f2a1c registry.example.com/app:1"
    )]
    Tag {
        /// The image to name: NAME[:TAG], an ID, or a unique prefix of one.
        #[arg(value_name = "SOURCE")]
        source: String,
        /// The new name, NAME[:TAG] (the tag defaults to latest).
        #[arg(value_name = "TARGET")]
        target: String,
    },
    /// Remove image names, or images by ID
    #[command(
        long_about = "Remove image names, or images by ID, as docker's rmi: a name is untagged; an ID removes the \
            image with every name it has. Blobs go at the next `slipway prune`.",
        after_help = "Examples:\n  slipway rmi app:1\n  slipway rmi 3f2a1c"
    )]
    Rmi {
        /// Images: NAME[:TAG] (untagged) or an ID (removed with all its names).
        #[arg(value_name = "IMAGE", required = true)]
        names: Vec<String>,
    },
    /// Write an image to a tar archive
    #[command(
        long_about = "Write an image to a tar archive that docker, podman and containerd load: docker's format \
            (manifest.json, also an OCI layout, as docker 25 writes it) or an OCI image layout. To stdout with \
            -o -, or without -o when stdout is not a terminal.",
        after_help = "Examples:\n  slipway save app:1 -o app.tar\n  slipway save app:1 | docker load\n  \
            slipway save --format oci app:1 | gzip > app.oci.tar.gz"
    )]
    Save {
        /// The image: NAME[:TAG], an ID, or a unique prefix of one.
        #[arg(value_name = "IMAGE")]
        name: String,
        /// The archive to write (it appears only once complete), or - for stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The archive's format: docker (docker save's) or oci (an OCI image layout).
        #[arg(long, value_name = "FORMAT", default_value = "docker", value_parser = ["docker", "oci"])]
        format: String,
    },
    /// Read images from a tar archive
    #[command(
        long_about = "Read images from a tar archive: what docker save, podman save or slipway save write (docker \
            or OCI layout), compressed with gzip, bzip2, xz or zstd or not. From stdin without -i, or with -i -.",
        after_help = "Examples:\n  slipway load -i app.tar\n  docker save debian:bookworm | slipway load"
    )]
    Load {
        /// The archive to read, or - for stdin (the default).
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Remove what no named image needs
    #[command(
        long_about = "Remove what no named image needs: untagged images (as docker image prune), blobs no name \
            uses, and build cache entries except those a named image was built through (so rebuilding it stays \
            all cache hits); RUN cache mounts (all, or beyond --filter and --keep-storage, as docker builder \
            prune); what interrupted pulls left in ingest/.",
        after_help = "Examples:\n  slipway prune\n  slipway prune --filter until=24h\n  slipway prune --keep-storage 2GB"
    )]
    Prune {
        /// Keep some RUN cache mounts (repeatable): until=DURATION (or unused-for=) keeps those
        /// used within DURATION (24h, 90m); id=ID drops only the cache mounts of these ids.
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<String>,
        /// Keep the most recently used RUN cache mounts while they fit in SIZE (512MB, 2GB).
        #[arg(long, value_name = "SIZE")]
        keep_storage: Option<String>,
    },
    /// Write an OCI bundle (rootfs + config.json) of an image
    #[command(
        long_about = "Write an OCI runtime bundle of an image: DIR/rootfs with the layers applied and \
            DIR/config.json from the image's config (entrypoint and cmd, env, user, working dir), ready for \
            skiff run or runc run. DIR must be new or empty: one that holds a bundle is refused.",
        after_help = "Examples:\n  slipway unpack app:1 /tmp/app && skiff run --bundle /tmp/app app"
    )]
    Unpack {
        /// The image: NAME[:TAG], an ID, or a unique prefix of one.
        #[arg(value_name = "IMAGE")]
        name: String,
        /// The bundle directory to create.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Pull an image from a registry
    #[command(after_help = "Examples:\n  slipway pull debian:bookworm\n  \
        slipway pull --platform linux/arm64 registry.example.com/team/app@sha256:...")]
    Pull(registry::cli::PullArgs),
    /// Push an image to a registry
    #[command(after_help = "Examples:\n  slipway push registry.example.com/app:1\n  \
        slipway push app:1 registry.example.com/team/app:1")]
    Push(registry::cli::PushArgs),
    /// Log in to a registry (stored in docker's config.json)
    #[command(after_help = "Examples:\n  echo \"$PW\" | slipway login -u me --password-stdin registry.example.com")]
    Login(registry::cli::LoginArgs),
    /// Remove a registry's stored credentials
    #[command(after_help = "Examples:\n  slipway logout registry.example.com")]
    Logout(registry::cli::LogoutArgs),
}

/// docker build's flags that BuildKit made moot, hidden as buildx hides them; `legacy_notes`
/// says what each does here.
#[derive(Args, Debug)]
pub struct LegacyArgs {
    #[arg(long, hide = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = go_bool)]
    pub rm: Option<bool>,
    #[arg(long = "force-rm", hide = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = go_bool)]
    pub force_rm: Option<bool>,
    #[arg(long, hide = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = go_bool)]
    pub compress: Option<bool>,
    #[arg(long, hide = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = go_bool)]
    pub squash: Option<bool>,
    #[arg(long, hide = true)]
    pub isolation: Option<String>,
    #[arg(long = "security-opt", hide = true)]
    pub security_opt: Vec<String>,
}

/// A bool flag as Go's flag package reads one (strconv.ParseBool).
fn go_bool(v: &str) -> Result<bool, String> {
    crate::output::parse_bool("", v).map_err(|_| format!("{v:?}: expected true or false"))
}

/// What the legacy flags mean for a slipway build, as buildx takes them: the warnings to print,
/// or the error for one whose meaning slipway cannot give. Steps' containers are always
/// removed (`--rm`, `--force-rm`: what they ask is what happens; `--rm=false`, keeping them, is
/// refused); the others buildx ignores with these warnings (its flag-warn annotations), and
/// `--compress` (of the context sent to a daemon) has nothing to compress here.
pub fn legacy_notes(a: &LegacyArgs) -> Result<Vec<String>, String> {
    if a.rm == Some(false) {
        return Err("--rm=false: a RUN step's container is always removed when the step ends (as in BuildKit)".into());
    }
    let mut w = Vec::new();
    if a.compress == Some(true) {
        w.push("--compress has no effect: slipway reads the build context where it is, nothing is sent".to_string());
    }
    if a.isolation.is_some() {
        w.push("isolation flag is deprecated with BuildKit.".to_string());
    }
    if !a.security_opt.is_empty() {
        w.push(
            "security-opt flag is deprecated. \"RUN --security=insecure\" should be used with BuildKit.".to_string(),
        );
    }
    if a.squash == Some(true) {
        w.push(
            "experimental flag squash is removed with BuildKit. You should squash inside build using a multi-stage \
             Dockerfile for efficiency."
                .to_string(),
        );
    }
    Ok(w)
}

/// An `--allow` value: BuildKit's entitlements (util/entitlements Parse, `device` with its
/// config) and buildx's own buildx.local.delete.
fn entitlement(v: &str) -> Result<String, String> {
    match v {
        "security.insecure" | "network.host" | "buildx.local.delete" | "device" => Ok(v.to_string()),
        _ if v.starts_with("device=") => Ok(v.to_string()),
        _ => Err(format!(
            "unknown entitlement {v} (security.insecure, network.host, device, device=NAME[,alias=ALIAS] or buildx.local.delete)"
        )),
    }
}
