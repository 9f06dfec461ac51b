//! The container's filesystem view, set up by the init inside its new mount namespace:
//! `prepare` (propagation, the rootfs bind, `mounts` in order, /dev), `enter` (pivot_root or
//! MS_MOVE+chroot) and `finish` (masked and read-only paths, read-only root, rootfs propagation).

pub mod copyup;
pub mod devices;
pub mod idmap;
pub mod options;
pub mod path;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{Mount, Spec};

use crate::cgroups::Dirs;
use crate::error::{Error, Result, SysContext};
use path::resolve_in_root;

/// What the mount steps need to know beyond the config.
pub struct MountCtx<'a> {
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_userns: bool,
    pub new_cgroupns: bool,
    /// The container's cgroup directory in each host hierarchy.
    pub cgroups: Dirs,
    /// The id-mapped trees `skiff create` made, to attach in place of a bind.
    pub idmapped: &'a [idmap::Tree],
}

fn do_mount(src: Option<&Path>, dst: &Path, fstype: Option<&str>, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(src, dst, fstype, flags, data.filter(|d| !d.is_empty())).ctx(|| {
        format!(
            "mount {} on {} (type {}, flags {:?}, data {:?})",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            dst.display(),
            fstype.unwrap_or("none"),
            flags,
            data.unwrap_or("")
        )
    })
}

/// Everything before pivot_root.
pub fn prepare(spec: &Spec, ctx: &MountCtx) -> Result<()> {
    let linux = spec.linux().as_ref();
    // The new mount namespace's copies start in the host's peer groups. rslave (the default)
    // keeps host mounts flowing in and none flowing out; rootfsPropagation replaces it, as in
    // runc. With rshared the copies stay the host's peers, so a bind of a shared host directory
    // joins the host's peer group and mounts pass both ways (Kubernetes' Bidirectional).
    let prop = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(p) if !p.is_empty() => options::rootfs_propagation(p).unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        _ => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    do_mount(None, Path::new("/"), None, prop, None)?;
    // The mount the rootfs sits on must not be shared: pivot_root refuses a shared parent, and
    // the rootfs bind and every mount below it would reach the host (runc's
    // rootfsParentMountPropagation). Everything the container mounts is below that bind.
    let parent = if prop.contains(MsFlags::MS_SLAVE) { MsFlags::MS_SLAVE } else { MsFlags::MS_PRIVATE };
    match unshare_rootfs_parent(ctx.rootfs, parent) {
        // In a user namespace the kernel may refuse to change a mount inherited from a more
        // privileged namespace (runc#5241). Harmless unless / was left shared: nothing is.
        Err(Error::Sys { errno: nix::errno::Errno::EPERM, .. }) if !prop.contains(MsFlags::MS_SHARED) => {
            crate::log::debug("rootfs parent mount: EPERM in a user namespace, left as / is (not shared)")
        }
        other => other?,
    }
    // The rootfs must be a mount point for pivot_root.
    do_mount(Some(ctx.rootfs), ctx.rootfs, Some("bind"), MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    let mut dev_is_bind = false;
    let mut late = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts = options::parse(m.options().as_deref().unwrap_or_default());
        if m.destination() == Path::new("/dev") && options::is_bind_mount(m, &opts) {
            dev_is_bind = true;
        }
        late.extend(mount_one(i, m, &opts, ctx)?);
    }
    if !dev_is_bind {
        devices::create_all(spec, ctx.rootfs, ctx.in_userns)?;
    }
    for l in late {
        l.apply(ctx)?;
    }
    Ok(())
}

/// Sets `flag` (MS_PRIVATE or MS_SLAVE) on the mount `rootfs` is on: mount(2) fails with EINVAL
/// on a path that is not a mount point, so each parent is tried up to /.
fn unshare_rootfs_parent(rootfs: &Path, flag: MsFlags) -> Result<()> {
    let mut at = rootfs;
    loop {
        match mount(None::<&str>, at, None::<&str>, flag, None::<&str>) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EINVAL) if at != Path::new("/") => {
                at = at.parent().unwrap_or(Path::new("/"));
            }
            Err(e) => return Err(Error::sys(format!("make the mount of {} {flag:?}", at.display()), e)),
        }
    }
}

/// What waits until /dev is filled: its read-only remount and recursive attributes.
struct Late {
    index: usize,
    destination: PathBuf,
    remount: Option<MsFlags>,
    rec: options::RecAttr,
}

impl Late {
    fn apply(&self, ctx: &MountCtx) -> Result<()> {
        let label = |e: Error| Error::msg(format!("mounts[{}] ({}): {e}", self.index, self.destination.display()));
        let fd = path::open_in_root(ctx.rootfs, &self.destination).map_err(label)?;
        if let Some(flags) = self.remount {
            do_mount(None, &path::fd_path(&fd), None, flags, None).map_err(label)?;
        }
        set_rec_attr(&fd, self.rec).map_err(label)
    }
}

/// mount_setattr(AT_RECURSIVE) on the mount `fd` is the root of: `rro`, `rnosuid`... reach every
/// mount below it too.
fn set_rec_attr(fd: &std::os::fd::OwnedFd, rec: options::RecAttr) -> Result<()> {
    use std::os::fd::AsFd;
    if rec.is_empty() {
        return Ok(());
    }
    let attr = crate::sys::mount::MountAttr { set: rec.set, clr: rec.clr, ..Default::default() };
    crate::sys::mount::mount_setattr(fd.as_fd(), true, &attr).map_err(|e| {
        let why = if e == nix::errno::Errno::ENOSYS { " (recursive mount options need Linux 5.12)" } else { "" };
        Error::msg(format!("mount_setattr(AT_RECURSIVE, set {:#x}, clear {:#x}): {e}{why}", rec.set, rec.clr))
    })
}

fn mount_one(i: usize, m: &Mount, opts: &options::MountOptions, ctx: &MountCtx) -> Result<Option<Late>> {
    let typ = m.typ().as_deref().unwrap_or("");
    let label = |e: Error| match e {
        e @ Error::Config { .. } => e,
        e => Error::msg(format!("mounts[{i}] ({}): {e}", m.destination().display())),
    };
    if typ == "proc" || typ == "sysfs" {
        // runc's rule: a hostile image's /proc -> somewhere must not receive the host's view.
        let direct = ctx.rootfs.join(m.destination().strip_prefix("/").unwrap_or(m.destination()));
        if let Ok(meta) = std::fs::symlink_metadata(&direct) {
            if !meta.is_dir() {
                return Err(label(Error::msg(format!(
                    "{typ} must be mounted on a real directory, not a symlink or file"
                ))));
            }
        }
    }
    let dest = resolve_in_root(ctx.rootfs, m.destination())?;
    // Each mount(2) on the destination goes through an fd the kernel resolved inside the rootfs,
    // opened afresh so that a remount lands on the mount just made.
    let target = || path::open_in_root(ctx.rootfs, m.destination()).map_err(label);
    let is_dev = m.destination() == Path::new("/dev");
    let mut late_remount = None;
    if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroups(&dest, opts, ctx).map_err(label)?;
    } else if options::is_bind_mount(m, opts) {
        let src = m.source().as_deref().ok_or_else(|| label(Error::msg("a bind mount needs a source")))?;
        let src = if src.is_absolute() { src.to_path_buf() } else { ctx.bundle.join(src) };
        let meta = std::fs::metadata(&src).map_err(|e| label(Error::io(format!("source {}", src.display()), e)))?;
        make_mount_point(&dest, meta.is_dir()).map_err(label)?;
        let rec = opts.flags & MsFlags::MS_REC;
        let fd = target()?;
        match ctx.idmapped.iter().find(|t| t.index == i) {
            Some(tree) => {
                use std::os::fd::AsFd;
                crate::sys::mount::move_mount(tree.fd.as_fd(), fd.as_fd())
                    .ctx(|| format!("move_mount the id-mapped {} onto {}", src.display(), dest.display()))
                    .map_err(label)?
            }
            None => {
                do_mount(Some(&src), &path::fd_path(&fd), Some("bind"), MsFlags::MS_BIND | rec, None).map_err(label)?
            }
        }
        // Options that only clear (rw, suid, exec, atime...) need the remount too (runc 1.2).
        if !opts.remount_flags().is_empty() || !opts.cleared.is_empty() {
            let fd = target()?;
            let at = path::fd_path(&fd);
            // `remount` asks for mount(8)'s "--bind -o remount": the source's flags stay and the
            // options add to them (runc 1.2). In a user namespace the locked ones stay anyway.
            let keep = if ctx.in_userns || opts.flags.contains(MsFlags::MS_REMOUNT) {
                locked_flags(&at)
            } else {
                MsFlags::empty()
            };
            let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | opts.remount_flags() | (keep - opts.cleared);
            flags |= atime_to_name(&at, flags, opts.cleared);
            do_mount(None, &at, None, flags, None).map_err(label)?;
        }
    } else {
        make_mount_point(&dest, true).map_err(label)?;
        let src = m.source().as_deref().unwrap_or(Path::new(typ));
        let mut flags = opts.flags;
        let ro_later = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | opts.remount_flags();
        if is_dev && flags.contains(MsFlags::MS_RDONLY) {
            // The device nodes are made in it first; runc remounts /dev read-only at the end too.
            flags.remove(MsFlags::MS_RDONLY);
            late_remount = Some(ro_later);
        }
        // tmpcopyup: what the tmpfs is about to hide, kept open to copy from (crun's way; runc
        // copies through a tmpfs on the host instead).
        let copy_from = if opts.tmpcopyup {
            Some(path::open_dir_in_root(ctx.rootfs, m.destination()).map_err(label)?)
        } else {
            None
        };
        let copy_ro = copy_from.is_some() && flags.contains(MsFlags::MS_RDONLY);
        if copy_ro {
            flags.remove(MsFlags::MS_RDONLY);
        }
        let mut data = opts.data.clone();
        if typ == "tmpfs" {
            // runc: a tmpfs takes the mode of the directory it covers unless the options say
            // otherwise (a later mode= wins).
            if let Ok(meta) = std::fs::metadata(&dest) {
                use std::os::unix::fs::PermissionsExt;
                let mode = format!("mode={:04o}", meta.permissions().mode() & 0o7777);
                data = if data.is_empty() { mode } else { format!("{mode},{data}") };
            }
        }
        let fd = target()?;
        let res = do_mount(Some(src), &path::fd_path(&fd), Some(typ), flags, Some(&data));
        match res {
            // sysfs cannot be mounted in a user namespace that does not own the network
            // namespace; runc falls back to a recursive bind of the host's /sys.
            Err(Error::Sys { errno: nix::errno::Errno::EPERM, .. }) if typ == "sysfs" && ctx.in_userns => {
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                do_mount(Some(Path::new("/sys")), &dest, Some("bind"), flags, None).map_err(label)?;
                if opts.flags.contains(MsFlags::MS_RDONLY) {
                    let re = flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&dest);
                    do_mount(None, &dest, None, re, None).map_err(label)?;
                }
            }
            // The kernel refuses filesystem options it does not know (EINVAL): name them.
            Err(Error::Sys { errno: nix::errno::Errno::EINVAL, op }) if !opts.data.is_empty() => {
                return Err(Error::config(
                    format!("mounts[{i}].options"),
                    format!("{op}: EINVAL: the kernel refused the {typ} options {:?}", opts.data),
                ));
            }
            other => other.map_err(label)?,
        }
        if let Some(from) = copy_from {
            use std::os::fd::AsFd;
            let to = path::open_dir_in_root(ctx.rootfs, m.destination()).map_err(label)?;
            copyup::copy_tree(from.as_fd(), to.as_fd(), m.destination()).map_err(label)?;
            if copy_ro {
                let fd = target()?;
                do_mount(None, &path::fd_path(&fd), None, ro_later | MsFlags::MS_RDONLY, None).map_err(label)?;
            }
        }
    }
    for p in &opts.propagation {
        let fd = target()?;
        do_mount(None, &path::fd_path(&fd), None, *p, None).map_err(label)?;
    }
    if is_dev && (late_remount.is_some() || !opts.rec.is_empty()) {
        return Ok(Some(Late { index: i, destination: m.destination().clone(), remount: late_remount, rec: opts.rec }));
    }
    set_rec_attr(&target()?, opts.rec).map_err(label)?;
    Ok(None)
}

/// A remount that names no atime flag keeps the mount's old ones (the kernel's rule), so an
/// option that clears one (`atime`, `diratime`, `norelatime`, `nostrictatime`) would do nothing:
/// the mount's other atime flags are named instead, the cleared one gone (relatime, the
/// kernel's default, if the mode itself was cleared).
fn atime_to_name(at: &Path, flags: MsFlags, cleared: MsFlags) -> MsFlags {
    let modes = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
    if !cleared.intersects(modes | MsFlags::MS_NODIRATIME) || flags.intersects(modes | MsFlags::MS_NODIRATIME) {
        return MsFlags::empty();
    }
    let now = locked_flags(at);
    let mode = if now.contains(MsFlags::MS_NOATIME) {
        MsFlags::MS_NOATIME
    } else if now.contains(MsFlags::MS_RELATIME) {
        MsFlags::MS_RELATIME
    } else {
        MsFlags::MS_STRICTATIME
    };
    let mode = if cleared.contains(mode) { MsFlags::MS_RELATIME } else { mode };
    mode | ((now & MsFlags::MS_NODIRATIME) - cleared)
}

/// The flags of an existing mount that an unprivileged remount may not clear.
fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else { return MsFlags::empty() };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// Creates the directory (or empty file, for a bind of a file) a mount goes on.
fn make_mount_point(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        if !dest.is_dir() {
            std::fs::create_dir_all(dest).ctx(|| format!("mkdir {}", dest.display()))?;
        }
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("mkdir {}", parent.display()))?;
    }
    if !dest.exists() {
        std::fs::File::create(dest).ctx(|| format!("create {}", dest.display()))?;
    }
    Ok(())
}

/// A `cgroup` mount. With a new cgroup namespace each hierarchy is mounted afresh (the kernel shows
/// the namespace root, i.e. the container's cgroup); without one the container's own directory
/// of each host hierarchy is bind-mounted, so it never sees its siblings. On a v1 or hybrid host the
/// hierarchies sit in a tmpfs, as runc lays them out.
fn mount_cgroups(dest: &Path, opts: &options::MountOptions, ctx: &MountCtx) -> Result<()> {
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let base = (opts.flags - MsFlags::MS_RDONLY) & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    make_mount_point(dest, true)?;
    if let Some((_, leaf)) = ctx.cgroups.v2_only() {
        let flags = base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
        if ctx.new_cgroupns {
            match do_mount(Some(Path::new("cgroup2")), dest, Some("cgroup2"), flags, None) {
                // runc's fallback (mountCgroupV2): a user namespace can be refused a cgroup2
                // mount (EPERM; EBUSY in a subtree systemd delegated to the user, seen in make
                // test-systemd), so bind the container's own directory: what its cgroup
                // namespace would show.
                Err(Error::Sys { errno: nix::errno::Errno::EPERM | nix::errno::Errno::EBUSY, op }) if ctx.in_userns => {
                    crate::log::debug(&format!("{op}; binding {} instead", leaf.display()));
                }
                r => return r,
            }
        }
        do_mount(Some(leaf), dest, Some("bind"), MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
        return do_mount(None, dest, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None);
    }
    do_mount(Some(Path::new("tmpfs")), dest, Some("tmpfs"), base, Some("mode=755"))?;
    for (h, leaf) in ctx.cgroups.iter() {
        let name = h.mount_point.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("unified"));
        let sub = dest.join(&name);
        make_mount_point(&sub, true)?;
        let flags = base | if ro { MsFlags::MS_RDONLY } else { MsFlags::empty() };
        if ctx.new_cgroupns {
            let (fstype, data) =
                if h.version == 2 { ("cgroup2", String::new()) } else { ("cgroup", h.controllers.join(",")) };
            do_mount(Some(Path::new(fstype)), &sub, Some(fstype), flags, Some(&data))?;
        } else {
            do_mount(Some(leaf), &sub, Some("bind"), MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            do_mount(None, &sub, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None)?;
        }
        // Co-mounted controllers (cpu,cpuacct) also answer to each name, through a symlink.
        if h.controllers.len() > 1 {
            for c in &h.controllers {
                let link = dest.join(c);
                if !link.exists() {
                    std::os::unix::fs::symlink(&name, &link).ctx(|| format!("symlink {}", link.display()))?;
                }
            }
        }
    }
    if ro {
        do_mount(None, dest, None, MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base, Some("mode=755"))?;
    }
    Ok(())
}

/// Makes the rootfs the root: pivot_root(".", ".") and a lazy unmount of the old root stacked
/// under it (runc's trick; no temporary directory in the rootfs needed), or MS_MOVE + chroot for
/// `--no-pivot` (for ramfs roots, where pivot_root cannot work).
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    if no_pivot {
        nix::unistd::chdir(rootfs).ctx(|| format!("chdir {}", rootfs.display()))?;
        do_mount(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)?;
        nix::unistd::chroot(".").ctx(|| "chroot .".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    let old = std::fs::File::open("/").ctx(|| "open /".into())?;
    let new = std::fs::File::open(rootfs).ctx(|| format!("open {}", rootfs.display()))?;
    nix::unistd::fchdir(new.as_raw_fd()).ctx(|| format!("chdir {}", rootfs.display()))?;
    nix::unistd::pivot_root(".", ".").ctx(|| format!("pivot_root {}", rootfs.display()))?;
    nix::unistd::fchdir(old.as_raw_fd()).ctx(|| "chdir to the old root".into())?;
    // Make the old root a slave so the unmount does not propagate to the host.
    do_mount(None, Path::new("."), None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After the pivot: masked paths, read-only paths, a read-only root and the final propagation.
pub fn finish(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else { return Ok(()) };
    for p in linux.readonly_paths().iter().flatten() {
        let path = Path::new(p);
        if !path.exists() {
            continue;
        }
        let label = |e: Error| Error::msg(format!("linux.readonlyPaths: {p}: {e}"));
        do_mount(Some(path), path, Some("bind"), MsFlags::MS_BIND | MsFlags::MS_REC, None).map_err(label)?;
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked_flags(path);
        do_mount(None, path, None, flags, None).map_err(label)?;
    }
    for p in linux.masked_paths().iter().flatten() {
        let path = Path::new(p);
        let label = |e: Error| Error::msg(format!("linux.maskedPaths: {p}: {e}"));
        match std::fs::metadata(path) {
            Err(_) => continue,
            Ok(m) if m.is_dir() => {
                do_mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), MsFlags::MS_RDONLY, None).map_err(label)?
            }
            Ok(_) => {
                do_mount(Some(Path::new("/dev/null")), path, Some("bind"), MsFlags::MS_BIND, None).map_err(label)?
            }
        }
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(Path::new("/"));
        do_mount(None, Path::new("/"), None, flags, None).map_err(|e| Error::msg(format!("root.readonly: {e}")))?;
    }
    if let Some(p) = linux.rootfs_propagation().as_deref().and_then(options::rootfs_propagation) {
        do_mount(None, Path::new("/"), None, p, None)
            .map_err(|e| Error::msg(format!("linux.rootfsPropagation: {e}")))?;
    }
    Ok(())
}
