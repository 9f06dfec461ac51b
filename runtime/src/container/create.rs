//! `create`: validate the bundle, record the state entry, make the cgroups and the exec fifo,
//! spawn the init and leave it blocked before exec. Any failure tears down what was made.

use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::stat::Mode;

use super::destroy;
use crate::bundle::Bundle;
use crate::cgroups::{self, Cgroup};
use crate::error::{Error, Result, SysContext};
use crate::process::{self, InitConfig, NsPlan};
use crate::state::{self, Container, Root, State, Status};
use crate::{failpoint, hooks, log};

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Rootless cgroups (the global `--rootless`, decided): hierarchies this user cannot write
    /// are left out, device rules are not applied (see cgroups/rootless.rs).
    pub cgroups_may_be_missing: bool,
    /// `--systemd-cgroup`: the container's cgroup is a systemd scope unit.
    pub systemd_cgroup: bool,
}

/// Creates the container; returns the init's pid. On error nothing is left behind.
pub fn create(root: &Root, opts: &CreateOpts) -> Result<i32> {
    create_with(root, opts, false).map(|(pid, _, _)| pid)
}

/// As [`create`] for a foreground `run`: with `process.terminal` and no `--console-socket`, skiff
/// keeps the pty master itself (runc's foreground terminal) and returns it. The third value is
/// true when the init did not wait for `start` (see [`start_at_once`]): then
/// [`super::start::started_at_once`] finishes the start.
pub fn create_keeping_pty(root: &Root, opts: &CreateOpts) -> Result<(i32, Option<OwnedFd>, bool)> {
    create_with(root, opts, true)
}

/// True when a foreground `run`'s init may exec its program as soon as it is ready, without
/// blocking on the exec fifo for `start`: with no hook to run in between (startContainer runs
/// in the init after the fifo) and no sd_notify socket to bind before the program runs. One
/// hand-over between processes less, which under load is a scheduler slice.
fn start_at_once(spec: &oci_spec::runtime::Spec) -> bool {
    !process::hooks_need_sync(spec) && super::notify::caller_socket().is_none()
}

fn create_with(root: &Root, opts: &CreateOpts, foreground: bool) -> Result<(i32, Option<OwnedFd>, bool)> {
    state::validate_id(&opts.id)?;
    let mut bundle = Bundle::load(&opts.bundle)?;
    crate::trace::point("config");
    if foreground && bundle.spec.process().is_none() {
        // A container without a process can be created (config.md), not run.
        return Err(Error::config("process", "is required by run, which starts the container"));
    }
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false);
    // (what the container's process sends the pty master on, our end of a socketpair if we keep it)
    let (console, ours) = match (&opts.console_socket, terminal) {
        (None, true) if foreground => {
            let (ours, theirs) = super::tty::channel()?;
            (Some(theirs), Some(ours))
        }
        (None, true) => {
            return Err(Error::msg("process.terminal is true: --console-socket is required to receive the pty"))
        }
        (Some(_), false) => return Err(Error::msg("--console-socket given but process.terminal is false")),
        (Some(p), true) => {
            (Some(UnixStream::connect(p).ctx(|| format!("connect to console socket {}", p.display()))?), None)
        }
        (None, false) => (None, None),
    };
    let mut c = root.create(&opts.id)?;
    let notify = match super::notify::caller_socket() {
        Some(_) => super::notify::setup_spec(&mut bundle.spec, &c.dir),
        None => Ok(()),
    };
    // A pty skiff relays is set up (ONLCR cleared, the caller's size) by `run` after create: the
    // program must not start before that, or a shell reads the pty's settings too early (and
    // busybox's line editing puts them back after every line).
    let at_once = foreground && ours.is_none() && start_at_once(&bundle.spec);
    let made = notify.and_then(|()| create_in(&mut c, &bundle, opts, console.as_ref(), at_once)).and_then(|pid| {
        let pty = ours.as_ref().map(super::tty::receive_master).transpose()?;
        Ok((pid, pty, at_once))
    });
    match made {
        Ok(made) => Ok(made),
        Err(e) => {
            if let Err(cleanup) = destroy(&c) {
                log::warn(&format!("clean up after failed create: {cleanup}"));
            }
            Err(e)
        }
    }
}

fn create_in(
    c: &mut Container,
    bundle: &Bundle,
    opts: &CreateOpts,
    console: Option<&UnixStream>,
    start_at_once: bool,
) -> Result<i32> {
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    // What needs the host is checked before anything is made.
    crate::rootless::check(spec)?;
    let net_devices = crate::netdev::plan(spec)?;
    crate::netdev::check_host(&net_devices)?;
    let rdt = crate::resctrl::plan(spec, &opts.id)?;
    // Without SELinux a mount label has nothing to apply to and is ignored, as runc ignores it;
    // with SELinux skiff would have to label every mount, which it does not do yet.
    let mount_label = linux.and_then(|l| l.mount_label().as_deref()).filter(|l| !l.is_empty());
    if mount_label.is_some() && std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        return Err(Error::config("linux.mountLabel", "SELinux mount labels are not applied by skiff"));
    }
    // Held until the setup process joined the cgroups (see cgroups::Lock).
    let cgroup_lock = cgroups::Lock::take();
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_ref()).and_then(|p| p.to_str());
    if opts.systemd_cgroup && opts.cgroups_may_be_missing {
        // runc's rootless systemd driver talks to the user's systemd instance (systemdUser).
        return Err(Error::msg(
            "--systemd-cgroup: rootless containers through systemd's user instance are not supported",
        ));
    }
    let mut cgroup = Cgroup::plan(cgroups_path, &opts.id, opts.systemd_cgroup)?;
    cgroup.annotate(&spec.annotations().clone().unwrap_or_default())?;
    let mut resources = linux.and_then(|l| l.resources().clone());
    if opts.cgroups_may_be_missing {
        resources = rootless_cgroups(&mut cgroup, cgroups_path, resources)?;
    }
    let mut st = State {
        oci_version: spec.version().clone(),
        id: opts.id.clone(),
        status: Status::Creating,
        pid: 0,
        bundle: bundle.dir.clone(),
        annotations: spec.annotations().clone().unwrap_or_default().into_iter().collect(),
        created: log::rfc3339(std::time::SystemTime::now()),
        owner: String::new(),
        start_time: 0,
        rootfs: bundle.rootfs.clone(),
        cgroup_paths: cgroup.paths().to_vec(),
        cgroup_created: cgroup.created().to_vec(),
        cgroup_unit: cgroup.unit().map(str::to_string),
        config: spec.clone(),
    };
    // Recorded before anything is made, so a crash from here on leaves a state entry that
    // `delete --force` can clean up from.
    c.save(st.clone())?;
    crate::trace::point("state");
    failpoint::hit("create:state-recorded");
    cgroup.create()?;
    failpoint::hit("create:cgroups-made");
    if let Some(p) = &rdt {
        crate::resctrl::apply(p)?;
    }
    log::debug(&format!("create {}: state recorded, {} cgroup dirs made", opts.id, cgroup.created().len()));
    if let Some(res) = &resources {
        let nodes = if opts.cgroups_may_be_missing { Vec::new() } else { crate::rootfs::devices::cgroup_rules(spec) };
        cgroup.apply(res, &nodes)?;
    }
    crate::trace::point("cgroups-made");
    failpoint::hit("create:resources-applied");
    let fifo = c.fifo_path();
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622)).ctx(|| format!("mkfifo {}", fifo.display()))?;
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622))
        .ctx(|| format!("chmod {}", fifo.display()))?;
    failpoint::hit("create:fifo-made");
    let state_dir = std::fs::File::open(&c.dir).ctx(|| format!("open {}", c.dir.display()))?;
    // Only here, in the host's user namespace, may a host filesystem be id-mapped.
    let idmapped = crate::rootfs::idmap::make(&crate::rootfs::idmap::plan(spec, &bundle.dir)?)?;
    let cfg = InitConfig {
        id: &opts.id,
        spec,
        bundle: &bundle.dir,
        rootfs: &bundle.rootfs,
        state_dir: &state_dir,
        console,
        preserve_fds: opts.preserve_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        cgroup: &cgroup,
        idmapped: &idmapped,
        lock_fd: c.lock_fd(),
        start_at_once,
    };
    let ns = NsPlan::from_spec(spec);
    let mut driver = Driver { c, st: &mut st, net_devices: &net_devices, rdt: rdt.as_ref() };
    let pid = process::spawn(&cfg, &ns, cgroup_lock, &mut driver)?;
    log::debug(&format!("create {}: init {pid} ready", opts.id));
    failpoint::hit("create:init-ready");
    st.status = Status::Created;
    c.save(st.clone())?;
    failpoint::hit("create:state-created");
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    crate::trace::point("created");
    Ok(pid)
}

/// Rootless cgroups (runc's rootless cgroup manager): the hierarchies this user may not write are
/// left out with a warning, unless `linux.cgroupsPath` asked for them or a limit needs them; the
/// device rules are checked and dropped. Returns the resources left to apply.
fn rootless_cgroups(
    cgroup: &mut Cgroup,
    cgroups_path: Option<&str>,
    resources: Option<oci_spec::runtime::LinuxResources>,
) -> Result<Option<oci_spec::runtime::LinuxResources>> {
    let all = cgroup.dirs().clone();
    let left_out = cgroup.leave_out_unusable();
    if let Some((_, dir)) = left_out.iter().next() {
        if let Some(p) = cgroups_path.filter(|p| !p.is_empty()) {
            return Err(Error::config(
                "linux.cgroupsPath",
                format!("{p:?}: skiff runs rootless and may not make or join {}", dir.display()),
            ));
        }
        if let Some(res) = &resources {
            cgroups::rootless::check_limits(res, &all, cgroup.dirs())?;
        }
        let paths = left_out.paths();
        let more = if paths.len() > 1 { format!(" and {} more", paths.len() - 1) } else { String::new() };
        let msg = format!(
            "rootless: no cgroup where this user may not write ({}{more}): the container stays in the caller's \
             cgroups there, without limits, pause or stats from them",
            dir.display()
        );
        // Said to a user who runs skiff; an engine that runs it as root of its user namespace
        // (podman, slipway) knows, and would show the line on every container.
        if crate::rootless::euid_unprivileged() {
            log::warn(&msg);
        } else {
            log::debug(&msg);
        }
    }
    let Some(res) = resources else { return Ok(None) };
    // Checked, then left out: a user namespace cannot make device nodes anyway.
    cgroups::devices::rules(&res, &[])?;
    Ok(Some(cgroups::rootless::without_devices(&res)))
}

struct Driver<'a> {
    c: &'a mut Container,
    st: &'a mut State,
    net_devices: &'a [crate::netdev::Move],
    rdt: Option<&'a crate::resctrl::Plan>,
}

impl process::Driver for Driver<'_> {
    fn init_started(&mut self, pid: i32) -> Result<()> {
        log::debug(&format!("create {}: namespaces made, init pid {pid}", self.st.id));
        self.st.pid = pid;
        self.st.start_time = state::proc_stat(pid).map(|(_, t)| t).unwrap_or(0);
        self.c.save(self.st.clone())?;
        failpoint::hit("create:init-started");
        // The init's network namespace exists now (the setup process unshared it before the
        // fork); the links are there before any hook runs, as in runc.
        if let Some(p) = self.rdt {
            crate::resctrl::join(p, pid)?;
        }
        crate::netdev::move_all(self.net_devices, pid)
    }

    fn runtime_hooks(&mut self, _pid: i32) -> Result<serde_json::Value> {
        let state = self.st.oci_json(Status::Creating);
        let hooks = self.st.config.hooks().as_ref();
        hooks::run_all("prestart", hooks.and_then(|h| h.prestart().as_ref()), &state)?;
        hooks::run_all("createRuntime", hooks.and_then(|h| h.create_runtime().as_ref()), &state)?;
        failpoint::hit("create:hooks-ran");
        Ok(state)
    }

    fn seccomp_listener(&mut self, pid: i32, fd: std::os::fd::BorrowedFd) -> Result<()> {
        let seccomp = self.st.config.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        let s = seccomp.ok_or_else(|| Error::msg("sync: a seccomp fd without linux.seccomp"))?;
        crate::security::seccomp::send_to_listener(s, pid, &self.st.oci_json(Status::Creating), fd)
    }
}

/// Writes the pid file atomically (temp + rename), without a trailing newline, as runc does.
/// A relative path is relative to the caller's cwd.
pub fn write_pid_file(path: &std::path::Path, pid: i32) -> Result<()> {
    let path = crate::bundle::absolute(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    state::write_atomic(&tmp, &path, pid.to_string().as_bytes(), false)
}
