//! An S3 server for the tests: moto's `moto_server` (from the venv `make deps` installs, Debian
//! has no S3 server) on a free loopback port, stopped by pid on drop. Its IAM has a user with an
//! access key allowed `s3:*`, and SigV4 checking is turned on (moto checks no signature until
//! told: `/moto-api/reset-auth`), so a wrongly signed request fails as on AWS. boto3 from the same
//! venv is the independent client that makes buckets and lists what slipway wrote.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `make deps` puts moto (outside the repository: it is a test tool, not a build input).
pub const VENV: &str = "/var/cache/slipway-test/moto-venv";

/// The role moto's IAM has for the credential tests (allowed `s3:*`; anyone may assume it).
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/slipway-role";

/// The region the tests sign for.
pub const REGION: &str = "us-east-1";

/// Whether the venv is complete (`make deps` writes `.moto-VERSION` once pip succeeded); skips
/// with the reason when not.
pub fn available() -> bool {
    let stamped = std::fs::read_dir(VENV)
        .map(|rd| rd.flatten().any(|e| e.file_name().to_string_lossy().starts_with(".moto-")))
        .unwrap_or(false);
    if !stamped || !Path::new(VENV).join("bin/moto_server").is_file() {
        crate::skip(format!("no moto S3 server in {VENV} (make deps installs moto[server] there from PyPI)"));
        return false;
    }
    true
}

pub struct Moto {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

/// One HTTP/1.0 request on loopback; the status code, None if nothing answered.
fn http_status(port: u16, method: &str, path: &str, body: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req =
        format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

impl Moto {
    /// Starts moto, waits until it answers, makes the user and its key, then turns SigV4
    /// checking on.
    pub fn start() -> Moto {
        let dir = tempfile::Builder::new().prefix("moto-").tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log");
        let child = Command::new(Path::new(VENV).join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start moto_server");
        let mut m = Moto {
            child,
            dir,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: String::new(),
            secret_key: String::new(),
        };
        // ready when an HTTP request gets an answer (python takes seconds to import moto)
        let deadline = Instant::now() + Duration::from_secs(120);
        while http_status(port, "GET", "/moto-api/data.json", "") != Some(200) {
            if let Ok(Some(st)) = m.child.try_wait() {
                panic!("moto_server exited ({st}): {}", m.log());
            }
            assert!(Instant::now() < deadline, "moto_server did not answer: {}", m.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = m.py(
            r#"
import boto3, json, sys
ep = sys.argv[1]
anon = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="slipway")
allow = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"], "Resource": "*"}]})
iam.put_user_policy(UserName="slipway", PolicyName="s3", PolicyDocument=allow)
# the role the credential tests assume (STS AssumeRole, AssumeRoleWithWebIdentity)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
    "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}]})
iam.create_role(RoleName="slipway-role", AssumeRolePolicyDocument=trust)
iam.put_role_policy(RoleName="slipway-role", PolicyName="s3", PolicyDocument=allow)
k = iam.create_access_key(UserName="slipway")["AccessKey"]
print(k["AccessKeyId"], k["SecretAccessKey"])
"#,
            &[],
        );
        let mut it = out.split_whitespace();
        m.access_key = it.next().expect("access key").to_string();
        m.secret_key = it.next().expect("secret key").to_string();
        // from here on every request must be signed with that key
        assert_eq!(http_status(port, "POST", "/moto-api/reset-auth", "0"), Some(200), "reset-auth: {}", m.log());
        m
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// Runs a python script with the venv's python (boto3): argv[1] is the endpoint, argv[2]
    /// and argv[3] the key, then `args`; its stdout.
    pub fn py(&self, script: &str, args: &[&str]) -> String {
        let o = Command::new(Path::new(VENV).join("bin/python"))
            .arg("-c")
            .arg(script)
            .arg(&self.endpoint)
            .arg(&self.access_key)
            .arg(&self.secret_key)
            .args(args)
            .output()
            .expect("run python");
        assert!(o.status.success(), "python: {}\n{}", String::from_utf8_lossy(&o.stderr), self.log());
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// boto3's client with the user's key, as python source (for scripts).
    pub const CLIENT: &'static str = r#"
import boto3, sys, hashlib, json
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
"#;

    pub fn create_bucket(&self, name: &str) {
        self.py(&format!("{}s3.create_bucket(Bucket=sys.argv[4])\n", Self::CLIENT), &[name]);
    }

    /// Every key of `bucket` with the SHA-256 of its content and its user metadata, as
    /// `KEY SHA256 METADATA-JSON` lines.
    pub fn objects(&self, bucket: &str) -> Vec<(String, String, serde_json::Value)> {
        let out = self.py(
            &format!(
                "{}{}",
                Self::CLIENT,
                r#"
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[4]):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=sys.argv[4], Key=o["Key"])
        data = body["Body"].read()
        print(o["Key"], hashlib.sha256(data).hexdigest(), json.dumps(body.get("Metadata", {})))
"#
            ),
            &[bucket],
        );
        out.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ' ');
                Some((it.next()?.to_string(), it.next()?.to_string(), serde_json::from_str(it.next()?).ok()?))
            })
            .collect()
    }

    /// The content of one object.
    pub fn get(&self, bucket: &str, key: &str) -> String {
        self.py(
            &format!(
                "{}sys.stdout.write(s3.get_object(Bucket=sys.argv[4], Key=sys.argv[5])['Body'].read().decode())\n",
                Self::CLIENT
            ),
            &[bucket, key],
        )
    }

    /// Size and ETag of every object of `bucket` (a multipart upload's ETag ends in `-PARTS`).
    pub fn sizes(&self, bucket: &str) -> Vec<(String, u64, String)> {
        let out = self.py(
            &format!(
                "{}{}",
                Self::CLIENT,
                r#"
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[4]):
    for o in page.get("Contents", []):
        print(o["Key"], o["Size"], o["ETag"].strip('"'))
"#
            ),
            &[bucket],
        );
        out.lines()
            .filter_map(|l| {
                let mut it = l.split(' ');
                Some((it.next()?.to_string(), it.next()?.parse().ok()?, it.next()?.to_string()))
            })
            .collect()
    }

    /// The keys of the multipart uploads of `bucket` still open (neither completed nor aborted).
    pub fn open_uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.py(
            &format!(
                "{}{}",
                Self::CLIENT,
                r#"
for u in s3.list_multipart_uploads(Bucket=sys.argv[4]).get("Uploads", []):
    print(u["Key"])
"#
            ),
            &[bucket],
        );
        out.lines().map(str::to_string).collect()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small HTTP server written in python for one test (a fault-injecting proxy in front of
/// moto, an ECS or EC2 credential endpoint) on a free loopback port, stopped by pid on drop.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    /// Runs `script` (it binds 127.0.0.1:0, prints its port on a line, then serves) with `args`;
    /// ready once that port takes a connection.
    pub fn start(script: &str, args: &[&str]) -> PyServer {
        let mut child = Command::new(Path::new(VENV).join("bin/python"))
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python server");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).expect("server port");
        let port: u16 = match line.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("python server printed {line:?}, not its port");
            }
        };
        let s = PyServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "python server on port {port} takes no connection");
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A proxy in front of moto (argv[1]: its port) that answers 403 AccessDenied to every request
/// whose path and query contain argv[2] (e.g. `partNumber=2&`), and forwards the rest as they
/// are (the Host header too, so signatures still match).
pub const FAULT_PROXY: &str = r#"
import http.client, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
up, needle = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if needle in self.path + "&":
            err = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>injected by the test</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(err)))
            self.end_headers()
            self.wfile.write(err)
            return
        c = http.client.HTTPConnection("127.0.0.1", up, timeout=120)
        c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            c.putheader(k, v)
        c.endheaders(body if n else None)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", (r.getheader("Content-Length") or "0") if self.command == "HEAD" else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        c.close()
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// An ECS-style container credential endpoint: GET /creds with `Authorization: argv[1]` answers
/// argv[2] and argv[3] as JSON; another token gets 401 with an error code.
pub const ECS_SERVER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
token, key, secret = sys.argv[1:4]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path != "/creds" or self.headers.get("Authorization") != token:
            status, body = 401, {"code": "InvalidToken", "message": "no"}
        else:
            status, body = 200, {"AccessKeyId": key, "SecretAccessKey": secret, "Expiration": "2099-01-01T00:00:00Z"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// An EC2 instance metadata service that only speaks IMDSv2: a GET without the session token
/// from PUT /latest/api/token gets 401; the role `slipway-role` has argv[1] and argv[2].
pub const IMDS_SERVER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
key, secret = sys.argv[1:3]
TOKEN = "imds-session-token"
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, data):
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, TOKEN.encode())
        self.reply(400, b"")
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, b"")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.reply(200, b"slipway-role")
        if self.path == base + "slipway-role":
            return self.reply(200, json.dumps({"Code": "Success", "AccessKeyId": key, "SecretAccessKey": secret,
                "Token": "", "Expiration": "2099-01-01T00:00:00Z"}).encode())
        self.reply(404, b"")
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// STS for web identity in front of moto: moto, checking signatures, cannot take the unsigned
/// AssumeRoleWithWebIdentity (it fails on the missing Authorization), so this server plays the
/// identity provider's part: it checks the call's WebIdentityToken against argv[2] (else
/// InvalidIdentityToken, as STS), then forwards the same body to moto (argv[1]: its port)
/// signed with the user's key (argv[3], argv[4]) and answers moto's answer: real temporary
/// credentials of the role.
pub const WEB_IDENTITY_STS: &str = r#"
import http.client, sys
from urllib.parse import parse_qs
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
up, token, key, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = parse_qs(body.decode())
        if form.get("Action") != ["AssumeRoleWithWebIdentity"] or "Authorization" in self.headers:
            return self.reply(400, b"<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>")
        if form.get("WebIdentityToken") != [token]:
            return self.reply(400, b"<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error></ErrorResponse>")
        req = AWSRequest(method="POST", url="http://127.0.0.1:%d/" % up, data=body,
                         headers={"Content-Type": self.headers.get("Content-Type")})
        SigV4Auth(Credentials(key, secret), "sts", "us-east-1").add_auth(req)
        c = http.client.HTTPConnection("127.0.0.1", up, timeout=60)
        c.request("POST", "/", body=body, headers=dict(req.headers.items()))
        r = c.getresponse()
        self.reply(r.status, r.read())
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
