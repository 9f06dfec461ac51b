//! OAuth access tokens for Azure Storage (scope `https://storage.azure.com/.default`), got the way
//! BuildKit's azblob cache gets them when no `secret_access_key` is given: azidentity's
//! `DefaultAzureCredential` (azidentity v1.13, MSAL Go 1.7, as BuildKit vendors them). [`plan`]
//! reads the environment into the chain of sources, in azidentity's order (environment: client
//! secret / client certificate / username+password; workload identity; managed identity; Azure
//! CLI) as plain data; [`Tokens`] walks it when a request needs a token, as azidentity's chain
//! does: a source that is *unavailable* (not configured, IMDS not answering, `az` missing or not
//! logged in) passes to the next, one that *fails* (Entra refused the secret) ends the walk with
//! Entra's error code, and the first that gives a token is the one asked from then on.
//!
//! No token, secret, assertion or password reaches a message or a log: errors name the
//! credential, the variable it came from, the endpoint and Entra's (or the endpoint's) error.
//!
//! Written by hand: the Azure SDK for Rust's azure_identity is async (tokio) and pre-1.0, and the
//! token requests are a form POST or a GET each over the ureq agent slipway has.

use crate::s3::credentials::Env;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The scope every token is asked for (azblob's `shared.TokenScope`).
pub const SCOPE: &str = "https://storage.azure.com/.default";
/// The same as a v1 resource (managed identity endpoints and `az` take resources).
const RESOURCE: &str = "https://storage.azure.com";
const PUBLIC_CLOUD: &str = "https://login.microsoftonline.com/";
const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// azidentity's IMDS probe timeout (DefaultAzureCredential only).
const IMDS_PROBE: Duration = Duration::from_secs(1);
/// azidentity's timeout for developer tools (`az`).
const CLI_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is asked again when it has less than this left (azcore's bearer policy: 5 minutes).
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One credential of the chain, with what it needs (read from the environment by [`plan`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// EnvironmentCredential with `AZURE_CLIENT_SECRET`: Entra's client credentials grant.
    ClientSecret { authority: String, tenant: String, client_id: String, secret: String },
    /// EnvironmentCredential with `AZURE_CLIENT_CERTIFICATE_PATH`: the client credentials grant
    /// with an assertion signed by the certificate's RSA key (read when a token is asked).
    ClientCertificate { authority: String, tenant: String, client_id: String, path: PathBuf, send_chain: bool },
    /// EnvironmentCredential with `AZURE_USERNAME`/`AZURE_PASSWORD`: the password grant.
    UsernamePassword { authority: String, tenant: String, client_id: String, username: String, password: String },
    /// WorkloadIdentityCredential: the client credentials grant with the file's content (a
    /// Kubernetes service account token, GitHub's OIDC token...) as the client assertion.
    Workload { authority: String, tenant: String, client_id: String, file: PathBuf },
    /// ManagedIdentityCredential (`client_id`: a user-assigned identity, `AZURE_CLIENT_ID`).
    Managed { endpoint: Managed, client_id: Option<String> },
    /// AzureCLICredential: `az account get-access-token`.
    AzureCli,
    /// AzureDeveloperCLICredential: `azd auth token`.
    AzureDeveloperCli,
    /// A credential azidentity would use here that slipway cannot (yet): reaching it is an
    /// error that says so, rather than a silent step to the next.
    Unsupported { name: &'static str, why: String },
    /// A credential not configured, kept for the final message (azidentity's
    /// defaultCredentialErrorReporter).
    Unavailable { name: &'static str, why: String },
}

/// Where a managed identity's token comes from (MSAL's GetSource, in its order).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Managed {
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`: App Service, Functions, Container Apps.
    AppService { endpoint: String, header: String },
    /// `MSI_ENDPOINT` without `MSI_SECRET`: Cloud Shell.
    CloudShell { endpoint: String },
    /// The VM's instance metadata service; `probe`: DefaultAzureCredential first checks that it
    /// answers at all (1 s), so a machine outside Azure passes on quickly.
    Imds { probe: bool, endpoint: String },
}

impl Source {
    /// azidentity's name for the credential (in messages).
    pub fn name(&self) -> &'static str {
        match self {
            Source::ClientSecret { .. } | Source::ClientCertificate { .. } | Source::UsernamePassword { .. } => {
                "EnvironmentCredential"
            }
            Source::Workload { .. } => "WorkloadIdentityCredential",
            Source::Managed { .. } => "ManagedIdentityCredential",
            Source::AzureCli => "AzureCLICredential",
            Source::AzureDeveloperCli => "AzureDeveloperCLICredential",
            Source::Unsupported { name, .. } | Source::Unavailable { name, .. } => name,
        }
    }

    /// What it is, without a secret: `client secret of client ID X in tenant T`.
    pub fn describe(&self) -> String {
        match self {
            Source::ClientSecret { tenant, client_id, .. } => {
                format!("EnvironmentCredential (AZURE_CLIENT_SECRET of client {client_id} in tenant {tenant})")
            }
            Source::ClientCertificate { tenant, client_id, path, .. } => format!(
                "EnvironmentCredential (AZURE_CLIENT_CERTIFICATE_PATH {} of client {client_id} in tenant {tenant})",
                path.display()
            ),
            Source::UsernamePassword { tenant, client_id, username, .. } => {
                format!("EnvironmentCredential (AZURE_USERNAME {username}, client {client_id} in tenant {tenant})")
            }
            Source::Workload { tenant, client_id, file, .. } => format!(
                "WorkloadIdentityCredential (AZURE_FEDERATED_TOKEN_FILE {} for client {client_id} in tenant {tenant})",
                file.display()
            ),
            Source::Managed { endpoint, client_id } => {
                let who = client_id.as_deref().map(|c| format!(", user-assigned client {c}")).unwrap_or_default();
                match endpoint {
                    Managed::AppService { endpoint, .. } => {
                        format!("ManagedIdentityCredential (App Service IDENTITY_ENDPOINT {endpoint}{who})")
                    }
                    Managed::CloudShell { endpoint } => {
                        format!("ManagedIdentityCredential (Cloud Shell MSI_ENDPOINT {endpoint}{who})")
                    }
                    Managed::Imds { endpoint, .. } => format!("ManagedIdentityCredential (IMDS {endpoint}{who})"),
                }
            }
            Source::AzureCli => "AzureCLICredential (az account get-access-token)".into(),
            Source::AzureDeveloperCli => "AzureDeveloperCLICredential (azd auth token)".into(),
            Source::Unsupported { name, why } | Source::Unavailable { name, why } => format!("{name} ({why})"),
        }
    }
}

impl std::fmt::Debug for Source {
    // no secret in a debug print
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

/// The chain, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Chain {
    pub sources: Vec<Source>,
}

impl std::fmt::Debug for Chain {
    // no secret in a debug print
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chain{:?}", self.sources)
    }
}

/// azidentity's validTenantID: letters, digits, `.` and `-`.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// `AZURE_AUTHORITY_HOST` (default the public cloud), https only as azidentity's setAuthorityHost,
/// with a trailing `/`.
fn authority(env: Env) -> Result<String, String> {
    let host = env("AZURE_AUTHORITY_HOST").unwrap_or_else(|| PUBLIC_CLOUD.into());
    if !host.to_ascii_lowercase().starts_with("https://") {
        return Err(format!("AZURE_AUTHORITY_HOST={host}: cannot use an authority host without https"));
    }
    Ok(if host.ends_with('/') { host } else { format!("{host}/") })
}

/// The chain `DefaultAzureCredential` builds from the environment `env` (NewDefaultAzureCredential):
/// `AZURE_TOKEN_CREDENTIALS` (`dev`, `prod` or one credential's name) selects a part of it.
pub fn plan(env: Env) -> Result<Chain, String> {
    // EnvironmentCredential, WorkloadIdentityCredential, ManagedIdentityCredential,
    // AzureCLICredential, AzureDeveloperCLICredential, AzurePowerShellCredential
    let mut on = [true; 6];
    if let Some(sel) = env("AZURE_TOKEN_CREDENTIALS") {
        const NAMES: [&str; 6] = [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCLICredential",
            "AzureDeveloperCLICredential",
            "AzurePowerShellCredential",
        ];
        on = match sel.as_str() {
            "dev" => [false, false, false, true, true, true],
            "prod" => [true, true, true, false, false, false],
            _ => match NAMES.iter().position(|n| sel.eq_ignore_ascii_case(n)) {
                Some(5) => return Err("AZURE_TOKEN_CREDENTIALS=AzurePowerShellCredential: not implemented by slipway".into()),
                Some(i) => std::array::from_fn(|j| j == i),
                None => {
                    return Err(format!(
                        "invalid AZURE_TOKEN_CREDENTIALS value {sel:?}. Valid values are \"dev\", \"prod\", or the name of any credential type in the default chain"
                    ))
                }
            },
        };
    }
    let [e, w, m, cli, azd, pwsh] = on;
    let mut sources = Vec::new();
    let tenant = env("AZURE_TENANT_ID");
    let client_id = env("AZURE_CLIENT_ID");
    if let Some(t) = tenant.as_deref().filter(|t| !valid_tenant(t)) {
        return Err(format!("AZURE_TENANT_ID={t}: not a tenant ID (letters, digits, '.' and '-')"));
    }
    if e {
        sources.push(environment(env, tenant.as_deref(), client_id.as_deref())?);
    }
    if w {
        sources.push(match (&client_id, env("AZURE_FEDERATED_TOKEN_FILE"), &tenant) {
            (Some(c), Some(f), Some(t)) => Source::Workload {
                authority: authority(env)?,
                tenant: t.clone(),
                client_id: c.clone(),
                file: PathBuf::from(f),
            },
            (None, _, _) => unavailable("WorkloadIdentityCredential", "no AZURE_CLIENT_ID"),
            (_, None, _) => unavailable("WorkloadIdentityCredential", "no AZURE_FEDERATED_TOKEN_FILE"),
            (_, _, None) => unavailable("WorkloadIdentityCredential", "no AZURE_TENANT_ID"),
        });
    }
    if m {
        // IMDS is probed first only when something else is in the chain
        sources.push(managed(env, client_id.clone(), e || w || cli || azd || pwsh));
    }
    if cli {
        sources.push(Source::AzureCli);
    }
    if azd {
        sources.push(Source::AzureDeveloperCli);
    }
    if pwsh {
        sources.push(unavailable("AzurePowerShellCredential", "not implemented by slipway"));
    }
    Ok(Chain { sources })
}

fn unavailable(name: &'static str, why: &str) -> Source {
    Source::Unavailable { name, why: why.into() }
}

/// NewEnvironmentCredential: a client secret, else a client certificate, else a user's password.
fn environment(env: Env, tenant: Option<&str>, client_id: Option<&str>) -> Result<Source, String> {
    const N: &str = "EnvironmentCredential";
    let (Some(tenant), Some(client_id)) = (tenant, client_id) else {
        let missing = if tenant.is_none() { "AZURE_TENANT_ID" } else { "AZURE_CLIENT_ID" };
        return Ok(unavailable(N, &format!("missing environment variable {missing}")));
    };
    let (tenant, client_id) = (tenant.to_string(), client_id.to_string());
    if let Some(secret) = env("AZURE_CLIENT_SECRET") {
        return Ok(Source::ClientSecret { authority: authority(env)?, tenant, client_id, secret });
    }
    if let Some(path) = env("AZURE_CLIENT_CERTIFICATE_PATH") {
        if env("AZURE_CLIENT_CERTIFICATE_PASSWORD").is_some() {
            // azidentity reads PKCS#12 with a password; slipway reads unencrypted PEM only
            return Ok(Source::Unsupported {
                name: N,
                why: format!("AZURE_CLIENT_CERTIFICATE_PATH={path}: a password-protected (PKCS#12) certificate is not read by slipway; give an unencrypted PEM certificate and RSA key"),
            });
        }
        let send_chain =
            env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        return Ok(Source::ClientCertificate {
            authority: authority(env)?,
            tenant,
            client_id,
            path: PathBuf::from(path),
            send_chain,
        });
    }
    if let Some(username) = env("AZURE_USERNAME") {
        let Some(password) = env("AZURE_PASSWORD") else {
            return Err("AZURE_USERNAME is set: no value for AZURE_PASSWORD".into());
        };
        return Ok(Source::UsernamePassword { authority: authority(env)?, tenant, client_id, username, password });
    }
    Ok(unavailable(
        N,
        "incomplete environment variable configuration. Only AZURE_TENANT_ID and AZURE_CLIENT_ID are set",
    ))
}

/// NewManagedIdentityCredential: where the token comes from (MSAL's GetSource); `chained`:
/// other credentials are in the chain, so IMDS is probed first.
fn managed(env: Env, client_id: Option<String>, chained: bool) -> Source {
    const N: &str = "ManagedIdentityCredential";
    let (ie, ih) = (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER"));
    let endpoint =
        match (ie, ih, env("MSI_ENDPOINT")) {
            (Some(_), Some(_), _) if env("IDENTITY_SERVER_THUMBPRINT").is_some() => {
                return Source::Unsupported {
                    name: N,
                    why: "Service Fabric (IDENTITY_SERVER_THUMBPRINT) managed identity is not implemented by slipway"
                        .into(),
                }
            }
            (Some(endpoint), Some(header), _) => Managed::AppService { endpoint, header },
            (_, _, Some(_)) if env("MSI_SECRET").is_some() => return Source::Unsupported {
                name: N,
                why:
                    "Azure Machine Learning (MSI_ENDPOINT + MSI_SECRET) managed identity is not implemented by slipway"
                        .into(),
            },
            (_, _, Some(endpoint)) => Managed::CloudShell { endpoint },
            (Some(_), None, None) if env("IMDS_ENDPOINT").is_some() => {
                return Source::Unsupported {
                    name: N,
                    why: "Azure Arc (IDENTITY_ENDPOINT + IMDS_ENDPOINT) managed identity is not implemented by slipway"
                        .into(),
                }
            }
            _ => Managed::Imds { probe: chained, endpoint: IMDS.into() },
        };
    Source::Managed { endpoint, client_id }
}

/// Why a source gave no token: `Unavailable` passes to the next one, `Failed` ends the chain.
#[derive(Debug)]
enum Miss {
    Unavailable(String),
    Failed(String),
}

/// A token and when it stops being good.
#[derive(Clone)]
struct Token {
    secret: String,
    expires: SystemTime,
}

/// The chain at work: the token it got (reused until 5 minutes before it expires) and the
/// source that gave it (asked again from then on, as azidentity's chain).
pub struct Tokens {
    chain: Chain,
    state: Mutex<(Option<usize>, Option<Token>)>,
    agent: ureq::Agent,
}

impl Tokens {
    pub fn new(chain: Chain) -> Result<Tokens, String> {
        let (tls, _) = crate::registry::tls::config("entra", None, true).map_err(|e| format!("TLS: {e}"))?;
        Ok(Tokens { chain, state: Mutex::new((None, None)), agent: crate::registry::client::agent(tls) })
    }

    /// A bearer token for Azure Storage: the one held while it is good, else a new one.
    pub fn token(&self) -> Result<String, String> {
        let mut st = self.state.lock().map_err(|_| "DefaultAzureCredential: a lock was poisoned".to_string())?;
        if let Some(t) = &st.1 {
            if t.expires > SystemTime::now() + REFRESH_BEFORE {
                return Ok(t.secret.clone());
            }
        }
        if let Some(i) = st.0 {
            let s = &self.chain.sources[i];
            return match self.get(s) {
                Ok(t) => {
                    let out = t.secret.clone();
                    st.1 = Some(t);
                    Ok(out)
                }
                Err(Miss::Unavailable(w) | Miss::Failed(w)) => Err(format!("{}: {w}", s.describe())),
            };
        }
        let mut tried = Vec::new();
        for (i, s) in self.chain.sources.iter().enumerate() {
            match self.get(s) {
                Ok(t) => {
                    let out = t.secret.clone();
                    *st = (Some(i), Some(t));
                    return Ok(out);
                }
                Err(Miss::Unavailable(w)) => tried.push(format!("{}: {w}", s.name())),
                Err(Miss::Failed(w)) => {
                    tried.push(format!("{}: {w}", s.describe()));
                    return Err(format!("DefaultAzureCredential: authentication failed:\n\t{}", tried.join("\n\t")));
                }
            }
        }
        Err(format!(
            "DefaultAzureCredential: no credential gave a token (give secret_access_key, an SAS in account_url, or one of these):\n\t{}",
            tried.join("\n\t")
        ))
    }

    fn get(&self, s: &Source) -> Result<Token, Miss> {
        match s {
            Source::ClientSecret { authority, tenant, client_id, secret } => self.entra(
                authority,
                tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", SCOPE),
                ],
            ),
            Source::ClientCertificate { authority, tenant, client_id, path, send_chain } => {
                let endpoint = format!("{authority}{tenant}/oauth2/v2.0/token");
                let assertion = certificate_assertion(path, client_id, &endpoint, *send_chain).map_err(Miss::Failed)?;
                self.entra(
                    authority,
                    tenant,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id),
                        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                        ("client_assertion", &assertion),
                        ("scope", SCOPE),
                    ],
                )
            }
            Source::UsernamePassword { authority, tenant, client_id, username, password } => self.entra(
                authority,
                tenant,
                &[
                    ("grant_type", "password"),
                    ("client_id", client_id),
                    ("username", username),
                    ("password", password),
                    ("scope", &format!("{SCOPE} openid offline_access profile")),
                ],
            ),
            Source::Workload { authority, tenant, client_id, file } => {
                let assertion = std::fs::read_to_string(file)
                    .map_err(|e| Miss::Failed(format!("read AZURE_FEDERATED_TOKEN_FILE {}: {e}", file.display())))?;
                self.entra(
                    authority,
                    tenant,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id),
                        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                        ("client_assertion", assertion.trim()),
                        ("scope", SCOPE),
                    ],
                )
            }
            Source::Managed { endpoint, client_id } => self.managed(endpoint, client_id.as_deref()),
            Source::AzureCli => azure_cli(),
            Source::AzureDeveloperCli => azure_developer_cli(),
            Source::Unsupported { why, .. } => Err(Miss::Failed(why.clone())),
            Source::Unavailable { why, .. } => Err(Miss::Unavailable(why.clone())),
        }
    }

    /// POST `{authority}{tenant}/oauth2/v2.0/token` (Entra's v2 token endpoint, as MSAL).
    fn entra(&self, authority: &str, tenant: &str, form: &[(&str, &str)]) -> Result<Token, Miss> {
        let url = format!("{authority}{tenant}/oauth2/v2.0/token");
        let body = form.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&");
        let op = format!("POST {url}");
        let res = self
            .agent
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .send(body.as_bytes())
            .map_err(|e| Miss::Failed(format!("{op}: {e}")))?;
        let (status, json) = read_json(res).map_err(|e| Miss::Failed(format!("{op}: {e}")))?;
        if status != 200 {
            return Err(Miss::Failed(format!("{op}: HTTP {status}: {}", entra_error(&json))));
        }
        token_from(&json, "access_token").map_err(|e| Miss::Failed(format!("{op}: {e}")))
    }

    fn managed(&self, m: &Managed, client_id: Option<&str>) -> Result<Token, Miss> {
        let mut query = vec![("resource", RESOURCE)];
        if let Some(c) = client_id {
            query.push(("client_id", c));
        }
        let q = |version: &str| {
            let mut all = vec![("api-version", version)];
            all.extend(query.iter().copied());
            all.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&")
        };
        let (url, res) = match m {
            Managed::AppService { endpoint, header } => {
                let url = format!("{endpoint}?{}", q("2019-08-01"));
                let r = self.agent.get(&url).header("X-IDENTITY-HEADER", header).call();
                (url, r)
            }
            Managed::CloudShell { endpoint } => {
                let body = query.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&");
                let r = self
                    .agent
                    .post(endpoint)
                    .header("Metadata", "true")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .send(body.as_bytes());
                (endpoint.clone(), r)
            }
            Managed::Imds { probe, endpoint } => {
                if *probe {
                    // a request without the Metadata header: any answer in a second means IMDS is there
                    let quick = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(IMDS_PROBE))
                        .build()
                        .new_agent();
                    if let Err(e) = quick.get(endpoint).call() {
                        return Err(Miss::Unavailable(format!("no IMDS answered at {endpoint} within 1 s: {e}")));
                    }
                }
                let url = format!("{endpoint}?{}", q("2018-02-01"));
                (url.clone(), self.imds(&url))
            }
        };
        let op = format!("GET {}", url.split('?').next().unwrap_or(&url));
        let res = res.map_err(|e| Miss::Unavailable(format!("{op}: {e}")))?;
        let (status, json) = match read_json(res) {
            Ok(x) => x,
            // something else answered there (a proxy): azidentity passes on
            Err(e) => return Err(Miss::Unavailable(format!("{op}: {e}"))),
        };
        if status != 200 {
            let why = format!("{op}: HTTP {status}: {}", entra_error(&json));
            // IMDS without an identity for this VM (400) passes on, as azidentity in a chain
            return Err(if matches!(m, Managed::Imds { .. }) && status == 400 && client_id.is_none() {
                Miss::Unavailable(why)
            } else {
                Miss::Failed(why)
            });
        }
        token_from(&json, "access_token").map_err(|e| Miss::Failed(format!("{op}: {e}")))
    }

    /// GET IMDS with the header it wants, retried as MSAL's IMDS policy (404, 410, 429, 5xx; 2 s
    /// doubling, at most 6 retries).
    fn imds(&self, url: &str) -> Result<http_resp::Resp, ureq::Error> {
        let mut delay = Duration::from_secs(2);
        let mut n = 0;
        loop {
            let r = self.agent.get(url).header("Metadata", "true").call()?;
            let s = r.status().as_u16();
            if n >= 6 || !(s == 404 || s == 410 || s == 429 || s >= 500) {
                return Ok(r);
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(25));
            n += 1;
        }
    }
}

mod http_resp {
    pub type Resp = ureq::http::Response<ureq::Body>;
}

/// The status and the JSON body of an answer.
fn read_json(mut res: http_resp::Resp) -> Result<(u16, serde_json::Value), String> {
    let status = res.status().as_u16();
    let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| e.to_string())?;
    let json = serde_json::from_slice(&body).map_err(|_| {
        let text = String::from_utf8_lossy(&body);
        format!("HTTP {status}: not a JSON token answer: {:?}", text.chars().take(200).collect::<String>())
    })?;
    Ok((status, json))
}

/// Entra's `error` and the first line of `error_description` (`AADSTS7000215: Invalid client
/// secret provided...`), or a managed identity endpoint's `error`/`message`.
fn entra_error(j: &serde_json::Value) -> String {
    let s = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let code =
        s("error").or_else(|| j.get("error").and_then(|e| e.get("code")).and_then(|c| c.as_str()).map(String::from));
    let desc = s("error_description")
        .or_else(|| s("message"))
        .or_else(|| j.get("error").and_then(|e| e.get("message")).and_then(|c| c.as_str()).map(String::from))
        .map(|d| d.lines().next().unwrap_or("").to_string());
    match (code, desc) {
        (Some(c), Some(d)) => format!("{c}: {d}"),
        (Some(c), None) => c,
        (None, Some(d)) => d,
        (None, None) => "no error code".into(),
    }
}

/// A number that may come as a JSON number or a string of digits.
fn number(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The token in `field` and its expiry (`expires_in` seconds from now, else `expires_on` as
/// Unix seconds; neither: good for this request only).
fn token_from(j: &serde_json::Value, field: &str) -> Result<Token, String> {
    let secret = j
        .get(field)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("no {field} in the answer"))?;
    let now = SystemTime::now();
    let expires = if let Some(s) = number(j.get("expires_in")) {
        now + Duration::from_secs(s)
    } else if let Some(t) = number(j.get("expires_on")) {
        UNIX_EPOCH + Duration::from_secs(t)
    } else {
        now
    };
    Ok(Token { secret: secret.to_string(), expires })
}

/// Runs a developer tool's token command as azidentity does (through `/bin/sh -c`, 10 s at most):
/// its standard output, or why it gave none (every failure passes on, as in
/// DefaultAzureCredential). `tool` names it in messages (`Azure CLI`).
fn run_tool(cmd: &str, tool: &str) -> Result<String, Miss> {
    use std::io::Read as _;
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Miss::Unavailable(format!("/bin/sh: {e}")))?;
    // read both pipes while it runs (a full pipe would stall it)
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn std::io::Read + Send>));
    let deadline = std::time::Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Miss::Unavailable(format!("{cmd}: no answer in 10 s")));
            }
            Err(e) => return Err(Miss::Unavailable(format!("{cmd}: {e}"))),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    if !status.success() {
        let first = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_string();
        let why = if status.code() == Some(127) || first.contains("not found") {
            format!("{tool} not found on path")
        } else {
            format!("{cmd}: {status}: {first}")
        };
        return Err(Miss::Unavailable(why));
    }
    Ok(out)
}

/// AzureCLICredential: `az account get-access-token -o json --resource https://storage.azure.com`;
/// the token's `accessToken`, its expiry `expires_on` (Unix seconds, az 2.54 on).
fn azure_cli() -> Result<Token, Miss> {
    let cmd = format!("az account get-access-token -o json --resource {RESOURCE}");
    let out = run_tool(&cmd, "Azure CLI")?;
    let j: serde_json::Value =
        serde_json::from_str(&out).map_err(|_| Miss::Unavailable(format!("{cmd}: not a JSON token answer")))?;
    let mut t = token_from(&j, "accessToken").map_err(|e| Miss::Unavailable(format!("{cmd}: {e}")))?;
    if let Some(on) = number(j.get("expires_on")) {
        t.expires = UNIX_EPOCH + Duration::from_secs(on);
    }
    Ok(t)
}

/// AzureDeveloperCLICredential: `azd auth token -o json --no-prompt --scope
/// https://storage.azure.com/.default`; the answer's `token`, its expiry `expiresOn`
/// (`2006-01-02T15:04:05Z`, as azidentity parses it).
fn azure_developer_cli() -> Result<Token, Miss> {
    let cmd = format!("azd auth token -o json --no-prompt --scope {SCOPE}");
    let out = run_tool(&cmd, "Azure Developer CLI")?;
    let j: serde_json::Value =
        serde_json::from_str(&out).map_err(|_| Miss::Unavailable(format!("{cmd}: not a JSON token answer")))?;
    let mut t = token_from(&j, "token").map_err(|e| Miss::Unavailable(format!("{cmd}: {e}")))?;
    let on = j.get("expiresOn").and_then(|v| v.as_str()).unwrap_or("");
    t.expires = utc_time(on).ok_or_else(|| Miss::Unavailable(format!("{cmd}: expiresOn {on:?}: not a UTC time")))?;
    Ok(t)
}

/// `YYYY-MM-DDTHH:MM:SSZ` as a time (days from the civil date, Howard Hinnant's algorithm).
fn utc_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d, hh, mm, ss) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// The client assertion MSAL signs with a certificate (accesstokens.Credential.JWT): a JWT whose
/// header names the certificate by `x5t#S256` (SHA-256 of its DER, standard base64; `x5c` the
/// chain when `send_chain`), claims `aud` = the token endpoint, `iss` = `sub` = the client ID,
/// `jti`, `nbf` now, `exp` in 10 minutes; signed PS256 with the RSA key. `path` is PEM holding
/// the certificate(s) and the unencrypted key (PKCS#8 or PKCS#1), as azidentity's
/// ParseCertificates reads it.
fn certificate_assertion(
    path: &std::path::Path,
    client_id: &str,
    endpoint: &str,
    send_chain: bool,
) -> Result<String, String> {
    use base64::Engine as _;
    let what = format!("AZURE_CLIENT_CERTIFICATE_PATH {}", path.display());
    let pem = std::fs::read(path).map_err(|e| format!("read {what}: {e}"))?;
    let (mut certs, mut key) = (Vec::new(), None);
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| format!("{what}: PEM: {e}"))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c.der().to_vec()),
            ureq::tls::PemItem::PrivateKey(k) if key.is_none() => key = Some(k.der().to_vec()),
            _ => {}
        }
    }
    let leaf = certs.first().ok_or_else(|| format!("{what}: no certificate in it (PEM expected)"))?;
    let der = key.ok_or_else(|| format!("{what}: no unencrypted private key in it"))?;
    // PKCS#8 or PKCS#1; another kind (an EC key) is refused: azidentity takes RSA keys only
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| ring::signature::RsaKeyPair::from_der(&der))
        .map_err(|e| format!("{what}: not an RSA private key azidentity would take: {e}"))?;
    let std64 = base64::engine::general_purpose::STANDARD;
    let url64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({
        "alg": "PS256",
        "typ": "JWT",
        "x5t#S256": std64.encode(ring::digest::digest(&ring::digest::SHA256, leaf)),
    });
    if send_chain {
        header["x5c"] = certs.iter().map(|c| std64.encode(c)).collect::<Vec<_>>().into();
    }
    let rng = ring::rand::SystemRandom::new();
    let mut id = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| "no random bytes for a jti".to_string())?;
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let h = hex::encode(id);
    let jti = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let claims = serde_json::json!({
        "aud": endpoint, "exp": now + 600, "iss": client_id, "jti": jti, "nbf": now, "sub": client_id,
    });
    let signing_input = format!("{}.{}", url64.encode(header.to_string()), url64.encode(claims.to_string()));
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(&ring::signature::RSA_PSS_SHA256, &rng, signing_input.as_bytes(), &mut sig)
        .map_err(|_| format!("{what}: signing the assertion failed"))?;
    Ok(format!("{signing_input}.{}", url64.encode(sig)))
}

/// application/x-www-form-urlencoded: all but unreserved characters percent-encoded.
fn form_encode(v: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(v, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
    }

    fn names(c: &Chain) -> Vec<String> {
        c.sources
            .iter()
            .map(|s| format!("{}{}", s.name(), if matches!(s, Source::Unavailable { .. }) { "-" } else { "" }))
            .collect()
    }

    #[test]
    fn the_chain_in_azidentitys_order() {
        // nothing set: environment and workload unavailable, IMDS probed, then az
        let c = plan(&env_of(&[])).unwrap();
        assert_eq!(
            names(&c),
            [
                "EnvironmentCredential-",
                "WorkloadIdentityCredential-",
                "ManagedIdentityCredential",
                "AzureCLICredential",
                "AzureDeveloperCLICredential",
                "AzurePowerShellCredential-"
            ]
        );
        assert_eq!(
            c.sources[2],
            Source::Managed { endpoint: Managed::Imds { probe: true, endpoint: IMDS.into() }, client_id: None }
        );
        // a service principal with a secret, and workload identity (GitHub OIDC / AKS) beside it
        let c = plan(&env_of(&[
            ("AZURE_TENANT_ID", "t-1"),
            ("AZURE_CLIENT_ID", "c1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ]))
        .unwrap();
        assert!(
            matches!(&c.sources[0], Source::ClientSecret { authority, tenant, .. } if authority == PUBLIC_CLOUD && tenant == "t-1")
        );
        assert!(matches!(&c.sources[1], Source::Workload { file, .. } if file == &PathBuf::from("/var/run/token")));
        // AZURE_CLIENT_ID also picks the user-assigned managed identity
        assert_eq!(
            c.sources[2],
            Source::Managed {
                endpoint: Managed::Imds { probe: true, endpoint: IMDS.into() },
                client_id: Some("c1".into())
            }
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        // App Service, Cloud Shell; prod = no developer tools, and IMDS alone is not probed
        let c = plan(&env_of(&[("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"), ("IDENTITY_HEADER", "h")])).unwrap();
        assert!(matches!(&c.sources[2], Source::Managed { endpoint: Managed::AppService { .. }, .. }));
        let c = plan(&env_of(&[("MSI_ENDPOINT", "http://x/"), ("AZURE_TOKEN_CREDENTIALS", "prod")])).unwrap();
        assert_eq!(names(&c), ["EnvironmentCredential-", "WorkloadIdentityCredential-", "ManagedIdentityCredential"]);
        let c = plan(&env_of(&[("AZURE_TOKEN_CREDENTIALS", "dev")])).unwrap();
        assert_eq!(names(&c), ["AzureCLICredential", "AzureDeveloperCLICredential", "AzurePowerShellCredential-"]);
        let c = plan(&env_of(&[("AZURE_TOKEN_CREDENTIALS", "managedidentitycredential")])).unwrap();
        assert_eq!(
            c.sources,
            [Source::Managed { endpoint: Managed::Imds { probe: false, endpoint: IMDS.into() }, client_id: None }]
        );
        // a client certificate; what slipway cannot do is an error when reached, not a silent skip
        let c = plan(&env_of(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
            ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "True"),
        ]))
        .unwrap();
        assert!(matches!(&c.sources[0], Source::ClientCertificate { send_chain: true, .. }));
        let c = plan(&env_of(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pfx"),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "pw"),
        ]))
        .unwrap();
        assert!(matches!(&c.sources[0], Source::Unsupported { why, .. } if why.contains("PKCS#12")));
        for (bad, want) in [
            (&[("AZURE_TOKEN_CREDENTIALS", "foo")][..], "invalid AZURE_TOKEN_CREDENTIALS"),
            (&[("AZURE_TOKEN_CREDENTIALS", "AzurePowerShellCredential")][..], "not implemented by slipway"),
            (&[("AZURE_TENANT_ID", "a/b")][..], "not a tenant ID"),
            (
                &[
                    ("AZURE_TENANT_ID", "t"),
                    ("AZURE_CLIENT_ID", "c"),
                    ("AZURE_CLIENT_SECRET", "s"),
                    ("AZURE_AUTHORITY_HOST", "http://h/"),
                ][..],
                "without https",
            ),
            (&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c"), ("AZURE_USERNAME", "u")][..], "AZURE_PASSWORD"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(bad.to_vec().into_boxed_slice());
            let e = plan(&env_of(pairs)).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    /// A one-shot HTTP server on loopback: answers each connection with the next of `replies`
    /// (status, JSON body) and keeps each request's head.
    fn fake(replies: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/metadata/identity/oauth2/token", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for (status, body) in replies {
                let (mut c, _) = l.accept().unwrap();
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = c.read(&mut b).unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&b[..n]);
                }
                heads.push(String::from_utf8_lossy(&buf).to_ascii_lowercase());
                let r = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                c.write_all(r.as_bytes()).unwrap();
            }
            heads
        });
        (url, h)
    }

    #[test]
    fn imds_as_msal_asks_it() {
        // DefaultAzureCredential: a probe without the Metadata header, then the token request
        // (api-version 2018-02-01, the storage resource, the user-assigned client ID)
        let (url, h) = fake(vec![
            (400, r#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#),
            (
                200,
                r#"{"access_token":"tok","expires_in":"86399","expires_on":"4102444800","resource":"https://storage.azure.com","token_type":"Bearer"}"#,
            ),
        ]);
        let src =
            Source::Managed { endpoint: Managed::Imds { probe: true, endpoint: url }, client_id: Some("c1".into()) };
        let tokens = Tokens::new(Chain { sources: vec![src] }).unwrap();
        assert_eq!(tokens.token().unwrap(), "tok");
        // held, not asked again
        assert_eq!(tokens.token().unwrap(), "tok");
        let heads = h.join().unwrap();
        assert!(
            heads[0].starts_with("get /metadata/identity/oauth2/token http/1.1")
                && !heads[0].contains("metadata: true"),
            "{}",
            heads[0]
        );
        assert!(
            heads[1].starts_with("get /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3a%2f%2fstorage.azure.com&client_id=c1 ")
                && heads[1].contains("\r\nmetadata: true\r\n"),
            "{}",
            heads[1]
        );
        // a VM without a system-assigned identity (400): passes on to the next, which is said
        let (url, h) =
            fake(vec![(400, "{}"), (400, r#"{"error":"invalid_request","error_description":"Identity not found"}"#)]);
        let src = Source::Managed { endpoint: Managed::Imds { probe: true, endpoint: url }, client_id: None };
        let e = Tokens::new(Chain { sources: vec![src] }).unwrap().token().unwrap_err();
        assert!(
            e.contains("no credential gave a token") && e.contains("HTTP 400: invalid_request: Identity not found"),
            "{e}"
        );
        h.join().unwrap();
        // nothing listening: the probe fails, passed on
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let src = Source::Managed {
            endpoint: Managed::Imds { probe: true, endpoint: format!("http://{dead}/metadata/identity/oauth2/token") },
            client_id: None,
        };
        let e = Tokens::new(Chain { sources: vec![src] }).unwrap().token().unwrap_err();
        assert!(e.contains("no IMDS answered"), "{e}");
    }

    #[test]
    fn token_answers() {
        let j = serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "tok"});
        let t = token_from(&j, "access_token").unwrap();
        assert_eq!(t.secret, "tok");
        assert!(t.expires > SystemTime::now() + Duration::from_secs(3500));
        // IMDS / App Service: strings, expires_on in Unix seconds
        let j = serde_json::json!({"access_token": "t", "expires_on": "4102444800", "resource": RESOURCE});
        assert_eq!(token_from(&j, "access_token").unwrap().expires, UNIX_EPOCH + Duration::from_secs(4102444800));
        let j = serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x", "error_codes": [7000215]});
        assert_eq!(entra_error(&j), "invalid_client: AADSTS7000215: Invalid client secret provided.");
        assert_eq!(form_encode("a b/c+d=é"), "a%20b%2Fc%2Bd%3D%C3%A9");
        // azd's expiresOn, as Go's time.Parse("2006-01-02T15:04:05Z") reads it
        assert_eq!(utc_time("2024-02-29T23:59:59Z"), Some(UNIX_EPOCH + Duration::from_secs(1709251199)));
        assert_eq!(utc_time("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        for bad in ["2024-02-29 23:59:59Z", "2024-13-01T00:00:00Z", "2024-02-29T23:59:59+01:00", ""] {
            assert_eq!(utc_time(bad), None, "{bad}");
        }
    }
}
