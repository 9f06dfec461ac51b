//! The cache service's calls, as go-actions-cache makes them. Every entry is a key and a version
//! (one constant for every key: the SHA-256 of `|go-actionscache-1.0`); a key once committed is
//! never written again (a second reserve is refused as "already exists"), so a mutable value
//! (BuildKit's index) is a series `KEY#1`, `KEY#2`... read back by prefix ([`Cache::save_mutable`]).
//! - v2: POST `{url}/twirp/github.actions.results.api.v1.CacheService/METHOD` with JSON:
//!   `CreateCacheEntry {key, version}` -> `{ok, signed_upload_url}`, the bytes Put there
//!   (an Azure blob, in blocks when big), `FinalizeCacheEntryUpload {key, size_bytes, version}`
//!   -> `{ok, entry_id}`; `GetCacheEntryDownloadURL {key, restore_keys, version}` ->
//!   `{ok, signed_download_url, matched_key}` (`ok` false: no such entry).
//! - v1: under `{url}/_apis/artifactcache/`: `GET cache?keys=&version=` -> `{cacheKey,
//!   archiveLocation}` (204 or an empty body: none), `POST caches {key, version}` -> `{cacheId}`,
//!   `PATCH caches/ID` chunks with `Content-Range: bytes S-E/*`, `POST caches/ID {size}`; the
//!   content is a plain GET of `archiveLocation`.
//!
//! Each call carries `Authorization: Bearer TOKEN`. As go-actions-cache, a 429 is retried (after
//! `Retry-After`, else a backoff from 1 s doubling to 90 s) until `timeout` has passed; any other
//! failure is an error naming the service's error code and message.

use super::token::Token;
use super::GhaError;
use crate::azblob::Container;
use crate::registry::client::{Body, Resp, SendError};
use sha2::Digest;
use std::io::Read;
use std::time::{Duration, Instant};
use ureq::http;

/// A body being read and its status (200 whole, 206 from the offset asked).
pub type Download = (Box<dyn Read + Send>, u16);

/// go-actions-cache's chunks for v1 uploads (UploadChunkSize, UploadConcurrency).
const CHUNK: u64 = 32 << 20;
const CHUNKS_AT_ONCE: usize = 4;
const TWIRP: &str = "twirp/github.actions.results.api.v1.CacheService";

/// The version every key is saved and looked up with (go-actions-cache's `version(key)` hashes
/// a constant, not the key).
pub fn version() -> String {
    hex::encode(sha2::Sha256::digest(b"|go-actionscache-1.0"))
}

/// An entry found: the key it matched and where its content is (an Azure SAS URL for v2).
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    url: String,
}

/// A reserved key: v2's upload URL, or v1's cache ID.
struct Reserved {
    key: String,
    upload: String,
}

pub struct Cache {
    pub token: Token,
    base: String,
    pub v2: bool,
    timeout: Duration,
    agent: ureq::Agent,
}

/// The service's error in an answer's body: v1's `{message, typeKey}`, v2's Twirp
/// `{code, msg}` (go-actions-cache reads `message` there too).
fn error_fields(status: u16, body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_start_matches('\u{feff}');
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let message = [s("msg"), s("message")].into_iter().find(|m| !m.is_empty()).unwrap_or_default();
    let code = [s("code"), s("typeKey"), s("typeName")].into_iter().find(|c| !c.is_empty());
    match code {
        Some(c) => (c, message),
        None if !message.is_empty() => (format!("HTTP {status}"), message),
        None => (format!("HTTP {status}"), text.chars().take(200).collect()),
    }
}

/// An answer's JSON body (at most 32 KiB, as go-actions-cache reads).
fn small_body(mut res: Resp, op: &str) -> Result<Vec<u8>, GhaError> {
    res.body_mut()
        .with_config()
        .limit(32 << 10)
        .read_to_vec()
        .map_err(|e| GhaError::Transport { op: op.into(), why: e.to_string() })
}

impl Cache {
    /// The client of the service at `url` (v2 when `v2`), for `token`.
    pub fn new(token: Token, url: &str, v2: bool, timeout: Duration) -> Result<Cache, GhaError> {
        let authority = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        if !(url.starts_with("http://") || url.starts_with("https://")) || authority.is_empty() {
            return Err(GhaError::Config(format!("url {url}: expected http(s)://HOST[:PORT][/PATH]")));
        }
        let (tls, _) = crate::registry::tls::config(authority, None, true)
            .map_err(|e| GhaError::Config(format!("TLS for {authority}: {e}")))?;
        Ok(Cache {
            token,
            base: url.trim_end_matches('/').to_string(),
            v2,
            timeout,
            agent: crate::registry::client::agent(tls),
        })
    }

    /// The service's URL as given (without a trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn endpoint(&self, p: &str) -> String {
        if self.v2 {
            format!("{}/{TWIRP}/{p}", self.base)
        } else {
            format!("{}/_apis/artifactcache/{p}", self.base)
        }
    }

    /// One call with the token; 429s retried until the timeout; anything but a 2xx an error.
    fn call(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &Body, op: &str) -> Result<Resp, GhaError> {
        let tr = |why: String| GhaError::Transport { op: op.into(), why };
        let deadline = Instant::now() + self.timeout;
        let mut backoff = Duration::from_secs(1);
        let bearer = format!("Bearer {}", self.token.raw);
        loop {
            let mut b = http::Request::builder().method(method).uri(url).header("authorization", &bearer);
            if !self.v2 {
                b = b.header("accept", "application/json;api-version=6.0-preview.1");
            }
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let mut res = match crate::registry::client::run(&self.agent, b, body) {
                Err(SendError::Io { path, err }) => return Err(GhaError::Io { op: op.into(), path, err }),
                Err(SendError::Request(e)) => return Err(tr(e)),
                Ok(r) => r.map_err(|e| tr(crate::registry::client::describe(&e)))?,
            };
            let status = res.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(res);
            }
            let body = res.body_mut().with_config().limit(32 << 10).read_to_vec().unwrap_or_default();
            let (code, message) = error_fields(status, &body);
            let err = GhaError::Status { op: op.into(), status, code, message };
            if status != 429 {
                return Err(err);
            }
            let after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| {
                v.trim().parse::<u64>().ok().map(Duration::from_secs).or_else(|| {
                    httpdate::parse_http_date(v.trim())
                        .ok()
                        .map(|t| t.duration_since(std::time::SystemTime::now()).unwrap_or_default())
                })
            });
            let wait = after.unwrap_or(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(90));
            if Instant::now() + wait > deadline {
                return Err(err);
            }
            std::thread::sleep(wait);
        }
    }

    /// A Twirp call: the JSON request, the JSON answer.
    fn rpc(&self, method: &str, req: &serde_json::Value) -> Result<serde_json::Value, GhaError> {
        let url = self.endpoint(method);
        let op = format!("POST {url}");
        let body = req.to_string();
        let res =
            self.call("POST", &url, &[("content-type", "application/json")], &Body::Bytes(body.as_bytes()), &op)?;
        let b = small_body(res, &op)?;
        serde_json::from_slice(&b)
            .map_err(|e| GhaError::Transport { op, why: format!("an answer that is not JSON: {e}") })
    }

    /// The newest entry of `keys[0]`, else of a key starting with one of `keys` (the service's
    /// restore keys); None when there is none.
    pub fn load(&self, keys: &[&str]) -> Result<Option<Entry>, GhaError> {
        let Some(first) = keys.first() else { return Ok(None) };
        if self.v2 {
            let v = self.rpc(
                "GetCacheEntryDownloadURL",
                &serde_json::json!({"key": first, "restore_keys": keys, "version": version()}),
            )?;
            if v["ok"] != true {
                return Ok(None);
            }
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            return Ok(Some(Entry { key: s("matched_key"), url: s("signed_download_url") }));
        }
        let q = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let url = format!("{}?keys={}&version={}", self.endpoint("cache"), q(&keys.join(",")), version());
        let op = format!("GET {url}");
        let b = small_body(self.call("GET", &url, &[], &Body::Empty, &op)?, &op)?;
        if b.is_empty() {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_slice(&b)
            .map_err(|e| GhaError::Transport { op, why: format!("an answer that is not JSON: {e}") })?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        if s("cacheKey").is_empty() {
            return Ok(None);
        }
        Ok(Some(Entry { key: s("cacheKey"), url: s("archiveLocation") }))
    }

    fn reserve(&self, key: &str) -> Result<Reserved, GhaError> {
        if self.v2 {
            let v = self.rpc("CreateCacheEntry", &serde_json::json!({"key": key, "version": version()}))?;
            return match (v["ok"] == true, v["signed_upload_url"].as_str()) {
                (true, Some(u)) => Ok(Reserved { key: key.into(), upload: u.into() }),
                _ => Err(GhaError::Transport {
                    op: format!("POST {}", self.endpoint("CreateCacheEntry")),
                    why: format!("failed to reserve cache {key}"),
                }),
            };
        }
        let url = self.endpoint("caches");
        let op = format!("POST {url} (reserve {key})");
        let body = serde_json::json!({"key": key, "version": version()}).to_string();
        let mut res =
            self.call("POST", &url, &[("content-type", "application/json")], &Body::Bytes(body.as_bytes()), &op)?;
        let b = res.body_mut().with_config().limit(32 << 10).read_to_vec().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
        // Go's encoding/json: `cacheID` matches cacheId case-insensitively
        let id = v.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("cacheid")).map(|(_, v)| v));
        match id.and_then(|i| i.as_u64()).filter(|i| *i != 0) {
            Some(i) => Ok(Reserved { key: key.into(), upload: i.to_string() }),
            None => Err(GhaError::Transport { op, why: format!("invalid response {}", String::from_utf8_lossy(&b)) }),
        }
    }

    /// The content of a reserved key: v2 to its Azure blob URL (Put Blob, or blocks when big,
    /// as the Azure SDK's UploadStream), v1 in PATCHed chunks, 4 at a time.
    fn upload(&self, r: &Reserved, body: &Body, size: u64) -> Result<(), GhaError> {
        if self.v2 {
            let (c, blob) = Container::at_url(&r.upload)?;
            match body {
                Body::File { path, len, .. } => {
                    c.put_file(&blob, path, *len, "application/octet-stream")?;
                }
                Body::Bytes(d) => c.put_bytes(&blob, d, "application/octet-stream")?,
                Body::Empty => c.put_bytes(&blob, &[], "application/octet-stream")?,
            }
            return Ok(());
        }
        let url = self.endpoint(&format!("caches/{}", r.upload));
        let n = size.div_ceil(CHUNK);
        let next = std::sync::atomic::AtomicU64::new(0);
        let first_err = std::sync::Mutex::new(None);
        std::thread::scope(|sc| {
            for _ in 0..CHUNKS_AT_ONCE.min(n as usize) {
                sc.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n || first_err.lock().map(|e| e.is_some()).unwrap_or(true) {
                        return;
                    }
                    let (start, len) = (i * CHUNK, CHUNK.min(size - i * CHUNK));
                    let chunk = match body {
                        Body::File { path, offset, .. } => Body::File { path, offset: offset + start, len },
                        Body::Bytes(d) => Body::Bytes(&d[start as usize..(start + len) as usize]),
                        Body::Empty => Body::Empty,
                    };
                    let range = format!("bytes {start}-{}/*", start + len - 1);
                    let op = format!("PATCH {url} ({range})");
                    let h = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
                    if let Err(e) = self.call("PATCH", &url, &h, &chunk, &op) {
                        if let Ok(mut f) = first_err.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                });
            }
        });
        match first_err.into_inner().ok().flatten() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn commit(&self, r: &Reserved, size: u64) -> Result<(), GhaError> {
        if self.v2 {
            let v = self.rpc(
                "FinalizeCacheEntryUpload",
                &serde_json::json!({"key": r.key, "size_bytes": size, "version": version()}),
            )?;
            if v["ok"] != true {
                return Err(GhaError::Transport {
                    op: format!("POST {}", self.endpoint("FinalizeCacheEntryUpload")),
                    why: format!("failed to commit cache {}", r.key),
                });
            }
            return Ok(());
        }
        let url = self.endpoint(&format!("caches/{}", r.upload));
        let op = format!("POST {url} (commit {})", r.key);
        let body = serde_json::json!({ "size": size }).to_string();
        self.call("POST", &url, &[("content-type", "application/json")], &Body::Bytes(body.as_bytes()), &op)?;
        Ok(())
    }

    /// Saves `size` bytes (`body`) under `key`: reserve, upload, commit. False when the key is
    /// there already (saved by this or another build: a key's content never changes).
    pub fn save(&self, key: &str, body: &Body, size: u64) -> Result<bool, GhaError> {
        let r = match self.reserve(key) {
            Ok(r) => r,
            Err(e) if e.exists() => return Ok(false),
            Err(e) => return Err(e),
        };
        self.upload(&r, body, size)?;
        self.commit(&r, size)?;
        Ok(true)
    }

    /// Saves `data` as the newest value of a mutable `key`, as go-actions-cache's SaveMutable:
    /// the newest `key#N` is looked up and `key#N+1` reserved; when another build reserved it
    /// first, the lookup is tried again every 2 s, and after `force` of that the next number
    /// is taken (a build that crashed holding it must not block the key for ever).
    pub fn save_mutable(&self, key: &str, data: &[u8], force: Duration) -> Result<(), GhaError> {
        let mut blocked = Duration::ZERO;
        let prefix = format!("{key}#");
        'again: loop {
            let last = self.load(&[&prefix])?;
            let mut idx: u64 = match &last {
                None => 0,
                Some(e) => {
                    let n = e.key.strip_prefix(&prefix).unwrap_or("");
                    n.parse().map_err(|_| GhaError::Config(format!("failed to parse {key} index {:?}", e.key)))?
                }
            };
            loop {
                idx += 1;
                let k = format!("{prefix}{idx}");
                match self.reserve(&k) {
                    Ok(r) => {
                        self.upload(&r, &Body::Bytes(data), data.len() as u64)?;
                        return self.commit(&r, data.len() as u64);
                    }
                    Err(e) if e.exists() && blocked <= force => {
                        blocked += Duration::from_secs(2);
                        std::thread::sleep(Duration::from_secs(2));
                        continue 'again;
                    }
                    // held a long time: maybe by a build that crashed; the next number
                    Err(e) if e.exists() => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// The keys starting with `prefix` in every scope of the token, listed through GitHub's
    /// REST API (go-actions-cache's AllKeys).
    pub fn all_keys(&self, api: &RestApi, prefix: &str) -> Result<std::collections::HashSet<String>, GhaError> {
        let mut keys = std::collections::HashSet::new();
        for s in &self.token.scopes {
            keys.extend(api.list_keys(prefix, &s.scope)?);
        }
        Ok(keys)
    }

    /// An entry's content from `offset`; None when its blob is gone.
    pub fn download(&self, e: &Entry, offset: u64) -> Result<Option<Download>, GhaError> {
        if self.v2 {
            let (c, blob) = Container::at_url(&e.url)?;
            return Ok(c.get(&blob, offset)?);
        }
        // a plain URL (v1's archiveLocation): no token sent there
        let shown = e.url.split('?').next().unwrap_or("");
        let op = format!("GET {shown}");
        let tr = |why: String| GhaError::Transport { op: op.clone(), why };
        let mut b = http::Request::builder().method("GET").uri(&e.url);
        let range = format!("bytes={offset}-");
        if offset > 0 {
            b = b.header("range", &range);
        }
        let req = b.body(()).map_err(|x| tr(x.to_string()))?;
        let mut res = self.agent.run(req).map_err(|x| tr(crate::registry::client::describe(&x)))?;
        let status = res.status().as_u16();
        match status {
            200 | 206 => {
                let cr = res.headers().get("content-range").and_then(|v| v.to_str().ok()).unwrap_or("");
                if status == 206 && !cr.starts_with(&format!("bytes {offset}-")) {
                    return Err(tr(format!("unhandled content range in response: {cr}")));
                }
                Ok(Some((Box::new(res.into_body().into_reader()), status)))
            }
            404 => Ok(None),
            _ => {
                let body = res.body_mut().with_config().limit(32 << 10).read_to_vec().unwrap_or_default();
                let (code, message) = error_fields(status, &body);
                Err(GhaError::Status { op, status, code, message })
            }
        }
    }
}

/// GitHub's REST API, for the one call BuildKit's exporter makes of it (`ghtoken` +
/// `repository`): the keys of a repository's caches, by prefix and ref (go-actions-cache's
/// ListKeys: `GET /repos/OWNER/REPO/actions/caches?per_page=100&page=N&key=PREFIX&ref=REF`, pages
/// while `total_count` says there are more).
pub struct RestApi {
    base: String,
    repo: String,
    token: String,
    agent: ureq::Agent,
}

impl RestApi {
    pub fn new(api_url: &str, repo: &str, token: &str) -> Result<RestApi, GhaError> {
        let authority = api_url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) || authority.is_empty() {
            return Err(GhaError::Config(format!("GitHub API URL {api_url}: expected http(s)://HOST[:PORT][/PATH]")));
        }
        let (tls, _) = crate::registry::tls::config(authority, None, true)
            .map_err(|e| GhaError::Config(format!("TLS for {authority}: {e}")))?;
        Ok(RestApi {
            base: api_url.trim_end_matches('/').to_string(),
            repo: repo.into(),
            token: token.into(),
            agent: crate::registry::client::agent(tls),
        })
    }

    pub fn list_keys(&self, prefix: &str, git_ref: &str) -> Result<Vec<String>, GhaError> {
        let q = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut out = Vec::new();
        for page in 1.. {
            let url = format!(
                "{}/repos/{}/actions/caches?per_page=100&page={page}&key={}&ref={}",
                self.base,
                self.repo,
                q(prefix),
                q(git_ref)
            );
            let op = format!("GET {url}");
            let tr = |why: String| GhaError::Transport { op: op.clone(), why };
            let req = http::Request::builder()
                .method("GET")
                .uri(&url)
                .header("accept", "application/vnd.github+json")
                .header("authorization", format!("Bearer {}", self.token))
                .header("x-github-api-version", "2022-11-28")
                .body(())
                .map_err(|e| tr(e.to_string()))?;
            let mut res = self.agent.run(req).map_err(|e| tr(crate::registry::client::describe(&e)))?;
            let status = res.status().as_u16();
            let b = res.body_mut().with_config().limit(16 << 20).read_to_vec().map_err(|e| tr(e.to_string()))?;
            if !(200..300).contains(&status) {
                let (code, message) = error_fields(status, &b);
                return Err(GhaError::Status { op, status, code, message });
            }
            let v: serde_json::Value =
                serde_json::from_slice(&b).map_err(|e| tr(format!("an answer that is not JSON: {e}")))?;
            let caches = v["actions_caches"].as_array().cloned().unwrap_or_default();
            out.extend(caches.iter().filter_map(|c| c["key"].as_str()).map(str::to_string));
            if v["total_count"].as_u64().unwrap_or(0) <= page * 100 || caches.is_empty() {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_version() {
        // go-actions-cache's version(): sha256("|go-actionscache-1.0"), whatever the key
        assert_eq!(version(), hex::encode(sha2::Sha256::digest(b"|go-actionscache-1.0")));
        assert_eq!(version().len(), 64);
    }

    #[test]
    fn service_errors() {
        // v2: Twirp's error body
        let twirp = br#"{"code":"already_exists","msg":"cache entry already exists","meta":{}}"#;
        assert_eq!(error_fields(409, twirp), ("already_exists".into(), "cache entry already exists".into()));
        // v1: Azure DevOps' exception body (with a BOM)
        let v1 = "\u{feff}{\"$id\":\"1\",\"message\":\"Cache already exists. Scope: refs/heads/main\",\"typeName\":\"Microsoft.Azure.DevOps.PipelineCache.WebApi.ArtifactCacheItemAlreadyExistsException\",\"typeKey\":\"ArtifactCacheItemAlreadyExistsException\",\"errorCode\":0}";
        let (code, msg) = error_fields(409, v1.as_bytes());
        assert_eq!(code, "ArtifactCacheItemAlreadyExistsException");
        assert!(msg.starts_with("Cache already exists"));
        assert_eq!(error_fields(502, b"bad gateway"), ("HTTP 502".into(), "bad gateway".into()));
        let e = |code: &str, message: &str| GhaError::Status {
            op: "x".into(),
            status: 409,
            code: code.into(),
            message: message.into(),
        };
        assert!(e("already_exists", "").exists());
        assert!(e("ArtifactCacheItemAlreadyExistsException", "").exists());
        assert!(e("HTTP 409", "Cache Already Exists").exists());
        assert!(!e("unauthenticated", "bad token").exists());
    }
}
