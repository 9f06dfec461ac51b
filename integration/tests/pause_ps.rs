//! `pause`, `resume` and `ps`, checked in the host's cgroup files and process table.

use integration::{Bundle, Runtime};

/// True when the kernel says the bundle's cgroup is frozen: v1 freezer.state FROZEN, v2
/// cgroup.events `frozen 1`.
fn frozen(b: &Bundle) -> bool {
    // A hybrid host has cgroup.events in its unified dir too: the v1 freezer decides there.
    if b.cgroup_dirs().iter().any(|d| d.join("freezer.state").exists()) {
        return b.cgroup_value(&["freezer.state"]) == "FROZEN";
    }
    b.cgroup_value(&["cgroup.events"]).lines().any(|l| l == "frozen 1")
}

#[test]
fn pause_freezes_and_resume_thaws_the_cgroup() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    assert_eq!(rt.status(&id), "running");
    rt.exec(&["pause", &id]).assert_success();
    assert_eq!(rt.status(&id), "paused");
    assert!(frozen(&b), "the cgroup should be frozen");
    // Pausing twice is harmless; resuming a paused container thaws it.
    rt.exec(&["resume", &id]).assert_success();
    assert_eq!(rt.status(&id), "running");
    assert!(!frozen(&b), "the cgroup should be thawed");
    rt.exec(&["resume", &id]).assert_failure();
    // A paused container can be force-deleted.
    rt.exec(&["pause", &id]).assert_success();
    rt.delete_force(&id).assert_success();
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn ps_lists_the_container_processes() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("sleep 1000 & sleep 1001");
    let id = rt.create_and_start(&b);
    let init = rt.pid(&id);
    let pids: Vec<i32> = integration::host::wait_until("two sleeps in the container", || {
        let out = rt.exec(&["ps", "--format", "json", &id]);
        out.assert_success();
        let pids: Vec<i32> = serde_json::from_str(&out.stdout).expect("ps json is an array of pids");
        // busybox sh execs its last command, so the init itself becomes `sleep 1001`.
        (pids.len() == 2).then_some(pids)
    });
    assert!(pids.contains(&init), "{pids:?} should contain the init {init}");
    let table = rt.exec(&["ps", &id]);
    table.assert_success();
    assert!(table.stdout.lines().next().is_some_and(|h| h.contains("PID")), "{table}");
    assert!(table.stdout.contains("sleep 1001"), "{table}");
    rt.delete_force(&id).assert_success();
}
