//! The content store: an OCI image layout under `--root` (blobs/sha256, index.json naming
//! images), the build cache, extracted layer snapshots and a private temp area.
//! It never interprets Dockerfiles.
//!
//! # Crash safety with few syncs
//! What a crash (SIGKILL, or a power loss that drops every write not yet synced) may leave is
//! bounded by two rules:
//! 1. A file under `blobs/sha256/` is whole and durable. A new blob is first written, without
//!    fsync, into this process's staging directory (`tmp/txn-PID-N/`, see [`Staged`]); the
//!    process reads it there. [`Store::commit`] fsyncs every staged blob (from several threads
//!    at once, so that the file system folds them into one or two journal commits, as jbd2
//!    does for concurrent fsyncs), only then links each under its name in `blobs/sha256/`, and
//!    fsyncs that directory. So a name in `blobs/` is never durable before its bytes are, and
//!    "the blob exists" stays a safe reason to skip writing it again (ostree's staging
//!    directory and git's batched fsync follow the same order; containerd fsyncs each blob
//!    before its rename, and commits its metadata in one bolt transaction).
//! 2. index.json names only blobs that are in `blobs/`: it is rewritten (temp, fsync, rename,
//!    fsync of the directory) only after a [`Store::commit`] of everything this process staged,
//!    under an exclusive lock. A command that returns has its names on disk.
//!
//! 3. A tree under `snapshots/` or `cache/context/` is whole and durable: it is made in the temp
//!    area, synced with one syncfs, renamed into place, and its parent fsynced (tree.rs).
//!
//! Everything else (build cache entries, stat caches, records) is written as temp + rename
//! without fsync: after a power loss such a file is the old one, the new one, or an empty or
//! torn one, which its reader takes for a miss (it fails to parse); a cache entry that names a
//! blob not in `blobs/` (still staged when the process died) is a miss as well, as its readers
//! check the blobs. So one build costs one fsync per blob, issued together, one of
//! `blobs/sha256`, and two for index.json, instead of two per file written (134 for a cold
//! build of spec-fixtures' metadata case, 97% of its system-call time), and one syncfs (with
//! two fsyncs) per layer snapshot it extracts.
//! Temp and staging debris of dead processes is removed by the next command ([`Store::recover`]).

pub mod image;
pub mod ingest;
pub mod mounts;
pub mod tree;

use image::{Descriptor, ImageConfig, Index, Layer, Manifest};
use nix::fcntl::{Flock, FlockArg};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {err}")]
    Io { op: &'static str, path: PathBuf, err: io::Error },
    #[error("{path}: invalid JSON: {err}")]
    Json { path: PathBuf, err: serde_json::Error },
    #[error("blob {0}: digest mismatch")]
    Digest(String),
    #[error("No such image: {0}")]
    NoImage(String),
    #[error("invalid reference format: {0:?}")]
    BadRef(String),
    #[error("{0}: more than one image ID starts with it; give more of the ID")]
    Ambiguous(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unpack into {0}: it already holds a bundle (rootfs or config.json); unpack into a new or empty directory, or remove that one first")]
    BundleExists(PathBuf),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |err| StoreError::Io { op, path: path.to_path_buf(), err }
}

/// The hex part of a `sha256:` digest.
fn hexof(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Normalises `name[:tag]` to `name:tag` (a bare name means `:latest`).
pub fn normalize_ref(r: &str) -> Result<String> {
    if r.is_empty() || r.contains(char::is_whitespace) || r.starts_with(['-', ':', '/']) {
        return Err(StoreError::BadRef(r.into()));
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    let full = if last.contains(':') || r.contains('@') { r.to_string() } else { format!("{r}:latest") };
    if full.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(StoreError::BadRef(r.into()));
    }
    Ok(full)
}

/// An image as the store holds it.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: String,
    pub manifest: Manifest,
    pub config_digest: String,
    pub config: ImageConfig,
}

impl Image {
    /// Docker's image ID: the config digest.
    pub fn id(&self) -> &str {
        &self.config_digest
    }

    /// The image's layers, each with the diff ID its config records for it.
    pub fn layers(&self) -> Vec<Layer> {
        self.manifest
            .layers
            .iter()
            .zip(self.config.rootfs.diff_ids.iter())
            .map(|(d, diff)| Layer {
                digest: d.digest.clone(),
                size: d.size,
                diff_id: diff.clone(),
                media_type: d.media_type.clone(),
            })
            .collect()
    }
}

/// What an ID lookup reads of a build cache entry (`cache/steps/KEY.json`, written by the
/// executor as `cache::Entry`): the state it restores.
#[derive(serde::Deserialize)]
struct CachedStep {
    config: String,
    layers: Vec<Layer>,
}

/// The store at a root directory.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    /// Blobs written by this process and not yet committed (shared by every clone).
    staged: Arc<Mutex<Staged>>,
}

/// The blobs this process wrote since its last [`Store::commit`]: files in its own staging
/// directory under `tmp/`, which no other process reads and the next command removes if this
/// one dies. Dropping the last clone of the store commits what is left (a failed build's
/// finished steps stay cached, as they did when each blob was synced at once) and removes the
/// directory.
#[derive(Debug)]
struct Staged {
    root: PathBuf,
    /// `tmp/txn-PID-N`, made on first use.
    dir: Option<PathBuf>,
    /// hex digest -> staged file, not yet in `blobs/`. Once linked there, a staged file stays
    /// in the directory (whoever got its path may still read it) until the directory goes.
    files: std::collections::BTreeMap<String, PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.files.is_empty() {
            let _ = commit_staged(self);
        }
        if let Some(d) = self.dir.take() {
            let _ = fs::remove_dir_all(d);
        }
    }
}

/// fsyncs the files, from up to 16 threads: fsync waits on the disk, not the CPU, and
/// concurrent fsyncs share the journal commits of ext4 (jbd2) and xfs, where one after another
/// each waits for its own.
pub(crate) fn fsync_files(paths: &[&Path]) -> Result<()> {
    let one = |p: &Path| -> Result<()> {
        let f = File::open(p).map_err(io_err("open", p))?;
        f.sync_all().map_err(io_err("fsync", p))
    };
    if paths.len() <= 1 {
        return paths.iter().try_for_each(|p| one(p));
    }
    let per = paths.len().div_ceil(16);
    std::thread::scope(|s| {
        let workers: Vec<_> = paths.chunks(per).map(|c| s.spawn(move || c.iter().try_for_each(|p| one(p)))).collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(StoreError::Io {
                    op: "fsync",
                    path: PathBuf::new(),
                    err: io::Error::other("fsync thread panicked"),
                })
            })
        })
    })
}

/// The commit of [`Store::commit`]: fsync every staged file, then link each into
/// `blobs/sha256/` and fsync that directory. Only after this returns may anything durable name
/// those blobs.
fn commit_staged(s: &mut Staged) -> Result<()> {
    if s.files.is_empty() {
        return Ok(());
    }
    let paths: Vec<&Path> = s.files.values().map(PathBuf::as_path).collect();
    fsync_files(&paths)?;
    let blobs = s.root.join("blobs/sha256");
    for (hex, p) in &s.files {
        let dst = blobs.join(hex);
        match fs::hard_link(p, &dst) {
            Ok(()) => {}
            // another process committed the same bytes: its copy is durable (rule 1)
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::Io { op: "link", path: dst, err: e }),
        }
    }
    fsync_dir(&blobs)?;
    s.files.clear();
    Ok(())
}

/// Holds the store's exclusive lock until dropped.
pub struct LockGuard {
    _lock: Flock<File>,
}

/// A temp directory in the store that is removed when dropped: by a background thread
/// ([`remove_later`]), so that a step does not wait for the removal of its scratch dirs.
pub struct TempDir {
    pub path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        remove_later(std::mem::take(&mut self.path));
    }
}

/// The thread that removes dropped temp dirs, and the way to hand it one.
static REMOVER: Mutex<Option<(std::sync::mpsc::Sender<PathBuf>, std::thread::JoinHandle<()>)>> = Mutex::new(None);

/// Removes `dir` (a temp dir of this process, nothing mounted below it) on a background
/// thread, started on first use. Removing a step's scratch dirs (a rootfs's merged, upper,
/// work and lower links, a bundle) is a few milliseconds per directory on a file system that
/// discards freed blocks at once (ext4 `-o discard` without a journal: a synchronous discard
/// per freed block) and mostly waiting for the disk, so the next step runs meanwhile, as
/// containerd removes snapshots in its garbage collector rather than on the way. The process
/// waits for what is left in [`finish_removals`] before it exits; a killed process leaves its
/// temp dirs to the next command's [`Store::recover`], as before. Removed at once when the
/// thread cannot start or has been finished.
pub fn remove_later(dir: PathBuf) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let mut r = REMOVER.lock().unwrap_or_else(|e| e.into_inner());
    if r.is_none() {
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let spawned = std::thread::Builder::new().name("tmp-remover".into()).spawn(move || {
            for d in rx {
                let _ = fs::remove_dir_all(&d);
            }
        });
        if let Ok(h) = spawned {
            *r = Some((tx, h));
        }
    }
    let dir = match r.as_ref() {
        Some((tx, _)) => match tx.send(dir) {
            Ok(()) => return,
            Err(e) => e.0,
        },
        None => dir,
    };
    drop(r);
    let _ = fs::remove_dir_all(&dir);
}

/// Waits until every temp dir handed to [`remove_later`] is gone. The CLI calls it before it
/// exits; a later drop starts a new thread.
pub fn finish_removals() {
    let taken = REMOVER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some((tx, h)) = taken {
        drop(tx);
        let _ = h.join();
    }
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

/// Syncs the whole file system holding `path` (syncfs(2)): every file and directory written
/// there, in one call; cheaper than an fsync of each of a tree's thousands of files, which
/// each force a journal commit. Since Linux 5.8 it reports the file system's writeback errors.
pub(crate) fn syncfs(path: &Path) -> Result<()> {
    let f = File::open(path).map_err(io_err("open", path))?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)).map_err(|e| StoreError::Io {
        op: "syncfs",
        path: path.to_path_buf(),
        err: e.into(),
    })
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        // absolute: its paths go into overlay mount options and runtime bundles, which are
        // read relative to other directories than ours
        let root = std::path::absolute(root).map_err(io_err("resolve", root))?;
        let root = root.as_path();
        let staged = Staged { root: root.to_path_buf(), dir: None, files: Default::default() };
        let s = Store { root: root.to_path_buf(), staged: Arc::new(Mutex::new(staged)) };
        for d in ["blobs/sha256", "tmp", "cache/steps", "cache/parents", "cache/stat", "cache/images", "snapshots"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            s.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let idx = Index { schema_version: 2, media_type: image::MT_INDEX.into(), ..Default::default() };
            s.write_atomic(&index, &image::to_json(&idx))?;
        }
        Ok(s)
    }

    /// Takes the exclusive store lock (index.json updates, pruning).
    pub fn lock(&self) -> Result<LockGuard> {
        self.flock("lock", FlockArg::LockExclusive)
    }

    /// Held (shared) by every build for its whole run; `prune` takes it exclusively, so it
    /// never deletes blobs or snapshots a running build may still use.
    pub fn use_lock(&self) -> Result<LockGuard> {
        self.flock("lock-use", FlockArg::LockShared)
    }

    /// The exclusive side of `use_lock`.
    pub fn gc_lock(&self) -> Result<LockGuard> {
        self.flock("lock-use", FlockArg::LockExclusive)
    }

    fn flock(&self, name: &str, how: FlockArg) -> Result<LockGuard> {
        let p = self.root.join(name);
        let f = OpenOptions::new().create(true).truncate(false).write(true).open(&p).map_err(io_err("open", &p))?;
        let lock = Flock::lock(f, how).map_err(|(_, e)| StoreError::Io {
            op: "lock",
            path: p.clone(),
            err: io::Error::from(e),
        })?;
        Ok(LockGuard { _lock: lock })
    }

    /// Cleans what a killed process left: its temp dirs (unmounting first) and half-written
    /// files. Only debris of dead processes is touched, so concurrent commands are safe.
    pub fn recover(&self) {
        self.clean_stale_tmp();
        self.clean_stale_atomic();
    }

    /// The temp entries of processes that are gone.
    pub fn stale_tmp(&self) -> Vec<PathBuf> {
        let Ok(rd) = fs::read_dir(self.root.join("tmp")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let pid: Option<i32> = name.split('-').nth(1).and_then(|p| p.parse().ok());
                let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                (!alive && name != "runtime").then(|| e.path())
            })
            .collect()
    }

    fn clean_stale_tmp(&self) {
        for p in self.stale_tmp() {
            unmount_under(&p);
            let _ = fs::remove_dir_all(&p);
            let _ = fs::remove_file(&p);
        }
    }

    /// Removes `.tmp-<pid>-*` files that `write_atomic` of a dead process left behind.
    fn clean_stale_atomic(&self) {
        for d in ["", "blobs/sha256", "cache/steps", "cache/parents", "cache/stat", "cache/images"] {
            let Ok(rd) = fs::read_dir(self.root.join(d)) else { continue };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some(rest) = name.strip_prefix(".tmp-") else { continue };
                let pid: Option<i32> = rest.split('-').next().and_then(|p| p.parse().ok());
                if !pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// A fresh temp dir owned by this process.
    pub fn tempdir(&self, what: &str) -> Result<TempDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let p = self.root.join("tmp").join(format!("{what}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&p).map_err(io_err("create", &p))?;
        Ok(TempDir { path: p })
    }

    /// Writes a file durably and atomically: temp in the same dir, fsync, rename, fsync dir.
    /// For what must survive a power loss as it is (index.json, an exported layout).
    pub fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.write_temp_beside(path, data, true)?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        fsync_dir(path.parent().unwrap_or(Path::new(".")))
    }

    /// Writes a file atomically (temp in the same dir, rename) without fsync: after a power
    /// loss it may be the old file, or empty or torn. Only for files whose readers take a
    /// file that does not parse for a miss (cache entries, stat caches, records).
    pub fn write_file(&self, path: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.write_temp_beside(path, data, false)?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    }

    /// `data` in a new temp file beside `path` (`.tmp-PID-N-name`, which the next command
    /// removes if this process dies), fsynced if `sync`.
    fn write_temp_beside(&self, path: &Path, data: &[u8], sync: bool) -> Result<PathBuf> {
        use std::sync::atomic::{AtomicU64, Ordering};
        // per write, not only per process: stages built at once may write the same file
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".tmp-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ));
        let res = File::create(&tmp).map_err(io_err("create", &tmp)).and_then(|mut f| {
            f.write_all(data).map_err(io_err("write", &tmp))?;
            if sync {
                f.sync_all().map_err(io_err("fsync", &tmp))?;
            }
            Ok(())
        });
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }

    fn staged(&self) -> MutexGuard<'_, Staged> {
        // a thread that panicked while holding it left the map as it was: still usable
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the blob is: this process's staged copy if it has one, else its place in `blobs/`.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = hexof(digest);
        if let Some(p) = self.staged().files.get(hex) {
            return p.clone();
        }
        self.root.join("blobs/sha256").join(hex)
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).exists()
    }

    /// Stores bytes as a blob (staged until [`Store::commit`]); returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> Result<String> {
        let d = image::digest_of(data);
        if self.has_blob(&d) {
            return Ok(d);
        }
        let dir = self.staging_dir()?;
        let tmp = self.write_temp_beside(&dir.join(hexof(&d)), data, false)?;
        self.stage(&tmp, &d)?;
        Ok(d)
    }

    /// Moves a fully written temp file into the store (staged until [`Store::commit`]) after
    /// checking its digest.
    pub fn commit_blob_file(&self, tmp: &Path, digest: &str) -> Result<()> {
        let got = hash_file(tmp)?;
        if got != digest {
            return Err(StoreError::Digest(digest.into()));
        }
        self.stage(tmp, digest)
    }

    /// This process's staging directory, made on first use.
    fn staging_dir(&self) -> Result<PathBuf> {
        let mut s = self.staged();
        if let Some(d) = &s.dir {
            return Ok(d.clone());
        }
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let d = self.root.join("tmp").join(format!("txn-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        fs::create_dir_all(&d).map_err(io_err("create", &d))?;
        s.dir = Some(d.clone());
        Ok(d)
    }

    /// Moves the complete file `src` (whose digest the caller checked) into the staging
    /// directory as blob `digest`. Not synced: see [`Store::commit`].
    pub(crate) fn stage(&self, src: &Path, digest: &str) -> Result<()> {
        let hex = hexof(digest).to_string();
        let dir = self.staging_dir()?;
        let mut s = self.staged();
        if s.files.contains_key(&hex) || self.root.join("blobs/sha256").join(&hex).exists() {
            // written at once by another stage of this build, or committed meanwhile
            let _ = fs::remove_file(src);
            return Ok(());
        }
        let dst = dir.join(&hex);
        fs::rename(src, &dst).map_err(io_err("rename", &dst))?;
        s.files.insert(hex, dst);
        Ok(())
    }

    /// Makes every blob this process staged durable and visible to others under
    /// `blobs/sha256/` (rule 1 of the module doc). Runs before index.json is written; a build
    /// runs it once at its end. Cheap when nothing is staged.
    pub fn commit(&self) -> Result<()> {
        let mut s = self.staged();
        if s.files.is_empty() {
            return Ok(());
        }
        crate::failpoint::hit("store:blobs-staged");
        commit_staged(&mut s)?;
        crate::failpoint::hit("store:blobs-committed");
        Ok(())
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).map_err(io_err("read", &p))
    }

    pub fn read_json<T: DeserializeOwned>(&self, digest: &str) -> Result<T> {
        let p = self.blob_path(digest);
        let data = fs::read(&p).map_err(io_err("read", &p))?;
        serde_json::from_slice(&data).map_err(|err| StoreError::Json { path: p, err })
    }

    pub fn put_json<T: Serialize>(&self, v: &T) -> Result<(String, u64)> {
        let data = image::to_json(v);
        let d = self.put_blob(&data)?;
        Ok((d, data.len() as u64))
    }

    pub fn index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        let data = fs::read(&p).map_err(io_err("read", &p))?;
        serde_json::from_slice(&data).map_err(|err| StoreError::Json { path: p, err })
    }

    /// Rewrites index.json (the caller holds [`Store::lock`]): after a [`Store::commit`], so
    /// that it names only blobs that are in `blobs/` (rule 2 of the module doc).
    fn write_index(&self, idx: &Index) -> Result<()> {
        self.commit()?;
        self.write_atomic(&self.root.join("index.json"), &image::to_json(idx))
    }

    /// Names (or renames) `name` to the manifest `desc` (its annotations kept: BuildKit's
    /// descriptor annotations). Caller holds no lock; this takes it.
    pub fn set_ref(&self, name: &str, mut desc: Descriptor) -> Result<()> {
        let _g = self.lock()?;
        let mut idx = self.index()?;
        desc.annotations.insert(image::ANN_REF_NAME.into(), name.to_string());
        let named = |m: &Descriptor| m.annotations.get(image::ANN_REF_NAME).map(String::as_str) == Some(name);
        if idx.manifests.iter().any(|m| named(m) && *m == desc) {
            return Ok(()); // already so: a no-op rebuild writes (and fsyncs) nothing
        }
        idx.manifests.retain(|m| !named(m));
        idx.manifests.push(desc);
        idx.manifests
            .sort_by(|a, b| a.annotations.get(image::ANN_REF_NAME).cmp(&b.annotations.get(image::ANN_REF_NAME)));
        self.write_index(&idx)
    }

    /// Removes a name; returns whether it existed.
    pub fn remove_ref(&self, name: &str) -> Result<bool> {
        let _g = self.lock()?;
        let mut idx = self.index()?;
        let before = idx.manifests.len();
        idx.manifests.retain(|m| m.annotations.get(image::ANN_REF_NAME).map(String::as_str) != Some(name));
        let removed = idx.manifests.len() != before;
        if removed {
            self.write_index(&idx)?;
        }
        Ok(removed)
    }

    /// All `(name, manifest descriptor)` pairs.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|m| {
                let n = m.annotations.get(image::ANN_REF_NAME)?.clone();
                Some((n, m))
            })
            .collect())
    }

    /// Loads an image by manifest digest. An index (a multi-platform build's name) gives its
    /// image for this machine (linux/GOARCH), else its first: what `images`, `inspect`, `FROM`
    /// and the other single-image commands see of it.
    pub fn image_by_manifest(&self, manifest_digest: &str) -> Result<Image> {
        let v: serde_json::Value = self.read_json(manifest_digest)?;
        let json_err = |err| StoreError::Json { path: self.blob_path(manifest_digest), err };
        if v.get("manifests").is_some() {
            let idx: Index = serde_json::from_value(v).map_err(json_err)?;
            let host = |d: &&Descriptor| {
                d.platform.as_ref().is_some_and(|p| p["os"] == "linux" && p["architecture"] == image::go_arch())
            };
            // an attestation manifest (platform unknown/unknown) is no image
            let runnable = || idx.manifests.iter().filter(|d| !crate::attest::is_attestation(d));
            let d = runnable().find(host).or(runnable().next()).ok_or_else(|| StoreError::Io {
                op: "read index",
                path: self.blob_path(manifest_digest),
                err: io::Error::other("it lists no manifest"),
            })?;
            if d.media_type != image::MT_MANIFEST && d.media_type != image::MT_DOCKER_MANIFEST {
                return Err(StoreError::Io {
                    op: "read index",
                    path: self.blob_path(manifest_digest),
                    err: io::Error::other(format!(
                        "its entry {} is a {}, not an image manifest",
                        d.digest, d.media_type
                    )),
                });
            }
            return self.image_by_manifest(&d.digest.clone());
        }
        let manifest: Manifest = serde_json::from_value(v).map_err(json_err)?;
        let config: ImageConfig = self.read_json(&manifest.config.digest)?;
        Ok(Image {
            manifest_digest: manifest_digest.to_string(),
            config_digest: manifest.config.digest.clone(),
            manifest,
            config,
        })
    }

    /// Finds an image as docker does: by name (a bare name means `:latest`), else by ID (the
    /// config digest, `sha256:` optional) or a unique prefix of at least 4 hex digits. IDs are
    /// looked up among every image of index.json, named or not (an untagged build), then among
    /// the build cache's steps: the ` ---> ID` a build prints for each step is an image too, as
    /// in docker's classic builder (its manifest blob is written on first use).
    pub fn find_image(&self, r: &str) -> Result<Option<Image>> {
        let idx = self.index()?;
        if let Ok(name) = normalize_ref(r) {
            let named = idx.manifests.iter().find(|m| m.annotations.get(image::ANN_REF_NAME) == Some(&name));
            if let Some(d) = named {
                return self.image_by_manifest(&d.digest).map(Some);
            }
        }
        let hex = r.strip_prefix("sha256:").unwrap_or(r);
        if hex.len() < 4 || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let hex = hex.to_ascii_lowercase();
        let mut found: Vec<Image> = Vec::new();
        for d in &idx.manifests {
            // a manifest list (a pulled multi-platform name) has no config of its own
            if d.media_type != image::MT_MANIFEST && d.media_type != image::MT_DOCKER_MANIFEST {
                continue;
            }
            let img = self.image_by_manifest(&d.digest)?;
            if hexof(&img.config_digest).starts_with(&hex)
                && !found.iter().any(|f| f.config_digest == img.config_digest)
            {
                found.push(img);
            }
        }
        if found.is_empty() {
            for (config, layers) in self.cached_states()? {
                if hexof(&config).starts_with(&hex) && !found.iter().any(|f| f.config_digest == config) {
                    let cfg: ImageConfig = self.read_json(&config)?;
                    let descs: Vec<Descriptor> = layers.iter().map(Layer::descriptor).collect();
                    let (m, _) = self.put_image(&cfg, &descs)?;
                    found.push(self.image_by_manifest(&m.digest)?);
                }
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(StoreError::Ambiguous(r.to_string())),
        }
    }

    /// The (config digest, layers) of every build cache step whose blobs are all present.
    fn cached_states(&self) -> Result<Vec<(String, Vec<Layer>)>> {
        let steps = self.root.join("cache/steps");
        let mut out = Vec::new();
        for e in fs::read_dir(&steps).map_err(io_err("read dir", &steps))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(hit) = self.read_record::<CachedStep>(&format!("cache/steps/{name}")) else { continue };
            if self.has_blob(&hit.config) && hit.layers.iter().all(|l| self.has_blob(&l.digest)) {
                out.push((hit.config, hit.layers));
            }
        }
        Ok(out)
    }

    /// Lists an image without a name (an untagged build) in index.json, as docker keeps a
    /// dangling image: so its ID works in every command until `rmi` or `prune` removes it.
    pub fn add_unnamed(&self, desc: Descriptor) -> Result<()> {
        let _g = self.lock()?;
        let mut idx = self.index()?;
        if idx.manifests.iter().any(|m| m.digest == desc.digest) {
            return Ok(());
        }
        let mut desc = desc;
        desc.annotations.remove(image::ANN_REF_NAME);
        idx.manifests.push(desc);
        self.write_index(&idx)
    }

    /// Removes the unnamed index entries of a manifest; returns whether there was one.
    pub fn remove_unnamed(&self, manifest_digest: &str) -> Result<bool> {
        let _g = self.lock()?;
        let mut idx = self.index()?;
        let before = idx.manifests.len();
        idx.manifests.retain(|m| m.digest != manifest_digest || m.annotations.contains_key(image::ANN_REF_NAME));
        let removed = idx.manifests.len() != before;
        if removed {
            self.write_index(&idx)?;
        }
        Ok(removed)
    }

    /// Removes every unnamed image from index.json (what `prune` does to dangling images);
    /// returns how many. The caller holds [`Store::lock`].
    pub fn drop_unnamed_locked(&self) -> Result<usize> {
        let mut idx = self.index()?;
        let before = idx.manifests.len();
        idx.manifests.retain(|m| m.annotations.contains_key(image::ANN_REF_NAME));
        let dropped = before - idx.manifests.len();
        if dropped > 0 {
            self.write_index(&idx)?;
        }
        Ok(dropped)
    }

    /// The images of index.json that have no name (untagged builds and loads), by manifest digest.
    pub fn unnamed(&self) -> Result<Vec<Descriptor>> {
        let idx = self.index()?;
        let named: Vec<&str> = idx
            .manifests
            .iter()
            .filter(|m| m.annotations.contains_key(image::ANN_REF_NAME))
            .map(|m| m.digest.as_str())
            .collect();
        Ok(idx
            .manifests
            .iter()
            .filter(|m| !m.annotations.contains_key(image::ANN_REF_NAME) && !named.contains(&m.digest.as_str()))
            .cloned()
            .collect())
    }

    pub fn image(&self, r: &str) -> Result<Image> {
        self.find_image(r)?.ok_or_else(|| StoreError::NoImage(r.to_string()))
    }

    /// Writes the manifest for a config + layers and returns its descriptor.
    pub fn put_image(&self, config: &ImageConfig, layers: &[Descriptor]) -> Result<(Descriptor, String)> {
        self.put_image_bytes(&image::to_json(config), layers)
    }

    /// `put_image` of config bytes as they are (a loaded or pulled config keeps its bytes, so
    /// its image ID); returns the manifest's descriptor and the config digest.
    pub fn put_image_bytes(&self, config: &[u8], layers: &[Descriptor]) -> Result<(Descriptor, String)> {
        let cd = self.put_blob(config)?;
        let m = Manifest {
            schema_version: 2,
            media_type: image::MT_MANIFEST.into(),
            config: Descriptor {
                media_type: image::MT_CONFIG.into(),
                digest: cd.clone(),
                size: config.len() as u64,
                annotations: Default::default(),
                platform: None,
            },
            layers: layers.to_vec(),
            annotations: Default::default(),
        };
        let (md, msize) = self.put_json(&m)?;
        Ok((
            Descriptor {
                media_type: image::MT_MANIFEST.into(),
                digest: md,
                size: msize,
                annotations: Default::default(),
                platform: None,
            },
            cd,
        ))
    }

    /// The index descriptor of an image's manifest (to name it).
    pub fn manifest_descriptor(&self, img: &Image) -> Result<Descriptor> {
        let p = self.blob_path(&img.manifest_digest);
        let size = fs::metadata(&p).map_err(io_err("stat", &p))?.len();
        let media_type = if img.manifest.media_type.is_empty() {
            image::MT_MANIFEST.to_string()
        } else {
            img.manifest.media_type.clone()
        };
        Ok(Descriptor {
            media_type,
            digest: img.manifest_digest.clone(),
            size,
            annotations: Default::default(),
            platform: None,
        })
    }

    /// Whether index.json lists this manifest (named or not): false for an ID found only as a
    /// build cache step.
    pub fn indexed(&self, manifest_digest: &str) -> Result<bool> {
        Ok(self.index()?.manifests.iter().any(|m| m.digest == manifest_digest))
    }

    /// A small JSON record under the store (cache entries, stat caches).
    pub fn read_record<T: DeserializeOwned>(&self, rel: &str) -> Option<T> {
        let data = fs::read(self.root.join(rel)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// `read_record` of a record that may be large (a COPY's cache entry holds a fingerprint
    /// per file: 1 MB for 10,000 files, read on every hit), mapped rather than read into fresh
    /// memory: records are replaced by rename (write_file), never rewritten in place.
    pub fn read_large_record<T: DeserializeOwned>(&self, rel: &str) -> Option<T> {
        let data = crate::sys::Mapped::open(&self.root.join(rel)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    /// Writes a record (temp + rename, not synced: a record lost or torn by a power loss
    /// reads as absent, see the module doc). A record that names blobs is read with a check
    /// that they are there.
    pub fn write_record<T: Serialize>(&self, rel: &str, v: &T) -> Result<()> {
        let p = self.root.join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(io_err("create", d))?;
        }
        self.write_file(&p, &image::to_json(v))
    }
}

/// A writer that hashes (sha256) and counts the bytes it passes on: how a blob's digest and
/// size are known as it is written (a layer made by `layer`, a blob arriving in `ingest`).
pub struct HashWriter<W: Write> {
    pub inner: W,
    pub hash: Sha256,
    /// Bytes written.
    pub n: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> HashWriter<W> {
        HashWriter { inner, hash: Sha256::new(), n: 0 }
    }

    /// `sha256:<hex>` of what was written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hash.clone().finalize()))
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 of a file's bytes.
pub fn hash_file(p: &Path) -> Result<String> {
    Ok(format!("sha256:{}", hex::encode(hash_file_raw(p)?)))
}

/// The raw sha256 of a file's bytes.
pub fn hash_file_raw(p: &Path) -> Result<[u8; 32]> {
    let mut f = File::open(p).map_err(io_err("open", p))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", p))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Lazily unmounts every mount point at or below `dir` (deepest first).
pub fn unmount_under(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let Ok(dir) = dir.canonicalize() else { return };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(&dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_normalise() {
        // a bare name means :latest; registry ports are not tags
        assert_eq!(normalize_ref("busybox").unwrap(), "busybox:latest");
        assert_eq!(normalize_ref("a/b:1").unwrap(), "a/b:1");
        assert_eq!(normalize_ref("localhost:5000/x").unwrap(), "localhost:5000/x:latest");
        assert!(normalize_ref("Upper").is_err());
        assert!(normalize_ref("").is_err());
    }

    /// Rule 1 and 2 of the module doc: a new blob is readable by the process that wrote it at
    /// once, but under `blobs/sha256/` only once committed, and naming an image commits first.
    #[test]
    fn new_blobs_are_staged_until_committed() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let in_blobs = |d: &str| t.path().join("blobs/sha256").join(hexof(d)).is_file();
        let d = s.put_blob(b"staged").unwrap();
        assert!(s.has_blob(&d));
        assert_eq!(s.read_blob(&d).unwrap(), b"staged");
        assert!(!in_blobs(&d), "a blob is in blobs/ before it is synced");
        let path_before = s.blob_path(&d);
        s.commit().unwrap();
        assert!(in_blobs(&d));
        assert_eq!(s.blob_path(&d), t.path().join("blobs/sha256").join(hexof(&d)));
        assert_eq!(fs::read(&path_before).unwrap(), b"staged", "a path handed out before the commit still reads");
        // the same bytes again: nothing staged
        assert_eq!(s.put_blob(b"staged").unwrap(), d);
        assert!(s.staged().files.is_empty());

        let (desc, id) = s.put_image(&ImageConfig::scratch(), &[]).unwrap();
        assert!(!in_blobs(&desc.digest) && !in_blobs(&id));
        s.set_ref("x:1", desc.clone()).unwrap();
        assert!(in_blobs(&desc.digest) && in_blobs(&id), "index.json names a blob not in blobs/");

        // a blob file moved in (a layer, a download) is checked and staged the same way
        let tmp = t.path().join("tmp/layer");
        fs::write(&tmp, b"layer bytes").unwrap();
        assert!(matches!(s.commit_blob_file(&tmp, &image::digest_of(b"other")), Err(StoreError::Digest(_))));
        let ld = image::digest_of(b"layer bytes");
        s.commit_blob_file(&tmp, &ld).unwrap();
        assert!(s.has_blob(&ld) && !in_blobs(&ld));
        // dropping the store commits what is left and removes the staging directory
        drop(s);
        assert!(in_blobs(&ld));
        let left: Vec<_> = fs::read_dir(t.path().join("tmp")).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn blobs_and_refs() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let cfg = ImageConfig::scratch();
        let (desc, id) = s.put_image(&cfg, &[]).unwrap();
        s.set_ref("x:1", desc.clone()).unwrap();
        let img = s.image("x:1").unwrap();
        assert_eq!(img.id(), id);
        assert!(s.find_image("y").unwrap().is_none());
        assert!(s.image(&id[7..19]).is_ok());
        assert!(s.remove_ref("x:1").unwrap());
        assert!(s.find_image("x:1").unwrap().is_none());
    }
}
