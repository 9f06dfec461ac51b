//! Starting inputs for every target: the repository's own fixtures plus archives built here.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files_under(dir: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect();
    out.truncate(200);
    out
}

/// Seeds for the named target.
pub fn for_target(target: &str) -> Vec<Vec<u8>> {
    match target {
        "config" => files_under(&repo().join("spec-fixtures/bundles")),
        "dockerfile" => files_under(&repo().join("spec-fixtures/dockerfiles"))
            .into_iter()
            .chain([b"FROM scratch\nCOPY <<EOF /x\nhi\nEOF\nRUN [\"a\"]\n".to_vec()])
            .collect(),
        "shell_word" => [
            "\0${A:-d} ${B%%y} ${C/x/y} '$A' \"$B\" \\$A",
            "\x01`$A ${A:?missing}\0A=1",
            "\0${A#*} ${A##1} ${A+set} ${X-unset} $$ ${",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "dockerignore" => [
            "**/*.tmp\n!keep.tmp\n/build\n# c\n\0a.tmp\0keep.tmp\0build/x",
            "*\n!Dockerfile\n..\n./a/../b\0Dockerfile\0b",
            "[a-\n\\\0a",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "tar_extract" => vec![layer_tar(), Vec::new()],
        "tar_load" => vec![docker_archive(), oci_archive()],
        "estargz" => {
            let t = layer_tar();
            let (_, blob) = slipway::estargz::write(&mut &t[..], Vec::new(), 1, 1024).unwrap();
            vec![t, blob]
        }
        _ => panic!("unknown target {target}"),
    }
}

fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("path");
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_cksum();
    h
}

/// A layer with every entry kind a layer has, whiteouts included.
pub fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append(&header("dir/", tar::EntryType::Directory, 0), &[][..]).unwrap();
    b.append(&header("dir/file", tar::EntryType::Regular, 5), &b"hello"[..]).unwrap();
    let mut l = header("dir/link", tar::EntryType::Symlink, 0);
    l.set_link_name("file").unwrap();
    l.set_cksum();
    b.append(&l, &[][..]).unwrap();
    let mut h = header("dir/hard", tar::EntryType::Link, 0);
    h.set_link_name("dir/file").unwrap();
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.append(&header("dir/.wh.gone", tar::EntryType::Regular, 0), &[][..]).unwrap();
    b.append(&header("dir/.wh..wh..opq", tar::EntryType::Regular, 0), &[][..]).unwrap();
    b.append(&header("fifo", tar::EntryType::Fifo, 0), &[][..]).unwrap();
    b.into_inner().unwrap()
}

fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        b.append(&header(path, tar::EntryType::Regular, data.len() as u64), &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// A docker-archive whose manifest names one config and one layer.
pub fn docker_archive() -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let manifest = br#"[{"Config":"c.json","RepoTags":["x:latest"],"Layers":["l/layer.tar"]}]"#.to_vec();
    archive(&[("manifest.json", manifest), ("c.json", config), ("l/layer.tar", layer_tar())])
}

/// An OCI layout archive with an index and no blobs.
pub fn oci_archive() -> Vec<u8> {
    let index = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2,"annotations":{"org.opencontainers.image.ref.name":"x"}}]}"#.to_vec();
    archive(&[("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()), ("index.json", index)])
}
