//! A stand-in for GitHub Actions' cache service, for the `type=gha` tests: there is no open
//! server of it (GitHub's is private; nektos/act's is v1 only, in Go, not packaged), so this one
//! follows the wire format of BuildKit's client (github.com/tonistiigi/go-actions-cache) and
//! GitHub's documented semantics, and keeps the bytes in a real Azure Blob server (Azurite):
//! - v2: Twirp JSON `POST /twirp/github.actions.results.api.v1.CacheService/METHOD`
//!   (Content-Type application/json): `CreateCacheEntry {key, version}` reserves the key in the
//!   token's write scope (a second create of the same scope, key and version: 409
//!   `already_exists`) and answers `{ok, signed_upload_url}`, a blob SAS URL on Azurite allowing
//!   create and write; `FinalizeCacheEntryUpload {key, size_bytes, version}` commits it once the
//!   blob is in Azurite with that size (asked of Azurite); `GetCacheEntryDownloadURL {key,
//!   restore_keys, version}` looks in each scope of the token (in the token's order) for the key
//!   exactly, then for the newest key starting with a restore key, the version equal, and answers
//!   `{ok, signed_download_url (read-only SAS), matched_key}` (`ok` false when none).
//! - v1 (`/_apis/artifactcache/`): `GET cache?keys=&version=` (204 when none), `POST caches`
//!   (409 `ArtifactCacheItemAlreadyExistsException`), `PATCH caches/ID` with `Content-Range`,
//!   `POST caches/ID {size}`; the chunks are assembled and put into Azurite at commit, and
//!   `archiveLocation` is a read SAS URL of that blob.
//! - GitHub's REST API listing of a repository's caches (`GET /repos/OWNER/REPO/actions/caches`,
//!   `key` prefix, `ref`, `per_page`, `page`; `Authorization: Bearer` [`GH_TOKEN`], else 401 "Bad
//!   credentials"), as BuildKit's exporter asks it with `ghtoken` and `repository`.
//! - Every other call needs `Authorization: Bearer JWT`, a token this service signed (HS256) and not
//!   expired, whose `ac` claim lists the scopes (as a runner's `ACTIONS_RUNTIME_TOKEN`); else 401
//!   `unauthenticated`.

use crate::azurite::{Azurite, ACCOUNT, KEY};
use base64::Engine as _;
use sha2::Digest;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The GitHub token the REST API takes (`ghtoken=`).
pub const GH_TOKEN: &str = "ghp_slipwaytestREST";

/// The container the service keeps its entries in.
pub const CONTAINER: &str = "actions-cache";
const TWIRP: &str = "/twirp/github.actions.results.api.v1.CacheService/";

fn b64url(d: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

/// HMAC-SHA256 (RFC 2104) over sha2: the JWT's signature and Azure's SAS and Shared Key.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > 64 { sha2::Sha256::digest(key).to_vec() } else { key.to_vec() };
    k.resize(64, 0);
    let pad = |p: u8| k.iter().map(|b| b ^ p).collect::<Vec<u8>>();
    let inner = sha2::Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    sha2::Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A JWT signed with `secret` (HS256) whose `ac` lists `scopes` (ref, permission: 1 read, 2
/// write), valid for ten minutes: a runner's `ACTIONS_RUNTIME_TOKEN`.
pub fn token(secret: &[u8], scopes: &[(&str, u32)]) -> String {
    let ac: Vec<serde_json::Value> =
        scopes.iter().map(|(s, p)| serde_json::json!({"Scope": s, "Permission": p})).collect();
    let claims = serde_json::json!({
        "ac": serde_json::Value::Array(ac).to_string(),
        "exp": now() + 600, "nbf": now() - 60, "iss": "slipway-test-gha",
    });
    let signing = format!("{}.{}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let sig = hmac_sha256(secret, signing.as_bytes());
    format!("{signing}.{}", b64url(&sig))
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub scope: String,
    pub key: String,
    pub version: String,
    /// The Azure blob holding it (in [`CONTAINER`]).
    pub blob: String,
    pub size: u64,
    pub committed: bool,
    /// v1: the chunks PATCHed so far (offset, bytes).
    chunks: Vec<(u64, Vec<u8>)>,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    /// "METHOD PATH STATUS" of each call (a Twirp call by its method name).
    log: Vec<String>,
}

pub struct GhaService {
    pub port: u16,
    /// `http://127.0.0.1:PORT/` (v1 and v2 alike, as a runner's ACTIONS_RESULTS_URL).
    pub url: String,
    secret: Vec<u8>,
    state: Arc<Mutex<State>>,
    expired: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Ctx {
    /// How many of the next download URLs are handed out expired already.
    expired: Arc<std::sync::atomic::AtomicUsize>,
    secret: Vec<u8>,
    azurite_port: u16,
    state: Arc<Mutex<State>>,
}

impl GhaService {
    /// Starts the service on loopback, its container made in `az`.
    pub fn start(az: &Azurite) -> GhaService {
        let (st, _) = azure(az.port, "PUT", &format!("/{CONTAINER}"), "restype=container", &[]);
        assert_eq!(st, 201, "create the container {CONTAINER} in azurite");
        let secret = format!("slipway-gha-secret-{}", std::process::id()).into_bytes();
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the gha service");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let expired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ctx = Arc::new(Ctx {
            expired: expired.clone(),
            secret: secret.clone(),
            azurite_port: az.port,
            state: state.clone(),
        });
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let ctx = ctx.clone();
                        std::thread::spawn(move || {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                            serve(s, &ctx);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        GhaService {
            port,
            url: format!("http://127.0.0.1:{port}/"),
            secret,
            state,
            expired,
            stop,
            thread: Some(thread),
        }
    }

    /// A runtime token of this service for `scopes`.
    pub fn token(&self, scopes: &[(&str, u32)]) -> String {
        token(&self.secret, scopes)
    }

    /// The next `n` download URLs expire an hour before they are handed out (Azure then
    /// refuses them, 403), as a URL kept too long would.
    pub fn expire_next_downloads(&self, n: usize) {
        self.expired.store(n, Ordering::SeqCst);
    }

    /// How many of those are still to be handed out.
    pub fn expired_left(&self) -> usize {
        self.expired.load(Ordering::SeqCst)
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.state.lock().map(|s| s.entries.clone()).unwrap_or_default()
    }

    pub fn log(&self) -> Vec<String> {
        self.state.lock().map(|s| s.log.clone()).unwrap_or_default()
    }
}

impl Drop for GhaService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One Shared Key request to Azurite (HTTP/1.0): status and body.
fn azure(port: u16, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let date = httpdate();
    let len = if body.is_empty() { String::new() } else { body.len().to_string() };
    let mut canon_q: Vec<(String, String)> = query
        .split('&')
        .filter(|q| !q.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    canon_q.sort();
    let blob_type = if method == "PUT" && !query.contains("restype") { "x-ms-blob-type:BlockBlob\n" } else { "" };
    let sts = format!(
        "{method}\n\n\n{len}\n\n\n\n\n\n\n\n\n{blob_type}x-ms-date:{date}\nx-ms-version:2021-12-02\n/{ACCOUNT}/{ACCOUNT}{path}{}",
        canon_q.iter().map(|(k, v)| format!("\n{k}:{v}")).collect::<String>()
    );
    let key = base64::engine::general_purpose::STANDARD.decode(KEY).expect("key");
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, sts.as_bytes()));
    let q = if query.is_empty() { String::new() } else { format!("?{query}") };
    let mut head = format!(
        "{method} /{ACCOUNT}{path}{q} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nx-ms-date: {date}\r\nx-ms-version: 2021-12-02\r\nAuthorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !blob_type.is_empty() {
        head.push_str("x-ms-blob-type: BlockBlob\r\n");
    }
    head.push_str("\r\n");
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, Vec::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    if s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).is_err() {
        return (0, Vec::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => out[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

fn httpdate() -> String {
    let o = std::process::Command::new("date").args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"]).output().expect("date");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A service SAS (version 2021-12-02) for one blob of [`CONTAINER`], signed with the account
/// key as Azure documents it: `perms` such as `r` or `cw`, valid for an hour (`expired`:
/// expired an hour ago).
fn sas_url(port: u16, blob: &str, perms: &str, expired: bool) -> String {
    let when = if expired { "-1 hour" } else { "+1 hour" };
    let o = std::process::Command::new("date").args(["-u", "-d", when, "+%Y-%m-%dT%H:%M:%SZ"]).output().expect("date");
    let se = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let sts = [
        perms,
        "",
        &se,
        &format!("/blob/{ACCOUNT}/{CONTAINER}/{blob}"),
        "",
        "",
        "",
        "2021-12-02",
        "b",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let key = base64::engine::general_purpose::STANDARD.decode(KEY).expect("key");
    let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, sts.as_bytes()));
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "http://127.0.0.1:{port}/{ACCOUNT}/{CONTAINER}/{blob}?sv=2021-12-02&sr=b&sp={perms}&se={}&sig={}",
        enc(&se),
        enc(&sig)
    )
}

/// Whether the next download URL is to be an expired one.
fn take_expired(ctx: &Ctx) -> bool {
    ctx.expired.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

/// The scopes of a token this service signed, or why it is refused.
fn check_token(ctx: &Ctx, auth: Option<&str>) -> Result<Vec<(String, u32)>, String> {
    let t = auth.and_then(|a| a.strip_prefix("Bearer ")).ok_or("no bearer token")?;
    let parts: Vec<&str> = t.split('.').collect();
    if parts.len() != 3 {
        return Err("malformed token".into());
    }
    let sig = hmac_sha256(&ctx.secret, format!("{}.{}", parts[0], parts[1]).as_bytes());
    if b64url(&sig) != parts[2] {
        return Err("token signature is invalid".into());
    }
    let claims: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("malformed claims")?;
    if claims["exp"].as_i64().unwrap_or(0) < now() {
        return Err("token expired".into());
    }
    let ac: Vec<serde_json::Value> =
        serde_json::from_str(claims["ac"].as_str().unwrap_or("")).map_err(|_| "malformed ac claim")?;
    Ok(ac
        .iter()
        .map(|s| (s["Scope"].as_str().unwrap_or("").to_string(), s["Permission"].as_u64().unwrap_or(0) as u32))
        .collect())
}

struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn json(status: u16, v: serde_json::Value) -> Answer {
    Answer { status, body: v.to_string().into_bytes() }
}

fn twirp_err(status: u16, code: &str, msg: &str) -> Answer {
    json(status, serde_json::json!({"code": code, "msg": msg}))
}

fn v1_err(status: u16, type_key: &str, msg: &str) -> Answer {
    json(
        status,
        serde_json::json!({"$id": "1", "innerException": null, "message": msg, "typeName": format!("Microsoft.Azure.DevOps.PipelineCache.WebApi.{type_key}, Microsoft.Azure.DevOps.PipelineCache.WebApi"), "typeKey": type_key, "errorCode": 0, "eventId": 3000}),
    )
}

fn serve(s: TcpStream, ctx: &Ctx) {
    let mut r = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    let mut it = line.split(' ');
    let (method, target) = (it.next().unwrap_or("").to_string(), it.next().unwrap_or("").to_string());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let a = handle(ctx, &method, path, query, &headers, &body);
    if let Ok(mut st) = ctx.state.lock() {
        let name = path.strip_prefix(TWIRP).unwrap_or(path);
        st.log.push(format!("{method} {name} {}", a.status));
    }
    let reason = match a.status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Other",
    };
    let mut w = s;
    let _ = write!(
        w,
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        a.status,
        a.body.len()
    );
    let _ = w.write_all(&a.body);
}

fn handle(ctx: &Ctx, method: &str, path: &str, query: &str, h: &HashMap<String, String>, body: &[u8]) -> Answer {
    if path.starts_with("/repos/") && path.ends_with("/actions/caches") && method == "GET" {
        return list_caches(ctx, query, h);
    }
    let v2 = path.starts_with(TWIRP);
    let scopes = match check_token(ctx, h.get("authorization").map(String::as_str)) {
        Ok(s) => s,
        Err(why) if v2 => return twirp_err(401, "unauthenticated", &why),
        Err(why) => return v1_err(401, "UnauthorizedRequestException", &why),
    };
    let write_scope = scopes.iter().rev().find(|(_, p)| p & 2 != 0).map(|(s, _)| s.clone());
    let read_scopes: Vec<String> = scopes.iter().filter(|(_, p)| p & 1 != 0).map(|(s, _)| s.clone()).collect();
    if v2 {
        if method != "POST" || h.get("content-type").map(String::as_str) != Some("application/json") {
            return twirp_err(404, "bad_route", "expected POST with Content-Type application/json");
        }
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(body) else {
            return twirp_err(400, "malformed", "the body is not JSON");
        };
        let s = |k: &str| req[k].as_str().unwrap_or("").to_string();
        let (key, version) = (s("key"), s("version"));
        if key.is_empty() || version.is_empty() {
            return twirp_err(400, "invalid_argument", "key and version are required");
        }
        return match &path[TWIRP.len()..] {
            "CreateCacheEntry" => match create(ctx, write_scope, &key, &version) {
                Ok(blob) => json(
                    200,
                    serde_json::json!({"ok": true, "signed_upload_url": sas_url(ctx.azurite_port, &blob, "cw", false)}),
                ),
                Err(a) => a,
            },
            "FinalizeCacheEntryUpload" => {
                let size = req["size_bytes"].as_u64().or_else(|| s("size_bytes").parse().ok()).unwrap_or(0);
                match finalize(ctx, write_scope, &key, &version, size, None) {
                    Ok(id) => json(200, serde_json::json!({"ok": true, "entry_id": id.to_string()})),
                    Err(a) => a,
                }
            }
            "GetCacheEntryDownloadURL" => {
                let mut keys = vec![key.clone()];
                keys.extend(
                    req["restore_keys"].as_array().into_iter().flatten().filter_map(|k| k.as_str()).map(str::to_string),
                );
                match find(ctx, &read_scopes, &keys, &version) {
                    Some(e) => json(
                        200,
                        serde_json::json!({"ok": true, "signed_download_url": sas_url(ctx.azurite_port, &e.blob, "r", take_expired(ctx)), "matched_key": e.key}),
                    ),
                    None => json(200, serde_json::json!({"ok": false, "signed_download_url": "", "matched_key": ""})),
                }
            }
            _ => twirp_err(404, "bad_route", "no such method"),
        };
    }
    let Some(rest) = path.strip_prefix("/_apis/artifactcache/") else {
        return v1_err(404, "NotFoundException", "no such route");
    };
    if h.get("accept").map(|a| a.contains("api-version=6.0-preview.1")) != Some(true) {
        return v1_err(
            400,
            "InvalidApiVersionException",
            "expected Accept: application/json;api-version=6.0-preview.1",
        );
    }
    match (method, rest) {
        ("GET", "cache") => {
            let q: HashMap<String, String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), crate::registry::pct_decode(v)))
                .collect();
            let keys: Vec<String> =
                q.get("keys").map(|k| k.split(',').map(str::to_string).collect()).unwrap_or_default();
            match find(ctx, &read_scopes, &keys, q.get("version").map(String::as_str).unwrap_or("")) {
                Some(e) => json(
                    200,
                    serde_json::json!({"scope": e.scope, "cacheKey": e.key, "cacheVersion": e.version, "archiveLocation": sas_url(ctx.azurite_port, &e.blob, "r", take_expired(ctx))}),
                ),
                None => Answer { status: 204, body: Vec::new() },
            }
        }
        ("POST", "caches") => {
            let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let (key, version) = (req["key"].as_str().unwrap_or(""), req["version"].as_str().unwrap_or(""));
            if key.is_empty() || version.is_empty() {
                return v1_err(400, "ArgumentException", "key and version are required");
            }
            match create(ctx, write_scope, key, version) {
                Ok(blob) => json(
                    201,
                    serde_json::json!({"cacheId": blob.trim_start_matches("entries/").parse::<u64>().unwrap_or(0)}),
                ),
                Err(a) => a,
            }
        }
        ("PATCH", id) if id.starts_with("caches/") => {
            let blob = format!("entries/{}", &id[7..]);
            let range = h.get("content-range").cloned().unwrap_or_default();
            let start =
                range.strip_prefix("bytes ").and_then(|r| r.split('-').next()).and_then(|s| s.parse::<u64>().ok());
            let Some(start) = start else { return v1_err(400, "ArgumentException", "bad Content-Range") };
            let mut st = ctx.state.lock().expect("state");
            match st.entries.iter_mut().find(|e| e.blob == blob && !e.committed) {
                Some(e) => {
                    e.chunks.push((start, body.to_vec()));
                    Answer { status: 204, body: Vec::new() }
                }
                None => v1_err(404, "ArtifactCacheNotFoundException", "no such reserved cache"),
            }
        }
        ("POST", id) if id.starts_with("caches/") => {
            let blob = format!("entries/{}", &id[7..]);
            let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let size = req["size"].as_u64().unwrap_or(0);
            let entry =
                ctx.state.lock().expect("state").entries.iter().find(|e| e.blob == blob && !e.committed).cloned();
            let Some(e) = entry else { return v1_err(404, "ArtifactCacheNotFoundException", "no such reserved cache") };
            let mut data = vec![0u8; size as usize];
            let mut got = 0u64;
            for (off, c) in &e.chunks {
                let end = (*off as usize + c.len()).min(data.len());
                if (*off as usize) < end {
                    data[*off as usize..end].copy_from_slice(&c[..end - *off as usize]);
                }
                got += c.len() as u64;
            }
            if got != size {
                return v1_err(400, "ArgumentException", &format!("{got} bytes uploaded, commit says {size}"));
            }
            let (st, _) = azure(ctx.azurite_port, "PUT", &format!("/{CONTAINER}/{blob}"), "", &data);
            if st != 201 {
                return v1_err(500, "StorageException", &format!("azurite answered {st}"));
            }
            match finalize(ctx, write_scope, &e.key, &e.version, size, Some(&blob)) {
                Ok(_) => Answer { status: 204, body: Vec::new() },
                Err(a) => a,
            }
        }
        _ => v1_err(404, "NotFoundException", "no such route"),
    }
}

/// The REST API's listing: committed entries of `ref` whose key starts with `key`, a page of them.
fn list_caches(ctx: &Ctx, query: &str, h: &HashMap<String, String>) -> Answer {
    if h.get("authorization").map(String::as_str) != Some(&format!("Bearer {GH_TOKEN}")) {
        return json(
            401,
            serde_json::json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        );
    }
    let q: HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), crate::registry::pct_decode(v)))
        .collect();
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (per_page, page) = (num("per_page", 30).clamp(1, 100), num("page", 1).max(1));
    let empty = String::new();
    let (prefix, git_ref) = (q.get("key").unwrap_or(&empty), q.get("ref"));
    let st = ctx.state.lock().expect("state");
    let all: Vec<&Entry> = st
        .entries
        .iter()
        .filter(|e| e.committed && e.key.starts_with(prefix.as_str()) && git_ref.is_none_or(|r| *r == e.scope))
        .collect();
    let caches: Vec<serde_json::Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|e| serde_json::json!({"id": 1, "ref": e.scope, "key": e.key, "version": e.version, "size_in_bytes": e.size}))
        .collect();
    json(200, serde_json::json!({"total_count": all.len(), "actions_caches": caches}))
}

/// Reserves `key` in the write scope: the new entry's blob name, or the service's refusal.
fn create(ctx: &Ctx, write_scope: Option<String>, key: &str, version: &str) -> Result<String, Answer> {
    let Some(scope) = write_scope else {
        return Err(twirp_err(403, "permission_denied", "the token may not write to any scope"));
    };
    let mut st = ctx.state.lock().expect("state");
    if st.entries.iter().any(|e| e.scope == scope && e.key == key && e.version == version) {
        return Err(twirp_err(
            409,
            "already_exists",
            &format!("cache entry with the same key, version, and scope already exists: {key}"),
        ));
    }
    let blob = format!("entries/{}", st.entries.len() + 1);
    st.entries.push(Entry {
        scope,
        key: key.into(),
        version: version.into(),
        blob: blob.clone(),
        size: 0,
        committed: false,
        chunks: Vec::new(),
    });
    Ok(blob)
}

/// Commits the reserved `key` once its blob is in Azurite with `size` bytes.
fn finalize(
    ctx: &Ctx,
    write_scope: Option<String>,
    key: &str,
    version: &str,
    size: u64,
    blob: Option<&str>,
) -> Result<usize, Answer> {
    let scope = write_scope.unwrap_or_default();
    let found = ctx.state.lock().expect("state").entries.iter().position(|e| {
        e.scope == scope && e.key == key && e.version == version && !e.committed && blob.is_none_or(|b| e.blob == b)
    });
    let Some(i) = found else {
        return Err(twirp_err(404, "not_found", &format!("no cache entry reserved for {key}")));
    };
    let name = ctx.state.lock().expect("state").entries[i].blob.clone();
    let (st, got) = azure(ctx.azurite_port, "GET", &format!("/{CONTAINER}/{name}"), "", &[]);
    if st != 200 || got.len() as u64 != size {
        return Err(twirp_err(
            400,
            "invalid_argument",
            &format!("the blob of {key} has {} bytes (HTTP {st}), the upload says {size}", got.len()),
        ));
    }
    let mut s = ctx.state.lock().expect("state");
    s.entries[i].committed = true;
    s.entries[i].size = size;
    s.entries[i].chunks.clear();
    Ok(i + 1)
}

/// The entry `keys` select in `scopes` (in order): `keys[0]` exactly, else the newest entry whose
/// key starts with one of `keys`, of the same version.
fn find(ctx: &Ctx, scopes: &[String], keys: &[String], version: &str) -> Option<Entry> {
    let st = ctx.state.lock().ok()?;
    for scope in scopes {
        let here = |e: &&Entry| e.committed && &e.scope == scope && e.version == version;
        if let Some(e) = st.entries.iter().filter(here).find(|e| Some(&e.key) == keys.first()) {
            return Some(e.clone());
        }
        for k in keys {
            if let Some(e) = st.entries.iter().filter(here).rev().find(|e| e.key.starts_with(k.as_str())) {
                return Some(e.clone());
            }
        }
    }
    None
}
