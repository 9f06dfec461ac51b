//! CDI containerEdits applied to a RUN step's config.json, as the CDI library's
//! ContainerEdits.Apply edits an OCI spec: env (a name already set is replaced), device nodes
//! (with the cgroup rule that lets the step use them), mounts (sorted by depth after), hooks
//! and additional gids. `fill_from_host` completes a device node from the host's, as the
//! library's fillMissingInfo; nothing else here touches the system.

use super::spec::{DeviceNode, Edits};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// Type, numbers and mode of a node the spec leaves out, read from its host path (`hostPath`,
/// else `path`). A node whose type and major (a fifo: type) are given needs no host node;
/// any other needs one, of the type given if one is.
pub fn fill_from_host(n: &mut DeviceNode) -> Result<(), String> {
    let minimal = !n.kind.is_empty() && (n.major != 0 || n.kind == "p");
    let host = n.host_path.clone().unwrap_or_else(|| n.path.clone());
    let info = std::fs::symlink_metadata(&host).map_err(|e| e.to_string()).and_then(|md| {
        let t = md.file_type();
        let kind = if t.is_block_device() {
            "b"
        } else if t.is_char_device() {
            "c"
        } else if t.is_fifo() {
            "p"
        } else {
            return Err("not a device node".to_string());
        };
        Ok((kind, md.rdev(), md.mode() & 0o7777))
    });
    let (kind, rdev, mode) = match info {
        Ok(i) => i,
        Err(_) if minimal => return Ok(()),
        Err(e) => return Err(format!("deviceNodes: {}: host device {host}: {e}", n.path)),
    };
    if n.file_mode.is_none() {
        n.file_mode = Some(mode);
    }
    if minimal {
        return Ok(());
    }
    if n.kind.is_empty() {
        n.kind = kind.to_string();
    }
    if n.kind != kind {
        return Err(format!("deviceNodes: {}: type {} but host device {host} is of type {kind}", n.path, n.kind));
    }
    if kind != "p" && n.major == 0 {
        n.major = nix::sys::stat::major(rdev) as i64;
        n.minor = nix::sys::stat::minor(rdev) as i64;
    }
    Ok(())
}

/// The paths in the step's rootfs the edits mount or make a node at (the runtime creates them
/// if missing; the step removes them again so that they never reach the layer).
pub fn targets(e: &Edits) -> Vec<&str> {
    e.device_nodes.iter().map(|n| n.path.as_str()).chain(e.mounts.iter().map(|m| m.container_path.as_str())).collect()
}

/// Applies `e` to `config` (a config.json whose process and linux objects exist).
pub fn apply(e: &Edits, config: &mut Value) {
    if e.env.is_empty()
        && e.device_nodes.is_empty()
        && e.mounts.is_empty()
        && e.hooks.is_empty()
        && e.additional_gids.is_empty()
    {
        return;
    }
    let key = |s: &str| s.split('=').next().unwrap_or_default().to_string();
    let env = array(&mut config["process"]["env"]);
    for v in &e.env {
        let k = key(v);
        match env.iter_mut().find(|x| x.as_str().map(key).as_deref() == Some(k.as_str())) {
            Some(x) => *x = json!(v),
            None => env.push(json!(v)),
        }
    }
    let (uid, gid) = (config["process"]["user"]["uid"].as_u64(), config["process"]["user"]["gid"].as_u64());
    for n in &e.device_nodes {
        let mut d = json!({"path": n.path, "type": n.kind, "major": n.major, "minor": n.minor});
        if let Some(m) = n.file_mode {
            d["fileMode"] = json!(m);
        }
        // the library gives the node to the process's user when the spec names no owner
        match (n.uid, uid) {
            (Some(u), _) => d["uid"] = json!(u),
            (None, Some(u)) if u > 0 => d["uid"] = json!(u),
            _ => {}
        }
        match (n.gid, gid) {
            (Some(g), _) => d["gid"] = json!(g),
            (None, Some(g)) if g > 0 => d["gid"] = json!(g),
            _ => {}
        }
        let devices = array(&mut config["linux"]["devices"]);
        devices.retain(|x| x["path"] != json!(n.path));
        devices.push(d);
        if n.kind == "b" || n.kind == "c" {
            let access = match n.permissions.as_str() {
                "" => "rwm",
                "none" => "",
                p => p,
            };
            array(&mut config["linux"]["resources"]["devices"])
                .push(json!({"allow": true, "type": n.kind, "major": n.major, "minor": n.minor, "access": access}));
        }
    }
    if !e.mounts.is_empty() {
        let mounts = array(&mut config["mounts"]);
        for m in &e.mounts {
            mounts.retain(|x| x["destination"] != json!(m.container_path));
            let mut o = json!({"destination": m.container_path, "source": m.host_path});
            if let Some(t) = &m.kind {
                o["type"] = json!(t);
            }
            if !m.options.is_empty() {
                o["options"] = json!(m.options);
            }
            mounts.push(o);
        }
        // parents before what is mounted inside them (stable: the library's orderedMounts)
        mounts.sort_by_key(|m| {
            let d = crate::glob::clean(m["destination"].as_str().unwrap_or_default());
            d.matches('/').count()
        });
    }
    for h in &e.hooks {
        let mut o = json!({"path": h.path});
        if !h.args.is_empty() {
            o["args"] = json!(h.args);
        }
        if !h.env.is_empty() {
            o["env"] = json!(h.env);
        }
        if let Some(t) = h.timeout {
            o["timeout"] = json!(t);
        }
        array(&mut config["hooks"][h.name.as_str()]).push(o);
    }
    let gids = array(&mut config["process"]["user"]["additionalGids"]);
    for g in e.additional_gids.iter().filter(|g| **g != 0) {
        if !gids.contains(&json!(g)) {
            gids.push(json!(g));
        }
    }
}

/// The array at `v`, made one if it is null.
fn array(v: &mut Value) -> &mut Vec<Value> {
    if !v.is_array() {
        *v = json!([]);
    }
    match v {
        Value::Array(a) => a,
        _ => unreachable!("just made an array"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::{Hook, MountEdit};
    use super::*;

    fn config() -> Value {
        json!({
            "process": {"user": {"uid": 1000, "gid": 0, "additionalGids": [3]}, "env": ["PATH=/bin", "A=old"]},
            "mounts": [{"destination": "/proc"}, {"destination": "/dev"}, {"destination": "/dev/pts"},
                       {"destination": "/opt/x"}, {"destination": "/work", "type": "bind"}],
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}
        })
    }

    #[test]
    fn edits_apply_as_the_cdi_library_applies_them() {
        let e = Edits {
            env: vec!["A=new".into(), "B=1".into()],
            device_nodes: vec![
                DeviceNode {
                    path: "/dev/x0".into(),
                    kind: "c".into(),
                    major: 1,
                    minor: 3,
                    file_mode: Some(0o666),
                    ..Default::default()
                },
                DeviceNode {
                    path: "/dev/x1".into(),
                    kind: "b".into(),
                    major: 7,
                    minor: 0,
                    permissions: "r".into(),
                    uid: Some(0),
                    gid: Some(6),
                    ..Default::default()
                },
                DeviceNode {
                    path: "/dev/p".into(),
                    kind: "p".into(),
                    permissions: "none".into(),
                    ..Default::default()
                },
            ],
            mounts: vec![
                MountEdit {
                    host_path: "/h/lib".into(),
                    container_path: "/usr/lib/x/lib.so".into(),
                    options: vec!["ro".into(), "bind".into()],
                    kind: None,
                },
                MountEdit {
                    host_path: "/h/x".into(),
                    container_path: "/opt/x".into(),
                    options: vec![],
                    kind: Some("bind".into()),
                },
            ],
            hooks: vec![Hook {
                name: "createContainer".into(),
                path: "/bin/h".into(),
                args: vec!["h".into()],
                env: vec![],
                timeout: Some(3),
            }],
            additional_gids: vec![0, 3, 44, 44],
            refused: vec![],
        };
        let mut c = config();
        apply(&e, &mut c);
        assert_eq!(c["process"]["env"], json!(["PATH=/bin", "A=new", "B=1"]), "a name set is replaced");
        assert_eq!(
            c["linux"]["devices"],
            json!([
                {"path": "/dev/x0", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 1000},
                {"path": "/dev/x1", "type": "b", "major": 7, "minor": 0, "uid": 0, "gid": 6},
                {"path": "/dev/p", "type": "p", "major": 0, "minor": 0, "uid": 1000}
            ]),
            "owned by the process's uid unless named; gid 0 is not set"
        );
        assert_eq!(
            c["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"},
                   {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                   {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}]),
            "a cgroup rule for each block and char node, rwm by default; none for a fifo"
        );
        let dests: Vec<&str> =
            c["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert_eq!(dests, ["/proc", "/dev", "/work", "/dev/pts", "/opt/x", "/usr/lib/x/lib.so"]);
        assert_eq!(c["mounts"][4], json!({"destination": "/opt/x", "source": "/h/x", "type": "bind"}), "replaced");
        assert_eq!(c["mounts"][5]["options"], json!(["ro", "bind"]));
        assert_eq!(c["hooks"]["createContainer"], json!([{"path": "/bin/h", "args": ["h"], "timeout": 3}]));
        assert_eq!(c["process"]["user"]["additionalGids"], json!([3, 44]), "0 and duplicates left out");
        assert_eq!(targets(&e), ["/dev/x0", "/dev/x1", "/dev/p", "/usr/lib/x/lib.so", "/opt/x"]);
        // nothing to edit: the config stays as it is
        let mut c2 = config();
        apply(&Edits::default(), &mut c2);
        assert_eq!(c2, config());
    }

    #[test]
    fn device_nodes_are_completed_from_the_host() {
        let mut n =
            DeviceNode { path: "/dev/slipway-test0".into(), host_path: Some("/dev/null".into()), ..Default::default() };
        fill_from_host(&mut n).unwrap();
        assert_eq!((n.kind.as_str(), n.major, n.minor, n.file_mode), ("c", 1, 3, Some(0o666)));
        // given type and major: no host node needed
        let mut n = DeviceNode { path: "/dev/nothere".into(), kind: "c".into(), major: 240, ..Default::default() };
        fill_from_host(&mut n).unwrap();
        assert_eq!((n.major, n.minor, n.file_mode), (240, 0, None));
        let mut n = DeviceNode { path: "/dev/nothere".into(), ..Default::default() };
        let e = fill_from_host(&mut n).unwrap_err();
        assert!(e.starts_with("deviceNodes: /dev/nothere: host device /dev/nothere: "), "{e}");
        let mut n = DeviceNode {
            path: "/x".into(),
            host_path: Some("/dev/null".into()),
            kind: "b".into(),
            ..Default::default()
        };
        assert_eq!(
            fill_from_host(&mut n).unwrap_err(),
            "deviceNodes: /x: type b but host device /dev/null is of type c"
        );
        let mut n = DeviceNode { path: "/x".into(), host_path: Some("/etc/passwd".into()), ..Default::default() };
        assert!(fill_from_host(&mut n).unwrap_err().ends_with("not a device node"));
    }
}
