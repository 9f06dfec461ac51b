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
//! With `cache-mounts=true` the artifact also carries the content of the cache mounts the
//! build's RUN steps used (`RUN --mount=type=cache`), one gzip tar per cache (media type
//! `application/vnd.slipway.buildcache.mount.v1.tar+gzip`, files in name order with their
//! modes, owners and mtimes, so an unchanged cache is the same blob), listed in the config by
//! id and base; `--cache-from` brings a cache the store does not have into it before the build
//! runs, so CI runners share their package managers' caches (moby/buildkit#1474). The option
//! is named for what it exports: the word `mounts` alone would also cover bind, tmpfs, secret
//! and ssh mounts, and secrets must never leave the build.
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
pub const MT_CACHE_MOUNT: &str = "application/vnd.slipway.buildcache.mount.v1.tar+gzip";

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
    parse(s, export).map(|(spec, _)| spec)
}

/// `--cache-to`: the spec and whether the cache mounts' content goes too (`cache-mounts=true`).
pub fn parse_export(s: &str) -> Result<(Spec, bool), String> {
    parse(s, true)
}

fn parse(s: &str, export: bool) -> Result<(Spec, bool), String> {
    let flag = if export { "--cache-to" } else { "--cache-from" };
    let mut kind = None;
    let mut reference = None;
    let mut dir = None;
    let mut mounts = false;
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("{flag} {s:?}: {kv:?} is not KEY=VALUE"))?;
        match k {
            "type" => kind = Some(v.to_string()),
            "ref" => reference = Some(v.to_string()),
            "dest" if export => dir = Some(v.to_string()),
            "src" if !export => dir = Some(v.to_string()),
            "mode" if export && v == "max" => {}
            "mode" if export => return Err(format!("{flag} {s:?}: mode={v}: only mode=max is supported")),
            "cache-mounts" if export => {
                mounts = match v {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("{flag} {s:?}: cache-mounts={v}: expected true or false")),
                }
            }
            _ => return Err(format!("{flag} {s:?}: unknown key {k:?}")),
        }
    }
    let spec = match (kind.as_deref(), reference, dir) {
        (Some("registry"), Some(r), None) => {
            Spec::Registry(Reference::parse(&r).map_err(|e| format!("{flag} {s:?}: {e}"))?)
        }
        (Some("local"), None, Some(d)) if !d.is_empty() => Spec::Local(PathBuf::from(d)),
        (Some("registry"), _, _) => return Err(format!("{flag} {s:?}: type=registry needs ref=REF")),
        (Some("local"), _, _) => {
            return Err(format!("{flag} {s:?}: type=local needs {}=DIR", if export { "dest" } else { "src" }))
        }
        (Some(t), _, _) => return Err(format!("{flag} {s:?}: type={t}: expected registry or local")),
        (None, _, _) => return Err(format!("{flag} {s:?}: type= is missing")),
    };
    Ok((spec, mounts))
}

/// One exported cache mount: which cache, and the blob with its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountBlob {
    pub id: String,
    pub base: String,
    pub digest: String,
    pub size: u64,
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
    /// Cache mounts' content (`cache-mounts=true`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountBlob>,
}

/// Writes the content of a cache mount's data dir into the store as a gzip tar blob: entries
/// in name order with modes, owners and mtimes (package managers compare mtimes).
fn mount_blob(store: &Store, data: &Path) -> Result<(String, u64), RegistryError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |err: std::io::Error| RegistryError::Io { path, err }
    };
    let tmp = store.tempdir("mount-export")?;
    let out = tmp.path.join("blob");
    let f = std::fs::File::create(&out).map_err(io(&out))?;
    let gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    for e in walkdir::WalkDir::new(data).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| RegistryError::Io { path: data.to_path_buf(), err: std::io::Error::other(e) })?;
        let ft = e.file_type();
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            continue; // sockets, fifos and devices are no cache content
        }
        let rel = e.path().strip_prefix(data).unwrap_or(e.path());
        b.append_path_with_name(e.path(), rel).map_err(io(e.path()))?;
    }
    let gz = b.into_inner().map_err(io(&out))?;
    let mut w = gz.finish().map_err(io(&out))?;
    w.flush().map_err(io(&out))?;
    drop(w);
    let digest = crate::store::hash_file(&out)?;
    let size = std::fs::metadata(&out).map_err(io(&out))?.len();
    if !store.has_blob(&digest) {
        store.commit_blob_file(&out, &digest)?;
    }
    Ok((digest, size))
}

/// The cache mounts `mounts` as blobs of the store (the lowest instance of each: the shared one).
fn mount_blobs(store: &Store, mounts: &[crate::store::mounts::Meta]) -> Result<Vec<MountBlob>, RegistryError> {
    let all = store.cache_mounts();
    let mut out = Vec::new();
    for m in mounts {
        let Some(info) = all.iter().find(|i| i.meta.id == m.id && i.meta.base == m.base) else { continue };
        let Some(&n) = info.instances.first() else { continue };
        let (digest, size) = mount_blob(store, &store.cache_mount_data(&info.key, n))?;
        out.push(MountBlob { id: m.id.clone(), base: m.base.clone(), digest, size });
    }
    Ok(out)
}

/// A cache artifact: its config bytes, manifest bytes and blob list (config blob first).
struct Artifact {
    config: Vec<u8>,
    manifest: Vec<u8>,
    blobs: Vec<Descriptor>,
}

/// The artifact for `keys` (and `mounts`' content). Steps without an entry in the store are
/// left out.
fn artifact(store: &Store, keys: &[String], mounts: Vec<MountBlob>) -> Result<Artifact, RegistryError> {
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
    for m in &mounts {
        add(Descriptor {
            media_type: MT_CACHE_MOUNT.into(),
            digest: m.digest.clone(),
            size: m.size,
            annotations: Default::default(),
            platform: None,
        });
    }
    let config = image::to_json(&CacheConfig { steps, mounts });
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

/// Exports the cache entries of `keys` and the content of the cache mounts `mounts`; returns
/// the artifact's digest and its step count.
pub fn export(
    store: &Store,
    opts: &Options,
    keys: &[String],
    mounts: &[crate::store::mounts::Meta],
    to: &Spec,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(String, usize), RegistryError> {
    let mounts = mount_blobs(store, mounts)?;
    if !mounts.is_empty() {
        log(&format!("exporting {} cache mount(s)", mounts.len()));
    }
    let Artifact { config, manifest, blobs } = artifact(store, keys, mounts)?;
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
            // As the store's blobs (store/mod.rs): written under temp names, synced together,
            // named, the directory synced, index.json last; so a power loss leaves no blob name
            // with torn bytes (an export keeps the blobs that are there) nor an index.json that
            // names a blob not written. A blob of the wrong size (left by a crash of an older
            // slipway) is written again.
            let mut fresh: Vec<(PathBuf, PathBuf)> = Vec::new();
            let manifest_digest = image::digest_of(&manifest);
            let mdesc = Descriptor {
                media_type: image::MT_MANIFEST.into(),
                digest: manifest_digest.clone(),
                size: manifest.len() as u64,
                annotations: Default::default(),
                platform: None,
            };
            let res = (|| -> Result<(), RegistryError> {
                for (i, b) in blobs.iter().chain(std::iter::once(&mdesc)).enumerate() {
                    let dst = bd.join(b.digest.trim_start_matches("sha256:"));
                    match std::fs::metadata(&dst) {
                        Ok(md) if md.len() == b.size => continue,
                        Ok(_) => {
                            std::fs::remove_file(&dst).map_err(|err| RegistryError::Io { path: dst.clone(), err })?
                        }
                        Err(_) => {}
                    }
                    let tmp = bd.join(format!(".tmp-{}-{i}", std::process::id()));
                    fresh.push((tmp.clone(), dst));
                    if b.digest == manifest_digest {
                        std::fs::write(&tmp, &manifest).map_err(|err| RegistryError::Io { path: tmp.clone(), err })?;
                        continue;
                    }
                    // a hard link where the directory shares the store's filesystem, else a copy;
                    // under the temp name too: the store's blob may be one this process staged,
                    // not synced yet
                    let src = store.blob_path(&b.digest);
                    if std::fs::hard_link(&src, &tmp).is_err() {
                        std::fs::copy(&src, &tmp).map_err(|err| RegistryError::Io { path: src.clone(), err })?;
                    }
                }
                let files: Vec<&Path> = fresh.iter().map(|(f, _)| f.as_path()).collect();
                crate::store::fsync_files(&files)?;
                for (tmp, dst) in &fresh {
                    std::fs::rename(tmp, dst).map_err(|err| RegistryError::Io { path: dst.clone(), err })?;
                }
                if !fresh.is_empty() {
                    crate::store::fsync_dir(&bd)?;
                }
                Ok(())
            })();
            if res.is_err() {
                for (tmp, _) in &fresh {
                    let _ = std::fs::remove_file(tmp);
                }
            }
            res?;
            let digest = manifest_digest;
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

/// Writes `p` durably: a synced temp file renamed over it, then its directory synced.
fn write_file(p: &Path, data: &[u8]) -> Result<(), RegistryError> {
    let tmp = p.with_file_name(format!(".tmp-{}", std::process::id()));
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let res = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(data).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, p))
        .and_then(|_| std::fs::File::open(dir)?.sync_all());
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|err| RegistryError::Io { path: p.to_path_buf(), err })
}

/// An imported cache: steps by key, and where their blobs are.
pub struct Imported {
    pub from: Spec,
    steps: HashMap<String, Entry>,
    mounts: Vec<MountBlob>,
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
    Ok(Imported {
        from: from.clone(),
        steps: c.steps.into_iter().map(|s| (s.key, s.entry)).collect(),
        mounts: c.mounts,
        client,
    })
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

    /// Brings the cache mounts of the cache that the store does not have into it (their blobs
    /// fetched and verified, then unpacked); returns how many came.
    pub fn import_mounts(&self, store: &Store) -> Result<usize, RegistryError> {
        let mut n = 0;
        for m in &self.mounts {
            let meta = crate::store::mounts::Meta { id: m.id.clone(), base: m.base.clone(), used: 0 };
            if store.cache_mounts().iter().any(|i| i.key == meta.key() && !i.instances.is_empty()) {
                continue;
            }
            let d = Descriptor {
                media_type: MT_CACHE_MOUNT.into(),
                digest: m.digest.clone(),
                size: m.size,
                annotations: Default::default(),
                platform: None,
            };
            match (&self.from, &self.client) {
                (Spec::Registry(r), Some(client)) => {
                    let scopes = vec![super::auth::repo_scope(&r.repository, false)];
                    blob::fetch(client, &r.repository, &d, store, &scopes)?;
                }
                (Spec::Local(dir), _) => copy_in(store, dir, &m.digest)?,
                (Spec::Registry(r), None) => {
                    return Err(RegistryError::Invalid {
                        registry: r.registry.clone(),
                        what: "cache".into(),
                        why: "no connection".into(),
                    })
                }
            }
            let blob = store.blob_path(&m.digest);
            let mut fill = |data: &Path| -> std::io::Result<()> {
                let f = std::fs::File::open(&blob)?;
                let mut a = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(f)));
                a.set_preserve_permissions(true);
                a.set_preserve_ownerships(true);
                a.set_preserve_mtime(true);
                a.set_overwrite(true);
                a.unpack(data)
            };
            if store.import_cache_mount(&meta, &mut fill)? {
                n += 1;
            }
        }
        Ok(n)
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
        assert_eq!(parse_export("type=local,dest=/c,cache-mounts=true").unwrap(), (Spec::Local("/c".into()), true));
        assert!(!parse_export("type=local,dest=/c").unwrap().1);
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
            ("type=local,dest=/x,cache-mounts=yes", true, "expected true or false"),
            ("type=local,src=/x,cache-mounts=true", false, "unknown key \"cache-mounts\""),
            ("type=registry,ref=Bad", false, "invalid reference"),
        ] {
            let e = parse_spec(bad, export).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
