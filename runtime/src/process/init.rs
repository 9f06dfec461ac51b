//! The container's init, from its fork to the execve of `process.args`. Runs inside the new
//! namespaces. Everything that can fail does so before `Ready` is sent, so `create` reports it;
//! after that the init only waits on the exec fifo, runs startContainer hooks and execs.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, PosixRlimitType, Process, Spec};

use super::channel::{Channel, Msg};
use super::NsPlan;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result, SysContext};
use crate::{hooks, rootfs, security, sys};

/// Everything the init needs, prepared by the parent before the fork.
pub struct InitConfig<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    /// The container's state directory, where the exec fifo is (opened before the pivot).
    pub state_dir: &'a File,
    /// The caller's `--console-socket`, connected.
    pub console: Option<&'a UnixStream>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Planned, made and limited by the parent; the setup process is put in it.
    pub cgroup: &'a Cgroup,
    /// Id-mapped mount trees made by `create` in the host's namespaces (close-on-exec).
    pub idmapped: &'a [rootfs::idmap::Tree],
    /// The parent's lock on the state directory: closed at once in the children, or the init
    /// would hold the container's lock until it execs.
    pub lock_fd: RawFd,
    /// A foreground `run` with nothing to do between create and start: the init execs once it
    /// said Ready instead of waiting on the exec fifo (see container::create::start_at_once).
    pub start_at_once: bool,
}

/// Entry point of the forked init. Never returns: it execs or exits.
pub fn run(chan: &Channel, cfg: &InitConfig, ns: &NsPlan) -> ! {
    let err = match prepare(chan, cfg, ns) {
        Ok(exec) => {
            match exec.wait_and_exec(cfg) {
                Ok(never) => match never {},
                Err(e) => {
                    // The parent is gone by now: stderr is all that is left to tell.
                    let _ = writeln!(std::io::stderr(), "skiff init: {e}");
                    std::process::exit(127);
                }
            }
        }
        Err(e) => e,
    };
    let _ = chan.send(&Msg::Error(err.to_string()));
    std::process::exit(1);
}

/// What is left to do after `Ready`.
struct Exec {
    /// None without `process`: nothing will ever run.
    program: Option<Program>,
    hook_state: serde_json::Value,
}

/// A resolved program, ready for execve.
pub struct Program {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
    /// The seccomp filter still to load just before execve (when no_new_privs is set).
    filter: Option<(libseccomp::ScmpFilterContext, LinuxSeccomp)>,
    /// The loaded filter's notify fd, for the caller to send to the parent before `Ready`.
    notify_fd: Option<std::os::fd::OwnedFd>,
}

impl Program {
    /// The environment the program gets, as `KEY=VALUE` strings.
    pub fn env_strings(&self) -> Vec<String> {
        self.env.iter().map(|e| e.to_string_lossy().into_owned()).collect()
    }

    /// Sends the seccomp notify fd, if the filter has one, to the parent.
    pub fn send_notify_fd(&mut self, chan: &Channel) -> Result<()> {
        match self.notify_fd.take() {
            Some(fd) => chan.send_fd(&Msg::SeccompFd, fd.as_raw_fd()),
            None => Ok(()),
        }
    }

    /// Resets signals, loads a late seccomp filter and execs. Returns only on failure.
    pub fn exec(self) -> Error {
        sys::reset_signals();
        if let Some((f, s)) = &self.filter {
            if let Err(e) = security::seccomp::load(s, f) {
                return e;
            }
        }
        let err = sys::execve(&self.path, &self.args, &self.env);
        Error::msg(format!("exec {:?}: {err}", self.path))
    }
}

fn prepare(chan: &Channel, cfg: &InitConfig, ns: &NsPlan) -> Result<Exec> {
    let spec = cfg.spec;
    // None: a container created without a process (runtime-spec: OPTIONAL until `start`).
    let process = spec.process().as_ref();
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if let Some(adj) = process.and_then(|p| p.oom_score_adj()) {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).ctx(|| "write /proc/self/oom_score_adj".into())?;
    }
    if !cfg.no_new_keyring {
        let name = CString::new(format!("_ses.{}", cfg.id)).map_err(|_| Error::msg("container id contains NUL"))?;
        // runc tolerates kernels and user namespaces where keyrings are unavailable.
        if let Err(e) = sys::join_session_keyring(&name) {
            crate::log::debug(&format!("join a session keyring: {e} (ignored)"));
        }
    }
    let mount_ns = ns.has_mount_ns();
    if mount_ns {
        let ctx = rootfs::MountCtx {
            rootfs: cfg.rootfs,
            bundle: cfg.bundle,
            // skiff itself may be root of a user namespace (podman's, slipway's): the same rules
            // hold (no mknod, locked mount flags) without one in the config.
            in_userns: ns.in_userns() || crate::rootless::in_userns(),
            new_cgroupns: ns.has_new(LinuxNamespaceType::Cgroup),
            cgroups: cfg.cgroup.dirs().clone(),
            idmapped: cfg.idmapped,
        };
        rootfs::prepare(spec, &ctx)?;
        crate::trace::point("mounts");
        // The working directory is created inside the rootfs as runc does.
        if let Some(process) = process {
            let cwd = rootfs::path::resolve_in_root(cfg.rootfs, process.cwd())?;
            if !cwd.exists() {
                std::fs::create_dir_all(&cwd).ctx(|| format!("create process.cwd {}", process.cwd().display()))?;
            }
        }
    }
    let hook_state = if super::hooks_need_sync(spec) {
        chan.send(&Msg::RunRuntimeHooks)?;
        let state: serde_json::Value = match chan.recv()? {
            Some(Msg::HooksDone(state)) => {
                serde_json::from_str(&state).map_err(|e| Error::msg(format!("sync: bad state: {e}")))?
            }
            Some(Msg::Error(e)) => return Err(Error::Msg(e)),
            other => return Err(Error::msg(format!("sync: expected HooksDone, got {other:?}"))),
        };
        let hooks = spec.hooks().as_ref();
        hooks::run_all("createContainer", hooks.and_then(|h| h.create_container().as_ref()), &state)?;
        state
    } else {
        // No hook to give it to.
        serde_json::Value::Null
    };
    crate::trace::point("hooks");
    if mount_ns {
        rootfs::enter(cfg.rootfs, cfg.no_pivot)?;
    } else {
        nix::unistd::chroot(cfg.rootfs).ctx(|| format!("chroot {}", cfg.rootfs.display()))?;
        nix::unistd::chdir("/").ctx(|| "chdir /".into())?;
    }
    for (key, value) in spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()).into_iter().flatten() {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| Error::msg(format!("linux.sysctl.{key}: write {path}: {e}")))?;
    }
    if mount_ns {
        rootfs::finish(spec)?;
    }
    crate::trace::point("pivot");
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        super::attrs::set_personality(p)?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.memory_policy().as_ref()) {
        super::attrs::set_mempolicy(&super::attrs::plan_mempolicy(p)?)?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::msg(format!("hostname: sethostname {h:?}: {e}")))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        sys::set_domainname(d).map_err(|e| Error::msg(format!("domainname: setdomainname {d:?}: {e}")))?;
    }
    if ns.has_new(LinuxNamespaceType::Network) {
        if let Err(e) = sys::loopback_up() {
            crate::log::debug(&format!("bring lo up: {e}"));
        }
    }
    if let Some(process) = process.filter(|p| p.terminal().unwrap_or(false)) {
        setup_terminal(cfg.console, process)?;
    }
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let program = process.map(|p| finalize(p, seccomp, cfg.preserve_fds)).transpose()?;
    let mut exec = Exec { program, hook_state };
    if let Some(program) = exec.program.as_mut() {
        program.send_notify_fd(chan)?;
    }
    crate::trace::point("ready");
    chan.send(&Msg::Ready)?;
    Ok(exec)
}

/// The process part shared by the init and `exec`: rlimits, seccomp, capabilities, user,
/// no_new_privs, umask, cwd and the program to exec. Runs inside the container's namespaces.
pub fn finalize(process: &Process, seccomp: Option<&LinuxSeccomp>, preserve_fds: u32) -> Result<Program> {
    // Only stdio and the preserved fds may reach the container. Everything skiff opens itself is
    // close-on-exec already, so this can happen now, before a seccomp profile (loaded early
    // without no_new_privs) gets a chance to refuse close_range.
    sys::cloexec_from(3 + preserve_fds).ctx(|| "mark inherited fds close-on-exec".into())?;
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let res = rlimit_resource(r.typ())
            .ok_or_else(|| Error::config(format!("process.rlimits[{i}].type"), "not supported"))?;
        nix::sys::resource::setrlimit(res, r.soft(), r.hard()).map_err(|e| {
            Error::msg(format!(
                "process.rlimits[{i}]: setrlimit {:?} soft {} hard {}: {e}",
                r.typ(),
                r.soft(),
                r.hard()
            ))
        })?;
    }
    // Before capabilities drop: a real-time policy or class needs CAP_SYS_NICE/CAP_SYS_ADMIN.
    if let Some(s) = process.scheduler() {
        super::attrs::set_scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        super::attrs::set_io_priority(p)?;
    }
    let filter = match seccomp {
        Some(s) => Some(security::seccomp::build(s)?),
        None => None,
    };
    let notify = seccomp.is_some_and(security::seccomp::uses_notify);
    let mut notify_fd = None;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the final capability sets
    // may lack: load it now, before privileges drop (runc's order). With no_new_privs it waits
    // until just before execve, so skiff's own setup is not filtered.
    let late_filter = match (filter, seccomp) {
        (Some(f), Some(s)) if !nnp => {
            notify_fd = security::seccomp::load(s, &f)?;
            None
        }
        (f, _) => f,
    };
    let caps = process.capabilities().as_ref();
    security::drop_bounding(caps)?;
    let user = process.user();
    let home = passwd_home(user.uid());
    let gids: Vec<nix::unistd::Gid> =
        user.additional_gids().iter().flatten().map(|g| nix::unistd::Gid::from_raw(*g)).collect();
    // setgroups is denied in a user namespace whose gid map an unprivileged user wrote alone
    // (process/usermap.rs). Then there are no groups to drop, and asking for some is an error,
    // as in runc ("cannot set any additional groups in a rootless container").
    if setgroups_denied() {
        if !gids.is_empty() {
            return Err(Error::config(
                "process.user.additionalGids",
                "setgroups is denied in this rootless user namespace (a gid map of your own gid alone; \
                 newgidmap with /etc/subgid ranges allows it)",
            ));
        }
    } else {
        nix::unistd::setgroups(&gids)
            .map_err(|e| Error::msg(format!("process.user.additionalGids: setgroups: {e}")))?;
    }
    let switching = user.uid() != 0;
    if switching {
        nix::sys::prctl::set_keepcaps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| Error::msg(format!("process.user.gid: setresgid {}: {e}", user.gid())))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| Error::msg(format!("process.user.uid: setresuid {}: {e}", user.uid())))?;
    if switching {
        nix::sys::prctl::set_keepcaps(false).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    }
    security::apply_sets(caps)?;
    if nnp {
        security::set_no_new_privs()?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    enter_cwd(process.cwd())?;
    security::set_exec_labels(process.apparmor_profile().as_deref(), process.selinux_label().as_deref())?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home.unwrap_or_else(|| "/".into())));
    }
    let args = process.args().as_deref().unwrap_or_default();
    let path = lookup_path(&args[0], &env)?;
    // A filter with a listener is loaded now at the latest, as runc does: its fd must reach the
    // parent over the sync channel before `Ready`.
    let late_filter = match (late_filter, seccomp) {
        (Some(f), Some(s)) if notify => {
            notify_fd = security::seccomp::load(s, &f)?;
            None
        }
        (f, _) => f,
    };
    let cstr = |s: &str, what: &str| CString::new(s).map_err(|_| Error::msg(format!("{what} contains a NUL byte")));
    Ok(Program {
        path: CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::msg("process.args[0] contains a NUL byte"))?,
        args: args.iter().map(|a| cstr(a, "process.args")).collect::<Result<_>>()?,
        env: env.iter().map(|e| cstr(e, "process.env")).collect::<Result<_>>()?,
        filter: late_filter.zip(seccomp.cloned()),
        notify_fd,
    })
}

impl Exec {
    /// Blocks until `skiff start` opens the fifo, then hands over to the container's program.
    fn wait_and_exec(self, cfg: &InitConfig) -> Result<std::convert::Infallible> {
        let Some(program) = self.program else {
            // No process: `start` refuses and stops the container, `delete` kills it. Until then
            // this init only holds the namespaces; it never opens the exec fifo.
            loop {
                nix::unistd::pause();
            }
        };
        if cfg.start_at_once {
            return Err(program.exec());
        }
        // openat through the state directory fd taken before the pivot: no /proc needed, and the
        // directory (0711) and fifo (0622) let a non-root container user through.
        let fd = nix::fcntl::openat(
            Some(cfg.state_dir.as_raw_fd()),
            crate::state::EXEC_FIFO,
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open the exec fifo".into())?;
        let fifo = File::from(sys::owned_fd(fd));
        (&fifo).write_all(b"0").ctx(|| "write the exec fifo".into())?;
        drop(fifo);
        let hooks = cfg.spec.hooks().as_ref();
        let mut state = self.hook_state.clone();
        state["status"] = "created".into();
        hooks::run_all_with_default_env(
            "startContainer",
            hooks.and_then(|h| h.start_container().as_ref()),
            &state,
            &program.env_strings(),
        )?;
        Err(program.exec())
    }
}

/// chdir to `process.cwd`, which must not lead outside the container's root. CVE-2024-21626: a
/// cwd such as /proc/self/fd/N names whatever this process still has open at N, possibly a host
/// directory. The path is resolved with /proc magic links refused (openat2), then fchdir'd; if a
/// seccomp profile refuses openat2, a plain chdir is checked with getcwd, which the kernel fails
/// with ENOENT for a cwd outside our root.
fn enter_cwd(cwd: &Path) -> Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{openat2, OpenHow, ResolveFlag};
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let outside = || Error::config("process.cwd", format!("{cwd:?} is outside the container's root"));
    let failed = |e| Error::msg(format!("chdir to cwd ({cwd:?}) set in config.json failed: {e}"));
    match openat2(libc::AT_FDCWD, cwd, how) {
        Ok(fd) => {
            let fd = sys::owned_fd(fd);
            nix::unistd::fchdir(fd.as_raw_fd()).map_err(failed)
        }
        Err(Errno::ELOOP) => Err(Error::config("process.cwd", format!("{cwd:?} goes through a /proc magic link"))),
        Err(e @ (Errno::ENOENT | Errno::ENOTDIR | Errno::EACCES)) => Err(failed(e)),
        Err(_) => {
            nix::unistd::chdir(cwd).map_err(failed)?;
            match nix::unistd::getcwd() {
                Err(Errno::ENOENT) => Err(outside()),
                Ok(p) if !p.is_absolute() => Err(outside()),
                // A profile that refuses getcwd too: nothing more to check with.
                _ => Ok(()),
            }
        }
    }
}

/// Allocates the container's pty in its own devpts, sends the master to `--console-socket`
/// (SCM_RIGHTS, payload name "/dev/ptmx" as runc sends), and makes the slave the controlling
/// terminal and stdio. The master is closed here: only the caller holds it afterwards.
pub fn setup_terminal(console: Option<&UnixStream>, process: &oci_spec::runtime::Process) -> Result<()> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let sock = console.ok_or_else(|| Error::msg("process.terminal is true but no --console-socket was given"))?;
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let slave_path = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = nix::fcntl::open(slave_path.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())
        .ctx(|| format!("open {slave_path}"))?;
    let slave = sys::owned_fd(slave);
    if let Some(size) = process.console_size() {
        sys::set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)
            .ctx(|| "set the console size".into())?;
    }
    let payload = [std::io::IoSlice::new(b"/dev/ptmx")];
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(sock.as_raw_fd(), &payload, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
        .ctx(|| "send the pty master to the console socket".into())?;
    drop(master);
    // /dev/console is the container's terminal too (runc bind-mounts the slave there).
    let console = Path::new("/dev/console");
    if Path::new("/dev").is_dir() {
        if !console.exists() {
            let _ = File::create(console);
        }
        let _ = nix::mount::mount(
            Some(slave_path.as_str()),
            console,
            Some("bind"),
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
    }
    for target in 0..=2 {
        nix::unistd::dup2(slave.as_raw_fd(), target).ctx(|| format!("dup the pty onto fd {target}"))?;
    }
    sys::set_controlling_tty(0).ctx(|| "make the pty the controlling terminal".into())?;
    Ok(())
}

fn rlimit_resource(t: PosixRlimitType) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    })
}

/// The home directory of `uid` in the container's /etc/passwd, for a missing HOME.
fn passwd_home(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// Resolves `process.args[0]` as execvp would, through PATH from the container's env; a missing
/// binary fails `create`, as in runc.
pub fn lookup_path(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match std::fs::metadata(&p) {
            Ok(_) if executable(&p) => Ok(p),
            Ok(_) => Err(Error::msg(format!("exec: {arg0:?}: permission denied"))),
            Err(e) => Err(Error::msg(format!("exec: {arg0:?}: {e}"))),
        };
    }
    let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or("");
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::msg(format!("exec: {arg0:?}: executable file not found in $PATH")))
}

/// True when this process's user namespace denies setgroups(2) (/proc/self/setgroups says
/// "deny"; absent before Linux 3.19, where nothing is denied).
fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}
