//! The OCI distribution (registry v2 API) client: references, auth (anonymous, basic,
//! bearer tokens; docker's credential store), TLS trust, manifests and indexes, and blob
//! transfer into and out of the store. It knows nothing of Dockerfiles.
//!
//! Why not the `oci-client` crate: it is async (tokio + reqwest) where slipway is a
//! synchronous program with no runtime; its `push_blob` takes the whole blob as `&[u8]` and
//! `pull` returns layers in memory (slipway streams layers from and to files, hashing as they
//! go); it reads neither docker's config.json nor credential helpers, nor certs.d client
//! certificates. The protocol itself is a handful of HTTP requests, so it is spoken here over
//! `ureq` (synchronous, rustls) with one thread per concurrent blob.

pub mod auth;
pub mod base;
pub mod blob;
pub mod cache;
pub mod cache_azblob;
pub mod cache_gha;
pub mod cache_s3;
pub mod cli;
pub mod client;
pub mod error;
pub mod manifest;
pub mod objects;
pub mod pull;
pub mod push;
pub mod reference;
pub mod tls;

pub use client::{Client, Options};
pub use error::RegistryError;
pub use manifest::Platform;
pub use reference::Reference;
