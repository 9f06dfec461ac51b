//! Drives the runtime under test through its CLI with a private `--root`, capturing what a user
//! sees (exit status, stdout, stderr). Never reads the runtime's state files directly.
//!
//! Output goes to files, not pipes: after `create` or `run -d` the container inherits the runtime's
//! stdio and keeps it open, so waiting for a pipe's EOF would wait for the container.

use crate::bundle::Bundle;
use crate::host::{wait_until, PATIENCE};
use serde_json::Value;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// What one runtime invocation did.
pub struct Output {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code, or None if the runtime itself was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    stdout_path: PathBuf,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit code; panics (with the whole output) if the runtime died of a signal.
    #[track_caller]
    pub fn code(&self) -> i32 {
        self.code.unwrap_or_else(|| panic!("runtime was killed by a signal\n{self}"))
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(self.success(), "expected success\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_failure(&self) -> &Output {
        assert!(self.code.is_some_and(|c| c != 0), "expected a non-zero exit\n{self}");
        self
    }

    /// Asserts stderr contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Output {
        assert!(self.stderr.contains(needle), "expected stderr to contain {needle:?}\n{self}");
        self
    }

    /// What has been written to this invocation's stdout so far. After `create`, the container's
    /// process inherited that stdout, so this also shows what the container printed since.
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "exit: {:?}", self.code)?;
        writeln!(f, "stdout: {:?}", self.stdout)?;
        write!(f, "stderr: {:?}", self.stderr)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One runtime binary with a private state directory. Drop deletes (with `--force`) every
/// container still listed, then removes its directories — also when the test panicked.
pub struct Runtime {
    binary: PathBuf,
    dir: tempfile::TempDir,
    counter: AtomicU32,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime::with_binary(crate::runtime_path())
    }

    /// A runtime guard for another binary (e.g. a copy of the runtime under test).
    pub fn with_binary(binary: PathBuf) -> Runtime {
        assert!(binary.exists(), "runtime under test {} does not exist (set OCI_RUNTIME)", binary.display());
        let dir = tempfile::Builder::new().prefix("skiff-it-rt-").tempdir_in("/tmp").expect("create runtime temp dir");
        std::fs::create_dir(dir.path().join("root")).expect("mkdir root");
        std::fs::create_dir(dir.path().join("io")).expect("mkdir io");
        Runtime { binary, dir, counter: AtomicU32::new(0) }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The directory passed as `--root`.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A scratch directory owned by this runtime's guard (removed on drop), for sockets etc.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// A container id unique to this test run.
    pub fn new_id(&self) -> String {
        crate::unique_name("it")
    }

    /// `RUNTIME --root ROOT [--systemd-cgroup] ARGS...`, not yet run. `--systemd-cgroup` is
    /// given to every command under [`crate::systemd_cgroup`], as containerd's shim gives it.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(self.root());
        if crate::systemd_cgroup() {
            cmd.arg("--systemd-cgroup");
        }
        cmd.args(args);
        cmd
    }

    /// Runs the runtime with `args`, stdin from /dev/null.
    pub fn exec<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.exec_cmd(self.command(args), None)
    }

    /// Runs the runtime with `args`, feeding `input` on stdin.
    pub fn exec_with_stdin<S: AsRef<std::ffi::OsStr>>(&self, args: &[S], input: Vec<u8>) -> Output {
        self.exec_cmd(self.command(args), Some(input))
    }

    /// Runs a prepared command with stdout/stderr captured to files. Panics if it cannot be
    /// spawned or is still running after [`PATIENCE`] (after killing it).
    #[track_caller]
    pub fn exec_cmd(&self, cmd: Command, input: Option<Vec<u8>>) -> Output {
        self.try_exec_cmd(cmd, input).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Runtime::exec_cmd`] that reports instead of panicking (for Drop, which must not panic).
    pub fn try_exec_cmd(&self, mut cmd: Command, input: Option<Vec<u8>>) -> Result<Output, String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("io/{n}.out"));
        let err_path = self.dir.path().join(format!("io/{n}.err"));
        let out = File::create(&out_path).map_err(|e| format!("create {}: {e}", out_path.display()))?;
        let err = File::create(&err_path).map_err(|e| format!("create {}: {e}", err_path.display()))?;
        cmd.stdout(out).stderr(err);
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
        let command = format!("{cmd:?}");
        let mut child = cmd.spawn().map_err(|e| format!("spawn {command}: {e}"))?;
        let feeder = input.map(|data| {
            let mut stdin = child.stdin.take();
            // A container that stops reading makes this fail with EPIPE; the test sees that in
            // the output it checks, so the error is not interesting here.
            std::thread::spawn(move || {
                if let Some(stdin) = stdin.as_mut() {
                    let _ = stdin.write_all(&data);
                }
            })
        });
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{command} still running after {PATIENCE:?}; killed it"));
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(e) => return Err(format!("wait for {command}: {e}")),
            }
        };
        if let Some(f) = feeder {
            let _ = f.join();
        }
        Ok(Output {
            command,
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
            stdout_path: out_path,
        })
    }

    /// `run --bundle B ID` in the foreground with a fresh id; the container is gone afterwards.
    pub fn run(&self, bundle: &Bundle) -> Output {
        let id = self.new_id();
        self.exec(&["run", "--bundle", bundle.path_str(), &id])
    }

    /// Like [`Runtime::run`] but feeding `input` to the container's stdin.
    pub fn run_with_stdin(&self, bundle: &Bundle, input: Vec<u8>) -> Output {
        let id = self.new_id();
        self.exec_with_stdin(&["run", "--bundle", bundle.path_str(), &id], input)
    }

    /// `run` that must succeed; returns the container's stdout.
    #[track_caller]
    pub fn run_ok(&self, bundle: &Bundle) -> String {
        let out = self.run(bundle);
        out.assert_success();
        out.stdout
    }

    pub fn create(&self, id: &str, bundle: &Bundle) -> Output {
        self.exec(&["create", "--bundle", bundle.path_str(), id])
    }

    /// `create` that must succeed.
    #[track_caller]
    pub fn create_ok(&self, id: &str, bundle: &Bundle) -> Output {
        let out = self.create(id, bundle);
        out.assert_success();
        out
    }

    /// Creates and starts a container of `bundle` under a new id; returns the id.
    #[track_caller]
    pub fn create_and_start(&self, bundle: &Bundle) -> String {
        let id = self.new_id();
        self.create_ok(&id, bundle);
        self.start(&id).assert_success();
        id
    }

    pub fn start(&self, id: &str) -> Output {
        self.exec(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: &str) -> Output {
        self.exec(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Output {
        self.exec(&["delete", id])
    }

    pub fn delete_force(&self, id: &str) -> Output {
        self.exec(&["delete", "--force", id])
    }

    /// `state ID` parsed; panics if it fails or is not JSON.
    #[track_caller]
    pub fn state(&self, id: &str) -> Value {
        let out = self.exec(&["state", id]);
        out.assert_success();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state output is not JSON: {e}\n{out}"))
    }

    #[track_caller]
    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap_or_else(|| panic!("state of {id} has no string status")).to_string()
    }

    #[track_caller]
    pub fn pid(&self, id: &str) -> i32 {
        let state = self.state(id);
        state["pid"].as_i64().unwrap_or_else(|| panic!("state of {id} has no pid: {state}")) as i32
    }

    /// Polls `state` until the status is `want`.
    #[track_caller]
    pub fn wait_for_status(&self, id: &str, want: &str) {
        wait_until(&format!("container {id} to be {want}"), || (self.status(id) == want).then_some(()))
    }

    /// `list -q`, one id per line.
    #[track_caller]
    pub fn list_ids(&self) -> Vec<String> {
        let out = self.exec(&["list", "-q"]);
        out.assert_success();
        parse_ids(&out.stdout)
    }
}

fn parse_ids(list_q: &str) -> Vec<String> {
    list_q.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()
}

impl Runtime {
    /// Entries of the `--root` directory whose name mentions `id`.
    pub fn root_entries_for(&self, id: &str) -> Vec<String> {
        std::fs::read_dir(self.root())
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(id))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Ok(list) = self.try_exec_cmd(self.command(&["list", "-q"]), None) {
            for id in parse_ids(&list.stdout) {
                let _ = self.try_exec_cmd(self.command(&["delete", "--force", &id]), None);
            }
        }
        crate::host::detach_mounts_under(self.dir.path());
        // TempDir's own drop removes the directory.
    }
}
