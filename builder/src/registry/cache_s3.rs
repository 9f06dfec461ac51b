//! The build cache in an S3 bucket (`--cache-to/--cache-from type=s3`), laid out as BuildKit's
//! s3 cache (cache/remotecache/s3/s3.go): every blob under `{prefix}{blobs_prefix}sha256:<hex>`
//! and, per `name`, the cache's config under `{prefix}{manifests_prefix}{name}`. The config is
//! slipway's own (the steps and the blobs they need, [`super::cache::CacheConfig`]), as BuildKit's
//! object is its own cache config: its keys are BuildKit's LLB digests, ours slipway's step keys.
//! A blob already in the bucket is not sent again; one older than `touch_refresh` is copied onto
//! itself so a lifecycle rule does not expire it. This file reads the attributes and moves the
//! objects; `src/s3/` signs and sends the requests.

use super::error::RegistryError;
use crate::s3::profile::SharedConfig;
use crate::s3::{credentials, Bucket, Credentials, Endpoint};
use crate::store::image::Descriptor;
use crate::store::Store;

/// `type=s3`'s attributes, resolved (environment included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Spec {
    pub bucket: String,
    pub region: String,
    /// `name=a;b`: export writes each; import reads the first (as BuildKit).
    pub names: Vec<String>,
    pub prefix: String,
    pub blobs_prefix: String,
    pub manifests_prefix: String,
    /// `endpoint_url` (and `use_path_style`); None: the SDK's configured endpoint
    /// (`AWS_ENDPOINT_URL_S3`, the profile's, `AWS_ENDPOINT_URL`), else AWS's for the region.
    pub endpoint: Option<Endpoint>,
    /// `access_key_id`+`secret_access_key`(+`session_token`); else the environment's.
    pub creds: Option<Credentials>,
    pub upload_parallelism: usize,
    /// `touch_refresh` in nanoseconds (Go's time.Duration; default 24h).
    pub touch_refresh_ns: i64,
    /// `retry_max_attempts` (default 3, the SDK's standard mode).
    pub attempts: u32,
}

/// The attributes `type=s3` takes (besides `mode`, `ignore-error` and `cache-mounts`).
pub const ATTRS: &[&str] = &[
    "bucket",
    "region",
    "name",
    "prefix",
    "blobs_prefix",
    "manifests_prefix",
    "touch_refresh",
    "endpoint_url",
    "use_path_style",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "upload_parallelism",
    "disable_accept_encoding",
    "retry_mode",
    "retry_max_attempts",
];

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]` then one or more `NUMBER[.FRACTION]UNIT`
/// (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); `0` alone is zero.
pub fn go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}

/// Reads `type=s3`'s attributes (`attrs`: only those of [`ATTRS`]) as BuildKit's getConfig, with
/// the environment `env` (`AWS_BUCKET`, `AWS_REGION`). BuildKit ignores a value it cannot parse
/// (`touch_refresh`, `use_path_style`, `disable_accept_encoding`); slipway refuses it by name.
pub fn parse(attrs: &[(String, String)], env: credentials::Env) -> Result<S3Spec, String> {
    let get = |k: &str| attrs.iter().rev().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let boolean = |k: &str| -> Result<Option<bool>, String> {
        match get(k) {
            None => Ok(None),
            Some(v) => {
                crate::gobool::parse(&v).map(Some).ok_or_else(|| format!("{k}={v}: expected a boolean (true or false)"))
            }
        }
    };
    let positive = |k: &str, default: usize| -> Result<usize, String> {
        match get(k) {
            None => Ok(default),
            // BuildKit's words
            Some(v) => {
                v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{k} must be a positive integer"))
            }
        }
    };
    let bucket = get("bucket")
        .or_else(|| env("AWS_BUCKET"))
        .ok_or_else(|| "bucket ($AWS_BUCKET) not set for s3 cache".to_string())?;
    if bucket.is_empty() || bucket.contains('/') {
        return Err(format!("bucket={bucket:?}: not a bucket name"));
    }
    let region = get("region")
        .or_else(|| env("AWS_REGION"))
        .ok_or_else(|| "region ($AWS_REGION) not set for s3 cache".to_string())?;
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("region={region:?}: not a region name"));
    }
    let names: Vec<String> = match get("name") {
        None => vec!["buildkit".into()],
        Some(n) => n.split(';').map(str::to_string).collect(),
    };
    if names.iter().any(String::is_empty) {
        return Err("name: an empty name (names are separated by ';')".into());
    }
    let touch_refresh_ns = match get("touch_refresh") {
        None => 24 * 3600 * 1_000_000_000,
        Some(v) => {
            go_duration(&v).ok_or_else(|| format!("touch_refresh={v}: expected a Go duration (24h, 90m, 1h30m)"))?
        }
    };
    let path_style = boolean("use_path_style")?;
    let endpoint = match get("endpoint_url").filter(|u| !u.is_empty()) {
        Some(u) => Some(Endpoint::parse(&u, path_style.unwrap_or(false))?),
        // BuildKit sets path style only with an endpoint: refused rather than ignored
        None if path_style == Some(true) => return Err("use_path_style=true needs endpoint_url".into()),
        None => None,
    };
    // slipway never sends Accept-Encoding, so the header GCS re-writes is never signed: either
    // value gives what disable_accept_encoding=true asks for
    boolean("disable_accept_encoding")?;
    match get("retry_mode").as_deref() {
        None | Some("standard") => {}
        Some("adaptive") => {
            return Err("retry_mode=adaptive: slipway retries as the SDK's standard mode (backoff, no client-side rate limiting); use retry_mode=standard".into())
        }
        // BuildKit's words
        Some(_) => return Err("retry_mode must be \"standard\" or \"adaptive\"".into()),
    }
    let attempts = positive("retry_max_attempts", 3)? as u32;
    let upload_parallelism = positive("upload_parallelism", 4)?;
    let key = get("access_key_id").filter(|v| !v.is_empty());
    let secret = get("secret_access_key").filter(|v| !v.is_empty());
    let token = get("session_token").filter(|v| !v.is_empty());
    let creds = match (key, secret) {
        (Some(k), Some(s)) => Some(Credentials { access_key_id: k, secret_access_key: s, session_token: token }),
        (None, None) if token.is_none() => None,
        // BuildKit then falls back to the SDK's chain, dropping what was given: refused
        (Some(_), None) => return Err("access_key_id needs secret_access_key".into()),
        (None, Some(_)) => return Err("secret_access_key needs access_key_id".into()),
        (None, None) => return Err("session_token needs access_key_id and secret_access_key".into()),
    };
    Ok(S3Spec {
        bucket,
        region,
        names,
        prefix: get("prefix").unwrap_or_default(),
        blobs_prefix: get("blobs_prefix").unwrap_or_else(|| "blobs/".into()),
        manifests_prefix: get("manifests_prefix").unwrap_or_else(|| "manifests/".into()),
        endpoint,
        creds,
        upload_parallelism,
        touch_refresh_ns,
        attempts,
    })
}

impl S3Spec {
    pub fn blob_key(&self, digest: &str) -> String {
        format!("{}{}{digest}", self.prefix, self.blobs_prefix)
    }

    pub fn manifest_key(&self, name: &str) -> String {
        format!("{}{}{name}", self.prefix, self.manifests_prefix)
    }

    /// The client, with the endpoint and the credentials resolved now (attributes, then the
    /// SDK's chain: environment, shared files, STS, container and instance endpoints).
    pub fn connect(&self) -> Result<Bucket, RegistryError> {
        self.connect_with(&credentials::process_env)
    }

    fn connect_with(&self, env: credentials::Env) -> Result<Bucket, RegistryError> {
        let cfg = SharedConfig::load(env)?;
        let profile = credentials::profile_name(env);
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => match cfg.endpoint_url(&profile, "s3", env) {
                // as BaseEndpoint without UsePathStyle: path style only where the rules say
                Some(u) => Endpoint::parse(&u, false).map_err(|e| {
                    crate::s3::S3Error::Config(format!("the configured S3 endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or profile [{profile}]): {e}"))
                })?,
                None => Endpoint::aws(&self.region),
            },
        };
        let source = credentials::plan(self.creds.as_ref(), env, &cfg)?;
        let cx = credentials::Context {
            region: &self.region,
            sts: credentials::sts_endpoint(&cfg, &profile, &self.region, env),
        };
        let creds = credentials::fetch(&source, &cx)?;
        Ok(Bucket::new(&self.bucket, &self.region, endpoint, creds, self.attempts)?)
    }
}

impl std::fmt::Display for S3Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self.names.iter().map(|n| self.manifest_key(n)).collect();
        write!(f, "s3://{}/{}", self.bucket, keys.join(";"))
    }
}

/// Now in nanoseconds (Last-Modified has whole seconds; BuildKit compares with time.Since, so
/// `touch_refresh=0s` refreshes every blob).
fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Uploads the blobs `blobs` of the store (those the bucket lacks; refreshes those older than
/// `touch_refresh`), `upload_parallelism` at a time, then the cache config under every name.
pub fn export(
    store: &Store,
    s: &S3Spec,
    blobs: &[Descriptor],
    config: &[u8],
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), RegistryError> {
    let b = s.connect()?;
    let sent = std::sync::atomic::AtomicUsize::new(0);
    super::blob::parallel(blobs, s.upload_parallelism, |d| {
        let key = s.blob_key(&d.digest);
        if let Some(h) = b.head(&key)? {
            let age_ns = now_ns() - h.modified.unwrap_or(0).saturating_mul(1_000_000_000);
            if age_ns > s.touch_refresh_ns {
                b.touch(&key, h.size)?;
            }
            return Ok(());
        }
        let path = store.blob_path(&d.digest);
        let len = std::fs::metadata(&path).map_err(|err| RegistryError::Io { path: path.clone(), err })?.len();
        let hex = d.digest.trim_start_matches("sha256:");
        b.put_file(&key, &path, len, hex, &d.media_type)?;
        sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    })?;
    for name in &s.names {
        b.put_bytes(&s.manifest_key(name), config, super::cache::MT_CACHE_CONFIG)?;
    }
    let n = sent.into_inner();
    log(&format!("s3://{}: {n} blob(s) uploaded, {} already there", s.bucket, blobs.len() - n));
    Ok(())
}

/// The cache config under the first name (BuildKit's importer reads only that one).
pub fn import(s: &S3Spec) -> Result<(Vec<u8>, Bucket), RegistryError> {
    let b = s.connect()?;
    let key = s.manifest_key(&s.names[0]);
    match b.get_small(&key, 64 << 20)? {
        Some(bytes) => Ok((bytes, b)),
        // BuildKit takes a missing manifest as an empty cache; said here, as a warning
        None => Err(RegistryError::Invalid {
            registry: format!("s3 bucket {}", s.bucket),
            what: format!("cache {}", b.url(&key)),
            why: "no such key (NoSuchKey): nothing exported under this name yet".into(),
        }),
    }
}

impl super::objects::Objects for Bucket {
    fn origin(&self) -> String {
        format!("s3 bucket {}", self.bucket)
    }
    fn missing(&self) -> &'static str {
        "no such key (NoSuchKey)"
    }
    fn url(&self, key: &str) -> String {
        Bucket::url(self, key)
    }
    fn get(&self, key: &str, offset: u64) -> Result<Option<super::objects::Download>, RegistryError> {
        Ok(Bucket::get(self, key, offset)?)
    }
    fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(Bucket::get_small(self, key, limit)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `k=v,k=v` as the attributes of one cache entry (the other cache types' tests use it too).
    pub fn attrs(s: &str) -> Vec<(String, String)> {
        s.split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    pub fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn durations_as_go_parses_them() {
        for (s, ns) in [
            ("24h", 86_400_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("0", 0),
            ("-2s", -2_000_000_000),
            ("300ms", 300_000_000),
            ("1µs", 1000),
            ("1us", 1000),
        ] {
            assert_eq!(go_duration(s), Some(ns), "{s}");
        }
        for bad in ["", "1", "h", "1d", "1.2.3s", "-", "1h 2m"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn attributes_as_buildkit_reads_them() {
        let s = parse(&attrs("bucket=b,region=eu-west-1"), &no_env).unwrap();
        // BuildKit's defaults
        assert_eq!(s.names, ["buildkit"]);
        assert_eq!(
            (s.prefix.as_str(), s.blobs_prefix.as_str(), s.manifests_prefix.as_str()),
            ("", "blobs/", "manifests/")
        );
        assert_eq!((s.upload_parallelism, s.touch_refresh_ns, s.attempts), (4, 86_400 * 1_000_000_000, 3));
        assert_eq!(s.endpoint, None);
        assert_eq!(s.creds, None);
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(s.blob_key(&d), format!("blobs/{d}"));
        assert_eq!(s.manifest_key("buildkit"), "manifests/buildkit");
        let s = parse(
            &attrs(
                "bucket=b,region=r1,name=main;pr-1,prefix=p/,blobs_prefix=bl/,manifests_prefix=m/,\
                 endpoint_url=http://127.0.0.1:9000,use_path_style=true,access_key_id=K,secret_access_key=S,\
                 session_token=T,upload_parallelism=2,touch_refresh=1h,retry_mode=standard,retry_max_attempts=5,\
                 disable_accept_encoding=true",
            ),
            &no_env,
        )
        .unwrap();
        assert_eq!(s.names, ["main", "pr-1"]);
        assert_eq!(s.blob_key(&d), format!("p/bl/{d}"));
        assert_eq!(s.manifest_key("pr-1"), "p/m/pr-1");
        let e = s.endpoint.as_ref().unwrap();
        assert!(e.path_style && e.authority == "127.0.0.1:9000");
        assert_eq!(s.creds.as_ref().and_then(|c| c.session_token.as_deref()), Some("T"));
        assert_eq!((s.upload_parallelism, s.touch_refresh_ns, s.attempts), (2, 3_600_000_000_000, 5));
        assert_eq!(s.to_string(), "s3://b/p/m/main;p/m/pr-1");
        // the environment gives bucket and region when the attributes do not
        let env = |k: &str| match k {
            "AWS_BUCKET" => Some("eb".to_string()),
            "AWS_REGION" => Some("er".to_string()),
            _ => None,
        };
        let s = parse(&[], &env).unwrap();
        assert_eq!((s.bucket.as_str(), s.region.as_str()), ("eb", "er"));
        assert_eq!(parse(&attrs("bucket=b"), &env).unwrap().bucket, "b");
        for (bad, want) in [
            ("region=r", "bucket ($AWS_BUCKET) not set for s3 cache"),
            ("bucket=b", "region ($AWS_REGION) not set for s3 cache"),
            ("bucket=b,region=r,upload_parallelism=0", "upload_parallelism must be a positive integer"),
            ("bucket=b,region=r,upload_parallelism=x", "upload_parallelism must be a positive integer"),
            ("bucket=b,region=r,retry_max_attempts=0", "retry_max_attempts must be a positive integer"),
            ("bucket=b,region=r,retry_mode=fast", "retry_mode must be \"standard\" or \"adaptive\""),
            ("bucket=b,region=r,retry_mode=adaptive", "retry_mode=adaptive"),
            ("bucket=b,region=r,touch_refresh=1d", "touch_refresh=1d"),
            ("bucket=b,region=r,use_path_style=yes", "use_path_style=yes: expected a boolean"),
            ("bucket=b,region=r,use_path_style=true", "needs endpoint_url"),
            ("bucket=b,region=r,endpoint_url=localhost:9000", "endpoint_url=localhost:9000"),
            ("bucket=b,region=r,access_key_id=K", "access_key_id needs secret_access_key"),
            ("bucket=b,region=r,session_token=T", "session_token needs"),
            ("bucket=b,region=r,name=a;;b", "an empty name"),
            ("bucket=b/c,region=r", "not a bucket name"),
        ] {
            let e = parse(&attrs(bad), &no_env).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
