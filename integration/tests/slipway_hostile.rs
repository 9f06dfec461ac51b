//! Archives and contexts built to escape: each is refused or contained, with a clear error, and
//! the host is untouched.

use integration::slipway::Slipway;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One archive member: (path, kind, link target or content or `major:minor`).
type Member<'a> = (&'a str, tar::EntryType, &'a str);

/// A tar built entry by entry: (path, kind, link target or content).
fn tar_of(entries: &[Member]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, extra) in entries {
        let mut h = tar::Header::new_gnu();
        // set_path refuses `..` and absolute names; write the raw name field instead.
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let data: &[u8] = if kind.is_file() { extra.as_bytes() } else { b"" };
        if kind.is_symlink() || kind.is_hard_link() {
            // set_link_name refuses `..` too; write the raw field.
            let link = h.as_old_mut().linkname.as_mut();
            link[..extra.len()].copy_from_slice(extra.as_bytes());
        }
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            let (ma, mi) = extra.split_once(':').unwrap();
            h.set_device_major(ma.parse().unwrap()).unwrap();
            h.set_device_minor(mi.parse().unwrap()).unwrap();
        }
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn add_of_an_archive_keeps_dotdot_and_absolute_names_inside_the_image() {
    let s = Slipway::new();
    let ctx = s.context("a", &[("Dockerfile", "FROM scratch\nADD evil.tar /dst/\n")]);
    let data = tar_of(&[
        ("../../../../tmp/slipway-escaped", tar::EntryType::Regular, "x"),
        ("/abs-file", tar::EntryType::Regular, "abs"),
        ("ok", tar::EntryType::Regular, "fine"),
    ]);
    std::fs::write(ctx.join("evil.tar"), data).unwrap();
    s.build(&ctx, "a", &[]).ok();
    let img = s.save("a");
    assert!(img.find("dst/ok").is_some(), "the plain entry is there");
    assert_eq!(img.find("dst/abs-file").map(|e| e.data.clone()), Some(b"abs".to_vec()), "absolute name under dst");
    assert!(!Path::new("/tmp/slipway-escaped").exists(), "a ../ entry escaped onto the host");
    assert!(img.layers.iter().flatten().all(|e| !e.path.contains("..")), "a ../ entry in the image");
}

#[test]
fn add_of_an_archive_that_writes_through_its_own_symlink_is_refused() {
    let s = Slipway::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), "keep").unwrap();
    let target = outside.path().to_str().unwrap();
    for (second, kind) in [
        ("esc/pwned", tar::EntryType::Regular),
        ("esc/.wh.victim", tar::EntryType::Regular),
        ("esc/fifo", tar::EntryType::Fifo),
    ] {
        let ctx = s.context("b", &[("Dockerfile", "FROM scratch\nADD evil.tar /dst/\n")]);
        std::fs::write(ctx.join("evil.tar"), tar_of(&[("esc", tar::EntryType::Symlink, target), (second, kind, "x")]))
            .unwrap();
        let r = s.build(&ctx, "b", &[]);
        assert_ne!(r.code, 0, "{second}: must fail");
        assert!(r.stderr.contains("Dockerfile:2:") && r.stderr.contains("outside"), "{second}: {}", r.stderr);
        assert_eq!(names(outside.path()), ["victim"], "{second} touched the host");
        assert_eq!(std::fs::read_to_string(outside.path().join("victim")).unwrap(), "keep");
    }
}

#[test]
fn copy_of_a_symlink_out_of_the_context_is_contained() {
    let s = Slipway::new();
    // Named as the source, the link is resolved inside the context (BuildKit's rule): its
    // target is not there, so COPY fails as a missing source.
    let ctx = s.context("c", &[("Dockerfile", "FROM scratch\nCOPY link /x\n")]);
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("link")).unwrap();
    let r = s.build(&ctx, "c", &[]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("Dockerfile:2:") && r.stderr.contains("\"link\""), "{}", r.stderr);
    // Inside a copied directory the link is copied as a link, never its host target.
    let ctx = s.context("d", &[("Dockerfile", "FROM scratch\nCOPY dir /dir\n"), ("dir/plain", "p")]);
    std::os::unix::fs::symlink("/etc/hostname", ctx.join("dir/link")).unwrap();
    s.build(&ctx, "d", &[]).ok();
    let x = s.save("d").find("dir/link").cloned().expect("/dir/link in the image");
    assert_eq!(x.kind, 'l', "a symlink");
    assert_eq!(x.link.as_deref(), Some("/etc/hostname"));
    assert!(x.data.is_empty(), "no host content in the image");
}

#[test]
fn load_of_a_manifest_naming_paths_outside_the_archive_is_refused() {
    let s = Slipway::new();
    let dir = tempfile::tempdir().unwrap();
    for (field, path) in [("Config", "../../../../etc/passwd"), ("Layers", "/etc/passwd")] {
        let manifest = if field == "Config" {
            format!(r#"[{{"Config":"{path}","RepoTags":["x:1"],"Layers":[]}}]"#)
        } else {
            format!(r#"[{{"Config":"c.json","RepoTags":["x:1"],"Layers":["{path}"]}}]"#)
        };
        let config = r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:00"]}}"#;
        let tar = tar_of(&[
            ("manifest.json", tar::EntryType::Regular, &manifest),
            ("c.json", tar::EntryType::Regular, config),
        ]);
        let file = dir.path().join("evil.tar");
        std::fs::write(&file, tar).unwrap();
        let r = s.run(&["load", "-i", file.to_str().unwrap()]);
        assert_ne!(r.code, 0, "{field} {path}: must fail");
        // `..` is refused; an absolute name is looked up inside the archive, where it is not.
        let contained = r.stderr.contains("outside the archive") || r.stderr.contains("/x/etc/passwd");
        assert!(contained, "{field}: {}", r.stderr);
        assert_ne!(s.run(&["inspect", "x:1"]).code, 0, "{field}: nothing was loaded");
    }
}

/// A host directory the archives aim at, with one file that must stay as it is.
struct Sentinel {
    dir: tempfile::TempDir,
}

impl Sentinel {
    fn new() -> Sentinel {
        let dir = tempfile::Builder::new().prefix("slipway-sentinel-").tempdir().unwrap();
        std::fs::write(dir.path().join("victim"), "keep").unwrap();
        Sentinel { dir }
    }
    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }
    fn victim(&self) -> String {
        format!("{}/victim", self.path())
    }
    /// `../` enough times to climb from any store path to `/`, then the sentinel's path.
    fn dotdot(&self, file: &str) -> String {
        format!("{}{}/{file}", "../".repeat(16), self.path().trim_start_matches('/'))
    }
    /// Nothing was added, linked or written in the sentinel directory.
    fn assert_untouched(&self, what: &str) {
        assert_eq!(names(self.dir.path()), ["victim"], "{what}: touched the host");
        let v = self.dir.path().join("victim");
        assert_eq!(std::fs::read_to_string(&v).unwrap(), "keep", "{what}: overwrote the host file");
        assert_eq!(std::fs::metadata(&v).unwrap().nlink(), 1, "{what}: the host file was hard linked");
    }
}

fn add_tar(s: &Slipway, name: &str, dockerfile: &str, entries: &[Member]) -> std::path::PathBuf {
    let ctx = s.context(name, &[("Dockerfile", dockerfile)]);
    std::fs::write(ctx.join("evil.tar"), tar_of(entries)).unwrap();
    ctx
}

#[test]
fn add_of_a_hardlink_out_of_the_destination_is_refused_naming_the_member() {
    use tar::EntryType::{Link, Regular, Symlink};
    let s = Slipway::new();
    let out = Sentinel::new();
    let dotdot = out.dotdot("victim");
    let victim = out.victim();
    let path = out.path().to_string();
    // docker (moby/go-archive resolveHardlinkTarget): a `..` target above the root is a breakout;
    // an absolute one is looked up under the root, where the host file is not; a symlink on the
    // way is followed inside the root (here: refused, as `outside`), never on the host.
    let cases: [(&str, Vec<Member>, &str); 3] = [
        ("h", vec![("h", Link, &dotdot), ("h", Regular, "pwned")], "outside"),
        ("h", vec![("h", Link, &victim), ("h", Regular, "pwned")], "No such file"),
        ("h", vec![("esc", Symlink, &path), ("h", Link, "esc/victim")], "outside"),
    ];
    for (i, (member, entries, why)) in cases.iter().enumerate() {
        let ctx = add_tar(&s, &format!("hl{i}"), "FROM scratch\nADD evil.tar /dst/\n", entries);
        let r = s.build(&ctx, &format!("hl{i}"), &[]);
        assert_ne!(r.code, 0, "case {i}: must fail");
        let named = format!("archive entry {member}: hard link");
        assert!(r.stderr.contains("Dockerfile:2:") && r.stderr.contains(&named), "case {i}: {}", r.stderr);
        assert!(r.stderr.contains(why), "case {i}: {}", r.stderr);
        out.assert_untouched(&format!("case {i}"));
    }
}

#[test]
fn add_of_a_hardlink_with_an_absolute_or_symlink_target_is_contained_as_docker_does() {
    use tar::EntryType::{Link, Regular, Symlink};
    let s = Slipway::new();
    let out = Sentinel::new();
    let victim = out.victim();
    let host_shadow = std::fs::metadata("/etc/shadow").map(|m| (m.ino(), m.nlink())).ok();
    // `/etc/shadow` is the archive's own etc/shadow under the destination (docker strips the
    // `/`), and a link to a symlink links the symlink itself (link(2) does not follow it).
    let ctx = add_tar(
        &s,
        "hc",
        "FROM scratch\nADD evil.tar /dst/\n",
        &[
            ("etc/shadow", Regular, "image-shadow"),
            ("h", Link, "/etc/shadow"),
            ("l", Symlink, &victim),
            ("hl", Link, "l"),
        ],
    );
    s.build(&ctx, "hc", &[]).ok();
    let img = s.save("hc");
    assert_eq!(img.find("dst/etc/shadow").map(|e| e.data.clone()), Some(b"image-shadow".to_vec()));
    let h = img.find("dst/h").cloned().expect("/dst/h in the image");
    assert_eq!((h.kind, h.link.as_deref()), ('h', Some("dst/etc/shadow")), "a link to the image's file");
    let hl = img.find("dst/hl").cloned().expect("/dst/hl in the image");
    assert_eq!((hl.kind, hl.link.as_deref()), ('l', Some(victim.as_str())), "the symlink, not its host target");
    assert!(img.layers.iter().flatten().all(|e| e.data != b"keep"), "host content in the image");
    out.assert_untouched("contained links");
    let now = std::fs::metadata("/etc/shadow").map(|m| (m.ino(), m.nlink())).ok();
    assert_eq!(now, host_shadow, "the host's /etc/shadow was linked");
}

#[test]
fn add_of_device_nodes_makes_them_inside_the_image_and_never_through_a_symlink() {
    use tar::EntryType::{Block, Char, Fifo, Symlink};
    let s = Slipway::new();
    // docker as root (moby/go-archive createTarFile -> mknodInRoot) makes char, block and fifo
    // nodes at their place under the root; only in a user namespace does it skip devices.
    let ctx = add_tar(
        &s,
        "dev",
        "FROM scratch\nADD evil.tar /d/\n",
        &[("null", Char, "1:3"), ("loop9", Block, "7:9"), ("fifo", Fifo, "")],
    );
    s.build(&ctx, "dev", &[]).ok();
    let img = s.save("dev");
    let kinds: Vec<char> = ["d/null", "d/loop9", "d/fifo"].iter().map(|p| img.find(p).expect(p).kind).collect();
    assert_eq!(kinds, ['c', 'b', 'p']);
    let b = s.dir.path().join("bundle");
    s.run(&["unpack", "dev", b.to_str().unwrap()]).ok();
    let rdev = |p: &str| {
        let r = std::fs::symlink_metadata(b.join("rootfs").join(p)).unwrap().rdev();
        (nix::sys::stat::major(r), nix::sys::stat::minor(r))
    };
    assert_eq!((rdev("d/null"), rdev("d/loop9")), ((1, 3), (7, 9)), "the numbers the archive gave");

    let out = Sentinel::new();
    for (member, kind, extra) in [("esc/null", Char, "1:3"), ("esc/loop9", Block, "7:9")] {
        let ctx = add_tar(
            &s,
            "devesc",
            "FROM scratch\nADD evil.tar /d/\n",
            &[("esc", Symlink, out.path()), (member, kind, extra)],
        );
        let r = s.build(&ctx, "devesc", &[]);
        assert_ne!(r.code, 0, "{member}: must fail");
        assert!(r.stderr.contains(&format!("archive entry {member}")) && r.stderr.contains("outside"), "{}", r.stderr);
        out.assert_untouched(member);
    }
}

#[test]
fn add_into_proc_of_the_image_lands_in_the_image_not_the_host() {
    use tar::EntryType::Regular;
    let s = Slipway::new();
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // ADD writes the image's /proc directory (no proc is mounted while files are copied, in
    // docker or here): the files are in the layer, the host's /proc is not written.
    let ctx = add_tar(
        &s,
        "proc",
        "FROM scratch\nADD evil.tar /\n",
        &[("proc/sys/kernel/hostname", Regular, "pwned"), ("proc/1/slipway-sentinel", Regular, "x")],
    );
    s.build(&ctx, "proc", &[]).ok();
    let img = s.save("proc");
    assert_eq!(img.find("proc/sys/kernel/hostname").map(|e| e.data.clone()), Some(b"pwned".to_vec()));
    assert!(img.find("proc/1/slipway-sentinel").is_some());
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before, "the host's hostname changed");
    assert!(!Path::new("/proc/1/slipway-sentinel").exists());
}

#[test]
fn add_through_a_symlinked_directory_of_the_image_never_writes_the_host() {
    use tar::EntryType::Regular;
    let s = Slipway::new();
    let out = Sentinel::new();
    // An earlier COPY puts `/abs -> <sentinel dir>` and `/rel -> ../../..<sentinel dir>` in the image.
    let ctx = s.context("sym", &[("Dockerfile", "FROM scratch\nCOPY tree /\nADD evil.tar /\n"), ("tree/keep", "k")]);
    std::os::unix::fs::symlink(out.path(), ctx.join("tree/abs")).unwrap();
    std::os::unix::fs::symlink(out.dotdot(""), ctx.join("tree/rel")).unwrap();
    for member in ["abs/pwned", "rel/pwned", "abs/victim"] {
        std::fs::write(ctx.join("evil.tar"), tar_of(&[(member, Regular, "pwned")])).unwrap();
        let r = s.build(&ctx, "sym", &[]);
        // docker resolves the symlink inside the root, or refuses one that climbs out; here both
        // are refused: the image's link leads out of the rootfs on the host.
        assert_ne!(r.code, 0, "{member}: must fail");
        let named = format!("archive entry {member}");
        assert!(
            r.stderr.contains("Dockerfile:3:") && r.stderr.contains(&named) && r.stderr.contains("outside"),
            "{}",
            r.stderr
        );
        out.assert_untouched(member);
    }
    // As the destination, the image's link is resolved inside the image (docker: fs.RootPath),
    // and the missing directories of its in-root target are made (docker's MkdirAll).
    let df = "FROM scratch\nCOPY tree /\nADD evil.tar /abs/\n";
    let ctx = s.context("symdst", &[("Dockerfile", df), ("tree/keep", "k")]);
    std::os::unix::fs::symlink(out.path(), ctx.join("tree/abs")).unwrap();
    std::fs::write(ctx.join("evil.tar"), tar_of(&[("pwned", Regular, "inside")])).unwrap();
    s.build(&ctx, "symdst", &[]).ok();
    let inside = format!("{}/pwned", out.path().trim_start_matches('/'));
    assert_eq!(s.save("symdst").find(&inside).map(|e| e.data.clone()), Some(b"inside".to_vec()));
    out.assert_untouched("ADD to /abs/");
}

/// A docker-archive of one image `name` with one layer of these entries.
fn docker_archive(path: &Path, name: &str, entries: &[Member]) {
    let layer = tar_of(entries);
    let hex = integration::sha256_hex(&layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = serde_json::json!({"architecture": arch, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{hex}")]}});
    let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": [name], "Layers": ["l/layer.tar"]}]);
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (p, d) in [
        ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        ("c.json", serde_json::to_vec(&config).unwrap()),
        ("l/layer.tar", layer),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, p, &d[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn a_loaded_layer_that_escapes_is_refused_when_used_and_the_store_stays_readable() {
    use tar::EntryType::{Link, Regular, Symlink};
    let s = Slipway::new();
    let out = Sentinel::new();
    let dotdot = out.dotdot("victim");
    let dotdot_new = out.dotdot("pwned");
    let path = out.path().to_string();
    // `load` keeps layers as blobs; they are extracted when used: as a build's base (an overlay
    // snapshot) and by `unpack` (a flat rootfs). docker extracts at load and refuses there.
    let refused: [(&str, Vec<Member>); 2] = [
        ("h", vec![("ok", Regular, "fine"), ("h", Link, &dotdot), ("h", Regular, "pwned")]),
        ("esc/pwned", vec![("esc", Symlink, &path), ("esc/pwned", Regular, "pwned")]),
    ];
    for (i, (member, entries)) in refused.iter().enumerate() {
        let tag = format!("evil{i}:1");
        let file = s.dir.path().join(format!("evil{i}.tar"));
        docker_archive(&file, &tag, entries);
        s.run(&["load", "-i", file.to_str().unwrap()]).ok();
        let ctx = s.context(&format!("use{i}"), &[("Dockerfile", &format!("FROM {tag}\nCOPY f /f\n")), ("f", "f")]);
        let r = s.build(&ctx, &format!("use{i}"), &[]);
        assert_ne!(r.code, 0, "{member}: a build on it must fail");
        assert!(r.stderr.contains(&format!("archive entry {member}")) && r.stderr.contains("outside"), "{}", r.stderr);
        let b = s.dir.path().join(format!("bundle{i}"));
        let r = s.run(&["unpack", &tag, b.to_str().unwrap()]);
        assert_ne!(r.code, 0, "{member}: unpack must fail");
        assert!(r.stderr.contains(&format!("archive entry {member}")) && r.stderr.contains("outside"), "{}", r.stderr);
        out.assert_untouched(member);
        let snaps: Vec<String> = std::fs::read_dir(s.root().join("snapshots"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert!(snaps.iter().all(|n| !n.starts_with('.') && !n.contains("tmp")), "half a snapshot left: {snaps:?}");
        s.run(&["inspect", &tag]).ok();
    }
    // A `../` member is skipped (docker refuses it, go-archive "invalid entry name"): contained.
    let file = s.dir.path().join("dotdot.tar");
    docker_archive(&file, "dotdot:1", &[(&dotdot_new, Regular, "pwned"), ("ok", Regular, "fine")]);
    s.run(&["load", "-i", file.to_str().unwrap()]).ok();
    let b = s.dir.path().join("bundle-dotdot");
    s.run(&["unpack", "dotdot:1", b.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(b.join("rootfs/ok")).unwrap(), "fine");
    let ctx = s.context("usedd", &[("Dockerfile", "FROM dotdot:1\nCOPY f /f\n"), ("f", "f")]);
    s.build(&ctx, "usedd", &[]).ok();
    assert!(s.save("usedd").find("ok").is_some());
    out.assert_untouched("../ member");
    // The store still answers and builds.
    s.run(&["images"]).ok();
    let ctx = s.context("after", &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "f")]);
    s.build(&ctx, "after", &[]).ok();
}
