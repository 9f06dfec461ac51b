//! OCI hooks: each records, in a host directory, the state JSON it got on stdin and the mount
//! namespace it ran in. Runtime-namespace hooks (prestart, createRuntime, poststart, poststop) and
//! createContainer resolve their path on the host, so they use the host's /bin/sh; startContainer
//! resolves in the container, so it uses the rootfs's busybox sh and writes through a bind mount.

use integration::host::{cmdline, namespace, pid_alive, wait_until};
use integration::{Bundle, Runtime};
use serde_json::{json, Value};
use std::path::Path;

/// Where the host log directory appears inside the container (for startContainer).
const LOG_IN_CONTAINER: &str = "/hooklog";

/// A hook that writes `<dir>/<name>.mnt` (its mount namespace), appends `name` to `<dir>/order`,
/// and finally renames its stdin copy into `<dir>/<name>.json`, so that file appearing means
/// the hook is done. `dir` is as the hook sees it.
fn recording_hook(dir: &str, name: &str) -> Value {
    let script = format!(
        "cat > {dir}/{name}.tmp && readlink /proc/self/ns/mnt > {dir}/{name}.mnt && \
         echo {name} >> {dir}/order && mv {dir}/{name}.tmp {dir}/{name}.json"
    );
    json!({ "path": "/bin/sh", "args": ["sh", "-c", script] })
}

/// A bundle with every kind of recording hook, logging to `log` on the host.
fn bundle_with_all_hooks(log: &Path) -> Bundle {
    let host = log.to_str().expect("utf-8 path");
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"])
        .mount(json!({
            "destination": LOG_IN_CONTAINER, "type": "bind", "source": host, "options": ["rbind", "rw"]
        }))
        .edit(|c| {
            c["hooks"] = json!({
                "prestart": [recording_hook(host, "prestart")],
                "createRuntime": [recording_hook(host, "createRuntime")],
                "createContainer": [recording_hook(host, "createContainer")],
                "startContainer": [recording_hook(LOG_IN_CONTAINER, "startContainer")],
                "poststart": [recording_hook(host, "poststart")],
                "poststop": [recording_hook(host, "poststop")],
            })
        });
    b
}

/// The state a hook received, waiting for the hook to finish.
#[track_caller]
fn hook_state(log: &Path, name: &str) -> Value {
    let path = log.join(format!("{name}.json"));
    let text = wait_until(&format!("the {name} hook to run"), || std::fs::read_to_string(&path).ok());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} hook got non-JSON on stdin: {e}: {text:?}"))
}

fn ran(log: &Path, name: &str) -> bool {
    log.join(format!("{name}.json")).exists()
}

fn order(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log.join("order")).unwrap_or_default().lines().map(String::from).collect()
}

#[test]
fn hooks_run_at_their_lifecycle_points_with_the_state_on_stdin() {
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let b = bundle_with_all_hooks(log.path());
    let id = rt.new_id();

    rt.create_ok(&id, &b);
    for name in ["prestart", "createRuntime", "createContainer"] {
        assert!(ran(log.path(), name), "{name} did not run during create");
    }
    assert!(!ran(log.path(), "startContainer"), "startContainer ran before start");
    assert!(!ran(log.path(), "poststop"), "poststop ran before delete");

    rt.start(&id).assert_success();
    // (runc 1.1.5 runs poststart already during create — its state then says "created" — so
    // only "done by the time start is over" is checked here, as the spec requires.)
    for name in ["startContainer", "poststart"] {
        hook_state(log.path(), name);
    }
    assert!(!ran(log.path(), "poststop"), "poststop ran before delete");

    rt.kill(&id, "KILL").assert_success();
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
    let poststop = hook_state(log.path(), "poststop");
    assert_eq!(poststop["status"], "stopped", "{poststop}");

    for name in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
        let state = hook_state(log.path(), name);
        assert_eq!(state["id"], id.as_str(), "{name}: {state}");
        assert_eq!(state["bundle"], b.path_str(), "{name}: {state}");
        assert!(state["ociVersion"].is_string(), "{name}: {state}");
        assert!(state["status"].is_string(), "{name}: {state}");
    }
    for name in ["prestart", "createRuntime", "createContainer"] {
        let state = hook_state(log.path(), name);
        assert_eq!(state["status"], "creating", "{name}: {state}");
    }

    let order = order(log.path());
    let at =
        |name: &str| order.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} missing from {order:?}"));
    assert!(at("prestart") < at("createRuntime"), "{order:?}");
    assert!(at("createRuntime") < at("createContainer"), "{order:?}");
    assert!(at("createContainer") < at("startContainer"), "{order:?}");
    assert!(at("createContainer") < at("poststart"), "{order:?}");
    assert_eq!(order.last().map(String::as_str), Some("poststop"), "{order:?}");
    assert_eq!(order.len(), 6, "a hook ran twice: {order:?}");
}

#[test]
fn hooks_run_in_the_namespace_the_spec_names() {
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let b = bundle_with_all_hooks(log.path());
    let id = rt.create_and_start(&b);
    hook_state(log.path(), "startContainer");
    let container_mnt = namespace(&rt.pid(&id).to_string(), "mnt");
    let runtime_mnt = namespace("self", "mnt");
    assert_ne!(container_mnt, runtime_mnt);
    let mnt_of = |name: &str| {
        std::fs::read_to_string(log.path().join(format!("{name}.mnt"))).expect("mnt record").trim().to_string()
    };
    for name in ["prestart", "createRuntime", "poststart"] {
        assert_eq!(mnt_of(name), runtime_mnt, "{name} should run in the runtime namespace");
    }
    for name in ["createContainer", "startContainer"] {
        assert_eq!(mnt_of(name), container_mnt, "{name} should run in the container namespace");
    }
    rt.delete_force(&id).assert_success();
    hook_state(log.path(), "poststop");
    assert_eq!(mnt_of("poststop"), runtime_mnt);
}

#[test]
fn hook_args_and_env_are_passed() {
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let out = log.path().join("out");
    let mut b = Bundle::new();
    b.args(&["true"]).edit(|c| {
        c["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", "echo \"$0 $HOOKVAR\" > \"$1\"", "arg-zero", out.to_str().expect("utf-8")],
            "env": ["HOOKVAR=from-env"]
        }]})
    });
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    assert_eq!(std::fs::read_to_string(&out).expect("hook output"), "arg-zero from-env\n");
    rt.delete_force(&id).assert_success();
}

#[test]
fn a_failing_create_time_hook_fails_create_and_leaves_nothing() {
    let rt = Runtime::new();
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut b = Bundle::new();
        b.args(&["sleep", "1000"]).edit(|c| {
            c["hooks"] = json!({kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 7"]}]})
        });
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        // runc: "error running hook #0: error running hook: exit status 7, stdout: , stderr: hook-said-no"
        out.assert_failure();
        assert!(out.stderr.contains("hook"), "{kind}: {out}");
        assert_eq!(rt.root_entries_for(&id), Vec::<String>::new(), "{kind}: state left");
        rt.exec(&["state", &id]).assert_failure();
        let live: Vec<i32> = b.cgroup_pids().into_iter().filter(|p| pid_alive(*p)).collect();
        assert_eq!(live, Vec::<i32>::new(), "{kind}: processes left");
    }
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn a_hook_past_its_timeout_fails_create_and_is_killed() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // Exec'd directly (no shell) so that killing the hook process ends it. The odd duration
    // tells this sleep apart from any other on the machine.
    b.args(&["sleep", "1000"])
        .edit(|c| c["hooks"] = json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "37.25"], "timeout": 1}]}));
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    // runc: "error running hook #0: hook ran past specified timeout of 1.0s"
    out.assert_failure().assert_stderr_contains("timeout");
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
    let leftover = std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| cmdline(*p).is_some_and(|c| c == ["sleep", "37.25"]) && pid_alive(*p))
        .collect::<Vec<_>>();
    assert_eq!(leftover, Vec::<i32>::new(), "the timed-out hook is still running");
}

#[test]
fn a_failing_poststop_hook_does_not_fail_delete() {
    // The spec: a poststop failure is logged and the lifecycle continues.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"])
        .edit(|c| c["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]}));
    let id = rt.new_id();
    rt.create_ok(&id, &b);
    rt.delete_force(&id).assert_success();
    rt.exec(&["state", &id]).assert_failure();
}

#[test]
fn the_poststop_hooks_after_a_failing_one_still_run() {
    // runtime-spec lifecycle step 13: a failing poststop hook is a warning, "the remaining hooks
    // and lifecycle continue as if the hook had succeeded" (runtime-tools' poststop_fail).
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let ran = log.path().join("ran");
    let mut b = Bundle::new();
    b.args(&["true"]).edit(|c| {
        c["hooks"] = json!({"poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo first >> {}", ran.display())]},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo poststop-said-no >&2; exit 3"]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("echo third >> {}", ran.display())]},
        ]})
    });
    let id = rt.create_and_start(&b);
    rt.wait_for_status(&id, "stopped");
    let out = rt.delete(&id);
    out.assert_success();
    rt.exec(&["state", &id]).assert_failure();
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 skips the poststop hooks after a failing one");
        return;
    }
    assert!(out.stderr.contains("poststop hook #1") && out.stderr.contains("poststop-said-no"), "{out}");
    assert_eq!(std::fs::read_to_string(&ran).expect("hook output"), "first\nthird\n");
}

#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    // runtime-spec 1.3.0, lifecycle step 9: a failing poststart hook is an error and stops the
    // container; the hooks after it do not run. (runtime-tools' poststart_fail still checks the
    // older text, a warning and the lifecycle going on.)
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let second = log.path().join("second-ran");
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]).edit(|c| {
        c["hooks"] = json!({"poststart": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo poststart-said-no >&2; exit 7"]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", second.display())]},
        ]})
    });
    let id = rt.new_id();
    let created = rt.create(&id, &b);
    if integration::runtime_is_runc() {
        // runc 1.1.5 runs poststart during create: create fails there, and nothing is left.
        created.assert_failure().assert_stderr_contains("hook");
        assert_eq!(rt.list_ids(), Vec::<String>::new());
        assert!(!second.exists(), "the hook after the failing one ran");
        return;
    }
    created.assert_success();
    let pid = rt.pid(&id);
    let started = rt.start(&id);
    started.assert_failure().assert_stderr_contains("poststart hook #0");
    assert!(started.stderr.contains("poststart-said-no"), "{started}");
    // Stopped by the time start returns: the init is gone, the state says so.
    assert!(!pid_alive(pid), "the container's init {pid} still runs after its poststart hook failed");
    assert_eq!(rt.status(&id), "stopped");
    assert!(!second.exists(), "the hook after the failing one ran");
    // Left for delete, which needs no --force for a stopped container.
    rt.delete(&id).assert_success();
    assert_eq!(rt.list_ids(), Vec::<String>::new());
}

#[test]
fn start_container_hooks_without_env_get_the_container_process_environment() {
    // runc: a startContainer hook with no `env` runs with the environment of the container's
    // process; one with `env` gets exactly that, an empty list included.
    let rt = Runtime::new();
    let log = tempfile::tempdir_in("/tmp").expect("hook log dir");
    let host = log.path().to_str().expect("utf-8 path");
    // `$$` is the hook's shell: /proc/$$/environ is the environment the runtime gave the hook.
    let hook = |file: &str| {
        format!("tr '\\0' '\\n' < /proc/$$/environ > {LOG_IN_CONTAINER}/{file}.tmp && mv {LOG_IN_CONTAINER}/{file}.tmp {LOG_IN_CONTAINER}/{file}")
    };
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"])
        .mount(json!({"destination": LOG_IN_CONTAINER, "type": "bind", "source": host, "options": ["rbind", "rw"]}))
        .edit(|c| {
            c["process"]["env"].as_array_mut().expect("env list").push(json!("FROM_PROCESS=yes"));
            c["hooks"] = json!({"startContainer": [
                {"path": "/bin/sh", "args": ["sh", "-c", hook("no-env")]},
                {"path": "/bin/sh", "args": ["sh", "-c", hook("empty-env")], "env": []},
                {"path": "/bin/sh", "args": ["sh", "-c", hook("own-env")], "env": ["ONLY=this"]},
            ]})
        });
    let id = rt.create_and_start(&b);
    let lines = |file: &str| -> std::collections::BTreeSet<String> {
        let path = log.path().join(file);
        let text = wait_until(&format!("the {file} hook to run"), || std::fs::read_to_string(&path).ok());
        text.lines().map(String::from).collect()
    };
    let (no_env, empty_env, own_env) = (lines("no-env"), lines("empty-env"), lines("own-env"));
    // From outside: the environment the container's process was started with, once it has
    // exec'd (the hooks run just before).
    let pid = rt.pid(&id);
    wait_until("the container process to exec", || {
        cmdline(pid).filter(|c| c.first().is_some_and(|a| a == "sleep")).map(drop)
    });
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ of the init");
    let process: std::collections::BTreeSet<String> =
        String::from_utf8_lossy(&environ).split('\0').filter(|s| !s.is_empty()).map(String::from).collect();
    assert!(process.contains("FROM_PROCESS=yes"), "{process:?}");
    assert_eq!(no_env, process, "a hook without env");
    // An explicit empty list is an empty environment, as in runc 1.1.5.
    assert_eq!(empty_env, Default::default(), "a hook with an empty env");
    assert_eq!(own_env, ["ONLY=this".to_string()].into_iter().collect(), "a hook with its own env");
    rt.delete_force(&id).assert_success();
}
