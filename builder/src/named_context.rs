//! `build --build-context NAME=VALUE`: named contexts that `FROM NAME`, `COPY --from=NAME` and
//! `RUN --mount from=NAME` use instead of the image, or the stage, of that name, as BuildKit's
//! frontend does (a stage of that name is replaced, its instructions not run). VALUE is a
//! directory, `docker-image://REF` or `oci-layout://DIR[:TAG|@DIGEST]`. A directory becomes a
//! one-layer image of its files (its own `.dockerignore` applied, owned by root as buildx sends
//! them, mtimes as in every layer the build writes: `layer::Mtimes`), so all three users of a
//! name go through the one image path and its cache key is its content. `NAME::PLATFORM=VALUE`
//! is NAME's context for that platform only, tried before NAME (`NamedContexts::lookup`); the
//! planner asks per platform, so a stage is replaced only on the platforms a context has it for
//! (`plan::replace_named_stages`). Runs nothing.

use crate::context::Context;
use crate::layer::{self, Entry, Kind};
use crate::registry::{Platform, Reference};
use crate::store::image::{self, History, ImageConfig};
use crate::store::{Image, Store, StoreError};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

/// The history comment of the image a `--build-context NAME=DIR` makes: a layer the build
/// writes (with its times), not a base image's.
pub const DIR_COMMENT: &str = "slipway --build-context";

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A local directory.
    Dir(PathBuf),
    /// `docker-image://REF`: an image of the store, or pulled.
    Image(String),
    /// `oci-layout://DIR[:TAG|@DIGEST]`: an image of an OCI layout directory (`latest` unless
    /// a tag or digest says which).
    OciLayout { dir: PathBuf, tag: Option<String>, digest: Option<String> },
    /// A git repository or an http(s) URL (as written), fetched into the store
    /// (`fetch::context`) and then made an image as a directory is.
    Remote(String, crate::fetch::context::Remote),
}

/// The names of a build, by BuildKit's key (see [`key`]).
#[derive(Debug, Clone, Default)]
pub struct NamedContexts {
    pub by_key: BTreeMap<String, Value>,
}

/// BuildKit's key of a name: the reference normalized, then familiar, without `:latest`
/// (`docker.io/library/alpine:latest` and `alpine` are one name).
pub fn key(name: &str) -> Result<String, String> {
    let r = Reference::parse(name).map_err(|e| e.to_string())?;
    let s = r.store_name();
    Ok(s.strip_suffix(":latest").unwrap_or(&s).to_string())
}

/// One `--build-context NAME=VALUE`, as buildx reads it.
pub fn parse(s: &str) -> Result<(String, Value), String> {
    let flag = format!("--build-context {s}");
    let Some((name, v)) = s.split_once('=') else {
        return Err(format!("{flag}: expected NAME=VALUE"));
    };
    // NAME::PLATFORM: the context of NAME for that platform only (dockerui's key; see `lookup`)
    let (name, platform) = match name.split_once("::") {
        Some((n, p)) => (n, Some(p)),
        None => (name, None),
    };
    let mut k = key(name).map_err(|e| format!("{flag}: invalid context name {name:?}: {e}"))?;
    if let Some(p) = platform {
        let p = Platform::parse(p).map_err(|e| format!("{flag}: the context of {name} for one platform: {e}"))?;
        k = format!("{k}::{}", p.normalized());
    }
    let value = if let Some(r) = v.strip_prefix("docker-image://") {
        Reference::parse(r).map_err(|e| format!("{flag}: {e}"))?;
        Value::Image(r.to_string())
    } else if let Some(rest) = v.strip_prefix("oci-layout://") {
        let (rest, digest) = match rest.rsplit_once('@') {
            Some((p, d)) => (p, Some(d.to_string())),
            None => (rest, None),
        };
        if let Some(d) = &digest {
            if !crate::registry::reference::valid_digest(d) {
                return Err(format!("{flag}: {d:?} is not a sha256 digest"));
            }
        }
        // a tag follows the last ':' after the last '/'
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && digest.is_none() => (p, Some(t.to_string())),
            _ => (rest, None),
        };
        let dir = PathBuf::from(dir);
        if !dir.join("index.json").is_file() {
            return Err(format!("{flag}: {} is not an OCI layout (no index.json)", dir.display()));
        }
        Value::OciLayout { dir, tag, digest }
    } else if let Some(r) = crate::fetch::context::parse(v).map_err(|e| format!("{flag}: {e}"))? {
        // before a directory, as buildx tells them apart
        Value::Remote(v.to_string(), r)
    } else if v.starts_with("target:") {
        return Err(format!("{flag}: target: contexts are bake's (docker buildx bake), not build's"));
    } else if let Some((scheme, _)) = v.split_once("://") {
        return Err(format!(
            "{flag}: unknown context type {scheme}://; give a directory, docker-image:// or oci-layout://"
        ));
    } else {
        let p = PathBuf::from(v);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Value::Dir(p),
            Ok(_) => return Err(format!("{flag}: {v} is not a directory")),
            Err(e) => return Err(format!("{flag}: {v}: {e}")),
        }
    };
    Ok((k, value))
}

impl NamedContexts {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// What `name` (a stage's name, a FROM base, a `--from`, a SOURCE_DATE_EPOCH value) stands
    /// for on `platform`, if a context has it, with that context's key: `NAME::PLATFORM` (the
    /// platform normalized) first, then `NAME`, as dockerui's NamedContext looks them up
    /// (frontend/dockerui/config.go:468-486). Which platform is the caller's: the stage's
    /// `FROM --platform`, else the one being built, for a stage's name and a FROM base; the one
    /// being built for `--from` (dockerfile2llb/convert.go:221-233, 460-465, 666-670, 957-962).
    pub fn lookup(&self, name: &str, platform: &Platform) -> Option<(&str, &Value)> {
        let k = key(name).ok()?;
        let per_platform = format!("{k}::{}", platform.normalized());
        self.by_key.get_key_value(&per_platform).or_else(|| self.by_key.get_key_value(&k)).map(|(k, v)| (k.as_str(), v))
    }
}

/// The image of directory `dir` (context `name`) for `platform`: one layer of its files (those
/// its `.dockerignore` leaves, when `dockerignore`: a local directory's), the config of
/// `FROM scratch` saying that platform (dockerui gives a directory no config; the frontend
/// makes the stage's `emptyImage(platform)`). Reused while the files are the same
/// (`cache/named/`, keyed by the files' fingerprints, the name, the times and a platform other
/// than this machine's). `epoch` is its `created`; `mtimes` its files' times.
pub fn dir_image(
    store: &Store,
    name: &str,
    dir: &std::path::Path,
    dockerignore: bool,
    epoch: i64,
    mtimes: layer::Mtimes,
    platform: &Platform,
) -> Result<Image, String> {
    let platform = platform.normalized();
    // as before the platform was asked for, so that this machine's records stay valid
    let foreign = (platform != Platform::host().normalized()).then(|| format!(" {platform}"));
    let err = |e: &dyn std::fmt::Display| format!("--build-context {name}={}: {e}", dir.display());
    let ctx = Context::open(dir, Some(store)).map_err(|e| err(&e))?;
    let mut ctx = if dockerignore { ctx } else { ctx.unfiltered() };
    let fp = ctx.fingerprints("").map_err(|e| err(&e))?;
    let rec = format!(
        "cache/named/{}",
        crate::context::digest_fingerprints(
            &fp.into_iter()
                .chain([(
                    " name".into(),
                    match mtimes {
                        // as before the files' own times could be asked for, so the records stay valid
                        layer::Mtimes::Zero if epoch == 0 => format!("{name} {epoch}"),
                        m => format!("{name} {epoch} {}", m.key()),
                    } + foreign.as_deref().unwrap_or("")
                )])
                .collect()
        )
    );
    if let Some(m) = store.read_record::<String>(&rec) {
        if let Ok(img) = store.image_by_manifest(&m) {
            if img.layers().iter().all(|l| store.has_blob(&l.digest)) {
                ctx.save(store);
                return Ok(img);
            }
        }
    }
    let mut entries = Vec::new();
    for e in ctx.subtree("").map_err(|e| err(&e))? {
        if e.rel.is_empty() {
            continue;
        }
        let ft = e.md.file_type();
        let path = ctx.path(&e.rel);
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(&path).map_err(|e| err(&e))?)
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            continue; // sockets and devices: not sent, as buildx's file sync skips them
        };
        let size = if kind == Kind::File { e.md.len() } else { 0 };
        let source = (kind == Kind::File).then_some(path);
        entries.push(Entry {
            path: e.rel.clone(),
            kind,
            mode: e.md.mode() & 0o7777,
            uid: 0,
            gid: 0,
            size,
            source,
            xattrs: Vec::new(),
            mtime: Some(layer::mtime_of(&e.md)),
            own_mtime: false,
        });
    }
    let l = layer::commit_layer(store, &entries, mtimes).map_err(|e| err(&e))?;
    let mut config = ImageConfig::scratch();
    config.os = platform.os.clone();
    config.architecture = platform.architecture.clone();
    config.variant = platform.variant.clone().unwrap_or_default();
    config.rootfs.diff_ids.push(l.diff_id.clone());
    config.history.push(History {
        created: image::rfc3339(epoch),
        created_by: format!("build context {name}"),
        comment: DIR_COMMENT.into(),
        empty_layer: false,
    });
    let (desc, _) = store.put_image(&config, &[l.descriptor()]).map_err(|e: StoreError| err(&e))?;
    let img = store.image_by_manifest(&desc.digest).map_err(|e| err(&e))?;
    // unnamed, so that prune may drop it once no build cache entry needs it
    let _ = store.write_record(&rec, &desc.digest);
    ctx.save(store);
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_as_buildx_reads_them() {
        // dockerui's NamedContext: normalized, familiar, ":latest" dropped
        assert_eq!(key("alpine").unwrap(), "alpine");
        assert_eq!(key("docker.io/library/alpine:latest").unwrap(), "alpine");
        assert_eq!(key("alpine:3.19").unwrap(), "alpine:3.19");
        assert_eq!(key("localhost:5000/app").unwrap(), "localhost:5000/app");
        assert!(key("Upper").is_err());
        let d = std::env::temp_dir();
        assert_eq!(parse(&format!("src={}", d.display())).unwrap(), ("src".into(), Value::Dir(d.clone())));
        assert_eq!(
            parse("base=docker-image://busybox:1.36").unwrap(),
            ("base".into(), Value::Image("busybox:1.36".into()))
        );
        assert!(parse("nameonly").unwrap_err().contains("expected NAME=VALUE"));
        // dockerui's per-platform NAME::PLATFORM: the name normalized as any, the platform as
        // containerd normalizes the one being built (config.go:481), so that they compare
        assert_eq!(
            parse(&format!("docker.io/library/alpine:latest::linux/aarch64={}", d.display())).unwrap(),
            ("alpine::linux/arm64".into(), Value::Dir(d.clone()))
        );
        assert_eq!(parse("base::linux/arm=docker-image://x").unwrap().0, "base::linux/arm/v7");
        for bad in ["base::linux=docker-image://x", "base::=docker-image://x", "base::linux//v7=docker-image://x"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("the context of base for one platform: platform"), "{bad}: {e}");
        }
        assert!(parse("Base::linux/amd64=docker-image://x").unwrap_err().contains("invalid context name \"Base\""));
        // looked up NAME::PLATFORM first, then NAME
        let mut n = NamedContexts::default();
        for c in
            ["base=docker-image://plain", "base::linux/arm64=docker-image://arm", "only::linux/arm64=docker-image://o"]
        {
            let (k, v) = parse(c).unwrap();
            n.by_key.insert(k, v);
        }
        let p = |s: &str| Platform::parse(s).unwrap();
        let got = |name: &str, pl: &str| n.lookup(name, &p(pl)).map(|(k, v)| (k.to_string(), v.clone()));
        assert_eq!(got("base", "linux/arm64"), Some(("base::linux/arm64".into(), Value::Image("arm".into()))));
        assert_eq!(
            got("base:latest", "linux/arm64/v8"),
            Some(("base::linux/arm64".into(), Value::Image("arm".into())))
        );
        assert_eq!(got("base", "linux/amd64"), Some(("base".into(), Value::Image("plain".into()))));
        assert_eq!(got("only", "linux/arm64").map(|g| g.0), Some("only::linux/arm64".into()));
        assert_eq!(got("only", "linux/amd64"), None);
        // remote contexts: a git reference (its query checked), any other http(s) URL
        match parse("x=https://example.com/repo.git#v1:sub") {
            Ok((k, Value::Remote(u, crate::fetch::context::Remote::Git(g)))) => {
                assert_eq!(
                    (k.as_str(), u.as_str(), g.ref_name.as_str(), g.subdir.as_str()),
                    ("x", "https://example.com/repo.git#v1:sub", "v1", "sub")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("x=https://example.com/ctx.tar.gz"),
            Ok((_, Value::Remote(_, crate::fetch::context::Remote::Http(_))))
        ));
        assert!(matches!(parse("x=git@github.com:a/b.git"), Ok((_, Value::Remote(..)))));
        assert!(parse("x=https://example.com/repo.git?bad=1").unwrap_err().contains("unexpected query"));
        assert!(parse("x=target:foo").unwrap_err().contains("bake"));
        assert!(parse("x=s3://b/k").unwrap_err().contains("unknown context type s3://"));
        assert!(parse("x=/nonexistent/dir/of/slipway").unwrap_err().contains("/nonexistent/dir/of/slipway"));
        assert!(parse("x=oci-layout:///nonexistent").unwrap_err().contains("not an OCI layout"));
    }
}
