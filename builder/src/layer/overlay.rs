//! The rootfs a step works on: an overlay mount of layer snapshots plus a fresh upper dir.
//! The mount options are computed as data (`options`) and applied in one `mount` call.
//! Mounting changes the working directory for the call: stages that run at once each have
//! their own (their threads unshare CLONE_FS) and take turns here too (`CWD`).

use crate::store::{io_err, Store, StoreError, TempDir};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::path::{Path, PathBuf};

/// A mounted overlay; unmounted and removed on drop.
pub struct Rootfs {
    pub merged: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
    _tmp: TempDir,
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.merged, MntFlags::MNT_DETACH);
        }
    }
}

/// The working directory is the process's: held while it is not slipway's own.
static CWD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Overlay mount options. `lowers` is bottom-first (image order); overlay wants top-first.
/// `userns`: mounted in a user namespace (rootless), where overlay keeps its bookkeeping in
/// `user.overlay.*` (`userxattr`; `trusted.*` is the host root's) and refuses `redirect_dir=off`.
/// `volatile` (with an upper dir): overlay does not sync the upper dir's filesystem, which it
/// otherwise does at unmount — a syncfs of the whole host filesystem, waiting for every other
/// writer's dirty data (a second under load). The upper dir is a temp dir read once by the
/// diff; the layer made from it is fsynced on its own.
pub fn options(lowers: &[PathBuf], upper: Option<(&Path, &Path)>, extra: bool, volatile: bool, userns: bool) -> String {
    let l: Vec<String> = lowers.iter().rev().map(|p| p.to_string_lossy().to_string()).collect();
    let mut o = format!("lowerdir={}", l.join(":"));
    if let Some((u, w)) = upper {
        o.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        if volatile {
            o.push_str(",volatile");
        }
    }
    if userns {
        o.push_str(",userxattr");
    }
    if extra {
        // keep the upper dir a plain diff: no redirects, no metadata-only copy-ups
        // (nofollow is what off means where redirect_always_follow is not built in)
        let redirect = if userns { "nofollow" } else { "off" };
        o.push_str(&format!(",index=off,redirect_dir={redirect},metacopy=off"));
    }
    o
}

/// `lowers` (bottom-first) with each snapshot once, at its topmost place. Two steps that made
/// the same diff (two RUN steps that changed nothing share the empty layer) share a snapshot
/// dir, and overlay refuses a dir given twice (dmesg: `conflicting lowerdir path`; the mount
/// fails with EINVAL, or ELOOP through our symlinks). The union is the same without the lower
/// copy: every entry it has, whiteouts and opaque dirs included, the upper copy has too, and
/// what the upper copy shadows below it the lower one shadowed as well.
fn distinct_lowers(lowers: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<PathBuf> = lowers.iter().rev().filter(|l| seen.insert(*l)).cloned().collect();
    out.reverse();
    out
}

/// Mounts `lowers` (bottom-first) with a writable upper dir, or read-only when `writable` is false.
pub fn mount_rootfs(store: &Store, lowers: &[PathBuf], writable: bool) -> Result<Rootfs, StoreError> {
    let tmp = store.tempdir("rootfs")?;
    let merged = tmp.path.join("merged");
    let upper = tmp.path.join("upper");
    let work = tmp.path.join("work");
    let empty = tmp.path.join("empty");
    for d in [&merged, &upper, &work, &empty] {
        fs::create_dir_all(d).map_err(io_err("create", d))?;
    }
    let mut lowers = distinct_lowers(lowers);
    if lowers.is_empty() || !writable {
        lowers.insert(0, empty.clone());
    }
    // The options must fit in one page: name the lower dirs through short symlinks relative
    // to the temp dir (overlay resolves them at mount time), mounting from inside it.
    let links = tmp.path.join("l");
    fs::create_dir_all(&links).map_err(io_err("create", &links))?;
    let mut short = Vec::new();
    for (i, l) in lowers.iter().enumerate() {
        let name = format!("l/{i:x}");
        let lp = tmp.path.join(&name);
        std::os::unix::fs::symlink(l, &lp).map_err(io_err("symlink", &lp))?;
        short.push(PathBuf::from(name));
    }
    let lowers = short;
    let up = writable.then_some((upper.as_path(), work.as_path()));
    let flags = if writable { MsFlags::empty() } else { MsFlags::MS_RDONLY };
    let userns = crate::userns::in_userns();
    // what older kernels lack is left out in turn: volatile (5.10), then the diff-keeping options
    let tries = [(true, true), (true, false), (false, false)];
    let guard = CWD.lock().unwrap_or_else(|p| p.into_inner());
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    std::env::set_current_dir(&tmp.path).map_err(io_err("chdir", &tmp.path))?;
    let mut res = Err(nix::errno::Errno::EINVAL);
    for (extra, volatile) in tries {
        let o = options(&lowers, up, extra, volatile, userns);
        res = mount(Some("overlay"), &merged, Some("overlay"), flags, Some(o.as_str()));
        if res.is_ok() {
            break;
        }
    }
    if std::env::set_current_dir(&cwd).is_err() {
        let _ = std::env::set_current_dir("/");
    }
    drop(guard);
    res.map_err(|e| StoreError::Io { op: "mount overlay on", path: merged.clone(), err: e.into() })?;
    Ok(Rootfs { merged, upper, mounted: true, _tmp: tmp })
}

impl Rootfs {
    /// Unmounts now (before diffing the upper dir).
    pub fn unmount(&mut self) -> Result<(), StoreError> {
        if self.mounted {
            umount2(&self.merged, MntFlags::empty())
                .or_else(|_| umount2(&self.merged, MntFlags::MNT_DETACH))
                .map_err(|e| StoreError::Io { op: "unmount", path: self.merged.clone(), err: e.into() })?;
            self.mounted = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_twice_is_kept_at_its_topmost_place() {
        let p = |s: &str| PathBuf::from(s);
        let l = [p("/s/base"), p("/s/empty"), p("/s/a"), p("/s/empty"), p("/s/b")];
        assert_eq!(distinct_lowers(&l), [p("/s/base"), p("/s/a"), p("/s/empty"), p("/s/b")]);
        assert_eq!(distinct_lowers(&[p("/s/x"), p("/s/x")]), [p("/s/x")]);
        assert!(distinct_lowers(&[]).is_empty());
    }

    #[test]
    fn option_order_is_top_first() {
        let l = vec![PathBuf::from("/s/1"), PathBuf::from("/s/2")];
        assert_eq!(
            options(&l, Some((Path::new("/u"), Path::new("/w"))), false, false, false),
            "lowerdir=/s/2:/s/1,upperdir=/u,workdir=/w"
        );
        assert_eq!(
            options(&l, Some((Path::new("/u"), Path::new("/w"))), true, true, false),
            "lowerdir=/s/2:/s/1,upperdir=/u,workdir=/w,volatile,index=off,redirect_dir=off,metacopy=off"
        );
        // rootless: overlay's xattrs in user.*, and it refuses redirect_dir=off there
        assert_eq!(
            options(&l, None, true, true, true),
            "lowerdir=/s/2:/s/1,userxattr,index=off,redirect_dir=nofollow,metacopy=off"
        );
    }
}
