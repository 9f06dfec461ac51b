//! `slipway build --output` (local, tar, oci, docker, image), `--metadata-file`,
//! `--annotation` and SOURCE_DATE_EPOCH, checked in what the outputs wrote: the directory, the
//! tar, the OCI layout as skopeo reads it, the docker-archive as `slipway load` reads it, and
//! docker 20.10's BuildKit writing the same Dockerfile where it can.

use integration::buildkit::BuildKit;
use integration::engines::{have, Engine, Kind};
use integration::slipway::{read_saved, store_listing, tar_files, Saved, Slipway};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The JSON of one blob of an OCI layout tar's files.
fn blob(files: &BTreeMap<String, Vec<u8>>, digest: &str) -> serde_json::Value {
    let p = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    serde_json::from_slice(files.get(&p).unwrap_or_else(|| panic!("{p} in the layout"))).expect("blob json")
}

const APP: &str = "FROM base:1\nRUN echo hi > /hello && mkdir -p /d && ln -s ../hello /d/link\nCOPY f.txt /f.txt\n";

#[test]
fn local_tar_oci_and_docker_outputs_hold_the_image() {
    let s = Slipway::new();
    s.base("base:1");
    let ctx = s.context("app", &[("Dockerfile", APP), ("f.txt", "from the context\n")]);
    let d = s.dir.path();
    let (local, tar, oci, docker) = (d.join("local"), d.join("fs.tar"), d.join("oci.tar"), d.join("docker.tar"));
    let iid = d.join("iid");
    s.build(
        &ctx,
        "out:1",
        &[
            "--output",
            &format!("type=local,dest={}", local.display()),
            "-o",
            &format!("type=tar,dest={}", tar.display()),
            "-o",
            &format!("type=oci,dest={}", oci.display()),
            "-o",
            &format!("type=docker,dest={}", docker.display()),
            "--iidfile",
            &iid.to_string_lossy(),
        ],
    )
    .ok();
    let id = fs::read_to_string(&iid).unwrap();

    // local: the image's filesystem, base layers and all, owners and links as in the image
    assert_eq!(fs::read_to_string(local.join("hello")).unwrap(), "hi\n");
    assert_eq!(fs::read_to_string(local.join("f.txt")).unwrap(), "from the context\n");
    assert!(local.join("bin/busybox").is_file());
    assert_eq!(fs::read_link(local.join("d/link")).unwrap().to_string_lossy(), "../hello");
    assert!(fs::read_to_string(local.join("etc/passwd")).unwrap().contains("bob:x:1000"));

    // tar: the same files
    let files = tar_files(&tar);
    assert_eq!(files.get("hello").map(Vec::as_slice), Some(&b"hi\n"[..]));
    assert_eq!(files.get("f.txt").map(Vec::as_slice), Some(&b"from the context\n"[..]));
    assert!(files.contains_key("bin/busybox"));

    // oci: a layout skopeo reads, named as BuildKit names it, the image's config
    let files = tar_files(&oci);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["io.containerd.image.name"], "docker.io/library/out:1");
    assert_eq!(entry["annotations"]["org.opencontainers.image.ref.name"], "1");
    assert_eq!(entry["annotations"]["org.opencontainers.image.created"], "1970-01-01T00:00:00Z");
    let manifest = blob(&files, entry["digest"].as_str().unwrap());
    assert_eq!(manifest["config"]["digest"], id.as_str());
    if have("skopeo") {
        let out = std::process::Command::new("skopeo")
            .args(["inspect", "--config", &format!("oci-archive:{}", oci.display())])
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo: {}", String::from_utf8_lossy(&out.stderr));
        let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(cfg["architecture"], "amd64");
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 5);
    } else {
        integration::skip("skopeo not installed: the OCI layout output is not read by skopeo");
    }

    // docker: a docker-archive another store loads under the name, with the same image ID
    let saved = read_saved(&docker);
    assert_eq!(saved.repo_tags, ["out:1"]);
    assert_eq!(saved.id(), id);
    let other = Slipway::new();
    let loaded = other.run(&["load", "-i", &docker.to_string_lossy()]).ok();
    assert!(loaded.stdout.contains("Loaded image: out:1"), "{}", loaded.stdout);

    // with outputs and no type=image, the store names nothing
    let r = s.run(&["inspect", "out:1"]);
    assert_ne!(r.code, 0, "out:1 must not be in the store: {}", r.stdout);
}

#[test]
fn image_output_names_and_the_metadata_file() {
    let s = Slipway::new();
    s.base("base:1");
    let ctx = s.context("app", &[("Dockerfile", APP), ("f.txt", "x\n")]);
    let meta = s.dir.path().join("meta.json");
    let iid = s.dir.path().join("iid");
    // name= names the image when no -t is given
    s.run(&[
        "build",
        "--output",
        "type=image,\"name=a:1,b/c:2\"",
        "--metadata-file",
        &meta.to_string_lossy(),
        "--iidfile",
        &iid.to_string_lossy(),
        &ctx.to_string_lossy(),
    ])
    .ok();
    let id = fs::read_to_string(&iid).unwrap();
    let index = json(&s.root().join("index.json"));
    let named = |n: &str| {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == n)
            .cloned()
    };
    let a = named("a:1").expect("a:1 in the store");
    assert_eq!(named("b/c:2").expect("b/c:2 in the store")["digest"], a["digest"]);
    // BuildKit's keys, as buildx writes them
    let m = json(&meta);
    assert_eq!(m["containerimage.config.digest"], id.as_str());
    assert_eq!(m["containerimage.digest"], a["digest"]);
    assert_eq!(m["containerimage.descriptor"]["digest"], a["digest"]);
    assert_eq!(m["containerimage.descriptor"]["size"], a["size"]);
    assert_eq!(m["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["image.name"], "docker.io/library/a:1,docker.io/b/c:2");

    // -t replaces name= of every image, oci and docker output, as buildx does (build/opt.go),
    // and the log says so
    let oci = s.dir.path().join("oci.tar");
    let r = s
        .build(
            &ctx,
            "tagged:1",
            &[
                "-o",
                "type=image,name=replaced:1",
                "-o",
                &format!("type=oci,dest={},name=alsoreplaced:1", oci.display()),
            ],
        )
        .ok();
    assert!(r.stderr.contains("--output 1: name=replaced:1 replaced by -t tagged:1"), "{}", r.stderr);
    assert!(r.stderr.contains("--output 2: name=alsoreplaced:1 replaced by -t tagged:1"), "{}", r.stderr);
    let index = json(&s.root().join("index.json"));
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .collect();
    assert!(refs.contains(&"tagged:1") && !refs.contains(&"replaced:1"), "{refs:?}");
    let files = tar_files(&oci);
    let oindex: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(oindex["manifests"][0]["annotations"]["io.containerd.image.name"], "docker.io/library/tagged:1");

    // the default output is the store under -t; local outputs give no image keys
    s.build(&ctx, "def:1", &["--metadata-file", &meta.to_string_lossy()]).ok();
    assert_eq!(json(&meta)["image.name"], "docker.io/library/def:1");
    let local = s.dir.path().join("l");
    s.build(&ctx, "def:1", &["-o", &local.to_string_lossy(), "--metadata-file", &meta.to_string_lossy()]).ok();
    assert_eq!(json(&meta), serde_json::json!({}));
}

#[test]
fn local_output_merges_and_tar_goes_to_stdout() {
    let s = Slipway::new();
    let ctx = s.context(
        "scratch",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY sub /sub\n"), ("a", "new"), ("sub/x", "x")],
    );
    let out = s.dir.path().join("out");
    fs::create_dir_all(out.join("sub")).unwrap();
    fs::write(out.join("a"), "old").unwrap();
    fs::write(out.join("keep"), "mine").unwrap();
    fs::write(out.join("sub/y"), "mine too").unwrap();
    // `-o DIR` is type=local: what the image has replaces what is there, the rest stays
    s.build(&ctx, "m:1", &["-o", &out.to_string_lossy()]).ok();
    assert_eq!(fs::read_to_string(out.join("a")).unwrap(), "new");
    assert_eq!(fs::read_to_string(out.join("sub/x")).unwrap(), "x");
    assert_eq!(fs::read_to_string(out.join("keep")).unwrap(), "mine");
    assert_eq!(fs::read_to_string(out.join("sub/y")).unwrap(), "mine too");
    let leftovers: Vec<_> = fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".slipway-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // `-o -`: a tar on stdout, the log on stderr
    let r = s.run(&["build", "--progress", "plain", "-o", "-", &ctx.to_string_lossy()]).ok();
    assert!(r.stderr.contains("Step 2/3 : COPY a /a"), "{}", r.stderr);
    let mut ar = tar::Archive::new(r.stdout.as_bytes());
    let names: Vec<String> =
        ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["a", "sub", "sub/x"]);
}

#[test]
fn docker_output_with_tar_false_is_a_layout_directory() {
    // BuildKit's docker exporter with tar=false copies the image into an OCI layout directory
    // (the client's content store), named in index.json; no manifest.json
    let s = Slipway::new();
    let ctx = s.context("dockerdir", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "1")]);
    let lay = s.dir.path().join("lay");
    let iid = s.dir.path().join("iid");
    s.build(
        &ctx,
        "dd:1",
        &["-o", &format!("type=docker,dest={},tar=false", lay.display()), "--iidfile", &iid.to_string_lossy()],
    )
    .ok();
    assert!(lay.join("oci-layout").is_file());
    assert!(!lay.join("manifest.json").exists());
    let index = json(&lay.join("index.json"));
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["io.containerd.image.name"], "docker.io/library/dd:1");
    let digest = entry["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let manifest = json(&lay.join("blobs/sha256").join(digest));
    assert_eq!(manifest["config"]["digest"], fs::read_to_string(&iid).unwrap().as_str());
    // the layout reads back as an image (a --build-context oci-layout:// of it)
    let user = s.context("user", &[("Dockerfile", "FROM base\nCOPY --from=base /a /b\n")]);
    s.build(&user, "dd:2", &["--build-context", &format!("base=oci-layout://{}:1", lay.display())]).ok();
    assert_eq!(s.save("dd:2").find("b").unwrap().data, b"1");
    // dest is needed and cannot be stdout, as buildx says
    let r = s.build(&ctx, "dd:3", &["-o", "type=docker,dest=-,tar=false"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("dest=- (stdout) takes a file"), "{}", r.stderr);
}

#[test]
fn attestation_and_nondist_options_are_checked_and_change_nothing() {
    // BuildKit's attestation-inline, attestation-prefix and prefer-nondist-layers: slipway writes
    // no attestations and keeps no non-distributable layers, so the outputs are byte for byte
    // those without them; compression=uncompressed takes a level, as BuildKit's does (unused)
    let s = Slipway::new();
    let ctx = s.context("noop", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "1")]);
    let d = s.dir.path();
    let o = |n: &str, opts: &str| format!("type={n}{opts}");
    s.build(
        &ctx,
        "n:1",
        &[
            "-o",
            &o("docker", &format!(",dest={}", d.join("plain.tar").display())),
            "-o",
            &o(
                "docker",
                &format!(",dest={},attestation-inline=False,prefer-nondist-layers=true", d.join("opts.tar").display()),
            ),
            "-o",
            &o("tar", &format!(",dest={}", d.join("fs.tar").display())),
            "-o",
            &o("tar", &format!(",dest={},attestation-prefix=sbom-", d.join("fs-opts.tar").display())),
            "-o",
            &o("oci", &format!(",dest={},compression=uncompressed,compression-level=5", d.join("raw.tar").display())),
        ],
    )
    .ok();
    assert_eq!(fs::read(d.join("plain.tar")).unwrap(), fs::read(d.join("opts.tar")).unwrap());
    assert_eq!(fs::read(d.join("fs.tar")).unwrap(), fs::read(d.join("fs-opts.tar")).unwrap());
    let files = tar_files(&d.join("raw.tar"));
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest = blob(&files, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let r = s.build(&ctx, "n:2", &["-o", "type=image,attestation-inline=maybe"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("option attestation-inline=\"maybe\""), "{}", r.stderr);
}

#[test]
fn local_output_mode_delete_mirrors_the_image() {
    let s = Slipway::new();
    let ctx =
        s.context("del", &[("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY sub /sub\n"), ("a", "new"), ("sub/x", "x")]);
    let fill = |out: &Path| {
        fs::create_dir_all(out.join("sub")).unwrap();
        fs::create_dir_all(out.join("stale/deep")).unwrap();
        fs::write(out.join("a"), "old").unwrap();
        fs::write(out.join("keep"), "mine").unwrap();
        fs::write(out.join("sub/y"), "mine too").unwrap();
        fs::write(out.join("stale/deep/z"), "z").unwrap();
    };
    fn walk(root: &Path, dir: &Path, into: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            into.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), into);
            }
        }
    }
    let listing = |out: &Path| -> Vec<String> {
        let mut l = Vec::new();
        walk(out, out, &mut l);
        l.sort();
        l
    };
    // buildx's rule: outside the working directory, mode=delete needs --allow buildx.local.delete;
    // refused before the build, the directory untouched
    let out = s.dir.path().join("out");
    fill(&out);
    let spec = format!("type=local,dest={},mode=delete", out.display());
    let before = listing(&out);
    let r = s.build(&ctx, "d:1", &["-o", &spec]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("requires --allow=buildx.local.delete"), "{}", r.stderr);
    assert_eq!(listing(&out), before);
    // with it: the directory mirrors the image (BuildKit's fsutil receive without merge)
    s.build(&ctx, "d:1", &["-o", &spec, "--allow", "buildx.local.delete"]).ok();
    assert_eq!(listing(&out), ["a", "sub", "sub/x"]);
    assert_eq!(fs::read_to_string(out.join("a")).unwrap(), "new");
    // below the working directory it needs no entitlement (buildx's isSafeLocalDeleteDest)
    let wd = s.dir.path().join("wd");
    fill(&wd.join("out"));
    let o = std::process::Command::new(integration::slipway::bin())
        .current_dir(&wd)
        .args(["--root", &s.root().to_string_lossy(), "build", "-o", "type=local,dest=out,mode=delete"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(listing(&wd.join("out")), ["a", "sub", "sub/x"]);
    // nothing of the temp tree is left beside it
    let leftovers: Vec<_> = fs::read_dir(&wd)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".slipway-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn annotations_go_where_buildkit_puts_them() {
    let s = Slipway::new();
    let ctx = s.context("ann", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "1")]);
    let d = s.dir.path();
    let (plain, annotated) = (d.join("plain.tar"), d.join("annotated.tar"));
    s.build(&ctx, "p:1", &["-o", &format!("type=oci,dest={}", plain.display())]).ok();
    s.build(
        &ctx,
        "p:1",
        &[
            "-o",
            &format!("type=oci,dest={},annotation.from-output=yes", annotated.display()),
            "--annotation",
            "org.opencontainers.image.title=hello",
            "--annotation",
            "manifest-descriptor:com.example.d=1",
        ],
    )
    .ok();
    let (p, a) = (tar_files(&plain), tar_files(&annotated));
    let pi: serde_json::Value = serde_json::from_slice(&p["index.json"]).unwrap();
    let ai: serde_json::Value = serde_json::from_slice(&a["index.json"]).unwrap();
    let pm = blob(&p, pi["manifests"][0]["digest"].as_str().unwrap());
    let am = blob(&a, ai["manifests"][0]["digest"].as_str().unwrap());
    // the manifest carries them (another manifest digest), the image ID stays
    assert_eq!(am["annotations"]["org.opencontainers.image.title"], "hello");
    assert_eq!(am["annotations"]["from-output"], "yes");
    assert!(pm.get("annotations").is_none(), "{pm}");
    assert_eq!(am["config"], pm["config"]);
    assert_ne!(ai["manifests"][0]["digest"], pi["manifests"][0]["digest"]);
    // manifest-descriptor: the index.json entry
    assert_eq!(ai["manifests"][0]["annotations"]["com.example.d"], "1");

    // into the store too: `save --format oci` hands out the annotated manifest
    s.build(&ctx, "st:1", &["--annotation", "org.opencontainers.image.title=stored"]).ok();
    let saved = d.join("saved.tar");
    s.run(&["save", "--format", "oci", "st:1", "-o", &saved.to_string_lossy()]).ok();
    let f = tar_files(&saved);
    let si: serde_json::Value = serde_json::from_slice(&f["index.json"]).unwrap();
    assert_eq!(
        blob(&f, si["manifests"][0]["digest"].as_str().unwrap())["annotations"]["org.opencontainers.image.title"],
        "stored"
    );

    // index annotations need an index: refused for one platform, before anything is built
    let before = store_listing(&s.root());
    let r = s.build(&ctx, "st:2", &["--annotation", "index:k=v"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("index annotations not supported for single platform export"), "{}", r.stderr);
    assert_eq!(store_listing(&s.root()), before);
}

#[test]
fn bad_outputs_are_refused_before_the_build() {
    let s = Slipway::new();
    let ctx = s.context("bad", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "1")]);
    s.run(&["images"]).ok();
    let before = store_listing(&s.root());
    for (args, says) in [
        (vec!["-o", "type=nope"], "unknown type \"nope\""),
        (vec!["-o", "type=local"], "dest= is needed"),
        (vec!["-o", "type=tar,dest=x.tar,unpack=true"], "option \"unpack\" is not supported for type=tar"),
        // (-t bad:1 names the output, replacing its name=, as in buildx)
        (vec!["-o", "type=image,name=r/app:1,push=true,push-by-digest=true"], "can't push tagged ref bad:1 by digest"),
        (vec!["-o", "type=image,compression=zstd,oci-mediatypes=false"], "conflicts with \"oci-mediatypes=false\""),
        (vec!["-o", "type=image,compression=estargz,oci-mediatypes=false"], "\"compression=estargz\" conflicts with"),
        (vec!["--annotation", "nokey"], "expected KEY=VALUE"),
        (vec!["--annotation", "weird:k=v"], "unknown annotation type"),
        (vec!["-o", "type=tar,dest=-", "-o", "type=oci,dest=-"], "more than one output writes to stdout"),
    ] {
        let r = s.build(&ctx, "bad:1", &args);
        assert_ne!(r.code, 0, "{args:?} must fail");
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(store_listing(&s.root()), before, "{args:?} left something in the store");
    }
    // push needs a name (no -t here)
    let r = s.run(&["build", "-o", "type=image,push=true", &ctx.to_string_lossy()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no name to push"), "{}", r.stderr);
    assert_eq!(store_listing(&s.root()), before);
}

#[test]
fn bool_options_take_gos_spellings() {
    // BuildKit's exporters read bools with Go's strconv.ParseBool: True, FALSE, t, F, 1, 0...
    let s = Slipway::new();
    let ctx = s.context("bools", &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "1")]);
    let lay = s.dir.path().join("lay");
    let c = ctx.to_string_lossy();
    s.run(&[
        "build",
        "-o",
        "type=image,name=kept:1,store=True,unpack=F,name-canonical=FALSE",
        "-o",
        "type=image,name=gone:1,store=f",
        "-o",
        &format!("type=oci,dest={},tar=F,oci-mediatypes=TRUE,force-compression=t", lay.display()),
        &c,
    ])
    .ok();
    // store=True names it, store=f does not; tar=F writes a layout directory
    assert_eq!(s.run(&["inspect", "kept:1"]).code, 0);
    assert_ne!(s.run(&["inspect", "gone:1"]).code, 0, "store=f must not name gone:1");
    let index = json(&lay.join("index.json"));
    assert_eq!(index["manifests"][0]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    // a spelling Go does not take is refused, naming the option
    let before = store_listing(&s.root());
    let r = s.run(&["build", "-o", "type=image,name=x:1,push=yes", &c]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("option push=\"yes\": expected true or false"), "{}", r.stderr);
    assert_eq!(store_listing(&s.root()), before);
}

#[test]
fn source_date_epoch_as_a_build_arg() {
    let s = Slipway::new();
    s.base("base:1");
    let df = "FROM base:1\nARG SOURCE_DATE_EPOCH\nRUN echo $SOURCE_DATE_EPOCH > /sde && touch /new\n";
    let ctx = s.context("sde", &[("Dockerfile", df)]);
    let out = s.dir.path().join("out");
    s.build(
        &ctx,
        "sde:1",
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-o", "type=image", "-o", &out.to_string_lossy()],
    )
    .ok();
    let img = s.save("sde:1");
    // the image's and its history's created time, the layer's mtimes
    assert_eq!(img.config["created"], "2023-11-14T22:13:20Z");
    let h = img.config["history"].as_array().unwrap();
    assert_eq!(h.last().unwrap()["created"], "2023-11-14T22:13:20Z");
    let new = img.find("new").expect("/new in the last layer");
    assert_eq!(new.mtime, 1_700_000_000);
    // ARG SOURCE_DATE_EPOCH sees it
    assert_eq!(img.find("sde").unwrap().data, b"1700000000\n");
    // a local output sets every file's mtime to it, base image files too (BuildKit's exporter)
    for f in ["sde", "bin/busybox", "etc/passwd"] {
        assert_eq!(fs::symlink_metadata(out.join(f)).unwrap().mtime(), 1_700_000_000, "{f}");
    }
    // the environment's value is the build arg's when none is given (as buildx passes it)
    let o = std::process::Command::new(integration::slipway::bin())
        .env("SOURCE_DATE_EPOCH", "1600000000")
        .args(["--root", &s.root().to_string_lossy(), "build", "-t", "sde:2", "--runtime"])
        .arg(integration::slipway::runtime())
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let img = s.save("sde:2");
    assert_eq!(img.config["created"], "2020-09-13T12:26:40Z");
    assert_eq!(img.find("sde").unwrap().data, b"1600000000\n");
    let r = s.build(&ctx, "sde:3", &["--build-arg", "SOURCE_DATE_EPOCH=yesterday"]);
    assert_ne!(r.code, 0);
    // not seconds, and no stage or context of that name: BuildKit's words (slipway_epoch.rs
    // covers the names)
    assert!(r.stderr.contains("invalid SOURCE_DATE_EPOCH: yesterday"), "{}", r.stderr);
}

#[test]
fn source_date_epoch_as_an_output_option() {
    // BuildKit's exporter option source-date-epoch: the output's times, winning over the build
    // arg; the Dockerfile's ARG never sees it
    let s = Slipway::new();
    s.base("base:1");
    let df = "FROM base:1\nARG SOURCE_DATE_EPOCH\nRUN echo \"[$SOURCE_DATE_EPOCH]\" > /sde && touch /new\n";
    let ctx = s.context("osde", &[("Dockerfile", df)]);
    let d = s.dir.path();
    let (oci, local) = (d.join("oci.tar"), d.join("local"));
    s.build(
        &ctx,
        "osde:1",
        &[
            "-o",
            &format!("type=oci,dest={},source-date-epoch=1700000000", oci.display()),
            "-o",
            &format!("type=local,dest={}", local.display()),
        ],
    )
    .ok();
    let files = tar_files(&oci);
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.created"], "2023-11-14T22:13:20Z");
    let manifest = blob(&files, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(&files, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(config["history"].as_array().unwrap().last().unwrap()["created"], "2023-11-14T22:13:20Z");
    // the layers' mtimes are clamped to it (rewrite-timestamp, slipway's default); the local
    // output, which does not say, does not take it (BuildKit gives an exporter its own option or
    // the build arg): its files are what a build with only it writes, what RUN wrote 0 (slipway's
    // default without SOURCE_DATE_EPOCH), the base's files their own times
    for f in ["new", "sde"] {
        assert_eq!(fs::symlink_metadata(local.join(f)).unwrap().mtime(), 0, "{f}");
    }
    let base = s.save("base:1");
    let busybox = base.find("bin/busybox").unwrap().mtime;
    assert_eq!(fs::symlink_metadata(local.join("bin/busybox")).unwrap().mtime(), busybox);
    assert_eq!(fs::read_to_string(local.join("sde")).unwrap(), "[]\n", "the ARG must not see the exporter's value");

    // with the build arg too, the output's value wins for its times; the ARG keeps the build arg's
    let out = d.join("img.tar");
    s.build(
        &ctx,
        "osde:2",
        &[
            "--build-arg",
            "SOURCE_DATE_EPOCH=1600000000",
            "-o",
            &format!("type=docker,dest={},source-date-epoch=1700000000", out.display()),
        ],
    )
    .ok();
    let img = read_saved(&out);
    // `created` and the history's times are the frontend's (the build arg's), which the
    // exporter only clamps to its own when later (writer.go patchImageConfig)
    assert_eq!(img.config["created"], "2020-09-13T12:26:40Z");
    assert_eq!(img.config["history"].as_array().unwrap().last().unwrap()["created"], "2020-09-13T12:26:40Z");
    assert_eq!(img.find("sde").unwrap().data, b"[1600000000]\n");
    // a file RUN wrote now is clamped to the output's time, as BuildKit's rewrite-timestamp does
    assert_eq!(img.find("new").unwrap().mtime, 1_700_000_000);
    // a build arg later than the output's time is clamped to it
    let later = d.join("later.tar");
    s.build(
        &ctx,
        "osde:later",
        &[
            "--build-arg",
            "SOURCE_DATE_EPOCH=1800000000",
            "-o",
            &format!("type=docker,dest={},source-date-epoch=1700000000", later.display()),
        ],
    )
    .ok();
    let img = read_saved(&later);
    assert_eq!(img.config["created"], "2023-11-14T22:13:20Z");
    assert_eq!(img.config["history"].as_array().unwrap().last().unwrap()["created"], "2023-11-14T22:13:20Z");
    assert_eq!(img.find("sde").unwrap().data, b"[1800000000]\n");
    // before 1970 too (BuildKit's ParseInt)
    let neg = d.join("neg.tar");
    s.build(&ctx, "osde:neg", &["-o", &format!("type=docker,dest={},source-date-epoch=-86400", neg.display())]).ok();
    assert_eq!(read_saved(&neg).config["created"], "1969-12-31T00:00:00Z");

    // an invalid one is refused before anything is built
    let before = store_listing(&s.root());
    let r = s.build(&ctx, "osde:3", &["-o", "type=image,source-date-epoch=soon"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("invalid source-date-epoch: \"soon\""), "{}", r.stderr);
    assert_eq!(store_listing(&s.root()), before);
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Sets the mtime of a file or directory (seconds since 1970).
fn set_mtime(p: &Path, secs: u64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    fs::File::open(p).and_then(|f| f.set_modified(t)).unwrap_or_else(|e| panic!("set mtime of {}: {e}", p.display()));
}

const OLD: u64 = 1_500_000_000; // before SOURCE_DATE_EPOCH
const SDE: u64 = 1_700_000_000;
const NEW: u64 = 1_750_000_000; // after it, as a fresh checkout's files are
const SDE_RFC: &str = "2023-11-14T22:13:20Z";
/// COPY'd files and directories, what RUN writes, the directories COPY and WORKDIR make.
const RT_DF: &str = "FROM top:1\nCOPY old.txt new.txt /c/\nCOPY sub /sub/\nRUN echo ran > /ran\nWORKDIR /w/x\n";

/// The context of `RT_DF`, its files' mtimes set old and new.
fn rt_context(s: &Slipway) -> std::path::PathBuf {
    let ctx = s.context(
        "rt",
        &[("Dockerfile", RT_DF), ("old.txt", "o\n"), ("new.txt", "n\n"), ("sub/g.txt", "g\n"), ("sub/deep/h", "h\n")],
    );
    for (f, t) in [("old.txt", OLD), ("new.txt", NEW), ("sub/g.txt", OLD), ("sub/deep/h", NEW), ("sub/deep", NEW)] {
        set_mtime(&ctx.join(f), t);
    }
    set_mtime(&ctx.join("sub"), OLD);
    ctx
}

fn mtime(img: &Saved, p: &str) -> u64 {
    let t = img.find(p).unwrap_or_else(|| panic!("/{p} in the image")).mtime;
    u64::try_from(t).unwrap_or_else(|_| panic!("/{p}: mtime {t}, before 1970"))
}

/// Asserts `t` is a time during the build that started at `start`.
#[track_caller]
fn written_since(what: &str, t: u64, start: u64) {
    assert!(t >= start && t <= now(), "{what}: mtime {t}, the build ran from {start}");
}

/// The log of a build (stdout and stderr).
fn log(r: &integration::slipway::Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// With SOURCE_DATE_EPOCH, BuildKit's `rewrite-timestamp` on image, oci and docker outputs.
/// `false` (BuildKit's default, and docker 20.10's BuildKit's only way): the layers keep the
/// times the build gave the files (a COPY'd file its context file's, what RUN writes the time
/// it was written), only `created` (image and history) is SOURCE_DATE_EPOCH, and a local output
/// sets every file to it. `true` (slipway's default, and what no option asks for): no mtime in
/// the build's layers is newer than SOURCE_DATE_EPOCH, older ones stay (BuildKit clamps), a
/// base image's layers are not touched, and a build without the cache gives the same image. The
/// mode is part of each step's cache key: switching it is a miss whose explanation names it,
/// switching back a hit. Outputs of one build asking layers no one build can give (the files'
/// own times with different WORKDIR times) are refused before anything is built, naming them.
#[test]
fn rewrite_timestamp_with_source_date_epoch() {
    let s = Slipway::new();
    s.base("base:1");
    // a base whose layer keeps a file's real time: slipway's rewrite leaves base layers alone
    let top = s.context("top", &[("Dockerfile", "FROM base:1\nRUN touch /basefile\n")]);
    let start = now();
    s.build(&top, "top:1", &["-o", "type=image,rewrite-timestamp=false"]).ok();
    let top_img = s.save("top:1");
    written_since("/basefile of the base", mtime(&top_img, "basefile"), start);
    let ctx = rt_context(&s);
    let sde = format!("SOURCE_DATE_EPOCH={SDE}");
    let out = |n: &str| s.dir.path().join(n);
    let kept = |tag: &str| {
        let o = format!("type=oci,dest={},rewrite-timestamp=false", out(&format!("{tag}.oci.tar")).display());
        let d = format!("type=docker,dest={},rewrite-timestamp=false", out(&format!("{tag}.docker.tar")).display());
        let l = format!("type=local,dest={}", out(&format!("{tag}.local")).display());
        let args = ["--build-arg", &sde, "-o", "type=image,rewrite-timestamp=false", "-o", &o, "-o", &d, "-o", &l];
        log(&s.build(&ctx, tag, &[&args[..], &["--explain-cache"]].concat()).ok())
    };

    // rewrite-timestamp=false
    let start = now();
    kept("rt:kept");
    let img = s.save("rt:kept");
    assert_eq!(img.config["created"], SDE_RFC);
    assert_eq!(img.config["history"].as_array().unwrap().last().unwrap()["created"], SDE_RFC);
    // copied directories keep theirs too (today's BuildKit: fsutil's copy sets a directory's
    // times after its contents; docker 20.10's BuildKit v0.8 leaves them the copy's time)
    for (p, t) in [("c/old.txt", OLD), ("c/new.txt", NEW), ("sub/g.txt", OLD), ("sub/deep", NEW), ("sub", OLD)] {
        assert_eq!(mtime(&img, p), t, "{p}");
    }
    // the directories WORKDIR makes get SOURCE_DATE_EPOCH, as BuildKit's frontend makes them
    assert_eq!((mtime(&img, "w"), mtime(&img, "w/x")), (SDE, SDE));
    // what the build wrote has the time it was written: RUN's file, the directory COPY made
    for p in ["ran", "c"] {
        written_since(&format!("/{p}"), mtime(&img, p), start);
    }
    // the oci and docker outputs hold the same image (one set of layers for the build)
    let docker = read_saved(&out("rt:kept.docker.tar"));
    assert_eq!(docker.id(), img.id());
    assert_eq!(mtime(&docker, "c/new.txt"), NEW);
    let oci = tar_files(&out("rt:kept.oci.tar"));
    assert!(oci.contains_key(&format!("blobs/sha256/{}", img.id().trim_start_matches("sha256:"))));
    // a local output sets every file's mtime to SOURCE_DATE_EPOCH whatever the layers hold,
    // as BuildKit's local exporter does
    for f in ["c/old.txt", "c/new.txt", "ran", "basefile", "bin/busybox"] {
        assert_eq!(fs::symlink_metadata(out("rt:kept.local").join(f)).unwrap().mtime() as u64, SDE, "{f}");
    }

    // no rewrite-timestamp: true, the mode switch is a miss naming it
    let r = s.build(&ctx, "rt:1", &["--build-arg", &sde, "--explain-cache"]).ok();
    let want = format!(
        "Cache miss: timestamps changed: rewrite-timestamp=false (file mtimes as written), created {SDE} -> \
         rewrite-timestamp=true (file mtimes at most {SDE}), created {SDE}"
    );
    assert!(log(&r).contains(&want), "{}", log(&r));
    let def = s.save("rt:1");
    assert_eq!(def.config["created"], SDE_RFC);
    // clamped: older times stay, newer ones and what the build wrote are SOURCE_DATE_EPOCH
    for (p, t) in [
        ("c/old.txt", OLD),
        ("sub/g.txt", OLD),
        ("sub", OLD),
        ("c/new.txt", SDE),
        ("sub/deep", SDE),
        ("sub/deep/h", SDE),
        ("c", SDE),
        ("ran", SDE),
        ("w/x", SDE),
    ] {
        assert_eq!(mtime(&def, p), t, "{p}");
    }
    // the base image's layers are the base's, its file newer than SOURCE_DATE_EPOCH too
    assert_eq!(def.layers[..top_img.layers.len()], top_img.layers[..]);
    assert_eq!(mtime(&def, "basefile"), mtime(&top_img, "basefile"));
    // reproducible: again without the cache, the same image; rewrite-timestamp=true is the same
    // build (every step a hit)
    s.build(&ctx, "rt:2", &["--build-arg", &sde, "--no-cache"]).ok();
    assert_eq!(s.save("rt:2").id(), def.id());
    let r = s.build(&ctx, "rt:3", &["--build-arg", &sde, "-o", "type=image,rewrite-timestamp=true", "--explain-cache"]);
    let r = r.ok();
    assert!(!log(&r).contains("Cache miss"), "{}", log(&r));
    assert_eq!(s.save("rt:3").id(), def.id());
    // switching back is a hit, every step, and the same image
    let l = kept("rt:kept2");
    assert!(!l.contains("Cache miss"), "{l}");
    assert_eq!(s.save("rt:kept2").id(), img.id());

    // outputs asking for layers no one build can give (the files' own times with two different
    // WORKDIR times): refused before anything is built, naming them (slipway_epoch.rs has the
    // outputs that differ and are served)
    let before = store_listing(&s.root());
    let x = out("x.tar");
    let oci = format!("type=oci,dest={},rewrite-timestamp=false", x.display());
    let r = s.build(&ctx, "rt:4", &["-o", "type=image,rewrite-timestamp=false,source-date-epoch=5", "-o", &oci]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains(
            "--output 1 (type=image) needs layers with the files' own mtimes (WORKDIR's directories 5) and \
             --output 2 (type=oci) layers with the files' own mtimes: no layers one build writes can be made into both"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(store_listing(&s.root()), before);
    assert!(!x.exists());
    let r = s.build(&ctx, "rt:4", &["-o", "type=image,rewrite-timestamp=maybe"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("rewrite-timestamp"), "{}", r.stderr);

    // docker 20.10's BuildKit (no rewrite-timestamp: its layers always keep the times) on the
    // same base gives the COPY'd files the same mtimes, RUN's a recent one (its v0.8 predates
    // SOURCE_DATE_EPOCH, so its WORKDIR's are the build's time)
    let Some(bk) = BuildKit::shared() else { return };
    let tar = out("top.tar");
    s.run(&["save", "top:1", "-o", &tar.to_string_lossy()]).ok();
    bk.run(&["load", "-i", &tar.to_string_lossy()]).ok();
    let start = now();
    bk.build(&ctx, "rt", &["--build-arg", &sde]).ok();
    let theirs = bk.save("rt");
    for p in ["c/old.txt", "c/new.txt", "sub/g.txt", "sub/deep/h"] {
        assert_eq!(mtime(&theirs, p), mtime(&img, p), "{p}: BuildKit vs slipway");
    }
    for p in ["ran", "c"] {
        written_since(&format!("BuildKit's /{p}"), mtime(&theirs, p), start);
    }
}

/// Without SOURCE_DATE_EPOCH: slipway's default (rewrite-timestamp=true) writes every mtime in
/// the build's layers as 0 and `created` as 1970, so equal inputs give equal images;
/// `rewrite-timestamp=false` keeps the files' times as BuildKit does (BuildKit's `true` does
/// nothing without SOURCE_DATE_EPOCH), and a local output beside it is what a build with only it
/// writes (0, slipway's default). `created` stays
/// slipway's reproducible 0 in both (`--timestamp` is what changes it). Each mode has its own
/// cache entries.
#[test]
fn rewrite_timestamp_without_source_date_epoch() {
    let s = Slipway::new();
    s.base("base:1");
    s.run(&["tag", "base:1", "top:1"]).ok();
    let ctx = rt_context(&s);
    let local = s.dir.path().join("local");
    let l = format!("type=local,dest={}", local.display());

    let start = now();
    let r = s.build(&ctx, "rt:kept", &["-o", "type=image,rewrite-timestamp=false", "-o", &l]).ok();
    let img = s.save("rt:kept");
    assert_eq!(img.config["created"], "1970-01-01T00:00:00Z");
    // the local output is what a build with only it writes (slipway's default: 0), made from
    // the same steps (their layers rewritten)
    for (p, t) in [("c/old.txt", OLD), ("c/new.txt", NEW), ("sub/g.txt", OLD), ("sub", OLD), ("sub/deep", NEW)] {
        assert_eq!(mtime(&img, p), t, "{p}");
        assert_eq!(fs::symlink_metadata(local.join(p)).unwrap().mtime(), 0, "local output: {p}");
    }
    // what the build wrote, WORKDIR's directories too: the time it was written
    for p in ["ran", "c", "w", "w/x"] {
        written_since(&format!("/{p}"), mtime(&img, p), start);
        assert_eq!(fs::symlink_metadata(local.join(p)).unwrap().mtime(), 0, "local output: {p}");
    }
    assert!(!log(&r).contains("Cache hit"), "{}", log(&r));

    // the default: every mtime 0; the base's layers as they were
    let r = s.build(&ctx, "rt:1", &["--explain-cache"]).ok();
    assert!(log(&r).contains("rewrite-timestamp=true (file mtimes 0)"), "{}", log(&r));
    let def = s.save("rt:1");
    assert_eq!(def.config["created"], "1970-01-01T00:00:00Z");
    let base = s.save("base:1");
    assert_eq!(def.layers[..base.layers.len()], base.layers[..]);
    assert!(def.layers[base.layers.len()..].iter().flatten().all(|e| e.mtime == 0), "{:?}", def.layers);
    // explicitly true: the same build, every step a hit
    let r = s.build(&ctx, "rt:2", &["-o", "type=image,rewrite-timestamp=true", "--explain-cache"]).ok();
    assert!(!log(&r).contains("Cache miss"), "{}", log(&r));
    assert_eq!(s.save("rt:2").id(), def.id());
    // false again: its own cache entries, the first image again
    let r = s.build(&ctx, "rt:kept2", &["-o", "type=image,rewrite-timestamp=false", "--explain-cache"]).ok();
    assert!(!log(&r).contains("Cache miss"), "{}", log(&r));
    assert_eq!(s.save("rt:kept2").id(), img.id());
}

/// docker.io's own CLI (20.10): its `docker build` speaks to dockerd's BuildKit without buildx
/// (a newer CLI on PATH wants the buildx plugin for that).
const DOCKER_CLI: &str = "/usr/bin/docker";

/// A private dockerd for BuildKit builds, or None (the test skips) without docker.io.
fn docker_buildkit() -> Option<Engine> {
    if !Path::new(DOCKER_CLI).is_file() {
        integration::skip(format!("{DOCKER_CLI} (docker.io) not installed: no comparison with docker's BuildKit"));
        return None;
    }
    Engine::bare(Kind::Docker)
}

/// `docker build` through BuildKit with `args` and the context `ctx`.
fn buildkit_build(e: &Engine, args: &[&str], ctx: &Path) -> std::process::Output {
    let out = std::process::Command::new(DOCKER_CLI)
        .arg("-H")
        .arg(format!("unix://{}/sock", e.dir().display()))
        .arg("build")
        .args(args)
        .arg(ctx)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap_or_else(|err| panic!("run {DOCKER_CLI}: {err}"));
    out
}

/// docker 20.10's BuildKit writes `-o type=tar` of the same Dockerfile: the same paths, kinds,
/// modes and contents as slipway's (its `docker build` has no other output of interest here:
/// oci and docker outputs need buildx).
#[test]
fn tar_output_matches_docker_buildkit() {
    let s = Slipway::new();
    let df = "FROM scratch\nCOPY --chmod=0750 a /bin/a\nCOPY sub /opt/sub/\nCOPY link /l\n";
    let ctx = s.context("cmp", &[("Dockerfile", df), ("a", "#!/bin/sh\n"), ("sub/x", "x"), ("sub/deep/y", "y")]);
    std::os::unix::fs::symlink("a", ctx.join("link")).unwrap();
    let ours = s.dir.path().join("ours.tar");
    s.build(&ctx, "cmp:1", &["-o", &format!("type=tar,dest={}", ours.display())]).ok();
    let Some(engine) = docker_buildkit() else { return };
    let theirs = s.dir.path().join("theirs.tar");
    let out =
        buildkit_build(&engine, &["--network", "none", "-o", &format!("type=tar,dest={}", theirs.display())], &ctx);
    assert!(out.status.success(), "docker build: {}", String::from_utf8_lossy(&out.stderr));
    let list = |p: &Path| -> Vec<(String, String, u32, Vec<u8>)> {
        let f = fs::File::open(p).unwrap();
        let mut ar = tar::Archive::new(f);
        let mut v: Vec<(String, String, u32, Vec<u8>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_string();
                let kind = format!("{:?}", e.header().entry_type());
                let mode = e.header().mode().unwrap() & 0o7777;
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (path, kind, mode, data)
            })
            .collect();
        v.sort();
        v
    };
    // `COPY --chmod=0750 a /bin/a` makes the missing /bin with the mode in today's BuildKit
    // (its testCopyChmod: `COPY --chmod=777 foo /parent/foo` gives /parent 0777), and 0755 in
    // docker 20.10's (BuildKit v0.8): slipway does what today's does
    let (mut ours, mut theirs) = (list(&ours), list(&theirs));
    for (v, want) in [(&mut ours, 0o750), (&mut theirs, 0o755)] {
        let bin = v.iter_mut().find(|e| e.0 == "bin").expect("bin in the tar");
        assert_eq!(bin.2, want, "{bin:?}");
        bin.2 = 0;
    }
    assert_eq!(ours, theirs);
}

/// A layer of a layout: its media type and blob.
type LayerBlob = (String, Vec<u8>);

/// An OCI layout tar's manifest, each of its layers, and its config's diff IDs.
fn layout_layers(files: &BTreeMap<String, Vec<u8>>) -> (serde_json::Value, Vec<LayerBlob>, Vec<String>) {
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let manifest = blob(files, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(files, manifest["config"]["digest"].as_str().unwrap());
    let diff_ids =
        config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_string()).collect();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let p = format!("blobs/sha256/{}", l["digest"].as_str().unwrap().trim_start_matches("sha256:"));
            (l["mediaType"].as_str().unwrap().to_string(), files.get(&p).unwrap_or_else(|| panic!("{p}")).clone())
        })
        .collect();
    (manifest, layers, diff_ids)
}

/// The sha256 of a layer blob decompressed as its media type says.
fn diff_id_of(media_type: &str, blob: &[u8]) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut raw = Vec::new();
    if media_type.ends_with("zstd") {
        assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "{media_type}: a zstd frame");
        raw = zstd::decode_all(blob).unwrap();
    } else if media_type.ends_with("gzip") {
        assert_eq!(&blob[..2], &[0x1f, 0x8b], "{media_type}: a gzip stream");
        flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut raw).unwrap();
    } else {
        assert!(media_type.ends_with(".tar"), "{media_type}");
        raw = blob.to_vec();
    }
    format!("sha256:{:x}", sha2::Sha256::digest(&raw))
}

#[test]
fn layer_compression_and_media_types_as_buildkit_exports_them() {
    let s = Slipway::new();
    s.base("base:1");
    let ctx = s.context("comp", &[("Dockerfile", APP), ("f.txt", "from the context\n")]);
    let d = s.dir.path();
    let iid = d.join("iid");
    let out = |n: &str| d.join(n).to_string_lossy().into_owned();
    s.build(
        &ctx,
        "comp:zstd",
        &[
            "-o",
            &format!("type=oci,dest={},compression=zstd,compression-level=19", out("zstd.tar")),
            "-o",
            &format!("type=oci,dest={},compression=uncompressed", out("raw.tar")),
            "-o",
            &format!("type=oci,dest={},oci-mediatypes=false", out("docker-types.tar")),
            "-o",
            "type=image,compression=zstd",
            "--iidfile",
            &iid.to_string_lossy(),
        ],
    )
    .ok();
    let id = fs::read_to_string(&iid).unwrap();
    for (file, manifest_type, config_type, layer_type) in [
        (
            "zstd.tar",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        (
            "raw.tar",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar",
        ),
        (
            "docker-types.tar",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
    ] {
        let files = tar_files(&d.join(file));
        let (manifest, layers, diff_ids) = layout_layers(&files);
        // the config is untouched: the image ID stays, whatever the layers' compression
        assert_eq!(manifest["config"]["digest"], id.as_str(), "{file}");
        assert_eq!(manifest["mediaType"], manifest_type, "{file}");
        assert_eq!(manifest["config"]["mediaType"], config_type, "{file}");
        assert_eq!(layers.len(), diff_ids.len(), "{file}");
        for ((mt, blob), diff) in layers.iter().zip(&diff_ids) {
            assert_eq!(mt, layer_type, "{file}");
            assert_eq!(&diff_id_of(mt, blob), diff, "{file}: a layer's content is its diff ID");
        }
        if have("skopeo") {
            // a third party reads it and checks every blob's digest
            let dest = d.join(format!("copy-{file}"));
            let o = std::process::Command::new("skopeo")
                .args(["copy", &format!("oci-archive:{}", d.join(file).display()), &format!("oci:{}", dest.display())])
                .output()
                .unwrap();
            assert!(o.status.success(), "skopeo copy {file}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
    if !have("skopeo") {
        integration::skip("skopeo not installed: the converted layouts are not read by skopeo");
    }

    // the store keeps the zstd image under its name; a build on top of it unpacks those layers
    let r = s.run(&["inspect", "comp:zstd"]).ok();
    assert!(r.stdout.contains(id.trim()), "{}", r.stdout);
    let on_top = s.context("ontop", &[("Dockerfile", "FROM comp:zstd\nRUN cat /hello /f.txt > /both\n"), ("x", "")]);
    let both = d.join("both.tar");
    s.build(&on_top, "ontop:1", &["-o", &format!("type=oci,dest={}", both.display())]).ok();
    let files = tar_files(&both);
    let (_, layers, diff_ids) = layout_layers(&files);
    let types: Vec<&str> = layers.iter().map(|(mt, _)| mt.as_str()).collect();
    // BuildKit's rule: the new layer takes the compression asked for (gzip, the default), the
    // base image's zstd blobs stay as they are unless force-compression is given
    let n = types.len();
    assert!(types[..n - 1].iter().all(|t| t.ends_with("+zstd")), "{types:?}");
    assert!(types[n - 1].ends_with("+gzip"), "{types:?}");
    s.build(&on_top, "ontop:1", &["-o", &format!("type=oci,dest={},force-compression=true", both.display())]).ok();
    let files = tar_files(&both);
    let (_, layers, forced_diffs) = layout_layers(&files);
    assert_eq!(forced_diffs, diff_ids);
    for ((mt, blob), diff) in layers.iter().zip(&forced_diffs) {
        assert!(mt.ends_with("+gzip"), "force-compression: {mt}");
        assert_eq!(&diff_id_of(mt, blob), diff);
    }
}

/// The annotations of each layer descriptor of an OCI layout tar's (first) manifest.
fn layer_annotations(manifest: &serde_json::Value) -> Vec<serde_json::Value> {
    manifest["layers"].as_array().unwrap().iter().map(|l| l["annotations"].clone()).collect()
}

#[test]
fn estargz_layers_as_buildkit_writes_them() {
    use integration::estargz;
    let s = Slipway::new();
    s.base("base:1");
    let df = "FROM base:1\nRUN echo hi > /hello && mkdir -p /d && ln -s ../hello /d/link && ln /hello /d/hard\n\
              COPY f.txt big.bin /\n";
    let ctx = s.context("esgz", &[("Dockerfile", df), ("f.txt", "from the context\n")]);
    // 9 MiB and a bit: three chunks of stargz-snapshotter's 4 MiB
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..(9 << 20) + 77)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect();
    fs::write(ctx.join("big.bin"), &big).unwrap();
    let d = s.dir.path();
    let iid = d.join("iid");
    let out = |n: &str| d.join(n).to_string_lossy().into_owned();
    s.build(
        &ctx,
        "esgz:1",
        &[
            "-o",
            &format!("type=oci,dest={},compression=estargz", out("esgz.tar")),
            "-o",
            &format!("type=oci,dest={}", out("gz.tar")),
            "-o",
            "type=image,compression=estargz,compression-level=9",
            "--iidfile",
            &iid.to_string_lossy(),
        ],
    )
    .ok();
    let id = fs::read_to_string(&iid).unwrap();
    let files = tar_files(&d.join("esgz.tar"));
    let (manifest, layers, diff_ids) = layout_layers(&files);
    let (_, plain_layers, plain_diff_ids) = layout_layers(&tar_files(&d.join("gz.tar")));
    assert_eq!(layers.len(), plain_layers.len());
    let annotations = layer_annotations(&manifest);
    let mut chunked = Vec::new();
    for (i, ((mt, blob), diff)) in layers.iter().zip(&diff_ids).enumerate() {
        // eStargz is gzip to every reader
        assert_eq!(mt, "application/vnd.oci.image.layer.v1.tar+gzip");
        let c = estargz::check(blob, diff, &annotations[i]);
        chunked.extend(c.chunked);
        // the layer tar it holds is the plain export's: the same files, the same bytes
        let mut plain = Vec::new();
        use std::io::Read;
        flate2::read::GzDecoder::new(&plain_layers[i].1[..]).read_to_end(&mut plain).unwrap();
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut raw).unwrap();
        assert!(raw.starts_with(&plain), "layer {i}: the eStargz blob starts with the layer's tar, unchanged");
        if i == layers.len() - 1 {
            assert_eq!(c.files.get("big.bin"), Some(&big));
            assert_eq!(c.files.get("f.txt").map(Vec::as_slice), Some(&b"from the context\n"[..]));
        }
    }
    assert_eq!(chunked, ["big.bin"], "the file over 4 MiB, and only it, is cut into chunks");
    // as in BuildKit: the TOC's tar is part of what the blob decompresses to, so the diff IDs
    // and with them the image ID are not the plain export's; the rest of the config is
    assert!(diff_ids.iter().zip(&plain_diff_ids).all(|(a, b)| a != b), "{diff_ids:?}");
    assert_ne!(manifest["config"]["digest"], id.as_str());
    let mut config = blob(&files, manifest["config"]["digest"].as_str().unwrap());
    let mut plain_config = blob(&tar_files(&d.join("gz.tar")), id.trim());
    config["rootfs"] = serde_json::Value::Null;
    plain_config["rootfs"] = serde_json::Value::Null;
    assert_eq!(config, plain_config);
    if have("skopeo") {
        let o = std::process::Command::new("skopeo")
            .args(["copy", &format!("oci-archive:{}", out("esgz.tar")), &format!("oci:{}", out("esgz-copy"))])
            .output()
            .unwrap();
        assert!(o.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&o.stderr));
    } else {
        integration::skip("skopeo not installed: the eStargz layout is not read by skopeo");
    }

    // the store keeps the eStargz image; a build on top of it unpacks its layers; its eStargz
    // blobs stay as they are (annotations and all) in a gzip export, as BuildKit keeps a base
    // image's blobs, and are not made again by compression=estargz
    let on_top = s.context(
        "esgz-top",
        &[("Dockerfile", "FROM esgz:1\nRUN cat /hello /f.txt /d/hard > /both && test $(wc -c < /big.bin) = 9437261\n")],
    );
    s.build(&on_top, "esgz:top", &["-o", &format!("type=oci,dest={}", out("top.tar"))]).ok();
    let files = tar_files(&d.join("top.tar"));
    let (top_manifest, top_layers, top_diff_ids) = layout_layers(&files);
    let n = top_layers.len();
    assert_eq!(n, layers.len() + 1);
    let top_annotations = layer_annotations(&top_manifest);
    for i in 0..n - 1 {
        assert!(estargz::has_footer(&top_layers[i].1), "base layer {i} keeps its eStargz blob");
        estargz::check(&top_layers[i].1, &top_diff_ids[i], &top_annotations[i]);
    }
    assert!(!estargz::has_footer(&top_layers[n - 1].1), "the new layer is plain gzip");
    let mut top = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&top_layers[n - 1].1[..]), &mut top).unwrap();
    let both =
        tar::Archive::new(&top[..]).entries().unwrap().map(|e| e.unwrap()).find(|e| &*e.path_bytes() == b"both").map(
            |mut e| {
                let mut v = String::new();
                std::io::Read::read_to_string(&mut e, &mut v).unwrap();
                v
            },
        );
    assert_eq!(both.as_deref(), Some("hi\nfrom the context\nhi\n"), "the RUN step read the eStargz layers' files");
    assert!(top_annotations[n - 1].get(estargz::TOC_DIGEST).is_none());
    s.build(&on_top, "esgz:top", &["-o", &format!("type=oci,dest={},compression=estargz", out("top2.tar"))]).ok();
    let (m2, l2, d2) = layout_layers(&tar_files(&d.join("top2.tar")));
    assert_eq!(d2[..n - 1], top_diff_ids[..n - 1], "eStargz base layers are not made again");
    estargz::check(&l2[n - 1].1, &d2[n - 1], &layer_annotations(&m2)[n - 1]);
    // force-compression=true makes them plain gzip of the tar they were made of: the plain
    // export's diff IDs again
    s.build(&on_top, "esgz:top", &["-o", &format!("type=oci,dest={},force-compression=true", out("forced.tar"))]).ok();
    let (_, forced, forced_diffs) = layout_layers(&tar_files(&d.join("forced.tar")));
    assert_eq!(forced_diffs[..n - 1], plain_diff_ids[..]);
    for ((mt, b), diff) in forced.iter().zip(&forced_diffs) {
        assert!(!estargz::has_footer(b));
        assert_eq!(&diff_id_of(mt, b), diff);
    }

    // docker media types have no eStargz (BuildKit's OnlySupportOCITypes)
    let o = s.build(
        &ctx,
        "esgz:plain",
        &["-o", &format!("type=docker,dest={},compression=estargz,oci-mediatypes=false", out("d.tar"))],
    );
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("\"compression=estargz\" conflicts with \"oci-mediatypes=false\""), "{}", o.stderr);
    assert!(!d.join("d.tar").exists());
}

/// buildx's `--load`, and `-o type=docker` without `dest` (buildx loads such an output into
/// docker): the docker-archive is streamed into `docker load` (the CLI on PATH, DOCKER_HOST
/// saying which daemon), and docker then has the image under its name with slipway's image ID
/// and runs it. A daemon that cannot be reached fails the build, naming `docker load`.
#[test]
fn load_puts_the_image_into_docker() {
    let s = Slipway::new();
    s.base("base:1");
    let ctx =
        s.context("load", &[("Dockerfile", "FROM base:1\nCOPY a /a\nCMD [\"cat\", \"/a\"]\n"), ("a", "loaded\n")]);
    s.build(&ctx, "ld:1", &[]).ok();
    let id = s.save("ld:1").id();
    let Some(engine) = docker_buildkit() else { return };
    let build = |host: &str, extra: &[&str]| {
        let mut c = std::process::Command::new(integration::slipway::bin());
        c.arg("--root").arg(s.root()).args(["build", "--runtime", &integration::slipway::runtime()]);
        c.args(extra).arg(&ctx).env("DOCKER_HOST", host);
        c.output().expect("run slipway")
    };
    let host = format!("unix://{}/sock", engine.dir().display());
    for (extra, name) in [(vec!["--load", "-t", "ld:1"], "ld:1"), (vec!["-o", "type=docker,name=ld:2"], "ld:2")] {
        let out = build(&host, &extra);
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let got = engine.run(&["image", "inspect", "--format", "{{.Id}}", name]);
        assert_eq!(got.ok().stdout.trim(), id, "{extra:?}: docker's image ID");
    }
    let ran = engine.run(&["run", "--rm", "ld:2"]);
    assert_eq!(ran.ok().stdout, "loaded\n");
    // no daemon there: the output fails, and says where
    let gone = format!("unix://{}/no-such.sock", engine.dir().display());
    let out = build(&gone, &["--load", "-t", "ld:3"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("docker load"), "{err}");
}

/// `date -u` of `secs` as GNU tar's `--full-time` listing shows it in UTC.
fn utc(secs: u64) -> String {
    let o = std::process::Command::new("date").args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d %H:%M:%S"]).output();
    String::from_utf8_lossy(&o.expect("run date").stdout).trim().to_string()
}

/// The layer blobs of the image in an oci or docker archive (the first manifest's).
fn archive_layers(path: &Path) -> Vec<Vec<u8>> {
    let files = tar_files(path);
    if let Some(m) = files.get("manifest.json") {
        let m: serde_json::Value = serde_json::from_slice(m).unwrap();
        return m[0]["Layers"].as_array().unwrap().iter().map(|l| files[l.as_str().unwrap()].clone()).collect();
    }
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let mut manifest = blob(&files, index["manifests"][0]["digest"].as_str().unwrap());
    // a multi-platform image: the first platform's
    while manifest.get("manifests").is_some() {
        manifest = blob(&files, manifest["manifests"][0]["digest"].as_str().unwrap());
    }
    let hex = |d: &serde_json::Value| format!("blobs/sha256/{}", d.as_str().unwrap().trim_start_matches("sha256:"));
    manifest["layers"].as_array().unwrap().iter().map(|l| files[&hex(&l["digest"])].clone()).collect()
}

/// Each entry's time in the layers of an oci or docker archive as GNU tar lists them
/// (`--full-time`, UTC): path -> "YYYY-MM-DD HH:MM:SS", the last layer's winning.
fn gnu_tar_times(path: &Path) -> BTreeMap<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    let mut times = BTreeMap::new();
    for (i, l) in archive_layers(path).iter().enumerate() {
        let f = tmp.path().join(format!("{i}.tar.gz"));
        fs::write(&f, l).unwrap();
        let o = std::process::Command::new("tar").env("TZ", "UTC").arg("--full-time").arg("-tvf").arg(&f).output();
        let o = o.expect("run GNU tar");
        assert!(o.status.success(), "tar -tvf: {}", String::from_utf8_lossy(&o.stderr));
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            // "-rw-r--r-- 0/0 2 2020-09-13 12:26:40 c/new.txt" (a link: "... l -> target")
            let f: Vec<&str> = line.split_whitespace().collect();
            let name = f[5].trim_end_matches('/').to_string();
            times.insert(name, format!("{} {}", f[3], f[4]));
        }
    }
    times
}

/// BuildKit applies `rewrite-timestamp` and `source-date-epoch` per exporter (control.go gives
/// the build arg to the exporters without their own; each image exporter rewrites the layers it
/// exports, clamping only times newer than its epoch). One slipway build with outputs of
/// different times runs its steps once, and each output is, byte for byte, what a build with only
/// that output writes; the times inside checked with GNU tar. A local output with its own
/// source-date-epoch has it on every file; an image output that unpacks has its own layers'
/// snapshots; what no name holds is pruned.
#[test]
fn outputs_of_different_times_are_each_what_a_build_of_only_them_writes() {
    let s = Slipway::new();
    s.base("base:1");
    s.run(&["tag", "base:1", "top:1"]).ok();
    let ctx = rt_context(&s);
    let out = |n: &str| s.dir.path().join(n);
    const LOW: u64 = 1_600_000_000; // between OLD and SDE
    let sde = format!("SOURCE_DATE_EPOCH={SDE}");
    let oci = |n: &str, opts: &str| format!("type=oci,dest={}{opts}", out(n).display());
    let docker = |n: &str, opts: &str| format!("type=docker,dest={}{opts}", out(n).display());
    let low = format!(",source-date-epoch={LOW}");
    // (the build's args, its outputs (byte-compared with a build of only that one, or not: the
    // files' own times hold when RUN wrote), and the times GNU tar lists in each archive)
    let zero = utc(0);
    type Outputs = Vec<(String, bool)>;
    let cases: Vec<(Vec<&str>, Outputs)> = vec![
        // the build arg's clamp (the build's own layers), an output's lower one
        (
            vec!["--build-arg", &sde],
            vec![(oci("a1.tar", &format!(",rewrite-timestamp=true{low}")), true), (oci("b1.tar", ""), true)],
        ),
        // no SOURCE_DATE_EPOCH: slipway's 0 and two clamps come from layers of the files' own
        // times (an output's), made once
        (
            vec![],
            vec![
                (oci("a2.tar", &low), true),
                (oci("b2.tar", ""), true),
                (docker("d2.tar", &format!(",source-date-epoch={SDE}")), true),
                (oci("k2.tar", ",rewrite-timestamp=false"), false),
            ],
        ),
        // an output's own layers in its compression: zstd, eStargz (new TOC, new diff IDs),
        // beside the build's
        (
            vec!["--build-arg", &sde],
            vec![
                (oci("z3.tar", &format!(",compression=zstd{low}")), true),
                (oci("e3.tar", &format!(",compression=estargz{low}")), true),
                (oci("b3.tar", ""), true),
            ],
        ),
        // with provenance: each output's attestation is about its own image
        (
            vec!["--build-arg", &sde, "--provenance", "mode=max"],
            vec![(oci("pa.tar", &low), true), (oci("pb.tar", ""), true)],
        ),
    ];
    let want: BTreeMap<&str, Vec<(&str, String)>> = BTreeMap::from([
        (
            "a1.tar",
            vec![
                ("c/old.txt", utc(OLD)),
                ("c/new.txt", utc(LOW)),
                ("ran", utc(LOW)),
                ("w/x", utc(LOW)),
                ("sub/deep", utc(LOW)),
            ],
        ),
        (
            "b1.tar",
            vec![
                ("c/old.txt", utc(OLD)),
                ("c/new.txt", utc(SDE)),
                ("ran", utc(SDE)),
                ("w/x", utc(SDE)),
                ("sub", utc(OLD)),
            ],
        ),
        ("a2.tar", vec![("c/old.txt", utc(OLD)), ("c/new.txt", utc(LOW)), ("ran", utc(LOW)), ("w/x", utc(LOW))]),
        (
            "b2.tar",
            vec![
                ("c/old.txt", zero.clone()),
                ("c/new.txt", zero.clone()),
                ("ran", zero.clone()),
                ("w/x", zero.clone()),
            ],
        ),
        ("d2.tar", vec![("c/old.txt", utc(OLD)), ("c/new.txt", utc(SDE)), ("ran", utc(SDE)), ("w/x", utc(SDE))]),
        ("k2.tar", vec![("c/old.txt", utc(OLD)), ("c/new.txt", utc(NEW)), ("sub/deep", utc(NEW))]),
        // (zstd: GNU tar needs the zstd program, which CI does not install; compared by bytes)
        ("e3.tar", vec![("c/old.txt", utc(OLD)), ("c/new.txt", utc(LOW)), ("ran", utc(LOW)), ("w/x", utc(LOW))]),
    ]);
    for (args, outputs) in &cases {
        let mut all = args.clone();
        for (o, _) in outputs {
            all.extend(["-o", o.as_str()]);
        }
        let r = s.build(&ctx, "v:1", &all).ok();
        // the steps ran once; the outputs of other times said so
        assert_eq!(log(&r).matches("echo ran").count(), 1, "{}", log(&r));
        assert!(log(&r).contains(": its own times: rewrite-timestamp=true"), "{}", log(&r));
        let mut written = Vec::new();
        for (o, _) in outputs {
            let name = Path::new(o.split("dest=").nth(1).unwrap().split(',').next().unwrap()).to_path_buf();
            let n = name.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(w) = want.get(n.as_str()) {
                let times = gnu_tar_times(&name);
                for (p, t) in w {
                    assert_eq!(times.get(*p), Some(t), "{n}: /{p} in {times:?}");
                }
            }
            written.push((name, fs::read(out(&n)).unwrap()));
        }
        // a build of only that output: the same bytes
        for ((o, compare), (name, bytes)) in outputs.iter().zip(written) {
            if !compare {
                continue;
            }
            s.build(&ctx, "v:1", &[&args[..], &["-o", o.as_str()]].concat()).ok();
            assert!(fs::read(&name).unwrap() == bytes, "{}: not what a build of only it writes", name.display());
        }
    }
    // the files' own times serve a clamp after the build arg's too; a local output's own time is
    // every file's; an image output's own layers are what it unpacks, and its image is the oci
    // output's of the same times
    let local = out("l3");
    let l = format!("type=local,dest={},source-date-epoch={LOW}", local.display());
    let a3 = oci("a3.tar", &low);
    s.build(&ctx, "v:1", &["--build-arg", &sde, "-o", &a3, "-o", &l, "-o", &format!("type=image,unpack=true{low}")])
        .ok();
    for f in ["c/new.txt", "ran", "w/x", "bin/busybox"] {
        assert_eq!(fs::symlink_metadata(local.join(f)).unwrap().mtime() as u64, LOW, "local output: {f}");
    }
    let img = s.save("v:1");
    assert_eq!(fs::read(out("a3.tar")).unwrap(), fs::read(out("a1.tar")).unwrap());
    assert_eq!(mtime(&img, "c/new.txt"), LOW);
    let last = img.config["rootfs"]["diff_ids"].as_array().unwrap().last().unwrap().as_str().unwrap().to_string();
    assert!(s.root().join("snapshots").join(last.trim_start_matches("sha256:")).is_dir(), "unpacked {last}");
    // an output's own layers that nothing in the store names: prune removes them
    let p = oci("p.tar", ",source-date-epoch=1550000000");
    s.build(&ctx, "v:1", &["--build-arg", &sde, "-o", &p]).ok();
    let layers = archive_layers(&out("p.tar"));
    let digest = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(layers.last().unwrap()));
    assert!(s.root().join("blobs/sha256").join(&digest).exists());
    s.run(&["prune"]).ok();
    assert!(!s.root().join("blobs/sha256").join(&digest).exists(), "p.tar's last layer {digest} survived prune");
}

/// Outputs of different times with what slipway's 0 keeps (ADD's Last-Modified, a time of the
/// source's own, recorded with the layers of the files' own times), a `FROM` of a
/// `--build-context` directory (a layer the build writes) and two platforms (each platform's
/// layers rewritten): each output what a build of only it writes.
#[test]
fn outputs_of_different_times_keep_own_times_and_each_platform() {
    let webs = integration::sources::web::Server::start();
    webs.put("/lm.txt", b"lm\n", Some("\"l1\""), Some("Wed, 01 Jan 2020 00:00:00 GMT"));
    let s = Slipway::new();
    let named = s.context("named", &[("g.txt", "g\n")]);
    set_mtime(&named.join("g.txt"), NEW);
    let df = format!("FROM named\nADD {} /lm.txt\nCOPY f.txt /\n", webs.url("/lm.txt"));
    let ctx = s.context("own", &[("Dockerfile", &df), ("f.txt", "f\n")]);
    set_mtime(&ctx.join("f.txt"), NEW);
    let out = |n: &str| s.dir.path().join(n);
    let nc = format!("named={}", named.display());
    let common = ["--build-context", &nc, "--platform", "linux/amd64,linux/arm64"];
    const LOW: u64 = 1_600_000_000;
    let lm = 1_577_836_800; // its Last-Modified
    let zero = format!("type=oci,dest={}", out("zero.tar").display());
    let low = format!("type=oci,dest={},source-date-epoch={LOW}", out("low.tar").display());
    let kept = format!("type=oci,dest={},rewrite-timestamp=false", out("kept.tar").display());
    let r = s.build(&ctx, "o:1", &[&common[..], &["-o", &zero, "-o", &low, "-o", &kept]].concat()).ok();
    assert!(log(&r).contains("its own times"), "{}", log(&r));
    let want = [
        ("zero.tar", [("lm.txt", utc(lm)), ("f.txt", utc(0)), ("g.txt", utc(0))]),
        ("low.tar", [("lm.txt", utc(lm)), ("f.txt", utc(LOW)), ("g.txt", utc(LOW))]),
        ("kept.tar", [("lm.txt", utc(lm)), ("f.txt", utc(NEW)), ("g.txt", utc(NEW))]),
    ];
    let mut written = BTreeMap::new();
    for (n, w) in &want {
        let times = gnu_tar_times(&out(n));
        for (p, t) in w {
            assert_eq!(times.get(*p), Some(t), "{n}: /{p} in {times:?}");
        }
        written.insert(*n, fs::read(out(n)).unwrap());
    }
    // both platforms' images in each index are their own
    let files = tar_files(&out("low.tar"));
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let list = blob(&files, index["manifests"][0]["digest"].as_str().unwrap());
    assert_eq!(list["manifests"].as_array().unwrap().len(), 2);
    for (n, o) in [("zero.tar", &zero), ("low.tar", &low)] {
        s.build(&ctx, "o:1", &[&common[..], &["-o", o]].concat()).ok();
        assert!(fs::read(out(n)).unwrap() == written[n], "{n}: not what a build of only it writes");
    }
}
