//! Archives and contexts built to escape: each is refused or contained, with a clear error, and
//! the host is untouched.

use integration::slipway::Slipway;
use std::path::Path;

/// A tar built entry by entry: (path, kind, link target or content).
fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
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
            h.set_link_name(extra).unwrap();
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
