//! Build attestations as BuildKit makes and stores them: `--provenance`, `--attest` and the
//! `BUILDKIT_ATTEST_*` build args read (buildx's util/buildflags/attests.go, BuildKit's
//! frontend/attestations/parse.go), the SLSA provenance predicate made from what the build used
//! (solver/llbsolver/provenance: v1 by default, v0.2 on request), wrapped in an in-toto
//! statement, and stored as an attestation manifest of the image index
//! (docs/attestations/attestation-storage.md, exporter/containerimage/writer.go
//! commitAttestationsManifest), or written as a file by the local and tar outputs
//! (exporter/local/fs.go).
//!
//! Provenance is opt-in: a build without `--provenance`/`--attest` writes none (buildx adds
//! `mode=min` by default, docker's own driver none), so equal inputs keep giving equal digests.
//! SBOMs (`--sbom`, `--attest type=sbom`) are what a generator image writes when `sbom.rs` runs
//! it (BuildKit's SBOM protocol): here they are parsed, checked and stored as in-toto
//! statements beside the provenance. This module writes blobs and JSON only; it runs no step
//! and decides no output's shape beyond the attestations.

use crate::registry::Platform;
use crate::store::image::{self, Descriptor};
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// The in-toto statement type BuildKit wrapped its provenance in until 0.30 (in-toto-golang's
/// StatementInTotoV01); slipway's around SLSA v0.2.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The in-toto statement type of BuildKit 0.31 and newer (exporter/attestation/make.go);
/// slipway's around SLSA v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// SLSA provenance v0.2's predicate type.
pub const PREDICATE_SLSA02: &str = "https://slsa.dev/provenance/v0.2";
/// SLSA provenance v1's predicate type.
pub const PREDICATE_SLSA1: &str = "https://slsa.dev/provenance/v1";
/// BuildKit's buildType for SLSA v0.2 (provenancetypes.BuildKitBuildType02).
pub const BUILD_TYPE: &str = "https://mobyproject.org/buildkit@v1";
/// BuildKit's buildType for SLSA v1 (provenancetypes.BuildKitBuildType1).
pub const BUILD_TYPE_V1: &str = "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md";
/// The media type of an attestation layer (intoto.PayloadType).
pub const MT_INTOTO: &str = "application/vnd.in-toto+json";
/// The layer annotation naming the predicate type.
pub const ANN_PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// The index entry annotations of an attestation manifest.
pub const ANN_REF_TYPE: &str = "vnd.docker.reference.type";
pub const ANN_REF_DIGEST: &str = "vnd.docker.reference.digest";
pub const REF_TYPE_ATTESTATION: &str = "attestation-manifest";
/// `oci-artifact=true`: the attestation manifest's artifactType.
pub const ARTIFACT_TYPE: &str = "application/vnd.docker.attestation.manifest.v1+json";
/// The OCI empty JSON descriptor (`{}`), the config of an artifact manifest.
const MT_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The build arg prefix BuildKit reads attestations from (the frontend's way).
pub const BUILD_ARG_PREFIX: &str = "BUILDKIT_ATTEST_";

/// `mode=`: how much the provenance says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The frontend, materials, locals; no build args, labels, secrets, ssh or steps.
    Min,
    /// Everything: build args and labels, secrets' and ssh ids, the steps and the Dockerfile.
    Max,
}

/// `version=`: the SLSA provenance version written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slsa {
    /// `v0.2`: SLSA v0.2 in an in-toto Statement v0.1.
    V02,
    /// `v1`, the default (BuildKit's since 0.28, frontend/attestations/parse.go): SLSA v1 in an
    /// in-toto Statement v1.
    V1,
}

impl Slsa {
    pub fn predicate_type(self) -> &'static str {
        match self {
            Slsa::V02 => PREDICATE_SLSA02,
            Slsa::V1 => PREDICATE_SLSA1,
        }
    }
    pub fn statement_type(self) -> &'static str {
        match self {
            Slsa::V02 => STATEMENT_V01,
            Slsa::V1 => STATEMENT_V1,
        }
    }
}

/// A provenance attestation asked for, with its parameters (BuildKit's slsa-provenance.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub mode: Mode,
    pub version: Slsa,
    /// `builder-id=`: the predicate's builder.id.
    pub builder_id: String,
    /// `filename=`: the file the local and tar outputs write (default provenance.json).
    pub filename: String,
    /// `reproducible=`: metadata.reproducible.
    pub reproducible: bool,
    /// `inline-only=true`: only image outputs (image, registry, oci, docker) carry it.
    pub inline_only: bool,
    /// `complete-materials=true`: fail when the materials cannot be complete.
    pub complete_materials: bool,
    /// `capture-usage=true`: the machine's resource usage over the build (`sysUsage`) and, on
    /// cgroup v2, each RUN step's (`resourceUsage`), as BuildKit samples them.
    pub capture_usage: bool,
}

/// The attestation flags of `build` as given: `--provenance`, `--sbom`, `--attest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub provenance: Option<String>,
    pub sbom: Option<String>,
    pub attests: Vec<String>,
}

/// The SPDX document predicate type (in-toto's PredicateSPDX), the only SBOM BuildKit takes.
pub const PREDICATE_SPDX: &str = "https://spdx.dev/Document";
/// BuildKit's default generator (frontend/attestations/parse.go defaultSBOMGenerator).
pub const DEFAULT_GENERATOR: &str = "docker/buildkit-syft-scanner:stable-1";

/// An SBOM asked for: the generator image and its parameters (each given to it as
/// `BUILDKIT_SCAN_<KEY>=<VALUE>`, as BuildKit's CreateSBOMScanner passes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// The image reference as given (normalized when it is pulled).
    pub generator: String,
    pub params: Vec<(String, String)>,
}

/// What a build attests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub provenance: Option<Provenance>,
    pub sbom: Option<Sbom>,
}

impl Requested {
    pub fn any(&self) -> bool {
        self.provenance.is_some() || self.sbom.is_some()
    }
}

/// One attestation request as buildx parses it: the type, disabled, the other attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attest {
    typ: String,
    disabled: bool,
    attrs: Vec<(String, String)>,
    /// Given as a buildx flag: buildx sends `type=TYPE` among the attributes (Attests.ToMap),
    /// where a `BUILDKIT_ATTEST_*` build arg has only what it says.
    from_buildx: bool,
}

/// buildx's CanonicalizeAttest: a boolean enables or disables, anything else is attributes.
fn canonical(typ: &str, v: &str) -> String {
    match crate::gobool::parse(v) {
        Some(b) => format!("type={typ},disabled={}", !b),
        None => format!("type={typ},{v}"),
    }
}

/// One `--attest` value (buildx's Attest.UnmarshalText).
fn parse_attest(flag: &str, s: &str) -> Result<Attest, String> {
    let mut a = Attest { typ: String::new(), disabled: false, attrs: Vec::new(), from_buildx: true };
    for f in crate::output::csv_fields(s).map_err(|e| format!("{flag}: {e}"))? {
        let (k, v) = f.split_once('=').ok_or_else(|| format!("{flag} {s:?}: invalid value {f}"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "type" => a.typ = v.to_string(),
            "disabled" => {
                a.disabled = crate::gobool::parse(v).ok_or_else(|| format!("{flag} {s:?}: invalid value {f}"))?;
            }
            _ => a.attrs.push((k.to_string(), v.to_string())),
        }
    }
    if a.typ.is_empty() {
        return Err(format!("{flag} {s:?}: attestation type not specified"));
    }
    Ok(a)
}

/// The attestations a build makes: the flags (buildx's order, `--attest`s then `--provenance`
/// then `--sbom`, a later one of a type replacing an earlier), else the `BUILDKIT_ATTEST_*`
/// build args (BuildKit's frontend reads them the same way).
pub fn resolve(flags: &Flags, build_args: &[(String, String)]) -> Result<Requested, String> {
    let mut given: Vec<(String, Attest)> = Vec::new();
    let mut add = |flag: String, a: Attest| match given.iter_mut().find(|(_, g)| g.typ == a.typ) {
        Some(slot) => *slot = (flag, a),
        None => given.push((flag, a)),
    };
    for s in &flags.attests {
        add(format!("--attest {s:?}"), parse_attest("--attest", s)?);
    }
    if let Some(v) = flags.provenance.as_deref().filter(|v| !v.is_empty()) {
        add(format!("--provenance {v:?}"), parse_attest("--provenance", &canonical("provenance", v))?);
    }
    if let Some(v) = flags.sbom.as_deref().filter(|v| !v.is_empty()) {
        add(format!("--sbom {v:?}"), parse_attest("--sbom", &canonical("sbom", v))?);
    }
    // the build args: BuildKit's `build-arg:BUILDKIT_ATTEST_<TYPE>=<attributes>` (the last of a
    // name), for a type no flag set
    let mut args: BTreeMap<String, &str> = BTreeMap::new();
    for (k, v) in build_args {
        if let Some(t) = k.strip_prefix(BUILD_ARG_PREFIX) {
            args.insert(t.to_ascii_lowercase(), v);
        }
    }
    for (t, v) in args {
        if given.iter().any(|(_, g)| g.typ == t) {
            continue;
        }
        let flag = format!("build arg {BUILD_ARG_PREFIX}{}={v:?}", t.to_ascii_uppercase());
        let mut a = Attest { typ: t.clone(), disabled: false, attrs: Vec::new(), from_buildx: false };
        if !v.is_empty() {
            for f in crate::output::csv_fields(v).map_err(|e| format!("{flag}: {e}"))? {
                let (k, v) = f.split_once('=').unwrap_or((&f, ""));
                match k {
                    "disabled" => {
                        a.disabled = crate::gobool::parse(v).ok_or_else(|| format!("{flag}: invalid value {f}"))?
                    }
                    _ => a.attrs.push((k.to_string(), v.to_string())),
                }
            }
        }
        given.push((flag, a));
    }
    let mut out = Requested::default();
    for (flag, a) in given {
        match a.typ.as_str() {
            "provenance" if a.disabled => {}
            "provenance" => out.provenance = Some(provenance(&flag, &a.attrs)?),
            "sbom" if a.disabled => {}
            "sbom" => {
                let mut attrs = a.attrs.clone();
                if a.from_buildx {
                    attrs.insert(0, ("type".to_string(), a.typ.clone()));
                }
                out.sbom = Some(sbom(&flag, &attrs)?)
            }
            t => return Err(format!("{flag}: unknown attestation type {t:?}")),
        }
    }
    Ok(out)
}

/// The SBOM attributes as BuildKit's dockerui reads them (frontend/dockerui/config.go): the
/// generator (default BuildKit's syft scanner) a reference, every other attribute a parameter
/// of the generator, the `type` buildx sends too (so the generator sees
/// `BUILDKIT_SCAN_type=sbom` when buildx asked for it).
fn sbom(flag: &str, attrs: &[(String, String)]) -> Result<Sbom, String> {
    let mut s = Sbom { generator: DEFAULT_GENERATOR.to_string(), params: Vec::new() };
    for (k, v) in attrs {
        match k.as_str() {
            "generator" if v.is_empty() => return Err(format!("{flag}: sbom scanner cannot be empty")),
            "generator" => {
                crate::registry::reference::Reference::parse(v)
                    .map_err(|e| format!("{flag}: failed to parse sbom scanner {v}: {e}"))?;
                s.generator = v.clone();
            }
            _ => {
                s.params.retain(|(pk, _)| pk != k);
                s.params.push((k.clone(), v.clone()));
            }
        }
    }
    s.params.sort();
    Ok(s)
}

/// The provenance attributes, as BuildKit's NewProvenanceCreator and control.go read them;
/// one slipway does not know is refused (BuildKit ignores it).
fn provenance(flag: &str, attrs: &[(String, String)]) -> Result<Provenance, String> {
    let mut p = Provenance {
        // BuildKit's default when a provenance is asked for (buildx's own default is
        // mode=min,inline-only=true, which slipway does not add)
        mode: Mode::Max,
        version: Slsa::V1,
        builder_id: String::new(),
        filename: "provenance.json".into(),
        reproducible: false,
        inline_only: false,
        complete_materials: false,
        capture_usage: false,
    };
    let bool_of = |v: &str, what: &str| {
        crate::gobool::parse(v).ok_or_else(|| format!("{flag}: failed to parse {what} {v:?} (expected true or false)"))
    };
    for (k, v) in attrs {
        match k.as_str() {
            "mode" => {
                p.mode = match v.as_str() {
                    "min" => Mode::Min,
                    "max" | "full" => Mode::Max,
                    _ => return Err(format!("{flag}: invalid mode {v:?} (expected min or max)")),
                }
            }
            "builder-id" => p.builder_id = v.clone(),
            "filename" if v.is_empty() || v.contains('/') => {
                return Err(format!("{flag}: filename={v:?}: a file name, without '/'"))
            }
            "filename" => p.filename = v.clone(),
            "reproducible" => p.reproducible = bool_of(v, "reproducible flag")?,
            "inline-only" => p.inline_only = bool_of(v, "inline-only flag")?,
            "complete-materials" => p.complete_materials = bool_of(v, "complete-materials flag")?,
            // BuildKit's ProvenanceSLSA.Validate
            "version" => {
                p.version = match v.as_str() {
                    "v1" => Slsa::V1,
                    "v0.2" => Slsa::V02,
                    "" => return Err(format!("{flag}: provenance SLSA version cannot be empty (v1 or v0.2)")),
                    _ => return Err(format!("{flag}: invalid provenance SLSA version: {v} (v1 or v0.2)")),
                }
            }
            // BuildKit samples the machine's (and on cgroup v2 each step's) resource use
            "capture-usage" => p.capture_usage = bool_of(v, "capture-usage flag")?,
            // buildx sends the type among the attributes
            "type" => {}
            _ => {
                return Err(format!(
                    "{flag}: unknown provenance attribute {k:?} (slipway takes mode, builder-id, filename, \
                     reproducible, inline-only, complete-materials, version, capture-usage)"
                ))
            }
        }
    }
    Ok(p)
}

/// A build input the provenance lists as a material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// An image the build resolved: its reference as normalized (`docker.io/library/alpine:3`,
    /// or with `@sha256:`), the platform asked for, and the digest the name resolved to.
    Image { reference: String, platform: Option<Platform>, digest: String },
    /// A git repository (ADD, or the context) at a commit.
    Git { url: String, commit: String },
    /// An http(s) source (ADD, or the context) and its content's digest.
    Http { url: String, digest: String },
}

/// What a build did, for its provenance: one per platform.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    /// The frontend's arguments as BuildKit receives them from buildx (`build-arg:K`,
    /// `label:K`, `target`, `no-cache`, `context:NAME`); min mode drops build args and labels.
    pub args: BTreeMap<String, String>,
    /// The Dockerfile's name (the frontend's `filename`): configSource.entryPoint.
    pub entry_point: String,
    /// A remote context: configSource.uri (and digest, when a material says it).
    pub context_uri: Option<String>,
    /// The local directories the build read (`context`, `dockerfile`, named contexts).
    pub locals: Vec<String>,
    /// Secrets and ssh ids the steps mounted (max mode), with whether they were optional.
    pub secrets: Vec<(String, bool)>,
    pub ssh: Vec<(String, bool)>,
    pub materials: Vec<Material>,
    /// Whether a step had network access (then the build is not hermetic).
    pub network: bool,
    /// The build's start and end (seconds, nanoseconds), written only when the build gave up
    /// reproducibility (`--timestamp now`); `None`: omitted.
    pub times: Option<((i64, u32), (i64, u32))>,
    /// The build's invocation ID (v1's runDetails.metadata.invocationId), with the times only.
    pub invocation_id: Option<String>,
    /// max mode: buildConfig and the Dockerfile's source.
    pub build_config: Option<serde_json::Value>,
    pub source: Option<serde_json::Value>,
    /// buildx's `vcs:*` attributes of a local git context, keys without `vcs:` (BuildKit moves
    /// them out of the request into `buildkit_metadata.vcs`, in both modes).
    pub vcs: BTreeMap<String, String>,
    /// max mode: which buildConfig steps have which layers (`buildkit_metadata.layers`, filled
    /// in per output, once the image's layers are known).
    pub chains: LayerChains,
}

/// What BuildKit's provenance capture finds of the layers of the buildConfig steps
/// (solver/llbsolver/provenance.go addLayers: each step's result whose blobs exist, as
/// `stepN:0` -> its layer chains): the image sources (a pulled or stored image has its blobs)
/// and, for an image output, each step the image's final state is built on, whose layers are
/// the output's. A local or tar output makes no blobs, so there only the image sources have
/// layers, as in BuildKit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerChains {
    /// The final state's steps, bottom first: the step's ID and how many entries of the
    /// image's history lie below its result (its layers are those of the non-empty entries).
    pub final_chain: Vec<(String, usize)>,
    /// Each image source op (`docker-image://`) with the image's layer descriptors.
    pub images: Vec<(String, Vec<Descriptor>)>,
}

impl LayerChains {
    /// `buildkit_metadata.layers`: `stepN:0` -> [the chain], keys as Go sorts a map's, for an
    /// image output (`image`: its layers and history) or a file output (None).
    pub fn layers(&self, image: Option<(&[Descriptor], &[image::History])>) -> BTreeMap<String, Vec<Vec<Descriptor>>> {
        let mut m: BTreeMap<String, Vec<Vec<Descriptor>>> = BTreeMap::new();
        if let Some((layers, history)) = image {
            // a history that does not account for the layers (an image made elsewhere without
            // one) tells no step's layers
            let consistent = history.iter().filter(|h| !h.empty_layer).count() == layers.len();
            for (id, below) in self.final_chain.iter().filter(|_| consistent) {
                let n = history.iter().take(*below).filter(|h| !h.empty_layer).count();
                if n > 0 && *below <= history.len() {
                    m.insert(format!("{id}:0"), vec![layers[..n].to_vec()]);
                }
            }
        }
        for (id, descs) in &self.images {
            if !descs.is_empty() {
                m.insert(format!("{id}:0"), vec![descs.clone()]);
            }
        }
        m
    }
}

/// `pkg:docker/NAMESPACE/NAME@TAG?digest=...&platform=...` as BuildKit's purl.RefToPURL writes
/// it: the familiar name (docker.io and library/ dropped), the tag as version unless the
/// reference has a digest, then the digest and the platform qualifiers, in that order.
pub fn purl(reference: &str, platform: Option<&Platform>) -> String {
    let (full, tag, digest) = match crate::registry::reference::Reference::parse(reference) {
        Ok(r) => (format!("{}/{}", r.registry, r.repository), r.tag, r.digest),
        Err(_) => (reference.to_string(), None, None),
    };
    let name = full.as_str();
    let familiar = name.strip_prefix("docker.io/").map(|n| n.strip_prefix("library/").unwrap_or(n)).unwrap_or(name);
    let (ns, last) = match familiar.rsplit_once('/') {
        Some((ns, last)) => (Some(ns), last),
        None => (None, familiar),
    };
    let mut out = String::from("pkg:docker/");
    if let Some(ns) = ns {
        for seg in ns.split('/') {
            out.push_str(&query_escape(seg));
            out.push('/');
        }
    }
    out.push_str(&query_escape(last));
    // a reference with a digest has no version unless it also has a tag
    let version = match (&digest, &tag) {
        (_, Some(t)) => Some(t.as_str()),
        (Some(_), None) => None,
        (None, None) => Some("latest"),
    };
    if let Some(v) = version {
        out.push('@');
        out.push_str(&path_escape(v));
    }
    let mut q = Vec::new();
    if let Some(d) = &digest {
        q.push(format!("digest={}", path_escape(d)));
    }
    if let Some(p) = platform {
        q.push(format!("platform={}", path_escape(&normalized(p))));
    }
    if !q.is_empty() {
        out.push('?');
        out.push_str(&q.join("&"));
    }
    out
}

/// containerd's platforms.Normalize then Format: arm64's v8 variant dropped, arm's default v7.
fn normalized(p: &Platform) -> String {
    let variant = match (p.architecture.as_str(), p.variant.as_deref()) {
        ("arm64", Some("v8")) => None,
        ("arm", None) => Some("v7"),
        (_, v) => v,
    };
    match variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// Go's url.QueryEscape for the characters a reference can hold.
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Go's url.PathEscape (a path segment: `/` escaped; `:`, `@`, `&`, `=`, `+`, `$` kept).
fn path_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b':' | b'@' | b'&' | b'=' | b'+' | b'$' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Go's time.Time JSON: RFC 3339 with the nanoseconds' significant digits.
fn go_time(secs: i64, nanos: u32) -> String {
    let base = image::rfc3339(secs);
    if nanos == 0 {
        return base;
    }
    let frac = format!("{nanos:09}");
    format!("{}.{}Z", base.trim_end_matches('Z'), frac.trim_end_matches('0'))
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    typ: &'static str,
    #[serde(rename = "predicateType")]
    predicate_type: &'a str,
    subject: Vec<Subject>,
    predicate: &'a serde_json::Value,
}

#[derive(Serialize, serde::Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    pub digest: BTreeMap<String, String>,
}

impl Subject {
    pub fn new(name: String, digest: &str) -> Subject {
        let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        Subject { name, digest: BTreeMap::from([(alg.to_string(), hex.to_string())]) }
    }
}

#[derive(Serialize)]
struct MaterialJson {
    #[serde(skip_serializing_if = "String::is_empty")]
    uri: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    digest: BTreeMap<String, String>,
}

/// What both predicate versions say, computed once from a build (BuildKit makes its v1
/// predicate, then converts it to v0.2: types.go ConvertToSLSA02).
struct Facts {
    /// Materials (v0.2) or resolvedDependencies (v1), in BuildKit's order.
    materials: Vec<MaterialJson>,
    /// configSource: the remote context's URL and digest, the Dockerfile's name.
    config_uri: Option<String>,
    config_digest: Option<serde_json::Value>,
    /// The frontend's request: parameters (v0.2) or externalParameters.request (v1).
    request: serde_json::Map<String, serde_json::Value>,
    /// completeness.parameters (v0.2) or buildkit_completeness.request (v1).
    complete_request: bool,
    /// completeness.materials (v0.2) or buildkit_completeness.resolvedDependencies (v1).
    complete_materials: bool,
    hermetic: bool,
}

impl Facts {
    /// configSource: the remote context's URI and digest, and the Dockerfile's name under
    /// `entry_key` (v0.2 `entryPoint`, v1 `path`).
    fn config_source(&self, info: &BuildInfo, entry_key: &str) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(uri) = &self.config_uri {
            m.insert("uri".into(), serde_json::json!(uri));
        }
        if let Some(d) = &self.config_digest {
            m.insert("digest".into(), d.clone());
        }
        if !info.entry_point.is_empty() {
            m.insert(entry_key.into(), serde_json::json!(info.entry_point));
        }
        m
    }
}

fn facts(p: &Provenance, info: &BuildInfo) -> Result<Facts, String> {
    use serde_json::json;
    // BuildKit's Capture.Sort: images by reference, then git and http sources by URL
    let mut mats = info.materials.clone();
    let key = |m: &Material| match m {
        Material::Image { reference, platform, digest } => {
            (0, reference.clone(), platform.as_ref().map(normalized).unwrap_or_default(), digest.clone())
        }
        Material::Git { url, commit } => (1, url.clone(), String::new(), commit.clone()),
        Material::Http { url, digest } => (2, url.clone(), String::new(), digest.clone()),
    };
    mats.sort_by_key(key);
    mats.dedup();
    let materials: Vec<MaterialJson> = mats
        .iter()
        .map(|m| match m {
            Material::Image { reference, platform, digest } => MaterialJson {
                uri: purl(reference, platform.as_ref()),
                digest: Subject::new(String::new(), digest).digest,
            },
            Material::Git { url, commit } => {
                let alg = if commit.len() == 64 { "sha256" } else { "sha1" };
                MaterialJson { uri: url.clone(), digest: BTreeMap::from([(alg.to_string(), commit.clone())]) }
            }
            Material::Http { url, digest } => {
                MaterialJson { uri: url.clone(), digest: Subject::new(String::new(), digest).digest }
            }
        })
        .collect();
    // a local directory is an untracked source: the materials are incomplete
    let complete_materials = info.locals.is_empty();
    if p.complete_materials && !complete_materials {
        return Err(format!(
            "provenance materials are incomplete: complete-materials=true, but the build read local sources ({}), which \
             no digest pins",
            info.locals.join(", ")
        ));
    }
    let mut args = info.args.clone();
    let mut complete_request = true;
    if p.mode == Mode::Min {
        // BuildKit's scrubMinRequest
        let before = args.len();
        args.retain(|k, _| !k.starts_with("build-arg:") && !k.starts_with("label:"));
        complete_request = args.len() == before;
    }
    let mut request = serde_json::Map::new();
    request.insert("frontend".into(), json!("dockerfile.v0"));
    if !args.is_empty() {
        request.insert("args".into(), json!(args));
    }
    let ids = |v: &[(String, bool)]| -> Vec<serde_json::Value> {
        let mut v = v.to_vec();
        v.sort();
        v.dedup();
        v.iter()
            .map(|(id, optional)| if *optional { json!({"id": id, "optional": true}) } else { json!({"id": id}) })
            .collect()
    };
    if p.mode == Mode::Max && !info.secrets.is_empty() {
        request.insert("secrets".into(), json!(ids(&info.secrets)));
    }
    if p.mode == Mode::Max && !info.ssh.is_empty() {
        request.insert("ssh".into(), json!(ids(&info.ssh)));
    }
    if !info.locals.is_empty() {
        let mut l = info.locals.clone();
        l.sort();
        l.dedup();
        request.insert("locals".into(), json!(l.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()));
    }
    let config_digest = info.context_uri.as_ref().and_then(|uri| {
        mats.iter().find_map(|m| match m {
            Material::Git { url, commit } if url == uri => {
                let alg = if commit.len() == 64 { "sha256" } else { "sha1" };
                Some(json!(BTreeMap::from([(alg, commit)])))
            }
            Material::Http { url, digest } if url == uri => Some(json!(Subject::new(String::new(), digest).digest)),
            _ => None,
        })
    });
    Ok(Facts {
        materials,
        config_uri: info.context_uri.clone(),
        config_digest,
        request,
        complete_request,
        complete_materials,
        hermetic: complete_materials && !info.network,
    })
}

/// The provenance predicate of one platform's build, in the version asked for.
pub fn predicate(p: &Provenance, info: &BuildInfo) -> Result<serde_json::Value, String> {
    let f = facts(p, info)?;
    match p.version {
        Slsa::V02 => predicate_v02(p, info, f),
        Slsa::V1 => Ok(predicate_v1(p, info, f)),
    }
}

/// The SLSA v0.2 predicate, in BuildKit's field order (ProvenancePredicateSLSA02 as Go's
/// encoding/json orders an embedded struct's fields).
fn predicate_v02(p: &Provenance, info: &BuildInfo, f: Facts) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let config_source = f.config_source(info, "entryPoint");
    let mut metadata = serde_json::Map::new();
    if let Some((start, end)) = info.times {
        metadata.insert("buildStartedOn".into(), json!(go_time(start.0, start.1)));
        metadata.insert("buildFinishedOn".into(), json!(go_time(end.0, end.1)));
    }
    metadata.insert(
        "completeness".into(),
        json!({"parameters": f.complete_request, "environment": true, "materials": f.complete_materials}),
    );
    metadata.insert("reproducible".into(), json!(p.reproducible));
    metadata.insert("https://mobyproject.org/buildkit@v1#metadata".into(), buildkit_metadata(p, info));
    if f.hermetic {
        metadata.insert("https://mobyproject.org/buildkit@v1#hermetic".into(), json!(true));
    }
    #[derive(Serialize)]
    struct Predicate {
        builder: serde_json::Value,
        #[serde(rename = "buildType")]
        build_type: &'static str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        materials: Vec<MaterialJson>,
        invocation: serde_json::Value,
        #[serde(rename = "buildConfig", skip_serializing_if = "Option::is_none")]
        build_config: Option<serde_json::Value>,
        metadata: serde_json::Value,
    }
    let pred = Predicate {
        builder: json!({"id": p.builder_id}),
        build_type: BUILD_TYPE,
        materials: f.materials,
        invocation: json!({
            "configSource": config_source,
            "parameters": f.request,
            "environment": {"platform": normalized(&Platform::host())},
        }),
        build_config: if p.mode == Mode::Max { info.build_config.clone() } else { None },
        metadata: serde_json::Value::Object(metadata),
    };
    serde_json::to_value(&pred).map_err(|e| format!("provenance: {e}"))
}

/// The SLSA v1 predicate as BuildKit HEAD writes it (ProvenancePredicateSLSA1 in Go's field
/// order: an embedded struct's fields before the outer ones, shadowed ones dropped). What
/// differs from BuildKit, and why, is in the README (Attestations).
fn predicate_v1(p: &Provenance, info: &BuildInfo, f: Facts) -> serde_json::Value {
    use serde_json::json;
    let config_source = f.config_source(info, "path");
    let mut definition = serde_json::Map::new();
    definition.insert("buildType".into(), json!(BUILD_TYPE_V1));
    if !f.materials.is_empty() {
        definition.insert("resolvedDependencies".into(), json!(f.materials));
    }
    definition.insert("externalParameters".into(), json!({"configSource": config_source, "request": f.request}));
    // BuildKit marshals internalParameters through a map (to flatten its custom environment),
    // so its keys, and every key inside, come out sorted
    let mut internal = json!({"builderPlatform": normalized(&Platform::host())});
    if p.mode == Mode::Max {
        if let Some(c) = &info.build_config {
            internal["buildConfig"] = c.clone();
        }
    }
    definition.insert("internalParameters".into(), sorted(internal));
    let mut metadata = serde_json::Map::new();
    if let Some(id) = &info.invocation_id {
        metadata.insert("invocationId".into(), json!(id));
    }
    if let Some((start, end)) = info.times {
        metadata.insert("startedOn".into(), json!(go_time(start.0, start.1)));
        metadata.insert("finishedOn".into(), json!(go_time(end.0, end.1)));
    }
    metadata.insert("buildkit_metadata".into(), buildkit_metadata(p, info));
    if f.hermetic {
        metadata.insert("buildkit_hermetic".into(), json!(true));
    }
    metadata.insert(
        "buildkit_completeness".into(),
        json!({"request": f.complete_request, "resolvedDependencies": f.complete_materials}),
    );
    if p.reproducible {
        metadata.insert("buildkit_reproducible".into(), json!(true));
    }
    json!({
        "buildDefinition": definition,
        "runDetails": {"builder": {"id": p.builder_id}, "metadata": metadata},
    })
}

/// The order of BuildKit's BuildKitMetadata fields.
const BUILDKIT_METADATA_ORDER: [&str; 5] = ["vcs", "source", "layers", "sysUsage", "network"];

/// Sets `key` of the predicate's `buildkit_metadata` (either version), keeping BuildKit's
/// field order.
fn set_buildkit_metadata(pred: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    let md = match pred.pointer_mut("/runDetails/metadata/buildkit_metadata") {
        Some(m) => m,
        None => match pred.pointer_mut("/metadata") {
            Some(m) => &mut m["https://mobyproject.org/buildkit@v1#metadata"],
            None => return,
        },
    };
    let mut fields: Vec<(String, serde_json::Value)> =
        md.as_object().cloned().unwrap_or_default().into_iter().filter(|(k, _)| k != key).collect();
    fields.push((key.to_string(), value));
    let rank = |k: &str| BUILDKIT_METADATA_ORDER.iter().position(|o| *o == k).unwrap_or(usize::MAX);
    fields.sort_by_key(|(k, _)| rank(k));
    *md = serde_json::Value::Object(fields.into_iter().collect());
}

/// `capture-usage=true`: the machine's samples over the build, as BuildKit's
/// `buildkit_metadata.sysUsage` (either version).
pub fn set_sys_usage(pred: &mut serde_json::Value, samples: &[serde_json::Value]) {
    set_buildkit_metadata(pred, "sysUsage", serde_json::json!(samples));
}

/// BuildKit's BuildKitMetadata in its field order (vcs, source, layers, sysUsage, network),
/// the empty ones left out: `vcs` in both modes, the rest with `mode=max`.
fn buildkit_metadata(p: &Provenance, info: &BuildInfo) -> serde_json::Value {
    let mut bk = serde_json::Map::new();
    if !info.vcs.is_empty() {
        bk.insert("vcs".into(), serde_json::json!(info.vcs));
    }
    if p.mode == Mode::Max {
        if let Some(s) = &info.source {
            bk.insert("source".into(), s.clone());
        }
    }
    serde_json::Value::Object(bk)
}

/// `v` with every object's keys sorted, as Go's encoding/json writes a map.
fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut kv: Vec<_> = m.into_iter().collect();
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sorted).collect()),
        v => v,
    }
}

/// A new invocation ID, as BuildKit's identity.NewID makes one: 25 characters of base 36 from
/// 128 random bits. Only a build that gave up reproducibility (`--timestamp now`) has one.
pub fn invocation_id() -> Result<String, String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| format!("provenance: invocation ID: read /dev/urandom: {e}"))?;
    let mut n = u128::from_be_bytes(b);
    let mut out = Vec::with_capacity(25);
    for _ in 0..25 {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// The in-toto statement of `predicate` about `subjects`, as BuildKit marshals it (compact):
/// Statement v1 around SLSA v1, as BuildKit 0.31 and newer; v0.1 around v0.2, as slipway
/// wrote it before v1 (and BuildKit before 0.31).
pub fn statement(p: &Provenance, predicate: &serde_json::Value, subjects: Vec<Subject>) -> Vec<u8> {
    let s = Statement {
        typ: p.version.statement_type(),
        predicate_type: p.version.predicate_type(),
        subject: subjects,
        predicate,
    };
    image::to_json(&s)
}

/// The same statement indented, as the local exporter writes `provenance.json`.
pub fn statement_pretty(p: &Provenance, predicate: &serde_json::Value, subjects: Vec<Subject>) -> Vec<u8> {
    let s = Statement {
        typ: p.version.statement_type(),
        predicate_type: p.version.predicate_type(),
        subject: subjects,
        predicate,
    };
    serde_json::to_vec_pretty(&s).unwrap_or_default()
}

/// The subjects of an image's statement: one purl per name of the output (with the platform),
/// each with the image manifest's digest; none for an unnamed output, as in BuildKit.
pub fn image_subjects(names: &[String], platform: &Platform, manifest_digest: &str) -> Vec<Subject> {
    names.iter().map(|n| Subject::new(purl(n, Some(platform)), manifest_digest)).collect()
}

/// The attestation config BuildKit writes when the manifest is no OCI artifact: an image
/// config of platform unknown/unknown whose diff_ids are the statements' digests (Go's
/// ocispecs.Image marshalled: the empty `config` object stays).
#[derive(Serialize)]
struct AttestationConfig<'a> {
    architecture: &'static str,
    os: &'static str,
    config: serde_json::Map<String, serde_json::Value>,
    rootfs: RootFs<'a>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    diff_ids: Vec<&'a str>,
}

/// Writes the attestation manifest of `statements` about `target` to the store (BuildKit's
/// commitAttestationsManifest) and returns its index entry: platform unknown/unknown, the
/// reference annotations, with every blob it wrote (the manifest's first).
/// `oci_artifact`: artifactType, subject and the empty config.
/// `statements`: each statement's bytes and predicate type, in the manifest's layer order.
pub fn put_manifest(
    store: &Store,
    target: &Descriptor,
    statements: &[(Vec<u8>, String)],
    oci_artifact: bool,
) -> Result<(Descriptor, Vec<String>), StoreError> {
    use serde_json::json;
    let mut layers = Vec::new();
    let mut blobs = Vec::new();
    for (s, predicate_type) in statements {
        let digest = store.put_blob(s)?;
        blobs.push(digest.clone());
        layers.push(Descriptor {
            media_type: MT_INTOTO.into(),
            digest,
            size: s.len() as u64,
            annotations: BTreeMap::from([(ANN_PREDICATE_TYPE.to_string(), predicate_type.clone())]),
            platform: None,
        });
    }
    let mut m = json!({"schemaVersion": 2, "mediaType": image::MT_MANIFEST});
    if oci_artifact {
        let empty = store.put_blob(b"{}")?;
        blobs.push(empty.clone());
        m["artifactType"] = json!(ARTIFACT_TYPE);
        m["config"] = json!({"mediaType": MT_EMPTY, "digest": empty, "size": 2, "data": "e30="});
    } else {
        let cfg = AttestationConfig {
            architecture: "unknown",
            os: "unknown",
            config: Default::default(),
            rootfs: RootFs { typ: "layers", diff_ids: layers.iter().map(|l| l.digest.as_str()).collect() },
        };
        let (digest, size) = store.put_json(&cfg)?;
        blobs.push(digest.clone());
        m["config"] = json!({"mediaType": image::MT_CONFIG, "digest": digest, "size": size});
    }
    m["layers"] = json!(layers);
    if oci_artifact {
        m["subject"] = json!({"mediaType": target.media_type, "digest": target.digest, "size": target.size});
    }
    let (digest, size) = store.put_json(&m)?;
    blobs.insert(0, digest.clone());
    let d = Descriptor {
        media_type: image::MT_MANIFEST.into(),
        digest,
        size,
        annotations: BTreeMap::from([
            (ANN_REF_DIGEST.to_string(), target.digest.clone()),
            (ANN_REF_TYPE.to_string(), REF_TYPE_ATTESTATION.to_string()),
        ]),
        platform: Some(json!({"architecture": "unknown", "os": "unknown"})),
    };
    Ok((d, blobs))
}

/// What a build attests, for the outputs: the provenance asked for and each platform's
/// predicate, each platform's SBOM statements (in the order of the build's images; empty when
/// not asked for).
#[derive(Debug, Clone, Default)]
pub struct Attestations {
    pub provenance: Option<Provenance>,
    pub predicates: Vec<serde_json::Value>,
    /// max mode: each platform's layer chains (empty otherwise).
    pub chains: Vec<LayerChains>,
    pub sboms: Vec<Vec<Scanned>>,
}

impl Attestations {
    /// The statements about image `i` (SBOMs first, then the provenance, as BuildKit's SBOM
    /// processor runs before its provenance processor), each with its predicate type and the
    /// file name the local exporter gives it. `default_subjects`: the subjects of a statement
    /// that names none; `image`: an image output's image, its layers for the core SBOM's
    /// `layerID` comments (as BuildKit's supplementSBOM) and the provenance's layer chains.
    fn statements(
        &self,
        i: usize,
        default_subjects: &[Subject],
        image: Option<&crate::store::Image>,
        pretty: bool,
    ) -> Vec<(Vec<u8>, String, String)> {
        let digests: Option<Vec<String>> =
            image.map(|img| img.manifest.layers.iter().map(|l| l.digest.clone()).collect());
        let layers = digests.as_deref();
        let mut out = Vec::new();
        for sc in self.sboms.get(i).into_iter().flatten() {
            let subjects = if sc.subjects.is_empty() { default_subjects.to_vec() } else { sc.subjects.clone() };
            let predicate = match layers {
                Some(l) => sc.supplemented(l),
                None => sc.predicate.clone(),
            };
            let s = Statement {
                typ: STATEMENT_V1,
                predicate_type: &sc.predicate_type,
                subject: subjects,
                predicate: &predicate,
            };
            let bytes = if pretty { serde_json::to_vec_pretty(&s).unwrap_or_default() } else { go_json(&s) };
            out.push((bytes, sc.predicate_type.clone(), sc.name.clone()));
        }
        if let (Some(p), Some(pred)) = (&self.provenance, self.predicates.get(i)) {
            let mut pred = pred.clone();
            if let Some(c) = self.chains.get(i).filter(|_| p.mode == Mode::Max) {
                let m = c.layers(image.map(|img| (&img.manifest.layers[..], &img.config.history[..])));
                if !m.is_empty() {
                    set_buildkit_metadata(&mut pred, "layers", serde_json::json!(m));
                }
            }
            let bytes = if pretty {
                statement_pretty(p, &pred, default_subjects.to_vec())
            } else {
                statement(p, &pred, default_subjects.to_vec())
            };
            out.push((bytes, p.version.predicate_type().to_string(), p.filename.clone()));
        }
        out
    }

    /// What the local and tar outputs write of image `i`: (file name, statement), the
    /// provenance left out with `inline-only=true`.
    pub fn files(&self, i: usize, subjects: &[Subject]) -> Vec<(String, Vec<u8>)> {
        let inline_only = self.provenance.as_ref().is_some_and(|p| p.inline_only);
        self.statements(i, subjects, None, true)
            .into_iter()
            .filter(|(_, t, _)| !(inline_only && t.starts_with("https://slsa.dev/provenance/")))
            .map(|(b, _, name)| (name, b))
            .collect()
    }

    /// The attestation manifests of an image output's images (named `names`), one per image,
    /// each about that image's manifest `targets[i]` (with its layers' digests); with every
    /// blob written.
    pub fn manifests(
        &self,
        store: &Store,
        targets: &[(Platform, Descriptor, &crate::store::Image)],
        names: &[String],
        oci_artifact: bool,
    ) -> Result<(Vec<Descriptor>, Vec<String>), StoreError> {
        let mut descs = Vec::new();
        let mut blobs = Vec::new();
        for (i, (platform, target, img)) in targets.iter().enumerate() {
            let subjects = image_subjects(names, platform, &target.digest);
            let sts: Vec<(Vec<u8>, String)> =
                self.statements(i, &subjects, Some(img), false).into_iter().map(|(b, t, _)| (b, t)).collect();
            let (d, b) = put_manifest(store, target, &sts, oci_artifact)?;
            descs.push(d);
            blobs.extend(b);
        }
        Ok((descs, blobs))
    }
}

/// Go's encoding/json bytes of `v`: serde's, with `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// Go escapes them (they only occur inside strings, so replacing them everywhere is exact).
fn go_json<T: Serialize>(v: &T) -> Vec<u8> {
    let s = String::from_utf8(image::to_json(v)).unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// `v` with every object's keys sorted, as Go marshals the `map[string]interface{}` BuildKit
/// decodes a generator's predicate into.
fn go_sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut kv: Vec<(String, serde_json::Value)> = m.into_iter().collect();
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k, go_sorted(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(go_sorted).collect()),
        v => v,
    }
}

/// BuildKit's name of the core scan (frontend/attestations/sbom CoreSBOMName): the generator
/// scans `/run/src/core/sbom`, so its main SBOM is `sbom.spdx.json`.
pub const CORE_SBOM: &str = "sbom";

/// One statement a generator wrote (BuildKit's exporter/attestation unbundle): its file name,
/// predicate type and predicate, and the subjects it names (none: the image's, BuildKit's
/// "self" subject). `file_layers`: for the core SPDX document, which of its `files` (index)
/// lies in which of the image's layers (index, bottom first), for BuildKit's supplementSBOM.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Scanned {
    pub name: String,
    pub predicate_type: String,
    pub predicate: serde_json::Value,
    pub subjects: Vec<Subject>,
    pub file_layers: Option<Vec<(usize, usize)>>,
}

impl Scanned {
    /// Whether this is the core scan (its name before the first `.` is `sbom`), which BuildKit
    /// lists first and supplements.
    pub fn is_core(&self) -> bool {
        self.name.split('.').next() == Some(CORE_SBOM)
    }

    /// Reads one file of the generator's output as BuildKit's unbundle does: a single in-toto
    /// statement of the SPDX predicate type, no larger than 40 MiB.
    pub fn parse(name: &str, data: &[u8]) -> Result<Scanned, String> {
        const MAX: usize = 40 << 20;
        if data.len() > MAX {
            return Err(format!("{name} exceeds {MAX} bytes"));
        }
        #[derive(serde::Deserialize)]
        struct Stmt {
            #[serde(rename = "predicateType", default)]
            predicate_type: String,
            #[serde(default)]
            subject: Vec<RawSubject>,
            #[serde(default)]
            predicate: serde_json::Value,
        }
        #[derive(serde::Deserialize)]
        struct RawSubject {
            #[serde(default)]
            name: String,
            #[serde(default)]
            digest: BTreeMap<String, String>,
        }
        let st: Stmt = serde_json::from_slice(data).map_err(|e| {
            format!("{name}: cannot decode in-toto statement: {e} (a generator writes one statement per file)")
        })?;
        if st.predicate_type != PREDICATE_SPDX {
            return Err(format!(
                "{name}: bundle entry {} does not match required predicate type {PREDICATE_SPDX}",
                st.predicate_type
            ));
        }
        let subjects = st
            .subject
            .into_iter()
            .map(|s| Subject { name: if s.name.is_empty() { "_".into() } else { s.name }, digest: s.digest })
            .collect();
        Ok(Scanned {
            name: name.to_string(),
            predicate_type: st.predicate_type,
            predicate: go_sorted(st.predicate),
            subjects,
            file_layers: None,
        })
    }

    /// The `files[].fileName`s of the core SPDX document that carry no comment yet (BuildKit
    /// leaves a commented file alone), by index; none for another scan or a predicate that is
    /// no SPDX 2 document (BuildKit then leaves it as it is).
    pub fn files_to_place(&self) -> Vec<(usize, String)> {
        if !self.is_core() || !self.is_spdx2() {
            return Vec::new();
        }
        let Some(files) = self.predicate.get("files").and_then(|f| f.as_array()) else { return Vec::new() };
        files
            .iter()
            .enumerate()
            .filter(|(_, f)| f.get("comment").and_then(|c| c.as_str()).unwrap_or_default().is_empty())
            .filter_map(|(i, f)| f.get("fileName").and_then(|n| n.as_str()).map(|n| (i, n.to_string())))
            .collect()
    }

    pub fn is_spdx2(&self) -> bool {
        self.predicate.get("spdxVersion").and_then(|v| v.as_str()).is_some_and(|v| v.starts_with("SPDX-2."))
    }

    /// The predicate as an image output stores it: the core SPDX document with each placed
    /// file's `comment: "layerID: <layer digest>"` and slipway among its creators (BuildKit's
    /// supplementSBOM adds `Tool: buildkit-<version>`).
    pub fn supplemented(&self, layers: &[String]) -> serde_json::Value {
        let mut p = self.predicate.clone();
        let Some(placed) = &self.file_layers else { return p };
        if let Some(files) = p.get_mut("files").and_then(|f| f.as_array_mut()) {
            for (fi, li) in placed {
                if let (Some(f), Some(l)) = (files.get_mut(*fi).and_then(|f| f.as_object_mut()), layers.get(*li)) {
                    f.insert("comment".into(), serde_json::json!(format!("layerID: {l}")));
                }
            }
        }
        if let Some(obj) = p.as_object_mut() {
            let ci = obj.entry("creationInfo").or_insert_with(|| serde_json::json!({}));
            if let Some(ci) = ci.as_object_mut() {
                let creators = ci.entry("creators").or_insert_with(|| serde_json::json!([]));
                if let Some(c) = creators.as_array_mut() {
                    c.push(serde_json::json!(format!("Tool: slipway-{}", env!("CARGO_PKG_VERSION"))));
                }
            }
        }
        // the keys added sorted in as the rest
        go_sorted(p)
    }
}

/// What a platform's plan tells the provenance: the secrets and ssh ids its RUN steps mount
/// (optional unless `required`), whether one has network access.
pub fn from_plan(plan: &crate::plan::Plan, info: &mut BuildInfo) {
    use crate::plan::{Action, Mount};
    for stage in &plan.stages {
        for step in &stage.steps {
            let Action::Run(run) = &step.action else { continue };
            if run.network != crate::spec::Network::None {
                info.network = true;
            }
            for m in &run.mounts {
                match m {
                    Mount::Secret(s) => info.secrets.push((s.id.clone(), !s.required)),
                    Mount::Ssh(s) => info.ssh.push((s.id.clone(), !s.required)),
                    _ => {}
                }
            }
        }
    }
}

/// max mode: the build's steps as BuildKit's `buildConfig.llbDefinition` lists LLB ops, and
/// the Dockerfile as `metadata.source` (its text, and each step's line). slipway has no LLB, so
/// each step is mapped to the op BuildKit's frontend makes of it, in pb.Op's JSON shape: a base
/// image a `source` op (`docker-image://REF@DIGEST`), the context a `local://context` source,
/// RUN an `exec` op (args, env, cwd, user; the rootfs and each mount, with pb's mount types),
/// COPY/ADD a `file` op of `copy` actions (an http source an `https://` source op, a git one
/// `git://`), WORKDIR a `file` op `mkdir`; a step that only changes the config (ENV, LABEL,
/// CMD...) is no op, as in BuildKit. `inputs` name the steps an op reads (`stepN:0`).
pub fn max_config(
    plan: &crate::plan::Plan,
    file: &str,
    text: &str,
) -> (serde_json::Value, serde_json::Value, LayerChains) {
    use crate::plan::{Action, Base, Mount, Origin, Source};
    use base64::Engine;
    use serde_json::json;
    let mut steps: Vec<serde_json::Value> = Vec::new();
    let mut locations = serde_json::Map::new();
    let mut push = |op: serde_json::Value, inputs: Vec<String>, line: Option<usize>| -> String {
        let id = format!("step{}", steps.len());
        let mut step = json!({"id": id, "op": op});
        if !inputs.is_empty() {
            step["inputs"] = json!(inputs);
        }
        steps.push(step);
        if let Some(l) = line {
            locations
                .insert(id.clone(), json!({"locations": [{"ranges": [{"start": {"line": l}, "end": {"line": l}}]}]}));
        }
        format!("{id}:0")
    };
    let platform_of = |p: &Platform| {
        let mut v = json!({"Architecture": p.architecture, "OS": p.os});
        if let Some(var) = &p.variant {
            v["Variant"] = json!(var);
        }
        v
    };
    let mut stage_out: BTreeMap<usize, Option<String>> = BTreeMap::new();
    // each stage's final chain: its steps' IDs with the history entries below their results
    let mut stage_chain: BTreeMap<usize, (Vec<(String, usize)>, usize)> = BTreeMap::new();
    let sources: std::cell::RefCell<Vec<(String, Vec<Descriptor>)>> = Default::default();
    let mut context: Option<String> = None;
    let image_src = |push: &mut dyn FnMut(serde_json::Value, Vec<String>, Option<usize>) -> String,
                     name: Option<&str>,
                     img: &crate::store::Image,
                     platform: &serde_json::Value,
                     line: Option<usize>| {
        // an image named by `--from`/`from=` is known by its manifest alone
        let r = match name.map(crate::registry::reference::Reference::parse) {
            Some(Ok(r)) => format!("{}/{}:{}", r.registry, r.repository, r.tag.as_deref().unwrap_or("latest")),
            Some(Err(_)) => name.unwrap_or_default().to_string(),
            None => String::new(),
        };
        let id = push(
            json!({"Op": {"source": {"identifier": format!("docker-image://{r}@{}", img.manifest_digest)}}, "platform": platform}),
            Vec::new(),
            line,
        );
        let step = id.trim_end_matches(":0").to_string();
        sources.borrow_mut().push((step, img.manifest.layers.clone()));
        id
    };
    // what a step reads (`--from`, `from=`, or the context, whose source op is made once)
    let origin_src = |push: &mut dyn FnMut(serde_json::Value, Vec<String>, Option<usize>) -> String,
                      context: &mut Option<String>,
                      stage_out: &BTreeMap<usize, Option<String>>,
                      o: &Origin,
                      platform: &serde_json::Value|
     -> String {
        match o {
            Origin::Context => context
                .get_or_insert_with(|| {
                    push(json!({"Op": {"source": {"identifier": "local://context"}}}), Vec::new(), None)
                })
                .clone(),
            Origin::Stage(i) => stage_out.get(i).cloned().flatten().unwrap_or_default(),
            Origin::Image(img) => image_src(push, None, img, platform, None),
        }
    };
    for stage in &plan.stages {
        let platform = platform_of(&stage.platform);
        let (mut chain, mut below) = match &stage.base {
            Base::Scratch => (Vec::new(), 0),
            Base::Stage(i) => stage_chain.get(i).cloned().unwrap_or_default(),
            Base::Image { image, .. } => (Vec::new(), image.config.history.len()),
        };
        let mut cur = match &stage.base {
            Base::Scratch => None,
            Base::Stage(i) => stage_out.get(i).cloned().flatten(),
            Base::Image { name, image } => Some(image_src(&mut push, Some(name), image, &platform, Some(stage.line))),
        };
        if let (Base::Image { .. }, Some(id)) = (&stage.base, &cur) {
            chain.push((id.trim_end_matches(":0").to_string(), below));
        }
        for step in &stage.steps {
            // one history entry per step (empty for a config change or a WORKDIR that made
            // nothing), so the step's result lies on `below` entries
            below += 1;
            let before = cur.clone();
            let root_input: Vec<String> = cur.iter().cloned().collect();
            let op = match &step.action {
                Action::Config(_) => continue,
                Action::Workdir(path) => json!({"Op": {"file": {"actions": [{
                    "input": if cur.is_some() { 0 } else { -1 }, "secondaryInput": -1, "output": 0,
                    "Action": {"mkdir": {"path": path, "mode": 0o755, "makeParents": true}}
                }]}}, "platform": platform}),
                Action::Run(r) => {
                    let mut inputs = root_input.clone();
                    let mut mounts =
                        vec![json!({"input": if cur.is_some() { 0 } else { -1 }, "dest": "/", "output": 0})];
                    for m in &r.mounts {
                        mounts.push(match m {
                            Mount::Script { target, .. } => json!({"dest": target, "output": -1, "readonly": true}),
                            Mount::Cache(c) => json!({"dest": c.target, "output": -1, "mountType": 3,
                                "cacheOpt": {"ID": c.id, "sharing": format!("{:?}", c.sharing).to_ascii_uppercase()}}),
                            Mount::Bind(b) => {
                                let src = origin_src(&mut push, &mut context, &stage_out, &b.from, &platform);
                                inputs.push(src);
                                json!({"input": inputs.len() - 1, "selector": b.source, "dest": b.target,
                                    "output": -1, "readonly": b.readonly})
                            }
                            Mount::Tmpfs { target, .. } => json!({"dest": target, "output": -1, "mountType": 4}),
                            Mount::Secret(sm) => json!({"dest": sm.target, "output": -1, "mountType": 1,
                                "secretOpt": {"ID": sm.id, "optional": !sm.required}}),
                            Mount::Ssh(sm) => json!({"dest": sm.target, "output": -1, "mountType": 2,
                                "SSHOpt": {"ID": sm.id, "optional": !sm.required}}),
                        });
                    }
                    let op = json!({"Op": {"exec": {
                        "meta": {"args": r.args, "env": r.env, "cwd": r.cwd, "user": r.user},
                        "mounts": mounts,
                        "network": match r.network { crate::spec::Network::None => 2, crate::spec::Network::Host => 1, crate::spec::Network::Sandbox => 0 },
                    }}, "platform": platform});
                    cur = Some(push(op, inputs, Some(step.line)));
                    chain_step(&mut chain, &before, &cur, below);
                    continue;
                }
                Action::Copy(c) => {
                    let mut inputs = root_input.clone();
                    let mut actions = Vec::new();
                    for src in &c.sources {
                        let (from, path) = match src {
                            Source::Url(u) => (
                                push(json!({"Op": {"source": {"identifier": u.url}}}), Vec::new(), None),
                                format!("/{}", u.name),
                            ),
                            Source::Git(g) => (
                                push(
                                    json!({"Op": {"source": {"identifier": format!("git://{}#{}", g.remote, g.commit)}}}),
                                    Vec::new(),
                                    None,
                                ),
                                format!("/{}", g.subdir),
                            ),
                            Source::Heredoc { name, .. } => (String::new(), format!("/{name}")),
                            Source::Path { path, .. } | Source::Parents { root: path, .. } => {
                                let from = origin_src(&mut push, &mut context, &stage_out, &c.from, &platform);
                                (from, format!("/{}", path.trim_start_matches('/')))
                            }
                        };
                        let secondary = if from.is_empty() {
                            -1
                        } else {
                            inputs.push(from);
                            inputs.len() as i64 - 1
                        };
                        actions.push(json!({"input": if cur.is_some() { 0 } else { -1 }, "secondaryInput": secondary,
                            "output": 0, "Action": {"copy": {"src": path, "dest": c.dest.path}}}));
                    }
                    let op = json!({"Op": {"file": {"actions": actions}}, "platform": platform});
                    cur = Some(push(op, inputs, Some(step.line)));
                    chain_step(&mut chain, &before, &cur, below);
                    continue;
                }
            };
            cur = Some(push(op, root_input, Some(step.line)));
            chain_step(&mut chain, &before, &cur, below);
        }
        stage_out.insert(stage.index, cur);
        stage_chain.insert(stage.index, (chain, below));
    }
    let chains = LayerChains {
        final_chain: stage_chain.remove(&plan.target).map(|(c, _)| c).unwrap_or_default(),
        images: sources.into_inner(),
    };
    let df_step = json!({"id": "step0", "op": {"Op": {"source": {"identifier": "local://dockerfile"}}}});
    let source = json!({
        "locations": locations,
        "infos": [{
            "filename": file,
            "language": "Dockerfile",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
            "llbDefinition": [df_step],
        }],
    });
    (json!({"llbDefinition": steps}), source, chains)
}

/// Records the op a step made (`cur`, changed from `before`) on the stage's final chain.
fn chain_step(chain: &mut Vec<(String, usize)>, before: &Option<String>, cur: &Option<String>, below: usize) {
    if let Some(id) = cur.as_ref().filter(|c| Some(*c) != before.as_ref()) {
        chain.push((id.trim_end_matches(":0").to_string(), below));
    }
}

/// Whether an index entry is an attestation manifest (never an image to run or pull).
pub fn is_attestation(d: &Descriptor) -> bool {
    d.annotations.get(ANN_REF_TYPE).is_some_and(|t| t == REF_TYPE_ATTESTATION)
        || d.platform.as_ref().is_some_and(|p| p["os"] == "unknown" && p["architecture"] == "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(p: Option<&str>, s: Option<&str>, a: &[&str]) -> Flags {
        Flags {
            provenance: p.map(str::to_string),
            sbom: s.map(str::to_string),
            attests: a.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn flags_read_as_buildx_and_buildkit_read_them() {
        let none: &[(String, String)] = &[];
        // no flag: none (slipway's default; buildx adds mode=min,inline-only=true)
        assert_eq!(resolve(&Flags::default(), none).unwrap(), Requested::default());
        // --provenance=true: BuildKit's default mode, max
        assert_eq!(resolve(&flags(Some("true"), None, &[]), none).unwrap().provenance.unwrap().mode, Mode::Max);
        assert_eq!(resolve(&flags(Some("false"), None, &[]), none).unwrap().provenance, None);
        assert_eq!(resolve(&flags(Some("mode=min"), None, &[]), none).unwrap().provenance.unwrap().mode, Mode::Min);
        // SLSA v1 unless version=v0.2 (BuildKit's default since 0.28; buildx sends none)
        assert_eq!(resolve(&flags(Some("true"), None, &[]), none).unwrap().provenance.unwrap().version, Slsa::V1);
        let p = resolve(&flags(None, None, &["type=provenance,version=v0.2"]), none).unwrap().provenance.unwrap();
        assert_eq!(p.version, Slsa::V02);
        // capture-usage: a bool (BuildKit's resource sampling)
        assert!(
            !resolve(&flags(Some("capture-usage=false"), None, &[]), none).unwrap().provenance.unwrap().capture_usage
        );
        assert!(resolve(&flags(Some("capture-usage=1"), None, &[]), none).unwrap().provenance.unwrap().capture_usage);
        let p = resolve(&flags(None, None, &["type=provenance,mode=max,builder-id=https://ci/1"]), none)
            .unwrap()
            .provenance;
        assert_eq!(p.as_ref().map(|p| p.builder_id.as_str()), Some("https://ci/1"));
        // --provenance replaces an --attest of the same type (buildx's removeAttestDupes)
        let p = resolve(&flags(Some("false"), None, &["type=provenance,mode=max"]), none).unwrap().provenance;
        assert_eq!(p, None);
        // the frontend's build arg, when no flag says
        let args = vec![("BUILDKIT_ATTEST_PROVENANCE".to_string(), "mode=min".to_string())];
        assert_eq!(resolve(&Flags::default(), &args).unwrap().provenance.unwrap().mode, Mode::Min);
        let args = vec![("BUILDKIT_ATTEST_PROVENANCE".to_string(), String::new())];
        assert_eq!(resolve(&Flags::default(), &args).unwrap().provenance.unwrap().mode, Mode::Max);
        assert_eq!(resolve(&flags(Some("false"), None, &[]), &args).unwrap().provenance, None);
        // sbom: false is none; true BuildKit's default generator; generator= and parameters
        assert_eq!(resolve(&flags(None, Some("false"), &[]), none).unwrap(), Requested::default());
        // buildx sends the type among the attributes, and BuildKit makes it a parameter
        let s = resolve(&flags(None, Some("true"), &[]), none).unwrap().sbom.unwrap();
        assert_eq!(s.generator, DEFAULT_GENERATOR);
        assert_eq!(s.params, [("type".to_string(), "sbom".to_string())]);
        let s = resolve(&flags(None, None, &["type=sbom,generator=localhost:5000/scan:1,MODE=deep"]), none)
            .unwrap()
            .sbom
            .unwrap();
        assert_eq!(s.generator, "localhost:5000/scan:1");
        assert_eq!(s.params, [("MODE".to_string(), "deep".to_string()), ("type".to_string(), "sbom".to_string())]);
        // --sbom=false replaces an --attest type=sbom (buildx's removeAttestDupes)
        assert_eq!(resolve(&flags(None, Some("false"), &["type=sbom"]), none).unwrap().sbom, None);
        // the build arg reaches BuildKit as written: no type unless it says one
        let args = vec![("BUILDKIT_ATTEST_SBOM".to_string(), "generator=me/scan".to_string())];
        let s = resolve(&Flags::default(), &args).unwrap().sbom.unwrap();
        assert_eq!((s.generator.as_str(), s.params.len()), ("me/scan", 0));
        for (f, want) in [
            (flags(Some("mode=foo"), None, &[]), "invalid mode \"foo\""),
            (flags(None, None, &["mode=max"]), "attestation type not specified"),
            (flags(None, None, &["type=provenance,mode"]), "invalid value mode"),
            (flags(None, None, &["type=foo"]), "unknown attestation type \"foo\""),
            (flags(None, Some("generator="), &[]), "sbom scanner cannot be empty"),
            (flags(None, None, &["type=sbom,generator=x/UPPER"]), "failed to parse sbom scanner x/UPPER"),
            (flags(Some("mode=min,colour=red"), None, &[]), "unknown provenance attribute \"colour\""),
            (flags(Some("version=v3"), None, &[]), "invalid provenance SLSA version: v3"),
            (flags(Some("version="), None, &[]), "provenance SLSA version cannot be empty"),
            (flags(Some("capture-usage=maybe"), None, &[]), "capture-usage flag \"maybe\""),
            (flags(Some("reproducible=maybe"), None, &[]), "reproducible flag \"maybe\""),
        ] {
            let e = resolve(&f, none).unwrap_err();
            assert!(e.contains(want), "{f:?}: {e}");
        }
        let args = vec![("BUILDKIT_ATTEST_FOO".to_string(), "x=1".to_string())];
        assert!(resolve(&Flags::default(), &args).unwrap_err().contains("unknown attestation type \"foo\""));
    }

    #[test]
    fn generator_statements_are_read_as_buildkits_unbundle_reads_them() {
        // a statement without subjects keeps none (the image's are given at export)
        let st = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3","files":[{"fileName":"/a"},{"fileName":"b","comment":"mine"},{"fileName":"/c"}]}}"#;
        let sc = Scanned::parse("sbom.spdx.json", st).unwrap();
        assert!(sc.is_core() && sc.subjects.is_empty());
        // the files to place: uncommented ones only
        assert_eq!(sc.files_to_place(), vec![(0, "/a".to_string()), (2, "/c".to_string())]);
        // supplementSBOM: layerID comments and slipway among the creators
        let mut placed = sc.clone();
        placed.file_layers = Some(vec![(0, 1), (2, 0)]);
        let p = placed.supplemented(&["sha256:l0".to_string(), "sha256:l1".to_string()]);
        assert_eq!(p["files"][0]["comment"], "layerID: sha256:l1");
        assert_eq!(p["files"][1]["comment"], "mine");
        assert_eq!(p["files"][2]["comment"], "layerID: sha256:l0");
        let keys: Vec<&String> = p["files"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["comment", "fileName"], "sorted as Go marshals a map");
        assert!(p["creationInfo"]["creators"][0].as_str().unwrap().starts_with("Tool: slipway-"));
        // an extra scan is not the core: no file placed
        assert!(Scanned::parse("sbom-stage.spdx.json", st).unwrap().files_to_place().is_empty());
        // a raw subject without a name is "_" (BuildKit's makeInTotoStatement)
        let st =
            br#"{"predicateType":"https://spdx.dev/Document","subject":[{"digest":{"sha256":"ab"}}],"predicate":{}}"#;
        assert_eq!(Scanned::parse("x", st).unwrap().subjects[0].name, "_");
        // anything else is refused naming the file
        for (data, want) in [
            (
                &br#"{"predicateType":"https://slsa.dev/provenance/v0.2","predicate":{}}"#[..],
                "does not match required predicate type",
            ),
            (&b"{} {}"[..], "cannot decode in-toto statement"),
            (&b"not json"[..], "cannot decode in-toto statement"),
        ] {
            let e = Scanned::parse("f.json", data).unwrap_err();
            assert!(e.starts_with("f.json: ") && e.contains(want), "{e}");
        }
        // Go's encoding/json escapes
        assert_eq!(go_json(&serde_json::json!({"a": "<&>"})), br#"{"a":"\u003c\u0026\u003e"}"#.to_vec());
    }

    #[test]
    fn purls_are_buildkits() {
        // (reference, platform, BuildKit's purl.RefToPURL)
        let amd = Platform::parse("linux/amd64").unwrap();
        let arm = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(purl("docker.io/library/alpine:3.17", Some(&amd)), "pkg:docker/alpine@3.17?platform=linux%2Famd64");
        assert_eq!(purl("docker.io/me/app:1", Some(&arm)), "pkg:docker/me/app@1?platform=linux%2Farm64");
        assert_eq!(
            purl("localhost:5000/a/b:v2", None),
            "pkg:docker/localhost%3A5000/a/b@v2",
            "the registry is a namespace segment, query-escaped"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            purl(&format!("docker.io/library/busybox@{d}"), Some(&amd)),
            format!("pkg:docker/busybox?digest={d}&platform=linux%2Famd64")
        );
        assert_eq!(purl("ghcr.io/x/y", None), "pkg:docker/ghcr.io/x/y@latest");
    }

    #[test]
    fn min_mode_drops_build_args_and_labels() {
        let info = BuildInfo {
            args: BTreeMap::from([
                ("build-arg:A".to_string(), "1".to_string()),
                ("label:L".to_string(), "x".to_string()),
                ("target".to_string(), "t".to_string()),
            ]),
            entry_point: "Dockerfile".into(),
            locals: vec!["dockerfile".into(), "context".into()],
            secrets: vec![("s".into(), false)],
            ..Default::default()
        };
        // (the predicate's paths of v1, the default, and of v0.2)
        for (version, req, done, complete, materials) in [
            (
                "v1",
                "/buildDefinition/externalParameters/request",
                "/runDetails/metadata",
                "/buildkit_completeness/request",
                "/buildkit_completeness/resolvedDependencies",
            ),
            ("v0.2", "/invocation/parameters", "/metadata", "/completeness/parameters", "/completeness/materials"),
        ] {
            let mut p = resolve(&flags(Some(&format!("mode=min,version={version}")), None, &[]), &[])
                .unwrap()
                .provenance
                .unwrap();
            let v = predicate(&p, &info).unwrap();
            let at = |path: &str| v.pointer(path).cloned().unwrap_or_default();
            assert_eq!(at(&format!("{req}/args")), serde_json::json!({"target": "t"}), "{version}");
            assert_eq!(at(&format!("{done}{complete}")), false, "{version}");
            assert_eq!(at(&format!("{done}{materials}")), false, "{version}");
            assert!(at(&format!("{req}/secrets")).is_null(), "{version}");
            assert_eq!(at(&format!("{req}/locals/0/name")), "context", "{version}");
            assert!(
                at(&format!("{done}/buildStartedOn")).is_null() && at(&format!("{done}/startedOn")).is_null(),
                "no time without --timestamp now"
            );
            p.mode = Mode::Max;
            let v = predicate(&p, &info).unwrap();
            let at = |path: &str| v.pointer(path).cloned().unwrap_or_default();
            assert_eq!(at(&format!("{req}/args/build-arg:A")), "1", "{version}");
            assert_eq!(at(&format!("{req}/secrets/0/id")), "s", "{version}");
            assert_eq!(at(&format!("{done}{complete}")), true, "{version}");
            p.complete_materials = true;
            assert!(predicate(&p, &info).unwrap_err().contains("incomplete"));
        }
    }

    #[test]
    fn times_are_gos() {
        assert_eq!(go_time(1_700_000_000, 0), "2023-11-14T22:13:20Z");
        assert_eq!(go_time(1_700_000_000, 120_000_000), "2023-11-14T22:13:20.12Z");
    }

    /// A build with every field the v0.2 predicate can hold.
    fn full_info() -> BuildInfo {
        let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        BuildInfo {
            args: BTreeMap::from([
                ("build-arg:A".to_string(), "1 & <2>".to_string()),
                ("label:L".to_string(), "x".to_string()),
                ("target".to_string(), "t".to_string()),
            ]),
            entry_point: "Dockerfile".into(),
            context_uri: None,
            locals: vec!["dockerfile".into(), "context".into()],
            secrets: vec![("s".into(), false), ("o".into(), true)],
            ssh: vec![("default".into(), false)],
            materials: vec![
                Material::Http { url: "https://h/x".into(), digest: d('c') },
                Material::Image {
                    reference: "docker.io/library/alpine:3".into(),
                    platform: Some(Platform::parse("linux/amd64").unwrap()),
                    digest: d('a'),
                },
                Material::Git { url: "https://g/r.git".into(), commit: "b".repeat(40) },
            ],
            network: false,
            times: Some(((1_700_000_000, 0), (1_700_000_001, 5))),
            invocation_id: None,
            build_config: Some(
                serde_json::json!({"llbDefinition": [{"id": "step0", "op": {"Op": {"source": {"identifier": "local://context"}}}}]}),
            ),
            source: Some(
                serde_json::json!({"locations": {}, "infos": [{"filename": "Dockerfile", "language": "Dockerfile"}]}),
            ),
            vcs: BTreeMap::new(),
            chains: LayerChains::default(),
        }
    }

    /// `version=v0.2` writes what slipway wrote before v1 existed, byte for byte (BuildKit's
    /// field order, Statement v0.1): these were made by that code.
    #[test]
    fn v02_statements_are_unchanged() {
        let host = format!("\"platform\":\"{}\"", normalized(&Platform::host()));
        let d = format!("sha256:{}", "d".repeat(64));
        let mut p = resolve(&flags(Some("mode=max,builder-id=https://ci/1,version=v0.2"), None, &[]), &[])
            .unwrap()
            .provenance
            .unwrap();
        let info = full_info();
        let got = statement(&p, &predicate(&p, &info).unwrap(), vec![Subject::new("pkg:docker/app@1".into(), &d)]);
        let want = concat!(
            r##"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","##,
            r##""subject":[{"name":"pkg:docker/app@1","digest":{"sha256":"dddddddddddddddddddddddddddddddddddddd"##,
            r##"dddddddddddddddddddddddddd"}}],"predicate":{"builder":{"id":"https://ci/1"},"buildType":"https:/"##,
            r##"/mobyproject.org/buildkit@v1","materials":[{"uri":"pkg:docker/alpine@3?platform=linux%2Famd64",""##,
            r##"digest":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},{"uri":"h"##,
            r##"ttps://g/r.git","digest":{"sha1":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},{"uri":"https://h/"##,
            r##"x","digest":{"sha256":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}}],"inv"##,
            r##"ocation":{"configSource":{"entryPoint":"Dockerfile"},"parameters":{"frontend":"dockerfile.v0","a"##,
            r##"rgs":{"build-arg:A":"1 & <2>","label:L":"x","target":"t"},"secrets":[{"id":"o","optional":true},"##,
            r##"{"id":"s"}],"ssh":[{"id":"default"}],"locals":[{"name":"context"},{"name":"dockerfile"}]},"envir"##,
            r##"onment":{"platform":"linux/amd64"}},"buildConfig":{"llbDefinition":[{"id":"step0","op":{"Op":{"s"##,
            r##"ource":{"identifier":"local://context"}}}}]},"metadata":{"buildStartedOn":"2023-11-14T22:13:20Z""##,
            r##","buildFinishedOn":"2023-11-14T22:13:21.000000005Z","completeness":{"parameters":true,"environme"##,
            r##"nt":true,"materials":false},"reproducible":false,"https://mobyproject.org/buildkit@v1#metadata":"##,
            r##"{"source":{"locations":{},"infos":[{"filename":"Dockerfile","language":"Dockerfile"}]}}}}}"##,
        );
        assert_eq!(String::from_utf8(got).unwrap(), want.replace("\"platform\":\"linux/amd64\"", &host));
        p.mode = Mode::Min;
        let got = statement(&p, &predicate(&p, &info).unwrap(), vec![]);
        let want = concat!(
            r##"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","##,
            r##""subject":[],"predicate":{"builder":{"id":"https://ci/1"},"buildType":"https://mobyproject.org/b"##,
            r##"uildkit@v1","materials":[{"uri":"pkg:docker/alpine@3?platform=linux%2Famd64","digest":{"sha256":"##,
            r##""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},{"uri":"https://g/r.git","d"##,
            r##"igest":{"sha1":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},{"uri":"https://h/x","digest":{"sha2"##,
            r##"56":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}}],"invocation":{"configS"##,
            r##"ource":{"entryPoint":"Dockerfile"},"parameters":{"frontend":"dockerfile.v0","args":{"target":"t""##,
            r##"},"locals":[{"name":"context"},{"name":"dockerfile"}]},"environment":{"platform":"linux/amd64"}}"##,
            r##","metadata":{"buildStartedOn":"2023-11-14T22:13:20Z","buildFinishedOn":"2023-11-14T22:13:21.0000"##,
            r##"00005Z","completeness":{"parameters":false,"environment":true,"materials":false},"reproducible":"##,
            r##"false,"https://mobyproject.org/buildkit@v1#metadata":{}}}}"##,
        );
        assert_eq!(String::from_utf8(got).unwrap(), want.replace("\"platform\":\"linux/amd64\"", &host));
    }

    /// SLSA v1 (the default) as BuildKit HEAD writes it: Statement v1, Go's field order
    /// (buildType, resolvedDependencies, externalParameters, internalParameters; builder then
    /// metadata), internalParameters' keys sorted all the way down (its MarshalJSON goes
    /// through a map), BuildKit's `buildkit_*` metadata names, the optional ones left out.
    #[test]
    fn v1_statements_are_buildkits() {
        let host = format!("\"builderPlatform\":\"{}\"", normalized(&Platform::host()));
        let d = format!("sha256:{}", "d".repeat(64));
        let p = resolve(&flags(Some("mode=max,builder-id=https://ci/1"), None, &[]), &[]).unwrap().provenance.unwrap();
        assert_eq!(p.version, Slsa::V1, "v1 unless version= says");
        let mut info = full_info();
        info.invocation_id = Some("i0".into());
        // keys in any order: sorted in internalParameters
        info.build_config =
            Some(serde_json::json!({"llbDefinition": [{"id": "step1", "op": {"platform": {"OS": "linux"},
            "Op": {"exec": {"meta": {"args": ["sh"], "env": [], "cwd": "/", "user": ""}}}}, "inputs": ["step0:0"]}]}));
        let got = statement(&p, &predicate(&p, &info).unwrap(), vec![Subject::new("pkg:docker/app@1".into(), &d)]);
        let want = concat!(
            r##"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","##,
            r##""subject":[{"name":"pkg:docker/app@1","digest":{"sha256":"dddddddddddddddddddddddddddddddddd"##,
            r##"dddddddddddddddddddddddddddddd"}}],"predicate":{"buildDefinition":{"buildType":"https://gith"##,
            r##"ub.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md","resolvedDependencie"##,
            r##"s":[{"uri":"pkg:docker/alpine@3?platform=linux%2Famd64","digest":{"sha256":"aaaaaaaaaaaaaaaa"##,
            r##"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},{"uri":"https://g/r.git","digest":{"sha1"##,
            r##"":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},{"uri":"https://h/x","digest":{"sha256":"cccc"##,
            r##"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}}],"externalParameters":{"conf"##,
            r##"igSource":{"path":"Dockerfile"},"request":{"frontend":"dockerfile.v0","args":{"build-arg:A":"##,
            r##""1 & <2>","label:L":"x","target":"t"},"secrets":[{"id":"o","optional":true},{"id":"s"}],"ssh"##,
            r##"":[{"id":"default"}],"locals":[{"name":"context"},{"name":"dockerfile"}]}},"internalParamete"##,
            r##"rs":{"buildConfig":{"llbDefinition":[{"id":"step1","inputs":["step0:0"],"op":{"Op":{"exec":{"##,
            r##""meta":{"args":["sh"],"cwd":"/","env":[],"user":""}}},"platform":{"OS":"linux"}}}]},"builder"##,
            r##"Platform":"linux/amd64"}},"runDetails":{"builder":{"id":"https://ci/1"},"metadata":{"invocat"##,
            r##"ionId":"i0","startedOn":"2023-11-14T22:13:20Z","finishedOn":"2023-11-14T22:13:21.000000005Z""##,
            r##","buildkit_metadata":{"source":{"locations":{},"infos":[{"filename":"Dockerfile","language":"##,
            r##""Dockerfile"}]}},"buildkit_completeness":{"request":true,"resolvedDependencies":false}}}}}"##,
        );
        assert_eq!(String::from_utf8(got).unwrap(), want.replace("\"builderPlatform\":\"linux/amd64\"", &host));
        // min, reproducible=true, a git context (its commit in configSource), no local source
        // and no network (hermetic), no times (so no invocation ID either)
        let p =
            resolve(&flags(Some("mode=min,reproducible=true,version=v1"), None, &[]), &[]).unwrap().provenance.unwrap();
        let info = BuildInfo {
            locals: Vec::new(),
            context_uri: Some("https://g/r.git".into()),
            secrets: Vec::new(),
            times: None,
            // buildx's vcs attributes: kept by min too
            vcs: BTreeMap::from([("source".into(), "https://g/r.git".into()), ("revision".into(), "b".repeat(40))]),
            ..full_info()
        };
        let got = statement(&p, &predicate(&p, &info).unwrap(), vec![]);
        let want = concat!(
            r##"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","##,
            r##""subject":[],"predicate":{"buildDefinition":{"buildType":"https://github.com/moby/buildkit/b"##,
            r##"lob/master/docs/attestations/slsa-definitions.md","resolvedDependencies":[{"uri":"pkg:docker"##,
            r##"/alpine@3?platform=linux%2Famd64","digest":{"sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"##,
            r##"aaaaaaaaaaaaaaaaaaaaaaaaaa"}},{"uri":"https://g/r.git","digest":{"sha1":"bbbbbbbbbbbbbbbbbbb"##,
            r##"bbbbbbbbbbbbbbbbbbbbb"}},{"uri":"https://h/x","digest":{"sha256":"cccccccccccccccccccccccccc"##,
            r##"cccccccccccccccccccccccccccccccccccccc"}}],"externalParameters":{"configSource":{"uri":"http"##,
            r##"s://g/r.git","digest":{"sha1":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},"path":"Dockerfile"##,
            r##""},"request":{"frontend":"dockerfile.v0","args":{"target":"t"}}},"internalParameters":{"buil"##,
            r##"derPlatform":"linux/amd64"}},"runDetails":{"builder":{"id":""},"metadata":{"buildkit_metadat"##,
            r##"a":{"vcs":{"revision":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","source":"https://g/r.git"}},"##,
            r##""buildkit_hermetic":true,"buildkit_completeness":{"request":false,"resolvedDependencie"##,
            r##"s":true},"buildkit_reproducible":true}}}}"##,
        );
        assert_eq!(String::from_utf8(got).unwrap(), want.replace("\"builderPlatform\":\"linux/amd64\"", &host));
        // the local output's file: the same statement, indented
        let pretty: serde_json::Value =
            serde_json::from_slice(&statement_pretty(&p, &predicate(&p, &info).unwrap(), vec![])).unwrap();
        assert_eq!(pretty["_type"], STATEMENT_V1);
        assert_eq!(pretty["predicate"]["runDetails"]["metadata"]["buildkit_reproducible"], true);
    }

    /// BuildKit's addLayers: `stepN:0` -> [chain]; a step's chain is the image's layers below
    /// its result, counted by the history's non-empty entries; image sources keep their own.
    #[test]
    fn layer_chains_follow_the_history() {
        let d = |c: char| Descriptor {
            media_type: image::MT_LAYER_GZIP.into(),
            digest: format!("sha256:{}", c.to_string().repeat(64)),
            size: 1,
            annotations: BTreeMap::new(),
            platform: None,
        };
        let h = |empty: bool| image::History {
            created: String::new(),
            created_by: String::new(),
            comment: String::new(),
            empty_layer: empty,
        };
        let chains = LayerChains {
            // base (1 entry), ENV (empty), RUN, WORKDIR that made nothing, COPY
            final_chain: vec![("step1".into(), 1), ("step2".into(), 3), ("step3".into(), 4), ("step4".into(), 5)],
            images: vec![("step1".into(), vec![d('a')]), ("step5".into(), vec![])],
        };
        let layers = [d('a'), d('b'), d('c')];
        let history = [h(false), h(true), h(false), h(true), h(false)];
        let m = chains.layers(Some((&layers, &history)));
        assert_eq!(
            m,
            BTreeMap::from([
                ("step1:0".to_string(), vec![vec![d('a')]]),
                ("step2:0".into(), vec![layers[..2].to_vec()]),
                ("step3:0".into(), vec![layers[..2].to_vec()]),
                ("step4:0".into(), vec![layers.to_vec()]),
            ])
        );
        // a file output: the image sources only; a history that does not match the layers: the
        // steps' chains are unknown
        assert_eq!(chains.layers(None).keys().collect::<Vec<_>>(), ["step1:0"]);
        assert_eq!(chains.layers(Some((&layers, &history[..2]))).keys().collect::<Vec<_>>(), ["step1:0"]);
    }

    /// BuildKitMetadata's fields in Go's order (vcs, source, layers, sysUsage), whenever each
    /// is set, in both versions.
    #[test]
    fn buildkit_metadata_keeps_gos_field_order() {
        let p = resolve(&flags(Some("mode=max"), None, &[]), &[]).unwrap().provenance.unwrap();
        let info = BuildInfo { vcs: BTreeMap::from([("revision".into(), "r".into())]), ..full_info() };
        for version in [Slsa::V1, Slsa::V02] {
            let p = Provenance { version, ..p.clone() };
            let mut pred = predicate(&p, &info).unwrap();
            set_sys_usage(&mut pred, &[serde_json::json!({"timestamp": "t"})]);
            set_buildkit_metadata(&mut pred, "layers", serde_json::json!({}));
            let md = pred
                .pointer("/runDetails/metadata/buildkit_metadata")
                .or_else(|| pred.pointer("/metadata/https:~1~1mobyproject.org~1buildkit@v1#metadata"))
                .unwrap();
            let keys: Vec<&String> = md.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["vcs", "source", "layers", "sysUsage"], "{version:?}");
        }
    }

    #[test]
    fn invocation_ids_are_buildkits_shape() {
        let a = invocation_id().unwrap();
        assert_eq!(a.len(), 25, "{a}");
        assert!(a.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()), "{a}");
        assert_ne!(a, invocation_id().unwrap());
    }
}
