//! eStargz, the seekable tar.gz of stargz-snapshotter (docs/estargz.md there) that BuildKit's
//! `compression=estargz` writes: a layer tar cut into gzip members so that a lazy puller can
//! fetch one file by HTTP range, a table of contents (`stargz.index.json`, the last tar entry)
//! with each file's offset and chunk digests, and a 51-byte footer giving the TOC's offset. This
//! file writes the format and recognises it; it knows nothing of images or the store (convert.rs
//! decides which layers get it).
//!
//! Written by hand because no Rust crate writes eStargz. Only the framing is ours: the walk over
//! the tar's 512-byte blocks (so that every byte of the input passes through unchanged, as
//! stargz-snapshotter's `AppendTarLossLess`, which BuildKit uses, keeps them), the footer and
//! the TOC's fields. The members are flate2's, the header names and PAX records are read by the
//! tar crate, the TOC is serde_json.
//!
//! What BuildKit's writer gives, and so this one:
//! - the input tar bytes unchanged, each non-empty regular file's data starting a new gzip
//!   member, a new member every 4 MiB of a file (a `chunk` TOC entry each), the file's padding
//!   and the next headers in the member of its last chunk;
//! - after the tar's own end-of-archive blocks, a member holding a second tar: the TOC JSON
//!   (Go's `json.MarshalIndent` with tabs) as `stargz.index.json`, and its end-of-archive;
//! - no prefetch landmark files (`.prefetch.landmark`, `.no.prefetch.landmark`): BuildKit writes
//!   none (they come from stargz-snapshotter's own converter, not from the writer BuildKit uses);
//! - the layer's diff ID is the sha256 of the whole blob decompressed, TOC tar included, so it
//!   differs from the plain tar's and the image config's `rootfs.diff_ids` change with it.
//!
//! The blob is one valid gzip stream of concatenated members; a reader that ignores eStargz
//! extracts the original files (its tar reader stops at the first end-of-archive).

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The TOC's name, as the last tar entry of the blob.
pub const TOC_NAME: &str = "stargz.index.json";
/// The layer descriptor annotation with the TOC JSON's digest.
pub const TOC_DIGEST_ANNOTATION: &str = "containerd.io/snapshot/stargz/toc.digest";
/// The layer descriptor annotation with the blob's decompressed size (containers/storage's).
pub const UNCOMPRESSED_SIZE_ANNOTATION: &str = "io.containers.estargz.uncompressed-size";
/// The footer's size: an empty gzip member whose extra field holds the TOC's offset.
pub const FOOTER_SIZE: u64 = 51;
/// stargz-snapshotter's default chunk size (BuildKit sets none).
pub const CHUNK_SIZE: u64 = 4 << 20;

const BLOCK: usize = 512;
/// The largest PAX or GNU long-name header Go's tar reader takes.
const MAX_SPECIAL: i64 = 1 << 20;

/// What writing a blob gave, for its descriptor and the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `sha256:` of the TOC JSON (the `toc.digest` annotation).
    pub toc_digest: String,
    /// `sha256:` of the whole blob decompressed: the layer's diff ID.
    pub diff_id: String,
    /// Bytes of the whole blob decompressed (the `uncompressed-size` annotation).
    pub uncompressed_size: u64,
}

/// The TOC (stargz-snapshotter's `JTOC`).
#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
pub struct Toc {
    pub version: i64,
    pub entries: Vec<TocEntry>,
}

fn zero(n: &i64) -> bool {
    *n == 0
}

/// One TOC entry (stargz-snapshotter's `TOCEntry`): fields in its order, omitted when empty as
/// Go's `omitempty` omits them.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct TocEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub size: i64,
    #[serde(default, rename = "modtime", skip_serializing_if = "String::is_empty")]
    pub mod_time: String,
    #[serde(default, rename = "linkName", skip_serializing_if = "String::is_empty")]
    pub link_name: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub mode: i64,
    #[serde(default, skip_serializing_if = "zero")]
    pub uid: i64,
    #[serde(default, skip_serializing_if = "zero")]
    pub gid: i64,
    #[serde(default, rename = "userName", skip_serializing_if = "String::is_empty")]
    pub user_name: String,
    #[serde(default, rename = "groupName", skip_serializing_if = "String::is_empty")]
    pub group_name: String,
    #[serde(default, skip_serializing_if = "zero")]
    pub offset: i64,
    #[serde(default, rename = "innerOffset", skip_serializing_if = "zero")]
    pub inner_offset: i64,
    #[serde(default, rename = "devMajor", skip_serializing_if = "zero")]
    pub dev_major: i64,
    #[serde(default, rename = "devMinor", skip_serializing_if = "zero")]
    pub dev_minor: i64,
    /// Values base64, as Go encodes `[]byte`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, rename = "chunkOffset", skip_serializing_if = "zero")]
    pub chunk_offset: i64,
    #[serde(default, rename = "chunkSize", skip_serializing_if = "zero")]
    pub chunk_size: i64,
    #[serde(default, rename = "chunkDigest", skip_serializing_if = "String::is_empty")]
    pub chunk_digest: String,
}

fn sha(h: Sha256) -> String {
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A writer that counts what passes.
struct Counter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum State<W: Write> {
    Between(Counter<W>),
    InMember(flate2::write::GzEncoder<Counter<W>>),
}

/// The blob being written: a run of gzip members, and the digest of what they hold.
struct Members<W: Write> {
    state: Option<State<W>>,
    level: flate2::Compression,
    diff: Sha256,
    raw: u64,
}

impl<W: Write> Members<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        let mut gz = match self.state.take() {
            Some(State::Between(c)) => flate2::write::GzEncoder::new(c, self.level),
            Some(State::InMember(gz)) => gz,
            None => return Err(io::Error::other("estargz writer used after an error")),
        };
        let r = gz.write_all(b);
        self.state = Some(State::InMember(gz));
        r?;
        self.diff.update(b);
        self.raw += b.len() as u64;
        Ok(())
    }

    /// Ends the open member, if any; the offset where the next one starts.
    fn close(&mut self) -> io::Result<u64> {
        let c = match self.state.take() {
            Some(State::Between(c)) => c,
            Some(State::InMember(gz)) => gz.finish()?,
            None => return Err(io::Error::other("estargz writer used after an error")),
        };
        let n = c.n;
        self.state = Some(State::Between(c));
        Ok(n)
    }

    fn into_inner(mut self) -> io::Result<Counter<W>> {
        self.close()?;
        match self.state.take() {
            Some(State::Between(c)) => Ok(c),
            _ => Err(io::Error::other("estargz writer used after an error")),
        }
    }
}

/// Reads one 512-byte block; false at a clean end of input.
fn read_block(r: &mut dyn Read, blk: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut got = 0;
    while got < BLOCK {
        match r.read(&mut blk[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "tar ends inside a 512-byte block")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// A tar numeric field as Go's archive/tar reads it: base-256 when the high bit is set, else
/// octal with NULs and spaces trimmed (an empty field is 0, where the tar crate errs).
fn numeric(field: &[u8], what: &str, name: &str) -> io::Result<i64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let inv = if field[0] & 0x40 != 0 { 0xff } else { 0 };
        let mut x: i128 = 0;
        for (i, b) in field.iter().enumerate() {
            let mut c = b ^ inv;
            if i == 0 {
                c &= 0x7f;
            }
            x = (x << 8) | c as i128;
            if x > i64::MAX as i128 {
                return Err(bad(format!("tar header of {name:?}: {what} out of range")));
            }
        }
        return Ok(if inv == 0xff { !(x as i64) } else { x as i64 });
    }
    let s = std::str::from_utf8(field).map_err(|_| bad(format!("tar header of {name:?}: {what} is not octal")))?;
    let s = s.trim_matches(|c| c == ' ' || c == '\0');
    if s.is_empty() {
        return Ok(0);
    }
    i64::from_str_radix(s, 8).map_err(|_| bad(format!("tar header of {name:?}: {what} {s:?} is not octal")))
}

/// Whether the header's checksum is right (Go accepts the unsigned or the signed sum).
fn checksum_ok(blk: &[u8; BLOCK]) -> bool {
    let Ok(want) = numeric(&blk[148..156], "checksum", "") else {
        return false;
    };
    let (mut u, mut s) = (0i64, 0i64);
    for (i, &b) in blk.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        u += b as i64;
        s += b as i8 as i64;
    }
    want == u || want == s
}

/// A string field up to its first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// stargz-snapshotter's `formatModtime`: UTC RFC 3339 rounded to the second, empty for the
/// epoch (and zero) time.
fn modtime(secs: i64, nanos: i64) -> String {
    if secs == 0 {
        return String::new();
    }
    // Go's Round(time.Second): halfway rounds up (Time.Round measures from year 1, so a time
    // before 1970 rounds up too: -1.5 s is -1 s)
    let total = secs as i128 * 1_000_000_000 + nanos as i128;
    let r = (total + 500_000_000).div_euclid(1_000_000_000) as i64;
    let (days, s) = (r.div_euclid(86400), r.rem_euclid(86400));
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, (s / 60) % 60, s % 60)
}

/// Howard Hinnant's civil-from-days.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Go's `json.MarshalIndent(toc, "", "\t")`: serde_json's pretty printer with a tab, and the
/// HTML escapes Go's encoder adds. `<`, `>`, `&`, U+2028 and U+2029 can only stand inside JSON
/// strings, so replacing them in the whole text is exact.
fn toc_json(toc: &Toc) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(toc, &mut ser).map_err(io::Error::other)?;
    let s = String::from_utf8(out).map_err(io::Error::other)?;
    let mut go = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => go.push_str("\\u003c"),
            '>' => go.push_str("\\u003e"),
            '&' => go.push_str("\\u0026"),
            '\u{2028}' => go.push_str("\\u2028"),
            '\u{2029}' => go.push_str("\\u2029"),
            c => go.push(c),
        }
    }
    Ok(go.into_bytes())
}

/// The footer: an empty stored-deflate gzip member whose extra field (subfield `SG`) says
/// `%016xSTARGZ` of the TOC's offset (stargz-snapshotter's `gzipFooterBytes`).
pub fn footer(toc_offset: u64) -> [u8; FOOTER_SIZE as usize] {
    let mut f = [0u8; FOOTER_SIZE as usize];
    // gzip header: ID1 ID2, deflate, FEXTRA, mtime 0, XFL 0, OS unknown
    f[..10].copy_from_slice(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255]);
    f[10..12].copy_from_slice(&26u16.to_le_bytes());
    f[12..14].copy_from_slice(b"SG");
    f[14..16].copy_from_slice(&22u16.to_le_bytes());
    f[16..38].copy_from_slice(format!("{toc_offset:016x}STARGZ").as_bytes());
    // a final stored block of length 0, then CRC32 0 and ISIZE 0
    f[38..43].copy_from_slice(&[1, 0, 0, 0xff, 0xff]);
    f
}

/// The TOC offset a footer gives; None when it is not an eStargz footer.
pub fn parse_footer(f: &[u8]) -> Option<u64> {
    if f.len() != FOOTER_SIZE as usize || f[..3] != [0x1f, 0x8b, 8] || f[3] & 4 == 0 {
        return None;
    }
    if u16::from_le_bytes([f[10], f[11]]) != 26 || &f[12..14] != b"SG" || u16::from_le_bytes([f[14], f[15]]) != 22 {
        return None;
    }
    if &f[32..38] != b"STARGZ" {
        return None;
    }
    let hex = std::str::from_utf8(&f[16..32]).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// The TOC offset of an eStargz blob, checked as BuildKit checks a blob before it treats it as
/// eStargz: a footer, and from that offset a tar whose only entry is `stargz.index.json`.
/// None for any other blob.
pub fn toc_offset(blob: &Path) -> io::Result<Option<u64>> {
    let mut f = File::open(blob)?;
    let len = f.metadata()?.len();
    if len < FOOTER_SIZE {
        return Ok(None);
    }
    let mut foot = [0u8; FOOTER_SIZE as usize];
    f.seek(SeekFrom::Start(len - FOOTER_SIZE))?;
    f.read_exact(&mut foot)?;
    let Some(off) = parse_footer(&foot) else {
        return Ok(None);
    };
    if off > len - FOOTER_SIZE {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(off))?;
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f)));
    let Ok(mut entries) = a.entries() else {
        return Ok(None);
    };
    match entries.next() {
        Some(Ok(e)) if &*e.path_bytes() == TOC_NAME.as_bytes() => {}
        _ => return Ok(None),
    }
    Ok(entries.next().is_none().then_some(off))
}

/// The digest of the TOC JSON of an eStargz blob whose TOC is at `off` (the `toc.digest`
/// annotation), hashed as it is read: the JSON is not parsed, as BuildKit does not parse it
/// before it passes a blob on.
pub fn toc_digest(blob: &Path, off: u64) -> io::Result<String> {
    let mut f = File::open(blob)?;
    f.seek(SeekFrom::Start(off))?;
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(io::BufReader::new(f)));
    let mut e = a.entries()?.next().ok_or_else(|| bad(format!("no {TOC_NAME} at offset {off}")))??;
    if &*e.path_bytes() != TOC_NAME.as_bytes() {
        return Err(bad(format!("the entry at offset {off} is not {TOC_NAME}")));
    }
    let mut h = Sha256::new();
    io::copy(&mut e, &mut h)?;
    Ok(sha(h))
}

/// The tar an eStargz blob was made from (stargz-snapshotter's `Unpack`): its members up to the
/// TOC, decompressed. BuildKit reads it so when converting an eStargz layer to another
/// compression, so the TOC does not travel into the new blob.
pub fn open_payload(blob: &Path, off: u64) -> io::Result<impl Read> {
    let f = File::open(blob)?;
    Ok(flate2::read::MultiGzDecoder::new(io::BufReader::new(f.take(off))))
}

/// Writes `tar` as an eStargz blob into `out` at gzip level `level` (0-9), each regular file cut
/// into `chunk`-byte chunks. Refuses a tar that already holds a `stargz.index.json` (BuildKit
/// cannot make such a layer lossless either) and entry types eStargz has no name for.
pub fn write<W: Write>(tar: &mut dyn Read, out: W, level: u32, chunk: u64) -> io::Result<(Written, W)> {
    let mut m = Members {
        state: Some(State::Between(Counter { inner: out, n: 0 })),
        level: flate2::Compression::new(level),
        diff: Sha256::new(),
        raw: 0,
    };
    let mut toc = Toc { version: 1, entries: Vec::new() };
    let mut last_uname: HashMap<i64, String> = HashMap::new();
    let mut last_gname: HashMap<i64, String> = HashMap::new();
    let mut blk = [0u8; BLOCK];
    // the raw blocks of PAX and GNU long-name headers, written ahead of the header they qualify
    let mut pending: Vec<u8> = Vec::new();
    let mut pax: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let (mut long_name, mut long_link): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    loop {
        if !read_block(tar, &mut blk)? {
            if !pending.is_empty() {
                return Err(bad("tar ends after an extended header, before its entry".into()));
            }
            break;
        }
        if blk.iter().all(|&b| b == 0) {
            if !pending.is_empty() {
                return Err(bad("tar ends after an extended header, before its entry".into()));
            }
            // the end-of-archive blocks and whatever follows them pass through as they are
            m.write(&blk)?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = match tar.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                m.write(&buf[..n])?;
            }
            break;
        }
        let h = tar::Header::from_byte_slice(&blk);
        let hname = text(&h.path_bytes());
        if !checksum_ok(&blk) {
            return Err(bad(format!("tar header of {hname:?}: wrong checksum")));
        }
        let mut size = numeric(&blk[124..136], "size", &hname)?;
        let flag = blk[156];
        if matches!(flag, b'x' | b'L' | b'K') {
            // Go's reader refuses extended headers over 1 MiB (its maxSpecialFileSize)
            if !(0..=MAX_SPECIAL).contains(&size) {
                return Err(bad(format!("tar header of {hname:?}: an extended header of {size} bytes")));
            }
            let padded = (size as u64).div_ceil(BLOCK as u64) * BLOCK as u64;
            let mut data = vec![0u8; padded as usize];
            tar.read_exact(&mut data)?;
            pending.extend_from_slice(&blk);
            pending.extend_from_slice(&data);
            let data = &data[..size as usize];
            match flag {
                b'x' => {
                    // as Go's reader: a PAX header replaces the one before it
                    pax.clear();
                    for rec in tar::PaxExtensions::new(data) {
                        let rec = rec.map_err(|e| bad(format!("PAX header: {e}")))?;
                        let k = rec.key().map_err(|_| bad("PAX header: a key is not UTF-8".into()))?;
                        pax.insert(k.to_string(), rec.value_bytes().to_vec());
                    }
                }
                b'L' => long_name = Some(cstr(data).to_vec()),
                _ => long_link = Some(cstr(data).to_vec()),
            }
            continue;
        }
        if flag == b'g' {
            return Err(bad("unsupported input tar entry: a PAX global header".into()));
        }
        // the entry's fields as Go's archive/tar gives them: the header's, PAX's over them
        // (an empty PAX value keeps the header's), then GNU long names over both
        let pv = |k: &str| pax.get(k).filter(|v| !v.is_empty());
        let mut name = pv("path").map_or(hname.clone(), |v| text(v));
        let mut link =
            pv("linkpath").map_or_else(|| h.link_name_bytes().map(|l| text(&l)).unwrap_or_default(), |v| text(v));
        if let Some(n) = long_name.take() {
            name = text(&n);
        }
        if let Some(l) = long_link.take() {
            link = text(&l);
        }
        let pax_num = |k: &str| -> io::Result<Option<i64>> {
            pv(k)
                .map(|v| {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| bad(format!("PAX header of {name:?}: {k} is not a number")))
                })
                .transpose()
        };
        if let Some(s) = pax_num("size")? {
            size = s;
        }
        let uid = pax_num("uid")?.map_or_else(|| numeric(&blk[108..116], "uid", &name), Ok)?;
        let gid = pax_num("gid")?.map_or_else(|| numeric(&blk[116..124], "gid", &name), Ok)?;
        let (secs, nanos) = match pv("mtime") {
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(crate::layer::pax_time)
                .ok_or_else(|| bad(format!("PAX header of {name:?}: mtime is not a time")))?,
            None => (numeric(&blk[136..148], "mtime", &name)?, 0),
        };
        let uname =
            pv("uname").map_or_else(|| h.username_bytes().map(|u| text(cstr(u))).unwrap_or_default(), |v| text(v));
        let gname =
            pv("gname").map_or_else(|| h.groupname_bytes().map(|g| text(cstr(g))).unwrap_or_default(), |v| text(v));
        let xattrs: BTreeMap<String, String> = pax
            .iter()
            .filter_map(|(k, v)| {
                use base64::Engine as _;
                let x = k.strip_prefix("SCHILY.xattr.")?;
                Some((x.to_string(), base64::engine::general_purpose::STANDARD.encode(v)))
            })
            .collect();
        pax.clear();
        let kind = match flag {
            b'0' => "reg",
            0 if name.ends_with('/') => "dir",
            0 => "reg",
            b'1' => "hardlink",
            b'2' => "symlink",
            b'3' => "char",
            b'4' => "block",
            b'5' => "dir",
            b'6' => "fifo",
            t => return Err(bad(format!("unsupported input tar entry {:?} (type {:?})", name, t as char))),
        };
        if clean_name(&name) == TOC_NAME {
            return Err(bad(format!("the layer already holds {TOC_NAME}: an eStargz blob cannot be made of it")));
        }
        let (dev_major, dev_minor) =
            if matches!(kind, "char" | "block") && (h.as_ustar().is_some() || h.as_gnu().is_some()) {
                (numeric(&blk[329..337], "devmajor", &name)?, numeric(&blk[337..345], "devminor", &name)?)
            } else {
                (0, 0)
            };
        let mut ent = TocEntry {
            name: name.clone(),
            kind: kind.into(),
            size: if kind == "reg" { size } else { 0 },
            mod_time: modtime(secs, nanos),
            link_name: if matches!(kind, "hardlink" | "symlink") { link } else { String::new() },
            mode: numeric(&blk[100..108], "mode", &name)?,
            uid,
            gid,
            user_name: name_if_changed(&mut last_uname, uid, uname),
            group_name: name_if_changed(&mut last_gname, gid, gname),
            dev_major,
            dev_minor,
            xattrs,
            ..Default::default()
        };
        m.write(&pending)?;
        pending.clear();
        m.write(&blk)?;
        if size < 0 {
            return Err(bad(format!("tar header of {name:?}: negative size")));
        }
        // Go's reader reads no data for these types, whatever their size field says
        let data =
            if matches!(kind, "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo") { 0 } else { size as u64 };
        if kind == "reg" {
            let first = toc.entries.len();
            let mut whole = Sha256::new();
            let mut written = 0u64;
            let mut buf = vec![0u8; 64 << 10];
            while written < data {
                let remain = data - written;
                let this = if remain < chunk {
                    remain
                } else {
                    // as stargz-snapshotter: set on every full chunk, the last one too
                    ent.chunk_size = chunk as i64;
                    chunk
                };
                ent.offset = m.close()? as i64;
                ent.chunk_offset = written as i64;
                let mut part = Sha256::new();
                let mut left = this;
                while left > 0 {
                    let n = left.min(buf.len() as u64) as usize;
                    tar.read_exact(&mut buf[..n])
                        .map_err(|e| io::Error::new(e.kind(), format!("reading {name:?} from the tar: {e}")))?;
                    part.update(&buf[..n]);
                    whole.update(&buf[..n]);
                    m.write(&buf[..n])?;
                    left -= n as u64;
                }
                ent.chunk_digest = sha(part);
                toc.entries.push(ent);
                written += this;
                ent = TocEntry { name: name.clone(), kind: "chunk".into(), ..Default::default() };
            }
            if data == 0 {
                toc.entries.push(ent);
            }
            // the file's digest goes into its first (`reg`) entry
            toc.entries[first].digest = sha(whole);
        } else {
            toc.entries.push(ent);
        }
        let pad = data.div_ceil(BLOCK as u64) * BLOCK as u64 - data;
        let mut p = vec![0u8; pad as usize];
        tar.read_exact(&mut p)?;
        m.write(&p)?;
    }
    // the TOC: a tar of one entry in its own member, then the footer
    let toc_off = m.close()?;
    let json = toc_json(&toc)?;
    let toc_digest = sha(Sha256::new_with_prefix(&json));
    let th = toc_header(json.len() as u64)?;
    m.write(&th)?;
    m.write(&json)?;
    let pad = (json.len() as u64).div_ceil(BLOCK as u64) * BLOCK as u64 - json.len() as u64;
    m.write(&vec![0u8; pad as usize + 2 * BLOCK])?;
    let written = Written { toc_digest, diff_id: sha(m.diff.clone()), uncompressed_size: m.raw };
    let mut c = m.into_inner()?;
    c.write_all(&footer(toc_off))?;
    c.flush()?;
    Ok((written, c.inner))
}

/// The TOC's tar header as Go's `archive/tar` writes stargz-snapshotter's
/// `{Typeflag: TypeReg, Name: TOCTarName, Size: n}`: USTAR, every numeric field zero-padded
/// octal ending in a NUL (devmajor and devminor too), the checksum six digits, a NUL and a
/// space. The tar crate writes those two differently, so the header is laid out here.
fn toc_header(size: u64) -> io::Result<[u8; BLOCK]> {
    fn octal(f: &mut [u8], v: u64) -> io::Result<()> {
        let n = f.len() - 1;
        let s = format!("{v:0n$o}");
        if s.len() > n {
            return Err(bad(format!("{v} does not fit a tar header field of {n} octal digits")));
        }
        f[..n].copy_from_slice(s.as_bytes());
        f[n] = 0;
        Ok(())
    }
    let mut b = [0u8; BLOCK];
    b[..TOC_NAME.len()].copy_from_slice(TOC_NAME.as_bytes());
    for (at, len) in [(100, 8), (108, 8), (116, 8), (136, 12), (329, 8), (337, 8)] {
        octal(&mut b[at..at + len], 0)?;
    }
    octal(&mut b[124..136], size).map_err(|e| bad(format!("{TOC_NAME}: {e}")))?;
    b[156] = b'0';
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&c| u64::from(c)).sum();
    octal(&mut b[148..155], sum)?;
    b[155] = b' ';
    Ok(b)
}

/// stargz-snapshotter's `cleanEntryName`: Go's `path.Clean("/" + name)` without the leading `/`.
fn clean_name(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// stargz-snapshotter's `nameIfChanged`: a user or group name only where it differs from the
/// last one given for the same ID.
fn name_if_changed(last: &mut HashMap<i64, String>, id: i64, name: String) -> String {
    if name.is_empty() {
        return name;
    }
    if last.get(&id) == Some(&name) {
        return String::new();
    }
    last.insert(id, name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut d = tar::Header::new_ustar();
        d.set_path("etc/").unwrap();
        d.set_entry_type(tar::EntryType::Directory);
        d.set_mode(0o755);
        d.set_mtime(1_700_000_000);
        d.set_size(0);
        d.set_cksum();
        b.append(&d, io::empty()).unwrap();
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_mode(0o644);
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_username("u").unwrap();
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        let mut l = tar::Header::new_ustar();
        l.set_path("etc/link").unwrap();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_link_name("a").unwrap();
        l.set_size(0);
        l.set_cksum();
        b.append(&l, io::empty()).unwrap();
        b.into_inner().unwrap()
    }

    fn build(t: &[u8], chunk: u64) -> (Written, Vec<u8>) {
        write(&mut Cursor::new(t), Vec::new(), 6, chunk).unwrap()
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(b).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn footer_is_the_51_bytes_of_the_spec() {
        let f = footer(0x1234);
        assert_eq!(f.len(), 51);
        assert_eq!(&f[16..38], b"0000000000001234STARGZ");
        assert_eq!(parse_footer(&f), Some(0x1234));
        // an empty gzip member: decompresses to nothing
        assert!(gunzip(&f).is_empty());
        let mut g = f;
        g[33] = b'X';
        assert_eq!(parse_footer(&g), None);
    }

    #[test]
    fn the_blob_is_the_tar_then_the_toc_and_each_file_starts_a_member() {
        let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let t = tar_of(&[("etc/a", b"hello\n"), ("etc/empty", b""), ("etc/big", &big)]);
        let (w, blob) = build(&t, 4096);
        // reproducible
        assert_eq!(build(&t, 4096).1, blob);
        let whole = gunzip(&blob);
        // the input tar unchanged, then the TOC's tar
        assert_eq!(&whole[..t.len()], &t[..]);
        assert_eq!(w.diff_id, sha(Sha256::new_with_prefix(&whole)));
        assert_eq!(w.uncompressed_size, whole.len() as u64);
        let off = parse_footer(&blob[blob.len() - 51..]).unwrap();
        let mut a = tar::Archive::new(&whole[t.len()..]);
        let mut es = a.entries().unwrap();
        let mut e = es.next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), TOC_NAME.as_bytes());
        let mut json = Vec::new();
        e.read_to_end(&mut json).unwrap();
        assert!(es.next().is_none());
        assert_eq!(w.toc_digest, sha(Sha256::new_with_prefix(&json)));
        // the TOC's member decompresses alone
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&blob[off as usize..]));
        assert_eq!(&*a.entries().unwrap().next().unwrap().unwrap().path_bytes(), TOC_NAME.as_bytes());
        let toc: Toc = serde_json::from_slice(&json).unwrap();
        let kinds: Vec<(&str, &str)> = toc.entries.iter().map(|e| (e.name.as_str(), e.kind.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("etc/", "dir"),
                ("etc/a", "reg"),
                ("etc/empty", "reg"),
                ("etc/big", "reg"),
                ("etc/big", "chunk"),
                ("etc/big", "chunk"),
                ("etc/link", "symlink")
            ]
        );
        // each chunk: a gzip member at its offset whose first bytes are the chunk
        for e in toc.entries.iter().filter(|e| e.offset != 0) {
            let data: &[u8] = if e.name == "etc/a" { b"hello\n" } else { &big };
            let len = if e.chunk_size != 0 { e.chunk_size as usize } else { data.len() - e.chunk_offset as usize };
            let want = &data[e.chunk_offset as usize..e.chunk_offset as usize + len];
            let mut got = vec![0u8; len];
            flate2::read::GzDecoder::new(&blob[e.offset as usize..]).read_exact(&mut got).unwrap();
            assert_eq!(got, want, "{e:?}");
            assert_eq!(e.chunk_digest, sha(Sha256::new_with_prefix(want)));
        }
        let a = &toc.entries[1];
        assert_eq!((a.size, a.mode, a.uid, a.user_name.as_str()), (6, 0o644, 1000, "u"));
        assert_eq!(a.mod_time, "2023-11-14T22:13:20Z");
        assert_eq!(a.digest, a.chunk_digest);
        // the user name only where it changes for the uid; an empty file: a digest, no offset
        assert_eq!(toc.entries[2].user_name, "");
        assert_eq!((toc.entries[2].offset, toc.entries[2].digest.as_str()), (0, &*sha(Sha256::new())));
        assert_eq!(toc.entries[3].digest, sha(Sha256::new_with_prefix(&big)));
        assert_eq!(
            (toc.entries[3].chunk_size, toc.entries[5].chunk_size, toc.entries[5].chunk_offset),
            (4096, 0, 8192)
        );
        assert_eq!(toc.entries[6].link_name, "a");
        assert!(toc.entries[0].mod_time.len() == 20 && toc.entries[6].mod_time.is_empty());
    }

    #[test]
    fn a_blob_on_disk_is_recognised_and_unpacked() {
        let t = tar_of(&[("etc/a", b"x")]);
        let (_, blob) = build(&t, CHUNK_SIZE);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        std::fs::write(&p, &blob).unwrap();
        let off = toc_offset(&p).unwrap().unwrap();
        let mut payload = Vec::new();
        open_payload(&p, off).unwrap().read_to_end(&mut payload).unwrap();
        assert_eq!(payload, t);
        let whole = gunzip(&blob);
        let mut a = tar::Archive::new(&whole[t.len()..]);
        let mut json = Vec::new();
        a.entries().unwrap().next().unwrap().unwrap().read_to_end(&mut json).unwrap();
        assert_eq!(toc_digest(&p, off).unwrap(), sha(Sha256::new_with_prefix(&json)));
        let toc: Toc = serde_json::from_slice(&json).unwrap();
        assert_eq!(toc.entries.len(), 3);
        // a plain gzip layer is not eStargz
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&t).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        assert_eq!(toc_offset(&p).unwrap(), None);
    }

    #[test]
    fn refused_inputs() {
        let t = tar_of(&[(TOC_NAME, b"{}")]);
        let e = write(&mut Cursor::new(&t), Vec::new(), 6, CHUNK_SIZE).unwrap_err();
        assert!(e.to_string().contains("already holds stargz.index.json"), "{e}");
        let mut t = tar_of(&[("a", b"x")]);
        t[512 + 148] ^= 1;
        let e = write(&mut Cursor::new(&t), Vec::new(), 6, CHUNK_SIZE).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        // a PAX header of a negative or absurd size, a tar cut inside a header or a file
        // (-1 in base-256; 8 GiB in octal)
        for size in [[0xffu8; 12], *b"77777777777\0"] {
            let mut h = tar::Header::new_ustar();
            h.set_path("x").unwrap();
            h.set_entry_type(tar::EntryType::XHeader);
            h.as_mut_bytes()[124..136].copy_from_slice(&size);
            h.set_cksum();
            let e = write(&mut Cursor::new(h.as_bytes()), Vec::new(), 6, CHUNK_SIZE).unwrap_err();
            assert!(e.to_string().contains("an extended header of"), "{size:?}: {e}");
        }
        let t = tar_of(&[("etc/a", b"hello\n")]);
        for cut in [100, 512 + 300, 1024 + 3] {
            assert!(write(&mut Cursor::new(&t[..cut]), Vec::new(), 6, CHUNK_SIZE).is_err(), "cut at {cut}");
        }
        // a footer of garbage, a footer pointing past the blob: not eStargz, no error
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b");
        let mut blob = vec![0x1f, 0x8b];
        blob.extend_from_slice(&footer(1 << 40));
        std::fs::write(&p, &blob).unwrap();
        assert_eq!(toc_offset(&p).unwrap(), None);
        std::fs::write(&p, footer(0)).unwrap();
        assert_eq!(toc_offset(&p).unwrap(), None);
        assert!(toc_digest(&p, 0).is_err());
    }

    #[test]
    fn the_toc_header_is_gos() {
        let h = toc_header(1234).unwrap();
        assert!(toc_header(1 << 33).is_err());
        // what the tar crate reads back
        let t = tar::Header::from_byte_slice(&h);
        assert_eq!(&*t.path_bytes(), TOC_NAME.as_bytes());
        assert_eq!((t.size().unwrap(), t.mode().unwrap(), t.mtime().unwrap()), (1234, 0, 0));
        assert_eq!(t.entry_type(), tar::EntryType::Regular);
        assert!(checksum_ok(&h));
        // Go's layout: octal fields zero-padded with a NUL, the checksum `dddddd\0 `
        assert_eq!(&h[100..108], b"0000000\0");
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[329..345], b"0000000\x000000000\x00");
        assert_eq!((h[154], h[155]), (0, b' '));
        assert_eq!(&h[257..265], b"ustar\x0000");
    }

    #[test]
    fn go_field_rules() {
        // Round(time.Second), empty for the epoch
        assert_eq!(modtime(0, 0), "");
        assert_eq!(modtime(1_700_000_000, 500_000_000), "2023-11-14T22:13:21Z");
        // before 1970 (a PAX mtime=-86400 record; -1.5 s as parsePAXTime gives it)
        assert_eq!(modtime(-86400, 0), "1969-12-31T00:00:00Z");
        assert_eq!(modtime(-1, -500_000_000), "1969-12-31T23:59:59Z");
        assert_eq!(modtime(-1, -700_000_000), "1969-12-31T23:59:58Z");
        assert_eq!(crate::layer::pax_time("1700000000.25"), Some((1_700_000_000, 250_000_000)));
        assert_eq!(numeric(b"0000644\0", "mode", "x").unwrap(), 0o644);
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0", "mode", "x").unwrap(), 0);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0], "uid", "x").unwrap(), 256);
        let toc = Toc {
            version: 1,
            entries: vec![TocEntry { name: "a<b>&c".into(), kind: "reg".into(), ..Default::default() }],
        };
        let j = String::from_utf8(toc_json(&toc).unwrap()).unwrap();
        assert_eq!(
            j,
            "{\n\t\"version\": 1,\n\t\"entries\": [\n\t\t{\n\t\t\t\"name\": \"a\\u003cb\\u003e\\u0026c\",\n\t\t\t\"type\": \"reg\"\n\t\t}\n\t]\n}"
        );
    }
}
