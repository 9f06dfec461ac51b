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
    #[error("interrupted")]
    Interrupted,
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
    /// Runs the bundle to completion. Output streams to ours unless `capture` (then it goes
    /// to a file of the bundle and comes back in the outcome). An interrupt
    /// ([`crate::sys::interrupted`]) deletes the container and ends the run with `Interrupted`.
    pub fn run(&self, bundle: &Path, id: &str, capture: bool) -> Result<Outcome, RunError> {
        let _ = fs::create_dir_all(&self.state_root);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(&self.state_root).arg("run").arg("--bundle").arg(bundle).arg(id).stdin(Stdio::null());
        let out_file = bundle.join("output");
        if capture {
            let f = fs::File::create(&out_file).map_err(|err| RunError::Spawn { bin: self.bin.clone(), err })?;
            let f2 = f.try_clone().map_err(|err| RunError::Spawn { bin: self.bin.clone(), err })?;
            cmd.stdout(f).stderr(f2);
        } else {
            let _ = io::stdout().flush();
        }
        let delete = || {
            let _ = Command::new(&self.bin)
                .arg("--root")
                .arg(&self.state_root)
                .args(["delete", "-f", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(err) => {
                delete();
                remove_cgroups(id);
                return Err(RunError::Spawn { bin: self.bin.clone(), err });
            }
        };
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            if crate::sys::interrupted() && !killed {
                delete();
                killed = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        delete();
        remove_cgroups(id);
        let status = status.map_err(|err| RunError::Spawn { bin: self.bin.clone(), err })?;
        if killed || crate::sys::interrupted() {
            return Err(RunError::Interrupted);
        }
        let output = if capture { fs::read(&out_file).unwrap_or_default() } else { Vec::new() };
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
