//! Failures a user can provoke: bad ids, duplicate ids, broken bundles. Each must exit non-zero
//! with an error naming the problem and leave nothing behind: no state entry, no process, no
//! cgroup.

use integration::host::pid_alive;
use integration::{Bundle, Output, Runtime};

/// After a failed create of `id` from `b`: no state, no listing, no live process in its cgroup.
#[track_caller]
fn assert_nothing_left(rt: &Runtime, id: &str, b: &Bundle) {
    assert_eq!(rt.root_entries_for(id), Vec::<String>::new(), "state left in --root");
    assert!(!rt.list_ids().contains(&id.to_string()), "{id} still listed");
    rt.exec(&["state", id]).assert_failure();
    let pids: Vec<i32> = b.cgroup_pids().into_iter().filter(|p| pid_alive(*p)).collect();
    assert_eq!(pids, Vec::<i32>::new(), "processes left in {}", b.cgroups_path());
}

#[track_caller]
fn create_fails(rt: &Runtime, b: &Bundle) -> (String, Output) {
    let id = rt.new_id();
    let out = rt.create(&id, b);
    out.assert_failure();
    assert!(!out.stderr.trim().is_empty(), "no error message\n{out}");
    assert_nothing_left(rt, &id, b);
    (id, out)
}

#[test]
fn create_with_an_id_in_use_fails_and_keeps_the_first_container() {
    let rt = Runtime::new();
    let mut first = Bundle::new();
    first.args(&["sleep", "1000"]);
    let mut second = Bundle::new();
    second.args(&["sleep", "1000"]);
    let id = rt.new_id();
    rt.create_ok(&id, &first);
    let pid = rt.pid(&id);
    // runc: "container with given ID already exists"
    rt.create(&id, &second).assert_failure().assert_stderr_contains("already exists");
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);
    assert_eq!(state["bundle"], first.path_str());
    assert!(pid_alive(pid));
    assert_eq!(second.cgroup_pids(), Vec::<i32>::new());
    rt.delete_force(&id).assert_success();
}

#[test]
fn ids_with_slashes_or_dot_dot_are_rejected() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    let outside = rt.scratch().join("escape");
    // runc: "invalid container ID format" (and "container id cannot be empty").
    for id in ["a/b", "..", "../escape", "/abs", ".", "a b", ""] {
        rt.create(id, &b).assert_failure();
        rt.exec(&["run", "--bundle", b.path_str(), id]).assert_failure();
    }
    assert!(!outside.exists(), "an id escaped the root dir");
    let root: Vec<_> = std::fs::read_dir(rt.root())
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(root, Vec::<std::ffi::OsString>::new(), "entries left in --root");
    assert_eq!(b.cgroup_pids(), Vec::<i32>::new());
}

#[test]
fn a_missing_rootfs_fails_create() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["sleep", "1000"]);
    std::fs::remove_dir_all(b.rootfs()).expect("remove rootfs");
    let (_, out) = create_fails(&rt, &b);
    // runc: "invalid rootfs: stat BUNDLE/rootfs: no such file or directory"
    out.assert_stderr_contains("rootfs");
}

#[test]
fn malformed_json_fails_create() {
    let rt = Runtime::new();
    let b = Bundle::new();
    b.write_raw_config(b"{\"ociVersion\": \"1.0.2\", bad");
    create_fails(&rt, &b);
}

#[test]
fn an_oci_version_that_is_not_semver_or_not_1_x_fails_create() {
    // config.md: ociVersion MUST be SemVer 2.0.0; an invalid or unsupported value MUST be an
    // error (runtime-tools misc_props, which passed only because its create failed for another
    // reason). What engines write (docker 20.10, podman 4, containerd 1.6: 1.0.2-dev) still runs.
    let rt = Runtime::new();
    for v in ["1.0.2-dev", "1.2.0"] {
        let mut b = Bundle::new();
        b.edit(|c| c["ociVersion"] = v.into()).sh("echo ran");
        assert_eq!(rt.run_ok(&b), "ran\n", "{v}");
    }
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 does not check ociVersion");
        return;
    }
    for v in ["invalid", "1.2", "", "2.0.0"] {
        let mut b = Bundle::new();
        b.args(&["true"]).edit(|c| c["ociVersion"] = v.into());
        let (_, out) = create_fails(&rt, &b);
        out.assert_stderr_contains("ociVersion").assert_stderr_contains(&format!("{v:?}"));
    }
}

#[test]
fn a_missing_config_json_fails_create() {
    let rt = Runtime::new();
    let b = Bundle::new();
    std::fs::remove_file(b.path().join("config.json")).expect("remove config.json");
    let (_, out) = create_fails(&rt, &b);
    out.assert_stderr_contains("config.json");
}

#[test]
fn a_missing_executable_fails_create_not_start() {
    // runc checks process.args[0] inside the container before create returns:
    // `exec: "/nonexistent": stat /nonexistent: no such file or directory` and
    // `exec: "nosuchcmd": executable file not found in $PATH`.
    let rt = Runtime::new();
    let mut b = Bundle::new();
    for exe in ["/nonexistent/prog", "nosuchcmd"] {
        b.args(&[exe]);
        let (_, out) = create_fails(&rt, &b);
        out.assert_stderr_contains(exe);
    }
}

#[test]
fn a_missing_executable_fails_run() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&["/nonexistent/prog"]);
    let id = rt.new_id();
    let out = rt.exec(&["run", "--bundle", b.path_str(), &id]);
    out.assert_failure().assert_stderr_contains("/nonexistent/prog");
    assert_nothing_left(&rt, &id, &b);
}

#[test]
fn empty_args_fail_create() {
    // runc: "args must not be empty"
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.args(&[]);
    create_fails(&rt, &b);
}

#[test]
fn a_bundle_that_does_not_exist_fails_create() {
    let rt = Runtime::new();
    let id = rt.new_id();
    rt.exec(&["create", "--bundle", "/nonexistent-bundle-dir", &id]).assert_failure();
    assert_eq!(rt.root_entries_for(&id), Vec::<String>::new());
}
