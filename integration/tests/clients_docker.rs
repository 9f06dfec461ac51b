//! dockerd 20.10 running containers through the runtime under test (`--add-runtime skiff=PATH`,
//! `docker run --runtime skiff --network none`): what a docker user sees, checked against the
//! host (cgroup files, freezer state, processes, mounts). A private dockerd per test binary
//! (the leak loop has its own); without docker.io installed every test skips with a note. The
//! checks podman shares are in `integration/src/docker_cli.rs`.

use integration::docker_cli::{self as cli, DOCKER};
use integration::engines::{Engine, Kind, IMAGE};

fn docker() -> Option<std::sync::Arc<Engine>> {
    Engine::shared(Kind::Docker)
}

#[test]
fn exit_codes_streams_stdin_and_process_settings() {
    let Some(d) = docker() else { return };
    cli::exit_codes_streams_stdin_and_process_settings(&d, &DOCKER);
}

#[test]
fn detached_logs_exec_and_top() {
    let Some(d) = docker() else { return };
    cli::detached_logs_exec_and_top(&d, &DOCKER);
}

#[test]
fn pause_freezes_and_limits_reach_the_cgroup() {
    let Some(d) = docker() else { return };
    cli::pause_freezes_and_limits_reach_the_cgroup(&d, &DOCKER);
}

#[test]
fn signals_stop_timeout_and_oom() {
    let Some(d) = docker() else { return };
    cli::signals_stop_timeout_and_oom(&d, &DOCKER);
}

#[test]
fn tty_and_interactive_tty_with_the_window_size() {
    let Some(d) = docker() else { return };
    cli::tty_and_interactive_tty_with_the_window_size(&d);
}

#[test]
fn init_wait_and_removal_leaves_nothing() {
    let Some(d) = docker() else { return };
    let o = d.run(&["run", "--rm", "--init", IMAGE, "sh", "-c", "cat /proc/1/comm; echo $$"]);
    assert_eq!(o.ok().stdout.lines().next(), Some("docker-init"), "{o}");
    assert_ne!(o.stdout.lines().nth(1), Some("1"), "the command is not pid 1");
    cli::wait_and_removal_leaves_nothing(&d, &DOCKER);
}

#[test]
fn default_seccomp_profile_and_capabilities() {
    let Some(d) = docker() else { return };
    let o = d.run(&["run", "--rm", IMAGE, "sh", "-c", "grep -E '^(Seccomp|CapEff|CapBnd):' /proc/self/status"]);
    let status: Vec<String> =
        o.ok().stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    // docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
    // net_bind_service net_raw sys_chroot mknod audit_write setfcap
    assert_eq!(status, ["CapEff: 00000000a80425fb", "CapBnd: 00000000a80425fb", "Seccomp: 2"], "{o}");
    let o = d.run(&["run", "--rm", IMAGE, "sh", "-c", "mount -t tmpfs none /mnt 2>&1 || echo refused"]);
    assert!(o.stdout.contains("refused"), "{o}");
}

#[test]
fn fifty_rm_containers_leave_no_trace() {
    cli::fifty_rm_containers_leave_no_trace(Kind::Docker);
}

#[test]
fn volumes_and_tmpfs() {
    let Some(e) = docker() else { return };
    cli::volumes_and_tmpfs(&e, &DOCKER);
}

#[test]
fn the_window_size_always_arrives() {
    let Some(d) = docker() else { return };
    // skiff lost it about 1 run in 3: 15 runs miss that with a chance of 0.2%.
    cli::the_window_size_always_arrives(&d, 15);
}
