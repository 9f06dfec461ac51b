//! `update`: live limits change in the host's cgroup files, from flags or a resources JSON.

use integration::{Bundle, Runtime};

#[test]
fn update_changes_the_live_limits() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    rt.exec(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "20000",
        &id,
    ])
    .assert_success();
    assert_eq!(b.cgroup_value(&["memory.limit_in_bytes", "memory.max"]), (64u64 << 20).to_string());
    assert_eq!(b.cgroup_value(&["pids.max"]), "20");
    // v1 has one file each; v2 writes quota and period together.
    match b.cgroup_value(&["cpu.cfs_quota_us", "cpu.max"]).as_str() {
        "20000" => assert_eq!(b.cgroup_value(&["cpu.cfs_period_us"]), "100000"),
        v2 => assert_eq!(v2, "20000 100000"),
    }
    // From a resources JSON on stdin.
    let out = rt.exec_with_stdin(&["update", "-r", "-", &id], br#"{"pids": {"limit": 33}}"#.to_vec());
    out.assert_success();
    assert_eq!(b.cgroup_value(&["pids.max"]), "33");
    rt.delete_force(&id).assert_success();
    rt.exec(&["update", "--pids-limit", "5", &id]).assert_failure();
}

/// `sh -c` in the running container `id`: tries to open /probe (c 1:200) for writing, then
/// /dev/null. Major 1 is the mem driver, which has no minor 200, so an open the device cgroup
/// allows fails with ENXIO ("No such device or address") and one it denies with EPERM
/// ("Operation not permitted"), before any driver is asked.
fn probe(rt: &Runtime, id: &str) -> (bool, bool) {
    let out = rt.exec(&["exec", id, "sh", "-c", "echo x > /probe; echo x > /dev/null && echo null-ok"]);
    let allowed = out.stderr.contains("No such device or address");
    let denied = out.stderr.contains("Operation not permitted");
    assert!(allowed != denied, "the open of /probe neither clearly allowed nor denied\n{out}");
    (allowed, out.stdout.contains("null-ok"))
}

#[test]
fn update_with_devices_replaces_the_v2_device_program() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1's update leaves linux.resources.devices as created");
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        integration::skip("not a cgroup v2 host (a v1 devices cgroup keeps its rules on update)");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let node = b.rootfs().join("probe");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 200),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", node.display()));
    b.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    let dirs = b.cgroup_dirs();
    assert_eq!(dirs.len(), 1, "one cgroup v2 directory: {dirs:?}");
    let programs = || integration::host::cgroup_device_programs(&dirs[0]);
    let first = programs();
    assert_eq!(first.len(), 1, "one device program after create: {first:?}");
    assert_eq!(probe(&rt, &id), (false, true), "the config's deny-all refuses c 1:200, /dev/null stays usable");

    // Allow c 1:200: the old program is replaced, not joined (programs of one cgroup all must allow).
    let allow = r#"{"devices": [{"allow": false, "access": "rwm"},
                               {"allow": true, "type": "c", "major": 1, "minor": 200, "access": "rw"}]}"#;
    rt.exec_with_stdin(&["update", "-r", "-", &id], allow.as_bytes().to_vec()).assert_success();
    let second = programs();
    assert_eq!(second.len(), 1, "exactly one device program after update: {second:?}");
    assert_ne!(second, first, "update attached a new program in place of the old one");
    assert_eq!(probe(&rt, &id), (true, true), "c 1:200 allowed after the update");

    // A rule set runc refuses (a hole in a wildcard) changes nothing, not even the pids limit
    // of the same update.
    let pids_before = b.cgroup_value(&["pids.max"]);
    let bad = r#"{"pids": {"limit": 9}, "devices": [{"allow": false, "access": "rwm"},
                  {"allow": true, "type": "c", "access": "rwm"},
                  {"allow": false, "type": "c", "major": 1, "minor": 200, "access": "r"}]}"#;
    rt.exec_with_stdin(&["update", "-r", "-", &id], bad.as_bytes().to_vec())
        .assert_failure()
        .assert_stderr_contains("linux.resources.devices");
    assert_eq!(programs(), second, "a refused update leaves the program");
    assert_eq!(b.cgroup_value(&["pids.max"]), pids_before, "a refused update writes nothing");

    // Back to deny-all: refused again.
    let deny = r#"{"devices": [{"allow": false, "access": "rwm"}]}"#;
    rt.exec_with_stdin(&["update", "-r", "-", &id], deny.as_bytes().to_vec()).assert_success();
    let third = programs();
    assert_eq!(third.len(), 1, "exactly one device program: {third:?}");
    assert_eq!(probe(&rt, &id), (false, true), "c 1:200 refused again");

    // An update without devices leaves the program alone.
    rt.exec(&["update", "--pids-limit", "30", &id]).assert_success();
    assert_eq!(programs(), third, "no devices in the update: the same program");
    rt.delete_force(&id).assert_success();
}
