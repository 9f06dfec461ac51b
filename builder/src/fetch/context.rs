//! Remote build contexts: `slipway build URL` and `--build-context NAME=URL`, URL a git
//! repository (`https://host/repo.git#ref:subdir`, `git://`, `ssh://`, `git@host:repo.git`,
//! the queries ADD takes) or an http(s) URL. The context is fetched into a directory of the
//! store (`cache/context/`, one per remote, commit and subdir, or per downloaded content) that
//! the build then reads as it reads a local directory, so the stat cache and the steps' keys
//! work unchanged: a rebuild at the same commit asks `git ls-remote` (an http URL its ETag)
//! and finds the directory already made. A directory is made in the store's temp space and
//! renamed into place whole, so two builds fetching one context at once each see a complete
//! one, and a failed fetch leaves nothing. As BuildKit's frontend (dockerui) takes them: an
//! http main context is a tar archive (compressed or not), unpacked, or else a Dockerfile (the
//! context then holds that one file, `context`); an http named context is one file,
//! `context`, never unpacked.

use super::{git, http, FetchError};
use crate::store::Store;
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A context that is not a local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Git(git::GitRef),
    Http(String),
}

/// buildx's `IsRemoteURL`: an http(s) URL, or a git reference as ADD parses one; `Ok(None)`
/// for anything else (a path). A git reference with a bad query is an error.
pub fn parse(s: &str) -> Result<Option<Remote>, FetchError> {
    match git::parse(s) {
        Ok(Some(g)) => Ok(Some(Remote::Git(g))),
        Err(e) => Err(FetchError(e)),
        Ok(None) if s.starts_with("http://") || s.starts_with("https://") => Ok(Some(Remote::Http(s.to_string()))),
        Ok(None) => Ok(None),
    }
}

/// What the context is for: the build's own (an http archive is unpacked, else the content is
/// the Dockerfile) or a named one (an http URL is one file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Main,
    Named,
}

/// A remote context made a directory.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub dir: PathBuf,
    /// The main context's URL served a Dockerfile, not an archive: this file of `dir` is it.
    pub dockerfile: Option<PathBuf>,
    /// What was fetched, for the log (the commit, the content's digest, whether it was made
    /// before).
    pub note: String,
    /// Where it came from, for its SOURCE_DATE_EPOCH ([`Fetched::time`]).
    pub origin: Origin,
}

/// The source a remote context was made of.
#[derive(Debug, Clone)]
pub enum Origin {
    Git {
        remote: String,
        full_ref: String,
        commit: String,
    },
    Http(http::Record),
    /// `build -`: what stdin held.
    Stdin,
}

impl Fetched {
    /// The time BuildKit's frontend reads from this context when SOURCE_DATE_EPOCH names it
    /// (dockerfile2llb/epoch.go resolveSourceDateEpochFromState): a git context's commit's
    /// committer time; an http one's Last-Modified, else the mtime of the newest regular file
    /// when the download is a tar archive, else none. With it, what it is, for the log.
    pub fn time(&self, store: &Store) -> Result<(Option<i64>, String), FetchError> {
        match &self.origin {
            Origin::Git { remote, full_ref, commit } => {
                let t = git::commit_time(&git::bare_repo(store, remote), remote, full_ref, commit)?;
                Ok((Some(t), format!("the committer time of commit {commit} of {remote}")))
            }
            Origin::Http(rec) => Ok(http::time(store, rec)),
            Origin::Stdin => Ok((None, "the build context came from stdin, which has no time".to_string())),
        }
    }
}

fn key(parts: &[&str]) -> String {
    hex::encode(Sha256::digest(parts.join("\0").as_bytes()))
}

/// Fetches `r` (`url` as given, for the note; errors leave naming it to the caller) into its directory of the store, or finds it made
/// by an earlier build. `keep_git_dir` is `BUILDKIT_CONTEXT_KEEP_GIT_DIR` (the main context's
/// only); the URL's `?keep-git-dir=` keeps it too.
pub fn fetch(store: &Store, url: &str, r: &Remote, used: Use, keep_git_dir: bool) -> Result<Fetched, FetchError> {
    let base = store.root.join("cache/context");
    match r {
        Remote::Git(g) => {
            let keep = keep_git_dir || g.keep_git_dir == Some(true);
            let (commit, full_ref) = git::resolve(g)?;
            let flags = format!("keep={keep} submodules={}", g.submodules);
            let dir = base.join(key(&["git", &g.remote, &commit, &g.subdir, &flags]));
            let mut note = format!("{url}: commit {commit}");
            if dir.is_dir() {
                note.push_str(", checked out by an earlier build");
            } else {
                let t = store.tempdir("context").map_err(|e| FetchError(e.to_string()))?;
                let tree = t.path.join("tree");
                git::checkout(
                    &git::bare_repo(store, &g.remote),
                    &g.remote,
                    &full_ref,
                    &commit,
                    &g.subdir,
                    keep,
                    g.submodules,
                    &tree,
                )?;
                place(store, &tree, &dir)?;
            }
            let origin = Origin::Git { remote: g.remote.clone(), full_ref, commit };
            Ok(Fetched { dir, dockerfile: None, note, origin })
        }
        Remote::Http(u) => {
            let rec = http::resolve(store, u)?;
            let blob = store.blob_path(&rec.digest);
            let (dir, dockerfile, note) = unpacked(store, url, &blob, &rec.digest, used)?;
            Ok(Fetched { dir, dockerfile, note, origin: Origin::Http(rec) })
        }
    }
}

/// `build -` (`used`: Main) and `build -f -` (Named: the Dockerfile alone), as buildx reads
/// stdin: a tar archive (gzip, bzip2, xz, zstd or none) is the context, anything else is a
/// Dockerfile (the context then holds that one file, `context`, as an http one does). What was
/// read is made a directory of the store by its digest, as a download is.
pub fn stdin(store: &Store, used: Use) -> Result<Fetched, FetchError> {
    use std::io::Write;
    let err = |what: &str, e: std::io::Error| FetchError(format!("{what}: {e}"));
    let t = store.tempdir("context").map_err(|e| FetchError(e.to_string()))?;
    let file = t.path.join("stdin");
    let mut w = crate::store::HashWriter::new(std::io::BufWriter::new(
        fs::File::create(&file).map_err(|e| err("create a file for stdin", e))?,
    ));
    std::io::copy(&mut std::io::stdin().lock(), &mut w).map_err(|e| err("read stdin", e))?;
    w.flush().map_err(|e| err("write stdin's copy", e))?;
    let digest = w.digest();
    drop(w);
    let (dir, dockerfile, note) = unpacked(store, "stdin", &file, &digest, used)?;
    Ok(Fetched { dir, dockerfile, note, origin: Origin::Stdin })
}

/// The context directory of downloaded (or read) content `file` of `digest`: unpacked when it is
/// the main context's tar archive, else the one file `context`; made once per content. With
/// the Dockerfile (the main context's file that is no archive) and the log's note.
fn unpacked(
    store: &Store,
    url: &str,
    file: &Path,
    digest: &str,
    used: Use,
) -> Result<(PathBuf, Option<PathBuf>, String), FetchError> {
    let base = store.root.join("cache/context");
    let hexd = digest.trim_start_matches("sha256:");
    let archive = used == Use::Main && crate::layer::is_archive(file);
    if used == Use::Main && !archive {
        if let Some(kind) = compressed(file) {
            return Err(FetchError(format!(
                "{kind} data that holds no tar archive: a context is a tar archive (gzip, bzip2, xz, zstd or none) \
                 or a Dockerfile"
            )));
        }
    }
    let what = if archive { "tar" } else { "file" };
    let dir = base.join(key(&["http", what, hexd]));
    let mut note = format!("{url}: {digest} ({})", if archive { "a tar archive" } else { "one file" });
    if dir.is_dir() {
        note.push_str(", unpacked by an earlier build");
    } else {
        let t = store.tempdir("context").map_err(|e| FetchError(e.to_string()))?;
        let tree = t.path.join("tree");
        fs::create_dir_all(&tree).map_err(|e| FetchError(format!("create {}: {e}", tree.display())))?;
        if archive {
            let rd = crate::layer::open_decompressed(file)
                .map_err(|e| FetchError(format!("open {}: {e}", file.display())))?;
            crate::layer::extract(rd, &tree, crate::layer::Whiteouts::Keep)
                .map_err(|e| FetchError(format!("unpack the context archive: {e}")))?;
        } else {
            // BuildKit's http source names the file `context` and writes it 0600
            let f = tree.join("context");
            fs::copy(file, &f).map_err(|e| FetchError(format!("copy the download to {}: {e}", f.display())))?;
            fs::set_permissions(&f, fs::Permissions::from_mode(0o600))
                .map_err(|e| FetchError(format!("chmod {}: {e}", f.display())))?;
        }
        place(store, &tree, &dir)?;
    }
    let dockerfile = (used == Use::Main && !archive).then(|| dir.join("context"));
    Ok((dir, dockerfile, note))
}

/// The compression a file's first bytes name, when it is one (what `open_decompressed` reads).
fn compressed(p: &Path) -> Option<&'static str> {
    use std::io::Read;
    let mut m = [0u8; 6];
    let n = fs::File::open(p).and_then(|mut f| f.read(&mut m)).ok()?;
    let m = &m[..n];
    if m.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if m.starts_with(b"BZh") {
        Some("bzip2")
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else {
        None
    }
}

/// Moves a finished tree to `dir`, durable first (store/tree.rs);
/// when another build put one there first (the same content, by its name), that one is kept
/// and this one dropped with its temp dir.
fn place(store: &Store, tree: &Path, dir: &Path) -> Result<(), FetchError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(|e| FetchError(format!("create {}: {e}", parent.display())))?;
    }
    store
        .publish_tree(tree, dir)
        .map(drop)
        .map_err(|e| FetchError(format!("move the context to {}: {e}", dir.display())))
}

/// What `prune` drops: every context directory (a later build fetches or unpacks again).
/// Returns the bytes freed. The caller holds the store's gc lock.
pub fn prune(store: &Store) -> u64 {
    super::remove_entries(&store.root.join("cache/context"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_contexts_as_buildx_tells_them() {
        // urlutil.IsRemoteURL: http(s) URLs and git references; anything else is a path
        assert!(matches!(parse("https://example.com/ctx.tar.gz"), Ok(Some(Remote::Http(_)))));
        assert!(matches!(parse("http://127.0.0.1:8080/Dockerfile"), Ok(Some(Remote::Http(_)))));
        match parse("https://h/r.git#main:sub") {
            Ok(Some(Remote::Git(g))) => assert_eq!((g.ref_name.as_str(), g.subdir.as_str()), ("main", "sub")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("git://127.0.0.1/repo"), Ok(Some(Remote::Git(_)))));
        assert!(matches!(parse("git@github.com:moby/buildkit.git"), Ok(Some(Remote::Git(_)))));
        for path in [".", "dir/sub", "./x.git", "/abs/path", "ftp://host/x"] {
            assert!(matches!(parse(path), Ok(None)), "{path}");
        }
        assert!(parse("https://h/r.git?nope=1").unwrap_err().0.contains("unexpected query"));
    }
}
