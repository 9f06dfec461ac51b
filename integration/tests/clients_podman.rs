//! podman 4.3 running containers through the runtime under test (`--runtime PATH`, private
//! --root/--runroot/--tmpdir, cgroupfs, `--network none`, file events, a private containers.conf
//! with nofile/nproc below this host's hard limits): what a podman user sees, checked against the
//! host (cgroup files, freezer state, processes, mounts). Without podman every test skips. The
//! checks docker shares are in `integration/src/docker_cli.rs`.

use integration::docker_cli::{self as cli, PODMAN};
use integration::engines::{Engine, Kind, IMAGE};

fn podman() -> Option<std::sync::Arc<Engine>> {
    Engine::shared(Kind::Podman)
}

#[test]
fn exit_codes_streams_stdin_and_process_settings() {
    let Some(p) = podman() else { return };
    cli::exit_codes_streams_stdin_and_process_settings(&p, &PODMAN);
}

#[test]
fn detached_logs_exec_and_top() {
    let Some(p) = podman() else { return };
    cli::detached_logs_exec_and_top(&p, &PODMAN);
}

#[test]
fn pause_freezes_and_limits_reach_the_cgroup() {
    let Some(p) = podman() else { return };
    cli::pause_freezes_and_limits_reach_the_cgroup(&p, &PODMAN);
}

#[test]
fn signals_stop_timeout_and_oom() {
    let Some(p) = podman() else { return };
    cli::signals_stop_timeout_and_oom(&p, &PODMAN);
}

#[test]
fn tty_and_interactive_tty_with_the_window_size() {
    let Some(p) = podman() else { return };
    cli::tty_and_interactive_tty_with_the_window_size(&p);
}

#[test]
fn wait_and_removal_leaves_nothing() {
    let Some(p) = podman() else { return };
    cli::wait_and_removal_leaves_nothing(&p, &PODMAN);
}

#[test]
fn fifty_rm_containers_leave_no_trace() {
    cli::fifty_rm_containers_leave_no_trace(Kind::Podman);
}

#[test]
fn volumes_and_tmpfs() {
    let Some(e) = podman() else { return };
    cli::volumes_and_tmpfs(&e, &PODMAN);
}

#[test]
fn sdnotify_container_passes_ready_to_the_callers_socket() {
    // `podman run --sdnotify=container` hands NOTIFY_SOCKET to the runtime; the container's READY
    // must reach the socket podman was started with (systemd's, in a unit).
    let Some(p) = podman() else { return };
    let Some(notify) =
        ["/usr/bin/systemd-notify", "/bin/systemd-notify"].into_iter().find(|n| std::path::Path::new(n).exists())
    else {
        integration::skip("sdnotify: no systemd-notify on this host to send from the container");
        return;
    };
    let dir = tempfile::tempdir_in("/tmp").expect("temp dir");
    let caller = dir.path().join("notify.sock");
    let listener = std::os::unix::net::UnixDatagram::bind(&caller).expect("bind");
    listener.set_read_timeout(Some(integration::host::PATIENCE)).expect("timeout");
    let reader = std::thread::spawn(move || {
        let mut got = String::new();
        while !got.contains("READY=1") {
            let mut buf = [0u8; 4096];
            match listener.recv(&mut buf) {
                Ok(n) => got.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) => return Err(format!("{e} after {got:?}")),
            }
            got.push('\n');
        }
        Ok(got)
    });
    // systemd-notify and its libraries, read-only from the host (the image is busybox).
    let mut args: Vec<String> = ["run", "--rm", "--sdnotify=container"].iter().map(|s| s.to_string()).collect();
    for d in ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64"] {
        if std::path::Path::new(d).exists() {
            args.push("-v".into());
            args.push(format!("{d}:{d}:ro"));
        }
    }
    args.push("-v".into());
    args.push(format!("{notify}:/usr/local/bin/systemd-notify:ro"));
    args.extend([IMAGE.to_string(), "sh".into(), "-c".into(), "systemd-notify --ready; echo sent".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = p.command(&argv);
    cmd.env("NOTIFY_SOCKET", &caller);
    let out = cmd.output().expect("run podman");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = reader.join().expect("reader").expect("READY on the caller's socket");
    assert!(got.lines().any(|l| l == "READY=1"), "{got:?}");
    assert!(got.lines().any(|l| l.starts_with("MAINPID=")), "{got:?}");
}
