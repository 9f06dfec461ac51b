//! An Azure Blob Storage server for the tests: Microsoft's emulator Azurite (`azurite-blob`,
//! from the npm install `make deps` makes; Debian has none) on a free loopback port with a
//! temporary location, stopped by pid on drop. Its well-known dev account (`devstoreaccount1`
//! and the published key) is served path-style at `http://127.0.0.1:PORT/devstoreaccount1`, and
//! Azurite checks every Shared Key signature. The independent client that lists what slipway
//! wrote is a short python3 script (standard library only) that signs List Blobs and Get Blob
//! itself, from Microsoft's Shared Key documentation.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `make deps` installs azurite with npm (outside the repository: a test tool).
pub const DIR: &str = "/var/cache/slipway-test/azurite";
/// Azurite's well-known development account and key (published in its README).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn bin() -> std::path::PathBuf {
    Path::new(DIR).join("node_modules/.bin/azurite-blob")
}

/// Whether azurite is installed (`make deps` writes `.azurite-VERSION` once npm succeeded) and
/// python3 is there for the listing client; skips with the reason when not.
pub fn available() -> bool {
    let stamped = std::fs::read_dir(DIR)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".azurite-")))
        .unwrap_or(false);
    if !stamped || !bin().exists() {
        crate::skip(format!("no Azurite in {DIR} (make deps installs it there with npm)"));
        return false;
    }
    if Command::new("python3").arg("-c").arg("").status().map(|s| !s.success()).unwrap_or(true) {
        crate::skip("no python3 (the azblob tests' listing client)");
        return false;
    }
    true
}

pub struct Azurite {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `http(s)://127.0.0.1:PORT/devstoreaccount1`
    pub account_url: String,
    /// The CA bundle that trusts it over https.
    pub ca: Option<std::path::PathBuf>,
}

/// A test CA and a server certificate it signed for 127.0.0.1 (openssl), in a temporary
/// directory: `ca.crt` is the bundle a client trusts (`SSL_CERT_FILE`); and a self-signed client
/// certificate with its RSA key (`client.pem`: both, as AZURE_CLIENT_CERTIFICATE_PATH takes them).
pub struct Tls {
    pub dir: tempfile::TempDir,
}

impl Tls {
    pub fn new() -> Tls {
        let dir = tempfile::Builder::new().prefix("aztls-").tempdir().expect("tempdir");
        let c = dir.path().display();
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd {c} && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=slipway-test-ca \
                 -keyout ca.key -out ca.crt 2>/dev/null && \
                 openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null && \
                 printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && \
                 openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                 -extfile ext -out server.crt 2>/dev/null && \
                 openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=slipway-client \
                 -keyout client.key -out client.crt 2>/dev/null && cat client.crt client.key > client.pem"
            ))
            .output()
            .expect("sh");
        assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
        Tls { dir }
    }

    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl Default for Tls {
    fn default() -> Tls {
        Tls::new()
    }
}

/// The SAS signer (argv: account, key, container or "", permissions, hours).
const SAS_PY: &str = r#"
import base64, hashlib, hmac, sys, urllib.parse, datetime
account, key, container, perms, hours = sys.argv[1:6]
now = datetime.datetime.now(datetime.timezone.utc)
fmt = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
st, se = fmt(now - datetime.timedelta(hours=1)), fmt(now + datetime.timedelta(hours=int(hours)))
sv = "2021-12-02"
if container == "":
    q = {"sv": sv, "ss": "b", "srt": "sco", "sp": perms, "st": st, "se": se, "spr": "https,http"}
    sts = "\n".join([account, perms, "b", "sco", st, se, "", "https,http", sv, "", ""])
else:
    q = {"sv": sv, "sr": "c", "sp": perms, "st": st, "se": se, "spr": "https,http"}
    sts = "\n".join([perms, st, se, f"/blob/{account}/{container}", "", "", "https,http", sv, "c", "", "", "", "", "", "", ""])
sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
q["sig"] = sig
print(urllib.parse.urlencode(q))
"#;

/// One HTTP/1.0 GET on loopback: true when something answered with a status line.
fn answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET /{ACCOUNT}?comp=list HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.")
}

/// The listing and reading client: Shared Key over python3's hmac, as Microsoft documents it.
const PY: &str = r#"
import base64, hashlib, hmac, json, sys, urllib.request, urllib.error, email.utils
import xml.etree.ElementTree as ET
url, account, key, container = sys.argv[1:5]
def call(path, query):
    date = email.utils.formatdate(usegmt=True)
    hdrs = {"x-ms-date": date, "x-ms-version": "2021-12-02"}
    canon_h = "".join(f"{k}:{v}\n" for k, v in sorted(hdrs.items()))
    prefix = urllib.parse.urlsplit(url).path
    canon_r = f"/{account}{prefix}{path}" + "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    sts = "GET\n" + "\n" * 11 + canon_h + canon_r
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(), hashlib.sha256).digest()).decode()
    q = "&".join(f"{k}={v}" for k, v in query.items())
    req = urllib.request.Request(url + path + ("?" + q if q else ""), headers=dict(hdrs, Authorization=f"SharedKey {account}:{sig}"))
    try:
        return urllib.request.urlopen(req).read()
    except urllib.error.HTTPError as e:
        print(f"HTTP {e.code} {e.headers.get('x-ms-error-code')}")
        sys.exit(0)
import urllib.parse
if len(sys.argv) > 5:
    # the committed blocks of one blob (Get Block List)
    bl = ET.fromstring(call(f"/{container}/" + urllib.parse.quote(sys.argv[5], safe="/:"), {"blocklisttype": "committed", "comp": "blocklist"}))
    print(len(list(bl.iter("Block"))))
    sys.exit(0)
xml = ET.fromstring(call(f"/{container}", {"comp": "list", "restype": "container"}))
for b in xml.iter("Blob"):
    name = b.find("Name").text
    data = call(f"/{container}/" + urllib.parse.quote(name, safe="/:"), {})
    print(json.dumps({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "data": data.decode("latin-1")}))
"#;

impl Azurite {
    /// Starts azurite-blob (strict: no `--loose`; no telemetry), waits until it answers HTTP.
    pub fn start() -> Azurite {
        Azurite::start_with(None)
    }

    /// Starts azurite-blob over https with the server certificate of `tls` and `--oauth basic`
    /// (bearer tokens are taken over https only); waits until it takes a connection.
    pub fn start_oauth(tls: &Tls) -> Azurite {
        Azurite::start_with(Some(tls))
    }

    fn start_with(tls: Option<&Tls>) -> Azurite {
        let dir = tempfile::Builder::new().prefix("azurite-").tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let log = std::fs::File::create(dir.path().join("azurite.log")).expect("azurite log");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        let mut cmd = Command::new(bin());
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--location"])
            .arg(dir.path().join("data"))
            .args(["--disableTelemetry", "--silent"]);
        if let Some(t) = tls {
            cmd.arg("--cert").arg(t.dir.path().join("server.crt")).arg("--key").arg(t.dir.path().join("server.key"));
            cmd.args(["--oauth", "basic"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start azurite-blob");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut a = Azurite {
            child,
            dir,
            port,
            account_url: format!("{scheme}://127.0.0.1:{port}/{ACCOUNT}"),
            ca: tls.map(|t| t.ca()),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let ready = |p| if tls.is_some() { TcpStream::connect(("127.0.0.1", p)).is_ok() } else { answers(p) };
        while !ready(port) {
            if let Ok(Some(st)) = a.child.try_wait() {
                panic!("azurite-blob exited ({st}): {}", a.log());
            }
            assert!(Instant::now() < deadline, "azurite-blob did not answer: {}", a.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        a
    }

    /// An SAS token (the query, without `?`) for the dev account, signed here with python3's hmac
    /// as Microsoft's "Create an account SAS" / "Create a service SAS" pages say (version
    /// 2021-12-02): `container` None = an account SAS for the blob service (all resource types),
    /// Some = a service SAS for that container; `perms` as `racwl`; valid from an hour ago for
    /// `hours` (negative: already expired).
    pub fn sas(&self, container: Option<&str>, perms: &str, hours: i64) -> String {
        let o = Command::new("python3")
            .arg("-c")
            .arg(SAS_PY)
            .args([ACCOUNT, KEY, container.unwrap_or(""), perms, &hours.to_string()])
            .output()
            .expect("run python3");
        assert!(o.status.success(), "python3: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("azurite.log")).unwrap_or_default()
    }

    /// Every blob of `container`: (name, SHA-256 of its content, content); Err with Azure's
    /// status and code (`HTTP 404 ContainerNotFound`) when the listing fails.
    pub fn blobs(&self, container: &str) -> Result<Vec<(String, String, Vec<u8>)>, String> {
        let o = Command::new("python3")
            .arg("-c")
            .arg(PY)
            .args([self.account_url.as_str(), ACCOUNT, KEY, container])
            .envs(self.ca.iter().map(|c| ("SSL_CERT_FILE", c)))
            .output()
            .expect("run python3");
        assert!(o.status.success(), "python3: {}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if out.starts_with("HTTP ") {
            return Err(out.trim().to_string());
        }
        Ok(out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("listing line");
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                (s("name"), s("sha256"), s("data").chars().map(|c| c as u8).collect())
            })
            .collect())
    }
}

impl Azurite {
    /// How many committed blocks the block blob `blob` has (0 for one put whole).
    pub fn blocks(&self, container: &str, blob: &str) -> usize {
        let o = Command::new("python3")
            .arg("-c")
            .arg(PY)
            .args([self.account_url.as_str(), ACCOUNT, KEY, container, blob])
            .envs(self.ca.iter().map(|c| ("SSL_CERT_FILE", c)))
            .output()
            .expect("run python3");
        assert!(o.status.success(), "python3: {}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout);
        out.trim().parse().unwrap_or_else(|_| panic!("Get Block List: {out}"))
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
