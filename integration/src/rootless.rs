//! A throwaway unprivileged user for the rootless tests, made as a CI machine would make one:
//! `useradd` (Debian's also gives it /etc/subuid and /etc/subgid ranges, SUB_UID_COUNT in
//! login.defs), a private `$XDG_RUNTIME_DIR` as logind would make it, copies of the binaries
//! under test where it can run them, and commands run as it. Dropping a [`User`] ends its
//! processes (by pid: every process running as the user or as one of its subordinate ids is one
//! the test started), then removes the user with its home, ranges, runtime directory and
//! binaries, also when the test failed. Names are unique per test process and test.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `$PATH` of the user's commands.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Its `$XDG_RUNTIME_DIR`, /run/user/UID.
    pub runtime_dir: PathBuf,
    /// Its range in /etc/subuid and /etc/subgid (start, count), if it was given them.
    pub subuid: Option<(u32, u32)>,
    pub subgid: Option<(u32, u32)>,
    /// Root-owned, world-readable copies of the binaries the user runs.
    bin: PathBuf,
}

/// Why this host cannot run the rootless tests, if it cannot.
fn unsupported(subids: bool) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the rootless tests make a user: run them as root".into());
    }
    for tool in ["useradd", "userdel", "newuidmap", "newgidmap"] {
        if !crate::engines::have(tool) {
            return Some(format!("{tool} is not installed (make deps installs passwd and uidmap)"));
        }
    }
    if subids && !Path::new("/etc/login.defs").exists() {
        return Some("no /etc/login.defs: useradd gives no subordinate ids".into());
    }
    let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
    if max.trim() == "0" {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    None
}

impl User {
    /// A new user with subordinate uid and gid ranges (`subids`) or without any (then only a
    /// single-id map of its own ids is open to it). None, after a skip, where this host cannot.
    pub fn new(subids: bool) -> Option<User> {
        if let Some(why) = unsupported(subids) {
            crate::skip(why);
            return None;
        }
        // useradd names: at most 32 characters, no leading digit
        let name = crate::unique_name("skrl").replace('-', "x");
        let mut cmd = Command::new("useradd");
        cmd.args(["--create-home", "--shell", "/bin/sh", "--user-group"]);
        if !subids {
            cmd.args(["-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0"]);
        }
        cmd.arg(&name);
        // useradd fails while another one holds /etc/passwd's lock: try again
        let mut last = String::new();
        let made = (0..50).any(|_| match cmd.output() {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                last = String::from_utf8_lossy(&o.stderr).into_owned();
                std::thread::sleep(std::time::Duration::from_millis(100));
                false
            }
            Err(e) => panic!("run useradd: {e}"),
        });
        assert!(made, "useradd {name}: {last}");
        let entry = nix::unistd::User::from_name(&name).ok().flatten();
        let entry = entry.unwrap_or_else(|| panic!("useradd made no user {name}"));
        let uid = entry.uid.as_raw();
        let bin = PathBuf::from(format!("/tmp/{name}-bin"));
        let mut user = User {
            name: name.clone(),
            uid,
            gid: entry.gid.as_raw(),
            home: entry.dir,
            runtime_dir: PathBuf::from(format!("/run/user/{uid}")),
            subuid: subid_range("/etc/subuid", &name),
            subgid: subid_range("/etc/subgid", &name),
            bin,
        };
        if subids && (user.subuid.is_none() || user.subgid.is_none()) {
            // A useradd that gives none by itself: ask for ranges explicitly.
            let base = 200_000 + (uid % 10_000) * 65_536;
            let range = format!("{base}-{}", base + 65_535);
            let out = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, &name])
                .output()
                .expect("run usermod");
            assert!(out.status.success(), "usermod --add-subuids: {}", String::from_utf8_lossy(&out.stderr));
            user.subuid = subid_range("/etc/subuid", &name);
            user.subgid = subid_range("/etc/subgid", &name);
        }
        std::fs::create_dir_all(&user.runtime_dir).expect("mkdir runtime dir");
        std::os::unix::fs::chown(&user.runtime_dir, Some(uid), Some(user.gid)).expect("chown runtime dir");
        set_mode(&user.runtime_dir, 0o700);
        std::fs::create_dir_all(&user.bin).expect("mkdir bin");
        set_mode(&user.bin, 0o755);
        Some(user)
    }

    /// A copy of `binary` the user can run (the workspace may be where it cannot reach),
    /// with the same file name.
    pub fn install(&self, binary: &Path) -> PathBuf {
        let dst = self.bin.join(binary.file_name().expect("binary has a file name"));
        std::fs::copy(binary, &dst).unwrap_or_else(|e| panic!("copy {} to {}: {e}", binary.display(), dst.display()));
        set_mode(&dst, 0o755);
        dst
    }

    /// Makes `path` and everything below it the user's (a bundle, a build context).
    pub fn give(&self, path: &Path) {
        let out = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .output()
            .expect("run chown");
        assert!(out.status.success(), "chown -R {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }

    /// `program` run as the user, with the environment a login gives it (HOME, USER, LOGNAME,
    /// XDG_RUNTIME_DIR, PATH) and nothing else, in its home directory.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        // std drops the supplementary groups (setgroups(0)) before setuid when run by root.
        cmd.uid(self.uid).gid(self.gid);
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("XDG_RUNTIME_DIR", &self.runtime_dir)
            .env("PATH", PATH)
            .current_dir(&self.home);
        cmd
    }

    /// The host pids running as the user or as one of its subordinate uids.
    pub fn pids(&self) -> Vec<i32> {
        let mine =
            |uid: u32| uid == self.uid || self.subuid.is_some_and(|(start, count)| uid >= start && uid - start < count);
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .filter(|pid| {
                crate::host::status_field(*pid, "Uid")
                    .and_then(|v| v.split_whitespace().next().and_then(|u| u.parse::<u32>().ok()))
                    .is_some_and(mine)
            })
            .collect()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        for _ in 0..100 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        crate::host::detach_mounts_under(&self.home);
        crate::host::detach_mounts_under(&self.runtime_dir);
        for _ in 0..50 {
            match Command::new("userdel").args(["--remove", "--force", &self.name]).output() {
                // 6: no such user (gone already); 12: the home could not be removed (done below)
                Ok(o) if o.status.success() || matches!(o.status.code(), Some(6 | 12)) => break,
                // 10: /etc/passwd is locked by another useradd/userdel: try again
                _ => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.home);
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        let _ = std::fs::remove_dir_all(&self.bin);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// `name`'s first range in an /etc/subuid-style file.
fn subid_range(file: &str, name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
    })
}

/// Rootless podman, as the user the test made: podman 4.3 in its own user namespace (the user's
/// id and its subordinate range), running containers through a copy of the runtime under test
/// (`--runtime`) with cgroupfs, file events, vfs storage in the user's home and `--network none`
/// (no slirp4netns needed), with slipway's busybox image [`crate::engines::IMAGE`] loaded.
/// Dropping it drops the user, which ends podman's pause process, conmon and the containers.
pub struct Podman {
    pub user: User,
    /// The runtime copy podman runs; its default state root for the user is
    /// `$XDG_RUNTIME_DIR/<its file name>`.
    pub runtime: PathBuf,
    io: tempfile::TempDir,
    counter: std::sync::atomic::AtomicU32,
}

impl Podman {
    /// None (after a skip) where podman, conmon or the rootless set-up is missing.
    pub fn new() -> Option<Podman> {
        if let Some(missing) = ["podman", "conmon"].into_iter().find(|b| !crate::engines::have(b)) {
            crate::skip(format!("{missing} not installed: no rootless podman test (make deps installs it)"));
            return None;
        }
        let user = User::new(true)?;
        let runtime = user.install(&crate::runtime_path());
        let io = tempfile::Builder::new().prefix("skiff-it-rlpodman-").tempdir_in("/tmp").expect("io dir");
        let p = Podman { user, runtime, io, counter: std::sync::atomic::AtomicU32::new(0) };
        let s = crate::slipway::Slipway::new();
        s.base("skiffbox:1");
        let tar = p.user.home.join("skiffbox.tar");
        s.run(&["save", "skiffbox:1", "-o", &tar.to_string_lossy()]).ok();
        p.user.give(&tar);
        p.run(&["load", "-i", &tar.to_string_lossy()]).ok();
        Some(p)
    }

    /// `podman ARGS` as the user; `run` and `create` get the runtime under test and no network.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.user.command("podman");
        cmd.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "vfs"]);
        cmd.arg("--runtime").arg(&self.runtime);
        match args {
            [first @ ("run" | "create"), rest @ ..] => cmd.arg(first).args(["--network", "none"]).args(rest),
            _ => cmd.args(args),
        };
        cmd
    }

    /// Runs `podman ARGS` to the end (killed after [`crate::host::PATIENCE`]).
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> crate::engines::Out {
        let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (out, err) = (self.io.path().join(format!("{n}.out")), self.io.path().join(format!("{n}.err")));
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).expect("create out"))
            .stderr(std::fs::File::create(&err).expect("create err"));
        let command = format!("{cmd:?}");
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {command}: {e}"));
        let deadline = std::time::Instant::now() + crate::host::PATIENCE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if std::time::Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{command} still running after {:?}; killed it", crate::host::PATIENCE);
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(e) => panic!("wait for {command}: {e}"),
            }
        };
        crate::engines::Out {
            command,
            code: status.code(),
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        }
    }

    /// The runtime's own view of a container (`RUNTIME state ID` as the user, default root):
    /// proof podman runs it through that runtime. None if the runtime does not know it.
    pub fn runtime_state(&self, id: &str) -> Option<serde_json::Value> {
        let o = self.user.command(&self.runtime).args(["state", id]).output().ok()?;
        serde_json::from_slice(&o.stdout).ok().filter(|_| o.status.success())
    }

    /// The runtime's default state directory for the user.
    pub fn runtime_root(&self) -> PathBuf {
        self.user.runtime_dir.join(self.runtime.file_name().expect("runtime file name"))
    }
}
