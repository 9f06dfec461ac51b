//! `--cache-to/--cache-from type=azblob` against a real Azure Blob server (Azurite, from the npm
//! install `make deps` makes; every Shared Key signature checked): the container made as BuildKit
//! makes it, the blobs at BuildKit's keys, listed and hashed by an independent client; a fresh
//! store hitting every step from them; a blob already there not sent again; Azure's error code
//! for a wrong key; a missing manifest a warning on import; cache mounts carried (cache-mounts=true).

use integration::azurite::{self, Azurite, ACCOUNT, KEY};
use integration::slipway::{bin, runtime, Run, Slipway};
use std::path::Path;
use std::process::Command;

/// `slipway --root ROOT build --runtime RT ARGS CTX` (no BUILDKIT_AZURE_* of the caller's).
fn build(root: &Path, ctx: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(["build", "--runtime", &runtime()]).args(args).arg(ctx);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("BUILDKIT_AZURE_")) {
        c.env_remove(k);
    }
    let o = c.output().expect("run slipway");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn image_id(root: &Path, name: &str) -> String {
    let o = Command::new(bin()).arg("--root").arg(root).args(["inspect", name]).output().expect("inspect");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(b))
}

#[test]
fn azblob_cache_at_buildkits_keys_hits_every_step_of_a_fresh_store() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let t = Slipway::new();
    let ctx = t.context("az", &[("f.txt", "file\n")]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((40+2)); echo one > /one\"]\n\
         COPY f.txt /f.txt\nENV X=1\n",
    )
    .unwrap();
    // a path-style emulator URL: BuildKit takes the account name from the host's first label,
    // so account_name is given
    let common = format!("type=azblob,account_url={},account_name={ACCOUNT},secret_access_key={KEY}", az.account_url);
    // the container does not exist yet: BuildKit's exporter creates it
    assert_eq!(az.blobs("buildkit-cache").unwrap_err(), "HTTP 404 ContainerNotFound");
    let a = t.dir.path().join("a");
    let to = format!("{common},prefix=ci/,name=main;pr-7,mode=max");
    let o = build(&a, &ctx, &["-t", "app:1", "--cache-to", &to]).ok();
    assert!(o.stdout.contains("RAN-42"), "{}", o.stdout);
    assert!(o.stdout.contains("created the container buildkit-cache"), "{}", o.stdout);
    assert!(!o.stdout.contains(KEY) && !o.stderr.contains(KEY), "the key in the log");

    // BuildKit's layout (path.Join(prefix, manifests_prefix|blobs_prefix, ...)): a manifest
    // blob per name, every blob under blobs/sha256:<hex> holding the bytes its name says
    let blobs = az.blobs("buildkit-cache").expect("list");
    let names: Vec<&str> = blobs.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(names.contains(&"ci/manifests/main") && names.contains(&"ci/manifests/pr-7"), "{names:?}");
    let layer_blobs: Vec<_> = blobs.iter().filter(|(k, _, _)| k.starts_with("ci/blobs/sha256:")).collect();
    assert_eq!(layer_blobs.len() + 2, blobs.len(), "only manifests and blobs: {names:?}");
    for (k, sha, data) in &layer_blobs {
        assert_eq!(k.trim_start_matches("ci/blobs/sha256:"), sha, "{k} holds other bytes");
        assert_eq!(&sha256_hex(data), sha);
    }
    let manifest = |n: &str| blobs.iter().find(|(k, _, _)| k == n).map(|(_, _, d)| d.clone()).unwrap();
    assert_eq!(manifest("ci/manifests/main"), manifest("ci/manifests/pr-7"));
    let cfg: serde_json::Value = serde_json::from_slice(&manifest("ci/manifests/main")).unwrap();
    let steps = cfg["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "{cfg}");
    for s in steps {
        let mut digests = vec![s["config"].as_str().unwrap().to_string()];
        for l in s["layers"].as_array().into_iter().flatten() {
            digests.push(l["digest"].as_str().unwrap().to_string());
        }
        for d in digests {
            assert!(names.contains(&format!("ci/blobs/{d}").as_str()), "{d} not in the container: {names:?}");
        }
    }

    // a fresh store: every step a hit, no RUN, the same image; BuildKit's importer reads every
    // name and combines them, so a first name with nothing under it does not hide the second
    let b = t.dir.path().join("b");
    let from = format!("{common},prefix=ci/,name=not-yet;pr-7");
    let o = build(&b, &ctx, &["-t", "app:1", "--cache-from", &from]).ok();
    assert!(!o.stdout.contains("RAN-42"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(o.stdout.matches(&format!("Using cache from {}", az.account_url)).count(), 4, "{}", o.stdout);
    assert_eq!(image_id(&b, "app:1"), image_id(&a, "app:1"));

    // exported again from the fresh store: no blob sent again (Get Blob Properties first)
    let o = build(&b, &ctx, &["-t", "app:1", "--cache-to", &to]).ok();
    let n = layer_blobs.len();
    assert!(o.stdout.contains(&format!("0 blob(s) uploaded, {n} already there")), "{}", o.stdout);
    assert_eq!(az.blobs("buildkit-cache").unwrap().len(), blobs.len());
}

#[test]
fn azblob_errors_name_the_azure_error_code() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let t = Slipway::new();
    let ctx = t.context("e", &[("a", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\n")]);
    let root = t.dir.path().join("r");
    let base = format!("type=azblob,account_url={},account_name={ACCOUNT}", az.account_url);

    // a wrong key (another valid base64 key): Azurite checks the signature as Azure does and
    // answers 403 with its code (AuthorizationFailure; Azure itself says AuthenticationFailed)
    let wrong = format!("{base},secret_access_key={}", "QUFBQQ==");
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &wrong]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr.contains("HTTP 403: AuthorizationFailure") || o.stderr.contains("HTTP 403: AuthenticationFailed"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("--cache-to") && o.stderr.contains("secret_access_key=***"), "{}", o.stderr);
    assert_eq!(az.blobs("buildkit-cache").unwrap_err(), "HTTP 404 ContainerNotFound", "a failed export made it");
    // ignore-error=true: the same failure is a warning, the build succeeds
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &format!("{wrong},ignore-error=true")]).ok();
    assert!(o.stderr.contains("WARNING") && o.stderr.contains("403"), "{}", o.stderr);
    // no key: refused before any request (no default credential chain)
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &base]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("secret_access_key not set"), "{}", o.stderr);

    // import from a container that does not exist: BuildKit creates it and finds no manifest
    // (an empty cache); slipway does the same and says so as a warning, the build goes on
    let from = format!("{base},secret_access_key={KEY},container=nothing-here");
    let o = build(&root, &ctx, &["-t", "c:2", "--cache-from", &from]).ok();
    assert!(o.stdout.contains("WARNING") && o.stdout.contains("BlobNotFound"), "{}", o.stdout);
    assert_eq!(az.blobs("nothing-here").unwrap(), vec![], "the container was not created");
    // import with a wrong key: a warning naming the code, the build goes on
    let o = build(&root, &ctx, &["-t", "c:3", "--cache-from", &format!("{base},secret_access_key=QUFBQQ==")]).ok();
    assert!(o.stdout.contains("WARNING") && o.stdout.contains("403"), "{}", o.stdout);
}

#[test]
fn azblob_cache_carries_cache_mounts() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let t = Slipway::new();
    let ctx = t.context("m", &[]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"sh\", \"-c\", \"echo pkg-v1 > /c/pkg; echo done > /d\"]\n",
    )
    .unwrap();
    let spec = format!(
        "type=azblob,account_url={},account_name={ACCOUNT},secret_access_key={KEY},container=mounts",
        az.account_url
    );
    let a = t.dir.path().join("a");
    build(&a, &ctx, &["-t", "m:1", "--cache-to", &format!("{spec},cache-mounts=true")]).ok();
    let blobs = az.blobs("mounts").expect("list");
    let manifest = blobs.iter().find(|(k, _, _)| k == "manifests/buildkit").expect("manifest").2.clone();
    let cfg: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mount = cfg["mounts"][0]["digest"].as_str().unwrap_or_else(|| panic!("no cache mount in {cfg}")).to_string();
    assert!(
        blobs.iter().any(|(k, sha, _)| *k == format!("blobs/{mount}") && mount.ends_with(sha.as_str())),
        "{mount} not in the container"
    );
    // a fresh store: the cache mount arrives with the steps, and a RUN that reads it sees it
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "m:1", "--cache-from", &spec]).ok();
    assert!(o.stdout.contains("1 cache mounts"), "{}", o.stdout);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"sh\", \"-c\", \"echo MOUNT-$(cat /c/pkg)\"]\n",
    )
    .unwrap();
    let o = build(&b, &ctx, &["-t", "m:2"]).ok();
    assert!(o.stdout.contains("MOUNT-pkg-v1"), "{}", o.stdout);
}

#[test]
fn azblob_blob_over_32_mib_goes_up_in_blocks() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let t = Slipway::new();
    let ctx = t.context("big", &[]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    // 40 MiB of random bytes: a layer gzip cannot shrink below BuildKit's 32 MiB block size
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((1+1))BIG; /bin/busybox dd if=/dev/urandom of=/big bs=1048576 count=40\"]\n",
    )
    .unwrap();
    let spec = format!(
        "type=azblob,account_url={},account_name={ACCOUNT},secret_access_key={KEY},container=big",
        az.account_url
    );
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "big:1", "--cache-to", &spec]).ok();
    assert!(o.stdout.contains("RAN-2BIG"), "{}", o.stdout);
    // the committed blob holds exactly the layer's bytes (Put Block List in order)
    let blobs = az.blobs("big").expect("list");
    let big: Vec<_> = blobs.iter().filter(|(_, _, d)| d.len() as u64 > 32 << 20).collect();
    assert_eq!(
        big.len(),
        1,
        "no blob over 32 MiB: {:?}",
        blobs.iter().map(|(k, _, d)| (k, d.len())).collect::<Vec<_>>()
    );
    let (k, sha, data) = big[0];
    assert_eq!(k.trim_start_matches("blobs/sha256:"), sha);
    assert_eq!(&sha256_hex(data), sha);
    assert_eq!(az.blocks("big", k), 2, "{k}: not 2 blocks of 32 MiB");
    // a small blob is one Put Blob (no block list)
    let small = blobs.iter().find(|(_, _, d)| d.len() < 1 << 20).expect("a small blob");
    assert_eq!(az.blocks("big", &small.0), 0, "{}", small.0);
    // a fresh store gets it back, verified, and hits every step
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "big:1", "--cache-from", &spec]).ok();
    assert!(!o.stdout.contains("RAN-2BIG"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(image_id(&b, "big:1"), image_id(&a, "big:1"));
    // exported again: the blob is there, nothing sent
    let o = build(&b, &ctx, &["-t", "big:1", "--cache-to", &spec]).ok();
    assert!(o.stdout.contains("0 blob(s) uploaded"), "{}", o.stdout);
}
