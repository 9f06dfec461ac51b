//! Directory trees the store makes and publishes by rename: layer snapshots
//! (`snapshots/<diff_id hex>`, the overlay lower dirs of RUN steps) and fetched build contexts
//! (`cache/context/<key>`). [`Store::publish_tree`] makes a finished tree durable before its
//! name appears; it never makes a tree (the layer and fetch modules do).
//!
//! A tree found under its name is used as it is, so its name must never be durable before its
//! files are: after a power loss a snapshot renamed into place with its data still in the page
//! cache would come back with empty or missing files, and every later RUN step would run on
//! it. So the tree is synced whole before the rename, with one `syncfs` of its file system
//! (the temp space is on the store's file system) rather than an fsync of each of its files
//! and directories (thousands for a distribution's base layer); then renamed; then its parent
//! directory fsynced so that the name itself survives. containerd's `image_pull_with_sync_fs`
//! syncs an unpacked snapshot the same way before committing it. A crash before the rename
//! leaves the tree in this process's temp dir, which the next command removes.
//!
//! What this does not cover: trees an older slipway published unsynced (they are trusted as
//! they are), and a file system that ignores syncfs (a tmpfs store loses everything anyway).

use super::{fsync_dir, syncfs, Result, Store, StoreError};
use std::fs;
use std::path::Path;

impl Store {
    /// Makes the finished tree `src` durable and moves it to `dir` (same file system). Returns
    /// false when another process put the tree there first (the same content, by its name):
    /// `src` is then left to the caller's temp dir.
    pub fn publish_tree(&self, src: &Path, dir: &Path) -> Result<bool> {
        // the sync's cost shows in a SLIPWAY_TRACE of a cold build (scripts/bench.sh)
        crate::trace::point("tree:sync");
        syncfs(src)?;
        crate::trace::point("tree:synced");
        crate::failpoint::hit("tree:synced");
        match fs::rename(src, dir) {
            Ok(()) => {}
            Err(_) if dir.is_dir() => return Ok(false),
            Err(e) => return Err(StoreError::Io { op: "rename", path: dir.to_path_buf(), err: e }),
        }
        crate::failpoint::hit("tree:published");
        fsync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree moves whole; a second publisher of the same tree loses the race and keeps its
    /// copy (two stages extracting one layer at once).
    #[test]
    fn a_tree_is_published_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let dir = t.path().join("snapshots/abc");
        let src = s.tempdir("snap").unwrap();
        fs::create_dir_all(src.path.join("d")).unwrap();
        fs::write(src.path.join("d/f"), b"data").unwrap();
        assert!(s.publish_tree(&src.path, &dir).unwrap());
        assert_eq!(fs::read(dir.join("d/f")).unwrap(), b"data");
        assert!(!src.path.exists());

        let again = s.tempdir("snap").unwrap();
        fs::write(again.path.join("g"), b"other").unwrap();
        assert!(!s.publish_tree(&again.path, &dir).unwrap());
        assert!(again.path.join("g").is_file());
        assert!(!dir.join("g").exists());
    }
}
