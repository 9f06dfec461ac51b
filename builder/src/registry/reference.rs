//! Image references as docker normalises them (distribution/reference's grammar):
//! `busybox` is `docker.io/library/busybox:latest`, `HOST[:PORT]/repo[:tag][@digest]`.
//! Pure parsing; no I/O.

use std::fmt;

/// docker's default registry name and the host its API really lives on.
pub const DOCKER_HUB: &str = "docker.io";
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker's config.json uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `ghcr.io`...
    pub registry: String,
    /// `library/busybox`, `me/app`
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference format {input:?}: {why}")]
pub struct RefError {
    pub input: String,
    pub why: &'static str,
}

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// One path component: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn valid_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or any number of "-"
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// `sha256:` + 64 lowercase hex (the only algorithm the store holds).
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
}

/// A registry host: a domain or IP (v6 in brackets) with an optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').map(Some).unwrap_or(if p.is_empty() { None } else { Some("x") })),
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Reference {
    /// Parses and normalises a reference as `docker pull` does.
    pub fn parse(input: &str) -> Result<Reference, RefError> {
        let err = |why| RefError { input: input.to_string(), why };
        if input.is_empty() {
            return Err(err("empty"));
        }
        if input.len() > 4096 || input.contains(char::is_whitespace) {
            return Err(err("contains whitespace or is too long"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(err("digest must be sha256: and 64 lowercase hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (input, None),
        };
        // a tag follows the last ':' after the last '/'
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err("invalid tag"));
            }
        }
        // docker: the first component is a registry if it has '.' or ':', is `localhost`,
        // or has upper case letters (which a repository may not)
        let (registry, mut repo) = match name.split_once('/') {
            Some((first, r))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), r.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" { DOCKER_HUB.to_string() } else { registry };
        if !valid_domain(&registry) {
            return Err(err("invalid registry host"));
        }
        if repo.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(err("repository name must be lowercase"));
        }
        if repo.is_empty() || !repo.split('/').all(valid_component) {
            return Err(err("invalid repository name"));
        }
        if registry == DOCKER_HUB && !repo.contains('/') {
            repo = format!("library/{repo}");
        }
        if registry.len() + 1 + repo.len() > 255 {
            return Err(err("repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference { registry, repository: repo, tag, digest })
    }

    /// The host the registry API is reached at (`docker.io` lives at `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What the API path names: the digest if there is one, else the tag.
    pub fn api_reference(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// `docker.io/library/busybox` -> `busybox`; `localhost:5000/app` stays.
    pub fn familiar_repository(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The name the store keeps the image under, as docker shows it: `busybox:latest`,
    /// `localhost:5000/app:1`, or `app@sha256:...` for a pull by digest.
    pub fn store_name(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("{}@{d}", self.familiar_repository()),
            (None, Some(t)) => format!("{}:{t}", self.familiar_repository()),
            (None, None) => format!("{}:latest", self.familiar_repository()),
        }
    }

    /// The same repository with another tag or digest.
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference { digest: Some(digest.to_string()), tag: None, ..self.clone() }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// Normalises what `login`/`logout` are given: `https://ghcr.io/`, `docker.io`, `HOST:PORT`.
pub fn normalize_host(s: &str) -> String {
    let s = s.trim_start_matches("https://").trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// The host part of `HOST[:PORT]` (brackets of an IPv6 literal removed).
pub fn host_only(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry)
}

/// Loopback registries may be spoken to over plain HTTP, as docker allows (127.0.0.0/8, ::1,
/// localhost).
pub fn is_loopback(registry: &str) -> bool {
    let h = host_only(registry);
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_as_docker_does() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // docker pull busybox -> docker.io/library/busybox:latest
            ("busybox", "docker.io", "library/busybox", "busybox:latest"),
            ("busybox:1.36", "docker.io", "library/busybox", "busybox:1.36"),
            // a user repository on the Hub gets no library/
            ("me/app", "docker.io", "me/app", "me/app:latest"),
            ("docker.io/library/busybox", "docker.io", "library/busybox", "busybox:latest"),
            ("index.docker.io/library/busybox:1", "docker.io", "library/busybox", "busybox:1"),
            // HOST:PORT is a registry, not a tag
            ("localhost:5000/app", "localhost:5000", "app", "localhost:5000/app:latest"),
            ("localhost/app:2", "localhost", "app", "localhost/app:2"),
            ("127.0.0.1:5000/a/b/c:v1.0-rc_1", "127.0.0.1:5000", "a/b/c", "127.0.0.1:5000/a/b/c:v1.0-rc_1"),
            ("ghcr.io/o/r", "ghcr.io", "o/r", "ghcr.io/o/r:latest"),
            ("[::1]:5000/app", "[::1]:5000", "app", "[::1]:5000/app:latest"),
            // separators inside components
            ("me/a_b__c--d/f.g", "docker.io", "me/a_b__c--d/f.g", "me/a_b__c--d/f.g:latest"),
        ];
        for (input, reg, repo, store) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.registry.as_str(), r.repository.as_str()), (*reg, *repo), "{input}");
            assert_eq!(r.store_name(), *store, "{input}");
        }
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn digests() {
        // name@digest has no tag; the API is asked for the digest
        let r = Reference::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.api_reference(), D);
        assert_eq!(r.store_name(), format!("localhost:5000/app@{D}"));
        // name:tag@digest keeps both; the digest wins
        let r = Reference::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.api_reference(), D);
        assert!(Reference::parse("busybox@sha256:abc").is_err());
        assert!(Reference::parse("busybox@md5:0123").is_err());
    }

    #[test]
    fn refuses_what_docker_refuses() {
        for bad in [
            "",
            "Busybox",            // upper case repository
            "localhost:5000/App", // upper case after a registry
            "a//b",               // empty component
            "-a",                 // leading separator
            "a-",                 // trailing separator
            "a..b",               // two dots
            "a___b",              // three underscores
            "busybox:",           // empty tag
            "busybox:-x",         // tag must start with a word character
            "busybox:a/b",        // '/' after ':' is parsed as a port-less path, invalid
            "host:port/app",      // non-numeric port
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long_tag = format!("busybox:{}", "a".repeat(129));
        assert!(Reference::parse(&long_tag).is_err());
    }

    #[test]
    fn loopback_and_hosts() {
        for (r, lo) in [
            ("localhost:5000", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("docker.io", false),
            ("localhost.example.com", false),
        ] {
            assert_eq!(is_loopback(r), lo, "{r}");
        }
        assert_eq!(normalize_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_host("localhost:5000"), "localhost:5000");
        assert_eq!(normalize_host("https://ghcr.io"), "ghcr.io");
    }
}
