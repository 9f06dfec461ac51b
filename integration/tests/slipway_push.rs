//! Pushing what a build exports, checked from outside against Debian's docker-registry on
//! loopback (skopeo, the registry API, its storage and access log): a multi-platform build's
//! OCI index with every platform's manifest and blobs (`build --push`, `type=image,push=true`,
//! `slipway push` of a store index), BuildKit's image exporter options `push-by-digest`,
//! `name-canonical` and `unpack`, and the errors of a push that cannot happen (nothing sent
//! nor left behind). The Dockerfiles have no RUN: each platform's image is a COPY of a file
//! chosen by `$TARGETARCH`, so no runtime and no binfmt_misc handler is needed.

use integration::engines::{Engine, Kind};
use integration::registry::{self, Registry};
use integration::slipway::{bin, store_listing, Run, Slipway};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLATFORMS: &str = "linux/amd64,linux/arm64";
const DF: &str = "FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH.txt /arch.txt\n";

struct T {
    s: Slipway,
    ctx: PathBuf,
}

impl T {
    fn new() -> T {
        let s = Slipway::new();
        let ctx = s.context(
            "multi",
            &[("Dockerfile", DF), ("amd64.txt", "built for amd64\n"), ("arm64.txt", "built for arm64\n")],
        );
        T { s, ctx }
    }
    fn docker_config(&self) -> PathBuf {
        self.s.dir.path().join("docker-config")
    }
    /// `slipway --root ROOT ARGS` with a DOCKER_CONFIG of the test's own (no credentials).
    fn run_in(&self, root: &Path, args: &[&str]) -> Run {
        let o = Command::new(bin())
            .arg("--root")
            .arg(root)
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config())
            .output()
            .expect("run slipway");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn run(&self, args: &[&str]) -> Run {
        self.run_in(&self.s.root(), args)
    }
    /// `build --progress plain ARGS CTX` (the context of both platforms' files).
    fn build(&self, args: &[&str]) -> Run {
        let mut a = vec!["build", "--progress", "plain"];
        a.extend_from_slice(args);
        let c = self.ctx.to_string_lossy().into_owned();
        a.push(&c);
        self.run(&a)
    }
    /// The descriptor index.json gives `name` in store `root`.
    fn named(&self, root: &Path, name: &str) -> Option<serde_json::Value> {
        let idx: serde_json::Value = serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .cloned()
    }
    fn digest_of(&self, root: &Path, name: &str) -> String {
        let d = self.named(root, name).unwrap_or_else(|| panic!("{name} not in the store"));
        d["digest"].as_str().unwrap().to_string()
    }
    fn blob(&self, root: &Path, digest: &str) -> PathBuf {
        root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }
    /// `/arch.txt` of `name` in store `root` (through `slipway unpack`).
    fn arch_txt(&self, root: &Path, name: &str) -> String {
        let out = self.s.dir.path().join(integration::unique_name("unpack"));
        self.run_in(root, &["unpack", name, &out.to_string_lossy()]).ok();
        let t = fs::read_to_string(out.join("rootfs/arch.txt")).expect("arch.txt");
        let _ = fs::remove_dir_all(&out);
        t
    }
}

/// `skopeo inspect --raw` of `reference`: the manifest bytes as the registry serves them.
fn raw(r: &Registry, reference: &str) -> (Vec<u8>, serde_json::Value) {
    let o = r.skopeo(&["inspect", "--raw", &format!("docker://{reference}")]);
    assert_eq!(o.code, 0, "skopeo inspect --raw {reference}: {}", o.stderr);
    let v = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{reference}: {e}: {}", o.stdout));
    (o.stdout.into_bytes(), v)
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

/// The registry holds index `top` of `repo` whole: the index (by digest), each platform's
/// manifest by digest with the config and layers it names, each image of its platform.
fn check_index_in_registry(r: &Registry, repo: &str, top: &str) {
    check_list_in_registry(r, repo, top, "application/vnd.oci.image.index.v1+json");
}

/// [`check_index_in_registry`] for an index of media type `media_type`.
fn check_list_in_registry(r: &Registry, repo: &str, top: &str, media_type: &str) {
    let (bytes, idx) = raw(r, &format!("{}/{repo}@{top}", r.host));
    assert_eq!(sha256(&bytes), top, "the registry's index is not byte for byte the local one");
    assert_eq!(idx["mediaType"], media_type, "{idx}");
    let entries = idx["manifests"].as_array().expect("manifests");
    let arches: Vec<&str> = entries.iter().map(|e| e["platform"]["architecture"].as_str().unwrap()).collect();
    assert_eq!(arches, ["amd64", "arm64"], "{idx}");
    for e in entries {
        let d = e["digest"].as_str().unwrap();
        let (mb, m) = raw(r, &format!("{}/{repo}@{d}", r.host));
        assert_eq!(sha256(&mb), d);
        assert_eq!(e["mediaType"], m["mediaType"], "{m}");
        for b in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap().iter()) {
            let bd = b["digest"].as_str().unwrap();
            assert!(r.blob_data(bd).is_file(), "blob {bd} of {d} is not in the registry's storage");
            assert!(r.repo_has_layer(repo, bd), "blob {bd} of {d} is not linked into {repo}");
        }
        // the image of each platform, as a client that picks a platform sees it
        let arch = e["platform"]["architecture"].as_str().unwrap();
        let o =
            r.skopeo(&["inspect", "--no-tags", "--override-arch", arch, &format!("docker://{}/{repo}@{top}", r.host)]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v["Architecture"], arch, "{v}");
    }
}

#[test]
fn a_multi_platform_build_pushes_its_index_and_each_platform_round_trips() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let dest = format!("{}/multi/app:1", r.host);
    let o = t.build(&["--platform", PLATFORMS, "-t", &dest, "--push"]).ok();
    let top = t.digest_of(&t.s.root(), &dest);
    assert!(o.stdout.contains(&format!("1: digest: {top}")), "{}", o.stdout);
    // by tag: the index, byte for byte; every platform by digest, with its blobs
    let (bytes, _) = raw(&r, &dest);
    assert_eq!(sha256(&bytes), top);
    check_index_in_registry(&r, "multi/app", &top);
    // manifests went up by digest, the index by tag, after the blobs
    let reqs = r.requests_since(0);
    let puts: Vec<&String> = reqs.iter().filter(|q| q.starts_with("PUT /v2/multi/app/manifests/")).collect();
    assert_eq!(puts.len(), 3, "{puts:?}");
    assert!(puts[..2].iter().all(|q| q.contains("/manifests/sha256:") && q.contains(" 201")), "{puts:?}");
    assert!(puts[2].starts_with("PUT /v2/multi/app/manifests/1 ") && puts[2].contains(" 201"), "{puts:?}");
    // skopeo copies every platform out of the registry
    let all = t.s.dir.path().join("copied");
    let o = r.skopeo(&["copy", "--all", &format!("docker://{dest}"), &format!("oci:{}", all.display())]);
    assert_eq!(o.code, 0, "skopeo copy --all: {}", o.stderr);
    let copied: serde_json::Value = serde_json::from_slice(&fs::read(all.join("index.json")).unwrap()).unwrap();
    assert_eq!(copied["manifests"][0]["digest"], top.as_str(), "{copied}");
    // a pull of each platform into a fresh store gets that platform's manifest and files
    let (_, idx) = raw(&r, &dest);
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let fresh = t.s.dir.path().join(format!("fresh-{arch}"));
        t.run_in(&fresh, &["pull", "--platform", &format!("linux/{arch}"), &dest]).ok();
        assert_eq!(t.digest_of(&fresh, &dest), idx["manifests"][i]["digest"].as_str().unwrap());
        assert_eq!(t.arch_txt(&fresh, &dest), format!("built for {arch}\n"));
    }
    // `slipway push` of the store's index: nothing new to send (HEADs only)
    let mark = r.log_len();
    let o = t.run(&["push", &dest]).ok();
    assert!(o.stdout.contains("Layer already exists"), "{}", o.stdout);
    let writes: Vec<String> =
        r.requests_since(mark).into_iter().filter(|q| !q.starts_with("HEAD ") && !q.starts_with("GET /v2/ ")).collect();
    assert!(writes.is_empty(), "a repeated push wrote: {writes:?}");
    // to another repository: the blobs are mounted, the manifests and the index PUT there
    let other = format!("{}/elsewhere/app:2", r.host);
    let mark = r.log_len();
    let o = t.run(&["push", &dest, &other]).ok();
    assert!(o.stdout.contains("Mounted from multi/app"), "{}", o.stdout);
    let reqs = r.requests_since(mark);
    assert!(!reqs.iter().any(|q| q.starts_with("PATCH ")), "{reqs:?}");
    check_index_in_registry(&r, "elsewhere/app", &top);
    assert_eq!(sha256(&raw(&r, &other).0), top);
    // -o type=image,name=...,push=true is the same push
    let out = format!("{}/out/app:3", r.host);
    t.build(&["--platform", PLATFORMS, "-o", &format!("type=image,name={out},push=true")]).ok();
    check_index_in_registry(&r, "out/app", &top);
    assert_eq!(sha256(&raw(&r, &out).0), top);
}

#[test]
fn a_docker_manifest_list_is_pushed_as_it_is() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    // oci-mediatypes=false: the store names a Docker manifest list of Docker manifests
    let dest = format!("{}/dockerlist/app:1", r.host);
    t.build(&["--platform", PLATFORMS, "-o", &format!("type=image,name={dest},push=true,oci-mediatypes=false")]).ok();
    let top = t.digest_of(&t.s.root(), &dest);
    check_list_in_registry(&r, "dockerlist/app", &top, "application/vnd.docker.distribution.manifest.list.v2+json");
    let (_, list) = raw(&r, &dest);
    for (i, arch) in ["amd64", "arm64"].iter().enumerate() {
        let e = &list["manifests"][i];
        assert_eq!(e["mediaType"], "application/vnd.docker.distribution.manifest.v2+json", "{list}");
        let fresh = t.s.dir.path().join(format!("fresh-{arch}"));
        t.run_in(&fresh, &["pull", "--platform", &format!("linux/{arch}"), &dest]).ok();
        assert_eq!(t.digest_of(&fresh, &dest), e["digest"].as_str().unwrap());
        assert_eq!(t.arch_txt(&fresh, &dest), format!("built for {arch}\n"));
    }
}

#[test]
fn push_by_digest_and_name_canonical_as_buildkits_image_exporter() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let repo = format!("{}/bydigest/app", r.host);
    let meta = t.s.dir.path().join("meta.json");
    let o = t
        .build(&[
            "--platform",
            PLATFORMS,
            "--metadata-file",
            &meta.to_string_lossy(),
            "-o",
            &format!("type=image,name={repo},push=true,push-by-digest=true,name-canonical=true"),
        ])
        .ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let top = m["containerimage.digest"].as_str().expect("containerimage.digest").to_string();
    assert!(o.stdout.contains(&format!("pushed {repo}@{top}")), "{}", o.stdout);
    // the registry has the index and its platforms by digest, and no tag at all
    check_index_in_registry(&r, "bydigest/app", &top);
    let tags = r.dir.path().join("data/docker/registry/v2/repositories/bydigest/app/_manifests/tags");
    assert!(!tags.exists() || fs::read_dir(&tags).unwrap().next().is_none(), "the push wrote a tag");
    let o = r.skopeo(&["list-tags", &format!("docker://{repo}")]);
    assert!(o.code != 0 || o.stdout.contains("\"Tags\": []"), "{}{}", o.stdout, o.stderr);
    let reqs = r.requests_since(0);
    assert!(
        reqs.iter().filter(|q| q.starts_with("PUT /v2/bydigest/app/manifests/")).all(|q| q.contains("sha256:")),
        "{reqs:?}"
    );
    // the store: the name, and (name-canonical) the name @ the digest, both the index
    let store = t.s.root();
    assert_eq!(t.digest_of(&store, &format!("{repo}:latest")), top);
    assert_eq!(t.digest_of(&store, &format!("{repo}@{top}")), top);
    // a canonical name is a name like any: pushed, it goes up by that digest
    let again = t.run(&["push", &format!("{repo}@{top}")]).ok();
    assert!(again.stdout.contains(&format!("digest: {top}")), "{}", again.stdout);
    // one platform: the same, the manifest by digest
    let one = format!("{}/single/app", r.host);
    t.build(&[
        "--metadata-file",
        &meta.to_string_lossy(),
        "-o",
        &format!("type=registry,name={one},push-by-digest=true"),
    ])
    .ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let d = m["containerimage.digest"].as_str().unwrap();
    let (mb, manifest) = raw(&r, &format!("{one}@{d}"));
    assert_eq!(sha256(&mb), d);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert!(t.named(&store, &format!("{one}@{d}")).is_none(), "no name-canonical, no canonical name");
    // BuildKit's refusals: a tag cannot be pushed by digest; by digest without a push
    let o = t.build(&["-o", &format!("type=registry,name={one}:v1,push-by-digest=true")]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains(&format!("can't push tagged ref {one}:v1 by digest")), "{}", o.stderr);
    let o = t.build(&["-o", &format!("type=image,name={one},push-by-digest=true")]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("push-by-digest=true: the output does not push"), "{}", o.stderr);
}

#[test]
fn unpack_prepares_the_layer_snapshots_of_this_machines_image() {
    let t = T::new();
    let store = t.s.root();
    let snapshots = |name: &str| -> Vec<bool> {
        let d = t.digest_of(&store, name);
        let v: serde_json::Value = serde_json::from_slice(&fs::read(t.blob(&store, &d)).unwrap()).unwrap();
        let m: serde_json::Value = if v["manifests"].is_array() {
            // this machine's entry of the index
            let host = match std::env::consts::ARCH {
                "aarch64" => "arm64",
                _ => "amd64",
            };
            let e = v["manifests"].as_array().unwrap().iter().find(|e| e["platform"]["architecture"] == host).unwrap();
            serde_json::from_slice(&fs::read(t.blob(&store, e["digest"].as_str().unwrap())).unwrap()).unwrap()
        } else {
            v
        };
        let c: serde_json::Value =
            serde_json::from_slice(&fs::read(t.blob(&store, m["config"]["digest"].as_str().unwrap())).unwrap())
                .unwrap();
        c["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| store.join("snapshots").join(d.as_str().unwrap().trim_start_matches("sha256:")).is_dir())
            .collect()
    };
    // without unpack a COPY-only build extracts nothing; with it, every layer is a snapshot
    t.build(&["-t", "plain:1"]).ok();
    assert_eq!(snapshots("plain:1"), [false]);
    let o = t.build(&["-o", "type=image,name=unpacked:1,unpack=true"]).ok();
    assert!(o.stdout.contains("unpacking 1 layers"), "{}", o.stdout);
    assert_eq!(snapshots("unpacked:1"), [true]);
    // several platforms: this machine's image is unpacked
    fs::write(t.ctx.join("amd64.txt"), "changed amd64\n").unwrap();
    fs::write(t.ctx.join("arm64.txt"), "changed arm64\n").unwrap();
    t.build(&["--platform", PLATFORMS, "-o", "type=image,name=multi:1,unpack=true"]).ok();
    assert_eq!(snapshots("multi:1"), [true]);
    // a destination with no snapshots to prepare refuses it, naming it
    for out in [format!("type=oci,dest={}", t.s.dir.path().join("o.tar").display()), "type=local,dest=x".into()] {
        let o = t.build(&["-o", &format!("{out},unpack=true")]);
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("option \"unpack\" is not supported for type="), "{}", o.stderr);
    }
}

#[test]
fn a_push_that_cannot_happen_names_why_and_leaves_nothing() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.build(&["--platform", PLATFORMS, "-t", "multi:1"]).ok();
    let store = t.s.root();
    let before = store_listing(&store);
    // nothing listens there: the error names the ref and the registry
    let dead = format!("127.0.0.1:{}/x/app:1", r.port + 1);
    let o = t.run(&["push", "multi:1", &dead]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains(&dead) && !o.stderr.contains("panicked"), "{}", o.stderr);
    assert_eq!(store_listing(&store), before);
    // a registry that wants credentials we do not have: its 401 and UNAUTHORIZED, named
    let auth = Registry::tls_basic();
    let dest = format!("{}/x/app:1", auth.host);
    let ca = auth.ca_dir.as_ref().unwrap().to_string_lossy().into_owned();
    let o = t.run(&["push", "--cert-dir", &ca, "multi:1", &dest]);
    assert_ne!(o.code, 0);
    for want in [dest.as_str(), "401", "UNAUTHORIZED"] {
        assert!(o.stderr.contains(want), "{want:?} missing from: {}", o.stderr);
    }
    assert_eq!(store_listing(&store), before);
    // an index whose arm64 layer the store lost: refused before any request, naming the blob
    let top = t.digest_of(&store, "multi:1");
    let idx: serde_json::Value = serde_json::from_slice(&fs::read(t.blob(&store, &top)).unwrap()).unwrap();
    let arm = idx["manifests"][1]["digest"].as_str().unwrap();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(t.blob(&store, arm)).unwrap()).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    fs::remove_file(t.blob(&store, layer)).unwrap();
    let before = store_listing(&store);
    let mark = r.log_len();
    let dest = format!("{}/broken/app:1", r.host);
    let o = t.run(&["push", "multi:1", &dest]);
    assert_ne!(o.code, 0);
    for want in [dest.as_str(), layer, "linux/arm64", "is not in the store"] {
        assert!(o.stderr.contains(want), "{want:?} missing from: {}", o.stderr);
    }
    assert!(r.requests_since(mark).is_empty(), "{:?}", r.requests_since(mark));
    assert_eq!(store_listing(&store), before);
    let o = r.skopeo(&["inspect", "--raw", &format!("docker://{dest}")]);
    assert_ne!(o.code, 0, "the registry has {dest}: {}", o.stdout);
}

/// BuildKit's `store=false` (pushed, not named in the store) and `dangling-name-prefix`
/// (`PREFIX@DIGEST`, the name of an anonymous image).
#[test]
fn store_false_and_dangling_name_prefix_as_buildkits_image_exporter() {
    let t = T::new();
    let store = t.s.root();
    let meta = t.s.dir.path().join("meta.json");
    // an anonymous build named by the prefix alone
    t.build(&["--metadata-file", &meta.to_string_lossy(), "-o", "type=image,dangling-name-prefix=anon/app"]).ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let d = m["containerimage.digest"].as_str().unwrap().to_string();
    assert_eq!(t.digest_of(&store, &format!("anon/app@{d}")), d);
    t.run(&["inspect", &format!("anon/app@{d}")]).ok();
    // with a name: the prefix is added, unless dangling-name-empty-only
    t.build(&["-o", "type=image,name=named:1,dangling-name-prefix=anon/app"]).ok();
    assert!(t.named(&store, "named:1").is_some());
    t.build(&["-o", "type=image,name=only:1,dangling-name-prefix=other,dangling-name-empty-only=true"]).ok();
    assert!(t.named(&store, "only:1").is_some());
    let idx = fs::read_to_string(store.join("index.json")).unwrap();
    assert!(!idx.contains("other@"), "dangling-name-empty-only named a named image: {idx}");
    // BuildKit spells the key `danging-name-empty-only` (exptypes.OptKeyDanglingEmptyOnly): the
    // same option
    t.build(&["-o", "type=image,name=only:2,dangling-name-prefix=third,danging-name-empty-only=true"]).ok();
    assert!(t.named(&store, "only:2").is_some());
    t.build(&["-o", "type=image,name=only:3,dangling-name-prefix=third,danging-name-empty-only=false"]).ok();
    let idx = fs::read_to_string(store.join("index.json")).unwrap();
    assert_eq!(idx.matches("third@").count(), 1, "only the build with false is named by the prefix: {idx}");
    // store=false without a push: nothing is named, not even as an untagged image
    let before = fs::read_to_string(store.join("index.json")).unwrap();
    let o = t.build(&["-o", "type=image,name=gone:1,store=false"]).ok();
    assert!(o.stdout.contains("store=false"), "{}", o.stdout);
    assert_eq!(fs::read_to_string(store.join("index.json")).unwrap(), before);
    let bad = t.build(&["-o", "type=image,dangling-name-prefix=Bad Name"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("dangling-name-prefix=\"Bad Name\""), "{}", bad.stderr);
    if !registry::available() {
        return;
    }
    // store=false with a push: the registry has it, the store names nothing
    let r = Registry::plain();
    let repo = format!("{}/nostore/app", r.host);
    t.build(&["--metadata-file", &meta.to_string_lossy(), "-o", &format!("type=registry,name={repo}:1,store=false")])
        .ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let d = m["containerimage.digest"].as_str().unwrap();
    let (mb, _) = raw(&r, &format!("{repo}:1"));
    assert_eq!(sha256(&mb), d);
    assert!(t.named(&store, &format!("{repo}:1")).is_none(), "store=false left a name");
    assert_eq!(fs::read_to_string(store.join("index.json")).unwrap(), before);
}

#[test]
fn an_estargz_image_pushed_reads_from_the_registry_and_pulls_back() {
    use integration::estargz;
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let repo = format!("{}/esgz/app", r.host);
    let meta = t.s.dir.path().join("meta.json");
    t.build(&[
        "--platform",
        "linux/amd64",
        "--metadata-file",
        &meta.to_string_lossy(),
        "-o",
        &format!("type=registry,name={repo}:v1,compression=estargz"),
    ])
    .ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let top = m["containerimage.digest"].as_str().expect("containerimage.digest").to_string();
    // what the registry holds: the manifest with BuildKit's annotations on its layer, the layer
    // an eStargz blob whose decompression is the config's diff ID, its file read through the TOC
    let (mb, manifest) = raw(&r, &format!("{repo}@{top}"));
    assert_eq!(sha256(&mb), top);
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(r.blob_data(manifest["config"]["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let l = &layers[0];
    assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    let blob = fs::read(r.blob_data(l["digest"].as_str().unwrap())).unwrap();
    let c = estargz::check(&blob, config["rootfs"]["diff_ids"][0].as_str().unwrap(), &l["annotations"]);
    assert_eq!(c.files.get("arch.txt").map(Vec::as_slice), Some(&b"built for amd64\n"[..]));
    // a third party copies it (and checks every digest on the way)
    let o =
        r.skopeo(&["copy", &format!("docker://{repo}:v1"), &format!("oci:{}", t.s.dir.path().join("copy").display())]);
    assert_eq!(o.code, 0, "skopeo copy: {}", o.stderr);

    // pulled into a fresh store it unpacks; a build on it keeps the eStargz blob and its
    // annotations for the base layer (BuildKit keeps a base's blobs) and adds a plain gzip one
    let fresh = t.s.dir.path().join("fresh");
    t.run_in(&fresh, &["pull", &format!("{repo}:v1")]).ok();
    assert_eq!(t.arch_txt(&fresh, &format!("{repo}:v1")), "built for amd64\n");
    let ctx = t.s.context("esgz-top", &[("Dockerfile", &format!("FROM {repo}:v1\nCOPY x /x\n")), ("x", "on top\n")]);
    t.run_in(
        &fresh,
        &[
            "build",
            "--progress",
            "plain",
            "--metadata-file",
            &meta.to_string_lossy(),
            "-o",
            &format!("type=registry,name={repo}:top"),
            &ctx.to_string_lossy(),
        ],
    )
    .ok();
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    let (_, on_top) = raw(&r, &format!("{repo}@{}", m["containerimage.digest"].as_str().unwrap()));
    let top_layers = on_top["layers"].as_array().unwrap();
    assert_eq!(top_layers.len(), 2, "{on_top}");
    assert_eq!(top_layers[0], *l, "the base layer's descriptor, annotations and all");
    assert!(top_layers[1]["annotations"].get(estargz::TOC_DIGEST).is_none(), "{on_top}");
    assert!(!estargz::has_footer(&fs::read(r.blob_data(top_layers[1]["digest"].as_str().unwrap())).unwrap()));

    // podman (containers/image, containers/storage) pulls it and applies its layer: a third
    // party reading the blob as a layer, under the image ID the config names
    if let Some(podman) = Engine::bare(Kind::Podman) {
        let o = podman.run(&["pull", "--tls-verify=false", &format!("{repo}:v1")]);
        assert_eq!(o.code, Some(0), "podman pull: {o}");
        let o = podman.run(&["image", "inspect", "--format", "{{.Id}}", &format!("{repo}:v1")]);
        assert_eq!(o.text(), manifest["config"]["digest"].as_str().unwrap().trim_start_matches("sha256:"), "{o}");
    }
    // containerd pulls and unpacks it, and its unpacker refuses a layer whose decompressed
    // digest is not the config's diff ID
    if let Some(ctr) = Engine::bare(Kind::Containerd) {
        let o = ctr.run(&["images", "pull", "--plain-http", &format!("{repo}:v1")]);
        assert_eq!(o.code, Some(0), "ctr pull: {o}");
        let o = ctr.run(&["images", "check"]);
        assert!(
            o.stdout.lines().any(|l| l.starts_with(&format!("{repo}:v1"))
                && l.contains("complete")
                && l.trim_end().ends_with("true")),
            "not complete and unpacked: {o}"
        );
    }
}
