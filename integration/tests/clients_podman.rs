//! podman 4.3 running containers through the runtime under test (`--runtime PATH`, private
//! --root/--runroot/--tmpdir, cgroupfs, `--network none`, file events, a private containers.conf
//! with nofile/nproc below this host's hard limits): what a podman user sees, checked against the
//! host (cgroup files, freezer state, processes, mounts). Without podman every test skips.

use integration::console::run_in_pty;
use integration::engines::{eventually, Engine, Kind, IMAGE};

fn podman() -> Option<std::sync::Arc<Engine>> {
    Engine::shared(Kind::Podman)
}

/// A detached container running `script`; returns its full id.
fn detached(p: &Engine, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    p.run(&args).ok().text().to_string()
}

fn inspect(p: &Engine, id: &str, format: &str) -> String {
    p.run(&["inspect", "-f", format, id]).ok().text().to_string()
}

#[test]
fn exit_codes_streams_stdin_and_process_settings() {
    let Some(p) = podman() else { return };
    let o = p.run(&["run", "--rm", IMAGE, "sh", "-c", "echo to-out; echo to-err >&2; exit 3"]);
    assert_eq!(o.code, Some(3), "{o}");
    assert_eq!(o.stdout, "to-out\n", "{o}");
    assert_eq!(o.stderr, "to-err\n", "{o}");

    let o = p.run(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "podbox",
        IMAGE,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g; hostname; ulimit -n",
    ]);
    assert_eq!(o.ok().stdout.lines().take(5).collect::<Vec<_>>(), ["bar", "/tmp", "1000", "1000", "podbox"]);

    let input: Vec<u8> = (0..200_000).map(|i| format!("line {i}\n")).collect::<String>().into_bytes();
    let o = p.run_with_stdin(&["run", "--rm", "-i", IMAGE, "wc", "-c"], input.clone());
    assert_eq!(o.ok().text(), input.len().to_string(), "all of stdin arrived");

    let src = p.dir().join("ro-src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(src.join("f"), "host file\n").expect("write");
    let vol = format!("{}:/m:ro", src.display());
    let o = p.run(&[
        "run", "--rm", "--read-only", "-v", &vol, IMAGE, "sh", "-c",
        "cat /m/f; touch /x 2>/dev/null && echo rootfs-writable; touch /m/y 2>/dev/null && echo bind-writable; echo end",
    ]);
    assert_eq!(o.ok().stdout, "host file\nend\n");
    assert!(!src.join("y").exists());
}

#[test]
fn detached_logs_exec_and_top() {
    let Some(p) = podman() else { return };
    let id = detached(&p, &[], "echo started; echo err-line >&2; exec sleep 1001");
    // stdout and stderr reach the log separately: wait for both
    eventually("both lines in podman logs", || {
        let logs = p.run(&["logs", &id]);
        logs.stdout.contains("started") && logs.stderr.contains("err-line")
    });
    let logs = p.run(&["logs", &id]);
    assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("started\n", "err-line\n"));

    let o = p.run(&["exec", &id, "sh", "-c", "echo from-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 4"]);
    assert_eq!(o.code, Some(4), "{o}");
    assert_eq!(o.stdout, "from-exec\nsleep 1001 ");
    let o = p.run(&["exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", &id, "sh", "-c", "id -u; pwd; echo $X"]);
    assert_eq!(o.ok().stdout, "1000\n/tmp\ny\n");
    let (code, screen) =
        run_in_pty(p.command(&["exec", "-t", &id, "sh", "-c", "tty; [ -t 0 ] && echo in-a-tty"]), 24, 80, b"");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("/dev/pts/") && screen.contains("in-a-tty"), "{screen:?}");

    // top's host pids (hpid) are the ones in the container's cgroup on the host
    let top = p.run(&["top", &id, "hpid", "args"]);
    assert!(top.ok().stdout.contains("sleep 1001"), "{top}");
    let procs = p.cgroup_file(&id, "cgroup.procs").expect("the container's cgroup");
    let pid = top.stdout.lines().find(|l| l.contains("sleep 1001")).and_then(|l| l.split_whitespace().next());
    assert!(procs.lines().any(|q| Some(q) == pid), "top's pid {pid:?} not in the cgroup {procs:?}");
    p.run(&["rm", "-f", "-t", "0", &id]).ok();
}

#[test]
fn pause_freezes_and_limits_reach_the_cgroup() {
    let Some(p) = podman() else { return };
    let id = detached(&p, &["--memory", "64m", "--cpus", "0.5"], "exec sleep 1002");
    assert_eq!(p.cgroup_file(&id, "memory.limit_in_bytes").as_deref(), Some("67108864"));
    assert_eq!(p.cgroup_file(&id, "cpu.cfs_quota_us").as_deref(), Some("50000"));
    assert_eq!(p.cgroup_file(&id, "cpu.cfs_period_us").as_deref(), Some("100000"));
    let stats = p.run(&["stats", "--no-stream", "--format", "{{.MemUsage}}|{{.PIDs}}", &id]);
    let (mem, pids) = stats.ok().text().split_once('|').expect("two fields");
    assert!(mem.ends_with("/ 67.11MB"), "{stats}");
    assert_eq!(pids, "1", "{stats}");

    p.run(&["pause", &id]).ok();
    assert_eq!(p.cgroup_file(&id, "freezer.state").as_deref(), Some("FROZEN"));
    assert_eq!(inspect(&p, &id, "{{.State.Status}}"), "paused");
    p.run(&["unpause", &id]).ok();
    assert_eq!(p.cgroup_file(&id, "freezer.state").as_deref(), Some("THAWED"));
    assert_eq!(p.run(&["exec", &id, "echo", "alive"]).ok().stdout, "alive\n");
    p.run(&["rm", "-f", "-t", "0", &id]).ok();
}

#[test]
fn signals_stop_timeout_and_oom() {
    let Some(p) = podman() else { return };
    let trap = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let id = detached(&p, &[], trap);
    eventually("the trap to be set", || p.run(&["logs", &id]).stdout.contains("ready"));
    p.run(&["stop", &id]).ok();
    assert_eq!(inspect(&p, &id, "{{.State.ExitCode}}"), "0");
    assert_eq!(p.run(&["logs", &id]).stdout, "ready\ngot-term\n");

    // restart of the stopped container: the same process again
    p.run(&["start", &id]).ok();
    eventually("the second run's ready", || p.run(&["logs", &id]).stdout.matches("ready").count() == 2);
    p.run(&["kill", &id]).ok();
    assert_eq!(p.run(&["wait", &id]).ok().text(), "137", "SIGKILL");

    let id2 = detached(&p, &[], "trap '' TERM; echo ready; while true; do sleep 0.1; done");
    eventually("the trap to be set", || p.run(&["logs", &id2]).stdout.contains("ready"));
    p.run(&["stop", "-t", "1", &id2]).ok();
    assert_eq!(inspect(&p, &id2, "{{.State.ExitCode}}"), "137", "stop escalated to SIGKILL");

    let id3 = detached(&p, &["--memory", "16m", "--memory-swap", "16m"], "x=a; while true; do x=$x$x; done");
    assert_eq!(p.run(&["wait", &id3]).ok().text(), "137");
    // not .State.OOMKilled: podman 4.3 with its conmon leaves it false on this hybrid host, runc too
    p.run(&["rm", "-f", "-t", "0", &id, &id2, &id3]).ok();
}

/// Waits inside the container until the terminal has the size the client's pty has, then prints it.
const TTY_SIZE: &str =
    "i=0; while [ \"$(stty size)\" != '33 111' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; stty size";

#[test]
fn tty_and_interactive_tty_with_the_window_size() {
    let Some(p) = podman() else { return };
    let script = format!("tty; {TTY_SIZE}; exit 5");
    let (code, screen) = run_in_pty(p.command(&["run", "--rm", "-t", IMAGE, "sh", "-c", &script]), 33, 111, b"");
    assert_eq!(code, Some(5), "{screen:?}");
    assert!(screen.contains("/dev/pts/0") && screen.contains("33 111"), "{screen:?}");

    let script = format!("read line; echo \"got:$line\"; {TTY_SIZE}");
    let (code, screen) =
        run_in_pty(p.command(&["run", "--rm", "-it", IMAGE, "sh", "-c", &script]), 33, 111, b"typed\n");
    assert_eq!(code, Some(0), "{screen:?}");
    assert!(screen.contains("got:typed") && screen.contains("33 111"), "{screen:?}");
}

#[test]
fn wait_and_removal_leaves_nothing() {
    let Some(p) = podman() else { return };
    let id = detached(&p, &[], "sleep 0.2; exit 9");
    assert_eq!(p.run(&["wait", &id]).ok().text(), "9");
    p.run(&["rm", &id]).ok();

    let id = detached(&p, &[], "exec sleep 1003");
    let state = p.runtime_state(&id).expect("the runtime under test runs the container");
    assert_eq!(state["status"], "running", "{state}");
    let traces = p.footprint().only(&id);
    assert!(!traces.state.is_empty() && !traces.cgroups.is_empty() && !traces.processes.is_empty(), "{traces:?}");
    p.run(&["rm", "-f", "-t", "0", &id]).ok();
    assert_eq!(p.traces_of(&id), Default::default(), "podman rm leaves no state, cgroup, mount or process");
}

#[test]
fn fifty_rm_containers_leave_no_trace() {
    let Some(p) = Engine::start(Kind::Podman) else { return };
    p.run(&["run", "--rm", IMAGE, "true"]).ok();
    let baseline = p.idle_footprint();
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                for _ in 0..10 {
                    p.run(&["run", "--rm", IMAGE, "true"]).ok();
                }
            });
        }
    });
    p.assert_settles_to(&baseline);
}
