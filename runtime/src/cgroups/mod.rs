//! A container's cgroups behind one handle, [`Cgroup`]: the only way the rest of skiff touches
//! them. Its directories are planned as data first (runc's reading of `linux.cgroupsPath`, one
//! per hierarchy on a v1 or hybrid host, one on v2), so `create` can record them before it makes
//! them and `delete --force` can clean up after a crash; then the handle makes and joins them,
//! applies `linux.resources`, freezes, lists processes, reads stats and removes them. How the
//! directories are made, joined, limited and removed is its [`Driver`]'s business: cgroupfs, or
//! systemd (`--systemd-cgroup`, a transient scope unit; see [`systemd`]).

pub mod devices;
mod fs;
mod hierarchy;
pub mod oom;
mod resources;
pub mod rootless;
pub mod stats;
pub mod systemd;

use std::cell::OnceCell;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;

pub use fs::Lock;
pub use hierarchy::{Dirs, Hierarchy};

use crate::error::Result;

/// Who makes, joins and removes a container's cgroups: skiff writing cgroupfs itself, or
/// systemd, asked for a transient scope (create and join in one StartTransientUnit, the
/// resources systemd knows as unit properties, StopUnit at remove), which shares the file
/// operations for the rest: freeze, pids, stats and what systemd has no property for.
#[derive(Debug, Clone)]
pub enum Driver {
    Cgroupfs,
    // Boxed: it carries the resources the unit starts with.
    Systemd(Box<systemd::Scope>),
}

/// A container's cgroups: its directories, which of them skiff made, and the driver.
#[derive(Debug, Clone)]
pub struct Cgroup {
    driver: Driver,
    /// The container's directory in each hierarchy, in hierarchy order (what state.json records).
    paths: Vec<PathBuf>,
    /// The directories skiff makes (or made) for it, parents first.
    created: Vec<PathBuf>,
    /// `paths` paired with their hierarchies: known at planning; for a recorded container, paired
    /// by mount point when first needed (freeze, pids and remove need only the paths).
    dirs: OnceCell<Dirs>,
}

impl Cgroup {
    /// Plans a new container's cgroups (runc's rules; see [`hierarchy::plan`], or
    /// [`systemd::parse`] with `systemd`). Makes nothing: record [`Cgroup::paths`],
    /// [`Cgroup::created`] and [`Cgroup::unit`] first, then [`Cgroup::create`].
    pub fn plan(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Cgroup> {
        if systemd {
            let unit = systemd::parse(cgroups_path, id)?;
            let hs = hierarchy::hierarchies();
            let paths = systemd::plan_paths(&hs, &unit);
            let dirs = Dirs::recorded(&hs, &paths);
            // The scope's directories are the container's own, made for it (by systemd).
            let driver = Driver::Systemd(Box::new(systemd::Scope::new(unit, id)));
            return Ok(Cgroup { driver, created: paths.clone(), paths, dirs: OnceCell::from(dirs) });
        }
        let dirs = hierarchy::plan(cgroups_path, id);
        let paths = dirs.paths();
        let created = fs::missing_dirs(&paths);
        Ok(Cgroup { driver: Driver::Cgroupfs, paths, created, dirs: OnceCell::from(dirs) })
    }

    /// Rootless: leaves out the hierarchies where this user cannot make the container's
    /// directory and move a process into it ([`rootless::usable`]). Returns them, as planned.
    pub fn leave_out_unusable(&mut self) -> Dirs {
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let (kept, left_out) = self.dirs().split(|h, leaf| rootless::usable(h, leaf, &proc_cgroup));
        self.paths = kept.paths();
        self.created = fs::missing_dirs(&self.paths);
        self.dirs = OnceCell::from(kept);
        left_out
    }

    /// The cgroups of an existing container, from the paths its state recorded (and its unit,
    /// when systemd made them).
    pub fn recorded(paths: &[PathBuf], created: &[PathBuf], unit: Option<&str>) -> Cgroup {
        let driver = match unit {
            Some(name) => Driver::Systemd(Box::new(systemd::Scope::recorded(name))),
            None => Driver::Cgroupfs,
        };
        Cgroup { driver, paths: paths.to_vec(), created: created.to_vec(), dirs: OnceCell::new() }
    }

    /// Under the systemd driver, the unit of a container being created gets the properties of
    /// the config's `org.systemd.property.*` annotations (runc's reading; refused by key when one
    /// cannot be read). The cgroupfs driver has no unit: the annotations are left to whoever
    /// reads them, as runc leaves them.
    pub fn annotate(&self, annotations: &std::collections::HashMap<String, String>) -> Result<()> {
        match &self.driver {
            Driver::Cgroupfs => Ok(()),
            Driver::Systemd(s) => s.annotate(annotations),
        }
    }

    /// The systemd unit the container is in, if systemd made its cgroups.
    pub fn unit(&self) -> Option<&str> {
        match &self.driver {
            Driver::Cgroupfs => None,
            Driver::Systemd(s) => Some(&s.unit.name),
        }
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    pub fn created(&self) -> &[PathBuf] {
        &self.created
    }

    /// Each directory with its hierarchy.
    pub fn dirs(&self) -> &Dirs {
        self.dirs.get_or_init(|| Dirs::recorded(&hierarchy::hierarchies(), &self.paths))
    }

    /// True when skiff made every directory of the container (not a `cgroupsPath` that existed
    /// before, shared with others): then its processes may be killed through the cgroup.
    pub fn is_own(&self) -> bool {
        !self.paths.is_empty() && self.paths.iter().all(|p| self.created.contains(p))
    }

    /// Makes the planned directories (systemd makes its scope's when the first process joins).
    pub fn create(&self) -> Result<()> {
        match &self.driver {
            Driver::Cgroupfs => fs::create(&self.created),
            Driver::Systemd(_) => Ok(()),
        }
    }

    /// Moves `pid` into the container's cgroups (under systemd the first join starts the unit).
    pub fn join(&self, pid: i32) -> Result<()> {
        match &self.driver {
            Driver::Cgroupfs => fs::join(&self.paths, pid),
            Driver::Systemd(s) => s.join(pid, self.dirs()),
        }
    }

    /// True when the container's first process moves itself into the cgroups
    /// ([`Cgroup::join_self`]); false when skiff must move it by pid ([`Cgroup::join`]): systemd
    /// is given the pid the scope starts with.
    pub fn joined_from_inside(&self) -> bool {
        matches!(self.driver, Driver::Cgroupfs)
    }

    /// The v2 directory, opened for a fork straight into it (CLONE_INTO_CGROUP), when the
    /// process joins from inside and the host has a unified hierarchy.
    pub fn open_unified(&self) -> Option<std::fs::File> {
        let (_, dir) = self.dirs().unified().filter(|_| self.joined_from_inside())?;
        std::fs::File::open(dir).ok()
    }

    /// Moves the calling, single-threaded process into the container's cgroups (cgroupfs only;
    /// see [`fs::join_self`]); `in_v2`: it was forked into the v2 one already.
    pub fn join_self(&self, in_v2: bool) -> Result<()> {
        fs::join_self(self.dirs(), in_v2)
    }

    /// Applies `linux.resources`; `nodes` are the rules that let the container use its device
    /// nodes, allowed after the config's device rules. Checked before anything is written.
    pub fn apply(&self, res: &LinuxResources, nodes: &[devices::Rule]) -> Result<()> {
        match &self.driver {
            Driver::Cgroupfs => resources::apply(res, nodes, self.dirs()),
            Driver::Systemd(s) => s.apply(res, nodes, self.dirs()),
        }
    }

    /// Whether new device rules can replace the old ones whole (one swap of the eBPF program on
    /// v2). A v1 devices cgroup can only be rewritten rule by rule (deny-all first: /dev/null
    /// would fail for a moment, and "a" is refused once the container has made sub-cgroups).
    pub fn can_replace_device_rules(&self) -> bool {
        self.dirs().v1("devices").is_none()
    }

    pub fn is_frozen(&self) -> bool {
        fs::is_frozen(&self.paths)
    }

    /// Freezes every process of the container and waits until the kernel says it is done.
    pub fn freeze(&self) -> Result<()> {
        fs::set_frozen(&self.paths, true)
    }

    /// Thaws the container and waits until the kernel says it is done.
    pub fn thaw(&self) -> Result<()> {
        fs::set_frozen(&self.paths, false)
    }

    /// The host pids of the processes in the container's cgroup.
    pub fn pids(&self) -> Vec<i32> {
        fs::pids(&self.paths)
    }

    /// The container's resource usage, and the network interfaces of `netns_pid` (the init,
    /// when it has its own network namespace).
    pub fn stats(&self, netns_pid: Option<i32>) -> stats::Stats {
        stats::read_all(self.dirs(), netns_pid)
    }

    /// A watch on the OOM killer's hits in the container; None without a memory controller.
    pub fn oom_watch(&self) -> Result<Option<oom::OomWatch>> {
        oom::OomWatch::open(self.dirs())
    }

    /// Removes the container's cgroups (see [`fs::remove`]: a directory someone else's process
    /// is still in stays, and says so). `seen_empty`: [`Cgroup::pids`] has just found no process
    /// in them (systemd's stop comes in between, so its driver looks again).
    pub fn remove(&self, seen_empty: bool) -> Result<()> {
        match &self.driver {
            Driver::Cgroupfs => fs::remove(&self.paths, &self.created, seen_empty),
            Driver::Systemd(s) => s.remove(&self.paths, &self.created),
        }
    }
}
