//! SBOM attestations through BuildKit's SBOM protocol (docs/attestations/sbom-protocol.md),
//! checked from outside with a generator image the test builds (busybox and a shell script, as
//! BuildKit's own tests do in frontend/dockerfile/dockerfile_sbom_test.go): the generator sees
//! the image's rootfs read-only at $BUILDKIT_SCAN_SOURCE and writes an in-toto statement of an
//! SPDX document listing its files into $BUILDKIT_SCAN_DESTINATION; slipway stores it in the
//! image index's attestation manifest (layer annotation in-toto.io/predicate-type, the subject
//! the platform's manifest, the core document's files given their layer), next to a provenance,
//! one per platform; nothing of the generator reaches the image; a no-op rebuild reruns nothing
//! and gives the same digest; a failing generator fails the build naming it, with its exit
//! status and output, and leaves no name, container or mount behind. BuildKit's default
//! generator (docker/buildkit-syft-scanner) needs the internet and is not run here.

use integration::slipway::{tar_files, Run, Slipway};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

/// The generator: for the scanned rootfs and each extra below `$BUILDKIT_SCAN_SOURCE_EXTRAS`
/// (as the protocol asks), lists the regular files, probes whether it can write there, and
/// writes `$(basename DIR).spdx.json`; the core document also says what
/// `$BUILDKIT_SCAN_SOURCE_EXTRAS` was (`extrasEnv`, "unset" when it was), what it held
/// (`extras`) and `$BUILDKIT_SCAN_type` (`type`). `BUILDKIT_SCAN_FAIL` (the `FAIL=` option) makes it fail.
const SCAN_SH: &str = r#"set -e
scan() {
src="$1"
if touch "$src/.probe" 2>/dev/null; then ro=false; else ro=true; fi
files=$(cd "$src" && find . -type f | sed 's|^\.||' | sort | awk '{printf "%s{\"SPDXID\":\"SPDXRef-File-%d\",\"fileName\":\"%s\"}", (NR>1?",":""), NR, $0}')
cat > "$BUILDKIT_SCAN_DESTINATION/$(basename "$src").spdx.json" <<EOF
{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"$src","readOnly":$ro,"mode":"$BUILDKIT_SCAN_MODE",$2"creationInfo":{"creators":["Tool: test-scanner"]},"files":[$files]}}
EOF
}
if [ -n "$BUILDKIT_SCAN_FAIL" ]; then echo "scanner failed on purpose: $BUILDKIT_SCAN_FAIL" >&2; exit 3; fi
extras=""
if [ -n "$BUILDKIT_SCAN_SOURCE_EXTRAS" ] && [ -d "$BUILDKIT_SCAN_SOURCE_EXTRAS" ]; then
  extras=$(ls "$BUILDKIT_SCAN_SOURCE_EXTRAS" | tr '\n' ' ')
  for d in $extras; do scan "$BUILDKIT_SCAN_SOURCE_EXTRAS/$d" ""; done
fi
scan "$BUILDKIT_SCAN_SOURCE" "\"extrasEnv\":\"${BUILDKIT_SCAN_SOURCE_EXTRAS-unset}\",\"extras\":\"$extras\",\"type\":\"${BUILDKIT_SCAN_type-unset}\","
"#;

const APP_DF: &str = "FROM scratch\nARG TARGETARCH\nCOPY a.txt /a.txt\nCOPY $TARGETARCH.txt /dir/arch.txt\n";

/// This machine's GOARCH.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

struct T {
    s: Slipway,
    app: PathBuf,
}

impl T {
    /// A store with the generator `scan:1` (on the busybox base) and an app context.
    fn new() -> T {
        let s = Slipway::new();
        s.base("sw-base");
        let scan = s.context(
            "scan",
            &[
                ("Dockerfile", "FROM sw-base\nCOPY scan.sh /scan.sh\nENTRYPOINT [\"/bin/sh\", \"/scan.sh\"]\n"),
                ("scan.sh", SCAN_SH),
            ],
        );
        s.build(&scan, "scan:1", &[]).ok();
        let app = s.context(
            "app",
            &[("Dockerfile", APP_DF), ("a.txt", "a\n"), ("amd64.txt", "amd64\n"), ("arm64.txt", "arm64\n")],
        );
        T { s, app }
    }
    fn build(&self, args: &[&str]) -> Run {
        let rt = integration::slipway::runtime();
        let mut a = vec!["build", "--progress", "plain", "--runtime", rt.as_str()];
        a.extend_from_slice(args);
        let c = self.app.to_string_lossy().into_owned();
        a.push(&c);
        self.s.run(&a)
    }
    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.s.root().join("index.json")).unwrap()).unwrap()
    }
    /// The store's descriptor of `name`, if any.
    fn named(&self, name: &str) -> Option<Value> {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .cloned()
    }
    fn blob(&self, digest: &str) -> Vec<u8> {
        let b = fs::read(self.s.root().join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(sha256(&b), digest);
        b
    }
    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }
    /// The files (no directories) of an image manifest's layers, by layer.
    fn layer_files(&self, manifest: &Value) -> Vec<Vec<String>> {
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let p = self.s.dir.path().join("layer.tar");
                let b = self.blob(l["digest"].as_str().unwrap());
                let mut d = flate2::read::GzDecoder::new(&b[..]);
                let mut raw = Vec::new();
                std::io::Read::read_to_end(&mut d, &mut raw).unwrap();
                fs::write(&p, raw).unwrap();
                tar_files(&p).into_keys().filter(|n| !n.ends_with('/')).collect()
            })
            .collect()
    }
}

/// The statements of an attestation manifest, with its layers' predicate-type annotations.
fn statements(blob: &dyn Fn(&str) -> Value, att: &Value) -> Vec<(String, Value)> {
    assert_eq!(att["platform"], serde_json::json!({"architecture": "unknown", "os": "unknown"}), "{att}");
    assert_eq!(att["annotations"]["vnd.docker.reference.type"], "attestation-manifest", "{att}");
    let m = blob(att["digest"].as_str().unwrap());
    // BuildKit HEAD's default: an OCI artifact (the empty config) about the image
    assert_eq!(m["artifactType"], "application/vnd.docker.attestation.manifest.v1+json", "{m}");
    assert_eq!(m["subject"]["digest"], att["annotations"]["vnd.docker.reference.digest"], "{m}");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json", "{m}");
    let mut out = Vec::new();
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.in-toto+json", "{m}");
        let st = blob(l["digest"].as_str().unwrap());
        let t = l["annotations"]["in-toto.io/predicate-type"].as_str().unwrap().to_string();
        assert_eq!(st["predicateType"], t, "{st}");
        out.push((t, st));
    }
    out
}

#[test]
fn the_generator_scans_the_image_read_only_and_its_sbom_is_attested() {
    let t = T::new();
    let o = t.build(&["--sbom=generator=scan:1,MODE=deep", "--provenance=mode=min", "-t", "app:1"]).ok();
    assert!(o.stdout.contains("generating sbom using scan:1"), "{}", o.stdout);
    let top = t.named("docker.io/library/app:1").or_else(|| t.named("app:1")).expect("app:1 in the store");
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json", "{top}");
    let index = t.json(top["digest"].as_str().unwrap());
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{index}");
    let img = &entries[0];
    let manifest = t.json(img["digest"].as_str().unwrap());
    let blob = |d: &str| t.json(d);
    let sts = statements(&blob, &entries[1]);
    assert_eq!(entries[1]["annotations"]["vnd.docker.reference.digest"], img["digest"]);
    // the SBOM first, then the provenance (BuildKit's SBOM processor runs before the provenance's)
    let types: Vec<&str> = sts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["https://spdx.dev/Document", "https://slsa.dev/provenance/v1"]);
    let st = &sts[0].1;
    // BuildKit's exporter writes every statement as in-toto v1, whatever the generator wrote
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1", "{st}");
    // the subject: the image's name and platform, the platform's image manifest
    assert_eq!(st["subject"][0]["name"], format!("pkg:docker/app@1?platform=linux%2F{}", arch()), "{st}");
    assert_eq!(
        format!("sha256:{}", st["subject"][0]["digest"]["sha256"].as_str().unwrap()),
        img["digest"].as_str().unwrap()
    );
    let p = &st["predicate"];
    // what the generator saw: the image's files, read-only, at /run/src/core/sbom, its option
    assert_eq!(p["readOnly"], true, "{p}");
    assert_eq!(p["name"], "/run/src/core/sbom", "{p}");
    assert_eq!(p["mode"], "deep", "{p}");
    // no extras: the variable is not set
    assert_eq!(p["extrasEnv"], "unset", "{p}");
    // buildx sends `type=sbom` among the attributes, and BuildKit passes every one but the
    // generator on (dockerui config.go)
    assert_eq!(p["type"], "sbom", "{p}");
    let files: Vec<&str> = p["files"].as_array().unwrap().iter().map(|f| f["fileName"].as_str().unwrap()).collect();
    assert_eq!(files, ["/a.txt", "/dir/arch.txt"], "{p}");
    // each file given the layer it comes from; slipway among the creators (BuildKit's supplementSBOM)
    let layers: Vec<&str> =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(layers.len(), 2);
    assert_eq!(p["files"][0]["comment"], format!("layerID: {}", layers[0]), "{p}");
    assert_eq!(p["files"][1]["comment"], format!("layerID: {}", layers[1]), "{p}");
    let creators = p["creationInfo"]["creators"].as_array().unwrap();
    assert_eq!(creators[0], "Tool: test-scanner");
    assert!(creators.iter().any(|c| c.as_str().unwrap().starts_with("Tool: slipway-")), "{p}");
    // nothing of the generator in the image: its layers hold the two files, its config no scan env
    let lf = t.layer_files(&manifest);
    assert_eq!(lf, [vec!["a.txt".to_string()], vec!["dir/arch.txt".to_string()]], "{lf:?}");
    let cfg = String::from_utf8(t.blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert!(!cfg.contains("BUILDKIT_SCAN") && !cfg.contains("scan.sh"), "{cfg}");
    // a no-op rebuild: the scan is not run again and the index is the same
    let o = t.build(&["--sbom=generator=scan:1,MODE=deep", "--provenance=mode=min", "-t", "app:1"]).ok();
    assert!(o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    let again = t.named("docker.io/library/app:1").or_else(|| t.named("app:1")).unwrap();
    assert_eq!(again["digest"], top["digest"]);
    // another option is another scan
    let o = t.build(&["--attest", "type=sbom,generator=scan:1,MODE=quick", "-t", "app:2"]).ok();
    assert!(!o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    // prune keeps the scans of kept images and drops them with their image
    let records = || fs::read_dir(t.s.root().join("cache/sbom")).map(|d| d.count()).unwrap_or(0);
    t.s.run(&["prune"]).ok();
    assert_eq!(records(), 2);
    t.s.run(&["rmi", "app:1", "app:2"]).ok();
    t.s.run(&["prune"]).ok();
    assert_eq!(records(), 0);
}

#[test]
fn each_platform_is_scanned_and_oci_and_local_outputs_carry_the_sbom() {
    let t = T::new();
    let dir = t.s.dir.path();
    let oci = dir.join("app.tar");
    let local = dir.join("local");
    t.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "--attest",
        "type=sbom,generator=scan:1",
        "-o",
        &format!("type=oci,dest={}", oci.display()),
        "-o",
        &format!("type=local,dest={}", local.display()),
    ])
    .ok();
    let files = tar_files(&oci);
    let blob = |d: &str| -> Value {
        let b = &files[&format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))];
        assert_eq!(sha256(b), d);
        serde_json::from_slice(b).unwrap()
    };
    let top: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let index = blob(top["manifests"][0]["digest"].as_str().unwrap());
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{index}");
    for (i, want) in ["amd64", "arm64"].iter().enumerate() {
        let img = &entries[i];
        assert_eq!(img["platform"]["architecture"], *want);
        let att = &entries[2 + i];
        assert_eq!(att["annotations"]["vnd.docker.reference.digest"], img["digest"]);
        let sts = statements(&blob, att);
        assert_eq!(sts.len(), 1);
        let st = &sts[0].1;
        // an unnamed output: no subject (BuildKit's default subjects are the output's names)
        assert_eq!(st["subject"], serde_json::json!([]), "{st}");
        let files: Vec<&str> =
            st["predicate"]["files"].as_array().unwrap().iter().map(|f| f["fileName"].as_str().unwrap()).collect();
        assert_eq!(files, ["/a.txt", "/dir/arch.txt"]);
    }
    // the local output: each platform's statement as a file named as the generator named it,
    // its subjects the platform's files
    for a in ["amd64", "arm64"] {
        let p = local.join(format!("linux_{a}/sbom.spdx.json"));
        let st: Value =
            serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap();
        assert_eq!(st["predicateType"], "https://spdx.dev/Document");
        let names: Vec<&str> = st["subject"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["a.txt", "dir/arch.txt"], "{st}");
        assert_eq!(fs::read_to_string(local.join(format!("linux_{a}/dir/arch.txt"))).unwrap(), format!("{a}\n"));
    }
}

/// Mount points below `dir`.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    integration::host::mounts_under(dir)
}

#[test]
fn a_failing_generator_fails_the_build_and_leaves_nothing_behind() {
    let t = T::new();
    let o = t.build(&["--attest", "type=sbom,generator=scan:1,FAIL=badly", "-t", "bad:1"]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    for want in ["scan:1", "exited with status 3", "scanner failed on purpose: badly"] {
        assert!(o.stderr.contains(want), "{want:?} not in: {}", o.stderr);
    }
    assert!(t.named("docker.io/library/bad:1").is_none() && t.named("bad:1").is_none(), "{}", t.index());
    assert_eq!(mounts_below(t.s.dir.path()), Vec::<PathBuf>::new());
    let state = t.s.root().join("tmp/runtime");
    let left: Vec<String> = fs::read_dir(&state)
        .map(|d| {
            d.flatten().filter(|e| e.path().is_dir()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    assert_eq!(left, Vec::<String>::new(), "containers left in {}", state.display());
    // a generator that writes something else than an SPDX statement is refused by name
    let bad = t.s.context(
        "badscan",
        &[(
            "Dockerfile",
            "FROM sw-base\nENTRYPOINT [\"/bin/sh\", \"-c\", \"echo '{\\\"predicateType\\\":\\\"x\\\"}' > $BUILDKIT_SCAN_DESTINATION/x.json\"]\n",
        )],
    );
    t.s.build(&bad, "badscan:1", &[]).ok();
    let o = t.build(&["--sbom=generator=badscan:1", "-t", "bad:2"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("x.json") && o.stderr.contains("https://spdx.dev/Document"), "{}", o.stderr);
    // a generator image that cannot be had fails before any step
    let o = t.build(&["--sbom=generator=localhost:1/none:1", "-t", "bad:3"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("sbom generator localhost:1/none:1"), "{}", o.stderr);
    // the frontend's build arg reaches BuildKit as written: no type parameter
    t.build(&["--build-arg", "BUILDKIT_ATTEST_SBOM=generator=scan:1", "-t", "arg:1"]).ok();
    let top = t.named("docker.io/library/arg:1").or_else(|| t.named("arg:1")).unwrap();
    let p = &sboms_of(&t, &top)[0];
    assert_eq!((&p["type"], &p["name"]), (&Value::from("unset"), &Value::from("/run/src/core/sbom")), "{p}");
    // --sbom=false is no SBOM: a plain image
    t.build(&["--sbom=false", "-t", "plain:1"]).ok();
    let plain = t.named("docker.io/library/plain:1").or_else(|| t.named("plain:1")).unwrap();
    assert_eq!(plain["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

/// The scan extras' Dockerfile: `build` is scanned (its ARG), `tool` is not (its ARG is false),
/// `unused` is not built so not scanned, and the target scans the context.
const EXTRAS_DF: &str =
    "FROM scratch AS build\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nCOPY src/ /src/\nCOPY gen.txt /out/gen.txt\n\
FROM scratch AS tool\nARG BUILDKIT_SBOM_SCAN_STAGE=false\nCOPY tool.txt /tool.txt\n\
FROM scratch AS unused\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nCOPY unused.txt /unused.txt\n\
FROM scratch\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY --from=build /out/gen.txt /app/gen.txt\n\
COPY --from=tool /tool.txt /tool.txt\nCOPY app.txt /app.txt\n";

/// The SBOM predicates of the first platform of the image index `top` (core first).
fn sboms_of(t: &T, top: &Value) -> Vec<Value> {
    let index = t.json(top["digest"].as_str().unwrap());
    let blob = |d: &str| t.json(d);
    statements(&blob, &index["manifests"][1]).into_iter().map(|(_, st)| st["predicate"].clone()).collect()
}

fn file_names(p: &Value) -> Vec<String> {
    p["files"].as_array().unwrap().iter().map(|f| f["fileName"].as_str().unwrap().to_string()).collect()
}

/// BuildKit's scan extras (dockerfile2llb convert.go, frontend/attestations/sbom/sbom.go): the
/// built stages whose `BUILDKIT_SBOM_SCAN_STAGE` enables them and, when the target's
/// `BUILDKIT_SBOM_SCAN_CONTEXT` does, the context (what the build reads of it, .dockerignore
/// applied), each read-only at /run/src/extras/sbom-NAME, with
/// BUILDKIT_SCAN_SOURCE_EXTRAS=/run/src/extras.
#[test]
fn scan_extras_stages_and_context_as_buildkit_mounts_them() {
    let t = T::new();
    let ctx = t.s.context(
        "extras",
        &[
            ("Dockerfile", EXTRAS_DF),
            (".dockerignore", "src/secret.key\n"),
            ("src/main.c", "int main;\n"),
            ("src/secret.key", "s3cr3t\n"),
            ("gen.txt", "gen\n"),
            ("tool.txt", "tool\n"),
            ("unused.txt", "unused\n"),
            ("app.txt", "app\n"),
            ("notread.txt", "nobody copies me\n"),
        ],
    );
    let rt = integration::slipway::runtime();
    let c = ctx.to_string_lossy().into_owned();
    let build = |extra: &[&str]| {
        let mut a = vec!["build", "--progress", "plain", "--runtime", rt.as_str(), "--sbom=generator=scan:1"];
        a.extend_from_slice(extra);
        a.push(&c);
        t.s.run(&a)
    };
    let top = |name: &str| t.named(&format!("docker.io/library/{name}")).or_else(|| t.named(name)).unwrap();
    let o = build(&["-t", "ex:1"]).ok();
    assert!(o.stdout.contains("generating sbom using scan:1"), "{}", o.stdout);
    let first = top("ex:1");
    let preds = sboms_of(&t, &first);
    let names: Vec<&str> = preds.iter().map(|p| p["name"].as_str().unwrap()).collect();
    // the core first, then the extras in name order; `tool` (false) and `unused` (not built) are not
    assert_eq!(names, ["/run/src/core/sbom", "/run/src/extras/sbom-build", "/run/src/extras/sbom-context"]);
    let core = &preds[0];
    assert_eq!(core["extrasEnv"], "/run/src/extras", "{core}");
    assert_eq!(core["extras"], "sbom-build sbom-context ", "{core}");
    assert_eq!(file_names(core), ["/app.txt", "/app/gen.txt", "/tool.txt"]);
    // the stage's final filesystem
    assert_eq!(file_names(&preds[1]), ["/out/gen.txt", "/src/main.c"]);
    // the context as the build reads it: what COPY takes of it (not the Dockerfile, nor a file
    // nothing copies), .dockerignore applied
    assert_eq!(file_names(&preds[2]), ["/app.txt", "/gen.txt", "/src/main.c", "/tool.txt"]);
    for p in &preds {
        assert_eq!(p["readOnly"], true, "{p}");
    }
    // a no-op rebuild, and a change to a file the build does not read: the same scan, kept
    fs::write(ctx.join("notread.txt"), "still nobody\n").unwrap();
    let o = build(&["-t", "ex:1"]).ok();
    assert!(o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    assert_eq!(top("ex:1")["digest"], first["digest"]);
    // a change in the scanned stage (not in the image): the scan runs again
    fs::write(ctx.join("src/main.c"), "int main(void);\n").unwrap();
    let o = build(&["-t", "ex:2"]).ok();
    assert!(o.stdout.contains("generating sbom using scan:1") && !o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    assert_ne!(top("ex:2")["digest"], first["digest"]);
    // --no-cache-filter on a scanned stage runs the scan without its cache (BuildKit's IsIgnoreCache)
    let o = build(&["--no-cache-filter", "build", "-t", "ex:2"]).ok();
    assert!(!o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    // --build-arg overrides a declared ARG: no stage scanned, the context still
    let o = build(&["--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=false", "-t", "ex:3"]).ok();
    assert!(!o.stdout.contains("CACHED [linux/"), "{}", o.stdout);
    let preds = sboms_of(&t, &top("ex:3"));
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["extras"], "sbom-context ", "{}", preds[0]);
    // a value that is no boolean is a list of stage names (BuildKit refuses no value): `tool`,
    // a built stage, is scanned; `nosuch` names nothing
    build(&["--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=tool,nosuch", "-t", "ex:4"]).ok();
    let preds = sboms_of(&t, &top("ex:4"));
    assert_eq!(preds[0]["extras"], "sbom-context sbom-tool ", "{}", preds[0]);
    assert_eq!(file_names(&preds[2]), ["/tool.txt"]);
    // each platform's scan has that platform's extras (BuildKit runs the frontend per platform)
    build(&["--platform", "linux/amd64,linux/arm64", "-t", "ex:5"]).ok();
    let index = t.json(top("ex:5")["digest"].as_str().unwrap());
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{index}");
    for (i, a) in ["amd64", "arm64"].iter().enumerate() {
        assert_eq!(entries[i]["platform"]["architecture"], *a);
        assert_eq!(entries[2 + i]["annotations"]["vnd.docker.reference.digest"], entries[i]["digest"]);
        let blob = |d: &str| t.json(d);
        let preds: Vec<Value> =
            statements(&blob, &entries[2 + i]).into_iter().map(|(_, s)| s["predicate"].clone()).collect();
        assert_eq!(preds[0]["extras"], "sbom-build sbom-context ", "{a}: {}", preds[0]);
        assert_eq!(file_names(&preds[1]), ["/out/gen.txt", "/src/main.c"], "{a}");
    }
    // no mount left behind
    assert_eq!(mounts_below(t.s.dir.path()), Vec::<PathBuf>::new());
}

/// BuildKit's own case (frontend/dockerfile/dockerfile_sbom_test.go, testSBOMScannerArgs), with
/// its expectations: build args alone enable nothing; the global context ARG and the stages'
/// ARGs give the context and the two stages the target needs (not `base2`, which is never
/// built: its RUN would fail); build args false turn them all off.
#[test]
fn buildkits_scanner_args_case() {
    let t = T::new();
    let rt = integration::slipway::runtime();
    let run = |dir: &Path, extra: &[&str]| {
        let mut a =
            vec!["build", "--progress", "plain", "--runtime", rt.as_str(), "--attest", "type=sbom,generator=scan:1"];
        a.extend_from_slice(extra);
        let d = dir.to_string_lossy().into_owned();
        a.push(&d);
        t.s.run(&a).ok();
    };
    let names = |tag: &str| -> Vec<String> {
        let top = t.named(&format!("docker.io/library/{tag}")).or_else(|| t.named(tag)).unwrap();
        sboms_of(&t, &top).iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
    };
    let plain = t.s.context("bk1", &[("Dockerfile", "FROM scratch as base\nCOPY <<EOF /foo\ndata\nEOF\nFROM base\n")]);
    let args = ["--build-arg", "BUILDKIT_SBOM_SCAN_CONTEXT=true", "--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=true"];
    run(&plain, &[&args[..], &["-t", "bk:1"]].concat());
    assert_eq!(names("bk:1"), ["/run/src/core/sbom"]);
    let df = "ARG BUILDKIT_SBOM_SCAN_CONTEXT=true\n\nFROM scratch as file\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n\
              COPY <<EOF /file\ndata\nEOF\n\nFROM scratch as base\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n\
              COPY --from=file /file /foo\n\nFROM scratch as base2\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n\
              COPY --from=file /file /bar\nRUN non-existent-command-would-fail\n\nFROM base\nARG BUILDKIT_SBOM_SCAN_STAGE=true\n";
    let staged = t.s.context("bk2", &[("Dockerfile", df)]);
    run(&staged, &["-t", "bk:2"]);
    assert_eq!(
        names("bk:2"),
        [
            "/run/src/core/sbom",
            "/run/src/extras/sbom-base",
            "/run/src/extras/sbom-context",
            "/run/src/extras/sbom-file"
        ]
    );
    // nothing reads the context, so the extra is all of it (BuildKit: no FollowPaths)
    let top = t.named("docker.io/library/bk:2").or_else(|| t.named("bk:2")).unwrap();
    let preds = sboms_of(&t, &top);
    assert_eq!(file_names(&preds[2]), ["/Dockerfile"]);
    assert_eq!(file_names(&preds[1]), ["/foo"]);
    assert_eq!(file_names(&preds[3]), ["/file"]);
    let off = ["--build-arg", "BUILDKIT_SBOM_SCAN_CONTEXT=false", "--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=false"];
    run(&staged, &[&off[..], &["-t", "bk:3"]].concat());
    assert_eq!(names("bk:3"), ["/run/src/core/sbom"]);
}

/// A remote context is the frontend's source as it is (dockerui MainContext returns it without
/// FollowPaths, and no .dockerignore filters it): the context extra of a git context is all of
/// its files, whatever the build reads.
#[test]
fn the_context_extra_of_a_remote_context_is_all_of_it() {
    let Some(g) = integration::sources::GitServer::start() else { return };
    g.commit_files(
        &[
            ("Dockerfile", "FROM scratch\nARG BUILDKIT_SBOM_SCAN_CONTEXT=true\nCOPY hello /hello\n"),
            ("hello", "hi\n"),
            ("other", "not read\n"),
            (".dockerignore", "other\n"),
        ],
        "@1600000300 +0000",
    );
    let t = T::new();
    let rt = integration::slipway::runtime();
    let url = format!("{}#main", g.url());
    t.s.run(&["build", "--progress", "plain", "--runtime", &rt, "--sbom=generator=scan:1", "-t", "remote:1", &url])
        .ok();
    let top = t.named("docker.io/library/remote:1").or_else(|| t.named("remote:1")).unwrap();
    let preds = sboms_of(&t, &top);
    assert_eq!(preds[1]["name"], "/run/src/extras/sbom-context");
    // (the test server's repository holds files of its own too)
    let files = file_names(&preds[1]);
    for f in ["/.dockerignore", "/Dockerfile", "/foo", "/hello", "/other"] {
        assert!(files.iter().any(|g| g == f), "{f} not in {files:?}");
    }
}
