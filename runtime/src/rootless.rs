//! Running without host root, decided as runc 1.1 decides it: who skiff runs as (an unprivileged
//! user, or root of a user namespace a rootless engine such as podman made), where its state goes
//! by default, whether it may do without cgroups it cannot write, and what a config must hold
//! before an unprivileged `create` tries it. Decisions and checks only: nothing here makes a
//! namespace, a map or a cgroup.

use std::path::PathBuf;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The default `--root` of real root.
pub const ROOT_STATE_DIR: &str = "/run/skiff";

/// True when this process is in a user namespace other than the host's (its uid map is not the
/// identity map of every id), as runc's `userns.RunningInUserNS`.
pub fn in_userns() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").map(|m| !is_initial_uid_map(&m)).unwrap_or(false)
}

/// The host's own user namespace maps all 2^32-1 ids onto themselves.
fn is_initial_uid_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The effective uid is not 0: the kernel checks every privileged operation against this user.
pub fn euid_unprivileged() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// runc's `shouldHonorXDGRuntimeDir`: an unprivileged user, or root of a user namespace that is not
/// called "root" (podman runs the runtime as root of its user namespace with USER unset or empty).
fn honor_xdg(euid_root: bool, in_userns: bool, user: Option<&str>) -> bool {
    if !euid_root {
        return true;
    }
    in_userns && user != Some("root")
}

/// The default state directory and whether it was taken from `$XDG_RUNTIME_DIR` (runc's rule:
/// `/run/skiff` for real root, else `$XDG_RUNTIME_DIR/skiff` when that variable is set).
pub fn default_root() -> (PathBuf, bool) {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty());
    let user = std::env::var("USER").ok();
    match xdg {
        Some(dir) if honor_xdg(!euid_unprivileged(), in_userns(), user.as_deref()) => {
            (PathBuf::from(dir).join("skiff"), true)
        }
        _ => (PathBuf::from(ROOT_STATE_DIR), false),
    }
}

/// runc's `parseBoolOrAuto` for the global `--rootless`: None means "decide by yourself".
pub fn parse_flag(value: Option<&str>) -> Result<Option<bool>> {
    match value {
        None | Some("" | "auto") => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(Error::msg(format!("--rootless: invalid value {other:?} (true, false or auto)"))),
    }
}

/// Whether cgroups skiff cannot write may be left out (runc's `shouldUseRootlessCgroupManager`
/// for the cgroupfs driver): as `--rootless` says, else when the euid is not 0 or skiff runs in
/// a user namespace, where it cannot know whether it owns the cgroups it is given.
pub fn cgroups_may_be_missing(flag: Option<&str>) -> Result<bool> {
    Ok(match parse_flag(flag)? {
        Some(b) => b,
        None => euid_unprivileged() || in_userns(),
    })
}

/// The checks runc makes of a config run by an unprivileged user (libcontainer/configs/validate's
/// rootless checks), and the features that need host root, refused by name before anything is
/// made. Only for a euid other than 0: root of a user namespace is checked by the kernel.
pub fn check(spec: &Spec) -> Result<()> {
    if !euid_unprivileged() {
        return Ok(());
    }
    check_unprivileged(spec)
}

fn check_unprivileged(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let namespaces = linux.and_then(|l| l.namespaces().as_ref()).cloned().unwrap_or_default();
    let user = namespaces.iter().find(|n| n.typ() == LinuxNamespaceType::User);
    let Some(user) = user else {
        return Err(Error::config(
            "linux.namespaces",
            "a rootless container needs a user namespace (skiff runs as an unprivileged user)",
        ));
    };
    let uid_maps = linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
    let gid_maps = linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    if user.path().is_none() {
        if uid_maps.is_empty() {
            return Err(Error::config("linux.uidMappings", "a rootless container needs at least one uid mapping"));
        }
        if gid_maps.is_empty() {
            return Err(Error::config("linux.gidMappings", "a rootless container needs at least one gid mapping"));
        }
    }
    // uid=/gid= mount options must name ids the container has (runc's rootlessEUIDMount), or the
    // kernel refuses the mount with a bare EINVAL.
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        for opt in m.options().iter().flatten() {
            for (prefix, maps, what) in [("uid=", &uid_maps, "uid"), ("gid=", &gid_maps, "gid")] {
                let Some(id) = opt.strip_prefix(prefix).and_then(|v| v.parse::<u32>().ok()) else { continue };
                if user.path().is_none() && !mapped(id, maps) {
                    return Err(Error::config(
                        format!("mounts[{i}].options"),
                        format!("{opt:?}: {what} {id} is not mapped in the container's user namespace (rootless)"),
                    ));
                }
            }
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(Error::config(
                format!("mounts[{i}].uidMappings"),
                "id-mapped mounts need root (CAP_SYS_ADMIN in the host's user namespace); skiff runs rootless",
            ));
        }
    }
    if linux.and_then(|l| l.net_devices().as_ref()).is_some_and(|d| !d.is_empty()) {
        return Err(Error::config(
            "linux.netDevices",
            "moving host network devices needs root (CAP_NET_ADMIN in the host's network namespace); skiff runs rootless",
        ));
    }
    Ok(())
}

fn mapped(id: u32, maps: &[LinuxIdMapping]) -> bool {
    maps.iter().any(|m| id >= m.container_id() && (id - m.container_id()) < m.size())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_user_namespace_is_the_identity_map() {
        assert!(is_initial_uid_map("         0          0 4294967295\n"));
        // podman's user namespace: the user's uid as 0, then its subordinate range
        assert!(!is_initial_uid_map("         0       1001          1\n         1     100000      65536\n"));
        assert!(!is_initial_uid_map("0 0 1000\n"));
    }

    #[test]
    fn xdg_runtime_dir_is_honoured_as_runc_honours_it() {
        // (euid is root, in a user namespace, $USER) -> use $XDG_RUNTIME_DIR
        for (root, userns, user, want) in [
            (false, false, Some("alice"), true), // an unprivileged user
            (false, true, None, true),
            (true, false, Some("root"), false), // real root: /run/skiff, whatever XDG says
            (true, false, None, false),
            (true, true, None, true),          // podman's user namespace: USER unset...
            (true, true, Some(""), true),      // ...or empty (conmon's environment)
            (true, true, Some("root"), false), // root of a user namespace that says it is root
        ] {
            assert_eq!(honor_xdg(root, userns, user), want, "{root} {userns} {user:?}");
        }
    }

    #[test]
    fn rootless_flag_parses_like_runcs_bool_or_auto() {
        assert_eq!(parse_flag(None).unwrap(), None);
        assert_eq!(parse_flag(Some("auto")).unwrap(), None);
        assert_eq!(parse_flag(Some("true")).unwrap(), Some(true));
        assert_eq!(parse_flag(Some("1")).unwrap(), Some(true));
        assert_eq!(parse_flag(Some("False")).unwrap(), Some(false));
        assert!(parse_flag(Some("yes")).unwrap_err().to_string().contains("--rootless"));
    }

    fn spec(linux: serde_json::Value, mounts: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "r"},
            "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
            "mounts": mounts, "linux": linux
        }))
        .unwrap()
    }

    #[test]
    fn unprivileged_configs_are_checked_as_runc_checks_them() {
        let maps = serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        let ns = serde_json::json!([{"type": "user"}, {"type": "mount"}]);
        let devpts = |opt: &str| serde_json::json!([{"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["newinstance", opt]}]);
        let ok =
            spec(serde_json::json!({"namespaces": ns, "uidMappings": maps, "gidMappings": maps}), devpts("mode=0620"));
        check_unprivileged(&ok).unwrap();
        // runc: "rootless container requires user namespaces"
        let no_userns = spec(serde_json::json!({"namespaces": [{"type": "mount"}]}), serde_json::json!([]));
        assert!(check_unprivileged(&no_userns).unwrap_err().to_string().contains("linux.namespaces"));
        // runc: "rootless containers requires at least one UID mapping"
        let no_maps = spec(serde_json::json!({"namespaces": ns, "gidMappings": maps}), serde_json::json!([]));
        assert!(check_unprivileged(&no_maps).unwrap_err().to_string().contains("linux.uidMappings"));
        // a joined user namespace brings its own maps
        let joined = spec(
            serde_json::json!({"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}),
            serde_json::json!([]),
        );
        check_unprivileged(&joined).unwrap();
        // runc: "cannot specify gid= mount options for unmapped gid in rootless containers"
        let gid5 =
            spec(serde_json::json!({"namespaces": ns, "uidMappings": maps, "gidMappings": maps}), devpts("gid=5"));
        let e = check_unprivileged(&gid5).unwrap_err().to_string();
        assert!(e.contains("mounts[0].options") && e.contains("gid 5"), "{e}");
        let gid0 =
            spec(serde_json::json!({"namespaces": ns, "uidMappings": maps, "gidMappings": maps}), devpts("gid=0"));
        check_unprivileged(&gid0).unwrap();
        // host root only
        let netdev = spec(
            serde_json::json!({"namespaces": ns, "uidMappings": maps, "gidMappings": maps, "netDevices": {"eth9": {}}}),
            serde_json::json!([]),
        );
        assert!(check_unprivileged(&netdev).unwrap_err().to_string().contains("linux.netDevices"));
    }
}
