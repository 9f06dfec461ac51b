//! Pull: a reference -> its manifest (an index resolved to one platform) -> config and layer
//! blobs streamed into the store -> the manifest kept byte for byte (so the store's digest is
//! the registry's) -> the name set last, once every blob is in place.

use super::auth::repo_scope;
use super::blob;
use super::client::{header, Body, Client, Options};
use super::error::RegistryError;
use super::manifest::{self, Fetched, Platform};
use super::reference::Reference;
use crate::store::image::{self, Descriptor, Manifest};
use crate::store::Store;

/// Manifests and indexes are small; more than this is refused.
const MANIFEST_MAX: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name the store holds it under (`busybox:latest`).
    pub name: String,
    /// The digest the reference resolved to (an index's, for a multi-platform image).
    pub digest: String,
    /// The platform manifest kept in the store.
    pub manifest: Descriptor,
    /// The image ID (config digest).
    pub id: String,
    /// Blobs fetched (0 when the store had everything).
    pub fetched: usize,
}

/// GETs a manifest by tag or digest; returns its bytes, media type, and digest (checked
/// against a digest reference; else the registry's Docker-Content-Digest if it sent one).
pub fn fetch_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    scopes: &[String],
    op: &str,
) -> Result<(Vec<u8>, String, Fetched, String), RegistryError> {
    let accept = manifest::accept_header();
    let res = client.send(
        "GET",
        &format!("{repository}/manifests/{reference}"),
        scopes,
        &[("Accept", &accept)],
        &Body::Empty,
        op,
    )?;
    if res.status().as_u16() != 200 {
        return Err(client.fail(op, res));
    }
    let ct = header(&res, "content-type").unwrap_or("").to_string();
    let served = header(&res, "docker-content-digest").map(str::to_string);
    let mut res = res;
    let bytes = res.body_mut().with_config().limit(MANIFEST_MAX).read_to_vec().map_err(|e| {
        RegistryError::Transport { registry: client.registry.clone(), op: op.into(), why: e.to_string() }
    })?;
    let digest = image::digest_of(&bytes);
    let expect = if reference.starts_with("sha256:") {
        Some(reference.to_string())
    } else {
        served.filter(|d| d.starts_with("sha256:"))
    };
    if let Some(want) = expect {
        if want != digest {
            return Err(RegistryError::Digest {
                registry: client.registry.clone(),
                repository: repository.into(),
                what: "manifest",
                digest: want,
                why: format!("content has digest {digest}"),
            });
        }
    }
    let (mt, fetched) = manifest::classify(&bytes, &ct).map_err(|why| RegistryError::Invalid {
        registry: client.registry.clone(),
        what: format!("manifest {repository}:{reference}"),
        why,
    })?;
    Ok((bytes, mt, fetched, digest))
}

/// Pulls `r` for `platform` into the store. `explicit_platform`: the user asked for it, so a
/// single-platform image of another platform is refused rather than taken.
pub fn pull(
    store: &Store,
    opts: &Options,
    r: &Reference,
    platform: &Platform,
    explicit_platform: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pulled, RegistryError> {
    let client = Client::connect(&r.registry, opts, None)?;
    pull_with(store, &client, r, platform, explicit_platform, log)
}

pub fn pull_with(
    store: &Store,
    client: &Client,
    r: &Reference,
    platform: &Platform,
    explicit_platform: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pulled, RegistryError> {
    let repo = r.repository.as_str();
    let scopes = vec![repo_scope(repo, false)];
    let op = format!("pull {r}: GET manifest");
    let (mut bytes, mut mt, fetched, top) = fetch_manifest(client, repo, r.api_reference(), &scopes, &op)?;
    let m: Manifest = match fetched {
        Fetched::Image(m) => m,
        Fetched::Index(idx) => {
            let Some(d) = manifest::pick(&idx, platform) else {
                return Err(RegistryError::Invalid {
                    registry: client.registry.clone(),
                    what: format!("image index {r}"),
                    why: format!(
                        "no manifest for platform {platform} (it has {})",
                        manifest::platforms(&idx).join(", ")
                    ),
                });
            };
            let op = format!("pull {r}: GET manifest {} for {platform}", d.digest);
            let (b, t, f, _) = fetch_manifest(client, repo, &d.digest, &scopes, &op)?;
            match f {
                Fetched::Image(m) => {
                    bytes = b;
                    mt = t;
                    m
                }
                Fetched::Index(_) => {
                    return Err(RegistryError::Invalid {
                        registry: client.registry.clone(),
                        what: format!("image index {r}"),
                        why: "an index inside an index".into(),
                    })
                }
            }
        }
    };
    for l in &m.layers {
        if !manifest::layer_supported(&l.media_type) {
            return Err(RegistryError::Invalid {
                registry: client.registry.clone(),
                what: format!("image {r}"),
                why: format!("layer {} has media type {:?}, which slipway cannot unpack", l.digest, l.media_type),
            });
        }
    }
    let mdigest = image::digest_of(&bytes);
    if let Some(tag) = &r.tag {
        if r.digest.is_none() {
            log(&format!("{tag}: Pulling from {}", r.familiar_repository()));
        }
    }
    // the config first, into memory (it is small): its platform is checked before any layer
    // comes, and it enters the store only with the layers
    let cbytes = if store.has_blob(&m.config.digest) {
        store.read_blob(&m.config.digest)?
    } else {
        fetch_small(client, repo, &m.config, &scopes, &format!("pull {r}: GET config {}", m.config.digest))?
    };
    let config: serde_json::Value = serde_json::from_slice(&cbytes).map_err(|e| RegistryError::Invalid {
        registry: client.registry.clone(),
        what: format!("image config {}", m.config.digest),
        why: e.to_string(),
    })?;
    let mut fetched = usize::from(!store.has_blob(&m.config.digest));
    let (os, arch) = (config["os"].as_str().unwrap_or(""), config["architecture"].as_str().unwrap_or(""));
    if explicit_platform && !platform.matches(&config) {
        return Err(RegistryError::Invalid {
            registry: client.registry.clone(),
            what: format!("image {r}"),
            why: format!("it is {os}/{arch}, not the requested {platform}"),
        });
    }
    if config["rootfs"]["diff_ids"].as_array().map(Vec::len) != Some(m.layers.len()) {
        return Err(RegistryError::Invalid {
            registry: client.registry.clone(),
            what: format!("image {r}"),
            why: format!(
                "its config lists {} diff_ids for {} layers",
                config["rootfs"]["diff_ids"].as_array().map(Vec::len).unwrap_or(0),
                m.layers.len()
            ),
        });
    }
    let n = std::sync::atomic::AtomicUsize::new(0);
    blob::parallel(&m.layers, blob::PARALLEL, |l| {
        if blob::fetch(client, repo, l, store, &scopes)? {
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            log(&format!("{}: Pull complete", short(&l.digest)));
        } else {
            log(&format!("{}: Already exists", short(&l.digest)));
        }
        Ok(())
    })?;
    fetched += n.into_inner();
    // the manifest is kept verbatim (its digest is the registry's); the name comes last
    store.put_blob(&cbytes)?;
    let d = store.put_blob(&bytes)?;
    debug_assert_eq!(d, mdigest);
    for b in std::iter::once(&m.config).chain(m.layers.iter()) {
        blob::remember(store, &b.digest, &client.registry, repo);
    }
    let desc = Descriptor {
        media_type: mt,
        digest: mdigest.clone(),
        size: bytes.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    let name = r.store_name();
    store.set_ref(&name, desc.clone())?;
    log(&format!("Digest: {top}"));
    if fetched == 0 {
        log(&format!("Status: Image is up to date for {name}"));
    } else {
        log(&format!("Status: Downloaded newer image for {name}"));
    }
    Ok(Pulled { name, digest: top, manifest: desc, id: m.config.digest.clone(), fetched })
}

/// A small blob (a config) into memory, checked against its digest.
pub fn fetch_small(
    client: &Client,
    repository: &str,
    d: &Descriptor,
    scopes: &[String],
    op: &str,
) -> Result<Vec<u8>, RegistryError> {
    let res = client.send("GET", &format!("{repository}/blobs/{}", d.digest), scopes, &[], &Body::Empty, op)?;
    if res.status().as_u16() != 200 {
        return Err(client.fail(op, res));
    }
    let mut res = res;
    let b = res.body_mut().with_config().limit(MANIFEST_MAX.max(d.size)).read_to_vec().map_err(|e| {
        RegistryError::Transport { registry: client.registry.clone(), op: op.into(), why: e.to_string() }
    })?;
    let got = image::digest_of(&b);
    if got != d.digest {
        return Err(RegistryError::Digest {
            registry: client.registry.clone(),
            repository: repository.into(),
            what: "blob",
            digest: d.digest.clone(),
            why: format!("content has digest {got}"),
        });
    }
    Ok(b)
}

fn short(d: &str) -> &str {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    &h[..h.len().min(12)]
}
