//! One container's client: where it is (the account URL, virtual-hosted
//! `https://ACCOUNT.blob.core.windows.net` or path-style `http://HOST:PORT/ACCOUNT` as the
//! emulator serves it), and the container and blob calls the cache needs, each authorized with
//! Shared Key, by an SAS token (the account URL's query, or the query of a blob's full URL that a
//! service handed out: [`Container::at_url`], as GitHub's cache does), or with OAuth bearer
//! tokens (`entra.rs`), and retried on a transport error or a 5xx/429 (the SDK's default: 3
//! retries).

use super::sharedkey;
use super::AzError;
use crate::registry::client::Body;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use ureq::http;

type Resp = http::Response<ureq::Body>;

/// A blob's body as it arrives, and the status (200 whole, 206 from the offset asked).
pub type Download = (Box<dyn Read + Send>, u16);

/// The service version slipway speaks (Put Blob takes up to 5000 MiB from 2019-12-12 on).
const VERSION: &str = "2021-12-02";
/// A blob bigger than this goes up in blocks of this size (Put Block, then Put Block List), 4
/// at a time, as BuildKit's exporter has the SDK's UploadStream do (IOChunkSize 32 MiB,
/// IOConcurrency 4); a smaller one in one Put Blob.
pub const BLOCK_SIZE: u64 = 32 << 20;
const BLOCKS_AT_ONCE: usize = 4;
/// A block blob has at most 50,000 blocks.
const MAX_BLOCKS: u64 = 50_000;
const ATTEMPTS: u32 = 4;

/// Where an account is: `scheme://authority` and the path in front of containers (empty for
/// `https://ACCOUNT.blob.core.windows.net`, `/ACCOUNT` for a path-style emulator URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUrl {
    pub scheme: String,
    pub authority: String,
    pub path: String,
}

impl AccountUrl {
    /// `account_url`: `http(s)://HOST[:PORT][/PATH][?SAS]`: the account's place, and the SAS
    /// token its query carries (a query without `sig=` is refused). A message never shows the
    /// query: it is a secret.
    pub fn parse(url: &str) -> Result<(AccountUrl, Option<String>), String> {
        let bad = |why: &str| format!("account_url={}: {why}", redact(url));
        let (url, sas) = match url.split_once('?') {
            Some((u, q)) => (u, Some(q)),
            None => (url, None),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("expected http(s)://HOST[:PORT][/PATH]"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("expected http(s)://HOST[:PORT][/PATH]"));
        }
        if rest.contains('#') || sas.is_some_and(|q| q.contains('#')) {
            return Err(bad("a fragment (#) is not part of an account URL"));
        }
        let sas = match sas.map(|q| q.trim_matches('&')).filter(|q| !q.is_empty()) {
            None => None,
            Some(q) if q.split('&').any(|kv| kv.starts_with("sig=") && kv.len() > 4) => Some(q.to_string()),
            Some(_) => return Err(bad("a query that is not an SAS token (no sig=)")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("expected http(s)://HOST[:PORT][/PATH]"));
        }
        Ok((AccountUrl { scheme, authority: authority.to_string(), path: path.to_string() }, sas))
    }

    /// The host without the port (BuildKit takes the account name from its first label).
    pub fn host(&self) -> &str {
        if self.authority.starts_with('[') {
            return self.authority.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or("");
        }
        self.authority.split(':').next().unwrap_or("")
    }
}

/// A URL for a message: its query (an SAS token) left out.
pub fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((u, _)) => format!("{u}?<SAS token>"),
        None => url.to_string(),
    }
}

/// How a request is authorized: the account key, an SAS token, or OAuth tokens from Entra ID.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Shared Key (`secret_access_key`).
    SharedKey(String),
    /// The SAS token's query (`sv=...&sig=...`), added to every request's query.
    Sas(String),
    /// Bearer tokens from the chain (BuildKit's DefaultAzureCredential).
    Entra(super::entra::Chain),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::SharedKey(_) => write!(f, "SharedKey"),
            Credential::Sas(_) => write!(f, "SAS"),
            Credential::Entra(c) => write!(f, "{c:?}"),
        }
    }
}

/// A blob name percent-encoded for the path: all but unreserved characters, `/` and `:` (as the
/// Go SDK's url.PathEscape keeps `:`; `/` kept so the name reads as the folders it stands for).
fn encode_name(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Azure's `<Code>` and the first line of `<Message>` in an XML error body.
fn error_fields(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    let field = |name: &str| crate::s3::client::xml_field(&text, name);
    let message = field("Message").and_then(|m| m.lines().next().map(str::to_string)).unwrap_or_default();
    (field("Code"), message)
}

/// How a request is authorized.
#[derive(Clone)]
pub enum Auth {
    /// The account's key: each request signed (`sharedkey.rs`).
    SharedKey(String),
    /// An SAS token (`sv=...&sig=...`): added to each request's query, nothing signed. A secret
    /// too: never in a message.
    Sas(String),
    /// OAuth bearer tokens from Entra ID (`entra.rs`), asked for as requests need them.
    Bearer(std::sync::Arc<super::entra::Tokens>),
}

pub struct Container {
    pub account: String,
    pub container: String,
    url: AccountUrl,
    auth: Auth,
    agent: ureq::Agent,
}

impl Container {
    pub fn new(url: AccountUrl, account: &str, container: &str, key: &str) -> Result<Container, AzError> {
        Container::with_auth(url, account, container, Auth::SharedKey(key.into()))
    }

    /// The client for the cache's credential: the key, the account URL's SAS token, or bearer
    /// tokens from the credential chain (over https only, as azcore's bearer policy).
    pub fn with_credential(
        url: AccountUrl,
        account: &str,
        container: &str,
        cred: &Credential,
    ) -> Result<Container, AzError> {
        let auth = match cred {
            Credential::SharedKey(k) => Auth::SharedKey(k.clone()),
            Credential::Sas(q) => Auth::Sas(q.clone()),
            Credential::Entra(_) if url.scheme != "https" => {
                let u = format!("{}://{}{}", url.scheme, url.authority, url.path);
                return Err(AzError::Config(format!("account_url={u}: an OAuth token is sent over https only")));
            }
            Credential::Entra(chain) => {
                Auth::Bearer(std::sync::Arc::new(super::entra::Tokens::new(chain.clone()).map_err(AzError::Config)?))
            }
        };
        Container::with_auth(url, account, container, auth)
    }

    pub fn with_auth(url: AccountUrl, account: &str, container: &str, auth: Auth) -> Result<Container, AzError> {
        let (tls, _) = crate::registry::tls::config(&url.authority, None, true)
            .map_err(|e| AzError::Config(format!("TLS for {}: {e}", url.authority)))?;
        Ok(Container {
            account: account.into(),
            container: container.into(),
            url,
            auth,
            agent: crate::registry::client::agent(tls),
        })
    }

    /// The blob at a full URL whose query is an SAS token
    /// (`SCHEME://HOST[:PORT]/PATH/CONTAINER/BLOB?sv=...&sig=...`, as a service hands one out):
    /// its container's client authorized by that token, and the blob's name. The last path
    /// element is the blob, the one before it the container (the rest, a path-style account,
    /// stays in front); each percent-decoded, as they are encoded again when sent.
    pub fn at_url(url: &str) -> Result<(Container, String), AzError> {
        let bad = |why: &str| {
            // the query is the secret: only the part before it is named
            let shown = url.split('?').next().unwrap_or("");
            AzError::Config(format!("blob URL {shown}: {why}"))
        };
        let (base, sas) = url.split_once('?').ok_or_else(|| bad("no SAS token (query) in it"))?;
        if sas.is_empty() || base.contains('#') || sas.contains('#') {
            return Err(bad("expected http(s)://HOST[:PORT]/CONTAINER/BLOB?SAS"));
        }
        let (scheme, rest) =
            base.split_once("://").ok_or_else(|| bad("expected http(s)://HOST[:PORT]/CONTAINER/BLOB?SAS"))?;
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no container and blob in its path"))?;
        let (front, blob) = path.rsplit_once('/').ok_or_else(|| bad("no container and blob in its path"))?;
        let (front, container) = match front.rsplit_once('/') {
            Some((f, c)) => (format!("/{f}"), c),
            None => (String::new(), front),
        };
        let (container, blob) = (crate::fetch::unescape(container), crate::fetch::unescape(blob));
        if container.is_empty() || blob.is_empty() {
            return Err(bad("no container and blob in its path"));
        }
        // checks scheme and authority as an account URL's
        let (account, _) = AccountUrl::parse(&format!("{scheme}://{authority}{front}")).map_err(|e| bad(&e))?;
        let c = Container::with_auth(account, "", &container, Auth::Sas(sas.to_string()))?;
        Ok((c, blob))
    }

    /// Whether requests carry an SAS token (which may not allow container calls).
    pub fn is_sas(&self) -> bool {
        matches!(self.auth, Auth::Sas(_))
    }

    /// The request path of the container (`blob` None) or of one blob in it.
    fn path(&self, blob: Option<&str>) -> String {
        let c = format!("{}/{}", self.url.path, encode_name(&self.container));
        match blob {
            Some(b) => format!("{c}/{}", encode_name(b)),
            None => c,
        }
    }

    /// The blob's URL, for messages.
    pub fn url(&self, blob: &str) -> String {
        format!("{}://{}{}/{}/{blob}", self.url.scheme, self.url.authority, self.url.path, self.container)
    }

    fn send(
        &self,
        method: &str,
        blob: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &Body,
        op: &str,
    ) -> Result<Resp, AzError> {
        let path = self.path(blob);
        let mut q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", encode_name(v))).collect();
        if let Auth::Sas(sas) = &self.auth {
            q.push(sas.clone());
        }
        let url = if q.is_empty() {
            format!("{}://{}{path}", self.url.scheme, self.url.authority)
        } else {
            format!("{}://{}{path}?{}", self.url.scheme, self.url.authority, q.join("&"))
        };
        // a transport error may quote the URL: never with the SAS token in it
        let tr = |why: String| {
            let why = match &self.auth {
                Auth::Sas(sas) => why.replace(sas.as_str(), "<SAS token>"),
                _ => why,
            };
            AzError::Transport { container: self.container.clone(), op: op.into(), why }
        };
        let len = match body {
            Body::Empty if method == "PUT" => Some(0),
            Body::Empty => None,
            Body::Bytes(d) => Some(d.len() as u64),
            Body::File { len, .. } => Some(*len),
        };
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // exponential backoff with jitter, as azcore's retry policy (800 ms base, 60 s cap)
                let base = 800u64 << (attempt - 1).min(6);
                let jitter = u64::from(std::process::id() ^ attempt) % (base / 4 + 1);
                std::thread::sleep(Duration::from_millis((base + jitter).min(60_000)));
            }
            let date = httpdate::fmt_http_date(std::time::SystemTime::now());
            let len_s = len.map(|l| l.to_string());
            let mut all: Vec<(&str, &str)> = headers.to_vec();
            all.push(("x-ms-date", &date));
            all.push(("x-ms-version", VERSION));
            if let Some(l) = &len_s {
                all.push(("content-length", l));
            }
            let auth = match &self.auth {
                Auth::SharedKey(key) => Some(
                    sharedkey::authorization(
                        &self.account,
                        key,
                        &sharedkey::Request { method, path: &path, query, headers: &all },
                    )
                    .map_err(AzError::Config)?,
                ),
                Auth::Sas(_) => None,
                Auth::Bearer(t) => {
                    Some(format!("Bearer {}", t.token().map_err(|why| AzError::Credential { op: op.into(), why })?))
                }
            };
            let mut b = http::Request::builder().method(method).uri(&url);
            if let Some(a) = &auth {
                b = b.header("authorization", a);
            }
            for (k, v) in &all {
                b = b.header(*k, *v);
            }
            let res = match body {
                Body::Empty if method == "PUT" => {
                    b.body(&[][..]).map_err(|e| tr(e.to_string())).map(|r| self.agent.run(r))?
                }
                Body::Empty => b.body(()).map_err(|e| tr(e.to_string())).map(|r| self.agent.run(r))?,
                Body::Bytes(d) => b.body(*d).map_err(|e| tr(e.to_string())).map(|r| self.agent.run(r))?,
                Body::File { path, offset, len } => {
                    let io = |err| AzError::Io { op: op.into(), path: path.to_path_buf(), err };
                    let mut f = std::fs::File::open(path).map_err(io)?;
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(*offset)).map_err(io)?;
                    let mut r = std::io::BufReader::with_capacity(1 << 20, f).take(*len);
                    b.body(ureq::SendBody::from_reader(&mut r))
                        .map_err(|e| tr(e.to_string()))
                        .map(|r| self.agent.run(r))?
                }
            };
            match res {
                Ok(r) if r.status().as_u16() >= 500 || r.status().as_u16() == 429 => last = Some(self.fail(op, r)),
                Ok(r) => return Ok(r),
                Err(e) => last = Some(tr(e.to_string())),
            }
        }
        Err(last.unwrap_or_else(|| tr("no attempt".into())))
    }

    /// The error for an answer that is not a success: Azure's code from the `x-ms-error-code`
    /// header (a HEAD has no body) or the XML body, and the message's first line.
    fn fail(&self, op: &str, mut res: Resp) -> AzError {
        let status = res.status().as_u16();
        let header = res.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        let (code, message) = error_fields(&body);
        AzError::Status {
            container: self.container.clone(),
            op: op.into(),
            status,
            code: header.or(code).unwrap_or_else(|| format!("HTTP {status}")),
            message,
        }
    }

    /// Makes sure the container exists, as BuildKit's createContainerClient: Get Container
    /// Properties, and on `ContainerNotFound` Create Container. True when it was created.
    pub fn ensure(&self) -> Result<bool, AzError> {
        let url = format!("{}://{}{}", self.url.scheme, self.url.authority, self.path(None));
        let op = format!("HEAD {url} (container properties)");
        let q = [("restype", "container")];
        let res = self.send("HEAD", None, &q, &[], &Body::Empty, &op)?;
        if res.status().as_u16() == 200 {
            return Ok(false);
        }
        let e = self.fail(&op, res);
        // a container (service) SAS does not allow container calls (AuthorizationPermissionMismatch
        // and the like): the container is taken as there, and a missing one says
        // ContainerNotFound at the first blob call
        if self.is_sas()
            && matches!(e.code(), Some("AuthorizationPermissionMismatch" | "AuthorizationResourceTypeMismatch"))
        {
            return Ok(false);
        }
        if e.code() != Some("ContainerNotFound") {
            return Err(e);
        }
        let op = format!("PUT {url} (create container)");
        let res = self.send("PUT", None, &q, &[], &Body::Empty, &op)?;
        match res.status().as_u16() {
            201 => Ok(true),
            _ => match self.fail(&op, res) {
                // made by another build in between
                e if e.code() == Some("ContainerAlreadyExists") => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Get Blob Properties: the blob's size, None when there is no such blob (`BlobNotFound`).
    pub fn head(&self, blob: &str) -> Result<Option<u64>, AzError> {
        let op = format!("HEAD {}", self.url(blob));
        let res = self.send("HEAD", Some(blob), &[], &[], &Body::Empty, &op)?;
        if res.status().as_u16() == 200 {
            let size = res.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
            return Ok(Some(size));
        }
        match self.fail(&op, res) {
            e if e.code() == Some("BlobNotFound") => Ok(None),
            e => Err(e),
        }
    }

    /// Get Blob from `offset`: the body as a reader, None when there is no such blob.
    pub fn get(&self, blob: &str, offset: u64) -> Result<Option<Download>, AzError> {
        let op = format!("GET {}", self.url(blob));
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 { &[("x-ms-range", &range)] } else { &[] };
        let res = self.send("GET", Some(blob), &[], headers, &Body::Empty, &op)?;
        let status = res.status().as_u16();
        match status {
            200 | 206 => Ok(Some((Box::new(res.into_body().into_reader()), status))),
            _ => match self.fail(&op, res) {
                e if e.code() == Some("BlobNotFound") => Ok(None),
                e => Err(e),
            },
        }
    }

    /// Get Blob of a small blob (at most `limit` bytes), None when there is no such blob.
    pub fn get_small(&self, blob: &str, limit: u64) -> Result<Option<Vec<u8>>, AzError> {
        let Some((mut r, _)) = self.get(blob, 0)? else { return Ok(None) };
        let tr = |why: String| AzError::Transport {
            container: self.container.clone(),
            op: format!("GET {}", self.url(blob)),
            why,
        };
        let mut out = Vec::new();
        (&mut r).take(limit + 1).read_to_end(&mut out).map_err(|e| tr(e.to_string()))?;
        if out.len() as u64 > limit {
            return Err(tr(format!("more than {limit} bytes")));
        }
        Ok(Some(out))
    }

    /// Put Blob (a block blob). `only_new`: If-None-Match `*`, as BuildKit uploads blobs, so an
    /// existing one is not overwritten; false is returned when it was there (`BlobAlreadyExists`).
    fn put(&self, blob: &str, body: &Body, content_type: &str, only_new: bool) -> Result<bool, AzError> {
        let op = format!("PUT {}", self.url(blob));
        let mut headers = vec![("x-ms-blob-type", "BlockBlob"), ("content-type", content_type)];
        if only_new {
            headers.push(("if-none-match", "*"));
        }
        let res = self.send("PUT", Some(blob), &[], &headers, body, &op)?;
        match res.status().as_u16() {
            201 => Ok(true),
            _ => match self.fail(&op, res) {
                e if only_new && e.code() == Some("BlobAlreadyExists") => Ok(false),
                e => Err(e),
            },
        }
    }

    /// Put Blob of bytes, replacing what is there (BuildKit's manifests: last writer wins).
    pub fn put_bytes(&self, blob: &str, data: &[u8], content_type: &str) -> Result<(), AzError> {
        self.put(blob, &Body::Bytes(data), content_type, false).map(|_| ())
    }

    /// Uploads a file streamed from disk with its known length, unless the blob exists: one Put
    /// Blob up to [`BLOCK_SIZE`], else blocks. False when it was there (`BlobAlreadyExists`).
    pub fn put_file(&self, blob: &str, path: &Path, len: u64, content_type: &str) -> Result<bool, AzError> {
        if len <= BLOCK_SIZE {
            return self.put(blob, &Body::File { path, offset: 0, len }, content_type, true);
        }
        let n = len.div_ceil(BLOCK_SIZE);
        if n > MAX_BLOCKS {
            return Err(AzError::Config(format!(
                "PUT {}: {len} bytes is more than a block blob of {MAX_BLOCKS} blocks of {BLOCK_SIZE} bytes holds",
                self.url(blob)
            )));
        }
        let ids: Vec<String> = (0..n).map(block_id).collect();
        // Put Block, BLOCKS_AT_ONCE at a time; each block is a range of the file
        let next = std::sync::atomic::AtomicU64::new(0);
        let first_err = std::sync::Mutex::new(None);
        std::thread::scope(|sc| {
            for _ in 0..BLOCKS_AT_ONCE.min(n as usize) {
                sc.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n || first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    let offset = i * BLOCK_SIZE;
                    let body = Body::File { path, offset, len: BLOCK_SIZE.min(len - offset) };
                    let op = format!("PUT {} (block {} of {n})", self.url(blob), i + 1);
                    let q = [("comp", "block"), ("blockid", ids[i as usize].as_str())];
                    let r = self.send("PUT", Some(blob), &q, &[], &body, &op).and_then(|res| {
                        if res.status().as_u16() == 201 {
                            Ok(())
                        } else {
                            Err(self.fail(&op, res))
                        }
                    });
                    if let Err(e) = r {
                        if let Ok(mut f) = first_err.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().ok().flatten() {
            return Err(e);
        }
        // Put Block List commits them, under If-None-Match: * as a single Put Blob would
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in &ids {
            xml.push_str(&format!("<Latest>{id}</Latest>"));
        }
        xml.push_str("</BlockList>");
        let op = format!("PUT {} (block list of {n})", self.url(blob));
        let headers =
            [("content-type", "application/xml"), ("x-ms-blob-content-type", content_type), ("if-none-match", "*")];
        let res =
            self.send("PUT", Some(blob), &[("comp", "blocklist")], &headers, &Body::Bytes(xml.as_bytes()), &op)?;
        match res.status().as_u16() {
            201 => Ok(true),
            _ => match self.fail(&op, res) {
                e if e.code() == Some("BlobAlreadyExists") => Ok(false),
                e => Err(e),
            },
        }
    }
}

/// Block `i`'s ID: base64 of a fixed-length text (a blob's IDs must all be as long).
fn block_id(i: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("slipway-block-{i:06}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_urls() {
        let (u, sas) = AccountUrl::parse("https://myaccount.blob.core.windows.net/").unwrap();
        assert_eq!(sas, None);
        assert_eq!(
            (u.scheme.as_str(), u.authority.as_str(), u.path.as_str()),
            ("https", "myaccount.blob.core.windows.net", "")
        );
        assert_eq!(u.host(), "myaccount.blob.core.windows.net");
        let (u, _) = AccountUrl::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str(), u.host()),
            ("127.0.0.1:10000", "/devstoreaccount1", "127.0.0.1")
        );
        // an SAS token (account or container SAS) in the query, kept apart and never shown
        let (u, sas) = AccountUrl::parse("https://a.blob.core.windows.net/?sv=2022-11-02&ss=b&sig=S1G%3D").unwrap();
        assert_eq!((u.path.as_str(), sas.as_deref()), ("", Some("sv=2022-11-02&ss=b&sig=S1G%3D")));
        for bad in
            ["myaccount.blob.core.windows.net", "ftp://h", "https://h/?sv=2020&x=1", "https://h/?sig=", "http://"]
        {
            assert!(AccountUrl::parse(bad).is_err(), "{bad}");
        }
        let e = AccountUrl::parse("ftp://h/?sv=1&sig=S1G").unwrap_err();
        assert!(!e.contains("S1G"), "{e}");
    }

    #[test]
    fn blob_urls_with_an_sas_token() {
        let at = |u: &str| Container::at_url(u).map(|(c, b)| (c.url.path.clone(), c.container.clone(), b));
        // GitHub's cache hands out virtual-hosted URLs; Azurite's are path-style
        assert_eq!(
            at("https://acct.blob.core.windows.net/actions-cache/a%20b?sv=2021&sig=x").unwrap(),
            (String::new(), "actions-cache".into(), "a b".into())
        );
        assert_eq!(
            at("http://127.0.0.1:10000/devstoreaccount1/gha/buildkit-blob-1-sha256:ab?sv=2021&sig=x").unwrap(),
            ("/devstoreaccount1".into(), "gha".into(), "buildkit-blob-1-sha256:ab".into())
        );
        for bad in [
            "https://a.b/c/d",
            "https://a.b/c?sig=x",
            "ftp://a.b/c/d?sig=x",
            "https://a.b//d?sig=x",
            "https://a.b/c/d?",
        ] {
            let e = at(bad).unwrap_err().to_string();
            assert!(!e.contains("sig=x"), "the SAS token in {e}");
        }
    }

    #[test]
    fn block_ids_are_one_length() {
        assert_eq!(block_id(0), "c2xpcHdheS1ibG9jay0wMDAwMDA=");
        assert!((0..MAX_BLOCKS).step_by(997).all(|i| block_id(i).len() == block_id(0).len()));
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(encode_name("p/blobs/sha256:ab"), "p/blobs/sha256:ab");
        assert_eq!(encode_name("a b%"), "a%20b%25");
        let b = b"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.\nRequestId:1\nTime:2</Message></Error>";
        assert_eq!(
            error_fields(b),
            (Some("AuthenticationFailed".into()), "Server failed to authenticate the request.".into())
        );
    }
}
