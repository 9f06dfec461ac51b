//! RUN: an overlay rootfs of the state's layers, an OCI bundle with the planned process and
//! mounts, the runtime through `runner.rs`, then the upper dir as the step's layer. Mount points
//! the runtime had to create are removed again when they stayed empty.

use super::{Executor, State};
use crate::layer::overlay;
use crate::plan::{BuildError, Mount, Run};
use crate::rootfs;
use crate::spec;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn random_hex() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
}

pub(super) fn run(x: &mut Executor, st: &mut State, line: usize, r: Run, created_by: String) -> Result<(), BuildError> {
    let lowers = x.lowers(&st.layers)?;
    let mut rfs = overlay::mount_rootfs(x.store, &lowers, true)?;
    let merged = rfs.merged.clone();
    let ident = if r.user.is_empty() {
        rootfs::Ident { uid: 0, gid: 0, additional_gids: vec![] }
    } else {
        rootfs::resolve_user(&merged, &r.user).map_err(|e| x.err(line, format!("RUN: {e}")))?
    };
    // mount points the runtime will create: removed again afterwards if still empty
    let stubs: Vec<PathBuf> = spec::mount_targets(r.network)
        .into_iter()
        .map(|t| rootfs::resolve_in_root(&merged, t, false))
        .filter(|p| fs::symlink_metadata(p).is_err())
        .collect();
    let cwd_host = rootfs::resolve_in_root(&merged, &r.cwd, true);
    if !cwd_host.exists() {
        rootfs::mkdir_all(&merged, &r.cwd, None)
            .map_err(|e| x.err(line, format!("RUN: create working dir {}: {e}", r.cwd)))?;
    }
    let bundle = x.store.tempdir("bundle")?;
    let id = format!("slipway-{}", random_hex());
    let p = spec::Process {
        args: r.args.clone(),
        env: r.env.clone(),
        cwd: r.cwd.clone(),
        uid: ident.uid,
        gid: ident.gid,
        additional_gids: ident.additional_gids.clone(),
    };
    let mut config = spec::config(
        &merged.to_string_lossy(),
        &p,
        "buildkitsandbox",
        r.network,
        Some(&crate::runner::cgroups_path(&id)),
    );
    for m in &r.mounts {
        match m {
            Mount::Script { target, content } => {
                let f = bundle.path.join("script");
                fs::write(&f, content).map_err(|e| x.err(line, format!("RUN: write script: {e}")))?;
                let _ = fs::set_permissions(&f, fs::Permissions::from_mode(0o755));
                if let Some(m) = config["mounts"].as_array_mut() {
                    m.push(serde_json::json!({
                        "destination": target,
                        "type": "bind",
                        "source": f.to_string_lossy(),
                        "options": ["rbind", "ro"]
                    }));
                }
            }
        }
    }
    let cfg_path = bundle.path.join("config.json");
    if x.opts.debug {
        eprintln!(
            "debug: RUN {id}: runtime {} bundle {}\ndebug: lower dirs {lowers:?}\ndebug: config.json {}",
            x.runtime.bin.display(),
            bundle.path.display(),
            serde_json::to_string_pretty(&config).unwrap_or_default()
        );
    }
    fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap_or_default())
        .map_err(|e| x.err(line, format!("RUN: write {}: {e}", cfg_path.display())))?;
    x.runtime
        .record(&bundle.path, &id)
        .map_err(|e| x.err(line, format!("RUN: write {}: {e}", bundle.path.display())))?;
    x.progress.run_start(&id["slipway-".len()..]);
    let outcome = x.runtime.run(&bundle.path, &id, x.opts.quiet).map_err(|e| x.err(line, format!("RUN: {e}")))?;
    x.progress.run_end(&id["slipway-".len()..]);
    let mut stubs = stubs;
    stubs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for s in stubs {
        match fs::symlink_metadata(&s) {
            Ok(md) if md.is_dir() => {
                let _ = fs::remove_dir(&s);
            }
            Ok(md) if md.is_file() && md.len() == 0 => {
                let _ = fs::remove_file(&s);
            }
            _ => {}
        }
    }
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
    x.diff_layer(st, &mut rfs, created_by)
}
