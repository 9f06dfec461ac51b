//! The README's engine set-up works as written: its containerd snippet is read by the installed
//! containerd as a runtime of the CRI plugin with skiff's binary (and the plugin still loads), its podman containers.conf makes
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
        // and with it the CRI plugin loads: a config's `runtimes` table replaces the default one, so a
        // snippet without the runc runtime that default_runtime_name names stops the plugin.
        cri_plugin_loads_with(&toml, dir.path(), marker);
    }
}

/// containerd 1.x started with `toml` (and private root, state and sockets under `dir`) has its CRI
/// plugin loaded, as `ctr plugins ls` says.
fn cri_plugin_loads_with(toml: &str, dir: &Path, marker: &str) {
    let d = dir.display();
    let (version, tables) = toml.split_once('\n').expect("a version line");
    let conf = format!(
        "{version}\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{tables}\n[grpc]\n  address = \"{d}/sock\"\n\
         [ttrpc]\n  address = \"{d}/sock.ttrpc\"\n[debug]\n  address = \"{d}/debug.sock\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_port = \"0\"\n"
    );
    let path = dir.join("started.toml");
    std::fs::write(&path, conf).expect("write started.toml");
    let log = std::fs::File::create(dir.join("containerd.log")).expect("create log");
    let child = Command::new("containerd")
        .arg("--config")
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("spawn containerd");
    struct Daemon(std::process::Child);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _daemon = Daemon(child);
    let sock = dir.join("sock");
    let plugins = integration::host::wait_until("containerd to answer", || {
        let out = Command::new("ctr").arg("-a").arg(&sock).args(["plugins", "ls"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    // TYPE ID PLATFORMS STATUS
    let cri = plugins.lines().find(|l| l.split_whitespace().take(2).eq(["io.containerd.grpc.v1", "cri"]));
    let log = std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default();
    let why = log.lines().filter(|l| l.contains("grpc.v1.cri")).collect::<Vec<_>>().join("\n");
    assert!(cri.is_some_and(|l| l.split_whitespace().last() == Some("ok")), "{marker}: the CRI plugin: {cri:?}\n{why}");
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
