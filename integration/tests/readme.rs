//! The README's engine set-up works as written: its containerd snippet is read by the installed
//! containerd as a runtime of the CRI plugin with skiff's binary, its podman containers.conf makes
//! podman run skiff with cgroupfs, and its docker daemon.json is valid JSON naming skiff.

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    let p = integration::workspace_dir().join("README.md");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// The first fenced block of `lang` after the line that starts with `marker`.
fn block_after(text: &str, marker: &str, lang: &str) -> String {
    let at = text.find(marker).unwrap_or_else(|| panic!("README has no {marker:?}"));
    let fence = format!("```{lang}\n");
    let start =
        text[at..].find(&fence).unwrap_or_else(|| panic!("no ```{lang} block after {marker:?}")) + at + fence.len();
    let end = text[start..].find("```").expect("unterminated block") + start;
    text[start..end].to_string()
}

fn containerd_major() -> Option<u32> {
    let out = Command::new("containerd").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "containerd github.com/containerd/containerd 1.6.20~ds1 ..."
    let v = text.split_whitespace().nth(2)?;
    v.trim_start_matches('v').split('.').next()?.parse().ok()
}

#[test]
fn the_containerd_snippet_for_the_installed_major_version_is_read_as_a_runtime() {
    let Some(major) = containerd_major() else {
        integration::skip("containerd is not installed (make deps installs it)");
        return;
    };
    let text = readme();
    for (marker, snippet_major) in [("**containerd 1.x**", 1), ("**containerd 2.x**", 2)] {
        let toml = block_after(&text, marker, "toml");
        if snippet_major != major {
            integration::skip(format!("{marker}: the installed containerd is {major}.x"));
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("config.toml");
        std::fs::write(&conf, &toml).expect("write config.toml");
        let out = Command::new("containerd").arg("--config").arg(&conf).args(["config", "dump"]).output().unwrap();
        let dump = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{marker}: {}", String::from_utf8_lossy(&out.stderr));
        // the CRI plugin took it as a runtime: it fills in the runtime's defaults around the options
        let section = dump.split("containerd.runtimes.skiff]").nth(1).unwrap_or_else(|| panic!("{dump}"));
        assert!(section.contains("runtime_type = \"io.containerd.runc.v2\""), "{marker}: {section}");
        assert!(section.contains("privileged_without_host_devices"), "{marker}: not read by the CRI plugin: {section}");
        assert!(section.contains("BinaryName = \"/usr/local/bin/skiff\""), "{marker}: {section}");
        // the README tells Kubernetes nodes to use the systemd driver (kubeadm's default), which skiff has
        assert!(toml.contains("SystemdCgroup = true"), "{marker}: the snippet should set SystemdCgroup: {toml}");
        assert!(section.contains("SystemdCgroup = true"), "{marker}: SystemdCgroup not read: {section}");
    }
}

#[test]
fn the_podman_containers_conf_runs_skiff_with_cgroupfs() {
    if !Path::new("/usr/bin/podman").exists() {
        integration::skip("podman is not installed (make deps installs it)");
        return;
    }
    let conf = block_after(&readme(), "**podman**", "toml");
    assert!(conf.contains("/usr/local/bin/skiff"), "{conf}");
    let skiff = integration::workspace_dir().join("target/release/skiff");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("containers.conf");
    std::fs::write(&path, conf.replace("/usr/local/bin/skiff", &skiff.to_string_lossy())).expect("write");
    let out = Command::new("podman")
        .env("CONTAINERS_CONF", &path)
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("run"))
        .args(["--storage-driver", "vfs", "info", "--format", "{{.Host.OCIRuntime.Path}} {{.Host.CgroupManager}}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{} cgroupfs", skiff.display()));
}

#[test]
fn the_docker_daemon_json_names_skiff_and_cgroupfs() {
    let json = block_after(&readme(), "**docker**", "json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON: {e}\n{json}"));
    assert_eq!(v["runtimes"]["skiff"]["path"], "/usr/local/bin/skiff");
    assert!(v["exec-opts"].as_array().is_some_and(|o| o.iter().any(|x| x == "native.cgroupdriver=cgroupfs")), "{v}");
}

#[test]
fn the_readme_does_not_say_notify_is_refused() {
    // it works (security.rs tests it); an old line said it was refused
    let text = readme() + &std::fs::read_to_string(integration::workspace_dir().join("docs/skiff.md")).unwrap();
    assert!(!text.contains("SCMP_ACT_NOTIFY (refused"), "a stale claim about SCMP_ACT_NOTIFY");
}
