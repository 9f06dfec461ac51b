//! Global flags and the less common create options: --version, --log/--log-format json,
//! --systemd-cgroup, --no-pivot, --preserve-fds, domainname and time namespace offsets.

use integration::{Bundle, Runtime};
use serde_json::json;

#[test]
fn version_names_the_spec() {
    let rt = Runtime::new();
    let out = rt.exec(&["--version"]);
    out.assert_success();
    assert!(out.stdout.lines().any(|l| l.starts_with("spec: 1.")), "{out}");
    assert!(out.stdout.lines().any(|l| l.starts_with("commit:")), "{out}");
}

#[test]
fn json_log_ends_with_the_error_the_shim_reads() {
    let rt = Runtime::new();
    let log = rt.scratch().join("runtime.log");
    let out = rt.exec(&["--log", log.to_str().expect("utf-8"), "--log-format", "json", "state", "no-such-container"]);
    out.assert_failure();
    let text = std::fs::read_to_string(&log).expect("the log file was written");
    let last = text.lines().last().expect("a log line");
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{last:?} is not JSON: {e}"));
    assert_eq!(v["level"], "error", "{last}");
    assert!(v["msg"].as_str().is_some_and(|m| m.contains("does not exist")), "{last}");
    assert!(v["time"].as_str().is_some_and(|t| t.contains('T')), "{last}");
}

#[test]
fn systemd_cgroup_without_systemd_fails_create_and_leaves_nothing() {
    if std::env::var_os("SKIFF_IT_SYSTEMD").is_some_and(|v| v == "1") {
        integration::skip("pid 1 is systemd here: systemd.rs tests the driver");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]).edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:it:no-systemd"));
    let id = rt.new_id();
    // With no systemd to ask for the scope, create fails (skiff: at the system bus).
    let out = rt.exec(&["--systemd-cgroup", "create", "--bundle", b.path_str(), &id]);
    out.assert_failure();
    assert_eq!(rt.list_ids(), Vec::<String>::new());
    let rootfs = b.rootfs();
    let left = integration::processes_rooted_at(&rootfs);
    assert_eq!(left, 0, "processes of the container left behind");
    // A cgroupsPath not in systemd's form is refused before anything is made.
    b.edit(|c| c["linux"]["cgroupsPath"] = json!("/skiff-it/not-systemd"));
    let out = rt.exec(&["--systemd-cgroup", "create", "--bundle", b.path_str(), &id]);
    out.assert_failure().assert_stderr_contains("slice:prefix:name");
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn no_pivot_still_gives_the_container_its_rootfs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    std::fs::write(b.rootfs().join("marker"), "in-rootfs").expect("write marker");
    b.sh("cat /marker");
    let id = rt.new_id();
    let out = rt.exec(&["run", "--no-pivot", "--bundle", b.path_str(), &id]);
    out.assert_success();
    assert_eq!(out.stdout, "in-rootfs");
}

#[test]
fn preserve_fds_passes_the_callers_fd_3() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo through-fd-3 >&3");
    let file = rt.scratch().join("fd3.out");
    let id = rt.new_id();
    // A shell opens fd 3 for the runtime, as a caller passing a socket or pipe would.
    let script = format!(
        "exec 3>'{}'; exec '{}' --root '{}' run --preserve-fds 1 --bundle '{}' {id}",
        file.display(),
        rt.binary().display(),
        rt.root().display(),
        b.path_str()
    );
    let status = std::process::Command::new("/bin/sh").arg("-c").arg(&script).status().expect("run sh");
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&file).expect("fd 3 output"), "through-fd-3\n");
}

#[test]
fn domainname_is_set_in_the_uts_namespace() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 ignores domainname (it leaves \"(none)\")");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["domainname"] = json!("example.org")).sh("cat /proc/sys/kernel/domainname");
    assert_eq!(rt.run_ok(&b), "example.org\n");
}

#[test]
fn time_namespace_offsets_move_the_boot_clock() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 has no time namespace support");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.with_namespace("time")
        .edit(|c| c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 864000, "nanosecs": 0}}))
        .sh("cut -d. -f1 /proc/uptime");
    let host: u64 = std::fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split('.')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("host uptime");
    let inside: u64 = rt.run_ok(&b).trim().parse().expect("container uptime");
    assert!(inside >= host + 864000, "inside {inside}, host {host}");
}
