//! podman 4.3 running containers through the runtime under test (`--runtime PATH`, private
//! --root/--runroot/--tmpdir, cgroupfs, `--network none`, file events, a private containers.conf
//! with nofile/nproc below this host's hard limits): what a podman user sees, checked against the
//! host (cgroup files, freezer state, processes, mounts). Without podman every test skips. The
//! checks docker shares are in `integration/src/docker_cli.rs`.

use integration::docker_cli::{self as cli, PODMAN};
use integration::engines::{Engine, Kind};

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
