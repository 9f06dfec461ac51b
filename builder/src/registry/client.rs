//! One registry's HTTP client: picks https or (when allowed) http by pinging `/v2/`, learns
//! the auth scheme from its challenge, adds `Authorization` (basic, or a bearer token per
//! scope set, fetched from the realm and reused), and retries once on a 401 with a fresh
//! token. Synchronous (ureq + rustls): slipway has no async runtime, and a blob transfer is
//! one streaming request per thread.

use super::auth::{self, Challenge, Credential};
use super::error::{parse_error_body, RegistryError};
use super::reference::{api_host, is_loopback};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{self, Response};

pub type Resp = Response<ureq::Body>;

/// How to reach registries (shared by every command).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--tls-verify=false`: accept any certificate and allow plain HTTP.
    pub tls_verify: bool,
    /// `--cert-dir`: the directory with `ca.crt` / `client.cert` / `client.key`.
    pub cert_dir: Option<PathBuf>,
    /// docker's config.json (credentials).
    pub auth_file: PathBuf,
}

impl Default for Options {
    fn default() -> Options {
        Options { tls_verify: true, cert_dir: None, auth_file: auth::config_path() }
    }
}

/// A request body that can be sent again (after a 401 or a redirect).
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a file from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

pub struct Client {
    /// The registry as references name it (`docker.io`, `localhost:5000`).
    pub registry: String,
    /// `https://host` or `http://host`.
    pub base: String,
    agent: ureq::Agent,
    cred: Option<Credential>,
    challenge: Option<Challenge>,
    /// Bearer tokens by scope set.
    tokens: Mutex<HashMap<String, String>>,
}

/// The HTTP agent of every request slipway makes (registries and ADD's URLs): one TLS set-up,
/// redirects, timeouts and user agent.
pub(crate) fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(10)
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(300)))
        .max_idle_connections_per_host(8)
        .build()
        .new_agent()
}

/// Why [`run`] did not send a request.
pub(crate) enum SendError {
    /// The body's file could not be read.
    Io { path: PathBuf, err: std::io::Error },
    /// The request could not be built.
    Request(String),
}

/// Sends one request with `body` (a file's range streamed from disk, with its length): the
/// answer, or ureq's transport error.
pub(crate) fn run(
    agent: &ureq::Agent,
    b: http::request::Builder,
    body: &Body,
) -> Result<Result<Resp, ureq::Error>, SendError> {
    let bad = |e: http::Error| SendError::Request(e.to_string());
    Ok(match body {
        Body::Empty => agent.run(b.body(()).map_err(bad)?),
        Body::Bytes(d) => agent.run(b.header("Content-Length", d.len().to_string()).body(*d).map_err(bad)?),
        Body::File { path, offset, len } => {
            let io = |err| SendError::Io { path: path.to_path_buf(), err };
            let mut f = std::fs::File::open(path).map_err(io)?;
            f.seek(SeekFrom::Start(*offset)).map_err(io)?;
            let mut r = std::io::BufReader::with_capacity(1 << 20, f).take(*len);
            agent.run(
                b.header("Content-Length", len.to_string()).body(ureq::SendBody::from_reader(&mut r)).map_err(bad)?,
            )
        }
    })
}

/// The rustls error inside a transport error (ureq passes handshake failures up as I/O
/// errors wrapping it).
fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// Whether a transport error is the server's certificate being refused (no downgrade then).
fn is_cert_error(e: &ureq::Error) -> bool {
    matches!(
        rustls_error(e),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::InvalidCertRevocationList(_)
        )
    )
}

pub(crate) fn describe(e: &ureq::Error) -> String {
    if let Some(r) = rustls_error(e) {
        return format!("TLS: {r}");
    }
    match e {
        ureq::Error::Io(io) => io.to_string(),
        e => e.to_string(),
    }
}

impl Client {
    /// Connects to `registry` (the `/v2/` ping), with the credentials of config.json (or
    /// `cred` when given, as `login` does before it stores them).
    pub fn connect(registry: &str, opts: &Options, cred: Option<Credential>) -> Result<Client, RegistryError> {
        let cred = match cred {
            Some(c) => Some(c),
            None => auth::lookup_in(&opts.auth_file, registry)?,
        };
        let host = api_host(registry).to_string();
        let (tls, trust) = super::tls::config(registry, opts.cert_dir.as_deref(), opts.tls_verify)?;
        let agent = agent(tls);
        // https first; plain http only for loopback or --tls-verify=false, as docker does for
        // its insecure registries, and never after a certificate was refused
        let schemes: &[&str] = if !opts.tls_verify || is_loopback(registry) { &["https", "http"] } else { &["https"] };
        let mut last = None;
        for scheme in schemes {
            let base = format!("{scheme}://{host}");
            let url = format!("{base}/v2/");
            match agent.get(&url).call() {
                Ok(mut r) => {
                    let status = r.status().as_u16();
                    let challenge = r
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(auth::parse_challenges)
                        .find(|c| c.scheme == "bearer" || c.scheme == "basic");
                    let _ = r.body_mut().read_to_vec();
                    if status != 200 && status != 401 {
                        return Err(RegistryError::Status {
                            registry: registry.into(),
                            op: format!("GET {url} (is this a registry?)"),
                            status,
                            codes: Vec::new(),
                        });
                    }
                    return Ok(Client {
                        registry: registry.into(),
                        base,
                        agent,
                        cred,
                        challenge: if status == 401 { challenge } else { None },
                        tokens: Mutex::new(HashMap::new()),
                    });
                }
                Err(e) if *scheme == "https" && opts.tls_verify && is_cert_error(&e) => {
                    return Err(RegistryError::Tls {
                        registry: registry.into(),
                        why: format!(
                            "the certificate of {host} is not trusted ({}); trusted: {}; cert dirs tried: {} \
                             (put its CA in ca.crt there, or pass --cert-dir DIR or --tls-verify=false)",
                            describe(&e),
                            if trust.sources.is_empty() { "built-in roots".into() } else { trust.sources.join(", ") },
                            super::tls::cert_dirs(registry, opts.cert_dir.as_deref())
                                .iter()
                                .map(|d| d.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
                Err(e) => last = Some(format!("GET {url}: {}", describe(&e))),
            }
        }
        Err(RegistryError::Transport {
            registry: registry.into(),
            op: "connect".into(),
            why: last.unwrap_or_else(|| "no scheme to try".into()),
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.cred.is_some()
    }

    /// The scheme the registry asked for (`basic`, `bearer`), None when it needs no auth.
    pub fn auth_scheme(&self) -> Option<&str> {
        self.challenge.as_ref().map(|c| c.scheme.as_str())
    }

    /// `https://host/v2/<path>`, or `location` made absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/v2/{path}", self.base)
        }
    }

    fn authorization(
        &self,
        scopes: &[String],
        op: &str,
        fresh: Option<&Challenge>,
    ) -> Result<Option<String>, RegistryError> {
        let Some(ch) = fresh.or(self.challenge.as_ref()) else {
            return Ok(None);
        };
        match ch.scheme.as_str() {
            "basic" => Ok(self.cred.as_ref().map(Credential::basic_header)),
            "bearer" => {
                let mut scopes: Vec<String> = scopes.to_vec();
                if let Some(s) = fresh.and_then(|c| c.param("scope")) {
                    scopes.extend(s.split(' ').map(str::to_string));
                }
                scopes.sort();
                scopes.dedup();
                let key = scopes.join(" ");
                if fresh.is_none() {
                    if let Some(t) = self.tokens.lock().ok().and_then(|m| m.get(&key).cloned()) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let t = self.fetch_token(ch, &scopes, op)?;
                if let Ok(mut m) = self.tokens.lock() {
                    m.insert(key, t.clone());
                }
                Ok(Some(format!("Bearer {t}")))
            }
            _ => Ok(None),
        }
    }

    /// The token flow: GET the realm with service and scopes (basic credentials if any), or
    /// POST an OAuth refresh-token grant for an identity token.
    fn fetch_token(&self, ch: &Challenge, scopes: &[String], op: &str) -> Result<String, RegistryError> {
        let realm = ch.param("realm").ok_or_else(|| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: "bearer challenge".into(),
            why: "no realm".into(),
        })?;
        let service = ch.param("service").unwrap_or("");
        let enc = |s: &str| form_encode(s);
        let mut q = Vec::new();
        if !service.is_empty() {
            q.push(format!("service={}", enc(service)));
        }
        for s in scopes {
            q.push(format!("scope={}", enc(s)));
        }
        let top = format!("{op}: token from {realm}");
        let res = match &self.cred {
            Some(c) if c.identity_token => {
                q.push("grant_type=refresh_token".into());
                q.push(format!("refresh_token={}", enc(&c.secret)));
                q.push("client_id=slipway".into());
                self.agent
                    .post(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .send(q.join("&").as_bytes())
            }
            cred => {
                let url = if realm.contains('?') {
                    format!("{realm}&{}", q.join("&"))
                } else {
                    format!("{realm}?{}", q.join("&"))
                };
                let mut r = self.agent.get(&url);
                if let Some(c) = cred {
                    r = r.header("Authorization", c.basic_header());
                }
                r.call()
            }
        };
        let mut res = res.map_err(|e| RegistryError::Transport {
            registry: self.registry.clone(),
            op: top.clone(),
            why: describe(&e),
        })?;
        let status = res.status().as_u16();
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        if status != 200 {
            let mut codes = parse_error_body(&body);
            if codes.is_empty() && (status == 401 || status == 403) {
                codes.push(("UNAUTHORIZED".into(), "the token server refused the credentials".into()));
            }
            return Err(RegistryError::Status { registry: self.registry.clone(), op: top, status, codes });
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| RegistryError::Invalid {
            registry: self.registry.clone(),
            what: format!("token from {realm}"),
            why: e.to_string(),
        })?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Invalid {
                registry: self.registry.clone(),
                what: format!("token from {realm}"),
                why: "no token in the answer".into(),
            })
    }

    /// Sends a request with the authorization `scopes` need; on a 401 fetches a fresh token
    /// for the challenge's scope and tries once more.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        body: &Body,
        op: &str,
    ) -> Result<Resp, RegistryError> {
        let url = self.url(path);
        let mut fresh: Option<Challenge> = None;
        for attempt in 0..2 {
            let auth = self.authorization(scopes, op, fresh.as_ref())?;
            let mut b = http::Request::builder().method(method).uri(&url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
            }
            let tr = |why: String| RegistryError::Transport { registry: self.registry.clone(), op: op.into(), why };
            let res = match run(&self.agent, b, body) {
                Err(SendError::Io { path, err }) => return Err(RegistryError::Io { path, err }),
                Err(SendError::Request(e)) => return Err(tr(e)),
                Ok(r) => r,
            };
            let mut res = res.map_err(|e| tr(describe(&e)))?;
            if res.status().as_u16() == 401 && attempt == 0 {
                let ch = res
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(auth::parse_challenges)
                    .find(|c| c.scheme == "bearer");
                if let Some(ch) = ch {
                    let _ = res.body_mut().read_to_vec();
                    fresh = Some(ch);
                    continue;
                }
            }
            return Ok(res);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The error for an unexpected answer, with the registry's error codes from its body.
    pub fn fail(&self, op: &str, mut res: Resp) -> RegistryError {
        let status = res.status().as_u16();
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        let mut codes = parse_error_body(&body);
        if codes.is_empty() && status == 401 {
            let why = if self.cred.is_some() {
                "the registry refused the credentials"
            } else {
                "authentication required (slipway login)"
            };
            codes.push(("UNAUTHORIZED".into(), why.into()));
        }
        RegistryError::Status { registry: self.registry.clone(), op: op.into(), status, codes }
    }
}

/// application/x-www-form-urlencoded / query escaping.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A header's value as text.
pub fn header<'a>(res: &'a Resp, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_escaping() {
        assert_eq!(form_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
        assert_eq!(form_encode("registry.docker.io"), "registry.docker.io");
    }
}
