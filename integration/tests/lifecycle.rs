//! The lifecycle as runc's CLI exposes it: run, create, start, state, kill, delete, list and
//! --pid-file, checked from outside the container.

use integration::host::{catches_signal, cmdline, pid_alive, wait_until};
use integration::{Bundle, Runtime};
use std::process::Stdio;

/// A bundle whose process idles until killed. As pid 1 of its pid namespace `sleep` ignores
/// SIGTERM (no handler), so tests stop it with KILL.
fn sleeper() -> Bundle {
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    b
}

/// Creates and starts `sleeper()`-like bundle `b` as `id`, waiting until it runs.
fn start_running(rt: &Runtime, id: &str, b: &Bundle) {
    rt.create_ok(id, b);
    rt.start(id).assert_success();
    rt.wait_for_status(id, "running");
}

// ---- run (foreground) ----

#[test]
fn run_prints_container_stdout() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["echo", "hello"]);
    let out = rt.run(&b);
    out.assert_success();
    assert_eq!(out.stdout, "hello\n", "{out}");
}

#[test]
fn run_exits_with_the_container_exit_status() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("exit 3");
    assert_eq!(rt.run(&b).code(), 3);
    b.sh("exit 0");
    assert_eq!(rt.run(&b).code(), 0);
}

#[test]
fn run_exits_128_plus_signal_when_the_process_is_killed_by_a_signal() {
    // As pid 1 of a new pid namespace the shell cannot kill itself (the kernel drops signals to a
    // namespace init from inside without a handler), so this container shares the host pid ns.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.without_namespace("pid").sh("kill -KILL $$");
    assert_eq!(rt.run(&b).code(), 128 + 9);
    b.sh("kill -TERM $$");
    assert_eq!(rt.run(&b).code(), 128 + 15);
}

#[test]
fn run_exits_137_when_the_container_is_killed_from_outside() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    let mut child = rt
        .command(&["run", "--bundle", b.path_str(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    wait_until("the foreground container to run", || {
        let out = rt.exec(&["state", &id]);
        (out.success() && out.stdout.contains("\"running\"")).then_some(())
    });
    rt.kill(&id, "KILL").assert_success();
    let status = child.wait().expect("wait for run");
    assert_eq!(status.code(), Some(137));
}

#[test]
fn run_keeps_stdout_and_stderr_apart() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.sh("echo to-out; echo to-err >&2");
    let out = rt.run(&b);
    out.assert_success();
    assert_eq!(out.stdout, "to-out\n", "{out}");
    assert!(out.stderr.contains("to-err\n"), "{out}");
    assert!(!out.stderr.contains("to-out"), "{out}");
}

#[test]
fn run_pipes_stdin_through_to_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let input: Vec<u8> = (0..300_000u32).map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[(i % 27) as usize]).collect();
    b.args(&["wc", "-c"]);
    let out = rt.run_with_stdin(&b, input.clone());
    out.assert_success();
    assert_eq!(out.stdout.trim(), "300000", "{out}");

    b.args(&["cat"]);
    let out = rt.run_with_stdin(&b, input.clone());
    out.assert_success();
    assert!(out.stdout.as_bytes() == input, "cat did not echo its stdin back");
}

// ---- create / start / state ----

#[test]
fn create_leaves_a_live_process_that_has_not_run_the_user_program() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let state = rt.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0 && pid_alive(pid), "pid {pid} of a created container is not alive");
    let argv = cmdline(pid).unwrap_or_default();
    assert_ne!(argv, ["sleep", "1000"], "the user program ran before start");
    rt.delete_force(&id).assert_success();
}

#[test]
fn state_has_the_oci_fields_and_runc_extras() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let state = rt.state(&id);
    let obj = state.as_object().expect("state is a JSON object");
    assert!(obj["ociVersion"].as_str().is_some_and(|v| !v.is_empty()), "{state}");
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "created");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    let bundle = state["bundle"].as_str().expect("bundle is a string");
    assert!(bundle.starts_with('/'), "bundle is not absolute: {bundle}");
    assert_eq!(
        std::fs::canonicalize(bundle).expect("bundle exists"),
        std::fs::canonicalize(b.path()).expect("our bundle")
    );
    // runc also prints rootfs, created (RFC 3339, nanoseconds) and owner ("" from `state`).
    assert_eq!(
        state["rootfs"].as_str().map(std::path::PathBuf::from),
        Some(std::path::Path::new(bundle).join("rootfs")),
        "{state}"
    );
    let created = state["created"].as_str().expect("created is a string");
    assert!(
        created.len() >= 20 && created.as_bytes()[4] == b'-' && created.contains('T'),
        "created is not an RFC 3339 time: {created}"
    );
    assert!(obj["owner"].is_string(), "{state}");
    rt.delete_force(&id).assert_success();
}

#[test]
fn start_runs_the_user_program() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let pid = rt.pid(&id);
    rt.start(&id).assert_success();
    assert_eq!(rt.status(&id), "running");
    assert_eq!(rt.pid(&id), pid, "start changed the container's pid");
    wait_until("the container to exec its program", || (cmdline(pid)? == ["sleep", "1000"]).then_some(()));
    rt.delete_force(&id).assert_success();
}

#[test]
fn a_container_whose_program_exits_is_stopped() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["true"]);
    let id = rt.create_and_start(&b);
    rt.wait_for_status(&id, "stopped");
    // runc reports pid 0 for a stopped container.
    assert_eq!(rt.state(&id)["pid"], 0);
    rt.delete(&id).assert_success();
}

#[test]
fn start_fails_on_a_running_or_stopped_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    // runc: "cannot start an already running container"
    rt.start(&id).assert_failure().assert_stderr_contains("running");
    assert_eq!(rt.status(&id), "running");
    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    // runc: "cannot start a container that has stopped"
    rt.start(&id).assert_failure().assert_stderr_contains("stopped");
    rt.delete(&id).assert_success();
}

#[test]
fn a_container_without_a_process_is_created_and_start_refuses_it() {
    // config.md: `process` is OPTIONAL, REQUIRED only when start is called; runtime.md: start
    // MUST generate an error if it was not set (runtime-tools' start test has that check the wrong
    // way round).
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c.as_object_mut().expect("config.json is an object").remove("process");
    });
    let id = rt.new_id();
    let created = rt.create(&id, &b);
    if integration::runtime_is_runc() {
        created.assert_failure();
        assert_eq!(rt.list_ids(), Vec::<String>::new());
        integration::skip("runc 1.1.5 refuses a config without process at create");
        return;
    }
    created.assert_success();
    assert_eq!(rt.status(&id), "created");
    let pid = rt.pid(&id);
    assert!(pid_alive(pid), "the init {pid} of the created container is gone");
    rt.start(&id).assert_failure().assert_stderr_contains("process: not set");
    // Nothing can ever run in it: start stopped it, delete needs no --force.
    assert_eq!(rt.status(&id), "stopped");
    assert!(!pid_alive(pid), "the init {pid} still runs after start refused");
    rt.delete(&id).assert_success();
    assert_eq!(rt.list_ids(), Vec::<String>::new());
    // run starts the container, so it needs a process, and leaves nothing behind.
    rt.run(&b).assert_failure().assert_stderr_contains("process: is required by run");
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

// ---- kill ----

#[test]
fn kill_defaults_to_sigterm() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // pid 1 only dies of SIGTERM if it handles it; wait for the handler before signalling.
    b.sh("trap 'exit 0' TERM; sleep 1000 & wait");
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    let pid = rt.pid(&id);
    wait_until("the container to trap SIGTERM", || catches_signal(pid, libc::SIGTERM).then_some(()));
    rt.exec(&["kill", &id]).assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
}

#[test]
fn kill_accepts_signal_names_with_and_without_sig_and_numbers() {
    let rt = Runtime::new();
    let b = sleeper();
    for signal in ["KILL", "SIGKILL", "9"] {
        let id = rt.new_id();
        start_running(&rt, &id, &b);
        rt.kill(&id, signal).assert_success();
        rt.wait_for_status(&id, "stopped");
        rt.delete(&id).assert_success();
    }
}

#[test]
fn kill_with_an_unknown_signal_fails_and_leaves_the_container_running() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    // runc: `unknown signal "FOO"`; a number that is no signal fails in kill(2) with EINVAL.
    for bad in ["FOO", "SIGFOO", "99"] {
        let out = rt.kill(&id, bad);
        out.assert_failure();
        assert_eq!(rt.status(&id), "running", "after kill {bad}");
    }
    rt.kill(&id, "FOO").assert_stderr_contains("FOO");
    rt.delete_force(&id).assert_success();
}

#[test]
fn kill_of_a_stopped_container_fails_with_container_not_running() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    let out = rt.kill(&id, "KILL");
    assert_eq!(out.code(), 1, "{out}");
    out.assert_stderr_contains("container not running");
    rt.exec(&["kill", &id]).assert_failure().assert_stderr_contains("container not running");
    rt.delete(&id).assert_success();
}

#[test]
fn kill_all_of_a_stopped_container_succeeds() {
    // runc 1.1.5 signals every process left in the cgroup and, with none left, exits 0.
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    rt.exec(&["kill", "--all", &id, "KILL"]).assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.exec(&["kill", "--all", &id]).assert_success();
    rt.exec(&["kill", "-a", &id, "9"]).assert_success();
    rt.delete(&id).assert_success();
}

#[test]
fn kill_of_a_created_container_stops_it() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
}

// ---- delete ----

#[test]
fn delete_removes_every_trace_of_a_stopped_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    let pid = rt.pid(&id);
    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
    assert!(!pid_alive(pid));
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
    assert!(!rt.list_ids().contains(&id));
    assert_eq!(b.cgroup_dirs(), Vec::<std::path::PathBuf>::new());
    // runc 1.1.5 prints `container does not exist` (without the id) and exits 1.
    let out = rt.exec(&["state", &id]);
    assert_eq!(out.code(), 1, "{out}");
    out.assert_stderr_contains("does not exist");
}

#[test]
fn delete_without_force_refuses_a_running_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    // runc: "cannot delete container ID that is not stopped: running"
    rt.delete(&id).assert_failure().assert_stderr_contains("not stopped");
    assert_eq!(rt.status(&id), "running");
    assert!(pid_alive(rt.pid(&id)));
    rt.delete_force(&id).assert_success();
}

#[test]
fn delete_force_kills_and_removes_a_running_container() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    let pid = rt.pid(&id);
    rt.delete_force(&id).assert_success();
    wait_until("the container process to die", || (!pid_alive(pid)).then_some(()));
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
    assert_eq!(b.cgroup_pids(), Vec::<i32>::new());
    rt.exec(&["state", &id]).assert_failure();
}

#[test]
fn delete_of_a_created_container_needs_no_force() {
    // runc deletes a created (never started) container without --force, killing its init.
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    let pid = rt.pid(&id);
    rt.delete(&id).assert_success();
    wait_until("the created init to die", || (!pid_alive(pid)).then_some(()));
    rt.exec(&["state", &id]).assert_failure();
}

#[test]
fn commands_on_an_unknown_container_fail_with_does_not_exist() {
    let rt = Runtime::new();
    let id = rt.new_id();
    for args in [vec!["state", &id], vec!["start", &id], vec!["kill", &id, "KILL"], vec!["delete", &id]] {
        let out = rt.exec(&args);
        assert_eq!(out.code(), 1, "{out}");
        out.assert_stderr_contains("does not exist");
    }
}

// ---- --pid-file ----

#[test]
fn pid_file_relative_to_the_callers_cwd_holds_the_init_pid() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    let cwd = tempfile::tempdir_in("/tmp").expect("cwd");
    let mut cmd = rt.command(&["create", "--bundle", b.path_str(), "--pid-file", "init.pid", &id]);
    cmd.current_dir(cwd.path());
    rt.exec_cmd(cmd, None).assert_success();
    let text = std::fs::read_to_string(cwd.path().join("init.pid")).expect("pid file written");
    assert!(!text.ends_with('\n'), "pid file has a trailing newline: {text:?}");
    assert_eq!(text.parse::<i32>().ok(), Some(rt.pid(&id)));
    rt.delete_force(&id).assert_success();
}

#[test]
fn pid_file_absolute_holds_the_init_pid() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    let pid_file = rt.scratch().join("abs.pid");
    rt.exec(&["create", "--bundle", b.path_str(), "--pid-file", pid_file.to_str().expect("utf-8"), &id])
        .assert_success();
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    assert_eq!(text, rt.pid(&id).to_string());
    rt.delete_force(&id).assert_success();
}

#[test]
fn run_detached_writes_the_pid_file() {
    let rt = Runtime::new();
    let b = sleeper();
    let id = rt.new_id();
    let pid_file = rt.scratch().join("run.pid");
    rt.exec(&["run", "--detach", "--bundle", b.path_str(), "--pid-file", pid_file.to_str().expect("utf-8"), &id])
        .assert_success();
    assert_eq!(rt.status(&id), "running");
    let text = std::fs::read_to_string(&pid_file).expect("pid file written");
    assert_eq!(text, rt.pid(&id).to_string());
    rt.delete_force(&id).assert_success();
}

// ---- list ----

#[test]
fn list_of_an_empty_root_has_only_the_header() {
    let rt = Runtime::new();
    let out = rt.exec(&["list"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]);
    assert_eq!(rt.exec(&["list", "-q"]).stdout, "");
    // runc prints `null` for no containers; an empty array means the same to a JSON reader.
    let json = rt.exec(&["list", "--format", "json"]);
    json.assert_success();
    assert!(matches!(json.stdout.trim(), "null" | "[]"), "{json}");
}

#[test]
fn list_shows_each_container_as_a_table_row_json_and_id() {
    let rt = Runtime::new();
    // A bundle each: under the systemd driver one cgroupsPath is one unit, for one container.
    let (b_created, b_running) = (sleeper(), sleeper());
    let created = rt.new_id();
    let running = rt.new_id();
    rt.create_ok(&created, &b_created);
    start_running(&rt, &running, &b_running);

    let mut ids = rt.list_ids();
    ids.sort();
    let mut want = vec![created.clone(), running.clone()];
    want.sort();
    assert_eq!(ids, want);

    let table = rt.exec(&["list"]);
    table.assert_success();
    for (id, status, b) in [(&created, "created", &b_created), (&running, "running", &b_running)] {
        let row: Vec<&str> = table
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row.len(), 6, "ID PID STATUS BUNDLE CREATED OWNER: {row:?}");
        assert_eq!(row[1], rt.pid(id).to_string());
        assert_eq!(row[2], status);
        assert_eq!(row[3], b.path_str());
        assert_eq!(row[4], rt.state(id)["created"].as_str().expect("created"));
        assert_eq!(row[5], "root");
    }

    let json = rt.exec(&["list", "--format", "json"]);
    json.assert_success();
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("list json");
    let entries = parsed.as_array().expect("list json is an array");
    assert_eq!(entries.len(), 2, "{json}");
    for (id, status, b) in [(&created, "created", &b_created), (&running, "running", &b_running)] {
        let e = entries.iter().find(|e| e["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} missing from {json}"));
        assert_eq!(e["status"], status);
        assert_eq!(e["pid"], rt.pid(id));
        assert_eq!(e["bundle"], b.path_str());
        assert_eq!(e["owner"], "root");
        assert!(e["created"].is_string());
    }
    rt.delete_force(&created).assert_success();
    rt.delete_force(&running).assert_success();
}

// ---- the harness itself ----

#[test]
fn dropping_the_harness_removes_containers_cgroups_and_dirs() {
    let b = sleeper();
    let rt = Runtime::new();
    let id = rt.new_id();
    start_running(&rt, &id, &b);
    let pid = rt.pid(&id);
    let root = rt.root();
    let bundle_dir = b.path().to_path_buf();
    assert!(!b.cgroup_dirs().is_empty(), "the runtime made no cgroup under {}", b.cgroups_path());
    drop(rt);
    wait_until("the container to die", || (!pid_alive(pid)).then_some(()));
    assert!(!root.exists());
    assert!(b.cgroup_dirs().is_empty());
    drop(b);
    assert!(!bundle_dir.exists());
}
