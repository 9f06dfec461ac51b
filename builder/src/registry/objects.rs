//! What the cache types kept in an object store (`s3`, `azblob`) share: bringing a blob named
//! by its key into the store, checked against its digest.

use super::error::RegistryError;
use crate::store::image::Descriptor;
use crate::store::ingest::Opened;
use crate::store::Store;
use std::io::Read;

/// A body being read and the HTTP status it came with (200 whole, 206 from an offset).
pub type Download = (Box<dyn Read + Send>, u16);

/// An object store that holds a build cache: an S3 bucket, an Azure Blob container.
pub trait Objects: Sync {
    /// How messages name the store ("s3 bucket B").
    fn origin(&self) -> String;
    /// What a missing object is in the store's words ("no such key (NoSuchKey)").
    fn missing(&self) -> &'static str;
    fn url(&self, key: &str) -> String;
    /// GET from `offset`; None when there is no such object.
    fn get(&self, key: &str, offset: u64) -> Result<Option<Download>, RegistryError>;
    /// GET of a small object (at most `limit` bytes); None when there is no such object.
    fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, RegistryError>;
}

/// Brings the blob `d` (size known), stored at `key`, into the store, verified against its
/// digest; a partial download left by an interrupted run goes on from where it stopped.
pub fn fetch(o: &dyn Objects, key: &str, d: &Descriptor, store: &Store) -> Result<(), RegistryError> {
    if store.has_blob(&d.digest) {
        return Ok(());
    }
    let mut w = match store.ingest(&d.digest)? {
        Opened::Present => return Ok(()),
        Opened::Writing(w) => w,
    };
    if w.offset() >= d.size {
        w.reset()?;
    }
    let bad = |why: String| RegistryError::Digest {
        registry: o.origin(),
        repository: key.to_string(),
        what: "blob",
        digest: d.digest.clone(),
        why,
    };
    let Some((body, status)) = o.get(key, w.offset())? else {
        return Err(bad(o.missing().to_string()));
    };
    if status == 200 && w.offset() > 0 {
        w.reset()?; // sent whole
    }
    let limit = d.size - w.offset();
    let mut r = body.take(limit + 1);
    if let Err(e) = std::io::copy(&mut r, &mut *w) {
        let _ = std::io::Write::flush(&mut *w); // keep what arrived for the next run
        let op = format!("GET {}", o.url(key));
        return Err(RegistryError::Transport { registry: o.origin(), op, why: e.to_string() });
    }
    w.commit(d.size).map_err(bad)
}

/// A blob whose size the cache does not say (a step's image config), stored at `key`: read
/// whole, at most 16 MiB, checked against its digest.
pub fn fetch_small(o: &dyn Objects, key: &str, digest: &str, store: &Store) -> Result<(), RegistryError> {
    let bytes = o.get_small(key, 16 << 20)?.ok_or_else(|| RegistryError::Invalid {
        registry: o.origin(),
        what: format!("blob {}", o.url(key)),
        why: o.missing().into(),
    })?;
    if crate::store::image::digest_of(&bytes) != digest {
        return Err(RegistryError::Digest {
            registry: o.origin(),
            repository: key.to_string(),
            what: "config",
            digest: digest.into(),
            why: "digest mismatch".into(),
        });
    }
    store.put_blob(&bytes)?;
    Ok(())
}

/// A cache step's blobs: its config (size unknown) unless the store has it, then the others
/// (`rest`), several at a time; `key` names a digest's object.
pub fn fetch_step(
    o: &dyn Objects,
    key: &(dyn Fn(&str) -> String + Sync),
    config: &str,
    rest: &[Descriptor],
    store: &Store,
) -> Result<(), RegistryError> {
    if !store.has_blob(config) {
        fetch_small(o, &key(config), config, store)?;
    }
    super::blob::parallel(rest, super::blob::PARALLEL, |d| fetch(o, &key(&d.digest), d, store))
}
