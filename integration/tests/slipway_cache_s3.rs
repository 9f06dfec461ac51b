//! `--cache-to/--cache-from type=s3` against a real S3 server (moto, from the venv `make deps`
//! makes; SigV4 checking on): the objects at BuildKit's keys, listed and hashed with boto3; a fresh
//! store hitting every step from them; a blob already there not sent again and refreshed by
//! `touch_refresh`; S3's error codes for a bad signature and a missing bucket.

use integration::s3::{self, Moto, PyServer, REGION};
use integration::slipway::{bin, runtime, Run, Slipway};
use std::path::Path;
use std::process::Command;

/// `slipway --root ROOT build --runtime RT ARGS CTX` with `env` (and no AWS_* of the caller's).
fn build(root: &Path, ctx: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(["build", "--runtime", &runtime()]).args(args).arg(ctx);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        c.env_remove(k);
    }
    c.env("HOME", root); // no ~/.aws of the caller's
    for (k, v) in env {
        c.env(k, v);
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

#[test]
fn s3_cache_at_buildkits_keys_hits_every_step_of_a_fresh_store() {
    if !s3::available() {
        return;
    }
    let m = Moto::start();
    m.create_bucket("slipway-cache");
    let t = Slipway::new();
    let ctx = t.context("s3", &[("f.txt", "file\n")]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((40+2)); echo one > /one\"]\n\
         COPY f.txt /f.txt\nENV X=1\n",
    )
    .unwrap();
    let common =
        format!("type=s3,bucket=slipway-cache,region={REGION},endpoint_url={},use_path_style=true", m.endpoint);
    let keys = format!("access_key_id={},secret_access_key={}", m.access_key, m.secret_key);
    let a = t.dir.path().join("a");
    let to = format!("{common},{keys},prefix=ci/,name=main;pr-7,mode=max");
    let o = build(&a, &ctx, &["-t", "app:1", "--cache-to", &to], &[]).ok();
    assert!(o.stdout.contains("RAN-42"), "{}", o.stdout);

    // BuildKit's layout: a manifest object per name, every blob under blobs/sha256:<hex>, each
    // holding the bytes its name says
    let objects = m.objects("slipway-cache");
    let names: Vec<&str> = objects.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(names.contains(&"ci/manifests/main") && names.contains(&"ci/manifests/pr-7"), "{names:?}");
    let blobs: Vec<&(String, String, serde_json::Value)> =
        objects.iter().filter(|(k, _, _)| k.starts_with("ci/blobs/sha256:")).collect();
    assert_eq!(blobs.len() + 2, objects.len(), "only manifests and blobs: {names:?}");
    for (k, sha, _) in &blobs {
        assert_eq!(k.trim_start_matches("ci/blobs/sha256:"), sha, "{k} holds other bytes");
    }
    // the manifest object is slipway's cache config: its steps, whose configs and layers are blobs
    let cfg: serde_json::Value = serde_json::from_str(&m.get("slipway-cache", "ci/manifests/main")).unwrap();
    assert_eq!(m.get("slipway-cache", "ci/manifests/pr-7"), m.get("slipway-cache", "ci/manifests/main"));
    let steps = cfg["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 4, "{cfg}");
    for s in steps {
        let mut digests = vec![s["config"].as_str().unwrap().to_string()];
        for l in s["layers"].as_array().into_iter().flatten() {
            digests.push(l["digest"].as_str().unwrap().to_string());
        }
        for d in digests {
            assert!(names.contains(&format!("ci/blobs/{d}").as_str()), "{d} not in the bucket: {names:?}");
        }
    }

    // a fresh store, credentials from the environment: every step a hit, no RUN, same image
    let b = t.dir.path().join("b");
    let from = format!("{common},prefix=ci/,name=pr-7");
    let env = [("AWS_ACCESS_KEY_ID", m.access_key.as_str()), ("AWS_SECRET_ACCESS_KEY", m.secret_key.as_str())];
    let o = build(&b, &ctx, &["-t", "app:1", "--cache-from", &from], &env).ok();
    assert!(!o.stdout.contains("RAN-42"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(o.stdout.matches("Using cache from s3").count(), 4, "{}", o.stdout);
    assert_eq!(image_id(&b, "app:1"), image_id(&a, "app:1"));

    // exported again: nothing sent (HEAD first), nothing refreshed within touch_refresh (24h)
    let o = build(&a, &ctx, &["-t", "app:1", "--cache-to", &to], &[]).ok();
    assert!(o.stdout.contains(&format!("0 blob(s) uploaded, {} already there", blobs.len())), "{}", o.stdout);
    assert!(m.objects("slipway-cache").iter().all(|(_, _, meta)| meta.get("updated-at").is_none()));
    // touch_refresh=0s: every blob is older than that, so each is copied onto itself
    let o = build(&a, &ctx, &["-t", "app:1", "--cache-to", &format!("{to},touch_refresh=0s")], &[]).ok();
    assert!(o.stdout.contains("0 blob(s) uploaded"), "{}", o.stdout);
    for (k, sha, meta) in m.objects("slipway-cache") {
        if k.starts_with("ci/blobs/") {
            assert!(meta.get("updated-at").is_some(), "{k} not refreshed: {meta}");
            assert_eq!(k.trim_start_matches("ci/blobs/sha256:"), sha, "{k} changed by the refresh");
        }
    }
}

#[test]
fn s3_errors_name_the_s3_error_code() {
    if !s3::available() {
        return;
    }
    let m = Moto::start();
    m.create_bucket("slipway-cache");
    let t = Slipway::new();
    let ctx = t.context("e", &[("a", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\n")]);
    let root = t.dir.path().join("r");
    let common = format!("type=s3,region={REGION},endpoint_url={},use_path_style=true", m.endpoint);
    let keys = format!("access_key_id={},secret_access_key={}", m.access_key, m.secret_key);

    // a wrong secret: moto checks the signature as AWS does
    let bad = format!("{common},bucket=slipway-cache,access_key_id={},secret_access_key=wrong", m.access_key);
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &bad], &[]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("SignatureDoesNotMatch") && o.stderr.contains("--cache-to"), "{}", o.stderr);
    // an access key IAM does not know
    let o = build(
        &root,
        &ctx,
        &[
            "-t",
            "c:1",
            "--cache-to",
            &format!("{common},bucket=slipway-cache,access_key_id=AKIANOPE,secret_access_key=x"),
        ],
        &[],
    );
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("InvalidAccessKeyId"), "{}", o.stderr);
    // no credentials anywhere: said before any request
    // (EC2 instance metadata, the chain's last source, off: this host may be an EC2 instance)
    let o = build(
        &root,
        &ctx,
        &["-t", "c:1", "--cache-to", &format!("{common},bucket=slipway-cache")],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("no AWS credentials"), "{}", o.stderr);
    assert!(m.objects("slipway-cache").is_empty(), "a failed export left objects");
    // bucket, region and the key from the environment and the shared credentials file's profile
    let file = t.dir.path().join("aws-credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = AKIANOPE\naws_secret_access_key = nope\n\n[ci]\n\
             aws_access_key_id = {}\naws_secret_access_key = {}\n",
            m.access_key, m.secret_key
        ),
    )
    .unwrap();
    let env = [
        ("AWS_BUCKET", "slipway-cache"),
        ("AWS_REGION", REGION),
        ("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap()),
        ("AWS_PROFILE", "ci"),
    ];
    // no use_path_style: an endpoint that is an IP address gets path style anyway (the SDK's rules)
    let bare = format!("type=s3,endpoint_url={}", m.endpoint);
    build(&root, &ctx, &["-t", "c:1", "--cache-to", &bare], &env).ok();
    assert!(m.objects("slipway-cache").iter().any(|(k, _, _)| k == "manifests/buildkit"));

    // a missing bucket: an export fails (unless ignore-error), an import is a warning
    let nope = format!("{common},bucket=no-such-bucket,{keys}");
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &nope], &[]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("NoSuchBucket"), "{}", o.stderr);
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &format!("{nope},ignore-error=true")], &[]).ok();
    assert!(o.stderr.contains("WARNING") && o.stderr.contains("NoSuchBucket"), "{}", o.stderr);
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-from", &nope], &[]).ok();
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(all.contains("WARNING: cache from s3") && all.contains("NoSuchBucket"), "{all}");
    // a name nothing was exported under: a warning too
    let o = build(
        &root,
        &ctx,
        &["-t", "c:1", "--cache-from", &format!("{common},bucket=slipway-cache,{keys},name=nothing")],
        &[],
    )
    .ok();
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(all.contains("WARNING: cache from s3") && all.contains("NoSuchKey"), "{all}");
}

/// `cache-mounts=true` over S3: the RUN cache mount's content travels as one more blob at
/// BuildKit's blob key, and a fresh store gets it before its build runs.
#[test]
fn s3_cache_carries_cache_mounts() {
    if !s3::available() {
        return;
    }
    let m = Moto::start();
    m.create_bucket("mounts");
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
        "type=s3,bucket=mounts,region={REGION},endpoint_url={},use_path_style=true,access_key_id={},secret_access_key={}",
        m.endpoint, m.access_key, m.secret_key
    );
    let a = t.dir.path().join("a");
    build(&a, &ctx, &["-t", "m:1", "--cache-to", &format!("{spec},cache-mounts=true")], &[]).ok();
    let cfg: serde_json::Value = serde_json::from_str(&m.get("mounts", "manifests/buildkit")).unwrap();
    let mount = cfg["mounts"][0]["digest"].as_str().unwrap_or_else(|| panic!("no cache mount in {cfg}")).to_string();
    let objects = m.objects("mounts");
    assert!(
        objects.iter().any(|(k, sha, _)| *k == format!("blobs/{mount}") && mount.ends_with(sha.as_str())),
        "{mount} not in {objects:?}"
    );
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

/// `n` bytes that gzip cannot shrink (xorshift64), so a layer of them is as big as they are.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A blob of 16 MiB or more goes up in parts of 8 MiB, as the SDK's transfer manager BuildKit
/// uploads with does: whole in the bucket (its SHA-256 is its key), its ETag that of 3 parts, and
/// a fresh store gets it back. A part S3 refuses aborts the upload: no upload is left open.
#[test]
fn s3_big_blobs_go_up_in_parts_and_a_failed_part_leaves_nothing() {
    if !s3::available() {
        return;
    }
    let m = Moto::start();
    m.create_bucket("big");
    let t = Slipway::new();
    let ctx = t.context("big", &[("Dockerfile", "FROM scratch\nCOPY big /big\n")]);
    std::fs::write(ctx.join("big"), noise(20 << 20)).unwrap();
    let keys = format!("access_key_id={},secret_access_key={}", m.access_key, m.secret_key);
    let spec = |endpoint: &str| format!("type=s3,bucket=big,region={REGION},endpoint_url={endpoint},{keys}");
    let big = |m: &Moto| m.sizes("big").into_iter().filter(|(_, size, _)| *size >= 16 << 20).collect::<Vec<_>>();

    // part 2 refused (a proxy in front of moto answers AccessDenied): the export fails naming
    // the call and S3's code, and the upload is aborted
    let proxy = PyServer::start(s3::FAULT_PROXY, &[&m.port.to_string(), "partNumber=2&"]);
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "big:1", "--cache-to", &spec(&proxy.url())], &[]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("UploadPart") && o.stderr.contains("AccessDenied"), "{}", o.stderr);
    assert_eq!(m.open_uploads("big"), Vec::<String>::new(), "a failed upload was left open");
    assert!(big(&m).is_empty(), "{:?}", m.sizes("big"));
    drop(proxy);

    let o = build(&a, &ctx, &["-t", "big:1", "--cache-to", &spec(&m.endpoint)], &[]).ok();
    assert!(o.stdout.contains("blob(s) uploaded"), "{}", o.stdout);
    let parts = big(&m);
    assert_eq!(parts.len(), 1, "{:?}", m.sizes("big"));
    let (key, size, etag) = &parts[0];
    // a multipart object's ETag is the MD5 of its parts' MD5s, then -PARTS: 20 MiB+ in 8 MiB parts
    assert!(etag.ends_with(&format!("-{}", size.div_ceil(8 << 20))), "{key}: {size} bytes, ETag {etag}");
    for (k, sha, _) in m.objects("big") {
        if let Some(hex) = k.strip_prefix("blobs/sha256:") {
            assert_eq!(hex, sha, "{k} holds other bytes");
        }
    }
    assert!(m.open_uploads("big").is_empty());

    // a fresh store gets the big layer back from the bucket: the same image
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "big:1", "--cache-from", &spec(&m.endpoint)], &[]).ok();
    assert!(o.stdout.contains("Using cache from s3"), "{}", o.stdout);
    assert_eq!(image_id(&b, "big:1"), image_id(&a, "big:1"));
}

/// Each source of the AWS SDK's default chain authenticates against moto (every request's
/// signature checked): a profile's `credential_process` in the config file, web identity
/// (STS AssumeRoleWithWebIdentity, as GitHub Actions OIDC and EKS IRSA), `role_arn` +
/// `source_profile` (STS AssumeRole), an ECS container endpoint with its token, EC2 instance
/// metadata (IMDSv2); `AWS_ENDPOINT_URL` and the profile's `services` endpoints are used. Wrong
/// keys fail naming S3's code, and no secret reaches a message.
#[test]
fn s3_credentials_from_the_sdks_chain() {
    if !s3::available() {
        return;
    }
    let m = Moto::start();
    m.create_bucket("creds");
    let t = Slipway::new();
    let ctx = t.context("c", &[("a", "a\n"), ("Dockerfile", "FROM scratch\nCOPY a /a\n")]);
    let root = t.dir.path().join("r");
    let spec = |name: &str| {
        format!("type=s3,bucket=creds,region={REGION},endpoint_url={},use_path_style=true,name={name}", m.endpoint)
    };
    let written = |name: &str| m.objects("creds").iter().any(|(k, _, _)| *k == format!("manifests/{name}"));
    let no_secret = |o: &integration::slipway::Run, secret: &str| {
        let all = format!("{}{}", o.stdout, o.stderr);
        assert!(!all.contains(secret), "a secret in the output:\n{all}");
    };
    let off = ("AWS_EC2_METADATA_DISABLED", "true");

    // credential_process of a profile of the config file (AWS_CONFIG_FILE, AWS_PROFILE)
    let json =
        |secret: &str| format!(r#"{{"Version": 1, "AccessKeyId": "{}", "SecretAccessKey": "{secret}"}}"#, m.access_key);
    let good = t.dir.path().join("good.json");
    std::fs::write(&good, json(&m.secret_key)).unwrap();
    let bad = t.dir.path().join("bad.json");
    std::fs::write(&bad, json("wrong-secret-XYZ")).unwrap();
    let config = t.dir.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[default]\ncredential_process = cat {}\n\n[profile ci]\ncredential_process = cat {}\n\n\
             [profile assume]\nrole_arn = {}\nsource_profile = base\nservices = moto\n\n\
             [services moto]\nsts =\n  endpoint_url = {}\n",
            bad.display(),
            good.display(),
            s3::ROLE_ARN,
            m.endpoint
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let env = [("AWS_CONFIG_FILE", cfg), ("AWS_PROFILE", "ci"), off];
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("process")], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(written("process"));
    no_secret(&o, &m.secret_key);
    // the default profile's process gives a wrong secret: S3's code, and neither secret shown
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("wrong")], &[("AWS_CONFIG_FILE", cfg), off]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("SignatureDoesNotMatch"), "{}", o.stderr);
    no_secret(&o, "wrong-secret-XYZ");

    // role_arn + source_profile (keys in the credentials file): AssumeRole at the profile's
    // services endpoint for sts; S3 then takes the role's temporary keys and session token
    let creds = t.dir.path().join("aws-credentials");
    std::fs::write(
        &creds,
        format!("[base]\naws_access_key_id = {}\naws_secret_access_key = {}\n", m.access_key, m.secret_key),
    )
    .unwrap();
    let env = [
        ("AWS_CONFIG_FILE", cfg),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_PROFILE", "assume"),
        off,
    ];
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("assume")], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(written("assume"));
    no_secret(&o, &m.secret_key);

    // web identity from the environment (a GitHub Actions OIDC token): STS at
    // AWS_ENDPOINT_URL_STS, S3 at AWS_ENDPOINT_URL (no endpoint_url attribute)
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOngvYSJ9.c2ln";
    let sts = PyServer::start(s3::WEB_IDENTITY_STS, &[&m.port.to_string(), jwt, &m.access_key, &m.secret_key]);
    let token = t.dir.path().join("oidc-token");
    std::fs::write(&token, format!("{jwt}\n")).unwrap();
    let sts_url = sts.url();
    let env = [
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", s3::ROLE_ARN),
        ("AWS_ENDPOINT_URL", m.endpoint.as_str()),
        ("AWS_ENDPOINT_URL_STS", sts_url.as_str()),
        off,
    ];
    let web = format!("type=s3,bucket=creds,region={REGION},name=web");
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &web], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(written("web"));
    // another token: STS's code, and the token is not shown
    std::fs::write(&token, "eyJvdGhlciJ9.e30.c2lnbmF0dXJl").unwrap();
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &format!("{web}2")], &env);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("AssumeRoleWithWebIdentity") && o.stderr.contains("InvalidIdentityToken"),
        "{}",
        o.stderr
    );
    no_secret(&o, "eyJvdGhlciJ9");

    // an ECS container endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI + its authorization token)
    let ecs = PyServer::start(s3::ECS_SERVER, &["ecs-token-123", &m.access_key, &m.secret_key]);
    let uri = format!("{}/creds", ecs.url());
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-token-123"),
        off,
    ];
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("ecs")], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(written("ecs"));
    let env = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "other-token"),
        off,
    ];
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("ecs2")], &env);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("container credentials endpoint") && o.stderr.contains("InvalidToken"), "{}", o.stderr);
    no_secret(&o, "other-token");

    // EC2 instance metadata, IMDSv2 only (AWS_EC2_METADATA_SERVICE_ENDPOINT): the last source
    let imds = PyServer::start(s3::IMDS_SERVER, &[&m.access_key, &m.secret_key]);
    let env = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &spec("imds")], &env);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(written("imds"));
}
