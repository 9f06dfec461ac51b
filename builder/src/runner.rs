//! The one place that invokes an OCI runtime binary (skiff, runc, ...) through its CLI:
//! `run` a prepared bundle under a private `--root`, then `delete -f` it and remove the
//! container's cgroup under our private `/slipway/<id>` parent. Knows nothing of Dockerfiles.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("start runtime {bin}: {err}")]
    Spawn { bin: PathBuf, err: io::Error },
}

/// An OCI runtime CLI with its private state root.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub bin: PathBuf,
    pub state_root: PathBuf,
}

/// The default runtime: `skiff` next to the slipway binary, else `runc` from PATH.
pub fn default_runtime_bin() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let s = dir.join("skiff");
            if s.is_file() {
                return s;
            }
        }
    }
    PathBuf::from("runc")
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit code, or 128+signal.
    pub code: i32,
    /// Combined output when captured.
    pub output: Vec<u8>,
}

/// The cgroupsPath given to each container.
pub fn cgroups_path(id: &str) -> String {
    format!("/slipway/{id}")
}

impl Runtime {
    /// Runs the bundle to completion. Output streams to ours unless `capture`.
    pub fn run(&self, bundle: &Path, id: &str, capture: bool) -> Result<Outcome, RunError> {
        let _ = fs::create_dir_all(&self.state_root);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.state_root).arg("run").arg("--bundle").arg(bundle).arg(id).stdin(Stdio::null());
        let res = if capture {
            cmd.output().map(|o| {
                let mut out = o.stdout;
                out.extend(o.stderr);
                (o.status, out)
            })
        } else {
            let _ = io::stdout().flush();
            cmd.status().map(|s| (s, Vec::new()))
        };
        let cleanup = || {
            let _ = Command::new(&self.bin)
                .arg("--root")
                .arg(&self.state_root)
                .args(["delete", "-f", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            remove_cgroups(id);
        };
        let (status, output) = match res {
            Ok(r) => r,
            Err(err) => {
                cleanup();
                return Err(RunError::Spawn { bin: self.bin.clone(), err });
            }
        };
        cleanup();
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
        Ok(Outcome { code, output })
    }
}

/// What a bundle dir records so that a later command can remove the container if we die.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub bin: PathBuf,
    pub state_root: PathBuf,
    pub id: String,
}

pub const OWNER_FILE: &str = "slipway-runtime.json";

impl Runtime {
    /// Records in `bundle` which container will run from it.
    pub fn record(&self, bundle: &Path, id: &str) -> io::Result<()> {
        let o = Owner { bin: self.bin.clone(), state_root: self.state_root.clone(), id: id.to_string() };
        fs::write(bundle.join(OWNER_FILE), serde_json::to_vec(&o).unwrap_or_default())
    }
}

/// Force-deletes the containers of bundles left by dead slipway processes (`dirs` are the
/// store's stale temp dirs), and their cgroups.
pub fn reap(dirs: &[PathBuf]) {
    for d in dirs {
        let Ok(data) = fs::read(d.join(OWNER_FILE)) else {
            continue;
        };
        let Ok(o) = serde_json::from_slice::<Owner>(&data) else {
            continue;
        };
        let _ = Command::new(&o.bin)
            .arg("--root")
            .arg(&o.state_root)
            .args(["delete", "-f", &o.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        remove_cgroups(&o.id);
    }
}

/// Removes `/slipway/<id>` in every cgroup hierarchy (v1 controllers and the unified one).
pub fn remove_cgroups(id: &str) {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                roots.push(e.path());
            }
        }
    }
    for r in roots {
        let parent = r.join("slipway");
        let dir = parent.join(id);
        if dir.exists() {
            rmdir_tree(&dir);
        }
        // the shared `/slipway` parent stays: removing it would race with a concurrent
        // build's runtime creating its own cgroup below it
    }
}

fn rmdir_tree(d: &Path) {
    if let Ok(rd) = fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(d);
}
