//! CDI devices for `RUN --device` (Dockerfile labs), as BuildKit's worker provides them
//! (solver/llbsolver/cdidevices, util/entitlements): spec files found in the spec dirs, a
//! requested name resolved to qualified devices, the `device` entitlement with its
//! auto-allowed devices and aliases, and the containerEdits to apply, as plain data. Reads
//! spec files and host device nodes; writes and runs nothing (`edits.rs` edits a config.json).

pub mod edits;
pub mod spec;
mod yaml;

pub use spec::Edits;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// BuildKit's spec dirs (util/appdefaults CDISpecDirs); a later one wins a device both define.
pub const DEFAULT_SPEC_DIRS: [&str; 3] = ["/etc/cdi", "/var/run/cdi", "/etc/buildkit/cdi"];
/// A device (or its spec) with this annotation is also requested by this name.
const ANNOTATION_CLASS: &str = "org.mobyproject.buildkit.device.class";
/// A device (or its spec) with this annotation true needs no `--allow device`.
const ANNOTATION_AUTOALLOW: &str = "org.mobyproject.buildkit.device.autoallow";

/// One `RUN --device` value (instructions/commands_rundevice.go ParseDevice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    /// BuildKit's default is false: a device not registered is skipped with a warning.
    pub required: bool,
}

/// A `RUN --device=` value: `NAME`, `name=NAME`, `required`, `required=BOOL`, comma-separated,
/// with BuildKit's messages.
pub fn parse_request(val: &str) -> Result<Request, String> {
    let fields = crate::runmount::csv_fields(val).map_err(|e| e.replace("csv mounts", "csv devices"))?;
    let mut d = Request { name: String::new(), required: false };
    for field in fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("required", None) => d.required = true,
            ("required", Some(v)) => {
                d.required = crate::gobool::parse(v).ok_or_else(|| format!("invalid value for required: {v}"))?
            }
            ("name", Some(v)) => {
                if !d.name.is_empty() {
                    return Err(format!("device name already set to {}", d.name));
                }
                d.name = v.to_string();
            }
            // the first field that is nothing else is the name (`vendor.com/class=dev` too)
            _ if d.name.is_empty() => d.name = field.clone(),
            (_, None) => return Err(format!("invalid field '{field}' must be a key=value pair")),
            (k, Some(_)) => {
                let mut msg = format!("unexpected key '{k}' in '{field}'");
                if let Some(s) = ["name", "required"].iter().find(|s| crate::instructions::near(k, s)) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            }
        }
    }
    Ok(d)
}

/// The devices of the spec files in a list of dirs.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Each spec with its file and its dir's priority (its index).
    specs: Vec<(PathBuf, usize, spec::Spec)>,
    /// Qualified name (`vendor/class=name`) -> (spec, device) indexes.
    devices: BTreeMap<String, (usize, usize)>,
    /// `*.yml` files of the dirs, which CDI does not read (BuildKit's docs/cdi.md writes its
    /// example to `/etc/cdi/foo.yml`): named when a device is not found.
    unread: Vec<PathBuf>,
}

impl Registry {
    /// Reads every `*.json` and `*.yaml` file of `dirs` (not below them; a dir that does not
    /// exist has none), as the CDI library's cache does. Unlike it (which logs a broken file
    /// and goes on without it), a file that does not read, or two files of one dir defining one
    /// device, is an error naming the file and the field: the device the build wants may be
    /// the one it defines.
    pub fn load(dirs: &[PathBuf]) -> Result<Registry, String> {
        let mut r = Registry::default();
        for (prio, dir) in dirs.iter().enumerate() {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("CDI spec dir {}: {e}", dir.display())),
            };
            let mut files: Vec<PathBuf> = Vec::new();
            for e in entries {
                let e = e.map_err(|e| format!("CDI spec dir {}: {e}", dir.display()))?;
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let p = e.path();
                match p.extension().and_then(|x| x.to_str()) {
                    Some("json" | "yaml") => files.push(p),
                    Some("yml") => r.unread.push(p),
                    _ => {}
                }
            }
            files.sort();
            for path in files {
                let s = read_file(&path).map_err(|e| format!("CDI spec {}: {e}", path.display()))?;
                r.add(path, prio, s)?;
            }
        }
        Ok(r)
    }

    fn add(&mut self, path: PathBuf, prio: usize, s: spec::Spec) -> Result<(), String> {
        let si = self.specs.len();
        for (di, d) in s.devices.iter().enumerate() {
            let q = format!("{}={}", s.kind, d.name);
            if let Some(&(osi, _)) = self.devices.get(&q) {
                let (opath, oprio, _) = &self.specs[osi];
                if *oprio == prio {
                    return Err(format!(
                        "CDI spec {}: device {q} is defined in {} too (one dir, so neither wins)",
                        path.display(),
                        opath.display()
                    ));
                }
            }
            // dirs are read in order, so a later one is of a higher priority
            self.devices.insert(q, (si, di));
        }
        self.specs.push((path, prio, s));
        Ok(())
    }

    /// Every qualified device name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }

    fn get(&self, q: &str) -> Option<(&Path, &spec::Spec, &spec::Device)> {
        let &(si, di) = self.devices.get(q)?;
        let (path, _, s) = &self.specs[si];
        Some((path, s, &s.devices[di]))
    }

    /// The spec's annotations, then the device's over them.
    fn annotations(&self, q: &str) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        if let Some((_, s, d)) = self.get(q) {
            a.extend(s.annotations.clone());
            a.extend(d.annotations.clone());
        }
        a
    }

    /// The devices a requested name means, as BuildKit's cdidevices Manager resolves it:
    /// `vendor/class=name` that device, `vendor/class` the first of that kind, `vendor/class=*`
    /// all of it; when that finds none (or the name is no `vendor/class`), the devices whose
    /// `org.mobyproject.buildkit.device.class` annotation is the name.
    pub fn resolve(&self, name: &str) -> Vec<String> {
        let (kind, dev) = name.split_once('=').unwrap_or((name, ""));
        let qualified = kind.split_once('/').is_some_and(|(v, c)| !v.is_empty() && !c.is_empty());
        let mut out: Vec<String> = Vec::new();
        if qualified {
            let prefix = format!("{kind}=");
            let mut of_kind = self.names().filter(|n| n.starts_with(&prefix));
            match dev {
                "" => out.extend(of_kind.next().map(str::to_string)),
                "*" => out.extend(of_kind.map(str::to_string)),
                _ => out.extend(self.devices.contains_key(name).then(|| name.to_string())),
            }
        }
        if out.is_empty() {
            out = self
                .names()
                .filter(|q| self.annotations(q).get(ANNOTATION_CLASS).is_some_and(|c| c == name))
                .map(str::to_string)
                .collect();
        }
        out
    }

    /// Whether the device needs no `--allow device`: its (or its spec's) autoallow annotation
    /// says true (Go's ParseBool).
    pub fn auto_allowed(&self, q: &str) -> bool {
        self.annotations(q).get(ANNOTATION_AUTOALLOW).is_some_and(|v| crate::gobool::is_true(v))
    }

    /// The edits for `devices` (qualified, resolved): each spec's own edits once, before the
    /// first of its devices, then each device's (the CDI library's InjectDevices order), with
    /// device nodes completed from the host's. An edit slipway cannot apply is an error naming
    /// it.
    pub fn edits(&self, devices: &[String]) -> Result<Edits, String> {
        let mut out = Edits::default();
        let mut seen: Vec<&Path> = Vec::new();
        for q in devices {
            let Some((path, s, d)) = self.get(q) else { continue };
            if !seen.contains(&path) {
                seen.push(path);
                check_applicable(path, &s.edits)?;
                out.append(&s.edits);
            }
            check_applicable(path, &d.edits)?;
            out.append(&d.edits);
        }
        for n in &mut out.device_nodes {
            edits::fill_from_host(n)?;
        }
        Ok(out)
    }
}

fn check_applicable(path: &Path, e: &Edits) -> Result<(), String> {
    match e.refused.first() {
        Some((field, why)) => Err(format!("CDI spec {}: {field}: not applied: {why}", path.display())),
        None => Ok(()),
    }
}

/// Reads one spec file: `.json` as JSON, `.yaml` as YAML (go-yaml's scalars: `yaml.rs`).
fn read_file(path: &Path) -> Result<spec::Spec, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v = if path.extension().is_some_and(|x| x == "yaml") {
        yaml::to_json(&text)?
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    };
    spec::read(&v)
}

/// What RUN steps get from the CDI devices of this build: the spec dirs (read when a step
/// first asks for a device), and what `build --allow device[=NAME[,alias=ALIAS]]` grants.
#[derive(Debug, Clone, Default)]
pub struct Devices {
    pub spec_dirs: Vec<PathBuf>,
    /// `--allow device`: every device.
    pub allow_all: bool,
    /// `--allow device=NAME`: these (resolved as a request is).
    pub allow: Vec<String>,
    /// `--allow device=NAME,alias=ALIAS`: `RUN --device=ALIAS` gets NAME, granted.
    pub aliases: BTreeMap<String, String>,
    loaded: OnceLock<Result<Registry, String>>,
}

/// The devices one RUN step gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Qualified names, each once, in the order asked for.
    pub devices: Vec<String>,
    /// Of those, the ones that need no grant (auto-allowed, or asked for by an alias).
    pub allowed: Vec<String>,
    /// Optional devices (`required=false`, the default) that are not registered.
    pub missing: Vec<String>,
    pub edits: Edits,
}

impl Devices {
    pub fn new(spec_dirs: Vec<PathBuf>) -> Devices {
        Devices { spec_dirs, ..Default::default() }
    }

    /// Takes one `--allow device[=NAME[,alias=ALIAS]]` value (after `device`: None or the
    /// text after `=`), as BuildKit's entitlements.ParseDevicesConfig.
    pub fn grant(&mut self, v: Option<&str>) -> Result<(), String> {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            self.allow_all = true;
            return Ok(());
        };
        let fields = crate::runmount::csv_fields(v).map_err(|e| e.replace("csv mounts", "csv devices"))?;
        let name = fields[0].clone();
        let mut alias = None;
        for f in &fields[1..] {
            match f.split_once('=') {
                Some(("alias", a)) => alias = Some(a.to_string()),
                Some((k, _)) => return Err(format!("unknown device config key {k:?}")),
                None => return Err(format!("invalid device config {f:?}")),
            }
        }
        match alias.filter(|a| !a.is_empty()) {
            Some(a) => {
                self.aliases.insert(a, name);
            }
            None => self.allow.push(name),
        }
        Ok(())
    }

    fn registry(&self) -> Result<&Registry, String> {
        let dirs = if self.spec_dirs.is_empty() {
            DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect()
        } else {
            self.spec_dirs.clone()
        };
        self.loaded.get_or_init(|| Registry::load(&dirs)).as_ref().map_err(Clone::clone)
    }

    /// Where the specs are looked for, for messages.
    fn dirs_text(&self) -> String {
        if self.spec_dirs.is_empty() {
            DEFAULT_SPEC_DIRS.join(", ")
        } else {
            self.spec_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        }
    }

    /// The devices of a step's requests: each resolved (an alias first), a required one not
    /// registered an error, an optional one noted as missing; and their edits.
    pub fn inject(&self, reqs: &[Request]) -> Result<Injected, String> {
        let reg = self.registry()?;
        let mut out = Injected::default();
        for r in reqs {
            let (name, aliased) = match self.aliases.get(&r.name) {
                Some(n) => (n.as_str(), true),
                None => (r.name.as_str(), false),
            };
            let found = reg.resolve(name);
            if found.is_empty() {
                if r.required {
                    let mut msg =
                        format!("required device {:?} is not registered (CDI spec dirs: {})", r.name, self.dirs_text());
                    if !reg.unread.is_empty() {
                        let files: Vec<String> = reg.unread.iter().map(|p| p.display().to_string()).collect();
                        msg.push_str(&format!("; not read, CDI reads *.json and *.yaml only: {}", files.join(", ")));
                    }
                    return Err(msg);
                }
                out.missing.push(r.name.clone());
            }
            for q in found {
                if aliased || reg.auto_allowed(&q) {
                    out.allowed.push(q.clone());
                }
                if !out.devices.contains(&q) {
                    out.devices.push(q);
                }
            }
        }
        out.edits = reg.edits(&out.devices)?;
        Ok(out)
    }

    /// BuildKit's device entitlement (llbsolver ValidateEntitlements): with `--allow device`
    /// everything goes; else each device must be auto-allowed, asked for by an alias, or one of
    /// those `--allow device=NAME` names. The error is BuildKit's.
    pub fn check(&self, inj: &Injected) -> Result<(), String> {
        if self.allow_all {
            return Ok(());
        }
        let pending: Vec<&String> = inj.devices.iter().filter(|d| !inj.allowed.contains(d)).collect();
        if pending.is_empty() {
            return Ok(());
        }
        let reg = self.registry()?;
        let mut granted: BTreeSet<String> = BTreeSet::new();
        for n in &self.allow {
            let found = reg.resolve(n);
            if found.is_empty() {
                return Err(format!("--allow device={n}: required device {n:?} is not registered"));
            }
            granted.extend(found);
        }
        let forbidden: Vec<&str> = pending.iter().filter(|d| !granted.contains(**d)).map(|d| d.as_str()).collect();
        match forbidden.as_slice() {
            [] => Ok(()),
            [one] => Err(format!(
                "device {one} is requested by the build but not allowed (grant it with build --allow device or --allow device={one})"
            )),
            many => Err(format!(
                "devices {} are requested by the build but not allowed (grant them with build --allow device)",
                many.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_buildkits() {
        // frontend/dockerfile/instructions/commands_rundevice.go ParseDevice
        let ok = |v: &str, name: &str, required: bool| {
            assert_eq!(parse_request(v), Ok(Request { name: name.into(), required }), "{v}");
        };
        ok("vendor1.com/device=foo", "vendor1.com/device=foo", false);
        ok("vendor1.com/device=foo,required", "vendor1.com/device=foo", true);
        ok("name=vendor1.com/device=foo,required=true", "vendor1.com/device=foo", true);
        ok("vendor1.com/device,required=false", "vendor1.com/device", false);
        ok("required,gpu", "gpu", true);
        ok("\"a=b,c\"", "a=b,c", false);
        let bad = |v: &str, want: &str| {
            let e = parse_request(v).unwrap_err();
            assert!(e.contains(want), "{v}: want {want:?} in {e:?}");
        };
        bad("foo,bar", "invalid field 'bar' must be a key=value pair");
        bad("foo,name=bar", "device name already set to foo");
        bad("foo,required=maybe", "invalid value for required: maybe");
        bad("foo,requird=true", "unexpected key 'requird' in 'requird=true' (did you mean required?)");
        bad("foo,colour=red", "unexpected key 'colour' in 'colour=red'");
        bad("\"foo", "failed to parse csv devices");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn devices(dirs: &[&Path]) -> Devices {
        Devices::new(dirs.iter().map(|d| d.to_path_buf()).collect())
    }

    #[test]
    fn resolves_names_kinds_wildcards_and_classes() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "a.yaml",
            "cdiVersion: \"0.6.0\"\nkind: vendor1.com/device\ndevices:\n- name: foo\n  containerEdits:\n    env: [FOO=1]\n\
             - name: bar\n  annotations:\n    org.mobyproject.buildkit.device.class: special\n  containerEdits:\n    env: [BAR=1]\n",
        );
        write(
            d.path(),
            "b.json",
            r#"{"cdiVersion": "0.3.0", "kind": "vendor2.com/x", "devices": [{"name": "all", "containerEdits": {"env": ["ALL=1"]}}]}"#,
        );
        write(d.path(), "ignored.yml", "not read: CDI reads .json and .yaml only");
        let reg = Registry::load(&[d.path().to_path_buf()]).unwrap();
        assert_eq!(
            reg.names().collect::<Vec<_>>(),
            ["vendor1.com/device=bar", "vendor1.com/device=foo", "vendor2.com/x=all"]
        );
        // manager_test.go's cases
        assert_eq!(reg.resolve("vendor1.com/device=foo"), ["vendor1.com/device=foo"]);
        assert_eq!(reg.resolve("vendor1.com/device"), ["vendor1.com/device=bar"], "the first of the kind");
        assert_eq!(reg.resolve("vendor1.com/device=*"), ["vendor1.com/device=bar", "vendor1.com/device=foo"]);
        assert_eq!(reg.resolve("special"), ["vendor1.com/device=bar"], "by the class annotation");
        assert!(reg.resolve("vendor1.com/device=baz").is_empty());
        assert!(reg.resolve("nothing").is_empty());
    }

    #[test]
    fn required_missing_optional_skipped_and_edits_in_order() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "a.json",
            r#"{"cdiVersion": "0.3.0", "kind": "example.com/c", "containerEdits": {"env": ["SPEC=1"]},
                "devices": [{"name": "one", "containerEdits": {"env": ["ONE=1"]}},
                            {"name": "two", "containerEdits": {"env": ["TWO=1"]}}]}"#,
        );
        let devs = devices(&[d.path()]);
        let req = |n: &str, required| Request { name: n.into(), required };
        let inj = devs
            .inject(&[req("example.com/c=two", true), req("example.com/c=one", false), req("x.com/y=z", false)])
            .unwrap();
        assert_eq!(inj.devices, ["example.com/c=two", "example.com/c=one"]);
        assert_eq!(inj.missing, ["x.com/y=z"]);
        assert_eq!(inj.edits.env, ["SPEC=1", "TWO=1", "ONE=1"], "the spec's edits once, then each device's");
        let e = devs.inject(&[req("x.com/y=z", true)]).unwrap_err();
        assert!(e.starts_with("required device \"x.com/y=z\" is not registered (CDI spec dirs: "), "{e}");
        assert!(!e.contains("not read"), "{e}");
        // BuildKit's docs name their example foo.yml, which the CDI library never reads: said
        write(d.path(), "foo.yml", "cdiVersion: 0.3.0\n");
        let e = devices(&[d.path()]).inject(&[req("x.com/y=z", true)]).unwrap_err();
        assert!(
            e.ends_with(&format!("; not read, CDI reads *.json and *.yaml only: {}/foo.yml", d.path().display())),
            "{e}"
        );
    }

    #[test]
    fn entitlement_as_buildkit() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "a.json",
            r#"{"cdiVersion": "0.6.0", "kind": "example.com/c",
                "devices": [{"name": "free", "annotations": {"org.mobyproject.buildkit.device.autoallow": "true"}, "containerEdits": {"env": ["F=1"]}},
                            {"name": "held", "containerEdits": {"env": ["H=1"]}}]}"#,
        );
        let req = |n: &str| Request { name: n.into(), required: true };
        let devs = devices(&[d.path()]);
        let free = devs.inject(&[req("example.com/c=free")]).unwrap();
        devs.check(&free).unwrap();
        let held = devs.inject(&[req("example.com/c=held")]).unwrap();
        let e = devs.check(&held).unwrap_err();
        assert!(e.starts_with("device example.com/c=held is requested by the build but not allowed"), "{e}");
        let both = devs.inject(&[req("example.com/c=*")]).unwrap();
        assert!(devs.check(&both).unwrap_err().contains("device example.com/c=held is requested"));
        let mut all = devices(&[d.path()]);
        all.grant(None).unwrap();
        all.check(&held).unwrap();
        let mut one = devices(&[d.path()]);
        one.grant(Some("example.com/c")).unwrap(); // the first of the kind: free, not held
        assert!(one.check(&held).is_err());
        let mut kind = devices(&[d.path()]);
        kind.grant(Some("example.com/c=*")).unwrap();
        kind.check(&held).unwrap();
        let mut other = devices(&[d.path()]);
        other.grant(Some("example.com/c=free")).unwrap();
        assert!(other.check(&held).is_err());
        // an alias grants what it names
        let mut alias = devices(&[d.path()]);
        alias.grant(Some("example.com/c=held,alias=gpu")).unwrap();
        let via = alias.inject(&[req("gpu")]).unwrap();
        assert_eq!(via.devices, ["example.com/c=held"]);
        alias.check(&via).unwrap();
        assert_eq!(devices(&[]).grant(Some("x,foo=bar")), Err("unknown device config key \"foo\"".into()));
        assert_eq!(devices(&[]).grant(Some("x,foo")), Err("invalid device config \"foo\"".into()));
    }

    #[test]
    fn spec_dirs_priority_conflicts_and_errors_name_the_file() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let spec = |env: &str| {
            format!(
                r#"{{"cdiVersion": "0.3.0", "kind": "example.com/c", "devices": [{{"name": "d", "containerEdits": {{"env": ["{env}"]}}}}]}}"#
            )
        };
        write(a.path(), "x.json", &spec("FROM=a"));
        write(b.path(), "x.json", &spec("FROM=b"));
        let devs = devices(&[a.path(), b.path()]);
        let req = [Request { name: "example.com/c=d".into(), required: true }];
        assert_eq!(devs.inject(&req).unwrap().edits.env, ["FROM=b"], "the later dir wins");
        write(b.path(), "y.json", &spec("FROM=b2"));
        let e = Registry::load(&[b.path().to_path_buf()]).unwrap_err();
        assert!(e.contains("y.json: device example.com/c=d is defined in") && e.contains("x.json too"), "{e}");
        let c = tempfile::tempdir().unwrap();
        write(c.path(), "bad.yaml", "cdiVersion: 0.3.0\nkind: example.com/c\ndevices:\n- name: d\n  containerEdits:\n    deviceNodes:\n    - path: /dev/x\n      typ: c\n");
        let e = Registry::load(&[c.path().to_path_buf()]).unwrap_err();
        assert_eq!(
            e,
            format!(
                "CDI spec {}/bad.yaml: devices[0].containerEdits.deviceNodes[0].typ: unknown field",
                c.path().display()
            )
        );
        write(c.path(), "bad.yaml", "{not json");
        std::fs::rename(c.path().join("bad.yaml"), c.path().join("bad.json")).unwrap();
        let e = Registry::load(&[c.path().to_path_buf()]).unwrap_err();
        assert!(e.starts_with(&format!("CDI spec {}/bad.json: ", c.path().display())), "{e}");
        // a device with an edit slipway cannot apply is refused when asked for, naming it
        let r = tempfile::tempdir().unwrap();
        write(
            r.path(),
            "r.json",
            r#"{"cdiVersion": "0.7.0", "kind": "example.com/c", "devices": [{"name": "d", "containerEdits": {"intelRdt": {"closID": "x"}}}]}"#,
        );
        let e = devices(&[r.path()]).inject(&req).unwrap_err();
        assert!(e.ends_with("r.json: devices[0].containerEdits.intelRdt: not applied: slipway does not set resctrl classes (linux.intelRdt)"), "{e}");
    }
}
