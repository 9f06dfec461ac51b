//! Where S3 credentials come from, in the order the AWS SDK's default chain reads the sources
//! slipway supports: the cache's own `access_key_id`/`secret_access_key`/`session_token`
//! (BuildKit uses them only when both the key and the secret are given), then the environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), then the shared
//! credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`; profile
//! `AWS_PROFILE`, else `default`). Instance roles (EC2 IMDS, ECS), web identity, SSO and
//! `credential_process` are not read: the error says so.

use super::sigv4::Credentials;
use super::S3Error;
use std::path::PathBuf;

/// The environment, as a function (tests pass a table).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Resolves the credentials: `given` (the cache attributes' key, secret and token).
pub fn resolve(given: Option<&Credentials>, env: Env) -> Result<Credentials, S3Error> {
    if let Some(c) = given {
        return Ok(c.clone());
    }
    if let (Some(k), Some(s)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials { access_key_id: k, secret_access_key: s, session_token: env("AWS_SESSION_TOKEN") });
    }
    let file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    if let Some(f) = &file {
        match std::fs::read_to_string(f) {
            Ok(text) => {
                if let Some(c) = from_ini(&text, &profile) {
                    return Ok(c);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(S3Error::Io { op: "read AWS credentials".into(), path: f.clone(), err }),
        }
    }
    Err(S3Error::Config(format!(
        "no AWS credentials: give access_key_id= and secret_access_key=, set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or put profile [{profile}] in {} (slipway does not read instance roles, \
         web identity, SSO or credential_process)",
        file.map(|f| f.display().to_string()).unwrap_or_else(|| "~/.aws/credentials".into())
    )))
}

/// The static keys of `profile` in a shared credentials file (INI: `[profile]`, `key = value`,
/// `#`/`;` comments).
fn from_ini(text: &str, profile: &str) -> Option<Credentials> {
    let mut section = String::new();
    let (mut k, mut s, mut t) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = Some(value.trim().to_string()).filter(|v| !v.is_empty());
        match key.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => k = value,
            "aws_secret_access_key" => s = value,
            "aws_session_token" => t = value,
            _ => {}
        }
    }
    Some(Credentials { access_key_id: k?, secret_access_key: s?, session_token: t })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_in_order() {
        let given = Credentials { access_key_id: "A".into(), secret_access_key: "S".into(), session_token: None };
        let env = |k: &str| match k {
            "AWS_ACCESS_KEY_ID" => Some("EK".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("ES".to_string()),
            "AWS_SESSION_TOKEN" => Some("ET".to_string()),
            _ => None,
        };
        assert_eq!(resolve(Some(&given), &env).unwrap(), given);
        let c = resolve(None, &env).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.session_token.as_deref()), ("EK", Some("ET")));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "# c\n[default]\naws_access_key_id = D\naws_secret_access_key=DS\n\n[ci]\naws_access_key_id=C\n\
             aws_secret_access_key = CS\naws_session_token = CT\n",
        )
        .unwrap();
        let fs = f.display().to_string();
        let env = |k: &str| match k {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(fs.clone()),
            "AWS_PROFILE" => Some("ci".to_string()),
            _ => None,
        };
        let c = resolve(None, &env).unwrap();
        assert_eq!((c.access_key_id.as_str(), c.secret_access_key.as_str()), ("C", "CS"));
        assert_eq!(c.session_token.as_deref(), Some("CT"));
        let env = |k: &str| (k == "AWS_SHARED_CREDENTIALS_FILE").then(|| fs.clone());
        assert_eq!(resolve(None, &env).unwrap().access_key_id, "D");
        let env = |k: &str| match k {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(fs.clone()),
            "AWS_PROFILE" => Some("nope".to_string()),
            _ => None,
        };
        let e = resolve(None, &env).unwrap_err().to_string();
        assert!(e.contains("no AWS credentials") && e.contains("[nope]"), "{e}");
    }
}
