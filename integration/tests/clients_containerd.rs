//! containerd 1.6 running containers through the runtime under test (`ctr run --runtime
//! io.containerd.runc.v2 --runc-binary PATH --runc-root PRIVATE`): what a ctr user sees, checked
//! against the host (cgroup files, freezer state, processes, mounts). A private containerd per
//! test binary (the leak loop has its own); without containerd installed every test skips.
//! ctr has no user or hostname flag for `run`, no `stop` with a timeout and no logs command:
//! user is checked through `task exec --user`, logs through `--log-uri file://`.

use integration::console::run_in_pty;
use integration::engines::{eventually, Engine, Kind, IMAGE};

fn containerd() -> Option<std::sync::Arc<Engine>> {
    Engine::shared(Kind::Containerd)
}

fn name() -> String {
    integration::unique_name("c")
}

/// A detached container `id` running `script`, its output going to a file (returned).
fn detached(c: &Engine, id: &str, flags: &[&str], script: &str) -> std::path::PathBuf {
    let log = c.dir().join(format!("{id}.log"));
    let uri = format!("file://{}", log.display());
    let mut args = vec!["run", "-d", "--log-uri", &uri];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, id, "sh", "-c", script]);
    c.run(&args).ok();
    log
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// `ctr task ls` status of `id` (RUNNING, PAUSED, STOPPED).
fn status(c: &Engine, id: &str) -> String {
    let ls = c.run(&["task", "ls"]);
    ls.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

fn remove(c: &Engine, id: &str) {
    let _ = c.run(&["task", "kill", "-s", "SIGKILL", id]);
    eventually("the task to stop", || status(c, id) != "RUNNING");
    c.run(&["task", "rm", id]).ok();
    c.run(&["containers", "rm", id]).ok();
}

#[test]
fn exit_codes_streams_stdin_and_process_settings() {
    let Some(c) = containerd() else { return };
    let o = c.run(&["run", "--rm", IMAGE, &name(), "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!(o.code, Some(3), "{o}");
    assert_eq!(o.stdout, "to-out\n", "{o}");
    assert!(o.stderr.starts_with("to-err\n"), "{o}");

    let o = c.run(&["run", "--rm", "--env", "FOO=bar", "--cwd", "/tmp", IMAGE, &name(), "sh", "-c", "echo $FOO; pwd"]);
    assert_eq!(o.ok().stdout, "bar\n/tmp\n");
    integration::skip(
        "ctr run has no --user or --hostname: user is checked with task exec --user, hostname not with ctr",
    );

    let input: Vec<u8> = (0..200_000).map(|i| format!("line {i}\n")).collect::<String>().into_bytes();
    let o = c.run_with_stdin(&["run", "--rm", IMAGE, &name(), "wc", "-c"], input.clone());
    assert_eq!(o.ok().text(), input.len().to_string(), "all of stdin arrived");

    let src = c.dir().join("ro-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("f"), "host file\n").expect("write");
    let mount = format!("type=bind,src={},dst=/m,options=rbind:ro", src.display());
    let o = c.run(&[
        "run", "--rm", "--read-only", "--mount", &mount, IMAGE, &name(), "sh", "-c",
        "cat /m/f; touch /x 2>/dev/null && echo rootfs-writable; touch /m/y 2>/dev/null && echo bind-writable; echo end",
    ]);
    assert_eq!(o.ok().stdout, "host file\nend\n");
    assert!(!src.join("y").exists());
}

#[test]
fn detached_logs_exec_and_ps() {
    let Some(c) = containerd() else { return };
    let id = name();
    let log = detached(&c, &id, &[], "echo started; exec sleep 1001");
    eventually("the container's first line in its log", || read(&log).contains("started"));

    let o = c.run(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo from-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 4",
    ]);
    assert_eq!(o.code, Some(4), "{o}");
    assert_eq!(o.stdout, "from-exec\nsleep 1001 ");
    let o =
        c.run(&["task", "exec", "--exec-id", "e2", "--user", "1000", "--cwd", "/tmp", &id, "sh", "-c", "id -u; pwd"]);
    assert_eq!(o.ok().stdout, "1000\n/tmp\n");
    let exec_tty =
        c.command(&["task", "exec", "-t", "--exec-id", "e3", &id, "sh", "-c", "tty; [ -t 0 ] && echo in-a-tty"]);
    let (code, screen) = run_in_pty(exec_tty, 24, 80, b"");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("/dev/pts/") && screen.contains("in-a-tty"), "{screen:?}");

    // ps lists host pids: those in the container's cgroup
    let ps = c.run(&["task", "ps", &id]);
    let pids: Vec<&str> = ps.ok().stdout.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    let procs = c.cgroup_file(&id, "cgroup.procs").expect("the container's cgroup");
    assert!(!pids.is_empty() && pids.iter().all(|p| procs.lines().any(|q| q == *p)), "{ps} vs {procs:?}");
    remove(&c, &id);
}

#[test]
fn pause_freezes_and_limits_reach_the_cgroup() {
    let Some(c) = containerd() else { return };
    let id = name();
    detached(&c, &id, &["--memory-limit", "67108864", "--cpus", "0.5"], "exec sleep 1002");
    assert_eq!(c.cgroup_file(&id, "memory.limit_in_bytes").as_deref(), Some("67108864"));
    assert_eq!(c.cgroup_file(&id, "cpu.cfs_quota_us").as_deref(), Some("50000"));
    assert_eq!(c.cgroup_file(&id, "cpu.cfs_period_us").as_deref(), Some("100000"));
    let m = c.run(&["task", "metrics", &id]);
    let limit =
        m.ok().stdout.lines().find(|l| l.starts_with("memory.limit_in_bytes")).map(|l| l.split_whitespace().nth(1));
    assert_eq!(limit, Some(Some("67108864")), "{m}");
    assert!(m.stdout.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pids.current", "1"]), "{m}");

    c.run(&["task", "pause", &id]).ok();
    assert_eq!(c.cgroup_file(&id, "freezer.state").as_deref(), Some("FROZEN"));
    assert_eq!(status(&c, &id), "PAUSED");
    c.run(&["task", "resume", &id]).ok();
    assert_eq!(c.cgroup_file(&id, "freezer.state").as_deref(), Some("THAWED"));
    assert_eq!(c.run(&["task", "exec", "--exec-id", "e1", &id, "echo", "alive"]).ok().stdout, "alive\n");
    remove(&c, &id);
}

#[test]
fn signals_and_oom() {
    let Some(c) = containerd() else { return };
    let trap = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let id = name();
    let run = c.spawn(&["run", "--rm", IMAGE, &id, "sh", "-c", trap], None);
    eventually("the trap to be set", || run.stdout_now().contains("ready"));
    c.run(&["task", "kill", &id]).ok();
    let o = run.wait();
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "ready\ngot-term\n"), "{o}");

    let id = name();
    let run = c.spawn(&["run", "--rm", IMAGE, &id, "sh", "-c", trap], None);
    eventually("the trap to be set", || run.stdout_now().contains("ready"));
    c.run(&["task", "kill", "-s", "SIGKILL", &id]).ok();
    assert_eq!(run.wait().code, Some(137));

    let o = c.run(&[
        "run",
        "--rm",
        "--memory-limit",
        "16777216",
        IMAGE,
        &name(),
        "sh",
        "-c",
        "x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(o.code, Some(137), "{o}");
    integration::skip("ctr has no stop with a timeout: stop escalation is checked with docker and podman only");
}

/// Waits inside the container until the terminal has the size the client's pty has, then prints it.
const TTY_SIZE: &str =
    "i=0; while [ \"$(stty size)\" != '33 111' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; stty size";

#[test]
fn tty_with_input_and_the_window_size() {
    let Some(c) = containerd() else { return };
    // ctr run -t attaches stdin too (it has no -i)
    let script = format!("tty; read line; echo \"got:$line\"; {TTY_SIZE}; exit 5");
    let (code, screen) =
        run_in_pty(c.command(&["run", "--rm", "-t", IMAGE, &name(), "sh", "-c", &script]), 33, 111, b"typed\n");
    assert_eq!(code, Some(5), "{screen:?}");
    assert!(screen.contains("/dev/pts/0") && screen.contains("got:typed") && screen.contains("33 111"), "{screen:?}");
}

#[test]
fn restart_and_removal_leaves_nothing() {
    let Some(c) = containerd() else { return };
    let id = name();
    let log = detached(&c, &id, &[], "echo run; exit 7");
    eventually("the task to exit", || status(&c, &id) == "STOPPED");
    c.run(&["task", "rm", &id]).ok();
    // a new task of the same container: the process again
    let uri = format!("file://{}", log.display());
    c.run(&["task", "start", "-d", "--log-uri", &uri, &id]).ok();
    eventually("the second run", || read(&log).matches("run").count() == 2);
    eventually("the task to exit", || status(&c, &id) == "STOPPED");
    c.run(&["task", "rm", &id]).ok();
    c.run(&["containers", "rm", &id]).ok();
    assert_eq!(c.traces_of(&id), Default::default(), "nothing left after task rm and containers rm");

    let id = name();
    detached(&c, &id, &[], "exec sleep 1003");
    let state = c.runtime_state(&id).expect("the runtime under test runs the container");
    assert_eq!(state["status"], "running", "{state}");
    let traces = c.footprint().only(&id);
    assert!(!traces.state.is_empty() && !traces.cgroups.is_empty() && !traces.processes.is_empty(), "{traces:?}");
    remove(&c, &id);
    assert_eq!(c.traces_of(&id), Default::default(), "no state, cgroup, mount or process left");
}

#[test]
fn fifty_rm_containers_leave_no_trace() {
    let Some(c) = Engine::start(Kind::Containerd) else { return };
    c.run(&["run", "--rm", IMAGE, &name(), "true"]).ok();
    let baseline = c.idle_footprint();
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                for _ in 0..10 {
                    c.run(&["run", "--rm", IMAGE, &name(), "true"]).ok();
                }
            });
        }
    });
    c.assert_settles_to(&baseline);
}
