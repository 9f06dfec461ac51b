//! Resolving a container path inside the rootfs the way the container would see it: symlinks
//! are followed but can never climb out of the rootfs (`..` at the root stays at the root, an
//! absolute link target restarts at the rootfs). This is what keeps a hostile image's
//! `/proc -> /host/etc` from redirecting a mount onto the host.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

const MAX_SYMLINKS: usize = 255;

/// Joins `unsafe_path` under `root`, resolving every symlink component within `root`.
/// Components that do not exist are kept as they are (the caller may create them).
pub fn resolve_in_root(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root, always clean
    let mut remaining: std::collections::VecDeque<PathBuf> = components(unsafe_path);
    let mut links = 0;
    while let Some(part) = remaining.pop_front() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::msg(format!(
                        "resolve {}: too many levels of symbolic links",
                        unsafe_path.display()
                    )));
                }
                let target =
                    std::fs::read_link(&full).map_err(|e| Error::io(format!("readlink {}", full.display()), e))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut next = components(&target);
                next.extend(remaining);
                remaining = next;
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// Opens `container_path` under `root` as O_PATH, with the kernel doing the resolution
/// (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): whatever was swapped for a symlink since
/// `resolve_in_root` looked, the file opened is inside the root. Mounts then go through the fd.
pub fn open_in_root(root: &Path, container_path: &Path) -> Result<OwnedFd> {
    open_in_root_with(root, container_path, nix::fcntl::OFlag::O_PATH)
}

/// As [`open_in_root`], for reading a directory's entries and attributes.
pub fn open_dir_in_root(root: &Path, container_path: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    open_in_root_with(root, container_path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
}

fn open_in_root_with(root: &Path, container_path: &Path, flags: nix::fcntl::OFlag) -> Result<OwnedFd> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let dir = std::fs::File::open(root).map_err(|e| Error::io(format!("open {}", root.display()), e))?;
    let rel = container_path.strip_prefix("/").unwrap_or(container_path);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(dir.as_raw_fd(), rel, how)
        .map_err(|e| Error::sys(format!("open {} inside the rootfs", container_path.display()), e))?;
    Ok(crate::sys::owned_fd(fd))
}

/// The magic link naming an open fd, for mount(2) to act on exactly that file.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The normal components of a path, with `..` kept and `.`/root dropped.
fn components(p: &Path) -> std::collections::VecDeque<PathBuf> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(PathBuf::from(s)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("skiff-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        symlink("/real", dir.join("abs")).unwrap();
        symlink("../../../../etc", dir.join("escape")).unwrap();
        symlink("real/sub", dir.join("rel")).unwrap();
        symlink("loop", dir.join("loop")).unwrap();
        // (container path, expected path relative to the root): the row says which rule it pins.
        let rows = [
            ("/a/b", "a/b"),                  // missing components are kept
            ("/../../x", "x"),                // .. at the root stays at the root
            ("/abs/sub", "real/sub"),         // absolute link target restarts at the root
            ("/escape/passwd", "etc/passwd"), // relative link cannot climb out
            ("/rel/f", "real/sub/f"),         // relative link resolves from its directory
            ("/real/./sub/../sub", "real/sub"),
        ];
        for (input, want) in rows {
            assert_eq!(resolve_in_root(&dir, Path::new(input)).unwrap(), dir.join(want), "{input}");
        }
        assert!(resolve_in_root(&dir, Path::new("/loop/x")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
