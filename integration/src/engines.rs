//! Real engines driving the runtime under test: a private containerd (`ctr`), dockerd (`docker`)
//! or podman, each with its own root, state and socket directories, its own cgroup parent and no
//! network, with a busybox image slipway built loaded into it. Dropping an [`Engine`] removes its
//! containers, stops its daemon and ends, by pid, whatever it left running. [`Footprint`] is what
//! an engine's containers leave on the host: mounts, cgroups, processes and runtime state.

use crate::host::{wait_until, PATIENCE};
use crate::slipway::Slipway;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The busybox image every engine has loaded (slipway's base image: busybox-static, root and
/// bob 1000:1000 in /etc/passwd).
pub const IMAGE: &str = "docker.io/library/skiffbox:1";

/// The sandbox image of [`Engine::containerd_cri`]: [`IMAGE`] sleeping.
pub const PAUSE_IMAGE: &str = "docker.io/library/skiffpause:1";

/// The CRI runtime handler (RuntimeClass) of [`Engine::containerd_cri`] that runs the runtime under
/// test, named as in the README's containerd snippet.
pub const CRI_HANDLER: &str = "skiff";

/// The CRI client [`Engine::cri`] runs (python3-grpcio; Debian has no crictl).
const CRI_CLIENT: &str = include_str!("cri.py");

/// Debian's python3, which has python3-grpcio (not a python of its own on $PATH).
const CRI_PYTHON: &str = "/usr/bin/python3";

/// The name dockerd knows the runtime under test by (`--add-runtime skiff=PATH`).
pub const DOCKER_RUNTIME: &str = "skiff";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Containerd,
    Docker,
    Podman,
}

impl Kind {
    fn binaries(self) -> &'static [&'static str] {
        match self {
            Kind::Containerd => &["containerd", "ctr", "containerd-shim-runc-v2"],
            Kind::Docker => &["dockerd", "docker", "containerd", "containerd-shim-runc-v2"],
            Kind::Podman => &["podman", "conmon"],
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Containerd => "ctrd",
            Kind::Docker => "dock",
            Kind::Podman => "podm",
        }
    }
}

/// True if `bin` is on $PATH.
pub fn have(bin: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file())).unwrap_or(false)
}

/// What one engine command did.
pub struct Out {
    pub command: String,
    /// Exit code, or None if the client died of a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Out {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self
    }

    /// stdout, trimmed.
    pub fn text(&self) -> &str {
        self.stdout.trim()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "exit: {:?}", self.code)?;
        writeln!(f, "stdout: {:?}", self.stdout)?;
        write!(f, "stderr: {:?}", self.stderr)
    }
}

impl fmt::Debug for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A client command still running (a foreground `ctr run`, say). Output goes to files, so a
/// container that keeps a copy of the client's stdio cannot make us wait for EOF.
pub struct Running {
    child: Child,
    command: String,
    out: PathBuf,
    err: PathBuf,
    feeder: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// What the command printed on stdout so far.
    pub fn stdout_now(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits for the command (killing it after [`PATIENCE`]).
    #[track_caller]
    pub fn wait(self) -> Out {
        self.wait_up_to(PATIENCE)
    }

    /// Waits for the command, killing it after `limit`.
    #[track_caller]
    pub fn wait_up_to(mut self, limit: Duration) -> Out {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() > deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("wait for {}: {e}", self.command),
            }
        };
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("{} still running after {limit:?}; killed it\nstdout: {}", self.command, self.stdout_now());
        };
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        Out {
            command: self.command,
            code: status.code(),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        }
    }
}

/// One private engine instance.
pub struct Engine {
    pub kind: Kind,
    dir: PathBuf,
    daemon: Option<Child>,
    cgroup_parent: String,
    /// containerd's namespace for `ctr` (the cgroup parent's name; k8s.io, kubelet's, under CRI).
    namespace: String,
    counter: AtomicU32,
}

impl Engine {
    /// A private engine of `kind` with [`IMAGE`] loaded, or None (after printing why) when the
    /// engine is not installed on this host.
    pub fn start(kind: Kind) -> Option<Engine> {
        let e = Engine::bare(kind)?;
        e.load_images(&[IMAGE]);
        Some(e)
    }

    /// A private engine of `kind` with no image, or None (after printing why) when the engine is
    /// not installed on this host.
    pub fn bare(kind: Kind) -> Option<Engine> {
        if let Some(missing) = kind.binaries().iter().find(|b| !have(b)) {
            crate::skip(format!("{missing} not installed: no {kind:?} test (make deps installs it)"));
            return None;
        }
        let name = crate::unique_name(&format!("sk-{}", kind.short()));
        // containerd's and dockerd's unix sockets live under `dir`: keep the path short
        let dir = PathBuf::from("/tmp").join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut e = Engine::new(kind, dir, name.clone(), name);
        match kind {
            Kind::Containerd => e.start_containerd(None),
            Kind::Docker => e.start_dockerd(),
            Kind::Podman => e.write_podman_config(),
        }
        Some(e)
    }

    fn new(kind: Kind, dir: PathBuf, cgroup_parent: String, namespace: String) -> Engine {
        Engine { kind, dir, daemon: None, cgroup_parent, namespace, counter: AtomicU32::new(0) }
    }

    /// A private containerd serving the Kubernetes CRI as kubelet uses it (its CRI plugin on, in
    /// namespace k8s.io) with the README's runtime `skiff` (RuntimeClass handler [`CRI_HANDLER`]):
    /// the runtime under test as its BinaryName, `SystemdCgroup = systemd_cgroup` in its options,
    /// the set-up of a Kubernetes node. [`IMAGE`] and [`PAUSE_IMAGE`] (the sandbox image) are loaded. Drive it with
    /// [`Engine::cri`]. None (after printing why) without containerd or python3-grpcio.
    pub fn containerd_cri(systemd_cgroup: bool) -> Option<Engine> {
        if let Some(missing) = Kind::Containerd.binaries().iter().find(|b| !have(b)) {
            crate::skip(format!("{missing} not installed: no containerd CRI test (make deps installs it)"));
            return None;
        }
        let grpc = Command::new(CRI_PYTHON).args(["-c", "import grpc"]).stderr(Stdio::null()).status();
        if !grpc.is_ok_and(|s| s.success()) {
            crate::skip("python3-grpcio not installed: no containerd CRI test (Debian has no crictl)");
            return None;
        }
        let name = crate::unique_name("sk-cri");
        let dir = PathBuf::from("/tmp").join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs")).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        std::fs::write(dir.join("cri.py"), CRI_CLIENT).expect("write cri.py");
        let mut e = Engine::new(Kind::Containerd, dir, name, "k8s.io".to_string());
        let d = e.dir.display();
        // As in the README: a config's `runtimes` table replaces containerd's default one, so the
        // runc runtime that default_runtime_name names is listed too (without it the CRI plugin
        // does not load).
        let cri = format!(
            "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{PAUSE_IMAGE}\"\n  stream_server_port = \"0\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{d}/cni/bin\"\n  conf_dir = \"{d}/cni/conf\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = {systemd_cgroup}\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.skiff]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.skiff.options]\n  BinaryName = \"{}\"\n  \
             Root = \"{d}/runc\"\n  SystemdCgroup = {systemd_cgroup}\n",
            crate::runtime_path().display()
        );
        e.start_containerd(Some(&cri));
        e.load_images(&[IMAGE, PAUSE_IMAGE]);
        Some(e)
    }

    /// One CRI call (`method` of runtime.v1.RuntimeService, the request as JSON with the proto's
    /// field names) to a [`Engine::containerd_cri`] engine: the response, or the gRPC error.
    pub fn cri(&self, method: &str, request: serde_json::Value) -> Result<serde_json::Value, String> {
        let out = Command::new(CRI_PYTHON)
            .arg(self.dir.join("cri.py"))
            .arg(self.dir.join("sock"))
            .arg(method)
            .arg(request.to_string())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {CRI_PYTHON}: {e}"));
        if !out.status.success() {
            return Err(format!("CRI {method}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("CRI {method}: response: {e}"))
    }

    /// One engine of `kind` shared by the tests of a test binary that run at the same time; it
    /// stops when the last of them drops it (a later test starts a new one).
    pub fn shared(kind: Kind) -> Option<Arc<Engine>> {
        static SHARED: [Mutex<Weak<Engine>>; 3] =
            [Mutex::new(Weak::new()), Mutex::new(Weak::new()), Mutex::new(Weak::new())];
        let slot = &SHARED[kind as usize];
        let mut weak = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = weak.upgrade() {
            return Some(e);
        }
        let e = Arc::new(Engine::start(kind)?);
        *weak = Arc::downgrade(&e);
        Some(e)
    }

    /// The engine's private directory (roots, state, sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cgroup every container of this engine goes below (a ctr namespace, dockerd's
    /// `--cgroup-parent`, podman's `--cgroup-parent`), without a leading slash.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Where the runtime under test keeps its state for this engine's containers.
    pub fn runtime_root(&self) -> PathBuf {
        match self.kind {
            // the runc shim adds the namespace
            Kind::Containerd => self.dir.join("runc"),
            // dockerd 20.10 hands every runc-compatible runtime the root exec-root/runtime-runc
            Kind::Docker => self.dir.join("exec/runtime-runc"),
            Kind::Podman => self.dir.join("runtime"),
        }
    }

    /// `RUNTIME --root ROOT state ID` as JSON: the runtime under test's own view of a container
    /// of this engine (None if it does not know it), proof the engine runs it through that runtime.
    pub fn runtime_state(&self, id: &str) -> Option<serde_json::Value> {
        let root = match self.kind {
            Kind::Containerd => self.runtime_root().join(&self.namespace),
            Kind::Docker => self.runtime_root().join("moby"),
            Kind::Podman => self.runtime_root(),
        };
        let o = Command::new(crate::runtime_path()).arg("--root").arg(root).args(["state", id]).output().ok()?;
        serde_json::from_slice(&o.stdout).ok().filter(|_| o.status.success())
    }

    /// containerd with its CRI plugin configured by `cri` (TOML), or off.
    fn start_containerd(&mut self, cri: Option<&str>) {
        let d = self.dir.display();
        let mut cfg = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/sock\"\n[ttrpc]\n  address = \"{d}/sock.ttrpc\"\n[debug]\n  address = \"{d}/debug.sock\"\n"
        );
        match cri {
            Some(cri) => cfg.push_str(cri),
            None => cfg = cfg.replacen("\n[grpc]", "\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]", 1),
        }
        std::fs::write(self.dir.join("config.toml"), cfg).expect("write containerd config");
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(self.dir.join("config.toml"));
        self.spawn_daemon(cmd);
        self.wait_ready(&["version"]);
    }

    fn start_dockerd(&mut self) {
        std::fs::write(self.dir.join("daemon.json"), "{}").expect("write daemon.json");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}/sock", self.dir.display()))
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver", "vfs"])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .arg("--cgroup-parent")
            .arg(format!("/{}", self.cgroup_parent))
            .arg("--add-runtime")
            .arg(format!("{DOCKER_RUNTIME}={}", crate::runtime_path().display()));
        self.spawn_daemon(cmd);
        self.wait_ready(&["version"]);
    }

    /// podman has no daemon: its configuration is a private containers.conf. The default
    /// nofile/nproc ulimits podman asks for are above this host's hard limits (and a container
    /// may not raise them without CAP_SYS_RESOURCE), so it asks for ones below.
    ///
    /// The runtime's own state goes to a private `--root` too. podman 4.3 drops `--runtime-flag`
    /// from the cleanup command conmon runs when a container exits (its `delete --force` would go
    /// to the runtime's default root and leave the state behind), so podman is given, under the
    /// runtime's own name, a two-line script that execs it with `--root`.
    fn write_podman_config(&mut self) {
        std::fs::create_dir_all(self.dir.join("tmp")).expect("mkdir podman tmpdir");
        let rt = crate::runtime_path();
        let bin = self.dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        let wrapper = bin.join(rt.file_name().unwrap_or_default());
        let script = format!("#!/bin/sh\nexec '{}' --root '{}' \"$@\"\n", rt.display(), self.runtime_root().display());
        std::fs::write(&wrapper, script).expect("write runtime wrapper");
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod wrapper");
        let (nofile, nproc) = (hard_limit("Max open files").min(1024), hard_limit("Max processes").min(1024));
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n"
        );
        std::fs::write(self.dir.join("containers.conf"), conf).expect("write containers.conf");
    }

    fn spawn_daemon(&mut self, mut cmd: Command) {
        let log = File::create(self.dir.join("daemon.log")).expect("create daemon log");
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("dup log")).stderr(log);
        self.daemon = Some(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")));
    }

    fn wait_ready(&self, probe: &[&str]) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.run(probe).code == Some(0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{:?} did not come up: {}", self.kind, self.daemon_log());
    }

    /// The daemon's log so far (for failure messages).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Builds `images` ([`IMAGE`], [`PAUSE_IMAGE`]) with slipway and loads them.
    fn load_images(&self, images: &[&str]) {
        let s = Slipway::new();
        s.base("skiffbox:1");
        if images.contains(&PAUSE_IMAGE) {
            // The sandbox ("pause") container must outlive the pod's containers: busybox sleeping.
            let ctx = s.context("pause", &[("Dockerfile", "FROM skiffbox:1\nCMD [\"sleep\", \"1000000\"]\n")]);
            s.build(&ctx, "skiffpause:1", &[]).ok();
        }
        for image in images {
            let short = image.trim_start_matches("docker.io/library/");
            let tar = s.dir.path().join(format!("{}.tar", short.replace(':', "_")));
            s.run(&["save", short, "-o", &tar.to_string_lossy()]).ok();
            let tar = tar.to_string_lossy().into_owned();
            let args = match self.kind {
                Kind::Containerd => ["images", "import", &tar],
                Kind::Docker | Kind::Podman => ["load", "-i", &tar],
            };
            // Unpacking into the snapshotter is disk work: in the TCG VMs, next to another test's
            // engine doing the same, it has taken over PATIENCE.
            self.spawn(&args, None).wait_up_to(PATIENCE * 4).ok();
        }
    }

    /// The client command for `args`, with this engine's private addresses and roots, and on
    /// `run`/`create` (ctr: also `task exec`/`task start`) the flags that make it use the runtime
    /// under test, this engine's cgroup parent and no network.
    pub fn command(&self, args: &[&str]) -> Command {
        let rt = crate::runtime_path();
        let d = &self.dir;
        let mut cmd;
        let mut extra: Vec<OsString> = Vec::new();
        let mut at = 1;
        match self.kind {
            Kind::Containerd => {
                cmd = Command::new("ctr");
                cmd.arg("-a").arg(d.join("sock")).arg("-n").arg(&self.namespace);
                let fifo = ["--fifo-dir".into(), d.join("fifo").into()];
                match args {
                    ["run", ..] => {
                        extra.extend(["--runc-binary".into(), rt.into(), "--runc-root".into(), d.join("runc").into()]);
                        extra.extend(fifo);
                    }
                    ["task", "exec" | "start", ..] => {
                        extra.extend(fifo);
                        at = 2;
                    }
                    _ => {}
                }
            }
            Kind::Docker => {
                cmd = Command::new("docker");
                cmd.arg("-H").arg(format!("unix://{}/sock", d.display()));
                if matches!(args, ["run" | "create", ..]) {
                    extra.extend(["--runtime", DOCKER_RUNTIME, "--network", "none"].map(OsString::from));
                }
            }
            Kind::Podman => {
                cmd = Command::new("podman");
                cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
                    .arg("--root")
                    .arg(d.join("root"))
                    .arg("--runroot")
                    .arg(d.join("run"))
                    .arg("--tmpdir")
                    .arg(d.join("tmp"))
                    .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"])
                    .arg("--runtime")
                    .arg(d.join("bin").join(rt.file_name().unwrap_or_default()));
                if matches!(args, ["run" | "create", ..]) {
                    extra.extend(["--network".into(), "none".into(), "--cgroup-parent".into()]);
                    extra.push(format!("/{}", self.cgroup_parent).into());
                }
            }
        }
        // conmon writes its `oom` marker into its working directory: not the source tree
        cmd.current_dir(d);
        let at = at.min(args.len());
        cmd.args(&args[..at]).args(extra).args(&args[at..]);
        cmd
    }

    /// Starts the client with `args` (stdin from /dev/null, or fed `input` and then closed).
    pub fn spawn(&self, args: &[&str], input: Option<Vec<u8>>) -> Running {
        let mut cmd = self.command(args);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let io = self.dir.join("io");
        std::fs::create_dir_all(&io).expect("mkdir io");
        let (out, err) = (io.join(format!("{n}.out")), io.join(format!("{n}.err")));
        cmd.stdout(File::create(&out).expect("create out")).stderr(File::create(&err).expect("create err"));
        cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
        let command = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        let feeder = input.map(|data| {
            let stdin = child.stdin.take();
            // a container that stops reading early makes this fail with EPIPE; the test sees
            // that in the output it checks
            std::thread::spawn(move || {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(&data);
                }
            })
        });
        Running { child, command, out, err, feeder }
    }

    /// Runs the client with `args` to the end.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> Out {
        self.spawn(args, None).wait()
    }

    /// Runs the client with `args`, feeding `input` on its stdin.
    #[track_caller]
    pub fn run_with_stdin(&self, args: &[&str], input: Vec<u8>) -> Out {
        self.spawn(args, Some(input)).wait()
    }

    /// The first `file` found in the cgroup directories (in any hierarchy, below this engine's
    /// parent) whose name contains `id`, trimmed.
    pub fn cgroup_file(&self, id: &str, file: &str) -> Option<String> {
        self.cgroup_dirs()
            .into_iter()
            .filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy().contains(id)))
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .map(|v| v.trim().to_string())
    }

    /// Every cgroup directory below this engine's parent, in every hierarchy (the parents too).
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            walk_dirs(&h.path().join(&self.cgroup_parent), &mut found);
        }
        walk_dirs(&Path::new("/sys/fs/cgroup").join(&self.cgroup_parent), &mut found);
        found
    }

    /// What this engine's containers leave on the host now.
    pub fn footprint(&self) -> Footprint {
        let dir = self.dir.to_string_lossy().into_owned();
        let cg = format!("/{}", self.cgroup_parent);
        let mut processes = Vec::new();
        let me = std::process::id() as i32;
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if pid == me || !crate::host::pid_alive(pid) {
                continue;
            }
            let cmdline = crate::host::cmdline(pid).unwrap_or_default().join(" ");
            let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
            let ours = cmdline.contains(&format!("{dir}/"))
                || cgroups.lines().any(|l| l.contains(&format!("{cg}/")) || l.ends_with(&cg));
            if ours {
                processes.push(format!("{pid} {}", cmdline.chars().take(160).collect::<String>()));
            }
        }
        let mut state = Vec::new();
        walk_all(&self.runtime_root(), &self.runtime_root(), &mut state);
        Footprint {
            mounts: crate::host::mounts_under(&self.dir).iter().map(|p| p.display().to_string()).collect(),
            // the parent itself comes and goes: skiff removes the parents it made once they are
            // empty, runc leaves them
            cgroups: self
                .cgroup_dirs()
                .iter()
                .filter(|p| !p.ends_with(&self.cgroup_parent))
                .map(|p| p.display().to_string())
                .collect(),
            processes,
            state,
        }
    }

    /// The footprint once no shim or conmon of this engine runs any more (the baseline of an
    /// idle engine).
    pub fn idle_footprint(&self) -> Footprint {
        let mut now = self.footprint();
        let deadline = Instant::now() + PATIENCE;
        while now.processes.iter().any(|p| p.contains("containerd-shim") || p.contains("conmon"))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
            now = self.footprint();
        }
        now
    }

    /// Waits until the footprint equals `want` and returns it; after [`PATIENCE`] returns the
    /// footprint as it is, for the caller's assertion to show the difference.
    pub fn settle_to(&self, want: &Footprint) -> Footprint {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.footprint();
            if now == *want || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts the footprint comes back to `baseline` (waiting up to [`PATIENCE`]), showing only
    /// what differs.
    #[track_caller]
    pub fn assert_settles_to(&self, baseline: &Footprint) {
        let now = self.settle_to(baseline);
        assert!(now == *baseline, "not back to the baseline:\n{}", now.diff(baseline));
    }

    /// The parts of the footprint that name `id` (a container id or name), once they are gone
    /// (empty), or what is left after [`PATIENCE`].
    pub fn traces_of(&self, id: &str) -> Footprint {
        let mut left = Footprint::default();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            left = self.footprint().only(id);
            if left == Footprint::default() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        left
    }
}

/// What an engine's containers leave on the host: mount points under its directory, cgroup
/// directories below its parent, processes (the daemon, shims, conmon, container processes: any
/// naming its directory or in its cgroups) and the runtime's state entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Footprint {
    pub mounts: Vec<String>,
    pub cgroups: Vec<String>,
    pub processes: Vec<String>,
    pub state: Vec<String>,
}

impl Footprint {
    /// `+ entry` for what is here and not in `base`, `- entry` for the reverse.
    pub fn diff(&self, base: &Footprint) -> String {
        let mut out = String::new();
        let parts = [
            ("mount", &self.mounts, &base.mounts),
            ("cgroup", &self.cgroups, &base.cgroups),
            ("process", &self.processes, &base.processes),
            ("state", &self.state, &base.state),
        ];
        for (what, now, then) in parts {
            for e in now.iter().filter(|e| !then.contains(e)) {
                out.push_str(&format!("+ {what} {e}\n"));
            }
            for e in then.iter().filter(|e| !now.contains(e)) {
                out.push_str(&format!("- {what} {e}\n"));
            }
        }
        out
    }

    /// The entries that mention `id`.
    pub fn only(&self, id: &str) -> Footprint {
        let f = |v: &[String]| v.iter().filter(|s| s.contains(id)).cloned().collect();
        Footprint {
            mounts: f(&self.mounts),
            cgroups: f(&self.cgroups),
            processes: f(&self.processes),
            state: f(&self.state),
        }
    }
}

fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    out.push(dir.to_path_buf());
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_dirs(&e.path(), out);
        }
    }
}

fn walk_all(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).into_iter().flatten().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        out.push(e.path().strip_prefix(base).unwrap_or(&e.path()).display().to_string());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_all(base, &e.path(), out);
        }
    }
}

/// This process's hard limit from the `name` line of /proc/self/limits ("unlimited" as u64::MAX).
fn hard_limit(name: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().nth(1).map(|h| h.parse().unwrap_or(u64::MAX)))
        .unwrap_or(1024)
}

impl Drop for Engine {
    fn drop(&mut self) {
        // the orderly way first: remove every container through the client
        match self.kind {
            Kind::Docker => {
                let ids = self.try_run(&["ps", "-aq"]);
                for id in ids.split_whitespace() {
                    let _ = self.try_run(&["rm", "-f", id]);
                }
            }
            Kind::Podman => {
                let _ = self.try_run(&["rm", "-a", "-f", "-t", "0"]);
            }
            Kind::Containerd => {
                for id in self.try_run(&["task", "ls", "-q"]).split_whitespace() {
                    let _ = self.try_run(&["task", "kill", "-s", "SIGKILL", id]);
                    let _ = self.try_run(&["task", "rm", "-f", id]);
                }
                for id in self.try_run(&["containers", "ls", "-q"]).split_whitespace() {
                    let _ = self.try_run(&["containers", "rm", id]);
                }
            }
        }
        // SIGTERM lets dockerd stop the containerd it started
        if let Some(mut daemon) = self.daemon.take() {
            let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline && matches!(daemon.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        // then whatever is left, by pid: shims and conmon name our directory, container
        // processes sit in our cgroups
        for _ in 0..50 {
            let left = self.footprint();
            if left.processes.is_empty() {
                break;
            }
            for p in &left.processes {
                if let Some(pid) = p.split(' ').next().and_then(|p| p.parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        crate::host::detach_mounts_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut cgroups = self.cgroup_dirs();
        cgroups.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in cgroups {
            let _ = std::fs::remove_dir(d);
        }
    }
}

impl Engine {
    /// stdout of a cleanup command, empty if it failed or hung (Drop must not panic).
    fn try_run(&self, args: &[&str]) -> String {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stderr(Stdio::null()).stdout(Stdio::piped());
        let Ok(mut child) = cmd.spawn() else { return String::new() };
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let mut s = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut o, &mut s);
                }
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        String::new()
    }
}

/// Waits (up to [`PATIENCE`]) for `probe` to hold; the caller asserts what it then sees.
pub fn eventually(what: &str, probe: impl FnMut() -> bool) {
    let mut probe = probe;
    wait_until(what, || probe().then_some(()))
}
