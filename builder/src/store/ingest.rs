//! Blobs arriving from outside (a registry): written to `ingest/<hex>.partial`, hashed as the
//! bytes go by, and moved into `blobs/` only when size and digest match. A partial file
//! outlives an interrupted pull so the next one resumes from it; nothing under `ingest/` is a
//! blob any image or build can see. One writer per digest (a lock file beside it).

use super::{io_err, HashWriter, Result, Store, StoreError};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

pub struct Ingest {
    store: Store,
    digest: String,
    path: PathBuf,
    lock_path: PathBuf,
    /// The partial file, hashed and counted as it is written.
    file: HashWriter<io::BufWriter<File>>,
    _lock: Flock<File>,
}

/// What opening an ingest found.
pub enum Opened {
    /// The blob is already in the store (another process finished it).
    Present,
    Writing(Box<Ingest>),
}

impl Store {
    /// Starts (or resumes) writing the blob `digest`.
    pub fn ingest(&self, digest: &str) -> Result<Opened> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        if hex.len() != 64 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::Digest(digest.into()));
        }
        let dir = self.root.join("ingest");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let lock_path = dir.join(format!("{hex}.lock"));
        let lf = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        let lock = Flock::lock(lf, FlockArg::LockExclusive).map_err(|(_, e)| StoreError::Io {
            op: "lock",
            path: lock_path.clone(),
            err: io::Error::from(e),
        })?;
        if self.has_blob(digest) {
            let _ = fs::remove_file(&lock_path);
            return Ok(Opened::Present);
        }
        let path = dir.join(format!("{hex}.partial"));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        // what an earlier run left: hash it again (cheaper than fetching it again)
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io_err("read", &path))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            written += n as u64;
        }
        Ok(Opened::Writing(Box::new(Ingest {
            store: self.clone(),
            digest: digest.into(),
            path,
            lock_path,
            file: HashWriter { inner: io::BufWriter::with_capacity(1 << 20, f), hash, n: written },
            _lock: lock,
        })))
    }
}

impl Ingest {
    /// Bytes already there (where a resumed download starts).
    pub fn offset(&self) -> u64 {
        self.file.n
    }

    /// Drops what is there (the source could not resume).
    pub fn reset(&mut self) -> Result<()> {
        self.file.flush().map_err(io_err("write", &self.path))?;
        let f = self.file.inner.get_mut();
        f.set_len(0).map_err(io_err("truncate", &self.path))?;
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(0)).map_err(io_err("seek", &self.path))?;
        self.file.hash = Sha256::new();
        self.file.n = 0;
        Ok(())
    }

    /// Removes the partial file (its content is known bad).
    pub fn discard(self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(&self.lock_path);
    }

    /// Checks size and digest and moves the blob into the store (staged until the store's
    /// commit, see the store's module doc). A short blob stays for a
    /// resumed run; a wrong one is removed; the error says what came instead.
    pub fn commit(mut self, size: u64) -> std::result::Result<(), String> {
        if self.file.n != size {
            let why = format!("got {} bytes, the manifest says {size}", self.file.n);
            if self.file.n > size {
                self.discard();
            } else {
                let _ = self.file.flush();
            }
            return Err(why);
        }
        let got = self.file.digest();
        if got != self.digest {
            let why = format!("content has digest {got}");
            self.discard();
            return Err(why);
        }
        // staged as every new blob is: synced and named in blobs/ by the store's commit
        let res = self
            .file
            .flush()
            .map_err(io_err("write", &self.path))
            .and_then(|_| self.store.stage(&self.path, &self.digest));
        let _ = fs::remove_file(&self.lock_path);
        res.map_err(|e| e.to_string())
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(d: &[u8]) -> String {
        crate::store::image::digest_of(d)
    }

    #[test]
    fn resume_verify_commit() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let data = b"hello registry blob".to_vec();
        let d = digest(&data);
        // a first run writes half and dies
        let Opened::Writing(mut w) = s.ingest(&d).unwrap() else { panic!() };
        w.write_all(&data[..5]).unwrap();
        w.flush().unwrap();
        drop(w);
        assert!(!s.has_blob(&d));
        // the next resumes at 5
        let Opened::Writing(mut w) = s.ingest(&d).unwrap() else { panic!() };
        assert_eq!(w.offset(), 5);
        w.write_all(&data[5..]).unwrap();
        assert!(w.commit(data.len() as u64).is_ok());
        assert_eq!(s.read_blob(&d).unwrap(), data);
        assert!(matches!(s.ingest(&d).unwrap(), Opened::Present));
        // wrong bytes: refused, nothing left
        let bad = digest(b"other");
        let Opened::Writing(mut w) = s.ingest(&bad).unwrap() else { panic!() };
        w.write_all(b"oth3r").unwrap();
        let why = w.commit(5).unwrap_err();
        assert!(why.contains("digest"), "{why}");
        assert!(!s.has_blob(&bad));
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0, "no partial or lock file left");
    }
}
