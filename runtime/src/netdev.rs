//! `linux.netDevices`: host network links moved into the container's network namespace, renamed
//! as asked, with their permanent global addresses and brought up (runtime-spec 1.3, as runc 1.3
//! does it: link down, then one RTM_NEWLINK that changes namespace and name at once, then the
//! addresses again and link up inside). `check` runs before anything is made; `move_all` once the
//! container's network namespace exists. Nothing is moved back: the spec forbids it, and the
//! kernel returns physical links to the host when the namespace dies (virtual ones die with it).
//!
//! Netlink messages come from netlink-packet-route over a blocking netlink-sys socket (skiff
//! stays single-threaded: no rtnetlink/tokio).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

use crate::error::{Error, Result};

/// One link to move: its host name and its name in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub host: String,
    pub container: String,
}

fn field(name: &str) -> String {
    format!("linux.netDevices.{name}")
}

/// runc's devValidName: 1 to 15 bytes (IFNAMSIZ less the NUL), not `.` or `..`, no `/`, `:` or
/// whitespace.
fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() < libc::IFNAMSIZ && n != "." && n != ".." && !n.contains(['/', ':', ' ', '\t', '\n'])
}

/// The moves `linux.netDevices` asks for, checked as runc checks them (config only, no system
/// access): a network namespace of the container's own, valid names.
pub fn plan(spec: &Spec) -> Result<Vec<Move>> {
    let Some(linux) = spec.linux() else { return Ok(Vec::new()) };
    let devices: &HashMap<String, LinuxNetDevice> = match linux.net_devices() {
        Some(d) if !d.is_empty() => d,
        _ => return Ok(Vec::new()),
    };
    let has_netns = linux.namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::Network);
    if !has_netns {
        return Err(Error::config("linux.netDevices", "moving network devices needs a network namespace"));
    }
    let mut moves: Vec<Move> = devices
        .iter()
        .map(|(host, d)| Move { host: host.clone(), container: d.name().clone().unwrap_or_else(|| host.clone()) })
        .collect();
    moves.sort_by(|a, b| a.host.cmp(&b.host));
    for m in &moves {
        if !valid_name(&m.host) {
            return Err(Error::config(field(&m.host), format!("{:?} is not a valid network device name", m.host)));
        }
        if !valid_name(&m.container) {
            return Err(Error::config(
                format!("{}.name", field(&m.host)),
                format!("{:?} is not a valid network device name", m.container),
            ));
        }
    }
    Ok(moves)
}

/// The checks that need the host, made before `create` makes anything: each link exists in
/// skiff's network namespace.
pub fn check_host(moves: &[Move]) -> Result<()> {
    for m in moves {
        nix::net::if_::if_nametoindex(m.host.as_str())
            .map_err(|e| Error::config(field(&m.host), format!("no network device {:?} on the host: {e}", m.host)))?;
    }
    Ok(())
}

/// Moves every planned link into the network namespace of `pid`.
pub fn move_all(moves: &[Move], pid: i32) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let target = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| Error::msg(format!("linux.netDevices: open the container's network namespace: {e}")))?;
    let host = Netlink::open()?;
    let inside = Netlink::open_in(&target)?;
    // Every name is checked free before any link moves. The kernel would move a link and then
    // fail the rename, leaving it in a namespace whose death destroys a virtual link (runtime-spec:
    // a name taken in the container is an error unless it is a `%d` template).
    for m in moves {
        if !m.container.contains("%d") && inside.index_of(&m.container).is_ok() {
            return Err(Error::msg(format!(
                "{}: the container's network namespace already has a device {:?}",
                field(&m.host),
                m.container
            )));
        }
    }
    for m in moves {
        move_one(&host, &inside, m, &target).map_err(|e| Error::msg(format!("{}: {e}", field(&m.host))))?;
    }
    Ok(())
}

fn move_one(host: &Netlink, inside: &Netlink, m: &Move, target: &std::fs::File) -> Result<()> {
    let index = nix::net::if_::if_nametoindex(m.host.as_str())
        .map_err(|e| Error::msg(format!("no network device {:?} on the host: {e}", m.host)))?;
    // Permanent addresses of global scope go along (RFC 3549 2.3.3.2; the kernel drops every
    // address of a link that changes namespace).
    let addresses: Vec<AddressMessage> = host
        .dump_addresses()?
        .into_iter()
        .filter(|a| a.header.index == index && a.header.scope == AddressScope::Universe && permanent(a))
        .collect();
    host.set_up(index, false).map_err(|e| Error::msg(format!("set {:?} down: {e}", m.host)))?;
    let mut link = LinkMessage::default();
    link.header.index = index;
    link.attributes.push(LinkAttribute::IfName(m.container.clone()));
    link.attributes.push(LinkAttribute::NetNsFd(target.as_raw_fd()));
    if let Err(e) = host.request(RouteNetlinkMessage::SetLink(link), 0) {
        // Still on the host: leave it as it was found.
        let _ = host.set_up(index, true);
        return Err(Error::msg(format!(
            "move {:?} into the container's network namespace as {:?}: {e}",
            m.host, m.container
        )));
    }
    let new_index = inside
        .index_of(&m.container)
        .map_err(|e| Error::msg(format!("find {:?} in the container's network namespace: {e}", m.container)))?;
    for mut a in addresses {
        a.header.index = new_index;
        a.attributes.retain(|x| !matches!(x, AddressAttribute::CacheInfo(_) | AddressAttribute::Label(_)));
        let shown = format!("{:?}", a.attributes.iter().find(|x| matches!(x, AddressAttribute::Address(_))));
        inside
            .request(RouteNetlinkMessage::NewAddress(a), NLM_F_CREATE)
            .map_err(|e| Error::msg(format!("add address {shown} to {:?}: {e}", m.container)))?;
    }
    inside.set_up(new_index, true).map_err(|e| Error::msg(format!("set {:?} up: {e}", m.container)))
}

fn permanent(a: &AddressMessage) -> bool {
    let in_attr =
        a.attributes.iter().any(|x| matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent)));
    in_attr || a.header.flags.contains(AddressHeaderFlags::Permanent)
}

/// A blocking NETLINK_ROUTE socket in one network namespace.
struct Netlink {
    sock: Socket,
    seq: std::cell::Cell<u32>,
}

impl Netlink {
    fn open() -> Result<Netlink> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| Error::msg(format!("linux.netDevices: netlink socket: {e}")))?;
        sock.bind_auto().map_err(|e| Error::msg(format!("linux.netDevices: bind netlink socket: {e}")))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::msg(format!("linux.netDevices: connect netlink socket: {e}")))?;
        Ok(Netlink { sock, seq: std::cell::Cell::new(1) })
    }

    /// A socket whose namespace is `netns`: made there (a socket keeps the namespace it was made
    /// in), then skiff goes back to its own. skiff is single-threaded, so nothing else runs in
    /// the container's namespace meanwhile.
    fn open_in(netns: &std::fs::File) -> Result<Netlink> {
        let own = std::fs::File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::msg(format!("linux.netDevices: open skiff's network namespace: {e}")))?;
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::msg(format!("linux.netDevices: enter the container's network namespace: {e}")))?;
        let sock = Netlink::open();
        nix::sched::setns(own.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::msg(format!("linux.netDevices: return to skiff's network namespace: {e}")))?;
        sock
    }

    fn send(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| Error::msg(format!("netlink send: {e}")))?;
        Ok(seq)
    }

    /// Receives the replies to `seq` until the kernel's ACK, DONE or error; returns the messages.
    fn replies(&self, seq: u32) -> Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|e| Error::msg(format!("netlink recv: {e}")))?;
            let mut at = 0;
            while at < data.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..])
                    .map_err(|e| Error::msg(format!("netlink: bad reply: {e}")))?;
                let len = msg.header.length as usize;
                at += len.max(1).next_multiple_of(4);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(out),
                    NetlinkPayload::Error(e) => return Err(Error::msg(e.to_io().to_string())),
                    _ => {}
                }
            }
        }
    }

    fn request(&self, msg: RouteNetlinkMessage, flags: u16) -> Result<()> {
        let seq = self.send(msg, NLM_F_ACK | flags)?;
        self.replies(seq).map(drop)
    }

    fn set_up(&self, index: u32, up: bool) -> Result<()> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.change_mask = LinkFlags::Up;
        link.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        self.request(RouteNetlinkMessage::SetLink(link), 0)
    }

    fn dump_addresses(&self) -> Result<Vec<AddressMessage>> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Unspec;
        let seq = self.send(RouteNetlinkMessage::GetAddress(req), NLM_F_DUMP)?;
        Ok(self
            .replies(seq)?
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => Some(a),
                _ => None,
            })
            .collect())
    }

    fn index_of(&self, name: &str) -> Result<u32> {
        let mut req = LinkMessage::default();
        req.attributes.push(LinkAttribute::IfName(name.to_string()));
        let seq = self.send(RouteNetlinkMessage::GetLink(req), NLM_F_ACK)?;
        self.replies(seq)?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or_else(|| Error::msg(format!("no link {name:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Spec {
        crate::bundle::parse_config(v.to_string().as_bytes()).unwrap()
    }

    fn base(net: bool, devices: serde_json::Value) -> serde_json::Value {
        let ns = if net { serde_json::json!([{"type": "network"}]) } else { serde_json::json!([]) };
        serde_json::json!({
            "ociVersion": "1.3.0", "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": ns, "netDevices": devices}
        })
    }

    #[test]
    fn net_devices_are_planned_and_checked_as_runc_checks_them() {
        let moves = plan(&spec(base(true, serde_json::json!({"veth1": {"name": "eth0"}, "eth9": {}})))).unwrap();
        assert_eq!(
            moves,
            [
                Move { host: "eth9".into(), container: "eth9".into() },
                Move { host: "veth1".into(), container: "eth0".into() }
            ]
        );
        // (netDevices, network namespace?, error fragment) — runc's validator rules.
        let bad = [
            (serde_json::json!({"eth0": {}}), false, "needs a network namespace"),
            (serde_json::json!({"a/b": {}}), true, "linux.netDevices.a/b"),
            (serde_json::json!({"eth0": {"name": "0123456789abcdef"}}), true, "linux.netDevices.eth0.name"),
            (serde_json::json!({"..": {}}), true, "not a valid network device name"),
            (serde_json::json!({"eth0": {"name": "a b"}}), true, "not a valid"),
        ];
        for (devices, net, want) in bad {
            let err = plan(&spec(base(net, devices.clone()))).expect_err(want).to_string();
            assert!(err.contains(want), "{devices}: {err}");
        }
        assert!(plan(&spec(base(false, serde_json::json!({})))).unwrap().is_empty());
    }
}
