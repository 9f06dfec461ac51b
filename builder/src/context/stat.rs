//! The stat cache of a build context: for each file hashed before, the stat fields that change
//! whenever its content may have (size, mtime, ctime, inode) and the content digest they vouch
//! for, so a rebuild reads only the files whose stat changed. It never reads a file itself.
//!
//! On disk (`cache/stat/<sha256 of the context dir>.v3` in the store): a line `# CONTEXT-DIR`
//! (so `prune` can drop the caches of contexts that are gone), then fixed-layout binary
//! records in walk order (see [`walk_cmp`]), each
//! `path_len:u16 ino:u64 size:u64 mtime:i64 mtime_ns:u32 ctime:i64 ctime_ns:u32 digest:[u8;32]
//! path`, little-endian. A no-op rebuild of a large context looks up every file: loading is one
//! mapping of the file (no copy into fresh memory) and one pass over the record lengths, and since lookups come in walk order, each one is
//! almost always the record after the last hit (a text or JSON cache had to be parsed whole into
//! a map first: 6 ms of a 10,000-file no-op).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

/// What the stat cache remembers of one file: the stat fields that change when its content
/// may have changed, and the content digest they vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatEntry {
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
    pub ino: u64,
    /// The raw sha256 of the content.
    pub digest: [u8; 32],
}

impl StatEntry {
    /// The fields of a fresh lstat (no digest yet).
    pub fn of(md: &std::fs::Metadata) -> StatEntry {
        use std::os::unix::fs::MetadataExt;
        StatEntry {
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec() as u32),
            ctime: (md.ctime(), md.ctime_nsec() as u32),
            ino: md.ino(),
            digest: [0; 32],
        }
    }

    /// Whether `other` (a fresh lstat) shows the same file unchanged: every stat field equal.
    pub fn same_stat(&self, other: &StatEntry) -> bool {
        self.size == other.size && self.mtime == other.mtime && self.ctime == other.ctime && self.ino == other.ino
    }
}

/// The order of a context walk: parents before children, names byte-sorted within a directory.
/// It is the byte order of the paths with `/` below every other byte (names hold no `/` or NUL).
pub fn walk_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let key = |c: &u8| if *c == b'/' { 0 } else { *c };
    a.iter().map(key).cmp(b.iter().map(key))
}

const FIXED: usize = 2 + 8 + 8 + 8 + 4 + 8 + 4 + 32;

/// The cache file's bytes: mapped from the store, or owned (made here, tests).
#[derive(Debug)]
enum Bytes {
    Owned(Vec<u8>),
    Mapped(crate::sys::Mapped),
}

impl Default for Bytes {
    fn default() -> Bytes {
        Bytes::Owned(Vec::new())
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Mapped(m) => m,
        }
    }
}

/// The stat cache of one context: the records as read, and what this build hashed.
#[derive(Debug, Default)]
pub struct StatCache {
    /// The file as read.
    data: Bytes,
    /// Where each record of `data` starts, in walk order.
    index: Vec<u32>,
    /// Files hashed by this build (they win over `data`'s records).
    new: HashMap<String, StatEntry>,
    /// The record of the last hit: the next lookup is usually the one after it.
    hint: usize,
}

fn le<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

impl StatCache {
    /// Reads the cache file at `path` (the store replaces it by rename, never in place, so it
    /// is mapped rather than copied); a missing or unreadable file is an empty cache.
    pub fn load(path: &Path) -> StatCache {
        crate::sys::Mapped::open(path).map(|m| StatCache::from_bytes(Bytes::Mapped(m))).unwrap_or_default()
    }

    /// Reads the cache file's bytes; anything malformed gives an empty cache (every file is
    /// hashed again, never trusted on a broken record).
    #[cfg(test)]
    pub fn parse(bytes: Vec<u8>) -> StatCache {
        StatCache::from_bytes(Bytes::Owned(bytes))
    }

    fn from_bytes(bytes: Bytes) -> StatCache {
        let Some(nl) = bytes.iter().position(|&c| c == b'\n') else { return StatCache::default() };
        if !bytes.starts_with(b"# ") {
            return StatCache::default();
        }
        let data = bytes;
        let mut index = Vec::new();
        let mut at = nl + 1;
        while at < data.len() {
            if data.len() - at < FIXED || index.len() >= u32::MAX as usize {
                return StatCache::default();
            }
            let len = u16::from_le_bytes(le(&data, at)) as usize;
            if data.len() - at - FIXED < len {
                return StatCache::default();
            }
            index.push(at as u32);
            at += FIXED + len;
        }
        StatCache { data, index, new: HashMap::new(), hint: 0 }
    }

    fn path_of(&self, i: usize) -> &[u8] {
        self.path_at(self.index[i] as usize)
    }

    fn path_at(&self, at: usize) -> &[u8] {
        let len = u16::from_le_bytes(le(&self.data, at)) as usize;
        &self.data[at + FIXED..at + FIXED + len]
    }

    fn entry_of(&self, i: usize) -> StatEntry {
        let d = &self.data;
        let at = self.index[i] as usize + 2;
        StatEntry {
            ino: u64::from_le_bytes(le(d, at)),
            size: u64::from_le_bytes(le(d, at + 8)),
            mtime: (i64::from_le_bytes(le(d, at + 16)), u32::from_le_bytes(le(d, at + 24))),
            ctime: (i64::from_le_bytes(le(d, at + 28)), u32::from_le_bytes(le(d, at + 36))),
            digest: le(d, at + 40),
        }
    }

    /// The record of `rel`, if the cache has one.
    pub fn get(&mut self, rel: &str) -> Option<StatEntry> {
        let mut hint = self.hint;
        let got = self.lookup(rel, &mut hint);
        self.hint = hint;
        got
    }

    /// `get` for threads sharing the cache: each keeps its own `hint`, where its last hit was.
    pub fn lookup(&self, rel: &str, hint: &mut usize) -> Option<StatEntry> {
        if !self.new.is_empty() {
            if let Some(e) = self.new.get(rel) {
                return Some(*e);
            }
        }
        let want = rel.as_bytes();
        for i in [*hint, *hint + 1] {
            if i < self.index.len() && self.path_of(i) == want {
                *hint = i;
                return Some(self.entry_of(i));
            }
        }
        let i = self.index.binary_search_by(|&at| walk_cmp(self.path_at(at as usize), want)).ok()?;
        *hint = i;
        Some(self.entry_of(i))
    }

    /// How many records were read (a hint of how large the context is).
    pub fn records(&self) -> usize {
        self.index.len()
    }

    /// Records what this build hashed.
    pub fn insert(&mut self, rel: String, e: StatEntry) {
        self.new.insert(rel, e);
    }

    /// Whether anything was inserted since the cache was read.
    pub fn dirty(&self) -> bool {
        !self.new.is_empty()
    }

    /// The file's bytes: the records read and those inserted, in walk order. Paths that do
    /// not fit a record (a newline, more than 65,535 bytes) are left out.
    pub fn to_bytes(&self, root: &Path) -> Vec<u8> {
        let mut recs: Vec<(&[u8], StatEntry)> = (0..self.index.len())
            .map(|i| (self.path_of(i), self.entry_of(i)))
            .filter(|(p, _)| std::str::from_utf8(p).map_or(true, |p| !self.new.contains_key(p)))
            .collect();
        recs.extend(self.new.iter().map(|(p, e)| (p.as_bytes(), *e)));
        recs.retain(|(p, _)| p.len() <= u16::MAX as usize && !p.contains(&b'\n'));
        recs.sort_by(|a, b| walk_cmp(a.0, b.0));
        let mut out = Vec::with_capacity(self.data.len() + self.new.len() * (FIXED + 32));
        out.extend_from_slice(format!("# {}\n", root.display()).as_bytes());
        for (p, e) in recs {
            out.extend_from_slice(&(p.len() as u16).to_le_bytes());
            out.extend_from_slice(&e.ino.to_le_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
            out.extend_from_slice(&e.mtime.0.to_le_bytes());
            out.extend_from_slice(&e.mtime.1.to_le_bytes());
            out.extend_from_slice(&e.ctime.0.to_le_bytes());
            out.extend_from_slice(&e.ctime.1.to_le_bytes());
            out.extend_from_slice(&e.digest);
            out.extend_from_slice(p);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> StatEntry {
        StatEntry { size: 3, mtime: (10, 20), ctime: (30, 40), ino: 7 + n as u64, digest: [n; 32] }
    }

    #[test]
    fn walk_order_is_parents_then_sorted_names() {
        // what Context::entries yields: a directory, then what is in it, before a sibling whose
        // name sorts after the directory's but before "dir/..." in plain byte order
        let mut v = vec!["a-b", "a/x", "a", "ab/y", "", "a/x/z", "b"];
        v.sort_by(|a, b| walk_cmp(a.as_bytes(), b.as_bytes()));
        assert_eq!(v, ["", "a", "a/x", "a/x/z", "a-b", "ab/y", "b"]);
    }

    #[test]
    fn records_round_trip_in_any_lookup_order() {
        // paths may hold spaces; a path with a newline is not cached
        let mut c = StatCache::default();
        let names = ["a dir/b c.txt", "a dir", "a-z", "a dir/a", "zz", "bad\nname"];
        for (i, n) in names.iter().enumerate() {
            c.insert(n.to_string(), entry(i as u8));
        }
        let bytes = c.to_bytes(Path::new("/ctx"));
        assert!(bytes.starts_with(b"# /ctx\n"));
        let mut back = StatCache::parse(bytes);
        assert_eq!(back.index.len(), 5);
        assert!(!back.dirty());
        for i in [4, 0, 1, 2, 3, 3, 1] {
            assert_eq!(back.get(names[i]), Some(entry(i as u8)), "{}", names[i]);
        }
        assert_eq!(back.get("bad\nname"), None);
        assert_eq!(back.get("a"), None);
        // a record hashed again replaces the one read
        back.insert("a-z".into(), entry(9));
        let mut again = StatCache::parse(back.to_bytes(Path::new("/ctx")));
        assert_eq!(again.index.len(), 5);
        assert_eq!(again.get("a-z"), Some(entry(9)));
        assert_eq!(again.get("zz"), Some(entry(4)));
    }

    #[test]
    fn a_mapped_file_reads_as_its_bytes() {
        let mut c = StatCache::default();
        c.insert("d/f".into(), entry(1));
        c.insert("d".into(), entry(2));
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("c.v3");
        std::fs::write(&p, c.to_bytes(Path::new("/ctx"))).unwrap();
        let mut back = StatCache::load(&p);
        assert_eq!(back.records(), 2);
        assert_eq!((back.get("d"), back.get("d/f")), (Some(entry(2)), Some(entry(1))));
        // missing or empty: nothing cached
        assert_eq!(StatCache::load(&t.path().join("nope")).records(), 0);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(StatCache::load(&p).get("d"), None);
    }

    #[test]
    fn a_broken_file_is_an_empty_cache() {
        let mut c = StatCache::default();
        c.insert("f".into(), entry(1));
        let good = c.to_bytes(Path::new("/ctx"));
        // cut inside the record, no header line, the v2 text format
        for bad in [&good[..good.len() - 1], &good[7..], b"# /ctx\n7 3 10 20 30 40 sha256:ab f\n"] {
            let mut c = StatCache::parse(bad.to_vec());
            assert_eq!(c.get("f"), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(StatCache::parse(good).get("f"), Some(entry(1)));
    }
}
