//! The non-build subcommands over the store: images, inspect, history, tag, rmi, prune,
//! unpack. Each returns its text; main.rs prints it.

use crate::layer::{self, Whiteouts};
use crate::rootfs;
use crate::spec;
use crate::store::{io_err, normalize_ref, Store, StoreError};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn short(id: &str) -> String {
    crate::build::short(id)
}

fn human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.3}GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.3}MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.3}kB", f / 1e3)
    } else {
        format!("{n}B")
    }
}

pub fn images(store: &Store) -> Result<String, StoreError> {
    let mut out = format!("{:<40} {:<20} {:<14} {:<22} {}\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
    for (name, d) in store.refs()? {
        let img = store.image_by_manifest(&d.digest)?;
        let (repo, tag) = name.rsplit_once(':').unwrap_or((&name, "latest"));
        let size: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
        out.push_str(&format!(
            "{:<40} {:<20} {:<14} {:<22} {}\n",
            repo,
            tag,
            short(img.id()),
            img.config.created,
            human(size)
        ));
    }
    Ok(out)
}

pub fn inspect(store: &Store, names: &[String]) -> Result<String, StoreError> {
    let mut arr = Vec::new();
    for n in names {
        let img = store.image(n)?;
        let tags: Vec<String> =
            store.refs()?.into_iter().filter(|(_, d)| d.digest == img.manifest_digest).map(|(n, _)| n).collect();
        let size: u64 = img.manifest.layers.iter().map(|l| l.size).sum();
        arr.push(serde_json::json!({
            "Id": img.config_digest,
            "RepoTags": tags,
            "Created": img.config.created,
            "Author": img.config.author,
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Size": size,
            "Config": img.config.config,
            "RootFS": {"Type": img.config.rootfs.kind, "Layers": img.config.rootfs.diff_ids},
            "Manifest": img.manifest_digest,
        }));
    }
    Ok(serde_json::to_string_pretty(&arr).unwrap_or_default() + "\n")
}

pub fn history(store: &Store, name: &str) -> Result<String, StoreError> {
    let img = store.image(name)?;
    let mut out = format!("{:<14} {:<22} {:<60} {:<10} {}\n", "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT");
    let mut layers = img.manifest.layers.iter().rev();
    for (i, h) in img.config.history.iter().rev().enumerate() {
        let size = if h.empty_layer { 0 } else { layers.next().map(|l| l.size).unwrap_or(0) };
        let id = if i == 0 { short(img.id()) } else { "<missing>".into() };
        let by: String = h.created_by.chars().take(60).collect();
        out.push_str(&format!("{:<14} {:<22} {:<60} {:<10} {}\n", id, h.created, by, human(size), h.comment));
    }
    Ok(out)
}

pub fn tag(store: &Store, src: &str, dst: &str) -> Result<(), StoreError> {
    let img = store.image(src)?;
    let refs = store.refs()?;
    let desc = refs
        .into_iter()
        .find(|(_, d)| d.digest == img.manifest_digest)
        .map(|(_, d)| d)
        .ok_or_else(|| StoreError::NoImage(src.into()))?;
    store.set_ref(&normalize_ref(dst)?, desc)
}

pub fn rmi(store: &Store, name: &str) -> Result<String, StoreError> {
    if let Ok(n) = normalize_ref(name) {
        if store.remove_ref(&n)? {
            return Ok(format!("Untagged: {n}\n"));
        }
    }
    let img = store.image(name)?;
    let mut out = String::new();
    for (n, d) in store.refs()? {
        if d.digest == img.manifest_digest && store.remove_ref(&n)? {
            out.push_str(&format!("Untagged: {n}\n"));
        }
    }
    out.push_str(&format!("Deleted: {}\n", img.config_digest));
    Ok(out)
}

/// Removes what no named image needs.
///
/// - Blobs: the manifests, configs and layers of named images stay; every other blob goes.
/// - Build cache: an entry stays when a build of a named image went through it (each build
///   records its steps' keys with the image) and every layer it restores belongs to a named
///   image; its small config blob is then kept too, so rebuilding a named image after `prune`
///   is still all cache hits. Every other entry goes with its config: those of unnamed images,
///   and of stages no named image contains. This is `docker image prune` plus the part of
///   `docker builder prune` that frees what no name uses: the cache of what you named is kept.
/// - Snapshots (extracted layers) of pruned layers go; stat caches of contexts that are gone.
pub fn prune(store: &Store) -> Result<String, StoreError> {
    let _builds = store.gc_lock()?;
    let _g = store.lock()?;
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let mut keep_layers: BTreeSet<String> = BTreeSet::new();
    let mut keep_snaps: BTreeSet<String> = BTreeSet::new();
    let mut chain_keys: BTreeSet<String> = BTreeSet::new();
    for d in store.index()?.manifests {
        keep.insert(hex(&d.digest));
        let built_by: Vec<String> =
            store.read_record(&format!("cache/images/{}.json", hex(&d.digest))).unwrap_or_default();
        chain_keys.extend(built_by);
        let img = store.image_by_manifest(&d.digest)?;
        keep.insert(hex(&img.config_digest));
        for l in &img.manifest.layers {
            keep_layers.insert(hex(&l.digest));
        }
        for d in &img.config.rootfs.diff_ids {
            keep_snaps.insert(hex(d));
        }
    }
    keep.extend(keep_layers.iter().cloned());

    // cache entries
    let steps = store.root.join("cache/steps");
    let mut kept_keys: BTreeSet<String> = BTreeSet::new();
    let mut dropped = 0u64;
    for e in fs::read_dir(&steps).map_err(io_err("read dir", &steps))?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(key) = name.strip_suffix(".json") else { continue };
        let entry: Option<crate::cache::Hit> = store.read_record(&format!("cache/steps/{name}"));
        match entry {
            Some(h) if chain_keys.contains(key) && h.layers.iter().all(|l| keep_layers.contains(&hex(&l.digest))) => {
                keep.insert(hex(&h.config));
                kept_keys.insert(key.to_string());
            }
            _ => {
                if fs::remove_file(e.path()).is_ok() {
                    dropped += 1;
                }
            }
        }
    }
    let parents = store.root.join("cache/parents");
    for e in fs::read_dir(&parents).map_err(io_err("read dir", &parents))?.flatten() {
        let rel = format!("cache/parents/{}", e.file_name().to_string_lossy());
        let keys: Vec<String> = store.read_record(&rel).unwrap_or_default();
        let left: Vec<String> = keys.iter().filter(|k| kept_keys.contains(*k)).cloned().collect();
        if left.is_empty() {
            let _ = fs::remove_file(e.path());
        } else if left.len() != keys.len() {
            store.write_record(&rel, &left)?;
        }
    }
    let images = store.root.join("cache/images");
    for e in fs::read_dir(&images).map_err(io_err("read dir", &images))?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !keep.contains(name.trim_end_matches(".json")) {
            let _ = fs::remove_file(e.path());
        }
    }
    let stat = store.root.join("cache/stat");
    for e in fs::read_dir(&stat).map_err(io_err("read dir", &stat))?.flatten() {
        if !crate::context::stat_cache_is_live(&e.path()) {
            let _ = fs::remove_file(e.path());
        }
    }

    // blobs and snapshots
    let mut removed = 0u64;
    let mut freed = 0u64;
    let blobs = store.root.join("blobs/sha256");
    for e in fs::read_dir(&blobs).map_err(io_err("read dir", &blobs))?.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if !keep.contains(&n) {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            if fs::remove_file(e.path()).is_ok() {
                removed += 1;
                freed += size;
            }
        }
    }
    let snaps = store.root.join("snapshots");
    for e in fs::read_dir(&snaps).map_err(io_err("read dir", &snaps))?.flatten() {
        if !keep_snaps.contains(&e.file_name().to_string_lossy().to_string()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(format!(
        "Deleted {dropped} build cache entries\nDeleted {removed} blobs\nTotal reclaimed space: {}\n",
        human(freed)
    ))
}

/// Writes an OCI bundle: DIR/rootfs (layers applied) and DIR/config.json from the image config.
pub fn unpack(store: &Store, name: &str, dir: &Path) -> Result<(), StoreError> {
    let img = store.image(name)?;
    let rootfs_dir = dir.join("rootfs");
    fs::create_dir_all(&rootfs_dir).map_err(io_err("create", &rootfs_dir))?;
    for l in &img.manifest.layers {
        let p = store.blob_path(&l.digest);
        let r = layer::open_decompressed(&p).map_err(io_err("open", &p))?;
        layer::extract(r, &rootfs_dir, Whiteouts::Apply).map_err(io_err("extract layer", &p))?;
    }
    let c = &img.config.config;
    let mut args = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        args.push("sh".into());
    }
    let ident = if c.user.is_empty() {
        rootfs::Ident { uid: 0, gid: 0, additional_gids: vec![] }
    } else {
        rootfs::resolve_user(&rootfs_dir, &c.user).map_err(|e| StoreError::Io {
            op: "resolve user for",
            path: rootfs_dir.clone(),
            err: std::io::Error::other(e),
        })?
    };
    let mut env = c.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", crate::store::image::DEFAULT_PATH));
    }
    let p = spec::Process {
        args,
        env,
        cwd: if c.working_dir.is_empty() { "/".into() } else { c.working_dir.clone() },
        uid: ident.uid,
        gid: ident.gid,
        additional_gids: ident.additional_gids,
    };
    let cfg = spec::config("rootfs", &p, "slipway", spec::Network::None, None);
    let cp = dir.join("config.json");
    store.write_atomic(&cp, &serde_json::to_vec_pretty(&cfg).unwrap_or_default())?;
    Ok(())
}
