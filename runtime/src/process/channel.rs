//! The sync channel between `skiff create` (the parent) and the processes it forks: a
//! SOCK_SEQPACKET socketpair carrying one JSON message per packet. Both ends are close-on-exec, so
//! no container process ever holds one.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub enum Msg {
    /// parent -> setup: you are in the cgroup, go on.
    Go,
    /// setup -> parent: I made a user namespace, write my id maps.
    UsernsReady,
    /// parent -> setup: the maps are written.
    MapsDone,
    /// setup -> parent: the container init's pid, in the parent's pid namespace.
    InitPid(i32),
    /// init -> parent: namespaces and mounts are ready; run prestart and createRuntime hooks.
    RunRuntimeHooks,
    /// parent -> init: hooks ran; here is the OCI state JSON for the init's own hooks.
    HooksDone(String),
    /// init/exec process -> parent: the seccomp notify fd rides along (SCM_RIGHTS), for the
    /// parent to hand to `linux.seccomp.listenerPath`.
    SeccompFd,
    /// init -> parent: fully set up, about to block on the exec fifo.
    Ready,
    /// any -> parent: this step failed; the text says what and where.
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .ctx(|| "socketpair for the init sync channel".into())?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::msg(format!("encode sync message: {e}")))?;
        nix::sys::socket::send(self.fd.as_raw_fd(), &bytes, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
            .ctx(|| "send on the init sync channel".into())?;
        Ok(())
    }

    /// Sends `msg` with `fd` attached (SCM_RIGHTS).
    pub fn send_fd(&self, msg: &Msg, fd: RawFd) -> Result<()> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let bytes = serde_json::to_vec(msg).map_err(|e| Error::msg(format!("encode sync message: {e}")))?;
        let fds = [fd];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .ctx(|| "send an fd on the init sync channel".into())?;
        Ok(())
    }

    /// The next message, or None once the other side has closed (exited).
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_fd()?.map(|(m, _)| m))
    }

    /// The next message with the fd it carried, if any (received close-on-exec).
    pub fn recv_fd(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let (n, fd) =
                match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                    Ok(m) => {
                        let mut fd = None;
                        for c in m.cmsgs().map_err(|e| Error::sys("read control messages", e))? {
                            if let ControlMessageOwned::ScmRights(fds) = c {
                                for raw in fds {
                                    // Extra fds (none are ever sent) are closed as they drop.
                                    let owned = crate::sys::owned_fd(raw);
                                    fd.get_or_insert(owned);
                                }
                            }
                        }
                        (m.bytes, fd)
                    }
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("receive on the init sync channel", e)),
                };
            if n == 0 {
                return Ok(None);
            }
            return serde_json::from_slice(&buf[..n])
                .map(|m| Some((m, fd)))
                .map_err(|e| Error::msg(format!("bad sync message: {e}")));
        }
    }

    /// Expects exactly `want`; an Error message or EOF becomes an error.
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Error(e)) => Err(Error::Msg(e)),
            Some(other) => Err(Error::msg(format!("sync: expected {want:?}, got {other:?}"))),
            None => Err(Error::msg(format!("sync: peer exited while waiting for {want:?}"))),
        }
    }
}
