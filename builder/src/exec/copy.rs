//! COPY and ADD on a cache miss. Sources come from the context, from a `--from` stage or
//! image (mounted read-only, its wildcards expanded now), or from heredocs; the plan decided
//! which and where. A copy of plain context files is written straight as its layer
//! (`direct_layer`: no overlay writes); anything else is placed in an overlay rootfs (with
//! `--chown`/`--chmod`, hard links kept, ADD's archives extracted) whose upper dir becomes the
//! layer.

use super::{Executor, State};
use crate::chmod::Chmod;
use crate::glob;
use crate::layer::{self, overlay};
use crate::plan::{BuildError, Copy, Origin, Source};
use crate::rootfs;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The permission bits of an entry whose `st_mode` is `mode`: `--chmod`'s, else its own.
fn mode_of(chmod: Option<&Chmod>, mode: u32) -> u32 {
    chmod.map_or(mode & 0o7777, |c| c.apply(mode))
}

/// Places one filesystem object at `target` (a host path inside the rootfs).
struct Placer {
    chown: Option<(u32, u32)>,
    chmod: Option<Chmod>,
    /// Keep the source's owner when there is no --chown (`--from` copies); else 0:0.
    keep_owner: bool,
    links: HashMap<(u64, u64), PathBuf>,
    /// `Some` when the layer depends on the files' mtimes ([`layer::Mtimes::reads_files`]):
    /// each placed target with its source's mtime, in the order placed (the copy's own writes,
    /// and a directory's children, change what the upper dir says).
    times: Option<Vec<(PathBuf, i64)>>,
}

impl Placer {
    fn owner(&self, md: &Metadata) -> (u32, u32) {
        match (self.chown, self.keep_owner) {
            (Some(o), _) => o,
            (None, true) => (md.uid(), md.gid()),
            (None, false) => (0, 0),
        }
    }

    fn place(&mut self, src: &Path, md: &Metadata, target: &Path) -> io::Result<()> {
        if let Some(t) = &mut self.times {
            t.push((target.to_path_buf(), layer::mtime_of(md)));
        }
        let (uid, gid) = self.owner(md);
        let ft = md.file_type();
        if ft.is_dir() {
            rootfs::remove_existing(target, true)?;
            if !target.is_dir() {
                fs::create_dir(target)?;
            }
            let mode = mode_of(self.chmod.as_ref(), md.mode());
            rootfs::lchown(target, uid, gid)?;
            fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
        } else if ft.is_symlink() {
            rootfs::remove_existing(target, false)?;
            std::os::unix::fs::symlink(fs::read_link(src)?, target)?;
            rootfs::lchown(target, uid, gid)?;
        } else if ft.is_file() {
            rootfs::remove_existing(target, false)?;
            if md.nlink() > 1 {
                if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                    return fs::hard_link(first, target);
                }
                self.links.insert((md.dev(), md.ino()), target.to_path_buf());
            }
            fs::copy(src, target)?;
            rootfs::lchown(target, uid, gid)?;
            let mode = mode_of(self.chmod.as_ref(), md.mode());
            fs::set_permissions(target, fs::Permissions::from_mode(mode))?;
            // after chown, which clears file capabilities
            for x in crate::layer::KEPT_XATTRS {
                if let Some(v) = crate::sys::lgetxattr(src, x)? {
                    crate::sys::lsetxattr(target, x, &v)?;
                }
            }
        }
        Ok(())
    }
}

fn basename(p: &str) -> String {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}

/// What a destination path is in the image, for `DirectLayer`.
enum Look {
    Missing,
    /// A directory: its mode, uid and gid.
    Dir(u32, u32, u32),
    Other,
    /// A symlink, or an error: leave it to the general path.
    Fallback,
}

/// One object a direct COPY puts in its layer.
struct Planned {
    /// The context file or symlink it comes from (None: a directory made or copied up).
    source: Option<(PathBuf, Metadata)>,
    dir: bool,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The layer of a COPY from the context, built up path by path (`direct_layer`).
struct DirectLayer {
    /// A read-only mount of the image the COPY starts from.
    image: PathBuf,
    chown: Option<(u32, u32)>,
    /// Container paths (absolute, cleaned) -> what the layer holds there.
    planned: BTreeMap<String, Planned>,
}

impl DirectLayer {
    fn lookup(&self, cpath: &str) -> Look {
        if let Some(p) = self.planned.get(cpath) {
            return match &p.source {
                _ if p.dir => Look::Dir(p.mode, p.uid, p.gid),
                Some((_, md)) if md.file_type().is_symlink() => Look::Fallback,
                _ => Look::Other,
            };
        }
        match fs::symlink_metadata(self.image.join(cpath.trim_start_matches('/'))) {
            Ok(md) if md.file_type().is_symlink() => Look::Fallback,
            Ok(md) if md.is_dir() => Look::Dir(md.mode() & 0o7777, md.uid(), md.gid()),
            Ok(_) => Look::Other,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Look::Missing,
            Err(_) => Look::Fallback,
        }
    }

    /// `mkdir_all` of `dir`: missing dirs are made `new_mode` with `owner` (else root);
    /// existing ones will be copied up with their attributes. False when it needs the general
    /// path.
    fn dirs(&mut self, dir: &str, owner: Option<(u32, u32)>, new_mode: u32) -> bool {
        let mut cur = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty() && *c != ".") {
            cur = format!("{cur}/{comp}");
            if self.planned.get(&cur).is_some_and(|p| p.dir) {
                continue;
            }
            let (mode, (uid, gid)) = match self.lookup(&cur) {
                Look::Dir(mode, uid, gid) => (mode, (uid, gid)),
                Look::Missing => (new_mode, owner.unwrap_or((0, 0))),
                Look::Other | Look::Fallback => return false,
            };
            self.planned.insert(cur.clone(), Planned { source: None, dir: true, mode, uid, gid });
        }
        true
    }

    /// `Placer::place` of one context object at `cpath` (its parent planned already).
    fn place(&mut self, cpath: &str, src: &Path, md: &Metadata, chmod: Option<&Chmod>) -> bool {
        let ft = md.file_type();
        if !(ft.is_dir() || ft.is_file() || ft.is_symlink()) {
            return true; // the general path does not copy sockets, fifos or devices either
        }
        if cpath == "/" {
            return true; // the root's attributes are not part of a layer
        }
        match self.lookup(cpath) {
            Look::Missing => {}
            Look::Dir(..) if ft.is_dir() => {}
            Look::Other if !ft.is_dir() => {}
            _ => return false,
        }
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let mode = if ft.is_symlink() { 0o777 } else { mode_of(chmod, md.mode()) };
        let p = Planned { source: Some((src.to_path_buf(), md.clone())), dir: ft.is_dir(), mode, uid, gid };
        self.planned.insert(cpath.to_string(), p);
        true
    }

    /// The layer's entries in the order `layer::plan_diff` walks an upper dir; files sharing
    /// an inode in the context become tar hardlinks to the first, as `Placer` links them.
    fn entries(self) -> io::Result<Vec<layer::Entry>> {
        let mut v: Vec<(String, Planned)> = self.planned.into_iter().collect();
        v.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        let mut first: HashMap<(u64, u64), String> = HashMap::new();
        let mut out = Vec::with_capacity(v.len());
        for (cpath, p) in v {
            let path = cpath.trim_start_matches('/').to_string();
            let mut e = layer::Entry {
                path: path.clone(),
                kind: layer::Kind::Dir,
                mode: p.mode,
                uid: p.uid as u64,
                gid: p.gid as u64,
                size: 0,
                source: None,
                xattrs: Vec::new(),
                // the source's; a directory made on the way has none: the time it is written,
                // as in the general path's upper dir
                mtime: p.source.as_ref().map(|(_, md)| layer::mtime_of(md)),
                own_mtime: false,
            };
            match &p.source {
                Some((src, md)) if md.file_type().is_symlink() => e.kind = layer::Kind::Symlink(fs::read_link(src)?),
                Some((src, md)) if md.is_file() => {
                    if md.nlink() > 1 {
                        if let Some(f) = first.get(&(md.dev(), md.ino())) {
                            e.kind = layer::Kind::Hardlink(f.clone());
                            out.push(e);
                            continue;
                        }
                        first.insert((md.dev(), md.ino()), path.clone());
                    }
                    e.kind = layer::Kind::File;
                    e.size = md.len();
                    e.source = Some(src.clone());
                    for x in crate::layer::KEPT_XATTRS {
                        if let Some(v) = crate::sys::lgetxattr(src, x)? {
                            e.xattrs.push((x.to_string(), v));
                        }
                    }
                }
                _ => {}
            }
            out.push(e);
        }
        Ok(out)
    }
}

/// `--chown=USER[:GROUP]` as ids, names looked up in the image's /etc/passwd and /etc/group.
/// As BuildKit's file op (`readUser`): a user name alone takes the user's primary group from
/// /etc/passwd, a numeric user alone gets the same number as its group. (BuildKit's docs say
/// the group is the uid's number in both cases; its code, and docker 20.10's BuildKit, give the
/// primary group. A name found in neither file is an error here, as BuildKit's docs say, where
/// its code silently uses 0.)
fn chown_ids(
    x: &Executor,
    line: usize,
    kw: &str,
    chown: &Option<String>,
    merged: &Path,
) -> Result<Option<(u32, u32)>, BuildError> {
    Ok(match chown {
        None => None,
        Some(c) => {
            let (u, g) = match c.split_once(':') {
                Some((u, g)) => (u.to_string(), Some(g.to_string())),
                None => (c.clone(), None),
            };
            let (uid, primary) = match u.parse::<u32>() {
                Ok(n) => (n, n),
                Err(_) => {
                    let id = rootfs::resolve_user(merged, &u).map_err(|e| x.err(line, format!("{kw} --chown: {e}")))?;
                    (id.uid, id.gid)
                }
            };
            let gid = match &g {
                None => primary,
                Some(g) => match g.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => {
                        rootfs::resolve_user(merged, &format!("0:{g}"))
                            .map_err(|e| x.err(line, format!("{kw} --chown: {e}")))?
                            .gid
                    }
                },
            };
            Some((uid, gid))
        }
    })
}

pub(super) fn copy(
    x: &mut Executor,
    st: &mut State,
    line: usize,
    plan: Copy,
    created_by: String,
) -> Result<(), BuildError> {
    let kw = plan.kw;
    crate::trace::point(&format!("copy:{line}:start"));
    // `--link`: the layer is made on an empty filesystem, so nothing below it shapes it
    let lowers = if plan.link { Vec::new() } else { x.lowers(&st.layers)? };
    crate::trace::point(&format!("copy:{line}:snapshots"));
    if let Some(entries) = direct_layer(x, line, &plan, &lowers)? {
        return x.push_layer(st, &entries, created_by);
    }
    // remote sources are fetched before anything is mounted
    let remote = Remote::fetch(x, line, &plan)?;
    let mut rfs = overlay::mount_rootfs(x.store, &lowers, true)?;
    let merged = rfs.merged.clone();
    let chown = chown_ids(x, line, kw, &plan.chown, &merged)?;
    let from_layers = match &plan.from {
        Origin::Context => None,
        Origin::Stage(j) => Some(
            x.done
                .get(j)
                .map(|s| s.layers.clone())
                .ok_or_else(|| x.err(line, format!("{kw} --from={j}: stage is not built before this one")))?,
        ),
        Origin::Image(img) => Some(img.layers()),
    };
    let src_rootfs = match &from_layers {
        Some(layers) => Some(overlay::mount_rootfs(x.store, &x.lowers(layers)?, false)?),
        None => None,
    };
    crate::trace::point(&format!("copy:{line}:mounted"));
    let parent_owner = chown;
    let dir_mode = Chmod::parent_dir_mode(plan.chmod.as_ref());
    let times = x.opts.mtimes.reads_files().then(Vec::new);
    let mut placer =
        Placer { chown, chmod: plan.chmod.clone(), keep_owner: src_rootfs.is_some(), links: HashMap::new(), times };
    // expand --from wildcards now that the source filesystem is mounted
    struct Src {
        host: PathBuf,
        name: String,
        extract: bool,
        /// (host path, path relative to the source) of everything to place
        tree: Vec<(PathBuf, String)>,
    }
    let mut srcs: Vec<Src> = Vec::new();
    let mut inline: Vec<(String, String)> = Vec::new();
    // `--parents` sources: (host path, path below the pivot) of each object, parents first
    let mut parents: Vec<(PathBuf, String)> = Vec::new();
    for it in &plan.sources {
        match it {
            Source::Heredoc { name, content } => inline.push((name.clone(), content.clone())),
            Source::Url(_) | Source::Git(_) => {}
            Source::Parents { root, include, required } => {
                let matcher = crate::dockerignore::Matcher::new(&[(1, include.clone())])
                    .map_err(|e| x.err(line, format!("{kw} --parents {include:?}: {e}")))?;
                let before = parents.len();
                match &src_rootfs {
                    None => {
                        let tree = x.ctx.parents_tree(root, &matcher).map_err(|e| x.err(line, format!("{kw}: {e}")))?;
                        for e in tree.into_iter().filter(|e| !plan.exclude.excluded(&e.rel)) {
                            let below = e.rel.strip_prefix(root.as_str()).unwrap_or(&e.rel).trim_start_matches('/');
                            parents.push((x.ctx.path(&e.rel), below.to_string()));
                        }
                    }
                    Some(sr) => {
                        for r in rootfs::find_in_root(&sr.merged, root) {
                            let host = rootfs::resolve_in_root(&sr.merged, &r, true);
                            if !host.is_dir() {
                                continue;
                            }
                            let found = parents_in(&host, &matcher, |below| {
                                let full = glob::clean(&format!("{r}/{below}"));
                                plan.exclude.excluded(full.trim_start_matches('/'))
                            })
                            .map_err(|e| x.err(line, format!("{kw} --parents: walk {r}: {e}")))?;
                            parents.extend(found);
                        }
                    }
                }
                if *required && parents.len() == before {
                    return Err(x.err(line, format!("{kw} --parents: {root}/{include}: no such file or directory")));
                }
            }
            Source::Path { path: rel, extract } if matches!(plan.from, Origin::Context) => {
                let host = x.ctx.path(rel);
                let tree = x
                    .ctx
                    .subtree(rel)
                    .map_err(|e| x.err(line, format!("{kw}: {e}")))?
                    .into_iter()
                    .filter(|e| e.rel == *rel || !plan.exclude.excluded(&e.rel))
                    .map(|e| {
                        let r = e.rel.strip_prefix(rel.as_str()).unwrap_or(&e.rel).trim_start_matches('/').to_string();
                        (x.ctx.path(&e.rel), r)
                    })
                    .collect();
                let name = if rel.is_empty() { ".".into() } else { basename(rel) };
                srcs.push(Src { host, name, extract: *extract, tree });
            }
            Source::Path { path: pattern, .. } => {
                let Some(sr) = &src_rootfs else { continue };
                let found: Vec<String> = rootfs::find_in_root(&sr.merged, pattern)
                    .into_iter()
                    .filter(|p| !plan.exclude.excluded(p.trim_start_matches('/')))
                    .collect();
                // as from the context: a pattern matching nothing adds nothing (BuildKit's
                // AllowEmptyWildcard), a missing path is an error
                if found.is_empty() && !glob::has_wildcards(pattern) {
                    return Err(x.err(line, format!("{kw}: source {pattern:?} not found in the --from filesystem")));
                }
                for p in found {
                    let host = rootfs::resolve_in_root(&sr.merged, &p, true);
                    let mut tree = Vec::new();
                    for e in walkdir::WalkDir::new(&host).sort_by(|a, b| a.file_name().cmp(b.file_name())) {
                        let e = e.map_err(|e| x.err(line, format!("{kw}: walk {p}: {e}")))?;
                        let r =
                            e.path().strip_prefix(&host).map(|x| x.to_string_lossy().to_string()).unwrap_or_default();
                        let full = format!("{}/{r}", p.trim_start_matches('/'));
                        if !r.is_empty() && plan.exclude.excluded(full.trim_start_matches('/')) {
                            continue;
                        }
                        tree.push((e.path().to_path_buf(), r));
                    }
                    srcs.push(Src { host, name: basename(&p), extract: false, tree });
                }
            }
        }
    }
    let n_items = srcs.len() + inline.len() + remote.files.len() + remote.trees.len();
    let dest = &plan.dest.path;
    let dest_is_dir = rootfs::resolve_in_root(&merged, dest, true).is_dir();
    let ioerr = |e: io::Error, what: &str| x.err(line, format!("{kw}: {what}: {e}"));
    // container paths (as in the layer) -> an mtime of their own
    let mut mtimes: HashMap<String, (i64, bool)> = HashMap::new();
    let in_layer = |target: &Path| target.strip_prefix(&merged).map(|p| p.to_string_lossy().into_owned()).ok();
    for f in &remote.files {
        if f.unpack && layer::is_archive(&f.blob) {
            // BuildKit's unpack makes the destination 0755 whatever --chmod says
            let d = rootfs::mkdir_all(&merged, dest, parent_owner).map_err(|e| ioerr(e, dest))?;
            let r = layer::open_decompressed(&f.blob).map_err(|e| ioerr(e, &f.url))?;
            layer::extract(r, &d, layer::Whiteouts::Keep).map_err(|e| ioerr(e, &format!("extract {}", f.url)))?;
            continue;
        }
        let cpath = plan.dest.target(&f.name, n_items, dest_is_dir);
        let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("/").to_string();
        rootfs::mkdir_all_mode(&merged, &parent, parent_owner, dir_mode).map_err(|e| ioerr(e, &parent))?;
        let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
        rootfs::remove_existing(&target, false).map_err(|e| ioerr(e, &cpath))?;
        fs::copy(&f.blob, &target).map_err(|e| ioerr(e, &cpath))?;
        let (u, g) = chown.unwrap_or((0, 0));
        rootfs::lchown(&target, u, g).map_err(|e| ioerr(e, &cpath))?;
        // BuildKit's http source writes the file 0600
        fs::set_permissions(&target, fs::Permissions::from_mode(mode_of(plan.chmod.as_ref(), 0o100600)))
            .map_err(|e| ioerr(e, &cpath))?;
        if let (Some(t), Some(rel)) = (f.mtime, in_layer(&target)) {
            mtimes.insert(rel, (t, true));
        }
    }
    for t in &remote.trees {
        rootfs::mkdir_all_mode(&merged, dest, parent_owner, dir_mode).map_err(|e| ioerr(e, dest))?;
        for e in walkdir::WalkDir::new(&t.dir).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name())) {
            let e = e.map_err(|e| x.err(line, format!("{kw} {}: walk checkout: {e}", t.remote)))?;
            let r = e.path().strip_prefix(&t.dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
            let cpath = format!("{}/{r}", dest.trim_end_matches('/'));
            let emd = fs::symlink_metadata(e.path()).map_err(|e| ioerr(e, &r))?;
            let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
            placer.place(e.path(), &emd, &target).map_err(|e| ioerr(e, &cpath))?;
            if let (Some(m), Some(rel)) = (t.mtime, in_layer(&target)) {
                mtimes.insert(rel, (m, true));
            }
        }
    }
    if !parents.is_empty() {
        rootfs::mkdir_all_mode(&merged, dest, parent_owner, dir_mode).map_err(|e| ioerr(e, dest))?;
        for (h, r) in &parents {
            let cpath = format!("{}/{r}", dest.trim_end_matches('/'));
            let emd = fs::symlink_metadata(h).map_err(|e| ioerr(e, r))?;
            let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
            placer.place(h, &emd, &target).map_err(|e| ioerr(e, &cpath))?;
        }
    }
    for s in &srcs {
        let md = fs::metadata(&s.host).map_err(|e| ioerr(e, &s.name))?;
        if s.extract {
            // BuildKit's unpack makes the destination 0755 whatever --chmod says
            let d = rootfs::mkdir_all(&merged, dest, parent_owner).map_err(|e| ioerr(e, dest))?;
            let r = layer::open_decompressed(&s.host).map_err(|e| ioerr(e, &s.name))?;
            layer::extract(r, &d, layer::Whiteouts::Keep).map_err(|e| ioerr(e, &format!("extract {}", s.name)))?;
            continue;
        }
        if md.is_dir() {
            rootfs::mkdir_all_mode(&merged, dest, parent_owner, dir_mode).map_err(|e| ioerr(e, dest))?;
            for (h, r) in &s.tree {
                let cpath = if r.is_empty() { dest.clone() } else { format!("{dest}/{r}") };
                let emd = if r.is_empty() { md.clone() } else { fs::symlink_metadata(h).map_err(|e| ioerr(e, r))? };
                let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
                placer.place(h, &emd, &target).map_err(|e| ioerr(e, &cpath))?;
            }
        } else {
            let cpath = plan.dest.target(&s.name, n_items, dest_is_dir);
            let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("/").to_string();
            rootfs::mkdir_all_mode(&merged, &parent, parent_owner, dir_mode).map_err(|e| ioerr(e, &parent))?;
            let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
            placer.place(&s.host, &md, &target).map_err(|e| ioerr(e, &cpath))?;
        }
    }
    for (name, content) in inline {
        let cpath = plan.dest.target(&name, n_items, dest_is_dir);
        let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("/").to_string();
        rootfs::mkdir_all_mode(&merged, &parent, parent_owner, dir_mode).map_err(|e| ioerr(e, &parent))?;
        let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
        rootfs::remove_existing(&target, false).map_err(|e| ioerr(e, &cpath))?;
        fs::write(&target, content).map_err(|e| ioerr(e, &cpath))?;
        let (u, g) = chown.unwrap_or((0, 0));
        rootfs::lchown(&target, u, g).map_err(|e| ioerr(e, &cpath))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode_of(plan.chmod.as_ref(), 0o100644)))
            .map_err(|e| ioerr(e, &cpath))?;
    }
    // the sources' mtimes, where the layer depends on them; an own time (ADD's Last-Modified,
    // a commit's) wins
    let mut placed: HashMap<String, i64> = HashMap::new();
    for (target, t) in placer.times.take().unwrap_or_default() {
        if let Some(rel) = in_layer(&target) {
            placed.insert(rel, t);
        }
    }
    for (rel, t) in placed {
        mtimes.entry(rel).or_insert((t, false));
    }
    drop((src_rootfs, remote));
    x.diff_layer_with(st, &mut rfs, created_by, &mtimes)
}

/// `COPY --parents` in a `--from` filesystem: what `include` selects below `root` (a path
/// it matches or one below such a path), with the directories between, parents first; `skip`
/// is `--exclude` on a path below `root`.
fn parents_in(
    root: &Path,
    include: &crate::dockerignore::Matcher,
    skip: impl Fn(&str) -> bool,
) -> Result<Vec<(PathBuf, String)>, walkdir::Error> {
    let mut all = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name())) {
        let e = e?;
        let below = e.path().strip_prefix(root).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        all.push((e.path().to_path_buf(), below));
    }
    let mut keep = std::collections::HashSet::new();
    for (_, below) in &all {
        if !include.excluded(below) || skip(below) {
            continue;
        }
        keep.insert(below.clone());
        let mut cur = below.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            keep.insert(parent.to_string());
            cur = parent;
        }
    }
    Ok(all.into_iter().filter(|(_, b)| keep.contains(b)).collect())
}

/// A file an http(s) URL served, as ADD places it.
struct UrlFile {
    url: String,
    name: String,
    /// The content, a blob of the store.
    blob: PathBuf,
    /// Last-Modified, when the server sent one.
    mtime: Option<i64>,
    unpack: bool,
}

/// A git checkout, as ADD places it (its contents go into the destination).
struct GitTree {
    remote: String,
    dir: PathBuf,
    /// `?mtime=commit`: the commit's time on everything.
    mtime: Option<i64>,
}

/// The remote sources of a step, fetched (nothing is mounted while the network is used).
struct Remote {
    files: Vec<UrlFile>,
    trees: Vec<GitTree>,
    /// The checkouts' temp dirs, removed when dropped.
    dirs: Vec<crate::store::TempDir>,
}

impl Remote {
    fn fetch(x: &Executor, line: usize, plan: &Copy) -> Result<Remote, BuildError> {
        let kw = plan.kw;
        let mut r = Remote { files: Vec::new(), trees: Vec::new(), dirs: Vec::new() };
        for s in &plan.sources {
            match s {
                Source::Url(u) => {
                    // `--checksum`, or the digest planning found (its blob may be gone since)
                    let want = u.checksum.clone().or_else(|| u.fetched.as_ref().map(|(d, _)| d.clone()));
                    let rec = match &want {
                        Some(c) => crate::fetch::http::fetch(x.store, &u.url, c),
                        None => crate::fetch::http::resolve(x.store, &u.url),
                    }
                    .map_err(|e| x.err(line, format!("{kw} {}: {e}", u.url)))?;
                    let lm = match &u.fetched {
                        Some((_, lm)) if u.checksum.is_none() => *lm,
                        _ => rec.last_modified,
                    };
                    r.files.push(UrlFile {
                        url: u.url.clone(),
                        name: u.name.clone(),
                        blob: x.store.blob_path(&rec.digest),
                        mtime: lm,
                        unpack: u.unpack,
                    });
                }
                Source::Git(g) => {
                    let t = x.store.tempdir("git")?;
                    let dir = t.path.join("tree");
                    let bare = crate::fetch::git::bare_repo(x.store, &g.remote);
                    let time = crate::fetch::git::checkout(
                        &bare,
                        &g.remote,
                        &g.ref_name,
                        &g.commit,
                        &g.subdir,
                        g.keep_git_dir,
                        g.submodules,
                        &dir,
                    )
                    .map_err(|e| x.err(line, format!("{kw} {}: {e}", g.remote)))?;
                    let mtime = g.mtime_commit.then_some(time);
                    r.trees.push(GitTree { remote: g.remote.clone(), dir, mtime });
                    r.dirs.push(t);
                }
                _ => {}
            }
        }
        Ok(r)
    }
}

/// A COPY/ADD of plain context sources, planned as the layer it makes without writing a
/// file: the entries the overlay upper dir of `copy`'s general path would hold (each
/// placed object; its parent dirs, new ones made and owned as `mkdir_all_mode` makes them,
/// existing ones with the image's attributes as overlay copies them up), looked up on a
/// read-only mount of the image. Copying 10,000 files through overlay costs seconds in
/// inode allocation and removal alone; this costs a read of each. `None` when the copy
/// needs what only the general path does exactly: `--from`, archives, heredocs, a symlink
/// on a destination path, a file replacing a directory or the reverse.
fn direct_layer(
    x: &mut Executor,
    line: usize,
    plan: &Copy,
    lowers: &[PathBuf],
) -> Result<Option<Vec<layer::Entry>>, BuildError> {
    let plain = plan.sources.iter().all(|i| matches!(i, Source::Path { extract: false, .. }));
    if !matches!(plan.from, Origin::Context) || !plain {
        return Ok(None);
    }
    let kw = plan.kw;
    // the image to look paths up in: FROM scratch is an empty dir (a read-only overlay
    // needs two lower dirs)
    let (image, empty, root) = if lowers.is_empty() {
        let t = x.store.tempdir("scratch")?;
        let root = t.path.clone();
        (None, Some(t), root)
    } else {
        let m = overlay::mount_rootfs(x.store, lowers, false)?;
        let root = m.merged.clone();
        (Some(m), None, root)
    };
    let chown = chown_ids(x, line, kw, &plan.chown, &root)?;
    let mut p = DirectLayer { image: root, chown, planned: BTreeMap::new() };
    let dir_mode = Chmod::parent_dir_mode(plan.chmod.as_ref());
    let dest = glob::clean(&plan.dest.path);
    let dest_is_dir = match p.lookup(&dest) {
        Look::Dir(..) => true,
        Look::Missing | Look::Other => false,
        Look::Fallback => return Ok(None),
    };
    for it in &plan.sources {
        let Source::Path { path: rel, .. } = it else { return Ok(None) };
        let host = x.ctx.path(rel);
        let name = if rel.is_empty() { ".".to_string() } else { basename(rel) };
        let md = fs::metadata(&host).map_err(|e| x.err(line, format!("{kw}: {name}: {e}")))?;
        let ok = if md.is_dir() {
            let tree = x.ctx.subtree(rel).map_err(|e| x.err(line, format!("{kw}: {e}")))?;
            p.dirs(&dest, chown, dir_mode)
                && tree.iter().filter(|e| e.rel == *rel || !plan.exclude.excluded(&e.rel)).all(|e| {
                    let r = e.rel.strip_prefix(rel.as_str()).unwrap_or(&e.rel).trim_start_matches('/');
                    let cpath = if r.is_empty() { dest.clone() } else { glob::clean(&format!("{dest}/{r}")) };
                    let emd = if r.is_empty() { &md } else { &e.md };
                    p.place(&cpath, &x.ctx.path(&e.rel), emd, plan.chmod.as_ref())
                })
        } else {
            let cpath = glob::clean(&plan.dest.target(&name, plan.sources.len(), dest_is_dir));
            let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            p.dirs(parent, chown, dir_mode) && p.place(&cpath, &host, &md, plan.chmod.as_ref())
        };
        if !ok {
            return Ok(None);
        }
    }
    drop((image, empty));
    p.entries().map(Some).map_err(|e| x.err(line, format!("{kw}: read source: {e}")))
}
