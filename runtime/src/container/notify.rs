//! `NOTIFY_SOCKET` passed through as runc passes it (systemd units and `podman
//! --sdnotify=container`): when the runtime is called with it, `create` bind-mounts the
//! container's `ROOT/ID/notify` directory at /run/notify (read-only) and sets
//! NOTIFY_SOCKET=/run/notify/notify.sock in the process's environment; `start` binds that socket,
//! releases the container and waits until the container says READY (or its init dies), then
//! hands the container's messages on to the caller's socket with MAINPID set to the init's host
//! pid, and a BARRIER so the caller has read them before `start` returns.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Mount, Spec};

use crate::error::{Error, Result, SysContext};

/// Where the socket directory appears in the container, and the socket in it.
const IN_CONTAINER_DIR: &str = "/run/notify";
const SOCKET_NAME: &str = "notify.sock";

/// The caller's NOTIFY_SOCKET, if set and not empty.
pub fn caller_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET").ok().filter(|s| !s.is_empty())
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("notify")
}

/// At create: makes the socket directory and points the container at it (a read-only bind mount
/// and the env variable, replacing one the config may have).
pub fn setup_spec(spec: &mut Spec, state_dir: &Path) -> Result<()> {
    let d = dir(state_dir);
    std::fs::create_dir(&d).ctx(|| format!("NOTIFY_SOCKET: mkdir {}", d.display()))?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
        .ctx(|| format!("NOTIFY_SOCKET: chmod {}", d.display()))?;
    let mount: Mount = serde_json::from_value(serde_json::json!({
        "destination": IN_CONTAINER_DIR,
        "type": "bind",
        "source": d,
        "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
    }))
    .map_err(|e| Error::msg(format!("NOTIFY_SOCKET: mount: {e}")))?;
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(mount);
    spec.set_mounts(Some(mounts));
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
        env.push(format!("NOTIFY_SOCKET={IN_CONTAINER_DIR}/{SOCKET_NAME}"));
        process.set_env(Some(env));
    }
    Ok(())
}

/// At start, before the container is released: the socket the container sends to. None when
/// the container was not created for notification (no socket directory).
pub fn bind(state_dir: &Path) -> Result<Option<UnixDatagram>> {
    let d = dir(state_dir);
    if !d.is_dir() {
        return Ok(None);
    }
    let path = d.join(SOCKET_NAME);
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).ctx(|| format!("NOTIFY_SOCKET: bind {}", path.display()))?;
    // Any container user may notify, as with runc.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
        .ctx(|| format!("NOTIFY_SOCKET: chmod {}", path.display()))?;
    sock.set_read_timeout(Some(Duration::from_millis(100))).ctx(|| "NOTIFY_SOCKET: set a timeout".into())?;
    Ok(Some(sock))
}

/// After the container is released: waits for READY (or the init's death), then passes the
/// container's messages to the caller's socket, MAINPID replaced by the init's host pid.
pub fn forward(sock: &UnixDatagram, caller: &str, pid: i32, alive: &dyn Fn() -> bool) -> Result<()> {
    let mut lines: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut ready = false;
                // MAINPID is the container's view; BARRIER is between the sender and us (its
                // pipe was closed when the datagram was read without room for fds).
                let ours = |l: &&str| !l.is_empty() && !l.starts_with("MAINPID=") && !l.starts_with("BARRIER=");
                for line in text.lines().filter(ours) {
                    ready |= line.starts_with("READY=");
                    lines.push(line.to_string());
                }
                if ready {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if !alive() {
                    return Ok(());
                }
            }
            Err(e) => return Err(Error::io("NOTIFY_SOCKET: receive from the container", e)),
        }
    }
    lines.push(format!("MAINPID={pid}"));
    let client = UnixDatagram::unbound().ctx(|| "NOTIFY_SOCKET: socket".into())?;
    let addr = caller_addr(caller)?;
    client.connect_addr(&addr).ctx(|| format!("NOTIFY_SOCKET: connect to {caller}"))?;
    client.send((lines.join("\n") + "\n").as_bytes()).ctx(|| format!("NOTIFY_SOCKET: send to {caller}"))?;
    barrier(&client, caller)
}

/// `@name` is an abstract socket, as systemd writes it.
fn caller_addr(caller: &str) -> Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match caller.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(caller),
    }
    .ctx(|| format!("NOTIFY_SOCKET: {caller:?} is not a socket address"))
}

/// sd_notify_barrier: a pipe's write end sent with BARRIER=1; the caller closes it once it has
/// processed everything before. A caller that keeps it open is given up on after 30 s (runc's
/// limit), with a warning.
fn barrier(client: &UnixDatagram, caller: &str) -> Result<()> {
    let (r, w) = nix::unistd::pipe().map_err(|e| Error::sys("NOTIFY_SOCKET: pipe", e))?;
    let fds = [w.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"BARRIER=1")];
    // The messages are delivered; a caller gone since has nothing left to wait for.
    if let Err(e) =
        nix::sys::socket::sendmsg::<()>(client.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
    {
        crate::log::warn(&format!("NOTIFY_SOCKET: send BARRIER=1 to {caller}: {e}"));
        return Ok(());
    }
    drop(w);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut r = std::fs::File::from(r);
    loop {
        let mut fds = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&r), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => {
                let mut b = [0u8; 1];
                return match r.read(&mut b) {
                    Ok(0) => Ok(()),
                    _ => Err(Error::msg(format!("NOTIFY_SOCKET: {caller} wrote to the barrier pipe"))),
                };
            }
            Err(e) => return Err(Error::sys("NOTIFY_SOCKET: poll the barrier pipe", e)),
        }
        if Instant::now() > deadline {
            crate::log::warn("NOTIFY_SOCKET: no barrier reply after 30s; ignored");
            return Ok(());
        }
    }
}
