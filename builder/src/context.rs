//! The build context: walking it with `.dockerignore` applied, resolving COPY/ADD sources
//! (Go filepath.Match wildcards, no escape from the context) and hashing what they select.
//! File contents are hashed through a stat cache (path, size, mtime, ctime, inode) kept in the
//! store, so unchanged files are not re-read. It never writes into the context.

use crate::dockerignore::{IgnoreError, Matcher};
use crate::glob;
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
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

/// What the stat cache remembers of one file: the stat fields that change when its content
/// may have changed, and the content digest they vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StatEntry {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    digest: String,
}

/// The stat cache on disk: a `# CONTEXT-DIR` line (so `prune` can drop the caches of contexts
/// that are gone), then one line per file, `ino size mtime mtime_ns ctime ctime_ns digest
/// path` (the path last, so it may hold spaces; paths with a newline are never cached). A plain
/// line format because a no-op rebuild of a large context reads it whole: parsing 10,000 lines
/// costs far less than deserialising the same as JSON.
fn parse_stat_cache(text: &str) -> HashMap<String, StatEntry> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut f = line.splitn(8, ' ');
        let mut num = || f.next().and_then(|v| v.parse::<i64>().ok());
        let (Some(ino), Some(size), Some(ms), Some(mns), Some(cs), Some(cns)) =
            (num(), num(), num(), num(), num(), num())
        else {
            continue;
        };
        let (Some(digest), Some(path)) = (f.next(), f.next()) else { continue };
        let e = StatEntry {
            size: size as u64,
            mtime: (ms, mns),
            ctime: (cs, cns),
            ino: ino as u64,
            digest: digest.to_string(),
        };
        out.insert(path.to_string(), e);
    }
    out
}

fn format_stat_cache(root: &Path, m: &HashMap<String, StatEntry>) -> String {
    let mut paths: Vec<&String> = m.keys().filter(|p| !p.contains('\n')).collect();
    paths.sort();
    let mut out = String::with_capacity(m.len() * 120);
    out.push_str(&format!("# {}\n", root.display()));
    for p in paths {
        let e = &m[p];
        out.push_str(&format!(
            "{} {} {} {} {} {} {} {p}\n",
            e.ino, e.size, e.mtime.0, e.mtime.1, e.ctime.0, e.ctime.1, e.digest
        ));
    }
    out
}

/// Whether a stat cache file belongs to a context directory that still exists (`prune`).
pub fn stat_cache_is_live(file: &Path) -> bool {
    if file.extension().is_none_or(|e| e != "v2") {
        return false;
    }
    let Ok(text) = fs::read_to_string(file) else { return false };
    let dir = text.lines().next().and_then(|l| l.strip_prefix("# ")).unwrap_or("");
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
    stat: HashMap<String, StatEntry>,
    stat_key: String,
    dirty: bool,
    /// How many files were actually read for hashing (tests and `--debug`).
    pub hashed_files: usize,
}

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
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
        let stat_key = format!("cache/stat/{}.v2", hex::encode(Sha256::digest(root.to_string_lossy().as_bytes())));
        let stat = store
            .and_then(|s| fs::read_to_string(s.root.join(&stat_key)).ok())
            .map(|t| parse_stat_cache(&t))
            .unwrap_or_default();
        Ok(Context { root, ignore, entries: None, stat, stat_key, dirty: false, hashed_files: 0 })
    }

    /// Saves the stat cache.
    pub fn save(&self, store: &Store) {
        if self.dirty {
            let _ = store
                .write_atomic(&store.root.join(&self.stat_key), format_stat_cache(&self.root, &self.stat).as_bytes());
        }
    }

    /// All included entries in walk order (parents before children, names sorted).
    pub fn entries(&mut self) -> Result<&[CtxEntry], ContextError> {
        if self.entries.is_none() {
            let mut out = Vec::new();
            let md = fs::symlink_metadata(&self.root).map_err(ioe("stat", &self.root))?;
            out.push(CtxEntry { rel: String::new(), md });
            self.walk_dir("", &mut out)?;
            self.entries = Some(out);
        }
        Ok(self.entries.as_deref().unwrap_or(&[]))
    }

    fn walk_dir(&self, rel: &str, out: &mut Vec<CtxEntry>) -> Result<bool, ContextError> {
        let dir = self.root.join(rel);
        // DirEntry::metadata is an fstatat relative to the open directory (no symlinks
        // followed): no walk of the whole path per file
        let mut names: Vec<(String, Metadata)> = Vec::new();
        for e in fs::read_dir(&dir).map_err(ioe("read dir", &dir))? {
            let e = e.map_err(ioe("read dir", &dir))?;
            let md = e.metadata().map_err(ioe("stat", &e.path()))?;
            names.push((e.file_name().to_string_lossy().to_string(), md));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut any = false;
        for (n, md) in names {
            let r = join_rel(rel, &n);
            let excluded = self.ignore.excluded(&r);
            if md.is_dir() {
                if excluded && self.ignore.can_prune(&r) {
                    continue;
                }
                let pos = out.len();
                out.push(CtxEntry { rel: r.clone(), md });
                let inner = self.walk_dir(&r, out)?;
                if excluded && !inner {
                    out.truncate(pos);
                } else {
                    any = true;
                }
            } else if !excluded {
                out.push(CtxEntry { rel: r, md });
                any = true;
            }
        }
        Ok(any)
    }

    fn find(&mut self, rel: &str) -> Result<Option<CtxEntry>, ContextError> {
        Ok(self.entries()?.iter().find(|e| e.rel == rel).cloned())
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
        let prefix = format!("{rel}/");
        Ok(self
            .entries()?
            .iter()
            .filter(|e| rel.is_empty() || e.rel == rel || e.rel.starts_with(&prefix))
            .cloned()
            .collect())
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Content digest of a regular file, through the stat cache.
    pub fn file_digest(&mut self, rel: &str, md: &Metadata) -> Result<String, ContextError> {
        let probe = StatEntry {
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
            digest: String::new(),
        };
        if let Some(s) = self.stat.get(rel) {
            let same = StatEntry { digest: String::new(), ..s.clone() } == probe;
            if same {
                return Ok(s.digest.clone());
            }
        }
        let p = self.root.join(rel);
        let d = crate::store::hash_file(&p).map_err(|e| ContextError::Io {
            op: "hash",
            path: p.clone(),
            err: io::Error::other(e.to_string()),
        })?;
        self.hashed_files += 1;
        // a file changed within the clock's granularity of now could change again without its
        // stat changing ("racy git"): hash it again next time
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        if md.ctime() + 1 >= now {
            return Ok(d);
        }
        self.stat.insert(rel.to_string(), StatEntry { digest: d.clone(), ..probe });
        self.dirty = true;
        Ok(d)
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
        let sub = self.subtree(rel)?;
        self.fingerprints_of(&sub)
    }

    /// The fingerprints of these entries (see `fingerprints`).
    pub fn fingerprints_of(&mut self, entries: &[CtxEntry]) -> Result<BTreeMap<String, String>, ContextError> {
        let mut out = BTreeMap::new();
        for e in entries {
            let name = if e.rel.is_empty() { ".".to_string() } else { e.rel.clone() };
            let ft = e.md.file_type();
            let what = if ft.is_symlink() {
                let t = fs::read_link(self.root.join(&e.rel)).map_err(ioe("readlink", &self.root))?;
                format!("link:{}", t.display())
            } else if ft.is_file() {
                format!("file:{}", self.file_digest(&e.rel, &e.md)?)
            } else if ft.is_dir() {
                "dir".to_string()
            } else {
                "special".to_string()
            };
            out.insert(name, format!("{what} mode={:o} uid={} gid={}", e.md.mode() & 0o7777, e.md.uid(), e.md.gid()));
        }
        Ok(out)
    }
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
    fn stat_cache_lines_round_trip() {
        // paths may hold spaces (the path is the last field); a path with a newline is not cached
        let mut m = HashMap::new();
        let e = StatEntry { size: 3, mtime: (10, 20), ctime: (30, 40), ino: 7, digest: "sha256:ab".into() };
        m.insert("a dir/b c.txt".to_string(), e.clone());
        m.insert("bad\nname".to_string(), e.clone());
        let text = format_stat_cache(Path::new("/ctx"), &m);
        assert!(text.starts_with("# /ctx\n"), "{text}");
        let back = parse_stat_cache(&text);
        assert_eq!(back.len(), 1);
        assert_eq!(back.get("a dir/b c.txt"), Some(&e));
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
}
