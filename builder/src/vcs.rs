//! buildx's git information of a local build context (docker/buildx build/git.go): the
//! `vcs:source`, `vcs:revision` and `vcs:localdir:NAME` frontend attributes BuildKit moves into
//! the provenance's `buildkit_metadata.vcs`, and with `BUILDX_GIT_LABELS` the
//! `org.opencontainers.image.source`/`.revision` and `com.docker.image.source.entrypoint`
//! labels. Read with the `git` command, as buildx reads it; this module decides what to say
//! and runs git, nothing else (the build adds the labels, attest.rs writes the metadata).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

/// The label of the Dockerfile's path in the repository (buildx's DockerfileLabel).
pub const LABEL_ENTRYPOINT: &str = "com.docker.image.source.entrypoint";
/// ocispecs.AnnotationRevision and AnnotationSource.
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";

/// What buildx's environment asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `BUILDX_GIT_INFO` (default true): the `vcs:*` attributes.
    pub info: bool,
    /// `BUILDX_GIT_LABELS` (default false; `full` is true): the labels.
    pub labels: bool,
    /// `BUILDX_GIT_CHECK_DIRTY` (default false): `-dirty` after the revision of a tree with
    /// changes (`git status --porcelain --ignored` says anything).
    pub check_dirty: bool,
}

impl Settings {
    /// Reads the three variables through `get`; a value that is no boolean is refused naming
    /// it (buildx ignores it and keeps the default).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let flag = |name: &str, default: bool| -> Result<bool, String> {
            match get(name) {
                None => Ok(default),
                Some(v) if name == "BUILDX_GIT_LABELS" && v == "full" => Ok(true),
                Some(v) => crate::gobool::parse(&v).ok_or_else(|| {
                    let full = if name == "BUILDX_GIT_LABELS" { ", or full" } else { "" };
                    format!("{name}={v:?}: expected true or false{full}")
                }),
            }
        };
        Ok(Settings {
            info: flag("BUILDX_GIT_INFO", true)?,
            labels: flag("BUILDX_GIT_LABELS", false)?,
            check_dirty: flag("BUILDX_GIT_CHECK_DIRTY", false)?,
        })
    }
}

/// What git said of the context's repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repo {
    /// The work tree's top directory (`git rev-parse --show-toplevel`).
    pub root: PathBuf,
    /// HEAD's commit; None in a repository without one.
    pub commit: Option<String>,
    pub dirty: bool,
    /// The remote's URL, credentials redacted.
    pub remote: Option<String>,
}

/// The frontend attributes buildx adds: labels (`label:K` as `(K, V)`) and the `vcs:*` ones
/// (their keys without `vcs:`, as BuildKit writes them into `buildkit_metadata.vcs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitInfo {
    pub labels: Vec<(String, String)>,
    pub vcs: BTreeMap<String, String>,
}

/// buildx's getGitAttributes then its LocalMounts pass, from what git said: `dockerfile` the
/// Dockerfile's absolute path, `locals` each local directory the build sends (`context`,
/// `dockerfile`, named contexts) with its absolute, symlink-free path.
pub fn attributes(s: Settings, repo: &Repo, dockerfile: &Path, locals: &[(String, PathBuf)]) -> GitInfo {
    let mut out = GitInfo::default();
    if let Some(c) = &repo.commit {
        let rev = if s.check_dirty && repo.dirty { format!("{c}-dirty") } else { c.clone() };
        if s.labels {
            out.labels.push((LABEL_REVISION.into(), rev.clone()));
        }
        if s.info {
            out.vcs.insert("revision".into(), rev);
        }
    }
    if let Some(u) = &repo.remote {
        if s.labels {
            out.labels.push((LABEL_SOURCE.into(), u.clone()));
        }
        if s.info {
            out.vcs.insert("source".into(), u.clone());
        }
    }
    if s.labels {
        if let Some(r) = relative(&repo.root, dockerfile) {
            out.labels.push((LABEL_ENTRYPOINT.into(), r));
        }
    }
    if s.info {
        for (name, dir) in locals {
            if let Some(r) = relative(&repo.root, dir) {
                out.vcs.insert(format!("localdir:{name}"), r);
            }
        }
    }
    out
}

/// Go's filepath.Rel of `p` to `root` when `p` lies inside it (`.` for the root itself).
fn relative(root: &Path, p: &Path) -> Option<String> {
    let rest = p.strip_prefix(root).ok()?;
    if rest.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let s = rest.to_string_lossy().into_owned();
    Some(if s.is_empty() { ".".into() } else { s })
}

/// Go's path cleaning of an absolute path (`.` and `..` resolved lexically), as buildx's
/// filepath.Join gives it.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `git ARGS` in `dir` (with `-c log.showSignature=false`, as buildx), its first line of
/// output without quotes (buildx's clean); Err: git's words.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let o = Command::new("git")
        .arg("-c")
        .arg("log.showSignature=false")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "git was not found in the system".to_string()
            } else {
                format!("run git {}: {e}", args.join(" "))
            }
        })?;
    if !o.status.success() {
        return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim()));
    }
    let out = String::from_utf8_lossy(&o.stdout);
    Ok(out.split('\n').next().unwrap_or_default().replace('\'', ""))
}

/// BuildKit's urlutil.RedactCredentials: a URL's user name and password each become `xxxxx`;
/// an scp-like `user@host:path` (no URL to Go) stays.
pub fn redact(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else { return u.to_string() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return u.to_string() };
    let user = match userinfo.split_once(':') {
        Some(("", _)) => ":xxxxx".to_string(),
        Some(_) => "xxxxx:xxxxx".to_string(),
        None if userinfo.is_empty() => return u.to_string(),
        None => "xxxxx".to_string(),
    };
    format!("{scheme}://{user}@{host}{tail}")
}

/// What git says of the repository holding `dir`: None when `dir` is in none (and has no
/// `.git` directory of its own); Err when it has one git cannot read, or git is missing
/// (buildx then warns and builds without).
pub fn read_repo(dir: &Path) -> Result<Option<Repo>, String> {
    let has_git_dir = dir.join(".git").is_dir();
    match git(dir, &["rev-parse", "--is-inside-work-tree"]) {
        Ok(v) if v == "true" => {}
        Err(e) if e == "git was not found in the system" && has_git_dir => return Err(e),
        _ if has_git_dir => {
            return Err("failed to read current commit information with git rev-parse --is-inside-work-tree".into())
        }
        _ => return Ok(None),
    }
    let root = git(dir, &["rev-parse", "--show-toplevel"]).map_err(|e| format!("failed to get git root dir: {e}"))?;
    let commit = match git(dir, &["show", "--format=%H", "HEAD", "--quiet", "--"]) {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => None,
        // a repository without a commit yet (buildx's IsUnknownRevision)
        Err(e)
            if ["unknown revision or path not in the working tree", "bad revision"]
                .iter()
                .any(|w| e.to_ascii_lowercase().contains(w)) =>
        {
            None
        }
        Err(e) => return Err(format!("failed to get git commit: {e}")),
    };
    // buildx's IsDirty: anything in the status, ignored files too, or git failing
    let dirty = Command::new("git")
        .args(["-c", "log.showSignature=false", "status", "--porcelain", "--ignored"])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map(|o| !o.status.success() || !String::from_utf8_lossy(&o.stdout).trim().is_empty())
        .unwrap_or(true);
    // the current branch's upstream remote, else origin, else upstream (buildx's RemoteURL)
    let current = git(dir, &["symbolic-ref", "-q", "HEAD"])
        .ok()
        .filter(|r| !r.is_empty())
        .and_then(|r| git(dir, &["for-each-ref", "--format=%(upstream:remotename)", &r]).ok())
        .filter(|r| !r.is_empty());
    let remote = current
        .into_iter()
        .chain(["origin".to_string(), "upstream".to_string()])
        .find_map(|r| git(dir, &["remote", "get-url", &r]).ok().filter(|u| !u.is_empty()))
        .map(|u| redact(&u));
    Ok(Some(Repo { root: PathBuf::from(root), commit, dirty, remote }))
}

/// buildx's git information of a build whose context is the local directory `context`, with
/// the Dockerfile `dockerfile` (as given to `-f`, None: `Dockerfile` in the context) and the
/// other local directories `locals` (named contexts) it sends; `cwd` the directory relative
/// paths start from. Ok(default) when asked for nothing or the context is in no repository.
pub fn detect(
    s: Settings,
    cwd: &Path,
    context: &Path,
    dockerfile: Option<&Path>,
    locals: &[(String, PathBuf)],
) -> Result<GitInfo, String> {
    if !s.info && !s.labels {
        return Ok(GitInfo::default());
    }
    let wd = clean(&cwd.join(context));
    let Some(repo) = read_repo(&wd)? else { return Ok(GitInfo::default()) };
    let df = match dockerfile {
        Some(p) => clean(&cwd.join(p)),
        None => wd.join("Dockerfile"),
    };
    // the local mounts, as fsutil resolves their directories (symlinks evaluated)
    let df_dir = df.parent().map(Path::to_path_buf).unwrap_or_else(|| wd.clone());
    let mut mounts = vec![("context".to_string(), wd.clone()), ("dockerfile".to_string(), df_dir)];
    mounts.extend(locals.iter().cloned());
    let mounts: Vec<(String, PathBuf)> =
        mounts.into_iter().filter_map(|(k, d)| Some((k, clean(&cwd.join(d)).canonicalize().ok()?))).collect();
    Ok(attributes(s, &repo, &df, &mounts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_buildxs() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        // buildx's defaults: git info on, labels and the dirty check off
        assert_eq!(Settings::from_env(&env(&[])).unwrap(), Settings { info: true, labels: false, check_dirty: false });
        // "full" is the old spelling of true; Go's ParseBool spellings
        let s = Settings::from_env(&env(&[
            ("BUILDX_GIT_LABELS", "full"),
            ("BUILDX_GIT_INFO", "0"),
            ("BUILDX_GIT_CHECK_DIRTY", "T"),
        ]))
        .unwrap();
        assert_eq!(s, Settings { info: false, labels: true, check_dirty: true });
        let e = Settings::from_env(&env(&[("BUILDX_GIT_INFO", "full")])).unwrap_err();
        assert!(e.contains("BUILDX_GIT_INFO=\"full\"") && !e.contains("or full"), "{e}");
    }

    /// buildx's git_test.go cases: which attributes each setting gives.
    #[test]
    fn attributes_are_buildxs() {
        let repo = Repo {
            root: "/r".into(),
            commit: Some("c".repeat(40)),
            dirty: true,
            remote: Some("git@github.com:docker/buildx.git".into()),
        };
        let locals = vec![("context".to_string(), PathBuf::from("/r")), ("dockerfile".into(), "/r/app".into())];
        let df = Path::new("/r/app/Dockerfile");
        let s = Settings { info: true, labels: false, check_dirty: false };
        let got = attributes(s, &repo, df, &locals);
        assert!(got.labels.is_empty());
        assert_eq!(
            got.vcs,
            BTreeMap::from([
                ("localdir:context".to_string(), ".".to_string()),
                ("localdir:dockerfile".into(), "app".into()),
                ("revision".into(), "c".repeat(40)),
                ("source".into(), "git@github.com:docker/buildx.git".into()),
            ])
        );
        // labels and the dirty check
        let s = Settings { info: false, labels: true, check_dirty: true };
        let got = attributes(s, &repo, df, &locals);
        assert!(got.vcs.is_empty());
        assert_eq!(
            got.labels,
            vec![
                (LABEL_REVISION.to_string(), format!("{}-dirty", "c".repeat(40))),
                (LABEL_SOURCE.into(), "git@github.com:docker/buildx.git".into()),
                (LABEL_ENTRYPOINT.into(), "app/Dockerfile".into()),
            ]
        );
        // a Dockerfile or a directory outside the repository is not named; no commit, no remote
        let bare = Repo { root: "/r".into(), ..Default::default() };
        let s = Settings { info: true, labels: true, check_dirty: true };
        let got = attributes(s, &bare, Path::new("/elsewhere/Dockerfile"), &[("x".into(), "/rr".into())]);
        assert_eq!(got, GitInfo::default());
    }

    #[test]
    fn credentials_are_redacted_as_buildkit_does() {
        for (u, want) in [
            ("https://user:pass@example.com/r.git", "https://xxxxx:xxxxx@example.com/r.git"),
            ("https://:pass@example.com/r.git", "https://:xxxxx@example.com/r.git"),
            ("https://token@example.com/r.git", "https://xxxxx@example.com/r.git"),
            ("https://example.com/r.git", "https://example.com/r.git"),
            ("git@github.com:docker/buildx.git", "git@github.com:docker/buildx.git"),
            ("ssh://git@host/a@b", "ssh://xxxxx@host/a@b"),
        ] {
            assert_eq!(redact(u), want, "{u}");
        }
    }
}
