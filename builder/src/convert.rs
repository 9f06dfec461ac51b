//! An output's layer compression and media types: BuildKit's `compression`,
//! `compression-level`, `force-compression` and `oci-mediatypes` exporter options. Gives the
//! image an output writes: layers recompressed where asked, the manifest in OCI or docker media
//! types. The config is never touched (the image ID stays the same), and neither is what the build
//! cache records. Converted blobs are remembered by diff ID (`cache/converted/`), so exporting
//! the same layers again compresses nothing. Which outputs take these options is output.rs's
//! business, not this file's.

use crate::layer;
use crate::registry::manifest::{MT_DOCKER_LAYER_TAR, MT_LAYER_ZSTD};
use crate::store::image::{self, Descriptor, Layer, Manifest};
use crate::store::{io_err, HashWriter, Image, Store, StoreError};
use std::fs::File;
use std::io::{self, Write};

/// The gzip level slipway writes its layers with (flate2's default, Go's too).
pub const GZIP_LEVEL: i32 = 6;

/// A layer blob's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Zstd,
}

impl Compression {
    fn parse(v: &str) -> Result<Compression, String> {
        match v {
            "uncompressed" => Ok(Compression::Uncompressed),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "estargz" => {
                Err("compression=estargz: slipway writes no eStargz layers (uncompressed, gzip or zstd)".into())
            }
            _ => Err(format!("compression={v:?}: expected uncompressed, gzip, estargz or zstd")),
        }
    }

    /// What a layer's media type says of its blob; None for a media type this does not know
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
            (Compression::Zstd, true) => MT_LAYER_ZSTD,
            (Compression::Uncompressed, false) => MT_DOCKER_LAYER_TAR,
            (Compression::Gzip, false) => image::MT_DOCKER_LAYER_GZIP,
            (Compression::Zstd, false) => return Err("docker media types have no zstd layer".into()),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Compression::Uncompressed => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// An output's layer options; the default writes what the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `compression=` (BuildKit's default: gzip).
    pub compression: Option<Compression>,
    /// `compression-level=`: gzip 0-9, zstd 0-22 (0: zstd's default, 3).
    pub level: Option<i32>,
    /// `force-compression=`: also recompress the layers that are not gzip (pulled or loaded
    /// zstd or uncompressed ones); without it they keep their blobs, as BuildKit keeps a base
    /// image's blobs.
    pub force: bool,
    /// `oci-mediatypes=` (None: the output's default, OCI).
    pub oci_types: Option<bool>,
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
            "force-compression" => self.force = bool_of(k, v)?,
            "oci-mediatypes" => self.oci_types = Some(bool_of(k, v)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses what no conversion can give, before the build runs.
    pub fn check(&self) -> Result<(), String> {
        let c = self.compression.unwrap_or(Compression::Gzip);
        if let Some(l) = self.level {
            let max = match c {
                Compression::Gzip => 9,
                Compression::Zstd => 22,
                Compression::Uncompressed => {
                    return Err(format!("compression-level={l}: uncompressed layers have no level"))
                }
            };
            if !(0..=max).contains(&l) {
                return Err(format!("compression-level={l}: {} takes 0 to {max}", c.name()));
            }
        }
        if c == Compression::Zstd && self.oci_types == Some(false) {
            // BuildKit's words
            return Err("exporter option \"compression=zstd\" conflicts with \"oci-mediatypes=false\"".into());
        }
        Ok(())
    }

    pub fn oci(&self) -> bool {
        self.oci_types.unwrap_or(true)
    }

    /// Whether a layer stored with compression `have` gets a new blob.
    fn converts(&self, have: Compression) -> bool {
        let want = self.compression.unwrap_or(Compression::Gzip);
        // a gzip blob is what slipway writes for every layer it makes: BuildKit compresses the
        // layers a build makes as asked; what came in another compression stays unless forced
        let ours = have == Compression::Gzip;
        let relevel = want == Compression::Gzip && ours && self.level.is_some_and(|l| l != GZIP_LEVEL);
        (have != want && (self.force || ours)) || relevel
    }
}

fn bool_of(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("option {k}={v:?}: expected true or false")),
    }
}

/// `img` as `opts` asks: its layers recompressed where they must be and its manifest in the
/// media types asked for; `img` itself when nothing changes.
pub fn convert(store: &Store, img: &Image, opts: &Options) -> Result<Image, StoreError> {
    if *opts == Options::default() {
        return Ok(img.clone());
    }
    let oci = opts.oci();
    let want = opts.compression.unwrap_or(Compression::Gzip);
    let fail =
        |e: String| StoreError::Io { op: "export", path: img.manifest_digest.clone().into(), err: io::Error::other(e) };
    let mut layers = Vec::new();
    for (i, l) in img.layers().into_iter().enumerate() {
        let Some(have) = Compression::of_media_type(&l.media_type) else {
            layers.push(l.descriptor());
            continue;
        };
        let (d, c) =
            if opts.converts(have) { (recompress(store, &l, want, opts.level)?, want) } else { (l.descriptor(), have) };
        let media_type = c
            .media_type(oci)
            .map_err(|e| fail(format!("layer {i} ({}): {e}; force-compression=true recompresses it", l.digest)))?;
        layers.push(Descriptor { media_type: media_type.into(), ..d });
    }
    let (manifest_type, config_type) =
        if oci { (image::MT_MANIFEST, image::MT_CONFIG) } else { (image::MT_DOCKER_MANIFEST, image::MT_DOCKER_CONFIG) };
    let m = Manifest {
        schema_version: 2,
        media_type: manifest_type.into(),
        config: Descriptor { media_type: config_type.into(), ..img.manifest.config.clone() },
        layers,
        annotations: img.manifest.annotations.clone(),
    };
    if image::to_json(&m) == image::to_json(&img.manifest) {
        return Ok(img.clone());
    }
    let (d, _) = store.put_json(&m)?;
    store.image_by_manifest(&d)
}

/// The blob of layer `l` in compression `want`: made once, then found by its diff ID. The
/// uncompressed stream is checked against the diff ID as it is read, so a damaged blob is not
/// passed on under a fresh digest.
fn recompress(store: &Store, l: &Layer, want: Compression, level: Option<i32>) -> Result<Descriptor, StoreError> {
    let tag = match (want, level) {
        (Compression::Uncompressed, _) => "tar".to_string(),
        (Compression::Gzip, l) => format!("gzip-{}", l.unwrap_or(GZIP_LEVEL)),
        (Compression::Zstd, l) => format!("zstd-{}", l.unwrap_or(0)),
    };
    let rec = format!("cache/converted/{}-{tag}", l.diff_id.trim_start_matches("sha256:"));
    if let Some((digest, size)) = store.read_record::<(String, u64)>(&rec) {
        if store.has_blob(&digest) {
            return Ok(Descriptor {
                media_type: String::new(),
                digest,
                size,
                annotations: Default::default(),
                platform: None,
            });
        }
    }
    let src = store.blob_path(&l.digest);
    let tmpd = store.tempdir("convert")?;
    let tmp = tmpd.path.join("blob");
    let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let outer = HashWriter::new(io::BufWriter::new(f));
    let mut r = layer::open_decompressed(&src).map_err(io_err("open", &src))?;
    let copy = |r: &mut dyn io::Read, w: &mut dyn Write| io::copy(r, w).map_err(io_err("recompress", &src));
    let (diff_id, mut outer) = match want {
        Compression::Uncompressed => {
            let mut w = HashWriter::new(outer);
            copy(&mut r, &mut w)?;
            (w.digest(), w.inner)
        }
        Compression::Gzip => {
            let lv = flate2::Compression::new(level.unwrap_or(GZIP_LEVEL) as u32);
            let mut w = HashWriter::new(flate2::write::GzEncoder::new(outer, lv));
            copy(&mut r, &mut w)?;
            let d = w.digest();
            (d, w.inner.finish().map_err(io_err("write", &tmp))?)
        }
        Compression::Zstd => {
            let enc = zstd::stream::write::Encoder::new(outer, level.unwrap_or(0)).map_err(io_err("zstd", &tmp))?;
            let mut w = HashWriter::new(enc);
            copy(&mut r, &mut w)?;
            let d = w.digest();
            (d, w.inner.finish().map_err(io_err("write", &tmp))?)
        }
    };
    outer.flush().map_err(io_err("write", &tmp))?;
    if diff_id != l.diff_id {
        return Err(StoreError::Io {
            op: "recompress",
            path: src,
            err: io::Error::other(format!("its content is {diff_id}, not the diff ID {} its image records", l.diff_id)),
        });
    }
    let (digest, size) = (outer.digest(), outer.n);
    drop(outer);
    if !store.has_blob(&digest) {
        store.commit_blob_file(&tmp, &digest)?;
    }
    store.write_record(&rec, &(digest.clone(), size))?;
    Ok(Descriptor { media_type: String::new(), digest, size, annotations: Default::default(), platform: None })
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
        assert_eq!(opts(&[("compression", "zstd"), ("compression-level", "19")]).unwrap().level, Some(19));
        for (o, says) in [
            (vec![("compression", "lz4")], "expected uncompressed, gzip, estargz or zstd"),
            (vec![("compression", "estargz")], "eStargz"),
            (vec![("compression-level", "x")], "whole number"),
            (vec![("compression", "gzip"), ("compression-level", "10")], "gzip takes 0 to 9"),
            (vec![("compression", "zstd"), ("compression-level", "23")], "zstd takes 0 to 22"),
            (vec![("compression", "uncompressed"), ("compression-level", "1")], "no level"),
            // BuildKit's opts.go: zstd needs OCI media types
            (vec![("compression", "zstd"), ("oci-mediatypes", "false")], "conflicts with \"oci-mediatypes=false\""),
            (vec![("oci-mediatypes", "maybe")], "expected true or false"),
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
        let o = |c, force, level| Options { compression: Some(c), force, level, oci_types: None };
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
    }
}
