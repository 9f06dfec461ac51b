//! `events`: the statistics are the container's real numbers (checked against what the test
//! started in it), streaming ends when the container stops, and an OOM kill is reported.

use std::process::{Child, Stdio};

use integration::host::wait_until;
use integration::{Bundle, Runtime};
use serde_json::{json, Value};

/// `events --stats ID`, parsed; asserts runc's envelope.
fn stats(rt: &Runtime, id: &str) -> Value {
    let out = rt.exec(&["events", "--stats", id]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "--stats prints one line\n{out}");
    let v: Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("events output is not JSON: {e}\n{out}"));
    assert_eq!(v["type"], "stats", "{v}");
    assert_eq!(v["id"], id, "{v}");
    v["data"].clone()
}

/// A streaming `events` whose stdout goes to a file; killed on drop if it is still running.
struct Watcher {
    child: Child,
    out: std::path::PathBuf,
}

impl Watcher {
    fn start(rt: &Runtime, args: &[&str]) -> Watcher {
        let out = rt.scratch().join(format!("events-{}.out", integration::unique_name("w")));
        let file = std::fs::File::create(&out).expect("create events output file");
        let child = rt
            .command(&[&["events"], args].concat())
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn events");
        Watcher { child, out }
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        // Only complete lines: the last one may still be being written.
        let complete = text.rsplit_once('\n').map(|(a, _)| a).unwrap_or("");
        complete.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn stats_count_the_processes_and_the_memory() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 40});
        c["linux"]["resources"]["memory"] = json!({"limit": 256 * 1024 * 1024});
    })
    .sh("sleep 1000 & sleep 1001 & sleep 1002 & exec sleep 1003");
    let id = rt.create_and_start(&b);
    wait_until("four processes in the cgroup", || (b.cgroup_pids().len() == 4).then_some(()));
    let data = stats(&rt, &id);
    assert_eq!(data["pids"]["current"], 4, "{}", data["pids"]);
    assert_eq!(data["pids"]["limit"], 40, "{}", data["pids"]);
    let mem = &data["memory"]["usage"];
    assert_eq!(mem["limit"], 256 * 1024 * 1024, "{mem}");
    assert!(mem["usage"].as_u64().is_some_and(|u| u > 0), "memory usage should be > 0: {mem}");
    assert!(data["memory"]["raw"].as_object().is_some_and(|r| !r.is_empty()), "memory.stat is in raw");
    assert!(data["cpu"]["usage"]["total"].as_u64().is_some_and(|t| t > 0), "{}", data["cpu"]);
    // The default config has its own network namespace: its loopback is listed (runc 1.1
    // only lists interfaces it configured itself, i.e. none: null).
    if !integration::runtime_is_runc() {
        let ifaces = data["network_interfaces"].as_array().expect("network_interfaces is a list");
        assert!(ifaces.iter().any(|i| i["Name"] == "lo"), "{ifaces:?}");
    }
    rt.delete_force(&id).assert_success();
    // A stopped (here: gone) container has no events.
    rt.exec(&["events", "--stats", &id]).assert_failure();
}

#[test]
fn cpu_usage_grows_while_the_container_works() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("while :; do :; done");
    let id = rt.create_and_start(&b);
    let total = |d: &Value| d["cpu"]["usage"]["total"].as_u64().unwrap_or(0);
    let first = total(&stats(&rt, &id));
    wait_until("cpu usage to grow", || (total(&stats(&rt, &id)) > first).then_some(()));
    rt.delete_force(&id).assert_success();
}

#[test]
fn streaming_prints_stats_and_ends_when_the_container_stops() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    let mut w = Watcher::start(&rt, &["--interval", "100ms", &id]);
    wait_until("two stats events", || (w.events().len() >= 2).then_some(()));
    for e in w.events() {
        assert_eq!(e["type"], "stats", "{e}");
        assert_eq!(e["data"]["pids"]["current"], 1, "{e}");
    }
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1 keeps watching a stopped container until its cgroup is removed: end not checked");
        rt.delete_force(&id).assert_success();
        return;
    }
    rt.kill(&id, "KILL").assert_success();
    let status = wait_until("events to exit after the container stopped", || w.child.try_wait().ok().flatten());
    assert!(status.success(), "events exited with {status}");
    rt.delete_force(&id).assert_success();
}

#[test]
fn an_oom_kill_is_reported() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let limit = 16 * 1024 * 1024;
    // `tail /dev/zero` keeps one ever-growing line in memory until the OOM killer ends it; the
    // shell survives (it is small), so the container stays up to be watched.
    b.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit}))
        .sh("tail /dev/zero; echo tail-died; exec sleep 1000");
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    // Watch before the program starts, so the kill cannot happen before the watch is set.
    let w = Watcher::start(&rt, &["--interval", "1h", &id]);
    // The watcher is registered once it has opened the container's memory cgroup files; give it
    // the state by polling for its open fds.
    let pid = w.child.id();
    wait_until("events to open the memory cgroup", || {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .filter_map(|f| std::fs::read_link(f.path()).ok())
            .any(|t| t.to_string_lossy().contains("memory"))
            .then_some(())
    });
    rt.start(&id).assert_success();
    let events = wait_until("an oom event", || {
        let ev = w.events();
        ev.iter().any(|e| e["type"] == "oom").then_some(ev)
    });
    let oom = events.iter().find(|e| e["type"] == "oom").expect("oom event");
    assert_eq!(oom["id"], id.as_str(), "{oom}");
    assert!(oom.get("data").is_none(), "runc prints no data for oom: {oom}");
    rt.delete_force(&id).assert_success();
}
