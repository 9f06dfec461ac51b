//! Image archives: `save` writes a docker-archive (manifest.json + repositories, layers as
//! plain tars, itself also an OCI layout as docker 25 writes it) or an OCI layout tar (gzip
//! layers, containerd name annotations); `load` reads either. The output file appears only
//! once complete (temp + rename).

use crate::layer::{self, Layer};
use crate::registry::Platform;
use crate::store::image::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::store::{io_err, Image, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DockerManifestEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// docker's reference normalisation: `busybox:latest` -> `docker.io/library/busybox:latest`.
pub fn docker_full_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    let has_domain = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

/// The short form docker shows for a full name.
pub fn short_name(full: &str) -> String {
    full.strip_prefix("docker.io/library/").or_else(|| full.strip_prefix("docker.io/")).unwrap_or(full).to_string()
}

struct TarOut<W: Write> {
    b: tar::Builder<W>,
}

impl<W: Write> TarOut<W> {
    fn add_bytes(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.b.append_data(&mut h, path, data)
    }
    fn add_file(&mut self, path: &str, src: &Path) -> io::Result<()> {
        let f = File::open(src)?;
        let len = f.metadata()?.len();
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(len);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.b.append_data(&mut h, path, f.take(len))
    }
    fn add_dir(&mut self, path: &str) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Directory);
        self.b.append_data(&mut h, path, io::empty())
    }
}

fn hexof(d: &str) -> &str {
    d.trim_start_matches("sha256:")
}

/// Writes `img` (named `name`) to the file `out` in `format`: to a temp file beside it, renamed
/// into place once complete, so `out` is never half written.
pub fn save(store: &Store, img: &Image, name: Option<&str>, out: &Path, format: Format) -> Result<(), StoreError> {
    let tmp_out = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id()
    ));
    let f = File::create(&tmp_out).map_err(io_err("create", &tmp_out))?;
    let w = |e: io::Error| StoreError::Io { op: "write", path: out.to_path_buf(), err: e };
    let names: Vec<String> = name.map(str::to_string).into_iter().collect();
    let opts = Export { names: &names, descriptor_annotations: BTreeMap::new(), docker_keeps_blobs: false };
    let done = export(store, &Top::Image(img), &opts, io::BufWriter::new(f), out, format).and_then(|(inner, _)| {
        let f = inner.into_inner().map_err(|e| w(e.into_error()))?;
        f.sync_all().map_err(w)?;
        fs::rename(&tmp_out, out).map_err(io_err("rename", out))?;
        // the name too: synced data under a name a power loss takes back is no archive
        crate::store::fsync_dir(out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
    });
    if done.is_err() {
        let _ = fs::remove_file(&tmp_out);
    }
    done
}

/// Writes `img` to stdout (`save -o -`, or `save` into a pipe), as `docker save` does.
pub fn save_to_stdout(store: &Store, img: &Image, name: Option<&str>, format: Format) -> Result<(), StoreError> {
    let out = io::BufWriter::new(io::stdout().lock());
    let names: Vec<String> = name.map(str::to_string).into_iter().collect();
    let opts = Export { names: &names, descriptor_annotations: BTreeMap::new(), docker_keeps_blobs: false };
    export(store, &Top::Image(img), &opts, out, Path::new("stdout"), format).map(drop)
}

/// What an archive holds: one image, or an index of several (one per platform), whose blob
/// and manifests are in the store.
pub enum Top<'a> {
    Image(&'a Image),
    /// `blobs`: what else the index names (attestation manifests, their configs and layers).
    Index {
        index: Descriptor,
        images: Vec<Image>,
        blobs: Vec<String>,
    },
}

/// How an archive names what it holds.
pub struct Export<'a> {
    /// One index.json entry per name (containerd's `io.containerd.image.name` and the tag as
    /// `org.opencontainers.image.ref.name`), and `RepoTags` of a docker-archive.
    pub names: &'a [String],
    /// Added to each index.json entry (BuildKit's `manifest-descriptor` / `index-descriptor`
    /// annotations, its `org.opencontainers.image.created`).
    pub descriptor_annotations: BTreeMap<String, String>,
    /// A docker-archive keeps the layer blobs as the image's manifest names them (an output
    /// that asked for a compression or media types) instead of the uncompressed tars
    /// `docker save` writes.
    pub docker_keeps_blobs: bool,
}

/// An archive's content, ready to write as a tar or a directory.
struct Content {
    blobs: BTreeMap<String, BlobSrc>,
    /// The top descriptor (the manifest or index), without names.
    top: Descriptor,
    index: Index,
    /// A docker-archive's manifest.json and repositories.
    docker: Option<(Vec<u8>, Option<Vec<u8>>)>,
    /// Holds a docker-archive's uncompressed layers until written.
    _tmp: crate::store::TempDir,
}

fn content(store: &Store, top: &Top, opts: &Export, format: Format) -> Result<Content, StoreError> {
    let tmpd = store.tempdir("save")?;
    let mut blobs: BTreeMap<String, BlobSrc> = BTreeMap::new();
    let add_image = |blobs: &mut BTreeMap<String, BlobSrc>, img: &Image| -> Result<Descriptor, StoreError> {
        blobs.insert(hexof(&img.config_digest).into(), BlobSrc::File(store.blob_path(&img.config_digest)));
        for l in &img.manifest.layers {
            blobs.insert(hexof(&l.digest).into(), BlobSrc::File(store.blob_path(&l.digest)));
        }
        let mb = store.read_blob(&img.manifest_digest)?;
        let desc = Descriptor {
            media_type: store.manifest_descriptor(img)?.media_type,
            digest: img.manifest_digest.clone(),
            size: mb.len() as u64,
            annotations: Default::default(),
            platform: None,
        };
        blobs.insert(hexof(&img.manifest_digest).into(), BlobSrc::Bytes(mb));
        Ok(desc)
    };
    let (manifest_layers, config_digest, mdesc) = match (top, format) {
        // one image and its attestations: BuildKit's docker exporter writes the index in
        // index.json, manifest.json loads the image (its blobs as they are)
        (Top::Index { index, images, blobs: extra }, Format::Docker) if images.len() == 1 => {
            add_image(&mut blobs, &images[0])?;
            for d in std::iter::once(&index.digest).chain(extra) {
                blobs.insert(hexof(d).into(), BlobSrc::File(store.blob_path(d)));
            }
            (images[0].manifest.layers.clone(), Some(images[0].config_digest.clone()), index.clone())
        }
        (Top::Index { .. }, Format::Docker) => {
            return Err(StoreError::Io {
                op: "export",
                path: "docker-archive".into(),
                err: io::Error::other("docker exporter does not currently support exporting manifest lists"),
            })
        }
        (Top::Index { index, images, blobs: extra }, Format::Oci) => {
            for img in images {
                add_image(&mut blobs, img)?;
            }
            for d in std::iter::once(&index.digest).chain(extra) {
                blobs.insert(hexof(d).into(), BlobSrc::File(store.blob_path(d)));
            }
            (Vec::new(), None, index.clone())
        }
        (Top::Image(img), _) if format == Format::Oci || opts.docker_keeps_blobs => {
            let d = add_image(&mut blobs, img)?;
            (img.manifest.layers.clone(), Some(img.config_digest.clone()), d)
        }
        (Top::Image(img), _) => {
            blobs.insert(hexof(&img.config_digest).into(), BlobSrc::File(store.blob_path(&img.config_digest)));
            let mut layers = Vec::new();
            for (i, l) in img.manifest.layers.iter().enumerate() {
                let diff = img.config.rootfs.diff_ids.get(i).cloned().unwrap_or_default();
                let p = tmpd.path.join(hexof(&diff));
                let mut r = layer::open_decompressed(&store.blob_path(&l.digest))
                    .map_err(io_err("open", &store.blob_path(&l.digest)))?;
                let mut f = File::create(&p).map_err(io_err("create", &p))?;
                io::copy(&mut r, &mut f).map_err(io_err("decompress", &p))?;
                let size = f.metadata().map_err(io_err("stat", &p))?.len();
                layers.push(Descriptor {
                    media_type: image::MT_LAYER_TAR.into(),
                    digest: diff.clone(),
                    size,
                    annotations: Default::default(),
                    platform: None,
                });
                blobs.insert(hexof(&diff).into(), BlobSrc::File(p));
            }
            let m = Manifest {
                schema_version: 2,
                media_type: image::MT_MANIFEST.into(),
                config: img.manifest.config.clone(),
                layers,
                annotations: img.manifest.annotations.clone(),
            };
            let mb = image::to_json(&m);
            let d = image::digest_of(&mb);
            let desc = Descriptor {
                media_type: image::MT_MANIFEST.into(),
                digest: d.clone(),
                size: mb.len() as u64,
                annotations: Default::default(),
                platform: None,
            };
            blobs.insert(hexof(&d).into(), BlobSrc::Bytes(mb));
            (m.layers, Some(img.config_digest.clone()), desc)
        }
    };
    let mut entries = Vec::new();
    let mut entry = |names: Option<&str>| {
        let mut desc = mdesc.clone();
        desc.annotations.extend(opts.descriptor_annotations.clone());
        if let Some(n) = names {
            desc.annotations.insert(image::ANN_CONTAINERD_NAME.into(), docker_full_name(n));
            let tag = n.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/')).unwrap_or("latest");
            desc.annotations.insert(image::ANN_REF_NAME.into(), tag.into());
        }
        entries.push(desc);
    };
    if opts.names.is_empty() {
        entry(None);
    }
    for n in opts.names {
        entry(Some(n));
    }
    let index = Index {
        schema_version: 2,
        media_type: image::MT_INDEX.into(),
        manifests: entries,
        annotations: Default::default(),
    };
    let docker = match (format, config_digest) {
        (Format::Docker, Some(cd)) => {
            let entry = DockerManifestEntry {
                config: format!("blobs/sha256/{}", hexof(&cd)),
                repo_tags: (!opts.names.is_empty()).then(|| opts.names.to_vec()),
                layers: manifest_layers.iter().map(|l| format!("blobs/sha256/{}", hexof(&l.digest))).collect(),
            };
            let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for n in opts.names {
                if let Some((repo, tag)) = n.rsplit_once(':') {
                    let top = manifest_layers.last().map(|l| hexof(&l.digest).to_string()).unwrap_or_default();
                    repos.entry(repo.to_string()).or_default().insert(tag.to_string(), top);
                }
            }
            Some((image::to_json(&vec![entry]), (!repos.is_empty()).then(|| image::to_json(&repos))))
        }
        _ => None,
    };
    Ok(Content { blobs, top: mdesc, index, docker, _tmp: tmpd })
}

/// Writes the archive of `top` to `sink` (`out` names it in errors); returns the flushed sink
/// and the top descriptor (the manifest, or the index).
pub fn export<W: Write>(
    store: &Store,
    top: &Top,
    opts: &Export,
    sink: W,
    out: &Path,
    format: Format,
) -> Result<(W, Descriptor), StoreError> {
    let c = content(store, top, opts, format)?;
    let mut t = TarOut { b: tar::Builder::new(sink) };
    let w = |e: io::Error| StoreError::Io { op: "write", path: out.to_path_buf(), err: e };
    t.add_dir("blobs").map_err(w)?;
    t.add_dir("blobs/sha256").map_err(w)?;
    for (hex, src) in &c.blobs {
        let p = format!("blobs/sha256/{hex}");
        match src {
            BlobSrc::Bytes(b) => t.add_bytes(&p, b).map_err(w)?,
            BlobSrc::File(f) => t.add_file(&p, f).map_err(w)?,
        }
    }
    t.add_bytes("index.json", &image::to_json(&c.index)).map_err(w)?;
    if let Some((manifest, repositories)) = &c.docker {
        t.add_bytes("manifest.json", manifest).map_err(w)?;
        if let Some(r) = repositories {
            t.add_bytes("repositories", r).map_err(w)?;
        }
    }
    t.add_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(w)?;
    let mut inner = t.b.into_inner().map_err(w)?;
    inner.flush().map_err(w)?;
    Ok((inner, c.top))
}

/// An OCI image layout directory at `dir` (BuildKit's `type=oci,tar=false`): blobs are added
/// (those there are kept), index.json keeps its other entries and replaces those of the same
/// names. Returns the top descriptor.
pub fn export_dir(store: &Store, top: &Top, opts: &Export, dir: &Path) -> Result<Descriptor, StoreError> {
    let c = content(store, top, opts, Format::Oci)?;
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
    // As the store's own blobs (store/mod.rs): the new blobs are written under temp names,
    // synced together, then named, then the directory synced, and index.json last, so that a
    // power loss never leaves a blob name with torn bytes (which a later export would keep:
    // it skips the blobs that are there) nor an index.json naming a missing blob.
    let mut written: Vec<(PathBuf, PathBuf)> = Vec::new();
    let res = (|| {
        for (hex, src) in &c.blobs {
            let p = blobs.join(hex);
            if p.exists() {
                continue;
            }
            let tmp = blobs.join(format!(".{hex}.tmp-{}", std::process::id()));
            let res = match src {
                BlobSrc::Bytes(b) => fs::write(&tmp, b),
                BlobSrc::File(f) => fs::copy(f, &tmp).map(drop),
            };
            written.push((tmp.clone(), p.clone()));
            res.map_err(|e| StoreError::Io { op: "write", path: p.clone(), err: e })?;
        }
        let tmps: Vec<&Path> = written.iter().map(|(t, _)| t.as_path()).collect();
        crate::store::fsync_files(&tmps)?;
        for (tmp, p) in &written {
            fs::rename(tmp, p).map_err(io_err("rename", p))?;
        }
        if !written.is_empty() {
            crate::store::fsync_dir(&blobs)?;
        }
        Ok(())
    })();
    if res.is_err() {
        for (tmp, _) in &written {
            let _ = fs::remove_file(tmp);
        }
    }
    res?;
    let layout = dir.join("oci-layout");
    if !layout.exists() {
        store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let ip = dir.join("index.json");
    let mut idx: Index = match fs::read(&ip) {
        Ok(b) => serde_json::from_slice(&b).map_err(|err| StoreError::Json { path: ip.clone(), err })?,
        Err(_) => Index { schema_version: 2, media_type: image::MT_INDEX.into(), ..Default::default() },
    };
    let name_of = |d: &Descriptor| d.annotations.get(image::ANN_CONTAINERD_NAME).cloned();
    let new_names: Vec<String> = c.index.manifests.iter().filter_map(name_of).collect();
    idx.manifests.retain(|d| !name_of(d).is_some_and(|n| new_names.contains(&n)));
    for d in c.index.manifests {
        if !idx.manifests.contains(&d) {
            idx.manifests.push(d);
        }
    }
    store.write_atomic(&ip, &image::to_json(&idx))?;
    Ok(c.top)
}

enum BlobSrc {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

fn safe_join(root: &Path, rel: &str) -> Result<std::path::PathBuf, StoreError> {
    let c = crate::glob::clean(rel.trim_start_matches('/'));
    if crate::rootfs::escapes(&c) {
        return Err(StoreError::BadRef(format!("archive path outside the archive: {rel}")));
    }
    Ok(root.join(c))
}

/// Loads a docker-archive or OCI layout tar; returns the names it set (or IDs when unnamed).
pub fn load(store: &Store, input: &Path) -> Result<Vec<String>, StoreError> {
    load_as(store, input, input)
}

/// [`load`] of `input`, which messages call `shown` (`stdin` for an archive spooled from it).
pub fn load_as(store: &Store, input: &Path, shown: &Path) -> Result<Vec<String>, StoreError> {
    let tmpd = store.tempdir("load")?;
    let root = tmpd.path.join("x");
    fs::create_dir_all(&root).map_err(io_err("create", &root))?;
    let mut r = layer::open_decompressed(input).map_err(io_err("open", shown))?;
    // A file that is no tar at all gets a message saying so, not the tar reader's complaint
    // about its first header's fields.
    let mut first = vec![0u8; 512];
    let n = read_full(&mut r, &mut first).map_err(io_err("read", shown))?;
    first.truncate(n);
    if !is_tar_header(&first) {
        return Err(StoreError::Io {
            op: "load",
            path: shown.to_path_buf(),
            err: io::Error::other(
                "not a tar archive: slipway load reads what `docker save`, `podman save` or `slipway save` writes \
                 (a docker-archive or an OCI layout tar, gzip, bzip2, xz or zstd compressed or not)",
            ),
        });
    }
    let mut ar = tar::Archive::new(io::Cursor::new(first).chain(r));
    ar.set_preserve_permissions(false);
    for e in ar.entries().map_err(io_err("read", shown))? {
        let mut e = e.map_err(io_err("read", shown))?;
        let et = e.header().entry_type();
        if !(et.is_file() || et.is_dir()) {
            continue;
        }
        e.unpack_in(&root).map_err(io_err("read", shown))?;
    }
    let bad = |m: &str| StoreError::Io { op: "load", path: shown.to_path_buf(), err: io::Error::other(m.to_string()) };
    let mut results = Vec::new();
    let mut to_name: Vec<(String, Descriptor)> = Vec::new();
    // (ID, manifest) of images the archive does not name: listed unnamed, as docker keeps them
    let mut unnamed: Vec<(String, Descriptor)> = Vec::new();
    if root.join("manifest.json").is_file() {
        let p = root.join("manifest.json");
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&fs::read(&p).map_err(io_err("read", &p))?)
            .map_err(|err| StoreError::Json { path: p.clone(), err })?;
        for ent in entries {
            let cp = safe_join(&root, &ent.config)?;
            let cbytes = fs::read(&cp).map_err(io_err("read", &cp))?;
            let config: ImageConfig =
                serde_json::from_slice(&cbytes).map_err(|err| StoreError::Json { path: cp.clone(), err })?;
            let mut layers = Vec::new();
            for (i, l) in ent.layers.iter().enumerate() {
                let lp = safe_join(&root, l)?;
                let layer = layer::import(store, &lp)?;
                if config.rootfs.diff_ids.get(i) != Some(&layer.diff_id) {
                    return Err(bad(&format!("layer {l}: content does not match the config's diff_id")));
                }
                layers.push(layer);
            }
            let (desc, id) =
                store.put_image_bytes(&cbytes, &layers.iter().map(Layer::descriptor).collect::<Vec<_>>())?;
            match ent.repo_tags.unwrap_or_default() {
                t if t.is_empty() => unnamed.push((id, desc)),
                tags => {
                    for t in tags {
                        let n = crate::store::normalize_ref(&short_name(&t))?;
                        to_name.push((n, desc.clone()));
                    }
                }
            }
        }
    } else if root.join("index.json").is_file() {
        let p = root.join("index.json");
        let idx: Index = serde_json::from_slice(&fs::read(&p).map_err(io_err("read", &p))?)
            .map_err(|err| StoreError::Json { path: p.clone(), err })?;
        for d in idx.manifests {
            let (desc, id) = import_oci(store, &root, shown, &d, None)?;
            let name = d.annotations.get(image::ANN_CONTAINERD_NAME).map(|n| short_name(n)).or_else(|| {
                d.annotations.get(image::ANN_REF_NAME).cloned().filter(|n| n.contains(':') || n.contains('/'))
            });
            match name {
                Some(n) => to_name.push((crate::store::normalize_ref(&n)?, desc)),
                None => unnamed.push((id, desc)),
            }
        }
    } else {
        return Err(bad("neither manifest.json nor index.json found: not a docker or OCI image archive"));
    }
    // names last, after every blob is in place
    for (id, d) in unnamed {
        store.add_unnamed(d)?;
        results.push(id);
    }
    for (n, d) in to_name {
        store.set_ref(&n, d)?;
        results.push(n);
    }
    Ok(results)
}

/// Brings the image an OCI layout's index entry `d` names into the store (a nested index: the
/// entry for `platform`, or without one this machine's), every blob checked against its digest;
/// returns its manifest descriptor and ID (`shown`: the archive's name in messages).
fn import_oci(
    store: &Store,
    root: &Path,
    shown: &Path,
    d: &Descriptor,
    platform: Option<&Platform>,
) -> Result<(Descriptor, String), StoreError> {
    let bad = |m: &str| StoreError::Io { op: "load", path: shown.to_path_buf(), err: io::Error::other(m.to_string()) };
    let (mp, mb) = pick_manifest(root, d, 0, platform)?;
    let m: Manifest = serde_json::from_slice(&mb).map_err(|err| StoreError::Json { path: mp.clone(), err })?;
    let cp = safe_join(root, &format!("blobs/sha256/{}", hexof(&m.config.digest)))?;
    let cbytes = fs::read(&cp).map_err(io_err("read", &cp))?;
    if image::digest_of(&cbytes) != m.config.digest {
        return Err(StoreError::Digest(m.config.digest.clone()));
    }
    let config: ImageConfig =
        serde_json::from_slice(&cbytes).map_err(|err| StoreError::Json { path: cp.clone(), err })?;
    let mut layers = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        let lp = safe_join(root, &format!("blobs/sha256/{}", hexof(&l.digest)))?;
        if crate::store::hash_file(&lp)? != l.digest {
            return Err(StoreError::Digest(l.digest.clone()));
        }
        let layer = layer::import(store, &lp)?;
        if config.rootfs.diff_ids.get(i) != Some(&layer.diff_id) {
            return Err(bad(&format!("layer {}: content does not match the config's diff_id", l.digest)));
        }
        layers.push(layer);
    }
    store.put_image_bytes(&cbytes, &layers.iter().map(Layer::descriptor).collect::<Vec<_>>())
}

/// The image of an OCI layout directory (`build --build-context NAME=oci-layout://DIR`): the
/// index entry of `digest`, else the one whose `org.opencontainers.image.ref.name` is `tag`
/// (default `latest`), else the only one; of a multi-platform image, the entry for `platform`
/// (the platform the context serves, as BuildKit's dockerui resolves it per platform); brought
/// into the store unnamed.
pub fn layout_image(
    store: &Store,
    dir: &Path,
    tag: Option<&str>,
    digest: Option<&str>,
    platform: &Platform,
) -> Result<Image, StoreError> {
    let p = dir.join("index.json");
    let idx: Index = serde_json::from_slice(&fs::read(&p).map_err(io_err("read", &p))?)
        .map_err(|err| StoreError::Json { path: p.clone(), err })?;
    let want = tag.unwrap_or("latest");
    let named = |d: &&Descriptor| {
        d.annotations.get(image::ANN_REF_NAME).is_some_and(|n| n == want || n.ends_with(&format!(":{want}")))
    };
    let d = match digest {
        Some(dg) => idx.manifests.iter().find(|d| d.digest == dg),
        None => idx.manifests.iter().find(named).or_else(|| match (tag, idx.manifests.len()) {
            (None, 1) => idx.manifests.first(),
            _ => None,
        }),
    };
    let Some(d) = d else {
        let what = digest.map_or_else(|| format!("tag {want}"), |d| d.to_string());
        return Err(StoreError::NoImage(format!("{what} in the OCI layout {}", dir.display())));
    };
    let (desc, _) = import_oci(store, dir, dir, d, Some(platform))?;
    store.image_by_manifest(&desc.digest)
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Whether 512 bytes are a tar header: its checksum (the header's bytes summed with the
/// checksum field as spaces, written in octal) holds. An empty archive (all zeros) is one too.
fn is_tar_header(h: &[u8]) -> bool {
    if h.len() != 512 {
        return false;
    }
    if h.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &h[148..156];
    let digits: String = field.iter().map(|&b| b as char).filter(|c| ('0'..='7').contains(c)).collect();
    let Ok(want) = u32::from_str_radix(&digits, 8) else { return false };
    let sum: u32 = h.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { u32::from(b) }).sum();
    sum == want
}

/// Reads the manifest a top-level descriptor names; for a multi-platform index, the entry for
/// `platform` (containerd's matching; none is an error naming what the index offers), or
/// without one the entry for this machine (linux and our architecture), else the first.
fn pick_manifest(
    root: &Path,
    d: &Descriptor,
    depth: usize,
    platform: Option<&Platform>,
) -> Result<(std::path::PathBuf, Vec<u8>), StoreError> {
    let p = safe_join(root, &format!("blobs/sha256/{}", hexof(&d.digest)))?;
    let b = fs::read(&p).map_err(io_err("read", &p))?;
    if image::digest_of(&b) != d.digest {
        return Err(StoreError::Digest(d.digest.clone()));
    }
    let v: serde_json::Value = serde_json::from_slice(&b).map_err(|err| StoreError::Json { path: p.clone(), err })?;
    let mt = v["mediaType"].as_str().unwrap_or(&d.media_type).to_string();
    let is_index = mt.contains("index")
        || mt.contains("manifest.list")
        || (v.get("manifests").is_some() && v.get("config").is_none());
    if !is_index {
        return Ok((p, b));
    }
    let idx: Index = serde_json::from_value(v).map_err(|err| StoreError::Json { path: p.clone(), err })?;
    let next = match platform {
        Some(want) => {
            let want = want.normalized();
            let found = idx.manifests.iter().find(|m| m.platform.as_ref().is_some_and(|pl| want.matches(pl)));
            let Some(found) = found else {
                let offers: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(|pl| {
                        let s = |k: &str| pl.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
                        match pl.get("variant").and_then(|v| v.as_str()) {
                            Some(v) => format!("{}/{}/{v}", s("os"), s("architecture")),
                            None => format!("{}/{}", s("os"), s("architecture")),
                        }
                    })
                    .collect();
                return Err(StoreError::NoImage(format!(
                    "{}: no image for {want} in the index (it has {})",
                    d.digest,
                    if offers.is_empty() { "no platforms".to_string() } else { offers.join(", ") }
                )));
            };
            found
        }
        None => {
            let ours = idx.manifests.iter().find(|m| {
                m.platform.as_ref().is_some_and(|pl| pl["os"] == "linux" && pl["architecture"] == image::go_arch())
            });
            let Some(next) = ours.or(idx.manifests.first()) else {
                return Err(StoreError::NoImage(format!("{}: empty image index", d.digest)));
            };
            next
        }
    };
    if depth > 4 {
        return Err(StoreError::NoImage(format!("{}: image indexes nested too deep", d.digest)));
    }
    pick_manifest(root, next, depth + 1, platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(docker_full_name("busybox:latest"), "docker.io/library/busybox:latest");
        assert_eq!(docker_full_name("me/app:1"), "docker.io/me/app:1");
        assert_eq!(docker_full_name("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(short_name("docker.io/library/busybox:latest"), "busybox:latest");
    }
}
