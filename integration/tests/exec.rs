//! `exec`: a second process in a running container shares its namespaces and cgroup, takes the
//! flags it is given, and reports its own exit status.

use integration::console::{read_pty_to_end, ConsoleSocket};
use integration::{Bundle, Runtime};
use serde_json::json;

fn running(rt: &Runtime) -> (String, Bundle) {
    let mut b = Bundle::new();
    b.edit(|c| c["hostname"] = json!("exec-box")).args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
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

/// The hex mask of a `Cap*:` line of /proc/self/status as the exec'd process prints it.
fn cap_mask(out: &str) -> u64 {
    let hex = out.split_whitespace().nth(1).unwrap_or_else(|| panic!("no mask in {out:?}"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{hex:?}: {e}"))
}

#[test]
fn exec_cap_additional_gids_and_no_new_privs() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false)).args(&["sleep", "1000"]);
    let id = rt.create_and_start(&b);
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    let plain = rt.exec(&["exec", &id, "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(cap_mask(&plain.assert_success().stdout) & CAP_SYS_ADMIN, 0, "{plain}");
    let with = rt.exec(&["exec", "--cap", "CAP_SYS_ADMIN", &id, "grep", "CapEff", "/proc/self/status"]);
    assert_ne!(cap_mask(&with.assert_success().stdout) & CAP_SYS_ADMIN, 0, "{with}");

    let out = rt.exec(&["exec", "--user", "1000:1000", "--additional-gids", "50", &id, "id", "-G"]);
    assert_eq!(out.assert_success().stdout.split_whitespace().collect::<Vec<_>>(), ["1000", "50"]);

    let nnp = |extra: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&id, "grep", "NoNewPrivs", "/proc/self/status"]);
        let out = rt.exec(&args);
        out.assert_success().stdout.split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert_eq!(nnp(&[]), "0", "the config's noNewPrivileges: false");
    assert_eq!(nnp(&["--no-new-privs"]), "1");
    rt.delete_force(&id).assert_success();
}

#[test]
fn exec_process_json_preserve_fds_and_tty() {
    let rt = Runtime::new();
    let (id, _b) = running(&rt);
    let process = rt.scratch().join("process.json");
    let spec = json!({
        "args": ["sh", "-c", "echo $WHO; pwd; id -u"],
        "env": ["PATH=/bin", "WHO=from-json"],
        "cwd": "/tmp",
        "user": {"uid": 1000, "gid": 1000},
    });
    std::fs::write(&process, spec.to_string()).expect("write process.json");
    let out = rt.exec(&["exec", "--process", process.to_str().expect("utf-8"), &id]);
    assert_eq!(out.assert_success().stdout, "from-json\n/tmp\n1000\n");

    // a shell opens fd 3 for the runtime, as a shim passing a pipe would
    let file = rt.scratch().join("fd3.out");
    let script = format!(
        "exec 3>'{}'; exec '{}' --root '{}' exec --preserve-fds 1 {id} sh -c 'echo through-fd-3 >&3'",
        file.display(),
        rt.binary().display(),
        rt.root().display(),
    );
    let status = std::process::Command::new("/bin/sh").arg("-c").arg(&script).status().expect("run sh");
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&file).expect("fd 3 output"), "through-fd-3\n");

    let sock = ConsoleSocket::bind(&rt.scratch().join("exec-console.sock"));
    let sock_path = sock.path().to_str().expect("utf-8").to_string();
    let pid_file = rt.scratch().join("tty-exec.pid");
    rt.exec(&[
        "exec",
        "--tty",
        "--console-socket",
        &sock_path,
        "--detach",
        "--pid-file",
        pid_file.to_str().expect("utf-8"),
        &id,
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo stdin-is-a-tty",
    ])
    .assert_success();
    let text = read_pty_to_end(sock.receive_pty());
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines.len() == 2 && lines[0].starts_with("/dev/pts/") && lines[1] == "stdin-is-a-tty", "{text:?}");
    rt.delete_force(&id).assert_success();
}

#[test]
fn exec_into_a_paused_container_fails_as_in_runc() {
    // runc: "cannot exec in a paused container"
    let rt = Runtime::new();
    let (id, _b) = running(&rt);
    rt.exec(&["pause", &id]).assert_success();
    let out = rt.exec(&["exec", &id, "true"]);
    out.assert_failure().assert_stderr_contains("paused");
    rt.exec(&["resume", &id]).assert_success();
    rt.exec(&["exec", &id, "true"]).assert_success();
    rt.delete_force(&id).assert_success();
}

#[test]
fn exec_with_ignore_paused_goes_into_a_paused_container_and_runs_once_resumed() {
    let rt = Runtime::new();
    let (id, _b) = running(&rt);
    rt.exec(&["pause", &id]).assert_success();
    // Like runc's, the exec joins the frozen cgroup and so waits there until the resume.
    let mut exec = rt
        .command(&["exec", "--ignore-paused", &id, "sh", "-c", "echo ran > /dev/shm/marker"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn exec");
    rt.exec(&["resume", &id]).assert_success();
    assert!(exec.wait().expect("wait for exec").success());
    assert_eq!(rt.exec(&["exec", &id, "cat", "/dev/shm/marker"]).stdout, "ran\n");
    rt.delete_force(&id).assert_success();
}

/// The `Cap*` masks of /proc/PID/status text, by set name (`Inh`, `Prm`, `Eff`, `Bnd`, `Amb`).
fn cap_sets(status: &str) -> std::collections::HashMap<String, u64> {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("Cap"))
        .filter_map(|l| {
            let (set, hex) = l.split_once(':')?;
            Some((set.to_string(), u64::from_str_radix(hex.trim(), 16).ok()?))
        })
        .collect()
}

#[test]
fn exec_cap_is_never_added_to_the_inheritable_set() {
    // CVE-2022-29162 (runc 1.1.2): a capability `exec --cap` adds must not land in the
    // inheritable set, where an execve of a file with inheritable file capabilities would hand it
    // on. CapInh stays what the config says; the other sets get the capability.
    const CAP_KILL: u64 = 1 << 5;
    const CAP_NET_RAW: u64 = 1 << 13;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    let rt = Runtime::new();
    for inheritable in [json!(null), json!(["CAP_KILL"])] {
        let mut b = Bundle::new();
        b.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(false);
            if !inheritable.is_null() {
                c["process"]["capabilities"]["inheritable"] = inheritable.clone();
            }
        })
        .args(&["sleep", "1000"]);
        let config_inh = if inheritable.is_null() { 0 } else { CAP_KILL };
        let id = rt.create_and_start(&b);
        let args = ["exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_RAW", &id, "cat", "/proc/self/status"];
        // From inside: the process reads its own sets.
        let inside = cap_sets(&rt.exec(&args).assert_success().stdout);
        // From outside: a detached exec's sets, read on the host.
        let pid_file = rt.scratch().join(format!("{id}.pid"));
        let pid_arg = pid_file.to_str().expect("utf-8").to_string();
        rt.exec(&["exec", "--detach", "--pid-file", &pid_arg, "--cap", "CAP_SYS_ADMIN", &id, "sleep", "999"])
            .assert_success();
        let pid = std::fs::read_to_string(&pid_file).expect("pid file");
        let outside = cap_sets(&std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status of the exec"));
        for (view, sets) in [("inside", &inside), ("outside", &outside)] {
            assert_eq!(
                sets["Inh"], config_inh,
                "{view}: CapInh must stay the config's, config inheritable {inheritable}"
            );
            assert_eq!(sets["Amb"] & CAP_SYS_ADMIN, 0, "{view}: not ambient, it is not inheritable");
            for set in ["Prm", "Eff", "Bnd"] {
                assert_ne!(sets[set] & CAP_SYS_ADMIN, 0, "{view}: Cap{set} lacks CAP_SYS_ADMIN: {sets:?}");
            }
        }
        for set in ["Prm", "Eff", "Bnd"] {
            assert_ne!(inside[set] & CAP_NET_RAW, 0, "Cap{set} lacks CAP_NET_RAW: {inside:?}");
        }
        rt.delete_force(&id).assert_success();
    }
}

#[test]
fn exec_ignore_paused_runs_when_another_process_resumes_the_container() {
    // The exec waits in the frozen cgroup; `resume`, a separate process two seconds later, must
    // not wait for anything the waiting exec holds (skiff's exec kept the container lock and the
    // two waited on each other for ever).
    let rt = Runtime::new();
    let (id, b) = running(&rt);
    rt.exec(&["pause", &id]).assert_success();
    let before = b.cgroup_pids().len();
    let out_path = rt.scratch().join("paused-exec.out");
    let out_file = std::fs::File::create(&out_path).expect("create exec output");
    let mut exec = rt
        .command(&["exec", "--ignore-paused", &id, "sh", "-c", "echo ran-after-resume"])
        .stdin(std::process::Stdio::null())
        .stdout(out_file)
        .spawn()
        .expect("spawn exec");
    struct KillOnDrop<'a>(&'a mut std::process::Child);
    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = KillOnDrop(&mut exec);
    // The exec is waiting once a process of it is in the (frozen) cgroup.
    integration::host::wait_until("the exec to join the frozen cgroup", || {
        (b.cgroup_pids().len() > before).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(rt.status(&id), "paused");
    rt.exec(&["resume", &id]).assert_success();
    let status = integration::host::wait_until("the exec to finish after resume", || guard.0.try_wait().ok().flatten());
    assert!(status.success(), "exec exited {status:?}");
    assert_eq!(std::fs::read_to_string(&out_path).expect("exec output"), "ran-after-resume\n");
    drop(guard);
    rt.delete_force(&id).assert_success();
}
