//! Build attestations as BuildKit writes them (docs/attestations/attestation-storage.md,
//! slsa-provenance.md), checked from outside: `--provenance` turns an image into an index
//! whose attestation manifest (platform unknown/unknown, `vnd.docker.reference.*`
//! annotations) holds an in-toto statement about the image manifest with a SLSA v1 predicate
//! (Statement v1, BuildKit's default) or v0.2 (`version=v0.2`, Statement v0.1); in an OCI archive, in the store, in a loopback registry (skopeo reads it, a pull
//! still picks the real platform), one per platform of a multi-platform build, as a file of a
//! local output; equal inputs give equal digests; bad values are refused naming them. The
//! Dockerfiles have no RUN, so no runtime or binfmt_misc handler is needed.

use integration::registry::{self, Registry};
use integration::slipway::{tar_files, Run, Slipway};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

const BASE_DF: &str = "FROM scratch\nCOPY base.txt /base.txt\n";
const DF: &str = "FROM base:1\nARG FOO\nCOPY app.txt /app.txt\n";
const MULTI_DF: &str = "FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch.txt\n";

/// This machine's GOARCH.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Go's standard base64, as encoding/json writes a []byte.
fn base64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

struct T {
    s: Slipway,
    ctx: PathBuf,
}

impl T {
    /// A store with `base:1` built, and the context of an image FROM it.
    fn new() -> T {
        let s = Slipway::new();
        let base = s.context("base", &[("Dockerfile", BASE_DF), ("base.txt", "base\n")]);
        s.run(&["build", "-t", "base:1", &base.to_string_lossy()]).ok();
        let ctx = s.context("app", &[("Dockerfile", DF), ("app.txt", "app\n")]);
        T { s, ctx }
    }
    fn build(&self, args: &[&str]) -> Run {
        let mut a = vec!["build", "--progress", "plain"];
        a.extend_from_slice(args);
        let c = self.ctx.to_string_lossy().into_owned();
        a.push(&c);
        self.s.run(&a)
    }
    fn out(&self, name: &str) -> PathBuf {
        self.s.dir.path().join(name)
    }
    /// The store's descriptor of `name`.
    fn named(&self, name: &str) -> Value {
        let idx: Value = serde_json::from_slice(&fs::read(self.s.root().join("index.json")).unwrap()).unwrap();
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in the store: {idx}"))
    }
    fn store_blob(&self, digest: &str) -> Vec<u8> {
        fs::read(self.s.root().join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap()
    }
}

/// An OCI archive (or layout) read: index.json and the blobs.
struct Archive {
    files: BTreeMap<String, Vec<u8>>,
}

impl Archive {
    fn read(p: &Path) -> Archive {
        Archive { files: tar_files(p) }
    }
    fn blob(&self, digest: &str) -> &[u8] {
        let p = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        self.files.get(&p).unwrap_or_else(|| panic!("{p} is not in the archive"))
    }
    fn json(&self, digest: &str) -> Value {
        let b = self.blob(digest);
        assert_eq!(sha256(b), digest, "blob {digest} does not hash to its name");
        serde_json::from_slice(b).unwrap()
    }
    fn top(&self) -> Value {
        let idx: Value = serde_json::from_slice(&self.files["index.json"]).unwrap();
        idx["manifests"][0].clone()
    }
}

/// The SLSA version a test asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Slsa {
    V1,
    V02,
}

/// Checks an index as attestation-storage.md says: the images first, then one attestation
/// manifest per image about it, its statement of version `v`; returns each (image entry,
/// statement).
fn check_index(blob: &dyn Fn(&str) -> Value, index: &Value, images: usize, v: Slsa) -> Vec<(Value, Value)> {
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json", "{index}");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2 * images, "{index}");
    let (statement, predicate) = match v {
        Slsa::V1 => ("https://in-toto.io/Statement/v1", "https://slsa.dev/provenance/v1"),
        Slsa::V02 => ("https://in-toto.io/Statement/v0.1", "https://slsa.dev/provenance/v0.2"),
    };
    let mut out = Vec::new();
    for (i, img) in entries[..images].iter().enumerate() {
        assert_ne!(img["platform"]["os"], "unknown", "{index}");
        let att = &entries[images + i];
        assert_eq!(att["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(att["platform"], serde_json::json!({"architecture": "unknown", "os": "unknown"}), "{att}");
        assert_eq!(att["annotations"]["vnd.docker.reference.digest"], img["digest"], "{att}");
        assert_eq!(att["annotations"]["vnd.docker.reference.type"], "attestation-manifest", "{att}");
        let m = blob(att["digest"].as_str().unwrap());
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{m}");
        // BuildKit HEAD's default (compatibility version 31): an OCI artifact about the image
        assert_eq!(m["artifactType"], "application/vnd.docker.attestation.manifest.v1+json", "{m}");
        assert_eq!(m["subject"]["digest"], img["digest"], "{m}");
        assert_eq!(m["subject"]["size"], img["size"], "{m}");
        assert_eq!(m["subject"]["mediaType"], img["mediaType"], "{m}");
        assert_eq!(
            m["config"],
            serde_json::json!({"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2, "data": "e30="}),
            "{m}"
        );
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{m}");
        assert_eq!(layers[0]["mediaType"], "application/vnd.in-toto+json");
        assert_eq!(layers[0]["annotations"]["in-toto.io/predicate-type"], predicate);
        let st = blob(layers[0]["digest"].as_str().unwrap());
        assert_eq!(st["_type"], statement, "{st}");
        assert_eq!(st["predicateType"], predicate);
        let p = &st["predicate"];
        let platform = format!("linux/{}", arch());
        match v {
            Slsa::V1 => {
                let def = &p["buildDefinition"];
                assert_eq!(
                    def["buildType"],
                    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
                    "{p}"
                );
                assert_eq!(def["externalParameters"]["configSource"]["path"], "Dockerfile", "{p}");
                assert_eq!(def["externalParameters"]["request"]["frontend"], "dockerfile.v0", "{p}");
                assert_eq!(def["internalParameters"]["builderPlatform"], platform, "{p}");
                assert!(p.get("invocation").is_none() && p.get("materials").is_none(), "{p}");
                // a local context: the dependencies are incomplete; no times, no invocation ID
                // (reproducible)
                let md = &p["runDetails"]["metadata"];
                assert_eq!(md["buildkit_completeness"]["resolvedDependencies"], false, "{p}");
                assert!(md.get("startedOn").is_none() && md.get("invocationId").is_none(), "{p}");
            }
            Slsa::V02 => {
                assert_eq!(p["buildType"], "https://mobyproject.org/buildkit@v1", "{p}");
                assert_eq!(p["invocation"]["configSource"]["entryPoint"], "Dockerfile", "{p}");
                assert_eq!(p["invocation"]["parameters"]["frontend"], "dockerfile.v0", "{p}");
                assert_eq!(p["invocation"]["environment"]["platform"], platform, "{p}");
                assert_eq!(p["metadata"]["completeness"]["materials"], false, "{p}");
                assert!(p["metadata"].get("buildStartedOn").is_none(), "{p}");
            }
        }
        out.push((img.clone(), st));
    }
    out
}

#[test]
fn provenance_in_an_oci_archive_is_an_attestation_manifest_about_the_image() {
    let t = T::new();
    let base = t.named("base:1")["digest"].as_str().unwrap().to_string();
    // off by default: the archive's top is the image manifest
    let plain = t.out("plain.tar");
    t.build(&["-o", &format!("type=oci,dest={},name=app:1", plain.display())]).ok();
    let a = Archive::read(&plain);
    assert_eq!(a.top()["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{}", a.top());

    // SLSA v1, BuildKit's default
    let min = t.out("min.tar");
    let dest = format!("type=oci,dest={},name=app:1", min.display());
    t.build(&["--provenance=mode=min", "--build-arg", "FOO=secret-ish", "-o", &dest]).ok();
    let a = Archive::read(&min);
    let top = a.top();
    let index = a.json(top["digest"].as_str().unwrap());
    let checked = check_index(&|d| a.json(d), &index, 1, Slsa::V1);
    let (img, st) = &checked[0];
    assert_eq!(img["platform"]["architecture"], arch());
    // the subject: the image manifest, named as BuildKit's purl of the output's name
    let hex = img["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let subject = serde_json::json!([{"name": format!("pkg:docker/app@1?platform=linux%2F{}", arch()), "digest": {"sha256": hex}}]);
    assert_eq!(st["subject"], subject, "{st}");
    let p = &st["predicate"];
    // the base image: its purl and the digest its name stands for in the store
    let base_dep = serde_json::json!([{
        "uri": format!("pkg:docker/base@1?platform=linux%2F{}", arch()),
        "digest": {"sha256": base.trim_start_matches("sha256:")}
    }]);
    assert_eq!(p["buildDefinition"]["resolvedDependencies"], base_dep, "{p}");
    // min: no build args, so the request is incomplete; the context and the Dockerfile are
    // local sources, named (no digest pins them), so the dependencies are incomplete too
    let request = &p["buildDefinition"]["externalParameters"]["request"];
    assert!(request.get("args").is_none(), "{p}");
    assert_eq!(p["runDetails"]["metadata"]["buildkit_completeness"]["request"], false, "{p}");
    assert_eq!(request["locals"], serde_json::json!([{"name": "context"}, {"name": "dockerfile"}]));
    assert!(p["buildDefinition"]["internalParameters"].get("buildConfig").is_none(), "{p}");
    assert!(p["runDetails"]["metadata"]["buildkit_metadata"].get("source").is_none(), "{p}");

    // the same input gives the same index, byte for byte
    let again = t.out("again.tar");
    t.build(&[
        "--provenance=mode=min",
        "--build-arg",
        "FOO=secret-ish",
        "-o",
        &format!("type=oci,dest={},name=app:1", again.display()),
    ])
    .ok();
    assert_eq!(Archive::read(&again).top()["digest"], top["digest"]);

    // max (what --provenance=true means, as in BuildKit): the build args are there, the steps
    // (the base image's source op pinned by digest) and the Dockerfile; reproducible too
    let mut max_top = Vec::new();
    for n in ["max.tar", "max2.tar"] {
        let max = t.out(n);
        t.build(&[
            "--provenance=true",
            "--build-arg",
            "FOO=secret-ish",
            "-o",
            &format!("type=oci,dest={},name=app:1", max.display()),
        ])
        .ok();
        let a = Archive::read(&max);
        max_top.push(a.top()["digest"].clone());
        let index = a.json(a.top()["digest"].as_str().unwrap());
        let (_, st) = &check_index(&|d| a.json(d), &index, 1, Slsa::V1)[0];
        let p = &st["predicate"];
        let def = &p["buildDefinition"];
        assert_eq!(def["externalParameters"]["request"]["args"]["build-arg:FOO"], "secret-ish", "{p}");
        assert_eq!(def["resolvedDependencies"], base_dep, "{p}");
        assert_eq!(p["runDetails"]["metadata"]["buildkit_completeness"]["request"], true, "{p}");
        let steps = def["internalParameters"]["buildConfig"]["llbDefinition"].as_array().unwrap();
        let src = format!("docker-image://docker.io/library/base:1@{base}");
        assert!(steps.iter().any(|s| s["op"]["Op"]["source"]["identifier"] == src.as_str()), "{src} not in {p}");
        let info = &p["runDetails"]["metadata"]["buildkit_metadata"]["source"]["infos"][0];
        assert_eq!(info["filename"], "Dockerfile", "{p}");
        assert_eq!(info["data"], base64(DF.as_bytes()), "{p}");
    }
    assert_eq!(max_top[0], max_top[1], "mode=max is reproducible too");

    // version=v0.2: SLSA v0.2 in a Statement v0.1, as before v1
    let old = t.out("v02.tar");
    t.build(&[
        "--provenance=mode=min,version=v0.2",
        "--build-arg",
        "FOO=secret-ish",
        "-o",
        &format!("type=oci,dest={},name=app:1", old.display()),
    ])
    .ok();
    let a = Archive::read(&old);
    let index = a.json(a.top()["digest"].as_str().unwrap());
    let (_, st) = &check_index(&|d| a.json(d), &index, 1, Slsa::V02)[0];
    assert_eq!(st["subject"], subject, "{st}");
    let p = &st["predicate"];
    assert_eq!(p["materials"], base_dep, "{p}");
    assert!(p["invocation"]["parameters"].get("args").is_none(), "{p}");
    assert_eq!(p["metadata"]["completeness"]["parameters"], false, "{p}");
    assert_eq!(
        p["invocation"]["parameters"]["locals"],
        serde_json::json!([{"name": "context"}, {"name": "dockerfile"}])
    );
    assert!(p.get("buildConfig").is_none(), "{p}");

    // --timestamp now gives up reproducibility: then the times and an invocation ID are there
    let now = t.out("now.tar");
    t.build(&[
        "--timestamp",
        "now",
        "--provenance=mode=min",
        "-o",
        &format!("type=oci,dest={},name=app:1", now.display()),
    ])
    .ok();
    let a = Archive::read(&now);
    let index = a.json(a.top()["digest"].as_str().unwrap());
    let m = a.json(index["manifests"][1]["digest"].as_str().unwrap());
    let st = a.json(m["layers"][0]["digest"].as_str().unwrap());
    let md = &st["predicate"]["runDetails"]["metadata"];
    assert_eq!(md["invocationId"].as_str().map(str::len), Some(25), "{md}");
    let (started, finished) = (md["startedOn"].as_str().unwrap(), md["finishedOn"].as_str().unwrap());
    assert!(started.ends_with('Z') && finished.ends_with('Z') && started <= finished, "{md}");

    // oci-artifact=false: the attestation manifest of BuildKit before 0.31 (an image manifest
    // whose config is an unknown/unknown image config listing the statements as diff IDs, no
    // artifactType, no subject); oci-artifact=true is the default's bytes
    let legacy = t.out("legacy.tar");
    t.build(&[
        "--provenance=mode=min",
        "--build-arg",
        "FOO=secret-ish",
        "-o",
        &format!("type=oci,dest={},name=app:1,oci-artifact=false", legacy.display()),
    ])
    .ok();
    let a = Archive::read(&legacy);
    let index = a.json(a.top()["digest"].as_str().unwrap());
    assert_eq!(index["manifests"][0], Archive::read(&min).json(top["digest"].as_str().unwrap())["manifests"][0]);
    let m = a.json(index["manifests"][1]["digest"].as_str().unwrap());
    assert!(m.get("artifactType").is_none() && m.get("subject").is_none(), "{m}");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json", "{m}");
    let c = a.json(m["config"]["digest"].as_str().unwrap());
    assert_eq!((c["os"].as_str(), c["architecture"].as_str()), (Some("unknown"), Some("unknown")), "{c}");
    assert_eq!(c["rootfs"]["diff_ids"], serde_json::json!([m["layers"][0]["digest"]]), "{c}");
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.in-toto+json", "{m}");
    let art = t.out("artifact.tar");
    t.build(&[
        "--provenance=mode=min",
        "--build-arg",
        "FOO=secret-ish",
        "-o",
        &format!("type=oci,dest={},name=app:1,oci-artifact=true", art.display()),
    ])
    .ok();
    assert_eq!(Archive::read(&art).top()["digest"], top["digest"], "oci-artifact=true is the default");

    // --attest and the frontend's build arg say the same as --provenance
    for args in
        [vec!["--attest", "type=provenance,mode=min"], vec!["--build-arg", "BUILDKIT_ATTEST_PROVENANCE=mode=min"]]
    {
        let o = t.out("via.tar");
        let mut a = args.clone();
        let d = format!("type=oci,dest={},name=app:1", o.display());
        a.extend(["--build-arg", "FOO=secret-ish", "-o", &d]);
        let r = t.build(&a).ok();
        assert!(!r.stderr.contains("not consumed"), "{}", r.stderr);
        let got = Archive::read(&o);
        let index = got.json(got.top()["digest"].as_str().unwrap());
        if args[0] == "--attest" {
            assert_eq!(got.top()["digest"], top["digest"], "{args:?}");
        } else {
            // the build arg is one of the frontend's args (dropped by min, but present in max)
            check_index(&|d| got.json(d), &index, 1, Slsa::V1);
        }
    }
}

#[test]
fn the_store_the_docker_archive_and_a_local_output_carry_the_provenance() {
    let t = T::new();
    t.build(&["--provenance=mode=min", "-t", "app:2"]).ok();
    let top = t.named("app:2");
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json", "{top}");
    let index: Value = serde_json::from_slice(&t.store_blob(top["digest"].as_str().unwrap())).unwrap();
    let blob = |d: &str| -> Value { serde_json::from_slice(&t.store_blob(d)).unwrap() };
    let (img, st) = &check_index(&blob, &index, 1, Slsa::V1)[0];
    assert_eq!(st["subject"][0]["name"], format!("pkg:docker/app@2?platform=linux%2F{}", arch()));
    // the store's commands see the image, not the attestation
    let o = t.s.run(&["inspect", "app:2"]).ok();
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["Architecture"], arch(), "{v}");
    let unpacked = t.out("unpacked");
    t.s.run(&["unpack", "app:2", &unpacked.to_string_lossy()]).ok();
    assert_eq!(fs::read_to_string(unpacked.join("rootfs/app.txt")).unwrap(), "app\n");
    // prune keeps every blob the index names
    t.s.run(&["prune"]).ok();
    let att = index["manifests"][1]["digest"].as_str().unwrap();
    let m = blob(att);
    for d in [att, m["config"]["digest"].as_str().unwrap(), m["layers"][0]["digest"].as_str().unwrap()] {
        assert!(t.s.root().join("blobs/sha256").join(d.trim_start_matches("sha256:")).is_file(), "{d} pruned");
    }
    let _ = img;

    // a docker-archive: manifest.json loads the image, index.json names the index
    let dk = t.out("docker.tar");
    t.build(&["--provenance=mode=min", "-o", &format!("type=docker,dest={},name=app:3", dk.display())]).ok();
    let a = Archive::read(&dk);
    let manifest: Value = serde_json::from_slice(&a.files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "app:3", "{manifest}");
    for l in manifest[0]["Layers"].as_array().unwrap() {
        assert!(a.files.contains_key(l.as_str().unwrap()), "{l}");
    }
    let index = a.json(a.top()["digest"].as_str().unwrap());
    check_index(&|d| a.json(d), &index, 1, Slsa::V1);

    // a local output: provenance.json beside the files, every file a subject
    let dir = t.out("local");
    t.build(&["--provenance=mode=min", "-o", &format!("type=local,dest={}", dir.display())]).ok();
    let st: Value = serde_json::from_slice(&fs::read(dir.join("provenance.json")).unwrap()).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    let subjects: Vec<&str> = st["subject"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["app.txt", "base.txt"], "{st}");
    assert_eq!(st["subject"][0]["digest"]["sha256"], sha256(b"app\n").trim_start_matches("sha256:"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(dir.join("provenance.json")).unwrap().permissions().mode() & 0o777, 0o600);
    // attestation-prefix: the file's name is prefixed, as BuildKit's local exporter does
    let dir3 = t.out("local3");
    t.build(&["--provenance=mode=min", "-o", &format!("type=local,dest={},attestation-prefix=att-", dir3.display())])
        .ok();
    assert!(dir3.join("att-provenance.json").is_file() && !dir3.join("provenance.json").exists());
    // inline-only: only image outputs carry it
    let dir2 = t.out("local2");
    t.build(&["--provenance=mode=min,inline-only=true", "-o", &format!("type=local,dest={}", dir2.display())]).ok();
    assert!(!dir2.join("provenance.json").exists());
}

#[test]
fn a_multi_platform_build_has_one_attestation_per_platform() {
    let s = Slipway::new();
    let ctx = s.context(
        "multi",
        &[("Dockerfile", MULTI_DF), ("amd64.txt", "built for amd64\n"), ("arm64.txt", "built for arm64\n")],
    );
    let out = s.dir.path().join("multi.tar");
    s.run(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=mode=min",
        "-o",
        &format!("type=oci,dest={},name=multi:1", out.display()),
        &ctx.to_string_lossy(),
    ])
    .ok();
    let a = Archive::read(&out);
    let index = a.json(a.top()["digest"].as_str().unwrap());
    let checked = check_index(&|d| a.json(d), &index, 2, Slsa::V1);
    for ((img, st), arch) in checked.iter().zip(["amd64", "arm64"]) {
        assert_eq!(img["platform"]["architecture"], arch);
        assert_eq!(st["subject"][0]["name"], format!("pkg:docker/multi@1?platform=linux%2F{arch}"), "{st}");
        assert_eq!(
            st["subject"][0]["digest"]["sha256"],
            img["digest"].as_str().unwrap().trim_start_matches("sha256:"),
            "{st}"
        );
        // FROM scratch: nothing to list
        assert!(st["predicate"]["buildDefinition"].get("resolvedDependencies").is_none(), "{st}");
    }
    // in the store: prune keeps every platform's image and attestation the index names
    s.run(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=mode=min",
        "-t",
        "multi:2",
        &ctx.to_string_lossy(),
    ])
    .ok();
    s.run(&["prune"]).ok();
    let idx: Value = serde_json::from_slice(&fs::read(s.root().join("index.json")).unwrap()).unwrap();
    let top = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "multi:2")
        .unwrap();
    let blob = |d: &str| -> Value {
        let p = s.root().join("blobs/sha256").join(d.trim_start_matches("sha256:"));
        serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{d} after prune: {e}"))).unwrap()
    };
    let index = blob(top["digest"].as_str().unwrap());
    for e in index["manifests"].as_array().unwrap() {
        let m = blob(e["digest"].as_str().unwrap());
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
            let p = s.root().join("blobs/sha256").join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            assert!(p.is_file(), "{} of {} pruned", d["digest"], e["digest"]);
        }
    }
    // a local output of both platforms: one statement per platform directory
    let dir = s.dir.path().join("split");
    s.run(&[
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "--provenance=mode=min",
        "-o",
        &format!("type=local,dest={}", dir.display()),
        &ctx.to_string_lossy(),
    ])
    .ok();
    for arch in ["amd64", "arm64"] {
        let st: Value =
            serde_json::from_slice(&fs::read(dir.join(format!("linux_{arch}/provenance.json"))).unwrap()).unwrap();
        assert_eq!(st["subject"][0]["name"], "arch.txt", "{st}");
    }
}

#[test]
fn bad_attestation_values_are_refused_naming_them() {
    let t = T::new();
    for (args, want) in [
        (vec!["--provenance=mode=foo"], "invalid mode \"foo\""),
        (vec!["--provenance=colour=red"], "unknown provenance attribute \"colour\""),
        (vec!["--provenance=version=v3"], "invalid provenance SLSA version: v3"),
        (vec!["--attest", "type=provenance,capture-usage=sometimes"], "capture-usage flag \"sometimes\""),
        (vec!["--attest", "mode=max"], "attestation type not specified"),
        (vec!["--attest", "type=foo"], "unknown attestation type \"foo\""),
        (vec!["--sbom=generator="], "sbom scanner cannot be empty"),
        (vec!["--attest", "type=sbom,generator=bad/Name"], "failed to parse sbom scanner bad/Name"),
        (vec!["--provenance=true", "-o", "type=oci,dest=x.tar,oci-mediatypes=false"], "oci-mediatypes=false"),
    ] {
        let o = t.build(&args);
        assert_ne!(o.code, 0, "{args:?} was taken");
        assert!(o.stderr.contains(want), "{args:?}: {}", o.stderr);
    }
    // --sbom=false is no SBOM, and no error
    t.build(&["--sbom=false", "-t", "nosbom:1"]).ok();
    assert_eq!(t.named("nosbom:1")["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

#[test]
fn a_pushed_index_keeps_its_attestation_and_a_pull_picks_the_real_platform() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let dest = format!("{}/attest/app:1", r.host);
    t.build(&["--provenance=mode=min", "-t", &dest, "--push"]).ok();
    let top = t.named(&dest)["digest"].as_str().unwrap().to_string();
    // skopeo reads the index by tag, byte for byte the store's
    let o = r.skopeo(&["inspect", "--raw", &format!("docker://{dest}")]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(sha256(o.stdout.as_bytes()), top);
    let index: Value = serde_json::from_str(&o.stdout).unwrap();
    let raw = |d: &str| -> Value {
        let o = r.skopeo(&["inspect", "--raw", &format!("docker://{}/attest/app@{d}", r.host)]);
        if o.code == 0 {
            return serde_json::from_str(&o.stdout).unwrap();
        }
        // a config or a statement: a blob of the registry
        serde_json::from_slice(&fs::read(r.blob_data(d)).unwrap()).unwrap()
    };
    let (img, st) = &check_index(&raw, &index, 1, Slsa::V1)[0];
    assert_eq!(
        st["subject"][0]["name"],
        format!("pkg:docker/{}/attest/app@1?platform=linux%2F{}", r.host.replace(':', "%3A"), arch())
    );
    // a client picking this machine's platform gets the image
    let o = r.skopeo(&["inspect", "--no-tags", &format!("docker://{dest}")]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["Architecture"], arch(), "{v}");
    // slipway pulls it back into a fresh store, and builds FROM it there
    let fresh = Slipway::new();
    fresh.run(&["pull", &dest]).ok();
    let unpacked = fresh.dir.path().join("u");
    fresh.run(&["unpack", &dest, &unpacked.to_string_lossy()]).ok();
    assert_eq!(fs::read_to_string(unpacked.join("rootfs/app.txt")).unwrap(), "app\n");
    let ctx = fresh.context("from", &[("Dockerfile", &format!("FROM {dest}\nCOPY x /x\n")), ("x", "x\n")]);
    let o = fresh.run(&["build", "-t", "from:1", &ctx.to_string_lossy()]).ok();
    assert!(!o.stderr.contains("unknown"), "{}", o.stderr);
    let v: Value = serde_json::from_str(&fresh.run(&["inspect", "from:1"]).ok().stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["Architecture"], arch(), "{v}");
    let _ = img;
}

/// `git ARGS` in `dir`, its stdout trimmed; the test fails when git does.
fn git(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .expect("run git");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// buildx's git information of a local context (build/git.go), as BuildKit records it: the
/// `vcs:*` attributes become `buildkit_metadata.vcs` (in min mode too; the request keeps none
/// of them), the remote's credentials redacted; `BUILDX_GIT_CHECK_DIRTY` marks a changed tree,
/// `BUILDX_GIT_LABELS` labels the image, `BUILDX_GIT_INFO=false` leaves the provenance without.
#[test]
fn a_git_context_is_recorded_as_buildx_sends_it() {
    if std::process::Command::new("git").arg("--version").output().is_err() {
        return integration::skip("git is not installed");
    }
    let t = T::new();
    let repo = t.out("repo");
    let app = repo.join("app");
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("Dockerfile"), DF).unwrap();
    fs::write(app.join("app.txt"), "app\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", "."]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "one"]);
    git(&repo, &["remote", "add", "origin", "https://user:token@example.invalid/org/app.git"]);
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let build = |env: &[(&str, &str)], prov: &str, out: &str| -> Value {
        let v = if prov.contains("version=v0.2") { Slsa::V02 } else { Slsa::V1 };
        let dest = t.out(out);
        let mut c = std::process::Command::new(integration::slipway::bin());
        c.arg("--root").arg(t.s.root()).args(["build", "--progress", "plain", prov, "-o"]);
        c.arg(format!("type=oci,dest={},name=app:1", dest.display())).arg(&app);
        for k in ["BUILDX_GIT_INFO", "BUILDX_GIT_LABELS", "BUILDX_GIT_CHECK_DIRTY"] {
            c.env_remove(k);
        }
        c.envs(env.iter().copied());
        let o = c.output().expect("run slipway");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let a = Archive::read(&dest);
        let index = a.json(a.top()["digest"].as_str().unwrap());
        let (img, st) = check_index(&|d| a.json(d), &index, 1, v).remove(0);
        let m = a.json(img["digest"].as_str().unwrap());
        let config = a.json(m["config"]["digest"].as_str().unwrap());
        serde_json::json!({"top": a.top()["digest"], "st": st, "labels": config["config"]["Labels"]})
    };
    let vcs = |dirty: &str| {
        serde_json::json!({
            "localdir:context": "app",
            "localdir:dockerfile": "app",
            "revision": format!("{commit}{dirty}"),
            "source": "https://xxxxx:xxxxx@example.invalid/org/app.git",
        })
    };
    // buildx's default: git info on, no labels, no dirty check; min mode keeps it
    let min = build(&[], "--provenance=mode=min", "min.tar");
    let md = &min["st"]["predicate"]["runDetails"]["metadata"];
    assert_eq!(md["buildkit_metadata"]["vcs"], vcs(""), "{md}");
    let req = &min["st"]["predicate"]["buildDefinition"]["externalParameters"]["request"];
    assert!(req.get("args").is_none(), "no vcs: arg stays in the request: {req}");
    assert!(min["labels"].get("org.opencontainers.image.revision").is_none(), "{}", min["labels"]);
    assert!(!min["st"].to_string().contains("token"), "{}", min["st"]);
    // the same commit gives the same bytes
    assert_eq!(build(&[], "--provenance=mode=min", "min2.tar")["top"], min["top"]);
    // v0.2: the same metadata under its key
    let v02 = build(&[], "--provenance=mode=max,version=v0.2", "v02.tar");
    assert_eq!(v02["st"]["predicate"]["metadata"]["https://mobyproject.org/buildkit@v1#metadata"]["vcs"], vcs(""));

    // a file git does not know (ignored files count too) makes the tree dirty
    fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.invalid", "add", ".gitignore"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "two"]);
    let commit2 = git(&repo, &["rev-parse", "HEAD"]);
    fs::write(repo.join("build.log"), "x\n").unwrap();
    let dirty = build(
        &[("BUILDX_GIT_CHECK_DIRTY", "true"), ("BUILDX_GIT_LABELS", "full")],
        "--provenance=mode=max",
        "dirty.tar",
    );
    let md = &dirty["st"]["predicate"]["runDetails"]["metadata"];
    assert_eq!(md["buildkit_metadata"]["vcs"]["revision"], format!("{commit2}-dirty"), "{md}");
    // the labels buildx sets, in the image and (max) in the request
    let labels = serde_json::json!({
        "com.docker.image.source.entrypoint": "app/Dockerfile",
        "org.opencontainers.image.revision": format!("{commit2}-dirty"),
        "org.opencontainers.image.source": "https://xxxxx:xxxxx@example.invalid/org/app.git",
    });
    assert_eq!(dirty["labels"], labels, "{}", dirty["labels"]);
    let args = &dirty["st"]["predicate"]["buildDefinition"]["externalParameters"]["request"]["args"];
    assert_eq!(args["label:com.docker.image.source.entrypoint"], "app/Dockerfile", "{args}");
    // without the dirty check the revision is the commit's
    fs::remove_file(repo.join("build.log")).unwrap();
    let clean = build(&[("BUILDX_GIT_CHECK_DIRTY", "1")], "--provenance=mode=min", "clean.tar");
    assert_eq!(clean["st"]["predicate"]["runDetails"]["metadata"]["buildkit_metadata"]["vcs"]["revision"], commit2);

    // BUILDX_GIT_INFO=false: nothing recorded; a bad value is refused naming it
    let off = build(&[("BUILDX_GIT_INFO", "false")], "--provenance=mode=min", "off.tar");
    assert!(off["st"]["predicate"]["runDetails"]["metadata"]["buildkit_metadata"].get("vcs").is_none());
    let o = std::process::Command::new(integration::slipway::bin())
        .arg("--root")
        .arg(t.s.root())
        .args(["build", "--provenance=mode=min", "-t", "x:1"])
        .arg(&app)
        .env("BUILDX_GIT_INFO", "maybe")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("BUILDX_GIT_INFO=\"maybe\""), "{o:?}");
}

/// `buildkit_metadata.layers` (mode=max) as BuildKit's provenance capture records it: each
/// buildConfig step whose result has blobs, as `stepN:0` -> [its layer chain]: the base image's
/// source op its layers, each step the image is built on the image's layers up to it (a
/// config-only step is no op, a WORKDIR that made its directory has a layer); a local output
/// makes no blobs, so only the image source has layers there; mode=min has none.
#[test]
fn max_mode_records_each_steps_layer_chain() {
    let t = T::new();
    let df = "FROM base:1\nENV A=1\nWORKDIR /w\nCOPY app.txt /app.txt\n";
    let ctx = t.s.context("layers", &[("Dockerfile", df), ("app.txt", "app\n")]);
    let base = t.named("base:1");
    let base_m: Value = serde_json::from_slice(&t.store_blob(base["digest"].as_str().unwrap())).unwrap();
    let build = |prov: &str, out: &str| -> (Value, Value) {
        let v = if prov.contains("version=v0.2") { Slsa::V02 } else { Slsa::V1 };
        let dest = t.out(out);
        let o = format!("type=oci,dest={},name=app:1", dest.display());
        t.s.run(&["build", "--progress", "plain", prov, "-o", &o, &ctx.to_string_lossy()]).ok();
        let a = Archive::read(&dest);
        let index = a.json(a.top()["digest"].as_str().unwrap());
        let (img, st) = check_index(&|d| a.json(d), &index, 1, v).remove(0);
        (a.json(img["digest"].as_str().unwrap()), st)
    };
    let (m, st) = build("--provenance=mode=max", "max.tar");
    let p = &st["predicate"];
    let steps = p["buildDefinition"]["internalParameters"]["buildConfig"]["llbDefinition"].as_array().unwrap();
    let id_of = |f: &dyn Fn(&Value) -> bool| -> String {
        let s = steps.iter().find(|s| f(&s["op"]["Op"])).unwrap_or_else(|| panic!("no such step in {p}"));
        format!("{}:0", s["id"].as_str().unwrap())
    };
    let src = id_of(&|op| op["source"]["identifier"].as_str().is_some_and(|i| i.starts_with("docker-image://")));
    let mkdir = id_of(&|op| op["file"]["actions"][0]["Action"].get("mkdir").is_some());
    let copy = id_of(&|op| op["file"]["actions"][0]["Action"].get("copy").is_some());
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{m}");
    let want = serde_json::json!({
        src.clone(): [base_m["layers"]],
        mkdir: [&layers[..2]],
        copy: [layers],
    });
    assert_eq!(p["runDetails"]["metadata"]["buildkit_metadata"]["layers"], want, "{p}");
    // v0.2: the same under its metadata key
    let (_, st) = build("--provenance=mode=max,version=v0.2", "v02.tar");
    let md = &st["predicate"]["metadata"]["https://mobyproject.org/buildkit@v1#metadata"];
    assert_eq!(md["layers"][&src], serde_json::json!([base_m["layers"]]), "{md}");
    // min: none
    let (_, st) = build("--provenance=mode=min", "min.tar");
    assert!(st["predicate"]["runDetails"]["metadata"]["buildkit_metadata"].get("layers").is_none(), "{st}");
    // a local output: the image source only
    let dir = t.out("local");
    let o = format!("type=local,dest={}", dir.display());
    t.s.run(&["build", "--progress", "plain", "--provenance=mode=max", "-o", &o, &ctx.to_string_lossy()]).ok();
    let st: Value = serde_json::from_slice(&fs::read(dir.join("provenance.json")).unwrap()).unwrap();
    let got = &st["predicate"]["runDetails"]["metadata"]["buildkit_metadata"]["layers"];
    assert_eq!(got, &serde_json::json!({src: [base_m["layers"]]}), "{st}");
}

/// Sums the first counters of /proc/stat's `cpu` line (user, nice, system) in seconds, and
/// the processes created so far.
fn proc_stat() -> (f64, u64) {
    let t = fs::read_to_string("/proc/stat").unwrap();
    let cpu: f64 =
        t.lines().next().unwrap().split_whitespace().skip(1).take(3).map(|n| n.parse::<f64>().unwrap()).sum();
    let procs = t.lines().find_map(|l| l.strip_prefix("processes ")).unwrap().trim().parse().unwrap();
    (cpu / 100.0, procs)
}

/// `capture-usage=true`: BuildKit's SysSampler samples of the machine over the build in
/// `buildkit_metadata.sysUsage` (min and max): /proc/stat's CPU times and counters,
/// /proc/meminfo, the pressure files; taken after this test read the same counters, with a RUN
/// step that spends CPU and memory in between. BuildKit samples a step's cgroup only on
/// cgroup v2, so on a v1 or hybrid host no step has `resourceUsage`, as in BuildKit.
#[test]
fn capture_usage_records_the_machines_samples() {
    let s = Slipway::new();
    s.base("bb:1");
    let df =
        "FROM bb:1\nRUN head -c 67108864 /dev/zero | md5sum > /sum && dd if=/dev/zero of=/dev/null bs=32M count=4\n";
    let ctx = s.context("usage", &[("Dockerfile", df)]);
    let mem_total: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    let (cpu_before, procs_before) = proc_stat();
    let read = |prov: &str, out: &str| -> Value {
        let dest = s.dir.path().join(out);
        let (rt, o) = (integration::slipway::runtime(), format!("type=oci,dest={},name=u:1", dest.display()));
        s.run(&["build", "--runtime", &rt, "--provenance", prov, "-o", &o, &ctx.to_string_lossy()]).ok();
        let a = Archive::read(&dest);
        let index = a.json(a.top()["digest"].as_str().unwrap());
        check_index(&|d| a.json(d), &index, 1, Slsa::V1).remove(0).1
    };
    let st = read("mode=max,capture-usage=true", "max.tar");
    let p = &st["predicate"];
    let samples =
        p["runDetails"]["metadata"]["buildkit_metadata"]["sysUsage"].as_array().unwrap_or_else(|| panic!("{p}"));
    assert!(!samples.is_empty(), "{p}");
    for smp in samples {
        assert!(smp["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{smp}");
        for k in ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestNice"] {
            assert!(smp["cpuStat"][k].is_number(), "{k}: {smp}");
        }
        assert_eq!(smp["memoryStat"]["total"], mem_total, "{smp}");
        assert!(smp["memoryStat"]["free"].as_u64().is_some_and(|f| f <= mem_total), "{smp}");
    }
    // the last sample is taken after the step ran: the machine's counters moved on from what
    // this test read before the build (the RUN step and the runtime are processes of their own)
    let last = samples.last().unwrap();
    let cpu = ["user", "nice", "system"].iter().map(|k| last["cpuStat"][k].as_f64().unwrap()).sum::<f64>();
    assert!(cpu >= cpu_before, "{cpu} < {cpu_before}: {last}");
    assert!(last["procStat"]["processCreated"].as_u64().unwrap() > procs_before, "{last}");
    assert!(last["procStat"]["contextSwitches"].as_u64().unwrap() > 0, "{last}");
    if std::path::Path::new("/proc/pressure/cpu").exists() {
        assert!(last["cpuPressure"]["some"]["total"].is_u64(), "{last}");
    }
    // the step ran (its output is in the image) and, off cgroup v2, has no resourceUsage
    let steps = p["buildDefinition"]["internalParameters"]["buildConfig"]["llbDefinition"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["op"]["Op"].get("exec").is_some()), "{p}");
    let cgroup2 = fs::read_to_string("/proc/self/mounts").unwrap().lines().any(|l| {
        l.split_whitespace().nth(1) == Some("/sys/fs/cgroup") && l.split_whitespace().nth(2) == Some("cgroup2")
    });
    if !cgroup2 {
        assert!(steps.iter().all(|s| s.get("resourceUsage").is_none()), "{p}");
    }
    // min mode samples too; without capture-usage there is none
    let st = read("mode=min,capture-usage=true", "min.tar");
    assert!(st["predicate"]["runDetails"]["metadata"]["buildkit_metadata"]["sysUsage"].is_array(), "{st}");
    let st = read("mode=max", "plain.tar");
    assert!(st["predicate"]["runDetails"]["metadata"]["buildkit_metadata"].get("sysUsage").is_none(), "{st}");
}
