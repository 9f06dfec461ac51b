//! slipway and OCI registries: pull, push, login/logout against Debian's docker-registry
//! (CNCF distribution 2.8) started on loopback, checked from outside with skopeo and the
//! registry's storage and access log.

use integration::registry::{self, Registry, PASSWORD, USER};
use integration::slipway::{bin, store_listing, Run, Slipway};
use std::fs;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A private store and docker config dir.
struct T {
    s: Slipway,
}

impl T {
    fn new() -> T {
        T { s: Slipway::new() }
    }
    fn docker_config(&self) -> PathBuf {
        self.s.dir.path().join("docker-config")
    }
    /// `slipway --root STORE ARGS` with DOCKER_CONFIG private to the test.
    fn run_in(&self, root: &Path, args: &[&str], stdin: Option<&str>) -> Run {
        let mut c = Command::new(bin());
        c.arg("--root").arg(root).args(args).env("DOCKER_CONFIG", self.docker_config());
        if let Some(p) = std::env::var_os("TEST_EXTRA_PATH") {
            c.env("PATH", p);
        }
        c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut ch = c.spawn().expect("run slipway");
        if let (Some(i), Some(mut w)) = (stdin, ch.stdin.take()) {
            w.write_all(i.as_bytes()).expect("stdin");
        }
        let o = ch.wait_with_output().expect("wait slipway");
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    fn run(&self, args: &[&str]) -> Run {
        self.run_in(&self.s.root(), args, None)
    }
    /// A second, fresh store.
    fn other_root(&self, name: &str) -> PathBuf {
        self.s.dir.path().join(name)
    }
    /// Builds a small image (no RUN: no runtime needed) with `files`.
    fn image(&self, tag: &str, files: &[(&str, &str)]) {
        let mut df = String::from("FROM scratch\n");
        for (p, _) in files {
            df.push_str(&format!("COPY {p} /{p}\n"));
        }
        let mut all: Vec<(&str, &str)> = files.to_vec();
        all.push(("Dockerfile", &df));
        let ctx = self.s.context(tag.replace([':', '/'], "_").as_str(), &all);
        self.run(&["build", "-t", tag, &ctx.to_string_lossy()]).ok();
    }
    fn manifest_digest(&self, root: &Path, name: &str) -> String {
        let idx: serde_json::Value = serde_json::from_slice(&fs::read(root.join("index.json")).unwrap()).unwrap();
        idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {idx}"))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }
    /// The content of `path` in image `name` of store `root` (via `unpack`).
    fn file_in(&self, root: &Path, name: &str, path: &str) -> String {
        let out = self.s.dir.path().join(format!("unpack-{}", integration::unique_name("u")));
        self.run_in(root, &["unpack", name, &out.to_string_lossy()], None).ok();
        let s = fs::read_to_string(out.join("rootfs").join(path)).unwrap_or_else(|e| panic!("{path} in {name}: {e}"));
        let _ = fs::remove_dir_all(&out);
        s
    }
}

fn skopeo_digest(r: &Registry, reference: &str) -> String {
    let o = r.skopeo(&["inspect", &format!("docker://{reference}")]);
    assert_eq!(o.code, 0, "skopeo inspect {reference}: {}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

#[test]
fn push_pull_round_trip_over_plain_http_on_loopback() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.image("app:1", &[("hello.txt", "hello registry\n")]);
    let local = t.manifest_digest(&t.s.root(), "app:1");
    // no --tls-verify=false: plain HTTP is allowed for loopback, as docker allows it
    let dest = format!("{}/team/app:1", r.host);
    t.run(&["push", "app:1", &dest]).ok();
    // skopeo sees the image, with the local manifest digest
    assert_eq!(skopeo_digest(&r, &dest), local);
    // pull into a fresh store: same digest, same content
    let fresh = t.other_root("fresh");
    let p = t.run_in(&fresh, &["pull", &dest], None).ok();
    assert!(p.stdout.contains("Pull complete"), "{}", p.stdout);
    assert_eq!(t.manifest_digest(&fresh, &dest), local);
    assert_eq!(t.file_in(&fresh, &dest, "hello.txt"), "hello registry\n");
    // pull by digest: verified and named by it
    let by_digest = format!("{}/team/app@{local}", r.host);
    t.run_in(&fresh, &["pull", &by_digest], None).ok();
    assert_eq!(t.manifest_digest(&fresh, &by_digest), local);
    // a repeated push uploads nothing: only HEADs (no POST/PATCH/PUT of blobs or manifest)
    let mark = r.log_len();
    let again = t.run(&["push", "app:1", &dest]).ok();
    assert!(again.stdout.contains("Layer already exists"), "{}", again.stdout);
    let reqs = r.requests_since(mark);
    assert!(!reqs.is_empty(), "no requests logged: {}", r.log());
    let writes: Vec<&String> = reqs.iter().filter(|q| !q.starts_with("HEAD ") && !q.starts_with("GET /v2/ ")).collect();
    assert!(writes.is_empty(), "a repeated push wrote: {writes:?}");
    // a push to another repository of the registry mounts the blobs (POST ?mount=&from=)
    let other = format!("{}/elsewhere/app:2", r.host);
    let mark = r.log_len();
    let m = t.run(&["push", "app:1", &other]).ok();
    assert!(m.stdout.contains("Mounted from team/app"), "{}", m.stdout);
    let reqs = r.requests_since(mark);
    assert!(
        reqs.iter().any(|q| q.contains("mount=sha256") && q.contains("from=team%2Fapp") && q.contains(" 201 ")),
        "{reqs:?}"
    );
    assert!(
        !reqs.iter().any(|q| q.starts_with("PATCH ") || (q.starts_with("PUT ") && q.contains("/blobs/"))),
        "{reqs:?}"
    );
    let img: serde_json::Value =
        serde_json::from_slice(&fs::read(t.s.root().join("blobs/sha256").join(&local[7..])).unwrap()).unwrap();
    let layer = img["layers"][0]["digest"].as_str().unwrap();
    assert!(r.repo_has_layer("elsewhere/app", layer));
    assert_eq!(skopeo_digest(&r, &other), local);
}

#[test]
fn errors_name_the_ref_registry_status_and_code() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let missing = format!("{}/nothing/here:v9", r.host);
    let o = t.run(&["pull", &missing]);
    assert_ne!(o.code, 0);
    for want in [missing.as_str(), &r.host, "404", "MANIFEST_UNKNOWN"] {
        assert!(o.stderr.contains(want), "{want:?} missing from: {}", o.stderr);
    }
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    let o = t.run(&["pull", "Bad/Upper"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("invalid reference format"), "{}", o.stderr);
    // nothing answers on this port: the error names the registry
    let dead = format!("127.0.0.1:{}/x:1", r.port + 1);
    let o = t.run(&["pull", &dead]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains(&format!("127.0.0.1:{}", r.port + 1)), "{}", o.stderr);
}

#[test]
fn an_image_seeded_by_skopeo_arrives_whole_with_gzip_and_zstd_layers() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    for (fmt, repo) in [("gzip", "seed/gz"), ("zstd", "seed/zst")] {
        // one image per format: skopeo's blob cache would reuse the other format's layer
        let content = format!("seeded by skopeo as {fmt}\n");
        t.image(&format!("seed:{fmt}"), &[("data.txt", &content)]);
        // a docker-archive (plain tar layers), which skopeo compresses as it is told to
        let archive = t.s.dir.path().join(format!("seed-{fmt}.tar"));
        t.run(&["save", &format!("seed:{fmt}"), "-o", &archive.to_string_lossy()]).ok();
        let dest = format!("{}/{repo}:1", r.host);
        let o = r.skopeo(&[
            "copy",
            "--dest-compress-format",
            fmt,
            "--dest-compress",
            &format!("docker-archive:{}", archive.display()),
            &format!("docker://{dest}"),
        ]);
        assert_eq!(o.code, 0, "skopeo copy ({fmt}): {}", o.stderr);
        let raw = r.skopeo(&["inspect", "--raw", &format!("docker://{dest}")]);
        let want = if fmt == "zstd" { "tar+zstd" } else { "diff.tar.gzip" };
        assert!(raw.stdout.contains(want), "skopeo did not write {want}: {}", raw.stdout);
        let fresh = t.other_root(&format!("fresh-{fmt}"));
        t.run_in(&fresh, &["pull", &dest], None).ok();
        assert_eq!(t.manifest_digest(&fresh, &dest), skopeo_digest(&r, &dest));
        assert_eq!(t.file_in(&fresh, &dest, "data.txt"), content, "{fmt}");
    }
}

/// An OCI layout with an index of one image per `(arch, file content)`, for skopeo to copy.
fn multi_arch_layout(dir: &Path, arches: &[(&str, &str)]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |b: &[u8]| {
        let h = integration::sha256_hex(b);
        fs::write(blobs.join(&h), b).unwrap();
        (format!("sha256:{h}"), b.len())
    };
    let mut entries = Vec::new();
    for (arch, content) in arches {
        let mut tb = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tb.append_data(&mut h, "arch.txt", content.as_bytes()).unwrap();
        let tar = tb.into_inner().unwrap();
        let diff = format!("sha256:{}", integration::sha256_hex(&tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let (ld, ls) = put(&gz.finish().unwrap());
        let cfg = serde_json::json!({"architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff]}});
        let (cd, cs) = put(cfg.to_string().as_bytes());
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]});
        let (md, ms) = put(m.to_string().as_bytes());
        entries.push(serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms, "platform": {"architecture": arch, "os": "linux"}}));
    }
    let idx = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries});
    let (id, is) = put(idx.to_string().as_bytes());
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": id, "size": is, "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    fs::write(dir.join("index.json"), top.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

#[test]
fn a_multi_platform_index_gives_the_host_platform_or_the_one_asked_for() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other = if host_arch == "s390x" { "ppc64le" } else { "s390x" };
    let layout = t.s.dir.path().join("layout");
    multi_arch_layout(&layout, &[(other, "other\n"), (host_arch, "host\n")]);
    let dest = format!("{}/multi:1", r.host);
    let o = r.skopeo(&["copy", "--all", &format!("oci:{}:multi", layout.display()), &format!("docker://{dest}")]);
    assert_eq!(o.code, 0, "skopeo copy --all: {}", o.stderr);
    let a = t.other_root("a");
    t.run_in(&a, &["pull", &dest], None).ok();
    assert_eq!(t.file_in(&a, &dest, "arch.txt"), "host\n");
    let b = t.other_root("b");
    t.run_in(&b, &["pull", "--platform", &format!("linux/{other}"), &dest], None).ok();
    assert_eq!(t.file_in(&b, &dest, "arch.txt"), "other\n");
    let c = t.other_root("c");
    let o = t.run_in(&c, &["pull", "--platform", "linux/mips64le", &dest], None);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("linux/mips64le") && o.stderr.contains(&format!("linux/{other}")), "{}", o.stderr);
    // by the index's digest: verified against it
    let idx_digest = skopeo_digest(&r, &dest);
    let d = t.other_root("d");
    t.run_in(&d, &["pull", &format!("{}/multi@{idx_digest}", r.host)], None).ok();
}

#[test]
fn a_corrupted_blob_in_the_registry_fails_naming_the_digest_and_leaves_the_store_unchanged() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.image("c:1", &[("big.txt", &"0123456789".repeat(5000))]);
    let dest = format!("{}/corrupt:1", r.host);
    t.run(&["push", "c:1", &dest]).ok();
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(t.s.root().join("blobs/sha256").join(&t.manifest_digest(&t.s.root(), "c:1")[7..])).unwrap(),
    )
    .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let data = r.blob_data(&layer);
    let mut bytes = fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    let fresh = t.other_root("fresh");
    t.run_in(&fresh, &["images"], None).ok();
    let before = store_listing(&fresh);
    let o = t.run_in(&fresh, &["pull", &dest], None);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains(&layer), "the error does not name {layer}: {}", o.stderr);
    assert_eq!(store_listing(&fresh), before, "the failed pull changed the store");
    let ingest: Vec<_> = fs::read_dir(fresh.join("ingest")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(ingest.is_empty(), "partial files left: {ingest:?}");
}

#[test]
fn tls_with_basic_auth_login_logout_and_untrusted_certificates() {
    if !registry::available() {
        return;
    }
    let r = Registry::tls_basic();
    let t = T::new();
    let ca = r.ca_dir.clone().unwrap();
    let ca = ca.to_string_lossy();
    t.image("sec:1", &[("s.txt", "secret\n")]);
    let dest = format!("{}/sec:1", r.host);
    // the certificate is signed by a CA nobody trusts: refused, naming the registry, no
    // downgrade to http even on loopback
    let o = t.run(&["push", "sec:1", &dest]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not trusted") && o.stderr.contains(&r.host), "{}", o.stderr);
    // trusted through --cert-dir, but no credentials yet
    let o = t.run(&["push", "--cert-dir", &ca, "sec:1", &dest]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("401") && o.stderr.contains("UNAUTHORIZED"), "{}", o.stderr);
    // a wrong password: login fails and stores nothing
    let cfg = t.docker_config().join("config.json");
    let o =
        t.run_in(&t.s.root(), &["login", "--cert-dir", &ca, "-u", USER, "--password-stdin", &r.host], Some("wrong\n"));
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("401") && o.stderr.contains("UNAUTHORIZED"), "{}", o.stderr);
    assert!(!fs::read_to_string(&cfg).unwrap_or_default().contains(&r.host));
    // the right one: stored in docker's format
    let o = t
        .run_in(
            &t.s.root(),
            &["login", "--cert-dir", &ca, "-u", USER, "--password-stdin", &r.host],
            Some(&format!("{PASSWORD}\n")),
        )
        .ok();
    assert!(o.stdout.contains("Login Succeeded"));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"][&r.host]["auth"].is_string(), "{v}");
    t.run(&["push", "--cert-dir", &ca, "sec:1", &dest]).ok();
    assert_eq!(skopeo_digest(&r, &dest), t.manifest_digest(&t.s.root(), "sec:1"));
    let fresh = t.other_root("fresh");
    t.run_in(&fresh, &["pull", "--cert-dir", &ca, &dest], None).ok();
    assert_eq!(t.file_in(&fresh, &dest, "s.txt"), "secret\n");
    // --tls-verify=false accepts the certificate
    let fresh2 = t.other_root("fresh2");
    t.run_in(&fresh2, &["pull", "--tls-verify=false", &dest], None).ok();
    // logout removes the credentials: the next pull is refused
    let o = t.run(&["logout", &r.host]).ok();
    assert!(o.stdout.contains("Removing login credentials"), "{}", o.stdout);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(&r.host).is_none(), "{v}");
    let o = t.run_in(&t.other_root("fresh3"), &["pull", "--cert-dir", &ca, &dest], None);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("UNAUTHORIZED"), "{}", o.stderr);
}

/// BuildKit's image exporter option `registry.insecure=true`: that output's push accepts a
/// certificate nobody trusts (and plain HTTP), as `--tls-verify=false` does for every registry.
#[test]
fn registry_insecure_output_option_pushes_past_an_untrusted_certificate() {
    if !registry::available() {
        return;
    }
    let r = Registry::tls_basic();
    let t = T::new();
    let login = ["login", "--tls-verify=false", "-u", USER, "--password-stdin", r.host.as_str()];
    t.run_in(&t.s.root(), &login, Some(&format!("{PASSWORD}\n"))).ok();
    let ctx =
        t.s.context("insecure", &[("a.txt", "insecure push\n"), ("Dockerfile", "FROM scratch\nCOPY a.txt /a.txt\n")]);
    let ctx = ctx.to_string_lossy().into_owned();
    let dest = format!("{}/ins:1", r.host);
    // without it: refused naming the registry, nothing pushed
    let out = format!("type=image,name={dest},push=true");
    let o = t.run(&["build", "--output", &out, &ctx]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not trusted") && o.stderr.contains(&r.host), "{}", o.stderr);
    assert_ne!(r.skopeo(&["inspect", &format!("docker://{dest}")]).code, 0, "pushed without registry.insecure");
    // with it: the image is in the registry, byte for byte the store's
    let out = format!("type=image,name={dest},push=true,registry.insecure=true");
    t.run(&["build", "--output", &out, &ctx]).ok();
    assert_eq!(skopeo_digest(&r, &dest), t.manifest_digest(&t.s.root(), &dest));
    // only for that output: a plain `push` still checks the certificate
    let o = t.run(&["push", &dest, &format!("{}/again:1", r.host)]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not trusted"), "{}", o.stderr);
    // an output that does not push is refused rather than the option ignored
    let o = t.run(&["build", "--output", "type=image,name=x:1,registry.insecure=true", &ctx]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("registry.insecure=true: the output does not push"), "{}", o.stderr);
}

#[test]
fn a_credential_helper_supplies_the_password() {
    if !registry::available() {
        return;
    }
    let r = Registry::tls_basic();
    let t = T::new();
    let ca = r.ca_dir.clone().unwrap();
    let bin_dir = t.s.dir.path().join("helpers");
    fs::create_dir_all(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-slipwaytest");
    let seen = t.s.dir.path().join("helper-asked");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            seen.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(t.docker_config()).unwrap();
    fs::write(
        t.docker_config().join("config.json"),
        serde_json::json!({"credHelpers": {&r.host: "slipwaytest"}}).to_string(),
    )
    .unwrap();
    t.image("h:1", &[("h.txt", "helped\n")]);
    let dest = format!("{}/helped:1", r.host);
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new(bin());
    c.args(["--root", &t.s.root().to_string_lossy(), "push", "--cert-dir", &ca.to_string_lossy(), "h:1", &dest])
        .env("DOCKER_CONFIG", t.docker_config())
        .env("PATH", &path);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(fs::read_to_string(&seen).unwrap().trim(), r.host);
    assert_eq!(skopeo_digest(&r, &dest), t.manifest_digest(&t.s.root(), "h:1"));
}

#[test]
fn the_bearer_token_flow_with_a_token_server() {
    if !registry::available() {
        return;
    }
    let r = Registry::bearer();
    let t = T::new();
    t.image("b:1", &[("b.txt", "bearer\n")]);
    let dest = format!("{}/tok/app:1", r.host);
    // anonymous: the token server refuses, the error says so
    let o = t.run(&["push", "b:1", &dest]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("401"), "{}", o.stderr);
    let o = t.run_in(&t.s.root(), &["login", "-u", USER, "--password-stdin", &r.host], Some("nope"));
    assert_ne!(o.code, 0, "a wrong password logged in: {}", o.stdout);
    t.run_in(&t.s.root(), &["login", "-u", USER, "--password-stdin", &r.host], Some(PASSWORD)).ok();
    t.run(&["push", "b:1", &dest]).ok();
    let asked = r.token.as_ref().unwrap().requests.lock().unwrap().clone();
    assert!(
        asked
            .iter()
            .any(|q| q.contains("service=slipway-test-registry")
                && q.contains("scope=repository%3Atok%2Fapp%3Apull%2Cpush")),
        "{asked:?}"
    );
    assert_eq!(skopeo_digest(&r, &dest), t.manifest_digest(&t.s.root(), "b:1"));
    let fresh = t.other_root("fresh");
    t.run_in(&fresh, &["pull", &dest], None).ok();
    assert_eq!(t.file_in(&fresh, &dest, "b.txt"), "bearer\n");
}

impl T {
    /// `build --runtime RT --progress plain ARGS CTX` in store `root`.
    fn build_in(&self, root: &Path, ctx: &Path, args: &[&str]) -> Run {
        let rt = integration::slipway::runtime();
        let mut a = vec!["build", "--runtime", rt.as_str(), "--progress", "plain"];
        a.extend_from_slice(args);
        let c = ctx.to_string_lossy().into_owned();
        a.push(&c);
        self.run_in(root, &a, None)
    }
}

#[test]
fn from_a_registry_base_in_a_fresh_store_and_build_push() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.s.base("bb:1");
    let base = format!("{}/base/busybox:1", r.host);
    t.run(&["push", "bb:1", &base]).ok();
    let base_digest = t.manifest_digest(&t.s.root(), "bb:1");
    let fresh = t.other_root("fresh");
    let app = format!("{}/team/app:1", r.host);
    let ctx = t.s.context("from-registry", &[("Dockerfile", &format!("FROM {base}\nRUN echo built > /built\n"))]);
    let o = t.build_in(&fresh, &ctx, &["-t", &app, "--push"]).ok();
    assert!(o.stdout.contains("Pulling from base/busybox") || o.stdout.contains("Pull complete"), "{}", o.stdout);
    // the base is now in the store under its name; the built image is in the registry
    assert_eq!(t.manifest_digest(&fresh, &base), base_digest);
    assert_eq!(skopeo_digest(&r, &app), t.manifest_digest(&fresh, &app));
    assert_eq!(t.file_in(&fresh, &app, "built"), "built\n");
    // a second build finds the base in the store: no registry request for it
    let mark = r.log_len();
    t.build_in(&fresh, &ctx, &["-t", "again:1"]).ok();
    assert!(r.requests_since(mark).is_empty(), "{:?}", r.requests_since(mark));
    // --pull asks the registry again (a manifest GET), and the build still hits its cache
    let mark = r.log_len();
    t.build_in(&fresh, &ctx, &["-t", "again:1", "--pull"]).ok();
    assert!(
        r.requests_since(mark).iter().any(|q| q.starts_with("GET /v2/base/busybox/manifests/1 ")),
        "{:?}",
        r.requests_since(mark)
    );
    // FROM name@sha256: is verified against the digest
    let pinned = format!("{}/base/busybox@{base_digest}", r.host);
    let ctx2 = t.s.context("pinned", &[("Dockerfile", &format!("FROM {pinned}\nRUN echo pinned > /p\n"))]);
    let other = t.other_root("other");
    t.build_in(&other, &ctx2, &["-t", "pinned:1"]).ok();
    assert_eq!(t.file_in(&other, "pinned:1", "p"), "pinned\n");
    let wrong = format!("{}/base/busybox@sha256:{}", r.host, "0".repeat(64));
    let ctx3 = t.s.context("wrong", &[("Dockerfile", &format!("FROM {wrong}\n"))]);
    let o = t.build_in(&other, &ctx3, &["-t", "wrong:1"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Dockerfile:1") && o.stderr.contains("MANIFEST_UNKNOWN"), "{}", o.stderr);
}

#[test]
fn an_exported_build_cache_makes_every_step_of_a_fresh_build_a_hit() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.s.base("bb:1");
    let base = format!("{}/base/busybox:1", r.host);
    t.run(&["push", "bb:1", &base]).ok();
    let df = format!(
        "FROM {base}\nRUN echo RAN-$((40+2)) && echo one > /one\nCOPY f.txt /f.txt\nRUN echo RAN-$((40+3)) && cat /one /f.txt > /both\nENV X=1\n"
    );
    let ctx = t.s.context("cached", &[("Dockerfile", &df), ("f.txt", "file\n")]);
    let cache_ref = format!("{}/cache/app:main", r.host);
    let dir = t.s.dir.path().join("cache-dir");
    let a = t.other_root("a");
    let o = t
        .build_in(
            &a,
            &ctx,
            &[
                "-t",
                "app:1",
                "--cache-to",
                &format!("type=registry,ref={cache_ref}"),
                "--cache-to",
                &format!("type=local,dest={}", dir.display()),
            ],
        )
        .ok();
    // the marker is what the RUN prints, not its text in the Dockerfile
    assert!(o.stdout.contains("RAN-42") && o.stdout.contains("RAN-43"), "{}", o.stdout);
    // an ordinary OCI artifact in the registry
    let raw = r.skopeo(&["inspect", "--raw", &format!("docker://{cache_ref}")]);
    assert_eq!(raw.code, 0, "{}", raw.stderr);
    assert!(raw.stdout.contains("application/vnd.slipway.buildcache.v1"), "{}", raw.stdout);
    let id_a = t.run_in(&a, &["inspect", "app:1"], None).ok().stdout;
    for (name, from) in [
        ("from-registry", format!("type=registry,ref={cache_ref}")),
        ("from-local", format!("type=local,src={}", dir.display())),
    ] {
        let fresh = t.other_root(name);
        let o = t.build_in(&fresh, &ctx, &["-t", "app:1", "--cache-from", &from]).ok();
        assert!(!o.stdout.contains("RAN-42") && !o.stdout.contains("RAN-43"), "{name}: a RUN step ran:\n{}", o.stdout);
        let hits = o.stdout.matches("Using cache from").count();
        assert_eq!(hits, 4, "{name}: every step should come from the imported cache:\n{}", o.stdout);
        let id = t.run_in(&fresh, &["inspect", "app:1"], None).ok().stdout;
        assert_eq!(id, id_a, "{name}: a different image");
        assert_eq!(t.file_in(&fresh, "app:1", "both"), "one\nfile\n");
    }
}

#[test]
fn an_interrupted_pull_resumes_from_the_bytes_it_has() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    // incompressible content, so the layer blob is large enough to cut in half
    let noise: String =
        (0..200_000u32).map(|i| char::from(b'a' + (i.wrapping_mul(2654435761) >> 27) as u8 % 26)).collect();
    t.image("resume:1", &[("noise.txt", &noise)]);
    let dest = format!("{}/resume:1", r.host);
    t.run(&["push", "resume:1", &dest]).ok();
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(t.s.root().join("blobs/sha256").join(&t.manifest_digest(&t.s.root(), "resume:1")[7..])).unwrap(),
    )
    .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let blob = fs::read(t.s.root().join("blobs/sha256").join(&layer[7..])).unwrap();
    // what a killed pull leaves: the first part of the blob in ingest/
    let fresh = t.other_root("fresh");
    t.run_in(&fresh, &["images"], None).ok();
    fs::create_dir_all(fresh.join("ingest")).unwrap();
    fs::write(fresh.join("ingest").join(format!("{}.partial", &layer[7..])), &blob[..blob.len() / 2]).unwrap();
    let mark = r.log_len();
    t.run_in(&fresh, &["pull", &dest], None).ok();
    let reqs = r.requests_since(mark);
    assert!(
        reqs.iter().any(|q| q.starts_with(&format!("GET /v2/resume/blobs/{layer} ")) && q.contains(" 206 ")),
        "no ranged GET of the layer: {reqs:?}"
    );
    assert_eq!(fs::read(fresh.join("blobs/sha256").join(&layer[7..])).unwrap(), blob);
    assert_eq!(t.file_in(&fresh, &dest, "noise.txt"), noise);
}

#[test]
fn a_client_certificate_from_the_cert_dir() {
    if !registry::available() {
        return;
    }
    let r = Registry::tls_client_cert();
    let t = T::new();
    t.image("cc:1", &[("c.txt", "client cert\n")]);
    let dest = format!("{}/cc:1", r.host);
    // the CA alone: the registry wants a client certificate
    let ca_only = r.ca_dir.clone().unwrap();
    let o = t.run(&["push", "--cert-dir", &ca_only.to_string_lossy(), "cc:1", &dest]);
    assert_ne!(o.code, 0, "pushed without a client certificate");
    // client.cert + client.key beside ca.crt, as docker and podman read a certs.d directory
    let dir = r.client_cert_dir();
    t.run(&["push", "--cert-dir", &dir.to_string_lossy(), "cc:1", &dest]).ok();
    let fresh = t.other_root("fresh");
    t.run_in(&fresh, &["pull", "--cert-dir", &dir.to_string_lossy(), &dest], None).ok();
    assert_eq!(t.file_in(&fresh, &dest, "c.txt"), "client cert\n");
    // a certificate the TLS library refuses: a clear error naming the file, not a crash
    let bad = t.s.dir.path().join("bad-certs");
    fs::create_dir_all(&bad).unwrap();
    let (v1, key) = r.v1_client_cert();
    fs::copy(&v1, bad.join("client.cert")).unwrap();
    fs::copy(&key, bad.join("client.key")).unwrap();
    fs::copy(ca_only.join("ca.crt"), bad.join("ca.crt")).unwrap();
    let o = t.run_in(&fresh, &["pull", "--cert-dir", &bad.to_string_lossy(), &dest], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("client.cert") && o.stderr.contains("client certificate"), "{}", o.stderr);
}

/// A small context of COPY steps only (no RUN: no runtime), and how many `Using cache` lines
/// a build of it in a fresh store with `--cache-from FROM` shows, and the content of its /a.
fn hits_in_fresh_store(t: &T, name: &str, ctx: &Path, from: &str) -> (usize, String) {
    let fresh = t.other_root(name);
    let o = t.build_in(&fresh, ctx, &["-t", "c:1", "--cache-from", from]).ok();
    (o.stdout.matches("Using cache from").count(), t.file_in(&fresh, "c:1", "a"))
}

fn copy_ctx(t: &T, name: &str, a: &str) -> PathBuf {
    t.s.context(name, &[("a", a), ("b", "b\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY b /b\nENV E=1\n")])
}

/// buildx's shorthand (`--cache-to REF`, `--cache-from REF` are `type=registry,ref=REF`) and
/// BuildKit's `image-manifest=false` / `oci-mediatypes=false` formats (an OCI index, docker's
/// manifest list) and `compression=` of the cache's layer blobs: each read back in a fresh
/// store, every step a hit.
#[test]
fn registry_cache_shorthand_formats_and_compression_as_buildkit_takes_them() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let ctx = copy_ctx(&t, "fmt", "a-content\n");
    let raw = |reference: &str| {
        let o = r.skopeo(&["inspect", "--raw", &format!("docker://{reference}")]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str::<serde_json::Value>(&o.stdout).unwrap()
    };
    // the bare ref: the default format, an OCI image manifest
    let plain = format!("{}/cache/plain:1", r.host);
    t.build_in(&t.s.root(), &ctx, &["-t", "c:1", "--cache-to", &plain]).ok();
    let m = raw(&plain);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json", "{m}");
    assert_eq!(m["config"]["mediaType"], "application/vnd.slipway.buildcache.config.v1+json", "{m}");
    assert_eq!(hits_in_fresh_store(&t, "f-plain", &ctx, &plain), (3, "a-content\n".into()));
    // image-manifest=false: an OCI index of the blobs, the cache config last
    let idx = format!("{}/cache/index:1", r.host);
    t.build_in(
        &t.s.root(),
        &ctx,
        &["-t", "c:1", "--cache-to", &format!("type=registry,ref={idx},image-manifest=false")],
    )
    .ok();
    let m = raw(&idx);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json", "{m}");
    let list = m["manifests"].as_array().unwrap();
    assert_eq!(list.last().unwrap()["mediaType"], "application/vnd.slipway.buildcache.config.v1+json", "{m}");
    assert!(list.iter().any(|d| d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{m}");
    assert_eq!(
        hits_in_fresh_store(&t, "f-index", &ctx, &format!("type=registry,ref={idx}")),
        (3, "a-content\n".into())
    );
    // oci-mediatypes=false: docker's manifest list and layer types (image-manifest off with it)
    let docker = format!("{}/cache/docker:1", r.host);
    t.build_in(
        &t.s.root(),
        &ctx,
        &["-t", "c:1", "--cache-to", &format!("type=registry,ref={docker},oci-mediatypes=false")],
    )
    .ok();
    let m = raw(&docker);
    assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json", "{m}");
    let list = m["manifests"].as_array().unwrap();
    assert!(list.iter().any(|d| d["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"), "{m}");
    assert!(!list.iter().any(|d| d["mediaType"].as_str().unwrap().starts_with("application/vnd.oci.")), "{m}");
    assert_eq!(hits_in_fresh_store(&t, "f-docker", &ctx, &docker), (3, "a-content\n".into()));
    // the combination BuildKit refuses, in its words, before the build runs
    let o = t.build_in(
        &t.s.root(),
        &ctx,
        &["--cache-to", &format!("type=registry,ref={docker},image-manifest=true,oci-mediatypes=false")],
    );
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("OCI mediatypes are required for image-manifest cache format") && !o.stdout.contains("COPY"),
        "{}{}",
        o.stdout,
        o.stderr
    );
    // compression=zstd: the cache's layer blobs are zstd ones, and they restore the same files
    let z = format!("{}/cache/zstd:1", r.host);
    t.build_in(&t.s.root(), &ctx, &["-t", "c:1", "--cache-to", &format!("type=registry,ref={z},compression=zstd")])
        .ok();
    let m = raw(&z);
    let layers = m["layers"].as_array().unwrap();
    assert!(layers.iter().any(|d| d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"), "{m}");
    assert!(!layers.iter().any(|d| d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"), "{m}");
    let zl = layers.iter().find(|d| d["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd").unwrap();
    let blob = fs::read(r.blob_data(zl["digest"].as_str().unwrap())).unwrap();
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd], "not a zstd frame");
    assert_eq!(hits_in_fresh_store(&t, "f-zstd", &ctx, &format!("type=registry,ref={z}")), (3, "a-content\n".into()));
}

/// `ignore-error=true` (BuildKit's control.go): a cache export that fails leaves the build
/// successful, with a warning; without it the build fails naming the export.
#[test]
fn a_failed_cache_export_fails_the_build_unless_ignore_error() {
    if !registry::available() {
        return;
    }
    let t = T::new();
    let ctx = copy_ctx(&t, "ign", "a\n");
    // a port nothing listens on
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let to = format!("type=registry,ref=127.0.0.1:{port}/cache/x:1");
    let o = t.build_in(&t.s.root(), &ctx, &["-t", "ign:1", "--cache-to", &to]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("--cache-to") && o.stderr.contains(&format!("127.0.0.1:{port}")), "{}", o.stderr);
    let o = t.build_in(&t.s.root(), &ctx, &["-t", "ign:2", "--cache-to", &format!("{to},ignore-error=true")]).ok();
    assert!(o.stderr.contains("WARNING: --cache-to") && o.stderr.contains("ignore-error=true"), "{}", o.stderr);
    assert_eq!(t.file_in(&t.s.root(), "ign:2", "a"), "a\n");
    // a local dest that cannot be made (a file is in the way): the same
    let file = t.s.dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let to = format!("type=local,dest={}/sub", file.display());
    assert_ne!(t.build_in(&t.s.root(), &ctx, &["--cache-to", &to]).code, 0);
    t.build_in(&t.s.root(), &ctx, &["--cache-to", &format!("{to},ignore-error=1")]).ok();
    // not a boolean: refused before the build
    let o = t.build_in(&t.s.root(), &ctx, &["--cache-to", &format!("{to},ignore-error=maybe")]);
    assert!(o.code != 0 && o.stderr.contains("ignore-error=maybe"), "{}", o.stderr);
}

/// `registry.insecure=true` on a registry cache (BuildKit's registry.go): that cache's export
/// and import accept a certificate nobody trusts, as the image output's option does.
#[test]
fn registry_insecure_on_a_registry_cache() {
    if !registry::available() {
        return;
    }
    let r = Registry::tls_basic();
    let t = T::new();
    let login = ["login", "--tls-verify=false", "-u", USER, "--password-stdin", r.host.as_str()];
    t.run_in(&t.s.root(), &login, Some(&format!("{PASSWORD}\n"))).ok();
    let ctx = copy_ctx(&t, "insecure-cache", "secure?\n");
    let cache = format!("{}/cache/ins:1", r.host);
    let o = t.build_in(&t.s.root(), &ctx, &["--cache-to", &format!("type=registry,ref={cache}")]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("not trusted") && o.stderr.contains(&r.host), "{}", o.stderr);
    t.build_in(&t.s.root(), &ctx, &["--cache-to", &format!("type=registry,ref={cache},registry.insecure=true")]).ok();
    // the import: a warning without the option (the build goes on), hits with it
    let fresh = t.other_root("no-insecure");
    let o = t.build_in(&fresh, &ctx, &["--cache-from", &format!("type=registry,ref={cache}")]).ok();
    assert!(o.stdout.contains("not imported") && !o.stdout.contains("Using cache from"), "{}", o.stdout);
    let from = format!("type=registry,ref={cache},registry.insecure=true");
    assert_eq!(hits_in_fresh_store(&t, "insecure", &ctx, &from), (3, "secure?\n".into()));
}

/// The local cache's `tag=` (several caches in one directory, index.json names each),
/// `digest=` (import by manifest digest) and `reset=true` (the blobs no tag needs go), as
/// BuildKit's client (client/solve.go) takes them.
#[test]
fn local_cache_tags_digest_and_reset() {
    let t = T::new();
    let dir = t.s.dir.path().join("local-cache");
    let d = dir.display().to_string();
    let one = copy_ctx(&t, "one", "first\n");
    let two = copy_ctx(&t, "two", "second\n");
    let run = |ctx: &Path, to: &str| t.build_in(&t.s.root(), ctx, &["--cache-to", to]).ok();
    run(&one, &format!("type=local,dest={d}"));
    run(&two, &format!("type=local,dest={d},tag=two"));
    let idx: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latest", "two"], "{idx}");
    // the default tag is latest: the first build's cache; tag=two: the second's
    assert_eq!(hits_in_fresh_store(&t, "l-latest", &one, &format!("type=local,src={d}")), (3, "first\n".into()));
    assert_eq!(hits_in_fresh_store(&t, "l-two", &two, &format!("type=local,src={d},tag=two")), (3, "second\n".into()));
    assert_eq!(hits_in_fresh_store(&t, "l-miss", &two, &format!("type=local,src={d}")).0, 0);
    // digest= whatever the tags say
    let dg = idx["manifests"][1]["digest"].as_str().unwrap();
    assert_eq!(
        hits_in_fresh_store(&t, "l-dg", &two, &format!("type=local,src={d},digest={dg}")),
        (3, "second\n".into())
    );
    // a tag index.json lacks: a warning, the build goes on (as BuildKit's client skips it)
    let o = t.build_in(&t.other_root("l-none"), &one, &["--cache-from", &format!("type=local,src={d},tag=nope")]).ok();
    assert!(o.stdout.contains("no digest found for tag nope"), "{}", o.stdout);
    // reset=true: tag two replaced by the first build's cache; the blob of "second" goes
    let blobs = |dir: &Path| fs::read_dir(dir.join("blobs/sha256")).unwrap().count();
    let second_layer: Vec<String> = fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let mut s = String::new();
            flate2::read::GzDecoder::new(fs::File::open(p).unwrap()).read_to_string(&mut s).is_ok()
                && s.contains("second\n")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(second_layer.len(), 1, "the layer with \"second\"");
    let before = blobs(&dir);
    run(&one, &format!("type=local,dest={d},tag=two,reset=true"));
    assert!(!Path::new(&second_layer[0]).exists(), "reset kept a blob no tag needs");
    assert!(blobs(&dir) < before);
    assert_eq!(hits_in_fresh_store(&t, "l-after", &one, &format!("type=local,src={d},tag=two")), (3, "first\n".into()));
    assert_eq!(hits_in_fresh_store(&t, "l-after2", &one, &format!("type=local,src={d}")), (3, "first\n".into()));
}

/// `mode=min` (BuildKit's control.go; its exporter keeps the results of the result's own
/// chain): the steps that made the result's layers (the target stage and the stage it is FROM)
/// are exported, a stage only copied from is not; `mode=max` (slipway's default, README)
/// exports every step.
#[test]
fn cache_mode_min_exports_the_result_chain_and_max_every_stage() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    t.s.base("bb:1");
    let base = format!("{}/base/busybox:1", r.host);
    t.run(&["push", "bb:1", &base]).ok();
    let df = format!(
        "FROM {base} AS b\nRUN echo RAN-$((10+1)) && echo b > /b\nFROM {base} AS other\n\
         RUN echo RAN-$((10+2)) && echo o > /o\nFROM b\nRUN echo RAN-$((10+3)) && echo f > /f\nCOPY --from=other /o /o\n"
    );
    let ctx = t.s.context("modes", &[("Dockerfile", &df)]);
    let d = t.s.dir.path().join("modes-cache").display().to_string();
    let o = t
        .build_in(
            &t.s.root(),
            &ctx,
            &[
                "--cache-to",
                &format!("type=local,dest={d},mode=min,tag=min"),
                "--cache-to",
                &format!("type=local,dest={d},tag=default"),
                "--cache-to",
                &format!("type=local,dest={d},mode=max,tag=max"),
            ],
        )
        .ok();
    // min: RUN 11, RUN 13, the COPY; max and the default: RUN 12 too
    assert!(o.stdout.contains("exported cache (3 steps)"), "{}", o.stdout);
    assert_eq!(o.stdout.matches("exported cache (4 steps)").count(), 2, "{}", o.stdout);
    for (tag, ran) in [("min", vec!["RAN-12"]), ("max", vec![]), ("default", vec![])] {
        let fresh = t.other_root(&format!("modes-{tag}"));
        let o = t.build_in(&fresh, &ctx, &["--cache-from", &format!("type=local,src={d},tag={tag}")]).ok();
        for m in ["RAN-11", "RAN-12", "RAN-13"] {
            assert_eq!(o.stdout.contains(m), ran.contains(&m), "{tag}: {m}:\n{}", o.stdout);
        }
    }
}

/// `--cache-to type=inline` and buildx's `--build-arg BUILDKIT_INLINE_CACHE=1` (inline.go): the
/// cache of the result's chain goes into its image config, and `--cache-from IMAGE` in a fresh
/// store hits every step, its layers fetched from the image's repository. An image without one
/// is a warning, and the build goes on.
#[test]
fn an_inline_cache_in_a_pushed_image_serves_cache_from_that_image() {
    if !registry::available() {
        return;
    }
    let r = Registry::plain();
    let t = T::new();
    let ctx = copy_ctx(&t, "inline", "inline\n");
    let config_of = |reference: &str| {
        let o = r.skopeo(&["inspect", "--config", "--raw", &format!("docker://{reference}")]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        serde_json::from_str::<serde_json::Value>(&o.stdout).unwrap()
    };
    for (name, flag, value) in
        [("flag", "--cache-to", "type=inline"), ("arg", "--build-arg", "BUILDKIT_INLINE_CACHE=true")]
    {
        let img = format!("{}/app/{name}:1", r.host);
        let o = t.build_in(&t.s.root(), &ctx, &["-t", &img, "--push", flag, value]).ok();
        assert!(!o.stderr.contains("BUILDKIT_INLINE_CACHE"), "{}", o.stderr);
        let c = config_of(&img);
        assert_eq!(c["slipway.buildcache.v1"]["steps"].as_array().map(Vec::len), Some(3), "{name}: {c}");
        assert_eq!(hits_in_fresh_store(&t, &format!("inline-{name}"), &ctx, &img), (3, "inline\n".into()));
    }
    // without it: no cache in the config, and --cache-from of that image only warns
    let plain = format!("{}/app/plain:1", r.host);
    t.build_in(&t.s.root(), &ctx, &["-t", &plain, "--push"]).ok();
    assert!(config_of(&plain).get("slipway.buildcache.v1").is_none());
    let o = t.build_in(&t.other_root("inline-none"), &ctx, &["--cache-from", &plain]).ok();
    assert!(o.stdout.contains("an image without an inline cache"), "{}", o.stdout);
    // the inline exporter takes no attribute
    let o = t.build_in(&t.s.root(), &ctx, &["--cache-to", "type=inline,mode=max"]);
    assert!(o.code != 0 && o.stderr.contains("unknown key \"mode\" for type=inline"), "{}", o.stderr);
}
