//! `exec`: run another process in a running container, in all its namespaces and cgroups, with
//! the process config given (`--process`) or derived from the container's own (args and flags).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use crate::error::{Error, Result, SysContext};
use crate::process::exec::{self, ExecConfig};
use crate::state::{Root, Status};

#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub id: String,
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    /// `UID[:GID]`.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
    pub ignore_paused: bool,
}

/// Builds the process to run from `--process` or from the container's process plus the flags,
/// as runc does.
fn build_process(base: &Process, o: &ExecOpts) -> Result<Process> {
    let mut p = match &o.process_file {
        Some(f) => {
            let text = std::fs::read(f).ctx(|| format!("read {}", f.display()))?;
            let mut track = serde_path_to_error::Track::new();
            let v: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| Error::msg(format!("{}: {e}", f.display())))?;
            let de = serde_path_to_error::Deserializer::new(v, &mut track);
            <Process as serde::Deserialize>::deserialize(de)
                .map_err(|e| Error::msg(format!("{}: {}: {e}", f.display(), track.path())))?
        }
        None => {
            if o.args.is_empty() {
                return Err(Error::msg("exec: give the command to run, or --process FILE"));
            }
            let mut p = base.clone();
            p.set_args(Some(o.args.clone()));
            p.set_terminal(Some(o.tty));
            p
        }
    };
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::msg("exec: process.args must not be empty"));
    }
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &o.env {
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let mut user = p.user().clone();
        user.set_uid(uid.parse().map_err(|_| Error::msg(format!("--user: {u:?} is not UID[:GID]")))?);
        if let Some(g) = gid {
            user.set_gid(g.parse().map_err(|_| Error::msg(format!("--user: {u:?} is not UID[:GID]")))?);
        }
        p.set_user(user);
    }
    if !o.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(user);
    }
    if !o.caps.is_empty() {
        p.set_capabilities(Some(add_caps(p.capabilities().clone().unwrap_or_default(), &o.caps)?));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    Ok(p)
}

/// `exec --cap`: each capability joins the bounding, effective and permitted sets, never the
/// inheritable one (CVE-2022-29162: an inheritable capability survives an execve of a file with
/// inheritable file capabilities, so a non-root process of the container could regain it; runc
/// stopped adding it in 1.1.2). It becomes ambient only where the config's inheritable set already
/// holds it, the only case in which the kernel lets an ambient capability be raised.
fn add_caps(
    mut caps: oci_spec::runtime::LinuxCapabilities,
    names: &[String],
) -> Result<oci_spec::runtime::LinuxCapabilities> {
    let mut add = Vec::new();
    for c in names {
        let cap: oci_spec::runtime::Capability = serde_json::from_value(serde_json::Value::String(c.clone()))
            .map_err(|_| Error::msg(format!("--cap: unknown capability {c:?}")))?;
        add.push(cap);
    }
    let grow = |set: &Option<oci_spec::runtime::Capabilities>,
                only: &dyn Fn(&oci_spec::runtime::Capability) -> bool| {
        let mut set = set.clone().unwrap_or_default();
        set.extend(add.iter().copied().filter(|c| only(c)));
        Some(set)
    };
    let inheritable = caps.inheritable().clone().unwrap_or_default();
    caps.set_bounding(grow(caps.bounding(), &|_| true));
    caps.set_effective(grow(caps.effective(), &|_| true));
    caps.set_permitted(grow(caps.permitted(), &|_| true));
    caps.set_ambient(grow(caps.ambient(), &|c| inheritable.contains(c)));
    Ok(caps)
}

/// Runs the process. Returns the exit code `skiff exec` should exit with (0 when detached).
pub fn exec(root: &Root, o: &ExecOpts) -> Result<i32> {
    let c = root.load(&o.id)?;
    let st = c.state()?.clone();
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused if !o.ignore_paused => return Err(Error::msg("cannot exec in a paused container")),
        Status::Paused => {}
        Status::Stopped | Status::Creating => return Err(Error::msg("cannot exec in a stopped container")),
    }
    let base = st.config.process().clone().unwrap_or_default();
    let process = build_process(&base, o)?;
    let terminal = process.terminal().unwrap_or(false);
    // (what the process sends its pty master on, our end of a socketpair if skiff relays it)
    let (console, ours) = match (&o.console_socket, terminal) {
        (Some(p), true) => {
            (Some(UnixStream::connect(p).ctx(|| format!("connect to console socket {}", p.display()))?), None)
        }
        (Some(_), false) => return Err(Error::msg("--console-socket given but the process has no terminal")),
        // In the foreground skiff relays the pty itself, as runc does.
        (None, true) if !o.detach => {
            let (ours, theirs) = super::tty::channel()?;
            (Some(theirs), Some(ours))
        }
        (None, true) => {
            return Err(Error::msg("exec --detach with a terminal needs --console-socket to receive the pty"))
        }
        (None, false) => (None, None),
    };
    let namespaces: Vec<_> = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| n.typ())
        .collect();
    let sfd = if o.detach { None } else { Some(super::run::block_signals()?) };
    let cfg = ExecConfig {
        init_pid: st.pid,
        process: &process,
        namespaces,
        seccomp: st.config.linux().as_ref().and_then(|l| l.seccomp().as_ref()),
        memory_policy: st.config.linux().as_ref().and_then(|l| l.memory_policy().as_ref()),
        state: st.oci_json(crate::state::Status::Running),
        cgroup: &st.cgroup(),
        resctrl: crate::resctrl::plan(&st.config, &st.id)?,
        console: console.as_ref(),
        preserve_fds: o.preserve_fds,
        lock: c.lock(),
    };
    let pid = exec::spawn(&cfg)?;
    crate::failpoint::hit("exec:process-started");
    if let Some(p) = &o.pid_file {
        super::create::write_pid_file(p, pid)?;
    }
    // Others may use the container while this process runs.
    drop(c);
    let pid = nix::unistd::Pid::from_raw(pid);
    let relay = super::tty::Relay::new_opt(ours.as_ref().map(super::tty::receive_master).transpose()?)?;
    match (sfd, relay) {
        (None, _) => Ok(0),
        (Some(sfd), Some(relay)) => relay.run(&sfd, pid),
        (Some(sfd), None) => super::run::wait_forwarding(&sfd, pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Capability, LinuxCapabilities};

    #[test]
    fn exec_cap_never_adds_to_the_inheritable_set() {
        // runc >= 1.1.2 (CVE-2022-29162): bounding, effective, permitted; ambient only where
        // the config's inheritable set already holds the capability.
        let mut base = LinuxCapabilities::default();
        base.set_inheritable(Some([Capability::Chown].into_iter().collect()));
        base.set_ambient(Some(Default::default()));
        let caps = add_caps(base, &["CAP_SYS_ADMIN".into(), "CAP_CHOWN".into()]).unwrap();
        let inh = caps.inheritable().clone().unwrap();
        assert_eq!(inh.len(), 1);
        assert!(!inh.contains(&Capability::SysAdmin));
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::SysAdmin));
        }
        let amb = caps.ambient().clone().unwrap();
        assert!(amb.contains(&Capability::Chown) && !amb.contains(&Capability::SysAdmin), "{amb:?}");
        assert!(add_caps(LinuxCapabilities::default(), &["CAP_NOPE".into()]).is_err());
    }
}
