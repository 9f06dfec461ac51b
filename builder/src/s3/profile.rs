//! The AWS shared config files as the SDK reads them: `~/.aws/config` (`AWS_CONFIG_FILE`;
//! sections `[default]`, `[profile NAME]`, `[services NAME]`) and `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`; sections `[NAME]`), merged per profile with the credentials
//! file's values first. Nested properties (`s3 =` then indented `endpoint_url = ...`) are read
//! as `s3.endpoint_url`. Pure text to data: reading the files is [`SharedConfig::load`].

use super::S3Error;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One profile's properties (lower-case names, as the SDK compares them).
pub type Profile = BTreeMap<String, String>;

/// Both files, parsed.
#[derive(Debug, Default, Clone)]
pub struct SharedConfig {
    /// Profiles by name, the credentials file's values over the config file's.
    pub profiles: BTreeMap<String, Profile>,
    /// `[services NAME]` sections of the config file.
    pub services: BTreeMap<String, Profile>,
    /// The files read, for messages.
    pub config_file: PathBuf,
    pub credentials_file: PathBuf,
}

/// The sections of an INI text: (header, properties), in order; `#`/`;` comments; a property
/// with an empty value followed by indented `k = v` lines holds those as `KEY.k`.
fn sections(text: &str) -> Vec<(String, Profile)> {
    let mut out: Vec<(String, Profile)> = Vec::new();
    let mut parent: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name.split_whitespace().collect::<Vec<_>>().join(" "), Profile::new()));
            parent = None;
            continue;
        }
        let Some((_, props)) = out.last_mut() else { continue };
        let Some((k, v)) = line.split_once('=') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        let indented = raw.starts_with([' ', '\t']);
        match &parent {
            Some(p) if indented => {
                props.insert(format!("{p}.{k}"), v);
            }
            _ if v.is_empty() => parent = Some(k),
            _ => {
                parent = None;
                props.insert(k, v);
            }
        }
    }
    out
}

impl SharedConfig {
    /// Parses the config file's and the credentials file's texts.
    pub fn parse(config: &str, credentials: &str) -> SharedConfig {
        let mut c = SharedConfig::default();
        for (header, props) in sections(config) {
            let (kind, name) = match header.split_once(' ') {
                Some(("profile", n)) => ("profile", n.to_string()),
                Some(("services", n)) => ("services", n.to_string()),
                // `[default]` is the only profile without the prefix in the config file
                None if header == "default" => ("profile", header),
                _ => continue,
            };
            let map = if kind == "profile" { &mut c.profiles } else { &mut c.services };
            map.entry(name).or_default().extend(props);
        }
        for (name, props) in sections(credentials) {
            c.profiles.entry(name).or_default().extend(props);
        }
        c
    }

    /// Reads both files (a missing file is an empty one).
    pub fn load(env: super::credentials::Env) -> Result<SharedConfig, S3Error> {
        let home = env("HOME").map(PathBuf::from);
        let path = |var: &str, name: &str| {
            env(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
        };
        let read = |p: &Option<PathBuf>| -> Result<String, S3Error> {
            let Some(p) = p else { return Ok(String::new()) };
            match std::fs::read_to_string(p) {
                Ok(t) => Ok(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
                Err(err) => Err(S3Error::Io { op: "read AWS shared config".into(), path: p.clone(), err }),
            }
        };
        let (cf, kf) = (path("AWS_CONFIG_FILE", "config"), path("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
        let mut c = SharedConfig::parse(&read(&cf)?, &read(&kf)?);
        c.config_file = cf.unwrap_or_else(|| "~/.aws/config".into());
        c.credentials_file = kf.unwrap_or_else(|| "~/.aws/credentials".into());
        Ok(c)
    }

    /// The endpoint the SDK's configured-endpoint rules give `service` (`s3`, `sts`) of
    /// `profile`: `AWS_ENDPOINT_URL_<SERVICE>`, the profile's `services` section, then
    /// `AWS_ENDPOINT_URL`, then the profile's `endpoint_url`; none when
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` (or the profile's `ignore_configured_endpoint_urls`)
    /// is true.
    pub fn endpoint_url(&self, profile: &str, service: &str, env: super::credentials::Env) -> Option<String> {
        let p = self.profiles.get(profile);
        let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .or_else(|| p.and_then(|p| p.get("ignore_configured_endpoint_urls").cloned()))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if ignore {
            return None;
        }
        env(&format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase()))
            .or_else(|| {
                let section = self.services.get(p?.get("services")?)?;
                section.get(&format!("{service}.endpoint_url")).cloned()
            })
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| p?.get("endpoint_url").cloned())
            .filter(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_as_the_sdk_reads_them() {
        let config = "# c\n[default]\nregion = eu-west-1\n\n[profile ci]\nrole_arn = arn:aws:iam::1:role/r\n\
                      source_profile = base\nservices = local\n[profile  base]\naws_access_key_id = CK\n\
                      [services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9000\nsts =\n  endpoint_url = http://sts\n\
                      [ci]\naws_access_key_id = IGNORED\n";
        let creds = "[base]\naws_access_key_id = K\naws_secret_access_key = S\n[profile x]\naws_access_key_id = P\n";
        let c = SharedConfig::parse(config, creds);
        assert_eq!(c.profiles["default"]["region"], "eu-west-1");
        assert_eq!(c.profiles["ci"]["source_profile"], "base");
        // the credentials file wins over the config file; `[ci]` in the config file is no profile
        assert_eq!(c.profiles["base"]["aws_access_key_id"], "K");
        assert!(!c.profiles["ci"].contains_key("aws_access_key_id"));
        // in the credentials file the section name is the profile name, prefix or not
        assert_eq!(c.profiles["profile x"]["aws_access_key_id"], "P");
        assert_eq!(c.services["local"]["s3.endpoint_url"], "http://127.0.0.1:9000");
        let none = |_: &str| None;
        assert_eq!(c.endpoint_url("ci", "s3", &none).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.endpoint_url("ci", "sts", &none).as_deref(), Some("http://sts"));
        assert_eq!(c.endpoint_url("default", "s3", &none), None);
        // the service's variable, then the services section, then AWS_ENDPOINT_URL
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL" => Some("http://all".to_string()),
            "AWS_ENDPOINT_URL_STS" => Some("http://sts-env".to_string()),
            _ => None,
        };
        assert_eq!(c.endpoint_url("ci", "sts", &env).as_deref(), Some("http://sts-env"));
        assert_eq!(c.endpoint_url("ci", "s3", &env).as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.endpoint_url("default", "s3", &env).as_deref(), Some("http://all"));
        let ignore = |k: &str| (k == "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").then(|| "true".to_string());
        assert_eq!(c.endpoint_url("ci", "s3", &ignore), None);
    }
}
