//! dockerd 20.10 running containers through the runtime under test (`--add-runtime skiff=PATH`,
//! `docker run --runtime skiff --network none`): what a docker user sees, checked against the
//! host (cgroup files, freezer state, processes, mounts). A private dockerd per test binary
//! (the leak loop has its own); without docker.io installed every test skips with a note.

use integration::console::run_in_pty;
use integration::engines::{eventually, Engine, Kind, IMAGE};

fn docker() -> Option<std::sync::Arc<Engine>> {
    Engine::shared(Kind::Docker)
}

/// A detached container running `script`; returns its full id.
fn detached(d: &Engine, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    d.run(&args).ok().text().to_string()
}

fn inspect(d: &Engine, id: &str, format: &str) -> String {
    d.run(&["inspect", "-f", format, id]).ok().text().to_string()
}

/// Numbered lines, large enough to fill any pipe buffer many times over.
fn big_input() -> Vec<u8> {
    (0..200_000).map(|i| format!("line {i}\n")).collect::<String>().into_bytes()
}

#[test]
fn exit_codes_streams_stdin_and_process_settings() {
    let Some(d) = docker() else { return };
    let o = d.run(&["run", "--rm", IMAGE, "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!(o.code, Some(3), "{o}");
    assert_eq!(o.stdout, "to-out\n", "{o}");
    assert_eq!(o.stderr, "to-err\n", "{o}");

    let o = d.run(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "dockbox",
        IMAGE,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; hostname",
    ]);
    assert_eq!(o.ok().stdout.lines().collect::<Vec<_>>(), ["bar", "/tmp", "1000", "1000", "dockbox"]);

    let input = big_input();
    let o = d.run_with_stdin(&["run", "--rm", "-i", IMAGE, "wc", "-c"], input.clone());
    assert_eq!(o.ok().text(), input.len().to_string(), "all of stdin arrived");
    let o = d.run_with_stdin(&["run", "--rm", "-i", IMAGE, "tail", "-n", "1"], input);
    assert_eq!(o.ok().stdout, "line 199999\n");

    let src = d.dir().join("ro-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("f"), "host file\n").expect("write");
    let vol = format!("{}:/m:ro", src.display());
    let o = d.run(&[
        "run", "--rm", "--read-only", "-v", &vol, IMAGE, "sh", "-c",
        "cat /m/f; touch /x 2>/dev/null && echo rootfs-writable; touch /m/y 2>/dev/null && echo bind-writable; echo end",
    ]);
    assert_eq!(o.ok().stdout, "host file\nend\n");
    assert!(!src.join("y").exists());
}

#[test]
fn detached_logs_exec_and_top() {
    let Some(d) = docker() else { return };
    let id = detached(&d, &[], "echo started; echo err-line >&2; exec sleep 1001");
    // stdout and stderr reach the log separately: wait for both
    eventually("both lines in docker logs", || {
        let logs = d.run(&["logs", &id]);
        logs.stdout.contains("started") && logs.stderr.contains("err-line")
    });
    let logs = d.run(&["logs", &id]);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("started\n", "err-line\n"));

    let o = d.run(&["exec", &id, "sh", "-c", "echo from-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 4"]);
    assert_eq!(o.code, Some(4), "{o}");
    assert_eq!(o.stdout, "from-exec\nsleep 1001 ");
    let o = d.run(&["exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", &id, "sh", "-c", "id -u; pwd; echo $X"]);
    assert_eq!(o.ok().stdout, "1000\n/tmp\ny\n");
    let (code, screen) =
        run_in_pty(d.command(&["exec", "-t", &id, "sh", "-c", "tty; [ -t 0 ] && echo in-a-tty"]), 24, 80, b"");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("/dev/pts/") && screen.contains("in-a-tty"), "{screen:?}");

    // top lists host pids: the container's, as its cgroup on the host has them
    let top = d.run(&["top", &id, "-o", "pid,args"]);
    assert!(top.ok().stdout.contains("sleep 1001"), "{top}");
    let procs = d.cgroup_file(&id, "cgroup.procs").expect("the container's cgroup");
    let pid = top.stdout.lines().find(|l| l.contains("sleep 1001")).and_then(|l| l.split_whitespace().next());
    assert!(procs.lines().any(|p| Some(p) == pid), "top's pid {pid:?} not in the cgroup {procs:?}");
    d.run(&["rm", "-f", &id]).ok();
}

#[test]
fn pause_freezes_and_limits_reach_the_cgroup() {
    let Some(d) = docker() else { return };
    let id = detached(&d, &["--memory", "64m", "--cpus", "0.5"], "exec sleep 1002");
    assert_eq!(d.cgroup_file(&id, "memory.limit_in_bytes").as_deref(), Some("67108864"));
    assert_eq!(d.cgroup_file(&id, "cpu.cfs_quota_us").as_deref(), Some("50000"));
    assert_eq!(d.cgroup_file(&id, "cpu.cfs_period_us").as_deref(), Some("100000"));
    let stats = d.run(&["stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", &id]);
    let (mem, pids) = stats.ok().text().split_once('|').expect("two fields");
    assert!(mem.ends_with("/ 64MiB"), "{stats}");
    assert_eq!(pids, "1", "{stats}");

    d.run(&["pause", &id]).ok();
    assert_eq!(d.cgroup_file(&id, "freezer.state").as_deref(), Some("FROZEN"));
    assert_eq!(inspect(&d, &id, "{{.State.Status}}"), "paused");
    d.run(&["unpause", &id]).ok();
    assert_eq!(d.cgroup_file(&id, "freezer.state").as_deref(), Some("THAWED"));
    assert_eq!(d.run(&["exec", &id, "echo", "alive"]).ok().stdout, "alive\n");
    d.run(&["rm", "-f", &id]).ok();
}

#[test]
fn signals_stop_timeout_and_oom() {
    let Some(d) = docker() else { return };
    let trap = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let id = detached(&d, &[], trap);
    eventually("the trap to be set", || d.run(&["logs", &id]).stdout.contains("ready"));
    d.run(&["stop", &id]).ok();
    assert_eq!(inspect(&d, &id, "{{.State.ExitCode}}"), "0");
    assert_eq!(d.run(&["logs", &id]).stdout, "ready\ngot-term\n");

    // restart of the stopped container: the same process again
    d.run(&["start", &id]).ok();
    eventually("the second run's ready", || d.run(&["logs", &id]).stdout.matches("ready").count() == 2);
    d.run(&["kill", &id]).ok();
    assert_eq!(d.run(&["wait", &id]).ok().text(), "137", "SIGKILL");

    let id2 = detached(&d, &[], "trap '' TERM; echo ready; while true; do sleep 0.1; done");
    eventually("the trap to be set", || d.run(&["logs", &id2]).stdout.contains("ready"));
    d.run(&["stop", "-t", "1", &id2]).ok();
    assert_eq!(inspect(&d, &id2, "{{.State.ExitCode}}"), "137", "stop escalated to SIGKILL");

    let id3 = detached(&d, &["--memory", "16m", "--memory-swap", "16m"], "x=a; while true; do x=$x$x; done");
    assert_eq!(d.run(&["wait", &id3]).ok().text(), "137");
    assert_eq!(inspect(&d, &id3, "{{.State.OOMKilled}}"), "true");
    d.run(&["rm", "-f", &id, &id2, &id3]).ok();
}

/// Waits inside the container until the terminal has the size the client's pty has, then prints it.
const TTY_SIZE: &str =
    "i=0; while [ \"$(stty size)\" != '33 111' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; stty size";

#[test]
fn tty_and_interactive_tty_with_the_window_size() {
    let Some(d) = docker() else { return };
    let (code, screen) = run_in_pty(
        d.command(&["run", "--rm", "-t", IMAGE, "sh", "-c", &format!("tty; {TTY_SIZE}; exit 5")]),
        33,
        111,
        b"",
    );
    assert_eq!(code, Some(5), "{screen:?}");
    assert!(screen.contains("/dev/pts/0") && screen.contains("33 111"), "{screen:?}");

    let script = format!("read line; echo \"got:$line\"; {TTY_SIZE}");
    let (code, screen) =
        run_in_pty(d.command(&["run", "--rm", "-it", IMAGE, "sh", "-c", &script]), 33, 111, b"typed\n");
    assert_eq!(code, Some(0), "{screen:?}");
    assert!(screen.contains("got:typed") && screen.contains("33 111"), "{screen:?}");
}

#[test]
fn init_wait_and_removal_leaves_nothing() {
    let Some(d) = docker() else { return };
    let o = d.run(&["run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; echo $$"]);
    assert_eq!(o.ok().stdout.lines().next(), Some("docker-init"), "{o}");
    assert_ne!(o.stdout.lines().nth(1), Some("1"), "the command is not pid 1");

    let id = detached(&d, &[], "sleep 0.2; exit 9");
    assert_eq!(d.run(&["wait", &id]).ok().text(), "9");
    d.run(&["rm", &id]).ok();

    let id = detached(&d, &[], "exec sleep 1003");
    let state = d.runtime_state(&id).expect("the runtime under test runs the container");
    assert_eq!(state["status"], "running", "{state}");
    let traces = d.footprint().only(&id);
    assert!(!traces.state.is_empty() && !traces.cgroups.is_empty() && !traces.processes.is_empty(), "{traces:?}");
    d.run(&["rm", "-f", &id]).ok();
    assert_eq!(d.traces_of(&id), Default::default(), "docker rm leaves no state, cgroup, mount or process");
}

#[test]
fn default_seccomp_profile_and_capabilities() {
    let Some(d) = docker() else { return };
    let o = d.run(&["run", "--rm", IMAGE, "sh", "-c", "grep -E '^(Seccomp|CapEff|CapBnd):' /proc/self/status"]);
    let status: Vec<String> =
        o.ok().stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    // docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
    // net_bind_service net_raw sys_chroot mknod audit_write setfcap
    assert_eq!(status, ["CapEff: 00000000a80425fb", "CapBnd: 00000000a80425fb", "Seccomp: 2"], "{o}");
    let o = d.run(&["run", "--rm", IMAGE, "sh", "-c", "mount -t tmpfs none /mnt 2>&1 || echo refused"]);
    assert!(o.stdout.contains("refused"), "{o}");
}

#[test]
fn fifty_rm_containers_leave_no_trace() {
    let Some(d) = Engine::start(Kind::Docker) else { return };
    d.run(&["run", "--rm", IMAGE, "true"]).ok();
    let baseline = d.idle_footprint();
    // five clients at a time: the engine's own work dominates each run
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                for _ in 0..10 {
                    d.run(&["run", "--rm", IMAGE, "true"]).ok();
                }
            });
        }
    });
    d.assert_settles_to(&baseline);
}
