//! Layers: an overlay upper dir -> a deterministic gzip tar (sorted entries, mtimes as [`Mtimes`] says,
//! owners/modes kept, hardlinks as links, overlay whiteouts -> `.wh.` entries), and the way
//! back: a layer tar -> an overlay lower dir (snapshot) or a flat rootfs. The one place layer
//! blobs are written (`write_layer`: a build's diffs, `load`'s imports) and read for sizes.
//! It knows nothing of Dockerfiles or runtimes; the store below it knows nothing of tars.

pub mod overlay;

pub use crate::store::image::Layer;
use crate::store::{io_err, HashWriter, Image, Store, StoreError};
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const WH_PREFIX: &str = ".wh.";
pub const WH_OPAQUE: &str = ".wh..wh..opq";

/// What one tar entry of a diff is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    Hardlink(String),
    Char(u64, u64),
    Block(u64, u64),
    Fifo,
    /// A `.wh.name` entry
    Whiteout,
    /// A `.wh..wh..opq` entry
    Opaque,
}

/// One planned tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the layer root, no leading `/`.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Where the bytes are (regular files).
    pub source: Option<PathBuf>,
    /// Extended attributes carried into the tar (file capabilities).
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The time the file has where the build wrote it (a copied file its source's, what RUN
    /// wrote the time it was written), or one of its own (`own_mtime`); `None`: none (a
    /// directory made on the way). The layer holds what [`Mtimes`] makes of it.
    pub mtime: Option<i64>,
    /// `mtime` is the source's own time (an `ADD` URL's Last-Modified, a git commit's time).
    pub own_mtime: bool,
}

/// The mtimes a build writes in its layers: the image exporter's `rewrite-timestamp`. Only the
/// layers the build makes; a base image's stay as they are (BuildKit rewrites none of them
/// either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtimes {
    /// `rewrite-timestamp=true` (slipway's default) with neither SOURCE_DATE_EPOCH nor
    /// `--timestamp N`: every entry 0, so equal inputs give equal layers, but for a time of its
    /// own (ADD's Last-Modified, a git commit's: the same on every build anyway).
    Zero,
    /// `rewrite-timestamp=true` with SOURCE_DATE_EPOCH (or `--timestamp N`): no time newer than
    /// it, older ones kept (a context file's), as BuildKit clamps a layer's tar headers.
    Clamp(i64),
    /// `rewrite-timestamp=false`, BuildKit's default: the times the files have where the build
    /// wrote them (a copied file keeps its source's, what RUN writes has the time it was
    /// written). The directories WORKDIR makes get SOURCE_DATE_EPOCH when it is given (as
    /// BuildKit's frontend makes them), else, as any entry with no time, the time they are
    /// written.
    Kept(Option<i64>),
}

impl Mtimes {
    /// Whether the layer depends on the files' own mtimes (else they need not be read).
    pub fn reads_files(self) -> bool {
        self != Mtimes::Zero
    }

    /// The time in the layer of entry `e`; `now` for one without a time in `Kept`.
    pub fn of(self, e: &Entry, now: i64) -> i64 {
        match self {
            Mtimes::Zero if e.own_mtime => e.mtime.unwrap_or(0),
            Mtimes::Zero => 0,
            Mtimes::Clamp(t) => e.mtime.map_or(t, |m| m.min(t)),
            Mtimes::Kept(_) => e.mtime.unwrap_or(now),
        }
    }

    /// Its part of a cache key (`mtime=0` as before the option existed, so those caches stay
    /// valid; `Clamp` keeps older times, so it is not the `mtime=N` that set every one).
    pub fn key(self) -> String {
        match self {
            Mtimes::Zero => "mtime=0".into(),
            Mtimes::Clamp(t) => format!("mtime<={t}"),
            Mtimes::Kept(None) => "mtime=kept".into(),
            Mtimes::Kept(Some(t)) => format!("mtime=kept,workdir={t}"),
        }
    }

    /// The time an entry gets in a layer written with `self`, given the time `t` it has in the
    /// same layer written with `from` (`own`: a time of the source's own, see
    /// [`Entry::own_mtime`]), when that layer holds what it takes ([`Mtimes::derives_from`]).
    pub fn from_layer(self, from: Mtimes, t: i64, own: bool) -> i64 {
        match self {
            _ if self == from => t,
            Mtimes::Clamp(c) => t.min(c),
            Mtimes::Zero if own => t,
            _ => 0,
        }
    }

    /// Whether the layers written with `from` hold what a layer written with `self` needs, so
    /// that [`Mtimes::from_layer`] gives each entry the time a build writing `self` gives it;
    /// why not otherwise. A clamp only lowers times: `Clamp(c)` comes from a layer clamped no
    /// lower, or from the files' own times (where WORKDIR's directories got SOURCE_DATE_EPOCH
    /// `s`, `s >= c`; what RUN wrote has a time after `c` when `c` is not in the future);
    /// `Zero` from the files' own times and the record of which were their source's own
    /// ([`own_times`]); the files' own times from nothing else.
    pub fn derives_from(self, from: Mtimes) -> Result<(), String> {
        let ok = match (self, from) {
            _ if self == from => true,
            (Mtimes::Clamp(c), Mtimes::Clamp(t)) => c <= t,
            (Mtimes::Clamp(c), Mtimes::Kept(s)) => s.is_none_or(|s| s >= c),
            (Mtimes::Zero, Mtimes::Kept(_)) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "layers with {} cannot be made from layers with {}",
                self.describe_times(),
                from.describe_times()
            ))
        }
    }

    /// The times alone, for [`Mtimes::derives_from`]'s message.
    pub fn describe_times(self) -> String {
        match self {
            Mtimes::Zero => "every mtime 0".into(),
            Mtimes::Clamp(t) => format!("mtimes clamped to {t}"),
            Mtimes::Kept(None) => "the files' own mtimes".into(),
            Mtimes::Kept(Some(t)) => format!("the files' own mtimes (WORKDIR's directories {t})"),
        }
    }

    /// As a cache miss names it.
    pub fn describe(self) -> String {
        match self {
            Mtimes::Zero => "rewrite-timestamp=true (file mtimes 0)".into(),
            Mtimes::Clamp(t) => format!("rewrite-timestamp=true (file mtimes at most {t})"),
            Mtimes::Kept(_) => "rewrite-timestamp=false (file mtimes as written)".into(),
        }
    }
}

/// Seconds since 1970 now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// An mtime from a stat, whole seconds (a time before 1970 is negative, as in the tar).
pub fn mtime_of(md: &fs::Metadata) -> i64 {
    md.mtime()
}

/// The xattrs a layer keeps: what `RUN setcap` or a copied file carries. Overlay's own
/// `trusted.overlay.*` bookkeeping never goes into a layer.
pub const KEPT_XATTRS: &[&str] = &["security.capability"];

/// A PAX extended header record: `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut n = body + 1;
    while n != body + n.to_string().len() {
        n = body + n.to_string().len();
    }
    let mut r = format!("{n} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// An entry's mtime as Go's archive/tar writes it by default (`Writer.WriteHeader` picks
/// USTAR when the time fits its octal field, else PAX): the header field's value, and for a
/// time before 1970 (which the field cannot hold) 0 there and a PAX `mtime` record of the
/// seconds, `mtime=-86400`. Times from 1970 on keep the header alone, so those layers are the
/// bytes they always were.
pub(crate) fn header_mtime(t: i64) -> (u64, Vec<u8>) {
    match u64::try_from(t) {
        Ok(t) => (t, Vec::new()),
        Err(_) => (0, pax_record("mtime", t.to_string().as_bytes())),
    }
}

/// Appends a PAX extended header of `records` (none: nothing) describing the next entry, with
/// the header time `mtime` (the entry's, or 0 for one before 1970, as Go leaves it).
pub(crate) fn append_pax<W: Write>(b: &mut tar::Builder<W>, records: &[u8], mtime: u64) -> io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut x = tar::Header::new_ustar();
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_mode(0o644);
    x.set_mtime(mtime);
    x.set_size(records.len() as u64);
    b.append_data(&mut x, "././@PaxHeader", records)
}

/// A PAX time (`SECONDS[.FRACTION]`, maybe negative) as Go's archive/tar parses it
/// (`parsePAXTime`): seconds, and nanoseconds of the same sign (`-1.5` is -1 s and -500000000
/// ns); None when it is no such number.
pub fn pax_time(v: &str) -> Option<(i64, i64)> {
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    if !f.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = f.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let mut nanos: i64 = digits.parse().ok()?;
    if s.starts_with('-') {
        nanos = -nanos;
    }
    Some((secs, nanos))
}

/// The time of a tar entry as Go's reader gives it (and so BuildKit and docker): its PAX
/// `mtime` record when it has one, else the header field; as whole seconds (floored) and
/// nanoseconds 0..1e9. The tar crate applies a PAX `uid`, `gid`, `size` or `path` on its
/// own, but not `mtime`: a time before 1970 (0 in the header) would be lost without this.
pub fn entry_mtime<R: Read>(e: &mut tar::Entry<'_, R>) -> io::Result<(i64, i64)> {
    if let Some(exts) = e.pax_extensions()? {
        for x in exts.flatten() {
            if x.key() == Ok("mtime") {
                let v = x.value().unwrap_or_default();
                let (s, n) = pax_time(v).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("PAX record mtime={v:?} is not a time"))
                })?;
                let total = s as i128 * 1_000_000_000 + n as i128;
                return Ok((total.div_euclid(1_000_000_000) as i64, total.rem_euclid(1_000_000_000) as i64));
            }
        }
    }
    // a value beyond i64 can only come from a base-256 field, whose two's complement is a time
    // before 1970 (GNU tar's --format=gnu writes them so; Go reads them so): the tar crate
    // hands back its low 64 bits
    Ok((e.header().mtime()? as i64, 0))
}

/// Sets the mtime (and atime) of `path`, not following a symlink.
fn set_time(path: &Path, (s, n): (i64, i64)) -> io::Result<()> {
    let ts = nix::sys::time::TimeSpec::new(s, n);
    nix::sys::stat::utimensat(None, path, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
        .map_err(|err| io::Error::other(format!("set times of {}: {err}", path.display())))
}

/// Plans the tar entries of an upper dir, in filepath.Walk order, each with its file's mtime.
pub fn plan_diff(upper: &Path) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    let mut links: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let walker = walkdir::WalkDir::new(upper).min_depth(1).sort_by(|a, b| a.file_name().cmp(b.file_name()));
    for e in walker {
        let e = e.map_err(|e| StoreError::Io {
            op: "walk",
            path: upper.to_path_buf(),
            err: io::Error::other(e.to_string()),
        })?;
        let rel = e.path().strip_prefix(upper).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        let md = fs::symlink_metadata(e.path()).map_err(io_err("stat", e.path()))?;
        let ft = md.file_type();
        let mut ent = Entry {
            path: rel.clone(),
            kind: Kind::File,
            mode: md.mode() & 0o7777,
            uid: md.uid() as u64,
            gid: md.gid() as u64,
            size: 0,
            source: None,
            xattrs: Vec::new(),
            mtime: Some(mtime_of(&md)),
            own_mtime: false,
        };
        if ft.is_char_device() && md.rdev() == 0 {
            let (dir, name) = match rel.rsplit_once('/') {
                Some((d, n)) => (format!("{d}/"), n.to_string()),
                None => (String::new(), rel.clone()),
            };
            ent.path = format!("{dir}{WH_PREFIX}{name}");
            ent.kind = Kind::Whiteout;
            ent.mode = 0o600;
            ent.uid = 0;
            ent.gid = 0;
            out.push(ent);
            continue;
        }
        if ft.is_dir() {
            ent.kind = Kind::Dir;
            let opaque = crate::sys::lgetxattr(e.path(), crate::userns::opaque_xattr())
                .map_err(io_err("getxattr", e.path()))?
                .is_some_and(|v| v == b"y");
            out.push(ent);
            if opaque {
                out.push(Entry {
                    path: format!("{rel}/{WH_OPAQUE}"),
                    kind: Kind::Opaque,
                    mode: 0o600,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    source: None,
                    xattrs: Vec::new(),
                    mtime: None,
                    own_mtime: false,
                });
            }
            continue;
        }
        if ft.is_symlink() {
            let t = fs::read_link(e.path()).map_err(io_err("readlink", e.path()))?;
            ent.kind = Kind::Symlink(t);
        } else if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = links.get(&(md.dev(), md.ino())) {
                    ent.kind = Kind::Hardlink(first.clone());
                    out.push(ent);
                    continue;
                }
                links.insert((md.dev(), md.ino()), rel.clone());
            }
            ent.size = md.len();
            ent.source = Some(e.path().to_path_buf());
            for x in KEPT_XATTRS {
                if let Some(v) = crate::sys::lgetxattr(e.path(), x).map_err(io_err("getxattr", e.path()))? {
                    ent.xattrs.push((x.to_string(), v));
                }
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            let (ma, mi) = (nix::sys::stat::major(md.rdev()), nix::sys::stat::minor(md.rdev()));
            ent.kind = if ft.is_char_device() { Kind::Char(ma, mi) } else { Kind::Block(ma, mi) };
        } else if ft.is_fifo() {
            ent.kind = Kind::Fifo;
        } else {
            continue; // sockets are not archived
        }
        out.push(ent);
    }
    Ok(out)
}

/// Hashes what is read through it (a layer's diff ID as it is extracted or recompressed).
pub(crate) struct HashReader<R: Read> {
    pub(crate) inner: R,
    pub(crate) hash: Sha256,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes planned entries as a tar to `w`, their mtimes as `mtimes` says.
pub fn write_tar<W: Write>(entries: &[Entry], mtimes: Mtimes, w: W) -> io::Result<W> {
    let now = now();
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    for e in entries {
        let mtime = mtimes.of(e, now);
        match (&e.kind, e.size) {
            (Kind::File, n) if n > 0 => {
                let src = e.source.as_deref().unwrap_or(Path::new("/dev/null"));
                // a file that changed size while we read it would corrupt the tar
                append_entry(&mut b, e, mtime, File::open(src)?.take(n))?
            }
            _ => append_entry(&mut b, e, mtime, io::empty())?,
        }
    }
    b.into_inner()
}

/// Appends entry `e` with time `mtime` (a regular file's `size` bytes read from `data`): the
/// one encoding of an entry in the layers slipway writes, so that [`rewrite_layer`] gives the
/// bytes a build with other times would have written.
fn append_entry<W: Write>(b: &mut tar::Builder<W>, e: &Entry, mtime: i64, data: impl Read) -> io::Result<()> {
    let (mtime, mtime_record) = header_mtime(mtime);
    let mut records = Vec::new();
    // records in key order, as Go's writer sorts them ("SCHILY..." before "mtime")
    for (k, v) in &e.xattrs {
        records.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
    }
    records.extend(mtime_record);
    append_pax(b, &records, mtime)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(mtime);
    h.set_size(0);
    match &e.kind {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            b.append_data(&mut h, &e.path, io::empty())
        }
        Kind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(e.size);
            b.append_data(&mut h, &e.path, data)
        }
        Kind::Symlink(t) => {
            h.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut h, &e.path, t)
        }
        Kind::Hardlink(t) => {
            h.set_entry_type(tar::EntryType::Link);
            b.append_link(&mut h, &e.path, t)
        }
        Kind::Char(ma, mi) | Kind::Block(ma, mi) => {
            h.set_entry_type(if matches!(e.kind, Kind::Char(..)) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            });
            h.set_device_major(*ma as u32)?;
            h.set_device_minor(*mi as u32)?;
            b.append_data(&mut h, &e.path, io::empty())
        }
        Kind::Fifo => {
            h.set_entry_type(tar::EntryType::Fifo);
            b.append_data(&mut h, &e.path, io::empty())
        }
        Kind::Whiteout | Kind::Opaque => {
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, &e.path, io::empty())
        }
    }
}

/// A layer slipway wrote, written again with each entry's time `time(path, mtime)`, streamed
/// (one entry's header at a time in memory) through [`write_layer`]. Checked first: the blob's
/// digest and diff ID are the layer's, and the entries read back encode to exactly its tar
/// (so the new blob is what [`write_tar`] gives for the new times); a layer slipway did not
/// write (a base image's, another tool's) is refused, naming it.
pub fn rewrite_layer(store: &Store, l: &Layer, time: &dyn Fn(&str, i64) -> i64) -> Result<Layer, StoreError> {
    let src = store.blob_path(&l.digest);
    let bad = |why: String| StoreError::Io {
        op: "rewrite the times of layer",
        path: src.clone(),
        err: io::Error::other(why),
    };
    // first pass: the entries as read encode to the layer's own bytes
    let mut sink = HashWriter::new(io::sink());
    let digest = retime_tar(&src, &mut sink, &|_, t| t).map_err(io_err("read", &src))?;
    if digest != l.digest {
        return Err(bad(format!("the blob's digest is {digest}, not {}", l.digest)));
    }
    if sink.digest() != l.diff_id {
        return Err(bad(format!(
            "its entries do not encode back to its diff ID {} (not a layer slipway wrote)",
            l.diff_id
        )));
    }
    write_layer(store, |w, tmp| {
        let d = retime_tar(&src, w, time).map_err(io_err("write", tmp))?;
        // the blob changed between the passes
        if d != l.digest {
            return Err(bad(format!("the blob's digest changed to {d} while it was read")));
        }
        Ok(())
    })
}

/// The tar in the layer blob `src` written to `w` with each entry's time `time(path, mtime)`;
/// the blob's digest as read.
fn retime_tar(src: &Path, w: &mut dyn Write, time: &dyn Fn(&str, i64) -> i64) -> io::Result<String> {
    let mut blob = HashReader { inner: io::BufReader::new(File::open(src)?), hash: Sha256::new() };
    let mut magic = [0u8; 4];
    let n = read_full(&mut blob, &mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(&mut blob);
    let plain: Box<dyn Read + '_> = if magic[..n].starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else if magic[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::new(head)?)
    } else {
        Box::new(head)
    };
    let mut ar = tar::Archive::new(plain);
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Complete);
    for ent in ar.entries()? {
        let mut ent = ent?;
        let e = entry_of(&mut ent)?;
        let (t, _) = entry_mtime(&mut ent)?;
        let t = time(&e.path, t);
        append_entry(&mut b, &e, t, &mut ent)?;
    }
    b.finish()?;
    drop(b);
    drop(ar);
    // what follows the tar's end (gzip's trailer) is part of the blob
    io::copy(&mut blob, &mut io::sink())?;
    Ok(format!("sha256:{:x}", blob.hash.finalize()))
}

/// Reads until `buf` is full or the end; how many bytes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A tar entry of a layer as [`append_entry`] writes it (its time aside).
fn entry_of<R: Read>(ent: &mut tar::Entry<'_, R>) -> io::Result<Entry> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_string_lossy().into_owned();
    let h = ent.header();
    let path = bytes(&ent.path_bytes());
    let link = || -> io::Result<PathBuf> {
        ent.link_name_bytes()
            .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b)))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: a link without a target")))
    };
    let dev = |v: io::Result<Option<u32>>| v.map(|d| d.unwrap_or(0) as u64);
    let kind = match h.entry_type() {
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Regular => Kind::File,
        tar::EntryType::Symlink => Kind::Symlink(link()?),
        tar::EntryType::Link => Kind::Hardlink(link()?.to_string_lossy().into_owned()),
        tar::EntryType::Char => Kind::Char(dev(h.device_major())?, dev(h.device_minor())?),
        tar::EntryType::Block => Kind::Block(dev(h.device_major())?, dev(h.device_minor())?),
        tar::EntryType::Fifo => Kind::Fifo,
        t => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{path}: entry type {t:?}"))),
    };
    let mut xattrs = Vec::new();
    if let Some(exts) = ent.pax_extensions()? {
        for x in exts {
            let x = x?;
            if let Some(k) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                xattrs.push((k.to_string(), x.value_bytes().to_vec()));
            }
        }
    }
    let h = ent.header();
    Ok(Entry {
        path,
        kind,
        mode: h.mode()?,
        uid: h.uid()?,
        gid: h.gid()?,
        size: h.size()?,
        source: None,
        xattrs,
        mtime: None,
        own_mtime: false,
    })
}

/// Writes a gzip layer blob from planned entries; returns the layer. A layer of the files' own
/// times records which of its entries have a time of their source's own ([`own_times`]).
pub fn commit_layer(store: &Store, entries: &[Entry], mtimes: Mtimes) -> Result<Layer, StoreError> {
    let l = write_layer(store, |w, tmp| write_tar(entries, mtimes, w).map(drop).map_err(io_err("write", tmp)))?;
    if let Mtimes::Kept(_) = mtimes {
        let own: Vec<&str> = entries.iter().filter(|e| e.own_mtime).map(|e| e.path.as_str()).collect();
        store.write_record(&own_times_record(&l.diff_id), &own)?;
    }
    Ok(l)
}

fn own_times_record(diff_id: &str) -> String {
    format!("cache/own-times/{}", diff_id.trim_start_matches("sha256:"))
}

/// The paths of a layer of the files' own times ([`Mtimes::Kept`]) whose time is their source's
/// own (an `ADD` URL's Last-Modified, a git commit's): what `Zero` keeps of them. None when no
/// record says (a layer written before the record existed, or brought by `--cache-from`).
pub fn own_times(store: &Store, diff_id: &str) -> Option<HashSet<String>> {
    store.read_record::<Vec<String>>(&own_times_record(diff_id)).map(|v| v.into_iter().collect())
}

/// Brings a layer file of any compression into the store as a gzip blob (`load`). A gzip file
/// is kept as it is (its diff ID read through it); another is decompressed and written again.
pub fn import(store: &Store, path: &Path) -> Result<Layer, StoreError> {
    let mut magic = [0u8; 2];
    let n = File::open(path).and_then(|mut f| f.read(&mut magic)).map_err(io_err("read", path))?;
    let mut r = open_decompressed(path).map_err(io_err("open", path))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        let mut h = HashWriter::new(io::sink());
        io::copy(&mut r, &mut h).map_err(io_err("read", path))?;
        let diff_id = h.digest();
        let digest = crate::store::hash_file(path)?;
        let size = fs::metadata(path).map_err(io_err("stat", path))?.len();
        if !store.has_blob(&digest) {
            let tmpd = store.tempdir("load")?;
            let t = tmpd.path.join("blob");
            fs::copy(path, &t).map_err(io_err("copy", path))?;
            store.commit_blob_file(&t, &digest)?;
        }
        return Ok(Layer::gzip(digest, size, diff_id));
    }
    write_layer(store, |w, tmp| {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = r.read(&mut buf).map_err(io_err("read", path))?;
            if k == 0 {
                return Ok(());
            }
            w.write_all(&buf[..k]).map_err(io_err("write", tmp))?;
        }
    })
}

/// The one place a layer blob is made: `fill` writes the uncompressed tar stream (given the
/// temp file's path for its messages), which is hashed as it goes (the diff ID), gzipped,
/// hashed again (the digest) and committed to the store once complete.
pub fn write_layer(
    store: &Store,
    fill: impl FnOnce(&mut dyn Write, &Path) -> Result<(), StoreError>,
) -> Result<Layer, StoreError> {
    let tmpd = store.tempdir("layer")?;
    let tmp = tmpd.path.join("layer.tar.gz");
    let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let outer = HashWriter::new(io::BufWriter::new(f));
    let gz = GzEncoder::new(outer, Compression::new(6));
    let mut inner = HashWriter::new(gz);
    fill(&mut inner, &tmp)?;
    let diff_id = inner.digest();
    let mut outer = inner.inner.finish().map_err(io_err("write", &tmp))?;
    outer.flush().map_err(io_err("write", &tmp))?;
    let size = outer.n;
    let digest = outer.digest();
    if !store.has_blob(&digest) {
        store.commit_blob_file(&tmp, &digest)?;
    }
    Ok(Layer::gzip(digest, size, diff_id))
}

/// The size of a layer unpacked, the sum of its files' sizes: what docker counts in an
/// image's SIZE (compressed sizes are what a registry transfers, not what the image takes).
/// Read from the layer once, then remembered in cache/sizes/<diff_id hex>.
pub fn unpacked_size(store: &Store, digest: &str, diff_id: &str) -> Result<u64, StoreError> {
    let rel = format!("cache/sizes/{}", diff_id.trim_start_matches("sha256:"));
    if let Some(n) = store.read_record::<u64>(&rel) {
        return Ok(n);
    }
    let p = store.blob_path(digest);
    let r = open_decompressed(&p).map_err(io_err("open", &p))?;
    let mut ar = tar::Archive::new(r);
    let mut n = 0u64;
    for e in ar.entries().map_err(io_err("read layer", &p))? {
        let e = e.map_err(io_err("read layer", &p))?;
        if e.header().entry_type().is_file() {
            n += e.size();
        }
    }
    store.write_record(&rel, &n)?;
    Ok(n)
}

/// The unpacked size of an image: the sum of its layers' (see [`unpacked_size`]).
pub fn image_size(store: &Store, img: &Image) -> Result<u64, StoreError> {
    let mut total = 0;
    for l in img.layers() {
        total += unpacked_size(store, &l.digest, &l.diff_id)?;
    }
    Ok(total)
}

/// Opens a layer blob as a decompressed stream (gzip, zstd, bzip2, xz or plain tar by magic).
pub fn open_decompressed(path: &Path) -> io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 6];
    let n = f.read(&mut magic)?;
    drop(f);
    let f = io::BufReader::new(File::open(path)?);
    let m = &magic[..n];
    Ok(if m.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if m.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(f)?)
    } else if m.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else if m.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new_multi_decoder(f))
    } else {
        Box::new(f)
    })
}

/// Whether the file is a tar archive, possibly compressed (ADD's auto-extraction test).
pub fn is_archive(path: &Path) -> bool {
    let Ok(r) = open_decompressed(path) else {
        return false;
    };
    let mut buf = vec![0u8; 512];
    let mut r = r;
    if r.read_exact(&mut buf).is_err() {
        return false;
    }
    // ustar magic at 257, or a valid header checksum
    if &buf[257..262] == b"ustar" {
        return true;
    }
    let h = tar::Header::from_byte_slice(&buf);
    h.cksum().ok() == Some(checksum(&buf)) && buf.iter().any(|&b| b != 0)
}

fn checksum(b: &[u8]) -> u32 {
    b.iter().enumerate().map(|(i, &x)| if (148..156).contains(&i) { 32 } else { x as u32 }).sum()
}

fn clean_entry_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => return None,
            _ => {}
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// How `.wh.` entries are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// Convert to overlay whiteouts (char 0/0, opaque xattr): a snapshot for lowerdir.
    Overlay,
    /// Delete what they name: a flat rootfs.
    Apply,
    /// Extract them as ordinary files (ADD of a local archive).
    Keep,
}

/// Extracts a tar stream into `dst`.
pub fn extract<R: Read>(r: R, dst: &Path, wh: Whiteouts) -> io::Result<()> {
    let mut ar = tar::Archive::new(r);
    ar.set_preserve_permissions(true);
    // owners are set below, read as Go's archive/tar reads them (the tar crate refuses a blank
    // uid or gid field, which some writers leave)
    ar.set_preserve_ownerships(false);
    // times are set below, from a PAX `mtime` record when there is one (the tar crate reads only
    // the header field, and makes a 0 there 1)
    ar.set_preserve_mtime(false);
    ar.set_unpack_xattrs(true);
    ar.set_overwrite(true);
    let mut this_layer: HashSet<PathBuf> = HashSet::new();
    // directories and their mtimes, set once the layer is in: what is written into a directory
    // after its entry changes its mtime (moby's archive package defers them likewise)
    let mut dir_times: Vec<(PathBuf, (i64, i64))> = Vec::new();
    // resolved once: no entry can replace `dst` itself (entry paths are cleaned to names in it)
    let root = dst.canonicalize()?;
    for e in ar.entries()? {
        let mut e = e?;
        let Some(rel) = clean_entry_path(&e.path()?) else {
            continue;
        };
        let name = rel.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        // Everything below acts on `pdir`, never on a path that a symlink could lead out of dst.
        let pdir = parent_inside(&root, &parent, &rel)?;
        if wh != Whiteouts::Keep && name.starts_with(WH_PREFIX) {
            if name == WH_OPAQUE {
                if wh == Whiteouts::Overlay {
                    crate::sys::lsetxattr(&pdir, crate::userns::opaque_xattr(), b"y")?;
                } else {
                    for c in fs::read_dir(&pdir)? {
                        let c = c?;
                        if !this_layer.contains(&parent.join(c.file_name())) {
                            remove_any(&c.path())?;
                        }
                    }
                }
            } else {
                let target = pdir.join(&name[WH_PREFIX.len()..]);
                remove_any(&target)?;
                if wh == Whiteouts::Overlay {
                    nix::sys::stat::mknod(&target, nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
                        .map_err(io::Error::from)?;
                }
            }
            continue;
        }
        let target = pdir.join(&name);
        let et = e.header().entry_type();
        let mtime = entry_mtime(&mut e)?;
        if let Ok(md) = fs::symlink_metadata(&target) {
            if md.is_dir() && !et.is_dir() {
                fs::remove_dir_all(&target)?;
            } else if !md.is_dir() && et.is_dir() {
                fs::remove_file(&target)?;
            }
        }
        this_layer.insert(rel.clone());
        if et.is_hard_link() {
            let link = e.link_name()?.map(|l| l.into_owned()).unwrap_or_default();
            let src = hardlink_source(&root, &link, &rel)?;
            if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                fs::remove_file(&target)?;
            }
            fs::hard_link(&src, &target).map_err(|err| {
                let msg = format!("archive entry {}: hard link to {}: {err}", rel.display(), link.display());
                io::Error::new(err.kind(), msg)
            })?;
            continue;
        }
        if et.is_character_special() || et.is_block_special() || et.is_fifo() {
            let _ = fs::remove_file(&target);
            let kind = if et.is_fifo() {
                nix::sys::stat::SFlag::S_IFIFO
            } else if et.is_character_special() {
                nix::sys::stat::SFlag::S_IFCHR
            } else {
                nix::sys::stat::SFlag::S_IFBLK
            };
            let h = e.header();
            // A fifo has no numbers; writers leave the fields blank (NULs), as Go's reader allows.
            let dev = if et.is_fifo() {
                0
            } else {
                nix::sys::stat::makedev(h.device_major()?.unwrap_or(0) as u64, h.device_minor()?.unwrap_or(0) as u64)
            };
            let mode = nix::sys::stat::Mode::from_bits_truncate(h.mode()? & 0o7777);
            match nix::sys::stat::mknod(&target, kind, mode, dev) {
                Ok(()) => {}
                // a user namespace cannot make device nodes: skipped there, as moby's archive
                // package and containers/storage skip them rootless
                Err(nix::errno::Errno::EPERM) if !et.is_fifo() && crate::userns::in_userns() => continue,
                Err(e) => return Err(io::Error::from(e)),
            }
            let (uid, gid) = owner(h)?;
            let _ = nix::unistd::fchownat(
                None,
                &target,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            set_time(&target, mtime)?;
            continue;
        }
        if !e.unpack_in(dst)? {
            continue;
        }
        if et.is_dir() {
            dir_times.push((target.clone(), mtime));
        }
        let (uid, gid) = owner(e.header())?;
        let mode = e.header().mode();
        let md = fs::symlink_metadata(&target)?;
        let chown = (md.uid(), md.gid()) != (uid, gid);
        if chown {
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))
                .map_err(|err| io::Error::new(err.kind(), format!("chown {}: {err}", rel.display())))?;
            // chown drops a file capability the tar crate set: put back the entry's
            if !et.is_symlink() {
                if let Some(exts) = e.pax_extensions()? {
                    for x in exts.flatten() {
                        if x.key() == Ok("SCHILY.xattr.security.capability") {
                            crate::sys::lsetxattr(&target, "security.capability", x.value_bytes())?;
                        }
                    }
                }
            }
        }
        // chown clears set-id bits, so such a mode is applied again; a blank mode (which the
        // tar crate skips) is 0, as in Go
        let setid = chown && mode.as_ref().is_ok_and(|m| m & 0o6000 != 0);
        if !et.is_symlink() && (setid || mode.is_err()) {
            let mode = numeric(&e.header().as_old().mode, mode.map(u64::from))? as u32 & 0o7777;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        }
        if !et.is_dir() {
            set_time(&target, mtime)?;
        }
    }
    for (dir, t) in dir_times.iter().rev() {
        if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
            set_time(dir, *t)?;
        }
    }
    Ok(())
}

/// A numeric header field as Go's archive/tar (and so BuildKit and docker) reads it: one left
/// blank (spaces and NULs only, as some writers leave uid, gid or mode) is 0; anything else
/// is what the tar crate parsed, or its error.
fn numeric(field: &[u8], parsed: io::Result<u64>) -> io::Result<u64> {
    match parsed {
        Err(_) if field.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        r => r,
    }
}

/// An entry's owner (pax `uid`/`gid` records already applied by the tar crate).
fn owner(h: &tar::Header) -> io::Result<(u32, u32)> {
    let o = h.as_old();
    let id = |n: u64, what: &str| {
        u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{what} {n} is too large")))
    };
    Ok((id(numeric(&o.uid, h.uid())?, "uid")?, id(numeric(&o.gid, h.gid())?, "gid")?))
}

/// Where a hard link entry's target is, as docker's archive package finds it: the link name is
/// relative to `dst` even when absolute (`/etc/shadow` is `dst/etc/shadow`, as kaniko writes
/// them), a name whose `..` climbs above `dst` is refused, and the directories on the way are
/// resolved as `parent_inside` does but never made. The last component is not followed: a link
/// to a symlink links the symlink, as link(2) does. `root` is `dst`, canonical.
fn hardlink_source(root: &Path, link: &Path, entry: &Path) -> io::Result<PathBuf> {
    let refuse = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("archive entry {}: hard link target {} {why}", entry.display(), link.display()),
        )
    };
    let mut clean = PathBuf::new();
    for c in link.components() {
        match c {
            std::path::Component::Normal(n) => clean.push(n),
            // the guard pops one component; with none left the link climbs out
            std::path::Component::ParentDir if !clean.pop() => return Err(refuse("is outside the destination")),
            _ => {}
        }
    }
    let Some(name) = clean.file_name().map(|n| n.to_os_string()) else {
        return Err(refuse("names the destination itself"));
    };
    let parent = clean.parent().map(Path::to_path_buf).unwrap_or_default();
    let what = format!("archive entry {}: hard link target {}", entry.display(), link.display());
    Ok(resolve_parent(root, &parent, &what, false)?.join(name))
}

/// The real directory an entry's parent names, made if missing. Each component is checked once
/// it exists: one that resolves (through a symlink from this archive or already on disk) outside
/// `dst` is refused, as the tar crate's `unpack_in` refuses it for the entries it writes.
/// `root` is `dst`, canonical.
fn parent_inside(root: &Path, parent: &Path, entry: &Path) -> io::Result<PathBuf> {
    resolve_parent(root, parent, &format!("archive entry {}", entry.display()), true)
}

/// `parent_inside`'s walk; `what` starts each error message, `create` makes missing directories.
/// `root` is the destination, canonical (resolved once per archive: `canonicalize` costs a
/// readlink per component of the path, and a base layer has thousands of entries).
fn resolve_parent(root: &Path, parent: &Path, what: &str, create: bool) -> io::Result<PathBuf> {
    let mut cur = root.to_path_buf();
    for c in parent.components() {
        let next = cur.join(c);
        let real_dir = match fs::symlink_metadata(&next) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::create_dir(&next)?;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let msg = format!("{what}: {}: {e}", c.as_os_str().to_string_lossy());
                return Err(io::Error::new(e.kind(), msg));
            }
            Err(e) => return Err(e),
            Ok(md) => md.is_dir(),
        };
        // A directory (not a symlink) named by one plain component of a canonical directory is
        // canonical itself, and inside `root`: only a symlink needs resolving and checking.
        if real_dir {
            cur = next;
            continue;
        }
        let real = next.canonicalize()?;
        if !real.starts_with(root) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what}: {} leads outside the destination", c.as_os_str().to_string_lossy()),
            ));
        }
        if !real.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what}: {} is not a directory", c.as_os_str().to_string_lossy()),
            ));
        }
        cur = real;
    }
    Ok(cur)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The extracted snapshot dir of a layer (an overlay lowerdir), extracting it on first use.
/// The snapshot is synced before it is renamed into `snapshots/` (store/tree.rs), so one found
/// there is whole.
pub fn snapshot(store: &Store, layer: &Layer) -> Result<PathBuf, StoreError> {
    let hex = layer.diff_id.trim_start_matches("sha256:");
    let dir = store.root.join("snapshots").join(hex);
    if dir.exists() {
        return Ok(dir);
    }
    // stages that run at once often start from the same base: one extracts a layer while the
    // others wait for it (each extracting it too doubled the work on the cores they share)
    let lock = {
        static BUSY: std::sync::Mutex<BTreeMap<String, std::sync::Arc<std::sync::Mutex<()>>>> =
            std::sync::Mutex::new(BTreeMap::new());
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        busy.entry(hex.to_string()).or_default().clone()
    };
    let _one = lock.lock().unwrap_or_else(|p| p.into_inner());
    if dir.exists() {
        return Ok(dir);
    }
    let tmp = store.tempdir("snap")?;
    let root = tmp.path.join("fs");
    fs::create_dir_all(&root).map_err(io_err("create", &root))?;
    let blob = store.blob_path(&layer.digest);
    let r = open_decompressed(&blob).map_err(io_err("open", &blob))?;
    // snapshots are shared by diff_id, so a layer whose content is not the diff_id its
    // config claims (a pulled image's config is the registry's word) must not become one
    let mut r = HashReader { inner: r, hash: Sha256::new() };
    extract(&mut r, &root, Whiteouts::Overlay).map_err(io_err("extract layer", &blob))?;
    io::copy(&mut r, &mut io::sink()).map_err(io_err("read", &blob))?;
    let got = format!("sha256:{}", hex::encode(r.hash.finalize()));
    if got != layer.diff_id {
        return Err(StoreError::Io {
            op: "extract layer",
            path: blob,
            err: io::Error::other(format!(
                "its content has diff_id {got}, not the {} the image config names",
                layer.diff_id
            )),
        });
    }
    // another build may win the race: its tree is the same content
    store.publish_tree(&root, &dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A tar whose first entry is a symlink `esc` to `outside`, then `next` (path, type) under it.
    fn escaping_tar(outside: &Path, next: &str, kind: tar::EntryType) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut l = tar::Header::new_gnu();
        l.set_path("esc").unwrap();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_link_name(outside).unwrap();
        l.set_uid(0);
        l.set_gid(0);
        l.set_mtime(0);
        l.set_mode(0o777);
        l.set_size(0);
        l.set_cksum();
        b.append(&l, &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_path(next).unwrap();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Go's archive/tar reads a blank numeric field as 0 (`parseOctal` trims spaces and NULs):
    /// uid and gid left blank (NULs, spaces) are root's, a blank mode is 0000; the tar crate's
    /// own readers refuse them. Set-id bits survive the chown.
    #[test]
    fn blank_numeric_fields_read_as_zero() {
        let mut b = tar::Builder::new(Vec::new());
        for (path, mode, blank_mode, fill) in
            [("nul", 0o640, false, 0u8), ("space", 0o4755, false, b' '), ("nomode", 0, true, 0u8)]
        {
            let mut h = tar::Header::new_ustar();
            h.set_path(path).unwrap();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(2);
            h.set_mtime(1);
            h.set_mode(mode);
            let o = h.as_old_mut();
            o.uid = [fill; 8];
            o.gid = [fill; 8];
            if blank_mode {
                o.mode = [0; 8];
            }
            h.set_cksum();
            b.append(&h, &b"x\n"[..]).unwrap();
        }
        // a set-id file of another owner keeps its bits through the chown
        let mut h = tar::Header::new_ustar();
        h.set_path("owned").unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(2);
        h.set_mode(0o6750);
        h.set_uid(1000);
        h.set_gid(50);
        h.set_cksum();
        b.append(&h, &b"x\n"[..]).unwrap();
        let data = b.into_inner().unwrap();
        assert!(tar::Header::from_byte_slice(&data[..512]).uid().is_err(), "the tar crate refuses it");
        let dst = tempfile::tempdir().unwrap();
        extract(&data[..], dst.path(), Whiteouts::Keep).unwrap();
        for (path, mode, uid, gid) in
            [("nul", 0o640, 0, 0), ("space", 0o4755, 0, 0), ("nomode", 0, 0, 0), ("owned", 0o6750, 1000, 50)]
        {
            let md = fs::symlink_metadata(dst.path().join(path)).unwrap();
            assert_eq!((md.uid(), md.gid(), md.mode() & 0o7777), (uid, gid, mode), "{path}");
        }
    }

    #[test]
    fn entries_through_a_symlink_out_of_the_destination_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("victim"), "keep").unwrap();
        let cases = [
            ("esc/.wh.victim", tar::EntryType::Regular, Whiteouts::Apply),
            ("esc/.wh.victim", tar::EntryType::Regular, Whiteouts::Overlay),
            ("esc/.wh..wh..opq", tar::EntryType::Regular, Whiteouts::Apply),
            ("esc/fifo", tar::EntryType::Fifo, Whiteouts::Keep),
            ("esc/victim", tar::EntryType::Directory, Whiteouts::Keep),
            ("esc/sub/file", tar::EntryType::Regular, Whiteouts::Keep),
            ("esc/file", tar::EntryType::Regular, Whiteouts::Keep),
        ];
        for (next, kind, wh) in cases {
            let dst = tempfile::tempdir().unwrap();
            let data = escaping_tar(outside.path(), next, kind);
            let err = extract(&data[..], dst.path(), wh).expect_err(next);
            let err = format!("{err} {:?}", std::error::Error::source(&err));
            assert!(err.to_string().contains("outside"), "{next}: {err}");
            let names: Vec<_> = fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names, ["victim"], "{next} ({wh:?}) touched the outside directory");
            assert_eq!(fs::read_to_string(outside.path().join("victim")).unwrap(), "keep");
        }
    }

    #[test]
    fn zstd_layers_decompress() {
        // OCI's tar+zstd layers (containerd and buildah push them) read like gzip ones
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let data = escaping_tar(Path::new("/x"), "f", tar::EntryType::Regular);
        fs::write(&p, zstd::encode_all(&data[..], 3).unwrap()).unwrap();
        let mut out = Vec::new();
        open_decompressed(&p).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert!(is_archive(&p));
    }

    fn tar_names(data: &[u8]) -> Vec<(String, tar::EntryType, u32)> {
        let mut ar = tar::Archive::new(data);
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().to_string(), e.header().entry_type(), e.header().mode().unwrap())
            })
            .collect()
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("a", b"b"), b"6 a=b\n");
        let r = pax_record("SCHILY.xattr.security.capability", &[1u8; 20]);
        let n: usize = std::str::from_utf8(&r[..r.iter().position(|&c| c == b' ').unwrap()]).unwrap().parse().unwrap();
        assert_eq!(n, r.len());
        let long = pax_record("k", &[0u8; 95]);
        assert_eq!(long.len(), 102);
        assert!(long.starts_with(b"102 "));
    }

    #[test]
    fn times_before_1970_go_in_a_pax_record_and_come_back() {
        // Go's archive/tar (BuildKit's layers and tar outputs) writes a time the octal field
        // cannot hold as a PAX `mtime` record and 0 in the field; its reader takes the record
        assert_eq!(header_mtime(1_700_000_000), (1_700_000_000, Vec::new()));
        assert_eq!(header_mtime(0), (0, Vec::new()));
        assert_eq!(header_mtime(-86400), (0, b"16 mtime=-86400\n".to_vec()));
        // parsePAXTime: a fraction takes the sign of the seconds
        assert_eq!(pax_time("-86400"), Some((-86400, 0)));
        assert_eq!(pax_time("-1.5"), Some((-1, -500_000_000)));
        assert_eq!(pax_time("12.000000001999"), Some((12, 1)));
        assert_eq!(pax_time("1e3"), None);
        assert_eq!(pax_time("1.x"), None);

        let mut b = tar::Builder::new(Vec::new());
        // (path, is a dir, the PAX record's value or none, the header's time)
        let rows: &[(&str, bool, Option<&str>, u64)] = &[
            ("d", true, Some("-86400"), 0),
            ("d/f", false, Some("-86400"), 0),
            ("d/frac", false, Some("-1.5"), 0),
            ("d/zero", false, None, 0),
            ("d/new", false, None, 1_700_000_000),
        ];
        for (path, dir, rec, field) in rows {
            if let Some(v) = rec {
                append_pax(&mut b, &pax_record("mtime", v.as_bytes()), *field).unwrap();
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if *dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
            h.set_mode(0o755);
            h.set_mtime(*field);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty()).unwrap();
        }
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_mode(0o777);
        l.set_size(0);
        append_pax(&mut b, &header_mtime(-7).1, 0).unwrap();
        b.append_link(&mut l, "d/l", "f").unwrap();
        // GNU tar's own form of such a time: base-256 two's complement in the header field
        let mut g = tar::Header::new_gnu();
        g.set_entry_type(tar::EntryType::Regular);
        g.set_mode(0o644);
        g.set_size(0);
        g.as_gnu_mut().unwrap().mtime = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xae, 0x80];
        b.append_data(&mut g, "d/gnu", io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        // the tar crate reads the record as the entry's, and leaves the header at 0
        let mut ar = tar::Archive::new(&data[..]);
        let mut e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().mtime().unwrap(), 0);
        assert_eq!(entry_mtime(&mut e).unwrap(), (-86400, 0));
        for wh in [Whiteouts::Apply, Whiteouts::Overlay, Whiteouts::Keep] {
            let t = tempfile::tempdir().unwrap();
            extract(&data[..], t.path(), wh).unwrap();
            let m = |p: &str| {
                let md = fs::symlink_metadata(t.path().join(p)).unwrap();
                (md.mtime(), md.mtime_nsec())
            };
            assert_eq!(m("d"), (-86400, 0), "{wh:?}");
            assert_eq!(m("d/f"), (-86400, 0), "{wh:?}");
            assert_eq!(m("d/frac"), (-2, 500_000_000), "{wh:?}");
            // 0 stays 0 (the tar crate's own unpacking makes it 1)
            assert_eq!(m("d/zero"), (0, 0), "{wh:?}");
            assert_eq!(m("d/new"), (1_700_000_000, 0), "{wh:?}");
            assert_eq!(m("d/l"), (-7, 0), "{wh:?}");
            assert_eq!(m("d/gnu"), (-86400, 0), "{wh:?}");
        }
    }

    #[test]
    fn a_layer_clamped_before_1970_is_reproducible_and_reads_back() {
        // SOURCE_DATE_EPOCH=-86400 with rewrite-timestamp: every entry -86400, as a PAX record
        // (a file with a capability keeps one header, its xattr record first, as Go sorts)
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        fs::create_dir_all(u.join("d")).unwrap();
        fs::write(u.join("d/f"), "x").unwrap();
        std::os::unix::fs::symlink("f", u.join("d/l")).unwrap();
        // a v2 capability: cap_net_bind_service permitted and effective
        const CAP: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut plan = plan_diff(u).unwrap();
        plan[1].xattrs.push(("security.capability".into(), CAP.to_vec()));
        let data = write_tar(&plan, Mtimes::Clamp(-86400), Vec::new()).unwrap();
        assert_eq!(
            data,
            write_tar(
                &plan_diff(u)
                    .unwrap()
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut e)| {
                        if i == 1 {
                            e.xattrs.push(("security.capability".into(), CAP.to_vec()));
                        }
                        e
                    })
                    .collect::<Vec<_>>(),
                Mtimes::Clamp(-86400),
                Vec::new()
            )
            .unwrap(),
            "deterministic"
        );
        let mut ar = tar::Archive::new(&data[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let recs: Vec<(String, Vec<u8>)> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|x| x.unwrap())
                .map(|x| (x.key().unwrap().to_string(), x.value_bytes().to_vec()))
                .collect();
            let keys: Vec<&str> = recs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys.last(), Some(&"mtime"));
            assert_eq!(recs.last().unwrap().1, b"-86400");
            assert_eq!(e.header().mtime().unwrap(), 0);
            seen.push((e.path().unwrap().to_string_lossy().into_owned(), keys.len()));
        }
        assert_eq!(seen, [("d".to_string(), 1), ("d/f".to_string(), 2), ("d/l".to_string(), 1)]);
        let out = tempfile::tempdir().unwrap();
        extract(&data[..], out.path(), Whiteouts::Apply).unwrap();
        for p in ["d", "d/f", "d/l"] {
            assert_eq!(fs::symlink_metadata(out.path().join(p)).unwrap().mtime(), -86400, "{p}");
        }
        // and a file of the disk with such a time is planned with it
        assert!(plan_diff(out.path()).unwrap().iter().all(|e| e.mtime == Some(-86400)));
    }

    #[test]
    fn extract_keeps_the_times_of_directories_written_into() {
        // a directory's entry comes before its children: their writes must not leave the
        // directory the extraction's time (moby's archive package sets them last too)
        let mut b = tar::Builder::new(Vec::new());
        for (path, dir, t) in [("d", true, 1_000u64), ("d/e", true, 2_000), ("d/e/f", false, 3_000)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
            h.set_mode(0o755);
            h.set_mtime(t);
            h.set_size(0);
            b.append_data(&mut h, path, io::empty()).unwrap();
        }
        let data = b.into_inner().unwrap();
        for wh in [Whiteouts::Apply, Whiteouts::Overlay] {
            let t = tempfile::tempdir().unwrap();
            extract(&data[..], t.path(), wh).unwrap();
            let m = |p: &str| fs::symlink_metadata(t.path().join(p)).unwrap().mtime();
            assert_eq!((m("d"), m("d/e"), m("d/e/f")), (1_000, 2_000, 3_000), "{wh:?}");
        }
    }

    #[test]
    fn a_rewritten_layer_is_the_layer_a_build_of_those_times_writes() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(&t.path().join("store")).unwrap();
        let u = t.path().join("upper");
        let long = "d".repeat(60);
        fs::create_dir_all(u.join(&long).join(&long)).unwrap();
        fs::write(u.join(&long).join(&long).join("f"), "long name\n").unwrap();
        fs::write(u.join("a"), "a\n").unwrap();
        fs::hard_link(u.join("a"), u.join("b")).unwrap();
        std::os::unix::fs::symlink("x".repeat(150), u.join("l")).unwrap();
        nix::unistd::mkfifo(&u.join("p"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        fs::write(u.join("w"), "").unwrap();
        let mut plan = plan_diff(&u).unwrap();
        // times before, between and after the clamps, one of the source's own, one with none,
        // one before 1970 (a PAX record), a capability (a PAX record too), a whiteout
        for (i, e) in plan.iter_mut().enumerate() {
            e.mtime = [Some(1_800_000_000), Some(50), None, Some(-86400), Some(150)].get(i % 5).copied().flatten();
        }
        plan[1].own_mtime = true;
        plan[2].xattrs.push(("security.capability".into(), vec![1, 0, 0, 2, 0x20, 0, 0, 0]));
        plan.push(Entry {
            path: ".wh.gone".into(),
            kind: Kind::Whiteout,
            mode: 0o600,
            uid: 0,
            gid: 0,
            size: 0,
            source: None,
            xattrs: vec![],
            mtime: Some(1_900_000_000),
            own_mtime: false,
        });
        let kept = commit_layer(&store, &plan, Mtimes::Kept(None)).unwrap();
        let own = own_times(&store, &kept.diff_id).unwrap();
        assert_eq!(own.len(), 1);
        // (the layer's times, what they become): every derivation a build uses
        for (from, to) in [
            (Mtimes::Kept(None), Mtimes::Clamp(100)),
            (Mtimes::Kept(None), Mtimes::Clamp(-100_000)),
            (Mtimes::Kept(None), Mtimes::Zero),
            (Mtimes::Clamp(1_000), Mtimes::Clamp(100)),
            (Mtimes::Clamp(100), Mtimes::Clamp(100)),
        ] {
            let l = if from == Mtimes::Kept(None) { kept.clone() } else { commit_layer(&store, &plan, from).unwrap() };
            let again = rewrite_layer(&store, &l, &|p, t| to.from_layer(from, t, own.contains(p))).unwrap();
            assert_eq!(again, commit_layer(&store, &plan, to).unwrap(), "{from:?} -> {to:?}");
        }
        // a layer another tool wrote is refused (here: one more zero block at its end)
        let mut tar = write_tar(&plan, Mtimes::Zero, Vec::new()).unwrap();
        tar.extend([0u8; 512]);
        let other = write_layer(&store, |w, _| w.write_all(&tar).map_err(io_err("write", Path::new("x")))).unwrap();
        let e = rewrite_layer(&store, &other, &|_, t| t).unwrap_err().to_string();
        assert!(e.contains("do not encode back to its diff ID"), "{e}");
    }

    #[test]
    fn mtimes_as_rewrite_timestamp_says() {
        let e = |mtime: Option<i64>, own_mtime: bool| Entry {
            path: "f".into(),
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            source: None,
            xattrs: Vec::new(),
            mtime,
            own_mtime,
        };
        const NOW: i64 = 1_800_000_000;
        // (mode, the entry's time, a time of its own, the layer's)
        for (m, t, own, want) in [
            // slipway's default without SOURCE_DATE_EPOCH: 0, but Last-Modified / a commit's time stays
            (Mtimes::Zero, Some(1_750_000_000), false, 0),
            (Mtimes::Zero, None, false, 0),
            (Mtimes::Zero, Some(1_600_000_000), true, 1_600_000_000),
            // rewrite-timestamp=true: BuildKit clamps every header, own times too (converter.go)
            (Mtimes::Clamp(1_700_000_000), Some(1_750_000_000), false, 1_700_000_000),
            (Mtimes::Clamp(1_700_000_000), Some(1_500_000_000), false, 1_500_000_000),
            (Mtimes::Clamp(1_700_000_000), Some(1_750_000_000), true, 1_700_000_000),
            (Mtimes::Clamp(1_700_000_000), None, false, 1_700_000_000),
            // SOURCE_DATE_EPOCH before 1970: every time clamped to it, as BuildKit's
            (Mtimes::Clamp(-86400), Some(1_750_000_000), false, -86400),
            (Mtimes::Clamp(-86400), Some(-90000), false, -90000),
            (Mtimes::Clamp(-86400), Some(-100), true, -86400),
            (Mtimes::Clamp(-86400), None, false, -86400),
            (Mtimes::Zero, Some(-100), true, -100),
            // rewrite-timestamp=false: the file's time; one with none is written now
            (Mtimes::Kept(Some(1_700_000_000)), Some(1_750_000_000), false, 1_750_000_000),
            (Mtimes::Kept(None), Some(1_500_000_000), true, 1_500_000_000),
            (Mtimes::Kept(None), None, false, NOW),
        ] {
            assert_eq!(m.of(&e(t, own), NOW), want, "{m:?} {t:?} own={own}");
        }
        // the three modes (and each clamp time) key apart; the default keeps its old key
        let keys: std::collections::BTreeSet<String> =
            [Mtimes::Zero, Mtimes::Clamp(1), Mtimes::Clamp(-1), Mtimes::Kept(None), Mtimes::Kept(Some(-1))]
                .iter()
                .map(|m| m.key())
                .collect();
        assert_eq!(keys.len(), 5);
        assert_eq!(Mtimes::Zero.key(), "mtime=0");
    }

    #[test]
    fn diff_is_sorted_and_converts_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let u = t.path();
        fs::create_dir_all(u.join("b/c")).unwrap();
        fs::write(u.join("a.txt"), "x").unwrap();
        fs::write(u.join("b/c/f"), "y").unwrap();
        fs::hard_link(u.join("b/c/f"), u.join("b/g")).unwrap();
        fs::set_permissions(u.join("a.txt"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("../a.txt", u.join("b/l")).unwrap();
        nix::sys::stat::mknod(&u.join("b/gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        crate::sys::lsetxattr(&u.join("b/c"), crate::userns::opaque_xattr(), b"y").unwrap();
        let plan = plan_diff(u).unwrap();
        let paths: Vec<&str> = plan.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b", "b/c", "b/c/.wh..wh..opq", "b/c/f", "b/g", "b/.wh.gone", "b/l"]);
        assert_eq!(plan[5].kind, Kind::Hardlink("b/c/f".into()));
        let data = write_tar(&plan, Mtimes::Zero, Vec::new()).unwrap();
        let again = write_tar(&plan_diff(u).unwrap(), Mtimes::Zero, Vec::new()).unwrap();
        assert_eq!(data, again, "deterministic");
        let names = tar_names(&data);
        assert_eq!(names[0].2, 0o4755);
        assert_eq!(names[5].1, tar::EntryType::Link);

        // round trip into an overlay snapshot and a flat tree
        let snap = tempfile::tempdir().unwrap();
        extract(&data[..], snap.path(), Whiteouts::Overlay).unwrap();
        let md = fs::symlink_metadata(snap.path().join("b/gone")).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0);
        assert_eq!(
            crate::sys::lgetxattr(&snap.path().join("b/c"), crate::userns::opaque_xattr()).unwrap(),
            Some(b"y".to_vec())
        );
        let flat = tempfile::tempdir().unwrap();
        fs::create_dir_all(flat.path().join("b/c")).unwrap();
        fs::write(flat.path().join("b/gone"), "old").unwrap();
        fs::write(flat.path().join("b/c/old"), "old").unwrap();
        extract(&data[..], flat.path(), Whiteouts::Apply).unwrap();
        assert!(!flat.path().join("b/gone").exists());
        assert!(!flat.path().join("b/c/old").exists());
        assert!(flat.path().join("b/c/f").exists());
        assert_eq!(fs::read_link(flat.path().join("b/l")).unwrap(), Path::new("../a.txt"));
    }
}
