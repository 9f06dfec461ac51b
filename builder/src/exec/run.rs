//! RUN: an overlay rootfs of the state's layers, the step's mounts made ready (`mounts.rs`), an
//! OCI bundle with the planned process, network, security mode and mounts, the runtime through
//! `runner.rs`, then the upper dir as the step's layer. Mount points the runtime had to create
//! (and their missing parents) are removed again when they stayed empty, and so are the device
//! nodes of `RUN --device`. A bundle with a secret
//! lives on a tmpfs, so no secret is ever written to disk.

use super::mounts::{self, TmpfsGuard};
use super::{Executor, State};
use crate::layer::overlay;
use crate::plan::{BuildError, Mount, Run, Security};
use crate::rootfs;
use crate::runner::Output;
use crate::spec;
use std::fs;
use std::path::PathBuf;

/// Whether this machine runs the executables of `p`, a platform not its own; why not if not.
fn foreign(p: &crate::registry::Platform) -> Result<(), String> {
    let host = crate::registry::Platform::host();
    if p.os != host.os {
        return Err(format!("this machine runs {} executables only", host.os));
    }
    if p.architecture == host.architecture {
        return Ok(());
    }
    crate::binfmt::handler(&p.architecture).map(drop).map_err(|why| {
        format!(
            "this machine is {host} and {why}, so RUN cannot run the stage's executables (slipway never registers \
             a handler: that is kernel-wide; install one such as qemu-user-static's, or build the stage for \
             $BUILDPLATFORM)"
        )
    })
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

pub(super) fn run(x: &mut Executor, st: &mut State, line: usize, r: Run, created_by: String) -> Result<(), BuildError> {
    if let Some(p) = &r.platform {
        foreign(p).map_err(|why| x.err(line, format!("RUN: the stage is built for {p}: {why}")))?;
    }
    let at = |what: &str| crate::trace::point(&format!("run:{line}:{what}"));
    at("start");
    let lowers = x.lowers(&st.layers)?;
    at("snapshots");
    let mut rfs = overlay::mount_rootfs(x.store, &lowers, true)?;
    at("mounted");
    let merged = rfs.merged.clone();
    let ident = if r.user.is_empty() {
        rootfs::Ident { uid: 0, gid: 0, additional_gids: vec![] }
    } else {
        rootfs::resolve_user(&merged, &r.user).map_err(|e| x.err(line, format!("RUN: {e}")))?
    };
    let cwd_host = rootfs::resolve_in_root(&merged, &r.cwd, true);
    if !cwd_host.exists() {
        rootfs::mkdir_all(&merged, &r.cwd, None)
            .map_err(|e| x.err(line, format!("RUN: create working dir {}: {e}", r.cwd)))?;
    }
    let bundle = x.store.tempdir("bundle")?;
    // secrets (files and env= values in config.json) only ever sit on this tmpfs; it goes
    // before the bundle dir is removed (locals drop in reverse order)
    let secret = r.mounts.iter().any(|m| matches!(m, Mount::Secret(_)));
    let _bundle_tmpfs = if secret {
        Some(
            TmpfsGuard::mount(&bundle.path, 0o711)
                .map_err(|e| x.err(line, format!("RUN: tmpfs for secrets on {}: {e}", bundle.path.display())))?,
        )
    } else {
        None
    };
    let prepared = x.prepare_mounts(line, &r.mounts, &bundle.path)?;
    for (_, meta) in &prepared.caches {
        if !x.cache_mounts.iter().any(|m| m.id == meta.id && m.base == meta.base) {
            x.cache_mounts.push(meta.clone());
        }
    }
    // mount points the runtime will create: removed again afterwards if still empty
    let mut targets = spec::mount_targets();
    targets.extend(prepared.targets.iter().map(String::as_str));
    targets.extend(crate::cdi::edits::targets(&r.devices.edits));
    let stubs = mounts::stubs(&merged, &targets);
    let id = format!("slipway-{}", random_hex());
    let mut env = r.env.clone();
    for e in &prepared.env {
        let k = e.split('=').next().unwrap_or_default();
        env.retain(|v| v.split('=').next() != Some(k));
        env.push(e.clone());
    }
    let p = spec::Process {
        args: r.args.clone(),
        env,
        cwd: r.cwd.clone(),
        uid: ident.uid,
        gid: ident.gid,
        additional_gids: ident.additional_gids.clone(),
    };
    let hostname = x.opts.run_extras.hostname();
    let mut config = spec::config(
        &merged.to_string_lossy(),
        &p,
        hostname,
        r.network,
        // rootless, the runtime leaves out the cgroups slipway's user may not write; a path
        // it was given there would be an error
        (!crate::userns::rootless()).then(|| x.runtime.cgroups_path(&id)).as_deref(),
    );
    if r.security == Security::Insecure {
        spec::insecure(&mut config);
    }
    // BuildKit's /etc/hosts (with the --add-host lines) and resolv.conf, for every network mode
    let write = |name: &str, text: &str| {
        let p = bundle.path.join(name);
        fs::write(&p, text).map_err(|e| x.err(line, format!("RUN: write {}: {e}", p.display())))?;
        Ok::<_, BuildError>(p.to_string_lossy().into_owned())
    };
    let hosts = write("hosts", &x.opts.run_extras.hosts_file(hostname))?;
    let resolv = write("resolv.conf", &spec::resolv_conf(&host_resolv_conf(), r.network))?;
    x.opts.run_extras.apply(&mut config, &hosts, &resolv);
    // the sandbox network: the step's own namespace, reaching out through slirp4netns
    let _net = if r.network == spec::Network::Sandbox {
        Some(crate::netns::Sandbox::join(&mut config).map_err(|e| x.err(line, format!("RUN: {e}")))?)
    } else {
        None
    };
    if let Some(m) = config["mounts"].as_array_mut() {
        m.extend(prepared.oci.iter().cloned());
    }
    // `RUN --device`: the CDI edits go last, over what the step set (as BuildKit's spec opts)
    crate::cdi::edits::apply(&r.devices.edits, &mut config);
    let cfg_path = bundle.path.join("config.json");
    if x.opts.debug {
        // secret values never reach the log: env= secrets are shown masked, as BuildKit does
        let mut shown = config.clone();
        if let Some(env) = shown["process"]["env"].as_array_mut() {
            for v in env.iter_mut() {
                let k = v.as_str().and_then(|s| s.split('=').next()).unwrap_or_default().to_string();
                if prepared.env.iter().any(|e| e.split('=').next() == Some(k.as_str())) {
                    *v = serde_json::json!(format!("{k}=****"));
                }
            }
        }
        eprintln!(
            "debug: RUN {id}: runtime {} bundle {}\ndebug: lower dirs {lowers:?}\ndebug: config.json {}",
            x.runtime.bin.display(),
            bundle.path.display(),
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
    }
    fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(|e| x.err(line, format!("RUN: write {}: {e}", cfg_path.display())))?;
    x.runtime
        .record(&bundle.path, &id)
        .map_err(|e| x.err(line, format!("RUN: write {}: {e}", bundle.path.display())))?;
    at("runtime");
    x.progress.run_start(&id["slipway-".len()..]);
    let outcome = {
        let progress = &x.progress;
        let line = |l: &str| progress.line(l);
        let out = if x.opts.quiet {
            Output::Capture
        } else if progress.labels_output() {
            Output::Lines(&line)
        } else {
            Output::Stream
        };
        x.runtime.run(&bundle.path, &id, out)
    };
    at("exited");
    x.progress.run_end(&id["slipway-".len()..]);
    mounts::remove_stubs(&stubs);
    drop(prepared);
    let outcome = outcome.map_err(|e| x.err(line, format!("RUN: {e}")))?;
    if outcome.code != 0 {
        if x.opts.quiet {
            eprint!("{}", String::from_utf8_lossy(&outcome.output));
        }
        let shown = r.args.join(" ");
        return Err(x.err(
            line,
            format!("RUN: process \"{shown}\" did not complete successfully: exit code: {}", outcome.code),
        ));
    }
    rfs.unmount()?;
    at("unmounted");
    let upper: PathBuf = rfs.upper.clone();
    mounts::drop_copied_up(&upper, &merged, &stubs, &lowers);
    let r = x.diff_layer(st, &mut rfs, created_by);
    at("layer");
    r
}

/// The host's resolver configuration as BuildKit reads it: /etc/resolv.conf, or where that is
/// systemd-resolved's stub (127.0.0.53), the servers behind it
/// (/run/systemd/resolve/resolv.conf). Empty when there is none.
pub(crate) fn host_resolv_conf() -> String {
    let etc = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if etc.lines().any(|l| l.split_whitespace().eq(["nameserver", "127.0.0.53"])) {
        if let Ok(s) = fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return s;
        }
    }
    etc
}
