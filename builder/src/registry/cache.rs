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
//! step keys, so neither reads the other's. `mode=max` (slipway's default) exports every step,
//! `mode=min` the chain of the result (see builder/README.md for why the default differs).
//! `image-manifest=false` writes BuildKit's older shape instead, an index (OCI's, or docker's
//! manifest list with `oci-mediatypes=false`) whose entries are the blobs and the config.

use super::blob;
use super::cache_azblob::{self, AzblobSpec};
use super::cache_gha::{self, GhaSpec};
use super::cache_s3::{self, S3Spec};
use super::client::{Client, Options};
use super::error::RegistryError;
use super::objects;
use super::pull::{fetch_manifest, fetch_small};
use super::push::push_manifest_and_blobs;
use super::reference::Reference;
use crate::cache::Entry;
use crate::store::image::{self, Descriptor};
use crate::store::ingest::Opened;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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
    /// `--cache-to type=inline`: in the image config of the build's result (`INLINE_KEY`).
    Inline,
    /// `type=s3`: objects of a bucket, as BuildKit lays them out (`cache_s3.rs`).
    S3(Box<S3Spec>),
    /// `type=azblob`: blobs of an Azure Blob Storage container, as BuildKit lays them out
    /// (`cache_azblob.rs`).
    Azblob(Box<AzblobSpec>),
    /// `type=gha`: entries of GitHub Actions' cache service, as BuildKit keys them
    /// (`cache_gha.rs`).
    Gha(Box<GhaSpec>),
}

/// The image config key of an inline cache: a [`CacheConfig`] of the result's chain (as
/// `mode=min`) with the steps' configs inline, for `--cache-from IMAGE` to read. BuildKit's
/// key is `moby.buildkit.cache.v0`; its records are BuildKit's own, so slipway's has its own key.
pub const INLINE_KEY: &str = "slipway.buildcache.v1";

impl std::fmt::Display for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spec::Registry(r) => write!(f, "registry {r}"),
            Spec::Local(p) => write!(f, "local {}", p.display()),
            Spec::Inline => write!(f, "inline"),
            Spec::S3(s) => write!(f, "{s}"),
            Spec::Azblob(s) => write!(f, "{s}"),
            Spec::Gha(s) => write!(f, "{s}"),
        }
    }
}

/// BuildKit's cache export `mode=`: `min` (its default) exports the steps that made the
/// result's layers (the target stage and the stages it is `FROM`), `max` every step the build
/// went through, intermediate stages too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Min,
    Max,
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub to: Spec,
    /// `cache-mounts=true`: the content of the RUN cache mounts the build used goes too.
    pub mounts: bool,
    pub mode: Mode,
    /// `ignore-error=true`: a failed export is a warning, not a failed build.
    pub ignore_error: bool,
    /// `image-manifest=` (default true): the cache is an OCI image manifest; false: an index
    /// (OCI's, or docker's manifest list with `oci-mediatypes=false`) listing the blobs.
    pub image_manifest: bool,
    /// `oci-mediatypes=` (default true): false gives docker's media types.
    pub oci: bool,
    /// `compression=`, `compression-level=`, `force-compression=`: the layer blobs' compression.
    pub layers: crate::convert::Options,
    /// `registry.insecure=true` (registry): any certificate and plain HTTP for this cache.
    pub insecure: bool,
    /// `tag=` (local, default `latest`): the cache's name in the directory's index.json.
    pub tag: String,
    /// `reset=true` (local): after the export, the blobs no manifest of index.json needs go.
    pub reset: bool,
}

impl Export {
    fn inline() -> Export {
        Export {
            to: Spec::Inline,
            mounts: false,
            mode: Mode::Min,
            ignore_error: false,
            image_manifest: true,
            oci: true,
            layers: crate::convert::Options::default(),
            insecure: false,
            tag: String::new(),
            reset: false,
        }
    }
}

/// One `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub from: Spec,
    /// `registry.insecure=true` (registry).
    pub insecure: bool,
    /// `tag=` (local, default `latest`): which cache of index.json.
    pub tag: String,
    /// `digest=` (local): the cache manifest by digest, whatever index.json names.
    pub digest: Option<String>,
}

/// A cache entry's attributes (key, value), in the order given.
type Attrs = Vec<(String, String)>;

/// One entry's type and attributes, as buildx reads a `--cache-to`/`--cache-from` value
/// (util/buildflags/cache.go): keys lower-cased; a value without any `=` is a list of
/// registry refs (`--cache-from REF` is `type=registry,ref=REF`).
fn entries(s: &str, flag: &str) -> Result<Vec<(String, Attrs)>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    if !s.contains('=') {
        return Ok(s.split(',').map(|r| ("registry".to_string(), vec![("ref".to_string(), r.to_string())])).collect());
    }
    let mut kind = String::new();
    let mut attrs: Attrs = Vec::new();
    for kv in s.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("{flag} {:?}: invalid value {kv}", redact(s)))?;
        let k = k.to_ascii_lowercase();
        if k == "type" {
            kind = v.to_string();
        } else {
            attrs.retain(|(o, _)| *o != k); // a later one wins, as in buildx's map
            attrs.push((k, v.to_string()));
        }
    }
    if kind.is_empty() {
        return Err(format!("{flag}: type required for {:?}", redact(s)));
    }
    Ok(vec![(kind, attrs)])
}

/// A `--cache-to/--cache-from` value for messages: the values of the secret attributes
/// (`secret_access_key`, `session_token`, gha's `token` and `ghtoken`) replaced by `***` and the
/// query of `account_url` (an SAS token) left out, so no error or log shows a key.
pub fn redact(s: &str) -> String {
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, _))
                if ["secret_access_key", "session_token", "token", "ghtoken"]
                    .contains(&k.trim().to_ascii_lowercase().as_str()) =>
            {
                format!("{k}=***")
            }
            Some((k, v)) if k.trim().eq_ignore_ascii_case("account_url") => {
                format!("{k}={}", crate::azblob::client::redact(v))
            }
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses a `--cache-to` value: `type=registry,ref=REF`, `type=local,dest=DIR`, or a bare
/// `REF` (several, comma-separated), with BuildKit's attributes; anything else is refused by
/// name.
pub fn parse_export(s: &str) -> Result<Vec<Export>, String> {
    let flag = "--cache-to";
    let mut out = Vec::new();
    for (kind, attrs) in entries(s, flag)? {
        let bad = |m: String| format!("{flag} {:?}: {m}", redact(s));
        // the type first: an unknown type's attributes are not the question
        if !["registry", "local", "inline", "s3", "azblob", "gha"].contains(&kind.as_str()) {
            return Err(bad(format!("type={kind}: expected registry, local, inline, s3, azblob or gha")));
        }
        if kind == "inline" {
            // BuildKit's inline exporter takes no attribute (inline.go)
            if let Some((k, _)) = attrs.first() {
                return Err(bad(format!("unknown key {k:?} for type=inline")));
            }
            out.push(Export::inline());
            continue;
        }
        let boolean = |k: &str, v: &str| {
            crate::gobool::parse(v).ok_or_else(|| bad(format!("{k}={v}: expected a boolean (true or false)")))
        };
        let mut e = Export {
            to: Spec::Local(PathBuf::new()),
            mounts: false,
            mode: Mode::Max,
            ignore_error: false,
            image_manifest: true,
            oci: true,
            layers: crate::convert::Options::default(),
            insecure: false,
            tag: "latest".into(),
            reset: false,
        };
        let (mut reference, mut dir, mut image_manifest) = (None, None, None);
        let (mut s3, mut az, mut gha) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in &attrs {
            match (kind.as_str(), k.as_str()) {
                ("s3", k) if cache_s3::ATTRS.contains(&k) => s3.push((k.to_string(), v.clone())),
                ("azblob", k) if cache_azblob::ATTRS.contains(&k) => az.push((k.to_string(), v.clone())),
                ("gha", k) if cache_gha::ATTRS.contains(&k) => gha.push((k.to_string(), v.clone())),
                // BuildKit's s3, azblob and gha exporters read neither (their blobs are the
                // build's, their manifest object the cache config itself): refused, not ignored
                (
                    "s3" | "azblob" | "gha",
                    "image-manifest" | "oci-mediatypes" | "compression" | "compression-level" | "force-compression",
                ) => {
                    return Err(bad(format!(
                        "unknown key {k:?} for type={kind} (BuildKit's {kind} cache does not read it)"
                    )))
                }
                ("registry", "ref") => reference = Some(v.clone()),
                ("registry", "registry.insecure") => e.insecure = boolean(k, v)?,
                ("local", "dest") => dir = Some(v.clone()),
                ("local", "tag") => e.tag = v.clone(),
                ("local", "reset") => e.reset = boolean(k, v)?,
                (_, "mode") => {
                    e.mode = match v.as_str() {
                        "min" => Mode::Min,
                        "max" => Mode::Max,
                        // BuildKit logs an unknown mode and exports min: refused here
                        _ => return Err(bad(format!("mode={v}: expected min or max"))),
                    }
                }
                (_, "ignore-error") => e.ignore_error = boolean(k, v)?,
                (_, "image-manifest") => image_manifest = Some(boolean(k, v)?),
                (_, "oci-mediatypes") => e.oci = boolean(k, v)?,
                // compression.ParseAttributes: an empty force-compression is true
                (_, "force-compression") => e.layers.force = v.is_empty() || boolean(k, v)?,
                (_, "compression" | "compression-level") => {
                    e.layers.take(k, v).map_err(bad)?;
                }
                (_, "cache-mounts") => e.mounts = boolean(k, v)?,
                _ => return Err(bad(format!("unknown key {k:?} for type={kind}"))),
            }
        }
        // BuildKit: image-manifest defaults to true, to false with oci-mediatypes=false
        e.image_manifest = image_manifest.unwrap_or(e.oci);
        if e.image_manifest && !e.oci {
            // BuildKit's words (remotecache.NewExportableCache)
            return Err(bad(
                "invalid configuration for remote cache, OCI mediatypes are required for image-manifest cache format"
                    .into(),
            ));
        }
        e.layers.oci_types = Some(e.oci);
        e.layers.check().map_err(bad)?;
        if e.layers.compression == Some(crate::convert::Compression::EStargz) {
            // an eStargz blob decompresses to more than the layer (its TOC), so its diff ID
            // and the step's image config would change: the cache would no longer be the store's
            return Err(bad("compression=estargz: not for the build cache (its layers' diff IDs would change)".into()));
        }
        e.to = match (kind.as_str(), reference, dir) {
            ("registry", Some(r), _) => Spec::Registry(Reference::parse(&r).map_err(|e| bad(e.to_string()))?),
            ("local", _, Some(d)) if !d.is_empty() => Spec::Local(PathBuf::from(d)),
            ("registry", _, _) => return Err(bad("type=registry needs ref=REF".into())),
            ("local", _, _) => return Err(bad("type=local needs dest=DIR".into())),
            ("s3", _, _) => Spec::S3(Box::new(s3_spec(&s3).map_err(bad)?)),
            ("azblob", _, _) => Spec::Azblob(Box::new(azblob_spec(&az).map_err(bad)?)),
            ("gha", _, _) => Spec::Gha(Box::new(gha_spec(&gha).map_err(bad)?)),
            (t, _, _) => return Err(bad(format!("type={t}: expected registry, local, inline, s3, azblob or gha"))),
        };
        out.push(e);
    }
    Ok(out)
}

/// `type=s3`'s attributes read with this process's environment (`AWS_BUCKET`, `AWS_REGION`).
fn s3_spec(attrs: &[(String, String)]) -> Result<S3Spec, String> {
    cache_s3::parse(attrs, &crate::s3::credentials::process_env).map_err(|m| format!("type=s3: {m}"))
}

/// `type=azblob`'s attributes read with this process's environment (`BUILDKIT_AZURE_STORAGE_*`).
fn azblob_spec(attrs: &[(String, String)]) -> Result<AzblobSpec, String> {
    cache_azblob::parse(attrs, &crate::s3::credentials::process_env).map_err(|m| format!("type=azblob: {m}"))
}

/// `type=gha`'s attributes completed from this process's environment as buildx does
/// (`ACTIONS_RUNTIME_TOKEN`, `ACTIONS_CACHE_URL`, `ACTIONS_RESULTS_URL`,
/// `ACTIONS_CACHE_SERVICE_V2`), the token read at the current time.
fn gha_spec(attrs: &[(String, String)]) -> Result<GhaSpec, String> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    cache_gha::parse(attrs, &crate::s3::credentials::process_env, now).map_err(|m| format!("type=gha: {m}"))
}

/// Whether one of the `--cache-to` values asks for `type=inline` (values already checked).
pub fn wants_inline(cache_to: &[String]) -> bool {
    cache_to.iter().any(|s| parse_export(s).is_ok_and(|v| v.iter().any(|e| e.to == Spec::Inline)))
}

/// Parses a `--cache-from` value: `type=registry,ref=REF`, `type=local,src=DIR` (`tag=`,
/// `digest=`), or a bare `REF` (several, comma-separated).
pub fn parse_import(s: &str) -> Result<Vec<Import>, String> {
    let flag = "--cache-from";
    let mut out = Vec::new();
    for (kind, attrs) in entries(s, flag)? {
        let bad = |m: String| format!("{flag} {:?}: {m}", redact(s));
        if !["registry", "local", "s3", "azblob", "gha"].contains(&kind.as_str()) {
            return Err(bad(format!("type={kind}: expected registry, local, s3, azblob or gha")));
        }
        let mut i = Import { from: Spec::Local(PathBuf::new()), insecure: false, tag: "latest".into(), digest: None };
        let (mut reference, mut dir) = (None, None);
        let (mut s3, mut az, mut gha) = (Vec::new(), Vec::new(), Vec::new());
        for (k, v) in &attrs {
            match (kind.as_str(), k.as_str()) {
                ("s3", k) if cache_s3::ATTRS.contains(&k) => s3.push((k.to_string(), v.clone())),
                ("azblob", k) if cache_azblob::ATTRS.contains(&k) => az.push((k.to_string(), v.clone())),
                ("gha", k) if cache_gha::ATTRS.contains(&k) => gha.push((k.to_string(), v.clone())),
                ("registry", "ref") => reference = Some(v.clone()),
                ("registry", "registry.insecure") => {
                    i.insecure = crate::gobool::parse(v)
                        .ok_or_else(|| bad(format!("{k}={v}: expected a boolean (true or false)")))?
                }
                ("local", "src") => dir = Some(v.clone()),
                ("local", "tag") if v.is_empty() => {
                    // BuildKit's words (client/solve.go)
                    return Err(bad("local cache importer requires either explicit digest, \"latest\" tag or custom tag on index.json".into()));
                }
                ("local", "tag") => i.tag = v.clone(),
                ("local", "digest") if v.is_empty() => {}
                ("local", "digest") if super::reference::valid_digest(v) => i.digest = Some(v.clone()),
                ("local", "digest") => return Err(bad(format!("digest={v}: not a sha256 digest"))),
                _ => return Err(bad(format!("unknown key {k:?} for type={kind}"))),
            }
        }
        i.from = match (kind.as_str(), reference, dir) {
            ("registry", Some(r), _) => Spec::Registry(Reference::parse(&r).map_err(|e| bad(e.to_string()))?),
            ("local", _, Some(d)) if !d.is_empty() => Spec::Local(PathBuf::from(d)),
            ("registry", _, _) => return Err(bad("type=registry needs ref=REF".into())),
            ("local", _, _) => return Err(bad("type=local needs src=DIR".into())),
            ("s3", _, _) => Spec::S3(Box::new(s3_spec(&s3).map_err(bad)?)),
            ("azblob", _, _) => Spec::Azblob(Box::new(azblob_spec(&az).map_err(bad)?)),
            ("gha", _, _) => Spec::Gha(Box::new(gha_spec(&gha).map_err(bad)?)),
            (t, _, _) => return Err(bad(format!("type={t}: expected registry, local, s3, azblob or gha"))),
        };
        out.push(i);
    }
    Ok(out)
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
    /// An inline cache's step configs, by digest (their bytes as text): the image's registry
    /// has only the result's config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, String>,
}

impl CacheConfig {
    /// Adds the steps, mounts and configs of `other` this one lacks (BuildKit's importers of
    /// several names or scopes combine them, the first one's first).
    pub fn merge(&mut self, other: CacheConfig) {
        for step in other.steps {
            if !self.steps.iter().any(|x| x.key == step.key) {
                self.steps.push(step);
            }
        }
        for mount in other.mounts {
            if !self.mounts.iter().any(|x| x.id == mount.id && x.base == mount.base) {
                self.mounts.push(mount);
            }
        }
        for (k, v) in other.configs {
            self.configs.entry(k).or_insert(v);
        }
    }
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

/// A cache artifact: its config bytes, top manifest (or index) bytes and media type, and blob
/// list (config blob first).
struct Artifact {
    config: Vec<u8>,
    manifest: Vec<u8>,
    media_type: &'static str,
    blobs: Vec<Descriptor>,
}

/// `keys` as `mode=min` keeps them: the steps whose results make the chain of each of
/// `results` (the config digests of the build's results). From a result back, each step is the
/// one whose resulting config is the state the next one ran on, so the chain runs through the
/// stages the target is `FROM` and ends at the base image; a stage only copied or mounted from
/// is not in it.
fn min_keys(store: &Store, keys: &[String], results: &[String]) -> Vec<String> {
    let mut by_config: HashMap<String, (String, String)> = HashMap::new();
    for k in keys {
        if let Some(e) = store.read_record::<Entry>(&format!("cache/steps/{k}.json")) {
            by_config.entry(e.config.clone()).or_insert((k.clone(), e.config_parent.clone()));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for r in results {
        let mut cur = r.clone();
        while let Some((k, parent)) = by_config.get(&cur) {
            if out.contains(k) {
                break;
            }
            out.push(k.clone());
            cur = parent.clone();
        }
    }
    // in the build's order
    keys.iter().filter(|k| out.contains(k)).cloned().collect()
}

/// The artifact for `keys` (and `mounts`' content) in the format `e` asks for. Steps without an
/// entry in the store are left out.
fn artifact(store: &Store, keys: &[String], mounts: Vec<MountBlob>, e: &Export) -> Result<Artifact, RegistryError> {
    let mut steps = Vec::new();
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut add = |d: Descriptor| {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d);
        }
    };
    let convert = e.layers.compression.is_some() || e.layers.level.is_some() || e.layers.force;
    let config_type = if e.oci { image::MT_CONFIG } else { image::MT_DOCKER_CONFIG };
    for k in keys {
        if steps.iter().any(|s: &Step| s.key == *k) {
            continue;
        }
        let Some(mut entry) = store.read_record::<Entry>(&format!("cache/steps/{k}.json")) else { continue };
        let cfg = store.blob_path(&entry.config);
        let size = std::fs::metadata(&cfg).map_err(|err| RegistryError::Io { path: cfg.clone(), err })?.len();
        add(Descriptor {
            media_type: config_type.into(),
            digest: entry.config.clone(),
            size,
            annotations: Default::default(),
            platform: None,
        });
        if convert {
            // the image output's conversion (remembered by diff ID: each layer once)
            for l in entry.layers.iter_mut() {
                *l = crate::convert::convert_layer(store, l, &e.layers)?;
            }
        }
        for l in &entry.layers {
            let mut d = l.descriptor();
            if let Some(c) = crate::convert::Compression::of_media_type(&d.media_type) {
                d.media_type = c
                    .media_type(e.oci)
                    .map_err(|why| RegistryError::Invalid {
                        registry: e.to.to_string(),
                        what: format!("layer {}", l.digest),
                        why: format!("oci-mediatypes=false: {why}"),
                    })?
                    .into();
            }
            add(d);
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
    let config = image::to_json(&CacheConfig { steps, mounts, configs: BTreeMap::new() });
    let cdesc = Descriptor {
        media_type: MT_CACHE_CONFIG.into(),
        digest: image::digest_of(&config),
        size: config.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    let (manifest, media_type) = if e.image_manifest {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": image::MT_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": cdesc,
            "layers": blobs,
        });
        (m, image::MT_MANIFEST)
    } else {
        // BuildKit's older format (image-manifest=false): an index whose entries are the blobs,
        // the cache config last; docker's manifest list with oci-mediatypes=false
        let mt = if e.oci { image::MT_INDEX } else { super::manifest::MT_DOCKER_LIST };
        let mut all = blobs.clone();
        all.push(cdesc.clone());
        (serde_json::json!({"schemaVersion": 2, "mediaType": mt, "manifests": all}), mt)
    };
    let mbytes = image::to_json(&manifest);
    let mut all = vec![cdesc];
    all.extend(blobs);
    Ok(Artifact { config, manifest: mbytes, media_type, blobs: all })
}

/// Exports the cache entries of `keys` (with `mode=min`, those of the chains of `results`, the
/// config digests of the build's results) and the content of the cache mounts `mounts`;
/// returns the artifact's digest and its step count.
pub fn export(
    store: &Store,
    opts: &Options,
    keys: &[String],
    results: &[String],
    mounts: &[crate::store::mounts::Meta],
    e: &Export,
    log: &(dyn Fn(&str) + Sync),
) -> Result<(String, usize), RegistryError> {
    let mounts = mount_blobs(store, if e.mounts { mounts } else { &[] })?;
    if !mounts.is_empty() {
        log(&format!("exporting {} cache mount(s)", mounts.len()));
    }
    let keys = match e.mode {
        Mode::Max => keys.to_vec(),
        Mode::Min => min_keys(store, keys, results),
    };
    let Artifact { config, manifest, media_type, blobs } = artifact(store, &keys, mounts, e)?;
    let steps = serde_json::from_slice::<CacheConfig>(&config).map(|c| c.steps.len()).unwrap_or(0);
    store.put_blob(&config)?;
    match &e.to {
        Spec::Registry(r) => {
            let insecure;
            let opts = if e.insecure {
                // registry.insecure=true: as --tls-verify=false, for this cache only
                insecure = Options { tls_verify: false, ..opts.clone() };
                &insecure
            } else {
                opts
            };
            let client = Client::connect(&r.registry, opts, None)?;
            let p = push_manifest_and_blobs(store, &client, r, &blobs, &manifest, media_type, log)?;
            Ok((p.digest, steps))
        }
        // the build wrote it into the image config (`inline_config`)
        Spec::Inline => Ok((String::new(), steps)),
        // the cache config itself is the object under each name, as BuildKit's is its own
        // config: the artifact's manifest is not written
        Spec::S3(s) => {
            cache_s3::export(store, s, &blobs[1..], &config, log)?;
            log(&format!("exported {steps} cache steps to {s}"));
            Ok((image::digest_of(&config), steps))
        }
        Spec::Azblob(s) => {
            cache_azblob::export(store, s, &blobs[1..], &config, log)?;
            log(&format!("exported {steps} cache steps to {s}"));
            Ok((image::digest_of(&config), steps))
        }
        Spec::Gha(s) => {
            cache_gha::export(store, s, &blobs[1..], &config, log)?;
            log(&format!("exported {steps} cache steps to {s}"));
            Ok((image::digest_of(&config), steps))
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
                media_type: media_type.into(),
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
            // index.json as BuildKit's client updates it (ociindex.Put): the other names stay,
            // one of the same tag is replaced
            let mut idx = std::fs::read(dir.join("index.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<image::Index>(&b).ok())
                .unwrap_or(image::Index {
                    schema_version: 2,
                    media_type: image::MT_INDEX.into(),
                    manifests: Vec::new(),
                    annotations: Default::default(),
                });
            idx.manifests.retain(|m| m.annotations.get(image::ANN_REF_NAME) != Some(&e.tag));
            let mut top = mdesc.clone();
            top.annotations.insert(image::ANN_REF_NAME.to_string(), e.tag.clone());
            idx.manifests.push(top);
            write_file(&dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            write_file(&dir.join("index.json"), &image::to_json(&idx))?;
            if e.reset {
                let n = reset(dir, &idx)?;
                if n > 0 {
                    log(&format!("reset: removed {n} blob(s) no cache of {} needs", dir.display()));
                }
            }
            log(&format!("exported {steps} cache steps to {}", dir.display()));
            Ok((manifest_digest, steps))
        }
    }
}

/// `--cache-to type=inline`: the config bytes `config` with an inline cache of the chain of
/// `result` (its config digest) among `keys` under [`INLINE_KEY`]; None when no step of the
/// build made the result (a bare `FROM`).
pub fn inline_config(
    store: &Store,
    config: &[u8],
    keys: &[String],
    result: &str,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let mut steps = Vec::new();
    let mut configs = BTreeMap::new();
    for k in min_keys(store, keys, &[result.to_string()]) {
        let Some(entry) = store.read_record::<Entry>(&format!("cache/steps/{k}.json")) else { continue };
        let p = store.blob_path(&entry.config);
        let b = std::fs::read(&p).map_err(|err| RegistryError::Io { path: p.clone(), err })?;
        let text = String::from_utf8(b).map_err(|_| RegistryError::Io {
            path: p,
            err: std::io::Error::other("an image config that is not UTF-8"),
        })?;
        configs.insert(entry.config.clone(), text);
        steps.push(Step { key: k, entry });
    }
    if steps.is_empty() {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| RegistryError::Invalid {
        registry: "inline".into(),
        what: "image config".into(),
        why: e.to_string(),
    };
    let mut v: serde_json::Value = serde_json::from_slice(config).map_err(bad)?;
    let cache = serde_json::to_value(CacheConfig { steps, mounts: Vec::new(), configs }).map_err(bad)?;
    let Some(obj) = v.as_object_mut() else { return Ok(None) };
    obj.insert(INLINE_KEY.into(), cache);
    Ok(Some(image::to_json(&v)))
}

/// `reset=true` (BuildKit's client, resetCacheStore): removes the blobs of a local cache
/// directory that no manifest of its index.json reaches; returns how many went.
fn reset(dir: &Path, idx: &image::Index) -> Result<usize, RegistryError> {
    let bd = dir.join("blobs/sha256");
    let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut todo: Vec<String> = idx.manifests.iter().map(|m| m.digest.clone()).collect();
    while let Some(d) = todo.pop() {
        if !keep.insert(d.clone()) {
            continue;
        }
        // a manifest's children: its config and layers; an index's: its entries
        let Ok(p) = local_blob(dir, &d) else { continue };
        let Ok(bytes) = std::fs::read(&p) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let mt = v["mediaType"].as_str().unwrap_or_default();
        if ![image::MT_MANIFEST, image::MT_INDEX, image::MT_DOCKER_MANIFEST, super::manifest::MT_DOCKER_LIST]
            .contains(&mt)
        {
            continue;
        }
        for c in std::iter::once(&v["config"])
            .chain(v["layers"].as_array().into_iter().flatten())
            .chain(v["manifests"].as_array().into_iter().flatten())
        {
            if let Some(d) = c["digest"].as_str() {
                todo.push(d.to_string());
            }
        }
    }
    let rd = std::fs::read_dir(&bd).map_err(|err| RegistryError::Io { path: bd.clone(), err })?;
    let mut n = 0;
    for f in rd.flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || keep.contains(&format!("sha256:{name}")) {
            continue;
        }
        std::fs::remove_file(f.path()).map_err(|err| RegistryError::Io { path: f.path(), err })?;
        n += 1;
    }
    Ok(n)
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
    /// An inline cache's step configs (text by digest).
    configs: BTreeMap<String, String>,
    client: Option<Client>,
    /// `type=s3`, `azblob`, `gha`: the bucket's, the container's, the service's client.
    objects: Option<Box<dyn objects::Objects + Send>>,
}

/// The cache config's descriptor in a cache's top manifest: an image manifest's config, or
/// the entry of that type in an index (BuildKit's `image-manifest=false` format).
fn config_of(bytes: &[u8]) -> Result<Descriptor, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("manifest: {e}"))?;
    let found = match v["mediaType"].as_str().unwrap_or_default() {
        image::MT_INDEX | super::manifest::MT_DOCKER_LIST => {
            v["manifests"].as_array().into_iter().flatten().find(|d| d["mediaType"] == MT_CACHE_CONFIG).cloned()
        }
        _ => Some(v["config"].clone()).filter(|c| c["mediaType"] == MT_CACHE_CONFIG),
    };
    let Some(d) = found else {
        let what = v["config"]["mediaType"].as_str().or(v["mediaType"].as_str()).unwrap_or("none").to_string();
        return Err(format!("not a slipway cache ({what:?}, no {MT_CACHE_CONFIG})"));
    };
    serde_json::from_value(d).map_err(|e| format!("cache config descriptor: {e}"))
}

/// Reads the cache artifact at `from` (its manifest and config; blobs come when a step hits).
pub fn import(opts: &Options, from: &Import) -> Result<Imported, RegistryError> {
    let mut objects: Option<Box<dyn objects::Objects + Send>> = None;
    let (config, client) = match &from.from {
        Spec::S3(s) => {
            let (bytes, b) = cache_s3::import(s)?;
            objects = Some(Box::new(b));
            (bytes, None)
        }
        Spec::Azblob(s) => {
            let (bytes, c) = cache_azblob::import(s, &|_| {})?;
            objects = Some(Box::new(c));
            (bytes, None)
        }
        Spec::Gha(s) => {
            let (bytes, c) = cache_gha::import(s)?;
            objects = Some(Box::new(c));
            (bytes, None)
        }
        Spec::Inline => {
            return Err(RegistryError::Invalid {
                registry: "inline".into(),
                what: "--cache-from".into(),
                why: "an inline cache is read from its image: type=registry,ref=IMAGE".into(),
            })
        }
        Spec::Registry(r) => {
            let insecure;
            let opts = if from.insecure {
                insecure = Options { tls_verify: false, ..opts.clone() };
                &insecure
            } else {
                opts
            };
            let client = Client::connect(&r.registry, opts, None)?;
            let scopes = vec![super::auth::repo_scope(&r.repository, false)];
            let op = format!("cache import {r}: GET manifest");
            let (bytes, _, fetched, _) = fetch_manifest(&client, &r.repository, r.api_reference(), &scopes, &op)?;
            let bad =
                |why: String| RegistryError::Invalid { registry: r.registry.clone(), what: format!("cache {r}"), why };
            let is_image = |m: &image::Manifest| {
                m.config.media_type == image::MT_CONFIG || m.config.media_type == image::MT_DOCKER_CONFIG
            };
            match (config_of(&bytes), fetched) {
                (Ok(c), _) => {
                    let op = format!("cache import {r}: GET config");
                    (fetch_small(&client, &r.repository, &c, &scopes, &op)?, Some(client))
                }
                // an image: its inline cache (`--cache-to type=inline`), if its config has one
                (Err(_), super::manifest::Fetched::Image(m)) if is_image(&m) => {
                    let op = format!("cache import {r}: GET image config");
                    let cb = fetch_small(&client, &r.repository, &m.config, &scopes, &op)?;
                    let v: serde_json::Value = serde_json::from_slice(&cb).map_err(|e| bad(e.to_string()))?;
                    let Some(c) = v.get(INLINE_KEY) else {
                        return Err(bad(format!("an image without an inline cache ({INLINE_KEY})")));
                    };
                    (serde_json::to_vec(c).map_err(|e| bad(e.to_string()))?, Some(client))
                }
                (Err(e), _) => return Err(bad(e)),
            }
        }
        Spec::Local(dir) => {
            let bad = |why: String| RegistryError::Io { path: dir.clone(), err: std::io::Error::other(why) };
            let read = |p: PathBuf| std::fs::read(&p).map_err(|err| RegistryError::Io { path: p, err });
            let digest = match &from.digest {
                Some(d) => d.clone(),
                None => {
                    // client/solve.go: the manifest index.json names by the tag
                    let idx: image::Index = serde_json::from_slice(&read(dir.join("index.json"))?)
                        .map_err(|e| bad(format!("index.json: {e}")))?;
                    let d = idx.manifests.iter().find(|m| m.annotations.get(image::ANN_REF_NAME) == Some(&from.tag));
                    d.ok_or_else(|| bad(format!("no digest found for tag {}", from.tag)))?.digest.clone()
                }
            };
            let mb = read(local_blob(dir, &digest)?)?;
            if image::digest_of(&mb) != digest {
                return Err(bad(format!("manifest {digest}: digest mismatch")));
            }
            let c = config_of(&mb).map_err(bad)?;
            let cb = read(local_blob(dir, &c.digest)?)?;
            if image::digest_of(&cb) != c.digest {
                return Err(bad(format!("cache config {}: digest mismatch", c.digest)));
            }
            (cb, None)
        }
    };
    let c: CacheConfig = serde_json::from_slice(&config).map_err(|e| RegistryError::Invalid {
        registry: from.from.to_string(),
        what: "cache config".into(),
        why: e.to_string(),
    })?;
    Ok(Imported {
        from: from.from.clone(),
        steps: c.steps.into_iter().map(|s| (s.key, s.entry)).collect(),
        mounts: c.mounts,
        configs: c.configs,
        client,
        objects,
    })
}

/// The key of a digest's blob in an object store cache.
type BlobKey<'a> = Box<dyn Fn(&str) -> String + Sync + 'a>;

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
    /// An object store cache's client, and the key of a digest's blob in it.
    fn objects(&self) -> Result<(&dyn objects::Objects, BlobKey<'_>), RegistryError> {
        let key: BlobKey<'_> = match &self.from {
            Spec::S3(s) => Box::new(|d| s.blob_key(d)),
            Spec::Azblob(s) => Box::new(|d| s.blob_key(d)),
            Spec::Gha(_) => Box::new(cache_gha::blob_key),
            _ => Box::new(|d| d.to_string()),
        };
        match &self.objects {
            Some(o) => Ok((o.as_ref(), key)),
            None => Err(RegistryError::Invalid {
                registry: self.from.to_string(),
                what: "cache".into(),
                why: "no connection".into(),
            }),
        }
    }

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
                (Spec::Inline, _) => continue,
                (Spec::S3(_) | Spec::Azblob(_) | Spec::Gha(_), _) => {
                    let (o, key) = self.objects()?;
                    objects::fetch(o, &key(&d.digest), &d, store)?
                }
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
                if let (false, Some(text)) = (store.has_blob(&e.config), self.configs.get(&e.config)) {
                    // an inline cache's step config, checked against its digest
                    if image::digest_of(text.as_bytes()) != e.config {
                        return Err(RegistryError::Invalid {
                            registry: r.registry.clone(),
                            what: format!("inline cache {r}"),
                            why: format!("step config {}: digest mismatch", e.config),
                        });
                    }
                    store.put_blob(text.as_bytes())?;
                }
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
            (Spec::Inline, _) => return Ok(None),
            (Spec::S3(_) | Spec::Azblob(_) | Spec::Gha(_), _) => {
                let (o, key) = self.objects()?;
                objects::fetch_step(o, &*key, &e.config, &blobs[1..], store)?
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

    fn one_export(s: &str) -> Export {
        let mut v = parse_export(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.remove(0)
    }

    #[test]
    fn secrets_never_in_messages() {
        assert_eq!(
            redact("type=azblob,account_url=u,secret_access_key=S3CR3T,Session_Token=T0K"),
            "type=azblob,account_url=u,secret_access_key=***,Session_Token=***"
        );
        assert_eq!(
            redact("type=azblob,account_url=https://a.b/?sv=2022-11-02&sig=S1G,bogus"),
            "type=azblob,account_url=https://a.b/?<SAS token>,bogus"
        );
        let e = parse_export("type=azblob,account_url=u,secret_access_key=S3CR3T").unwrap_err();
        assert!(!e.contains("S3CR3T") && e.contains("secret_access_key=***"), "{e}");
        // gha's runtime token, in a bad value's message too
        let e = parse_export("type=gha,url=https://u,token=S3CR3T,ghtoken=T0K").unwrap_err();
        assert!(!e.contains("S3CR3T") && !e.contains("T0K") && e.contains("token=***"), "{e}");
        let e = parse_import("type=s3,bucket=b,region=r,secret_access_key=S3CR3T,bogus").unwrap_err();
        assert!(!e.contains("S3CR3T"), "{e}");
    }

    #[test]
    fn export_specs() {
        let e = one_export("type=local,dest=/c,cache-mounts=true");
        assert_eq!((e.to, e.mounts, e.tag.as_str()), (Spec::Local("/c".into()), true, "latest"));
        // slipway's default mode is max (README: why not BuildKit's min); image manifest, OCI
        let e = one_export("type=local,dest=/c");
        assert!(!e.mounts && e.mode == Mode::Max && e.image_manifest && e.oci && !e.ignore_error);
        match one_export("type=registry,ref=localhost:5000/cache:main,mode=max").to {
            Spec::Registry(r) => assert_eq!(r.to_string(), "localhost:5000/cache:main"),
            s => panic!("{s:?}"),
        }
        // buildx: a value without `=` is type=registry,ref=VALUE, each of a comma list
        let v = parse_export("localhost:5000/a:1,localhost:5000/b:1").unwrap();
        assert_eq!(v.len(), 2);
        assert!(matches!(&v[1].to, Spec::Registry(r) if r.to_string() == "localhost:5000/b:1"));
        assert!(parse_export("").unwrap().is_empty());
        assert_eq!(one_export("type=inline").to, Spec::Inline);
        assert!(wants_inline(&["type=local,dest=/c".into(), "type=inline".into()]));
        // keys are lower-cased (buildx); Go's ParseBool spellings
        let e = one_export("type=registry,ref=r/c,Mode=min,ignore-error=T,registry.insecure=1");
        assert!(e.mode == Mode::Min && e.ignore_error && e.insecure);
        // BuildKit: oci-mediatypes=false alone turns image-manifest off (docker manifest list)
        let e = one_export("type=registry,ref=r/c,oci-mediatypes=False");
        assert!(!e.oci && !e.image_manifest);
        let e = one_export("type=local,dest=/c,image-manifest=false,tag=v2,reset=true");
        assert!(e.oci && !e.image_manifest && e.reset && e.tag == "v2");
        let e = one_export("type=registry,ref=r/c,compression=zstd,compression-level=3,force-compression=");
        assert_eq!(e.layers.compression, Some(crate::convert::Compression::Zstd));
        assert!(e.layers.force && e.layers.level == Some(3));
        for (bad, want) in [
            ("type=local,src=/x", "unknown key \"src\""),
            ("type=local,dest=/x,ref=r", "unknown key \"ref\""),
            ("type=registry,ref=r,tag=t", "unknown key \"tag\""),
            ("type=registry", "ref=REF"),
            ("type=ghx", "type=ghx: expected registry, local, inline, s3, azblob or gha"),
            ("type=gha,url=https://u", "type=gha: token not set for github actions cache"),
            ("type=azblob,account_url=u", "type=azblob: account_url=u: expected http(s)://HOST"),
            (
                "type=azblob,account_url=https://a.b,secret_access_key=k,compression=zstd",
                "unknown key \"compression\" for type=azblob",
            ),
            ("type=azblob,account_url=https://a.b,secret_access_key=k,ref=x", "unknown key \"ref\" for type=azblob"),
            ("type=s3,bucket=b,region=r,compression=zstd", "unknown key \"compression\" for type=s3"),
            ("type=s3,bucket=b,region=r,image-manifest=true", "unknown key \"image-manifest\" for type=s3"),
            ("type=s3,bucket=b,region=r,ref=x", "unknown key \"ref\" for type=s3"),
            (
                "type=s3,bucket=b,region=r,upload_parallelism=0",
                "type=s3: upload_parallelism must be a positive integer",
            ),
            ("type=inline,mode=max", "unknown key \"mode\" for type=inline"),
            ("type=registry,ref=x,mode=middle", "mode=middle: expected min or max"),
            ("dest=/x", "type required for"),
            ("type=local,dest=/x,cache-mounts=yes", "expected a boolean"),
            ("type=local,dest=/x,ignore-error=yes", "expected a boolean"),
            ("type=registry,ref=Bad", "invalid reference"),
            // BuildKit's words
            (
                "type=registry,ref=r,image-manifest=true,oci-mediatypes=false",
                "OCI mediatypes are required for image-manifest cache format",
            ),
            ("type=registry,ref=r,compression=zstd,oci-mediatypes=false", "conflicts with \"oci-mediatypes=false\""),
            ("type=registry,ref=r,compression=brotli", "compression=\"brotli\""),
            ("type=registry,ref=r,compression=estargz", "not for the build cache"),
        ] {
            let e = parse_export(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        // BuildKit's compression.ParseAttributes takes a level with uncompressed (unused)
        assert!(parse_export("type=registry,ref=r,compression=uncompressed,compression-level=3").is_ok());
    }

    #[test]
    fn import_specs() {
        let v = parse_import("type=local,src=/tmp/c").unwrap();
        assert_eq!(
            v,
            vec![Import { from: Spec::Local("/tmp/c".into()), insecure: false, tag: "latest".into(), digest: None }]
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let v = parse_import(&format!("type=local,src=/c,tag=v2,digest={d}")).unwrap();
        assert_eq!((v[0].tag.as_str(), v[0].digest.as_deref()), ("v2", Some(d.as_str())));
        let v = parse_import("localhost:5000/cache:main").unwrap();
        assert!(matches!(&v[0].from, Spec::Registry(r) if r.to_string() == "localhost:5000/cache:main"));
        assert!(parse_import("type=registry,ref=r/c,registry.insecure=true").unwrap()[0].insecure);
        // BuildKit's s3 attributes (cache_s3.rs reads them; keys are lower-cased first)
        match &parse_import("type=s3,Bucket=b,region=r,name=main;pr,prefix=ci/").unwrap()[0].from {
            Spec::S3(s) => assert_eq!(s.to_string(), "s3://b/ci/manifests/main;ci/manifests/pr"),
            s => panic!("{s:?}"),
        }
        for (bad, want) in [
            ("type=local", "src=DIR"),
            ("type=local,src=/x,cache-mounts=true", "unknown key \"cache-mounts\""),
            ("type=gha,scope=x,url=https://u,token=a.b.c,mode=max", "unknown key \"mode\" for type=gha"),
            (
                "type=azblob,account_url=https://a.b,secret_access_key=k,mode=max",
                "unknown key \"mode\" for type=azblob",
            ),
            ("type=s3,bucket=b,region=r,mode=max", "unknown key \"mode\" for type=s3"),
            ("type=s3,bucket=b,region=r,name=", "type=s3: name: an empty name"),
            ("type=registry,ref=r,mode=max", "unknown key \"mode\""),
            ("type=local,src=/x,tag=", "requires either explicit digest"),
            ("type=local,src=/x,digest=abc", "not a sha256 digest"),
            ("type=registry,ref=Bad", "invalid reference"),
        ] {
            let e = parse_import(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn cache_config_in_either_format() {
        let c = format!(r#"{{"mediaType":"{MT_CACHE_CONFIG}","digest":"sha256:{}","size":3}}"#, "b".repeat(64));
        let m = format!(r#"{{"schemaVersion":2,"mediaType":"{}","config":{c},"layers":[]}}"#, image::MT_MANIFEST);
        assert_eq!(config_of(m.as_bytes()).unwrap().size, 3);
        let l = format!(r#"{{"mediaType":"{}","digest":"sha256:{}","size":9}}"#, image::MT_LAYER_GZIP, "c".repeat(64));
        let i = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{l},{c}]}}"#,
            super::super::manifest::MT_DOCKER_LIST
        );
        assert_eq!(config_of(i.as_bytes()).unwrap().size, 3);
        let img = format!(r#"{{"schemaVersion":2,"mediaType":"{}","config":{l},"layers":[]}}"#, image::MT_MANIFEST);
        assert!(config_of(img.as_bytes()).unwrap_err().contains("not a slipway cache"));
    }
}
