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
        eprintln!("skipped: runc is known to leave cgroups behind when killed during create");
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
    const TRIALS: u32 = 20;
    for i in 0..TRIALS {
        let id = rt.new_id();
        let delay = span.mul_f64(1.2 * f64::from(i) / f64::from(TRIALS));
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
