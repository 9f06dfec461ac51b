//! Reading the context's directories on every core: each directory is listed and each of its
//! entries lstat'ed relative to it (fstatat on the open directory, no walk of the whole path per
//! file) by whichever thread is free, and subdirectories `.dockerignore` prunes are never read.
//! The caller puts the listings together in walk order as they are read. It only reads.
//!
//! Written here rather than with `ignore`'s WalkParallel: that walker lstat's each entry by its
//! full path (a lookup of every component per file, where a no-op rebuild's floor is one stat per
//! file), yields entries in no fixed order, and filters by gitignore rules, not dockerignore's.

use super::stat::{StatCache, StatEntry};
use super::{fingerprint, join_rel, ContextError, What};
use crate::dockerignore::Matcher;
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

/// One entry of a directory: its context-relative path, its lstat, and whether `.dockerignore`
/// excludes it.
pub struct Listed {
    pub rel: String,
    pub md: Metadata,
    pub excluded: bool,
    /// Its fingerprint, unless that needs the file read (content unknown to the stat cache).
    pub fingerprint: Option<String>,
}

/// Whether the walk skips the directory `rel` without reading it.
pub fn pruned(ignore: &Matcher, rel: &str, excluded: bool) -> bool {
    excluded && ignore.can_prune(rel)
}

/// How many threads the walk takes: every core, at most 4 (more only contend on the one disk).
/// Even with no core free the threads pay: the scheduler gives each runnable thread its share
/// of a core, so two threads get a 10,000-file no-op done sooner under load too (201 against
/// 266 ms at load 18-20) although they cost more CPU time (37 against 35 ms: a thread, a
/// malloc arena, every listing kept until all are read and then moved into walk order).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// Lists the directory `rel` of `root`: names sorted, each with its lstat and what fingerprint
/// can be made of it without reading a file.
pub fn list(root: &Path, ignore: &Matcher, stat: &StatCache, rel: &str) -> Result<Vec<Listed>, ContextError> {
    let dir = root.join(rel);
    let ioe = |op, p: &Path| {
        let p = p.to_path_buf();
        move |err| ContextError::Io { op, path: p, err }
    };
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).map_err(ioe("read dir", &dir))? {
        let e = e.map_err(ioe("read dir", &dir))?;
        let md = e.metadata().map_err(|err| ContextError::Io { op: "stat", path: e.path(), err })?;
        let rel = join_rel(rel, &e.file_name().to_string_lossy());
        let excluded = ignore.excluded(&rel);
        out.push(Listed { rel, md, excluded, fingerprint: None });
    }
    // names sorted: all share the directory's prefix
    out.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    let mut hint = 0;
    for e in out.iter_mut().filter(|e| !e.excluded || e.md.is_dir()) {
        let ft = e.md.file_type();
        let what = if ft.is_file() {
            match stat.lookup(&e.rel, &mut hint) {
                Some(s) if s.same_stat(&StatEntry::of(&e.md)) => What::File(s.digest),
                _ => continue,
            }
        } else if ft.is_symlink() {
            match fs::read_link(root.join(&e.rel)) {
                Ok(t) => What::Link(t),
                Err(_) => continue, // the caller reports it
            }
        } else {
            What::Other
        };
        e.fingerprint = Some(fingerprint(&e.md, what));
    }
    Ok(out)
}

/// Where the walk gets the listing of a directory (None: it was not read).
pub type Listing<'a> = dyn FnMut(&str) -> Result<Option<Vec<Listed>>, ContextError> + 'a;

/// What the threads share: directories still to read (the next in walk order on top), how
/// many helpers are reading one, listings read ahead, the first error, whether the walk is
/// over.
struct Shared {
    queue: Vec<String>,
    busy: usize,
    done: HashMap<String, Vec<Listed>>,
    err: Option<ContextError>,
    finished: bool,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the context on `threads` threads while `take` puts it together in walk order:
/// `take` gets a [`Listing`] that hands out each directory's listing, read by a helper
/// ahead of time or by the caller's thread itself (the directory it wants when no helper
/// took it yet, else another one while it waits). Listings are handed out as they are
/// read, not all kept until the end.
pub fn read_shared<T>(
    root: &Path,
    ignore: &Matcher,
    stat: &StatCache,
    threads: usize,
    take: impl FnOnce(&mut Listing) -> Result<T, ContextError>,
) -> Result<T, ContextError> {
    let shared =
        Mutex::new(Shared { queue: vec![String::new()], busy: 0, done: HashMap::new(), err: None, finished: false });
    let wake = Condvar::new();
    // a directory's subdirectories, last first: its first one is read next
    let queue_below = |s: &mut Shared, list: &[Listed]| {
        for e in list.iter().rev().filter(|e| e.md.is_dir() && !pruned(ignore, &e.rel, e.excluded)) {
            s.queue.push(e.rel.clone());
        }
    };
    let helper = || loop {
        let rel = {
            let mut s = lock(&shared);
            loop {
                if s.finished || s.err.is_some() {
                    return;
                }
                if let Some(r) = s.queue.pop() {
                    s.busy += 1;
                    break r;
                }
                s = wake.wait(s).unwrap_or_else(|p| p.into_inner());
            }
        };
        let got = list(root, ignore, stat, &rel);
        let mut s = lock(&shared);
        s.busy -= 1;
        match got {
            Ok(l) => {
                queue_below(&mut s, &l);
                s.done.insert(rel, l);
            }
            Err(e) => {
                s.err.get_or_insert(e);
            }
        }
        wake.notify_all();
    };
    let mut next = |rel: &str| -> Result<Option<Vec<Listed>>, ContextError> {
        let mut s = lock(&shared);
        loop {
            if let Some(l) = s.done.remove(rel) {
                return Ok(Some(l));
            }
            if let Some(e) = s.err.take() {
                return Err(e);
            }
            let Some(i) = s.queue.iter().rposition(|q| q == rel).or(s.queue.len().checked_sub(1)) else {
                if s.busy == 0 {
                    return Ok(None); // never queued: not read
                }
                s = wake.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let r = s.queue.remove(i);
            drop(s);
            let l = list(root, ignore, stat, &r)?;
            s = lock(&shared);
            queue_below(&mut s, &l);
            wake.notify_all();
            if r == rel {
                return Ok(Some(l));
            }
            s.done.insert(r, l);
        }
    };
    if threads <= 1 {
        return take(&mut next);
    }
    std::thread::scope(|sc| {
        for _ in 1..threads {
            sc.spawn(helper);
        }
        let res = take(&mut next);
        lock(&shared).finished = true;
        wake.notify_all();
        res
    })
}
