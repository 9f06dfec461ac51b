//! The runtime run by an unprivileged user the test makes (integration::rootless::User, with or
//! without /etc/subuid and /etc/subgid ranges): `spec --rootless` as runc writes it, a single-id
//! map written directly and subordinate ranges through newuidmap/newgidmap, state under
//! `$XDG_RUNTIME_DIR` by default, the lifecycle, no cgroup where the user may not write one, and
//! the refusals of what needs host root. Every test runs against runc too; where runc 1.1.5
//! differs (it refuses additionalGids rootless, it has no `ps` without cgroups) the test says so.
//! A cgroup v2 subtree delegated to the user is tested in the cgroup v2 VM (see
//! `delegated_cgroup_v2_subtree_gets_limits`).

use integration::rootless::User;
use integration::{runtime_is_runc, Bundle, Output, Runtime};
use serde_json::{json, Value};
use std::path::PathBuf;

/// The user, a copy of the runtime under test it can run, and a guard for output files.
struct Rootless {
    user: User,
    bin: PathBuf,
    io: Runtime,
}

impl Rootless {
    fn new(subids: bool) -> Option<Rootless> {
        let user = User::new(subids)?;
        let bin = user.install(&integration::runtime_path());
        Some(Rootless { user, io: Runtime::with_binary(bin.clone()), bin })
    }

    /// The runtime run by the user with its default `--root`.
    fn rt(&self, args: &[&str]) -> Output {
        let mut cmd = self.user.command(&self.bin);
        cmd.args(args);
        self.io.exec_cmd(cmd, None)
    }

    /// Where the runtime keeps its state by default for this user: `$XDG_RUNTIME_DIR/NAME`.
    fn state_root(&self) -> PathBuf {
        self.user.runtime_dir.join(self.bin.file_name().expect("binary name"))
    }

    /// A bundle whose config.json the runtime's own `spec --rootless` wrote, run by the user,
    /// with the terminal off; the bundle is the user's.
    fn bundle(&self) -> Bundle {
        let mut b = Bundle::new();
        std::fs::remove_file(b.path().join("config.json")).expect("rm config.json");
        self.user.give(b.path());
        self.rt(&["spec", "--rootless", "--bundle", b.path_str()]).assert_success();
        b.reload();
        b.edit(|c| c["process"]["terminal"] = json!(false));
        b
    }

    /// `bundle()` with the user's subordinate ranges mapped after its own id (podman's layout).
    fn bundle_with_ranges(&self) -> Bundle {
        let mut b = self.bundle();
        let (uid, gid) = (self.user.uid, self.user.gid);
        let (su, sun) = self.user.subuid.expect("subuid range");
        let (sg, sgn) = self.user.subgid.expect("subgid range");
        b.edit(|c| {
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": uid, "size": 1}, {"containerID": 1, "hostID": su, "size": sun}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": gid, "size": 1}, {"containerID": 1, "hostID": sg, "size": sgn}]);
        });
        b
    }
}

fn id() -> String {
    integration::unique_name("rl")
}

#[test]
fn spec_rootless_is_runcs_rootless_template() {
    let Some(r) = Rootless::new(false) else { return };
    let b = r.bundle();
    let mut written = b.config().clone();
    // runc 1.1.5's `spec --rootless` run by a user of uid/gid 1000, terminal off
    let mut want: Value = serde_json::from_str(
        &std::fs::read_to_string(integration::bundle::fixture_path("rootless")).expect("read fixture"),
    )
    .expect("fixture is JSON");
    want["linux"]["uidMappings"][0]["hostID"] = json!(r.user.uid);
    want["linux"]["gidMappings"][0]["hostID"] = json!(r.user.gid);
    // recorded on a hybrid host: runc adds a cgroup namespace on a cgroup v2 one
    integration::host::spec_template_for_this_host(&mut want);
    // ociVersion is the spec version the runtime implements; the hostname names the runtime
    for key in ["ociVersion", "hostname"] {
        assert!(written[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {written}");
        written[key] = Value::Null;
        want[key] = Value::Null;
    }
    assert_eq!(
        written,
        want,
        "differs from runc's rootless template:\n{}",
        serde_json::to_string_pretty(&written).unwrap_or_default()
    );
}

#[test]
fn a_single_id_map_without_subordinate_ids() {
    let Some(r) = Rootless::new(false) else { return };
    let mut b = r.bundle();
    b.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; \
          stat -c 'dev %t:%T' /dev/null; echo x > /dev/null && echo null-ok; \
          mknod /tmp/n c 1 3 2>/dev/null || echo mknod-refused; echo done; sleep 1000");
    let id = id();
    let created = r.rt(&["create", "--bundle", b.path_str(), &id]);
    created.assert_success();
    // the state is under $XDG_RUNTIME_DIR by default, the user's own
    let state_dir = r.state_root().join(&id);
    assert!(state_dir.is_dir(), "no state at {}", state_dir.display());
    r.rt(&["start", &id]).assert_success();
    let state: Value = serde_json::from_str(&r.rt(&["state", &id]).assert_success().stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    // on the host the container's root is the user itself
    let host_uid = integration::host::status_field(pid, "Uid").expect("init's Uid");
    assert_eq!(host_uid.split_whitespace().next(), Some(r.user.uid.to_string().as_str()), "host Uid: {host_uid}");
    let out = integration::host::wait_until("the container's output", || {
        let text = created.stdout_now();
        text.contains("done").then_some(text)
    });
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    let (uid, gid) = (r.user.uid.to_string(), r.user.gid.to_string());
    let want: Vec<Vec<&str>> = vec![
        vec!["0"],
        vec!["0"],
        vec!["0", &uid, "1"],
        vec!["0", &gid, "1"],
        // the kernel takes a gid map of one's own gid only with setgroups denied
        vec!["deny"],
        // the host's /dev/null, bound: a user namespace cannot mknod
        vec!["dev", "1:3"],
        vec!["null-ok"],
        vec!["mknod-refused"],
        vec!["done"],
    ];
    assert_eq!(lines, want, "container output:\n{out}");
    r.rt(&["kill", &id, "KILL"]).assert_success();
    integration::host::wait_until("the container to stop", || {
        r.rt(&["state", &id]).stdout.contains("\"stopped\"").then_some(())
    });
    r.rt(&["delete", &id]).assert_success();
    assert!(!state_dir.exists(), "state left at {}", state_dir.display());
}

#[test]
fn subordinate_ranges_through_newuidmap_exec_and_ps() {
    let Some(r) = Rootless::new(true) else { return };
    let (su, _) = r.user.subuid.expect("subuid");
    let (sg, _) = r.user.subgid.expect("subgid");
    let mut b = r.bundle_with_ranges();
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}));
    b.sh("cat /proc/self/setgroups; id; echo done; sleep 1000");
    let id = id();
    let created = r.rt(&["create", "--bundle", b.path_str(), &id]);
    created.assert_success();
    r.rt(&["start", &id]).assert_success();
    let out = integration::host::wait_until("the container's output", || {
        let text = created.stdout_now();
        text.contains("done").then_some(text)
    });
    // newgidmap leaves setgroups allowed when it maps subordinate ranges
    assert!(out.starts_with("allow\nuid=1000(user) gid=1000(user)"), "container output:\n{out}");
    // on the host, container uid 1000 is subordinate id 999 after the range's start
    let state: Value = serde_json::from_str(&r.rt(&["state", &id]).assert_success().stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    let field = |key| integration::host::status_field(pid, key).expect("status field");
    assert_eq!(field("Uid").split_whitespace().next(), Some((su + 999).to_string().as_str()));
    assert_eq!(field("Gid").split_whitespace().next(), Some((sg + 999).to_string().as_str()));
    // exec joins the user namespace and takes the same ids
    let exec = r.rt(&["exec", "--user", "1000:1000", &id, "id", "-u"]);
    assert_eq!(exec.assert_success().stdout.trim(), "1000");
    let exec = r.rt(&["exec", &id, "cat", "/proc/self/uid_map"]);
    let map: Vec<Vec<String>> =
        exec.assert_success().stdout.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect();
    assert_eq!(map[0], ["0".to_string(), r.user.uid.to_string(), "1".to_string()], "{}", exec.stdout);
    // runc 1.1.5 lists processes only from cgroups ("unable to get all container pids")
    if !runtime_is_runc() {
        let ps = r.rt(&["ps", "--format", "json", &id]);
        let pids: Vec<i32> = serde_json::from_str(&ps.assert_success().stdout).expect("ps JSON");
        assert_eq!(pids, vec![pid], "ps without cgroups lists the container's pid namespace");
    }
    r.rt(&["delete", "--force", &id]).assert_success();
    assert!(!integration::host::pid_alive(pid), "delete --force left the init running");
    assert!(!r.state_root().join(&id).exists());
}

#[test]
fn additional_gids_need_setgroups() {
    let Some(r) = Rootless::new(true) else { return };
    if runtime_is_runc() {
        // runc 1.1.5: "cannot set any additional groups in a rootless container", always
        integration::skip("runc refuses additionalGids rootless even where newgidmap allows setgroups");
        return;
    }
    let mut b = r.bundle_with_ranges();
    b.edit(|c| c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10]}));
    b.args(&["id", "-G"]);
    assert_eq!(r.rt(&["run", "--bundle", b.path_str(), &id()]).assert_success().stdout.trim(), "1000 10");
    // a single-id map: setgroups is denied, so additional groups are refused by name
    let mut single = r.bundle();
    single.edit(|c| c["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [0]}));
    single.args(&["true"]);
    r.rt(&["run", "--bundle", single.path_str(), &id()])
        .assert_failure()
        .assert_stderr_contains("process.user.additionalGids");
}

/// This process's cgroups, as /proc/self/cgroup lists them.
fn own_cgroups() -> String {
    std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup")
}

/// True if the user may write some cgroup hierarchy where this test runs (a delegated one).
fn user_may_write_a_cgroup(user: &User) -> bool {
    let out = user
        .command("sh")
        .args(["-c", "find /sys/fs/cgroup -name cgroup.procs -writable -print -quit 2>/dev/null"])
        .output()
        .expect("run find as the user");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn no_cgroups_where_the_user_may_not_write_them() {
    let Some(r) = Rootless::new(false) else { return };
    if user_may_write_a_cgroup(&r.user) {
        integration::skip("a cgroup hierarchy here is writable by the test user: nothing to leave out");
        return;
    }
    let mut b = r.bundle();
    b.args(&["sleep", "1000"]);
    let id = id();
    let created = r.rt(&["create", "--bundle", b.path_str(), &id]);
    created.assert_success();
    if !runtime_is_runc() {
        assert!(created.stderr.contains("rootless: no cgroup"), "no warning: {created}");
    }
    r.rt(&["start", &id]).assert_success();
    let state: Value = serde_json::from_str(&r.rt(&["state", &id]).assert_success().stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    // the container stays in the cgroups of whoever ran the runtime: this test's
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read the init's cgroup");
    assert_eq!(theirs, own_cgroups(), "the container's cgroups");
    // no freezer: pause fails and says why; the container keeps running
    let pause = r.rt(&["pause", &id]);
    pause.assert_failure();
    if !runtime_is_runc() {
        pause.assert_stderr_contains("no cgroups");
    }
    assert!(r.rt(&["state", &id]).stdout.contains("\"running\""));
    r.rt(&["delete", "--force", &id]).assert_success();
}

#[test]
fn limits_and_cgroups_paths_the_user_may_not_write_are_refused() {
    let Some(r) = Rootless::new(false) else { return };
    if user_may_write_a_cgroup(&r.user) {
        integration::skip("a cgroup hierarchy here is writable by the test user");
        return;
    }
    // a limit with nowhere to go: runc "cannot set memory limit: container could not join or create cgroup"
    let mut b = r.bundle();
    b.edit(|c| c["linux"]["resources"] = json!({"memory": {"limit": 67108864}}));
    b.args(&["true"]);
    let id1 = id();
    let out = r.rt(&["run", "--bundle", b.path_str(), &id1]);
    out.assert_failure();
    if !runtime_is_runc() {
        out.assert_stderr_contains("linux.resources.memory.limit");
    }
    assert!(!r.state_root().join(&id1).exists(), "a failed create left state");
    // an explicit cgroupsPath is not left out silently
    let mut b = r.bundle();
    b.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("/skiff-it/{}", integration::unique_name("rl"))));
    b.args(&["true"]);
    let out = r.rt(&["run", "--bundle", b.path_str(), &id()]);
    out.assert_failure();
    if !runtime_is_runc() {
        out.assert_stderr_contains("linux.cgroupsPath");
    }
}

#[test]
fn mount_ids_outside_the_maps_and_host_root_features_are_refused() {
    let Some(r) = Rootless::new(false) else { return };
    // runc: "cannot specify gid= mount options for unmapped gid in rootless containers"
    let mut b = r.bundle();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        let pts = mounts.iter_mut().find(|m| m["destination"] == "/dev/pts").expect("a /dev/pts mount");
        pts["options"].as_array_mut().expect("options").push(json!("gid=5"));
    });
    b.args(&["true"]);
    let out = r.rt(&["run", "--bundle", b.path_str(), &id()]);
    out.assert_failure();
    if !runtime_is_runc() {
        out.assert_stderr_contains("gid 5 is not mapped");
    }
    // runc: "rootless container requires user namespaces"
    let mut b = r.bundle();
    b.without_namespace("user");
    b.edit(|c| {
        let linux = c["linux"].as_object_mut().expect("linux");
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    });
    b.args(&["true"]);
    let out = r.rt(&["run", "--bundle", b.path_str(), &id()]);
    out.assert_failure();
    if !runtime_is_runc() {
        out.assert_stderr_contains("linux.namespaces");
    }
}

#[test]
fn sysfs_without_a_network_namespace_is_the_hosts_bound() {
    let Some(r) = Rootless::new(false) else { return };
    // sysfs cannot be mounted by a user namespace that does not own the network namespace
    let mut b = r.bundle();
    b.edit(|c| {
        let sys = c["mounts"].as_array_mut().expect("mounts").iter_mut().find(|m| m["destination"] == "/sys");
        *sys.expect("a /sys mount") =
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]});
    });
    b.sh("test -d /sys/kernel && touch /sys/x 2>/dev/null || echo read-only");
    if runtime_is_runc() {
        // runc 1.1.5 fails the sysfs mount with EPERM
        r.rt(&["run", "--bundle", b.path_str(), &id()]).assert_failure();
        return;
    }
    assert_eq!(r.rt(&["run", "--bundle", b.path_str(), &id()]).assert_success().stdout.trim(), "read-only");
}

/// The cgroup v2 subtree systemd delegates to a user: `user@UID.service` (Delegate=yes, as
/// logind starts it at a user's first login) started by the test for its user, and stopped when
/// this drops (before the user goes), with the directories the test's containers left in it.
struct UserManager {
    uid: u32,
    /// /sys/fs/cgroup/user.slice/user-UID.slice/user@UID.service
    subtree: PathBuf,
}

impl UserManager {
    /// True where systemd, pid 1 on a pure cgroup v2 host, can delegate one; else a skip.
    fn possible() -> bool {
        let pid1 = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
        if pid1.trim() != "systemd"
            || !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            || !integration::engines::have("systemd-run")
        {
            integration::skip(
                "a delegated cgroup v2 subtree needs systemd as pid 1 on cgroup v2 (make test-systemd runs this)",
            );
            return false;
        }
        true
    }

    fn start(user: &User) -> UserManager {
        let uid = user.uid;
        let mgr = UserManager {
            uid,
            subtree: PathBuf::from(format!("/sys/fs/cgroup/user.slice/user-{uid}.slice/user@{uid}.service")),
        };
        let out = std::process::Command::new("systemctl")
            .args(["start", &format!("user@{uid}.service")])
            .output()
            .expect("run systemctl");
        if !out.status.success() {
            let journal = std::process::Command::new("journalctl")
                .args(["-b", "--no-pager", "-n", "40", "-u", &format!("user@{uid}.service")])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("systemctl start user@{uid}.service: {}\n{journal}", String::from_utf8_lossy(&out.stderr));
        }
        mgr
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // stopping the unit kills what runs in its cgroup, a failed test's containers included
        let _ = std::process::Command::new("systemctl")
            .args(["stop", &format!("user@{}.service", self.uid), &format!("user-runtime-dir@{}.service", self.uid)])
            .output();
        // and systemd removes its directories; what it left of the test's, deepest first
        if let Ok(entries) = std::fs::read_dir(&self.subtree) {
            for e in entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("skiff-it")) {
                let mut dirs: Vec<PathBuf> = walkdir_dirs(&e.path());
                dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
                for d in dirs {
                    let _ = std::fs::remove_dir(d);
                }
            }
        }
    }
}

/// `dir` and every directory below it.
fn walkdir_dirs(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walkdir_dirs(&e.path()));
            }
        }
    }
    out
}

#[test]
fn delegated_cgroup_v2_subtree_gets_limits() {
    if !UserManager::possible() {
        return;
    }
    let Some(r) = Rootless::new(true) else { return };
    let mgr = UserManager::start(&r.user);
    // systemd's delegation: the user's service subtree is the user's, with memory and pids on
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(mgr.subtree.join("cgroup.procs")).expect("the user manager's cgroup").uid();
    assert_eq!(owner, r.user.uid, "{} is not delegated to the user", mgr.subtree.display());
    let enabled = std::fs::read_to_string(mgr.subtree.join("cgroup.subtree_control")).expect("subtree_control");
    for c in ["memory", "pids"] {
        assert!(enabled.split_whitespace().any(|e| e == c), "user@.service delegates no {c}: {enabled}");
    }
    // the container's cgroup below it, as a rootless engine with the cgroupfs driver asks for it
    let id = id();
    let rel = format!("/user.slice/user-{0}.slice/user@{0}.service/skiff-it/{id}", r.user.uid);
    let leaf = PathBuf::from(format!("/sys/fs/cgroup{rel}"));
    let mut b = r.bundle_with_ranges();
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(rel);
        c["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 20}});
    });
    b.args(&["sleep", "1000"]);
    // The runtime runs in a scope of the user's own manager (`systemd-run --user --scope`, as
    // podman runs its conmon): moving the container from there into the leaf needs write access
    // to the cgroup.procs above both, user@UID.service's, which the delegation gives.
    let mut create = r.user.command("systemd-run");
    create.args(["--user", "--scope", "--quiet", "--"]).arg(&r.bin);
    create.args(["create", "--bundle", b.path_str(), &id]);
    let created = r.io.exec_cmd(create, None);
    created.assert_success();
    // applied, not skipped: nothing to warn about
    assert!(!created.stderr.contains("no cgroup"), "{created}");
    r.rt(&["start", &id]).assert_success();
    let state: Value = serde_json::from_str(&r.rt(&["state", &id]).assert_success().stdout).expect("state JSON");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    let read = |f: &str| {
        std::fs::read_to_string(leaf.join(f)).unwrap_or_else(|e| panic!("read {}: {e}", leaf.join(f).display()))
    };
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read the init's cgroup");
    assert_eq!(theirs.trim(), format!("0::{rel}"), "the container's cgroup");
    assert_eq!(read("memory.max").trim(), "67108864");
    assert_eq!(read("pids.max").trim(), "20");
    assert_eq!(std::fs::metadata(&leaf).expect("leaf").uid(), r.user.uid, "the leaf is the user's");
    // update and pause write there too
    r.rt(&["update", "--pids-limit", "30", &id]).assert_success();
    assert_eq!(read("pids.max").trim(), "30");
    r.rt(&["pause", &id]).assert_success();
    assert_eq!(read("cgroup.freeze").trim(), "1");
    assert!(r.rt(&["state", &id]).stdout.contains("\"paused\""));
    r.rt(&["resume", &id]).assert_success();
    assert_eq!(read("cgroup.freeze").trim(), "0");
    r.rt(&["delete", "--force", &id]).assert_success();
    assert!(!integration::host::pid_alive(pid), "delete --force left the init running");
    assert!(!leaf.exists(), "delete left the cgroup {}", leaf.display());
}
