//! systemd's D-Bus API (org.freedesktop.systemd1.Manager on the system bus) through zbus's
//! blocking API: start a transient scope and wait for its job, set unit properties, stop and
//! reset a unit.
//!
//! zbus starts threads (its connection executor, async-io's reactor) and skiff must never have a
//! second thread (it forks and clones and runs async-signal-unsafe code in the children; see
//! sys::fork). So every call here runs in a short-lived helper process forked for it, [`run`]:
//! the threads live and die there, skiff itself stays single-threaded, and a hung systemd is
//! cut off by killing the helper.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use zbus::blocking::{Connection, MessageIterator};
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value as ZValue};

use super::properties::{Property, Value};
use crate::error::{Error, Result, SysContext};
use crate::sys::{self, Forked};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// How long a job may take: runc waits 30 s for systemd, then the connection's own time.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const HELPER_TIMEOUT: Duration = Duration::from_secs(45);

/// Runs `f` in a forked helper process and returns its outcome. `what` names the operation for
/// errors. The helper dies with skiff (PDEATHSIG), and is killed after [`HELPER_TIMEOUT`].
pub fn run(what: &str, f: impl FnOnce() -> std::result::Result<(), String>) -> Result<()> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let parent = nix::unistd::getpid();
    match sys::fork().ctx(|| format!("{what}: fork the D-Bus helper"))? {
        Forked::Child => {
            drop(r);
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            let outcome = if nix::unistd::getppid() != parent { Err("skiff exited".to_string()) } else { f() };
            let msg = match outcome {
                Ok(()) => String::new(),
                Err(e) if e.is_empty() => "failed".to_string(),
                Err(e) => e,
            };
            let _ = std::io::Write::write_all(&mut std::fs::File::from(w), msg.as_bytes());
            // No atexit handlers, no flushing of buffers copied from the parent.
            sys::exit_now(0)
        }
        Forked::Parent(child) => {
            drop(w);
            let result = read_until(r, HELPER_TIMEOUT);
            if result.is_err() {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            }
            let status = nix::sys::wait::waitpid(child, None);
            let msg = result.map_err(|e| Error::msg(format!("{what}: {e}")))?;
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) if msg.is_empty() => Ok(()),
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Err(Error::msg(format!("{what}: {msg}"))),
                other => Err(Error::msg(format!("{what}: the D-Bus helper ended with {other:?}"))),
            }
        }
    }
}

/// Everything the helper writes, until it closes the pipe (or `limit` passes).
fn read_until(fd: std::os::fd::OwnedFd, limit: Duration) -> std::result::Result<String, String> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + limit;
    let mut file = std::fs::File::from(fd);
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("systemd did not answer within {} s", limit.as_secs()));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll the D-Bus helper: {e}")),
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from the D-Bus helper: {e}")),
        }
    }
}

/// A connection to systemd on the system bus. Only in a [`run`] helper.
pub struct Systemd {
    conn: Connection,
}

/// The D-Bus error name of a failed call, if it was one.
fn error_name(e: &zbus::Error) -> Option<&str> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

fn to_zvalue(v: &Value) -> ZValue<'_> {
    match v {
        Value::Bool(b) => ZValue::from(*b),
        Value::U64(n) => ZValue::from(*n),
        Value::Str(s) => ZValue::from(s.as_str()),
        Value::Bits(b) => ZValue::from(b.clone()),
        Value::DeviceLimits(l) => ZValue::from(l.clone()),
        Value::Pids(p) => ZValue::from(p.clone()),
        Value::U8(n) => ZValue::from(*n),
        Value::I16(n) => ZValue::from(*n),
        Value::U16(n) => ZValue::from(*n),
        Value::I32(n) => ZValue::from(*n),
        Value::U32(n) => ZValue::from(*n),
        Value::I64(n) => ZValue::from(*n),
        Value::Double(bits) => ZValue::from(f64::from_bits(*bits)),
        Value::StrList(l) => ZValue::from(l.clone()),
    }
}

impl Systemd {
    pub fn connect() -> std::result::Result<Systemd, String> {
        let conn = Connection::system().map_err(|e| format!("connect to the system bus: {e}"))?;
        Ok(Systemd { conn })
    }

    fn call<B, R>(&self, method: &str, body: &B) -> zbus::Result<R>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let reply = self.conn.call_method(Some(DEST), PATH, Some(MANAGER), method, body)?;
        reply.body().deserialize::<R>()
    }

    /// systemd's version number (the Manager's Version property, "252.22-1~deb12u1" -> 252).
    pub fn version(&self) -> u32 {
        let reply = self.conn.call_method(
            Some(DEST),
            PATH,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(MANAGER, "Version"),
        );
        let text = reply
            .ok()
            .and_then(|m| m.body().deserialize::<OwnedValue>().ok())
            .and_then(|v| String::try_from(v).ok())
            .unwrap_or_default();
        parse_version(&text)
    }

    /// Starts the transient unit `name` with `props` and waits for its job.
    /// A unit of that name left failed by an earlier run is reset and the start tried once more,
    /// as runc does.
    pub fn start(&self, name: &str, props: &[Property]) -> std::result::Result<(), String> {
        let all: Vec<(&str, ZValue)> = props.iter().map(|p| (p.name.as_ref(), to_zvalue(&p.value))).collect();
        let aux: Vec<(&str, Vec<(&str, ZValue)>)> = Vec::new();
        let jobs = self.job_signals()?;
        let mut retried = false;
        loop {
            match self.call::<_, OwnedObjectPath>("StartTransientUnit", &(name, "replace", &all, &aux)) {
                Ok(job) => return self.wait_job(jobs, &job, name, "start"),
                Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") && !retried => {
                    retried = true;
                    let _ = self.call::<_, ()>("ResetFailedUnit", &(name,));
                }
                Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.UnitExists") => {
                    return Err(format!("unit {name} already exists"))
                }
                Err(e) => return Err(format!("start unit {name}: {e}")),
            }
        }
    }

    /// Sets `props` on the running unit `name` (runtime only, as runc: nothing persists past a
    /// reboot).
    pub fn set(&self, name: &str, props: &[Property]) -> std::result::Result<(), String> {
        if props.is_empty() {
            return Ok(());
        }
        let all: Vec<(&str, ZValue)> = props.iter().map(|p| (p.name.as_ref(), to_zvalue(&p.value))).collect();
        self.call::<_, ()>("SetUnitProperties", &(name, true, &all))
            .map_err(|e| format!("set the properties of unit {name}: {e}"))
    }

    /// Stops the unit `name` and waits for the job; then resets it in case it failed, so
    /// systemd forgets it. A unit that is already gone is fine.
    pub fn stop(&self, name: &str) -> std::result::Result<(), String> {
        let jobs = self.job_signals()?;
        let result = match self.call::<_, OwnedObjectPath>("StopUnit", &(name, "replace")) {
            Ok(job) => self.wait_job(jobs, &job, name, "stop"),
            Err(e) if error_name(&e) == Some("org.freedesktop.systemd1.NoSuchUnit") => Ok(()),
            Err(e) => Err(format!("stop unit {name}: {e}")),
        };
        match self.call::<_, ()>("ResetFailedUnit", &(name,)) {
            Err(e) if error_name(&e) != Some("org.freedesktop.systemd1.NoSuchUnit") && result.is_ok() => {
                Err(format!("reset-failed unit {name}: {e}"))
            }
            _ => result,
        }
    }

    /// JobRemoved signals, subscribed before the call whose job they report (systemd only
    /// sends them once some client called Subscribe).
    fn job_signals(&self) -> std::result::Result<MessageIterator, String> {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .sender(DEST)
            .and_then(|b| b.interface(MANAGER))
            .and_then(|b| b.member("JobRemoved"))
            .map_err(|e| format!("match rule: {e}"))?
            .build();
        let it = MessageIterator::for_match_rule(rule, &self.conn, Some(64))
            .map_err(|e| format!("subscribe to systemd's JobRemoved: {e}"))?;
        self.call::<_, ()>("Subscribe", &()).map_err(|e| format!("subscribe to systemd's signals: {e}"))?;
        Ok(it)
    }

    fn wait_job(
        &self,
        jobs: MessageIterator,
        job: &OwnedObjectPath,
        unit: &str,
        verb: &str,
    ) -> std::result::Result<(), String> {
        // The helper's parent kills it after HELPER_TIMEOUT; this gives the better message.
        let deadline = Instant::now() + JOB_TIMEOUT;
        for msg in jobs {
            if Instant::now() > deadline {
                break;
            }
            let Ok(msg) = msg else { continue };
            let Ok((_id, path, _unit, result)) = msg.body().deserialize::<(u32, OwnedObjectPath, String, String)>()
            else {
                continue;
            };
            if path != *job {
                continue;
            }
            return match result.as_str() {
                "done" => Ok(()),
                other => {
                    if verb == "start" {
                        let _ = self.call::<_, ()>("ResetFailedUnit", &(unit,));
                    }
                    Err(format!("{verb} unit {unit}: systemd's job ended with {other:?}"))
                }
            };
        }
        Err(format!("{verb} unit {unit}: no result from systemd within {} s", JOB_TIMEOUT.as_secs()))
    }
}

/// "252.22-1~deb12u1", "v245.4-1.fc32" or "245" -> the leading number (0 if none).
pub fn parse_version(text: &str) -> u32 {
    let t = text.trim_start_matches(['"', 'v']);
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_like_runc() {
        for (text, want) in
            [("252.22-1~deb12u1", 252), ("v245.4-1.fc32", 245), ("\"v245-1.fc32\"", 245), ("245", 245), ("", 0)]
        {
            assert_eq!(parse_version(text), want, "{text}");
        }
    }

    #[test]
    fn a_helper_reports_success_and_errors() {
        run("test", || Ok(())).unwrap();
        let err = run("frobnicate", || Err("it broke".into())).unwrap_err().to_string();
        assert_eq!(err, "frobnicate: it broke");
    }
}
