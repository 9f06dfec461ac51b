//! Registries for the tests, started on loopback and stopped by pid on drop: Debian's
//! `docker-registry` (CNCF distribution 2.8) plain and anonymous, with TLS (a CA and server
//! certificate made here with openssl) and htpasswd basic auth, or with token auth backed by a
//! small bearer-token server of our own. `skopeo` checks what slipway did from outside.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether docker-registry, skopeo, openssl and htpasswd are installed; skips (with the reason
/// recorded) when not.
pub fn available() -> bool {
    for b in ["docker-registry", "skopeo", "openssl", "htpasswd"] {
        if !crate::engines::have(b) {
            crate::skip(format!("{b} is not installed (make deps installs it)"));
            return false;
        }
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
    /// `HOST:PORT` as references name it.
    pub host: String,
    pub tls: bool,
    /// The CA that signed the server certificate (TLS registries).
    pub ca_dir: Option<PathBuf>,
    pub token: Option<TokenServer>,
}

pub const USER: &str = "tester";
pub const PASSWORD: &str = "s3cret-pw";

fn sh(cmd: &str) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
}

impl Registry {
    /// Plain HTTP, anonymous.
    pub fn plain() -> Registry {
        Registry::start(Kind::Plain)
    }

    /// HTTPS with a certificate from a CA of the test's own, htpasswd basic auth.
    pub fn tls_basic() -> Registry {
        Registry::start(Kind::TlsBasic)
    }

    /// HTTPS that requires a client certificate signed by the test's CA (no passwords);
    /// `ca_dir` holds the CA and, in `client_cert_dir`, also `client.cert`/`client.key`.
    pub fn tls_client_cert() -> Registry {
        Registry::start(Kind::TlsClient)
    }

    /// A cert dir with the CA and a client certificate the registry accepts.
    pub fn client_cert_dir(&self) -> PathBuf {
        self.dir.path().join("client-trust")
    }

    /// An X.509 v1 client certificate (no extensions) with its key, which TLS libraries refuse.
    pub fn v1_client_cert(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("certs/v1.cert"), self.dir.path().join("certs/client.key"))
    }

    /// Plain HTTP with token auth; the tokens come from a [`TokenServer`].
    pub fn bearer() -> Registry {
        Registry::start(Kind::Bearer)
    }

    fn start(kind: Kind) -> Registry {
        let dir = tempfile::Builder::new().prefix("slipway-registry-").tempdir().expect("tempdir");
        let d = dir.path();
        let port = free_port();
        let mut extra = String::new();
        let mut ca_dir = None;
        let mut token = None;
        match kind {
            Kind::Plain => {}
            Kind::TlsBasic | Kind::TlsClient => {
                let certs = d.join("certs");
                fs::create_dir_all(&certs).expect("mkdir");
                let c = certs.display();
                sh(&format!(
                    "cd {c} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=slipway-test-ca \
                     -keyout ca.key -out ca.crt 2>/dev/null && \
                     openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null && \
                     printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && \
                     openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                     -extfile ext -out server.crt 2>/dev/null"
                ));
                let trust = d.join("trust");
                fs::create_dir_all(&trust).expect("mkdir");
                fs::copy(certs.join("ca.crt"), trust.join("ca.crt")).expect("copy ca");
                ca_dir = Some(trust);
                if matches!(kind, Kind::TlsClient) {
                    let ct = d.join("client-trust");
                    fs::create_dir_all(&ct).expect("mkdir");
                    sh(&format!(
                        "cd {c} && openssl req -newkey rsa:2048 -nodes -subj /CN=slipway-client -keyout client.key \
                         -out client.csr 2>/dev/null && printf 'extendedKeyUsage=clientAuth\\n' > cext && \
                         openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                         -extfile cext -out client.cert 2>/dev/null && \
                         openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                         -out v1.cert 2>/dev/null && cp ca.crt client.cert client.key {}",
                        ct.display()
                    ));
                    extra = format!(
                        "  tls:\n    certificate: {c}/server.crt\n    key: {c}/server.key\n    clientcas:\n      - {c}/ca.crt\n"
                    );
                } else {
                    sh(&format!("htpasswd -Bbn {USER} {PASSWORD} > {}/htpasswd", d.display()));
                    extra = format!(
                        "  tls:\n    certificate: {c}/server.crt\n    key: {c}/server.key\n\
                         auth:\n  htpasswd:\n    realm: slipway-test\n    path: {}/htpasswd\n",
                        d.display()
                    );
                }
            }
            Kind::Bearer => {
                let t = TokenServer::start(d);
                extra = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: slipway-test-registry\n\
                     \x20   issuer: slipway-test-issuer\n    rootcertbundle: {}\n",
                    t.port,
                    t.cert.display()
                );
                token = Some(t);
            }
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
            d.display()
        );
        fs::write(d.join("config.yml"), cfg).expect("write config");
        let log = fs::File::create(d.join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let tls = matches!(kind, Kind::TlsBasic | Kind::TlsClient);
        let r = Registry { dir, port, child, host: format!("127.0.0.1:{port}"), tls, ca_dir, token };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen: {}", r.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// The registry's log (its access log lines included).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log request lines (`"METHOD /v2/... HTTP/1.1" STATUS`) logged after `from` bytes.
    pub fn requests_since(&self, from: usize) -> Vec<String> {
        let l = self.log();
        l.get(from..)
            .unwrap_or("")
            .lines()
            .filter(|l| l.starts_with("127.0.0.1 - "))
            .filter_map(|l| {
                l.split('"').nth(1).map(|req| format!("{req} {}", l.split('"').nth(2).unwrap_or("").trim()))
            })
            .collect()
    }

    pub fn log_len(&self) -> usize {
        self.log().len()
    }

    /// The data file of a blob in the registry's filesystem storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// Whether the registry's storage links `digest` into `repo` (a pushed or mounted layer).
    pub fn repo_has_layer(&self, repo: &str, digest: &str) -> bool {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join(format!("data/docker/registry/v2/repositories/{repo}/_layers/sha256/{hex}/link")).is_file()
    }

    /// skopeo with this registry's TLS and credential flags.
    pub fn skopeo(&self, args: &[&str]) -> crate::slipway::Run {
        let mut c = Command::new("skopeo");
        c.arg(args[0]);
        if self.tls {
            let ca = self.ca_dir.as_ref().expect("ca").display().to_string();
            match args[0] {
                "copy" => c.args(["--dest-cert-dir", &ca, "--src-cert-dir", &ca]),
                _ => c.args(["--cert-dir", &ca]),
            };
        } else {
            match args[0] {
                "copy" => c.args(["--dest-tls-verify=false", "--src-tls-verify=false"]),
                _ => c.args(["--tls-verify=false"]),
            };
        }
        if self.tls || self.token.is_some() {
            let creds = format!("{USER}:{PASSWORD}");
            match args[0] {
                "copy" => c.args(["--dest-creds", &creds, "--src-creds", &creds]),
                _ => c.args(["--creds", &creds]),
            };
        }
        c.args(&args[1..]);
        let o = c.output().expect("run skopeo");
        crate::slipway::Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Plain,
    TlsBasic,
    TlsClient,
    Bearer,
}

/// A bearer-token server as distribution's token auth expects one: `GET /token?service=&scope=`
/// with basic credentials answers `{"token": JWT}`, the JWT signed (RS256, by `openssl dgst`)
/// with a key whose self-signed certificate is the registry's `rootcertbundle` and rides in
/// the header's `x5c`. Every scope asked for is granted to [`USER`]; anyone else gets 401.
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
    /// The query strings of the token requests it answered (scope checks).
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn b64(data: &[u8], url: bool) -> String {
    const STD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let t = if url { URL } else { STD };
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(t[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            for _ in c.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let v: Vec<u8> = s.bytes().filter_map(val).collect();
    let mut out = Vec::new();
    for c in v.chunks(4) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, &x)| n | (x as u32) << (18 - 6 * i));
        for i in 0..c.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        let d = dir.join("token");
        fs::create_dir_all(&d).expect("mkdir");
        sh(&format!(
            "cd {} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=slipway-token-issuer \
             -keyout key.pem -out cert.pem 2>/dev/null && openssl x509 -in cert.pem -outform DER -out cert.der",
            d.display()
        ));
        let l = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (st, rq, kd) = (stop.clone(), requests.clone(), d.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        serve_token(s, &kd, &rq);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TokenServer { port, cert: d.join("cert.pem"), requests, stop, thread: Some(thread) }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(s: TcpStream, keydir: &Path, requests: &Mutex<Vec<String>>) {
    let mut r = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut auth = None;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "authorization" => auth = Some(v.trim().to_string()),
            "content-length" => len = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    let target = line.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("").to_string();
    requests.lock().map(|mut v| v.push(query.clone())).ok();
    let user_ok = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .map(|b| String::from_utf8_lossy(&unb64(b)).into_owned())
        .is_some_and(|up| up == format!("{USER}:{PASSWORD}"));
    let mut w = s;
    if !user_ok {
        let _ = w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        return;
    }
    let mut access = Vec::new();
    for kv in query.split('&') {
        let Some(("scope", v)) = kv.split_once('=') else { continue };
        for scope in pct_decode(v).split(' ') {
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 {
                let actions: Vec<&str> = parts[2].split(',').collect();
                access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": actions}));
            }
        }
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let cert = fs::read(keydir.join("cert.der")).unwrap_or_default();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [b64(&cert, false)]});
    let claims = serde_json::json!({
        "iss": "slipway-test-issuer", "sub": USER, "aud": "slipway-test-registry",
        "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", std::process::id()),
        "access": access,
    });
    let signing = format!("{}.{}", b64(header.to_string().as_bytes(), true), b64(claims.to_string().as_bytes(), true));
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(keydir.join("key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl");
    if let Some(mut i) = c.stdin.take() {
        let _ = i.write_all(signing.as_bytes());
    }
    let sig = c.wait_with_output().map(|o| o.stdout).unwrap_or_default();
    let token = format!("{signing}.{}", b64(&sig, true));
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
    let _ = write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_round_trip() {
        for s in [&b""[..], b"a", b"ab", b"abc", b"tester:s3cret-pw"] {
            assert_eq!(super::unb64(&super::b64(s, false)), s);
            assert_eq!(super::unb64(&super::b64(s, true)), s);
        }
        assert_eq!(super::b64(b"ab", false), "YWI=");
    }
}
