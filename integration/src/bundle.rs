//! A throwaway OCI bundle: a busybox rootfs plus a config.json taken from spec-fixtures/bundles/
//! and edited as JSON. Each bundle gets its own cgroup (`linux.cgroupsPath = /skiff-it/<unique>`,
//! or under [`crate::systemd_cgroup`] the scope `skiff-it.slice:it:<unique>`); Drop kills whatever
//! is left in that cgroup, removes it (stops the unit) and the bundle directory.
//! It never runs the runtime.

use serde_json::Value;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where the harness puts every container's cgroup, below each hierarchy's root.
pub const CGROUP_PARENT: &str = "skiff-it";

/// The slice of every container's scope under the systemd driver: /skiff.slice/skiff-it.slice.
pub const SYSTEMD_SLICE: &str = "skiff-it.slice";

/// The harness's parent cgroup of every container, from each hierarchy's root.
pub fn cgroup_parent() -> String {
    if crate::systemd_cgroup() {
        "/skiff.slice/skiff-it.slice".to_string()
    } else {
        format!("/{CGROUP_PARENT}")
    }
}

/// The host's static busybox, copied into every rootfs.
const BUSYBOX: &str = "/bin/busybox";

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          user:x:1000:1000:user:/home/user:/bin/sh\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
pub const GROUP: &str = "root:x:0:\nwheel:x:10:user\nuser:x:1000:\nnogroup:x:65534:\n";

pub struct Bundle {
    dir: tempfile::TempDir,
    dir_str: String,
    config: Value,
    cgroup_name: String,
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

impl Bundle {
    /// A bundle from `spec-fixtures/bundles/default.json` (runc's `spec` with terminal off).
    pub fn new() -> Bundle {
        Bundle::from_fixture("default")
    }

    /// A bundle from `spec-fixtures/bundles/NAME.json`.
    pub fn from_fixture(name: &str) -> Bundle {
        let path = fixture_path(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()));
        let config: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()));
        let dir =
            tempfile::Builder::new().prefix("skiff-it-bundle-").tempdir_in("/tmp").expect("create bundle temp dir");
        let dir_str = dir.path().to_str().expect("utf-8 temp path").to_string();
        let mut bundle = Bundle { dir, dir_str, config, cgroup_name: crate::unique_name("cg") };
        build_rootfs(&bundle.rootfs());
        let cgroups_path = bundle.cgroups_path();
        bundle.edit(|c| c["linux"]["cgroupsPath"] = Value::String(cgroups_path));
        bundle
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        &self.dir_str
    }

    /// `<bundle>/rootfs` on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// The config as last written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Changes the config and rewrites config.json at once, so the file always matches.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Bundle {
        f(&mut self.config);
        let text = serde_json::to_vec_pretty(&self.config).expect("serialize config");
        std::fs::write(self.path().join("config.json"), text).expect("write config.json");
        self
    }

    /// Takes config.json as it is on disk now (written by the runtime's `spec`, say) as the config
    /// later edits start from.
    pub fn reload(&mut self) -> &mut Bundle {
        let path = self.path().join("config.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.config = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        self
    }

    /// Sets `process.args`.
    pub fn args(&mut self, args: &[&str]) -> &mut Bundle {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        self.edit(|c| c["process"]["args"] = Value::Array(args))
    }

    /// Sets `process.args` to `sh -c SCRIPT`.
    pub fn sh(&mut self, script: &str) -> &mut Bundle {
        self.args(&["sh", "-c", script])
    }

    /// Appends an entry to `mounts`.
    pub fn mount(&mut self, mount: Value) -> &mut Bundle {
        self.edit(|c| c["mounts"].as_array_mut().expect("mounts is an array").push(mount))
    }

    /// Removes the namespace of type `kind` from `linux.namespaces`.
    pub fn without_namespace(&mut self, kind: &str) -> &mut Bundle {
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("linux.namespaces is an array")
                .retain(|ns| ns["type"] != kind)
        })
    }

    /// Adds a namespace of type `kind` to `linux.namespaces`.
    pub fn with_namespace(&mut self, kind: &str) -> &mut Bundle {
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("linux.namespaces is an array")
                .push(serde_json::json!({ "type": kind }))
        })
    }

    /// Replaces config.json with raw bytes (for malformed-config tests). `config()` is unchanged.
    pub fn write_raw_config(&self, bytes: &[u8]) {
        std::fs::write(self.path().join("config.json"), bytes).expect("write config.json");
    }

    /// The `linux.cgroupsPath` this bundle was given: `/skiff-it/<unique>`, or
    /// `skiff-it.slice:it:<unique>` under the systemd driver.
    pub fn cgroups_path(&self) -> String {
        if crate::systemd_cgroup() {
            format!("{SYSTEMD_SLICE}:it:{}", self.cgroup_name)
        } else {
            format!("/{CGROUP_PARENT}/{}", self.cgroup_name)
        }
    }

    /// The container's cgroup from each hierarchy's root: the cgroupsPath, or the scope's place
    /// under its slices (`/skiff.slice/skiff-it.slice/it-<unique>.scope`).
    pub fn cgroup_rel(&self) -> String {
        match self.unit() {
            Some(unit) => format!("{}/{unit}", cgroup_parent()),
            None => self.cgroups_path(),
        }
    }

    /// The systemd unit of the container under the systemd driver.
    pub fn unit(&self) -> Option<String> {
        crate::systemd_cgroup().then(|| format!("it-{}.scope", self.cgroup_name))
    }

    /// This bundle's cgroup directories that exist now, in every mounted hierarchy.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        crate::host::cgroup_dirs_of(&self.cgroup_rel())
    }

    /// The content of the first of `names` (cgroup files, e.g. `pids.max` or `pids.limit`) found
    /// in one of this bundle's cgroup directories, trimmed.
    #[track_caller]
    pub fn cgroup_value(&self, names: &[&str]) -> String {
        for dir in self.cgroup_dirs() {
            for name in names {
                if let Ok(v) = std::fs::read_to_string(dir.join(name)) {
                    return v.trim().to_string();
                }
            }
        }
        panic!("none of {names:?} in the cgroups of {} ({:?})", self.cgroup_rel(), self.cgroup_dirs());
    }

    /// Every pid in this bundle's cgroups.
    pub fn cgroup_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .cgroup_dirs()
            .iter()
            .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .flat_map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Normally the runtime removed the cgroup already; this catches tests that failed midway.
        // Only pids in this bundle's own cgroup are killed: nothing else can be in it.
        if let Some(unit) = self.unit() {
            crate::host::systemctl(&["stop", &unit]);
            crate::host::systemctl(&["reset-failed", &unit]);
        }
        for _ in 0..100 {
            let pids = self.cgroup_pids();
            for pid in &pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
            }
            let dirs = self.cgroup_dirs();
            for d in &dirs {
                let _ = std::fs::remove_dir(d);
            }
            if dirs.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        crate::host::detach_mounts_under(self.dir.path());
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    crate::workspace_dir().join(format!("spec-fixtures/bundles/{name}.json"))
}

/// Applets of the host busybox with their install directory (`bin`, `sbin`, `usr/bin`, ...).
fn applets() -> &'static [(String, String)] {
    static APPLETS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = std::process::Command::new(BUSYBOX)
            .arg("--list-full")
            .output()
            .unwrap_or_else(|e| panic!("{BUSYBOX} --list-full: {e}"));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (dir, name) = l.trim().rsplit_once('/')?;
                Some((dir.to_string(), name.to_string()))
            })
            .filter(|(_, name)| name != "busybox")
            .collect()
    })
}

/// rootfs/bin/busybox with every applet linked in /bin (and in /sbin for the sbin ones), an
/// /etc/passwd and /etc/group with root and `user` (1000:1000), and the empty mount points.
fn build_rootfs(rootfs: &Path) {
    for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir in rootfs");
    }
    std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777)).expect("chmod rootfs/tmp");
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap_or_else(|e| panic!("copy {BUSYBOX}: {e}"));
    for (dir, name) in applets() {
        let _ = symlink("busybox", rootfs.join("bin").join(name));
        if dir.ends_with("sbin") {
            let _ = symlink("/bin/busybox", rootfs.join("sbin").join(name));
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), PASSWD).expect("write passwd");
    std::fs::write(rootfs.join("etc/group"), GROUP).expect("write group");
}
