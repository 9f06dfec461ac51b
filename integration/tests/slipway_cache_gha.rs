//! `--cache-to/--cache-from type=gha` against a stand-in for GitHub Actions' cache service
//! (integration/src/gha.rs: go-actions-cache's wire format, v2 Twirp and v1 REST, the runtime
//! token's signature and scopes checked) whose bytes live in a real Azure Blob server (Azurite):
//! the entries under BuildKit's keys, each key's blob in Azurite holding the bytes its digest
//! names; a fresh store hitting every step; nothing saved twice; the scopes of a pull request's
//! token reading the default branch's cache; the service's error for a wrong token;
//! ignore-error; cache mounts carried (cache-mounts=true).

use integration::azurite::{self, Azurite};
use integration::gha::{self, GhaService, CONTAINER, GH_TOKEN};
use integration::slipway::{build_scrubbed, inspect as image_id, Run, Slipway};
use std::path::Path;

/// A build with the environment `env` and none of the caller's ACTIONS_* (as a runner's step
/// would have them).
fn build(root: &Path, ctx: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    build_scrubbed(root, ctx, args, "ACTIONS_", env)
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(b))
}

/// gha.go indexKey: `index-<scope>-1-<first 8 hex of sha256(the token's write scope)>`.
fn index_key(scope: &str, git_ref: &str) -> String {
    format!("index-{scope}-1-{}", &sha256_hex(git_ref.as_bytes())[..8])
}

/// Each committed entry's key with its content (read from Azurite by the blob the service
/// keeps it in).
fn committed(svc: &GhaService, az: &Azurite) -> Vec<(String, Vec<u8>)> {
    let blobs = az.blobs(CONTAINER).expect("list the service's container");
    svc.entries()
        .into_iter()
        .filter(|e| e.committed)
        .map(|e| {
            let data = blobs.iter().find(|(n, _, _)| *n == e.blob).map(|(_, _, d)| d.clone());
            (e.key.clone(), data.unwrap_or_else(|| panic!("{} ({}) not in azurite", e.key, e.blob)))
        })
        .collect()
}

fn busybox_context(t: &Slipway, name: &str, dockerfile: &str) -> std::path::PathBuf {
    let ctx = t.context(name, &[("f.txt", "file\n")]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    ctx
}

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\n\
     RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((40+2)); echo one > /one\"]\n\
     COPY f.txt /f.txt\nENV X=1\n";

#[test]
fn gha_v2_cache_at_buildkits_keys_hits_every_step_of_a_fresh_store() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let svc = GhaService::start(&az);
    let t = Slipway::new();
    let ctx = busybox_context(&t, "g", DOCKERFILE);
    let main = svc.token(&[("refs/heads/main", 3)]);
    // as a runner's step has it (buildx reads these): v2 from ACTIONS_CACHE_SERVICE_V2
    let env = [
        ("ACTIONS_RUNTIME_TOKEN", main.as_str()),
        ("ACTIONS_RESULTS_URL", svc.url.as_str()),
        ("ACTIONS_CACHE_URL", "http://127.0.0.1:9/not-v1/"),
        ("ACTIONS_CACHE_SERVICE_V2", "true"),
    ];
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "app:1", "--cache-to", "type=gha,mode=max"], &env).ok();
    assert!(o.stdout.contains("RAN-42"), "{}", o.stdout);
    assert!(!o.stdout.contains(&main) && !o.stderr.contains(&main), "the token in the log");
    assert!(svc.log().iter().all(|l| l.starts_with("POST ")), "not all Twirp: {:?}", svc.log());

    // BuildKit's keys: every blob under buildkit-blob-1-<digest>, holding those bytes; the
    // index, the cache config, as the first value of the mutable key of the write scope
    let entries = committed(&svc, &az);
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let index = index_key("buildkit", "refs/heads/main");
    assert!(keys.contains(&format!("{index}#1").as_str()), "{keys:?}");
    let blobs: Vec<_> = entries.iter().filter(|(k, _)| k.starts_with("buildkit-blob-1-sha256:")).collect();
    assert_eq!(blobs.len() + 1, entries.len(), "only blobs and the index: {keys:?}");
    for (k, data) in &blobs {
        assert_eq!(k.trim_start_matches("buildkit-blob-1-sha256:"), sha256_hex(data), "{k} holds other bytes");
    }
    let cfg: serde_json::Value = serde_json::from_slice(&entries.iter().find(|(k, _)| k.ends_with("#1")).unwrap().1)
        .expect("the index is the cache config");
    let steps = cfg["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "{cfg}");
    for s in steps {
        let mut digests = vec![s["config"].as_str().unwrap().to_string()];
        digests.extend(s["layers"].as_array().into_iter().flatten().map(|l| l["digest"].as_str().unwrap().to_string()));
        for d in digests {
            assert!(keys.contains(&format!("buildkit-blob-1-{d}").as_str()), "{d} not in the cache: {keys:?}");
        }
    }

    // a fresh store, the attributes given (url_v2 wins over url): every step a hit, no RUN; the
    // first download URL handed out has expired (Azure answers 403): it is asked for again, once,
    // as go-actions-cache does
    let b = t.dir.path().join("b");
    let from = format!("type=gha,token={main},url=http://127.0.0.1:9/,url_v2={}", svc.url);
    svc.expire_next_downloads(1);
    let o = build(&b, &ctx, &["-t", "app:1", "--cache-from", &from], &[]).ok();
    assert_eq!(svc.expired_left(), 0);
    assert!(!o.stdout.contains("RAN-42"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(o.stdout.matches("Using cache from gha").count(), 4, "{}", o.stdout);
    assert_eq!(image_id(&b, "app:1"), image_id(&a, "app:1"));

    // exported again from the fresh store: no blob saved again (each looked up first), the
    // index's next value #2
    let before = svc.log().len();
    let o = build(&b, &ctx, &["-t", "app:1", "--cache-to", "type=gha"], &env).ok();
    let n = blobs.len();
    assert!(o.stdout.contains(&format!("0 blob(s) saved, {n} already there")), "{}", o.stdout);
    let creates: Vec<String> = svc.log()[before..].iter().filter(|l| l.contains("CreateCacheEntry")).cloned().collect();
    assert_eq!(creates, ["POST CreateCacheEntry 200"], "{:?}", svc.log());
    assert!(svc.entries().iter().any(|e| e.committed && e.key == format!("{index}#2")));

    // a pull request's token: it writes to its own ref and reads main's too (the scopes of the
    // token): a fresh store hits main's cache
    let pr = svc.token(&[("refs/heads/main", 1), ("refs/pull/7/merge", 3)]);
    let c = t.dir.path().join("c");
    let env_pr = [("ACTIONS_RUNTIME_TOKEN", pr.as_str()), ("ACTIONS_RESULTS_URL", svc.url.as_str())];
    let o = build(
        &c,
        &ctx,
        &["-t", "app:1", "--cache-from", "type=gha,version=2", "--cache-to", "type=gha,version=2"],
        &env_pr,
    )
    .ok();
    assert!(!o.stdout.contains("RAN-42"), "a RUN step ran:\n{}", o.stdout);
    let pr_index = index_key("buildkit", "refs/pull/7/merge");
    let e = svc.entries();
    assert!(e.iter().any(|e| e.scope == "refs/pull/7/merge" && e.key == format!("{pr_index}#1")), "{e:?}");
}

#[test]
fn gha_v1_protocol_round_trip() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let svc = GhaService::start(&az);
    let t = Slipway::new();
    let ctx = busybox_context(&t, "v1", DOCKERFILE);
    let tok = svc.token(&[("refs/heads/main", 3)]);
    // ACTIONS_CACHE_URL (v1's), no ACTIONS_CACHE_SERVICE_V2: BuildKit guesses v1 from the URL
    let env = [("ACTIONS_RUNTIME_TOKEN", tok.as_str()), ("ACTIONS_CACHE_URL", svc.url.as_str())];
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "v:1", "--cache-to", "type=gha,scope=v1test"], &env).ok();
    assert!(o.stdout.contains("RAN-42"), "{}", o.stdout);
    let log = svc.log();
    assert!(log.iter().any(|l| l.starts_with("PATCH /_apis/artifactcache/caches/")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("twirp") || l.contains("CacheEntry")), "{log:?}");
    let entries = committed(&svc, &az);
    let index = index_key("v1test", "refs/heads/main");
    assert!(entries.iter().any(|(k, _)| *k == format!("{index}#1")), "{entries:?}");
    for (k, data) in entries.iter().filter(|(k, _)| k.starts_with("buildkit-blob-1-")) {
        assert_eq!(k.trim_start_matches("buildkit-blob-1-sha256:"), sha256_hex(data), "{k} holds other bytes");
    }
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "v:1", "--cache-from", "type=gha,scope=v1test"], &env).ok();
    assert!(!o.stdout.contains("RAN-42"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(image_id(&b, "v:1"), image_id(&a, "v:1"));
    // another scope= is another index: nothing there (a warning, the build goes on)
    let c = t.dir.path().join("c");
    let o = build(&c, &ctx, &["-t", "v:1", "--cache-from", "type=gha,scope=other"], &env).ok();
    assert!(o.stdout.contains("RAN-42") && o.stdout.contains("WARNING"), "{}", o.stdout);
}

#[test]
fn gha_ghtoken_lists_the_keys_once_instead_of_a_lookup_per_blob() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let svc = GhaService::start(&az);
    let t = Slipway::new();
    let ctx = busybox_context(&t, "l", DOCKERFILE);
    let tok = svc.token(&[("refs/heads/main", 3)]);
    // a runner's GITHUB_API_URL (GitHub Enterprise's; BuildKit asks api.github.com only)
    let env = [("ACTIONS_RUNTIME_TOKEN", tok.as_str()), ("GITHUB_API_URL", svc.url.as_str())];
    let spec = format!("type=gha,url_v2={},ghtoken={GH_TOKEN},repository=octo/app", svc.url);
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "l:1", "--cache-to", &spec], &env).ok();
    assert!(o.stdout.contains("0 cache key(s) listed in octo/app"), "{}", o.stdout);
    assert!(!o.stdout.contains(GH_TOKEN) && !o.stderr.contains(GH_TOKEN), "the GitHub token in the log");
    let saved = svc.entries().iter().filter(|e| e.key.starts_with("buildkit-blob-1-")).count();
    // again: the listing has every blob, so none is looked up (the one lookup left is the
    // index's newest value) and none saved
    let before = svc.log().len();
    let o = build(&a, &ctx, &["-t", "l:1", "--cache-to", &spec], &env).ok();
    assert!(o.stdout.contains(&format!("{saved} cache key(s) listed")), "{}", o.stdout);
    assert!(o.stdout.contains(&format!("0 blob(s) saved, {saved} already there")), "{}", o.stdout);
    let log = svc.log()[before..].to_vec();
    assert_eq!(log.iter().filter(|l| l.starts_with("GET /repos/octo/app/actions/caches")).count(), 1, "{log:?}");
    assert_eq!(log.iter().filter(|l| l.contains("GetCacheEntryDownloadURL")).count(), 1, "{log:?}");
    // a wrong GitHub token: BuildKit falls back to a lookup per blob; so does slipway, warning
    let bad = format!("type=gha,url_v2={},ghtoken=wrong,repository=octo/app", svc.url);
    let o = build(&a, &ctx, &["-t", "l:1", "--cache-to", &bad], &env).ok();
    assert!(o.stdout.contains("WARNING") && o.stdout.contains("Bad credentials"), "{}", o.stdout);
    assert!(o.stdout.contains(&format!("0 blob(s) saved, {saved} already there")), "{}", o.stdout);
}

#[test]
fn gha_errors_name_the_service_error() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let svc = GhaService::start(&az);
    let t = Slipway::new();
    let ctx = t.context("e", &[("a", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\n")]);
    let root = t.dir.path().join("r");
    // a token the service did not sign (well-formed, not expired): its 401 and Twirp code
    let wrong = gha::token(b"another-secret", &[("refs/heads/main", 3)]);
    let to = format!("type=gha,url_v2={},token={wrong}", svc.url);
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &to], &[]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("HTTP 401: unauthenticated: token signature is invalid"), "{}", o.stderr);
    assert!(o.stderr.contains("token=***") && !o.stderr.contains(&wrong), "{}", o.stderr);
    assert!(svc.entries().is_empty());
    // ignore-error=true: the same failure is a warning, the build succeeds
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &format!("{to},ignore-error=true")], &[]).ok();
    assert!(o.stderr.contains("WARNING") && o.stderr.contains("unauthenticated"), "{}", o.stderr);
    // on import: a warning naming the code, the build goes on
    let o = build(&root, &ctx, &["-t", "c:2", "--cache-from", &to], &[]).ok();
    assert!(o.stdout.contains("WARNING") && o.stdout.contains("unauthenticated"), "{}", o.stdout);
    // refused before any request, in BuildKit's and go-actions-cache's words
    for (spec, want) in [
        (format!("type=gha,url={}", svc.url), "token not set for github actions cache"),
        (format!("type=gha,token={wrong}"), "url not set for github actions cache"),
        (format!("type=gha,url={},token=not-a-jwt", svc.url), "token is malformed"),
        (format!("type=gha,url={},token={wrong},timeout=ten", svc.url), "failed to parse timeout"),
    ] {
        let o = build(&root, &ctx, &["-t", "c:3", "--cache-to", &spec], &[]);
        assert_ne!(o.code, 0, "{spec}");
        assert!(o.stderr.contains(want), "{spec}: {}", o.stderr);
    }
    assert!(svc.log().iter().all(|l| l.ends_with(" 401")), "{:?}", svc.log());
}

#[test]
fn gha_cache_carries_cache_mounts() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let svc = GhaService::start(&az);
    let t = Slipway::new();
    let ctx = busybox_context(
        &t,
        "m",
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"sh\", \"-c\", \"echo pkg-v1 > /c/pkg; echo done > /d\"]\n",
    );
    let tok = svc.token(&[("refs/heads/main", 3)]);
    let spec = format!("type=gha,url_v2={},token={tok}", svc.url);
    let a = t.dir.path().join("a");
    build(&a, &ctx, &["-t", "m:1", "--cache-to", &format!("{spec},cache-mounts=true")], &[]).ok();
    let entries = committed(&svc, &az);
    let index = entries.iter().find(|(k, _)| k.starts_with("index-buildkit-1-")).expect("index");
    let cfg: serde_json::Value = serde_json::from_slice(&index.1).unwrap();
    let mount = cfg["mounts"][0]["digest"].as_str().unwrap_or_else(|| panic!("no cache mount in {cfg}")).to_string();
    let blob = entries.iter().find(|(k, _)| *k == format!("buildkit-blob-1-{mount}")).expect("the mount's blob");
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.1)), mount);
    // a fresh store: the cache mount arrives with the steps, and a RUN that reads it sees it
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "m:1", "--cache-from", &spec], &[]).ok();
    assert!(o.stdout.contains("1 cache mounts"), "{}", o.stdout);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"sh\", \"-c\", \"echo MOUNT-$(cat /c/pkg)\"]\n",
    )
    .unwrap();
    let o = build(&b, &ctx, &["-t", "m:2"], &[]).ok();
    assert!(o.stdout.contains("MOUNT-pkg-v1"), "{}", o.stdout);
}
