//! The registry client's error: every variant names the registry and what was being done;
//! HTTP failures carry the status and the registry's own error codes.

use crate::store::StoreError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an unexpected status.
    #[error("{op}: registry {registry} answered HTTP {status}{}", codes_suffix(.codes))]
    Status { registry: String, op: String, status: u16, codes: Vec<(String, String)> },
    /// The request did not get an answer (connection, protocol, timeout).
    #[error("{op}: registry {registry}: {why}")]
    Transport { registry: String, op: String, why: String },
    /// The TLS handshake failed.
    #[error("TLS to registry {registry}: {why}")]
    Tls { registry: String, why: String },
    /// A blob or manifest whose bytes are not what its digest says.
    #[error("{what} {digest} from {registry}/{repository}: {why}")]
    Digest { registry: String, repository: String, what: &'static str, digest: String, why: String },
    /// A manifest or token we cannot use.
    #[error("{what} from registry {registry}: {why}")]
    Invalid { registry: String, what: String, why: String },
    /// A blob a push needs that the store does not have (nothing was sent).
    #[error("{op}: blob {digest} ({what}) is not in the store; nothing was pushed")]
    Missing { op: String, what: String, digest: String },
    /// Something local that cannot be pushed as it is.
    #[error("{op}: {why}")]
    Local { op: String, why: String },
    #[error("read {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ref(#[from] super::reference::RefError),
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error(transparent)]
    Azblob(#[from] crate::azblob::AzError),
    #[error(transparent)]
    Gha(#[from] crate::gha::GhaError),
}

fn codes_suffix(codes: &[(String, String)]) -> String {
    codes
        .iter()
        .map(|(c, m)| if m.is_empty() { format!(": {c}") } else { format!(": {c}: {m}") })
        .collect::<Vec<_>>()
        .join(";")
}

impl RegistryError {
    /// The registry's error codes (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, ...), if it sent any.
    pub fn codes(&self) -> Vec<&str> {
        match self {
            RegistryError::Status { codes, .. } => codes.iter().map(|(c, _)| c.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The `errors` array of a distribution error body: `{"errors":[{"code","message"}]}`.
pub fn parse_error_body(body: &[u8]) -> Vec<(String, String)> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    v.get("errors")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let code = e.get("code")?.as_str()?.to_string();
                    let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string();
                    Some((code, msg))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let c =
            parse_error_body(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#);
        assert_eq!(c, vec![("MANIFEST_UNKNOWN".to_string(), "manifest unknown".to_string())]);
        assert!(parse_error_body(b"<html>").is_empty());
        let e = RegistryError::Status {
            registry: "localhost:5000".into(),
            op: "pull localhost:5000/a:1: GET manifest".into(),
            status: 404,
            codes: c,
        };
        assert_eq!(
            e.to_string(),
            "pull localhost:5000/a:1: GET manifest: registry localhost:5000 answered HTTP 404: MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(e.codes(), ["MANIFEST_UNKNOWN"]);
    }
}
