//! SIGKILL of the runtime in the middle of `create`: afterwards `state`, `list` and
//! `delete --force` work, and nothing is left (state entry, cgroup directory, process), so the
//! same id can be created again at once.
//!
//! runc 1.1.5 fails this (it leaves cgroup directories after a kill before `create` returns, about
//! one trial in four on this VM), so against runc the test reports itself skipped instead.

use std::process::Stdio;
use std::time::{Duration, Instant};

use integration::host::pid_alive;
use integration::{Bundle, Runtime};

#[test]
fn sigkill_at_any_moment_of_create_leaves_nothing_that_delete_force_cannot_clean() {
    if integration::runtime_is_runc() {
        integration::skip("runc is known to leave cgroups behind when killed during create");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    // How long an undisturbed create takes; the kills are spread over it and a bit beyond.
    let t = Instant::now();
    let probe = rt.new_id();
    rt.create_ok(&probe, &b);
    let span = t.elapsed();
    rt.delete_force(&probe).assert_success();
    // 20 in make test; `make test-crash-long` runs 500.
    let trials: u32 = std::env::var("SKIFF_CRASH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for i in 0..trials {
        let id = rt.new_id();
        let delay = span.mul_f64(1.2 * f64::from(i) / f64::from(trials));
        let mut child = rt
            .command(&["create", "--bundle", b.path_str(), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn create");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever it left, the next commands can read and clean.
        rt.exec(&["list"]).assert_success();
        let st = rt.exec(&["state", &id]);
        let pid = serde_json::from_str::<serde_json::Value>(&st.stdout).ok().and_then(|v| v["pid"].as_i64());
        rt.delete_force(&id).assert_success();
        assert!(rt.exec(&["state", &id]).stderr.contains("does not exist"), "trial {i} ({delay:?}): state entry left");
        assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "trial {i} ({delay:?}): cgroups left");
        if let Some(pid) = pid.filter(|p| *p > 0) {
            // The init may take a moment to be reaped by init(1) after SIGKILL.
            let deadline = Instant::now() + Duration::from_secs(10);
            while pid_alive(pid as i32) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!pid_alive(pid as i32), "trial {i} ({delay:?}): init {pid} still alive");
        }
        // The id is free again at once.
        rt.create_ok(&id, &b);
        rt.delete_force(&id).assert_success();
    }
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

// ---- named failpoints: skiff SIGKILLs itself at one step, then the next commands clean up ----

/// Runs `args` with SKIFF_FAILPOINT=point and checks that skiff really died there.
#[track_caller]
fn crash_at(rt: &Runtime, point: &str, args: &[&str]) {
    use std::os::unix::process::ExitStatusExt;
    let status = rt
        .command(args)
        .env("SKIFF_FAILPOINT", point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn skiff");
    assert_eq!(status.signal(), Some(9), "{point}: skiff did not stop at the failpoint ({status:?})");
}

/// After a crash: list and state work, delete --force leaves nothing, the id is free again.
#[track_caller]
fn assert_recoverable(rt: &Runtime, b: &Bundle, id: &str, point: &str) {
    rt.exec(&["list"]).assert_success();
    let st = rt.exec(&["state", id]);
    let pid = serde_json::from_str::<serde_json::Value>(&st.stdout).ok().and_then(|v| v["pid"].as_i64());
    rt.delete_force(id).assert_success();
    assert!(rt.exec(&["state", id]).stderr.contains("does not exist"), "{point}: state entry left");
    assert!(rt.root_entries_for(id).is_empty(), "{point}: {:?} left in the root", rt.root_entries_for(id));
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new(), "{point}: cgroups left");
    assert!(integration::host::mounts_under(b.path()).is_empty(), "{point}: mounts left");
    if let Some(pid) = pid.filter(|p| *p > 0) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_alive(pid as i32) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(pid as i32), "{point}: init {pid} still alive");
    }
    rt.create_ok(id, b);
    rt.delete_force(id).assert_success();
}

fn failpoint_trial(point: &str) {
    let Some(bin) = integration::failpoint_skiff() else { return };
    let rt = Runtime::with_binary(bin);
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.new_id();
    let create = ["create", "--bundle", b.path_str(), &id];
    match point.split(':').next() {
        Some("create") => crash_at(&rt, point, &create),
        Some("start") => {
            rt.create_ok(&id, &b);
            crash_at(&rt, point, &["start", &id]);
        }
        Some("delete") => {
            rt.create_ok(&id, &b);
            rt.start(&id).assert_success();
            crash_at(&rt, point, &["delete", "--force", &id]);
        }
        Some("exec") => {
            rt.create_ok(&id, &b);
            rt.start(&id).assert_success();
            crash_at(&rt, point, &["exec", &id, "sleep", "1001"]);
        }
        _ => panic!("unknown failpoint {point}"),
    }
    assert_recoverable(&rt, &b, &id, point);
}

macro_rules! failpoint_tests {
    ($($name:ident => $point:literal,)*) => {
        $(#[test] fn $name() { failpoint_trial($point); })*

        #[test]
        fn every_failpoint_has_a_test() {
            let tested = [$($point),*];
            let out = std::process::Command::new("grep")
                .args(["-o", r#""[a-z]*:[a-z-]*""#])
                .arg(integration::workspace_dir().join("runtime/src/failpoint.rs"))
                .output()
                .expect("grep");
            let listed: Vec<String> =
                String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim_matches('"').to_string()).collect();
            assert_eq!(listed, tested, "failpoint.rs POINTS and these tests differ");
        }
    };
}

failpoint_tests! {
    crash_after_the_state_is_recorded => "create:state-recorded",
    crash_after_the_cgroups_are_made => "create:cgroups-made",
    crash_after_resources_are_applied => "create:resources-applied",
    crash_after_the_fifo_is_made => "create:fifo-made",
    crash_after_the_init_started => "create:init-started",
    crash_after_the_runtime_hooks => "create:hooks-ran",
    crash_when_the_init_is_ready => "create:init-ready",
    crash_after_the_created_state_is_saved => "create:state-created",
    crash_in_start_after_opening_the_fifo => "start:fifo-opened",
    crash_in_start_after_saving_running => "start:state-running",
    crash_in_delete_after_the_kill => "delete:processes-killed",
    crash_in_delete_after_cgroups_are_removed => "delete:cgroups-removed",
    crash_in_exec_after_the_process_started => "exec:process-started",
}

/// `run` goes through create's steps: a crash at one of them in the middle of a `run`.
#[test]
fn crash_in_run_at_each_create_step() {
    let Some(bin) = integration::failpoint_skiff() else { return };
    let rt = Runtime::with_binary(bin);
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    for point in ["create:cgroups-made", "create:init-started", "create:init-ready", "create:state-created"] {
        let id = rt.new_id();
        crash_at(&rt, point, &["run", "--bundle", b.path_str(), &id]);
        assert_recoverable(&rt, &b, &id, &format!("run at {point}"));
    }
}
