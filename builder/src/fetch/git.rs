//! Git sources of ADD through the system's `git`: the source word parsed as BuildKit's
//! `dfgitutil.ParseGitRef` does (`https://host/repo.git#ref:subdir`, `git@host:repo.git`,
//! `ssh://`, `git://`, the `?ref=&tag=&branch=&subdir=&checksum=&keep-git-dir=&submodules=
//! &mtime=` queries), the ref resolved to a commit with `git ls-remote` (what planning does:
//! the commit is the cache key), and on a miss the commit fetched into a bare repository kept
//! in the store (`cache/git/`, one per remote) and checked out into a directory. Credentials
//! are git's own (its credential helpers, `~/.ssh`, `SSH_AUTH_SOCK`): the builder runs git as
//! the user who runs slipway.

use super::FetchError;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A git source, as its word asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRef {
    /// The repository (fragment and query removed).
    pub remote: String,
    /// A branch, tag or commit; empty for the remote's HEAD.
    pub ref_name: String,
    /// A directory of the repository, relative and cleaned; "" for the top.
    pub subdir: String,
    /// `?checksum=` / `?commit=`: a prefix the commit must have.
    pub checksum: Option<String>,
    pub keep_git_dir: Option<bool>,
    pub submodules: bool,
    /// `?mtime=commit` (else "checkout": the build's epoch here).
    pub mtime_commit: bool,
    /// `?fetch-by-commit`: the checksum is the commit, no ls-remote.
    pub fetch_by_commit: bool,
}

/// `path.Join("/", p)` without the leading `/`.
fn clean_rel(p: &str) -> String {
    crate::glob::clean(&format!("/{p}")).trim_start_matches('/').to_string()
}

/// `application/x-www-form-urlencoded` pairs (Go's `url.ParseQuery`).
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| super::unescape(&s.replace('+', " "));
            (dec(k), dec(v))
        })
        .collect()
}

/// BuildKit's `sshutil.IsImplicitSSHTransport`: `user@host:path[?query][#fragment]`.
fn scp_style(s: &str) -> Option<(String, String, String)> {
    let (user, rest) = s.split_once('@')?;
    if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return None;
    }
    let (host, path) = rest.split_once(':')?;
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return None;
    }
    let (path, fragment) = match path.split_once('#') {
        Some((p, f)) => (p, f),
        None => (path, ""),
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    };
    Some((format!("{user}@{host}:{path}"), query.to_string(), fragment.to_string()))
}

/// Parses an ADD source as a git reference: `Ok(None)` when it is not one (a URL of a file, a
/// path of the context), an error when it is one but malformed.
pub fn parse(src: &str) -> Result<Option<GitRef>, String> {
    if src.starts_with("./") || src.starts_with("../") || src.starts_with("github.com/") {
        // (BuildKit takes `github.com/x/y` as git only for build contexts)
        return Ok(None);
    }
    let (remote, query, fragment) = match src.split_once("://") {
        Some((scheme, rest)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(scheme.as_str(), "http" | "https" | "ssh" | "git") {
                return Ok(None);
            }
            let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
            let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
            let path = rest.find('/').map_or("", |i| &rest[i..]);
            if matches!(scheme.as_str(), "http" | "https") && !super::unescape(path).ends_with(".git") {
                return Ok(None);
            }
            (format!("{scheme}://{rest}"), query.to_string(), fragment.to_string())
        }
        Some(_) => return Ok(None),
        None => match scp_style(src) {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let mut g = GitRef {
        remote,
        ref_name: String::new(),
        subdir: String::new(),
        checksum: None,
        keep_git_dir: None,
        submodules: true,
        mtime_commit: false,
        fetch_by_commit: false,
    };
    if !fragment.is_empty() {
        let (r, sub) = fragment.split_once(':').unwrap_or((&fragment, ""));
        g.ref_name = r.to_string();
        g.subdir = clean_rel(sub);
    }
    let (mut tag, mut branch) = (String::new(), String::new());
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in parse_query(&query) {
        if seen.contains(&k) {
            return Err(format!("query {k:?} has multiple values"));
        }
        seen.push(k.clone());
        let flag = |what: &str| -> Result<bool, String> {
            match v.as_str() {
                "" => Ok(true),
                v => crate::gobool::parse(v).ok_or_else(|| format!("invalid {what} value: {v:?}")),
            }
        };
        if v.is_empty() && !matches!(k.as_str(), "submodules" | "keep-git-dir" | "fetch-by-commit") {
            return Err(format!("query {k:?} has no value"));
        }
        match k.as_str() {
            "ref" => {
                if !g.ref_name.is_empty() && g.ref_name != v {
                    return Err(format!("ref conflicts: {:?} vs {v:?}", g.ref_name));
                }
                g.ref_name = v;
            }
            "tag" => tag = v,
            "branch" => branch = v,
            "subdir" => {
                let v = clean_rel(&v);
                if !g.subdir.is_empty() && g.subdir != v {
                    return Err(format!("subdir conflicts: {:?} vs {v:?}", g.subdir));
                }
                g.subdir = v;
            }
            "checksum" | "commit" => g.checksum = Some(v),
            "keep-git-dir" => g.keep_git_dir = Some(flag("keep-git-dir")?),
            "submodules" => g.submodules = flag("submodules")?,
            "fetch-by-commit" => g.fetch_by_commit = flag("fetch-by-commit")?,
            "mtime" => match v.as_str() {
                "checkout" => g.mtime_commit = false,
                "commit" => g.mtime_commit = true,
                _ => return Err(format!("invalid mtime value: {v:?} (must be \"checkout\" or \"commit\")")),
            },
            _ => return Err(format!("unexpected query {k:?}")),
        }
    }
    if !tag.is_empty() {
        let t = if tag.starts_with("refs/tags/") { tag.clone() } else { format!("refs/tags/{tag}") };
        if !g.ref_name.is_empty() && g.ref_name != t {
            return Err(format!("ref conflicts: {:?} vs {t:?}", g.ref_name));
        }
        g.ref_name = t;
    }
    if !branch.is_empty() {
        if !tag.is_empty() {
            return Err("branch conflicts with tag".into());
        }
        let b = if branch.starts_with("refs/heads/") { branch } else { format!("refs/heads/{branch}") };
        if !g.ref_name.is_empty() && g.ref_name != b {
            return Err(format!("ref conflicts: {:?} vs {b:?}", g.ref_name));
        }
        g.ref_name = b;
    }
    Ok(Some(g))
}

/// Whether `s` is a whole commit id (sha1 or sha256).
pub fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// `git ARGS` (in `dir` when given), its stdout; the error names the command and git's words.
/// Git never prompts (a build is not interactive).
fn git(dir: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Result<String, FetchError> {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.args(args).env("GIT_TERMINAL_PROMPT", "0").env("GIT_ASKPASS", "true").env("LC_ALL", "C").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().map_err(|e| {
        let why =
            if e.kind() == std::io::ErrorKind::NotFound { "git is not installed".to_string() } else { e.to_string() };
        FetchError(format!("run git {}: {why}", args.join(" ")))
    })?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr);
        return Err(FetchError(format!("git {}: {}", args.join(" "), err.trim())));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The commit `g` names, as BuildKit resolves it before it fetches anything: a commit id is
/// itself; else `git ls-remote` (the remote's default branch for an empty ref), where a
/// branch wins over a tag of the same name and an annotated tag gives the commit it points
/// to. The checksum, when given, must be a prefix of it. Also returns the full ref name.
pub fn resolve(g: &GitRef) -> Result<(String, String), FetchError> {
    if let Some(c) = &g.checksum {
        if c.is_empty() || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FetchError(format!("invalid checksum {c} for Git URL, expected hex commit hash")));
        }
    }
    let check = |sha: &str| -> Result<(), FetchError> {
        match &g.checksum {
            Some(c) if !sha.starts_with(&c.to_ascii_lowercase()) => {
                Err(FetchError(format!("expected checksum to match {c}, got {sha}")))
            }
            _ => Ok(()),
        }
    };
    if is_commit(&g.ref_name) {
        check(&g.ref_name)?;
        return Ok((g.ref_name.clone(), g.ref_name.clone()));
    }
    if g.fetch_by_commit {
        let c = g.checksum.clone().unwrap_or_default().to_ascii_lowercase();
        if !is_commit(&c) {
            return Err(FetchError("fetch-by-commit requires a full commit SHA checksum".into()));
        }
        let r = if g.ref_name.is_empty() {
            c.clone()
        } else if g.ref_name.starts_with("refs/") {
            g.ref_name.clone()
        } else {
            format!("refs/heads/{}", g.ref_name)
        };
        return Ok((c, r));
    }
    let mut r = g.ref_name.clone();
    if r.is_empty() {
        let out = git(None, &["ls-remote", "--symref", "--", &g.remote, "HEAD"], &[])?;
        r = out
            .lines()
            .find_map(|l| l.strip_prefix("ref: ").and_then(|l| l.split('\t').next()))
            .map(str::to_string)
            .ok_or_else(|| FetchError(format!("{}: the remote names no default branch", g.remote)))?;
    }
    let out = git(None, &["ls-remote", "--", &g.remote, &r, &format!("{r}^{{}}")], &[])?;
    let trimmed = |p: &str| r.strip_prefix(p).unwrap_or(&r).to_string();
    let partial = format!("refs/{}", trimmed("refs/"));
    let head = format!("refs/heads/{}", trimmed("refs/heads/"));
    let tag = format!("refs/tags/{}", trimmed("refs/tags/"));
    let peeled = format!("{tag}^{{}}");
    let (mut sha, mut used) = (String::new(), String::new());
    let (mut head_sha, mut tag_sha, mut peeled_sha) = (String::new(), String::new(), String::new());
    for line in out.lines() {
        let Some((s, name)) = line.split_once('\t') else { continue };
        if name == head {
            head_sha = s.to_string();
        } else if name == tag {
            tag_sha = s.to_string();
        } else if name == peeled {
            peeled_sha = s.to_string();
        } else if name == partial {
            sha = s.to_string();
            used = name.to_string();
        }
    }
    if sha.is_empty() && !head_sha.is_empty() {
        (sha, used) = (head_sha, head);
    }
    if !sha.is_empty() {
        peeled_sha.clear();
    }
    if sha.is_empty() && !tag_sha.is_empty() {
        (sha, used) = (tag_sha, tag);
    }
    if sha.is_empty() {
        return Err(FetchError(format!("repository {} does not contain ref {r}", g.remote)));
    }
    // an annotated tag: the commit it points to is what is checked out
    let commit = if peeled_sha.is_empty() { sha } else { peeled_sha };
    if !is_commit(&commit) {
        return Err(FetchError(format!("invalid commit sha {commit:?} from {}", g.remote)));
    }
    check(&commit)?;
    Ok((commit, used))
}

/// The bare repository the store keeps for `remote` (`cache/git/<sha256 of the remote>`),
/// shared by ADD and build contexts.
pub fn bare_repo(store: &crate::store::Store, remote: &str) -> std::path::PathBuf {
    store.root.join("cache/git").join(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(remote.as_bytes())))
}

/// Locks the bare repository `bare` (made on first use) and fetches `commit` of `remote`
/// (named `full_ref` there) into it unless it has it; the lock is held while the returned
/// guard lives.
fn lock_and_fetch(
    bare: &Path,
    remote: &str,
    full_ref: &str,
    commit: &str,
) -> Result<nix::fcntl::Flock<fs::File>, FetchError> {
    let io = |what: &str, p: &Path| {
        let p = p.to_path_buf();
        let what = what.to_string();
        move |e: std::io::Error| FetchError(format!("{what} {}: {e}", p.display()))
    };
    // One build, or one stage, at a time per repository (as a cache mount's sharing=locked):
    // two `git init`s or `remote add`s of a new one, or two fetches into it, would fail each
    // other. flock(2): released when the process dies, nothing to clean up after a crash.
    fs::create_dir_all(bare).map_err(io("create", bare))?;
    let lock = bare.join("slipway.lock");
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock).map_err(io("open", &lock))?;
    let held = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| FetchError(format!("lock {}: {e}", lock.display())))?;
    if !bare.join("HEAD").is_file() {
        git(Some(bare), &["init", "--bare", "--quiet"], &[])?;
        git(Some(bare), &["remote", "add", "origin", remote], &[])?;
    }
    let have = |c: &str| git(Some(bare), &["cat-file", "-e", &format!("{c}^{{commit}}")], &[]).is_ok();
    if !have(commit) {
        // the ref as ls-remote named it, shallow; a commit id that is no ref's tip may need
        // the whole history (servers need not serve unadvertised commits)
        let by_ref = !is_commit(full_ref)
            && git(
                Some(bare),
                &[
                    "fetch",
                    "--quiet",
                    "--depth=1",
                    "--no-tags",
                    "--force",
                    "--",
                    "origin",
                    &format!("+{full_ref}:{full_ref}"),
                ],
                &[],
            )
            .is_ok();
        if !(by_ref && have(commit))
            && git(Some(bare), &["fetch", "--quiet", "--depth=1", "--no-tags", "--", "origin", commit], &[]).is_err()
        {
            git(
                Some(bare),
                &["fetch", "--quiet", "--tags", "--force", "--", "origin", "+refs/heads/*:refs/heads/*"],
                &[],
            )?;
        }
        if !have(commit) {
            return Err(FetchError(format!(
                "{remote}: commit {commit} (what {full_ref} named when the build was planned) could not be fetched"
            )));
        }
    }
    Ok(held)
}

/// The committer time of `commit` of `remote` (named `full_ref` there), in seconds since
/// 1970, as BuildKit reads it from the commit object (SOURCE_DATE_EPOCH of a git source):
/// fetched into the bare repository `bare` first when it is not there yet.
pub fn commit_time(bare: &Path, remote: &str, full_ref: &str, commit: &str) -> Result<i64, FetchError> {
    let _held = lock_and_fetch(bare, remote, full_ref, commit)?;
    let out = git(Some(bare), &["log", "-1", "--format=%ct", &format!("{commit}^{{commit}}")], &[])?;
    out.trim()
        .parse::<i64>()
        .map_err(|_| FetchError(format!("{remote}: commit {commit} has no committer time ({:?})", out.trim())))
}

/// Fetches `commit` of `remote` (named `full_ref` there) into the bare repository `bare`
/// (made on first use) and checks its tree out into the empty directory `dir`: `subdir`'s
/// contents only, `.git` kept when `keep_git_dir` (a shallow clone of that commit, `origin`
/// the remote), submodules updated unless `!submodules`. Files get 0644 or 0755, directories
/// 0755, whatever the umask (BuildKit's modes). Returns the commit's time. The bare repository
/// is locked meanwhile: another process or stage fetching the same remote waits.
#[allow(clippy::too_many_arguments)]
pub fn checkout(
    bare: &Path,
    remote: &str,
    full_ref: &str,
    commit: &str,
    subdir: &str,
    keep_git_dir: bool,
    submodules: bool,
    dir: &Path,
) -> Result<i64, FetchError> {
    let io = |what: &str, p: &Path| {
        let p = p.to_path_buf();
        let what = what.to_string();
        move |e: std::io::Error| FetchError(format!("{what} {}: {e}", p.display()))
    };
    let _held = lock_and_fetch(bare, remote, full_ref, commit)?;
    let pin = format!("refs/slipway/{commit}");
    git(Some(bare), &["update-ref", &pin, commit], &[])?;
    let work = if subdir.is_empty() { dir.to_path_buf() } else { dir.join(".slipway-checkout") };
    fs::create_dir_all(&work).map_err(io("create", &work))?;
    let bare_s = bare.to_string_lossy().into_owned();
    let work_s = work.to_string_lossy().into_owned();
    if keep_git_dir && subdir.is_empty() {
        let gd = work.join(".git");
        let gd_s = gd.to_string_lossy().into_owned();
        let g = |args: &[&str]| -> Result<String, FetchError> {
            let mut a = vec!["--git-dir", gd_s.as_str(), "--work-tree", work_s.as_str()];
            a.extend_from_slice(args);
            git(Some(&work), &a, &[])
        };
        g(&["-c", "init.defaultBranch=master", "init", "--quiet"])?;
        g(&["remote", "add", "origin", &format!("file://{bare_s}")])?;
        let pull = if is_commit(full_ref) { format!("{pin}:{pin}") } else { format!("{pin}:{full_ref}") };
        g(&["fetch", "--quiet", "-u", "--depth=1", "--", "origin", &pull])?;
        // a detached HEAD, as BuildKit leaves it
        g(&["checkout", "--quiet", "FETCH_HEAD"])?;
        g(&["remote", "set-url", "origin", remote])?;
        g(&["reflog", "expire", "--all", "--expire=now"])?;
        let _ = fs::remove_file(gd.join("FETCH_HEAD"));
        if submodules {
            g(&["submodule", "--quiet", "update", "--init", "--recursive", "--depth=1"])?;
        }
    } else {
        let index = work.join(".slipway-index");
        let index_s = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_s.as_str())];
        let base = ["--git-dir", bare_s.as_str(), "--work-tree", work_s.as_str()];
        let run = |args: &[&str]| -> Result<String, FetchError> {
            let mut a = base.to_vec();
            a.extend_from_slice(args);
            git(Some(&work), &a, &env)
        };
        run(&["checkout", "--quiet", "--no-overlay", commit, "--", "."])?;
        if submodules && work.join(".gitmodules").is_file() {
            run(&["submodule", "--quiet", "update", "--init", "--recursive", "--depth=1"])?;
        }
        let _ = fs::remove_file(&index);
    }
    let time = git(Some(bare), &["log", "-1", "--format=%ct", &format!("{commit}^{{commit}}")], &[])?
        .trim()
        .parse::<i64>()
        .unwrap_or(0);
    if !subdir.is_empty() {
        let from = crate::rootfs::resolve_in_root(&work, subdir, true);
        let md = fs::symlink_metadata(&from)
            .map_err(|_| FetchError(format!("{remote}: no directory {subdir:?} in commit {commit}")))?;
        if !md.is_dir() {
            return Err(FetchError(format!("{remote}: {subdir:?} is not a directory in commit {commit}")));
        }
        for e in fs::read_dir(&from).map_err(io("read", &from))? {
            let e = e.map_err(io("read", &from))?;
            let to = dir.join(e.file_name());
            fs::rename(e.path(), &to).map_err(io("move", &to))?;
        }
        fs::remove_dir_all(&work).map_err(io("remove", &work))?;
    }
    normalize_modes(dir, keep_git_dir)?;
    Ok(time)
}

/// Files 0644, or 0755 when git made them executable; directories 0755 (`.git` left alone).
fn normalize_modes(dir: &Path, keep_git_dir: bool) -> Result<(), FetchError> {
    let mut it = walkdir::WalkDir::new(dir).into_iter();
    while let Some(e) = it.next() {
        let e = e.map_err(|e| FetchError(format!("walk checkout: {e}")))?;
        if keep_git_dir && e.depth() == 1 && e.file_name() == ".git" {
            it.skip_current_dir();
            continue;
        }
        let ft = e.file_type();
        let mode = if ft.is_dir() {
            0o755
        } else if ft.is_file() {
            let m = e.metadata().map_err(|err| FetchError(format!("stat {}: {err}", e.path().display())))?;
            if m.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            }
        } else {
            continue;
        };
        fs::set_permissions(e.path(), fs::Permissions::from_mode(mode))
            .map_err(|err| FetchError(format!("chmod {}: {err}", e.path().display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(remote: &str, ref_name: &str, subdir: &str) -> GitRef {
        GitRef {
            remote: remote.into(),
            ref_name: ref_name.into(),
            subdir: subdir.into(),
            checksum: None,
            keep_git_dir: None,
            submodules: true,
            mtime_commit: false,
            fetch_by_commit: false,
        }
    }

    #[test]
    fn git_refs_as_buildkit_parses_them() {
        // dfgitutil.ParseGitRef and gitutil.ParseURL: which words are git, and their parts
        let rows: &[(&str, Option<GitRef>)] = &[
            ("https://github.com/moby/buildkit.git", Some(r("https://github.com/moby/buildkit.git", "", ""))),
            (
                "https://github.com/moby/buildkit.git#v0.10.1:docs/../frontend",
                Some(r("https://github.com/moby/buildkit.git", "v0.10.1", "frontend")),
            ),
            ("http://127.0.0.1:9418/r.git#main", Some(r("http://127.0.0.1:9418/r.git", "main", ""))),
            ("git://host/r#:sub/", Some(r("git://host/r", "", "sub"))),
            ("ssh://git@host/r.git#abc", Some(r("ssh://git@host/r.git", "abc", ""))),
            ("git@github.com:moby/buildkit.git#main:docs", Some(r("git@github.com:moby/buildkit.git", "main", "docs"))),
            ("https://h/r.git?branch=dev&subdir=a/b", Some(r("https://h/r.git", "refs/heads/dev", "a/b"))),
            ("https://h/r.git?tag=v1", Some(r("https://h/r.git", "refs/tags/v1", ""))),
            // not git: a URL of a file, a context path, an unknown scheme
            ("https://example.com/file.tar.gz", None),
            ("https://example.com/repo.git.tar", None),
            ("./repo.git", None),
            ("github.com/moby/buildkit", None),
            ("ftp://host/r.git", None),
            ("dir/file", None),
        ];
        for (src, want) in rows {
            assert_eq!(&parse(src).unwrap(), want, "{src}");
        }
        let g =
            parse("https://h/r.git?keep-git-dir=true&checksum=abc123&submodules=false&mtime=commit").unwrap().unwrap();
        assert_eq!(
            (g.keep_git_dir, g.checksum.as_deref(), g.submodules, g.mtime_commit),
            (Some(true), Some("abc123"), false, true)
        );
        for (src, err) in [
            ("https://h/r.git?nope=1", "unexpected query \"nope\""),
            ("https://h/r.git?ref=a&ref=b", "has multiple values"),
            ("https://h/r.git#a?ref=b", ""),
            ("https://h/r.git?tag=a&branch=b", "branch conflicts with tag"),
            ("https://h/r.git?mtime=now", "invalid mtime value"),
            ("https://h/r.git?subdir=", "has no value"),
        ] {
            match parse(src) {
                Err(e) => assert!(!err.is_empty() && e.contains(err), "{src}: {e}"),
                Ok(g) => assert!(err.is_empty(), "{src}: {g:?}"),
            }
        }
    }

    #[test]
    fn commits_are_whole_lowercase_ids() {
        assert!(is_commit(&"a".repeat(40)));
        assert!(is_commit(&"0".repeat(64)));
        assert!(!is_commit("abc123"));
        assert!(!is_commit(&"A".repeat(40)));
    }
}
