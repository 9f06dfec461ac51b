//! The id maps of a new user namespace, written by `skiff create` into /proc/PID/{uid,gid}_map of
//! the setup process, as runc's nsexec writes them. Root (of the host or of an engine's user
//! namespace) writes any map of ids it has. An unprivileged user may map only its own id, and for
//! a gid map only once setgroups(2) is denied in the namespace (the kernel's rule since 3.19);
//! anything more goes through the setuid `newuidmap`/`newgidmap` of shadow's `uidmap` package,
//! which grant the ranges /etc/subuid and /etc/subgid give the user. `newuidmap` is what runc,
//! crun and podman call: the rules of who may map what stay in one place.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::error::{Error, Result};

/// One map of a user namespace, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// `uid_map` or `gid_map`.
    pub file: &'static str,
    /// The config field it comes from, for errors.
    pub field: &'static str,
    /// The setuid helper that writes it for an unprivileged user.
    pub tool: &'static str,
    /// (container id, host id, size) lines.
    pub lines: Vec<(u32, u32, u32)>,
}

impl Map {
    /// The text the kernel takes: one `inside outside count` line per range.
    pub fn text(&self) -> String {
        self.lines.iter().map(|(c, h, n)| format!("{c} {h} {n}\n")).collect()
    }

    /// The arguments the helper takes after the pid: `inside outside count` triples.
    pub fn tool_args(&self) -> Vec<String> {
        self.lines.iter().flat_map(|(c, h, n)| [c.to_string(), h.to_string(), n.to_string()]).collect()
    }
}

/// What to write for a new user namespace: whether to deny setgroups first, then the uid and
/// gid maps (each may be empty: the config gave none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub deny_setgroups: bool,
    pub uid: Map,
    pub gid: Map,
}

fn lines(maps: Option<&Vec<LinuxIdMapping>>) -> Vec<(u32, u32, u32)> {
    maps.into_iter().flatten().map(|m| (m.container_id(), m.host_id(), m.size())).collect()
}

/// The plan for `spec`, written by a process with effective ids `euid`/`egid`. setgroups is
/// denied where runc denies it: an unprivileged user's gid map of its own gid alone, which the
/// kernel takes only that way (with more ranges newgidmap writes it and setgroups stays allowed).
pub fn plan(spec: &Spec, euid: u32, egid: u32) -> Plan {
    let linux = spec.linux().as_ref();
    let uid = lines(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = lines(linux.and_then(|l| l.gid_mappings().as_ref()));
    let deny_setgroups = euid != 0 && matches!(gid.as_slice(), [(_, host, 1)] if *host == egid);
    Plan {
        deny_setgroups,
        uid: Map { file: "uid_map", field: "linux.uidMappings", tool: "newuidmap", lines: uid },
        gid: Map { file: "gid_map", field: "linux.gidMappings", tool: "newgidmap", lines: gid },
    }
}

/// Writes `plan` for the process `pid`, which has just unshared its user namespace.
pub fn write(pid: i32, plan: &Plan) -> Result<()> {
    if plan.deny_setgroups {
        let path = format!("/proc/{pid}/setgroups");
        match std::fs::write(&path, "deny") {
            Ok(()) => {}
            // Kernels before 3.19 have no such file and no such rule.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::msg(format!("linux.gidMappings: write deny to {path}: {e}"))),
        }
    }
    write_map(pid, &plan.uid)?;
    write_map(pid, &plan.gid)
}

fn write_map(pid: i32, map: &Map) -> Result<()> {
    if map.lines.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{}", map.file);
    match std::fs::write(&path, map.text()) {
        Ok(()) => Ok(()),
        // Not ours to map (more than our own id): the setuid helper checks /etc/sub[ug]id.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => run_tool(pid, map),
        Err(e) => Err(Error::msg(format!("{}: write {path}: {e}", map.field))),
    }
}

fn run_tool(pid: i32, map: &Map) -> Result<()> {
    let subids = if map.tool == "newuidmap" { "/etc/subuid" } else { "/etc/subgid" };
    let Some(bin) = find_in_path(map.tool) else {
        return Err(Error::msg(format!(
            "{}: write /proc/{pid}/{}: operation not permitted, and {} is not installed (Debian's uidmap \
             package) to map ids other than your own from {subids}",
            map.field, map.file, map.tool
        )));
    };
    let out = std::process::Command::new(&bin)
        .arg(pid.to_string())
        .args(map.tool_args())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::msg(format!("{}: run {}: {e}", map.field, bin.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(Error::msg(format!(
        "{}: {} {pid} {} failed ({}): {why} (the ranges must be given to this user in {subids})",
        map.field,
        map.tool,
        map.tool_args().join(" "),
        out.status
    )))
}

/// `name` in a directory of $PATH (or the usual system ones when PATH is unset), as runc looks
/// newuidmap up before it forks.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(uid: serde_json::Value, gid: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "r"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "user"}], "uidMappings": uid, "gidMappings": gid}
        }))
        .unwrap()
    }

    #[test]
    fn setgroups_is_denied_where_runc_denies_it() {
        let own = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let sub = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1},
                                     {"containerID": 1, "hostID": 100000, "size": 65536}]);
        // (gid map, euid, egid) -> deny: `runc spec --rootless`'s single map needs it...
        assert!(plan(&spec(own.clone(), own.clone()), 1000, 1000).deny_setgroups);
        // ...a map through newgidmap (subordinate ranges) keeps setgroups for additionalGids...
        assert!(!plan(&spec(sub.clone(), sub.clone()), 1000, 1000).deny_setgroups);
        // ...and root (of the host or of podman's user namespace) may map anything.
        assert!(!plan(&spec(own.clone(), own.clone()), 0, 0).deny_setgroups);
        // a single map of someone else's gid is newgidmap's business (it may refuse it)
        assert!(!plan(&spec(own.clone(), own), 1000, 1001).deny_setgroups);
        let p = plan(&spec(sub.clone(), sub), 1000, 1000);
        assert_eq!(p.uid.text(), "0 1000 1\n1 100000 65536\n");
        assert_eq!(p.gid.tool_args(), ["0", "1000", "1", "1", "100000", "65536"]);
        assert_eq!(p.gid.tool, "newgidmap");
    }
}
