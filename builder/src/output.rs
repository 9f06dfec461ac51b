//! `build --output` (`-o`) and `--annotation`: where a build's result goes, in BuildKit's
//! exporter terms, parsed from buildx's CSV syntax (`type=local,dest=out`), and the writers:
//! the store (`image`, the default, with `name=` and `push=true`; `registry` is `image` with
//! `push=true`), a directory (`local`), a tar of the filesystem (`tar`), an OCI layout or a
//! docker-archive (`oci`, `docker`). Every option is applied or refused naming it. It runs no
//! step: it writes what the build made.

use crate::archive;
use crate::convert;
use crate::layer::{self, Mtimes, Whiteouts};
use crate::registry::Platform;
use crate::store::image::{self, Descriptor, Index};
use crate::store::{io_err, Image, Store, StoreError};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The options of [`convert::Options`]: layer compression and media types.
const LAYER_OPTS: [&str; 6] = [
    "compression",
    "compression-level",
    "force-compression",
    "oci-mediatypes",
    "oci-artifact",
    "prefer-nondist-layers",
];

/// Where a file output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Path(PathBuf),
    Stdout,
    /// Into docker, through `docker load` (a `type=docker` output without `dest`, `--load`).
    Load,
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Path(p) => write!(f, "{}", p.display()),
            Dest::Stdout => write!(f, "stdout"),
            Dest::Load => write!(f, "docker load"),
        }
    }
}

/// What an output writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The store (BuildKit's `image` exporter); `push` sends every name to its registry.
    Image { push: bool, opts: ImageOpts },
    /// The image's filesystem into a directory: merged into what is there, or with `delete`
    /// (`mode=delete`) made to mirror it, what the image does not have removed.
    Local { dest: PathBuf, delete: bool },
    /// The image's filesystem as a tar.
    Tar { dest: Dest },
    /// An OCI image layout, as a tar (or, with `tar=false`, a directory).
    Oci { dest: Dest, tar: bool },
    /// A docker-archive (`docker load` reads it), or with `tar=false` an OCI image layout
    /// directory, as BuildKit's docker exporter copies the image into the client's store.
    Docker { dest: Dest, tar: bool },
    /// Nothing but the build cache.
    CacheOnly,
}

/// The image exporter's options beyond `name` and `push`, as BuildKit takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOpts {
    /// `push-by-digest`: the push writes the manifest (or index) by digest, no tag.
    pub push_by_digest: bool,
    /// `name-canonical`: each name without a digest is also given as `NAME@DIGEST`.
    pub name_canonical: bool,
    /// `unpack`: the store's layer snapshots (what a RUN step's rootfs is made of) of this
    /// machine's image are prepared now, as BuildKit unpacks into containerd's snapshotter.
    pub unpack: bool,
    /// `store=false`: the store keeps no name for the image (a pushed name is removed again
    /// once pushed); its blobs stay until `prune`, as BuildKit's content store keeps them.
    pub no_store: bool,
    /// `dangling-name-prefix`: the image is also named `PREFIX@DIGEST` (alone when it has no
    /// other name), BuildKit's name for an anonymous image.
    pub dangling_prefix: Option<String>,
    /// `dangling-name-empty-only`: the prefix only names an image that has no other name.
    pub dangling_empty_only: bool,
    /// `registry.insecure`: this output's pushes accept any certificate and plain HTTP, as
    /// `--tls-verify=false` does for every registry.
    pub insecure: bool,
}

/// One push of a build's result: a store name and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub name: String,
    pub by_digest: bool,
    /// `store=false`: the store name is removed once the push is over.
    pub unname: bool,
    /// `registry.insecure=true`: any certificate and plain HTTP for this push.
    pub insecure: bool,
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub kind: Kind,
    /// `name=` (image, oci, docker): comma-separated in BuildKit; `-t` names when not given.
    pub names: Vec<String>,
    /// `annotation*.KEY=VALUE` options, with `--annotation`s added.
    pub annotations: Annotations,
    /// `platform-split=` (local, tar): one directory per platform; default when several.
    pub platform_split: Option<bool>,
    /// `compression=`, `compression-level=`, `force-compression=`, `oci-mediatypes=` (image,
    /// registry, oci, docker).
    pub layers: convert::Options,
    /// `rewrite-timestamp=` (image, registry, oci, docker) when given; see [`rewrite_timestamp`].
    pub rewrite_timestamp: Option<bool>,
    /// `source-date-epoch=N` (every type but cacheonly), BuildKit's exporter option: this
    /// output's times; see [`source_date_epoch`].
    pub source_date_epoch: Option<i64>,
    /// `attestation-inline=` (image, registry, oci, docker) and `attestation-prefix=` (local,
    /// tar): BuildKit's options for attestations, checked as BuildKit checks them (a bool; any
    /// string); slipway writes no attestations, so they change nothing.
    pub attestation_inline: Option<bool>,
    pub attestation_prefix: Option<String>,
}

/// Where an annotation goes, as BuildKit names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AnnotationKind {
    Manifest,
    ManifestDescriptor,
    Index,
    IndexDescriptor,
}

impl AnnotationKind {
    fn parse(s: &str) -> Result<AnnotationKind, String> {
        Ok(match s {
            "" | "manifest" => AnnotationKind::Manifest,
            "manifest-descriptor" => AnnotationKind::ManifestDescriptor,
            "index" => AnnotationKind::Index,
            "index-descriptor" => AnnotationKind::IndexDescriptor,
            t => {
                return Err(format!(
                    "unknown annotation type {t:?} (expected manifest, manifest-descriptor, index or index-descriptor)"
                ))
            }
        })
    }
}

/// One annotation: where it goes, for which platform (all when `None`), the key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub kind: AnnotationKind,
    pub platform: Option<Platform>,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations(pub Vec<Annotation>);

impl Annotations {
    /// `--annotation [TYPE[,TYPE...]][\[PLATFORM\]]:KEY=VALUE` as buildx takes it (no type:
    /// the manifest).
    pub fn parse_flag(s: &str) -> Result<Vec<Annotation>, String> {
        let bad = |why: String| format!("--annotation {s:?}: {why}");
        let (k, value) = s.split_once('=').ok_or_else(|| bad("expected KEY=VALUE".into()))?;
        // an optional `types[platform]:` prefix (types are lowercase words and dashes)
        let (kinds, platform, key) = match k.split_once(':') {
            Some((prefix, key))
                if prefix.split('[').next().is_some_and(|t| {
                    !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == ',')
                }) =>
            {
                let (types, platform) = split_platform(prefix).map_err(bad)?;
                (types.split(',').map(|t| t.to_string()).collect::<Vec<_>>(), platform, key)
            }
            _ => (vec![String::new()], None, k),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(bad(format!("invalid annotation key {key:?}")));
        }
        kinds
            .iter()
            .map(|t| {
                Ok(Annotation {
                    kind: AnnotationKind::parse(t).map_err(bad)?,
                    platform: platform.clone(),
                    key: key.to_string(),
                    value: value.to_string(),
                })
            })
            .collect()
    }

    /// An exporter option `annotation[-TYPE][\[PLATFORM\]].KEY` (BuildKit's attribute form);
    /// `None` when `k` is no annotation key.
    fn parse_option(k: &str, v: &str) -> Option<Result<Annotation, String>> {
        let rest = k.strip_prefix("annotation")?;
        if !(rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('[')) {
            return None;
        }
        let parse = || -> Result<Annotation, String> {
            let (head, key) = match rest.find(']') {
                Some(close) => {
                    let dot = rest[close..].find('.').map(|d| close + d).ok_or("no key after the platform")?;
                    (&rest[..dot], &rest[dot + 1..])
                }
                None => rest.split_once('.').ok_or("no key")?,
            };
            let (kind, platform) = split_platform(head)?;
            if key.is_empty() {
                return Err("no key".into());
            }
            Ok(Annotation {
                kind: AnnotationKind::parse(kind.trim_start_matches('-'))?,
                platform,
                key: key.to_string(),
                value: v.to_string(),
            })
        };
        Some(parse().map_err(|e| format!("option {k:?}: {e}")))
    }

    fn of(&self, kind: AnnotationKind, platform: Option<&Platform>) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|a| a.kind == kind)
            .filter(|a| match (&a.platform, platform) {
                (None, _) => true,
                (Some(want), Some(p)) => want == p,
                (Some(_), None) => false,
            })
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect()
    }

    pub fn manifest(&self, platform: Option<&Platform>) -> BTreeMap<String, String> {
        self.of(AnnotationKind::Manifest, platform)
    }

    pub fn manifest_descriptor(&self, platform: Option<&Platform>) -> BTreeMap<String, String> {
        self.of(AnnotationKind::ManifestDescriptor, platform)
    }

    pub fn index(&self) -> BTreeMap<String, String> {
        self.of(AnnotationKind::Index, None)
    }

    pub fn index_descriptor(&self) -> BTreeMap<String, String> {
        self.of(AnnotationKind::IndexDescriptor, None)
    }

    /// BuildKit's check for an image of one platform: there is no index to annotate.
    pub fn check_single(&self) -> Result<(), String> {
        match self.0.iter().find(|a| matches!(a.kind, AnnotationKind::Index | AnnotationKind::IndexDescriptor)) {
            Some(a) => Err(format!(
                "annotation {:?}: index annotations not supported for single platform export (build with several --platform values, or --build-arg BUILDKIT_MULTI_PLATFORM=1)",
                a.key
            )),
            None => Ok(()),
        }
    }
}

/// `types[platform]` -> (types, platform).
fn split_platform(s: &str) -> Result<(&str, Option<Platform>), String> {
    match s.split_once('[') {
        None => Ok((s, None)),
        Some((t, p)) => {
            let p = p.strip_suffix(']').ok_or_else(|| format!("{s:?}: unclosed ["))?;
            Ok((t, Some(Platform::parse(p)?)))
        }
    }
}

/// buildx's CSV: fields split at commas, a field in double quotes may hold commas (`""` is a
/// quote), as Go's encoding/csv reads one line.
pub fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if at_start => {
                quoted = true;
                at_start = false;
            }
            ('"', true) => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                    if chars.peek().is_some_and(|&n| n != ',') {
                        return Err(format!("{s:?}: extraneous text after a closing quote"));
                    }
                }
            }
            (',', false) => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
            }
            (c, _) => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(format!("{s:?}: unclosed quote"));
    }
    out.push(cur);
    Ok(out)
}

/// A bool output option as BuildKit's exporters read one: empty is true (the key alone), else
/// Go's `strconv.ParseBool` spellings (`1 t T TRUE true True`, `0 f F FALSE false False`).
pub fn parse_bool(k: &str, v: &str) -> Result<bool, String> {
    match v {
        "" => Ok(true),
        _ => crate::gobool::parse(v).ok_or_else(|| {
            format!(
                "option {k}={v:?}: expected true or false (or another of Go's spellings: 1, t, T, TRUE, True, 0, f, F, FALSE, False)"
            )
        }),
    }
}

fn dest_of(kind: &str, v: Option<String>, stdout_ok: bool) -> Result<Dest, String> {
    match v.as_deref() {
        Some("-") if stdout_ok => Ok(Dest::Stdout),
        Some("-") => Err(format!("type={kind}: dest=- (stdout) takes a file, and this output writes a directory")),
        Some("") | None => {
            // buildx: a tar-like output with no dest goes to stdout unless that is a terminal
            if stdout_ok && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                Ok(Dest::Stdout)
            } else if stdout_ok {
                Err(format!("type={kind}: dest= is needed (refusing to write a tar to a terminal)"))
            } else {
                Err(format!("type={kind}: dest= is needed"))
            }
        }
        Some(p) => Ok(Dest::Path(PathBuf::from(p))),
    }
}

/// One `--output` value: `type=TYPE,KEY=VALUE,...`, or buildx's shorthands: a bare path is
/// `type=local,dest=PATH`, `-` is `type=tar,dest=-`.
pub fn parse(spec: &str) -> Result<Output, String> {
    let err = |e: String| format!("--output {spec:?}: {e}");
    if !spec.contains('=') {
        return match spec {
            "" => Err(err("empty".into())),
            "-" => Ok(Output {
                kind: Kind::Tar { dest: Dest::Stdout },
                names: vec![],
                annotations: Annotations::default(),
                platform_split: None,
                layers: convert::Options::default(),
                rewrite_timestamp: None,
                source_date_epoch: None,
                attestation_inline: None,
                attestation_prefix: None,
            }),
            p => Ok(Output {
                kind: Kind::Local { dest: PathBuf::from(p), delete: false },
                names: vec![],
                annotations: Annotations::default(),
                platform_split: None,
                layers: convert::Options::default(),
                rewrite_timestamp: None,
                source_date_epoch: None,
                attestation_inline: None,
                attestation_prefix: None,
            }),
        };
    }
    let mut opts: Vec<(String, String)> = Vec::new();
    for f in csv_fields(spec).map_err(err)? {
        let (k, v) = f.split_once('=').ok_or_else(|| err(format!("{f:?}: expected KEY=VALUE")))?;
        opts.push((k.trim().to_ascii_lowercase(), v.to_string()));
    }
    let typ = opts.iter().find(|(k, _)| k == "type").map(|(_, v)| v.clone()).ok_or_else(|| err("no type=".into()))?;
    let mut names = Vec::new();
    let mut anns = Vec::new();
    let mut dest = None;
    let mut push = typ == "registry";
    let mut tar = true;
    let mut split = None;
    let mut layers = convert::Options::default();
    let mut iopts = ImageOpts::default();
    let mut rewrite_timestamp = None;
    let mut source_date_epoch = None;
    let mut delete = false;
    let (mut attestation_inline, mut attestation_prefix) = (None, None);
    for (k, v) in &opts {
        let allowed: &[&str] = match typ.as_str() {
            "image" | "registry" => &[
                "name",
                "push",
                "push-by-digest",
                "name-canonical",
                "unpack",
                "store",
                "dangling-name-prefix",
                "dangling-name-empty-only",
                // BuildKit's key, misspelt (exptypes.OptKeyDanglingEmptyOnly)
                "danging-name-empty-only",
                "registry.insecure",
                "rewrite-timestamp",
                "source-date-epoch",
                "attestation-inline",
            ],
            "local" => &["dest", "platform-split", "source-date-epoch", "mode", "attestation-prefix"],
            "tar" => &["dest", "platform-split", "source-date-epoch", "attestation-prefix"],
            "oci" => &["dest", "name", "tar", "rewrite-timestamp", "source-date-epoch", "attestation-inline"],
            "docker" => &["dest", "name", "tar", "rewrite-timestamp", "source-date-epoch", "attestation-inline"],
            "cacheonly" => &[],
            t => return Err(err(format!("unknown type {t:?} (image, registry, local, tar, oci, docker, cacheonly)"))),
        };
        if k == "type" {
            continue;
        }
        if let Some(a) = Annotations::parse_option(k, v) {
            if !matches!(typ.as_str(), "image" | "registry" | "oci" | "docker") {
                return Err(err(format!("option {k:?}: annotations are for image, registry, oci and docker outputs")));
            }
            anns.push(a.map_err(err)?);
            continue;
        }
        // the image outputs also take the layer options
        let layered = matches!(typ.as_str(), "image" | "registry" | "oci" | "docker");
        let takes_it = allowed.contains(&k.as_str()) || (layered && LAYER_OPTS.contains(&k.as_str()));
        if !takes_it {
            let mut takes = allowed.to_vec();
            if layered {
                takes.extend(LAYER_OPTS);
            }
            return Err(err(format!("option {k:?} is not supported for type={typ} (slipway takes {takes:?})")));
        }
        match k.as_str() {
            "name" => names.extend(v.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string)),
            "push" => push = parse_bool(k, v).map_err(err)?,
            "push-by-digest" => iopts.push_by_digest = parse_bool(k, v).map_err(err)?,
            "registry.insecure" => iopts.insecure = parse_bool(k, v).map_err(err)?,
            "name-canonical" => iopts.name_canonical = parse_bool(k, v).map_err(err)?,
            "unpack" => iopts.unpack = parse_bool(k, v).map_err(err)?,
            "dest" => dest = Some(v.clone()),
            "tar" => tar = parse_bool(k, v).map_err(err)?,
            "platform-split" => split = Some(parse_bool(k, v).map_err(err)?),
            "store" => iopts.no_store = !parse_bool(k, v).map_err(err)?,
            "dangling-name-prefix" if v.is_empty() => {}
            "dangling-name-prefix" => {
                crate::store::normalize_ref(&format!("{v}@sha256:{}", "0".repeat(64)))
                    .map_err(|_| err(format!("dangling-name-prefix={v:?}: not a repository name")))?;
                iopts.dangling_prefix = Some(v.clone());
            }
            "dangling-name-empty-only" | "danging-name-empty-only" => {
                iopts.dangling_empty_only = parse_bool(k, v).map_err(err)?
            }
            "rewrite-timestamp" => rewrite_timestamp = Some(parse_bool(k, v).map_err(err)?),
            // BuildKit's epoch.ParseExporterAttrs: seconds (Go's ParseInt), empty is none
            "attestation-inline" => attestation_inline = Some(parse_bool(k, v).map_err(err)?),
            "attestation-prefix" => attestation_prefix = Some(v.clone()),
            // BuildKit's client.ParseLocalExporterMode
            "mode" => {
                delete = match v.trim().to_ascii_lowercase().as_str() {
                    "" | "copy" => false,
                    "delete" => true,
                    _ => return Err(err(format!("invalid local exporter mode {v:?} (expected copy or delete)"))),
                }
            }
            "source-date-epoch" if v.is_empty() => source_date_epoch = None,
            "source-date-epoch" => {
                source_date_epoch = Some(v.parse::<i64>().map_err(|_| {
                    err(format!("invalid source-date-epoch: {v:?} is not a number of seconds since 1970"))
                })?)
            }
            _ if layers.take(k, v).map_err(err)? => {}
            _ => unreachable!("allowed above"),
        }
    }
    let kind = match typ.as_str() {
        "image" | "registry" => Kind::Image { push, opts: iopts },
        "local" => Kind::Local {
            dest: match dest_of("local", dest, false).map_err(err)? {
                Dest::Path(p) => p,
                // dest_of gives a path for local
                d => return Err(err(format!("type=local: dest= is a directory, not {d}"))),
            },
            delete,
        },
        "tar" => Kind::Tar { dest: dest_of("tar", dest, true).map_err(err)? },
        "oci" => {
            let d = dest_of("oci", dest, tar).map_err(err)?;
            Kind::Oci { dest: d, tar }
        }
        // buildx: a docker output without dest loads the image into docker
        // tar=false: a layout directory (buildx: dest needed, not stdout)
        "docker" if !tar => Kind::Docker { dest: dest_of("docker", dest, false).map_err(err)?, tar },
        "docker" => Kind::Docker {
            dest: match dest.as_deref() {
                None | Some("") => Dest::Load,
                _ => dest_of("docker", dest, true).map_err(err)?,
            },
            tar,
        },
        _ => Kind::CacheOnly,
    };
    layers.check().map_err(err)?;
    Ok(Output {
        kind,
        names,
        annotations: Annotations(anns),
        platform_split: split,
        layers,
        rewrite_timestamp,
        source_date_epoch,
        attestation_inline,
        attestation_prefix,
    })
}

/// One platform's image of a build.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: Platform,
    pub image: Image,
    /// SOURCE_DATE_EPOCH of its platform's build, when given: local and tar outputs set every
    /// mtime of its files to it (each platform may have its own: BuildKit's
    /// `exporter.epoch/PLATFORM`).
    pub epoch: Option<i64>,
    /// The image's `created` (seconds): BuildKit's `org.opencontainers.image.created` of an
    /// archive's entry is the newest of its images'.
    pub created: i64,
}

/// What an output wrote, as BuildKit's exporter response: the manifest (or index) and its
/// config, for `--metadata-file`.
#[derive(Debug, Clone)]
pub struct Written {
    pub descriptor: Descriptor,
    pub config_digest: Option<String>,
    pub names: Vec<String>,
}

/// The manifest of `img`'s config and layers with `annotations` (the same image ID; another
/// manifest digest when there are annotations).
pub fn annotated(store: &Store, img: &Image, annotations: BTreeMap<String, String>) -> Result<Image, StoreError> {
    if annotations.is_empty() || annotations == img.manifest.annotations {
        return Ok(img.clone());
    }
    let mut m = img.manifest.clone();
    m.annotations = annotations;
    let (d, _) = store.put_json(&m)?;
    store.image_by_manifest(&d)
}

/// An OCI index over `images` (each descriptor with its platform), then `extra` (attestation
/// manifests), with `annotations`; written to the store. Returns its descriptor.
pub fn put_index(
    store: &Store,
    images: &[PlatformImage],
    descriptor_annotations: &dyn Fn(&Platform) -> BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    extra: Vec<Descriptor>,
) -> Result<Descriptor, StoreError> {
    let mut manifests = Vec::new();
    for pi in images {
        let mut d = store.manifest_descriptor(&pi.image)?;
        d.annotations = descriptor_annotations(&pi.platform);
        d.platform = Some(platform_json(&pi.platform));
        manifests.push(d);
    }
    manifests.extend(extra);
    // docker media types (`oci-mediatypes=false`) list their manifests in a manifest list
    let docker = images.iter().all(|pi| pi.image.manifest.media_type == image::MT_DOCKER_MANIFEST);
    let media_type = if docker { crate::registry::manifest::MT_DOCKER_LIST } else { image::MT_INDEX };
    let idx = Index { schema_version: 2, media_type: media_type.into(), manifests, annotations };
    let (digest, size) = store.put_json(&idx)?;
    Ok(Descriptor { media_type: media_type.into(), digest, size, annotations: Default::default(), platform: None })
}

/// The `platform` object of an index entry.
pub fn platform_json(p: &Platform) -> serde_json::Value {
    let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
    if let Some(var) = &p.variant {
        v["variant"] = serde_json::json!(var);
    }
    v
}

/// `os_arch[_variant]`: the directory (or tar prefix) of a platform when outputs split them,
/// as BuildKit names it.
pub fn platform_dir(p: &Platform) -> String {
    p.to_string().replace('/', "_")
}

/// Writes the flattened filesystem of `img` (its layers applied in order, whiteouts deleting)
/// into the new directory `dir`.
fn flatten(store: &Store, img: &Image, dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    for l in &img.manifest.layers {
        let p = store.blob_path(&l.digest);
        let r = layer::open_decompressed(&p).map_err(io_err("open", &p))?;
        layer::extract(r, dir, Whiteouts::Apply).map_err(io_err("extract layer", &p))?;
    }
    Ok(())
}

/// Sets the mtime of everything under `dir` (itself included) to `t`, symlinks themselves.
fn set_mtimes(dir: &Path, t: i64) -> Result<(), StoreError> {
    let ts = nix::sys::time::TimeSpec::new(t, 0);
    // children first: setting a directory's time before its children would be undone by nothing,
    // but the walk order keeps it simple to reason about
    for e in walkdir::WalkDir::new(dir).contents_first(true) {
        let e = e.map_err(|e| StoreError::Io { op: "walk", path: dir.to_path_buf(), err: io::Error::other(e) })?;
        nix::sys::stat::utimensat(None, e.path(), &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
            .map_err(|err| StoreError::Io { op: "set times of", path: e.path().to_path_buf(), err: err.into() })?;
    }
    Ok(())
}

/// Moves the entries of `from` into `to`, BuildKit's local exporter merge: what the image
/// has replaces what is there, directories merge, other files in `to` stay; with `delete`
/// (`mode=delete`, fsutil's receive without merge) those are removed, once the image's are in.
fn merge_into(from: &Path, to: &Path, delete: bool) -> Result<(), StoreError> {
    let entries: Vec<fs::DirEntry> = fs::read_dir(from).and_then(|d| d.collect()).map_err(io_err("read dir", from))?;
    let names: std::collections::BTreeSet<std::ffi::OsString> = entries.iter().map(|e| e.file_name()).collect();
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let src_dir = e.file_type().map_err(io_err("stat", &src))?.is_dir();
        match fs::symlink_metadata(&dst) {
            Ok(md) if md.is_dir() && src_dir => {
                merge_into(&src, &dst, delete)?;
                // the directory's own metadata is the image's
                let smd = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
                fs::set_permissions(&dst, smd.permissions()).map_err(io_err("chmod", &dst))?;
                let _ = nix::unistd::chown(&dst, Some(smd.uid().into()), Some(smd.gid().into()));
                let at = nix::sys::time::TimeSpec::new(smd.atime(), smd.atime_nsec());
                let mt = nix::sys::time::TimeSpec::new(smd.mtime(), smd.mtime_nsec());
                let _ =
                    nix::sys::stat::utimensat(None, &dst, &at, &mt, nix::sys::stat::UtimensatFlags::NoFollowSymlink);
                continue;
            }
            Ok(md) if md.is_dir() => fs::remove_dir_all(&dst).map_err(io_err("remove", &dst))?,
            Ok(_) => fs::remove_file(&dst).map_err(io_err("remove", &dst))?,
            Err(_) => {}
        }
        fs::rename(&src, &dst).map_err(io_err("rename into place", &dst))?;
    }
    if delete {
        for e in fs::read_dir(to).map_err(io_err("read dir", to))? {
            let e = e.map_err(io_err("read dir", to))?;
            if names.contains(&e.file_name()) {
                continue;
            }
            let p = e.path();
            match e.file_type().map_err(io_err("stat", &p))?.is_dir() {
                true => fs::remove_dir_all(&p).map_err(io_err("remove", &p))?,
                false => fs::remove_file(&p).map_err(io_err("remove", &p))?,
            }
        }
    }
    Ok(())
}

/// `type=local`: the filesystem of each image into `dest` (a directory per platform when
/// `split`), merged into what is there, or (`delete`) replacing it. Each image's `epoch`
/// (SOURCE_DATE_EPOCH) is, as in BuildKit, every mtime of its files.
pub fn write_local(
    images: &[PlatformImage],
    store: &Store,
    dest: &Path,
    split: bool,
    delete: bool,
    att: Option<(&crate::attest::Attestations, &str)>,
) -> Result<(), StoreError> {
    let dest = std::path::absolute(dest).map_err(io_err("resolve", dest))?;
    fs::create_dir_all(&dest).map_err(io_err("create", &dest))?;
    // unpacked beside the destination (same filesystem, so entries move by rename), removed on
    // success and on failure
    let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{name}.slipway-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let res = (|| {
        for pi in images {
            let root = if split { tmp.join(platform_dir(&pi.platform)) } else { tmp.clone() };
            flatten(store, &pi.image, &root)?;
            if let Some(t) = pi.epoch {
                set_mtimes(&root, t)?;
            }
        }
        write_statements(images, &tmp, split, att)?;
        // the files durable before their names appear in `dest`, then the names (two syncfs
        // of the file system, as store/tree.rs publishes a snapshot)
        crate::store::syncfs(&tmp)?;
        merge_into(&tmp, &dest, delete)?;
        crate::store::syncfs(&dest)
    })();
    let _ = fs::remove_dir_all(&tmp);
    res
}

/// `type=tar`: the filesystem of each image as one tar (a directory per platform when
/// `split`), entries in path order; each image's `epoch` as in `write_local`.
pub fn write_tar(
    images: &[PlatformImage],
    store: &Store,
    dest: &Dest,
    split: bool,
    att: Option<(&crate::attest::Attestations, &str)>,
) -> Result<(), StoreError> {
    let t = store.tempdir("export")?;
    // one epoch for all (the usual case) is set as the tar is written; platforms of different
    // epochs have theirs set on their files first
    let one = images.windows(2).all(|w| w[0].epoch == w[1].epoch);
    let epoch = images.first().and_then(|pi| pi.epoch).filter(|_| one);
    for pi in images {
        let root = if split { t.path.join("fs").join(platform_dir(&pi.platform)) } else { t.path.join("fs") };
        flatten(store, &pi.image, &root)?;
        if let (false, Some(t)) = (one, pi.epoch) {
            set_mtimes(&root, t)?;
        }
    }
    let fsroot = t.path.join("fs");
    write_statements(images, &fsroot, split, att)?;
    let shown = PathBuf::from(dest.to_string());
    let w = |err: io::Error| StoreError::Io { op: "write", path: shown.clone(), err };
    match dest {
        Dest::Stdout => {
            let out = io::BufWriter::new(io::stdout().lock());
            let mut out = tar_tree(&fsroot, epoch, out).map_err(w)?;
            out.flush().map_err(w)
        }
        Dest::Path(p) => write_file_atomic(p, |f| tar_tree(&fsroot, epoch, f).map(drop)),
        Dest::Load => Err(w(io::Error::other("a tar output cannot be loaded into docker"))),
    }
}

/// BuildKit's local exporter (exporter/local/fs.go): each platform's statements as files
/// beside its files (the SBOMs by the name the generator gave them, the provenance as
/// `provenance.json` or `filename=`), their subjects every regular file of the image (path and
/// sha256); with several platforms in one directory the name carries the platform
/// (`provenance.linux_amd64.json`). Mode 0600, mtime the image's SOURCE_DATE_EPOCH (else 0:
/// BuildKit's is the export's time). No provenance with `inline-only=true`. `att` comes with
/// the output's `attestation-prefix`, put before the file's name.
fn write_statements(
    images: &[PlatformImage],
    root: &Path,
    split: bool,
    att: Option<(&crate::attest::Attestations, &str)>,
) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let Some((att, prefix)) = att else { return Ok(()) };
    // every platform's subjects first: a statement written is no subject of another
    let mut all = Vec::new();
    for (i, pi) in images.iter().enumerate() {
        let dir = if split { root.join(platform_dir(&pi.platform)) } else { root.to_path_buf() };
        let mut subjects = Vec::new();
        let walker = walkdir::WalkDir::new(&dir).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name()));
        for e in walker {
            let e = e.map_err(|e| StoreError::Io { op: "walk", path: dir.clone(), err: io::Error::other(e) })?;
            if !e.file_type().is_file() {
                continue;
            }
            let rel = e.path().strip_prefix(&dir).map_err(|e| StoreError::Io {
                op: "walk",
                path: dir.clone(),
                err: io::Error::other(e),
            })?;
            let digest = crate::store::hash_file(e.path())?;
            subjects.push(crate::attest::Subject::new(rel.to_string_lossy().into_owned(), &digest));
        }
        all.push((dir, att.files(i, &subjects)));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (pi, (dir, files)) in images.iter().zip(all) {
        for (base, bytes) in files {
            let name = format!("{prefix}{base}");
            let file = if images.len() > 1 && !split {
                let (stem, ext) = match name.rsplit_once('.') {
                    Some((s, e)) => (s.to_string(), format!(".{e}")),
                    None => (name.clone(), String::new()),
                };
                format!("{stem}.{}{ext}", platform_dir(&pi.platform))
            } else {
                name.clone()
            };
            let path = dir.join(&file);
            if written.contains(&path) {
                return Err(StoreError::Io {
                    op: "write attestation",
                    path,
                    err: io::Error::other("duplicate attestation path name"),
                });
            }
            if path.exists() {
                return Err(StoreError::Io {
                    op: "write attestation",
                    path,
                    err: io::Error::other(
                        "the image has a file of that name (give the provenance another filename=, or the output an \
                         attestation-prefix=)",
                    ),
                });
            }
            fs::write(&path, bytes).map_err(io_err("write", &path))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err("chmod", &path))?;
            let ts = nix::sys::time::TimeSpec::new(pi.epoch.unwrap_or(0), 0);
            nix::sys::stat::utimensat(None, &path, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
                .map_err(|err| StoreError::Io { op: "set times of", path: path.clone(), err: err.into() })?;
            written.push(path);
        }
    }
    Ok(())
}

/// Writes `p` through a temp file beside it, renamed into place once complete.
fn write_file_atomic(
    p: &Path,
    body: impl FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
) -> Result<(), StoreError> {
    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = p.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let f = fs::File::create(&tmp)?;
        let mut b = io::BufWriter::new(f);
        body(&mut b)?;
        let f = b.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, p)?;
        // the name too (temp synced, renamed, directory synced: the archive is whole or absent)
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(io_err("write", p))
}

/// A tar of the tree at `root` (its contents, not itself), in path order, with owners, modes
/// and mtimes (or `epoch`) as they are; hard links kept as links.
fn tar_tree<W: Write>(root: &Path, epoch: Option<i64>, w: W) -> io::Result<W> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    b.follow_symlinks(false);
    let mut links: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    let walker = walkdir::WalkDir::new(root).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for e in walker {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(root).map_err(io::Error::other)?.to_path_buf();
        let md = fs::symlink_metadata(e.path())?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&md, tar::HeaderMode::Complete);
        // a time before 1970 as Go's writer puts it (the tar crate would wrap it around)
        let (mtime, record) = layer::header_mtime(epoch.unwrap_or(md.mtime()));
        h.set_mtime(mtime);
        layer::append_pax(&mut b, &record, mtime)?;
        let ft = md.file_type();
        if ft.is_file() && md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, &rel, first)?;
                continue;
            }
            links.insert((md.dev(), md.ino()), rel.clone());
        }
        if ft.is_symlink() {
            let target = fs::read_link(e.path())?;
            b.append_link(&mut h, &rel, target)?;
        } else if ft.is_file() {
            let f = fs::File::open(e.path())?;
            b.append_data(&mut h, &rel, f)?;
        } else {
            // directories, devices and fifos: the header says it all
            h.set_size(0);
            b.append_data(&mut h, &rel, io::empty())?;
        }
    }
    b.into_inner()
}

/// `type=oci` / `type=docker`: an archive (or, for oci with `tar=false`, a layout directory)
/// of the image, or of the index over several platforms, named `names`. Returns the top
/// descriptor written in the archive's index.json.
#[allow(clippy::too_many_arguments)]
pub fn write_archive(
    store: &Store,
    top: &archive::Top,
    names: &[String],
    descriptor_annotations: BTreeMap<String, String>,
    dest: &Dest,
    tar: bool,
    format: archive::Format,
    docker_keeps_blobs: bool,
) -> Result<Descriptor, StoreError> {
    let opts = archive::Export { names, descriptor_annotations, docker_keeps_blobs };
    match (dest, tar) {
        (Dest::Stdout, _) => {
            let out = io::BufWriter::new(io::stdout().lock());
            let (mut out, d) = archive::export(store, top, &opts, out, Path::new("stdout"), format)?;
            out.flush().map_err(io_err("write", Path::new("stdout")))?;
            Ok(d)
        }
        (Dest::Path(p), true) => {
            let mut desc = None;
            let mut failed = None;
            write_file_atomic(p, |f| match archive::export(store, top, &opts, f, p, format) {
                Ok((_, d)) => {
                    desc = Some(d);
                    Ok(())
                }
                Err(e) => {
                    let m = e.to_string();
                    failed = Some(e);
                    Err(io::Error::other(m))
                }
            })
            .map_err(|e| failed.take().unwrap_or(e))?;
            desc.ok_or_else(|| StoreError::Io {
                op: "write",
                path: p.clone(),
                err: io::Error::other("no index written"),
            })
        }
        (Dest::Path(p), false) => archive::export_dir(store, top, &opts, p),
        (Dest::Load, _) => docker_load(|w| archive::export(store, top, &opts, w, Path::new("docker load"), format)),
    }
}

/// buildx's load of a docker output without `dest`: the archive `write` makes is streamed into
/// `docker load` (the docker CLI on PATH, so DOCKER_HOST and the CLI's context say which
/// daemon), whose failure is the output's.
fn docker_load<W>(
    write: impl FnOnce(io::BufWriter<std::process::ChildStdin>) -> Result<(W, Descriptor), StoreError>,
) -> Result<Descriptor, StoreError>
where
    W: Write,
{
    use std::process::{Command, Stdio};
    let shown = Path::new("docker load");
    let err = |e: io::Error| StoreError::Io { op: "run", path: shown.to_path_buf(), err: e };
    let mut child = Command::new("docker")
        .args(["load", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            err(io::Error::new(
                e.kind(),
                format!("{e} (a docker output without dest= loads into docker through its CLI; give dest=FILE to write an archive)"),
            ))
        })?;
    let stdin = child.stdin.take().ok_or_else(|| err(io::Error::other("no stdin")))?;
    let written = write(io::BufWriter::new(stdin)).and_then(|(mut w, d)| {
        w.flush().map_err(err)?;
        Ok(d)
    });
    // its stdin closed (the writer dropped): docker load finishes
    let out = child.wait_with_output().map_err(err)?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(err(io::Error::other(format!("{}: {msg}", out.status))));
    }
    written
}

/// What `export` needs besides the images.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub outputs: &'a [Output],
    /// `-t`: the names of every image, oci and docker output, replacing their `name=` (buildx's
    /// rule). As given (each a valid name): `name-canonical` and `push-by-digest` need to know
    /// whether a tag was.
    pub tags: &'a [String],
    /// `--annotation`s (every output gets them).
    pub annotations: &'a [Annotation],
    /// `--push`: image outputs push (and without one, an image output is added).
    pub push: bool,
    /// `--provenance`/`--attest`: what image outputs attach (each then writes an index) and
    /// local and tar outputs write as a file.
    pub attestations: Option<crate::attest::Attestations>,
}

/// What `export` did.
#[derive(Debug, Clone, Default)]
pub struct Exported {
    /// The names set in the store.
    pub names: Vec<String>,
    /// The store names to push.
    pub push: Vec<PushTarget>,
    /// Manifests (or indexes) written to the store, for the record of the cache keys that
    /// built them (`prune` keeps their cache).
    pub manifests: Vec<Descriptor>,
    /// BuildKit's exporter response keys (`--metadata-file`).
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// The outputs a build writes: `--output`s, or the store under the `-t` names when none.
pub fn outputs(req: &Request) -> Vec<Output> {
    let mut outs: Vec<Output> = req.outputs.to_vec();
    if outs.is_empty() || (req.push && !outs.iter().any(|o| matches!(o.kind, Kind::Image { .. }))) {
        outs.push(Output {
            kind: Kind::Image { push: false, opts: ImageOpts::default() },
            names: vec![],
            annotations: Annotations::default(),
            platform_split: None,
            layers: convert::Options::default(),
            rewrite_timestamp: None,
            source_date_epoch: None,
            attestation_inline: None,
            attestation_prefix: None,
        });
    }
    for o in &mut outs {
        if let Kind::Image { push, .. } = &mut o.kind {
            *push |= req.push;
        }
        // buildx (build/opt.go): `-t` names every image, oci and docker output, its `name=` or not
        if !req.tags.is_empty() && matches!(o.kind, Kind::Image { .. } | Kind::Oci { .. } | Kind::Docker { .. }) {
            o.names = req.tags.to_vec();
        }
        o.annotations.0.extend(req.annotations.iter().cloned());
    }
    outs
}

/// The warnings for `name=`s that `-t` replaces (buildx replaces them without a word; slipway
/// says so, as it never drops an option silently).
pub fn replaced_names(req: &Request) -> Vec<String> {
    if req.tags.is_empty() {
        return vec![];
    }
    req.outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.names.is_empty() && matches!(o.kind, Kind::Image { .. } | Kind::Oci { .. } | Kind::Docker { .. }))
        .map(|(i, o)| {
            format!(
                "--output {}: name={} replaced by -t {} (buildx's rule: the tags name every image, oci and docker output)",
                i + 1,
                o.names.join(","),
                req.tags.join(" -t ")
            )
        })
        .collect()
}

/// `rewrite-timestamp` of an image, registry, oci or docker output: true, slipway's default,
/// makes no mtime in the build's layers newer than its SOURCE_DATE_EPOCH (every one 0 without
/// one: see [`crate::layer::Mtimes`]); false keeps the times the build gave the files,
/// BuildKit's default. None for local, tar and cacheonly outputs, which have no such option (in
/// BuildKit neither).
pub fn rewrites(o: &Output) -> Option<bool> {
    matches!(o.kind, Kind::Image { .. } | Kind::Oci { .. } | Kind::Docker { .. })
        .then(|| o.rewrite_timestamp.unwrap_or(true))
}

/// Which of `candidates` the layers of a build are written with when its outputs (`outs` as
/// [`outputs`] makes them, the first `given` from `--output`) need layers of different times
/// (`needs`, one per output; None: any, a local or tar output that stamps every file, or
/// cacheonly): the first every output's layers can be made from by lowering times
/// ([`Mtimes::derives_from`]; a clamp after `now` not from the files' own times, as what the
/// build writes has the time it is written); each output then gets its own. When none can, the
/// error names two outputs that cannot be served by one build.
pub fn layer_times(
    outs: &[Output],
    given: usize,
    needs: &[Option<Mtimes>],
    candidates: &[Mtimes],
    now: i64,
) -> Result<usize, String> {
    let serves = |c: Mtimes, n: &Option<Mtimes>| {
        n.is_none_or(|n| n.derives_from(c).is_ok() && !matches!((c, n), (Mtimes::Kept(_), Mtimes::Clamp(t)) if t > now))
    };
    if let Some(k) = candidates.iter().position(|&c| needs.iter().all(|n| serves(c, n))) {
        return Ok(k);
    }
    let need = |i: usize| match needs[i] {
        Some(Mtimes::Clamp(t)) if t > now => format!("mtimes clamped to {t} (after now)"),
        Some(n) => n.describe_times(),
        None => String::new(),
    };
    for i in 0..needs.len() {
        for j in i + 1..needs.len() {
            if !candidates.iter().any(|&c| serves(c, &needs[i]) && serves(c, &needs[j])) {
                return Err(format!(
                    "{} needs layers with {} and {} layers with {}: no layers one build writes can be made into both \
                     (times are only ever lowered; give them the same rewrite-timestamp and source-date-epoch, or \
                     build them apart)",
                    which(i, &outs[i], given),
                    need(i),
                    which(j, &outs[j], given),
                    need(j)
                ));
            }
        }
    }
    let all: Vec<String> = (0..needs.len())
        .filter(|&i| needs[i].is_some())
        .map(|i| format!("{}: {}", which(i, &outs[i], given), need(i)))
        .collect();
    Err(format!("no layers one build writes can be made into what every output needs ({})", all.join("; ")))
}

/// Output `i` of `outs` as [`outputs`] makes them (the first `given` from `--output`), for an
/// error: `--output 2 (type=oci)`, or the store output `--push` (or no `--output`) adds.
pub fn which(i: usize, o: &Output, given: usize) -> String {
    let t = match &o.kind {
        Kind::Image { push: true, .. } => "image,push=true",
        Kind::Image { .. } => "image",
        Kind::Local { .. } => "local",
        Kind::Tar { .. } => "tar",
        Kind::Oci { .. } => "oci",
        Kind::Docker { .. } => "docker",
        Kind::CacheOnly => "cacheonly",
    };
    if i < given {
        format!("--output {} (type={t})", i + 1)
    } else if given == 0 {
        "the store output (no --output)".to_string()
    } else {
        "the store output --push adds".to_string()
    }
}

/// buildx's `ValidateLocalExportDelete`: a `mode=delete` local output may remove files only
/// below the working directory `cwd` unless `--allow buildx.local.delete` is given
/// (`allowed`). Symlinks of the existing part of each path are resolved first.
pub fn check_local_delete(outs: &[Output], allowed: bool, cwd: &Path) -> Result<(), String> {
    if allowed {
        return Ok(());
    }
    let wd = resolve_existing(cwd).map_err(|e| format!("resolve the working directory: {e}"))?;
    for o in outs {
        let Kind::Local { dest, delete: true } = &o.kind else { continue };
        let d = resolve_existing(&cwd.join(dest))
            .map_err(|e| format!("resolve local output destination {}: {e}", dest.display()))?;
        if !(d.starts_with(&wd) && d != wd) {
            return Err(format!(
                "local output mode=delete for destination {:?} requires --allow=buildx.local.delete \
                 (it is not below the working directory, and what the image does not have there is removed)",
                dest.display().to_string()
            ));
        }
    }
    Ok(())
}

/// `p` (absolute) with the symlinks of its longest existing prefix resolved and the rest
/// joined, `..` taken lexically there (buildx's `osutil.EvaluateToExistingPath`, then
/// `filepath.Clean`).
fn resolve_existing(p: &Path) -> io::Result<PathBuf> {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    let base = loop {
        match existing.canonicalize() {
            Ok(b) => break b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // the last component, `..` too (which file_name does not give)
                let Some(last) = existing.components().next_back() else { return Err(e) };
                rest.push(last.as_os_str().to_os_string());
                if !existing.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    };
    let mut out = base;
    for c in rest.iter().rev() {
        match c.to_str() {
            Some("..") => {
                out.pop();
            }
            Some(".") => {}
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Whether an output writes to stdout (the log then goes to stderr).
pub fn writes_stdout(outs: &[Output]) -> bool {
    outs.iter().any(|o| {
        matches!(
            &o.kind,
            Kind::Tar { dest: Dest::Stdout }
                | Kind::Oci { dest: Dest::Stdout, .. }
                | Kind::Docker { dest: Dest::Stdout, .. }
        )
    })
}

/// Checks the outputs before a build runs: names are image references, annotations fit the
/// result (`multi`: an index of platforms), at most one output writes stdout.
/// `attests`: the build attaches attestations (image outputs then write an index).
pub fn check(outs: &[Output], multi: bool, attests: bool) -> Result<(), String> {
    let mut stdout = 0;
    for o in outs {
        let imageish = matches!(o.kind, Kind::Image { .. } | Kind::Oci { .. } | Kind::Docker { .. });
        if attests && imageish && o.layers.oci_types == Some(false) {
            // BuildKit's ImageWriter.Commit
            return Err("cannot export attestations with \"oci-mediatypes=false\"".into());
        }
        // attestations make an index of one image, as in BuildKit
        let index = multi || (attests && imageish);
        if matches!(o.kind, Kind::Image { push: true, .. }) && o.names.is_empty() {
            return Err("--push: no name to push (give -t NAME, or name= in the --output)".into());
        }
        if let Kind::Image { push, opts } = &o.kind {
            if opts.insecure && !push {
                return Err("registry.insecure=true: the output does not push (add push=true, or --push)".into());
            }
            if opts.push_by_digest && !push {
                return Err("push-by-digest=true: the output does not push (add push=true, or --push)".into());
            }
            if opts.push_by_digest {
                // BuildKit's check: a tag would not be written, so naming one is a mistake
                if let Some(n) = o.names.iter().find(|n| has_tag_or_digest(n)) {
                    return Err(format!(
                        "push-by-digest=true: can't push tagged ref {n} by digest (name the repository without a tag)"
                    ));
                }
            }
        }
        if matches!(o.kind, Kind::Image { .. }) {
            for n in &o.names {
                crate::store::normalize_ref(n).map_err(|e| format!("output name {n:?}: {e}"))?;
            }
        }
        if !index {
            o.annotations.check_single()?;
        }
        if multi && matches!(o.kind, Kind::Docker { .. }) {
            return Err("type=docker: docker exporter does not currently support exporting manifest lists".into());
        }
        if matches!(
            &o.kind,
            Kind::Tar { dest: Dest::Stdout }
                | Kind::Oci { dest: Dest::Stdout, .. }
                | Kind::Docker { dest: Dest::Stdout, .. }
        ) {
            stdout += 1;
        }
    }
    if stdout > 1 {
        return Err("more than one output writes to stdout".into());
    }
    Ok(())
}

fn descriptor_json(d: &Descriptor) -> serde_json::Value {
    let mut v = serde_json::json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size});
    if !d.annotations.is_empty() {
        v["annotations"] = serde_json::json!(d.annotations);
    }
    v
}

/// Writes the build's result to each output. `per_output` holds, for each of `outs`, one image
/// per platform built (`multi`: several were asked for, so image and oci outputs get an index):
/// the build's, or that output's own when its times differ (BuildKit's exporters each apply
/// their own `rewrite-timestamp` and `source-date-epoch`).
pub fn export(
    store: &Store,
    per_output: &[Vec<PlatformImage>],
    multi: bool,
    outs: &[Output],
    req: &Request,
    log: &mut dyn FnMut(&str),
) -> Result<Exported, StoreError> {
    let mut done = Exported::default();
    for (o, images) in outs.iter().zip(per_output) {
        let images = &images[..];
        let split = o.platform_split.unwrap_or(multi);
        match &o.kind {
            Kind::CacheOnly => {}
            Kind::Local { dest, delete } => {
                log(&format!("exporting to directory {}", dest.display()));
                let att = req.attestations.as_ref().map(|a| (a, o.attestation_prefix.as_deref().unwrap_or_default()));
                write_local(images, store, dest, split, *delete, att)?;
            }
            Kind::Tar { dest } => {
                log(&format!("exporting to tar {dest}"));
                let att = req.attestations.as_ref().map(|a| (a, o.attestation_prefix.as_deref().unwrap_or_default()));
                write_tar(images, store, dest, split, att)?;
            }
            Kind::Image { push, opts } => {
                let imgs = annotate_all(store, images, o)?;
                // attestations make an index of one image too, as in BuildKit
                let index = multi || req.attestations.is_some();
                let (mut desc, config) = if index {
                    let (d, _) = image_index(store, &imgs, o, req)?;
                    (d, None)
                } else {
                    let img = &imgs[0].image;
                    (store.manifest_descriptor(img)?, Some(img.config_digest.clone()))
                };
                desc.annotations = if index {
                    o.annotations.index_descriptor()
                } else {
                    o.annotations.manifest_descriptor(Some(&imgs[0].platform))
                };
                let mut full = Vec::new();
                // BuildKit's dangling-name-prefix: PREFIX@DIGEST, the only name of an anonymous
                // image (then without name-canonical)
                let mut names = o.names.clone();
                let mut canonical = opts.name_canonical;
                if let Some(p) = opts.dangling_prefix.as_ref().filter(|_| !opts.dangling_empty_only || names.is_empty())
                {
                    canonical &= !names.is_empty();
                    names.push(format!("{p}@{}", desc.digest));
                }
                // store=false: a name is only set to be pushed, and removed once pushed
                let keep = !opts.no_store;
                for given in &names {
                    let n = crate::store::normalize_ref(given)?;
                    if keep || *push {
                        store.set_ref(&n, desc.clone())?;
                    }
                    full.push(archive::docker_full_name(&n));
                    if *push {
                        done.push.push(PushTarget {
                            name: n.clone(),
                            by_digest: opts.push_by_digest,
                            unname: !keep,
                            insecure: opts.insecure,
                        });
                    }
                    if keep {
                        done.names.push(n);
                    }
                    // BuildKit's name-canonical: the name as given, `@DIGEST` added
                    if canonical && keep && !given.contains('@') {
                        let c = crate::store::normalize_ref(&format!("{given}@{}", desc.digest))?;
                        store.set_ref(&c, desc.clone())?;
                        log(&format!("naming to {c}"));
                        done.names.push(c);
                    }
                }
                if !keep {
                    log("store=false: the image is not named in the store");
                }
                if opts.unpack {
                    unpack(store, &imgs, log)?;
                }
                if names.is_empty() && keep {
                    // docker keeps an untagged build as a dangling image: its ID works until rmi/prune
                    store.add_unnamed(desc.clone())?;
                }
                done.manifests.push(desc.clone());
                if let Some(c) = config {
                    done.metadata.insert("containerimage.config.digest".into(), c.into());
                }
                done.metadata.insert("containerimage.digest".into(), desc.digest.clone().into());
                done.metadata.insert("containerimage.descriptor".into(), descriptor_json(&desc));
                if !full.is_empty() {
                    done.metadata.insert("image.name".into(), full.join(",").into());
                }
            }
            Kind::Oci { dest, tar } => {
                log(&format!("exporting to OCI image format {dest}"));
                archive_output(store, images, multi, o, req, dest, *tar, archive::Format::Oci, &mut done)?
            }
            Kind::Docker { dest, tar } => {
                log(&format!("exporting to docker image format {dest}"));
                archive_output(store, images, multi, o, req, dest, *tar, archive::Format::Docker, &mut done)?
            }
        }
    }
    Ok(done)
}

/// Whether a name as given has a tag or a digest (`:` after the last `/`, or `@`).
fn has_tag_or_digest(n: &str) -> bool {
    n.contains('@') || n.rsplit('/').next().is_some_and(|last| last.contains(':'))
}

/// `unpack=true`: the snapshot of every layer of this machine's image (the overlay lower dirs
/// a RUN step or `FROM` of it mounts) extracted now rather than on first use, as BuildKit
/// unpacks the default platform's image into containerd's snapshotter. A build with no image
/// for this machine unpacks nothing (BuildKit skips it too), and says so.
fn unpack(store: &Store, imgs: &[PlatformImage], log: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
    let host = Platform::host();
    let Some(pi) = imgs.iter().find(|pi| pi.platform.os == host.os && pi.platform.architecture == host.architecture)
    else {
        log(&format!("unpack: no image for this machine's platform {host}: nothing unpacked"));
        return Ok(());
    };
    log(&format!("unpacking {} layers of the {} image", pi.image.manifest.layers.len(), pi.platform));
    for l in pi.image.layers() {
        crate::layer::snapshot(store, &l)?;
    }
    Ok(())
}

/// The images in `o`'s layer compression and media types, with its manifest annotations.
fn annotate_all(store: &Store, images: &[PlatformImage], o: &Output) -> Result<Vec<PlatformImage>, StoreError> {
    images
        .iter()
        .map(|pi| {
            let img = convert::convert(store, &pi.image, &o.layers)?;
            Ok(PlatformImage {
                platform: pi.platform.clone(),
                image: annotated(store, &img, o.annotations.manifest(Some(&pi.platform)))?,
                epoch: pi.epoch,
                created: pi.created,
            })
        })
        .collect()
}

/// The index an image, oci or docker output writes: its images, then (with attestations) an
/// attestation manifest per image about it. Returns it and the attestations' blobs.
fn image_index(
    store: &Store,
    imgs: &[PlatformImage],
    o: &Output,
    req: &Request,
) -> Result<(Descriptor, Vec<String>), StoreError> {
    let (extra, blobs) = match &req.attestations {
        None => (Vec::new(), Vec::new()),
        Some(a) => {
            let targets = imgs
                .iter()
                .map(|pi| Ok((pi.platform.clone(), store.manifest_descriptor(&pi.image)?, &pi.image)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let names: Vec<String> =
                o.names.iter().map(|n| crate::store::normalize_ref(n)).collect::<Result<_, _>>()?;
            a.manifests(store, &targets, &names, o.layers.oci_artifact())?
        }
    };
    let d = put_index(store, imgs, &|p| o.annotations.manifest_descriptor(Some(p)), o.annotations.index(), extra)?;
    Ok((d, blobs))
}

/// An oci or docker output.
#[allow(clippy::too_many_arguments)]
fn archive_output(
    store: &Store,
    images: &[PlatformImage],
    multi: bool,
    o: &Output,
    req: &Request,
    dest: &Dest,
    tar: bool,
    format: archive::Format,
    done: &mut Exported,
) -> Result<(), StoreError> {
    let imgs = annotate_all(store, images, o)?;
    let multi = multi || req.attestations.is_some();
    let mut dann = if multi {
        o.annotations.index_descriptor()
    } else {
        o.annotations.manifest_descriptor(Some(&imgs[0].platform))
    };
    let created = images.iter().map(|p| p.created).max().unwrap_or_default();
    dann.insert("org.opencontainers.image.created".into(), image::rfc3339(created));
    let top = if multi {
        let (index, blobs) = image_index(store, &imgs, o, req)?;
        archive::Top::Index { index, images: imgs.iter().map(|p| p.image.clone()).collect(), blobs }
    } else {
        archive::Top::Image(&imgs[0].image)
    };
    let names: Vec<String> = o.names.iter().map(|n| crate::store::normalize_ref(n)).collect::<Result<_, _>>()?;
    let keeps = !o.layers.is_plain();
    let desc = write_archive(store, &top, &names, dann, dest, tar, format, keeps)?;
    if !multi {
        done.metadata.insert("containerimage.config.digest".into(), imgs[0].image.config_digest.clone().into());
    }
    done.metadata.insert("containerimage.digest".into(), desc.digest.clone().into());
    done.metadata.insert("containerimage.descriptor".into(), descriptor_json(&desc));
    if !names.is_empty() {
        let full: Vec<String> = names.iter().map(|n| archive::docker_full_name(n)).collect();
        done.metadata.insert("image.name".into(), full.join(",").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn outputs_parse_as_buildx_reads_them() {
        // (spec, the kind, names) — buildx's shorthands and each type's keys
        let o = parse("out").unwrap();
        assert_eq!(o.kind, Kind::Local { dest: "out".into(), delete: false });
        assert_eq!(parse("-").unwrap().kind, Kind::Tar { dest: Dest::Stdout });
        assert_eq!(parse("type=local,dest=a/b").unwrap().kind, Kind::Local { dest: "a/b".into(), delete: false });
        // mode=copy|delete (BuildKit's ParseLocalExporterMode: trimmed, any case)
        for (m, delete) in [("copy", false), ("", false), ("delete", true), (" Delete ", true)] {
            let o = parse(&format!("type=local,dest=d,mode={m}")).unwrap();
            assert_eq!(o.kind, Kind::Local { dest: "d".into(), delete }, "{m:?}");
        }
        assert_eq!(parse("type=tar,dest=x.tar").unwrap().kind, Kind::Tar { dest: Dest::Path("x.tar".into()) });
        assert_eq!(parse("type=oci,dest=-").unwrap().kind, Kind::Oci { dest: Dest::Stdout, tar: true });
        // BuildKit's docker exporter with tar=false: a layout directory
        assert_eq!(
            parse("type=docker,dest=lay,tar=false").unwrap().kind,
            Kind::Docker { dest: Dest::Path("lay".into()), tar: false }
        );
        assert_eq!(
            parse("type=oci,dest=lay,tar=false").unwrap().kind,
            Kind::Oci { dest: Dest::Path("lay".into()), tar: false }
        );
        let o = parse("type=image,\"name=a:1,b:2\",push=true").unwrap();
        let plain = ImageOpts::default();
        assert_eq!(
            (o.kind, o.names),
            (Kind::Image { push: true, opts: plain.clone() }, vec!["a:1".to_string(), "b:2".to_string()])
        );
        assert_eq!(parse("type=registry,name=r/x").unwrap().kind, Kind::Image { push: true, opts: plain });
        let all = ImageOpts {
            push_by_digest: true,
            name_canonical: true,
            unpack: true,
            no_store: true,
            dangling_prefix: Some("anon".into()),
            dangling_empty_only: true,
            insecure: true,
        };
        assert_eq!(
            parse(
                "type=registry,name=r/x,push-by-digest=true,name-canonical=true,unpack=true,store=false,\
                 dangling-name-prefix=anon,dangling-name-empty-only=true,rewrite-timestamp=true,\
                 registry.insecure=true"
            )
            .unwrap()
            .kind,
            Kind::Image { push: true, opts: all }
        );
        assert_eq!(parse("type=cacheonly").unwrap().kind, Kind::CacheOnly);
        let o = parse("type=oci,dest=x,annotation.org.a=1,annotation-index.b=2,annotation-manifest[linux/arm64].c=3")
            .unwrap();
        assert_eq!(o.annotations.0.len(), 3);
        assert_eq!(o.annotations.0[1].kind, AnnotationKind::Index);
        assert_eq!(o.annotations.0[2].platform, Some(p("linux/arm64")));
        assert_eq!(o.annotations.0[2].key, "c");
        // BuildKit's misspelt key is its dangling-name-empty-only; oci-artifact is checked and
        // changes nothing without attestations
        let o = parse("type=image,dangling-name-prefix=p,danging-name-empty-only=true").unwrap();
        assert!(matches!(&o.kind, Kind::Image { opts, .. } if opts.dangling_empty_only));
        assert_eq!(parse("type=oci,dest=x,oci-artifact=true").unwrap().layers.oci_artifact, Some(true));
        // attestation options and prefer-nondist-layers: checked, no effect without attestations
        // or non-distributable layers
        assert_eq!(parse("type=image,attestation-inline=false").unwrap().attestation_inline, Some(false));
        assert_eq!(
            parse("type=tar,dest=t,attestation-prefix=sbom-").unwrap().attestation_prefix.as_deref(),
            Some("sbom-")
        );
        assert!(parse("type=docker,dest=d,prefer-nondist-layers=1").unwrap().layers.prefer_nondist);
        for (bad, says) in [
            ("type=oci,dest=x,attestation-inline=yes", "option attestation-inline=\"yes\""),
            ("type=local,dest=x,attestation-inline=true", "\"attestation-inline\" is not supported for type=local"),
            ("type=image,attestation-prefix=p", "\"attestation-prefix\" is not supported for type=image"),
            ("type=local,dest=x,prefer-nondist-layers=true", "\"prefer-nondist-layers\" is not supported"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // every bool option takes Go's strconv.ParseBool spellings, as BuildKit's exporters do
        for (v, want) in [("1", true), ("t", true), ("T", true), ("TRUE", true), ("True", true), ("", true)]
            .into_iter()
            .chain([("0", false), ("f", false), ("F", false), ("FALSE", false), ("False", false)])
        {
            assert_eq!(
                parse(&format!("type=image,push={v}")).unwrap().kind,
                Kind::Image { push: want, opts: ImageOpts::default() }
            );
            assert_eq!(
                parse(&format!("type=image,store={v}")).unwrap().kind,
                Kind::Image { push: false, opts: ImageOpts { no_store: !want, ..Default::default() } }
            );
            assert_eq!(parse(&format!("type=local,dest=d,platform-split={v}")).unwrap().platform_split, Some(want));
            assert_eq!(parse(&format!("type=oci,dest=x,rewrite-timestamp={v}")).unwrap().rewrite_timestamp, Some(want));
            assert_eq!(parse(&format!("type=oci,dest=x,oci-mediatypes={v}")).unwrap().layers.oci_types, Some(want));
        }
        for bad in ["yes", "tRUE", "on", "2"] {
            let e = parse(&format!("type=image,unpack={bad}")).unwrap_err();
            assert!(e.contains(&format!("option unpack={bad:?}: expected true or false")), "{e}");
        }
        // refused, naming what
        for (bad, says) in [
            ("type=local", "dest= is needed"),
            ("type=local,dest=-", "stdout"),
            ("type=oci,dest=x,unpack=true", "\"unpack\" is not supported for type=oci"),
            ("type=docker,dest=x,push-by-digest=true", "\"push-by-digest\" is not supported"),
            ("type=image,unpack=maybe", "expected true or false"),
            ("type=docker,dest=x,compression=estargz,oci-mediatypes=false", "\"compression=estargz\" conflicts with"),
            ("type=tar,dest=x,rewrite-timestamp=false", "\"rewrite-timestamp\" is not supported for type=tar"),
            ("type=image,dangling-name-prefix=UP", "not a repository name"),
            ("type=local,dest=x,store=false", "\"store\" is not supported for type=local"),
            ("type=local,dest=x,mode=sync", "invalid local exporter mode \"sync\""),
            ("type=tar,dest=x,mode=delete", "\"mode\" is not supported for type=tar"),
            ("type=oci,dest=x,compression=zstd,oci-mediatypes=false", "conflicts with \"oci-mediatypes=false\""),
            ("type=image,compression-level=12", "gzip takes 0 to 9"),
            ("type=local,dest=x,compression=zstd", "\"compression\" is not supported for type=local"),
            ("type=docker,tar=false", "dest= is needed"),
            ("type=docker,dest=-,tar=false", "stdout"),
            ("type=nope", "unknown type"),
            ("dest=x", "no type="),
            ("type=local,dest=x,annotation.a=1", "annotations are for"),
            ("type=oci,dest=x,\"name=a", "unclosed quote"),
            ("type=image,oci-artifact=true,oci-mediatypes=false", "\"oci-artifact=true\" conflicts with"),
            ("type=oci,dest=x,oci-artifact=yes", "oci-artifact"),
            ("type=local,dest=x,oci-artifact=true", "\"oci-artifact\" is not supported for type=local"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn outputs_of_different_times_get_layers_they_derive_from() {
        use crate::layer::Mtimes::{Clamp, Kept, Zero};
        let outs = |specs: &[&str]| -> Vec<Output> { specs.iter().map(|s| parse(s).unwrap()).collect() };
        // slipway's default is true; local and tar have no say
        let o = outs(&["type=image", "type=oci,dest=x,rewrite-timestamp=0", "type=local,dest=d", "type=docker,dest=y"]);
        let r: Vec<Option<bool>> = o.iter().map(rewrites).collect();
        assert_eq!(r, [Some(true), Some(false), None, Some(true)]);
        let o = outs(&["type=oci,dest=a", "type=oci,dest=b", "type=local,dest=d"]);
        // (what the outputs need, the candidates, the one taken): the first every need comes from
        for (needs, candidates, want) in [
            // a build arg's clamp serves an output's lower one (BuildKit clamps each exporter's)
            (vec![Some(Clamp(100)), Some(Clamp(1000)), None], vec![Clamp(1000), Clamp(100)], 0),
            (vec![Some(Clamp(100)), Some(Clamp(1000)), None], vec![Clamp(100), Clamp(1000)], 1),
            // slipway's 0 and a clamp: from the files' own times (and which were their source's)
            (vec![Some(Clamp(100)), Some(Zero), Some(Zero)], vec![Zero, Clamp(100), Kept(None)], 2),
            (vec![Some(Kept(Some(100))), Some(Clamp(100)), None], vec![Clamp(100), Kept(Some(100))], 1),
        ] {
            assert_eq!(layer_times(&o, 3, &needs, &candidates, 1_800_000_000), Ok(want), "{needs:?} {candidates:?}");
        }
        // the files' own times come from nothing else; a WORKDIR's time below the clamp neither
        for (needs, candidates) in [
            (vec![Some(Kept(None)), Some(Kept(Some(5))), None], vec![Kept(None), Kept(Some(5))]),
            (vec![Some(Kept(Some(5))), Some(Clamp(9)), None], vec![Kept(Some(5)), Clamp(9)]),
            // what RUN writes now is older than a clamp in the future: that clamp is not served
            (vec![Some(Kept(None)), Some(Clamp(1_900_000_000)), None], vec![Kept(None), Clamp(1_900_000_000)]),
        ] {
            let e = layer_times(&o, 3, &needs, &candidates, 1_800_000_000).unwrap_err();
            assert!(e.starts_with("--output 1 (type=oci) needs layers with the files' own mtimes"), "{e}");
            assert!(e.contains("and --output 2 (type=oci) layers with"), "{e}");
        }
    }

    #[test]
    fn tags_name_every_image_output_as_buildx() {
        let given: Vec<Output> =
            ["type=image,name=other:1", "type=oci,dest=x", "type=local,dest=d", "type=docker,dest=y"]
                .iter()
                .map(|s| parse(s).unwrap())
                .collect();
        let tags = vec!["a:1".to_string(), "b:2".to_string()];
        let req = Request { outputs: &given, tags: &tags, ..Default::default() };
        // buildx's build/opt.go: the tags replace name= of image, oci and docker outputs
        let names: Vec<Vec<String>> = outputs(&req).into_iter().map(|o| o.names).collect();
        assert_eq!(names, [tags.clone(), tags.clone(), vec![], tags.clone()]);
        // said, never silently
        let w = replaced_names(&req);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("--output 1: name=other:1 replaced by -t a:1 -t b:2"), "{w:?}");
        // without -t, name= stays, and nothing is said
        let req = Request { outputs: &given, ..Default::default() };
        assert_eq!(outputs(&req)[0].names, ["other:1"]);
        assert!(replaced_names(&req).is_empty());
    }

    #[test]
    fn source_date_epoch_is_an_option_of_every_output_but_cacheonly() {
        // every type but cacheonly takes it, as BuildKit's exporters do; empty is none
        for t in [
            "type=image",
            "type=registry,name=r/x",
            "type=local,dest=d",
            "type=tar,dest=t",
            "type=oci,dest=o",
            "type=docker,dest=k",
        ] {
            assert_eq!(parse(&format!("{t},source-date-epoch=17")).unwrap().source_date_epoch, Some(17), "{t}");
        }
        assert_eq!(parse("type=image,source-date-epoch=").unwrap().source_date_epoch, None);
        assert_eq!(parse("type=image,source-date-epoch=-5").unwrap().source_date_epoch, Some(-5));
        assert!(parse("type=image,source-date-epoch=x").unwrap_err().contains("invalid source-date-epoch: \"x\""));
        assert!(parse("type=cacheonly,source-date-epoch=1")
            .unwrap_err()
            .contains("\"source-date-epoch\" is not supported"));
    }

    #[test]
    fn mode_delete_outside_the_working_directory_needs_the_entitlement() {
        // buildx's isSafeLocalDeleteDest: strictly below the working directory, symlinks resolved
        let t = tempfile::tempdir().unwrap();
        let wd = t.path().join("wd");
        fs::create_dir_all(wd.join("out")).unwrap();
        std::os::unix::fs::symlink(t.path(), wd.join("up")).unwrap();
        let check = |dest: &str, allowed: bool| {
            let o = parse(&format!("type=local,dest={dest},mode=delete")).unwrap();
            check_local_delete(&[o], allowed, &wd)
        };
        for ok in ["out", "new/deeper", "out/../other", "./out"] {
            assert!(check(ok, false).is_ok(), "{ok}");
        }
        for bad in [".", "..", "../wd", "up/elsewhere", "/tmp/x", "new/../.."] {
            let e = check(bad, false).unwrap_err();
            assert!(e.contains("requires --allow=buildx.local.delete"), "{bad}: {e}");
            assert!(check(bad, true).is_ok(), "{bad}");
        }
        // mode=copy needs nothing
        let o = parse("type=local,dest=/tmp/x").unwrap();
        assert!(check_local_delete(&[o], false, &wd).is_ok());
    }

    #[test]
    fn merge_keeps_or_deletes_what_the_image_lacks() {
        let t = tempfile::tempdir().unwrap();
        let (from, to) = (t.path().join("from"), t.path().join("to"));
        for (d, files) in [(&from, &["a", "sub/x"][..]), (&to, &["a", "old", "sub/x", "sub/y", "gone/z"][..])] {
            for f in files {
                fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
                fs::write(d.join(f), format!("{}", d.display())).unwrap();
            }
        }
        merge_into(&from, &to, true).unwrap();
        let mut left: Vec<String> = walkdir::WalkDir::new(&to)
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(&to).unwrap().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a", "sub", "sub/x"]);
        assert_eq!(fs::read_to_string(to.join("a")).unwrap(), from.display().to_string());
    }

    #[test]
    fn push_by_digest_needs_a_push_and_an_untagged_name() {
        let with = |spec: &str, names: &[&str]| {
            let mut o = parse(spec).unwrap();
            o.names = names.iter().map(|n| n.to_string()).collect();
            check(&[o], false, false)
        };
        assert!(with("type=registry,push-by-digest=true", &["r:5000/app", "r:5000/b/c"]).is_ok());
        let e = with("type=registry,push-by-digest=true", &["r:5000/app:1"]).unwrap_err();
        assert!(e.contains("can't push tagged ref r:5000/app:1 by digest"), "{e}");
        assert!(with("type=registry,push-by-digest=true", &["app@sha256:00"]).is_err());
        let e = with("type=image,push-by-digest=true", &["app"]).unwrap_err();
        assert!(e.contains("does not push"), "{e}");
        assert!(!has_tag_or_digest("localhost:5000/app") && has_tag_or_digest("localhost:5000/app:1"));
    }

    #[test]
    fn annotation_flags_as_buildx() {
        let a = Annotations::parse_flag("org.opencontainers.image.title=hello").unwrap();
        assert_eq!(
            (a[0].kind, a[0].key.as_str(), a[0].value.as_str()),
            (AnnotationKind::Manifest, "org.opencontainers.image.title", "hello")
        );
        let a = Annotations::parse_flag("index,manifest-descriptor:k=v=w").unwrap();
        assert_eq!(
            a.iter().map(|a| a.kind).collect::<Vec<_>>(),
            [AnnotationKind::Index, AnnotationKind::ManifestDescriptor]
        );
        assert_eq!(a[0].value, "v=w");
        let a = Annotations::parse_flag("manifest[linux/amd64]:k=v").unwrap();
        assert_eq!(a[0].platform, Some(p("linux/amd64")));
        // a key with a colon and no type prefix stays whole; a word before a colon is a type
        let a = Annotations::parse_flag("com.example:x=1").unwrap();
        assert_eq!((a[0].kind, a[0].key.as_str()), (AnnotationKind::Manifest, "com.example:x"));
        let e = Annotations::parse_flag("weird:x=1").unwrap_err();
        assert!(e.contains("unknown annotation type"), "{e}");
        assert!(Annotations::parse_flag("novalue").is_err());
        let all = Annotations(
            [Annotations::parse_flag("a=1").unwrap(), Annotations::parse_flag("manifest[linux/arm64]:b=2").unwrap()]
                .concat(),
        );
        assert_eq!(all.manifest(Some(&p("linux/amd64"))).len(), 1);
        assert_eq!(all.manifest(Some(&p("linux/arm64"))).len(), 2);
        assert!(all.check_single().is_ok());
        let idx = Annotations(Annotations::parse_flag("index:x=1").unwrap());
        assert!(idx.check_single().unwrap_err().contains("single platform"));
    }

    #[test]
    fn csv_as_go_reads_it() {
        assert_eq!(csv_fields("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(csv_fields("\"name=a,b\",c").unwrap(), ["name=a,b", "c"]);
        assert_eq!(csv_fields("\"x=\"\"q\"\"\"").unwrap(), ["x=\"q\""]);
        assert!(csv_fields("\"a\"b").is_err());
    }

    #[test]
    fn tar_trees_are_ordered_and_keep_links() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir_all(r.join("b/c")).unwrap();
        fs::write(r.join("b/c/f"), "x").unwrap();
        fs::write(r.join("a"), "y").unwrap();
        fs::hard_link(r.join("a"), r.join("z")).unwrap();
        std::os::unix::fs::symlink("a", r.join("s")).unwrap();
        let out = tar_tree(r, Some(7), Vec::new()).unwrap();
        let mut ar = tar::Archive::new(&out[..]);
        let got: Vec<(String, tar::EntryType, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.header().entry_type(), e.header().mtime().unwrap())
            })
            .collect();
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/c/f", "s", "z"]);
        assert_eq!(got[5].1, tar::EntryType::Link);
        assert_eq!(got[4].1, tar::EntryType::Symlink);
        assert!(got.iter().all(|g| g.2 == 7));
        // SOURCE_DATE_EPOCH before 1970, or a file of that time: a PAX record, as Go writes it
        let ts = nix::sys::time::TimeSpec::new(-5, 0);
        let flags = nix::sys::stat::UtimensatFlags::NoFollowSymlink;
        nix::sys::stat::utimensat(None, &r.join("b/c/f"), &ts, &ts, flags).unwrap();
        for (epoch, want) in [(Some(-86400), [-86400; 6]), (None, [0, 0, 0, -5, 0, 0])] {
            let out = tar_tree(r, epoch, Vec::new()).unwrap();
            let mut ar = tar::Archive::new(&out[..]);
            let got: Vec<i64> = ar.entries().unwrap().map(|e| layer::entry_mtime(&mut e.unwrap()).unwrap().0).collect();
            // (without an epoch the other entries have the time the test made them: 0 here)
            let got: Vec<i64> = got.into_iter().map(|t| if t > 0 { 0 } else { t }).collect();
            assert_eq!(got, want, "{epoch:?}");
        }
    }
}
