//! On-disk container state under `--root`: one directory per container holding `state.json`
//! (written atomically: a temp file exchanged into place, see [`write_atomic`]) and the exec
//! fifo. A per-container flock on the directory serialises commands on one id. The status is
//! computed live from the system, never trusted from the file: a pid counts as the container's
//! only if its start time still matches.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, SysContext};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// A container's status as the OCI spec names it (plus `creating`, which runc also reports).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What skiff records about a container. The first fields are the OCI state; the rest is what
/// later commands need (hooks for start/delete, cgroup paths for delete even after a crash).
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    /// Field 22 of /proc/PID/stat of the init when it was recorded; guards against pid reuse.
    #[serde(default)]
    pub start_time: u64,
    pub rootfs: PathBuf,
    /// The container's cgroup directory in each hierarchy, recorded before they are made.
    #[serde(default)]
    pub cgroup_paths: Vec<PathBuf>,
    /// The directories skiff made for them (parents first), so delete removes exactly those.
    #[serde(default)]
    pub cgroup_created: Vec<PathBuf>,
    /// The systemd unit holding them (`--systemd-cgroup`); none under the cgroupfs driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_unit: Option<String>,
    /// The config the container was created from (hooks, process, namespaces for exec).
    pub config: oci_spec::runtime::Spec,
}

impl State {
    /// The container's cgroups, from the recorded paths.
    pub fn cgroup(&self) -> crate::cgroups::Cgroup {
        crate::cgroups::Cgroup::recorded(&self.cgroup_paths, &self.cgroup_created, self.cgroup_unit.as_deref())
    }

    /// The OCI state JSON handed to hooks and printed by `skiff state`.
    pub fn oci_json(&self, status: Status) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.as_str(),
            "pid": if matches!(status, Status::Stopped) { 0 } else { self.pid },
            "bundle": self.bundle,
            "annotations": self.annotations,
        })
    }
}

/// runc's rule for container ids: `^[\w+-\.]+$`, and not `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if id.is_empty() || !ok_chars || id == "." || id == ".." || id.len() > 1024 {
        return Err(Error::msg(format!("invalid container id {id:?}: use letters, digits and _ + - . only")));
    }
    Ok(())
}

/// The `--root` directory.
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn open(dir: &Path) -> Result<Root> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .ctx(|| format!("create state root {}", dir.display()))?;
        Ok(Root { dir: dir.to_path_buf() })
    }

    /// The default root (see [`crate::rootless::default_root`]). One under $XDG_RUNTIME_DIR gets
    /// the sticky bit, which keeps the XDG spec's periodic clean-up away from it (runc does the same).
    pub fn open_default() -> Result<Root> {
        let (dir, xdg) = crate::rootless::default_root();
        let root = Root::open(&dir)?;
        if xdg {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1700))
                .ctx(|| format!("chmod {} (the path in $XDG_RUNTIME_DIR must be the user's own)", dir.display()))?;
        }
        Ok(root)
    }

    /// Ids of every container directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir).ctx(|| format!("read {}", self.dir.display()))? {
            let entry = entry.ctx(|| format!("read {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) && validate_id(&name).is_ok() {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Makes a new container directory and locks it. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = self.dir.join(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // runc's text (libcontainer ErrExist), which callers match.
                return Err(Error::msg(format!("container with given ID already exists: {id}")));
            }
            Err(e) => return Err(Error::io(format!("create {}", dir.display()), e)),
        }
        // The mode must allow a non-root container user to reach the exec fifo (0622) inside.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711));
        let lock = File::open(&dir).ctx(|| format!("open {}", dir.display()))?;
        crate::sys::flock_exclusive(lock.as_fd()).ctx(|| format!("lock {}", dir.display()))?;
        Ok(Container { dir, id: id.to_string(), state: None, _lock: lock })
    }

    /// Opens and locks an existing container. A directory without a readable state.json is a
    /// container whose `create` died half-way: it loads with `state: None` so that
    /// `delete --force` can clean it up.
    pub fn load(&self, id: &str) -> Result<Container> {
        validate_id(id).map_err(|_| Error::NotExist(id.to_string()))?;
        let dir = self.dir.join(id);
        let lock = match File::open(&dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotExist(id.to_string())),
            Err(e) => return Err(Error::io(format!("open {}", dir.display()), e)),
        };
        crate::sys::flock_exclusive(lock.as_fd()).ctx(|| format!("lock {}", dir.display()))?;
        // A concurrent delete may have removed the directory while we waited for the lock.
        let held = lock.metadata().ctx(|| format!("stat {}", dir.display()))?;
        match std::fs::metadata(&dir) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {}
            _ => return Err(Error::NotExist(id.to_string())),
        }
        let state = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        Ok(Container { dir, id: id.to_string(), state, _lock: lock })
    }
}

/// A locked container directory. The lock is released when this is dropped.
pub struct Container {
    pub dir: PathBuf,
    pub id: String,
    pub state: Option<State>,
    _lock: File,
}

impl Container {
    /// The file holding this container's flock, borrowed.
    pub fn lock(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self._lock)
    }

    /// The fd holding this container's flock (children must close it).
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self._lock)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join(EXEC_FIFO)
    }

    /// The recorded state, or the error a half-created container gives.
    pub fn state(&self) -> Result<&State> {
        self.state.as_ref().ok_or_else(|| Error::msg(format!("container {:?} is still being created", self.id)))
    }

    /// Writes state.json atomically (temp file + exchange, see [`write_atomic`]). No fsync: the
    /// state root lives on tmpfs (/run) and does not outlive a reboot; what must hold is that a
    /// SIGKILL at any moment leaves either the old or the new file, which the exchange gives.
    /// (fsync cost ~2 ms per write on ext4, three writes per container.)
    pub fn save(&mut self, state: State) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let bytes = serde_json::to_vec(&state).map_err(|e| Error::msg(format!("encode state: {e}")))?;
        write_atomic(&tmp, &self.dir.join(STATE_FILE), &bytes, false)?;
        self.state = Some(state);
        Ok(())
    }

    /// The live status: from the process table and the exec fifo, not from the file.
    pub fn status(&self) -> Status {
        let Some(state) = &self.state else { return Status::Creating };
        if state.pid <= 0 {
            return if state.status == Status::Creating { Status::Creating } else { Status::Stopped };
        }
        if !process_alive(state.pid, state.start_time) {
            return Status::Stopped;
        }
        if state.status == Status::Creating {
            return Status::Creating;
        }
        if self.fifo_path().exists() {
            return Status::Created;
        }
        if state.cgroup().is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// Removes the container directory and everything in it.
    pub fn remove_dir(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", self.dir.display()), e)),
        }
    }
}

/// Writes `bytes` to `tmp` and puts it in place of `dst`, so readers see the old or the new file,
/// never a part. With `durable`, fsyncs the file and the directory too.
///
/// Without `durable` an existing `dst` is swapped with `tmp` (renameat2 RENAME_EXCHANGE) and the
/// old file, now at `tmp`, unlinked, rather than renamed over: ext4 (auto_da_alloc) starts
/// writing the new file out at a rename that replaces one, for programs that count on rename
/// without fsync being durable. Skiff's state needs no durability (it must not outlive a
/// reboot), and that write-back made the rename wait for the disk under load (12-28 ms seen) and,
/// worse, `delete`'s unlink of state.json wait for the I/O to finish (up to 230 ms under load);
/// a file that was never written out is unlinked without any I/O. A crash between the exchange
/// and the unlink leaves the old file at `tmp`, which the next write truncates or `delete`
/// removes with the directory.
pub fn write_atomic(tmp: &Path, dst: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
    if durable {
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    }
    drop(f);
    let rename = || std::fs::rename(tmp, dst).ctx(|| format!("rename {} to {}", tmp.display(), dst.display()));
    if durable {
        rename()?;
        if let Some(d) = dst.parent().and_then(|p| File::open(p).ok()) {
            let _ = d.sync_all();
        }
        return Ok(());
    }
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, tmp, None, dst, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => std::fs::remove_file(tmp).ctx(|| format!("remove the old {} (at {})", dst.display(), tmp.display())),
        // No `dst` yet: nothing is replaced, so a plain rename starts no write-back. EINVAL: a
        // filesystem that cannot exchange.
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EINVAL) => rename(),
        Err(e) => Err(Error::sys(format!("exchange {} and {}", tmp.display(), dst.display()), e)),
    }
}

/// Field 22 (starttime) and field 3 (state) of /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields restart after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After ')' come fields 3..; starttime is field 22, i.e. the 20th from here.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// True if `pid` is alive, not a zombie, and started at `start_time` (when one was recorded).
pub fn process_alive(pid: i32, start_time: u64) -> bool {
    match proc_stat(pid) {
        Some((state, start)) => state != 'Z' && state != 'X' && (start_time == 0 || start == start_time),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rule() {
        for ok in ["a", "abc-1_2.3+x", "A"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("skiff-write-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tmp, dst) = (dir.join(".f.tmp"), dir.join("f"));
        for (i, text) in ["first", "second, longer", "3"].iter().enumerate() {
            write_atomic(&tmp, &dst, text.as_bytes(), i == 2).unwrap();
            assert_eq!(std::fs::read_to_string(&dst).unwrap(), *text);
            assert!(!tmp.exists(), "write {i} left {}", tmp.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_our_own_start_time() {
        let me = std::process::id() as i32;
        let (state, start) = proc_stat(me).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1), "a different start time is a different process");
    }
}
