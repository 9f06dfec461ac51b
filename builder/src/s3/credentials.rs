//! Where S3 credentials come from: the cache's own `access_key_id`/`secret_access_key`/
//! `session_token` (BuildKit uses them only when both the key and the secret are given), else
//! the AWS SDK's default chain in its order (config/resolve_credentials.go):
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (+ `AWS_ROLE_SESSION_NAME`): STS
//!    AssumeRoleWithWebIdentity (GitHub Actions OIDC, EKS IRSA);
//! 3. the profile `AWS_PROFILE` (else `default`) of the shared files (`profile.rs`):
//!    `source_profile` (its credentials, then `role_arn` assumed with STS AssumeRole), static
//!    keys, `credential_source` (Environment, Ec2InstanceMetadata, EcsContainer),
//!    `web_identity_token_file`, SSO (refused, named), `credential_process`; then
//!    `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI` (ECS, EKS Pod Identity), then EC2
//!    instance metadata (IMDSv2); a `role_arn` of the profile is then assumed with those.
//!
//! [`plan`] picks the source from the environment and the files (pure, unit-tested);
//! [`fetch`] gets the keys from it. No message carries a secret, a token or a process's output.

use super::profile::{Profile, SharedConfig};
use super::sigv4::{self, Credentials};
use super::S3Error;
use std::path::PathBuf;
use std::time::Duration;

/// The environment, as a function (tests pass a table).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// The ECS agent's credential endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is a path on it).
const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// EC2's instance metadata service.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// A source of credentials, as the chain picked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Keys known without a request: the cache's attributes, the environment, a profile.
    Static { from: String, creds: Credentials },
    /// STS AssumeRoleWithWebIdentity with the token in `token_file`.
    WebIdentity { from: String, token_file: PathBuf, role_arn: String, session_name: Option<String> },
    /// A profile's `credential_process`, run with `sh -c`.
    Process { profile: String, command: String },
    /// An HTTP endpoint answering JSON credentials (ECS, EKS Pod Identity), with the
    /// `Authorization` token given or read from a file.
    Container { url: String, token: Option<String>, token_file: Option<PathBuf> },
    /// EC2 instance metadata (IMDSv2: a session token first); `last`: reached as the chain's
    /// last source (nothing else configured), not named by `credential_source`.
    Imds { endpoint: String, last: bool },
    /// STS AssumeRole of a profile's `role_arn`, signed with the credentials of `source`.
    AssumeRole {
        profile: String,
        role_arn: String,
        session_name: Option<String>,
        external_id: Option<String>,
        source: Box<Source>,
    },
}

impl Source {
    /// For messages: where the credentials come from (never what they are).
    pub fn describe(&self) -> String {
        match self {
            Source::Static { from, .. } => from.clone(),
            Source::WebIdentity { from, role_arn, .. } => format!("web identity ({from}) for role {role_arn}"),
            Source::Process { profile, .. } => format!("credential_process of profile [{profile}]"),
            Source::Container { url, .. } => format!("container credentials endpoint {url}"),
            Source::Imds { endpoint, last: false } => format!("EC2 instance metadata at {endpoint}"),
            Source::Imds { endpoint, last: true } => format!(
                "EC2 instance metadata at {endpoint} (no AWS credentials in the cache's attributes, the \
                 environment or the shared files; AWS_EC2_METADATA_DISABLED=true skips this)"
            ),
            Source::AssumeRole { profile, role_arn, source, .. } => {
                format!("role {role_arn} of profile [{profile}] assumed with {}", source.describe())
            }
        }
    }
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The profile the chain reads: `AWS_PROFILE`, else `default`.
pub fn profile_name(env: Env) -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".into())
}

/// Picks the source as the SDK's chain does (`given`: the cache attributes' keys).
pub fn plan(given: Option<&Credentials>, env: Env, cfg: &SharedConfig) -> Result<Source, S3Error> {
    if let Some(c) = given {
        return Ok(Source::Static { from: "the cache's access_key_id and secret_access_key".into(), creds: c.clone() });
    }
    if let Some(c) = env_keys(env) {
        return Ok(Source::Static { from: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(), creds: c });
    }
    if let Some(file) = env("AWS_WEB_IDENTITY_TOKEN_FILE") {
        let role_arn = env("AWS_ROLE_ARN").ok_or_else(|| {
            S3Error::Config("AWS credentials: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into())
        })?;
        return Ok(Source::WebIdentity {
            from: "AWS_WEB_IDENTITY_TOKEN_FILE".into(),
            token_file: file.into(),
            role_arn,
            session_name: env("AWS_ROLE_SESSION_NAME"),
        });
    }
    let name = profile_name(env);
    if env("AWS_PROFILE").is_some() && !cfg.profiles.contains_key(&name) {
        return Err(S3Error::Config(format!(
            "AWS credentials: AWS_PROFILE={name}: no profile [{name}] in {} or [profile {name}] in {}",
            cfg.credentials_file.display(),
            cfg.config_file.display()
        )));
    }
    from_profile(&name, env, cfg, &mut Vec::new())
}

fn env_keys(env: Env) -> Option<Credentials> {
    Some(Credentials {
        access_key_id: env("AWS_ACCESS_KEY_ID")?,
        secret_access_key: env("AWS_SECRET_ACCESS_KEY")?,
        session_token: env("AWS_SESSION_TOKEN"),
    })
}

fn static_keys(p: &Profile) -> Option<Credentials> {
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    Some(Credentials {
        access_key_id: get("aws_access_key_id")?,
        secret_access_key: get("aws_secret_access_key")?,
        session_token: get("aws_session_token"),
    })
}

/// The container endpoint of the environment, if any (`_RELATIVE_URI` first, as the SDK).
fn container(env: Env) -> Result<Option<Source>, S3Error> {
    let token = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    let token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from);
    if let Some(path) = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        return Ok(Some(Source::Container { url: format!("{ECS_ENDPOINT}{path}"), token, token_file }));
    }
    let Some(url) = env("AWS_CONTAINER_CREDENTIALS_FULL_URI") else { return Ok(None) };
    let bad = |why: &str| S3Error::Config(format!("AWS credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI={url}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not an http(s) URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        // the SDK takes plain http only to a loopback address or the ECS/EKS agents'
        "http" if allowed_http_host(host) => {}
        "http" => return Err(bad("plain http only to a loopback address, 169.254.170.2 or the EKS agent")),
        _ => return Err(bad("not an http(s) URL")),
    }
    Ok(Some(Source::Container { url, token, token_file }))
}

/// The SDK's `isAllowedHost`: a loopback address, the ECS agent (169.254.170.2) or the EKS Pod
/// Identity agent (169.254.170.23, fd00:ec2::23); a name only if all its addresses are such.
fn allowed_http_host(host: &str) -> bool {
    use std::net::{IpAddr, ToSocketAddrs};
    let ok = |ip: IpAddr| {
        ip.is_loopback()
            || ip == IpAddr::from([169, 254, 170, 2])
            || ip == IpAddr::from([169, 254, 170, 23])
            || ip == IpAddr::from([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23])
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return ok(ip);
    }
    match (host, 80).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| ok(a.ip()))
        }
        Err(_) => false,
    }
}

/// The profile `name`'s source (`seen`: the profiles on the way, against a `source_profile`
/// loop).
fn from_profile(name: &str, env: Env, cfg: &SharedConfig, seen: &mut Vec<String>) -> Result<Source, S3Error> {
    let empty = Profile::new();
    let p = cfg.profiles.get(name).unwrap_or(&empty);
    let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let bad = |why: String| S3Error::Config(format!("AWS credentials: profile [{name}]: {why}"));
    seen.push(name.to_string());
    let role_arn = get("role_arn");
    let base = if let Some(src) = get("source_profile") {
        if role_arn.is_none() {
            return Err(bad("source_profile without role_arn".into()));
        }
        if src == name {
            // a profile that is its own source: its static keys assume its role
            let creds = static_keys(p).ok_or_else(|| bad("source_profile is itself but it has no keys".into()))?;
            Source::Static { from: format!("the keys of profile [{name}]"), creds }
        } else if seen.contains(&src) {
            return Err(bad(format!("source_profile loop: {} -> {src}", seen.join(" -> "))));
        } else if !cfg.profiles.contains_key(&src) {
            return Err(bad(format!("source_profile {src}: no such profile")));
        } else {
            from_profile(&src, env, cfg, seen)?
        }
    } else if let Some(creds) = static_keys(p) {
        Source::Static { from: format!("the keys of profile [{name}]"), creds }
    } else if let Some(cs) = get("credential_source") {
        match cs.as_str() {
            "Environment" => Source::Static {
                from: format!("credential_source=Environment of profile [{name}]"),
                creds: env_keys(env).ok_or_else(|| {
                    bad("credential_source=Environment but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set".into())
                })?,
            },
            "Ec2InstanceMetadata" => imds(env, false).ok_or_else(|| {
                bad("credential_source=Ec2InstanceMetadata but AWS_EC2_METADATA_DISABLED is true".into())
            })?,
            "EcsContainer" => container(env)?.ok_or_else(|| {
                bad("credential_source=EcsContainer but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI are not set"
                    .into())
            })?,
            other => {
                return Err(bad(format!(
                    "credential_source={other}: expected Environment, Ec2InstanceMetadata or EcsContainer"
                )))
            }
        }
    } else if let Some(file) = get("web_identity_token_file") {
        return Ok(Source::WebIdentity {
            from: format!("web_identity_token_file of profile [{name}]"),
            token_file: file.into(),
            role_arn: role_arn.ok_or_else(|| bad("web_identity_token_file without role_arn".into()))?,
            session_name: get("role_session_name"),
        });
    } else if ["sso_session", "sso_start_url", "sso_account_id", "sso_role_name"].iter().any(|k| p.contains_key(*k)) {
        return Err(bad("AWS IAM Identity Center (SSO) sign-in is not supported by slipway; give the profile \
             `credential_process = aws configure export-credentials --profile NAME --format process` \
             (AWS CLI v2) or export the credentials to the environment"
            .into()));
    } else if p.contains_key("login_session") {
        return Err(bad(
            "login_session (aws login) is not supported by slipway; use credential_process = aws configure \
             export-credentials --profile NAME --format process"
                .into(),
        ));
    } else if let Some(command) = get("credential_process") {
        Source::Process { profile: name.into(), command }
    } else if let Some(c) = container(env)? {
        c
    } else if let Some(i) = imds(env, true) {
        i
    } else {
        return Err(S3Error::Config(format!(
            "no AWS credentials: give access_key_id= and secret_access_key=, set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY or AWS_WEB_IDENTITY_TOKEN_FILE, or configure profile [{name}] in {} or {} \
             (EC2 instance metadata is off: AWS_EC2_METADATA_DISABLED)",
            cfg.credentials_file.display(),
            cfg.config_file.display()
        )));
    };
    match role_arn {
        Some(role_arn) => Ok(Source::AssumeRole {
            profile: name.into(),
            role_arn,
            session_name: get("role_session_name"),
            external_id: get("external_id"),
            source: Box::new(base),
        }),
        None => Ok(base),
    }
}

fn imds(env: Env, last: bool) -> Option<Source> {
    if truthy(env("AWS_EC2_METADATA_DISABLED")) {
        return None;
    }
    let endpoint = env("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.into());
    Some(Source::Imds { endpoint: endpoint.trim_end_matches('/').to_string(), last })
}

/// What fetching needs besides the source: the region and endpoint STS is asked at.
pub struct Context<'a> {
    pub region: &'a str,
    /// STS's endpoint (`https://sts.REGION.amazonaws.com` unless configured).
    pub sts: String,
}

/// STS's endpoint for `profile` in `region` (the SDK's configured endpoints first).
pub fn sts_endpoint(cfg: &SharedConfig, profile: &str, region: &str, env: Env) -> String {
    cfg.endpoint_url(profile, "sts", env).unwrap_or_else(|| {
        let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        format!("https://sts.{region}.{domain}")
    })
}

/// An agent for credential endpoints: `connect` to give up quickly where there is no such
/// service (IMDS off EC2).
fn agent(url: &str, connect: Duration) -> Result<ureq::Agent, S3Error> {
    let authority = url.split_once("://").map(|(_, r)| r).unwrap_or(url).split(['/', '?']).next().unwrap_or_default();
    let (tls, _) = crate::registry::tls::config(authority, None, true)
        .map_err(|e| S3Error::Config(format!("TLS for {authority}: {e}")))?;
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .user_agent(concat!("slipway/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(connect))
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent())
}

/// Gets the keys from `source`.
pub fn fetch(source: &Source, cx: &Context) -> Result<Credentials, S3Error> {
    let fail = |why: String| S3Error::Config(format!("AWS credentials from {}: {why}", source.describe()));
    match source {
        Source::Static { creds, .. } => Ok(creds.clone()),
        Source::WebIdentity { token_file, role_arn, session_name, .. } => {
            let token = std::fs::read_to_string(token_file).map_err(|err| S3Error::Io {
                op: "read the web identity token".into(),
                path: token_file.clone(),
                err,
            })?;
            let session = session_name.clone().unwrap_or_else(|| format!("slipway-{}", now_ns()));
            let form = [
                ("Action", "AssumeRoleWithWebIdentity"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn.as_str()),
                ("RoleSessionName", session.as_str()),
                ("WebIdentityToken", token.trim()),
            ];
            sts(cx, &form, None).map_err(fail)
        }
        Source::AssumeRole { role_arn, session_name, external_id, source: inner, .. } => {
            let signer = fetch(inner, cx)?;
            let session = session_name.clone().unwrap_or_else(|| format!("slipway-{}", now_ns()));
            // the SDK's default duration for AssumeRole: 15 minutes
            let mut form = vec![
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", role_arn.as_str()),
                ("RoleSessionName", session.as_str()),
                ("DurationSeconds", "900"),
            ];
            if let Some(x) = external_id {
                form.push(("ExternalId", x.as_str()));
            }
            sts(cx, &form, Some(&signer)).map_err(fail)
        }
        Source::Process { command, .. } => process(command).map_err(fail),
        Source::Container { url, token, token_file } => {
            let token = match token_file {
                // the SDK reads the file (EKS Pod Identity rotates it) before the variable
                Some(f) => Some(std::fs::read_to_string(f).map_err(|err| S3Error::Io {
                    op: "read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                    path: f.clone(),
                    err,
                })?),
                None => token.clone(),
            };
            if token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
                return Err(fail("the authorization token has a line break".into()));
            }
            let a = agent(url, Duration::from_secs(5)).map_err(|e| fail(e.to_string()))?;
            let mut req = ureq::http::Request::builder().method("GET").uri(url).header("Accept", "application/json");
            if let Some(t) = token {
                req = req.header("Authorization", t.trim());
            }
            let req = req.body(()).map_err(|e| fail(e.to_string()))?;
            let (status, body) = call(&a, req).map_err(fail)?;
            if status != 200 {
                // the endpoint's error document: {"code": ..., "message": ...}
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let code = v["code"].as_str().or(v["Code"].as_str()).unwrap_or("no error code");
                return Err(fail(format!("HTTP {status}: {code}")));
            }
            json_creds(&body, "Token").map_err(fail)
        }
        Source::Imds { endpoint, .. } => imds_fetch(endpoint).map_err(fail),
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Sends `req`; the status and the body (at most 1 MiB).
fn call(a: &ureq::Agent, req: ureq::http::Request<impl ureq::AsSendBody>) -> Result<(u16, Vec<u8>), String> {
    let mut res = a.run(req).map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// `AccessKeyId`, `SecretAccessKey` and the token (named `token_field`) of a JSON answer.
fn json_creds(body: &[u8], token_field: &str) -> Result<Credentials, String> {
    // the body is never quoted back: it holds the secret
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON (line {})", e.line()))?;
    let field = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Ok(Credentials {
        access_key_id: field("AccessKeyId").ok_or("no AccessKeyId in the answer")?,
        secret_access_key: field("SecretAccessKey").ok_or("no SecretAccessKey in the answer")?,
        session_token: field(token_field),
    })
}

/// One STS query call (`form`), signed with `signer` unless it is AssumeRoleWithWebIdentity
/// (which the token authenticates); the credentials of its answer.
fn sts(cx: &Context, form: &[(&str, &str)], signer: Option<&Credentials>) -> Result<Credentials, String> {
    let url = cx.sts.trim_end_matches('/');
    let (scheme, authority) = url.split_once("://").ok_or_else(|| format!("STS endpoint {url}: not a URL"))?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("STS endpoint {url}: not an http(s) URL"));
    }
    if authority.contains('/') {
        return Err(format!("STS endpoint {url}: expected http(s)://HOST[:PORT]"));
    }
    let body: Vec<String> =
        form.iter().map(|(k, v)| format!("{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false))).collect();
    let body = body.join("&");
    let ctype = "application/x-www-form-urlencoded; charset=utf-8";
    let mut req = ureq::http::Request::builder().method("POST").uri(format!("{url}/")).header("content-type", ctype);
    if let Some(c) = signer {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        let signed = sigv4::sign_for(
            "sts",
            c,
            cx.region,
            super::client::now(),
            &sigv4::Request {
                method: "POST",
                host: authority,
                path: "/",
                query: &[],
                headers: &[("content-type", ctype)],
                payload_sha256: &sha,
            },
        );
        for (k, v) in signed {
            req = req.header(k, v);
        }
    }
    let req = req.body(body.as_bytes()).map_err(|e| e.to_string())?;
    let a = agent(url, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let op = form.first().map(|(_, v)| *v).unwrap_or("STS");
    let (status, body) = call(&a, req).map_err(|e| format!("{op} at {url}: {e}"))?;
    let (code, message) = super::client::error_fields(&body);
    if status != 200 || code.is_some() {
        let code = code.unwrap_or_else(|| "no error code".into());
        let message = if message.is_empty() { String::new() } else { format!(": {message}") };
        return Err(format!("{op} at {url}: HTTP {status}: {code}{message}"));
    }
    let text = String::from_utf8_lossy(&body);
    let field = |k: &str| super::client::xml_field(&text, k).filter(|v| !v.is_empty());
    Ok(Credentials {
        access_key_id: field("AccessKeyId").ok_or_else(|| format!("{op} at {url}: no AccessKeyId in the answer"))?,
        secret_access_key: field("SecretAccessKey")
            .ok_or_else(|| format!("{op} at {url}: no SecretAccessKey in the answer"))?,
        session_token: field("SessionToken"),
    })
}

/// Runs a `credential_process` (`sh -c`, as the SDK on Unix; at most one minute, the SDK's
/// timeout) and reads its JSON (`Version` 1). Its stderr goes to ours; its stdout, which holds
/// the secret, is never shown.
fn process(command: &str) -> Result<Credentials, String> {
    use std::io::Read;
    let mut child = std::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::inherit())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| format!("run sh -c: {e}"))?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let r = (&mut out).take(1 << 20).read_to_end(&mut buf);
        r.map(|_| buf)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the process ran longer than 1 minute".into());
            }
            Err(e) => return Err(format!("wait for the process: {e}")),
        }
    };
    let buf = reader.join().map_err(|_| "reading its output failed")?.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the process failed ({status})"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&buf).map_err(|e| format!("its output is not JSON (line {})", e.line()))?;
    if v["Version"].as_i64() != Some(1) {
        return Err("its output's Version is not 1".into());
    }
    json_creds(&buf, "SessionToken")
}

/// IMDSv2: a session token (PUT /latest/api/token), the role name, then its credentials. An
/// endpoint that refuses the token call (404/405: IMDSv1 only) is asked without one, as the SDK.
fn imds_fetch(endpoint: &str) -> Result<Credentials, String> {
    let a = agent(endpoint, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    let req = ureq::http::Request::builder()
        .method("PUT")
        .uri(format!("{endpoint}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        // an empty body said as such (ureq would send it chunked)
        .header("content-length", "0")
        .body(&[][..])
        .map_err(|e| e.to_string())?;
    let (status, body) = call(&a, req).map_err(|e| format!("PUT /latest/api/token: {e}"))?;
    let token = match status {
        200 => Some(String::from_utf8_lossy(&body).trim().to_string()),
        404 | 405 => None,
        s => return Err(format!("PUT /latest/api/token: HTTP {s}")),
    };
    let get = |path: &str| -> Result<Vec<u8>, String> {
        let mut req = ureq::http::Request::builder().method("GET").uri(format!("{endpoint}{path}"));
        if let Some(t) = &token {
            req = req.header("x-aws-ec2-metadata-token", t.as_str());
        }
        let (status, body) =
            call(&a, req.body(()).map_err(|e| e.to_string())?).map_err(|e| format!("GET {path}: {e}"))?;
        match status {
            200 => Ok(body),
            404 => Err(format!("GET {path}: HTTP 404 (no IAM role attached to this instance?)")),
            s => Err(format!("GET {path}: HTTP {s}")),
        }
    };
    let base = "/latest/meta-data/iam/security-credentials/";
    let roles = get(base)?;
    let role = String::from_utf8_lossy(&roles).lines().next().unwrap_or_default().trim().to_string();
    if role.is_empty() {
        return Err(format!("GET {base}: no IAM role attached to this instance"));
    }
    let body = get(&format!("{base}{role}"))?;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(code) = v["Code"].as_str().filter(|c| *c != "Success") {
        return Err(format!("GET {base}{role}: Code {code}"));
    }
    json_creds(&body, "Token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    fn keys(k: &str) -> Credentials {
        Credentials { access_key_id: k.into(), secret_access_key: format!("{k}-secret"), session_token: None }
    }

    #[test]
    fn the_sdks_order() {
        let cfg = SharedConfig::parse(
            "[default]\ncredential_process = get-creds\n[profile role]\nrole_arn = arn:r\nsource_profile = base\n\
             external_id = x1\n[profile base]\naws_access_key_id = B\naws_secret_access_key = B-secret\n\
             [profile web]\nweb_identity_token_file = /t\nrole_arn = arn:w\n[profile ec2]\n\
             credential_source = Ec2InstanceMetadata\nrole_arn = arn:e\n[profile sso]\nsso_session = s\n\
             [profile loop]\nrole_arn = arn:l\nsource_profile = loop2\n[profile loop2]\nrole_arn = arn:l2\n\
             source_profile = loop\n[profile self]\nrole_arn = arn:s\nsource_profile = self\n\
             aws_access_key_id = S\naws_secret_access_key = S-secret\n[profile none]\n",
            "",
        );
        let given = keys("A");
        let env_keys = [("AWS_ACCESS_KEY_ID", "E"), ("AWS_SECRET_ACCESS_KEY", "E-secret")];
        // the attributes' keys, then the environment's
        assert!(
            matches!(plan(Some(&given), &table(&env_keys), &cfg).unwrap(), Source::Static { creds, .. } if creds == given)
        );
        assert!(
            matches!(plan(None, &table(&env_keys), &cfg).unwrap(), Source::Static { creds, .. } if creds.access_key_id == "E")
        );
        // web identity from the environment before any profile
        let web = [("AWS_WEB_IDENTITY_TOKEN_FILE", "/tok"), ("AWS_ROLE_ARN", "arn:gha")];
        assert!(matches!(plan(None, &table(&web), &cfg).unwrap(),
            Source::WebIdentity { role_arn, session_name: None, .. } if role_arn == "arn:gha"));
        let e = plan(None, &table(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/tok")]), &cfg).unwrap_err().to_string();
        assert!(e.contains("AWS_ROLE_ARN"), "{e}");
        // the default profile's credential_process
        assert!(
            matches!(plan(None, &table(&[]), &cfg).unwrap(), Source::Process { command, .. } if command == "get-creds")
        );
        // role_arn + source_profile: the source's keys assume the role
        let p = plan(None, &table(&[("AWS_PROFILE", "role")]), &cfg).unwrap();
        match &p {
            Source::AssumeRole { role_arn, external_id, source, .. } => {
                assert_eq!((role_arn.as_str(), external_id.as_deref()), ("arn:r", Some("x1")));
                assert!(matches!(&**source, Source::Static { creds, .. } if creds.access_key_id == "B"));
            }
            other => panic!("{other:?}"),
        }
        assert!(p.describe().contains("arn:r") && !p.describe().contains("B-secret"));
        assert!(matches!(plan(None, &table(&[("AWS_PROFILE", "self")]), &cfg).unwrap(),
            Source::AssumeRole { source, .. } if matches!(&*source, Source::Static { creds, .. } if creds.access_key_id == "S")));
        // a profile's web identity is not assumed again with its role_arn
        assert!(
            matches!(plan(None, &table(&[("AWS_PROFILE", "web")]), &cfg).unwrap(), Source::WebIdentity { role_arn, .. } if role_arn == "arn:w")
        );
        // credential_source, honouring the IMDS endpoint variable
        let ec2 = [("AWS_PROFILE", "ec2"), ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/")];
        assert!(matches!(plan(None, &table(&ec2), &cfg).unwrap(),
            Source::AssumeRole { source, .. } if *source == Source::Imds { endpoint: "http://127.0.0.1:1".into(), last: false }));
        // an empty profile: the container endpoint, then IMDS, unless disabled
        let ecs = [("AWS_PROFILE", "none"), ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds/x")];
        assert!(
            matches!(plan(None, &table(&ecs), &cfg).unwrap(), Source::Container { url, .. } if url == "http://169.254.170.2/v2/creds/x")
        );
        let full = [
            ("AWS_PROFILE", "none"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8/c"),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "t"),
        ];
        assert!(
            matches!(plan(None, &table(&full), &cfg).unwrap(), Source::Container { token: Some(t), .. } if t == "t")
        );
        let far = [("AWS_PROFILE", "none"), ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/c")];
        assert!(plan(None, &table(&far), &cfg).unwrap_err().to_string().contains("plain http only"));
        let https = [("AWS_PROFILE", "none"), ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://192.0.2.1/c")];
        assert!(plan(None, &table(&https), &cfg).is_ok());
        assert!(
            matches!(plan(None, &table(&[("AWS_PROFILE", "none")]), &cfg).unwrap(), Source::Imds { endpoint, last: true } if endpoint == "http://169.254.169.254")
        );
        let off = [("AWS_PROFILE", "none"), ("AWS_EC2_METADATA_DISABLED", "true")];
        assert!(plan(None, &table(&off), &cfg).unwrap_err().to_string().contains("no AWS credentials"));
        // refused by name: SSO, a source_profile loop, a missing AWS_PROFILE
        for (profile, want) in [("sso", "SSO"), ("loop", "source_profile loop"), ("nope", "AWS_PROFILE=nope")] {
            let e = plan(None, &table(&[("AWS_PROFILE", profile)]), &cfg).unwrap_err().to_string();
            assert!(e.contains(want), "{profile}: {e}");
        }
    }

    #[test]
    fn process_output_as_the_sdk_reads_it() {
        let ok = r#"printf '{"Version": 1, "AccessKeyId": "K", "SecretAccessKey": "S", "SessionToken": "T"}'"#;
        let c = process(ok).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("K", Some("T")));
        for (cmd, want) in [
            (r#"printf '{"Version": 2, "AccessKeyId": "K", "SecretAccessKey": "S"}'"#, "Version is not 1"),
            ("echo SECRET-not-json", "not JSON"),
            ("exit 3", "failed"),
            (r#"printf '{"Version": 1, "AccessKeyId": "K"}'"#, "no SecretAccessKey"),
        ] {
            let e = process(cmd).unwrap_err();
            assert!(e.contains(want) && !e.contains("SECRET"), "{cmd}: {e}");
        }
    }
}
