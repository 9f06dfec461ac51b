//! A client of GitHub Actions' cache service (`--cache-to/--cache-from type=gha`), speaking what
//! BuildKit's vendored client (github.com/tonistiigi/go-actions-cache) speaks: the runtime
//! token's claims (`token.rs`: the scopes it may read and write), protocol v2 (Twirp JSON RPCs
//! of `github.actions.results.api.v1.CacheService`, the bytes PUT to and GET from the Azure Blob
//! SAS URLs the service hands out, through `src/azblob/`) and v1 (the REST API under
//! `_apis/artifactcache/`), in `client.rs`. It knows nothing of images or cache records:
//! `registry/cache_gha.rs` decides the keys and what goes under them.

pub mod client;
pub mod token;

pub use client::Cache;

/// What went wrong with the cache service: each names the request; an answer carries the
/// service's error (a Twirp code such as `unauthenticated`, or v1's `typeKey`) and message.
#[derive(Debug, thiserror::Error)]
pub enum GhaError {
    #[error("{op}: the GitHub cache service answered HTTP {status}: {code}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status { op: String, status: u16, code: String, message: String },
    #[error("{op}: the GitHub cache service: {why}")]
    Transport { op: String, why: String },
    #[error("{0}")]
    Config(String),
    #[error("{op}: {path}: {err}")]
    Io { op: String, path: std::path::PathBuf, err: std::io::Error },
    #[error(transparent)]
    Azure(#[from] crate::azblob::AzError),
}

impl GhaError {
    /// Whether the service said the key is there already (v2's Twirp `already_exists`, v1's
    /// `ArtifactCacheItemAlreadyExistsException`), as go-actions-cache tells `os.ErrExist`.
    pub fn exists(&self) -> bool {
        match self {
            GhaError::Status { code, message, .. } => {
                code == "already_exists"
                    || code.contains("AlreadyExists")
                    || message.to_ascii_lowercase().contains("already exists")
            }
            _ => false,
        }
    }
}
