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
