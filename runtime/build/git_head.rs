//! What `skiff --version` names as its commit, and the files of the git repository whose
//! change means HEAD may name another commit: build.rs tells cargo to run it again when one
//! changes (`cargo:rerun-if-changed`). Shared by build.rs and the skiff crate's unit tests.
//!
//! A commit on a branch rewrites the branch's ref, not HEAD; a `git pack-refs` (or gc) moves
//! refs into packed-refs; a worktree has its own HEAD in `.git/worktrees/NAME` and shares the
//! refs of the main repository (its "common dir"). Watching HEAD alone missed every commit.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git rev-parse ARGS` in `dir`, trimmed; None outside a repository or without git.
fn rev_parse(dir: &Path, args: &[&str]) -> Option<String> {
    let o = Command::new("git").arg("-C").arg(dir).arg("rev-parse").args(args).output().ok()?;
    if !o.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The short commit of HEAD in the repository holding `dir` ("unknown" outside one, as from
/// a source tarball), and the existing files and directories to watch.
pub fn head(dir: &Path) -> (String, Vec<PathBuf>) {
    let commit = rev_parse(dir, &["--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let Some(git_dir) = rev_parse(dir, &["--absolute-git-dir"]).map(PathBuf::from) else {
        return (commit, Vec::new());
    };
    let common = rev_parse(dir, &["--path-format=absolute", "--git-common-dir"]).map(PathBuf::from);
    let common = common.unwrap_or_else(|| git_dir.clone());
    let mut watch = vec![git_dir.join("HEAD")];
    // HEAD is `ref: refs/heads/NAME` on a branch, a commit id when detached
    let head = std::fs::read_to_string(git_dir.join("HEAD")).unwrap_or_default();
    if let Some(r) = head.trim().strip_prefix("ref: ") {
        // the loose ref, or, while it is packed, the directory a commit writes it into
        let loose = common.join(r);
        let mut dir_of = loose.parent().map(Path::to_path_buf);
        if loose.is_file() {
            watch.push(loose);
        } else {
            while let Some(d) = dir_of.clone().filter(|d| !d.is_dir()) {
                dir_of = d.parent().map(Path::to_path_buf);
            }
            watch.extend(dir_of);
        }
    }
    let packed = common.join("packed-refs");
    if packed.is_file() {
        watch.push(packed);
    }
    (commit, watch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch() -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "skiff-git-head-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    #[track_caller]
    fn git(dir: &Path, args: &[&str]) {
        let o = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("run git");
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }

    /// What cargo compares of the watched paths: each file's mtime (a directory: every file
    /// under it), and which exist.
    fn seen(watch: &[PathBuf]) -> BTreeMap<PathBuf, Option<SystemTime>> {
        let mut m = BTreeMap::new();
        let mut todo: Vec<PathBuf> = watch.to_vec();
        while let Some(p) = todo.pop() {
            match std::fs::metadata(&p) {
                Ok(md) if md.is_dir() => {
                    todo.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
                }
                Ok(md) => {
                    m.insert(p, md.modified().ok());
                }
                Err(_) => {
                    m.insert(p, None);
                }
            }
        }
        m
    }

    /// Each way HEAD comes to name another commit, in a repository and in a worktree: the
    /// commit changes, and so does a path build.rs watches (or cargo would keep the old
    /// commit in `skiff --version`). Watching .git/HEAD alone fails every case but the
    /// detached commit and the branch switch.
    #[test]
    fn every_way_head_moves_changes_a_watched_file() {
        if Command::new("git").arg("--version").output().is_err() {
            return; // no git: build.rs records "unknown" and watches nothing
        }
        let t = scratch();
        let repo = t.0.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let wt = t.0.join("wt");
        let commit = |d: &Path, m: &str| git(d, &["commit", "-q", "--allow-empty", "-m", m]);
        // (what, where, whether HEAD moves, the change); pack-refs and worktree add move
        // nothing but change what is watched next
        let wt_path = wt.to_str().unwrap().to_string();
        type Case<'a> = (&'a str, &'a Path, bool, Box<dyn Fn() + 'a>);
        let cases: Vec<Case> = vec![
            ("a commit on a branch", &repo, true, Box::new(|| commit(&repo, "c"))),
            ("refs packed", &repo, false, Box::new(|| git(&repo, &["pack-refs", "--all"]))),
            ("a commit on a packed branch", &repo, true, Box::new(|| commit(&repo, "p"))),
            ("refs packed again", &repo, false, Box::new(|| git(&repo, &["pack-refs", "--all"]))),
            (
                "a switch to another branch",
                &repo,
                true,
                Box::new(|| git(&repo, &["checkout", "-q", "-b", "o", "HEAD~1"])),
            ),
            ("detached", &repo, false, Box::new(|| git(&repo, &["checkout", "-q", "--detach"]))),
            ("a detached commit", &repo, true, Box::new(|| commit(&repo, "d"))),
            (
                "a worktree made",
                &repo,
                false,
                Box::new(|| git(&repo, &["worktree", "add", "-q", "-b", "w", &wt_path, "main"])),
            ),
            ("a commit in a worktree", &wt, true, Box::new(|| commit(&wt, "w"))),
            (
                "its branch moved from the main repository",
                &wt,
                true,
                Box::new(|| git(&repo, &["update-ref", "refs/heads/w", "main~1"])),
            ),
        ];
        for (what, dir, moves, change) in cases {
            let (before, watch) = head(dir);
            let then = seen(&watch);
            // file times come from a clock that ticks every few ms
            std::thread::sleep(std::time::Duration::from_millis(30));
            change();
            if moves {
                assert_ne!(before, head(dir).0, "{what}: HEAD did not move");
                assert_ne!(then, seen(&watch), "{what}: no watched path changed: {watch:?}");
            }
        }
    }

    /// Outside a repository (a source tarball): "unknown", nothing to watch.
    #[test]
    fn no_repository_no_commit() {
        let t = scratch();
        let inside = Command::new("git").arg("-C").arg(&t.0).args(["rev-parse", "--git-dir"]).output();
        if inside.map_or(true, |o| o.status.success()) {
            return; // no git, or the temp dir is inside a repository
        }
        assert_eq!(head(&t.0), ("unknown".to_string(), Vec::new()));
    }
}
