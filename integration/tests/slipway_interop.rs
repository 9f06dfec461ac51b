//! slipway's images in real engines: `podman load` of the docker-archive and the OCI tar, and
//! `ctr images import` into a private containerd, each then running the image. Engines run with
//! private roots under the test's temp dir; a missing engine binary skips its test with a note.

use integration::slipway::Slipway;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(bin: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {bin}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A busybox image built by slipway and saved in both formats.
fn image(s: &Slipway) -> (PathBuf, PathBuf, String) {
    s.base("sw-base");
    let ctx = s.context(
        "interop",
        &[("Dockerfile", "FROM sw-base\nRUN echo built-by-slipway > /msg\nCMD [\"cat\", \"/msg\"]\n")],
    );
    s.build(&ctx, "interop:1", &[]).ok();
    let docker = s.dir.path().join("interop-docker.tar");
    let oci = s.dir.path().join("interop-oci.tar");
    s.run(&["save", "interop:1", "-o", &docker.to_string_lossy()]).ok();
    s.run(&["save", "interop:1", "-o", &oci.to_string_lossy(), "--format", "oci"]).ok();
    let id = s.save("interop:1").id();
    (docker, oci, id)
}

/// This process's open-files limit as a podman `--ulimit` (a container may not raise it).
fn nofile() -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or("");
    let f: Vec<&str> = line.split_whitespace().collect();
    match (f.get(3), f.get(4)) {
        (Some(soft), Some(hard)) => format!("nofile={soft}:{hard}"),
        _ => "nofile=1024:1024".into(),
    }
}

#[test]
fn podman_loads_both_formats_and_runs_the_image() {
    if !have("podman") {
        eprintln!("podman not installed: skipped");
        return;
    }
    let s = Slipway::new();
    let (docker, oci, id) = image(&s);
    for (i, tar) in [docker, oci].iter().enumerate() {
        let root = s.dir.path().join(format!("podman{i}"));
        let podman = |args: &[&str]| {
            Command::new("podman")
                .arg("--root")
                .arg(root.join("root"))
                .arg("--runroot")
                .arg(root.join("run"))
                .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
                .args(args)
                .output()
                .unwrap()
        };
        let o = podman(&["load", "-i", &tar.to_string_lossy()]);
        assert!(o.status.success(), "podman load {}: {}", tar.display(), String::from_utf8_lossy(&o.stderr));
        let o = podman(&["image", "inspect", "--format", "{{.Id}}", "docker.io/library/interop:1"]);
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), id.trim_start_matches("sha256:"), "same image ID");
        let nf = nofile();
        let o = podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--ulimit",
            &nf,
            "--ulimit",
            "nproc=4096:4096",
            "docker.io/library/interop:1",
        ]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "built-by-slipway\n", "{}", String::from_utf8_lossy(&o.stderr));
    }
}

struct Containerd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.join("root")).stderr(Stdio::null()).status();
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.join("state")).stderr(Stdio::null()).status();
    }
}

fn containerd(dir: &Path) -> Containerd {
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    let cfg = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         [grpc]\n  address = \"{d}/sock\"\n[ttrpc]\n  address = \"{d}/sock.ttrpc\"\n[debug]\n  address = \"{d}/debug.sock\"\n"
    );
    std::fs::write(dir.join("config.toml"), cfg).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let c = Containerd { child, dir: dir.to_path_buf() };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        let ok = Command::new("ctr")
            .arg("-a")
            .arg(dir.join("sock"))
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("containerd did not start: {}", std::fs::read_to_string(dir.join("log")).unwrap_or_default());
}

#[test]
fn ctr_imports_both_formats_and_runs_the_image() {
    if !have("containerd") || !have("ctr") {
        eprintln!("containerd not installed: skipped");
        return;
    }
    let s = Slipway::new();
    let (docker, oci, _) = image(&s);
    // containerd's socket path must stay short
    let dir = PathBuf::from(format!("/tmp/sw-ctrd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cd = containerd(&dir);
    let ctr = |args: &[&str]| Command::new("ctr").arg("-a").arg(cd.dir.join("sock")).args(args).output().unwrap();
    for tar in [&oci, &docker] {
        let o = ctr(&["images", "import", &tar.to_string_lossy()]);
        assert!(o.status.success(), "ctr import {}: {}", tar.display(), String::from_utf8_lossy(&o.stderr));
        let o = ctr(&["images", "ls", "-q"]);
        assert!(String::from_utf8_lossy(&o.stdout).contains("docker.io/library/interop:1"));
        let id = integration::unique_name("sw");
        let o = ctr(&["run", "--rm", "docker.io/library/interop:1", &id]);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "built-by-slipway\n", "{}", String::from_utf8_lossy(&o.stderr));
        let _ = ctr(&["images", "rm", "docker.io/library/interop:1"]);
    }
    drop(cd);
    let _ = std::fs::remove_dir_all(&dir);
}

struct Dockerd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop the containerd it started
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::SIGTERM);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.join("data")).stderr(Stdio::null()).status();
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.dir.join("exec")).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dockerd() -> Dockerd {
    let dir = PathBuf::from(format!("/tmp/sw-dk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let child = Command::new("dockerd")
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("pid"))
        .arg("-H")
        .arg(format!("unix://{}/sock", dir.display()))
        .args(["--iptables=false", "--ip-masq=false", "--bridge=none", "--storage-driver", "vfs"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let d = Dockerd { child, dir };
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if d.docker(&["version"]).status.success() {
            return d;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("dockerd did not start: {}", std::fs::read_to_string(d.dir.join("log")).unwrap_or_default());
}

impl Dockerd {
    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").arg("-H").arg(format!("unix://{}/sock", self.dir.display())).args(args).output().unwrap()
    }
}

#[test]
fn docker_loads_the_archive_and_slipway_loads_dockers() {
    if !have("dockerd") || !have("docker") {
        eprintln!("dockerd not installed: skipped");
        return;
    }
    let s = Slipway::new();
    let (archive, _, id) = image(&s);
    let d = dockerd();
    let o = d.docker(&["load", "-i", &archive.to_string_lossy()]);
    assert!(o.status.success(), "docker load: {}", String::from_utf8_lossy(&o.stderr));
    let o = d.docker(&["image", "inspect", "--format", "{{.Id}}", "interop:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), id, "docker sees the same image ID");
    let o = d.docker(&["run", "--rm", "--network", "none", "interop:1"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "built-by-slipway\n", "{}", String::from_utf8_lossy(&o.stderr));
    // and back: what `docker save` writes, slipway loads, keeping the ID
    let back = s.dir.path().join("from-docker.tar");
    let o = d.docker(&["save", "interop:1", "-o", &back.to_string_lossy()]);
    assert!(o.status.success(), "docker save: {}", String::from_utf8_lossy(&o.stderr));
    let t = Slipway::new();
    t.run(&["load", "-i", &back.to_string_lossy()]).ok();
    assert_eq!(t.save("interop:1").id(), id);
}
