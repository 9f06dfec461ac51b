//! What the tests observe on the host from outside a container: /proc entries of pids, namespaces,
//! mounts, the device programs attached to a cgroup. Also the one host mount a test may make
//! (`TmpfsMount`), always undone by its Drop. Nothing here talks to the runtime.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long any wait for the runtime or a container may take before the test fails. Generous: this
/// only turns a hang into a failure, it asserts nothing about speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// True when /sys/fs/cgroup is cgroup2 alone (runc's `IsCgroup2UnifiedMode`).
pub fn cgroup2_unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// runc's `spec` template as this host gets it: a cgroup v2 host adds a cgroup namespace after
/// mount (before the user namespace of the rootless variant).
pub fn spec_template_for_this_host(template: &mut serde_json::Value) {
    if !cgroup2_unified() {
        return;
    }
    if let Some(list) = template["linux"]["namespaces"].as_array_mut() {
        let at = list.iter().position(|n| n["type"] == "user").unwrap_or(list.len());
        list.insert(at, serde_json::json!({"type": "cgroup"}));
    }
}

/// Polls `probe` until it returns `Some`, panicking with `what` after [`PATIENCE`].
#[track_caller]
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {PATIENCE:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The one-letter state from /proc/PID/stat ('R', 'S', 'Z', ...), or None if there is no such pid.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm field is in parentheses and may contain spaces; the state follows the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.trim_start().chars().next()
}

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

/// argv of `pid` as /proc/PID/cmdline shows it.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

/// A `Key:` line of /proc/PID/status, value trimmed.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')).map(|v| v.trim().to_string()))
}

/// True if `pid` has a handler installed for signal number `signo` (SigCgt in /proc/PID/status).
pub fn catches_signal(pid: i32, signo: i32) -> bool {
    status_field(pid, "SigCgt")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|mask| mask & (1u64 << (signo - 1)) != 0)
}

/// The namespace link of `pid` for `kind` ("mnt", "uts", ...), e.g. `mnt:[4026531832]`.
pub fn namespace(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"))
}

/// Mount points (as this process sees them) at or below `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mount_path(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Lazily detaches every mount at or below `dir`, so removing `dir` can never descend into a mount.
pub fn detach_mounts_under(dir: &Path) {
    for m in mounts_under(dir) {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                out.push(d.iter().fold(0u8, |acc, c| acc.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A tmpfs mounted on the host at `path` for the life of the guard (used to give a bind-mount
/// source a submount). Drop detaches it even when the test panics.
pub struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    pub fn new(path: &Path) -> TmpfsMount {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        nix::mount::mount(Some("tmpfs"), path, Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=1m"))
            .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", path.display()));
        TmpfsMount { path: path.to_path_buf() }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The ids of the BPF_PROG_TYPE_CGROUP_DEVICE programs attached to the cgroup v2 directory
/// `cgroup` itself (BPF_PROG_QUERY; bpftool is not everywhere). Panics if the query fails.
pub fn cgroup_device_programs(cgroup: &Path) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    // The BPF_PROG_QUERY part of union bpf_attr.
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }
    const BPF_PROG_QUERY: libc::c_long = 16;
    const BPF_CGROUP_DEVICE: u32 = 6;
    let dir = std::fs::File::open(cgroup).unwrap_or_else(|e| panic!("open {}: {e}", cgroup.display()));
    // A cgroup holds at most 64 programs per attach type.
    let mut ids = [0u32; 64];
    let mut q = Query {
        target_fd: dir.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
    };
    // SAFETY: `q` is a repr(C) prefix of union bpf_attr for BPF_PROG_QUERY; prog_ids points at
    // `ids`, which has room for prog_cnt u32s and outlives the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_QUERY, &mut q as *mut Query, std::mem::size_of::<Query>()) };
    assert!(ret == 0, "BPF_PROG_QUERY {}: {}", cgroup.display(), std::io::Error::last_os_error());
    ids[..q.prog_cnt as usize].to_vec()
}

/// The directories of the cgroup `path` (e.g. `/skiff-it/x`) that exist now: on a v2 host the one
/// under /sys/fs/cgroup, on a v1 or hybrid host one per hierarchy mounted below it.
pub fn cgroup_dirs_of(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs: Vec<_> = std::iter::once(root.join(rel))
        .chain(std::fs::read_dir(root).into_iter().flatten().flatten().map(|e| e.path().join(rel)))
        .filter(|d| d.is_dir())
        .collect();
    dirs.dedup();
    dirs
}

/// `systemctl ARGS...` on a host whose pid 1 is systemd; its stdout, or None if it failed (or
/// there is no systemctl).
pub fn systemctl(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("systemctl").args(args).stderr(std::process::Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `systemctl show UNIT -p NAME`'s value (for a unit systemd does not know: LoadState is
/// "not-found" and the rest are defaults).
pub fn unit_property(unit: &str, name: &str) -> String {
    let out = systemctl(&["show", unit, "-p", name]).unwrap_or_default();
    out.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('='))).unwrap_or("").to_string()
}

/// Where a cgroup controller lives on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// A v1 hierarchy mounted at this path (its root cgroup).
    V1(PathBuf),
    /// The v2 hierarchy mounted at this path lists it in cgroup.controllers.
    V2(PathBuf),
}

impl Hierarchy {
    pub fn root(&self) -> &Path {
        match self {
            Hierarchy::V1(p) | Hierarchy::V2(p) => p,
        }
    }
}

/// The hierarchy that holds `controller` ("memory", "cpu", "hugetlb"...): a v1 mount naming it in
/// its options wins (as runtimes prefer it on a hybrid host), else the v2 mount listing it; None
/// if no hierarchy has it. Read from /proc/self/mountinfo, so it is known before anything runs.
pub fn cgroup_hierarchy(controller: &str) -> Option<Hierarchy> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut v2 = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let mount = match left.split(' ').nth(4) {
            Some(m) => PathBuf::from(unescape_mount_path(m)),
            None => continue,
        };
        let mut fields = right.split(' ');
        match (fields.next(), fields.nth(1)) {
            (Some("cgroup"), Some(opts)) if opts.split(',').any(|o| o == controller) => {
                return Some(Hierarchy::V1(mount));
            }
            (Some("cgroup2"), _) if v2.is_none() => {
                let listed = std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
                if listed.split_whitespace().any(|c| c == controller) {
                    v2 = Some(Hierarchy::V2(mount));
                }
            }
            _ => {}
        }
    }
    v2
}

/// Sets the extended attribute `name` of `path` itself (lsetxattr: a symlink is not followed).
#[track_caller]
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    let n = std::ffi::CString::new(name).expect("name without NUL");
    // SAFETY: both strings are NUL-terminated and live; value's pointer and length describe a
    // live slice the kernel only reads.
    let ret = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert!(ret == 0, "lsetxattr {} {name}: {}", path.display(), std::io::Error::last_os_error());
}

/// The value of the extended attribute `name` of `path` itself, or None if it has none.
pub fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: both strings are NUL-terminated and live; the kernel writes at most buf.len() bytes
    // into the live buffer.
    let ret = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        return None;
    }
    buf.truncate(ret as usize);
    Some(buf)
}

/// A file system of its own for a crash test: an ext4 image on a loop device, mounted at
/// `mnt` with a journal commit every second, so that metadata reaches the disk within a second
/// while file data (delayed allocation) waits for writeback (30 s). [`ScratchFs::power_cut`]
/// then makes the disk what a power loss would have left. Unmounted when dropped.
pub struct ScratchFs {
    pub image: PathBuf,
    pub mnt: PathBuf,
}

impl ScratchFs {
    /// Makes and mounts the file system; the reason where the host cannot.
    pub fn new(image: &Path, mnt: &Path, mib: u64) -> Result<ScratchFs, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("a loop device and mount need root".into());
        }
        std::fs::File::create(image)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| format!("make {}: {e}", image.display()))?;
        let out =
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image).output().map_err(|e| format!("mkfs.ext4: {e}"))?;
        if !out.status.success() {
            return Err(format!("mkfs.ext4: {}", String::from_utf8_lossy(&out.stderr)));
        }
        std::fs::create_dir_all(mnt).map_err(|e| format!("mkdir {}: {e}", mnt.display()))?;
        let fs = ScratchFs { image: image.to_path_buf(), mnt: mnt.to_path_buf() };
        fs.mount()?;
        Ok(fs)
    }

    fn mount(&self) -> Result<(), String> {
        let out = Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,commit=1"])
            .arg(&self.image)
            .arg(&self.mnt)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -o loop {}: {}", self.image.display(), String::from_utf8_lossy(&out.stderr)));
        }
        Ok(())
    }

    /// A power cut: the file system is shut down without writing anything more (ext4's
    /// FS_IOC_SHUTDOWN with NOLOGFLUSH, as xfstests' godown does), so what was not on the disk
    /// is lost (file data still in the page cache, the journal's open transaction); then it is
    /// unmounted and mounted again, replaying the journal as a boot would.
    #[track_caller]
    pub fn power_cut(&self) {
        use std::os::fd::AsRawFd;
        // _IOR('X', 125, __u32) and EXT4_GOING_FLAGS_NOLOGFLUSH
        const FS_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587d;
        let flags: u32 = 0x2;
        let d = std::fs::File::open(&self.mnt).expect("open the mount point");
        // SAFETY: a valid fd of the open directory; the kernel reads one u32 from a live local.
        let ret = unsafe { libc::ioctl(d.as_raw_fd(), FS_IOC_SHUTDOWN as _, &flags as *const u32) };
        assert!(ret == 0, "shut down {}: {}", self.mnt.display(), std::io::Error::last_os_error());
        drop(d);
        let st = Command::new("umount").arg(&self.mnt).status().expect("run umount");
        assert!(st.success(), "umount {} after the shutdown", self.mnt.display());
        self.mount().expect("mount the file system again");
    }
}

impl Drop for ScratchFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        // mountinfo writes a space in a mount point as \040.
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path(r"/end\"), r"/end\");
    }

    #[test]
    fn proc_state_of_self_is_running() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(cmdline(me).is_some_and(|c| !c.is_empty()));
    }
}
