//! The build cache in an Azure Blob Storage container (`--cache-to/--cache-from type=azblob`),
//! laid out as BuildKit's azblob cache (cache/remotecache/azblob/): every blob under
//! `path.Join(prefix, blobs_prefix, "sha256:<hex>")` and, per `name`, the cache's config under
//! `path.Join(prefix, manifests_prefix, name)`, in the container `container` (default
//! `buildkit-cache`, created when missing, as BuildKit does). The config is slipway's own (the
//! steps and the blobs they need, [`super::cache::CacheConfig`]), as BuildKit's blob is its own
//! cache config. A blob already in the container is not sent again. This file reads the
//! attributes and moves the blobs; `src/azblob/` authorizes and sends the requests.

use super::error::RegistryError;
use crate::azblob::client::AccountUrl;
use crate::azblob::{Container, Credential};
use crate::s3::credentials::Env;
use crate::store::image::Descriptor;
use crate::store::Store;

/// `type=azblob`'s attributes, resolved (environment included).
#[derive(Clone, PartialEq, Eq)]
pub struct AzblobSpec {
    pub account_url: AccountUrl,
    pub account_name: String,
    pub container: String,
    /// `name=a;b`: export writes each; import reads each and merges them (as BuildKit).
    pub names: Vec<String>,
    pub prefix: String,
    pub blobs_prefix: String,
    pub manifests_prefix: String,
    /// `secret_access_key`, else the SAS token in `account_url`, else Entra ID's tokens.
    pub credential: Credential,
    pub upload_parallelism: usize,
}

impl std::fmt::Debug for AzblobSpec {
    // the key never reaches a log
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AzblobSpec({self})")
    }
}

/// The attributes `type=azblob` takes (besides `mode`, `ignore-error` and `cache-mounts`).
pub const ATTRS: &[&str] = &[
    "account_url",
    "account_name",
    "container",
    "name",
    "prefix",
    "blobs_prefix",
    "manifests_prefix",
    "secret_access_key",
    "upload_parallelism",
];

/// Go's `path.Join`: the non-empty elements joined by `/`, then cleaned (`.` dropped, `..`
/// taking the element before it, repeated slashes folded); "" when every element is empty.
pub fn go_join(parts: &[&str]) -> String {
    let joined = parts.iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join("/");
    if joined.is_empty() {
        return String::new();
    }
    let rooted = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => match out.last() {
                Some(&l) if l != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            s => out.push(s),
        }
    }
    let s = out.join("/");
    match (rooted, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

/// Reads `type=azblob`'s attributes (`attrs`: only those of [`ATTRS`]) as BuildKit's getConfig,
/// with the environment `env` (`BUILDKIT_AZURE_STORAGE_ACCOUNT_URL`, `_ACCOUNT_NAME`,
/// `_CONTAINER`, `_PREFIX`).
pub fn parse(attrs: &[(String, String)], env: Env) -> Result<AzblobSpec, String> {
    let get = |k: &str| attrs.iter().rev().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let url = get("account_url").or_else(|| env("BUILDKIT_AZURE_STORAGE_ACCOUNT_URL")).ok_or_else(|| {
        // BuildKit's words
        "either ${BUILDKIT_AZURE_STORAGE_ACCOUNT_URL} or account_url attribute is required for azblob cache".to_string()
    })?;
    let (account_url, sas) = AccountUrl::parse(&url)?;
    // BuildKit: the first label of the URL's host (so a path-style emulator URL needs account_name)
    let account_name = get("account_name")
        .or_else(|| env("BUILDKIT_AZURE_STORAGE_ACCOUNT_NAME"))
        .unwrap_or_else(|| account_url.host().split('.').next().unwrap_or("").to_string());
    if account_name.is_empty() {
        return Err("unable to retrieve account name from account url or ${BUILDKIT_AZURE_STORAGE_ACCOUNT_NAME} or account_name attribute for azblob cache".into());
    }
    let container =
        get("container").or_else(|| env("BUILDKIT_AZURE_STORAGE_CONTAINER")).unwrap_or_else(|| "buildkit-cache".into());
    if container.is_empty() {
        return Err("container: an empty container name".into());
    }
    let names: Vec<String> = match get("name") {
        None => vec!["buildkit".into()],
        Some(n) => n.split(';').map(str::to_string).collect(),
    };
    if names.iter().any(String::is_empty) {
        return Err("name: an empty name (names are separated by ';')".into());
    }
    let upload_parallelism = match get("upload_parallelism") {
        None => 4,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "upload_parallelism must be a positive integer".to_string())?,
    };
    // BuildKit: Shared Key when secret_access_key is given, else azidentity's
    // DefaultAzureCredential (an SAS in the URL rides along, but a token is still needed there);
    // slipway takes an SAS token alone as enough, and refuses it beside a key (one or the other)
    let credential = match (get("secret_access_key").filter(|k| !k.is_empty()), sas) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "account_url={}: an SAS token and secret_access_key: give one of them",
                crate::azblob::client::redact(&url)
            ))
        }
        (Some(k), None) => Credential::SharedKey(k),
        (None, Some(q)) => Credential::Sas(q),
        (None, None) => Credential::Entra(crate::azblob::entra::plan(env)?),
    };
    if matches!(credential, Credential::Entra(_)) && account_url.scheme != "https" {
        return Err(format!(
            "account_url={url}: without secret_access_key or an SAS token, slipway authorizes with OAuth tokens (Azure's default credential chain), which go over https only"
        ));
    }
    Ok(AzblobSpec {
        account_url,
        account_name,
        container,
        names,
        prefix: get("prefix").or_else(|| env("BUILDKIT_AZURE_STORAGE_PREFIX")).unwrap_or_default(),
        blobs_prefix: get("blobs_prefix").unwrap_or_else(|| "blobs".into()),
        manifests_prefix: get("manifests_prefix").unwrap_or_else(|| "manifests".into()),
        credential,
        upload_parallelism,
    })
}

impl AzblobSpec {
    pub fn blob_key(&self, digest: &str) -> String {
        go_join(&[&self.prefix, &self.blobs_prefix, digest])
    }

    pub fn manifest_key(&self, name: &str) -> String {
        go_join(&[&self.prefix, &self.manifests_prefix, name])
    }

    /// The container's client, the container made if missing (as BuildKit's
    /// createContainerClient, on export and on import alike).
    pub fn connect(&self, log: &(dyn Fn(&str) + Sync)) -> Result<Container, RegistryError> {
        let c = Container::with_credential(
            self.account_url.clone(),
            &self.account_name,
            &self.container,
            &self.credential,
        )?;
        if c.ensure()? {
            log(&format!("azblob: created the container {}", self.container));
        }
        Ok(c)
    }

    fn origin(&self) -> String {
        format!("azure container {}", self.container)
    }
}

impl std::fmt::Display for AzblobSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let u = &self.account_url;
        let keys: Vec<String> = self.names.iter().map(|n| self.manifest_key(n)).collect();
        write!(f, "{}://{}{}/{}/{}", u.scheme, u.authority, u.path, self.container, keys.join(";"))
    }
}

/// Uploads the blobs `blobs` of the store (those the container lacks), `upload_parallelism` at
/// a time, then the cache config under every name (replacing what was there).
pub fn export(
    store: &Store,
    s: &AzblobSpec,
    blobs: &[Descriptor],
    config: &[u8],
    log: &(dyn Fn(&str) + Sync),
) -> Result<(), RegistryError> {
    let c = s.connect(log)?;
    let sent = std::sync::atomic::AtomicUsize::new(0);
    super::blob::parallel(blobs, s.upload_parallelism, |d| {
        let key = s.blob_key(&d.digest);
        if c.head(&key)?.is_some() {
            return Ok(());
        }
        let path = store.blob_path(&d.digest);
        let len = std::fs::metadata(&path).map_err(|err| RegistryError::Io { path: path.clone(), err })?.len();
        // If-None-Match: * as BuildKit: one another build wrote meanwhile is kept
        if c.put_file(&key, &path, len, &d.media_type)? {
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    })?;
    for name in &s.names {
        c.put_bytes(&s.manifest_key(name), config, super::cache::MT_CACHE_CONFIG)?;
    }
    let n = sent.into_inner();
    log(&format!("azblob {}: {n} blob(s) uploaded, {} already there", s.container, blobs.len() - n));
    Ok(())
}

/// The cache configs under every name, merged (BuildKit's importer loads each name and
/// combines them, the first name's steps first); a name with nothing under it adds nothing, as
/// in BuildKit, and when none has anything that is said (a warning to the build).
pub fn import(s: &AzblobSpec, log: &(dyn Fn(&str) + Sync)) -> Result<(Vec<u8>, Container), RegistryError> {
    let c = s.connect(log)?;
    let mut merged: Option<super::cache::CacheConfig> = None;
    for name in &s.names {
        let key = s.manifest_key(name);
        let Some(bytes) = c.get_small(&key, 64 << 20)? else { continue };
        let one: super::cache::CacheConfig = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
            registry: s.origin(),
            what: format!("cache config {}", c.url(&key)),
            why: e.to_string(),
        })?;
        match merged.as_mut() {
            None => merged = Some(one),
            Some(m) => m.merge(one),
        }
    }
    match merged {
        Some(m) => {
            let bytes = serde_json::to_vec(&m).map_err(|e| RegistryError::Invalid {
                registry: s.origin(),
                what: "cache config".into(),
                why: e.to_string(),
            })?;
            Ok((bytes, c))
        }
        // BuildKit takes a missing manifest as an empty cache; said here, as a warning
        None => {
            let keys: Vec<String> = s.names.iter().map(|n| c.url(&s.manifest_key(n))).collect();
            Err(RegistryError::Invalid {
                registry: s.origin(),
                what: format!("cache {}", keys.join(";")),
                why: "no such blob (BlobNotFound): nothing exported under this name yet".into(),
            })
        }
    }
}

impl super::objects::Objects for Container {
    fn origin(&self) -> String {
        format!("azure container {}", self.container)
    }
    fn missing(&self) -> &'static str {
        "no such blob (BlobNotFound)"
    }
    fn url(&self, key: &str) -> String {
        Container::url(self, key)
    }
    fn get(&self, key: &str, offset: u64) -> Result<Option<super::objects::Download>, RegistryError> {
        Ok(Container::get(self, key, offset)?)
    }
    fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RegistryError> {
        Ok(Container::get_small(self, key, limit)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(s: &str) -> Vec<(String, String)> {
        s.split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn joins_as_go() {
        for (parts, want) in [
            (&["", "blobs", "sha256:ab"][..], "blobs/sha256:ab"),
            (&["ci/", "blobs/", "sha256:ab"][..], "ci/blobs/sha256:ab"),
            (&["ci", "", "x"][..], "ci/x"),
            (&["a/./b", "../c", "d"][..], "a/c/d"),
            (&["/r", "x"][..], "/r/x"),
            (&["..", "x"][..], "../x"),
            (&["", ""][..], ""),
            (&["a", ".."][..], "."),
        ] {
            assert_eq!(go_join(parts), want, "{parts:?}");
        }
    }

    #[test]
    fn attributes_as_buildkit_reads_them() {
        let key = "a2V5";
        let s =
            parse(&attrs(&format!("account_url=https://acct.blob.core.windows.net,secret_access_key={key}")), &no_env)
                .unwrap();
        // BuildKit's defaults: the account from the host, container buildkit-cache
        assert_eq!((s.account_name.as_str(), s.container.as_str()), ("acct", "buildkit-cache"));
        assert_eq!(s.names, ["buildkit"]);
        assert_eq!(s.upload_parallelism, 4);
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(s.blob_key(&d), format!("blobs/{d}"));
        assert_eq!(s.manifest_key("buildkit"), "manifests/buildkit");
        assert_eq!(s.to_string(), "https://acct.blob.core.windows.net/buildkit-cache/manifests/buildkit");
        assert!(!format!("{s:?}").contains(key));
        let s = parse(
            &attrs(&format!(
                "account_url=http://127.0.0.1:10000/devstoreaccount1,account_name=devstoreaccount1,container=c1,\
                 name=main;pr-1,prefix=p/,blobs_prefix=bl,manifests_prefix=m/,secret_access_key={key},upload_parallelism=2"
            )),
            &no_env,
        )
        .unwrap();
        assert_eq!((s.account_name.as_str(), s.container.as_str()), ("devstoreaccount1", "c1"));
        assert_eq!(s.blob_key(&d), format!("p/bl/{d}"));
        assert_eq!(s.manifest_key("pr-1"), "p/m/pr-1");
        assert_eq!(s.upload_parallelism, 2);
        assert_eq!(s.to_string(), "http://127.0.0.1:10000/devstoreaccount1/c1/p/m/main;p/m/pr-1");
        // the environment, as BuildKit reads it
        let env = |k: &str| match k {
            "BUILDKIT_AZURE_STORAGE_ACCOUNT_URL" => Some("http://127.0.0.1:1/x".to_string()),
            "BUILDKIT_AZURE_STORAGE_ACCOUNT_NAME" => Some("envacct".to_string()),
            "BUILDKIT_AZURE_STORAGE_CONTAINER" => Some("envc".to_string()),
            "BUILDKIT_AZURE_STORAGE_PREFIX" => Some("envp".to_string()),
            _ => None,
        };
        let s = parse(&attrs(&format!("secret_access_key={key}")), &env).unwrap();
        assert_eq!((s.account_name.as_str(), s.container.as_str()), ("envacct", "envc"));
        assert_eq!(s.manifest_key("n"), "envp/manifests/n");
        // the credential: the key, else the URL's SAS token, else Azure's default chain
        assert_eq!(s.credential, Credential::SharedKey(key.into()));
        let s = parse(&attrs("account_url=http://127.0.0.1:1/a/?sv=1&sig=S1G"), &no_env).unwrap();
        assert_eq!(s.credential, Credential::Sas("sv=1&sig=S1G".into()));
        assert!(!format!("{s} {s:?}").contains("S1G"));
        let s = parse(&attrs("account_url=https://a.blob.core.windows.net"), &no_env).unwrap();
        assert!(matches!(&s.credential, Credential::Entra(c) if c.sources.len() == 6));
        for (bad, want) in [
            ("secret_access_key=k", "either ${BUILDKIT_AZURE_STORAGE_ACCOUNT_URL} or account_url"),
            ("account_url=http://a.b", "which go over https only"),
            ("account_url=https://a.b/?sv=1&sig=S1G,secret_access_key=k", "an SAS token and secret_access_key"),
            ("account_url=a.blob.core.windows.net,secret_access_key=k", "account_url=a.blob.core.windows.net"),
            ("account_url=https://a.b,secret_access_key=k,name=a;;b", "an empty name"),
            ("account_url=https://a.b,secret_access_key=k,upload_parallelism=0", "upload_parallelism must be"),
            ("account_url=https://a.b,secret_access_key=k,account_name=", "unable to retrieve account name"),
        ] {
            let e = parse(&attrs(bad), &no_env).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
