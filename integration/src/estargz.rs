//! An eStargz blob checked from outside, as stargz-snapshotter's reader and a plain gzip reader
//! see it (the format: stargz-snapshotter's docs/estargz.md), by code of the tests' own rather
//! than slipway's: one gzip stream whose decompression is the layer tar followed by a tar holding
//! only `stargz.index.json`; the 51-byte footer naming the TOC's offset; a TOC listing every
//! entry of the layer tar in order, each regular file's chunks readable as gzip members at their
//! offsets; the layer descriptor's annotations matching the blob.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

pub const TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";
pub const UNCOMPRESSED_SIZE: &str = "io.containers.estargz.uncompressed-size";

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// What [`check`] found in a blob.
pub struct Checked {
    /// The TOC JSON, parsed.
    pub toc: serde_json::Value,
    /// Each regular file's content as read through the TOC's offsets (name -> bytes).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Names of the files whose data the TOC splits into more than one chunk.
    pub chunked: Vec<String>,
}

/// Whether `blob` ends in an eStargz footer (any gzip blob may be asked).
pub fn has_footer(blob: &[u8]) -> bool {
    footer_offset(blob).is_some()
}

/// The TOC offset the 51-byte footer gives: an empty gzip member (FEXTRA, subfield `SG` of 22
/// bytes `%016xSTARGZ`, a final stored block of length 0, CRC and size 0).
fn footer_offset(blob: &[u8]) -> Option<u64> {
    let f = blob.get(blob.len().checked_sub(51)?..)?;
    if f[..10] != [0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255] || f[10..16] != [26, 0, b'S', b'G', 22, 0] {
        return None;
    }
    if &f[32..38] != b"STARGZ" || f[38..] != [1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0] {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&f[16..32]).ok()?, 16).ok()
}

/// Checks `blob` as an eStargz layer whose config names `diff_id` and whose manifest descriptor
/// carries `annotations`; panics naming what is wrong.
pub fn check(blob: &[u8], diff_id: &str, annotations: &serde_json::Value) -> Checked {
    // one gzip stream to any reader: the layer tar, then the TOC's tar; the config's diff ID is
    // the digest of all of it (BuildKit's, so different from the plain tar's)
    assert_eq!(&blob[..2], &[0x1f, 0x8b], "a gzip stream");
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(blob).read_to_end(&mut raw).expect("the blob decompresses");
    assert_eq!(sha256(&raw), diff_id, "the decompressed blob is the config's diff ID");
    assert_eq!(annotations[UNCOMPRESSED_SIZE], raw.len().to_string(), "{annotations}");

    let off = footer_offset(blob).expect("the blob ends in the 51-byte eStargz footer") as usize;
    assert!(off < blob.len() - 51, "the TOC offset {off} is inside the blob");
    // the TOC: a gzip member at the offset holding a tar of stargz.index.json alone
    let mut toc_tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[off..]).read_to_end(&mut toc_tar).expect("the TOC's member");
    assert!(raw.ends_with(&toc_tar), "the TOC's tar is the end of the decompressed blob");
    let mut a = tar::Archive::new(&toc_tar[..]);
    let mut es = a.entries().expect("the TOC's tar");
    let mut e = es.next().expect("an entry").expect("an entry");
    assert_eq!(&*e.path_bytes(), b"stargz.index.json");
    let mut json = Vec::new();
    e.read_to_end(&mut json).expect("the TOC");
    assert!(es.next().is_none(), "the TOC's tar holds nothing else");
    assert_eq!(annotations[TOC_DIGEST], sha256(&json), "{annotations}");
    let toc: serde_json::Value = serde_json::from_slice(&json).expect("the TOC is JSON");
    assert_eq!(toc["version"], 1, "{toc}");

    // the layer tar (a tar reader stops at its end-of-archive, before the TOC's tar)
    let layer = &raw[..raw.len() - toc_tar.len()];
    let mut in_tar = Vec::new();
    let mut a = tar::Archive::new(layer);
    for e in a.entries().expect("the layer tar") {
        let mut e = e.expect("a layer tar entry");
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let kind = match e.header().entry_type() {
            tar::EntryType::Regular => "reg",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            t => panic!("{name}: an entry of type {t:?} in the layer"),
        };
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("file data");
        in_tar.push((name, kind, link, data));
    }

    // the TOC lists every entry of the tar in order; each regular file's chunks, read through
    // the TOC's offsets alone, are the file's bytes
    let entries = toc["entries"].as_array().expect("TOC entries");
    let mut it = entries.iter().peekable();
    let mut files = BTreeMap::new();
    let mut chunked = Vec::new();
    for (name, kind, link, data) in &in_tar {
        let e = it.next().unwrap_or_else(|| panic!("{name} is not in the TOC"));
        assert_eq!((e["name"].as_str(), e["type"].as_str()), (Some(name.as_str()), Some(*kind)), "{e}");
        if matches!(*kind, "symlink" | "hardlink") {
            assert_eq!(e["linkName"].as_str(), Some(link.as_str()), "{e}");
        }
        if *kind != "reg" {
            continue;
        }
        assert_eq!(e["size"].as_u64().unwrap_or(0), data.len() as u64, "{e}");
        assert_eq!(e["digest"], sha256(data), "{e}");
        let mut chunks = vec![e];
        while it.peek().is_some_and(|c| c["type"] == "chunk") {
            let c = it.next().unwrap();
            assert_eq!(c["name"].as_str(), Some(name.as_str()), "{c}");
            chunks.push(c);
        }
        let mut got = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if data.is_empty() {
                break;
            }
            let at = c["chunkOffset"].as_u64().unwrap_or(0) as usize;
            assert_eq!(at, got.len(), "{name}: chunk {i} starts where the one before ended: {c}");
            let end = chunks.get(i + 1).map_or(data.len(), |n| n["chunkOffset"].as_u64().unwrap_or(0) as usize);
            let len = end - at;
            if let Some(cs) = c["chunkSize"].as_u64() {
                assert_eq!(cs as usize, len, "{name}: chunk {i}'s size: {c}");
            }
            let member =
                c["offset"].as_u64().unwrap_or_else(|| panic!("{name}: chunk {i} has no offset: {c}")) as usize;
            assert!(member < off, "{name}: chunk {i} lies before the TOC");
            // a gzip member starts at the offset; the chunk lies innerOffset bytes into it
            let skip = c["innerOffset"].as_u64().unwrap_or(0) as usize;
            let mut buf = vec![0u8; skip + len];
            flate2::read::GzDecoder::new(&blob[member..])
                .read_exact(&mut buf)
                .unwrap_or_else(|e| panic!("{name}: chunk {i} at offset {member}: {e}"));
            assert_eq!(c["chunkDigest"], sha256(&buf[skip..]), "{name}: chunk {i}: {c}");
            got.extend_from_slice(&buf[skip..]);
        }
        assert!(got == *data, "{name}: the bytes read through the TOC are not the file's");
        if chunks.len() > 1 {
            chunked.push(name.clone());
        }
        files.insert(name.clone(), got);
    }
    assert!(it.next().is_none(), "the TOC lists entries the tar does not have");
    Checked { toc, files, chunked }
}
