//! slipway run by an unprivileged user, as buildah and BuildKit run rootless. Before anything
//! else slipway re-executes itself in a new user and mount namespace where it is root: the user's
//! own id is 0 and its /etc/subuid and /etc/subgid ranges follow from 1 (podman's layout), maps
//! written by the setuid newuidmap/newgidmap of Debian's `uidmap`. In there it owns files of every
//! id an image has, mounts overlays (with `userxattr`: `trusted.*` is the host root's) and runs the
//! OCI runtime as root of that namespace, which leaves out the cgroups the user cannot write. The
//! process the user started only writes the maps, passes signals on and exits with the child's
//! status. A user without ranges gets its own id alone (then only root-owned files work).
//!
//! The handshake needs no fd passing: the child unshares and stops itself (SIGSTOP); the parent
//! sees it stop (waitpid WUNTRACED), writes the maps and continues it (SIGCONT).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Set in the child's environment by the parent (and removed by the child at once).
const CHILD_ENV: &str = "_SLIPWAY_USERNS_CHILD";

/// True when this process is in a user namespace other than the host's: slipway's own (or one it
/// was started in). Then overlays need `userxattr` and device nodes cannot be made.
pub fn in_userns() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| {
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let fields: Vec<&str> = map.split_whitespace().collect();
        !map.is_empty() && fields != ["0", "0", "4294967295"]
    })
}

/// Whether slipway runs rootless: as an unprivileged user, or in a user namespace.
pub fn rootless() -> bool {
    !nix::unistd::geteuid().is_root() || in_userns()
}

/// True when `gid` has a host id in this process's user namespace (always on the host's).
pub fn maps_gid(gid: u32) -> bool {
    let map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    map.lines().any(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && (gid as u64) >= f[0] && (gid as u64) < f[0] + f[2]
    })
}

/// The default store: `/var/lib/slipway` for root, `$XDG_DATA_HOME/slipway` (else
/// `~/.local/share/slipway`) rootless, where buildah and podman keep theirs.
pub fn default_root() -> PathBuf {
    if !rootless() {
        return PathBuf::from("/var/lib/slipway");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("slipway"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into())).join(".local/share/slipway"),
    }
}

/// The extended attribute that marks an opaque overlay directory: `trusted.overlay.opaque`, or
/// `user.overlay.opaque` in a user namespace (overlay's `userxattr`).
pub fn opaque_xattr() -> &'static str {
    if in_userns() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// What `enter` did.
pub enum Entered {
    /// Carry on: root already, or the child inside the namespace.
    Continue,
    /// The parent: the child ran slipway to the end with this exit status.
    Exited(i32),
}

/// Re-executes slipway in its own user namespace when run by an unprivileged user; in the child,
/// finishes entering it. Must run before any thread is started (unshare(CLONE_NEWUSER) needs a
/// single-threaded process).
pub fn enter() -> Result<Entered> {
    if std::env::var_os(CHILD_ENV).is_some() {
        std::env::remove_var(CHILD_ENV);
        become_root()?;
        return Ok(Entered::Continue);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(Entered::Continue);
    }
    parent().map(Entered::Exited)
}

/// The child: a new user and mount namespace, stopped until the parent has mapped it.
fn become_root() -> Result<()> {
    use nix::sched::CloneFlags;
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .context("unshare a user and mount namespace (are user namespaces enabled?)")?;
    nix::sys::signal::raise(Signal::SIGSTOP).context("stop for the id maps")?;
    if !nix::unistd::geteuid().is_root() {
        bail!("the user namespace was not mapped");
    }
    // die with the parent, which the user's ^C or kill reaches first
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    if nix::unistd::getppid() == Pid::from_raw(1) {
        bail!("the parent exited before the user namespace was ready");
    }
    // the user's own groups (now 0 in here) are not the build's business; setgroups is denied
    // where only the user's own gid is mapped
    let denied = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !denied {
        nix::unistd::setgroups(&[]).context("setgroups")?;
    }
    // nothing mounted in here reaches the host (the copy of a less privileged namespace is a
    // slave already); private also keeps the host's unmounts from reaching half-built roots
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("make / private in slipway's mount namespace")?;
    Ok(())
}

/// One range of a user's subordinate ids: (first id, count).
pub type Range = (u32, u32);

/// The ranges /etc/subuid (or /etc/subgid) gives `name` (or its numeric id), in file order.
pub fn ranges(text: &str, name: &str, id: u32) -> Vec<Range> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, start, count) = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
            (who == name || who.parse::<u32>().ok() == Some(id)).then_some((start, count))
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// The map of the namespace: the user's own id as 0, then each subordinate range from 1 on.
/// Lines of (inside, outside, count).
pub fn map(own: u32, ranges: &[Range]) -> Vec<(u32, u32, u32)> {
    let mut out = vec![(0, own, 1)];
    let mut next = 1u32;
    for &(start, count) in ranges {
        out.push((next, start, count));
        next = next.saturating_add(count);
    }
    out
}

/// The parent: starts the child, maps it, passes signals on, returns its status.
fn parent() -> Result<i32> {
    let user = nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten();
    let name = user.map(|u| u.name).unwrap_or_default();
    let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let subuids = ranges(&read("/etc/subuid"), &name, uid);
    let subgids = ranges(&read("/etc/subgid"), &name, gid);
    let single = subuids.is_empty() || subgids.is_empty();
    if single {
        eprintln!(
            "slipway: warning: no ranges for {name:?} in /etc/subuid and /etc/subgid: the build's user \
             namespace maps your own ids alone, so files of other owners cannot be made (usermod \
             --add-subuids and --add-subgids give ranges)"
        );
    }
    // Signals for slipway go to the child; the parent takes them with sigwait (std resets the
    // mask in the child it spawns).
    let mut forwarded = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        forwarded.add(s);
    }
    let mut waited = forwarded;
    waited.add(Signal::SIGCHLD);
    waited.thread_block().context("block signals")?;
    let exe = std::env::current_exe().context("find slipway's own binary")?;
    let child = Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .spawn()
        .with_context(|| format!("re-execute {} in a user namespace", exe.display()))?;
    let pid = Pid::from_raw(child.id() as i32);
    let mut mapped = false;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WUNTRACED | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) if !mapped => {
                let done =
                    if single { map_single(pid, uid, gid) } else { map_ranges(pid, uid, gid, &subuids, &subgids) };
                if let Err(e) = done {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Err(e);
                }
                mapped = true;
                kill(pid, Signal::SIGCONT).context("continue the child")?;
                continue;
            }
            Ok(WaitStatus::Stopped(..)) => {
                // stopped by someone else (^Z): the job control of the parent's terminal
                let _ = kill(pid, Signal::SIGCONT);
            }
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(e) => bail!("wait for slipway's child {pid}: {e}"),
        }
        match waited.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(pid, sig);
            }
        }
    }
}

fn args(lines: &[(u32, u32, u32)]) -> Vec<String> {
    lines.iter().flat_map(|(c, h, n)| [c.to_string(), h.to_string(), n.to_string()]).collect()
}

fn map_ranges(pid: Pid, uid: u32, gid: u32, subuids: &[Range], subgids: &[Range]) -> Result<()> {
    for (tool, file, own, ranges) in
        [("newuidmap", "/etc/subuid", uid, subuids), ("newgidmap", "/etc/subgid", gid, subgids)]
    {
        let lines = map(own, ranges);
        let out = Command::new(tool)
            .arg(pid.to_string())
            .args(args(&lines))
            .output()
            .with_context(|| format!("run {tool} (Debian's uidmap package) to map the ranges of {file}"))?;
        if !out.status.success() {
            bail!("{tool} {pid} {}: {}", args(&lines).join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(())
}

/// Without ranges: the kernel lets a user map its own ids alone, setgroups denied first.
fn map_single(pid: Pid, uid: u32, gid: u32) -> Result<()> {
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).with_context(|| format!("write {path}"))
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny".into())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_follow_the_users_own_id() {
        let text = "alice:100000:65536\nbob:165536:65536\n1001:300000:10\nalice:400000:5\n#x\n";
        assert_eq!(ranges(text, "alice", 1000), vec![(100000, 65536), (400000, 5)]);
        // by number too, as shadow's tools read it
        assert_eq!(ranges(text, "carol", 1001), vec![(300000, 10)]);
        assert!(ranges(text, "dave", 1002).is_empty());
        // podman's layout: the user as 0, its ranges from 1 on
        assert_eq!(
            map(1000, &[(100000, 65536), (400000, 5)]),
            vec![(0, 1000, 1), (1, 100000, 65536), (65537, 400000, 5)]
        );
        assert_eq!(args(&map(7, &[])), ["0", "7", "1"]);
    }
}
