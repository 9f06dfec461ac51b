//! The store subcommands: images, inspect, history, tag, rmi, prune, unpack. Each returns its
//! text; main.rs prints it. Building is `build`'s, archives are `archive`'s.

use crate::layer::{self, Whiteouts};
use crate::rootfs;
use crate::spec;
use crate::store::{io_err, normalize_ref, Store, StoreError};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn short(id: &str) -> String {
    crate::store::image::short_id(id)
}

/// docker's size format (go-units HumanSizeWithPrecision, 3 digits, decimal units): `5.58MB`.
fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[u])
}

/// docker's CREATED column: how long ago (go-units HumanDuration), `N/A` without a time.
fn ago(created: &str, now: i64) -> String {
    let Some(t) = parse_rfc3339(created) else { return "N/A".into() };
    let secs = now.saturating_sub(t).max(0) as u64;
    let (mins, hours) = (secs / 60, (secs as f64 / 3600.0).round() as u64);
    let d = if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    };
    format!("{d} ago")
}

/// Seconds since the epoch of an RFC 3339 time (`2023-11-14T22:13:20.5+01:00`); None if it is
/// not one.
pub fn parse_rfc3339(t: &str) -> Option<i64> {
    let num = |s: &str| -> Option<i64> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten() };
    let (date, rest) = t.split_once(['T', 't', ' '])?;
    let mut dp = date.splitn(3, '-');
    let (y, m, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    let hms = rest.get(..8)?;
    let mut tp = hms.splitn(3, ':');
    let (hh, mm, ss) = (num(tp.next()?)?, num(tp.next()?)?, num(tp.next()?)?);
    let mut zone = &rest[8..];
    if let Some(frac) = zone.strip_prefix('.') {
        zone = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let secs = num(&z[1..3])? * 3600 + num(&z[4..6])? * 60;
            if z.starts_with('-') {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // days-from-civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss - offset)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// docker's `images`: named images, then untagged ones as `<none>`; SIZE is the unpacked size.
pub fn images(store: &Store) -> Result<String, StoreError> {
    let mut out = format!("{:<40} {:<20} {:<14} {:<16} {}\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
    let now = now();
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for (name, d) in store.refs()? {
        let (repo, tag) = name.rsplit_once(':').filter(|(_, t)| !t.contains('/')).unwrap_or((&name, "latest"));
        rows.push((repo.to_string(), tag.to_string(), d.digest));
    }
    for d in store.unnamed()? {
        rows.push(("<none>".into(), "<none>".into(), d.digest));
    }
    for (repo, tag, digest) in rows {
        let img = store.image_by_manifest(&digest)?;
        out.push_str(&format!(
            "{:<40} {:<20} {:<14} {:<16} {}\n",
            repo,
            tag,
            short(img.id()),
            ago(&img.config.created, now),
            human(crate::layer::image_size(store, &img)?)
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
        arr.push(serde_json::json!({
            "Id": img.config_digest,
            "RepoTags": tags,
            "Created": img.config.created,
            // slipway's own: where a build of ours took that time from (absent for others' images)
            "CreatedFrom": store.read_record::<String>(&format!("cache/created/{}.json", img.config_digest.trim_start_matches("sha256:"))),
            "Author": img.config.author,
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Size": crate::layer::image_size(store, &img)?,
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
    let desc = store.manifest_descriptor(&img)?;
    store.set_ref(&normalize_ref(dst)?, desc)
}

/// docker's `rmi`: a name is untagged; an ID removes the image with every name it has.
pub fn rmi(store: &Store, name: &str) -> Result<String, StoreError> {
    if let Ok(n) = normalize_ref(name) {
        if store.remove_ref(&n)? {
            return Ok(format!("Untagged: {n}\n"));
        }
    }
    let img = store.image(name)?;
    if !store.indexed(&img.manifest_digest)? {
        return Err(StoreError::Conflict(format!(
            "unable to delete {} (an intermediate build step, no image of its own): `slipway prune` removes it",
            short(img.id())
        )));
    }
    let mut out = String::new();
    for (n, d) in store.refs()? {
        if d.digest == img.manifest_digest && store.remove_ref(&n)? {
            out.push_str(&format!("Untagged: {n}\n"));
        }
    }
    store.remove_unnamed(&img.manifest_digest)?;
    out.push_str(&format!("Deleted: {}\n", img.config_digest));
    Ok(out)
}

/// What `prune` keeps of the cache mounts (docker builder prune's `--filter` and
/// `--keep-storage`); by default none stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneLimits {
    /// `--filter until=DURATION` (or `unused-for=`): cache mounts used more recently stay.
    pub until: Option<u64>,
    /// `--filter id=ID`: only cache mounts of these ids go.
    pub ids: Vec<String>,
    /// `--keep-storage SIZE`: the most recently used cache mounts stay while they fit.
    pub keep_storage: Option<u64>,
}

impl PruneLimits {
    /// Parses `--filter` values and `--keep-storage`.
    pub fn parse(filters: &[String], keep_storage: Option<&str>) -> Result<PruneLimits, String> {
        let mut l = PruneLimits::default();
        for f in filters {
            let (k, v) = f.split_once('=').ok_or_else(|| format!("--filter {f:?}: expected KEY=VALUE"))?;
            match k {
                "until" | "unused-for" => {
                    let d = crate::plan::parse_duration(v).map_err(|e| format!("--filter {f:?}: {e}"))?;
                    if d < 0 {
                        return Err(format!("--filter {f:?}: the duration is negative"));
                    }
                    l.until = Some(d as u64 / 1_000_000_000);
                }
                "id" => l.ids.push(v.to_string()),
                _ => return Err(format!("--filter {f:?}: unknown filter {k:?} (until, unused-for, id)")),
            }
        }
        if let Some(k) = keep_storage {
            l.keep_storage = Some(
                crate::runmount::ram_in_bytes(k)
                    .ok_or_else(|| format!("--keep-storage {k:?}: expected a size such as 512MB or 2g"))?,
            );
        }
        Ok(l)
    }
}

/// Drops cache mounts as `limits` say; returns (dropped, bytes freed). Held under the gc lock.
fn prune_cache_mounts(store: &Store, limits: &PruneLimits) -> Result<(usize, u64), StoreError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut all: Vec<(crate::store::mounts::Info, u64)> = store
        .cache_mounts()
        .into_iter()
        .map(|i| {
            let size =
                i.instances.iter().map(|n| crate::store::mounts::disk_usage(&store.cache_mount_data(&i.key, *n))).sum();
            (i, size)
        })
        .collect();
    // most recently used first: those are what --keep-storage keeps
    all.sort_by_key(|(i, _)| std::cmp::Reverse(i.meta.used));
    let mut kept = 0u64;
    let (mut dropped, mut freed) = (0usize, 0u64);
    for (info, size) in all {
        let recent = limits.until.is_some_and(|u| now.saturating_sub(info.meta.used) < u);
        let other_id = !limits.ids.is_empty() && !limits.ids.contains(&info.meta.id);
        let fits = limits.keep_storage.is_some_and(|k| kept + size <= k);
        if recent || other_id || fits {
            kept += size;
            continue;
        }
        store.remove_cache_mount(&info.key)?;
        dropped += 1;
        freed += size;
    }
    // directories without meta.json are debris of a killed first use
    if let Ok(rd) = fs::read_dir(store.root.join(crate::store::mounts::DIR)) {
        for e in rd.flatten() {
            if !e.path().join("meta.json").exists() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Ok((dropped, freed))
}

/// What interrupted pulls left in `ingest/` (each partial file whose lock no one holds) and
/// the registry locations of blobs the store no longer has, and the records of directory build
/// contexts' images that are gone; returns (files, bytes).
fn prune_ingest_and_remote(store: &Store) -> (usize, u64) {
    use nix::fcntl::{Flock, FlockArg};
    let (mut n, mut bytes) = (0, 0);
    if let Ok(rd) = fs::read_dir(store.root.join("ingest")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(hex) = name.strip_suffix(".lock") else { continue };
            let Ok(f) = fs::OpenOptions::new().write(true).open(e.path()) else { continue };
            // a pull writing this blob holds the lock: its partial file stays
            let Ok(_held) = Flock::lock(f, FlockArg::LockExclusiveNonblock) else { continue };
            let partial = store.root.join("ingest").join(format!("{hex}.partial"));
            if let Ok(md) = fs::metadata(&partial) {
                if fs::remove_file(&partial).is_ok() {
                    n += 1;
                    bytes += md.len();
                }
            }
            let _ = fs::remove_file(e.path());
        }
        // partial files without a lock file
        if let Ok(rd) = fs::read_dir(store.root.join("ingest")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(hex) = name.strip_suffix(".partial") else { continue };
                if !store.root.join("ingest").join(format!("{hex}.lock")).exists() {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    if fs::remove_file(e.path()).is_ok() {
                        n += 1;
                        bytes += size;
                    }
                }
            }
        }
    }
    if let Ok(rd) = fs::read_dir(store.root.join("cache/remote")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !store.has_blob(&format!("sha256:{name}")) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    // `--build-context DIR` images whose manifest is gone (the next build makes it again)
    if let Ok(rd) = fs::read_dir(store.root.join("cache/named")) {
        for e in rd.flatten() {
            let rel = format!("cache/named/{}", e.file_name().to_string_lossy());
            if store.read_record::<String>(&rel).is_none_or(|m| !store.has_blob(&m)) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    (n, bytes)
}

/// Removes what no named image needs.
///
/// - Untagged images (`<none>` in `images`) go, as docker's `image prune` removes dangling ones.
/// - Blobs: the manifests, configs and layers of named images stay; every other blob goes.
/// - Build cache: an entry stays when a build of a named image went through it (each build
///   records its steps' keys with the image) and every layer it restores belongs to a named
///   image; its small config blob is then kept too, so rebuilding a named image after `prune`
///   is still all cache hits. Every other entry goes with its config: those of unnamed images,
///   and of stages no named image contains. This is `docker image prune` plus the part of
///   `docker builder prune` that frees what no name uses: the cache of what you named is kept.
/// - Snapshots (extracted layers) of pruned layers go; stat caches of contexts that are gone.
/// - Cache mounts (`RUN --mount=type=cache`) go, but those `limits` keep; so do the partial files
///   of interrupted pulls and the registry locations of blobs that are gone.
pub fn prune(store: &Store, limits: &PruneLimits) -> Result<String, StoreError> {
    let _builds = store.gc_lock()?;
    let _g = store.lock()?;
    let hex = |d: &str| d.trim_start_matches("sha256:").to_string();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let mut keep_layers: BTreeSet<String> = BTreeSet::new();
    let mut keep_snaps: BTreeSet<String> = BTreeSet::new();
    let mut chain_keys: BTreeSet<String> = BTreeSet::new();
    // untagged images go, as docker's `image prune` removes dangling ones
    let untagged = store.drop_unnamed_locked()?;
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
        // an index keeps every manifest it lists (each platform's image, attestation
        // manifests) with their configs and layers
        if let Ok(idx) = store.read_json::<crate::store::image::Index>(&d.digest) {
            for m in &idx.manifests {
                keep.insert(hex(&m.digest));
                let Ok(man) = store.read_json::<crate::store::image::Manifest>(&m.digest) else { continue };
                keep.insert(hex(&man.config.digest));
                for l in &man.layers {
                    keep_layers.insert(hex(&l.digest));
                }
                if !crate::attest::is_attestation(m) {
                    if let Ok(c) = store.read_json::<crate::store::image::ImageConfig>(&man.config.digest) {
                        keep_snaps.extend(c.rootfs.diff_ids.iter().map(|d| hex(d)));
                    }
                }
            }
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
    // remote build contexts first, so that their stat caches go with them below
    let context_bytes = crate::fetch::context::prune(store);
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
    let created = store.root.join("cache/created");
    if let Ok(rd) = fs::read_dir(&created) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !keep.contains(name.trim_end_matches(".json")) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    // kept SBOM scans go with the generator's or the image's manifest
    crate::sbom::prune(store, &|hex| keep.contains(hex));
    for dir in ["cache/sizes", "cache/own-times"] {
        let Ok(rd) = fs::read_dir(store.root.join(dir)) else { continue };
        for e in rd.flatten() {
            if !keep_snaps.contains(&e.file_name().to_string_lossy().to_string()) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let snaps = store.root.join("snapshots");
    for e in fs::read_dir(&snaps).map_err(io_err("read dir", &snaps))?.flatten() {
        if !keep_snaps.contains(&e.file_name().to_string_lossy().to_string()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    let (mounts, mount_bytes) = prune_cache_mounts(store, limits)?;
    let (partials, partial_bytes) = prune_ingest_and_remote(store);
    let fetched_bytes = crate::fetch::prune(store);
    let freed = freed + mount_bytes + partial_bytes + fetched_bytes + context_bytes;
    Ok(format!(
        "Deleted {untagged} untagged images\nDeleted {dropped} build cache entries\nDeleted {mounts} cache mounts\nDeleted {removed} blobs\nDeleted {partials} partial downloads\nTotal reclaimed space: {}\n",
        human(freed)
    ))
}

/// Writes an OCI bundle: DIR/rootfs (layers applied) and DIR/config.json from the image config.
///
/// A DIR that already holds a bundle is refused, not merged into (the old rootfs's files would
/// stay among the image's) nor replaced (it may be a running container's rootfs, or hold work
/// of the user's): only a new or empty directory is written. The rootfs is unpacked beside and
/// renamed into place, and a failure removes what this call made.
pub fn unpack(store: &Store, name: &str, dir: &Path) -> Result<(), StoreError> {
    let img = store.image(name)?;
    if ["rootfs", "config.json"].iter().any(|n| dir.join(n).symlink_metadata().is_ok()) {
        return Err(StoreError::BundleExists(dir.to_path_buf()));
    }
    let made_dir = !dir.exists();
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let tmp = dir.join(format!(".rootfs.tmp-{}", std::process::id()));
    let done = unpack_into(store, &img, dir, &tmp);
    if done.is_err() {
        let _ = fs::remove_dir_all(&tmp);
        if made_dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
    done
}

fn unpack_into(store: &Store, img: &crate::store::Image, dir: &Path, tmp: &Path) -> Result<(), StoreError> {
    fs::create_dir(tmp).map_err(io_err("create", tmp))?;
    for l in &img.manifest.layers {
        let p = store.blob_path(&l.digest);
        let r = layer::open_decompressed(&p).map_err(io_err("open", &p))?;
        layer::extract(r, tmp, Whiteouts::Apply).map_err(io_err("extract layer", &p))?;
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
        rootfs::resolve_user(tmp, &c.user).map_err(|e| StoreError::Io {
            op: "resolve user for",
            path: tmp.to_path_buf(),
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
    let rootfs_dir = dir.join("rootfs");
    // the files before their name (store/tree.rs); config.json's write syncs `dir` after
    crate::store::syncfs(tmp)?;
    fs::rename(tmp, &rootfs_dir).map_err(io_err("rename into place", &rootfs_dir))?;
    let cp = dir.join("config.json");
    if let Err(e) = store.write_atomic(&cp, &serde_json::to_vec_pretty(&cfg).unwrap_or_default()) {
        let _ = fs::remove_dir_all(&rootfs_dir);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        // go-units HumanSizeWithPrecision(size, 3), as `docker images` shows SIZE
        for (n, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1_000_000, "1MB"),
            (5_579_215, "5.58MB"),
            (72_800_000, "72.8MB"),
            (142_000_000, "142MB"),
            (1_234_567_890, "1.23GB"),
        ] {
            assert_eq!(human(n), want, "{n}");
        }
    }

    #[test]
    fn created_reads_as_docker_prints_it() {
        let t = |s: &str| parse_rfc3339(s).unwrap_or_else(|| panic!("{s} did not parse"));
        assert_eq!(t("1970-01-01T00:00:00Z"), 0);
        assert_eq!(t("2023-11-14T22:13:20Z"), 1_700_000_000);
        assert_eq!(t("2023-11-14T23:13:20.123456789+01:00"), 1_700_000_000);
        assert_eq!(t("2000-02-29T00:00:00Z"), 951_782_400);
        // SOURCE_DATE_EPOCH=-86400's image
        assert_eq!(t("1969-12-31T00:00:00Z"), -86400);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339(""), None);
        // go-units HumanDuration + " ago"
        let now = 1_700_000_000;
        assert_eq!(ago("2023-11-14T22:13:20Z", now), "Less than a second ago");
        assert_eq!(ago("2023-11-14T22:12:20Z", now), "About a minute ago");
        assert_eq!(ago("2023-11-14T20:13:20Z", now), "2 hours ago");
        assert_eq!(ago("2023-11-04T22:13:20Z", now), "10 days ago");
        assert_eq!(ago("1970-01-01T00:00:00Z", now), "53 years ago");
        assert_eq!(ago("1969-12-31T00:00:00Z", now), "53 years ago");
        // a time after now reads as docker's HumanDuration of a negative duration
        assert_eq!(ago("2023-11-15T22:13:20Z", now), "Less than a second ago");
        assert_eq!(ago("", now), "N/A");
    }
}
