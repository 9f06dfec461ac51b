//! An output's layer compression and media types: BuildKit's `compression`,
//! `compression-level`, `force-compression` and `oci-mediatypes` exporter options. Gives the
//! image an output writes: layers recompressed where asked and its manifest in OCI or docker
//! media types. The config is touched only by eStargz, whose blobs decompress to more than the
//! layer's tar (the TOC follows it), so their diff IDs, and with them the image ID, change, as
//! in BuildKit; what the build cache records is never touched. Converted blobs are remembered
//! by diff ID (`cache/converted/`), so exporting the same layers again compresses nothing.
//! Which outputs take these options is output.rs's business; the eStargz format is estargz.rs's.

use crate::estargz;
use crate::layer;
use crate::registry::manifest::{MT_DOCKER_LAYER_TAR, MT_LAYER_ZSTD};
use crate::store::image::{self, Descriptor, ImageConfig, Layer, Manifest};
use crate::store::{io_err, HashWriter, Image, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};

/// The gzip level slipway writes its layers with (flate2's default, Go's too).
pub const GZIP_LEVEL: i32 = 6;

/// A layer blob's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    /// gzip members with a table of contents (estargz.rs): a gzip media type, told from plain
    /// gzip by the blob's footer.
    EStargz,
    Zstd,
}

impl Compression {
    fn parse(v: &str) -> Result<Compression, String> {
        match v {
            "uncompressed" => Ok(Compression::Uncompressed),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "estargz" => Ok(Compression::EStargz),
            _ => Err(format!("compression={v:?}: expected uncompressed, gzip, estargz or zstd")),
        }
    }

    /// What a layer's media type says of its blob (never eStargz, which only the blob tells);
    /// None for a media type this does not know
    /// (a foreign or non-distributable layer), which is then kept as it is.
    pub fn of_media_type(mt: &str) -> Option<Compression> {
        let layer = mt.starts_with("application/vnd.oci.image.layer.")
            || mt.starts_with("application/vnd.docker.image.rootfs.diff.");
        if !layer {
            return None;
        }
        if mt.ends_with("+gzip") || mt.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") || mt.ends_with(".zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") {
            Some(Compression::Uncompressed)
        } else {
            None
        }
    }

    /// The layer media type for this compression, OCI's or docker's.
    pub fn media_type(self, oci: bool) -> Result<&'static str, String> {
        Ok(match (self, oci) {
            (Compression::Uncompressed, true) => image::MT_LAYER_TAR,
            (Compression::Gzip, true) => image::MT_LAYER_GZIP,
            (Compression::EStargz, true) => image::MT_LAYER_GZIP,
            (Compression::Zstd, true) => MT_LAYER_ZSTD,
            (Compression::Uncompressed, false) => MT_DOCKER_LAYER_TAR,
            // an eStargz layer kept as it is (a base's): BuildKit names it gzip, annotations gone
            (Compression::Gzip | Compression::EStargz, false) => image::MT_DOCKER_LAYER_GZIP,
            (Compression::Zstd, false) => return Err("docker media types have no zstd layer".into()),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::EStargz => "estargz",
            Compression::Zstd => "zstd",
        }
    }
}

/// An output's layer options; the default writes what the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `compression=` (BuildKit's default: gzip).
    pub compression: Option<Compression>,
    /// `compression-level=`: gzip and estargz 0-9, zstd 0-22 (0: zstd's default, 3).
    pub level: Option<i32>,
    /// `force-compression=`: also recompress the layers that are not plain gzip (pulled or
    /// loaded zstd, uncompressed or eStargz ones); without it they keep their blobs, as
    /// BuildKit keeps a base image's blobs.
    pub force: bool,
    /// `oci-mediatypes=` (None: the output's default, OCI).
    pub oci_types: Option<bool>,
    /// `oci-artifact=`: attestation manifests as OCI artifacts (artifactType, subject, the
    /// empty config); None: BuildKit HEAD's default (compatibility version 31,
    /// exporter/containerimage/export.go DefaultOCIArtifact), an artifact when OCI media types
    /// are on.
    pub oci_artifact: Option<bool>,
    /// `prefer-nondist-layers=`: in BuildKit, a layer that came with URLs (a non-distributable
    /// one: Windows base images) keeps its non-distributable media type and URLs instead of
    /// becoming distributable. slipway keeps no layer URLs (a pulled descriptor's are dropped),
    /// so it has no such layer: the value is checked and changes nothing.
    pub prefer_nondist: bool,
}

impl Options {
    /// Takes one option of an output; false when `k` is not one of these.
    pub fn take(&mut self, k: &str, v: &str) -> Result<bool, String> {
        match k {
            "compression" => self.compression = Some(Compression::parse(v)?),
            "compression-level" => {
                let n: i32 = v.parse().map_err(|_| format!("compression-level={v:?}: expected a whole number"))?;
                self.level = Some(n);
            }
            "force-compression" => self.force = crate::output::parse_bool(k, v)?,
            "oci-mediatypes" => self.oci_types = Some(crate::output::parse_bool(k, v)?),
            "oci-artifact" => self.oci_artifact = Some(crate::output::parse_bool(k, v)?),
            "prefer-nondist-layers" => self.prefer_nondist = crate::output::parse_bool(k, v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses what no conversion can give, before the build runs.
    pub fn check(&self) -> Result<(), String> {
        let c = self.compression.unwrap_or(Compression::Gzip);
        if let Some(l) = self.level {
            let max = match c {
                Compression::Gzip | Compression::EStargz => 9,
                Compression::Zstd => 22,
                // BuildKit's compression.ParseAttributes sets it and nothing reads it
                Compression::Uncompressed => i32::MAX,
            };
            if max != i32::MAX && !(0..=max).contains(&l) {
                return Err(format!("compression-level={l}: {} takes 0 to {max}", c.name()));
            }
        }
        if matches!(c, Compression::Zstd | Compression::EStargz) && self.oci_types == Some(false) {
            // BuildKit's words (its OnlySupportOCITypes)
            return Err(format!(
                "exporter option \"compression={}\" conflicts with \"oci-mediatypes=false\"",
                c.name()
            ));
        }
        if self.oci_artifact == Some(true) && self.oci_types == Some(false) {
            return Err("exporter option \"oci-artifact=true\" conflicts with \"oci-mediatypes=false\"".into());
        }
        Ok(())
    }

    /// Whether the options change nothing in the image (`oci-artifact` and
    /// `prefer-nondist-layers` never do in slipway).
    pub fn is_plain(&self) -> bool {
        Options { oci_artifact: None, prefer_nondist: false, ..self.clone() } == Options::default()
    }

    pub fn oci(&self) -> bool {
        self.oci_types.unwrap_or(true)
    }

    /// Whether attestation manifests are OCI artifacts: as `oci-artifact=` says, else BuildKit
    /// HEAD's default (DefaultOCIArtifact: compatibility version 31 and OCI media types).
    pub fn oci_artifact(&self) -> bool {
        self.oci_artifact.unwrap_or_else(|| self.oci())
    }

    /// Whether a layer stored with compression `have` gets a new blob.
    fn converts(&self, have: Compression) -> bool {
        let want = self.compression.unwrap_or(Compression::Gzip);
        // a plain gzip blob is what slipway writes for every layer it makes: BuildKit compresses
        // the layers a build makes as asked; what came in another compression (eStargz too)
        // stays unless forced, and an eStargz blob is never made eStargz again
        let ours = have == Compression::Gzip;
        let relevel = want == Compression::Gzip && ours && self.level.is_some_and(|l| l != GZIP_LEVEL);
        (have != want && (self.force || ours)) || relevel
    }
}

/// `img` as `opts` asks: its layers recompressed where they must be, its manifest in the media
/// types asked for and, where eStargz changed diff IDs, a config that names the new ones; `img`
/// itself when nothing changes.
pub fn convert(store: &Store, img: &Image, opts: &Options) -> Result<Image, StoreError> {
    if opts.is_plain() {
        return with_estargz_annotations(store, img);
    }
    let oci = opts.oci();
    let want = opts.compression.unwrap_or(Compression::Gzip);
    let fail =
        |e: String| StoreError::Io { op: "export", path: img.manifest_digest.clone().into(), err: io::Error::other(e) };
    let mut layers = Vec::new();
    let mut diff_ids = img.config.rootfs.diff_ids.clone();
    for (i, l) in img.layers().into_iter().enumerate() {
        let mut kept = img.manifest.layers[i].clone();
        let Some((have, toc_off)) = blob_compression(store, &l)? else {
            layers.push(kept);
            continue;
        };
        let (mut d, c) = if opts.converts(have) {
            let conv = recompress(store, &l, toc_off, want, opts.level)?;
            diff_ids[i] = conv.diff_id.clone();
            (conv.descriptor(), want)
        } else {
            if let (Some(off), true) = (toc_off, oci) {
                kept.annotations.extend(estargz_annotations(store, &l, off)?);
            }
            (kept, have)
        };
        d.media_type = c
            .media_type(oci)
            .map_err(|e| fail(format!("layer {i} ({}): {e}; force-compression=true recompresses it", l.digest)))?
            .into();
        if !oci {
            // docker media types carry no layer annotations (BuildKit drops them too)
            d.annotations.clear();
        }
        layers.push(d);
    }
    let (manifest_type, config_type) =
        if oci { (image::MT_MANIFEST, image::MT_CONFIG) } else { (image::MT_DOCKER_MANIFEST, image::MT_DOCKER_CONFIG) };
    let config = if diff_ids != img.config.rootfs.diff_ids {
        with_diff_ids(store, img, &diff_ids)?
    } else {
        img.manifest.config.clone()
    };
    let m = Manifest {
        schema_version: 2,
        media_type: manifest_type.into(),
        config: Descriptor { media_type: config_type.into(), ..config },
        layers,
        annotations: img.manifest.annotations.clone(),
    };
    if image::to_json(&m) == image::to_json(&img.manifest) {
        return Ok(img.clone());
    }
    let (d, _) = store.put_json(&m)?;
    store.image_by_manifest(&d)
}

/// A layer blob's compression (its media type's, or eStargz when a gzip blob has the footer),
/// with the eStargz TOC's offset; None for a media type that is no layer's this knows (kept
/// as it is). A blob the store lacks is not read here: what needs it fails where it is needed.
fn blob_compression(store: &Store, l: &Layer) -> Result<Option<(Compression, Option<u64>)>, StoreError> {
    let Some(have) = Compression::of_media_type(&l.media_type) else { return Ok(None) };
    if have == Compression::Gzip && store.has_blob(&l.digest) {
        let src = store.blob_path(&l.digest);
        if let Some(off) = estargz::toc_offset(&src).map_err(io_err("read", &src))? {
            return Ok(Some((Compression::EStargz, Some(off))));
        }
    }
    Ok(Some((have, None)))
}

/// One layer as the build cache exports it (`--cache-to ...,compression=`): recompressed
/// where `opts` asks, as [`convert`] does an image's; never to eStargz (the caller refuses it:
/// its diff ID would change). The layer itself when nothing changes.
pub fn convert_layer(store: &Store, l: &Layer, opts: &Options) -> Result<Layer, StoreError> {
    let Some((have, toc_off)) = blob_compression(store, l)? else { return Ok(l.clone()) };
    let want = opts.compression.unwrap_or(Compression::Gzip);
    if want == Compression::EStargz || !opts.converts(have) {
        return Ok(l.clone());
    }
    let conv = recompress(store, l, toc_off, want, opts.level)?;
    if !conv.diff_id.is_empty() && conv.diff_id != l.diff_id {
        // (an eStargz base's blob holds its TOC in its diff ID: the step's config names that)
        return Ok(l.clone());
    }
    let media_type = want.media_type(true).map_err(|e| StoreError::Io {
        op: "convert",
        path: l.digest.clone().into(),
        err: io::Error::other(e),
    })?;
    Ok(Layer { digest: conv.digest, size: conv.size, diff_id: l.diff_id.clone(), media_type: media_type.into() })
}

/// `img` with BuildKit's annotations on each eStargz layer that lacks them (a build keeps its
/// base's blobs, not their descriptors' annotations; BuildKit keeps both); `img` itself when no
/// layer lacks them or its manifest has docker media types (which carry no layer annotations).
fn with_estargz_annotations(store: &Store, img: &Image) -> Result<Image, StoreError> {
    if img.manifest.media_type != image::MT_MANIFEST {
        return Ok(img.clone());
    }
    let mut m = img.manifest.clone();
    let mut changed = false;
    for (i, l) in img.layers().into_iter().enumerate() {
        if Compression::of_media_type(&l.media_type) != Some(Compression::Gzip)
            || m.layers[i].annotations.contains_key(estargz::TOC_DIGEST_ANNOTATION)
            || !store.has_blob(&l.digest)
        {
            continue;
        }
        let src = store.blob_path(&l.digest);
        if let Some(off) = estargz::toc_offset(&src).map_err(io_err("read", &src))? {
            m.layers[i].annotations.extend(estargz_annotations(store, &l, off)?);
            changed = true;
        }
    }
    if !changed {
        return Ok(img.clone());
    }
    let (d, _) = store.put_json(&m)?;
    store.image_by_manifest(&d)
}

/// `img`'s config with `rootfs.diff_ids` replaced, stored; its descriptor. A config slipway
/// wrote keeps its field order; any other (a pulled base's) is rewritten with its keys sorted,
/// so that the bytes do not depend on serde_json's features.
fn with_diff_ids(store: &Store, img: &Image, diff_ids: &[String]) -> Result<Descriptor, StoreError> {
    let p = store.blob_path(&img.config_digest);
    let raw = fs::read(&p).map_err(io_err("read", &p))?;
    let ours = serde_json::from_slice::<ImageConfig>(&raw).ok().filter(|c| image::to_json(c) == raw);
    let (digest, size) = match ours {
        Some(mut c) => {
            c.rootfs.diff_ids = diff_ids.to_vec();
            store.put_json(&c)?
        }
        None => {
            let mut v: serde_json::Value =
                serde_json::from_slice(&raw).map_err(|err| StoreError::Json { path: p.clone(), err })?;
            let Some(rootfs) = v.get_mut("rootfs").and_then(|r| r.as_object_mut()) else {
                return Err(StoreError::Io {
                    op: "export",
                    path: p,
                    err: io::Error::other("the image config has no rootfs object"),
                });
            };
            rootfs.insert("diff_ids".into(), diff_ids.into());
            store.put_json(&sorted(v))?
        }
    };
    Ok(Descriptor { digest, size, ..img.manifest.config.clone() })
}

/// A JSON value with every object's keys in order, whatever serde_json's map keeps.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut kv: Vec<(String, Value)> = m.into_iter().collect();
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(kv.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        v => v,
    }
}

/// The annotations an eStargz layer's descriptor carries (BuildKit's, from its writer):
/// read from the blob for one that came without them, then remembered by blob digest.
fn estargz_annotations(store: &Store, l: &Layer, off: u64) -> Result<BTreeMap<String, String>, StoreError> {
    let rec = format!("cache/converted/estargz-info-{}", l.digest.trim_start_matches("sha256:"));
    let (toc, size) = match store.read_record::<(String, u64)>(&rec) {
        Some(r) => r,
        None => {
            let src = store.blob_path(&l.digest);
            let toc = estargz::toc_digest(&src, off).map_err(io_err("read the eStargz TOC of", &src))?;
            let mut r = layer::open_decompressed(&src).map_err(io_err("open", &src))?;
            let size = io::copy(&mut r, &mut io::sink()).map_err(io_err("read", &src))?;
            store.write_record(&rec, &(toc.clone(), size))?;
            (toc, size)
        }
    };
    Ok(BTreeMap::from([
        (estargz::TOC_DIGEST_ANNOTATION.to_string(), toc),
        (estargz::UNCOMPRESSED_SIZE_ANNOTATION.to_string(), size.to_string()),
    ]))
}

/// A converted blob, as `cache/converted/` remembers it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Converted {
    digest: String,
    size: u64,
    /// Its diff ID: the layer's own but for eStargz (records written before eStargz existed
    /// have none: theirs is the layer's).
    #[serde(default)]
    diff_id: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl Converted {
    fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: self.annotations.clone(),
            platform: None,
        }
    }
}

/// The blob of layer `l` in compression `want`: made once, then found by its diff ID. The
/// layer's content is checked against its diff ID as it is read, so a damaged blob is not
/// passed on under a fresh digest. An eStargz layer (`toc_off`: its TOC's offset) gives the
/// tar it was made of, without the TOC (BuildKit's `estargz.Unpack`).
fn recompress(
    store: &Store,
    l: &Layer,
    toc_off: Option<u64>,
    want: Compression,
    level: Option<i32>,
) -> Result<Converted, StoreError> {
    let tag = match (want, level) {
        (Compression::Uncompressed, _) => "tar".to_string(),
        (Compression::Gzip, l) => format!("gzip-{}", l.unwrap_or(GZIP_LEVEL)),
        (Compression::EStargz, l) => format!("estargz-{}", l.unwrap_or(GZIP_LEVEL)),
        (Compression::Zstd, l) => format!("zstd-{}", l.unwrap_or(0)),
    };
    let rec = format!("cache/converted/{}-{tag}", l.diff_id.trim_start_matches("sha256:"));
    if let Some(mut c) = store.read_record::<Converted>(&rec) {
        if store.has_blob(&c.digest) {
            if c.diff_id.is_empty() {
                c.diff_id = l.diff_id.clone();
            }
            return Ok(c);
        }
    }
    let src = store.blob_path(&l.digest);
    let tmpd = store.tempdir("convert")?;
    let tmp = tmpd.path.join("blob");
    let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let outer = HashWriter::new(io::BufWriter::new(f));
    let input: Box<dyn Read> = match toc_off {
        Some(off) => Box::new(estargz::open_payload(&src, off).map_err(io_err("open", &src))?),
        None => layer::open_decompressed(&src).map_err(io_err("open", &src))?,
    };
    let mut r = layer::HashReader { inner: input, hash: Sha256::new() };
    let copy = |r: &mut dyn Read, w: &mut dyn Write| io::copy(r, w).map_err(io_err("recompress", &src));
    let level_of = |d: i32| level.unwrap_or(d);
    let mut annotations = BTreeMap::new();
    let (new_diff_id, mut outer) = match want {
        Compression::Uncompressed => {
            let mut w = outer;
            copy(&mut r, &mut w)?;
            (None, w)
        }
        Compression::Gzip => {
            let lv = flate2::Compression::new(level_of(GZIP_LEVEL) as u32);
            let mut w = flate2::write::GzEncoder::new(outer, lv);
            copy(&mut r, &mut w)?;
            (None, w.finish().map_err(io_err("write", &tmp))?)
        }
        Compression::EStargz => {
            let (w, outer) = estargz::write(&mut r, outer, level_of(GZIP_LEVEL) as u32, estargz::CHUNK_SIZE)
                .map_err(io_err("make eStargz of", &src))?;
            annotations.insert(estargz::TOC_DIGEST_ANNOTATION.to_string(), w.toc_digest);
            annotations.insert(estargz::UNCOMPRESSED_SIZE_ANNOTATION.to_string(), w.uncompressed_size.to_string());
            (Some(w.diff_id), outer)
        }
        Compression::Zstd => {
            let mut w = zstd::stream::write::Encoder::new(outer, level_of(0)).map_err(io_err("zstd", &tmp))?;
            copy(&mut r, &mut w)?;
            (None, w.finish().map_err(io_err("write", &tmp))?)
        }
    };
    outer.flush().map_err(io_err("write", &tmp))?;
    // an eStargz input's diff ID covers its TOC too: the rest of the blob goes into the check
    let tar_digest = format!("sha256:{}", hex::encode(r.hash.clone().finalize()));
    if let Some(off) = toc_off {
        let mut rest = File::open(&src).map_err(io_err("open", &src))?;
        io::Seek::seek(&mut rest, io::SeekFrom::Start(off)).map_err(io_err("read", &src))?;
        let mut rest = flate2::read::MultiGzDecoder::new(io::BufReader::new(rest));
        io::copy(&mut rest, &mut r.hash).map_err(io_err("read", &src))?;
    }
    let content = format!("sha256:{}", hex::encode(r.hash.finalize()));
    if content != l.diff_id {
        return Err(StoreError::Io {
            op: "recompress",
            path: src,
            err: io::Error::other(format!("its content is {content}, not the diff ID {} its image records", l.diff_id)),
        });
    }
    let (digest, size) = (outer.digest(), outer.n);
    drop(outer);
    if !store.has_blob(&digest) {
        store.commit_blob_file(&tmp, &digest)?;
    }
    let c = Converted { digest, size, diff_id: new_diff_id.unwrap_or(tar_digest), annotations };
    store.write_record(&rec, &c)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(s: &[(&str, &str)]) -> Result<Options, String> {
        let mut o = Options::default();
        for (k, v) in s {
            assert!(o.take(k, v)?, "{k} is one of the options");
        }
        o.check()?;
        Ok(o)
    }

    #[test]
    fn options_parse_and_check_as_buildkit_does() {
        // BuildKit: `force-compression` alone means true; levels 0..22 for zstd, gzip's 0..9
        assert!(opts(&[("force-compression", "")]).unwrap().force);
        // Go's strconv.ParseBool spellings, as BuildKit reads them
        assert!(opts(&[("force-compression", "TRUE")]).unwrap().force);
        assert_eq!(opts(&[("oci-mediatypes", "F")]).unwrap().oci_types, Some(false));
        assert_eq!(opts(&[("oci-artifact", "True")]).unwrap().oci_artifact, Some(true));
        // BuildKit HEAD (compatibility version 31): attestation manifests are OCI artifacts
        // unless oci-artifact=false or docker media types say otherwise (DefaultOCIArtifact)
        assert!(opts(&[]).unwrap().oci_artifact());
        assert!(!opts(&[("oci-artifact", "false")]).unwrap().oci_artifact());
        assert!(!opts(&[("oci-mediatypes", "false")]).unwrap().oci_artifact());
        assert!(opts(&[("prefer-nondist-layers", "true")]).unwrap().prefer_nondist);
        assert!(opts(&[("prefer-nondist-layers", "maybe")]).unwrap_err().contains("prefer-nondist-layers"));
        // BuildKit takes a level with uncompressed layers, and nothing reads it
        assert_eq!(opts(&[("compression", "uncompressed"), ("compression-level", "30")]).unwrap().level, Some(30));
        assert_eq!(opts(&[("compression", "zstd"), ("compression-level", "19")]).unwrap().level, Some(19));
        for (o, says) in [
            (vec![("compression", "lz4")], "expected uncompressed, gzip, estargz or zstd"),
            (vec![("compression", "estargz"), ("compression-level", "10")], "estargz takes 0 to 9"),
            (vec![("compression", "estargz"), ("oci-mediatypes", "false")], "\"compression=estargz\" conflicts with"),
            (vec![("compression-level", "x")], "whole number"),
            (vec![("compression", "gzip"), ("compression-level", "10")], "gzip takes 0 to 9"),
            (vec![("compression", "zstd"), ("compression-level", "23")], "zstd takes 0 to 22"),
            // BuildKit's opts.go: zstd needs OCI media types
            (vec![("compression", "zstd"), ("oci-mediatypes", "false")], "conflicts with \"oci-mediatypes=false\""),
            (vec![("oci-mediatypes", "maybe")], "option oci-mediatypes=\"maybe\": expected true or false"),
            (vec![("force-compression", "yes")], "option force-compression=\"yes\": expected true or false"),
        ] {
            let e = opts(&o).unwrap_err();
            assert!(e.contains(says), "{o:?}: {e}");
        }
        let mut o = Options::default();
        assert!(!o.take("dest", "x").unwrap());
    }

    #[test]
    fn which_layers_get_a_new_blob() {
        use Compression::*;
        let o = |c, force, level| Options {
            compression: Some(c),
            force,
            level,
            oci_types: None,
            oci_artifact: None,
            prefer_nondist: false,
        };
        // slipway's own layers (gzip) take the compression asked for
        assert!(o(Zstd, false, None).converts(Gzip));
        assert!(o(Uncompressed, false, None).converts(Gzip));
        assert!(!o(Gzip, false, None).converts(Gzip));
        // a gzip level other than the one they were written with recompresses them
        assert!(o(Gzip, false, Some(9)).converts(Gzip));
        assert!(!o(Gzip, false, Some(6)).converts(Gzip));
        // a pulled zstd or uncompressed layer stays, unless forced
        assert!(!o(Gzip, false, None).converts(Zstd));
        assert!(!o(Gzip, false, None).converts(Uncompressed));
        assert!(o(Gzip, true, None).converts(Zstd));
        assert!(!o(Zstd, true, None).converts(Zstd));
        // BuildKit: an eStargz blob is never made again; made plain gzip only when forced
        assert!(o(EStargz, false, None).converts(Gzip));
        assert!(o(EStargz, false, Some(9)).converts(Gzip));
        assert!(!o(EStargz, true, Some(9)).converts(EStargz));
        assert!(!o(EStargz, false, None).converts(Zstd));
        assert!(o(EStargz, true, None).converts(Zstd));
        assert!(!o(Gzip, false, None).converts(EStargz));
        assert!(!o(Gzip, false, Some(9)).converts(EStargz));
        assert!(o(Gzip, true, None).converts(EStargz));
        assert!(!o(EStargz, false, None).converts(Uncompressed) && o(EStargz, true, None).converts(Uncompressed));
    }

    #[test]
    fn records_of_before_estargz_still_read() {
        // `cache/converted/` records were (digest, size) pairs: their diff ID is the layer's
        let c: Converted = serde_json::from_str("[\"sha256:ab\", 12]").unwrap();
        assert_eq!((c.digest.as_str(), c.size, c.diff_id.as_str()), ("sha256:ab", 12, ""));
    }

    #[test]
    fn media_types() {
        assert_eq!(Compression::of_media_type(image::MT_DOCKER_LAYER_GZIP), Some(Compression::Gzip));
        assert_eq!(Compression::of_media_type(MT_DOCKER_LAYER_TAR), Some(Compression::Uncompressed));
        assert_eq!(Compression::of_media_type(MT_LAYER_ZSTD), Some(Compression::Zstd));
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::of_media_type("application/x-foo"), None);
        assert!(Compression::Zstd.media_type(false).is_err());
        // eStargz is gzip to every reader
        assert_eq!(Compression::EStargz.media_type(true), Ok(image::MT_LAYER_GZIP));
        assert_eq!(Compression::EStargz.media_type(false), Ok(image::MT_DOCKER_LAYER_GZIP));
    }
}
