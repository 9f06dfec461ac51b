//! slipway's CLI: clap arguments -> library calls. No logic of its own.

#![deny(unsafe_code)]

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use slipway::archive::{self, Format};
use slipway::build::{self, BuildOptions};
use slipway::cli::{Cli, Cmd, OutputArgs, PlanArgs, StepArgs};
use slipway::images;
use slipway::registry;
use slipway::spec::Network;
use slipway::store::Store;
use std::path::PathBuf;

fn kv(s: &str, what: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{what} {s:?}: expected KEY=VALUE"),
    }
}

/// Build options from the arguments that decide the plan; the rest at their defaults.
fn plan_options(a: PlanArgs, debug: bool) -> Result<BuildOptions> {
    let network = match a.network.as_deref() {
        // BuildKit's default, where this host can give it
        None => {
            match slipway::netns::available() {
                Ok(()) => Network::Sandbox,
                Err(why) => {
                    eprintln!("slipway: warning: RUN steps get no network: {why} (--network none says so without this warning)");
                    Network::None
                }
            }
        }
        Some(n) => Network::parse(n).with_context(|| format!("--network {n:?}: expected default, none or host"))?,
    };
    let mut args = Vec::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => args.push((k.to_string(), v.to_string())),
            None => {
                if let Ok(v) = std::env::var(b) {
                    args.push((b.clone(), v));
                }
            }
        }
    }
    let allow_insecure = a.allow.iter().any(|a| a == "security.insecure");
    // as buildx (build/opt.go): `--network host` asks for the host's network, so it grants the
    // network.host entitlement itself; `RUN --network=host` alone needs `--allow network.host`
    let allow_network_host = a.allow.iter().any(|a| a == "network.host") || network == Network::Host;
    let mut devices = slipway::cdi::Devices::new(a.cdi_spec_dirs);
    for v in &a.allow {
        if let Some(rest) = v.strip_prefix("device") {
            if rest.is_empty() || rest.starts_with('=') {
                devices.grant(rest.strip_prefix('=')).map_err(|e| anyhow::anyhow!("--allow {v}: {e}"))?;
            }
        }
    }
    // as buildx: SOURCE_DATE_EPOCH from the environment is a build arg unless one is given
    if !args.iter().any(|(k, _)| k == "SOURCE_DATE_EPOCH") {
        if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
            if !v.is_empty() {
                args.push(("SOURCE_DATE_EPOCH".to_string(), v));
            }
        }
    }
    let mut named_contexts = slipway::named_context::NamedContexts::default();
    for c in &a.build_contexts {
        let (k, v) = slipway::named_context::parse(c).map_err(anyhow::Error::msg)?;
        named_contexts.by_key.insert(k, v);
    }
    let context = a.context;
    // (a remote context takes a relative -f as a file of its own: left as given; `-f -` is stdin)
    let dockerfile = a.file.map(|f| {
        if f.is_relative() && !f.exists() && context.is_dir() && f.as_os_str() != "-" {
            context.join(f)
        } else {
            f
        }
    });
    Ok(BuildOptions {
        context,
        dockerfile,
        tags: Vec::new(),
        build_args: args,
        target: a.target,
        no_cache: false,
        runtime: PathBuf::new(),
        network,
        labels: Vec::new(),
        quiet: false,
        progress: slipway::exec::progress::Mode::Plain,
        explain_cache: false,
        timestamp: Default::default(),
        epoch: 0,
        created: 0,
        created_now: false,
        created_from: String::new(),
        debug,
        remote: Default::default(),
        platform: None,
        platforms: Vec::new(),
        cache_from: Vec::new(),
        inline_cache: false,
        allow_insecure,
        allow_network_host,
        devices,
        secrets: Default::default(),
        ssh: Default::default(),
        outputs: Vec::new(),
        annotations: Vec::new(),
        attest: Default::default(),
        push: false,
        source_date_epoch: None,
        named_contexts,
        jobs: 1,
        run_extras: Default::default(),
        no_cache_filter: Vec::new(),
        set_global_args: Vec::new(),
        vcs: Default::default(),
    })
}

/// What buildx adds of a local git context (build/git.go): the `vcs:*` attributes the
/// provenance records and, with `BUILDX_GIT_LABELS`, the source labels, which win over a
/// `--label` of the same key (buildx sets them last). git failing on a repository is buildx's
/// warning, not an error.
fn git_info(opts: &mut BuildOptions, cwd: &std::path::Path) -> Result<()> {
    let settings = slipway::vcs::Settings::from_env(&|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    if opts.context.as_os_str() == "-" || !cwd.join(&opts.context).is_dir() {
        return Ok(());
    }
    // the vcs attributes reach nothing but a provenance: no need to ask git without one
    let attests = opts.attest != Default::default()
        || opts.build_args.iter().any(|(k, _)| k.starts_with(slipway::attest::BUILD_ARG_PREFIX));
    if !settings.labels && !attests {
        return Ok(());
    }
    let locals: Vec<(String, PathBuf)> = opts
        .named_contexts
        .by_key
        .iter()
        .filter_map(|(k, v)| match v {
            // buildx's local name for a named context (an underscore before the two it uses)
            slipway::named_context::Value::Dir(d) => {
                let name = if k == "context" || k == "dockerfile" { format!("_{k}") } else { k.clone() };
                Some((name, d.clone()))
            }
            _ => None,
        })
        .collect();
    match slipway::vcs::detect(settings, cwd, &opts.context, opts.dockerfile.as_deref(), &locals) {
        Ok(info) => {
            for (k, v) in info.labels {
                opts.labels.retain(|(l, _)| *l != k);
                opts.labels.push((k, v));
            }
            opts.vcs = info.vcs;
        }
        Err(e) => eprintln!("WARNING: current commit information was not captured by the build: {e}"),
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    // login and logout touch only docker's config.json, not the store
    match &cli.cmd {
        Cmd::Login(a) => return registry::cli::login(a),
        Cmd::Logout(a) => return registry::cli::logout(a),
        _ => {}
    }
    // an interrupted command cleans up on its way out (mounts, temp dirs, the step's container);
    // one that has not ended 10 s after the signal (stuck in a network read) ends then, as
    // `docker stop` gives a container 10 s
    slipway::sys::catch_interrupts(std::time::Duration::from_secs(10)).context("install signal handlers")?;
    let root = cli.root.clone().unwrap_or_else(slipway::userns::default_root);
    let store = Store::open(&root).with_context(|| format!("open store {}", root.display()))?;
    // a killed earlier command may have left a container, mounts and temp files
    slipway::runner::reap(&store.stale_tmp());
    store.recover();
    slipway::trace::point("store");
    match cli.cmd {
        Cmd::Build {
            plan,
            tags,
            no_cache,
            progress,
            runtime,
            labels,
            iidfile,
            quiet,
            explain_cache,
            registry: reg,
            timestamp,
            secrets,
            ssh,
            out,
            legacy,
            jobs,
            steps,
            check,
            call,
        } => {
            for w in slipway::cli::legacy_notes(&legacy).map_err(anyhow::Error::msg)? {
                eprintln!("slipway: warning: {w}");
            }
            let OutputArgs { mut outputs, annotations, metadata_file, load, attests, provenance, sbom } = *out;
            if load {
                // buildx: --load is --output=type=docker
                outputs.push("type=docker".into());
            }
            let StepArgs {
                add_hosts,
                host_gateway_ip,
                ulimits,
                shm_size,
                no_cache_filter,
                cgroup_parent,
                resources,
                memory,
                memory_swap,
                cpu_shares,
                cpu_period,
                cpu_quota,
                cpuset_cpus,
                cpuset_mems,
            } = *steps;
            use std::io::IsTerminal;
            // buildx's toDisplayMode: `quiet` is -q (the ID printed at the end), `none` shows
            // nothing at all; -q with plain or tty is refused
            let print_id = quiet || progress == "quiet";
            if quiet && !["auto", "quiet"].contains(&progress.as_str()) {
                bail!("progress={progress} and quiet cannot be used together");
            }
            let quiet = print_id || progress == "none";
            let shown = if quiet { "auto" } else { progress.as_str() };
            let Some(progress) = slipway::exec::progress::Mode::choose(shown, std::io::stdout().is_terminal()) else {
                bail!("--progress {progress:?}: expected auto, plain or tty");
            };
            let allow_local_delete = plan.allow.iter().any(|a| a == "buildx.local.delete");
            let mut opts = plan_options(*plan, cli.debug)?;
            let labels = labels.iter().map(|l| kv(l, "--label")).collect::<Result<Vec<_>>>()?;
            // Reproducible by default: every time the build writes (file mtimes: at most, the
            // image's and its history's `created`) is SOURCE_DATE_EPOCH, else 0, so equal inputs
            // give equal digests (the build resolves SOURCE_DATE_EPOCH: it may name a source;
            // `rewrite-timestamp=false`: the files' own mtimes, see `build::with_output_times`).
            // `--timestamp now` gives docker's creation time (mtimes stay).
            opts.timestamp = match timestamp.as_deref() {
                None => build::Timestamp::Epoch,
                Some("now") => build::Timestamp::Now,
                // an integer as SOURCE_DATE_EPOCH takes one (Go's ParseInt), negative before 1970
                Some(t) => {
                    let n = t.parse::<i64>().map_err(|_| {
                            anyhow::anyhow!(
                                "--timestamp {t:?}: expected `now` or seconds since 1970-01-01 (an integer, negative before)"
                            )
                        })?;
                    slipway::epoch::check_time(n).map_err(|e| anyhow::anyhow!("--timestamp {t:?}: {e}"))?;
                    build::Timestamp::At(n)
                }
            };
            opts.outputs = outputs
                .iter()
                .map(|o| slipway::output::parse(o))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
            let cwd = std::env::current_dir().context("the working directory")?;
            slipway::output::check_local_delete(&opts.outputs, allow_local_delete, &cwd).map_err(anyhow::Error::msg)?;
            for a in &annotations {
                opts.annotations.extend(slipway::output::Annotations::parse_flag(a).map_err(anyhow::Error::msg)?);
            }
            opts.push = reg.push;
            opts.attest = slipway::attest::Flags { provenance, sbom, attests };
            // with the sandbox network the host's loopback is closed: its outward address
            let gateway = match host_gateway_ip {
                Some(ip) => ip,
                None if opts.network == Network::Sandbox && add_hosts.iter().any(|h| h.ends_with("host-gateway")) => {
                    slipway::netns::host_address()
                        .map_err(|e| anyhow::anyhow!("--add-host ...:host-gateway: {e}; give --host-gateway-ip"))?
                }
                None => slipway::spec::HOST_GATEWAY,
            };
            for h in &add_hosts {
                opts.run_extras.hosts.push(slipway::spec::parse_add_host(h, gateway).map_err(anyhow::Error::msg)?);
            }
            for u in &ulimits {
                let u = slipway::spec::parse_ulimit(u).map_err(anyhow::Error::msg)?;
                // the last one of a name wins, as docker's flag map keeps it
                opts.run_extras.ulimits.retain(|o| o.kind != u.kind);
                opts.run_extras.ulimits.push(u);
            }
            if let Some(s) = &shm_size {
                let n = slipway::spec::parse_size("--shm-size", s).map_err(anyhow::Error::msg)?;
                // 0 is docker's "the default"
                opts.run_extras.shm_size = (n > 0).then_some(n);
            }
            if let Some(p) = &cgroup_parent {
                opts.run_extras.cgroup_parent =
                    slipway::resources::CgroupParent::parse(p).map_err(anyhow::Error::msg)?;
            }
            let legacy = [
                ("memory", memory.as_deref()),
                ("memory-swap", memory_swap.as_deref()),
                ("cpu-shares", cpu_shares.as_deref()),
                ("cpu-period", cpu_period.as_deref()),
                ("cpu-quota", cpu_quota.as_deref()),
                ("cpuset-cpus", cpuset_cpus.as_deref()),
                ("cpuset-mems", cpuset_mems.as_deref()),
            ];
            opts.run_extras.resources =
                slipway::resources::Resources::from_flags(&legacy, &resources).map_err(anyhow::Error::msg)?;
            // rootless, RUN steps get no cgroup (exec/run.rs): nothing to limit or place
            if slipway::userns::rootless() && (cgroup_parent.is_some() || !opts.run_extras.resources.is_empty()) {
                bail!(
                    "--cgroup-parent and the resource limits need RUN steps in cgroups of their own, which a \
                     rootless slipway does not give them (the runtime may not write cgroups)"
                );
            }
            opts.no_cache_filter = no_cache_filter;
            let (remote, platform, cache_from) = registry::cli::build_inputs(&reg)?;
            opts.tags = tags;
            opts.no_cache = no_cache;
            opts.runtime = runtime.unwrap_or_else(slipway::runner::default_runtime_bin);
            opts.labels = labels;
            git_info(&mut opts, &cwd)?;
            opts.quiet = quiet;
            opts.progress = progress;
            opts.explain_cache = explain_cache;
            opts.remote = remote;
            opts.platform = platform.first().cloned();
            opts.platforms = platform;
            opts.cache_from = cache_from;
            opts.inline_cache = registry::cache::wants_inline(&reg.cache_to);
            opts.jobs = match jobs {
                Some(n) => n.into(),
                None => std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            };
            for s in &secrets {
                let (id, src) = slipway::secrets::parse_secret(s).map_err(anyhow::Error::msg)?;
                opts.secrets.add(id, src);
            }
            for s in &ssh {
                let (id, src) = slipway::secrets::parse_ssh(s).map_err(anyhow::Error::msg)?;
                opts.ssh.insert(id, src);
            }
            let call = match call.as_deref() {
                Some(c) => slipway::subrequest::Call::parse(c).map_err(anyhow::Error::msg)?,
                None => slipway::subrequest::Call::parse(if check { "check" } else { "build" })
                    .map_err(anyhow::Error::msg)?,
            };
            if check && call.name != "check" {
                anyhow::bail!("--check and --call {}: give one of them", call.name);
            }
            // a build runs steps (a call runs none): a systemd parent on a host without systemd
            // is refused before the first one, with nothing made
            if call.name == "build" {
                if let Some(p) = &opts.run_extras.cgroup_parent {
                    p.check_host().map_err(anyhow::Error::msg)?;
                }
            }
            if call.name != "build" {
                let r = match call.name.as_str() {
                    "targets" => build::targets(&store, &opts)?,
                    "outline" => build::outline(&store, &opts)?,
                    _ => build::check(&store, &opts, call.json)?,
                };
                print!("{}", if call.json { &r.json } else { &r.text });
                // as buildx: the call's result in --metadata-file, an empty --iidfile (no image)
                if let Some(f) = metadata_file {
                    std::fs::write(&f, r.metadata())
                        .with_context(|| format!("write --metadata-file {}", f.display()))?;
                }
                if let Some(f) = iidfile {
                    std::fs::write(&f, "").with_context(|| format!("write {}", f.display()))?;
                }
                if r.status != 0 && !call.ignore_status {
                    use std::io::Write;
                    std::io::stdout().flush().ok();
                    slipway::store::finish_removals();
                    std::process::exit(r.status);
                }
                return Ok(());
            }
            let opts_outputs = opts.outputs.clone();
            let built = build::build(&store, &opts)?;
            registry::cli::after_build(
                &store,
                &reg,
                &built.push,
                &built.keys,
                &built.results,
                &built.cache_mounts,
                quiet,
            )?;
            if let Some(f) = metadata_file {
                // as buildx writes it: the exporter response, indented
                let mut text = serde_json::to_string_pretty(&built.metadata).unwrap_or_default();
                text.push('\n');
                std::fs::write(&f, text).with_context(|| format!("write --metadata-file {}", f.display()))?;
            }
            if print_id && !slipway::output::writes_stdout(&opts_outputs) {
                println!("{}", built.id);
            }
            if let Some(f) = iidfile {
                std::fs::write(&f, &built.id).with_context(|| format!("write {}", f.display()))?;
            }
        }
        Cmd::Plan { plan } => {
            let plan = build::plan_only(&store, &plan_options(plan, cli.debug)?)?;
            print!("{plan}");
            if let Some(e) = plan.error() {
                bail!("{e}");
            }
        }
        Cmd::Images => print!("{}", images::images(&store)?),
        Cmd::Inspect { names } => print!("{}", images::inspect(&store, &names)?),
        Cmd::History { name } => print!("{}", images::history(&store, &name)?),
        Cmd::Tag { source, target } => images::tag(&store, &source, &target)?,
        Cmd::Rmi { names } => {
            for n in names {
                print!("{}", images::rmi(&store, &n)?);
            }
        }
        Cmd::Save { name, output, format } => {
            let format = match format.as_str() {
                "docker" => Format::Docker,
                "oci" => Format::Oci,
                f => bail!("--format {f:?}: expected docker or oci"),
            };
            let img = store.image(&name)?;
            let full =
                slipway::store::normalize_ref(&name).ok().filter(|n| store.find_image(n).ok().flatten().is_some());
            match output {
                Some(p) if p.as_os_str() != "-" => archive::save(&store, &img, full.as_deref(), &p, format)?,
                // docker's rule: stdout with `-o -`, or without -o when it is not a terminal
                Some(_) => archive::save_to_stdout(&store, &img, full.as_deref(), format)?,
                None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
                    bail!("refusing to write an image archive to a terminal: give -o FILE, or redirect stdout")
                }
                None => archive::save_to_stdout(&store, &img, full.as_deref(), format)?,
            }
        }
        Cmd::Load { input } => {
            // stdin (no -i, or `-i -`) is copied to the store's temp space first: the archive is
            // read twice (its compression sniffed, then unpacked), which a pipe cannot do
            let (_spool, path, shown) = match input {
                Some(p) if p.as_os_str() != "-" => (None, p.clone(), p),
                _ => {
                    let t = store.tempdir("load-stdin")?;
                    let p = t.path.join("archive");
                    let mut f = std::fs::File::create(&p).with_context(|| format!("create {}", p.display()))?;
                    std::io::copy(&mut std::io::stdin().lock(), &mut f).context("read the archive from stdin")?;
                    (Some(t), p, PathBuf::from("stdin"))
                }
            };
            for n in archive::load_as(&store, &path, &shown)? {
                if n.starts_with("sha256:") {
                    println!("Loaded image ID: {n}");
                } else {
                    println!("Loaded image: {n}");
                }
            }
        }
        Cmd::Prune { filters, keep_storage } => {
            let limits = images::PruneLimits::parse(&filters, keep_storage.as_deref()).map_err(anyhow::Error::msg)?;
            print!("{}", images::prune(&store, &limits)?)
        }
        Cmd::Unpack { name, dir } => images::unpack(&store, &name, &dir)?,
        Cmd::Pull(a) => registry::cli::pull(&store, &a)?,
        Cmd::Push(a) => registry::cli::push(&store, &a)?,
        Cmd::Login(_) | Cmd::Logout(_) => unreachable!("handled before the store is opened"),
    }
    Ok(())
}

fn main() {
    slipway::trace::init();
    slipway::trace::point("start");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0
        Err(e) if !e.use_stderr() => e.exit(),
        // no command at all: the help, as clap prints it
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        // a usage error: clap's message (with the usage line), prefixed as every slipway error is
        Err(e) => {
            let text = e.render().to_string();
            eprint!("slipway: {}", text.strip_prefix("error: ").unwrap_or(&text));
            std::process::exit(2);
        }
    };
    // Run by an unprivileged user: the rest happens in slipway's own user namespace.
    let entered = slipway::userns::enter();
    if let Ok(slipway::userns::Entered::Exited(code)) = entered {
        std::process::exit(code);
    }
    let res = entered.and_then(|_| run(cli));
    // the temp dirs whose removal went to the background (nothing is left behind)
    slipway::store::finish_removals();
    slipway::trace::point("exit");
    if let Err(e) = res {
        // As BuildKit: the Dockerfile around a failing instruction, then the error. Both
        // binaries prefix errors with their name (`skiff: ...`, `slipway: ...`).
        if let Some(build::BuildError::At { excerpt, .. }) = e.downcast_ref::<build::BuildError>() {
            eprint!("{excerpt}");
        }
        eprintln!("slipway: {e:#}");
        // 128 + SIGINT, as a shell reports a command ended by ^C
        std::process::exit(if slipway::sys::interrupted() { 130 } else { 1 });
    }
}
