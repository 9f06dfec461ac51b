//! The one place that invokes an OCI runtime binary (skiff, runc, ...) through its CLI:
//! `run` a prepared bundle under a private `--root`, `delete -f` it when the run left it (the
//! runtime died, or the step was stopped) and remove the container's cgroup, `/slipway/<id>`
//! (or `<--cgroup-parent>/<id>`). With a systemd `--cgroup-parent` every command gets the
//! runtime's `--systemd-cgroup` and the runtime's delete stops the step's scope unit.
//! Knows nothing of Dockerfiles.

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::resources::CgroupParent;

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
    /// Set when the build stops for another reason than a signal (a step of a stage that runs
    /// at the same time failed): a running container is deleted as on an interrupt.
    pub cancel: Arc<AtomicBool>,
    /// `build --cgroup-parent`: the containers' cgroups go under it rather than under
    /// `/slipway` (a systemd slice: as scope units, the runtime run with `--systemd-cgroup`).
    pub cgroup_parent: Option<CgroupParent>,
}

impl Runtime {
    pub fn new(bin: PathBuf, state_root: PathBuf) -> Runtime {
        Runtime { bin, state_root, cancel: Arc::default(), cgroup_parent: None }
    }

    /// The cgroupsPath given to container `id`: `/slipway/<id>`, or `<parent>/<id>` with
    /// `--cgroup-parent` (as docker puts a container under `--cgroup-parent`; BuildKit adds a
    /// `buildkit/` level between, which here would be left behind in a parent that is the
    /// user's), or `SLICE:PREFIX:<id>` with a systemd parent (as BuildKit appends the id).
    pub fn cgroups_path(&self, id: &str) -> String {
        match &self.cgroup_parent {
            Some(p) => p.cgroups_path(id),
            None => format!("/slipway/{id}"),
        }
    }

    /// Whether the runtime runs with its systemd cgroup driver.
    pub fn systemd_cgroup(&self) -> bool {
        self.cgroup_parent.as_ref().is_some_and(CgroupParent::is_systemd)
    }

    /// `BIN --root STATE [--systemd-cgroup]`: the global flags every command gets (runc reads
    /// `--systemd-cgroup` at create and run, and it is harmless elsewhere, as containerd's shim
    /// gives it to all).
    fn command(&self) -> Command {
        runtime_command(&self.bin, &self.state_root, self.systemd_cgroup())
    }

    fn stopping(&self) -> bool {
        crate::sys::interrupted() || self.cancel.load(Ordering::SeqCst)
    }
}

/// Where a container's output goes.
pub enum Output<'s> {
    /// To our stdout and stderr, as it comes.
    Stream,
    /// To a file of the bundle; it comes back in the outcome.
    Capture,
    /// Line by line (stdout and stderr together) to a function, as it comes: stages that run
    /// at once label each line with their step.
    Lines(&'s (dyn Fn(&str) + Sync)),
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

impl Runtime {
    /// Runs the bundle to completion, its output going where `out` says. An interrupt
    /// ([`crate::sys::interrupted`]) or `cancel` deletes the container and ends the run with
    /// `Interrupted`.
    pub fn run(&self, bundle: &Path, id: &str, out: Output) -> Result<Outcome, RunError> {
        let _ = fs::create_dir_all(&self.state_root);
        let mut cmd = self.command();
        cmd.arg("run").arg("--bundle").arg(bundle).arg(id).stdin(Stdio::null());
        let out_file = bundle.join("output");
        let spawn_err = |err| RunError::Spawn { bin: self.bin.clone(), err };
        let mut reader = None;
        match out {
            Output::Capture => {
                let f = fs::File::create(&out_file).map_err(spawn_err)?;
                let f2 = f.try_clone().map_err(spawn_err)?;
                cmd.stdout(f).stderr(f2);
            }
            Output::Stream => {
                let _ = io::stdout().flush();
            }
            Output::Lines(_) => {
                let (r, w) = io::pipe().map_err(spawn_err)?;
                let w2 = w.try_clone().map_err(spawn_err)?;
                cmd.stdout(w).stderr(w2);
                reader = Some(r);
            }
        }
        std::thread::scope(|s| {
            // the pipe's write ends live in `cmd`: it goes once the child has them, so the
            // reader sees the end of the output when the container's processes are gone
            let lines = match (reader, &out) {
                (Some(r), Output::Lines(f)) => {
                    let f = *f;
                    Some(s.spawn(move || {
                        let mut r = io::BufReader::new(r);
                        let mut buf = Vec::new();
                        while let Ok(n) = r.read_until(b'\n', &mut buf) {
                            if n == 0 {
                                break;
                            }
                            let l = String::from_utf8_lossy(&buf);
                            f(l.strip_suffix('\n').unwrap_or(&l));
                            buf.clear();
                        }
                    }))
                }
                _ => None,
            };
            let res = self.wait(cmd, id);
            if let Some(t) = lines {
                let _ = t.join();
            }
            res
        })
        .map(|status| {
            let output =
                if matches!(out, Output::Capture) { fs::read(&out_file).unwrap_or_default() } else { Vec::new() };
            use std::os::unix::process::ExitStatusExt;
            let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
            Outcome { code, output }
        })
    }

    /// Starts `cmd` (the runtime's `run` of container `id`) and waits for it; deletes the
    /// container when it ends, or at once on an interrupt or cancel.
    fn wait(&self, mut cmd: Command, id: &str) -> Result<std::process::ExitStatus, RunError> {
        let delete = || {
            let _ = self
                .command()
                .args(["delete", "-f", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        let spawned = cmd.spawn();
        drop(cmd);
        let mut child = match spawned {
            Ok(c) => c,
            Err(err) => {
                delete();
                self.remove_cgroups(id);
                return Err(RunError::Spawn { bin: self.bin.clone(), err });
            }
        };
        // readable once the child has exited: the wait ends then, not at the next 10 ms tick
        // (a kernel before 5.3 has none: ticks alone, as before). The 10 ms bound stays for
        // the interrupt and cancel checks.
        let exited = crate::sys::pidfd_open(child.id()).ok();
        let mut killed = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Ok(s),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            if self.stopping() && !killed {
                delete();
                killed = true;
            }
            match &exited {
                Some(fd) => {
                    use nix::poll::{poll, PollFd, PollFlags};
                    use std::os::fd::AsFd;
                    // EINTR (a signal) and timeouts alike go round the loop again
                    let _ = poll(&mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)], 10u8);
                }
                None => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        // A foreground `run` deletes its container before it exits (runc, crun, youki and
        // skiff alike), so after a normal end there is nothing left for a `delete -f`: it runs
        // when the runtime's state directory for the container (`<root>/<id>`, where all of
        // them keep it) is still there (the runtime died, or we stopped it), saving a runtime
        // process per RUN step.
        if killed || status.is_err() || self.state_root.join(id).exists() {
            delete();
        }
        self.remove_cgroups(id);
        let status = status.map_err(|err| RunError::Spawn { bin: self.bin.clone(), err })?;
        if killed || self.stopping() {
            return Err(RunError::Interrupted);
        }
        Ok(status)
    }
}

/// What a bundle dir records so that a later command can remove the container if we die.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    pub bin: PathBuf,
    pub state_root: PathBuf,
    pub id: String,
    /// The container's cgroupsPath (recorded since `--cgroup-parent`; before, `/slipway/<id>`).
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// The runtime ran with `--systemd-cgroup` (a systemd `--cgroup-parent`): its delete gets it
    /// too, and the cgroup is the unit's, which the delete stops.
    #[serde(default)]
    pub systemd_cgroup: bool,
}

pub const OWNER_FILE: &str = "slipway-runtime.json";

impl Runtime {
    /// Records in `bundle` which container will run from it.
    pub fn record(&self, bundle: &Path, id: &str) -> io::Result<()> {
        let o = Owner {
            bin: self.bin.clone(),
            state_root: self.state_root.clone(),
            id: id.to_string(),
            cgroups_path: Some(self.cgroups_path(id)),
            systemd_cgroup: self.systemd_cgroup(),
        };
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
        let _ = runtime_command(&o.bin, &o.state_root, o.systemd_cgroup)
            .args(["delete", "-f", &o.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !o.systemd_cgroup {
            remove_cgroups(&o.cgroups_path.unwrap_or_else(|| format!("/slipway/{}", o.id)));
        }
    }
}

fn runtime_command(bin: &Path, state_root: &Path, systemd_cgroup: bool) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--root").arg(state_root);
    if systemd_cgroup {
        cmd.arg("--systemd-cgroup");
    }
    cmd
}

impl Runtime {
    /// Removes container `id`'s cgroupfs cgroups when the run and delete left them. A scope
    /// unit's cgroup is systemd's: the runtime's delete stopped the unit (and systemd stops a
    /// scope whose processes are gone), so there is nothing of it to remove by hand.
    fn remove_cgroups(&self, id: &str) {
        if !self.systemd_cgroup() {
            remove_cgroups(&self.cgroups_path(id));
        }
    }
}

/// Removes a container's cgroup (its cgroupsPath, `/slipway/<id>`) in every cgroup hierarchy
/// (v1 controllers and the unified one); the parents stay.
pub fn remove_cgroups(path: &str) {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                roots.push(e.path());
            }
        }
    }
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return;
    }
    for r in roots {
        let dir = r.join(rel);
        if dir.exists() {
            rmdir_tree(&dir);
        }
        // the shared `/slipway` parent (or the user's --cgroup-parent) stays: removing it
        // would race with a concurrent build's runtime creating its own cgroup below it
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemd_parent_gives_the_runtime_its_systemd_driver() {
        let args = |rt: &Runtime| -> Vec<String> {
            rt.command().get_args().map(|a| a.to_string_lossy().into_owned()).collect()
        };
        let plain = Runtime::new("runc".into(), "/state".into());
        assert_eq!(args(&plain), ["--root", "/state"]);
        assert_eq!(plain.cgroups_path("slipway-1"), "/slipway/slipway-1");
        let path = Runtime { cgroup_parent: CgroupParent::parse("ci").unwrap(), ..plain.clone() };
        assert_eq!((args(&path).len(), path.cgroups_path("slipway-1").as_str()), (2, "/ci/slipway-1"));
        // BuildKit's executor/oci: the systemd parent with the id added; runc's global flag
        let sd = Runtime { cgroup_parent: CgroupParent::parse("ci.slice:build:").unwrap(), ..plain };
        assert_eq!(args(&sd), ["--root", "/state", "--systemd-cgroup"]);
        assert_eq!(sd.cgroups_path("slipway-1"), "ci.slice:build:slipway-1");
        // recorded for the reaper of a killed build, which deletes with the same driver
        let dir = tempfile::tempdir().unwrap();
        sd.record(dir.path(), "slipway-1").unwrap();
        let o: Owner = serde_json::from_slice(&fs::read(dir.path().join(OWNER_FILE)).unwrap()).unwrap();
        assert!(o.systemd_cgroup && o.cgroups_path.as_deref() == Some("ci.slice:build:slipway-1"));
    }
}
