//! `--cache-to/--cache-from type=azblob` against a real Azure Blob server (Azurite, from the npm
//! install `make deps` makes; every Shared Key signature checked): the container made as BuildKit
//! makes it, the blobs at BuildKit's keys, listed and hashed by an independent client; a fresh
//! store hitting every step from them; a blob already there not sent again; Azure's error code
//! for a wrong key; a missing manifest a warning on import; cache mounts carried (cache-mounts=true).

use integration::azurite::{self, Azurite, ACCOUNT, KEY};
use integration::entra::{self, Entra};
use integration::slipway::{bin, runtime, Run, Slipway};
use std::path::Path;
use std::process::Command;

/// `slipway --root ROOT build --runtime RT ARGS CTX` (no BUILDKIT_AZURE_* of the caller's).
fn build(root: &Path, ctx: &Path, args: &[&str]) -> Run {
    build_env(root, ctx, args, &[])
}

/// The same with `env` set and none of the caller's Azure credentials (AZURE_*, the managed
/// identity endpoints), so the chain sees only what the test gives it.
fn build_env(root: &Path, ctx: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(bin());
    c.arg("--root").arg(root).args(["build", "--runtime", &runtime()]).args(args).arg(ctx);
    for (k, _) in std::env::vars().filter(|(k, _)| {
        k.starts_with("BUILDKIT_AZURE_")
            || k.starts_with("AZURE_")
            || ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"]
                .contains(&k.as_str())
    }) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
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
    // no key and no SAS token over http: OAuth tokens go over https only (as azcore's bearer
    // policy), refused before any request
    let o = build(&root, &ctx, &["-t", "c:1", "--cache-to", &base]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("which go over https only"), "{}", o.stderr);

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

/// The SAS token's signature, as it appears in a URL query.
fn sig_of(sas: &str) -> String {
    sas.split('&').find_map(|kv| kv.strip_prefix("sig=")).expect("sig=").to_string()
}

/// Whether `text` shows the secret `s` (as given, or percent-decoded).
fn shows(text: &str, s: &str) -> bool {
    let decoded = s.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    text.contains(s) || text.contains(&decoded)
}

#[test]
fn azblob_sas_token_in_account_url() {
    if !azurite::available() {
        return;
    }
    let az = Azurite::start();
    let t = Slipway::new();
    let ctx = t.context("sas", &[("f.txt", "sas\n")]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((6*7))SAS; echo r > /r\"]\nCOPY f.txt /f.txt\n",
    )
    .unwrap();
    // an account SAS (signed by the test's own python, from Microsoft's documented format):
    // no secret_access_key, the container created through it (srt=sco)
    let sas = az.sas(None, "racwl", 2);
    let spec = |sas: &str, c: &str| {
        format!("type=azblob,account_url={}?{sas},account_name={ACCOUNT},container={c}", az.account_url)
    };
    let a = t.dir.path().join("a");
    let o = build(&a, &ctx, &["-t", "s:1", "--cache-to", &spec(&sas, "sas-cache")]).ok();
    assert!(o.stdout.contains("RAN-42SAS"), "{}", o.stdout);
    assert!(o.stdout.contains("created the container sas-cache"), "{}", o.stdout);
    let blobs = az.blobs("sas-cache").expect("list");
    let names: Vec<&str> = blobs.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(names.contains(&"manifests/buildkit"), "{names:?}");
    let layers: Vec<_> = blobs.iter().filter(|(k, _, _)| k.starts_with("blobs/sha256:")).collect();
    assert!(layers.len() >= 3, "{names:?}");
    for (k, sha, _) in &layers {
        assert_eq!(k.trim_start_matches("blobs/sha256:"), sha, "{k} holds other bytes");
    }
    let sig = sig_of(&sas);
    assert!(!shows(&o.stdout, &sig) && !shows(&o.stderr, &sig), "the SAS signature in the log");

    // a container (service) SAS, read and list only: a fresh store hits every step from it
    // (Get Container Properties is not allowed with it; the container is taken as there)
    let csas = az.sas(Some("sas-cache"), "rl", 2);
    let b = t.dir.path().join("b");
    let o = build(&b, &ctx, &["-t", "s:1", "--cache-from", &spec(&csas, "sas-cache")]).ok();
    assert!(!o.stdout.contains("RAN-42SAS"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(o.stdout.matches("Using cache from").count(), 3, "{}", o.stdout);
    assert_eq!(image_id(&b, "s:1"), image_id(&a, "s:1"));
    // ...and writing with it is refused by Azure, whose code the error names
    let o = build(&b, &ctx, &["-t", "s:1", "--cache-to", &spec(&csas, "sas-cache")]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("HTTP 403: AuthorizationPermissionMismatch"), "{}", o.stderr);

    // a forged signature (the same token for another container): 403 with Azure's code,
    // nothing made, the token nowhere in the output
    let good = az.sas(Some("sas-cache"), "racwl", 2);
    let forged = good.replace(&sig_of(&good), &sig_of(&az.sas(Some("other"), "racwl", 2)));
    assert_ne!(forged, good);
    let o = build(&b, &ctx, &["-t", "s:1", "--cache-to", &spec(&forged, "sas-cache")]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(
        o.stderr.contains("HTTP 403: AuthorizationFailure") || o.stderr.contains("HTTP 403: AuthenticationFailed"),
        "{}",
        o.stderr
    );
    for s in [&sas, &csas, &forged] {
        let sig = sig_of(s);
        assert!(!shows(&o.stdout, &sig) && !shows(&o.stderr, &sig), "an SAS signature in the output:\n{}", o.stderr);
    }
    assert!(o.stderr.contains("?<SAS token>") || !o.stderr.contains("account_url="), "{}", o.stderr);
    // an expired one
    let old = az.sas(None, "racwl", -1);
    let o = build(&b, &ctx, &["-t", "s:1", "--cache-to", &spec(&old, "sas-cache")]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("HTTP 403: "), "{}", o.stderr);
    assert!(!shows(&o.stderr, &sig_of(&old)), "{}", o.stderr);
    // beside a key: refused (one or the other), the key and the token unshown
    let both = format!("{},secret_access_key={KEY}", spec(&sas, "sas-cache"));
    let o = build(&b, &ctx, &["-t", "s:1", "--cache-to", &both]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("an SAS token and secret_access_key"), "{}", o.stderr);
    assert!(!shows(&o.stderr, &sig) && !o.stderr.contains(KEY), "{}", o.stderr);
}

/// A JWT as Entra issues them for storage (Azurite's `--oauth basic` checks issuer, audience
/// and lifetime, not the signature), made here for the fake `az`.
fn storage_jwt() -> String {
    use base64::Engine as _;
    let b = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    format!(
        "{}.{}.c2ln",
        b(serde_json::json!({"typ": "JWT", "alg": "RS256"})),
        b(
            serde_json::json!({"aud": "https://storage.azure.com", "iss": format!("https://sts.windows.net/{}/", entra::TENANT),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "ver": "1.0"})
        )
    )
}

#[test]
fn azblob_oauth_tokens_from_entra_id_workload_and_managed_identity() {
    if !azurite::available() {
        return;
    }
    if Command::new("openssl").arg("version").output().map(|o| !o.status.success()).unwrap_or(true) {
        integration::skip("no openssl (the azblob OAuth test's certificates)");
        return;
    }
    let tls = azurite::Tls::new();
    let az = Azurite::start_oauth(&tls);
    let idp = Entra::start(&tls);
    let ca = tls.ca();
    let ca = ca.to_str().unwrap();
    let t = Slipway::new();
    let ctx = t.context("oauth", &[("f.txt", "oauth\n")]);
    std::fs::copy("/usr/bin/busybox", ctx.join("busybox")).expect("busybox-static");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo RAN-$((6*7))OAUTH; echo r > /r\"]\nCOPY f.txt /f.txt\n",
    )
    .unwrap();
    // no secret_access_key, no SAS: BuildKit's DefaultAzureCredential
    let spec = format!("type=azblob,account_url={},account_name={ACCOUNT},container=oauth", az.account_url);
    let sp = [
        ("SSL_CERT_FILE", ca),
        ("AZURE_AUTHORITY_HOST", idp.authority.as_str()),
        ("AZURE_TENANT_ID", entra::TENANT),
        ("AZURE_CLIENT_ID", entra::CLIENT_ID),
    ];
    let mut outputs = Vec::new();

    // EnvironmentCredential: a service principal's client secret
    let secret = [&sp[..], &[("AZURE_CLIENT_SECRET", entra::SECRET)]].concat();
    let a = t.dir.path().join("a");
    let o = build_env(&a, &ctx, &["-t", "o:1", "--cache-to", &spec], &secret).ok();
    assert!(o.stdout.contains("RAN-42OAUTH") && o.stdout.contains("created the container oauth"), "{}", o.stdout);
    let blobs = az.blobs("oauth").expect("list");
    assert!(blobs.iter().any(|(k, _, _)| k == "manifests/buildkit"), "{blobs:?}");
    for (k, sha, _) in blobs.iter().filter(|(k, _, _)| k.starts_with("blobs/")) {
        assert_eq!(k.trim_start_matches("blobs/sha256:"), sha);
    }
    // one token for the whole export (kept until 5 minutes before it expires)
    let reqs = idp.requests();
    assert_eq!(reqs.iter().filter(|r| r.starts_with("POST token 200 secret")).count(), 1, "{reqs:?}");
    outputs.push(o);

    // WorkloadIdentityCredential (GitHub Actions OIDC, AKS): the federated token file is the
    // client assertion; a fresh store hits every step
    let file = t.dir.path().join("federated-token");
    std::fs::write(&file, format!("{}\n", entra::ASSERTION)).unwrap();
    let wi = [&sp[..], &[("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())]].concat();
    let b = t.dir.path().join("b");
    let o = build_env(&b, &ctx, &["-t", "o:1", "--cache-from", &spec], &wi).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    assert_eq!(image_id(&b, "o:1"), image_id(&a, "o:1"));
    assert!(idp.requests().iter().any(|r| r.starts_with("POST token 200 assertion")), "{:?}", idp.requests());
    outputs.push(o);

    // EnvironmentCredential with a client certificate (PEM: certificate and RSA key): MSAL's
    // PS256 assertion, its signature checked by the fake against the certificate
    let pem = tls.dir.path().join("client.pem");
    let cert = [&sp[..], &[("AZURE_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap())]].concat();
    let e = t.dir.path().join("e");
    let o = build_env(&e, &ctx, &["-t", "o:1", "--cache-from", &spec], &cert).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    assert!(idp.requests().iter().any(|r| r.starts_with("POST token 200 certificate")), "{:?}", idp.requests());
    outputs.push(o);
    // another key than the certificate's: Entra's AADSTS700027
    let other = t.dir.path().join("other.pem");
    let key = std::fs::read_to_string(tls.dir.path().join("server.key")).unwrap();
    std::fs::write(&other, std::fs::read_to_string(tls.dir.path().join("client.crt")).unwrap() + &key).unwrap();
    let bad_cert = [&sp[..], &[("AZURE_CLIENT_CERTIFICATE_PATH", other.to_str().unwrap())]].concat();
    let o = build_env(&e, &ctx, &["-t", "o:1", "--cache-to", &spec], &bad_cert);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("invalid_client: AADSTS700027"), "{}", o.stderr);
    assert!(!o.stderr.contains("PRIVATE KEY"), "{}", o.stderr);

    // ManagedIdentityCredential on App Service (IDENTITY_ENDPOINT + IDENTITY_HEADER), the
    // user-assigned identity named by AZURE_CLIENT_ID
    let mi = [
        ("SSL_CERT_FILE", ca),
        ("IDENTITY_ENDPOINT", idp.msi_endpoint.as_str()),
        ("IDENTITY_HEADER", entra::IDENTITY_HEADER),
        ("AZURE_CLIENT_ID", entra::CLIENT_ID),
    ];
    let c = t.dir.path().join("c");
    let o = build_env(&c, &ctx, &["-t", "o:1", "--cache-from", &spec], &mi).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    let line = format!("GET msi 200 {} ", entra::CLIENT_ID);
    assert!(idp.requests().iter().any(|r| r.starts_with(&line)), "{:?}", idp.requests());
    outputs.push(o);

    // AzureCLICredential: `az account get-access-token` (a fake az on PATH), reached after the
    // environment, workload identity and IMDS (probed, not there) are passed over
    let bin_dir = t.dir.path().join("az-bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let jwt = storage_jwt();
    std::fs::write(
        bin_dir.join("az"),
        format!(
            "#!/bin/sh\n[ \"$*\" = \"account get-access-token -o json --resource https://storage.azure.com\" ] || exit 3\n\
             echo '{{\"accessToken\": \"{jwt}\", \"expiresOn\": \"2099-01-01 00:00:00.000000\", \"expires_on\": 4070908800, \"tokenType\": \"Bearer\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin_dir.join("az"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let d = t.dir.path().join("d");
    let o = build_env(&d, &ctx, &["-t", "o:1", "--cache-from", &spec], &[("SSL_CERT_FILE", ca), ("PATH", &path)]).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    assert!(!o.stdout.contains(&jwt) && !o.stderr.contains(&jwt), "the az token in the output");

    // AzureDeveloperCLICredential: `azd auth token` when there is no az
    std::fs::remove_file(bin_dir.join("az")).unwrap();
    std::fs::write(
        bin_dir.join("azd"),
        format!(
            "#!/bin/sh\n[ \"$*\" = \"auth token -o json --no-prompt --scope https://storage.azure.com/.default\" ] || exit 3\n\
             echo '{{\"token\": \"{jwt}\", \"expiresOn\": \"2099-01-01T00:00:00Z\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin_dir.join("azd"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let f = t.dir.path().join("f");
    let o = build_env(&f, &ctx, &["-t", "o:1", "--cache-from", &spec], &[("SSL_CERT_FILE", ca), ("PATH", &path)]).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    assert!(!o.stdout.contains(&jwt) && !o.stderr.contains(&jwt), "the azd token in the output");

    // EnvironmentCredential with a user's password (the password grant)
    let user = [&sp[..], &[("AZURE_USERNAME", "builder@example.com"), ("AZURE_PASSWORD", entra::SECRET)]].concat();
    let g = t.dir.path().join("g");
    let o = build_env(&g, &ctx, &["-t", "o:1", "--cache-from", &spec], &user).ok();
    assert!(!o.stdout.contains("RAN-42OAUTH"), "a RUN step ran:\n{}", o.stdout);
    assert!(idp.requests().iter().any(|r| r.starts_with("POST token 200 password")), "{:?}", idp.requests());
    outputs.push(o);

    // a wrong client secret: Entra's code (AADSTS7000215), the build fails, nothing shown
    let wrong = [&sp[..], &[("AZURE_CLIENT_SECRET", "not-the-secret")]].concat();
    let o = build_env(&d, &ctx, &["-t", "o:1", "--cache-to", &spec], &wrong);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("invalid_client: AADSTS7000215"), "{}", o.stderr);
    assert!(o.stderr.contains("EnvironmentCredential"), "{}", o.stderr);
    assert!(!o.stderr.contains("not-the-secret"), "{}", o.stderr);
    outputs.push(o);
    // a token Azure Storage refuses (another audience): its code, not the token
    let aud = [
        ("SSL_CERT_FILE", ca),
        ("AZURE_AUTHORITY_HOST", idp.authority.as_str()),
        ("AZURE_TENANT_ID", entra::TENANT),
        ("AZURE_CLIENT_ID", "wrong-audience"),
        ("AZURE_CLIENT_SECRET", entra::SECRET),
    ];
    let o = build_env(&d, &ctx, &["-t", "o:1", "--cache-to", &spec], &aud);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert!(o.stderr.contains("AuthenticationFailed"), "{}", o.stderr);
    outputs.push(o);
    // nothing configured (no az either): every credential named with why it gave nothing
    let o =
        build_env(&d, &ctx, &["-t", "o:1", "--cache-to", &spec], &[("SSL_CERT_FILE", ca), ("PATH", "/usr/bin:/bin")]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    for n in ["EnvironmentCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential", "AzureCLICredential"]
    {
        assert!(o.stderr.contains(n), "{n}: {}", o.stderr);
    }

    // no secret, assertion or token in any output
    let mut secrets = idp.tokens();
    secrets.extend([entra::SECRET.to_string(), entra::ASSERTION.to_string(), entra::IDENTITY_HEADER.to_string()]);
    assert!(secrets.len() > 5, "{:?}", idp.requests());
    for o in &outputs {
        for s in &secrets {
            assert!(
                !o.stdout.contains(s.as_str()) && !o.stderr.contains(s.as_str()),
                "a secret in:\n{}\n{}",
                o.stdout,
                o.stderr
            );
        }
    }
}
