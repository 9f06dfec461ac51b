//! The build cache in GitHub Actions' cache service (`--cache-to/--cache-from type=gha`), laid
//! out as BuildKit's gha cache (cache/remotecache/gha/gha.go): every blob under the key
//! `buildkit-blob-1-sha256:<hex>` (saved once: a key's content never changes), and the cache's
//! config under the mutable index key `index-<scope>-1-<8 hex of the SHA-256 of the token's
//! write scope>` (saved as `KEY#1`, `KEY#2`..., the newest read back). The config is slipway's
//! own ([`super::cache::CacheConfig`]), as BuildKit's index is its own cache config. Import reads
//! the index of every scope the token may read (the branch's, the default branch's) and merges
//! them, as BuildKit's importer does. This file reads the attributes and decides the keys;
//! `src/gha/` speaks to the service.

use super::cache::CacheConfig;
use super::error::RegistryError;
use crate::gha::token::Token;
use crate::gha::Cache;
use crate::registry::client::Body;
use crate::s3::credentials::Env;
use crate::store::image::Descriptor;
use crate::store::Store;
use sha2::Digest;
use std::time::Duration;

/// `type=gha`'s attributes, resolved (environment included).
#[derive(Clone, PartialEq, Eq)]
pub struct GhaSpec {
    /// `scope=` (default `buildkit`): the cache's name inside the token's scope.
    pub scope: String,
    pub url: String,
    pub v2: bool,
    pub timeout: Duration,
    token: Token,
    /// `ghtoken` + `repository`, with the REST API's URL: the blob keys are listed once.
    listing: Option<Listing>,
}

/// What BuildKit's exporter needs to list the cache's keys through GitHub's REST API.
#[derive(Clone, PartialEq, Eq)]
struct Listing {
    api_url: String,
    repository: String,
    ghtoken: String,
}

impl std::fmt::Debug for GhaSpec {
    // the token never reaches a log
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GhaSpec({self})")
    }
}

impl std::fmt::Display for GhaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gha {} (v{}) scope {}", self.url, if self.v2 { 2 } else { 1 }, self.scope)
    }
}

/// The attributes `type=gha` takes (besides `mode`, `ignore-error` and `cache-mounts`).
pub const ATTRS: &[&str] = &["scope", "token", "url", "url_v2", "version", "timeout", "ghtoken", "repository"];

/// BuildKit's key version (gha.go `version`).
const VERSION: &str = "1";

/// The key of a blob: `buildkit-blob-1-<digest>`.
pub fn blob_key(digest: &str) -> String {
    format!("buildkit-blob-{VERSION}-{digest}")
}

/// Reads `type=gha`'s attributes (`attrs`: only those of [`ATTRS`]) as buildx completes them from
/// the environment `env` (build/opt.go addGithubToken: `$ACTIONS_RUNTIME_TOKEN`,
/// `$ACTIONS_CACHE_URL`, `$ACTIONS_RESULTS_URL`, `$ACTIONS_CACHE_SERVICE_V2`) and BuildKit's
/// getConfig reads them, the token's claims read at `now` (Unix seconds). With `ghtoken` and
/// `repository` the REST API is `$GITHUB_API_URL` (a runner's; BuildKit always asks
/// api.github.com), else `https://api.github.com`.
pub fn parse(attrs: &[(String, String)], env: Env, now: i64) -> Result<GhaSpec, String> {
    let get = |k: &str| attrs.iter().rev().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    // buildx: the version the environment says only picks url_v2 from it
    let env_v2 = get("version").is_none()
        && env("ACTIONS_CACHE_SERVICE_V2").and_then(|v| crate::gobool::parse(&v)).unwrap_or(false);
    let token = get("token").or_else(|| env("ACTIONS_RUNTIME_TOKEN"));
    let url_v2 = get("url_v2").or_else(|| if env_v2 { env("ACTIONS_RESULTS_URL") } else { None });
    let url1 = get("url").or_else(|| env("ACTIONS_CACHE_URL")).or_else(|| env("ACTIONS_RESULTS_URL"));
    // BuildKit's getConfig, in its words
    let scope = get("scope").unwrap_or_else(|| "buildkit".into());
    let token =
        token.ok_or("token not set for github actions cache ($ACTIONS_RUNTIME_TOKEN outside GitHub Actions)")?;
    let mut version: i64 = match get("version") {
        None => 0,
        Some(v) => v.parse().map_err(|_| format!("failed to parse api version {v:?}, expected positive integer"))?,
    };
    let mut url = None;
    if version != 1 {
        if let Some(u) = url_v2 {
            url = Some(u);
            version = 2;
        }
    }
    let url = url.or(url1).filter(|u| !u.is_empty()).ok_or("url not set for github actions cache")?;
    if version == 0 {
        // "best effort on old clients"
        version = if url.contains("results-receiver.actions.githubusercontent.com") { 2 } else { 1 };
    }
    let timeout = match get("timeout") {
        None => Duration::from_secs(600),
        Some(v) => match super::cache_s3::go_duration(&v) {
            Some(ns) => Duration::from_nanos(ns.max(0) as u64),
            None => return Err(format!("failed to parse timeout for github actions cache: invalid duration {v:?}")),
        },
    };
    // BuildKit lists the keys only when both are given and ignores one alone: refused here
    let listing = match (get("ghtoken").filter(|v| !v.is_empty()), get("repository").filter(|v| !v.is_empty())) {
        (Some(ghtoken), Some(repository)) => {
            if repository.split('/').count() != 2 || repository.split('/').any(str::is_empty) {
                return Err(format!("repository={repository}: expected OWNER/NAME"));
            }
            let api_url = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
            Some(Listing { api_url, repository, ghtoken })
        }
        (None, None) => None,
        (Some(_), None) => return Err("ghtoken without repository (the REST API lists a repository's caches)".into()),
        (None, Some(_)) => return Err("repository without ghtoken (the REST API needs a GitHub token)".into()),
    };
    let token = Token::parse(&token, now)?;
    Ok(GhaSpec { scope, url, v2: version > 1, timeout, token, listing })
}

impl GhaSpec {
    /// The index key of the cache in the token's scope `scope` (gha.go indexKey).
    pub fn index_key(&self, scope: &str) -> String {
        let h = hex::encode(sha2::Sha256::digest(scope.as_bytes()));
        format!("index-{}-{VERSION}-{}", self.scope, &h[..8])
    }

    pub fn connect(&self) -> Result<Cache, RegistryError> {
        Ok(Cache::new(self.token.clone(), &self.url, self.v2, self.timeout)?)
    }
}

/// The service as the store of a cache's blobs, looked up by key.
pub struct Service(pub Cache);

/// Saves the blobs `blobs` of the store (those the service lacks), then the cache config as the
/// newest value of the index key of the token's write scope.
pub fn export(
    store: &Store,
    s: &GhaSpec,
    blobs: &[Descriptor],
    config: &[u8],
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), RegistryError> {
    let c = s.connect()?;
    // ghtoken + repository: the keys the service has, listed once (BuildKit logs a failed
    // listing and looks each blob up instead: a warning here)
    let listed = s.listing.as_ref().and_then(|l| {
        let r = crate::gha::client::RestApi::new(&l.api_url, &l.repository, &l.ghtoken)
            .and_then(|api| c.all_keys(&api, &blob_key("")));
        match r {
            Ok(keys) => {
                log(&format!("gha: {} cache key(s) listed in {}", keys.len(), l.repository));
                Some(keys)
            }
            Err(e) => {
                log(&format!("WARNING: listing the cache keys of {}: {e}; each blob is looked up", l.repository));
                None
            }
        }
    });
    let sent = std::sync::atomic::AtomicUsize::new(0);
    super::blob::parallel(blobs, 4, |d| {
        let key = blob_key(&d.digest);
        // a restore-key match of a longer key is not this blob
        let there = match &listed {
            Some(keys) => keys.contains(&key),
            None => c.load(&[&key])?.is_some_and(|e| e.key == key),
        };
        if there {
            return Ok(());
        }
        let path = store.blob_path(&d.digest);
        let len = std::fs::metadata(&path).map_err(|err| RegistryError::Io { path: path.clone(), err })?.len();
        // false: another build saved it meanwhile (a key is written once)
        if c.save(&key, &Body::File { path: &path, offset: 0, len }, len)? {
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    })?;
    let index = s.index_key(c.token.write_scope());
    // BuildKit waits 15 s for a key another build holds before taking the next number
    c.save_mutable(&index, config, Duration::from_secs(15))?;
    let n = sent.into_inner();
    log(&format!("gha {}: {n} blob(s) saved, {} already there; index {index}", s.url, blobs.len() - n));
    Ok(())
}

/// The cache configs of the index of every scope of the token, merged (the first scope's steps
/// first); when none has one that is said (a warning to the build; BuildKit takes it as an
/// empty cache).
pub fn import(s: &GhaSpec) -> Result<(Vec<u8>, Service), RegistryError> {
    let c = Service(s.connect()?);
    let origin = super::objects::Objects::origin(&c);
    let mut merged: Option<CacheConfig> = None;
    let keys: Vec<String> = c.0.token.scopes.iter().map(|sc| s.index_key(&sc.scope)).collect();
    for key in &keys {
        let Some(bytes) = super::objects::Objects::get_small(&c, key, 64 << 20)? else { continue };
        let one: CacheConfig = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            registry: origin.clone(),
            what: format!("cache index {key}"),
            why: e.to_string(),
        })?;
        match merged.as_mut() {
            None => merged = Some(one),
            Some(m) => m.merge(one),
        }
    }
    let Some(m) = merged else {
        return Err(RegistryError::Invalid {
            registry: origin,
            what: format!("cache index {}", keys.join(";")),
            why: "no such key: nothing exported in the token's scopes yet".into(),
        });
    };
    let bytes = serde_json::to_vec(&m).map_err(|e| RegistryError::Invalid {
        registry: origin,
        what: "cache config".into(),
        why: e.to_string(),
    })?;
    Ok((bytes, c))
}

impl super::objects::Objects for Service {
    fn origin(&self) -> String {
        format!("GitHub cache service {}", self.0.base_url())
    }
    fn missing(&self) -> &'static str {
        "no such key in the GitHub cache"
    }
    fn url(&self, key: &str) -> String {
        format!("{} key {key}", self.0.base_url())
    }
    /// The newest entry of `key` (an index's `KEY#N`; a blob's key exactly). A download URL
    /// that Azure refuses (401/403: it expired) is asked for again once, as go-actions-cache.
    fn get(&self, key: &str, offset: u64) -> Result<Option<super::objects::Download>, RegistryError> {
        let lookup = || -> Result<Option<crate::gha::client::Entry>, RegistryError> {
            let Some(e) = self.0.load(&[key])? else { return Ok(None) };
            let mutable = e.key.strip_prefix(key).and_then(|r| r.strip_prefix('#')).is_some();
            Ok(Some(e).filter(|e| e.key == key || (mutable && key.starts_with("index-"))))
        };
        let Some(e) = lookup()? else { return Ok(None) };
        match self.0.download(&e, offset) {
            Err(crate::gha::GhaError::Azure(crate::azblob::AzError::Status { status: 401 | 403, .. })) => {
                let Some(e) = lookup()? else { return Ok(None) };
                Ok(self.0.download(&e, offset)?)
            }
            r => Ok(r?),
        }
    }
    fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RegistryError> {
        let Some((r, _)) = self.get(key, 0)? else { return Ok(None) };
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(r, limit + 1), &mut out).map_err(|e| {
            RegistryError::Transport {
                registry: self.origin(),
                op: format!("GET {}", self.url(key)),
                why: e.to_string(),
            }
        })?;
        if out.len() as u64 > limit {
            return Err(RegistryError::Invalid {
                registry: self.origin(),
                what: self.url(key),
                why: format!("more than {limit} bytes"),
            });
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::cache_s3::tests::{attrs, no_env};
    use base64::Engine as _;

    fn jwt(ac: &str) -> String {
        let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let claims = serde_json::json!({"ac": ac, "exp": 2000, "nbf": 1000});
        format!("{}.{}.{}", e(br#"{"alg":"HS256"}"#), e(claims.to_string().as_bytes()), e(b"s"))
    }

    #[test]
    fn attributes_as_buildx_and_buildkit_read_them() {
        let t = jwt(r#"[{"Scope":"refs/heads/main","Permission":3}]"#);
        let s = parse(&attrs(&format!("token={t},url=https://cache.example/abc/")), &no_env, 1500).unwrap();
        assert_eq!((s.scope.as_str(), s.v2, s.timeout), ("buildkit", false, Duration::from_secs(600)));
        assert!(!format!("{s:?} {s}").contains(&t));
        // gha.go's keys: sha256("refs/heads/main")[:8]
        let h = &hex::encode(sha2::Sha256::digest(b"refs/heads/main"))[..8];
        assert_eq!(s.index_key("refs/heads/main"), format!("index-buildkit-1-{h}"));
        assert_eq!(s.index_key(""), "index-buildkit-1-e3b0c442");
        assert_eq!(blob_key("sha256:ab"), "buildkit-blob-1-sha256:ab");
        // url_v2 wins unless version=1; the results host guesses v2
        let both = format!("token={t},url=https://u1,url_v2=https://u2,scope=s,timeout=1m30s");
        let s = parse(&attrs(&both), &no_env, 1500).unwrap();
        assert_eq!((s.url.as_str(), s.v2, s.timeout), ("https://u2", true, Duration::from_secs(90)));
        let s = parse(&attrs(&format!("{both},version=1")), &no_env, 1500).unwrap();
        assert_eq!((s.url.as_str(), s.v2), ("https://u1", false));
        let s = parse(
            &attrs(&format!("token={t},url=https://results-receiver.actions.githubusercontent.com/")),
            &no_env,
            1500,
        )
        .unwrap();
        assert!(s.v2);
        // buildx's environment: url_v2 from ACTIONS_RESULTS_URL only with ACTIONS_CACHE_SERVICE_V2
        let tk = t.clone();
        let env = move |k: &str| match k {
            "ACTIONS_RUNTIME_TOKEN" => Some(tk.clone()),
            "ACTIONS_RESULTS_URL" => Some("https://results.example/".to_string()),
            "ACTIONS_CACHE_URL" => Some("https://v1.example/".to_string()),
            "ACTIONS_CACHE_SERVICE_V2" => Some("true".to_string()),
            _ => None,
        };
        let s = parse(&[], &env, 1500).unwrap();
        assert_eq!((s.url.as_str(), s.v2), ("https://results.example/", true));
        let s = parse(&attrs("version=1"), &env, 1500).unwrap();
        assert_eq!((s.url.as_str(), s.v2), ("https://v1.example/", false));
        for (bad, want) in [
            ("url=https://u".to_string(), "token not set for github actions cache"),
            (format!("token={t}"), "url not set for github actions cache"),
            (format!("token={t},url=https://u,version=x"), "failed to parse api version \"x\""),
            (format!("token={t},url=https://u,timeout=10"), "failed to parse timeout"),
            (format!("token={t},url=https://u,ghtoken=g"), "ghtoken without repository"),
            (format!("token={t},url=https://u,repository=o/r"), "repository without ghtoken"),
            (format!("token={t},url=https://u,ghtoken=g,repository=o"), "expected OWNER/NAME"),
            ("token=abc,url=https://u".to_string(), "token is malformed"),
        ] {
            let e = parse(&attrs(&bad), &no_env, 1500).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        assert!(parse(&attrs(&format!("token={t},url=https://u")), &no_env, 2001).unwrap_err().contains("expired"));
        // the REST API: api.github.com unless the runner says otherwise (GitHub Enterprise)
        let s = parse(&attrs(&format!("token={t},url=https://u,ghtoken=g,repository=o/r")), &no_env, 1500).unwrap();
        assert_eq!(s.listing.as_ref().map(|l| l.api_url.as_str()), Some("https://api.github.com"));
        assert!(!format!("{s:?}").contains(",g,"));
    }
}
