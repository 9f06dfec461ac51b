//! `exec`: a second process in a running container shares its namespaces and cgroup, takes the
//! flags it is given, and reports its own exit status.

use integration::{Bundle, Runtime};
use serde_json::json;

fn running(rt: &Runtime) -> (String, Bundle) {
    let mut b = Bundle::new();
    b.edit(|c| c["hostname"] = json!("exec-box")).args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    rt.start(&id).assert_success();
    (id, b)
}

#[test]
fn exec_runs_in_the_containers_namespaces_with_its_exit_status() {
    let rt = Runtime::new();
    let (id, b) = running(&rt);
    let init = rt.pid(&id);
    let out = rt.exec(&["exec", &id, "sh", "-c", "hostname; echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '; exit 7"]);
    assert_eq!(out.code(), 7, "{out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "exec-box");
    assert_ne!(lines[1], "pid=1", "the exec'd process is not the init");
    assert_eq!(lines[2].trim(), "sleep 1000", "it sees the container's pid 1");
    // Same namespaces as the init, seen from the host.
    for ns in ["mnt", "uts", "ipc", "net", "pid"] {
        let ours = rt.exec(&["exec", &id, "readlink", &format!("/proc/self/ns/{ns}")]);
        let init_ns = std::fs::read_link(format!("/proc/{init}/ns/{ns}")).expect("init ns");
        assert_eq!(ours.stdout.trim(), init_ns.to_string_lossy(), "{ns}");
    }
    // And the same cgroup: a detached exec shows up in the container's cgroup.
    let pid_file = rt.scratch().join("exec.pid");
    rt.exec(&["exec", "--detach", "--pid-file", pid_file.to_str().expect("utf-8"), &id, "sleep", "999"])
        .assert_success();
    let pid: i32 = std::fs::read_to_string(&pid_file).expect("pid file").parse().expect("a pid, no newline");
    assert!(b.cgroup_pids().contains(&pid), "{pid} not in {:?}", b.cgroup_pids());
    rt.delete_force(&id).assert_success();
}

#[test]
fn exec_flags_set_user_cwd_and_env() {
    let rt = Runtime::new();
    let (id, _b) = running(&rt);
    let out = rt.exec(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "--env",
        "FOO=bar",
        &id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO",
    ]);
    out.assert_success();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["1000", "1000", "/tmp", "bar"]);
    rt.delete_force(&id).assert_success();
}

#[test]
fn exec_of_a_missing_binary_or_into_a_stopped_container_fails() {
    let rt = Runtime::new();
    let (id, _b) = running(&rt);
    let out = rt.exec(&["exec", &id, "no-such-binary"]);
    out.assert_failure();
    assert!(out.stderr.contains("no-such-binary"), "{out}");
    rt.kill(&id, "KILL").assert_success();
    integration::host::wait_until("the container to stop", || (rt.status(&id) == "stopped").then_some(()));
    rt.exec(&["exec", &id, "true"]).assert_failure();
    rt.delete(&id).assert_success();
}
