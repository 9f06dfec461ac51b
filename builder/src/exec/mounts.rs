//! The sources of a RUN step's `--mount`s, made ready before the step and released after it
//! (in `Drop`, so also when the step fails or is interrupted): cache directories taken with
//! their locks, views of the context (its included files, hard-linked), read-only or
//! throw-away overlays of a stage or an image, tmpfs, secret files on a tmpfs of the bundle,
//! ssh agent forwarders. Each becomes an OCI mount of the step's config.json; the runtime
//! mounts them. Nothing here decides what is mounted: the plan did.

use super::Executor;
use crate::layer::overlay;
use crate::plan::{BindMount, BuildError, CacheMount, Mount, Origin, SecretMount, SshMount};
use crate::rootfs;
use crate::store::mounts::{Meta, Taken};
use crate::store::TempDir;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A tmpfs mounted by us; unmounted when dropped.
pub(super) struct TmpfsGuard(PathBuf);

impl TmpfsGuard {
    pub fn mount(at: &Path, mode: u32) -> std::io::Result<TmpfsGuard> {
        let opts = format!("mode={mode:o},size=16m");
        mount(Some("tmpfs"), at, Some("tmpfs"), MsFlags::MS_NODEV | MsFlags::MS_NOSUID, Some(opts.as_str()))
            .map_err(std::io::Error::from)?;
        Ok(TmpfsGuard(at.to_path_buf()))
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        let _ = umount2(&self.0, MntFlags::MNT_DETACH);
    }
}

/// What a step's mounts hold until it is over.
enum Hold {
    Cache(#[allow(dead_code)] Taken),
    Overlay(#[allow(dead_code)] overlay::Rootfs),
    Dir(#[allow(dead_code)] TempDir),
    Forwarder(#[allow(dead_code)] crate::secrets::Forwarder),
}

/// The mounts of one step, ready.
#[derive(Default)]
pub(super) struct Prepared {
    /// OCI mounts for config.json, in the plan's order.
    pub oci: Vec<Value>,
    /// Environment the step gets besides the plan's (secrets with `env=`): never printed.
    pub env: Vec<String>,
    /// Container paths mounted (for removing the stubs the runtime makes).
    pub targets: Vec<String>,
    /// The cache mounts the step used (key, instance), for `--cache-to ...,cache-mounts=true`.
    pub caches: Vec<(String, Meta)>,
    holds: Vec<Hold>,
}

fn bind(target: &str, source: &Path, ro: bool) -> Value {
    let mut opts = vec!["rbind"];
    if ro {
        opts.push("ro");
    }
    json!({"destination": target, "type": "bind", "source": source.to_string_lossy(), "options": opts})
}

impl Executor<'_> {
    /// Makes ready every mount of a step; `secret_dir` is where secret files go (a tmpfs).
    pub(super) fn prepare_mounts(
        &mut self,
        line: usize,
        mounts: &[Mount],
        secret_dir: &Path,
    ) -> Result<Prepared, BuildError> {
        let mut p = Prepared::default();
        for m in mounts {
            match m {
                Mount::Script { target, content } => {
                    let f = secret_dir.join(format!("script-{}", p.oci.len()));
                    fs::write(&f, content).map_err(|e| self.err(line, format!("RUN: write script: {e}")))?;
                    let _ = fs::set_permissions(&f, fs::Permissions::from_mode(0o755));
                    p.oci.push(bind(target, &f, true));
                }
                Mount::Cache(c) => self.cache_mount(line, c, &mut p)?,
                Mount::Bind(b) => self.bind_mount(line, b, &mut p)?,
                Mount::Tmpfs { target, size, readonly } => {
                    let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = size {
                        opts.push(format!("size={s}"));
                    }
                    if *readonly {
                        opts.push("ro".into());
                    }
                    p.oci.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}));
                }
                Mount::Secret(s) => self.secret_mount(line, s, secret_dir, &mut p)?,
                Mount::Ssh(s) => self.ssh_mount(line, s, secret_dir, &mut p)?,
            }
            if !m.target().is_empty() && p.oci.last().is_some_and(|o| o["destination"] == m.target()) {
                p.targets.push(m.target().to_string());
            }
        }
        Ok(p)
    }

    /// The state a `from=` names (a built stage, or an image).
    fn origin_state(&self, line: usize, o: &Origin) -> Result<(Vec<crate::layer::Layer>, String), BuildError> {
        match o {
            Origin::Context => Err(self.err(line, "RUN --mount: the context has no layers")),
            Origin::Stage(j) => {
                let s = self.done.get(j).ok_or_else(|| {
                    self.err(line, format!("RUN --mount from={j}: stage is not built before this one"))
                })?;
                Ok((s.layers.clone(), s.id.clone()))
            }
            Origin::Image(img) => Ok((img.layers(), img.config_digest.clone())),
        }
    }

    fn cache_mount(&mut self, line: usize, c: &CacheMount, p: &mut Prepared) -> Result<(), BuildError> {
        // `mode`, `uid` and `gid` apply where no `source` is given, as BuildKit applies them
        // (dockerfile2llb/convert_runmount.go setCacheUIDGID): the cache starts as a directory
        // `/cache` made (mode & 0777, default 0755, owner default 0:0) in what `from` names (an
        // empty image without it) and the mount shows that directory. A `from` state that has a
        // `/cache` already keeps it as it is (BuildKit's mkdir of an existing path does
        // nothing), content, mode and owner. With a `source`, BuildKit reads none of the three.
        let file_info = c.source.is_empty() && (c.mode.is_some() || c.uid.is_some() || c.gid.is_some());
        let perms =
            format!("mode={:o} uid={} gid={}", c.mode.unwrap_or(0o755) & 0o777, c.uid.unwrap_or(0), c.gid.unwrap_or(0));
        // what a new directory starts from is part of which cache it is (BuildKit keys a cache
        // mount by its id and its base)
        let (base, from) = match &c.from {
            Some(o) => {
                let (layers, id) = self.origin_state(line, o)?;
                let base = if file_info { format!("from={id} /cache {perms}") } else { format!("from={id}") };
                (base, Some(layers))
            }
            None if c.mode.is_some() || c.uid.is_some() || c.gid.is_some() => (perms, None),
            None => (String::new(), None),
        };
        let meta = Meta { id: c.id.clone(), base, used: 0 };
        let store = self.store;
        let lowers = match &from {
            Some(l) => Some(self.lowers(l)?),
            None => None,
        };
        let (mode, uid, gid) = (c.mode.unwrap_or(0o755) & 0o777, c.uid.unwrap_or(0), c.gid.unwrap_or(0));
        let source = c.source.clone();
        let mut init = |data: &Path| -> std::io::Result<()> {
            let set_perms = || {
                std::os::unix::fs::chown(data, Some(uid), Some(gid))?;
                fs::set_permissions(data, fs::Permissions::from_mode(mode))
            };
            let Some(lowers) = &lowers else { return set_perms() };
            let rfs = overlay::mount_rootfs(store, lowers, false).map_err(std::io::Error::other)?;
            if file_info {
                // the state's `/cache` as it is, else a new one
                let existing = rootfs::resolve_in_root(&rfs.merged, "cache", true);
                return if existing.is_dir() { rootfs::copy_tree(&existing, data, false) } else { set_perms() };
            }
            // the stage's `source` is what the cache starts with (the mount shows `source` of
            // the cache, as BuildKit's cache ref made from the stage's ref does)
            let src = rootfs::resolve_in_root(&rfs.merged, &source, true);
            if src.exists() {
                let to = rootfs::mkdir_all(data, &source, None)?;
                rootfs::copy_tree(&src, &to, false)?;
            }
            Ok(())
        };
        let taken = self
            .store
            .take_cache_mount(&meta, c.sharing, &mut init)
            .map_err(|e| self.err(line, format!("RUN --mount=type=cache,id={}: {e}", c.id)))?;
        let dir = if c.source.is_empty() {
            taken.data.clone()
        } else {
            rootfs::mkdir_all(&taken.data, &c.source, None)
                .map_err(|e| self.err(line, format!("RUN --mount=type=cache: source {}: {e}", c.source)))?
        };
        p.oci.push(bind(&c.target, &dir, c.readonly));
        p.caches.push((taken.key.clone(), meta));
        p.holds.push(Hold::Cache(taken));
        Ok(())
    }

    fn bind_mount(&mut self, line: usize, b: &BindMount, p: &mut Prepared) -> Result<(), BuildError> {
        let bad = |x: &Executor, e: String| x.err(line, format!("RUN --mount=type=bind,target={}: {e}", b.target));
        if b.from == Origin::Context {
            // a view of what the context includes (`.dockerignore` applied), files hard-linked
            let view = self.store.tempdir("bind").map_err(|e| bad(self, e.to_string()))?;
            let root = view.path.join("v");
            let entries = self.ctx.subtree(&b.source)?;
            for e in &entries {
                let rel = e.rel.strip_prefix(b.source.as_str()).unwrap_or(&e.rel).trim_start_matches('/');
                let to = if rel.is_empty() { root.clone() } else { root.join(rel) };
                let from = self.ctx.path(&e.rel);
                let r = if e.md.is_dir() {
                    fs::create_dir(&to).and_then(|_| {
                        use std::os::unix::fs::MetadataExt;
                        rootfs::lchown(&to, e.md.uid(), e.md.gid())?;
                        fs::set_permissions(&to, fs::Permissions::from_mode(e.md.mode() & 0o7777))
                    })
                } else {
                    rootfs::copy_tree(&from, &to, true)
                };
                r.map_err(|err| bad(self, format!("{}: {err}", from.display())))?;
            }
            if b.readonly || !root.is_dir() {
                let src = if b.readonly {
                    root.clone()
                } else {
                    // a writable single file: a copy of its own, thrown away with the view
                    let c = view.path.join("rw");
                    fs::copy(&root, &c).map_err(|e| bad(self, e.to_string()))?;
                    c
                };
                p.oci.push(bind(&b.target, &src, b.readonly));
                p.holds.push(Hold::Dir(view));
            } else {
                let rfs = overlay::mount_rootfs(self.store, std::slice::from_ref(&root), true)?;
                p.oci.push(bind(&b.target, &rfs.merged, false));
                p.holds.push(Hold::Overlay(rfs));
                p.holds.push(Hold::Dir(view));
            }
            return Ok(());
        }
        let (layers, _) = self.origin_state(line, &b.from)?;
        let lowers = self.lowers(&layers)?;
        // read-only, or writable with a throw-away upper dir (`rw`: writes are not kept)
        let rfs = overlay::mount_rootfs(self.store, &lowers, !b.readonly)?;
        let src = rootfs::resolve_in_root(&rfs.merged, &b.source, true);
        if fs::symlink_metadata(&src).is_err() {
            return Err(bad(self, format!("source {:?} not found", format!("/{}", b.source))));
        }
        p.oci.push(bind(&b.target, &src, b.readonly));
        p.holds.push(Hold::Overlay(rfs));
        Ok(())
    }

    fn secret_mount(&mut self, line: usize, s: &SecretMount, dir: &Path, p: &mut Prepared) -> Result<(), BuildError> {
        let value = self.opts.secrets.value(&s.id).map_err(|e| self.err(line, format!("RUN: {e}")))?;
        let Some(value) = value else {
            if s.required {
                return Err(self.err(
                    line,
                    format!("RUN --mount=type=secret: secret {} not found (build --secret id={},src=PATH)", s.id, s.id),
                ));
            }
            return Ok(()); // optional and not given: nothing is mounted, as in BuildKit
        };
        if let Some(var) = &s.env {
            p.env.push(format!("{var}={}", String::from_utf8_lossy(&value)));
        }
        if let Some(target) = &s.target {
            let f = dir.join(format!("secret-{}", p.oci.len()));
            let r = fs::write(&f, &value)
                .and_then(|_| std::os::unix::fs::chown(&f, Some(s.uid), Some(s.gid)))
                .and_then(|_| fs::set_permissions(&f, fs::Permissions::from_mode(s.mode & 0o777)));
            r.map_err(|e| self.err(line, format!("RUN: secret {}: {e}", s.id)))?;
            let mut opts = vec!["rbind", "ro", "nodev", "nosuid"];
            if s.mode & 0o111 == 0 {
                opts.push("noexec");
            }
            p.oci.push(json!({"destination": target, "type": "bind", "source": f.to_string_lossy(), "options": opts}));
        }
        Ok(())
    }

    fn ssh_mount(&mut self, line: usize, s: &SshMount, dir: &Path, p: &mut Prepared) -> Result<(), BuildError> {
        let agent = match self.agent_socket(&s.id) {
            Ok(Some(a)) => a,
            Ok(None) if !s.required => return Ok(()),
            Ok(None) => {
                return Err(self.err(
                    line,
                    format!(
                        "RUN --mount=type=ssh: no SSH key {:?} forwarded (build --ssh {}[=SOCKET|KEY])",
                        s.id, s.id
                    ),
                ))
            }
            Err(e) => return Err(self.err(line, format!("RUN --mount=type=ssh,id={}: {e}", s.id))),
        };
        let sock = dir.join(format!("ssh-{}.sock", p.oci.len()));
        let fwd = crate::secrets::forward(&sock, &agent, s.uid, s.gid, s.mode)
            .map_err(|e| self.err(line, format!("RUN --mount=type=ssh: forward {}: {e}", agent.display())))?;
        p.oci.push(bind(&s.target, &sock, false));
        p.holds.push(Hold::Forwarder(fwd));
        Ok(())
    }
}

/// The mount points the runtime will make for `targets` in `root`, with every missing parent,
/// deepest first: after the step each is removed again if it is an empty directory or an empty
/// file (BuildKit's recursive mount stub cleaner), so no mount leaves a trace in the layer.
pub(super) fn stubs(root: &Path, targets: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for t in targets {
        let mut cur = crate::glob::clean(t);
        while cur != "/" && !cur.is_empty() {
            let host = rootfs::resolve_in_root(root, &cur, false);
            if fs::symlink_metadata(&host).is_ok() {
                break;
            }
            if !out.contains(&host) {
                out.push(host);
            }
            cur = match cur.rsplit_once('/') {
                Some(("", _)) | None => "/".to_string(),
                Some((p, _)) => p.to_string(),
            };
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// Removes the stubs that stayed empty (deepest first), and the device nodes the runtime made
/// at one (`RUN --device` outside /dev: nothing was there before, and the step cannot have
/// made one where the runtime's is).
pub(super) fn remove_stubs(stubs: &[PathBuf]) {
    use std::os::unix::fs::FileTypeExt;
    for s in stubs {
        match fs::symlink_metadata(s) {
            Ok(md) if md.is_dir() => {
                let _ = fs::remove_dir(s);
            }
            Ok(md) if md.is_file() && md.len() == 0 => {
                let _ = fs::remove_file(s);
            }
            Ok(md)
                if md.file_type().is_char_device() || md.file_type().is_block_device() || md.file_type().is_fifo() =>
            {
                let _ = fs::remove_file(s);
            }
            _ => {}
        }
    }
}

/// After the overlay is unmounted: directories of the upper dir that only hold the removed
/// stubs' parents' copy-up (empty, not opaque, same mode and owner as below) are not changes,
/// so they are dropped from the diff, as BuildKit's overlay differ skips copied-up directories.
pub(super) fn drop_copied_up(upper: &Path, merged: &Path, stubs: &[PathBuf], lowers: &[PathBuf]) {
    use std::os::unix::fs::MetadataExt;
    let mut parents: Vec<PathBuf> = Vec::new();
    for s in stubs {
        let Ok(rel) = s.strip_prefix(merged) else { continue };
        let mut r = rel.parent();
        while let Some(p) = r {
            if p.as_os_str().is_empty() {
                break;
            }
            if !parents.iter().any(|x| x == p) {
                parents.push(p.to_path_buf());
            }
            r = p.parent();
        }
    }
    parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for rel in parents {
        let up = upper.join(&rel);
        let Ok(md) = fs::symlink_metadata(&up) else { continue };
        if !md.is_dir() || fs::read_dir(&up).map(|mut d| d.next().is_some()).unwrap_or(true) {
            continue;
        }
        if crate::sys::lgetxattr(&up, crate::userns::opaque_xattr()).ok().flatten().is_some() {
            continue;
        }
        let below = lowers.iter().rev().find_map(|l| fs::symlink_metadata(l.join(&rel)).ok());
        if below.is_some_and(|b| b.is_dir() && b.mode() == md.mode() && b.uid() == md.uid() && b.gid() == md.gid()) {
            let _ = fs::remove_dir(&up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_cover_missing_parents_deepest_first() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("run")).unwrap();
        let s = stubs(t.path(), &["/run/secrets/tok", "/root/.cache/pip", "/run"]);
        let rel: Vec<String> =
            s.iter().map(|p| p.strip_prefix(t.path()).unwrap().to_string_lossy().to_string()).collect();
        assert_eq!(rel, ["run/secrets/tok", "root/.cache/pip", "run/secrets", "root/.cache", "root"]);
        fs::create_dir_all(t.path().join("root/.cache/pip")).unwrap();
        fs::create_dir_all(t.path().join("run/secrets")).unwrap();
        fs::write(t.path().join("run/secrets/tok"), "").unwrap();
        fs::write(t.path().join("root/.cache/kept"), "x").unwrap();
        remove_stubs(&s);
        assert!(!t.path().join("run/secrets").exists());
        assert!(t.path().join("root/.cache/kept").exists() && !t.path().join("root/.cache/pip").exists());
    }
}
