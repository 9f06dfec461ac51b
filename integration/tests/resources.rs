//! linux.resources: the limits land in the container's cgroup (`linux.cgroupsPath`, set by the
//! harness) on the host, and the pids limit holds inside.
//!
//! This host is cgroup v1 with an empty v2 hierarchy on /sys/fs/cgroup/unified (hybrid), so the
//! controller files are the v1 ones; the helpers also accept a v2 file where it has the same
//! value format.

use integration::{Bundle, Runtime};
use serde_json::json;

/// Creates `b` (a sleeper) and runs `check` while the container exists.
fn with_created(b: &mut Bundle, check: impl FnOnce(&Bundle)) {
    let rt = Runtime::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, b);
    check(b);
    rt.delete_force(&id).assert_success();
}

#[test]
fn pids_limit_is_written_to_the_cgroup() {
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 50}));
    with_created(&mut b, |b| assert_eq!(b.cgroup_value(&["pids.max"]), "50"));
}

#[test]
fn memory_limit_is_written_to_the_cgroup() {
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024}));
    with_created(&mut b, |b| assert_eq!(b.cgroup_value(&["memory.limit_in_bytes", "memory.max"]), "67108864"));
}

#[test]
fn cpu_shares_and_quota_are_written_to_the_v1_cgroup() {
    // v1 only: v2 converts shares to cpu.weight and writes quota and period together to cpu.max.
    if !std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        eprintln!("skipped: no cgroup v1 cpu controller on this host");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000}));
    with_created(&mut b, |b| {
        assert_eq!(b.cgroup_value(&["cpu.shares"]), "512");
        assert_eq!(b.cgroup_value(&["cpu.cfs_quota_us"]), "50000");
        assert_eq!(b.cgroup_value(&["cpu.cfs_period_us"]), "100000");
    });
}

#[test]
fn cpu_shares_become_weight_on_v2() {
    // runc's conversion: weight = 1 + (shares - 2) * 9999 / 262142.
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists()
        || !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    {
        eprintln!("skipped: not a cgroup v2 host");
        return;
    }
    let mut b = Bundle::new();
    b.edit(|c| c["linux"]["resources"]["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000}));
    with_created(&mut b, |b| {
        assert_eq!(b.cgroup_value(&["cpu.weight"]), "20");
        assert_eq!(b.cgroup_value(&["cpu.max"]), "50000 100000");
    });
}

/// Writes a line to /dev/kmsg (c 1:11, bind-mounted from the host; not among runc's default
/// devices) in a container with the default deny-all rule, plus `extra` rules.
fn write_kmsg(extra: serde_json::Value) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}))
        .edit(|c| {
            let rules = c["linux"]["resources"]["devices"].as_array_mut().expect("devices is an array");
            rules.extend(extra.as_array().cloned().unwrap_or_default());
        })
        .sh("if echo skiff-it device rule test > /dev/kmsg; then echo written; else echo refused; fi; \
             echo x > /dev/null && echo null-ok");
    rt.run_ok(&b)
}

#[test]
fn device_rules_are_enforced() {
    // v1: devices.allow/deny; v2: skiff's eBPF program. The deny-all default refuses the
    // device, the standard /dev/null stays usable.
    let out = write_kmsg(json!([]));
    assert!(out.contains("refused") && out.contains("null-ok"), "{out}");
    let out = write_kmsg(json!([{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}]));
    assert!(out.contains("written"), "an allow rule for c 1:11 w lets it through: {out}");
    // A later deny wins over the earlier allow.
    let out = write_kmsg(json!([
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]));
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn delete_removes_the_cgroups() {
    let mut b = Bundle::new();
    let rt = Runtime::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    assert!(!b.cgroup_dirs().is_empty(), "create made no cgroup under {}", b.cgroups_path());
    rt.delete_force(&id).assert_success();
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn the_pids_limit_stops_forks_inside_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // A child shell starts sleepers until fork fails (busybox sh then exits 2); the outer shell
    // counts what is alive in the pid namespace with builtins only, as no fork is left for it.
    b.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 8}))
        .sh("sh -c 'i=0; while [ $i -lt 20 ]; do sleep 1000 & i=$((i+1)); done' 2>/dev/null; \
         n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n");
    let out = rt.run_ok(&b);
    let alive: u32 = out.trim().parse().unwrap_or_else(|e| panic!("count {out:?}: {e}"));
    assert!((2..=8).contains(&alive), "{alive} processes under a pids limit of 8");
}
