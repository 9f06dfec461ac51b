//! Registry authentication: `WWW-Authenticate` challenges (RFC 7235), the distribution token
//! flow's scopes, and docker's credential store (`config.json` `auths`, `credHelpers`,
//! `credsStore`). No HTTP here: the client asks this module what to send.
//!
//! Written by hand: the challenge grammar is a few lines, and no maintained crate reads
//! docker's config.json with its credential helpers (docker_credential on crates.io is
//! unmaintained and does not write `login`'s entries).

use super::reference::{DOCKER_HUB, DOCKER_HUB_AUTH_KEY};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased scheme: `basic`, `bearer`.
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params.get(k).map(String::as_str)
    }
}

/// Parses a `WWW-Authenticate` value into its challenges (several may share one header:
/// `Basic realm="x", Bearer realm="y",service="z"`).
pub fn parse_challenges(h: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = h.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=' | b'"') {
            *i += 1;
        }
        h[s..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1; // a stray character; skip it
            continue;
        }
        // `word=` is a parameter of the current challenge; a bare word starts a new one
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // push whole UTF-8 characters
                    let ch = h[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1; // closing quote
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge { scheme: word.to_ascii_lowercase(), params: BTreeMap::new() });
        }
    }
    out
}

/// A repository scope of the token flow: `repository:NAME:pull,push`.
pub fn repo_scope(repository: &str, push: bool) -> String {
    format!("repository:{repository}:{}", if push { "pull,push" } else { "pull" })
}

/// A user name and a secret; `identity_token` when the secret is an OAuth refresh token
/// (docker's `identitytoken`, a helper's `<token>` user).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub secret: String,
    pub identity_token: bool,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({:?}, <secret>)", self.username)
    }
}

impl Credential {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.secret);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error("credential helper docker-credential-{helper} for {registry}: {why}")]
    Helper { helper: String, registry: String, why: String },
}

/// docker's config.json: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker/config.json")
}

/// The keys under which docker may have stored a registry's entry.
fn auth_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        vec![DOCKER_HUB_AUTH_KEY.into(), "index.docker.io".into(), "docker.io".into(), "registry-1.docker.io".into()]
    } else {
        vec![registry.to_string(), format!("https://{registry}"), format!("http://{registry}")]
    }
}

/// The key `login` writes (docker's own choice: the v1 URL for the Hub, the host otherwise).
pub fn login_key(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_AUTH_KEY.into()
    } else {
        registry.into()
    }
}

fn read_config(path: &Path) -> Result<serde_json::Value, AuthError> {
    match std::fs::read(path) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(serde_json::json!({})),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| AuthError::Config { path: path.into(), why: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(AuthError::Config { path: path.into(), why: e.to_string() }),
    }
}

/// Finds the credentials for `registry`: a `credHelpers` entry, then the `auths` entry,
/// then `credsStore`, as docker's config file does. None means anonymous.
pub fn lookup(registry: &str) -> Result<Option<Credential>, AuthError> {
    lookup_in(&config_path(), registry)
}

pub fn lookup_in(path: &Path, registry: &str) -> Result<Option<Credential>, AuthError> {
    let cfg = read_config(path)?;
    let keys = auth_keys(registry);
    if let Some(helpers) = cfg.get("credHelpers").and_then(|h| h.as_object()) {
        for k in &keys {
            if let Some(h) = helpers.get(k).and_then(|v| v.as_str()) {
                return helper_get(h, registry, &login_key(registry));
            }
        }
    }
    if let Some(auths) = cfg.get("auths").and_then(|a| a.as_object()) {
        for k in &keys {
            let Some(e) = auths.get(k) else { continue };
            if let Some(c) = auth_entry(path, k, e)? {
                return Ok(Some(c));
            }
        }
    }
    if let Some(store) = cfg.get("credsStore").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) {
        return helper_get(store, registry, &login_key(registry));
    }
    Ok(None)
}

fn auth_entry(path: &Path, key: &str, e: &serde_json::Value) -> Result<Option<Credential>, AuthError> {
    let bad = |why: String| AuthError::Config { path: path.into(), why: format!("auths[{key:?}]: {why}") };
    if let Some(tok) = e.get("identitytoken").and_then(|v| v.as_str()).filter(|t| !t.is_empty()) {
        let username = match e.get("auth").and_then(|v| v.as_str()) {
            Some(a) if !a.is_empty() => decode_auth(a).map_err(bad)?.0,
            _ => String::new(),
        };
        return Ok(Some(Credential { username, secret: tok.into(), identity_token: true }));
    }
    if let Some(a) = e.get("auth").and_then(|v| v.as_str()).filter(|a| !a.is_empty()) {
        let (username, secret) = decode_auth(a).map_err(bad)?;
        return Ok(Some(Credential { username, secret, identity_token: false }));
    }
    let user = e.get("username").and_then(|v| v.as_str()).unwrap_or("");
    let pass = e.get("password").and_then(|v| v.as_str()).unwrap_or("");
    if !user.is_empty() {
        return Ok(Some(Credential { username: user.into(), secret: pass.into(), identity_token: false }));
    }
    Ok(None)
}

fn decode_auth(a: &str) -> Result<(String, String), String> {
    let raw =
        base64::engine::general_purpose::STANDARD.decode(a.trim()).map_err(|e| format!("auth is not base64: {e}"))?;
    let s = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
    let (u, p) = s.split_once(':').ok_or("auth is not user:password")?;
    Ok((u.to_string(), p.to_string()))
}

/// `docker-credential-NAME get`: the server URL on stdin, `{"Username","Secret"}` out.
/// A helper's "credentials not found" means anonymous.
fn helper_get(helper: &str, registry: &str, server: &str) -> Result<Option<Credential>, AuthError> {
    let err = |why: String| AuthError::Helper { helper: helper.into(), registry: registry.into(), why };
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("run {bin}: {e}")))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(format!("run {bin}: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        if stdout.contains("credentials not found") || String::from_utf8_lossy(&out.stderr).contains("not found") {
            return Ok(None);
        }
        return Err(err(format!("{}: {}", out.status, stdout.trim())));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| err(format!("its output: {e}")))?;
    let user = v.get("Username").and_then(|u| u.as_str()).unwrap_or("");
    let secret = v.get("Secret").and_then(|u| u.as_str()).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential {
        username: if user == "<token>" { String::new() } else { user.into() },
        secret: secret.into(),
        identity_token: user == "<token>",
    }))
}

/// Writes `registry`'s credentials into config.json's `auths` (keeping every other field),
/// mode 0600, atomically.
pub fn store(path: &Path, registry: &str, c: &Credential) -> Result<(), AuthError> {
    let mut cfg = read_config(path)?;
    let bad = |why: String| AuthError::Config { path: path.into(), why };
    let obj = cfg.as_object_mut().ok_or_else(|| bad("not a JSON object".into()))?;
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    let auths = auths.as_object_mut().ok_or_else(|| bad("auths is not an object".into()))?;
    let raw = format!("{}:{}", c.username, c.secret);
    auths.insert(
        login_key(registry),
        serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(raw) }),
    );
    write_config(path, &cfg)
}

/// Removes `registry`'s entries from `auths`; returns whether there was one.
pub fn remove(path: &Path, registry: &str) -> Result<bool, AuthError> {
    let mut cfg = read_config(path)?;
    let mut removed = false;
    if let Some(auths) = cfg.get_mut("auths").and_then(|a| a.as_object_mut()) {
        for k in auth_keys(registry) {
            removed |= auths.remove(&k).is_some();
        }
    }
    if removed {
        write_config(path, &cfg)?;
    }
    Ok(removed)
}

fn write_config(path: &Path, cfg: &serde_json::Value) -> Result<(), AuthError> {
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |why: String| AuthError::Config { path: path.into(), why };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| bad(format!("create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
    let mut data = serde_json::to_vec_pretty(cfg).map_err(|e| bad(e.to_string()))?;
    data.push(b'\n');
    let res = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(bad(format!("write: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        // distribution's token server challenge
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
        // htpasswd's basic realm; case-insensitive scheme and parameter names
        let c = parse_challenges(r#"BASIC Realm="basic-realm""#);
        assert_eq!((c[0].scheme.as_str(), c[0].param("realm")), ("basic", Some("basic-realm")));
        // several challenges in one header, token values, spaces, escapes
        let c = parse_challenges(r#"Basic realm="a\"b", Bearer realm = "r", service=svc ,error="insufficient_scope""#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        assert_eq!(c[1].param("realm"), Some("r"));
        assert_eq!(c[1].param("service"), Some("svc"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        // a scope with a comma inside quotes stays whole
        let c = parse_challenges(r#"Bearer realm="r",scope="repository:a:pull,push""#);
        assert_eq!(c[0].param("scope"), Some("repository:a:pull,push"));
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Negotiate")[0].scheme, "negotiate");
    }

    #[test]
    fn config_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("d/config.json");
        assert_eq!(lookup_in(&p, "localhost:5000").unwrap(), None);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"auths":{},"psFormat":"table"}"#).unwrap();
        let c = Credential { username: "u".into(), secret: "p:w".into(), identity_token: false };
        store(&p, "localhost:5000", &c).unwrap();
        store(&p, DOCKER_HUB, &c).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        // other fields survive; docker's keys and base64 "user:pass"
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["auths"]["localhost:5000"]["auth"], "dTpwOnc=");
        assert!(v["auths"][DOCKER_HUB_AUTH_KEY].is_object());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(lookup_in(&p, "localhost:5000").unwrap(), Some(c.clone()));
        assert_eq!(lookup_in(&p, DOCKER_HUB).unwrap(), Some(c));
        assert!(remove(&p, "localhost:5000").unwrap());
        assert!(!remove(&p, "localhost:5000").unwrap());
        assert_eq!(lookup_in(&p, "localhost:5000").unwrap(), None);
        // an entry written by hand with https:// and an identity token
        std::fs::write(&p, r#"{"auths":{"https://r.example":{"auth":"dTo=","identitytoken":"tok"}}}"#).unwrap();
        let c = lookup_in(&p, "r.example").unwrap().unwrap();
        assert!(c.identity_token);
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("u", "tok"));
        std::fs::write(&p, r#"{"auths":{"r.example":{"auth":"%%%"}}}"#).unwrap();
        let e = lookup_in(&p, "r.example").unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("base64"), "{e}");
    }
}
