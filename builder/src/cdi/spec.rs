//! One CDI spec file (SPEC.md of cncf-tags/container-device-interface) read strictly into
//! typed data: an unknown field, a value of the wrong type, an invalid name or edit, or a
//! `cdiVersion` too old for the fields used is an error naming the field's path
//! (`devices[0].containerEdits.deviceNodes[1].type`). Reads nothing but the text given.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The spec versions the CDI library knows, newest first.
const VERSIONS: &[&str] = &["1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0", "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub version: String,
    /// `vendor/class`.
    pub kind: String,
    pub vendor: String,
    pub class: String,
    pub annotations: BTreeMap<String, String>,
    pub devices: Vec<Device>,
    /// Applied once when any of the spec's devices is.
    pub edits: Edits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub edits: Edits,
}

/// A `containerEdits` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    pub env: Vec<String>,
    pub device_nodes: Vec<DeviceNode>,
    pub mounts: Vec<MountEdit>,
    pub hooks: Vec<Hook>,
    pub additional_gids: Vec<u32>,
    /// The paths of the edits slipway cannot apply (`intelRdt`, `netDevices`), with why: a
    /// build that asks for a device with one of these is refused, naming it.
    pub refused: Vec<(String, &'static str)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: String,
    pub host_path: Option<String>,
    /// `b`, `c`, `u` or `p`; empty: the host node's.
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    pub file_mode: Option<u32>,
    pub permissions: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEdit {
    pub host_path: String,
    pub container_path: String,
    pub options: Vec<String>,
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The OCI hook list: prestart, createRuntime, createContainer, startContainer, poststart
    /// or poststop.
    pub name: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

pub const HOOK_NAMES: &[&str] =
    &["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"];

impl Edits {
    fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.mounts.is_empty()
            && self.hooks.is_empty()
            && self.additional_gids.is_empty()
            && self.refused.is_empty()
    }

    /// `o` after these (the CDI library's ContainerEdits.Append).
    pub fn append(&mut self, o: &Edits) {
        self.env.extend(o.env.iter().cloned());
        self.device_nodes.extend(o.device_nodes.iter().cloned());
        self.mounts.extend(o.mounts.iter().cloned());
        self.hooks.extend(o.hooks.iter().cloned());
        self.additional_gids.extend(o.additional_gids.iter().copied());
        self.refused.extend(o.refused.iter().cloned());
    }
}

/// A value at a JSON path.
struct At<'a> {
    v: &'a Value,
    path: String,
}

type R<T> = Result<T, String>;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> At<'a> {
    fn err<T>(&self, msg: impl std::fmt::Display) -> R<T> {
        Err(format!("{}: {msg}", if self.path.is_empty() { "(top)" } else { &self.path }))
    }
    fn absent(&self) -> bool {
        self.v.is_null()
    }
    /// An object whose keys are all in `known` (Go's DisallowUnknownFields, case-sensitive as
    /// the CDI library's strict decoding).
    fn object(&self, known: &[&str]) -> R<&'a Map<String, Value>> {
        let Some(m) = self.v.as_object() else { return self.err("want an object") };
        if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!("{}: unknown field", join(&self.path, k)));
        }
        Ok(m)
    }
    fn string(&self) -> R<String> {
        match self.v {
            Value::String(s) => Ok(s.clone()),
            Value::Null => Ok(String::new()),
            _ => self.err("want a string"),
        }
    }
    fn strings(&self) -> R<Vec<String>> {
        let mut out = Vec::new();
        for (i, v) in self.array()?.iter().enumerate() {
            out.push(At { v, path: format!("{}[{i}]", self.path) }.string()?);
        }
        Ok(out)
    }
    fn array(&self) -> R<&'a [Value]> {
        match self.v {
            Value::Array(a) => Ok(a),
            Value::Null => Ok(&[]),
            _ => self.err("want a list"),
        }
    }
    fn int(&self, min: i64, max: i64) -> R<i64> {
        let n = self.v.as_i64().filter(|n| (min..=max).contains(n));
        match n {
            Some(n) => Ok(n),
            None if self.v.is_number() => self.err(format!("{} is out of range [{min}, {max}]", self.v)),
            None => self.err("want an integer"),
        }
    }
    fn u32(&self) -> R<u32> {
        Ok(self.int(0, u32::MAX as i64)? as u32)
    }
    fn annotations(&self) -> R<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if self.absent() {
            return Ok(out);
        }
        for (k, v) in self.object_any()? {
            out.insert(k.clone(), At { v, path: join(&self.path, k) }.string()?);
        }
        Ok(out)
    }
    fn object_any(&self) -> R<&'a Map<String, Value>> {
        self.v.as_object().map_or_else(|| self.err("want an object"), Ok)
    }
}

/// Field `key` of `m` (null when absent), with its path.
fn field<'a>(m: &'a Map<String, Value>, parent: &str, key: &str) -> At<'a> {
    At { v: m.get(key).unwrap_or(&Value::Null), path: join(parent, key) }
}

/// Reads a spec from its JSON value (a YAML file is converted first: `yaml.rs`).
pub fn read(v: &Value) -> R<Spec> {
    let top = At { v, path: String::new() };
    let m = top.object(&["cdiVersion", "kind", "annotations", "devices", "containerEdits"])?;
    let version = field(m, "", "cdiVersion").string()?;
    let kind = field(m, "", "kind").string()?;
    let annotations = field(m, "", "annotations").annotations()?;
    let spec_edits = read_edits(field(m, "", "containerEdits"))?;
    let mut devices: Vec<Device> = Vec::new();
    let list = field(m, "", "devices");
    for (i, d) in list.array()?.iter().enumerate() {
        let path = format!("devices[{i}]");
        let dm = At { v: d, path: path.clone() }.object(&["name", "annotations", "containerEdits"])?;
        let name_at = field(dm, &path, "name");
        let name = name_at.string()?;
        if let Err(e) = device_name(&name) {
            return name_at.err(e);
        }
        if devices.iter().any(|o| o.name == name) {
            return name_at.err(format!("a second device {name:?}"));
        }
        let annotations = field(dm, &path, "annotations").annotations()?;
        let e_at = field(dm, &path, "containerEdits");
        let e = read_edits(field(dm, &path, "containerEdits"))?;
        if e.is_empty() {
            return e_at.err("empty: a device must edit something");
        }
        devices.push(Device { name, annotations, edits: e });
    }
    if devices.is_empty() {
        return list.err("no devices");
    }
    let (vendor, class) = match kind.split_once('/') {
        Some((v, c)) if !v.is_empty() && !c.is_empty() => (v.to_string(), c.to_string()),
        _ => return Err(format!("kind: {kind:?} is not vendor/class")),
    };
    vendor_or_class(&vendor).map_err(|e| format!("kind: vendor {e}"))?;
    vendor_or_class(&class).map_err(|e| format!("kind: class {e}"))?;
    let spec = Spec { version, kind, vendor, class, annotations, devices, edits: spec_edits };
    check_version(&spec, v)?;
    Ok(spec)
}

fn read_edits(at: At) -> R<Edits> {
    let mut out = Edits::default();
    if at.absent() {
        return Ok(out);
    }
    let m = at.object(&["env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt", "additionalGids"])?;
    let base = at.path.as_str();
    let env_at = field(m, base, "env");
    out.env = env_at.strings()?;
    check_env(&out.env, &env_at.path)?;
    let nodes = field(m, base, "deviceNodes");
    for (i, v) in nodes.array()?.iter().enumerate() {
        let path = format!("{}[{i}]", nodes.path);
        out.device_nodes.push(device_node(At { v, path: path.clone() })?);
    }
    let mounts = field(m, base, "mounts");
    for (i, v) in mounts.array()?.iter().enumerate() {
        let path = format!("{}[{i}]", mounts.path);
        let at = At { v, path: path.clone() };
        let mm = at.object(&["hostPath", "containerPath", "options", "type"])?;
        let host_path = field(mm, &path, "hostPath").string()?;
        if host_path.is_empty() {
            return at.err("hostPath: empty");
        }
        let container_path = field(mm, &path, "containerPath").string()?;
        if container_path.is_empty() {
            return at.err("containerPath: empty");
        }
        let options = field(mm, &path, "options").strings()?;
        let kind = Some(field(mm, &path, "type").string()?).filter(|t| !t.is_empty());
        out.mounts.push(MountEdit { host_path, container_path, options, kind });
    }
    let hooks = field(m, base, "hooks");
    for (i, v) in hooks.array()?.iter().enumerate() {
        let path = format!("{}[{i}]", hooks.path);
        let at = At { v, path: path.clone() };
        let hm = at.object(&["hookName", "path", "args", "env", "timeout"])?;
        let name_at = field(hm, &path, "hookName");
        let name = name_at.string()?;
        if !HOOK_NAMES.contains(&name.as_str()) {
            return name_at.err(format!("invalid hook name {name:?} (one of {})", HOOK_NAMES.join(", ")));
        }
        let hpath = field(hm, &path, "path").string()?;
        if hpath.is_empty() {
            return at.err("path: empty");
        }
        let args = field(hm, &path, "args").strings()?;
        let env_at = field(hm, &path, "env");
        let env = env_at.strings()?;
        check_env(&env, &env_at.path)?;
        let t = field(hm, &path, "timeout");
        let timeout = if t.absent() { None } else { Some(t.int(i64::MIN, i64::MAX)?) };
        out.hooks.push(Hook { name, path: hpath, args, env, timeout });
    }
    let gids = field(m, base, "additionalGids");
    for (i, v) in gids.array()?.iter().enumerate() {
        out.additional_gids.push(At { v, path: format!("{}[{i}]", gids.path) }.u32()?);
    }
    // read, so that a wrong one is an error too, then refused if a build asks for it
    let rdt = field(m, base, "intelRdt");
    if !rdt.absent() {
        rdt.object(&["closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"])?;
        out.refused.push((rdt.path.clone(), "slipway does not set resctrl classes (linux.intelRdt)"));
    }
    let net = field(m, base, "netDevices");
    if !net.array()?.is_empty() {
        out.refused.push((net.path.clone(), "slipway does not move host network interfaces into a RUN step"));
    }
    Ok(out)
}

fn device_node(at: At) -> R<DeviceNode> {
    let m = at.object(&["path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"])?;
    let base = at.path.as_str();
    let path = field(m, base, "path").string()?;
    if path.is_empty() {
        return at.err("path: empty");
    }
    let host_path = Some(field(m, base, "hostPath").string()?).filter(|h| !h.is_empty());
    let t = field(m, base, "type");
    let kind = t.string()?;
    if !["", "b", "c", "u", "p"].contains(&kind.as_str()) {
        return t.err(format!("invalid type {kind:?} (b, c, u or p)"));
    }
    let num = |k: &str| -> R<i64> {
        let a = field(m, base, k);
        if a.absent() {
            Ok(0)
        } else {
            a.int(i64::MIN, i64::MAX)
        }
    };
    let major = num("major")?;
    let minor = num("minor")?;
    let opt_u32 = |k: &str| -> R<Option<u32>> {
        let a = field(m, base, k);
        if a.absent() {
            Ok(None)
        } else {
            a.u32().map(Some)
        }
    };
    let file_mode = opt_u32("fileMode")?;
    let perm_at = field(m, base, "permissions");
    let permissions = perm_at.string()?;
    if !permissions.is_empty() && permissions != "none" && !permissions.chars().all(|c| "rwm".contains(c)) {
        return perm_at.err(format!("invalid permissions {permissions:?} (r, w and m, or none)"));
    }
    let uid = opt_u32("uid")?;
    let gid = opt_u32("gid")?;
    Ok(DeviceNode { path, host_path, kind, major, minor, file_mode, permissions, uid, gid })
}

fn check_env(env: &[String], path: &str) -> R<()> {
    for (i, e) in env.iter().enumerate() {
        if e.find('=').is_none_or(|i| i == 0) {
            return Err(format!("{path}[{i}]: invalid environment variable {e:?} (NAME=VALUE)"));
        }
    }
    Ok(())
}

/// A vendor or class name: a letter first, a letter or digit last, `A-Za-z0-9_-.` between.
fn vendor_or_class(n: &str) -> Result<(), String> {
    let ok = n.starts_with(|c: char| c.is_ascii_alphabetic())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("{n:?}: a letter first, a letter or digit last, letters, digits, '_', '-' and '.' between"))
    }
}

/// A device name: a letter or digit first and last, `A-Za-z0-9_-.:` between.
pub fn device_name(n: &str) -> Result<(), String> {
    let ok = n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.ends_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid device name {n:?}: a letter or digit first and last, letters, digits, '_', '-', '.' and ':' between"
        ))
    }
}

/// The CDI library's version check: `cdiVersion` must be a known version (a leading `v`
/// allowed) no older than the newest feature the spec uses.
fn check_version(s: &Spec, raw: &Value) -> R<()> {
    let v = s.version.strip_prefix('v').unwrap_or(&s.version);
    let Some(have) = VERSIONS.iter().position(|k| *k == v) else {
        return Err(format!("cdiVersion: invalid version {:?} (one of {})", s.version, VERSIONS.join(", ")));
    };
    let need = required_version(s, raw);
    let need_at = VERSIONS.iter().position(|k| *k == need).unwrap_or(VERSIONS.len() - 1);
    if need_at < have {
        return Err(format!("cdiVersion: the spec version must be at least v{need} for the fields it uses"));
    }
    Ok(())
}

/// The oldest spec version with every field `s` uses (specs-go's MinimumRequiredVersion).
fn required_version(s: &Spec, raw: &Value) -> &'static str {
    let edits: Vec<&Value> = std::iter::once(&raw["containerEdits"])
        .chain(raw["devices"].as_array().into_iter().flatten().map(|d| &d["containerEdits"]))
        .collect();
    let all: Vec<&Edits> = std::iter::once(&s.edits).chain(s.devices.iter().map(|d| &d.edits)).collect();
    let rdt_new = edits.iter().any(|e| {
        let r = &e["intelRdt"];
        !r["schemata"].is_null() || r["enableMonitoring"] == Value::Bool(true)
    });
    if rdt_new || edits.iter().any(|e| e["netDevices"].as_array().is_some_and(|a| !a.is_empty())) {
        return "1.1.0";
    }
    if edits.iter().any(|e| !e["intelRdt"].is_null()) || all.iter().any(|e| !e.additional_gids.is_empty()) {
        return "0.7.0";
    }
    if !s.annotations.is_empty() || s.devices.iter().any(|d| !d.annotations.is_empty()) || s.class.contains('.') {
        return "0.6.0";
    }
    if s.devices.iter().any(|d| d.name.starts_with(|c: char| c.is_ascii_digit()))
        || all.iter().any(|e| e.device_nodes.iter().any(|n| n.host_path.is_some()))
    {
        return "0.5.0";
    }
    if all.iter().any(|e| e.mounts.iter().any(|m| m.kind.is_some())) {
        return "0.4.0";
    }
    "0.3.0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> R<Spec> {
        read(&v)
    }

    #[test]
    fn reads_every_edit() {
        let s = spec(json!({
            "cdiVersion": "0.7.0", "kind": "example.com/gpu",
            "annotations": {"org.mobyproject.buildkit.device.autoallow": "true"},
            "containerEdits": {"env": ["ALL=1"], "additionalGids": [44]},
            "devices": [{"name": "0", "containerEdits": {
                "env": ["A=1"],
                "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/null", "type": "c", "major": 1, "minor": 3,
                                 "fileMode": 438, "permissions": "rw", "uid": 1, "gid": 2}],
                "mounts": [{"hostPath": "/lib/x.so", "containerPath": "/usr/lib/x.so", "options": ["ro", "bind"], "type": "bind"}],
                "hooks": [{"hookName": "createContainer", "path": "/bin/hook", "args": ["hook", "x"], "env": ["H=1"], "timeout": 5}]
            }}]
        }))
        .unwrap();
        assert_eq!((s.vendor.as_str(), s.class.as_str()), ("example.com", "gpu"));
        assert_eq!(s.edits.env, ["ALL=1"]);
        assert_eq!(s.edits.additional_gids, [44]);
        let d = &s.devices[0];
        assert_eq!(d.name, "0");
        let n = &d.edits.device_nodes[0];
        assert_eq!(
            (n.kind.as_str(), n.major, n.minor, n.file_mode, n.uid, n.gid),
            ("c", 1, 3, Some(438), Some(1), Some(2))
        );
        assert_eq!(n.host_path.as_deref(), Some("/dev/null"));
        assert_eq!(d.edits.mounts[0].kind.as_deref(), Some("bind"));
        assert_eq!(d.edits.hooks[0].timeout, Some(5));
    }

    #[test]
    fn errors_name_the_field() {
        let base = || json!({"cdiVersion": "0.6.0", "kind": "example.com/c", "devices": [{"name": "d", "containerEdits": {"env": ["A=1"]}}]});
        type Edit = Box<dyn Fn(&mut Value)>;
        let rows: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| {
                    v["devices"][0]["containerEdits"]["deviceNodes"] = json!([{"path": "/dev/x", "type": "z"}])
                }),
                "devices[0].containerEdits.deviceNodes[0].type: invalid type \"z\"",
            ),
            (
                Box::new(|v| v["devices"][0]["containerEdits"]["deviceNodes"] = json!([{"path": "/dev/x", "majr": 1}])),
                "devices[0].containerEdits.deviceNodes[0].majr: unknown field",
            ),
            (
                Box::new(|v| {
                    v["devices"][0]["containerEdits"]["deviceNodes"] = json!([{"path": "/dev/x", "permissions": "rx"}])
                }),
                "deviceNodes[0].permissions: invalid permissions \"rx\"",
            ),
            (
                Box::new(|v| v["devices"][0]["containerEdits"]["deviceNodes"] = json!([{"path": "/dev/x", "uid": -1}])),
                "deviceNodes[0].uid: -1 is out of range",
            ),
            (
                Box::new(|v| v["devices"][0]["containerEdits"]["env"] = json!(["=x"])),
                "devices[0].containerEdits.env[0]: invalid environment variable \"=x\"",
            ),
            (
                Box::new(|v| v["devices"][0]["containerEdits"]["hooks"] = json!([{"hookName": "later", "path": "/x"}])),
                "devices[0].containerEdits.hooks[0].hookName: invalid hook name \"later\"",
            ),
            (
                Box::new(|v| v["devices"][0]["containerEdits"]["mounts"] = json!([{"hostPath": "/x"}])),
                "devices[0].containerEdits.mounts[0]: containerPath: empty",
            ),
            (Box::new(|v| v["devices"][0]["containerEdits"] = json!({})), "devices[0].containerEdits: empty"),
            (Box::new(|v| v["devices"][0]["name"] = json!("-x")), "devices[0].name: invalid device name \"-x\""),
            (
                Box::new(|v| {
                    v["devices"].as_array_mut().unwrap().push(json!({"name": "d", "containerEdits": {"env": ["B=1"]}}))
                }),
                "devices[1].name: a second device \"d\"",
            ),
            (Box::new(|v| v["devices"] = json!([])), "devices: no devices"),
            (Box::new(|v| v["kind"] = json!("gpu")), "kind: \"gpu\" is not vendor/class"),
            (Box::new(|v| v["kind"] = json!("1x.com/gpu")), "kind: vendor \"1x.com\""),
            (Box::new(|v| v["cdiVersion"] = json!("0.9.0")), "cdiVersion: invalid version \"0.9.0\""),
            (Box::new(|v| v["extra"] = json!(1)), "extra: unknown field"),
            // features newer than the version given (specs-go's minimum version rules)
            (
                Box::new(|v| {
                    v["cdiVersion"] = json!("0.5.0");
                    v["devices"][0]["annotations"] = json!({"a": "b"});
                }),
                "cdiVersion: the spec version must be at least v0.6.0",
            ),
            (
                Box::new(|v| {
                    v["cdiVersion"] = json!("0.6.0");
                    v["kind"] = json!("example.com/c");
                    v["containerEdits"] = json!({"additionalGids": [5]});
                }),
                "at least v0.7.0",
            ),
            (
                Box::new(|v| {
                    v["cdiVersion"] = json!("0.4.0");
                    v["devices"][0]["containerEdits"]["deviceNodes"] =
                        json!([{"path": "/dev/x", "hostPath": "/dev/null"}]);
                }),
                "at least v0.5.0",
            ),
            (
                Box::new(|v| {
                    v["cdiVersion"] = json!("0.3.0");
                    v["devices"][0]["containerEdits"]["mounts"] =
                        json!([{"hostPath": "/a", "containerPath": "/b", "type": "bind"}]);
                }),
                "at least v0.4.0",
            ),
            (
                Box::new(|v| {
                    v["cdiVersion"] = json!("1.0.0");
                    v["devices"][0]["containerEdits"]["netDevices"] =
                        json!([{"hostInterfaceName": "eth9", "name": "eth0"}]);
                }),
                "at least v1.1.0",
            ),
        ];
        for (edit, want) in rows {
            let mut v = base();
            edit(&mut v);
            let e = spec(v.clone()).unwrap_err();
            assert!(e.contains(want), "{v}: want {want:?} in {e:?}");
        }
        // a leading v and a dot in the class (0.6.0) are fine
        let mut v = base();
        v["cdiVersion"] = json!("v0.6.0");
        v["kind"] = json!("example.com/c.d");
        spec(v).unwrap();
    }

    #[test]
    fn intel_rdt_and_net_devices_are_read_and_marked_refused() {
        let s =
            spec(json!({"cdiVersion": "1.1.0", "kind": "example.com/c", "devices": [{"name": "d", "containerEdits": {
            "intelRdt": {"closID": "x"}, "netDevices": [{"hostInterfaceName": "eth9", "name": "eth0"}]}}]}))
            .unwrap();
        let paths: Vec<&str> = s.devices[0].edits.refused.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["devices[0].containerEdits.intelRdt", "devices[0].containerEdits.netDevices"]);
        let e =
            spec(json!({"cdiVersion": "1.1.0", "kind": "example.com/c", "devices": [{"name": "d", "containerEdits": {
            "intelRdt": {"closid": "x"}}}]}))
            .unwrap_err();
        assert_eq!(e, "devices[0].containerEdits.intelRdt.closid: unknown field");
    }
}
