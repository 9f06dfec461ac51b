//! Rootless podman 4.3 running containers through the runtime under test, as a user the test
//! makes (with /etc/subuid and /etc/subgid ranges, `uidmap`'s newuidmap/newgidmap): run, exec,
//! stop, rm, `-v` volumes, `--userns=keep-id`, what a podman user sees and what the host sees
//! (owners of the files a container writes, the runtime's own state under the user's
//! `$XDG_RUNTIME_DIR`). podman runs the runtime as root of its user namespace, without `--root`.
//! The same tests run against runc (`OCI_RUNTIME=$(which runc)`).

use integration::rootless::Podman;
use std::os::unix::fs::MetadataExt;

fn podman() -> Option<Podman> {
    Podman::new()
}

#[test]
fn run_exec_stop_rm_through_the_runtime() {
    let Some(p) = podman() else { return };
    let image = integration::engines::IMAGE;
    // foreground: output and exit status
    let out = p.run(&["run", "--rm", image, "sh", "-c", "id -u; cat /proc/self/uid_map; exit 3"]);
    assert_eq!(out.code, Some(3), "{out}");
    // podman shows the runtime's stderr: a runtime run as root of podman's user namespace has
    // nothing to warn about
    assert!(!out.stderr.contains("level=warning"), "{out}");
    let lines: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let (uid, (sub, count)) = (p.user.uid.to_string(), p.user.subuid.expect("subuid range"));
    let (sub, count) = (sub.to_string(), count.to_string());
    // podman's user namespace: the user as root, then its subordinate range
    assert_eq!(lines, vec![vec!["0"], vec!["0", uid.as_str(), "1"], vec!["1", sub.as_str(), count.as_str()]], "{out}");
    // detached, then exec, stop and rm
    let name = integration::unique_name("rlp");
    let id = p.run(&["run", "-d", "--name", &name, image, "sleep", "1000"]).ok().text().to_string();
    let state = p.runtime_state(&id).unwrap_or_else(|| panic!("the runtime does not know {id}"));
    assert_eq!(state["status"], "running", "{state}");
    assert!(p.runtime_root().join(&id).is_dir(), "no state under {}", p.runtime_root().display());
    let exec = p.run(&["exec", &name, "sh", "-c", "echo from-exec; id -u"]);
    assert_eq!(exec.ok().text(), "from-exec\n0");
    let exec = p.run(&["exec", "--user", "1000", &name, "id", "-u"]);
    assert_eq!(exec.ok().text(), "1000");
    // sleep as pid 1 ignores SIGTERM: podman sends SIGKILL after the timeout, through the runtime
    p.run(&["stop", "-t", "1", &name]).ok();
    let inspect = p.run(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", &name]);
    assert_eq!(inspect.ok().text(), "exited 137");
    p.run(&["rm", &name]).ok();
    assert!(p.runtime_state(&id).is_none(), "the runtime still knows {id} after rm");
    assert!(!p.runtime_root().join(&id).exists(), "state left under {}", p.runtime_root().display());
    assert_eq!(p.run(&["ps", "-aq"]).ok().text(), "");
}

#[test]
fn volumes_keep_the_users_ids() {
    let Some(p) = podman() else { return };
    let image = integration::engines::IMAGE;
    let vol = p.user.home.join("vol");
    std::fs::create_dir(&vol).expect("mkdir vol");
    std::fs::write(vol.join("from-host"), "hello\n").expect("write");
    p.user.give(&vol);
    let spec = format!("{}:/data", vol.display());
    // container root is the user: what it writes is the user's on the host
    let out = p.run(&["run", "--rm", "-v", &spec, image, "sh", "-c", "cat /data/from-host; echo a > /data/by-root"]);
    assert_eq!(out.ok().text(), "hello");
    assert_eq!(std::fs::metadata(vol.join("by-root")).expect("by-root").uid(), p.user.uid);
    // container uid 1000 is subordinate id 999 after the start of the user's range
    let (sub, _) = p.user.subuid.expect("subuid range");
    let out = p.run(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "--user",
        "0",
        image,
        "sh",
        "-c",
        "mkdir /data/d && chown 1000:1000 /data/d",
    ]);
    out.ok();
    assert_eq!(std::fs::metadata(vol.join("d")).expect("d").uid(), sub + 999);
    // read-only
    let ro = format!("{}:/data:ro", vol.display());
    let out = p.run(&["run", "--rm", "-v", &ro, image, "sh", "-c", "touch /data/x 2>/dev/null || echo refused"]);
    assert_eq!(out.ok().text(), "refused");
    assert!(!vol.join("x").exists());
}

#[test]
fn userns_keep_id_runs_as_the_user() {
    let Some(p) = podman() else { return };
    let image = integration::engines::IMAGE;
    let vol = p.user.home.join("keep");
    std::fs::create_dir(&vol).expect("mkdir");
    p.user.give(&vol);
    let spec = format!("{}:/data", vol.display());
    // keep-id: a user namespace of the runtime's own inside podman's, the user's uid kept
    let out =
        p.run(&["run", "--rm", "--userns=keep-id", "-v", &spec, image, "sh", "-c", "id -u; id -g; touch /data/mine"]);
    let want = format!("{}\n{}", p.user.uid, p.user.gid);
    assert_eq!(out.ok().text(), want);
    let meta = std::fs::metadata(vol.join("mine")).expect("mine");
    assert_eq!((meta.uid(), meta.gid()), (p.user.uid, p.user.gid), "a file the container made");
}
