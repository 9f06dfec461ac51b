//! The build context: walking it with `.dockerignore` applied, resolving COPY/ADD sources
//! (Go filepath.Match wildcards, no escape from the context) and hashing what they select.
//! File contents are hashed through a stat cache (path, size, mtime, ctime, inode) kept in the
//! store, so unchanged files are not re-read. It never writes into the context.

mod stat;
mod walk;

use crate::dockerignore::{IgnoreError, Matcher};
use crate::glob;
use crate::store::Store;
use sha2::{Digest, Sha256};
use stat::{StatCache, StatEntry};
use std::collections::BTreeMap;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Ignore(#[from] IgnoreError),
    #[error("{op} {path}: {err}")]
    Io { op: &'static str, path: PathBuf, err: io::Error },
    #[error("forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("bad source pattern {0:?}: syntax error in pattern")]
    BadPattern(String),
    #[error("the build context must be a directory: {0} is not one")]
    NotDir(PathBuf),
}

fn ioe<'a>(op: &'static str, p: &'a Path) -> impl FnOnce(io::Error) -> ContextError + 'a {
    move |err| ContextError::Io { op, path: p.to_path_buf(), err }
}

/// Whether a stat cache file belongs to a context directory that still exists (`prune`).
pub fn stat_cache_is_live(file: &Path) -> bool {
    use std::io::BufRead;
    if file.extension().is_none_or(|e| e != "v3") {
        return false;
    }
    let Ok(f) = fs::File::open(file) else { return false };
    let mut line = String::new();
    if io::BufReader::new(f).read_line(&mut line).is_err() {
        return false;
    }
    let dir = line.strip_prefix("# ").and_then(|l| l.strip_suffix('\n')).unwrap_or("");
    !dir.is_empty() && Path::new(dir).is_dir()
}

/// One included path of the context.
#[derive(Debug, Clone)]
pub struct CtxEntry {
    /// Context-relative, `/`-separated, "" for the root.
    pub rel: String,
    pub md: Metadata,
}

pub struct Context {
    pub root: PathBuf,
    ignore: Matcher,
    entries: Option<Vec<CtxEntry>>,
    /// The fingerprint of each of `entries`, where the walk could make it without reading a
    /// file (a file whose stat the stat cache knows unchanged, a directory...).
    fingerprints: Vec<Option<String>>,
    stat: StatCache,
    stat_key: String,
    /// Seconds since the epoch when the context was opened: a file changed within a second of
    /// it is not cached (see `file_digest`).
    opened: i64,
    /// How many files were actually read for hashing (tests and `--debug`).
    pub hashed_files: usize,
}

/// The entries of a walk and their fingerprints, as they are put together.
type Assembled = (Vec<CtxEntry>, Vec<Option<String>>);

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        return b.to_string();
    }
    let mut out = String::with_capacity(a.len() + 1 + b.len());
    out.push_str(a);
    out.push('/');
    out.push_str(b);
    out
}

impl Context {
    pub fn open(root: &Path, store: Option<&Store>) -> Result<Context, ContextError> {
        Context::open_for(root, store, None)
    }

    /// Opens the context for a Dockerfile: `<Dockerfile>.dockerignore` next to it wins over
    /// the context's `.dockerignore`, as in BuildKit.
    pub fn open_for(root: &Path, store: Option<&Store>, dockerfile: Option<&Path>) -> Result<Context, ContextError> {
        let root = root.canonicalize().map_err(ioe("open build context", root))?;
        if !root.is_dir() {
            return Err(ContextError::NotDir(root));
        }
        let own = dockerfile.map(|d| {
            let mut n = d.as_os_str().to_owned();
            n.push(".dockerignore");
            PathBuf::from(n)
        });
        let ig = match own {
            Some(p) if p.is_file() => p,
            _ => root.join(".dockerignore"),
        };
        let ignore = match fs::read_to_string(&ig) {
            Ok(t) => Matcher::parse(&t)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Matcher::default(),
            Err(e) => return Err(ContextError::Io { op: "read", path: ig, err: e }),
        };
        let stat_key = format!("cache/stat/{}.v3", hex::encode(Sha256::digest(root.to_string_lossy().as_bytes())));
        let stat = store.map(|s| StatCache::load(&s.root.join(&stat_key))).unwrap_or_default();
        let opened =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Ok(Context { root, ignore, entries: None, fingerprints: Vec::new(), stat, stat_key, opened, hashed_files: 0 })
    }

    /// Saves the stat cache (when this build hashed something it did not know).
    /// The `.dockerignore` applied (empty for a remote context).
    pub fn ignore(&self) -> &Matcher {
        &self.ignore
    }

    /// The context with no `.dockerignore` applied: a remote context is used whole, as
    /// BuildKit uses one (`.dockerignore` filters what a client sends of a local directory).
    pub fn unfiltered(mut self) -> Context {
        self.ignore = Matcher::default();
        self.entries = None;
        self.fingerprints.clear();
        self
    }

    pub fn save(&self, store: &Store) {
        if self.stat.dirty() && !self.root.as_os_str().as_encoded_bytes().contains(&b'\n') {
            let _ = store.write_file(&store.root.join(&self.stat_key), &self.stat.to_bytes(&self.root));
        }
    }

    /// All included entries in walk order (parents before children, names sorted: see
    /// [`stat::walk_cmp`]).
    pub fn entries(&mut self) -> Result<&[CtxEntry], ContextError> {
        if self.entries.is_none() {
            self.walk(walk::threads())?;
        }
        Ok(self.entries.as_deref().unwrap_or(&[]))
    }

    /// Walks the context on `threads` threads: helpers read directories ahead while this one
    /// puts the listings together in walk order as they come (and reads too when it would wait).
    fn walk(&mut self, threads: usize) -> Result<(), ContextError> {
        let md = fs::symlink_metadata(&self.root).map_err(ioe("stat", &self.root))?;
        // as many entries as files the last build saw, most often: few moves as it grows
        let n = self.stat.records() + 1;
        let mut out = (Vec::with_capacity(n), Vec::with_capacity(n));
        let root = (CtxEntry { rel: String::new(), md: md.clone() }, Some(fingerprint(&md, What::Other)));
        out.0.push(root.0);
        out.1.push(root.1);
        let (dir, ignore, stat) = (&self.root, &self.ignore, &self.stat);
        walk::read_shared(dir, ignore, stat, threads, |listing| self.assemble("", listing, &mut out))?;
        self.entries = Some(out.0);
        self.fingerprints = out.1;
        crate::trace::point("walk");
        Ok(())
    }

    /// Appends the entries below `rel` in walk order, taking each directory's listing from
    /// `listing` (None: not read, as pruned); whether any was included. An excluded directory
    /// stays when something below it is re-included (`!pattern`).
    fn assemble(&self, rel: &str, listing: &mut walk::Listing, out: &mut Assembled) -> Result<bool, ContextError> {
        let Some(list) = listing(rel)? else { return Ok(false) };
        let mut any = false;
        for walk::Listed { rel: r, md, excluded, fingerprint } in list {
            if md.is_dir() {
                if walk::pruned(&self.ignore, &r, excluded) {
                    continue;
                }
                let pos = out.0.len();
                out.0.push(CtxEntry { rel: r, md });
                out.1.push(fingerprint);
                let inner = self.assemble(&out.0[pos].rel.clone(), listing, out)?;
                if excluded && !inner {
                    out.0.truncate(pos);
                    out.1.truncate(pos);
                } else {
                    any = true;
                }
            } else if !excluded {
                out.0.push(CtxEntry { rel: r, md });
                out.1.push(fingerprint);
                any = true;
            }
        }
        Ok(any)
    }

    /// Where `rel`'s entries are in `entries`: itself and all below it, contiguous in walk order.
    fn range(&mut self, rel: &str) -> Result<std::ops::Range<usize>, ContextError> {
        let all = self.entries()?;
        let Ok(at) = all.binary_search_by(|e| stat::walk_cmp(e.rel.as_bytes(), rel.as_bytes())) else {
            return Ok(0..0);
        };
        let below = |e: &CtxEntry| {
            rel.is_empty() || (e.rel.len() > rel.len() && e.rel.starts_with(rel) && e.rel.as_bytes()[rel.len()] == b'/')
        };
        let end = at + 1 + all[at + 1..].iter().take_while(|e| below(e)).count();
        Ok(at..end)
    }

    fn find(&mut self, rel: &str) -> Result<Option<CtxEntry>, ContextError> {
        let r = self.range(rel)?;
        Ok(self.entries()?.get(r.start).filter(|_| !r.is_empty()).cloned())
    }

    /// Expands one COPY/ADD source into context-relative paths. Empty when nothing matches
    /// (missing, or excluded by .dockerignore).
    pub fn resolve(&mut self, src: &str) -> Result<Vec<String>, ContextError> {
        let cleaned = glob::clean(src.trim_start_matches('/'));
        if crate::rootfs::escapes(&cleaned) {
            return Err(ContextError::Outside(src.to_string()));
        }
        let rel = if cleaned == "." { String::new() } else { cleaned };
        if glob::has_wildcards(&rel) {
            let pat = glob::compile(&rel).map_err(|_| ContextError::BadPattern(src.into()))?;
            let mut out: Vec<String> = Vec::new();
            for e in self.entries()? {
                // entries are in walk order, so what lies under a match follows it directly
                let under_last = out.last().is_some_and(|o| {
                    e.rel.len() > o.len() && e.rel.starts_with(o.as_str()) && e.rel.as_bytes()[o.len()] == b'/'
                });
                if e.rel.is_empty() || under_last {
                    continue;
                }
                if pat.matches(&e.rel) {
                    out.push(e.rel.clone());
                }
            }
            return Ok(out);
        }
        // a top-level symlink source is followed, inside the context
        let resolved = crate::rootfs::resolve_in_root(&self.root, &rel, true);
        let rel = resolved.strip_prefix(&self.root).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        Ok(self.find(&rel)?.map(|e| vec![e.rel]).unwrap_or_default())
    }

    /// The entries at and below `rel`.
    pub fn subtree(&mut self, rel: &str) -> Result<Vec<CtxEntry>, ContextError> {
        let r = self.range(rel)?;
        Ok(self.entries()?[r].to_vec())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Content digest of a regular file, through the stat cache.
    pub fn file_digest(&mut self, rel: &str, md: &Metadata) -> Result<String, ContextError> {
        let d = file_digest(&self.root, &mut self.stat, self.opened, rel, md, &mut self.hashed_files)?;
        Ok(format!("sha256:{}", hex::encode(d)))
    }

    /// `COPY --parents`: the entries below the directory `root` that `include` selects (a path
    /// it matches, or below one it matches, as patternmatcher's `MatchesOrParentMatches`;
    /// everything when it is empty), with the directories between `root` and them, in walk
    /// order. Paths `include` sees are relative to `root`.
    pub fn parents_tree(&mut self, root: &str, include: &Matcher) -> Result<Vec<CtxEntry>, ContextError> {
        let sub = self.subtree(root)?;
        let below =
            |e: &CtxEntry| -> String { e.rel.strip_prefix(root).unwrap_or(&e.rel).trim_start_matches('/').to_string() };
        let mut keep: std::collections::HashSet<String> = std::collections::HashSet::new();
        for e in &sub {
            let q = below(e);
            if q.is_empty() || !(include.is_empty() || include.excluded(&q)) {
                continue;
            }
            let mut cur = q.as_str();
            keep.insert(q.clone());
            while let Some((parent, _)) = cur.rsplit_once('/') {
                keep.insert(parent.to_string());
                cur = parent;
            }
        }
        Ok(sub.into_iter().filter(|e| keep.contains(&below(e))).collect())
    }

    /// Per-file fingerprints (context path -> type, mode, owner, target, content;
    /// never mtime) of what copying `rel` selects.
    pub fn fingerprints(&mut self, rel: &str) -> Result<BTreeMap<String, String>, ContextError> {
        let range = self.range(rel)?;
        let entries = self.entries.take().unwrap_or_default();
        let got = self.fingerprints_at(&entries[range.clone()], Some(range.start));
        self.entries = Some(entries);
        got
    }

    /// The fingerprints of these entries (see `fingerprints`).
    pub fn fingerprints_of(&mut self, entries: &[CtxEntry]) -> Result<BTreeMap<String, String>, ContextError> {
        self.fingerprints_at(entries, None)
    }

    /// The fingerprints of `entries`; `first`: where they start in the walk's entries.
    fn fingerprints_at(
        &mut self,
        entries: &[CtxEntry],
        first: Option<usize>,
    ) -> Result<BTreeMap<String, String>, ContextError> {
        let mut out = Vec::with_capacity(entries.len());
        for (n, e) in entries.iter().enumerate() {
            let name = if e.rel.is_empty() { ".".to_string() } else { e.rel.clone() };
            // the walk made those it could without reading a file (each is used once: a second
            // COPY of the same files makes them again)
            let made = first.and_then(|f| self.fingerprints.get_mut(f + n)).and_then(Option::take);
            let fp = match made {
                Some(fp) => fp,
                None => {
                    let ft = e.md.file_type();
                    let what = if ft.is_symlink() {
                        let p = self.root.join(&e.rel);
                        What::Link(fs::read_link(&p).map_err(ioe("readlink", &p))?)
                    } else if ft.is_file() {
                        let h = &mut self.hashed_files;
                        What::File(file_digest(&self.root, &mut self.stat, self.opened, &e.rel, &e.md, h)?)
                    } else {
                        What::Other
                    };
                    fingerprint(&e.md, what)
                }
            };
            out.push((name, fp));
        }
        // built whole from a list that is nearly in order: far cheaper than one insert per file
        Ok(out.into_iter().collect())
    }
}

/// What a fingerprint says of an entry's content.
enum What {
    File([u8; 32]),
    Link(PathBuf),
    /// A directory or a special file: its type.
    Other,
}

/// One entry's fingerprint: `file:sha256:HEX`, `link:TARGET`, `dir` or `special`, then its mode
/// and owner.
fn fingerprint(md: &Metadata, what: What) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(112);
    match what {
        What::File(d) => {
            let mut hex = [0u8; 64];
            let _ = hex::encode_to_slice(d, &mut hex);
            out.push_str("file:sha256:");
            out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
        }
        What::Link(t) => {
            let _ = write!(out, "link:{}", t.display());
        }
        What::Other if md.is_dir() => out.push_str("dir"),
        What::Other => out.push_str("special"),
    }
    out.push_str(" mode=");
    push_num(&mut out, md.mode() & 0o7777, 8);
    out.push_str(" uid=");
    push_num(&mut out, md.uid(), 10);
    out.push_str(" gid=");
    push_num(&mut out, md.gid(), 10);
    out
}

/// Appends `n` in base `radix` (8 or 10), as `{:o}` and `{}` print it: made for every file of
/// the context on each build, where core::fmt's machinery costs more than the digits.
fn push_num(out: &mut String, mut n: u32, radix: u32) {
    let mut buf = [0u8; 11]; // u32::MAX has 11 octal digits
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % radix) as u8;
        n /= radix;
        if n == 0 {
            break;
        }
    }
    out.extend(buf[at..].iter().map(|&c| c as char));
}

/// The raw sha256 of the regular file `rel`: the stat cache's when every field it keeps still
/// matches `md`, else read and hashed (and remembered, unless changed too recently to trust).
fn file_digest(
    root: &Path,
    stat: &mut StatCache,
    opened: i64,
    rel: &str,
    md: &Metadata,
    hashed: &mut usize,
) -> Result<[u8; 32], ContextError> {
    let probe = StatEntry::of(md);
    if let Some(s) = stat.get(rel) {
        if s.same_stat(&probe) {
            return Ok(s.digest);
        }
    }
    let p = root.join(rel);
    let d = crate::store::hash_file_raw(&p).map_err(|e| ContextError::Io {
        op: "hash",
        path: p.clone(),
        err: io::Error::other(e.to_string()),
    })?;
    *hashed += 1;
    // a file changed within the clock's granularity of now could change again without its
    // stat changing ("racy git"): hash it again next time
    if md.ctime() + 1 >= opened {
        return Ok(d);
    }
    stat.insert(rel.to_string(), StatEntry { digest: d, ..probe });
    Ok(d)
}

/// A digest over fingerprints.
pub fn digest_fingerprints(f: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in f {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with(files: &[&str], ignore: &str) -> (tempfile::TempDir, Context) {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            let p = t.path().join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f).unwrap();
        }
        fs::write(t.path().join(".dockerignore"), ignore).unwrap();
        let c = Context::open(t.path(), None).unwrap();
        (t, c)
    }

    #[test]
    fn numbers_print_as_format_prints_them() {
        // the fingerprint is a cache key input: one digit different and every cache misses
        for n in [0, 1, 7, 8, 9, 10, 0o644, 0o755, 0o7777, 1000, 65534, 65535, 100_000, u32::MAX - 1, u32::MAX] {
            for (radix, want) in [(8, format!("{n:o}")), (10, format!("{n}"))] {
                let mut got = String::from("x");
                push_num(&mut got, n, radix);
                assert_eq!(got, format!("x{want}"), "{n} in base {radix}");
            }
        }
    }

    #[test]
    fn ignore_and_wildcards() {
        let (_t, mut c) = ctx_with(
            &["a.txt", "b.txt", "src/x.rs", "src/y.rs", "logs/1.log", "keep/a", "keep/b"],
            "logs\nkeep\n!keep/a\n*.tmp\n",
        );
        let rels: Vec<String> = c.entries().unwrap().iter().map(|e| e.rel.clone()).collect();
        assert!(!rels.iter().any(|r| r.starts_with("logs")));
        assert!(rels.contains(&"keep".to_string()) && rels.contains(&"keep/a".to_string()));
        assert!(!rels.contains(&"keep/b".to_string()));
        assert_eq!(c.resolve("*.txt").unwrap(), ["a.txt", "b.txt"]);
        assert_eq!(c.resolve("src/*.rs").unwrap(), ["src/x.rs", "src/y.rs"]);
        assert_eq!(c.resolve("/a.txt").unwrap(), ["a.txt"]);
        assert!(c.resolve("logs/1.log").unwrap().is_empty()); // excluded = missing
        assert!(c.resolve("nope").unwrap().is_empty());
        assert!(matches!(c.resolve("../x"), Err(ContextError::Outside(_))));
        assert_eq!(c.resolve(".").unwrap(), [""]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let (t, _) = ctx_with(&["a.txt", "b.txt"], "a.txt\n");
        fs::write(t.path().join("app.Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(t.path().join("app.Dockerfile.dockerignore"), "b.txt\n").unwrap();
        let mut c = Context::open_for(t.path(), None, Some(&t.path().join("app.Dockerfile"))).unwrap();
        assert_eq!(c.resolve("a.txt").unwrap(), ["a.txt"]);
        assert!(c.resolve("b.txt").unwrap().is_empty());
    }

    #[test]
    fn stat_cache_avoids_rehash() {
        let t = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        fs::write(t.path().join("f"), "one").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        let f1 = c.fingerprints("f").unwrap();
        assert_eq!(c.hashed_files, 1);
        c.save(&store);
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        assert_eq!(c.fingerprints("f").unwrap(), f1);
        assert_eq!(c.hashed_files, 0, "unchanged file is not re-read");
        fs::write(t.path().join("f"), "two").unwrap();
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        assert_ne!(c.fingerprints("f").unwrap(), f1);
        assert_eq!(c.hashed_files, 1);
    }

    #[test]
    fn entries_come_in_walk_order_from_all_threads() {
        // many directories, so several threads read them; "a-b" sorts between "a" and "a/..."
        // in plain byte order, but the walk puts a directory's contents right after it
        let mut files = vec!["a-b".to_string(), "a/x".into(), "a/y/z".into(), "ab".into(), "b/c".into()];
        for d in 0..40 {
            files.push(format!("many/d{d:02}/f"));
        }
        let names: Vec<&str> = files.iter().map(|f| f.as_str()).collect();
        let (_t, mut c) = ctx_with(&names, "many/d07\n");
        // one thread reading in walk order, or several whose listings are put together
        c.walk(1).unwrap();
        let one: Vec<String> = c.entries().unwrap().iter().map(|e| e.rel.clone()).collect();
        c.walk(4).unwrap();
        let got: Vec<String> = c.entries().unwrap().iter().map(|e| e.rel.clone()).collect();
        assert_eq!(one, got);
        let mut want: Vec<String> = vec!["".into(), ".dockerignore".into(), "a".into(), "a/x".into(), "a/y".into()];
        want.extend(["a/y/z", "a-b", "ab", "b", "b/c", "many"].map(String::from));
        for d in (0..40).filter(|d| *d != 7) {
            want.extend([format!("many/d{d:02}"), format!("many/d{d:02}/f")]);
        }
        assert_eq!(got, want);
        // a directory's subtree is itself and what follows it; a file's is itself
        let sub: Vec<String> = c.subtree("a").unwrap().into_iter().map(|e| e.rel).collect();
        assert_eq!(sub, ["a", "a/x", "a/y", "a/y/z"]);
        assert_eq!(c.subtree("a-b").unwrap().len(), 1);
        assert!(c.subtree("many/d07").unwrap().is_empty());
        assert_eq!(c.fingerprints("").unwrap().len(), want.len());
    }

    fn owner(p: &Path) -> String {
        let md = fs::symlink_metadata(p).unwrap();
        format!("uid={} gid={}", md.uid(), md.gid())
    }

    #[test]
    fn stat_cache_sees_content_changes_that_keep_size_and_mtime() {
        // BuildKit's local source re-sends a file when its size, mtime, mode or owner changed;
        // slipway also compares ctime and the inode, which any write or replacement changes,
        // even one that puts back the old size and mtime (cp -p, tar x, a restored mtime)
        let t = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        for (f, text) in [("a/1", "one"), ("a/2", "two"), ("b", "bbb"), ("c", "ccc")] {
            fs::create_dir_all(t.path().join(f).parent().unwrap()).unwrap();
            fs::write(t.path().join(f), text).unwrap();
        }
        std::os::unix::fs::symlink("a/1", t.path().join("l")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        let before = c.fingerprints("").unwrap();
        assert_eq!(c.hashed_files, 4);
        assert_eq!(before["l"], "link:a/1 mode=777 uid=0 gid=0".replace("uid=0 gid=0", &owner(&t.path().join("l"))));
        c.save(&store);
        // the walk makes the fingerprints of what the stat cache knows; asked again, the same
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        assert_eq!(c.fingerprints("").unwrap(), before);
        assert_eq!(c.fingerprints("").unwrap(), before);
        assert_eq!(c.fingerprints("a").unwrap().len(), 3);
        assert_eq!(c.hashed_files, 0, "unchanged files are not re-read");

        let mtime = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        // a/2 rewritten in place with as many bytes, its mtime put back
        let p = t.path().join("a/2");
        let old = mtime(&p);
        fs::write(&p, "TWO").unwrap();
        fs::File::options().write(true).open(&p).unwrap().set_modified(old).unwrap();
        // b replaced by another file of the same size and mtime (a new inode)
        let p = t.path().join("b");
        let old = mtime(&p);
        let new = t.path().join("b.new");
        fs::write(&new, "BBB").unwrap();
        fs::File::options().write(true).open(&new).unwrap().set_modified(old).unwrap();
        fs::rename(&new, &p).unwrap();
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        let after = c.fingerprints("").unwrap();
        assert_eq!(c.hashed_files, 2);
        for (k, v) in &before {
            assert_eq!(after[k] != *v, k == "a/2" || k == "b", "{k}");
        }
        // changed within the last second: not trusted yet, read again next time
        c.save(&store);
        let mut c = Context::open(t.path(), Some(&store)).unwrap();
        assert_eq!(c.fingerprints("").unwrap(), after);
        assert_eq!(c.hashed_files, 2);
    }
}
