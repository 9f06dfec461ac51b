//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient scope
//! unit that systemd makes, as runc's systemd driver does. `linux.cgroupsPath` is
//! `slice:prefix:name` and the unit `prefix-name.scope` in that slice (made by systemd with its
//! parents when missing: `a-b.slice` is a.slice/a-b.slice). The unit is started at the first
//! join, with the setup process as its PIDs, Delegate=yes and the resources systemd has
//! properties for; the rest of the handle's work (every limit's file, freeze, pids, stats) is
//! cgroupfs on the scope's directories, as in runc. Remove stops and resets the unit.
//!
//! All D-Bus traffic goes through [`dbus::run`]'s helper process: skiff stays single-threaded.

pub mod annotations;
pub mod dbus;
pub mod properties;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::devices::Rule;
use super::hierarchy::{Dirs, Hierarchy};
use super::{fs, resources};
use crate::error::{Error, Result};
use properties::{prop, Property, Value};

/// Where runc puts a root container without a slice in its cgroupsPath.
const DEFAULT_SLICE: &str = "system.slice";

/// The unit prefix for an empty cgroupsPath (runc uses "runc").
const DEFAULT_PREFIX: &str = "skiff";

/// A container's scope unit and the slice it is in, from `linux.cgroupsPath`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// "kubepods-besteffort-pod123.slice"
    pub slice: String,
    /// "cri-containerd-ID.scope"
    pub name: String,
}

/// runc's reading of `linux.cgroupsPath` under `--systemd-cgroup`: `slice:prefix:name`, an empty
/// slice meaning system.slice; no cgroupsPath at all is `system.slice:skiff:ID`. The unit is a
/// scope named `prefix-name.scope`.
pub fn parse(cgroups_path: Option<&str>, id: &str) -> Result<Unit> {
    const FIELD: &str = "linux.cgroupsPath";
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => (DEFAULT_SLICE, DEFAULT_PREFIX, id),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [slice, prefix, name] => (if slice.is_empty() { DEFAULT_SLICE } else { slice }, prefix, name),
            _ => {
                return Err(Error::config(
                    FIELD,
                    format!("expected \"slice:prefix:name\" for systemd cgroups, got {p:?}"),
                ))
            }
        },
    };
    expand_slice(slice).map_err(|why| Error::config(FIELD, why))?;
    if name.is_empty() {
        return Err(Error::config(FIELD, "the name (after the second ':') is empty"));
    }
    if name.ends_with(".slice") {
        // runc would make a slice unit the container's cgroup; a container is a scope here.
        return Err(Error::config(FIELD, format!("{name:?}: the container's unit must be a scope, not a slice")));
    }
    let unit = format!("{prefix}-{name}.scope");
    check_unit_name(&unit).map_err(|why| Error::config(FIELD, why))?;
    Ok(Unit { slice: slice.to_string(), name: unit })
}

/// systemd's rule for unit names (unit_name_is_valid): at most 255 bytes of ASCII letters,
/// digits and `:-_.\`. A container id may hold `+`, which systemd refuses.
fn check_unit_name(unit: &str) -> std::result::Result<(), String> {
    if unit.len() > 255 {
        return Err(format!("unit name {unit:?} is longer than systemd's 255 bytes"));
    }
    match unit.chars().find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\".contains(*c))) {
        Some(c) => Err(format!("unit name {unit:?}: systemd does not allow {c:?} in unit names")),
        None => Ok(()),
    }
}

/// runc's ExpandSlice: the cgroup path of a slice, each `-` a level:
/// `a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> std::result::Result<String, String> {
    let bad = || format!("invalid slice name {slice:?}");
    let base = slice.strip_suffix(".slice").filter(|b| !b.is_empty() && !slice.contains('/')).ok_or_else(bad)?;
    if base == "-" {
        return Ok("/".to_string());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in base.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push_str(&format!("/{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// The unit's directory in each hierarchy: where systemd puts a scope of that slice.
pub fn plan_paths(hs: &[Hierarchy], unit: &Unit) -> Vec<PathBuf> {
    // parse() checked the slice.
    let slice = expand_slice(&unit.slice).unwrap_or_else(|_| "/".to_string());
    let rel = Path::new(slice.trim_start_matches('/')).join(&unit.name);
    hs.iter().map(|h| h.mount_point.join(&rel)).collect()
}

/// The driver's state in a [`super::Cgroup`] handle.
#[derive(Debug, Clone)]
pub struct Scope {
    pub unit: Unit,
    /// For a container being created: what the unit is started with at the first join. None
    /// for a recorded container (its unit exists, or existed).
    start: RefCell<Option<Start>>,
}

#[derive(Debug, Clone)]
struct Start {
    description: String,
    /// `linux.resources` and the device-node rules, given by `apply` before the unit exists.
    resources: Option<(LinuxResources, Vec<Rule>)>,
    /// The `org.systemd.property.*` annotations' properties (see annotations.rs).
    annotated: Vec<Property>,
}

impl Scope {
    /// The scope of a container about to be created.
    pub fn new(unit: Unit, id: &str) -> Scope {
        let start = Start { description: format!("skiff container {id}"), resources: None, annotated: Vec::new() };
        Scope { unit, start: RefCell::new(Some(start)) }
    }

    /// The scope of an existing container, from the unit name its state recorded.
    pub fn recorded(name: &str) -> Scope {
        Scope { unit: Unit { slice: String::new(), name: name.to_string() }, start: RefCell::new(None) }
    }

    /// The unit starts with the properties of the config's `org.systemd.property.*` annotations,
    /// as runc's; refused by key when one cannot be read. Only for a container being created.
    pub fn annotate(&self, annotations: &std::collections::HashMap<String, String>) -> Result<()> {
        let props = annotations::plan(annotations)?;
        if let Some(start) = self.start.borrow_mut().as_mut() {
            start.annotated = props;
        }
        Ok(())
    }

    /// Puts `pid` in the container's cgroups: the first time, by starting the unit with it (and
    /// then writing every limit's file); later (exec), by writing cgroup.procs, as runc does.
    pub fn join(&self, pid: i32, dirs: &Dirs) -> Result<()> {
        let Some(start) = self.start.borrow_mut().take() else {
            return fs::join(&dirs.paths(), pid);
        };
        let unified = dirs.v2_only().is_some();
        let mut base = vec![
            prop("Description", Value::Str(start.description.clone()), "linux.cgroupsPath"),
            prop("Slice", Value::Str(self.unit.slice.clone()), "linux.cgroupsPath"),
            prop("PIDs", Value::Pids(vec![pid as u32]), "linux.cgroupsPath"),
            // The container manages its own sub-cgroups (systemd v218+ delegates scopes).
            prop("Delegate", Value::Bool(true), "linux.cgroupsPath"),
            // No ordering against shutdown.target & co.: the engine stops its containers.
            prop("DefaultDependencies", Value::Bool(false), "linux.cgroupsPath"),
        ];
        // Every controller's accounting, so stats and limits have their files, as runc does.
        for name in ["MemoryAccounting", "CPUAccounting", "TasksAccounting"] {
            base.push(prop(name, Value::Bool(true), "linux.cgroupsPath"));
        }
        let io = if unified { "IOAccounting" } else { "BlockIOAccounting" };
        base.push(prop(io, Value::Bool(true), "linux.cgroupsPath"));
        let res = start.resources.as_ref().map(|(r, _)| r);
        if res.and_then(|r| r.pids().as_ref()).is_none() {
            // No pids limit in the config is none on the container's cgroup, as under cgroupfs;
            // systemd would give the scope its DefaultTasksMax (15% of the host's pids).
            base.push(prop("TasksMax", Value::U64(properties::INFINITY), "linux.resources.pids"));
        }
        let name = self.unit.name.clone();
        dbus::run(&format!("start unit {name}"), || {
            let bus = dbus::Systemd::connect()?;
            let version = bus.version();
            let mut props = base;
            // After skiff's own, which they may replace; before the resources, which win (runc
            // sets those after the start).
            props.extend(start.annotated.iter().cloned());
            if let Some(r) = res {
                props.extend(properties::plan(r, unified, version, &whole_disk).map_err(|e| e.to_string())?);
                props.extend(oom_policy(r, version));
            }
            bus.start(&name, &props)
        })?;
        // What systemd does not manage (v1 hierarchies such as cpuset or net_cls) is made and
        // joined by hand, as runc joins them.
        let missing: Vec<PathBuf> = dirs.paths().into_iter().filter(|p| !p.exists()).collect();
        fs::create(&missing)?;
        fs::join(&missing, pid)?;
        if let Some((r, nodes)) = &start.resources {
            resources::apply(r, nodes, dirs)?;
        }
        Ok(())
    }

    /// Applies `linux.resources`: before the unit exists, keeps them for its start (see
    /// [`Scope::join`]); after, sets the unit's properties and then writes every file, as runc.
    pub fn apply(&self, res: &LinuxResources, nodes: &[Rule], dirs: &Dirs) -> Result<()> {
        let unified = dirs.v2_only().is_some();
        // Everything that can be refused is, before systemd hears of it.
        properties::plan(res, unified, u32::MAX, &whole_disk)?;
        resources::check(res, nodes, dirs)?;
        if let Some(start) = self.start.borrow_mut().as_mut() {
            start.resources = Some((res.clone(), nodes.to_vec()));
            return Ok(());
        }
        let name = self.unit.name.clone();
        dbus::run(&format!("update unit {name}"), || {
            let bus = dbus::Systemd::connect()?;
            let props = properties::plan(res, unified, bus.version(), &whole_disk).map_err(|e| e.to_string())?;
            bus.set(&name, &props)
        })?;
        resources::apply(res, nodes, dirs)
    }

    /// Stops the unit (systemd kills what is left in it and removes its cgroup), resets it if
    /// it failed, then removes what systemd left (the v1 directories made by hand).
    pub fn remove(&self, paths: &[PathBuf], created: &[PathBuf]) -> Result<()> {
        let name = self.unit.name.clone();
        dbus::run(&format!("stop unit {name}"), || dbus::Systemd::connect()?.stop(&name))?;
        fs::remove(paths, created, false)
    }
}

/// `unified["memory.oom.group"]` is OOMPolicy, which systemd (v253+) takes only when the unit
/// starts (runc's Apply); the file is written after the start either way.
fn oom_policy(res: &LinuxResources, version: u32) -> Option<Property> {
    let v = res.unified().as_ref()?.get("memory.oom.group")?;
    let policy = match v.trim() {
        "0" => "continue",
        "1" => "kill",
        _ => return None,
    };
    (version >= 253).then(|| prop("OOMPolicy", Value::Str(policy.into()), "unified[\"memory.oom.group\"]"))
}

/// The device path of a whole disk `major:minor` on this host (/sys/dev/block/M:m without a
/// `partition` file); None for a partition or an unknown device.
fn whole_disk(major: i64, minor: i64) -> Option<String> {
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    if !sys.exists() || sys.join("partition").exists() {
        return None;
    }
    let uevent = std::fs::read_to_string(sys.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(format!("/dev/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_like_runc() {
        for (slice, path) in [
            ("system.slice", "/system.slice"),
            (
                "kubepods-besteffort-pod123.slice",
                "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice",
            ),
            ("-.slice", "/"),
        ] {
            assert_eq!(expand_slice(slice).as_deref(), Ok(path), "{slice}");
        }
        for bad in ["system", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroups_paths_parse_like_runc() {
        let u = parse(Some("kubepods-besteffort-pod123.slice:cri-containerd:abc"), "id").unwrap();
        assert_eq!(
            u,
            Unit { slice: "kubepods-besteffort-pod123.slice".into(), name: "cri-containerd-abc.scope".into() }
        );
        let u = parse(Some(":docker:abc"), "id").unwrap();
        assert_eq!(
            u,
            Unit { slice: "system.slice".into(), name: "docker-abc.scope".into() },
            "empty slice: system.slice"
        );
        let u = parse(None, "c1").unwrap();
        assert_eq!(u, Unit { slice: "system.slice".into(), name: "skiff-c1.scope".into() }, "no cgroupsPath");
        for (bad, why) in [
            ("/skiff/c1", "slice:prefix:name"),
            ("a.slice:b", "slice:prefix:name"),
            ("a.slice:b:c:d", "slice:prefix:name"),
            ("nope:p:n", "invalid slice name"),
            ("a.slice:p:", "empty"),
            ("a.slice:p:x.slice", "must be a scope"),
            ("a.slice:p:a+b", "does not allow '+'"),
        ] {
            let err = parse(Some(bad), "id").unwrap_err().to_string();
            assert!(err.contains("linux.cgroupsPath") && err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn paths_are_the_scope_under_its_slices() {
        let hs = super::super::hierarchy::parse_mountinfo(
            "31 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        let u = parse(Some("a-b.slice:p:c"), "id").unwrap();
        assert_eq!(plan_paths(&hs, &u), vec![PathBuf::from("/sys/fs/cgroup/a.slice/a-b.slice/p-c.scope")]);
    }
}
