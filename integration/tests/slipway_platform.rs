//! `build --platform` and `FROM --platform`, checked from the outside: the automatic platform
//! ARGs a RUN sees (against docker 20.10's BuildKit on the same Dockerfile), the config's os,
//! architecture and variant, and a RUN of a foreign platform refused, naming the step and the
//! platform, where this machine has no binfmt_misc handler for it (slipway never registers one,
//! and neither does this test: that is kernel-wide).

use integration::buildkit::BuildKit;
use integration::slipway::Slipway;
use std::fs;

/// Go's name of this machine's architecture, and a platform that is not this machine's.
fn host_and_foreign() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "linux/arm64"),
        "aarch64" => ("arm64", "linux/amd64"),
        a => panic!("no foreign platform chosen for {a}"),
    }
}

/// A stage built for this machine ($BUILDPLATFORM) writes the ARGs it declared; the image is
/// a `FROM scratch` of the target platform with that file. Runs without binfmt_misc.
const ARGS_DF: &str = "ARG G=$TARGETPLATFORM\n\
    FROM --platform=$BUILDPLATFORM bb AS tools\n\
    RUN echo \"undeclared=$TARGETARCH\" > /undeclared\n\
    ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH G\n\
    RUN echo \"$TARGETPLATFORM $TARGETOS $TARGETARCH v=$TARGETVARIANT $BUILDPLATFORM $BUILDOS $BUILDARCH G=$G\" > /args\n\
    FROM scratch\n\
    COPY --from=tools /args /undeclared /\n";

fn text(img: &integration::slipway::Saved, p: &str) -> String {
    let e = img.find(p).unwrap_or_else(|| panic!("{p} not in the image"));
    String::from_utf8_lossy(&e.data).into_owned()
}

#[test]
fn platform_args_and_config_are_buildkits() {
    let (host, _) = host_and_foreign();
    let s = Slipway::new();
    s.base("bb");
    let ctx = s.context("args", &[("Dockerfile", ARGS_DF)]);
    let rows = [
        ("linux/arm64", "arm64", None, format!("linux/arm64 linux arm64 v= linux/{host} linux {host} G=linux/arm64\n")),
        (
            "linux/arm/v7",
            "arm",
            Some("v7"),
            format!("linux/arm/v7 linux arm v=v7 linux/{host} linux {host} G=linux/arm/v7\n"),
        ),
        (
            &format!("linux/{host}"),
            host,
            None,
            format!("linux/{host} linux {host} v= linux/{host} linux {host} G=linux/{host}\n"),
        ),
    ];
    for (platform, arch, variant, args) in &rows {
        let tag = format!("args-{}", platform.replace('/', "-"));
        s.build(&ctx, &tag, &["--platform", platform]).ok();
        let img = s.save(&tag);
        assert_eq!(text(&img, "args"), *args, "{platform}");
        assert_eq!(text(&img, "undeclared"), "undeclared=\n", "a stage sees only the ARGs it declares");
        assert_eq!(img.config["architecture"], *arch, "{platform}");
        assert_eq!(img.config["os"], "linux", "{platform}");
        assert_eq!(img.config["variant"].as_str(), *variant, "{platform}");
    }
    // the same Dockerfile through docker 20.10's BuildKit, on slipway's busybox image
    let Some(bk) = BuildKit::shared() else { return };
    let tar = s.dir.path().join("bb.tar");
    s.run(&["save", "bb", "-o", &tar.to_string_lossy()]).ok();
    bk.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    for (platform, arch, variant, args) in &rows[..2] {
        let tag = format!("args-{}", platform.replace('/', "-"));
        bk.build(&ctx, &tag, &["--platform", platform]).ok();
        let theirs = bk.save(&tag);
        assert_eq!(text(&theirs, "args"), *args, "BuildKit's args for {platform}");
        assert_eq!(text(&theirs, "undeclared"), "undeclared=\n", "BuildKit");
        assert_eq!(theirs.config["architecture"], *arch, "BuildKit's config for {platform}");
        assert_eq!(theirs.config["variant"].as_str(), *variant, "BuildKit's config for {platform}");
    }
}

#[test]
fn a_run_of_a_foreign_platform_needs_a_binfmt_handler() {
    let (host, foreign) = host_and_foreign();
    let arch = foreign.rsplit('/').next().unwrap_or_default();
    let dir = std::path::Path::new("/proc/sys/fs/binfmt_misc");
    let handlers: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let qemu = if arch == "arm64" { "aarch64" } else { "x86_64" };
    if handlers.iter().any(|h| h.contains(qemu)) {
        integration::skip("this machine has a binfmt_misc handler for the foreign platform: no refusal to see");
        return;
    }
    let s = Slipway::new();
    s.base("bb");
    let df = format!("FROM bb AS native\nRUN true\nFROM --platform={foreign} scratch AS other\nCOPY --from=native /bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n");
    let ctx = s.context("foreign", &[("Dockerfile", &df)]);
    let r = s.build(&ctx, "foreign", &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let want = format!("Dockerfile:5: RUN: the stage is built for {foreign}: this machine is linux/{host} and ");
    assert!(r.stderr.contains(&want), "{want:?} in:\n{}", r.stderr);
    assert!(r.stderr.contains("binfmt_misc") && r.stderr.contains("never registers"), "{}", r.stderr);
    // the store's bb is this machine's: not taken for another platform (it is pulled, which fails)
    let ctx = s.context("foreign-base", &[("Dockerfile", &format!("FROM --platform={foreign} bb\n"))]);
    let r = s.build(&ctx, "foreign-base", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.contains(&format!("the store's bb is linux/{host}, not {foreign}")), "{}", r.stdout);
    assert!(r.stderr.contains(&format!("FROM bb: not in the store for {foreign}")), "{}", r.stderr);
    // a stage of the foreign platform with no RUN builds
    let df = format!("FROM --platform={foreign} scratch\nCOPY Dockerfile /df\n");
    let ctx = s.context("foreign-copy", &[("Dockerfile", &df)]);
    s.build(&ctx, "foreign-copy", &[]).ok();
    assert_eq!(s.save("foreign-copy").config["architecture"], arch);
}

/// The blob `digest` of an OCI layout directory, as JSON.
fn blob(dir: &std::path::Path, digest: &str) -> serde_json::Value {
    let p = dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    serde_json::from_slice(&fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).expect("JSON blob")
}

/// The content of `path` in the gzipped layer tar `layer`.
fn layer_file(layer: &std::path::Path, path: &str) -> String {
    use std::io::Read;
    let f = fs::File::open(layer).expect("layer");
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for e in ar.entries().expect("layer tar") {
        let mut e = e.expect("entry");
        if e.path().expect("path").to_string_lossy().trim_start_matches("./") == path {
            let mut s = String::new();
            e.read_to_string(&mut s).expect("read");
            return s;
        }
    }
    panic!("{path} not in {}", layer.display())
}

#[test]
fn several_platforms_make_an_index() {
    // the RUN is on $BUILDPLATFORM, so no binfmt_misc handler is needed for the foreign one
    let (host, foreign) = host_and_foreign();
    let s = Slipway::new();
    s.base("bb");
    let df = "FROM --platform=$BUILDPLATFORM bb AS tools\nARG TARGETPLATFORM\n\
              RUN echo \"for $TARGETPLATFORM\" > /for\nFROM scratch\nCOPY --from=tools /for /for\n";
    let ctx = s.context("multi", &[("Dockerfile", df)]);
    let layout = s.dir.path().join("layout.tar");
    let platforms = format!("linux/{host},{foreign}");
    let out = format!("type=oci,dest={}", layout.display());
    s.build(&ctx, "multi:1", &["--platform", &platforms, "-o", "type=image", "-o", &out]).ok();
    let dir = s.dir.path().join("layout");
    fs::create_dir_all(&dir).expect("mkdir");
    let st = std::process::Command::new("tar").arg("-xf").arg(&layout).arg("-C").arg(&dir).status().expect("tar");
    assert!(st.success());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json")).unwrap();
    let inner = blob(&dir, index["manifests"][0]["digest"].as_str().expect("digest"));
    assert_eq!(inner["mediaType"], "application/vnd.oci.image.index.v1+json", "{inner}");
    let entries = inner["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 2, "{inner}");
    for (e, p) in entries.iter().zip([format!("linux/{host}"), foreign.to_string()]) {
        let arch = p.rsplit('/').next().unwrap_or_default();
        assert_eq!(e["platform"]["os"], "linux");
        assert_eq!(e["platform"]["architecture"], arch, "{inner}");
        let m = blob(&dir, e["digest"].as_str().expect("digest"));
        let c = blob(&dir, m["config"]["digest"].as_str().expect("config"));
        assert_eq!(c["architecture"], arch, "config of {p}");
        // the layer holds what the build-platform stage wrote for this target
        let layer =
            dir.join("blobs/sha256").join(m["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:"));
        assert_eq!(layer_file(&layer, "for"), format!("for {p}\n"), "{p}");
    }
    // the store keeps the index under the name; single-image commands see this machine's image
    let r = s.run(&["inspect", "multi:1"]).ok();
    assert!(r.stdout.contains(&format!("\"Architecture\": \"{host}\"")), "{}", r.stdout);
    // (the push of the index to a registry: slipway_push.rs)
    // one platform given twice is refused
    let r = s.build(&ctx, "twice", &["--platform", &format!("{foreign},{foreign}")]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains(&format!("--platform: {foreign} is given twice")), "{}", r.stderr);
}

/// `--build-arg BUILDKIT_MULTI_PLATFORM=1`: BuildKit's frontend returns its result as a map of
/// platforms even for one (dockerui's `multi-platform` option), so the image and oci outputs
/// get an index of one manifest and a local output a directory per platform. `false` with
/// several platforms is BuildKit's conflict error; a value Go's ParseBool refuses is refused.
#[test]
fn buildkit_multi_platform_gives_an_index_for_one_platform() {
    let (host, foreign) = host_and_foreign();
    let s = Slipway::new();
    s.base("bb");
    let ctx = s.context("one", &[("a.txt", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n")]);
    let dir = s.dir.path().join("layout");
    let out = format!("type=oci,dest={},tar=false", dir.display());
    let local = s.dir.path().join("local");
    let lout = format!("type=local,dest={}", local.display());
    let flag = ["--build-arg", "BUILDKIT_MULTI_PLATFORM=1"];
    let r = s.build(&ctx, "one:1", &[&flag[..], &["-o", &out, "-o", &lout]].concat()).ok();
    assert!(!r.stderr.contains("not consumed"), "{}", r.stderr);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json")).unwrap();
    let inner = blob(&dir, index["manifests"][0]["digest"].as_str().expect("digest"));
    assert_eq!(inner["mediaType"], "application/vnd.oci.image.index.v1+json", "{inner}");
    let entries = inner["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1, "{inner}");
    assert_eq!(entries[0]["platform"]["architecture"], host, "{inner}");
    assert_eq!(fs::read_to_string(local.join(format!("linux_{host}/a.txt"))).expect("split local output"), "a\n");
    // without it: one manifest, and the local output unsplit
    let dir2 = s.dir.path().join("layout2");
    let out2 = format!("type=oci,dest={},tar=false", dir2.display());
    s.build(&ctx, "one:2", &["-o", &out2]).ok();
    let index: serde_json::Value = serde_json::from_slice(&fs::read(dir2.join("index.json")).unwrap()).unwrap();
    let top = blob(&dir2, index["manifests"][0]["digest"].as_str().expect("digest"));
    assert_eq!(top["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{top}");
    // index annotations need an index: refused for one image, taken with the flag
    let ann = ["--annotation", "index:org.opencontainers.image.title=t"];
    let r = s.build(&ctx, "one:3", &ann);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("index annotations not supported for single platform export"), "{}", r.stderr);
    s.build(&ctx, "one:3", &[&flag[..], &ann[..]].concat()).ok();
    for (v, want) in [
        ("BUILDKIT_MULTI_PLATFORM=yes", "invalid boolean value for multi-platform"),
        ("BUILDKIT_MULTI_PLATFORM=0", "returning multiple target platforms is not allowed"),
    ] {
        let r = s.build(&ctx, "bad:1", &["--build-arg", v, "--platform", &format!("linux/{host},{foreign}")]);
        assert_ne!(r.code, 0, "{v}");
        assert!(r.stderr.contains(want) && r.stderr.contains("BUILDKIT_MULTI_PLATFORM"), "{v}: {}", r.stderr);
    }
}
