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
    // a stage of the foreign platform with no RUN builds
    let df = format!("FROM --platform={foreign} scratch\nCOPY Dockerfile /df\n");
    let ctx = s.context("foreign-copy", &[("Dockerfile", &df)]);
    s.build(&ctx, "foreign-copy", &[]).ok();
    assert_eq!(s.save("foreign-copy").config["architecture"], arch);
}
