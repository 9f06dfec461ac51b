//! Loads and validates a bundle's config.json before anything on the system is touched. Every error
//! names the JSON path of the offending value. It never mounts, forks or writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::log;

/// The newest runtime-spec version skiff implements (`features`' ociVersionMax).
pub const OCI_VERSION_MAX: &str = "1.3.0";

/// A validated bundle: its absolute directory, the parsed config and the absolute rootfs path.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    /// Reads `DIR/config.json`, validates it and resolves the rootfs.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = absolute(dir)?;
        let path = dir.join("config.json");
        let text = std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        let spec = parse_config(&text)?;
        let root = spec.root().as_ref().ok_or_else(|| Error::config("root", "is required"))?;
        let rootfs = if root.path().is_absolute() { root.path().clone() } else { dir.join(root.path()) };
        match std::fs::metadata(&rootfs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::config("root.path", format!("{} is not a directory", rootfs.display()))),
            Err(e) => return Err(Error::config("root.path", format!("{}: {e}", rootfs.display()))),
        }
        validate(&spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Makes a path absolute against the current directory and cleans it lexically (`.`, `..`,
/// double slashes), as Go's filepath.Abs does for runc; symlinks are not resolved.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| Error::io("getcwd", e))?.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::Normal(s) => out.push(s),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses config.json text. Unknown capability names are dropped with a warning first, as runc 1.1
/// does (it logs "unknown capability" and goes on) — oci-spec's enum would otherwise reject them.
pub fn parse_config(text: &[u8]) -> Result<Spec> {
    let mut value: Value = serde_json::from_slice(text).map_err(|e| Error::config("config.json", e.to_string()))?;
    drop_unknown_capabilities(&mut value);
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    match <Spec as serde::Deserialize>::deserialize(de) {
        Ok(spec) => Ok(spec),
        Err(e) => {
            let path = track.path().to_string();
            let path = if path == "." { "config.json".to_string() } else { path };
            Err(Error::config(path, e.to_string()))
        }
    }
}

fn drop_unknown_capabilities(value: &mut Value) {
    let Some(caps) = value.pointer_mut("/process/capabilities").and_then(Value::as_object_mut) else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        let Some(list) = list.as_array_mut() else { continue };
        list.retain(|name| {
            let known = name
                .as_str()
                .map(|n| serde_json::from_value::<oci_spec::runtime::Capability>(Value::String(n.into())).is_ok())
                .unwrap_or(true);
            if !known {
                log::warn(&format!("process.capabilities.{set}: ignoring unknown capability {name}"));
            }
            known
        });
    }
}

/// The checks runc makes before it creates anything (libcontainer/configs/validate and specconv),
/// and ociVersion's, which runc does not check. Unlike runc, a config without `process` is valid:
/// config.md makes it OPTIONAL, REQUIRED only when `start` is called (start refuses it then).
pub fn validate(spec: &Spec) -> Result<()> {
    check_oci_version(spec.version())?;
    if let Some(process) = spec.process() {
        validate_process(process)?;
    }
    validate_rest(spec)
}

fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(Error::config("process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::config("process.cwd", format!("{:?} is not an absolute path", process.cwd())));
    }
    if let Some(rlimits) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, r) in rlimits.iter().enumerate() {
            if !seen.insert(format!("{:?}", r.typ())) {
                return Err(Error::config(
                    format!("process.rlimits[{i}].type"),
                    format!("duplicate rlimit {:?}", r.typ()),
                ));
            }
        }
    }
    Ok(())
}

fn validate_rest(spec: &Spec) -> Result<()> {
    let in_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(Error::config(
                format!("mounts[{i}].destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
        crate::rootfs::options::check(i, m, in_userns)?;
    }
    let hooks = spec.hooks().as_ref();
    let hook_lists = hooks.map(|h| {
        [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
            ("createContainer", h.create_container()),
            ("startContainer", h.start_container()),
            ("poststart", h.poststart()),
            ("poststop", h.poststop()),
        ]
    });
    for (name, list) in hook_lists.into_iter().flatten() {
        for (i, h) in list.iter().flatten().enumerate() {
            if !h.path().is_absolute() {
                return Err(Error::config(
                    format!("hooks.{name}[{i}].path"),
                    format!("{:?} is not absolute", h.path()),
                ));
            }
            if matches!(h.timeout(), Some(t) if t <= 0) {
                return Err(Error::config(format!("hooks.{name}[{i}].timeout"), "must be positive"));
            }
        }
    }
    let Some(linux) = spec.linux() else { return Ok(()) };
    let mut types = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !types.insert(ns.typ()) {
            return Err(Error::config(
                format!("linux.namespaces[{i}].type"),
                format!("duplicate namespace \"{}\"", ns_name(ns.typ())),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(Error::config(format!("linux.namespaces[{i}].path"), format!("{p:?} is not absolute")));
            }
        }
    }
    let has = |t: LinuxNamespaceType| types.contains(&t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_userns =
        linux.namespaces().iter().flatten().any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if maps && !has(LinuxNamespaceType::User) {
        return Err(Error::config("linux.uidMappings", "user mappings given without a user namespace"));
    }
    if new_userns && !maps {
        return Err(Error::config("linux.uidMappings", "a new user namespace needs uid and gid mappings"));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::config("hostname", "cannot set a hostname without a private UTS namespace"));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(Error::config("domainname", "cannot set a domainname without a private UTS namespace"));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !has(LinuxNamespaceType::Time) {
        return Err(Error::config("linux.timeOffsets", "time offsets given without a time namespace"));
    }
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        check_sysctl(key, &has)?;
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !matches!(
            prop.as_str(),
            "" | "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" | "unbindable" | "runbindable"
        ) {
            return Err(Error::config("linux.rootfsPropagation", format!("unknown propagation {prop:?}")));
        }
    }
    if let Some(s) = linux.seccomp() {
        check_seccomp_notify(s)?;
    }
    if let Some(p) = linux.memory_policy() {
        crate::process::attrs::plan_mempolicy(p)?;
    }
    crate::netdev::plan(spec)?;
    Ok(())
}

/// config.md: ociVersion MUST be SemVer 2.0.0, and an invalid or unsupported value MUST be an
/// error; another major than 1 is not the spec skiff implements. Every 1.x is taken, also a minor
/// newer than [`OCI_VERSION_MAX`]: engines write whatever runtime-spec they vendor (1.0.2-dev for
/// docker 20.10, podman 4 and containerd 1.6; 1.1.0, 1.2.0... for newer ones), refusing a newer
/// minor would break them the day they update, and an engine that cares reads `features`'
/// ociVersionMax. Fields such a config adds are unknown properties to skiff, ignored as
/// config.md's Extensibility requires. runc does not check ociVersion at all.
fn check_oci_version(v: &str) -> Result<()> {
    let parsed = semver::Version::parse(v)
        .map_err(|e| Error::config("ociVersion", format!("{v:?} is not a SemVer 2.0.0 version: {e}")))?;
    if parsed.major != 1 {
        return Err(Error::config(
            "ociVersion",
            format!("{v:?}: skiff implements runtime-spec 1.x (1.0.0 to {})", OCI_VERSION_MAX),
        ));
    }
    Ok(())
}

/// runc's rules for SCMP_ACT_NOTIFY: a listener is needed, the default action cannot notify
/// (everything would wait on the listener, skiff's own setup included), and neither can `write`
/// (the init writes the exec fifo after the filter is loaded).
fn check_seccomp_notify(s: &oci_spec::runtime::LinuxSeccomp) -> Result<()> {
    use oci_spec::runtime::LinuxSeccompAction::ScmpActNotify;
    if s.default_action() == ScmpActNotify {
        return Err(Error::config("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action"));
    }
    let mut notifies = false;
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        if call.action() != ScmpActNotify {
            continue;
        }
        notifies = true;
        if call.names().iter().any(|n| n == "write") {
            return Err(Error::config(
                format!("linux.seccomp.syscalls[{i}].action"),
                "SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ));
        }
    }
    if notifies && s.listener_path().as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
        return Err(Error::config("linux.seccomp.listenerPath", "is required when an action is SCMP_ACT_NOTIFY"));
    }
    Ok(())
}

/// Only namespaced sysctls may be set, and only when the container has its own namespace for them
/// (runc's rule, libcontainer/configs/validate).
fn check_sysctl(key: &str, has: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<()> {
    let path = format!("linux.sysctl.{key}");
    let ipc = matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.");
    if ipc {
        return if has(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            Err(Error::config(path, "needs a private IPC namespace"))
        };
    }
    if key.starts_with("net.") {
        return if has(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err(Error::config(path, "needs a private network namespace"))
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has(LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            Err(Error::config(path, "needs a private UTS namespace"))
        };
    }
    Err(Error::config(path, "is not a namespaced sysctl"))
}

/// The spec's name of a namespace type.
pub fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check(v: Value) -> std::result::Result<(), String> {
        let spec = parse_config(v.to_string().as_bytes()).map_err(|e| e.to_string())?;
        validate(&spec).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_minimal_config() {
        check(base()).unwrap();
    }

    #[test]
    fn errors_name_the_json_path() {
        // (mutation, expected fragment): each row is a config runc rejects before creating anything.
        type Mutation = fn(&mut Value);
        let rows: Vec<(Mutation, &str)> = vec![
            (|v| v["linux"]["namespaces"][1]["type"] = "foo".into(), "linux.namespaces[1].type"),
            (
                |v| v["linux"]["namespaces"][1]["type"] = "pid".into(),
                "linux.namespaces[1].type: duplicate namespace \"pid\"",
            ),
            (|v| v["process"]["args"] = serde_json::json!([]), "process.args: must not be empty"),
            // runtime-tools misc_props: an ociVersion that is not SemVer is an invalid value.
            (|v| v["ociVersion"] = "invalid".into(), "ociVersion: \"invalid\" is not a SemVer 2.0.0 version"),
            (|v| v["ociVersion"] = "1.2".into(), "ociVersion: \"1.2\" is not a SemVer"),
            (|v| v["ociVersion"] = "".into(), "ociVersion: \"\" is not a SemVer"),
            (|v| v["ociVersion"] = "2.0.0".into(), "ociVersion: \"2.0.0\": skiff implements runtime-spec 1.x"),
            (|v| v["ociVersion"] = "0.6.0".into(), "ociVersion: \"0.6.0\": skiff implements runtime-spec 1.x"),
            (|v| v["process"]["cwd"] = "rel".into(), "process.cwd"),
            (|v| v["mounts"] = serde_json::json!([{"destination": "tmp", "type": "tmpfs"}]), "mounts[0].destination"),
            (|v| v["hostname"] = "h".into(), "hostname: cannot set a hostname"),
            (
                |v| v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"}),
                "linux.sysctl.net.ipv4.ip_forward",
            ),
            (|v| v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"}), "not a namespaced sysctl"),
            (
                |v| v["process"]["rlimits"] = serde_json::json!([{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]),
                "process.rlimits[0].type",
            ),
            (|v| v["process"]["user"]["uid"] = "x".into(), "process.user.uid"),
            (
                |v| v["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]}),
                "linux.seccomp.syscalls[0].action",
            ),
            (|v| v["hooks"] = serde_json::json!({"prestart": [{"path": "rel"}]}), "hooks.prestart[0].path"),
            (
                |v| v["linux"]["uidMappings"] = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]),
                "without a user namespace",
            ),
            // idmapped mounts are binds (runc 1.2 checkIDMapMounts).
            (
                |v| {
                    v["mounts"] = serde_json::json!([{"destination": "/m", "type": "tmpfs", "source": "tmpfs",
                        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}])
                },
                "mounts[0].uidMappings",
            ),
        ];
        for (mutate, want) in rows {
            let mut v = base();
            mutate(&mut v);
            let err = check(v).expect_err(want);
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn a_config_without_process_is_valid() {
        // config.md: process is OPTIONAL; only `start` needs it.
        let mut c = base();
        c.as_object_mut().expect("object").remove("process");
        check(c).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn oci_versions_engines_write_are_accepted() {
        // docker 20.10, podman 4, containerd 1.6 and buildah write 1.0.2-dev; newer ones 1.1.0,
        // 1.2.0; a newer minor than skiff knows is compatible by SemVer.
        for v in ["1.0.0", "1.0.2-dev", "1.0.0-rc5-dev", "1.1.0+dev", "1.2.1", "1.3.0", "1.4.0"] {
            let mut c = base();
            c["ociVersion"] = v.into();
            check(c).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn unknown_capabilities_are_dropped_like_runc() {
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_CHOWN", "CAP_NOT_A_THING"]});
        let spec = parse_config(v.to_string().as_bytes()).unwrap();
        let caps = spec.process().as_ref().unwrap().capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        let err = parse_config(b"{\"root\": ").unwrap_err().to_string();
        assert!(err.starts_with("config.json"), "{err}");
    }
}
