//! Mount options as the container and the host see them: recursive attributes (runtime-spec 1.1,
//! mount_setattr AT_RECURSIVE) on a bind and the submounts it carries, per-mount flags, and the
//! options that cannot be applied, refused before anything is created. Each test reads
//! /proc/self/mountinfo inside, tries the write or exec the option forbids, and where it says so
//! looks at the container's mounts from the host (/proc/PID/mountinfo).

use integration::{Bundle, Runtime};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A host directory with a file, and a tmpfs mounted below it at `sub`, so that a recursive bind
/// of the directory carries a submount. Drop unmounts and removes both.
struct SourceWithSubmount {
    _sub: Unmount,
    dir: tempfile::TempDir,
}

impl SourceWithSubmount {
    fn new() -> SourceWithSubmount {
        SourceWithSubmount::with_sub_flags(nix::mount::MsFlags::empty())
    }

    /// The submount gets per-mount `flags` (a bind remount: the tmpfs itself stays writable).
    fn with_sub_flags(flags: nix::mount::MsFlags) -> SourceWithSubmount {
        use nix::mount::{mount, MsFlags};
        let dir = tempfile::Builder::new().prefix("skiff-it-mnt-").tempdir_in("/tmp").expect("host dir");
        std::fs::write(dir.path().join("file"), "top\n").expect("write top file");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir sub");
        mount(Some("tmpfs"), &sub, Some("tmpfs"), MsFlags::empty(), Some("size=16m")).expect("mount tmpfs");
        let guard = Unmount(sub.clone());
        std::fs::write(sub.join("file"), "sub\n").expect("write sub file");
        if !flags.is_empty() {
            mount(None::<&str>, &sub, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None::<&str>)
                .expect("remount the submount");
        }
        SourceWithSubmount { _sub: guard, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The per-mount options (field 6 of mountinfo) of the mount at `point`; the topmost if stacked.
#[track_caller]
fn per_mount_options(mountinfo: &str, point: &str) -> Vec<String> {
    mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(point))
        .unwrap_or_else(|| panic!("no mount at {point} in\n{mountinfo}"))
        .split(' ')
        .nth(5)
        .expect("mountinfo field 6")
        .split(',')
        .map(String::from)
        .collect()
}

/// Runs `script` in a bundle with one bind of `src` at /m with `options`; returns stdout.
#[track_caller]
fn run_with_bind(src: &Path, options: &[&str], script: &str) -> String {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/m", "type": "bind", "source": src, "options": options})).sh(script);
    rt.run_ok(&b)
}

/// The index the next `Bundle::mount` gets in `mounts`.
fn next_index(b: &Bundle) -> usize {
    b.config()["mounts"].as_array().map(Vec::len).unwrap_or(0)
}

const MOUNTINFO: &str = "echo ==; cat /proc/self/mountinfo";

/// Splits a script's output at the `==` line MOUNTINFO prints: (before, mountinfo).
fn split_mountinfo(out: &str) -> (&str, &str) {
    out.split_once("==\n").unwrap_or_else(|| panic!("no mountinfo in {out:?}"))
}

// ---- recursive attributes (runtime-spec 1.1) ----

/// The security bug: `rbind,rro` gave a writable mount (rro fell into the data string
/// and the bind dropped it). Now the bind and every submount it carries are read-only, seen from
/// inside (writes fail, mountinfo says ro) and from the host (the container's mountinfo).
#[test]
fn rro_makes_the_bind_and_every_submount_read_only() {
    let src = SourceWithSubmount::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/m", "type": "bind", "source": src.path(), "options": ["rbind", "rro"]})).sh(
        &format!(
            "cat /m/file /m/sub/file; echo x > /m/file && echo top-written || echo top-refused; \
             echo x > /m/sub/new && echo sub-written || echo sub-refused; {MOUNTINFO}"
        ),
    );
    let id = rt.new_id();
    let created = rt.create_ok(&id, &b);
    // From the host, before the process runs: the container's mount table.
    let outside = std::fs::read_to_string(format!("/proc/{}/mountinfo", rt.pid(&id))).expect("container mountinfo");
    for point in ["/m", "/m/sub"] {
        assert!(per_mount_options(&outside, point).contains(&"ro".to_string()), "{point} seen from the host");
    }
    rt.start(&id).assert_success();
    rt.wait_for_status(&id, "stopped");
    let out = created.stdout_now();
    let (said, inside) = split_mountinfo(&out);
    assert_eq!(said, "top\nsub\ntop-refused\nsub-refused\n", "{out}");
    for point in ["/m", "/m/sub"] {
        assert_eq!(per_mount_options(inside, point)[0], "ro", "{point}");
    }
    // The host's own mounts are untouched: the attribute went on the container's copies.
    std::fs::write(src.path().join("sub/after"), "x").expect("host submount still writable");
    assert_eq!(std::fs::read_to_string(src.path().join("file")).expect("read"), "top\n");
    rt.delete(&id).assert_success();
}

/// `ro` on an rbind only reaches the top mount (the kernel's MS_REMOUNT semantics, runc's too):
/// this is why rro exists. Pins that skiff did not turn ro into rro.
#[test]
fn ro_on_an_rbind_leaves_submounts_writable() {
    let src = SourceWithSubmount::new();
    let out = run_with_bind(
        src.path(),
        &["rbind", "ro"],
        &format!("echo x > /m/file || echo top-refused; echo x > /m/sub/new && echo sub-written; {MOUNTINFO}"),
    );
    let (said, inside) = split_mountinfo(&out);
    assert!(said.contains("top-refused") && said.contains("sub-written"), "{out}");
    assert_eq!(per_mount_options(inside, "/m")[0], "ro");
    assert_eq!(per_mount_options(inside, "/m/sub")[0], "rw");
}

/// rnosuid, rnodev, rnoexec, rnodiratime, rnoatime and rnosymfollow reach the submount, and do
/// what they say: a binary there does not run, a symlink there is not followed.
#[test]
fn recursive_flags_reach_every_submount_and_take_effect() {
    let src = SourceWithSubmount::new();
    std::fs::copy("/bin/busybox", src.path().join("sub/bb")).expect("copy busybox");
    std::os::unix::fs::symlink("file", src.path().join("sub/link")).expect("symlink");
    let out = run_with_bind(
        src.path(),
        &["rbind", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnoatime", "rnosymfollow"],
        &format!(
            "/m/sub/bb true && echo ran || echo exec-refused; cat /m/sub/link && echo followed || echo not-followed; \
             {MOUNTINFO}"
        ),
    );
    let (said, inside) = split_mountinfo(&out);
    assert!(said.contains("exec-refused") && said.contains("not-followed"), "{out}");
    for point in ["/m", "/m/sub"] {
        let opts = per_mount_options(inside, point);
        for want in ["nosuid", "nodev", "noexec", "noatime", "nodiratime", "nosymfollow"] {
            assert!(opts.iter().any(|o| o == want), "{point}: {want} missing from {opts:?}");
        }
    }
}

/// The clearing attributes undo what the host's submount has: rrw, rsuid, rdev, rexec.
#[test]
fn clearing_attributes_reach_every_submount() {
    use nix::mount::MsFlags;
    let src = SourceWithSubmount::with_sub_flags(
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    );
    let out = run_with_bind(
        src.path(),
        &["rbind", "rrw", "rsuid", "rdev", "rexec"],
        &format!("echo x > /m/sub/f && echo written; {MOUNTINFO}"),
    );
    let (said, inside) = split_mountinfo(&out);
    assert_eq!(said, "written\n", "{out}");
    let opts = per_mount_options(inside, "/m/sub");
    assert_eq!(opts[0], "rw");
    for gone in ["nosuid", "nodev", "noexec"] {
        assert!(!opts.iter().any(|o| o == gone), "{gone} still in {opts:?}");
    }
    // The host's submount keeps its flags.
    assert!(std::fs::write(src.path().join("sub/host"), "x").is_err(), "the host's submount became writable");
}

/// The atime modes are one value per mount: each recursive one lands on the submount too.
#[test]
fn recursive_atime_modes_land_on_every_submount() {
    let src = SourceWithSubmount::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    // (destination, options, atime word expected in mountinfo or None for strictatime).
    let rows: [(&str, &str, Option<&str>); 5] = [
        ("/a", "rnoatime", Some("noatime")),
        ("/b", "rrelatime", Some("relatime")),
        ("/c", "rstrictatime", None),
        // ratime and rnorelatime mean "the kernel's default", relatime (runc's table).
        ("/d", "ratime", Some("relatime")),
        ("/e", "rnorelatime", Some("relatime")),
    ];
    // runc 1.1.5 clears only MOUNT_ATTR_NOATIME for ratime, not all of MOUNT_ATTR__ATIME, and the
    // kernel refuses that (EINVAL); runc 1.2 fixed it.
    let rows: Vec<_> = rows.into_iter().filter(|r| !(integration::runtime_is_runc() && r.1 == "ratime")).collect();
    for &(dest, opt, _) in &rows {
        b.mount(json!({"destination": dest, "type": "bind", "source": src.path(), "options": ["rbind", opt]}));
    }
    b.sh("cat /proc/self/mountinfo");
    let inside = rt.run_ok(&b);
    for (dest, opt, want) in rows {
        for point in [dest.to_string(), format!("{dest}/sub")] {
            let opts = per_mount_options(&inside, &point);
            let atime: Vec<&String> = opts.iter().filter(|o| o.ends_with("atime") && *o != "nodiratime").collect();
            match want {
                Some(w) => assert_eq!(atime, [w], "{opt} on {point}: {opts:?}"),
                None => assert!(atime.is_empty(), "{opt} on {point}: {opts:?}"),
            }
        }
    }
}

/// nosymfollow without the r is the per-mount flag: the top mount gets it, the submount not.
#[test]
fn nosymfollow_is_per_mount() {
    let src = SourceWithSubmount::new();
    std::os::unix::fs::symlink("file", src.path().join("link")).expect("symlink");
    std::os::unix::fs::symlink("file", src.path().join("sub/link")).expect("symlink");
    let out = run_with_bind(
        src.path(),
        &["rbind", "nosymfollow"],
        &format!("cat /m/link || echo top-not-followed; cat /m/sub/link; {MOUNTINFO}"),
    );
    let (said, inside) = split_mountinfo(&out);
    assert_eq!(said, "top-not-followed\nsub\n", "{out}");
    assert!(per_mount_options(inside, "/m").iter().any(|o| o == "nosymfollow"));
    assert!(!per_mount_options(inside, "/m/sub").iter().any(|o| o == "nosymfollow"));
}

/// rro on a tmpfs (not only binds) is applied too: the mount is read-only inside.
#[test]
fn rro_applies_to_a_tmpfs_mount() {
    if integration::runtime_is_runc() {
        // runc only applies recursive attributes to bind mounts (setRecAttr in the bind case).
        integration::skip("runc applies recursive mount attributes to bind mounts only");
        return;
    }
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rro", "size=1m"]}))
        .sh(&format!("echo x > /t/f && echo written || echo refused; {MOUNTINFO}"));
    let out = rt.run_ok(&b);
    let (said, inside) = split_mountinfo(&out);
    assert_eq!(said, "refused\n", "{out}");
    assert_eq!(per_mount_options(inside, "/t")[0], "ro");
}

// ---- what cannot be applied is refused (runc 1.2) ----

/// A bind mount with a word that is no mount option: runc 1.1 dropped it (so did skiff, which
/// is how `rro` was lost); runc 1.2 and skiff refuse it naming the mount, before anything exists.
#[test]
fn a_bind_with_an_unknown_option_is_refused_naming_it() {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 drops filesystem data on a bind mount (runc 1.2 refuses it)");
        return;
    }
    for bad in [&["rbind", "rr0"][..], &["bind", "size=1m"], &["rbind", "ro", "mode=755"]] {
        let rt = Runtime::new();
        let src = tempfile::tempdir_in("/tmp").expect("src");
        let mut b = Bundle::new();
        let n = next_index(&b);
        b.mount(json!({"destination": "/m", "type": "bind", "source": src.path(), "options": bad})).sh("true");
        let id = rt.new_id();
        let out = rt.create(&id, &b);
        out.assert_failure().assert_stderr_contains(&format!("mounts[{n}].options"));
        assert!(out.stderr.contains("a bind mount cannot take filesystem options"), "{out}");
        assert!(rt.list_ids().is_empty(), "a refused config left a container behind: {:?}", rt.list_ids());
        assert!(b.cgroup_dirs().is_empty(), "a refused config left cgroups: {:?}", b.cgroup_dirs());
    }
}

/// A new filesystem gets its data from the kernel's parser, which refuses what it does not know;
/// the error names the mount's options.
#[test]
fn a_tmpfs_with_an_unknown_option_fails_naming_it() {
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let n = next_index(&b);
    b.mount(json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["rro0"]})).sh("true");
    let id = rt.new_id();
    let out = rt.create(&id, &b);
    out.assert_failure();
    if !integration::runtime_is_runc() {
        out.assert_stderr_contains(&format!("mounts[{n}].options"));
        out.assert_stderr_contains("rro0");
    }
    assert!(rt.list_ids().is_empty(), "{:?}", rt.list_ids());
}

/// The mounts containerd, docker and podman send keep working: each of their option sets.
#[test]
fn the_option_sets_engines_send_are_accepted() {
    let src = tempfile::tempdir_in("/tmp").expect("src");
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let mounts: Vec<Value> = vec![
        // containerd CRI: volumes and /etc/hosts.
        json!({"destination": "/v1", "type": "bind", "source": src.path(), "options": ["rbind", "rprivate", "rw"]}),
        json!({"destination": "/v2", "type": "bind", "source": src.path(), "options": ["rbind", "rslave", "ro"]}),
        // docker: binds and /dev/shm, mqueue.
        json!({"destination": "/v3", "type": "bind", "source": src.path(), "options": ["rbind", "rprivate"]}),
        json!({"destination": "/v4", "source": src.path(), "options": ["bind", "nosuid", "nodev", "noexec"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/mq", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        // podman: tmpfs with tmpcopyup, binds with rprivate, docker 25's rro.
        json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
               "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]}),
        json!({"destination": "/v5", "type": "bind", "source": src.path(), "options": ["rbind", "rro", "rprivate"]}),
    ];
    for m in mounts {
        b.mount(m);
    }
    b.sh("grep -c ' /v[1-5] ' /proc/self/mountinfo");
    assert_eq!(rt.run_ok(&b), "5\n");
}

// ---- id-mapped mounts (runtime-spec 1.2) ----

/// The mapping of a Kubernetes pod with `hostUsers: false`: container 0 is host 100000.
fn pod_mapping() -> Value {
    json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
}

/// `stat -c '%u:%g'` of a host path.
fn owner(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    format!("{}:{}", m.uid(), m.gid())
}

/// A host directory owned by host root (mode 755) with `root-file` owned 0:0 and `user-file`
/// owned 1000:1000, as a volume or an unpacked image is on the host.
fn host_volume() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("skiff-it-vol-").tempdir_in("/tmp").expect("volume dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(dir.path().join("root-file"), "r\n").expect("write");
    std::fs::write(dir.path().join("user-file"), "u\n").expect("write");
    std::os::unix::fs::chown(dir.path().join("user-file"), Some(1000), Some(1000)).expect("chown");
    dir
}

fn skip_on_runc() -> bool {
    if integration::runtime_is_runc() {
        integration::skip("runc 1.1.5 has no id-mapped mounts (runc 1.2 has)");
        return true;
    }
    false
}

/// A pod as Kubernetes makes it with user namespaces: the container's root is host uid 100000,
/// and its volume and a bind of the image are id-mapped with the pod's mapping, so files host
/// root owns are the container root's (it can write there, and what it writes is host root's).
/// Without the mapping the same directory shows nobody and refuses root's writes.
#[test]
fn a_pod_with_a_user_namespace_owns_its_id_mapped_volume_and_image() {
    if skip_on_runc() {
        return;
    }
    let vol = host_volume();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let image = b.rootfs();
    // The pod's rootfs is its root's (containerd's snapshotter id-maps or chowns it): the mount
    // points are there already, and the container's root could not make them in a host-owned one.
    for d in ["vol", "image", "plain"] {
        std::fs::create_dir(image.join(d)).expect("mkdir mount point");
    }
    b.edit(|c| {
        c["linux"]["namespaces"].as_array_mut().expect("namespaces").push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = pod_mapping();
        c["linux"]["gidMappings"] = pod_mapping();
    });
    // The volume: explicit mappings, as containerd's CRI sets them.
    b.mount(json!({"destination": "/vol", "type": "bind", "source": vol.path(), "options": ["rbind", "idmap"],
                   "uidMappings": pod_mapping(), "gidMappings": pod_mapping()}));
    // The image, bound id-mapped with ridmap and no mappings: the container's own (runc 1.2).
    b.mount(json!({"destination": "/image", "type": "bind", "source": image, "options": ["rbind", "ridmap"]}));
    // The same volume without a mapping, for contrast.
    b.mount(json!({"destination": "/plain", "type": "bind", "source": vol.path(), "options": ["rbind"]}));
    b.sh("id -u; stat -c %u:%g /vol/root-file /vol/user-file /image/bin/busybox /bin/busybox /plain/root-file; \
         echo x > /vol/new && echo vol-written; echo x > /image/etc/idmapped && echo image-written; \
         echo x > /plain/other 2>/dev/null && echo plain-written || echo plain-refused; \
         grep -E ' /(vol|image|plain) ' /proc/self/mountinfo | cut -d' ' -f5,6");
    let out = rt.run_ok(&b);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        l[..9],
        ["0", "0:0", "1000:1000", "0:0", "65534:65534", "65534:65534", "vol-written", "image-written", "plain-refused"],
        "{out}"
    );
    // mountinfo marks id-mapped mounts.
    for line in &l[9..] {
        let (point, opts) = line.split_once(' ').expect("point and options");
        let idmapped = opts.split(',').any(|o| o == "idmapped");
        assert_eq!(idmapped, point != "/plain", "{line}");
    }
    assert_eq!(l.len(), 12, "{out}");
    // From the host: what the container's root wrote belongs to host root, not to 100000.
    assert_eq!(owner(&vol.path().join("new")), "0:0");
    assert_eq!(owner(&image.join("etc/idmapped")), "0:0");
    assert!(!vol.path().join("other").exists());
}

/// Any mapping, not only the container's: here without a user namespace, host uid 1000 is the
/// container's root on the mount; an id-mapped clone of a shared host mount is a slave, so the
/// container sends no mount back (seen from the host in the container's mountinfo).
#[test]
fn any_mapping_applies_and_the_id_mapped_tree_is_a_slave() {
    use nix::mount::{mount, MsFlags};
    if skip_on_runc() {
        return;
    }
    let src = SourceWithSubmount::new();
    let sub = src.path().join("sub");
    mount(None::<&str>, &sub, None::<&str>, MsFlags::MS_SHARED, None::<&str>).expect("make the host mount shared");
    std::fs::write(sub.join("mine"), "m\n").expect("write");
    std::os::unix::fs::chown(sub.join("mine"), Some(1000), Some(1000)).expect("chown");
    // The kernel refuses writes to an inode whose owner the mount does not map (EACCES): the
    // directory is 1000's too.
    std::os::unix::fs::chown(&sub, Some(1000), Some(1000)).expect("chown");
    let map = json!([{"containerID": 1000, "hostID": 0, "size": 1}]);
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.mount(json!({"destination": "/m", "type": "bind", "source": &sub, "options": ["rbind"],
                   "uidMappings": map, "gidMappings": map}))
        .sh("stat -c %u:%g /m/mine /m/file; echo x > /m/made && echo written");
    let id = rt.new_id();
    let created = rt.create_ok(&id, &b);
    let outside = std::fs::read_to_string(format!("/proc/{}/mountinfo", rt.pid(&id))).expect("container mountinfo");
    let line = outside.lines().find(|l| l.split(' ').nth(4) == Some("/m")).expect("/m in the container");
    assert!(line.contains(" master:") && !line.contains(" shared:"), "{line}");
    rt.start(&id).assert_success();
    rt.wait_for_status(&id, "stopped");
    // Owned by host 1000 -> root; by host 0 -> unmapped (the overflow id).
    assert_eq!(created.stdout_now(), "0:0\n65534:65534\nwritten\n");
    assert_eq!(owner(&sub.join("made")), "1000:1000");
    rt.delete(&id).assert_success();
}

/// What cannot be id-mapped is refused before anything exists, naming the field.
#[test]
fn id_mapped_mounts_that_cannot_work_are_refused_naming_the_field() {
    if skip_on_runc() {
        return;
    }
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let src = tempfile::tempdir_in("/tmp").expect("src");
    let rows: Vec<(Value, &str)> = vec![
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "uidMappings": map, "gidMappings": map}),
            "uidMappings: id-mapped mounts are only supported for bind mounts",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": src.path(), "options": ["rbind"], "uidMappings": map}),
            "gidMappings: an id-mapped mount needs both",
        ),
        (
            json!({"destination": "/m", "type": "bind", "source": src.path(), "options": ["rbind", "idmap"]}),
            "options: idmap without uidMappings and gidMappings needs a user namespace",
        ),
        // The kernel's limit: /proc cannot be id-mapped (EINVAL), said at create.
        (
            json!({"destination": "/m", "type": "bind", "source": "/proc", "options": ["bind"],
                   "uidMappings": map, "gidMappings": map}),
            "cannot be id-mapped",
        ),
    ];
    for (m, want) in rows {
        let rt = Runtime::new();
        let mut b = Bundle::new();
        let n = next_index(&b);
        b.mount(m).sh("true");
        let out = rt.create(&rt.new_id(), &b);
        out.assert_failure().assert_stderr_contains(&format!("mounts[{n}]")).assert_stderr_contains(want);
        assert!(rt.list_ids().is_empty(), "{:?}", rt.list_ids());
    }
}

// ---- tmpcopyup ----

/// podman puts `tmpcopyup` on every tmpfs: the tmpfs starts with what the image has under the
/// mount point. Checked inside (contents, links, modes, owners, special files) and from the host
/// through /proc/PID/root before the process runs (extended attributes, file capabilities,
/// times); writes go to the tmpfs, not to the image; `ro` comes after the copy.
#[test]
fn tmpcopyup_copies_the_image_content_into_the_tmpfs() {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let rt = Runtime::new();
    let mut b = Bundle::new();
    let data = b.rootfs().join("data");
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::write(data.join("file"), "hello\n").expect("write");
    std::fs::write(data.join("sub/deep"), "deep\n").expect("write");
    std::fs::write(data.join("suid"), "#!/bin/sh\n").expect("write");
    symlink("file", data.join("link")).expect("symlink");
    symlink("/etc/passwd", data.join("abs")).expect("symlink");
    // runc 1.1.5's copy fails on a fifo (it lchowns a node it never made): special files for skiff.
    let skiff = !integration::runtime_is_runc();
    if skiff {
        nix::unistd::mkfifo(&data.join("fifo"), Mode::from_bits_truncate(0o620)).expect("mkfifo");
        mknod(&data.join("null"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), makedev(1, 3)).expect("mknod");
        chown(data.join("fifo"), Some(0), Some(1000)).expect("chown");
        mode(&data.join("fifo"), 0o620);
        mode(&data.join("null"), 0o666);
    }
    // Modes the container's root (without CAP_DAC_OVERRIDE in the default config) can still read.
    for (p, m) in [("", 0o751), ("file", 0o604), ("sub", 0o705), ("suid", 0o4755)] {
        mode(&data.join(p), m);
    }
    for p in ["", "file", "sub", "sub/deep", "link"] {
        std::os::unix::fs::lchown(data.join(p), Some(1000), Some(1000)).expect("lchown");
    }
    integration::host::set_xattr(&data.join("file"), "user.skiff", b"kept");
    let setcap = std::process::Command::new("setcap").arg("cap_net_raw+ep").arg(data.join("suid")).status();
    assert!(setcap.is_ok_and(|s| s.success()), "setcap (libcap2-bin) failed");
    let past = nix::sys::time::TimeSpec::new(978_307_200, 0); // 2001-01-01
    nix::sys::stat::utimensat(None, &data.join("file"), &past, &past, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .expect("utimensat");
    // Same content read-only, to see ro applied after the copy.
    std::fs::create_dir(b.rootfs().join("data-ro")).expect("mkdir");
    std::fs::write(b.rootfs().join("data-ro/file"), "ro\n").expect("write");
    b.mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "size=8m"]}));
    b.mount(json!({"destination": "/data-ro", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "ro"]}));
    b.sh("cat /data/file /data/sub/deep /data-ro/file; readlink /data/link; readlink /data/abs; \
         stat -c '%n %a %u:%g %F' /data /data/file /data/sub /data/sub/deep /data/suid; \
         stat -c '%n %a %u:%g %F %t,%T' /data/fifo /data/null 2>/dev/null; echo new > /data/new && echo wrote; echo x > /data-ro/x || echo ro-refused; \
         grep -E ' /data(-ro)? ' /proc/self/mountinfo | cut -d' ' -f5,9");
    let id = rt.new_id();
    let created = rt.create_ok(&id, &b);
    // From the host, in the container's root before it runs.
    let inside = PathBuf::from(format!("/proc/{}/root/data", rt.pid(&id)));
    if skiff {
        assert_eq!(integration::host::get_xattr(&inside.join("file"), "user.skiff").as_deref(), Some(&b"kept"[..]));
        let caps = std::process::Command::new("getcap").arg(inside.join("suid")).output().expect("getcap");
        assert!(String::from_utf8_lossy(&caps.stdout).contains("cap_net_raw=ep"), "{caps:?}");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(inside.join("file")).expect("stat").mtime(), 978_307_200);
    }
    rt.start(&id).assert_success();
    rt.wait_for_status(&id, "stopped");
    let out = created.stdout_now();
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[..5], ["hello", "deep", "ro", "file", "/etc/passwd"], "{out}");
    let mut want = vec![
        // The tmpfs's root keeps the directory's mode, not its owner (runc's and crun's rule).
        "/data 751 0:0 directory",
        "/data/file 604 1000:1000 regular file",
        "/data/sub 705 1000:1000 directory",
        "/data/sub/deep 644 1000:1000 regular file",
        "/data/suid 4755 0:0 regular file",
    ];
    if skiff {
        want.extend(["/data/fifo 620 0:1000 fifo 0,0", "/data/null 666 0:0 character special file 1,3"]);
    }
    want.extend(["wrote", "ro-refused", "/data tmpfs", "/data-ro tmpfs"]);
    assert_eq!(l[5..], want, "{out}");
    // The image is untouched.
    assert!(!data.join("new").exists());
    rt.delete(&id).assert_success();
}

// ---- propagation as Kubernetes uses it ----

/// A shared host directory, as kubelet's /var/lib/kubelet is (a bind of itself, made shared):
/// Drop detaches it and everything mounted below it.
struct SharedHostDir {
    dir: tempfile::TempDir,
}

impl SharedHostDir {
    fn new() -> SharedHostDir {
        use nix::mount::{mount, MsFlags};
        let dir = tempfile::Builder::new().prefix("skiff-it-shared-").tempdir_in("/tmp").expect("dir");
        for d in ["fromhost", "fromctr"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        mount(Some(dir.path()), dir.path(), None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind");
        let guard = SharedHostDir { dir };
        mount(None::<&str>, guard.path(), None::<&str>, MsFlags::MS_SHARED, None::<&str>).expect("make-shared");
        guard
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SharedHostDir {
    fn drop(&mut self) {
        integration::host::detach_mounts_under(self.dir.path());
    }
}

/// Runs the CRI's bind of a shared host directory with `propagation` (its mount option and
/// rootfsPropagation, as containerd's CRI sets both) and a container with CAP_SYS_ADMIN. After
/// the start, the host mounts a tmpfs in it, the container waits to see it, then mounts one of
/// its own. Returns (the container saw the host's mount, the host sees the container's).
fn mounts_after_start(propagation: &str) -> (bool, bool) {
    use nix::mount::{mount, MsFlags};
    let shared = SharedHostDir::new();
    let rt = Runtime::new();
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["rootfsPropagation"] = json!(propagation);
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set].as_array_mut().expect("caps").push(json!("CAP_SYS_ADMIN"));
        }
    });
    b.mount(json!({"destination": "/shared", "type": "bind", "source": shared.path(),
                   "options": ["rbind", propagation, "rw"]}));
    b.sh("while [ ! -e /shared/fromhost/marker ]; do sleep 0.05; done; echo seen-host; \
         mount -t tmpfs ctr /shared/fromctr && echo ctr > /shared/fromctr/marker && echo mounted; exec sleep 1000");
    let id = rt.new_id();
    let created = rt.create_ok(&id, &b);
    rt.start(&id).assert_success();
    let host_mount = shared.path().join("fromhost");
    mount(Some("tmpfs"), &host_mount, Some("tmpfs"), MsFlags::empty(), Some("size=1m")).expect("host mount");
    std::fs::write(host_mount.join("marker"), "host\n").expect("write marker");
    // The container prints "seen-host" once the host's mount reached it, "mounted" after its
    // own; the test does not wait for what may never come: the host's mount either reached the
    // container by the time the container mounts, or the container never gets that far.
    let seen = {
        let mut seen = false;
        integration::host::wait_until("the container to see the host's mount or to give up", || {
            let out = created.stdout_now();
            if out.contains("mounted") {
                seen = true;
                return Some(());
            }
            // Not seen yet: is the host's mount in the container's mount table at all?
            let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", rt.pid(&id))).unwrap_or_default();
            (!info.contains(" /shared/fromhost ")).then_some(())
        });
        seen
    };
    let back = seen && std::fs::read_to_string(shared.path().join("fromctr/marker")).is_ok_and(|s| s == "ctr\n");
    // Nothing of the container's own setup (its rootfs bind, /proc, /dev...) reached the host.
    let leaked = integration::host::mounts_under(b.path());
    assert!(leaked.is_empty(), "{propagation}: container mounts on the host: {leaked:?}");
    rt.kill(&id, "KILL");
    rt.wait_for_status(&id, "stopped");
    rt.delete(&id).assert_success();
    (seen, back)
}

/// Kubernetes' Bidirectional propagation (CRI: `rshared` on the mount and rootfsPropagation
/// rshared): a mount made on either side after the start reaches the other. skiff made the
/// rootfs rslave before the mounts, so the container's copy of the volume left the host's peer
/// group and its mounts never came back (containerd's CRI with skiff failed where runc works).
#[test]
fn bidirectional_propagation_passes_mounts_both_ways() {
    let (seen, back) = mounts_after_start("rshared");
    assert!(seen, "the host's mount did not reach the container");
    assert!(back, "the container's mount did not reach the host");
}

/// HostToContainer (CRI: `rslave` and rootfsPropagation rslave): the host's mount reaches the
/// container, the container's does not reach the host.
#[test]
fn host_to_container_propagation_passes_mounts_one_way() {
    let (seen, back) = mounts_after_start("rslave");
    assert!(seen, "the host's mount did not reach the container");
    assert!(!back, "the container's mount reached the host");
}

// ---- features ----

/// How the features test sees that one option took effect.
enum Effect {
    /// The mount's per-mount options (mountinfo field 6) have the word, or not.
    Top(&'static str, bool),
    /// The same, on the submount the source carries.
    Sub(&'static str, bool),
    /// The tmpfs's superblock options have the word.
    Super(&'static str),
    /// The mount's optional fields (propagation) start with this tag, or are empty for "".
    Prop(&'static str),
    /// The submount is there (true) or not.
    HasSub(bool),
    /// Mounted; the kernel shows nothing of it (silent, iversion, mand since Linux 5.15, the
    /// clearing words whose flag nothing set...).
    Accepted,
}

/// (options, source, effects): the source is "plain" (a directory with a plain tmpfs below it),
/// "flagged" (a tmpfs mounted ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow with another
/// like it below), "shared" (a shared mount) or "tmpfs" (a new tmpfs).
fn option_case(opt: &str) -> Option<(&'static str, Vec<Effect>)> {
    use Effect::*;
    Some(match opt {
        "bind" => ("plain", vec![HasSub(false)]),
        "rbind" => ("plain", vec![HasSub(true)]),
        "ro" => ("plain", vec![Top("ro", true)]),
        "rw" => ("flagged", vec![Top("rw", true)]),
        "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "nosymfollow" => {
            ("plain", vec![Top(leak(opt), true), Sub(leak(opt), false)])
        }
        "suid" | "dev" | "exec" | "diratime" | "symfollow" => ("flagged", vec![Top(leak(&format!("no{opt}")), false)]),
        "atime" => ("flagged", vec![Top("noatime", false)]),
        "relatime" => ("flagged", vec![Top("relatime", true)]),
        "strictatime" => ("plain", vec![Top("relatime", false), Top("noatime", false)]),
        "remount" => ("flagged", vec![Top("nosuid", true)]),
        "sync" | "dirsync" | "lazytime" => ("tmpfs", vec![Super(leak(opt))]),
        "async" | "nolazytime" | "silent" | "loud" | "iversion" | "noiversion" | "mand" | "nomand" | "defaults"
        | "norelatime" | "nostrictatime" => (
            if opt.contains("relatime") || opt.contains("strictatime") || opt == "defaults" {
                "plain"
            } else {
                "tmpfs"
            },
            vec![Accepted],
        ),
        "private" => ("shared", vec![Prop("")]),
        "rprivate" => ("shared", vec![Prop(""), Sub("", true)]),
        "shared" | "rshared" => ("plain", vec![Prop("shared:")]),
        "slave" | "rslave" => ("shared", vec![Prop("master:")]),
        "unbindable" | "runbindable" => ("plain", vec![Prop("unbindable")]),
        "rro" => ("plain", vec![Sub("ro", true)]),
        "rnosuid" | "rnodev" | "rnoexec" | "rnoatime" | "rnodiratime" | "rnosymfollow" => {
            ("plain", vec![Top(leak(&opt[1..]), true), Sub(leak(&opt[1..]), true)])
        }
        "rrw" => ("flagged", vec![Sub("rw", true)]),
        "rsuid" | "rdev" | "rexec" | "rdiratime" | "rsymfollow" => {
            ("flagged", vec![Sub(leak(&format!("no{}", &opt[1..])), false)])
        }
        "ratime" | "rrelatime" | "rnorelatime" | "rnostrictatime" => ("flagged", vec![Sub("relatime", true)]),
        "rstrictatime" => ("plain", vec![Sub("relatime", false), Sub("noatime", false)]),
        "tmpcopyup" => ("tmpfs", vec![Accepted]),
        // runc 1.1.5 lists MS_POSIXACL's words (runc 1.2 dropped them, runc#3738); skiff does not.
        "acl" | "noacl" => ("tmpfs", vec![Accepted]),
        "idmap" => ("plain", vec![Top("idmapped", true), Sub("idmapped", false)]),
        "ridmap" => ("plain", vec![Top("idmapped", true), Sub("idmapped", true)]),
        _ => return None,
    })
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Every mount option the runtime's `features` lists is accepted, and applied: one container
/// with a mount per option, each checked in the container's mountinfo.
#[test]
fn every_mount_option_features_lists_is_applied() {
    use nix::mount::{mount, MsFlags};
    let rt = Runtime::new();
    let features = rt.exec(&["features"]);
    features.assert_success();
    let doc: Value = serde_json::from_str(&features.stdout).expect("features is JSON");
    let listed: Vec<String> = doc["mountOptions"]
        .as_array()
        .expect("mountOptions")
        .iter()
        .filter_map(|o| o.as_str().map(String::from))
        .collect();
    assert!(!listed.is_empty());
    // runc 1.1.5 lists these and does not apply them: it clears part of MOUNT_ATTR__ATIME
    // (EINVAL), its bind `remount` gets EINVAL, and a bind whose options only clear flags is not
    // remounted (runc 1.2 fixed all three; skiff had the last too). Skipped for runc only.
    let runc_broken = [
        "ratime",
        "rnostrictatime",
        "rnorelatime",
        "remount",
        "rw",
        "suid",
        "dev",
        "exec",
        "atime",
        "diratime",
        "symfollow",
    ];
    let plain = SourceWithSubmount::new();
    let flags = MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC
        | MsFlags::MS_NOATIME
        | MsFlags::MS_NODIRATIME
        | MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);
    let flagged_dir = tempfile::Builder::new().prefix("skiff-it-flagged-").tempdir_in("/tmp").expect("dir");
    mount(Some("tmpfs"), flagged_dir.path(), Some("tmpfs"), MsFlags::empty(), Some("size=1m")).expect("mount");
    let _flagged_guard = Unmount(flagged_dir.path().to_path_buf());
    let flagged_sub = flagged_dir.path().join("sub");
    std::fs::create_dir(&flagged_sub).expect("mkdir");
    mount(Some("tmpfs"), &flagged_sub, Some("tmpfs"), MsFlags::empty(), Some("size=1m")).expect("mount");
    let _flagged_sub_guard = Unmount(flagged_sub.clone());
    for p in [&flagged_sub, &flagged_dir.path().to_path_buf()] {
        mount(None::<&str>, p.as_path(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags, None::<&str>)
            .expect("remount flagged");
    }
    let shared = SharedHostDir::new();
    std::fs::create_dir(shared.path().join("sub")).expect("mkdir");
    mount(Some("tmpfs"), &shared.path().join("sub"), Some("tmpfs"), MsFlags::empty(), Some("size=1m")).expect("mount");
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let mut b = Bundle::new();
    let mut checks = Vec::new();
    for (i, opt) in listed.iter().enumerate() {
        let Some((source, effects)) = option_case(opt) else {
            panic!("features lists {opt:?}, which this test has no check for: add one");
        };
        if integration::runtime_is_runc() && runc_broken.contains(&opt.as_str()) {
            integration::skip(format!("runc 1.1.5 lists {opt} but cannot apply it"));
            continue;
        }
        let dest = format!("/o/{i}");
        let mut m = match source {
            "tmpfs" => json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": [opt, "size=1m"]}),
            _ => {
                let src = match source {
                    "plain" => plain.path().to_path_buf(),
                    "flagged" => flagged_dir.path().to_path_buf(),
                    _ => shared.path().to_path_buf(),
                };
                let mut options = vec![opt.as_str()];
                if opt != "bind" && opt != "rbind" {
                    options.insert(0, "rbind");
                }
                if opt == "remount" {
                    options.push("nodev");
                }
                json!({"destination": dest, "type": "bind", "source": src, "options": options})
            }
        };
        if opt == "idmap" || opt == "ridmap" {
            m["uidMappings"] = map.clone();
            m["gidMappings"] = map.clone();
        }
        if opt == "tmpcopyup" {
            std::fs::create_dir_all(b.rootfs().join(&dest[1..])).expect("mkdir");
            std::fs::write(b.rootfs().join(&dest[1..]).join("copied"), "c").expect("write");
        }
        b.mount(m);
        checks.push((opt.clone(), dest, effects));
    }
    b.sh("cat /proc/self/mountinfo; echo ==; ls /o/*/copied");
    let out = rt.run_ok(&b);
    let (info, copied) = out.split_once("==\n").expect("two parts");
    let find = |point: &str| info.lines().rfind(|l| l.split(' ').nth(4) == Some(point)).map(String::from);
    for (opt, dest, effects) in checks {
        let top = find(&dest).unwrap_or_else(|| panic!("{opt}: no mount at {dest}\n{info}"));
        let fields: Vec<&str> = top.split(' ').collect();
        let per_mount: Vec<&str> = fields[5].split(',').collect();
        let dash = fields.iter().position(|f| *f == "-").expect("separator");
        let optional: Vec<&str> = fields[6..dash].to_vec();
        let superblock: Vec<&str> = fields[dash + 3].split(',').collect();
        let sub_line = find(&format!("{dest}/sub"));
        for e in effects {
            match e {
                Effect::Top(w, want) => assert_eq!(per_mount.contains(&w), want, "{opt}: {w} in {per_mount:?}"),
                Effect::Sub(w, want) => {
                    let line = sub_line.as_deref().unwrap_or_else(|| panic!("{opt}: no submount at {dest}/sub"));
                    let sub_opts: Vec<&str> = line.split(' ').nth(5).unwrap_or("").split(',').collect();
                    if !w.is_empty() {
                        assert_eq!(sub_opts.contains(&w), want, "{opt}: {w} in the submount's {sub_opts:?}");
                    }
                    if opt == "rprivate" {
                        let sub_fields: Vec<&str> = line.split(' ').collect();
                        assert_eq!(sub_fields[6], "-", "{opt}: the submount is not private: {line}");
                    }
                }
                Effect::Super(w) => assert!(superblock.contains(&w), "{opt}: {w} not in {superblock:?}"),
                Effect::Prop("") => assert!(optional.is_empty(), "{opt}: {optional:?}"),
                Effect::Prop(tag) => {
                    assert!(optional.iter().any(|o| o.starts_with(tag)), "{opt}: {tag} not in {optional:?}")
                }
                Effect::HasSub(want) => assert_eq!(sub_line.is_some(), want, "{opt}: submount"),
                Effect::Accepted => {}
            }
        }
        if opt == "tmpcopyup" {
            assert!(copied.contains(&format!("{dest}/copied")), "{opt}: nothing copied: {copied}");
        }
    }
}
