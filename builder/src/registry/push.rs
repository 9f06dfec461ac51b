//! Push: a store image, or an index over several (a multi-platform build, a loaded manifest
//! list) -> every blob it needs (skipped when the registry has them, mounted from another
//! repository of the registry that has them, else uploaded, several at once) -> each
//! platform's manifest by digest -> the top manifest or index by tag (or, pushed by digest, by
//! its digest only), byte for byte, so the pushed digest is the local one. A repeated push
//! sends only HEAD requests. Everything is read from the store before the first request: an
//! image or index whose blob the store lacks is refused before anything is sent.

use super::auth::repo_scope;
use super::blob::{self, Mount};
use super::client::{header, Body, Client, Options};
use super::error::RegistryError;
use super::manifest::{self, Fetched, MT_DOCKER_LIST};
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

/// One manifest (or index) to PUT: its digest, bytes and media type.
#[derive(Debug, Clone)]
struct ManifestPut {
    digest: String,
    bytes: Vec<u8>,
    media_type: String,
}

/// What a push sends: the blobs, then the manifests children first (the last is the top).
#[derive(Debug, Default)]
struct Plan {
    blobs: Vec<Descriptor>,
    manifests: Vec<ManifestPut>,
}

/// How deep indexes may nest (an index of indexes of images is as deep as registries go).
const MAX_DEPTH: usize = 4;

fn is_manifest_type(mt: &str) -> bool {
    matches!(mt, image::MT_MANIFEST | image::MT_DOCKER_MANIFEST | image::MT_INDEX | MT_DOCKER_LIST)
}

/// Reads the manifest `digest` (and, for an index, every manifest it lists) from the store,
/// checking that each blob they name is there. `what` says where it sits (for errors).
fn plan_manifest(
    store: &Store,
    op: &str,
    digest: &str,
    media_type: &str,
    what: &str,
    depth: usize,
    plan: &mut Plan,
) -> Result<(), RegistryError> {
    let missing = |d: &str, what: String| RegistryError::Missing { op: op.to_string(), what, digest: d.to_string() };
    if !store.has_blob(digest) {
        return Err(missing(digest, format!("the {what}")));
    }
    let bytes = store.read_blob(digest)?;
    let (mt, fetched) = manifest::classify(&bytes, media_type)
        .map_err(|why| RegistryError::Local { op: op.to_string(), why: format!("{what} {digest}: {why}") })?;
    match fetched {
        Fetched::Image(m) => {
            for (b, kind) in std::iter::once((&m.config, "config")).chain(m.layers.iter().map(|l| (l, "layer"))) {
                if !store.has_blob(&b.digest) {
                    return Err(missing(&b.digest, format!("the {kind} of the {what} {digest}")));
                }
                if !plan.blobs.iter().any(|p| p.digest == b.digest) {
                    plan.blobs.push(b.clone());
                }
            }
        }
        Fetched::Index(idx) => {
            if depth >= MAX_DEPTH {
                return Err(RegistryError::Local {
                    op: op.to_string(),
                    why: format!("{what} {digest}: indexes nested more than {MAX_DEPTH} deep"),
                });
            }
            for d in &idx.manifests {
                if !is_manifest_type(&d.media_type) {
                    return Err(RegistryError::Local {
                        op: op.to_string(),
                        why: format!("{what} {digest}: its entry {} is a {:?}, not a manifest", d.digest, d.media_type),
                    });
                }
                let plat = d
                    .platform
                    .as_ref()
                    .map(|p| {
                        let mut s = format!(
                            "{}/{}",
                            p["os"].as_str().unwrap_or("?"),
                            p["architecture"].as_str().unwrap_or("?")
                        );
                        if let Some(v) = p["variant"].as_str() {
                            s.push('/');
                            s.push_str(v);
                        }
                        format!(" for {s}")
                    })
                    .unwrap_or_default();
                plan_manifest(store, op, &d.digest, &d.media_type, &format!("manifest{plat}"), depth + 1, plan)?;
            }
        }
    }
    if !plan.manifests.iter().any(|m| m.digest == digest) {
        plan.manifests.push(ManifestPut { digest: digest.to_string(), bytes, media_type: mt });
    }
    Ok(())
}

/// Sends `blobs` to `r`'s repository: skipped when there, mounted when another repository of
/// the registry is known to have them, else uploaded; several at once. Returns (uploaded,
/// mounted, existed).
fn push_blobs(
    store: &Store,
    client: &Client,
    r: &Reference,
    blobs: &[Descriptor],
    scopes: &[String],
    log: &(dyn Fn(&str) + Sync),
) -> Result<(usize, usize, usize), RegistryError> {
    let repo = r.repository.as_str();
    let (uploaded, mounted, existed) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let mut uniq: Vec<&Descriptor> = Vec::new();
    for b in blobs {
        if !uniq.iter().any(|u| u.digest == b.digest) {
            uniq.push(b);
        }
    }
    blob::parallel(&uniq, blob::PARALLEL, |b| {
        let short = &b.digest[7..19.min(b.digest.len())];
        if blob::exists(client, repo, &b.digest, scopes)? {
            existed.fetch_add(1, Ordering::SeqCst);
            log(&format!("{short}: Layer already exists"));
            blob::remember(store, &b.digest, &client.registry, repo);
            return Ok(());
        }
        let mut location = None;
        if let Some(from) = blob::known_sources(store, &b.digest, &client.registry).into_iter().find(|s| s != repo) {
            match blob::mount(client, repo, &b.digest, &from, scopes)? {
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
        blob::upload(client, repo, &path, &b.digest, size, location, scopes)?;
        uploaded.fetch_add(1, Ordering::SeqCst);
        log(&format!("{short}: Pushed"));
        blob::remember(store, &b.digest, &client.registry, repo);
        Ok(())
    })?;
    Ok((uploaded.into_inner(), mounted.into_inner(), existed.into_inner()))
}

/// PUTs manifest `m` under `reference` (a tag or its digest) unless the registry already has
/// that manifest there; returns whether it had.
fn put_manifest(
    client: &Client,
    r: &Reference,
    reference: &str,
    m: &ManifestPut,
    scopes: &[String],
) -> Result<bool, RegistryError> {
    let repo = r.repository.as_str();
    let mpath = format!("{repo}/manifests/{reference}");
    let shown = if reference.starts_with("sha256:") { r.with_digest(reference) } else { r.clone() };
    // the same manifest under that name already: nothing to write
    let op = format!("push {shown}: HEAD manifest");
    let accept = manifest::accept_header();
    let mut res = client.send("HEAD", &mpath, scopes, &[("Accept", &accept)], &Body::Empty, &op)?;
    let there = res.status().as_u16() == 200 && header(&res, "docker-content-digest") == Some(m.digest.as_str());
    let _ = res.body_mut().read_to_vec();
    if there {
        return Ok(true);
    }
    let op = format!("push {shown}: PUT manifest {}", m.digest);
    let res = client.send("PUT", &mpath, scopes, &[("Content-Type", &m.media_type)], &Body::Bytes(&m.bytes), &op)?;
    if res.status().as_u16() != 201 {
        return Err(client.fail(&op, res));
    }
    if let Some(got) = header(&res, "docker-content-digest") {
        if got != m.digest {
            return Err(RegistryError::Digest {
                registry: client.registry.clone(),
                repository: repo.into(),
                what: "manifest",
                digest: m.digest.clone(),
                why: format!("the registry stored it as {got}"),
            });
        }
    }
    let mut res = res;
    let _ = res.body_mut().read_to_vec();
    Ok(false)
}

/// Sends a plan: its blobs, every manifest but the top by digest, then the top under `r`'s
/// tag, or by its digest when `r` names one or `by_digest`.
fn send(
    store: &Store,
    client: &Client,
    r: &Reference,
    plan: &Plan,
    by_digest: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pushed, RegistryError> {
    let repo = r.repository.as_str();
    let Some(top) = plan.manifests.last() else {
        return Err(RegistryError::Local { op: format!("push {r}"), why: "nothing to push".into() });
    };
    if let Some(want) = &r.digest {
        if *want != top.digest {
            return Err(RegistryError::Invalid {
                registry: client.registry.clone(),
                what: format!("push {r}"),
                why: format!("the local manifest is {}, not the digest the reference names", top.digest),
            });
        }
    }
    // mount sources: other repositories of this registry known to hold our blobs
    let mut sources: Vec<String> = Vec::new();
    for b in &plan.blobs {
        for s in blob::known_sources(store, &b.digest, &client.registry) {
            if s != repo && !sources.contains(&s) {
                sources.push(s);
            }
        }
    }
    let mut scopes = vec![repo_scope(repo, true)];
    scopes.extend(sources.iter().map(|s| repo_scope(s, false)));
    let (uploaded, mounted, existed) = push_blobs(store, client, r, &plan.blobs, &scopes, log)?;
    // the platforms' manifests by digest, so the index that names them can be accepted
    for m in &plan.manifests[..plan.manifests.len() - 1] {
        if !put_manifest(client, r, &m.digest, m, &scopes)? {
            log(&format!("{}: Pushed manifest {}", short(&m.digest), m.media_type));
        }
    }
    let reference = match (&r.digest, by_digest) {
        (Some(d), _) => d.clone(),
        (None, true) => top.digest.clone(),
        (None, false) => r.tag.clone().unwrap_or_else(|| "latest".into()),
    };
    let there = put_manifest(client, r, &reference, top, &scopes)?;
    Ok(Pushed {
        digest: top.digest.clone(),
        size: top.bytes.len() as u64,
        uploaded,
        mounted,
        existed,
        manifest_existed: there,
    })
}

/// An HTTP error of a push says which push: `push REF: HEAD blob ...: registry HOST answered
/// HTTP 401: UNAUTHORIZED` (the blob and connect steps name only the repository).
fn named(e: RegistryError, shown: &Reference) -> RegistryError {
    let prefix = format!("push {shown}");
    let op = |op: String| if op.starts_with(&prefix) { op } else { format!("{prefix}: {op}") };
    match e {
        RegistryError::Transport { registry, op: o, why } => RegistryError::Transport { registry, op: op(o), why },
        RegistryError::Status { registry, op: o, status, codes } => {
            RegistryError::Status { registry, op: op(o), status, codes }
        }
        e => e,
    }
}

fn short(d: &str) -> &str {
    let h = d.strip_prefix("sha256:").unwrap_or(d);
    &h[..h.len().min(12)]
}

/// Pushes the blobs `blobs` and then the manifest `manifest_bytes` (of type `media_type`) to
/// `r`. Cache exports use it (their blobs are not all an image's).
pub fn push_manifest_and_blobs(
    store: &Store,
    client: &Client,
    r: &Reference,
    blobs: &[Descriptor],
    manifest_bytes: &[u8],
    media_type: &str,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pushed, RegistryError> {
    let plan = Plan {
        blobs: blobs.to_vec(),
        manifests: vec![ManifestPut {
            digest: image::digest_of(manifest_bytes),
            bytes: manifest_bytes.to_vec(),
            media_type: media_type.to_string(),
        }],
    };
    send(store, client, r, &plan, false, log)
}

/// The manifest (or index) the store names `local`, as (digest, media type): a name of
/// index.json as it is (a multi-platform name is its index), else an image ID.
fn local_top(store: &Store, local: &str) -> Result<(String, String), RegistryError> {
    if let Ok(name) = crate::store::normalize_ref(local) {
        if let Some((_, d)) = store.refs()?.into_iter().find(|(n, _)| *n == name) {
            return Ok((d.digest, d.media_type));
        }
    }
    let img = store.image(local)?;
    Ok((img.manifest_digest, String::new()))
}

/// Pushes the store image or index `local` to `r`: by `r`'s tag, or with `by_digest` by
/// digest only (BuildKit's `push-by-digest`: no tag is written).
pub fn push(
    store: &Store,
    opts: &Options,
    local: &str,
    r: &Reference,
    by_digest: bool,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Pushed, RegistryError> {
    let (digest, mt) = local_top(store, local)?;
    let shown = if by_digest { r.with_digest(&digest) } else { r.clone() };
    let mut plan = Plan::default();
    plan_manifest(store, &format!("push {shown}"), &digest, &mt, "image", 0, &mut plan)?;
    let client = Client::connect(&r.registry, opts, None).map_err(|e| named(e, &shown))?;
    log(&format!("The push refers to repository [{}/{}]", r.registry, r.repository));
    let p = send(store, &client, r, &plan, by_digest, log).map_err(|e| named(e, &shown))?;
    let label = if by_digest || r.digest.is_some() { "digest-only" } else { r.tag.as_deref().unwrap_or("latest") };
    log(&format!("{label}: digest: {} size: {}", p.digest, p.size));
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A docker manifest list in the store: its platforms' manifests come first (each with its
    /// blobs), the list last, with its own media type; a lost blob is named before anything.
    #[test]
    fn a_docker_manifest_list_is_planned_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let layer = store.put_blob(format!("layer {arch}").as_bytes()).unwrap();
            let config = store.put_blob(format!("{{\"architecture\":\"{arch}\"}}").as_bytes()).unwrap();
            let m = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": image::MT_DOCKER_MANIFEST,
                "config": {"mediaType": image::MT_DOCKER_CONFIG, "digest": config, "size": 1},
                "layers": [{"mediaType": image::MT_DOCKER_LAYER_GZIP, "digest": layer, "size": 1}],
            });
            let (d, size) = store.put_json(&m).unwrap();
            children.push(serde_json::json!({
                "mediaType": image::MT_DOCKER_MANIFEST, "digest": d, "size": size,
                "platform": {"os": "linux", "architecture": arch},
            }));
        }
        let list = serde_json::json!({"schemaVersion": 2, "mediaType": MT_DOCKER_LIST, "manifests": children});
        let (top, _) = store.put_json(&list).unwrap();
        let mut plan = Plan::default();
        plan_manifest(&store, "push x", &top, MT_DOCKER_LIST, "image", 0, &mut plan).unwrap();
        let order: Vec<&str> = plan.manifests.iter().map(|m| m.digest.as_str()).collect();
        assert_eq!(order, [children[0]["digest"].as_str().unwrap(), children[1]["digest"].as_str().unwrap(), &top]);
        assert_eq!(plan.manifests[2].media_type, MT_DOCKER_LIST);
        assert_eq!(plan.manifests[0].media_type, image::MT_DOCKER_MANIFEST);
        assert_eq!(plan.blobs.len(), 4);
        // the arm64 manifest lost: named with its platform
        let arm = children[1]["digest"].as_str().unwrap();
        std::fs::remove_file(store.blob_path(arm)).unwrap();
        let e = plan_manifest(&store, "push x", &top, MT_DOCKER_LIST, "image", 0, &mut Plan::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("push x: blob {arm} (the manifest for linux/arm64) is not in the store; nothing was pushed")
        );
    }
}
