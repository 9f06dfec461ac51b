//! RUN's default network, BuildKit's sandbox network: a network namespace of the step's own
//! with outbound access, as a bridge with NAT gives docker's builder, made without touching
//! the host's network (no bridge, no iptables rule, nothing kernel-wide): slirp4netns, the
//! user-mode stack rootless podman and buildah use, connects the namespace's tap0 (10.0.2.100)
//! to the host's sockets. The host's loopback is not reachable from the step (as from a docker
//! bridge); 10.0.2.3 is slirp4netns's DNS forwarder, which asks the host's resolvers. Written
//! here rather than taken from a crate: no crate starts slirp4netns; it is one process and two
//! pipes. This module starts and stops the two helper processes; it mounts and writes nothing.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

/// The address of slirp4netns's DNS forwarder inside the namespace.
pub const DNS: &str = "10.0.2.3";
/// The tool.
pub const SLIRP4NETNS: &str = "slirp4netns";

/// The host's address as a sandboxed step reaches it (`--add-host NAME:host-gateway`): the
/// loopback is closed to the sandbox, so the address the host's default route goes out from,
/// which slirp4netns connects to like any other. Asked of the kernel by connecting a UDP
/// socket (no packet is sent).
pub fn host_address() -> Result<std::net::IpAddr, String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("a UDP socket: {e}"))?;
    s.connect("203.0.113.1:9")
        .and_then(|_| s.local_addr())
        .map(|a| a.ip())
        .map_err(|e| format!("the host has no route out ({e}), so no address of it reaches a sandboxed step"))
}

/// Whether the sandbox network can be made here: slirp4netns installed, and /dev/net/tun open
/// to this user (rootless, a host whose tun device is root's alone refuses it).
pub fn available() -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|d| d.join(SLIRP4NETNS).is_file()) {
        return Err(format!("{SLIRP4NETNS} is not installed"));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| format!("{SLIRP4NETNS} cannot open /dev/net/tun: {e}"))
}

/// A network namespace with slirp4netns attached, for one RUN step; both processes are
/// killed when it drops (and die with the thread that made them if slipway is killed).
pub struct Sandbox {
    holder: Child,
    slirp: Child,
    /// slirp4netns exits when this, the write end of its `--exit-fd`, is closed.
    _exit: OwnedFd,
}

impl Sandbox {
    /// Makes the namespace (a child that only waits in it) and starts slirp4netns on it;
    /// returns once slirp4netns says tap0 is configured.
    pub fn start() -> Result<Sandbox, String> {
        // the holder: `cat` reading a pipe nobody writes waits until it is killed
        let mut h = Command::new("cat");
        h.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        crate::sys::child_setup(&mut h, true, Vec::new());
        let holder = h.spawn().map_err(|e| format!("start the network namespace's holder (cat): {e}"))?;
        let mut guard = Killer(Some(holder));
        let pid = guard.0.as_ref().map(Child::id).unwrap_or_default();
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (exit_r, exit_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let mut s = Command::new(SLIRP4NETNS);
        s.args(["--configure", "--mtu=65520", "--disable-host-loopback", "--enable-seccomp"])
            .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
            .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
            .arg(pid.to_string())
            .arg("tap0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        crate::sys::child_setup(&mut s, false, vec![ready_w.as_raw_fd(), exit_r.as_raw_fd()]);
        let mut slirp = s.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "RUN's default network needs slirp4netns (apt install slirp4netns), or give --network none or host"
                    .to_string()
            } else {
                format!("start {SLIRP4NETNS}: {e}")
            }
        })?;
        drop(ready_w);
        drop(exit_r);
        // one byte once tap0 is up; end of file if it failed
        let mut b = [0u8; 1];
        let n = std::fs::File::from(ready_r).read(&mut b).unwrap_or(0);
        if n != 1 {
            let _ = slirp.kill();
            let mut why = String::new();
            if let Some(mut e) = slirp.stderr.take() {
                let _ = e.read_to_string(&mut why);
            }
            let _ = slirp.wait();
            return Err(format!("{SLIRP4NETNS} did not configure the step's network: {}", why.trim()));
        }
        let holder = guard.0.take().ok_or("the holder went away")?;
        Ok(Sandbox { holder, slirp, _exit: exit_w })
    }

    /// A sandbox for the container of `config` (an OCI config.json): its network namespace
    /// entry is pointed at the sandbox's, which lives as long as the returned guard.
    pub fn join(config: &mut serde_json::Value) -> Result<Sandbox, String> {
        let net = Sandbox::start()?;
        for n in config["linux"]["namespaces"].as_array_mut().into_iter().flatten() {
            if n["type"] == "network" {
                n["path"] = serde_json::json!(net.path());
            }
        }
        Ok(net)
    }

    /// The namespace, for config.json's `linux.namespaces[].path`.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in [&mut self.slirp, &mut self.holder] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kills and reaps a child unless taken.
struct Killer(Option<Child>);

impl Drop for Killer {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
