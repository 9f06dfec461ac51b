//! A small S3 client for the build cache (`--cache-to/--cache-from type=s3`): object HEAD, GET,
//! PUT (streamed from a file with its known length and SHA-256; in parts from 16 MiB, `multipart.rs`)
//! and the in-place copy that refreshes an object's Last-Modified, signed with AWS SigV4 (`sigv4.rs`), over the same
//! synchronous ureq + rustls agent as the registry client. It knows nothing of caches or
//! images; `registry/cache.rs` decides which objects to write.

pub mod client;
pub mod credentials;
pub mod multipart;
pub mod profile;
pub mod sigv4;

pub use client::{Bucket, Endpoint};
pub use sigv4::Credentials;

/// What went wrong with an S3 request: each names the bucket and the operation; an answer
/// carries S3's error code (`NoSuchBucket`, `SignatureDoesNotMatch`, ...).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{op}: S3 bucket {bucket} answered HTTP {status}: {code}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status { bucket: String, op: String, status: u16, code: String, message: String },
    #[error("{op}: S3 bucket {bucket}: {why}")]
    Transport { bucket: String, op: String, why: String },
    #[error("{0}")]
    Config(String),
    #[error("{op}: {path}: {err}")]
    Io { op: String, path: std::path::PathBuf, err: std::io::Error },
}

impl S3Error {
    /// S3's error code, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            S3Error::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}
