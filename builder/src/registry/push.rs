//! Push: a store image -> its blobs (skipped when the registry has them, mounted from
//! another repository of the registry that has them, else uploaded, several at once) -> its
//! manifest byte for byte, so the pushed digest is the local one. A repeated push sends only
//! HEAD requests.

use super::auth::repo_scope;
use super::blob::{self, Mount};
use super::client::{header, Body, Client, Options};
use super::error::RegistryError;
use super::reference::Reference;
use crate::store::image::{self, Descriptor};
use crate::store::Store;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone, Default)]
pub struct Pushed {
    pub digest: String,
    pub size: u64,
    pub uploaded: usize,
    pub mounted: usize,
    pub existed: usize,
    /// The manifest was already there under that tag.
    pub manifest_existed: bool,
}

/// Pushes the blobs `blobs` and then the manifest `manifest_bytes` (of type `media_type`) to
/// `r`. Shared by image pushes and cache exports.
pub fn push_manifest_and_blobs(
    store: &Store,
    client: &Client,
    r: &Reference,
    blobs: &[Descriptor],
    manifest_bytes: &[u8],
    media_type: &str,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pushed, RegistryError> {
    let repo = r.repository.as_str();
    let digest = image::digest_of(manifest_bytes);
    if let Some(want) = &r.digest {
        if *want != digest {
            return Err(RegistryError::Invalid {
                registry: client.registry.clone(),
                what: format!("push {r}"),
                why: format!("the local manifest is {digest}, not the digest the reference names"),
            });
        }
    }
    // mount sources: other repositories of this registry known to hold our blobs
    let mut sources: Vec<String> = Vec::new();
    for b in blobs {
        for s in blob::known_sources(store, &b.digest, &client.registry) {
            if s != repo && !sources.contains(&s) {
                sources.push(s);
            }
        }
    }
    let mut scopes = vec![repo_scope(repo, true)];
    scopes.extend(sources.iter().map(|s| repo_scope(s, false)));
    let (uploaded, mounted, existed) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let mut uniq: Vec<&Descriptor> = Vec::new();
    for b in blobs {
        if !uniq.iter().any(|u| u.digest == b.digest) {
            uniq.push(b);
        }
    }
    blob::parallel(&uniq, blob::PARALLEL, |b| {
        let short = &b.digest[7..19.min(b.digest.len())];
        if blob::exists(client, repo, &b.digest, &scopes)? {
            existed.fetch_add(1, Ordering::SeqCst);
            log(&format!("{short}: Layer already exists"));
            blob::remember(store, &b.digest, &client.registry, repo);
            return Ok(());
        }
        let mut location = None;
        if let Some(from) = blob::known_sources(store, &b.digest, &client.registry).into_iter().find(|s| s != repo) {
            match blob::mount(client, repo, &b.digest, &from, &scopes)? {
                Mount::Mounted => {
                    mounted.fetch_add(1, Ordering::SeqCst);
                    log(&format!("{short}: Mounted from {from}"));
                    blob::remember(store, &b.digest, &client.registry, repo);
                    return Ok(());
                }
                Mount::Upload(l) => location = Some(l),
            }
        }
        let path = store.blob_path(&b.digest);
        let size = std::fs::metadata(&path).map_err(|err| RegistryError::Io { path: path.clone(), err })?.len();
        blob::upload(client, repo, &path, &b.digest, size, location, &scopes)?;
        uploaded.fetch_add(1, Ordering::SeqCst);
        log(&format!("{short}: Pushed"));
        blob::remember(store, &b.digest, &client.registry, repo);
        Ok(())
    })?;
    let reference = r.digest.clone().or(r.tag.clone()).unwrap_or_else(|| "latest".into());
    let mpath = format!("{repo}/manifests/{reference}");
    // the same manifest under that name already: nothing to write
    let op = format!("push {r}: HEAD manifest");
    let accept = super::manifest::accept_header();
    let mut res = client.send("HEAD", &mpath, &scopes, &[("Accept", &accept)], &Body::Empty, &op)?;
    let there = res.status().as_u16() == 200 && header(&res, "docker-content-digest") == Some(digest.as_str());
    let _ = res.body_mut().read_to_vec();
    if !there {
        let op = format!("push {r}: PUT manifest");
        let res =
            client.send("PUT", &mpath, &scopes, &[("Content-Type", media_type)], &Body::Bytes(manifest_bytes), &op)?;
        if res.status().as_u16() != 201 {
            return Err(client.fail(&op, res));
        }
        if let Some(got) = header(&res, "docker-content-digest") {
            if got != digest {
                return Err(RegistryError::Digest {
                    registry: client.registry.clone(),
                    repository: repo.into(),
                    what: "manifest",
                    digest,
                    why: format!("the registry stored it as {got}"),
                });
            }
        }
        let mut res = res;
        let _ = res.body_mut().read_to_vec();
    }
    Ok(Pushed {
        digest,
        size: manifest_bytes.len() as u64,
        uploaded: uploaded.into_inner(),
        mounted: mounted.into_inner(),
        existed: existed.into_inner(),
        manifest_existed: there,
    })
}

/// Pushes the store image `local` to `r`.
pub fn push(
    store: &Store,
    opts: &Options,
    local: &str,
    r: &Reference,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pushed, RegistryError> {
    let img = store.image(local)?;
    let bytes = store.read_blob(&img.manifest_digest)?;
    let mt = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| image::MT_MANIFEST.to_string());
    let mut blobs = vec![img.manifest.config.clone()];
    blobs.extend(img.manifest.layers.iter().cloned());
    let client = Client::connect(&r.registry, opts, None)?;
    log(&format!("The push refers to repository [{}/{}]", r.registry, r.repository));
    let p = push_manifest_and_blobs(store, &client, r, &blobs, &bytes, &mt, log)?;
    log(&format!("{}: digest: {} size: {}", r.tag.as_deref().unwrap_or("latest"), p.digest, p.size));
    Ok(p)
}
