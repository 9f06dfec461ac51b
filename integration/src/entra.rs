//! A fake Microsoft Entra ID token service and managed identity endpoint for the azblob OAuth
//! tests: a short python3 script (standard library only) over https on a free loopback port,
//! stopped by pid on drop. It answers what azidentity asks:
//! - `POST /TENANT/oauth2/v2.0/token` (client credentials): the client ID, then the client
//!   secret, the client assertion (workload identity) or MSAL's certificate assertion (PS256,
//!   `x5t#S256`, `aud` the endpoint; the signature checked with openssl against the test's client
//!   certificate) and the storage scope are checked;
//!   a wrong one gets Entra's `invalid_client` with its AADSTS code;
//!   the password grant takes `builder@example.com` with the secret as the password;
//! - `GET /msi/token` (App Service's IDENTITY_ENDPOINT): the `X-IDENTITY-HEADER`, api-version
//!   2019-08-01 and the storage resource are checked.
//!
//! A token is the JWT Azurite's `--oauth basic` takes (it checks the issuer, the audience and
//! the lifetime, not the signature): `iss` https://sts.windows.net/TENANT/, `aud`
//! https://storage.azure.com. The client ID `wrong-audience` gets a token for another audience
//! (so Azurite refuses it). Every request is logged with the token it issued, so that a test can
//! check no token, secret or assertion reached slipway's output.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "0fe6a0c5-8a3f-4c3b-9d0e-5a8c7f3b2a10";
pub const SECRET: &str = "s3cret~Entra.Client_Secret-123";
pub const ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIn0.c2lnbmF0dXJl";
pub const IDENTITY_HEADER: &str = "identity-header-7f3c";

const PY: &str = r#"
import base64, http.server, json, ssl, sys, time, urllib.parse
import hashlib, os, subprocess, tempfile
port, cert, key, logf, tenant, client_id, secret, assertion, ident, client_cert = sys.argv[1:11]
client_der = ssl.PEM_cert_to_DER_cert(open(client_cert).read())
client_pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", client_cert], capture_output=True, check=True).stdout
def unb64(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def cert_assertion_ok(a, endpoint, cid):
    # MSAL's certificate assertion: PS256, x5t#S256 of the certificate, aud = the token endpoint
    h, c, sig = a.split(".")
    hdr, claims = json.loads(unb64(h)), json.loads(unb64(c))
    if hdr.get("alg") != "PS256" or hdr.get("x5t#S256") != base64.b64encode(hashlib.sha256(client_der).digest()).decode():
        return "header " + json.dumps(hdr)
    if claims.get("aud") != endpoint or claims.get("iss") != cid or claims.get("sub") != cid or claims.get("exp", 0) < time.time() or not claims.get("jti"):
        return "claims " + json.dumps(claims)
    with tempfile.TemporaryDirectory() as d:
        open(f"{d}/pub", "wb").write(client_pub); open(f"{d}/data", "w").write(h + "." + c); open(f"{d}/sig", "wb").write(unb64(sig))
        r = subprocess.run(["openssl", "dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-2",
                            "-verify", f"{d}/pub", "-signature", f"{d}/sig", f"{d}/data"], capture_output=True)
        return None if r.returncode == 0 else "signature " + r.stdout.decode() + r.stderr.decode()
scope = "https://storage.azure.com/.default"
def b64(d): return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
def jwt(aud):
    now = int(time.time())
    claims = {"aud": aud, "iss": f"https://sts.windows.net/{tenant}/", "iat": now - 60, "nbf": now - 60,
              "exp": now + 3600, "appid": client_id, "tid": tenant, "oid": "test", "ver": "1.0"}
    return b64({"typ": "JWT", "alg": "RS256"}) + "." + b64(claims) + "." + base64.urlsafe_b64encode(b"fake").rstrip(b"=").decode()
def log(line):
    with open(logf, "a") as f: f.write(line + "\n")
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
        if self.path != f"/{tenant}/oauth2/v2.0/token":
            log(f"POST {self.path} 404"); return self.reply(404, {"error": "not_found"})
        cid = form.get("client_id")
        bad = lambda code, d: (log(f"POST token {code}"), self.reply(400 if code == "invalid_request" else 401,
            {"error": code, "error_description": d + "\r\nTrace ID: 0\r\nTimestamp: now", "error_codes": [0]}))
        if cid not in (client_id, "wrong-audience"):
            return bad("unauthorized_client", f"AADSTS700016: Application with identifier '{cid}' was not found in the directory.")
        if form.get("grant_type") == "password" and scope in form.get("scope", "").split(" "):
            if form.get("username") != "builder@example.com" or form.get("password") != secret:
                return bad("invalid_grant", "AADSTS50126: Error validating credentials due to invalid username or password.")
            t = jwt("https://storage.azure.com")
            log(f"POST token 200 password {t}")
            return self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": t})
        if form.get("grant_type") != "client_credentials" or form.get("scope") != scope:
            return bad("invalid_request", f"AADSTS90014: grant_type/scope: {form.get('grant_type')} {form.get('scope')}")
        if "client_assertion" in form and json.loads(unb64(form["client_assertion"].split(".")[0])).get("alg") == "PS256":
            why = cert_assertion_ok(form["client_assertion"], f"https://127.0.0.1:{port}/{tenant}/oauth2/v2.0/token", cid)
            if why:
                log(f"POST token cert refused: {why}")
                return bad("invalid_client", "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.")
            how = "certificate"
        elif "client_assertion" in form:
            if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" or form["client_assertion"] != assertion:
                return bad("invalid_client", "AADSTS700213: No matching federated identity record found for presented assertion subject.")
            how = "assertion"
        elif form.get("client_secret") != secret:
            return bad("invalid_client", f"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{cid}'.")
        else:
            how = "secret"
        t = jwt("https://storage.azure.com" if cid == client_id else "https://vault.azure.net")
        log(f"POST token 200 {how} {t}")
        self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": t})
    def do_GET(self):
        u = urllib.parse.urlsplit(self.path); q = dict(urllib.parse.parse_qsl(u.query))
        if u.path != "/msi/token":
            log(f"GET {u.path} 404"); return self.reply(404, {"error": "not_found"})
        if self.headers.get("X-IDENTITY-HEADER") != ident:
            log("GET msi 401"); return self.reply(401, {"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER"})
        if q.get("api-version") != "2019-08-01" or q.get("resource") != "https://storage.azure.com":
            log("GET msi 400"); return self.reply(400, {"statusCode": 400, "message": f"bad request {q}"})
        t = jwt("https://storage.azure.com")
        log(f"GET msi 200 {q.get('client_id', 'system')} {t}")
        self.reply(200, {"access_token": t, "expires_on": str(int(time.time()) + 3600), "resource": q["resource"], "token_type": "Bearer", "client_id": q.get("client_id", "system")})
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), H)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;

pub struct Entra {
    child: Child,
    log: tempfile::NamedTempFile,
    /// `https://127.0.0.1:PORT/` (AZURE_AUTHORITY_HOST)
    pub authority: String,
    /// `https://127.0.0.1:PORT/msi/token` (App Service's IDENTITY_ENDPOINT)
    pub msi_endpoint: String,
}

impl Entra {
    /// Starts the fake over https with the server certificate of `tls`; waits until it takes a
    /// connection.
    pub fn start(tls: &crate::azurite::Tls) -> Entra {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let log = tempfile::NamedTempFile::new().expect("log");
        let child = Command::new("python3")
            .arg("-c")
            .arg(PY)
            .arg(port.to_string())
            .arg(tls.dir.path().join("server.crt"))
            .arg(tls.dir.path().join("server.key"))
            .arg(log.path())
            .args([TENANT, CLIENT_ID, SECRET, ASSERTION, IDENTITY_HEADER])
            .arg(tls.dir.path().join("client.crt"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start python3");
        let mut e = Entra {
            child,
            log,
            authority: format!("https://127.0.0.1:{port}/"),
            msi_endpoint: format!("https://127.0.0.1:{port}/msi/token"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = e.child.try_wait() {
                panic!("fake Entra exited ({st})");
            }
            assert!(Instant::now() < deadline, "fake Entra did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        e
    }

    /// The requests it answered, one a line (`POST token 200 secret TOKEN`, `GET msi 401`...).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.log.path()).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// The tokens it issued.
    pub fn tokens(&self) -> Vec<String> {
        self.requests().iter().filter_map(|l| l.split(' ').nth(4).map(str::to_string)).collect()
    }
}

impl Drop for Entra {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
