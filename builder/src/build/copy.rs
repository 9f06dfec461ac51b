//! COPY and ADD: sources from the context (after .dockerignore), another stage or image
//! (`--from`), or heredocs; docker's destination rules; `--chown`/`--chmod`; ADD's local
//! archive extraction. Files are placed in an overlay rootfs and the upper dir becomes the layer;
//! a copy of plain context files is planned as that layer directly (`plan_from_context`).

use super::{Action, BuildError, Builder, State};
use crate::cache::Inputs;
use crate::glob;
use crate::instructions::{Command, CopyArgs, CopySource};
use crate::layer::{self, overlay, Layer};
use crate::rootfs;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One source of a COPY or ADD, typed when the step is prepared.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path: context-relative and resolved (wildcards expanded, "" the root) when the copy is
    /// from the context, which ADD extracts when `extract`; as written, wildcards and all, in a
    /// `--from` filesystem (expanded once that is mounted).
    Path { path: String, extract: bool },
    /// A file with a heredoc's body.
    Heredoc { name: String, content: String },
}

/// Where a COPY puts its sources.
#[derive(Debug, Clone)]
pub struct Dest {
    /// Absolute and cleaned (a relative destination is joined onto WORKDIR).
    pub path: String,
    /// Written as a directory (ending in `/`, `/.` or being `.`).
    pub dir: bool,
}

impl Dest {
    /// docker's destination rule for a source named `name` (one of `sources`): inside `path`
    /// when that is a directory (written as one, or `is_dir` there) or there are several
    /// sources, else `path` itself.
    pub fn target(&self, name: &str, sources: usize, is_dir: bool) -> String {
        if self.dir || sources > 1 || is_dir {
            format!("{}/{name}", self.path.trim_end_matches('/'))
        } else {
            self.path.clone()
        }
    }
}

pub struct CopyPlan {
    pub kw: &'static str,
    pub sources: Vec<Source>,
    pub dest: Dest,
    pub chown: Option<String>,
    pub chmod: Option<u32>,
    pub from_layers: Option<Vec<Layer>>,
    pub created_by: String,
    /// `--exclude` patterns, matched against source paths (context-relative, or relative to
    /// `/` of a `--from` filesystem).
    pub exclude: crate::dockerignore::Matcher,
}

/// Places one filesystem object at `target` (a host path inside the rootfs).
struct Placer {
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    /// Keep the source's owner when there is no --chown (`--from` copies); else 0:0.
    keep_owner: bool,
    links: HashMap<(u64, u64), PathBuf>,
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
        let (uid, gid) = self.owner(md);
        let ft = md.file_type();
        if ft.is_dir() {
            rootfs::remove_existing(target, true)?;
            if !target.is_dir() {
                fs::create_dir(target)?;
            }
            let mode = self.chmod.unwrap_or(md.mode() & 0o7777);
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
            let mode = self.chmod.unwrap_or(md.mode() & 0o7777);
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

/// What a destination path is in the image, for `DirectPlan`.
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

/// The layer of a COPY from the context, built up path by path (`plan_from_context`).
struct DirectPlan {
    /// A read-only mount of the image the COPY starts from.
    image: PathBuf,
    chown: Option<(u32, u32)>,
    /// Container paths (absolute, cleaned) -> what the layer holds there.
    planned: BTreeMap<String, Planned>,
}

impl DirectPlan {
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

    /// `mkdir_all` of `dir`: missing dirs are made 0755 with `owner` (else root); existing
    /// ones will be copied up with their attributes. False when it needs the general path.
    fn dirs(&mut self, dir: &str, owner: Option<(u32, u32)>) -> bool {
        let mut cur = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty() && *c != ".") {
            cur = format!("{cur}/{comp}");
            if self.planned.get(&cur).is_some_and(|p| p.dir) {
                continue;
            }
            let (mode, (uid, gid)) = match self.lookup(&cur) {
                Look::Dir(mode, uid, gid) => (mode, (uid, gid)),
                Look::Missing => (0o755, owner.unwrap_or((0, 0))),
                Look::Other | Look::Fallback => return false,
            };
            self.planned.insert(cur.clone(), Planned { source: None, dir: true, mode, uid, gid });
        }
        true
    }

    /// `Placer::place` of one context object at `cpath` (its parent planned already).
    fn place(&mut self, cpath: &str, src: &Path, md: &Metadata, chmod: Option<u32>) -> bool {
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
        let mode = if ft.is_symlink() { 0o777 } else { chmod.unwrap_or(md.mode() & 0o7777) };
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

impl<'a> Builder<'a> {
    pub(super) fn prepare_copy(
        &mut self,
        st: &State,
        cmd: &Command,
        a: &CopyArgs,
        is_add: bool,
    ) -> Result<(Inputs, Option<Action>), BuildError> {
        let kw: &'static str = if is_add { "ADD" } else { "COPY" };
        let line = cmd.line;
        let env = st.env();
        let dest_raw = self.expand(line, &a.dest, &env)?;
        let dest_slash = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
        let dest = rootfs::join_container_path(&st.config.config.working_dir, &dest_raw);
        if a.sources.len() > 1 && !dest_slash {
            return Err(self.err(
                line,
                format!("When using {kw} with more than one source file, the destination must be a directory and end with a /"),
            ));
        }
        let chown = match &a.chown {
            Some(c) => Some(self.expand(line, c, &env)?),
            None => None,
        };
        let chmod = match &a.chmod {
            Some(c) => {
                let c = self.expand(line, c, &env)?;
                Some(u32::from_str_radix(&c, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
                    self.err(line, format!("{kw}: invalid chmod parameter: {c:?} (octal modes only)"))
                })?)
            }
            None => None,
        };
        let mut excl = Vec::new();
        for (i, p) in a.exclude.iter().enumerate() {
            excl.push((i + 1, self.expand(line, p, &env)?));
        }
        let exclude =
            crate::dockerignore::Matcher::new(&excl).map_err(|e| self.err(line, format!("{kw} --exclude: {e}")))?;
        let mut inputs = Inputs { keyword: kw.into(), ..Default::default() };
        let mut from_layers = None;
        let mut from_text = String::new();
        if let Some(f) = &a.from {
            let f = self.expand(line, f, &env)?;
            let (layers, id) = self.resolve_from(line, &f)?;
            from_layers = Some(layers);
            inputs.extra = id;
            from_text = format!("--from={f} ");
        }
        let mut items = Vec::new();
        let mut shown = Vec::new();
        for s in &a.sources {
            let s = match s {
                CopySource::Heredoc { word, doc } => {
                    let content = if doc.expand {
                        self.lexer.expand_heredoc(&doc.content, &env).map_err(|e| self.err(line, e.0))?
                    } else {
                        doc.content.clone()
                    };
                    inputs.files.insert(format!("<<{}", doc.name), crate::store::image::digest_of(content.as_bytes()));
                    shown.push(word.clone());
                    items.push(Source::Heredoc { name: doc.name.clone(), content });
                    continue;
                }
                CopySource::Path(s) => s,
            };
            let src = self.expand(line, s, &env)?;
            shown.push(src.clone());
            if is_add && (src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@")) {
                return Err(self.err(
                    line,
                    format!("ADD {src}: remote URL sources are not supported (slipway builds without network access)"),
                ));
            }
            if from_layers.is_some() {
                items.push(Source::Path { path: src, extract: false });
                continue;
            }
            let rels = self.ctx.resolve(&src).map_err(|e| self.err(line, format!("{kw}: {e}")))?;
            if rels.is_empty() {
                let msg = if glob::has_wildcards(&src) {
                    format!("{kw}: no source files matching {src:?}")
                } else {
                    format!("{kw}: source {src:?} not found in build context or excluded by .dockerignore")
                };
                return Err(self.err(line, msg));
            }
            let rels: Vec<String> = rels.into_iter().filter(|r| r.is_empty() || !exclude.excluded(r)).collect();
            if rels.is_empty() {
                return Err(self.err(line, format!("{kw}: every source matching {src:?} is excluded by --exclude")));
            }
            for rel in rels {
                let mut f = self.ctx.fingerprints(&rel).map_err(|e| self.err(line, format!("{kw}: {e}")))?;
                f.retain(|k, _| k == "." || !exclude.excluded(k));
                inputs.files.extend(f);
                let path = self.ctx.path(&rel);
                let extract = is_add && path.is_file() && layer::is_archive(&path);
                items.push(Source::Path { path: rel, extract });
            }
        }
        let mut flags = String::new();
        if let Some(c) = &chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = chmod {
            flags.push_str(&format!("--chmod={m:o} "));
        }
        for (_, p) in &excl {
            flags.push_str(&format!("--exclude={p} "));
        }
        let created_by = format!("{kw} {from_text}{flags}{} {dest_raw} # buildkit", shown.join(" "));
        inputs.text = format!("{created_by} dest={dest}");
        Ok((
            inputs,
            Some(Action::Copy(CopyPlan {
                kw,
                sources: items,
                dest: Dest { path: dest, dir: dest_slash },
                chown,
                chmod,
                from_layers,
                created_by,
                exclude,
            })),
        ))
    }

    /// `--from=` a stage name, a stage index, or a local image: its layers and identity.
    fn resolve_from(&self, line: usize, f: &str) -> Result<(Vec<Layer>, String), BuildError> {
        let names: Vec<Option<String>> = self.stages.stages.iter().map(|s| s.name.clone()).collect();
        let idx = f
            .parse::<usize>()
            .ok()
            .or_else(|| names.iter().position(|n| n.as_deref() == Some(f.to_ascii_lowercase().as_str())));
        if let Some(i) = idx {
            let Some(Some(s)) = self.done.get(i) else {
                return Err(self.err(line, format!("COPY --from={f}: stage is not built before this one")));
            };
            return Ok((s.layers.clone(), s.id.clone()));
        }
        let mut log = Vec::new();
        let img =
            crate::registry::base::resolve(self.store, f, &self.opts.remote, self.opts.platform.as_ref(), &mut log)
                .map_err(|e| {
                    self.err(
                line,
                format!("COPY --from={f}: no stage named {f:?}, no such image in the store, and the pull failed: {e}"),
            )
                })?;
        Ok((img.layers(), img.config_digest.clone()))
    }

    /// `--chown=USER[:GROUP]` as ids, names looked up in the image's /etc/passwd and /etc/group.
    fn chown_ids(
        &self,
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
                let uid = match u.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => {
                        rootfs::resolve_user(merged, &u).map_err(|e| self.err(line, format!("{kw} --chown: {e}")))?.uid
                    }
                };
                let gid = match &g {
                    None => uid,
                    Some(g) => match g.parse::<u32>() {
                        Ok(n) => n,
                        Err(_) => {
                            rootfs::resolve_user(merged, &format!("0:{g}"))
                                .map_err(|e| self.err(line, format!("{kw} --chown: {e}")))?
                                .gid
                        }
                    },
                };
                Some((uid, gid))
            }
        })
    }

    pub(super) fn exec_copy(&mut self, st: &mut State, cmd: &Command, plan: CopyPlan) -> Result<(), BuildError> {
        let line = cmd.line;
        let kw = plan.kw;
        let lowers = self.lowers(st)?;
        if let Some(entries) = self.plan_from_context(line, &plan, &lowers)? {
            let l = layer::commit_layer(self.store, &entries, self.opts.epoch)?;
            st.config.rootfs.diff_ids.push(l.diff_id.clone());
            st.layers.push(l);
            self.history(st, plan.created_by, false);
            return Ok(());
        }
        let mut rfs = overlay::mount_rootfs(self.store, &lowers, true)?;
        let merged = rfs.merged.clone();
        let chown = self.chown_ids(line, kw, &plan.chown, &merged)?;
        let src_rootfs = match &plan.from_layers {
            Some(layers) => {
                let lowers: Vec<PathBuf> = layers
                    .iter()
                    .map(|l| layer::snapshot(self.store, l).map_err(BuildError::from))
                    .collect::<Result<_, _>>()?;
                Some(overlay::mount_rootfs(self.store, &lowers, false)?)
            }
            None => None,
        };
        let parent_owner = chown;
        let mut placer = Placer { chown, chmod: plan.chmod, keep_owner: src_rootfs.is_some(), links: HashMap::new() };
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
        for it in &plan.sources {
            match it {
                Source::Heredoc { name, content } => inline.push((name.clone(), content.clone())),
                Source::Path { path: rel, extract } if plan.from_layers.is_none() => {
                    let host = self.ctx.path(rel);
                    let tree = self
                        .ctx
                        .subtree(rel)
                        .map_err(|e| self.err(line, format!("{kw}: {e}")))?
                        .into_iter()
                        .filter(|e| e.rel == *rel || !plan.exclude.excluded(&e.rel))
                        .map(|e| {
                            let r =
                                e.rel.strip_prefix(rel.as_str()).unwrap_or(&e.rel).trim_start_matches('/').to_string();
                            (self.ctx.path(&e.rel), r)
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
                    if found.is_empty() {
                        return Err(
                            self.err(line, format!("{kw}: source {pattern:?} not found in the --from filesystem"))
                        );
                    }
                    for p in found {
                        let host = rootfs::resolve_in_root(&sr.merged, &p, true);
                        let mut tree = Vec::new();
                        for e in walkdir::WalkDir::new(&host).sort_by(|a, b| a.file_name().cmp(b.file_name())) {
                            let e = e.map_err(|e| self.err(line, format!("{kw}: walk {p}: {e}")))?;
                            let r = e
                                .path()
                                .strip_prefix(&host)
                                .map(|x| x.to_string_lossy().to_string())
                                .unwrap_or_default();
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
        let n_items = srcs.len() + inline.len();
        let dest = &plan.dest.path;
        let dest_is_dir = rootfs::resolve_in_root(&merged, dest, true).is_dir();
        let ioerr = |e: io::Error, what: &str| self.err(line, format!("{kw}: {what}: {e}"));
        for s in &srcs {
            let md = fs::metadata(&s.host).map_err(|e| ioerr(e, &s.name))?;
            if s.extract {
                let d = rootfs::mkdir_all(&merged, dest, parent_owner).map_err(|e| ioerr(e, dest))?;
                let r = layer::open_decompressed(&s.host).map_err(|e| ioerr(e, &s.name))?;
                layer::extract(r, &d, layer::Whiteouts::Keep).map_err(|e| ioerr(e, &format!("extract {}", s.name)))?;
                continue;
            }
            if md.is_dir() {
                rootfs::mkdir_all(&merged, dest, parent_owner).map_err(|e| ioerr(e, dest))?;
                for (h, r) in &s.tree {
                    let cpath = if r.is_empty() { dest.clone() } else { format!("{dest}/{r}") };
                    let emd =
                        if r.is_empty() { md.clone() } else { fs::symlink_metadata(h).map_err(|e| ioerr(e, r))? };
                    let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
                    placer.place(h, &emd, &target).map_err(|e| ioerr(e, &cpath))?;
                }
            } else {
                let cpath = plan.dest.target(&s.name, n_items, dest_is_dir);
                let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("/").to_string();
                rootfs::mkdir_all(&merged, &parent, parent_owner).map_err(|e| ioerr(e, &parent))?;
                let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
                placer.place(&s.host, &md, &target).map_err(|e| ioerr(e, &cpath))?;
            }
        }
        for (name, content) in inline {
            let cpath = plan.dest.target(&name, n_items, dest_is_dir);
            let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("/").to_string();
            rootfs::mkdir_all(&merged, &parent, parent_owner).map_err(|e| ioerr(e, &parent))?;
            let target = rootfs::target_path(&merged, &cpath).map_err(|e| ioerr(e, &cpath))?;
            rootfs::remove_existing(&target, false).map_err(|e| ioerr(e, &cpath))?;
            fs::write(&target, content).map_err(|e| ioerr(e, &cpath))?;
            let (u, g) = chown.unwrap_or((0, 0));
            rootfs::lchown(&target, u, g).map_err(|e| ioerr(e, &cpath))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(plan.chmod.unwrap_or(0o644)))
                .map_err(|e| ioerr(e, &cpath))?;
        }
        drop(src_rootfs);
        self.add_layer(st, &mut rfs, plan.created_by)
    }

    /// A COPY/ADD of plain context sources, planned as the layer it makes without writing a
    /// file: the entries the overlay upper dir of `exec_copy`'s general path would hold (each
    /// placed object; its parent dirs, new ones 0755 and owned as `mkdir_all` makes them,
    /// existing ones with the image's attributes as overlay copies them up), looked up on a
    /// read-only mount of the image. Copying 10,000 files through overlay costs seconds in
    /// inode allocation and removal alone; this costs a read of each. `None` when the copy
    /// needs what only the general path does exactly: `--from`, archives, heredocs, a symlink
    /// on a destination path, a file replacing a directory or the reverse.
    fn plan_from_context(
        &mut self,
        line: usize,
        plan: &CopyPlan,
        lowers: &[PathBuf],
    ) -> Result<Option<Vec<layer::Entry>>, BuildError> {
        if plan.from_layers.is_some() || !plan.sources.iter().all(|i| matches!(i, Source::Path { extract: false, .. }))
        {
            return Ok(None);
        }
        let kw = plan.kw;
        // the image to look paths up in: FROM scratch is an empty dir (a read-only overlay
        // needs two lower dirs)
        let (image, empty, root) = if lowers.is_empty() {
            let t = self.store.tempdir("scratch")?;
            let root = t.path.clone();
            (None, Some(t), root)
        } else {
            let m = overlay::mount_rootfs(self.store, lowers, false)?;
            let root = m.merged.clone();
            (Some(m), None, root)
        };
        let chown = self.chown_ids(line, kw, &plan.chown, &root)?;
        let mut p = DirectPlan { image: root, chown, planned: BTreeMap::new() };
        let dest = glob::clean(&plan.dest.path);
        let dest_is_dir = match p.lookup(&dest) {
            Look::Dir(..) => true,
            Look::Missing | Look::Other => false,
            Look::Fallback => return Ok(None),
        };
        for it in &plan.sources {
            let Source::Path { path: rel, .. } = it else { return Ok(None) };
            let host = self.ctx.path(rel);
            let name = if rel.is_empty() { ".".to_string() } else { basename(rel) };
            let md = fs::metadata(&host).map_err(|e| self.err(line, format!("{kw}: {name}: {e}")))?;
            let ok = if md.is_dir() {
                let tree = self.ctx.subtree(rel).map_err(|e| self.err(line, format!("{kw}: {e}")))?;
                p.dirs(&dest, chown)
                    && tree.iter().filter(|e| e.rel == *rel || !plan.exclude.excluded(&e.rel)).all(|e| {
                        let r = e.rel.strip_prefix(rel.as_str()).unwrap_or(&e.rel).trim_start_matches('/');
                        let cpath = if r.is_empty() { dest.clone() } else { glob::clean(&format!("{dest}/{r}")) };
                        let emd = if r.is_empty() { &md } else { &e.md };
                        p.place(&cpath, &self.ctx.path(&e.rel), emd, plan.chmod)
                    })
            } else {
                let cpath = glob::clean(&plan.dest.target(&name, plan.sources.len(), dest_is_dir));
                let parent = cpath.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                p.dirs(parent, chown) && p.place(&cpath, &host, &md, plan.chmod)
            };
            if !ok {
                return Ok(None);
            }
        }
        drop((image, empty));
        p.entries().map(Some).map_err(|e| self.err(line, format!("{kw}: read source: {e}")))
    }
}
