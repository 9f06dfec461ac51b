//! Paths inside a root directory (a build context or an image rootfs): symlinks followed as
//! if `root` were `/` (never escaping it), user/group names looked up in the root's own
//! /etc/passwd and /etc/group, wildcards expanded, and the few writes every step makes in a
//! rootfs (`mkdir_all` for WORKDIR, RUN's working dir and COPY's destination; replacing an
//! entry). What to write there is the executor's business.

use crate::glob;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Resolves `path` (absolute or relative to `/`) under `root`, following symlinks as the
/// kernel would inside a chroot. With `follow_last` false the final component is not followed.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> PathBuf {
    let mut parts: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path.split('/').filter(|s| !s.is_empty()).rev().map(str::to_string).collect();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let is_last = pending.is_empty();
        let mut cand = root.to_path_buf();
        for p in &parts {
            cand.push(p);
        }
        cand.push(&c);
        if is_last && !follow_last {
            parts.push(c);
            break;
        }
        match fs::symlink_metadata(&cand) {
            Ok(md) if md.file_type().is_symlink() && hops < 255 => {
                hops += 1;
                let Ok(t) = fs::read_link(&cand) else {
                    parts.push(c);
                    continue;
                };
                let t = t.to_string_lossy().to_string();
                if t.starts_with('/') {
                    parts.clear();
                }
                for seg in t.split('/').filter(|s| !s.is_empty()).rev() {
                    pending.push(seg.to_string());
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    for p in parts {
        out.push(p);
    }
    out
}

/// Joins a possibly relative container path onto a working dir, cleaned (`path.Join`).
pub fn join_container_path(wd: &str, p: &str) -> String {
    if p.starts_with('/') {
        crate::glob::clean(p)
    } else {
        crate::glob::clean(&format!("/{wd}/{p}"))
    }
}

/// A resolved process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

fn read_db(root: &Path, file: &str) -> Vec<Vec<String>> {
    let p = resolve_in_root(root, file, true);
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Resolves `user[:group]` (names or ids) against the rootfs' passwd and group files, as runc
/// does for `USER`.
pub fn resolve_user(root: &Path, spec: &str) -> Result<Ident, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let passwd = read_db(root, "/etc/passwd");
    let groups = read_db(root, "/etc/group");
    let entry = passwd.iter().find(|f| f.len() >= 4 && (f[0] == user || f[2] == user));
    let (uid, mut gid, name) = match (entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>().map_err(|_| format!("invalid uid in passwd for {user}"))?,
            f[3].parse::<u32>().unwrap_or(0),
            Some(f[0].clone()),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => return Err(format!("unable to find user {user}: no matching entries in passwd file")),
    };
    if let Some(g) = group {
        gid = match groups.iter().find(|f| f.len() >= 3 && (f[0] == g || f[2] == g)) {
            Some(f) => f[2].parse().map_err(|_| format!("invalid gid in group for {g}"))?,
            None => g.parse().map_err(|_| format!("unable to find group {g}: no matching entries in group file"))?,
        };
    }
    let mut additional = Vec::new();
    if group.is_none() {
        if let Some(n) = name {
            for f in &groups {
                if f.len() >= 4 && f[3].split(',').any(|m| m == n) {
                    if let Ok(g) = f[2].parse::<u32>() {
                        if g != gid && !additional.contains(&g) {
                            additional.push(g);
                        }
                    }
                }
            }
        }
    }
    Ok(Ident { uid, gid, additional_gids: additional })
}

/// Creates `path` and missing parents inside `root` (symlinks resolved in-root); new dirs get
/// mode 0755 and `owner`. Returns the host path.
pub fn mkdir_all(root: &Path, path: &str, owner: Option<(u32, u32)>) -> io::Result<PathBuf> {
    mkdir_all_mode(root, path, owner, 0o755)
}

/// `mkdir_all` making new dirs with `mode`.
pub fn mkdir_all_mode(root: &Path, path: &str, owner: Option<(u32, u32)>, mode: u32) -> io::Result<PathBuf> {
    let mut cur = String::new();
    let mut host = root.to_path_buf();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        cur = format!("{cur}/{comp}");
        host = resolve_in_root(root, &cur, true);
        match fs::symlink_metadata(&host) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::other(format!("{cur}: not a directory")));
            }
            Err(_) => {
                // `cur` may name a symlink to a path whose parents do not exist yet either
                // (`/link -> /a/b`): make each missing directory of the resolved path, as
                // docker's MkdirAll does. The resolved path is inside the root and its
                // existing components are real directories.
                let rel = host.strip_prefix(root).map_err(io::Error::other)?.to_path_buf();
                let mut dir = root.to_path_buf();
                for c in rel.components() {
                    dir.push(c);
                    if fs::symlink_metadata(&dir).is_err() {
                        fs::create_dir(&dir)?;
                        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
                        if let Some((u, g)) = owner {
                            lchown(&dir, u, g)?;
                        }
                    }
                }
            }
        }
    }
    Ok(host)
}

/// Copies the tree at `src` (a file, a symlink or a directory) to `dst`, keeping modes, owners
/// and symlinks; regular files are hard links when `link` (and the filesystems allow it),
/// else copies. Special files are skipped. For views of the context and a new cache mount's
/// first content.
pub fn copy_tree(src: &Path, dst: &Path, link: bool) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for e in walkdir::WalkDir::new(src).follow_links(false) {
        let e = e.map_err(io::Error::other)?;
        let rel = e.path().strip_prefix(src).map_err(io::Error::other)?;
        let to = if rel.as_os_str().is_empty() { dst.to_path_buf() } else { dst.join(rel) };
        let md = e.path().symlink_metadata()?;
        let ft = md.file_type();
        let mode = fs::Permissions::from_mode(md.mode() & 0o7777);
        if ft.is_dir() {
            if !to.is_dir() {
                fs::create_dir(&to)?;
            }
            lchown(&to, md.uid(), md.gid())?;
            fs::set_permissions(&to, mode)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path())?, &to)?;
            lchown(&to, md.uid(), md.gid())?;
        } else if ft.is_file() && !(link && fs::hard_link(e.path(), &to).is_ok()) {
            fs::copy(e.path(), &to)?;
            // the owner first: chown clears set-id bits
            lchown(&to, md.uid(), md.gid())?;
            fs::set_permissions(&to, mode)?;
        }
    }
    Ok(())
}

/// Sets the owner of `p` itself (a symlink, not its target).
pub fn lchown(p: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))
}

/// Clears the way for a new entry at `p`: whatever is there goes, except a directory when
/// `keep_dir` (a directory copied onto a directory merges into it).
pub fn remove_existing(p: &Path, keep_dir: bool) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => {
            if keep_dir {
                Ok(())
            } else {
                fs::remove_dir_all(p)
            }
        }
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// The host path for a container path whose parent exists: parent symlinks followed,
/// the last component not.
pub fn target_path(root: &Path, cpath: &str) -> io::Result<PathBuf> {
    let clean = glob::clean(cpath);
    if clean == "/" {
        return Ok(root.to_path_buf());
    }
    let (parent, name) = clean.rsplit_once('/').unwrap_or(("", clean.as_str()));
    let p = resolve_in_root(root, if parent.is_empty() { "/" } else { parent }, true);
    Ok(p.join(name))
}

/// The absolute container paths in `root` that a path, possibly with wildcards, names
/// (`COPY --from` sources), in walk order; a directory that matches is not descended into.
pub fn find_in_root(root: &Path, pattern: &str) -> Vec<String> {
    let clean = glob::clean(&format!("/{pattern}"));
    if !glob::has_wildcards(&clean) {
        let host = resolve_in_root(root, &clean, true);
        return if fs::symlink_metadata(&host).is_ok() { vec![clean] } else { vec![] };
    }
    let Ok(pat) = glob::compile(&clean) else { return vec![] };
    // walk from the longest literal prefix
    let comps: Vec<&str> = clean.split('/').filter(|c| !c.is_empty()).collect();
    let lit: Vec<&str> = comps.iter().take_while(|c| !glob::has_wildcards(c)).copied().collect();
    let start = format!("/{}", lit.join("/"));
    let start_host = resolve_in_root(root, &start, true);
    let mut out = Vec::new();
    let mut it =
        walkdir::WalkDir::new(&start_host).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name())).into_iter();
    while let Some(Ok(e)) = it.next() {
        let rel = e.path().strip_prefix(&start_host).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        let full = glob::clean(&format!("{start}/{rel}"));
        if pat.matches(&full) {
            out.push(full);
            if e.file_type().is_dir() {
                it.skip_current_dir();
            }
        }
    }
    out
}

/// Whether the path has `..` components that climb above its start.
pub fn escapes(rel: &str) -> bool {
    let mut depth = 0i32;
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A root dir holding `files` (path, content; a path ending in `/` is a directory) and
    /// symlinks (path, target).
    fn tree(files: &[(&str, &str)], links: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let p = t.path().join(p);
            match p.to_string_lossy().strip_suffix('/') {
                Some(dir) => fs::create_dir_all(dir).unwrap(),
                None => {
                    fs::create_dir_all(p.parent().unwrap()).unwrap();
                    fs::write(&p, content).unwrap();
                }
            }
        }
        for (p, target) in links {
            std::os::unix::fs::symlink(target, t.path().join(p)).unwrap();
        }
        t
    }

    #[test]
    fn symlinks_stay_inside() {
        let t = tree(&[("usr/bin/", "")], &[("bin", "usr/bin"), ("esc", "/../../etc"), ("abs", "/usr")]);
        let r = t.path();
        assert_eq!(resolve_in_root(r, "/bin/sh", true), r.join("usr/bin/sh"));
        assert_eq!(resolve_in_root(r, "/esc/passwd", true), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "abs/bin", true), r.join("usr/bin"));
        assert_eq!(resolve_in_root(r, "/bin", false), r.join("bin"));
        assert_eq!(resolve_in_root(r, "../../x", true), r.join("x"));
    }

    #[test]
    fn users() {
        let passwd = "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        let t = tree(&[("etc/passwd", passwd), ("etc/group", "root:x:0:\nbob:x:1000:\nwheel:x:10:bob\n")], &[]);
        let r = t.path();
        assert_eq!(resolve_user(r, "bob").unwrap(), Ident { uid: 1000, gid: 1000, additional_gids: vec![10] });
        assert_eq!(resolve_user(r, "bob:wheel").unwrap().gid, 10);
        assert_eq!(resolve_user(r, "42:7").unwrap(), Ident { uid: 42, gid: 7, additional_gids: vec![] });
        assert!(resolve_user(r, "nobody").unwrap_err().contains("no matching entries in passwd"));
        assert!(resolve_user(r, "bob:nogroup").is_err());
    }

    #[test]
    fn join_paths() {
        assert_eq!(join_container_path("/a", "b"), "/a/b");
        assert_eq!(join_container_path("/a", "/b/"), "/b");
        assert_eq!(join_container_path("", "b/../c"), "/c");
        assert!(escapes("../x"));
        assert!(!escapes("a/../b"));
    }

    #[test]
    fn mkdir_all_in_root_follows_links_inside() {
        let t = tree(&[("real/", "")], &[("link", "/real")]);
        let r = t.path();
        let p = mkdir_all(r, "/link/a/b", Some((5, 6))).unwrap();
        assert_eq!(p, r.join("real/a/b"));
        let md = fs::metadata(r.join("real/a")).unwrap();
        assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (5, 6, 0o755));
    }

    #[test]
    fn mkdir_all_makes_the_missing_parents_of_a_link_target() {
        let t = tree(&[], &[("link", "/a/b")]);
        let r = t.path();
        let p = mkdir_all(r, "/link/c", Some((5, 6))).unwrap();
        assert_eq!(p, r.join("a/b/c"));
        for d in ["a", "a/b", "a/b/c"] {
            let md = fs::symlink_metadata(r.join(d)).unwrap();
            assert!(md.is_dir(), "{d}");
            assert_eq!((md.uid(), md.gid(), md.mode() & 0o777), (5, 6, 0o755), "{d}");
        }
    }

    #[test]
    fn fs_wildcards() {
        let t = tree(&[("out/a.so", ""), ("out/b.so", ""), ("out/sub/c.so", "")], &[]);
        let r = t.path();
        assert_eq!(find_in_root(r, "/out/*.so"), ["/out/a.so", "/out/b.so"]);
        assert_eq!(find_in_root(r, "out/sub"), ["/out/sub"]);
        assert!(find_in_root(r, "/missing").is_empty());
    }
}
