//! OCI lifecycle hooks: each hook runs with the container's state JSON on stdin, its own args
//! and env, and an optional timeout. Output is captured in memfds (no threads, no pipe deadlock)
//! and shown when the hook fails.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs every hook of one kind in order; the first failure stops the list.
pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) -> Result<()> {
    run_all_with_default_env(kind, hooks, state, &[])
}

/// Runs every hook of one kind in order, each failure a warning: runtime-spec's rule for poststop
/// ("log a warning, but the remaining hooks and lifecycle continue as if the hook had succeeded").
/// runc 1.1 logs the first failure and skips the hooks after it.
pub fn run_each_warning(kind: &str, hooks: Option<&Vec<Hook>>, state: &serde_json::Value) {
    let state = state.to_string();
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run_one(h, h.env().as_deref().unwrap_or_default(), &state) {
            crate::log::warn(&format!("{kind} hook #{i} ({}): {e}", h.path().display()));
        }
    }
}

/// [`run_all`] where a hook without `env` gets `default_env`. runc runs startContainer hooks
/// so, with the container process's environment: not in the runtime spec, but what hooks written
/// for runc expect. An explicit `"env": []` stays an empty environment, as in runc 1.1.
pub fn run_all_with_default_env(
    kind: &str,
    hooks: Option<&Vec<Hook>>,
    state: &serde_json::Value,
    default_env: &[String],
) -> Result<()> {
    let state = state.to_string();
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        let env = h.env().as_deref().unwrap_or(default_env);
        run_one(h, env, &state).map_err(|e| Error::msg(format!("{kind} hook #{i} ({}): {e}", h.path().display())))?;
    }
    Ok(())
}

fn capture_file(name: &std::ffi::CStr) -> Result<std::fs::File> {
    let fd: OwnedFd = nix::sys::memfd::memfd_create(name, nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| Error::sys("memfd_create for hook output", e))?;
    Ok(std::fs::File::from(fd))
}

fn run_one(h: &Hook, env: &[String], state: &str) -> Result<()> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args() {
        if let Some((argv0, rest)) = args.split_first() {
            std::os::unix::process::CommandExt::arg0(&mut cmd, argv0);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let out = capture_file(c"hook-stdout")?;
    let err = capture_file(c"hook-stderr")?;
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(|e| Error::io("dup", e))?)
        .stderr(err.try_clone().map_err(|e| Error::io("dup", e))?);
    let mut child = cmd.spawn().map_err(|e| Error::io("start", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine; the write error is not the hook's failure.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h.timeout().map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut delay = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(Error::io("wait", e)),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::msg(format!("hook ran past specified timeout of {}s", h.timeout().unwrap_or_default())));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let read = |mut f: std::fs::File| {
        let mut s = String::new();
        let _ = f.rewind();
        let _ = f.read_to_string(&mut s);
        s.trim().to_string()
    };
    let (stdout, stderr) = (read(out), read(err));
    Err(Error::msg(format!("{status}, stdout: {stdout:?}, stderr: {stderr:?}")))
}
