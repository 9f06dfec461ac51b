//! What `build --secret` and `build --ssh` give RUN steps (BuildKit's session attachables):
//! secrets by id from a file or an environment variable, read when a step mounts them (never
//! kept in the store, a key or the log); ssh agents by id, a socket of the user's or an
//! ssh-agent of our own holding the given keys (started on first use, ended by pid with the
//! build). The socket a step sees is a forwarder of our own in the step's temp dir, owned and
//! moded as the mount says, as BuildKit's is.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a secret's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `build --secret` values by id.
#[derive(Debug, Clone, Default)]
pub struct Secrets(BTreeMap<String, SecretSource>);

/// Parses `id=ID,src=PATH`, `id=ID,env=VAR` (`type=file|env`, `source=`), as docker's CLI
/// does; `id=ID` alone is the environment variable ID when it is set, else the file ID.
pub fn parse_secret(s: &str) -> Result<(String, SecretSource), String> {
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--secret {s:?}: {kv:?} is not KEY=VALUE"))?;
        match k.to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
            "type" => return Err(format!("--secret {s:?}: type={v}: expected file or env")),
            _ => return Err(format!("--secret {s:?}: unknown key {k:?} (id, src, env, type)")),
        }
    }
    let id = id.filter(|i| !i.is_empty()).ok_or_else(|| format!("--secret {s:?}: id= is missing"))?;
    let source = match (kind.as_deref(), src, env) {
        (_, Some(_), Some(_)) => return Err(format!("--secret {s:?}: src= and env= both given")),
        (Some("env"), Some(v), None) | (_, None, Some(v)) => SecretSource::Env(v),
        (Some("env"), None, None) => SecretSource::Env(id.clone()),
        (_, Some(p), None) => SecretSource::File(PathBuf::from(p)),
        (_, None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
        (_, None, None) => SecretSource::File(PathBuf::from(&id)),
    };
    if let SecretSource::File(p) = &source {
        if !p.is_file() {
            return Err(format!("--secret {s:?}: {}: not a readable file", p.display()));
        }
    }
    Ok((id, source))
}

impl Secrets {
    pub fn add(&mut self, id: String, src: SecretSource) {
        self.0.insert(id, src);
    }

    /// The value of secret `id`, read now; `None` when the build was given no such secret.
    pub fn value(&self, id: &str) -> Result<Option<Vec<u8>>, String> {
        match self.0.get(id) {
            None => Ok(None),
            Some(SecretSource::File(p)) => {
                std::fs::read(p).map(Some).map_err(|e| format!("secret {id}: read {}: {e}", p.display()))
            }
            Some(SecretSource::Env(v)) => match std::env::var_os(v) {
                Some(val) => Ok(Some(std::os::unix::ffi::OsStringExt::into_vec(val))),
                None => Err(format!("secret {id}: environment variable {v} is not set")),
            },
        }
    }
}

/// Where an ssh agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshSource {
    /// An agent socket (`--ssh default` is `$SSH_AUTH_SOCK`).
    Socket(PathBuf),
    /// Private key files, given to an ssh-agent of our own.
    Keys(Vec<PathBuf>),
}

/// Parses `default`, `ID`, `ID=SOCKET` or `ID=KEY[,KEY...]`.
pub fn parse_ssh(s: &str) -> Result<(String, SshSource), String> {
    let (id, paths) = match s.split_once('=') {
        Some((id, p)) => (id.to_string(), p.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect()),
        None => (s.to_string(), Vec::new()),
    };
    if id.is_empty() {
        return Err(format!("--ssh {s:?}: the id is empty"));
    }
    let paths: Vec<PathBuf> = paths;
    if paths.is_empty() {
        let sock = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("--ssh {s}: SSH_AUTH_SOCK is not set (give --ssh {id}=SOCKET or KEY)"))?;
        return Ok((id, SshSource::Socket(PathBuf::from(sock))));
    }
    let is_socket = |p: &Path| std::fs::metadata(p).map(|m| m.file_type().is_socket()).unwrap_or(false);
    if paths.len() == 1 && is_socket(&paths[0]) {
        return Ok((id, SshSource::Socket(paths[0].clone())));
    }
    for p in &paths {
        if !p.is_file() {
            return Err(format!("--ssh {s:?}: {}: neither an agent socket nor a key file", p.display()));
        }
    }
    Ok((id, SshSource::Keys(paths)))
}

/// An ssh-agent we started (`ssh-agent -D -a SOCK`), ended by pid when dropped.
pub struct Agent {
    pub socket: PathBuf,
    child: Child,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Starts an agent listening on `socket` and adds `keys` to it.
pub fn start_agent(socket: &Path, keys: &[PathBuf]) -> Result<Agent, String> {
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start ssh-agent (Debian's openssh-client): {e}"))?;
    let agent = Agent { socket: socket.to_path_buf(), child };
    let start = Instant::now();
    while UnixStream::connect(socket).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("ssh-agent did not listen on {} within 10 s", socket.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for k in keys {
        let out = Command::new("ssh-add")
            .arg(k)
            .env("SSH_AUTH_SOCK", socket)
            .env("SSH_ASKPASS_REQUIRE", "never")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run ssh-add: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ssh-add {}: {}",
                k.display(),
                String::from_utf8_lossy(&out.stderr).trim().replace('\n', "; ")
            ));
        }
    }
    Ok(agent)
}

/// A socket that forwards each connection to an agent socket; stops when dropped.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens on `at` (owned by `uid`:`gid`, `mode`) and forwards to `agent`.
pub fn forward(at: &Path, agent: &Path, uid: u32, gid: u32, mode: u32) -> io::Result<Forwarder> {
    use std::os::unix::fs::PermissionsExt;
    let l = UnixListener::bind(at)?;
    std::os::unix::fs::chown(at, Some(uid), Some(gid))?;
    std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode & 0o777))?;
    l.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let agent = agent.to_path_buf();
    let thread = std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((c, _)) => {
                    let Ok(a) = UnixStream::connect(&agent) else { continue };
                    let _ = c.set_nonblocking(false);
                    pipe(c, a);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    Ok(Forwarder { stop, thread: Some(thread) })
}

/// Copies both ways between two streams until either side closes (a thread each way).
fn pipe(a: UnixStream, b: UnixStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else { return };
    std::thread::spawn(move || {
        let (mut r, mut w) = (a, b2);
        let _ = io::copy(&mut r, &mut w);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let (mut r, mut w) = (b, a2);
        let _ = io::copy(&mut r, &mut w);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flags() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("tok");
        std::fs::write(&f, "s3cr3t").unwrap();
        let arg = format!("id=tok,src={}", f.display());
        assert_eq!(parse_secret(&arg).unwrap(), ("tok".into(), SecretSource::File(f.clone())));
        assert_eq!(parse_secret("id=a,env=HOME").unwrap(), ("a".into(), SecretSource::Env("HOME".into())));
        assert_eq!(parse_secret("type=env,id=HOME").unwrap(), ("HOME".into(), SecretSource::Env("HOME".into())));
        assert_eq!(parse_secret("id=HOME").unwrap(), ("HOME".into(), SecretSource::Env("HOME".into())));
        for (bad, want) in [
            ("src=/x", "id= is missing"),
            ("id=a,src=/nonexistent/x", "not a readable file"),
            ("id=a,bogus=1", "unknown key"),
            ("id=a,type=tcp", "expected file or env"),
            ("id=a,src=/x,env=Y", "both given"),
        ] {
            let e = parse_secret(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let mut s = Secrets::default();
        s.add("tok".into(), SecretSource::File(f));
        assert_eq!(s.value("tok").unwrap().as_deref(), Some(&b"s3cr3t"[..]));
        assert_eq!(s.value("other").unwrap(), None);
    }

    #[test]
    fn ssh_flags() {
        let t = tempfile::tempdir().unwrap();
        let k = t.path().join("id_ed25519");
        std::fs::write(&k, "key").unwrap();
        let (id, src) = parse_ssh(&format!("git={}", k.display())).unwrap();
        assert_eq!((id.as_str(), src), ("git", SshSource::Keys(vec![k])));
        let sock = t.path().join("agent.sock");
        let _l = UnixListener::bind(&sock).unwrap();
        let (_, src) = parse_ssh(&format!("default={}", sock.display())).unwrap();
        assert_eq!(src, SshSource::Socket(sock));
        assert!(parse_ssh("x=/nonexistent").unwrap_err().contains("neither an agent socket nor a key file"));
    }
}
