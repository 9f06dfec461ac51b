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

/// Drops the build cache and every blob and snapshot no named image uses.
pub fn prune(store: &Store) -> Result<String, StoreError> {
    let _builds = store.gc_lock()?;
    let _g = store.lock()?;
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let mut keep_snaps: BTreeSet<String> = BTreeSet::new();
    for d in store.index()?.manifests {
        keep.insert(d.digest.trim_start_matches("sha256:").to_string());
        let img = store.image_by_manifest(&d.digest)?;
        keep.insert(img.config_digest.trim_start_matches("sha256:").to_string());
        for l in &img.manifest.layers {
            keep.insert(l.digest.trim_start_matches("sha256:").to_string());
        }
        for d in &img.config.rootfs.diff_ids {
            keep_snaps.insert(d.trim_start_matches("sha256:").to_string());
        }
    }
    for d in ["cache/steps", "cache/parents", "cache/stat"] {
        let p = store.root.join(d);
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).map_err(io_err("create", &p))?;
    }
    let mut removed = 0u64;
    let mut freed = 0u64;
    let blobs = store.root.join("blobs/sha256");
    for e in fs::read_dir(&blobs).map_err(io_err("read dir", &blobs))?.flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if !keep.contains(&n) {
            freed += e.metadata().map(|m| m.len()).unwrap_or(0);
            if fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    let snaps = store.root.join("snapshots");
    for e in fs::read_dir(&snaps).map_err(io_err("read dir", &snaps))?.flatten() {
        if !keep_snaps.contains(&e.file_name().to_string_lossy().to_string()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(format!("Deleted {removed} blobs\nTotal reclaimed space: {}\n", human(freed)))
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
