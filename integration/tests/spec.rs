//! `spec`: the config.json template the runtime writes.

use integration::{bundle::fixture_path, Runtime};
use serde_json::Value;

fn read_json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[test]
fn spec_writes_runc_s_default_config_into_the_bundle_dir() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir_in("/tmp").expect("bundle dir");
    rt.exec(&["spec", "--bundle", dir.path().to_str().expect("utf-8")]).assert_success();
    let mut written = read_json(&dir.path().join("config.json"));

    // The fixture is runc's template with the terminal turned off; ociVersion is the version of
    // the spec the runtime implements, so any non-empty value is fine.
    let mut want = read_json(&fixture_path("default"));
    want["process"]["terminal"] = Value::Bool(true);
    // recorded on a hybrid host: runc adds a cgroup namespace on a cgroup v2 one
    integration::host::spec_template_for_this_host(&mut want);
    assert!(written["ociVersion"].as_str().is_some_and(|v| !v.is_empty()));
    written["ociVersion"] = Value::Null;
    want["ociVersion"] = Value::Null;
    // The hostname names the runtime ("runc", "skiff"): any non-empty one is the template's.
    assert!(written["hostname"].as_str().is_some_and(|v| !v.is_empty()));
    written["hostname"] = Value::Null;
    want["hostname"] = Value::Null;
    assert_eq!(
        written,
        want,
        "spec differs from runc's template:\n{}",
        serde_json::to_string_pretty(&written).unwrap_or_default()
    );
}

#[test]
fn spec_without_bundle_writes_into_the_cwd() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir_in("/tmp").expect("cwd");
    let mut cmd = rt.command(&["spec"]);
    cmd.current_dir(dir.path());
    rt.exec_cmd(cmd, None).assert_success();
    let config = read_json(&dir.path().join("config.json"));
    assert_eq!(config["root"]["path"], "rootfs");
}

#[test]
fn spec_refuses_to_overwrite_an_existing_config() {
    // runc: "File config.json exists. Remove it first", exit 1.
    let rt = Runtime::new();
    let dir = tempfile::tempdir_in("/tmp").expect("bundle dir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{}").expect("write config.json");
    let out = rt.exec(&["spec", "--bundle", dir.path().to_str().expect("utf-8")]);
    out.assert_failure().assert_stderr_contains("config.json");
    assert_eq!(std::fs::read_to_string(&path).expect("read back"), "{}");
}

#[test]
fn spec_rootless_maps_the_caller_in_a_user_namespace() {
    let rt = Runtime::new();
    let dir = tempfile::tempdir_in("/tmp").expect("bundle dir");
    rt.exec(&["spec", "--rootless", "--bundle", dir.path().to_str().expect("utf-8")]).assert_success();
    let config = read_json(&dir.path().join("config.json"));
    let namespaces: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert!(namespaces.contains(&"user"), "{namespaces:?}");
    assert!(namespaces.contains(&"mount"), "{namespaces:?}");
    // The caller's own ids become root in the container.
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    for (key, host) in [("uidMappings", uid), ("gidMappings", gid)] {
        let maps = config["linux"][key].as_array().unwrap_or_else(|| panic!("no linux.{key}"));
        assert!(
            maps.iter().any(|m| m["containerID"] == 0 && m["hostID"] == host && m["size"].as_u64() >= Some(1)),
            "linux.{key} does not map {host} to 0: {maps:?}"
        );
    }
}
