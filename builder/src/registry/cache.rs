//! Build cache export and import (`--cache-to`, `--cache-from`), to a registry or a local
//! directory, as an ordinary OCI artifact: one OCI image manifest whose `artifactType` is
//! `application/vnd.slipway.buildcache.v1`, whose config blob
//! (`application/vnd.slipway.buildcache.config.v1+json`) lists the steps (cache key, parent,
//! inputs, resulting image config digest and layers: the store's own cache entries), and whose
//! `layers` are every blob those steps need (the image configs and the layer blobs, with their
//! own media types). A registry stores and garbage-collects it like any image, dedups its layers
//! with the images that share them, and mounts them across repositories; `type=local` writes
//! the same artifact into an OCI image layout directory.
//!
//! BuildKit's cache manifest (`application/vnd.buildkit.cacheconfig.v0`) is the same idea: an
//! OCI index or manifest listing layer blobs, with a config describing a graph of cache records
//! (LLB vertex digests -> layer chains). Its keys are BuildKit's LLB digests, ours slipway's
//! step keys, so neither reads the other's; both export every step (`mode=max`, the only mode
//! slipway has: a step's key chains to its parent, so the whole path is needed anyway).

use super::blob;
use super::client::{Client, Options};
use super::error::RegistryError;
use super::pull::{fetch_manifest, fetch_small};
use super::push::push_manifest_and_blobs;
use super::reference::Reference;
use crate::cache::Entry;
use crate::store::image::{self, Descriptor};
use crate::store::ingest::Opened;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const ARTIFACT_TYPE: &str = "application/vnd.slipway.buildcache.v1";
pub const MT_CACHE_CONFIG: &str = "application/vnd.slipway.buildcache.config.v1+json";

/// Where a cache goes to or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    Registry(Reference),
    Local(PathBuf),
}

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Registry(r) => write!(f, "registry {r}"),
            Spec::Local(p) => write!(f, "local {}", p.display()),
        }
    }
}

/// Parses `type=registry,ref=REF` or `type=local,dest=DIR` (`src=DIR` for `--cache-from`);
/// `mode=max` is accepted (it is what slipway does); anything else is refused by name.
pub fn parse_spec(s: &str, export: bool) -> Result<Spec, String> {
    let flag = if export { "--cache-to" } else { "--cache-from" };
    let mut kind = None;
    let mut reference = None;
    let mut dir = None;
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("{flag} {s:?}: {kv:?} is not KEY=VALUE"))?;
        match k {
            "type" => kind = Some(v.to_string()),
            "ref" => reference = Some(v.to_string()),
            "dest" if export => dir = Some(v.to_string()),
            "src" if !export => dir = Some(v.to_string()),
            "mode" if export && v == "max" => {}
            "mode" if export => return Err(format!("{flag} {s:?}: mode={v}: only mode=max is supported")),
            _ => return Err(format!("{flag} {s:?}: unknown key {k:?}")),
        }
    }
    match (kind.as_deref(), reference, dir) {
        (Some("registry"), Some(r), None) => {
            Ok(Spec::Registry(Reference::parse(&r).map_err(|e| format!("{flag} {s:?}: {e}"))?))
        }
        (Some("local"), None, Some(d)) if !d.is_empty() => Ok(Spec::Local(PathBuf::from(d))),
        (Some("registry"), _, _) => Err(format!("{flag} {s:?}: type=registry needs ref=REF")),
        (Some("local"), _, _) => {
            Err(format!("{flag} {s:?}: type=local needs {}=DIR", if export { "dest" } else { "src" }))
        }
        (Some(t), _, _) => Err(format!("{flag} {s:?}: type={t}: expected registry or local")),
        (None, _, _) => Err(format!("{flag} {s:?}: type= is missing")),
    }
}

/// One exported step: the store's cache entry under its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub key: String,
    #[serde(flatten)]
    pub entry: Entry,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheConfig {
    pub steps: Vec<Step>,
}

/// A cache artifact: its config bytes, manifest bytes and blob list (config blob first).
struct Artifact {
    config: Vec<u8>,
    manifest: Vec<u8>,
    blobs: Vec<Descriptor>,
}

/// The artifact for `keys`. Steps without an entry in the store are left out.
fn artifact(store: &Store, keys: &[String]) -> Result<Artifact, RegistryError> {
    let mut steps = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut add = |d: Descriptor| {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d);
        }
    };
    for k in keys {
        if steps.iter().any(|s: &Step| s.key == *k) {
            continue;
        }
        let Some(entry) = store.read_record::<Entry>(&format!("cache/steps/{k}.json")) else { continue };
        let cfg = store.blob_path(&entry.config);
        let size = std::fs::metadata(&cfg).map_err(|err| RegistryError::Io { path: cfg.clone(), err })?.len();
        add(Descriptor {
            media_type: image::MT_CONFIG.into(),
            digest: entry.config.clone(),
            size,
            annotations: Default::default(),
            platform: None,
        });
        for l in &entry.layers {
            add(l.descriptor());
        }
        steps.push(Step { key: k.clone(), entry });
    }
    let config = image::to_json(&CacheConfig { steps });
    let cdesc = Descriptor {
        media_type: MT_CACHE_CONFIG.into(),
        digest: image::digest_of(&config),
        size: config.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": image::MT_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": cdesc,
        "layers": blobs,
    });
    let mbytes = image::to_json(&manifest);
    let mut all = vec![cdesc];
    all.extend(blobs);
    Ok(Artifact { config, manifest: mbytes, blobs: all })
}

/// Exports the cache entries of `keys`; returns the artifact's digest and its step count.
pub fn export(
    store: &Store,
    opts: &Options,
    keys: &[String],
    to: &Spec,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(String, usize), RegistryError> {
    let Artifact { config, manifest, blobs } = artifact(store, keys)?;
    let steps = serde_json::from_slice::<CacheConfig>(&config).map(|c| c.steps.len()).unwrap_or(0);
    store.put_blob(&config)?;
    match to {
        Spec::Registry(r) => {
            let client = Client::connect(&r.registry, opts, None)?;
            let p = push_manifest_and_blobs(store, &client, r, &blobs, &manifest, image::MT_MANIFEST, log)?;
            Ok((p.digest, steps))
        }
        Spec::Local(dir) => {
            let bd = dir.join("blobs/sha256");
            std::fs::create_dir_all(&bd).map_err(|err| RegistryError::Io { path: bd.clone(), err })?;
            for b in &blobs {
                let dst = bd.join(b.digest.trim_start_matches("sha256:"));
                if dst.exists() {
                    continue;
                }
                let tmp = bd.join(format!(".tmp-{}", std::process::id()));
                let src = store.blob_path(&b.digest);
                // a hard link where the directory shares the store's filesystem, else a copy
                if std::fs::hard_link(&src, &dst).is_err() {
                    std::fs::copy(&src, &tmp).map_err(|err| RegistryError::Io { path: src.clone(), err })?;
                    std::fs::rename(&tmp, &dst).map_err(|err| RegistryError::Io { path: dst.clone(), err })?;
                }
            }
            let digest = image::digest_of(&manifest);
            write_file(&bd.join(digest.trim_start_matches("sha256:")), &manifest)?;
            let mut ann = std::collections::BTreeMap::new();
            ann.insert(image::ANN_REF_NAME.to_string(), "cache".to_string());
            let idx = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": image::MT_INDEX,
                "manifests": [{"mediaType": image::MT_MANIFEST, "artifactType": ARTIFACT_TYPE,
                    "digest": digest, "size": manifest.len(), "annotations": ann}],
            });
            write_file(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            write_file(&dir.join("index.json"), &image::to_json(&idx))?;
            log(&format!("exported {steps} cache steps to {}", dir.display()));
            Ok((digest, steps))
        }
    }
}

fn write_file(p: &Path, data: &[u8]) -> Result<(), RegistryError> {
    let tmp = p.with_file_name(format!(".tmp-{}", std::process::id()));
    let res = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(data)).and_then(|_| std::fs::rename(&tmp, p));
    res.map_err(|err| RegistryError::Io { path: p.to_path_buf(), err })
}

/// An imported cache: steps by key, and where their blobs are.
pub struct Imported {
    pub from: Spec,
    steps: HashMap<String, Entry>,
    client: Option<Client>,
}

/// Reads the cache artifact at `from` (its manifest and config; blobs come when a step hits).
pub fn import(opts: &Options, from: &Spec) -> Result<Imported, RegistryError> {
    let (config, client) = match from {
        Spec::Registry(r) => {
            let client = Client::connect(&r.registry, opts, None)?;
            let scopes = vec![super::auth::repo_scope(&r.repository, false)];
            let op = format!("cache import {r}: GET manifest");
            let (_, _, fetched, _) = fetch_manifest(&client, &r.repository, r.api_reference(), &scopes, &op)?;
            let super::manifest::Fetched::Image(m) = fetched else {
                return Err(RegistryError::Invalid {
                    registry: r.registry.clone(),
                    what: format!("cache {r}"),
                    why: "an index, not a slipway cache manifest".into(),
                });
            };
            if m.config.media_type != MT_CACHE_CONFIG {
                return Err(RegistryError::Invalid {
                    registry: r.registry.clone(),
                    what: format!("cache {r}"),
                    why: format!("config type {:?}, not {MT_CACHE_CONFIG}", m.config.media_type),
                });
            }
            let op = format!("cache import {r}: GET config");
            (fetch_small(&client, &r.repository, &m.config, &scopes, &op)?, Some(client))
        }
        Spec::Local(dir) => {
            let bad = |why: String| RegistryError::Io { path: dir.clone(), err: std::io::Error::other(why) };
            let read = |p: PathBuf| std::fs::read(&p).map_err(|err| RegistryError::Io { path: p, err });
            let idx: image::Index =
                serde_json::from_slice(&read(dir.join("index.json"))?).map_err(|e| bad(format!("index.json: {e}")))?;
            let d = idx.manifests.first().ok_or_else(|| bad("index.json lists no cache".into()))?;
            let mb = read(local_blob(dir, &d.digest)?)?;
            if image::digest_of(&mb) != d.digest {
                return Err(bad(format!("manifest {}: digest mismatch", d.digest)));
            }
            let m: image::Manifest = serde_json::from_slice(&mb).map_err(|e| bad(format!("manifest: {e}")))?;
            if m.config.media_type != MT_CACHE_CONFIG {
                return Err(bad(format!("config type {:?}, not {MT_CACHE_CONFIG}", m.config.media_type)));
            }
            let cb = read(local_blob(dir, &m.config.digest)?)?;
            if image::digest_of(&cb) != m.config.digest {
                return Err(bad(format!("cache config {}: digest mismatch", m.config.digest)));
            }
            (cb, None)
        }
    };
    let c: CacheConfig = serde_json::from_slice(&config).map_err(|e| RegistryError::Invalid {
        registry: from.to_string(),
        what: "cache config".into(),
        why: e.to_string(),
    })?;
    Ok(Imported { from: from.clone(), steps: c.steps.into_iter().map(|s| (s.key, s.entry)).collect(), client })
}

fn local_blob(dir: &Path, digest: &str) -> Result<PathBuf, RegistryError> {
    if !super::reference::valid_digest(digest) {
        return Err(RegistryError::Io {
            path: dir.into(),
            err: std::io::Error::other(format!("bad digest {digest:?}")),
        });
    }
    Ok(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:")))
}

impl Imported {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// If the cache has step `key`: brings its blobs into the store (verified) and returns its
    /// entry, for the build to record as its own.
    pub fn fetch(&self, store: &Store, key: &str) -> Result<Option<Entry>, RegistryError> {
        let Some(e) = self.steps.get(key) else { return Ok(None) };
        let cfg = store_config_desc(&e.config);
        let mut blobs = vec![cfg];
        blobs.extend(e.layers.iter().map(|l| l.descriptor()));
        match (&self.from, &self.client) {
            (Spec::Registry(r), Some(client)) => {
                let scopes = vec![super::auth::repo_scope(&r.repository, false)];
                // the config's size is not in the entry: fetch it whole
                if !store.has_blob(&e.config) {
                    let op = format!("cache import {r}: GET config {}", e.config);
                    let b = fetch_config(client, &r.repository, &e.config, &scopes, &op)?;
                    store.put_blob(&b)?;
                }
                blob::parallel(&blobs[1..], blob::PARALLEL, |d| {
                    blob::fetch(client, &r.repository, d, store, &scopes).map(|_| ())
                })?;
                for d in &blobs {
                    blob::remember(store, &d.digest, &r.registry, &r.repository);
                }
            }
            (Spec::Local(dir), _) => {
                for d in &blobs {
                    copy_in(store, dir, &d.digest)?;
                }
            }
            (Spec::Registry(r), None) => {
                return Err(RegistryError::Invalid {
                    registry: r.registry.clone(),
                    what: "cache".into(),
                    why: "no connection".into(),
                })
            }
        }
        Ok(Some(e.clone()))
    }
}

fn store_config_desc(d: &str) -> Descriptor {
    Descriptor {
        media_type: image::MT_CONFIG.into(),
        digest: d.into(),
        size: 0,
        annotations: Default::default(),
        platform: None,
    }
}

fn fetch_config(
    client: &Client,
    repo: &str,
    digest: &str,
    scopes: &[String],
    op: &str,
) -> Result<Vec<u8>, RegistryError> {
    let d = Descriptor { size: 1 << 20, ..store_config_desc(digest) };
    fetch_small(client, repo, &d, scopes, op)
}

/// Copies a blob of a local cache directory into the store, checked against its digest.
fn copy_in(store: &Store, dir: &Path, digest: &str) -> Result<(), RegistryError> {
    if store.has_blob(digest) {
        return Ok(());
    }
    let src = local_blob(dir, digest)?;
    let mut f = std::fs::File::open(&src).map_err(|err| RegistryError::Io { path: src.clone(), err })?;
    let size = f.metadata().map_err(|err| RegistryError::Io { path: src.clone(), err })?.len();
    let mut w = match store.ingest(digest)? {
        Opened::Present => return Ok(()),
        Opened::Writing(w) => w,
    };
    if w.offset() > 0 {
        w.reset()?;
    }
    std::io::copy(&mut f, &mut *w).map_err(|err| RegistryError::Io { path: src.clone(), err })?;
    w.commit(size)
        .map_err(|why| RegistryError::Io { path: src, err: std::io::Error::other(format!("{digest}: {why}")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_spec("type=local,dest=/tmp/c", true).unwrap(), Spec::Local("/tmp/c".into()));
        assert_eq!(parse_spec("type=local,src=/tmp/c", false).unwrap(), Spec::Local("/tmp/c".into()));
        match parse_spec("type=registry,ref=localhost:5000/cache:main,mode=max", true).unwrap() {
            Spec::Registry(r) => assert_eq!(r.to_string(), "localhost:5000/cache:main"),
            s => panic!("{s:?}"),
        }
        for (bad, export, want) in [
            ("type=local,src=/x", true, "unknown key \"src\""),
            ("type=local", false, "src=DIR"),
            ("type=registry", true, "ref=REF"),
            ("type=gha", true, "expected registry or local"),
            ("type=registry,ref=x,mode=min", true, "only mode=max"),
            ("dest=/x", true, "type= is missing"),
            ("type=registry,ref=Bad", false, "invalid reference"),
        ] {
            let e = parse_spec(bad, export).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
