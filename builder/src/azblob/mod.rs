//! A small Azure Blob Storage client for the build cache (`--cache-to/--cache-from type=azblob`):
//! a container's properties and creation, a blob's properties, Get Blob, and Put Blob (a block
//! blob streamed from a file with its known length; over 32 MiB in blocks, Put Block and Put
//! Block List, as BuildKit's exporter), authorized with Shared Key (`sharedkey.rs`), an SAS
//! token in the account URL, or OAuth tokens from Microsoft Entra ID got as azidentity's
//! DefaultAzureCredential gets them (`entra.rs`), over the same synchronous ureq + rustls agent
//! as the registry client. It knows nothing of caches or images; `registry/cache_azblob.rs` decides which blobs to write.

pub mod client;
pub mod entra;
pub mod sharedkey;

pub use client::{Container, Credential};

/// What went wrong with an Azure Blob request: each names the container and the operation; an
/// answer carries Azure's error code (`AuthenticationFailed`, `ContainerNotFound`, ...).
#[derive(Debug, thiserror::Error)]
pub enum AzError {
    #[error("{op}: Azure container {container} answered HTTP {status}: {code}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status { container: String, op: String, status: u16, code: String, message: String },
    #[error("{op}: Azure container {container}: {why}")]
    Transport { container: String, op: String, why: String },
    #[error("{0}")]
    Config(String),
    /// No OAuth token for the request (the credential chain's account of each source).
    #[error("{op}: {why}")]
    Credential { op: String, why: String },
    #[error("{op}: {path}: {err}")]
    Io { op: String, path: std::path::PathBuf, err: std::io::Error },
}

impl AzError {
    /// Azure's error code, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            AzError::Status { code, .. } => Some(code),
            _ => None,
        }
    }
}
