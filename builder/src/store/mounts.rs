//! Cache mount directories (`RUN --mount=type=cache`): `cache/mounts/<key>/` per cache (the key
//! hashes the id and what a new directory starts from), holding `meta.json` (id, base, last
//! use) and instances `<n>/` with a lock file `<n>.lock` beside each. A step takes instance 0
//! shared (`sharing=shared`) or exclusively, waiting (`locked`), or the first instance no one
//! holds, making a new one when all are taken (`private`); locks are flock(2), so they hold
//! between two slipway processes on one store and vanish with a killed one. A new instance is
//! filled in a temp name and renamed, so a half-made cache is never used. Never part of a
//! layer or a cache key; `prune` drops them (under the store's gc lock, when no build runs).

use super::{io_err, Result, Store, StoreError};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const DIR: &str = "cache/mounts";

/// How a step shares a cache (BuildKit's `sharing=`).
pub use crate::runmount::Sharing;

/// What a cache is: its id and what a new directory starts from (empty; a mode and owner; a
/// stage's files). Caches with the same id and another base are other caches, as in BuildKit,
/// whose cache mount key is the id and the mount's base ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub base: String,
    /// Last time a step took it (seconds since the epoch).
    #[serde(default)]
    pub used: u64,
}

impl Meta {
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"slipway-cache-mount-v1\0");
        h.update(self.id.as_bytes());
        h.update([0]);
        h.update(self.base.as_bytes());
        hex::encode(h.finalize())
    }
}

/// A cache directory taken by a step; its lock goes when this is dropped.
pub struct Taken {
    /// The directory the step mounts (the instance's `data`).
    pub data: PathBuf,
    pub instance: usize,
    pub key: String,
    _lock: Flock<File>,
}

/// One cache directory of the store, for `prune` and the cache export.
#[derive(Debug, Clone)]
pub struct Info {
    pub key: String,
    pub meta: Meta,
    pub instances: Vec<usize>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn open_lock(p: &Path) -> Result<File> {
    OpenOptions::new().create(true).truncate(false).write(true).open(p).map_err(io_err("open", p))
}

fn lock(f: File, how: FlockArg, p: &Path) -> Result<std::result::Result<Flock<File>, File>> {
    match Flock::lock(f, how) {
        Ok(l) => Ok(Ok(l)),
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => Ok(Err(f)),
        Err((_, e)) => Err(StoreError::Io { op: "lock", path: p.to_path_buf(), err: io::Error::from(e) }),
    }
}

impl Store {
    fn mount_dir(&self, key: &str) -> PathBuf {
        self.root.join(DIR).join(key)
    }

    /// Takes an instance of the cache `meta` as `sharing` says, making it with `init` (given
    /// the new, empty data dir) when it does not exist yet.
    pub fn take_cache_mount(
        &self,
        meta: &Meta,
        sharing: Sharing,
        init: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> Result<Taken> {
        let key = meta.key();
        let dir = self.mount_dir(&key);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let (instance, l) = match sharing {
            Sharing::Shared | Sharing::Locked => {
                let how = if sharing == Sharing::Shared { FlockArg::LockShared } else { FlockArg::LockExclusive };
                let lp = dir.join("0.lock");
                let l = lock(open_lock(&lp)?, how, &lp)?.map_err(|_| StoreError::Io {
                    op: "lock",
                    path: lp.clone(),
                    err: io::Error::other("would block"),
                })?;
                (0, l)
            }
            Sharing::Private => {
                let mut n = 0;
                loop {
                    let lp = dir.join(format!("{n}.lock"));
                    let exists = dir.join(n.to_string()).is_dir();
                    let how = if exists { FlockArg::LockExclusiveNonblock } else { FlockArg::LockExclusive };
                    match lock(open_lock(&lp)?, how, &lp)? {
                        Ok(l) => break (n, l),
                        Err(_) => n += 1,
                    }
                }
            }
        };
        let data_parent = dir.join(instance.to_string());
        if !data_parent.is_dir() {
            // made once, under a lock of its own (two shared takers may both find it missing)
            let cp = dir.join("create.lock");
            let _c = lock(open_lock(&cp)?, FlockArg::LockExclusive, &cp)?;
            if !data_parent.is_dir() {
                let tmp = dir.join(format!(".new-{}-{instance}", std::process::id()));
                let _ = fs::remove_dir_all(&tmp);
                fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
                let data = tmp.join("data");
                fs::create_dir(&data).map_err(io_err("create", &data))?;
                if let Err(e) = init(&data) {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(StoreError::Io { op: "fill cache mount", path: data, err: e });
                }
                fs::rename(&tmp, &data_parent).map_err(io_err("rename", &data_parent))?;
            }
        }
        let m = Meta { used: now(), ..meta.clone() };
        self.write_file(&dir.join("meta.json"), &serde_json::to_vec(&m).unwrap_or_default())?;
        Ok(Taken { data: data_parent.join("data"), instance, key, _lock: l })
    }

    /// Every cache directory of the store.
    pub fn cache_mounts(&self) -> Vec<Info> {
        let Ok(rd) = fs::read_dir(self.root.join(DIR)) else { return Vec::new() };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let key = e.file_name().to_string_lossy().to_string();
            let Ok(data) = fs::read(e.path().join("meta.json")) else { continue };
            let Ok(meta) = serde_json::from_slice::<Meta>(&data) else { continue };
            let mut instances: Vec<usize> = fs::read_dir(e.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|i| i.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect();
            instances.sort();
            out.push(Info { key, meta, instances });
        }
        out
    }

    /// The data dir of an instance.
    pub fn cache_mount_data(&self, key: &str, instance: usize) -> PathBuf {
        self.mount_dir(key).join(instance.to_string()).join("data")
    }

    /// Removes a cache directory (all its instances). The caller holds the gc lock.
    pub fn remove_cache_mount(&self, key: &str) -> Result<()> {
        let d = self.mount_dir(key);
        fs::remove_dir_all(&d).map_err(io_err("remove", &d))
    }

    /// Brings a cache directory in from outside (`--cache-from`): `fill` writes the new data
    /// dir. Nothing happens when the store already has the cache.
    pub fn import_cache_mount(&self, meta: &Meta, fill: &mut dyn FnMut(&Path) -> io::Result<()>) -> Result<bool> {
        if self.mount_dir(&meta.key()).join("0").is_dir() {
            return Ok(false);
        }
        let t = self.take_cache_mount(meta, Sharing::Locked, fill)?;
        drop(t);
        Ok(true)
    }
}

/// Bytes under `dir` (regular files' sizes), for `prune --keep-storage`.
pub fn disk_usage(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str) -> Meta {
        Meta { id: id.into(), base: String::new(), used: 0 }
    }

    #[test]
    fn shared_persists_and_private_splits() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let mut init = |d: &Path| fs::write(d.join("seed"), "x");
        let a = s.take_cache_mount(&meta("pip"), Sharing::Shared, &mut init).unwrap();
        fs::write(a.data.join("f"), "1").unwrap();
        // a second shared taker gets the same directory at the same time
        let b = s.take_cache_mount(&meta("pip"), Sharing::Shared, &mut |_| Ok(())).unwrap();
        assert_eq!(a.data, b.data);
        assert!(b.data.join("f").exists());
        drop((a, b));
        // private: instance 0 is free, so it is taken; while held, the next private gets 1
        let p0 = s.take_cache_mount(&meta("pip"), Sharing::Private, &mut |_| Ok(())).unwrap();
        let p1 = s.take_cache_mount(&meta("pip"), Sharing::Private, &mut |_| Ok(())).unwrap();
        assert_eq!((p0.instance, p1.instance), (0, 1));
        assert!(p0.data.join("f").exists() && !p1.data.join("f").exists());
        drop((p0, p1));
        // another id or base is another cache
        let o = s.take_cache_mount(&Meta { base: "uid=1".into(), ..meta("pip") }, Sharing::Shared, &mut |_| Ok(()));
        assert!(!o.unwrap().data.join("f").exists());
        let infos = s.cache_mounts();
        assert_eq!(infos.len(), 2);
        let pip = infos.iter().find(|i| i.meta.base.is_empty()).unwrap();
        assert_eq!(pip.instances, [0, 1]);
        assert!(pip.meta.used > 0);
        assert_eq!(disk_usage(&s.cache_mount_data(&pip.key, 0)), 2, "seed and f");
        s.remove_cache_mount(&pip.key).unwrap();
        assert_eq!(s.cache_mounts().len(), 1);
    }
}
