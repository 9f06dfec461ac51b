//! Files at http(s) URLs for ADD, fetched and cached as BuildKit's http source does. The
//! content is kept as a blob of the store (named by its sha256) and each URL has a record,
//! `cache/http/<sha256 of the URL>.json`, of what it served: ETag, digest, Last-Modified.
//! Planning a step asks the server again every build (`resolve`): with a remembered ETag a
//! `HEAD` with `If-None-Match` whose answer names a remembered ETag (or is a 304) reuses that
//! content without downloading it; otherwise a `GET` (a 304 reuses as well) downloads it and
//! the content's digest is the step's key, so an unchanged file served anew still hits the
//! cache. With `ADD --checksum` nothing is asked to plan (`fetch` downloads on a miss, or takes
//! a blob the store has, and checks the checksum). Client: ureq with rustls over the system
//! roots, as the registry code (`registry::tls`), proxies from the environment.

use super::FetchError;
use crate::store::{HashWriter, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::io::{Read, Write};

/// What a URL served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The ETag header as sent (quotes and `W/` included), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// sha256 of the content: the blob's name.
    pub digest: String,
    /// Last-Modified, in seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
    /// sha384/sha512 digests of the content that `--checksum` asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checksums: Vec<String>,
}

/// How many contents of one URL are remembered.
const KEEP: usize = 8;

fn record_path(url: &str) -> String {
    format!("cache/http/{}.json", hex::encode(Sha256::digest(url.as_bytes())))
}

fn records(store: &Store, url: &str) -> Vec<Record> {
    store.read_record::<Vec<Record>>(&record_path(url)).unwrap_or_default()
}

fn remember(store: &Store, url: &str, r: Record) -> Result<(), FetchError> {
    let mut all = records(store, url);
    all.retain(|o| o.digest != r.digest || o.etag != r.etag);
    all.insert(0, r);
    all.truncate(KEEP);
    store.write_record(&record_path(url), &all).map_err(|e| FetchError(format!("record {url}: {e}")))
}

/// ETags compared as BuildKit compares them (a weak one as its strong form).
fn etag_value(v: &str) -> &str {
    v.strip_prefix("W/").unwrap_or(v)
}

fn agent(url: &str) -> Result<ureq::Agent, FetchError> {
    let host = url.split_once("://").map_or(url, |(_, r)| r).split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let (tls, _) = crate::registry::tls::config(host, None, true).map_err(|e| FetchError(format!("{url}: {e}")))?;
    Ok(crate::registry::client::agent(tls))
}

type Resp = ureq::http::Response<ureq::Body>;

fn header(r: &Resp, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn last_modified(r: &Resp) -> Option<i64> {
    parse_last_modified(&header(r, "last-modified")?)
}

/// An HTTP date as Go's `http.ParseTime` (BuildKit's http source) reads it: httpdate's, whose
/// years start at 1970, else one before 1970 read here in the same three forms: IMF-fixdate
/// `Wed, 31 Dec 1969 00:00:00 GMT`, RFC 850 `Wednesday, 31-Dec-69 00:00:00 GMT` (a two-digit
/// year 69-99 is 19xx, 00-68 20xx, as Go's time.Parse takes it) and asctime
/// `Wed Dec 31 00:00:00 1969`.
fn parse_last_modified(v: &str) -> Option<i64> {
    if let Ok(t) = httpdate::parse_http_date(v) {
        return t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs() as i64);
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let w: Vec<&str> = v.split_whitespace().collect();
    let (day, month, year, hms) = match w.as_slice() {
        [_, d, m, y, hms, "GMT"] => (*d, *m, y.parse::<i64>().ok()?, *hms),
        [_, dmy, hms, "GMT"] => {
            let mut p = dmy.splitn(3, '-');
            let (d, m, yy) = (p.next()?, p.next()?, p.next()?);
            let yy: i64 = (yy.len() == 2).then(|| yy.parse().ok()).flatten()?;
            (d, m, if yy >= 69 { 1900 + yy } else { 2000 + yy }, *hms)
        }
        [_, m, d, hms, y] => (*d, *m, y.parse::<i64>().ok()?, *hms),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    if hms.len() != 8 || !(0..=9999).contains(&year) {
        return None;
    }
    crate::images::parse_rfc3339(&format!("{year:04}-{month:02}-{day:02}T{hms}Z"))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        e => e.to_string(),
    }
}

/// The request, with `If-None-Match` for the ETags in `known`.
fn send(agent: &ureq::Agent, method: &str, url: &str, known: &[&Record]) -> Result<Resp, FetchError> {
    let etags: Vec<&str> = known.iter().filter_map(|r| r.etag.as_deref()).collect();
    let res = if method == "HEAD" {
        let mut req = agent.head(url);
        if !etags.is_empty() {
            req = req.header("If-None-Match", etags.join(", "));
        }
        req.call()
    } else {
        let mut req = agent.get(url);
        if !etags.is_empty() {
            req = req.header("If-None-Match", etags.join(", "));
        }
        req.call()
    };
    res.map_err(|e| FetchError(format!("{method} {url}: {}", describe(&e))))
}

/// The remembered content an answer (200 or 304) names by its ETag; a 304 without one names
/// the only ETag asked for.
fn matched<'a>(r: &Resp, known: &[&'a Record]) -> Option<&'a Record> {
    let status = r.status().as_u16();
    if status != 200 && status != 304 {
        return None;
    }
    let with_etag: Vec<&&Record> = known.iter().filter(|k| k.etag.is_some()).collect();
    match header(r, "etag") {
        Some(t) => with_etag.into_iter().find(|k| k.etag.as_deref().map(etag_value) == Some(etag_value(&t))).copied(),
        None if status == 304 && with_etag.len() == 1 => Some(with_etag[0]),
        None => None,
    }
}

/// A checksum as `--checksum` takes it (`sha256:`, `sha384:` or `sha512:` and hex).
pub fn parse_checksum(c: &str) -> Result<(String, String), String> {
    let (algo, hex) = c.split_once(':').ok_or_else(|| format!("invalid checksum digest format: {c:?}"))?;
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm {algo:?} (sha256, sha384 or sha512)")),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("invalid checksum digest format: {c:?}"));
    }
    Ok((algo.to_string(), hex.to_string()))
}

/// Streams a 2xx answer into the store: its sha256 digest names the blob; `extra` is another
/// algorithm (`sha384`, `sha512`) to hash it with too.
fn download(store: &Store, url: &str, r: Resp, extra: Option<&str>) -> Result<Record, FetchError> {
    let lm = last_modified(&r);
    let etag = header(&r, "etag");
    let tmpd = store.tempdir("fetch").map_err(|e| FetchError(e.to_string()))?;
    let tmp = tmpd.path.join("content");
    let f = std::fs::File::create(&tmp).map_err(|e| FetchError(format!("create {}: {e}", tmp.display())))?;
    let mut w = HashWriter::new(std::io::BufWriter::new(f));
    let (mut h384, mut h512) = (Sha384::new(), Sha512::new());
    let mut body = r.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| FetchError(format!("GET {url}: read the body: {e}")))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).map_err(|e| FetchError(format!("write {}: {e}", tmp.display())))?;
        match extra {
            Some("sha384") => h384.update(&buf[..n]),
            Some("sha512") => h512.update(&buf[..n]),
            _ => {}
        }
    }
    w.flush().map_err(|e| FetchError(format!("write {}: {e}", tmp.display())))?;
    let digest = w.digest();
    drop(w);
    let checksums = match extra {
        Some("sha384") => vec![format!("sha384:{}", hex::encode(h384.finalize()))],
        Some("sha512") => vec![format!("sha512:{}", hex::encode(h512.finalize()))],
        _ => Vec::new(),
    };
    if !store.has_blob(&digest) {
        store.commit_blob_file(&tmp, &digest).map_err(|e| FetchError(format!("store {url}: {e}")))?;
    }
    Ok(Record { etag, digest, last_modified: lm, checksums })
}

fn status_error(method: &str, url: &str, r: &Resp) -> FetchError {
    FetchError(format!("{method} {url}: invalid response status {}", r.status().as_u16()))
}

/// What `url` serves now, as planning a step without `--checksum` needs it: the content's
/// digest (a blob of the store afterwards) and Last-Modified. Remembered contents are
/// revalidated by ETag (`HEAD`, then a conditional `GET`), anything else is downloaded.
pub fn resolve(store: &Store, url: &str) -> Result<Record, FetchError> {
    let all = records(store, url);
    let known: Vec<&Record> = all.iter().filter(|r| r.etag.is_some() && store.has_blob(&r.digest)).collect();
    let agent = agent(url)?;
    if !known.is_empty() {
        // a failed HEAD is no answer: the GET below decides
        if let Ok(r) = send(&agent, "HEAD", url, &known) {
            if let Some(k) = matched(&r, &known) {
                return Ok(k.clone());
            }
        }
    }
    let r = send(&agent, "GET", url, &known)?;
    let status = r.status().as_u16();
    if status == 304 {
        return matched(&r, &known).cloned().ok_or_else(|| {
            FetchError(format!("GET {url}: 304 Not Modified names no ETag this store has ({:?})", header(&r, "etag")))
        });
    }
    if !(200..300).contains(&status) {
        return Err(status_error("GET", url, &r));
    }
    let rec = download(store, url, r, None)?;
    remember(store, url, rec.clone())?;
    Ok(rec)
}

/// The content of `url` that has `checksum` (`ADD --checksum`, or the sha256 digest planning
/// found when its blob has gone since): a blob the store has, else downloaded and checked.
pub fn fetch(store: &Store, url: &str, checksum: &str) -> Result<Record, FetchError> {
    let (algo, _) = parse_checksum(checksum).map_err(FetchError)?;
    let has = |r: &Record| r.digest == checksum || r.checksums.iter().any(|c| c == checksum);
    if let Some(r) = records(store, url).into_iter().find(|r| has(r) && store.has_blob(&r.digest)) {
        return Ok(r);
    }
    let agent = agent(url)?;
    let r = send(&agent, "GET", url, &[])?;
    if !(200..300).contains(&r.status().as_u16()) {
        return Err(status_error("GET", url, &r));
    }
    let rec = download(store, url, r, (algo != "sha256").then_some(algo.as_str()))?;
    if !has(&rec) {
        let got = rec.checksums.first().unwrap_or(&rec.digest);
        return Err(FetchError(format!("digest mismatch for {url}: {got} (expected: {checksum})")));
    }
    remember(store, url, rec.clone())?;
    Ok(rec)
}

/// The SOURCE_DATE_EPOCH of a downloaded URL, as BuildKit's frontend reads it: the
/// Last-Modified it was served with, else the newest regular file's mtime when it is a tar
/// archive, else none; with what it is, for the log.
pub fn time(store: &Store, rec: &Record) -> (Option<i64>, String) {
    if let Some(t) = rec.last_modified {
        return (Some(t), "its Last-Modified".to_string());
    }
    let newest = crate::layer::open_decompressed(&store.blob_path(&rec.digest)).ok().and_then(newest_file_time);
    match newest {
        Some(t) => (Some(t), "the mtime of the newest file of the archive (no Last-Modified)".to_string()),
        None => (None, "no Last-Modified, and not a tar archive with a file in it".to_string()),
    }
}

/// The mtime of the newest regular file of a tar archive (gzip, bzip2, xz, zstd or none),
/// as BuildKit's frontend reads SOURCE_DATE_EPOCH from a downloaded archive that came with
/// no Last-Modified (dockerfile2llb/epoch.go, archiveMaxTimeFromRef with allowNonArchive):
/// None when the file is no archive, cannot be read to its end, or holds no regular file.
/// "Regular" is Go's `FileInfo.Mode().IsRegular()` of a header: neither the type flag nor the
/// mode's type bits say directory, link, device, fifo or socket (a hard link counts).
pub fn newest_file_time(r: impl Read) -> Option<i64> {
    let mut a = tar::Archive::new(r);
    let mut newest: Option<i64> = None;
    for e in a.entries().ok()? {
        let mut e = e.ok()?;
        let pax = pax_mtime(&mut e.pax_extensions().ok().flatten());
        let h = e.header();
        let t = h.entry_type();
        let name_dir = e.path_bytes().ends_with(b"/");
        let special = t.is_dir()
            || t.is_symlink()
            || t.is_character_special()
            || t.is_block_special()
            || t.is_fifo()
            // Go's reader takes an old-style regular file ('\0') whose name ends in / as a directory
            || (t.as_byte() == 0 && name_dir);
        let type_bits = h.mode().ok().map_or(0, |m| m & 0o170000);
        // c_ISDIR, c_ISFIFO, c_ISLNK, c_ISBLK, c_ISCHR, c_ISSOCK
        let special_bits = matches!(type_bits, 0o040000 | 0o010000 | 0o120000 | 0o060000 | 0o020000 | 0o140000);
        if special || special_bits {
            continue;
        }
        let t = pax.or_else(|| h.mtime().ok().map(|m| m as i64))?;
        newest = Some(newest.map_or(t, |n| n.max(t)));
    }
    newest
}

/// A PAX `mtime` record (seconds, maybe with a fraction), floored to whole seconds.
fn pax_mtime(exts: &mut Option<tar::PaxExtensions<'_>>) -> Option<i64> {
    for x in exts.as_mut()?.flatten() {
        if x.key() == Ok("mtime") {
            let (s, n) = crate::layer::pax_time(x.value().ok()?)?;
            return Some(if n < 0 { s - 1 } else { s });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_as_go_reads_it() {
        // http.ParseTime: TimeFormat, RFC 850, ANSIC; before 1970 too (httpdate stops there)
        let rows = [
            ("Tue, 14 Nov 2023 22:13:20 GMT", Some(1_700_000_000)),
            ("Wed, 31 Dec 1969 00:00:00 GMT", Some(-86400)),
            ("Wednesday, 31-Dec-69 00:00:00 GMT", Some(-86400)),
            ("Wed Dec 31 00:00:00 1969", Some(-86400)),
            ("Wed Dec  3 00:00:00 1969", Some(-2_505_600)),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
            ("Mon, 01 Jan 1900 00:00:01 GMT", Some(-2_208_988_799)),
            ("Wed, 31 Dec 1969 00:00:00 UTC", None),
            ("Wed, 31 Foo 1969 00:00:00 GMT", None),
            ("Wed, 32 Dec 1969 00:00:00 GMT", None),
            ("Wed, 31 Dec 1969 00:00 GMT", None),
            ("yesterday", None),
        ];
        for (v, want) in rows {
            assert_eq!(parse_last_modified(v), want, "{v}");
        }
    }

    #[test]
    fn checksums_as_add_takes_them() {
        let h = "a".repeat(64);
        assert_eq!(parse_checksum(&format!("sha256:{h}")), Ok(("sha256".into(), h.clone())));
        assert!(parse_checksum(&format!("sha384:{}", "0".repeat(96))).is_ok());
        assert!(parse_checksum(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(parse_checksum("sha256:abc").unwrap_err().contains("invalid checksum digest format"));
        assert!(parse_checksum(&format!("md5:{}", "0".repeat(32))).unwrap_err().contains("unsupported"));
        assert!(parse_checksum(&h).is_err());
        assert!(parse_checksum(&format!("sha256:{}", "A".repeat(64))).is_err());
    }

    /// A tar of (path, type, mode, mtime) entries.
    fn tar_of(entries: &[(&str, tar::EntryType, u32, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, t, mode, mtime) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*t);
            h.set_mode(*mode);
            h.set_mtime(*mtime);
            h.set_size(0);
            if t.is_symlink() || t.is_hard_link() {
                b.append_link(&mut h, p, "a").unwrap();
            } else {
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn newest_regular_file_of_an_archive() {
        // epoch.go archiveMaxTimeFromRef: the newest mtime among the entries whose
        // FileInfo().Mode().IsRegular(); none for no archive or no regular file
        use tar::EntryType as T;
        type Entries<'a> = &'a [(&'a str, T, u32, u64)];
        let rows: &[(Entries, Option<i64>)] = &[
            (&[("a", T::Regular, 0o644, 10), ("b", T::Regular, 0o600, 30), ("c", T::Regular, 0o644, 20)], Some(30)),
            // a directory, a symlink, a fifo, a device: newer, not counted
            (
                &[
                    ("a", T::Regular, 0o644, 10),
                    ("d/", T::Directory, 0o755, 99),
                    ("l", T::Symlink, 0o777, 98),
                    ("f", T::Fifo, 0o644, 97),
                    ("c", T::Char, 0o644, 96),
                ],
                Some(10),
            ),
            // a hard link is regular to Go's reader
            (&[("a", T::Regular, 0o644, 10), ("h", T::Link, 0o644, 50)], Some(50)),
            // the mode's type bits alone make a directory
            (&[("a", T::Regular, 0o644, 10), ("x", T::Regular, 0o040755, 70)], Some(10)),
            (&[("d/", T::Directory, 0o755, 5)], None),
            (&[], None),
        ];
        for (entries, want) in rows {
            assert_eq!(newest_file_time(&tar_of(entries)[..]), *want, "{entries:?}");
        }
        assert_eq!(newest_file_time(&b"just text, no archive\n"[..]), None);
    }

    #[test]
    fn etags_compare_weak_as_strong() {
        assert_eq!(etag_value("W/\"x\""), "\"x\"");
        assert_eq!(etag_value("\"x\""), "\"x\"");
    }
}
