//! Making the container's processes. The parent (`skiff create`/`run`) forks a short-lived setup
//! process, which enters the container's cgroups (forked into the v2 one, moving itself into the
//! v1 ones; under systemd the parent moves it), and drives it over the sync channel: the setup
//! process joins namespaces given by path (user first), makes a new user namespace (the parent
//! writes its id maps, see `usermap.rs`), unshares the rest, then forks the container init as the parent's child
//! (CLONE_PARENT) and exits. The init sets up the rootfs and the process and blocks on the exec
//! fifo (see `init.rs`).

pub mod attrs;
pub mod channel;
pub mod exec;
pub mod init;
pub mod usermap;

use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};
use channel::{Channel, Msg};
pub use init::InitConfig;

/// Which namespaces to join and which to make, in the order they must be entered.
#[derive(Debug, Clone)]
pub struct NsPlan {
    /// Namespaces given by path, user namespace first.
    pub joins: Vec<(CloneFlags, PathBuf)>,
    pub new_user: bool,
    /// New namespaces other than user (pid and time among them: they apply to the forked init).
    pub new: CloneFlags,
}

impl NsPlan {
    pub fn from_spec(spec: &Spec) -> NsPlan {
        let mut plan = NsPlan { joins: Vec::new(), new_user: false, new: CloneFlags::empty() };
        let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
        for ns in &namespaces {
            let flag = clone_flag(ns.typ());
            match ns.path() {
                Some(p) if ns.typ() == LinuxNamespaceType::User => plan.joins.insert(0, (flag, p.clone())),
                Some(p) => plan.joins.push((flag, p.clone())),
                None if ns.typ() == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.new |= flag,
            }
        }
        plan
    }
    pub fn has_new(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(t))
    }
    /// True if the container lives in a user namespace, new or joined.
    pub fn in_userns(&self) -> bool {
        self.new_user || self.joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER)
    }
    /// True if the container has its own mount namespace, new or joined.
    pub fn has_mount_ns(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWNS) || self.joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS)
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // nix 0.29 has no CLONE_NEWTIME constant; the kernel's value is 0x80.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(0x80),
    }
}

/// What the parent does at each point of the setup, supplied by `container::create`.
pub trait Driver {
    /// The init's pid is known: record it before anything else can go wrong.
    fn init_started(&mut self, pid: i32) -> Result<()>;
    /// Namespaces and mounts are ready: run prestart and createRuntime hooks. Returns the state
    /// JSON the init hands to its createContainer and startContainer hooks.
    fn runtime_hooks(&mut self, pid: i32) -> Result<serde_json::Value>;
    /// The init loaded a seccomp filter with NOTIFY rules: hand its fd to the listener.
    fn seccomp_listener(&mut self, pid: i32, fd: std::os::fd::BorrowedFd) -> Result<()>;
}

/// Forks the setup process and drives it until the init is ready. Returns the init's pid.
/// On error the caller must kill and reap the init (its pid was given to `init_started`).
/// `cgroup_lock` is released once the setup process is in its cgroups.
pub fn spawn(cfg: &InitConfig, ns: &NsPlan, cgroup_lock: crate::cgroups::Lock, driver: &mut dyn Driver) -> Result<i32> {
    let (parent, child) = Channel::pair()?;
    // The setup process starts in the v2 cgroup where it can (no migration to wait for) and
    // moves itself into the v1 ones; a host or cgroup that refuses CLONE_INTO_CGROUP (a kernel
    // before 5.7, a v2 directory with controllers in its subtree_control) gets a plain fork.
    let unified = cfg.cgroup.open_unified();
    let forked = match &unified {
        Some(dir) => sys::fork_into_cgroup(std::os::fd::AsFd::as_fd(dir)).map(|f| (f, true)).or_else(|e| {
            crate::log::debug(&format!("clone3 into cgroup: {e}: a plain fork"));
            sys::fork().map(|f| (f, false))
        }),
        None => sys::fork().map(|f| (f, false)),
    };
    drop(unified);
    match forked.ctx(|| "fork the setup process".into())? {
        (Forked::Child, in_v2) => {
            crate::trace::point("setup-forked");
            drop(parent);
            let joined = join_cgroups(&child, cfg, in_v2, cgroup_lock);
            if let Err(e) = joined {
                let _ = child.send(&Msg::Error(e.to_string()));
                std::process::exit(1);
            }
            setup_process(child, cfg, ns)
        }
        (Forked::Parent(setup), _) => {
            drop(child);
            let result = drive(&parent, setup, cfg, cgroup_lock, driver);
            if result.is_err() {
                let _ = nix::sys::signal::kill(setup, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = waitpid(setup, None);
            result
        }
    }
}

fn drive(
    chan: &Channel,
    setup: Pid,
    cfg: &InitConfig,
    cgroup_lock: crate::cgroups::Lock,
    driver: &mut dyn Driver,
) -> Result<i32> {
    if !cfg.cgroup.joined_from_inside() {
        cfg.cgroup.join(setup.as_raw())?;
        drop(cgroup_lock);
        crate::trace::point("cgroups-joined");
        crate::log::debug("setup process joined its cgroups");
        chan.send(&Msg::Go)?;
    }
    // Otherwise the setup process joins them itself and lets go of the lock we share (dropped
    // here once this returns, when it has).
    let mut init_pid = None;
    // The init and the setup process write to the same socket: the init's first message can
    // overtake the setup process's InitPid. Hooks, and the return, wait until the pid is known.
    let mut hooks_pending = false;
    let mut ready = false;
    let sync = hooks_need_sync(cfg.spec);
    loop {
        let (msg, fd) = match chan.recv_fd()? {
            Some((m, fd)) => (Some(m), fd),
            None => (None, None),
        };
        match msg {
            Some(Msg::SeccompFd) => {
                let fd = fd.ok_or_else(|| Error::msg("sync: seccomp message without its fd"))?;
                let pid = init_pid.ok_or_else(|| Error::msg("sync: seccomp fd before the init pid"))?;
                driver.seccomp_listener(pid, std::os::fd::AsFd::as_fd(&fd))?;
            }
            Some(Msg::UsernsReady) => {
                let euid = nix::unistd::geteuid().as_raw();
                let egid = nix::unistd::getegid().as_raw();
                usermap::write(setup.as_raw(), &usermap::plan(cfg.spec, euid, egid))?;
                chan.send(&Msg::MapsDone)?;
            }
            Some(Msg::InitPid(pid)) => {
                init_pid = Some(pid);
                driver.init_started(pid)?;
                if !sync {
                    // None to run: the init goes on without waiting for us.
                    driver.runtime_hooks(pid)?;
                } else if hooks_pending {
                    let state = driver.runtime_hooks(pid)?;
                    chan.send(&Msg::HooksDone(state.to_string()))?;
                }
                if ready {
                    return Ok(pid);
                }
            }
            Some(Msg::RunRuntimeHooks) => match init_pid {
                Some(pid) => {
                    let state = driver.runtime_hooks(pid)?;
                    chan.send(&Msg::HooksDone(state.to_string()))?;
                }
                None => hooks_pending = true,
            },
            Some(Msg::Ready) => match init_pid {
                Some(pid) => return Ok(pid),
                None => ready = true,
            },
            Some(Msg::Error(e)) => return Err(Error::Msg(e)),
            Some(other) => return Err(Error::msg(format!("sync: unexpected {other:?}"))),
            None => return Err(Error::msg("container init exited during setup")),
        }
    }
}

/// True when the init must stop, once its mounts are made, for the runtime's prestart and
/// createRuntime hooks and the state its own createContainer and startContainer hooks are given.
/// Without any of them it goes straight on: one round trip less.
pub fn hooks_need_sync(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        let some = |v: &Option<Vec<oci_spec::runtime::Hook>>| v.as_ref().is_some_and(|v| !v.is_empty());
        some(h.prestart()) || some(h.create_runtime()) || some(h.create_container()) || some(h.start_container())
    })
}

/// In the setup process, before any namespace: into the container's cgroups. With cgroupfs it
/// moves itself (see [`crate::cgroups::Cgroup::join_self`]; `in_v2`: forked into the v2 one),
/// then releases the host-wide cgroup lock, whose open file it shares with the parent; otherwise
/// the parent moves it, releases the lock and says Go.
fn join_cgroups(chan: &Channel, cfg: &InitConfig, in_v2: bool, lock: crate::cgroups::Lock) -> Result<()> {
    if !cfg.cgroup.joined_from_inside() {
        if let Some(fd) = lock.raw_fd() {
            let _ = nix::unistd::close(fd);
        }
        // Not dropped: its Drop would release the parent's flock before the join.
        std::mem::forget(lock);
        return chan.expect(Msg::Go);
    }
    cfg.cgroup.join_self(in_v2)?;
    drop(lock);
    crate::trace::point("cgroups-joined");
    Ok(())
}

/// The setup process: namespaces, then the init. Never returns.
fn setup_process(chan: Channel, cfg: &InitConfig, ns: &NsPlan) -> ! {
    // Drop our copy of the parent's flock, or the init would hold the container's lock.
    let _ = nix::unistd::close(cfg.lock_fd);
    let result = (|| -> Result<()> {
        let chan = &chan;
        for (flag, path) in &ns.joins {
            let f = std::fs::File::open(path).ctx(|| format!("open namespace {}", path.display()))?;
            nix::sched::setns(f, *flag).ctx(|| format!("join namespace {}", path.display()))?;
        }
        if ns.new_user {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER).ctx(|| "unshare the user namespace".into())?;
            chan.send(&Msg::UsernsReady)?;
            chan.expect(Msg::MapsDone)?;
        }
        if ns.in_userns() {
            let root = nix::unistd::Gid::from_raw(0);
            nix::unistd::setresgid(root, root, root).ctx(|| "setresgid(0) in the user namespace".into())?;
            let root = nix::unistd::Uid::from_raw(0);
            nix::unistd::setresuid(root, root, root).ctx(|| "setresuid(0) in the user namespace".into())?;
        }
        nix::sched::unshare(ns.new).ctx(|| format!("unshare namespaces {:?}", ns.new))?;
        crate::trace::point("namespaces");
        if ns.has_new(LinuxNamespaceType::Time) {
            write_time_offsets(cfg.spec)?;
        }
        match sys::fork_as_sibling().ctx(|| "fork the container init".into())? {
            Forked::Child => {
                crate::trace::point("init");
                init::run(chan, cfg, ns)
            }
            Forked::Parent(pid) => chan.send(&Msg::InitPid(pid.as_raw())),
        }
    })();
    if let Err(e) = result {
        let _ = chan.send(&Msg::Error(e.to_string()));
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()).unwrap_or_default();
    let mut text = String::new();
    for (clock, off) in &offsets {
        text.push_str(&format!("{clock} {} {}\n", off.secs().unwrap_or(0), off.nanosecs().unwrap_or(0)));
    }
    if text.is_empty() {
        return Ok(());
    }
    std::fs::write("/proc/self/timens_offsets", text).map_err(|e| Error::msg(format!("linux.timeOffsets: {e}")))
}
