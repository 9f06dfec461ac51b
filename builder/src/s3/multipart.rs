//! Multipart uploads: a big blob goes up in parts, and a big object is copied onto itself in
//! parts, as the AWS SDK's transfer manager and BuildKit's `touch` do (CreateMultipartUpload,
//! UploadPart or UploadPartCopy, CompleteMultipartUpload). Whatever fails after the upload was
//! created aborts it (AbortMultipartUpload), so no half-written upload is left in the bucket
//! (S3 keeps an open upload's parts, and bills them, until it is completed or aborted).

use super::client::{error_fields, Body, Bucket};
use super::sigv4::EMPTY_SHA256 as EMPTY;
use super::S3Error;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

/// The SDK transfer manager's defaults (feature/s3/transfermanager/api_client.go): an object of
/// at least 16 MiB goes up in parts of 8 MiB, 5 parts at a time, at most 10,000 parts (the part
/// size grows for a bigger object: size / 10,000 + 1).
pub const MULTIPART_THRESHOLD: u64 = 16 << 20;
pub const PART_SIZE: u64 = 8 << 20;
pub const PART_CONCURRENCY: usize = 5;
pub const MAX_PARTS: u64 = 10_000;

/// S3's limit for one PUT and one CopyObject (and BuildKit's `maxCopyObjectSize`, also the size
/// of each UploadPartCopy range in its `touch`).
pub const MAX_COPY: u64 = 5 << 30;

/// The byte ranges (`start`, `len`) of the parts of an object of `size` bytes in parts of `part`
/// bytes, numbered from 1 by their position.
pub fn parts(size: u64, part: u64) -> Vec<(u64, u64)> {
    let part = part.max(1);
    (0..size.div_ceil(part)).map(|i| (i * part, part.min(size - i * part))).collect()
}

/// The part size the SDK uses for an object of `size` bytes: [`PART_SIZE`], grown so that at
/// most [`MAX_PARTS`] parts are needed.
pub fn part_size(size: u64) -> u64 {
    if size / PART_SIZE >= MAX_PARTS {
        size / MAX_PARTS + 1
    } else {
        PART_SIZE
    }
}

/// The `<Part>` list of CompleteMultipartUpload, in part order.
fn complete_body(etags: &[(usize, String)]) -> String {
    let mut out = String::from("<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (n, etag) in etags {
        let etag = etag.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
        out.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    out.push_str("</CompleteMultipartUpload>");
    out
}

impl Bucket {
    /// CreateMultipartUpload: the new upload's id.
    fn create_upload(&self, key: &str, content_type: Option<&str>) -> Result<String, S3Error> {
        let op = format!("CreateMultipartUpload {}", self.url(key));
        let headers: Vec<(&str, &str)> = content_type.map(|t| ("content-type", t)).into_iter().collect();
        let res = self.send_query("POST", key, &[("uploads", "")], &headers, &Body::Empty, EMPTY, &op)?;
        let body = self.success_body(&op, res)?;
        super::client::xml_field(&body, "UploadId").filter(|id| !id.is_empty()).ok_or_else(|| S3Error::Transport {
            bucket: self.bucket.clone(),
            op,
            why: "no UploadId in the answer".into(),
        })
    }

    /// The body of a 200 answer that may still carry an `<Error>` (CompleteMultipartUpload and
    /// the copies can fail after their 200 was sent).
    fn success_body(&self, op: &str, mut res: super::client::Resp) -> Result<String, S3Error> {
        if res.status().as_u16() != 200 {
            return Err(self.fail(op, res));
        }
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(|e| S3Error::Transport {
            bucket: self.bucket.clone(),
            op: op.into(),
            why: e.to_string(),
        })?;
        if let (Some(code), message) = error_fields(&body) {
            return Err(S3Error::Status { bucket: self.bucket.clone(), op: op.into(), status: 200, code, message });
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// CompleteMultipartUpload with the parts' ETags.
    fn complete_upload(&self, key: &str, id: &str, mut etags: Vec<(usize, String)>) -> Result<(), S3Error> {
        etags.sort();
        let op = format!("CompleteMultipartUpload {}", self.url(key));
        let body = complete_body(&etags);
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes()));
        let res = self.send_query(
            "POST",
            key,
            &[("uploadId", id)],
            &[("content-type", "application/xml")],
            &Body::Bytes(body.as_bytes()),
            &sha,
            &op,
        )?;
        self.success_body(&op, res).map(drop)
    }

    /// AbortMultipartUpload: the parts already sent are dropped.
    fn abort_upload(&self, key: &str, id: &str) -> Result<(), S3Error> {
        let op = format!("AbortMultipartUpload {}", self.url(key));
        let res = self.send_query("DELETE", key, &[("uploadId", id)], &[], &Body::Empty, EMPTY, &op)?;
        match res.status().as_u16() {
            200 | 204 => Ok(()),
            _ => Err(self.fail(&op, res)),
        }
    }

    /// Runs `part` over the parts of `ranges` (`PART_CONCURRENCY` at a time) inside a new
    /// multipart upload of `key`, then completes it; on any failure the upload is aborted and
    /// the first error returned (with the abort's own failure, if it failed too).
    fn in_parts(
        &self,
        key: &str,
        content_type: Option<&str>,
        ranges: &[(u64, u64)],
        part: impl Fn(&str, usize, u64, u64) -> Result<String, S3Error> + Sync,
    ) -> Result<(), S3Error> {
        let id = self.create_upload(key, content_type)?;
        let etags = Mutex::new(Vec::with_capacity(ranges.len()));
        let numbered: Vec<(usize, u64, u64)> = ranges.iter().enumerate().map(|(i, (s, l))| (i + 1, *s, *l)).collect();
        let sent = crate::registry::blob::parallel_with(&numbered, PART_CONCURRENCY, |(n, start, len)| {
            let etag = part(&id, *n, *start, *len)?;
            etags.lock().map_err(|_| S3Error::Config("a part's upload thread panicked".into()))?.push((*n, etag));
            Ok(())
        });
        let done = sent.and_then(|()| {
            let etags = etags.into_inner().map_err(|_| S3Error::Config("a part's upload thread panicked".into()))?;
            self.complete_upload(key, &id, etags)
        });
        if let Err(e) = done {
            if let Err(abort) = self.abort_upload(key, &id) {
                return Err(S3Error::Config(format!("{e}; and then the upload could not be aborted: {abort}")));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Uploads a file of `len` bytes in parts (UploadPart), each read into memory once to be
    /// hashed for its signature and sent.
    pub(super) fn put_file_in_parts(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        part_size: u64,
        content_type: &str,
    ) -> Result<(), S3Error> {
        let ranges = parts(len, part_size);
        if ranges.len() as u64 > MAX_PARTS {
            return Err(S3Error::Config(format!(
                "PUT {}: {len} bytes in parts of {part_size} is more than S3's {MAX_PARTS} parts",
                self.url(key)
            )));
        }
        self.in_parts(key, Some(content_type), &ranges, |id, n, start, plen| {
            let op = format!("UploadPart {} (part {n} of {})", self.url(key), ranges.len());
            let io = |err| S3Error::Io { op: op.clone(), path: path.to_path_buf(), err };
            let mut f = std::fs::File::open(path).map_err(io)?;
            f.seek(SeekFrom::Start(start)).map_err(io)?;
            let mut buf = Vec::with_capacity(plen as usize);
            (&mut f).take(plen).read_to_end(&mut buf).map_err(io)?;
            if buf.len() as u64 != plen {
                return Err(io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank")));
            }
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&buf));
            let number = n.to_string();
            let res = self.send_query(
                "PUT",
                key,
                &[("partNumber", &number), ("uploadId", id)],
                &[],
                &Body::Bytes(&buf),
                &sha,
                &op,
            )?;
            if res.status().as_u16() != 200 {
                return Err(self.fail(&op, res));
            }
            res.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_string).ok_or_else(|| {
                S3Error::Transport { bucket: self.bucket.clone(), op, why: "no ETag in the answer".into() }
            })
        })
    }

    /// Copies the object `key` of `size` bytes onto itself in parts of `part_size` bytes
    /// (UploadPartCopy with `x-amz-copy-source-range`), as BuildKit's `touch` does for an object
    /// CopyObject cannot copy in one call; its Last-Modified becomes now.
    pub fn copy_onto_itself_in_parts(&self, key: &str, size: u64, part_size: u64) -> Result<(), S3Error> {
        let source = self.copy_source(key);
        let ranges = parts(size, part_size);
        self.in_parts(key, None, &ranges, |id, n, start, plen| {
            let op = format!("UploadPartCopy {} (part {n} of {})", self.url(key), ranges.len());
            let number = n.to_string();
            let range = format!("bytes={start}-{}", start + plen - 1);
            let res = self.send_query(
                "PUT",
                key,
                &[("partNumber", &number), ("uploadId", id)],
                &[("x-amz-copy-source", &source), ("x-amz-copy-source-range", &range)],
                &Body::Empty,
                EMPTY,
                &op,
            )?;
            let body = self.success_body(&op, res)?;
            super::client::xml_field(&body, "ETag").map(|e| e.replace("&quot;", "\"")).ok_or_else(|| {
                S3Error::Transport { bucket: self.bucket.clone(), op, why: "no ETag in the answer".into() }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_as_the_sdk_cuts_them() {
        // a 20 MiB blob: two parts of 8 MiB and the 4 MiB rest
        assert_eq!(parts(20 << 20, PART_SIZE), [(0, 8 << 20), (8 << 20, 8 << 20), (16 << 20, 4 << 20)]);
        assert_eq!(parts(16 << 20, PART_SIZE), [(0, 8 << 20), (8 << 20, 8 << 20)]);
        assert_eq!(parts(0, PART_SIZE), Vec::<(u64, u64)>::new());
        // BuildKit's touch: ranges of 5 GiB (buildCopySourceRange)
        let six = 6 << 30;
        assert_eq!(parts(six, MAX_COPY), [(0, MAX_COPY), (MAX_COPY, six - MAX_COPY)]);
        // the SDK grows the part size so that 10,000 parts are enough (initSize)
        assert_eq!(part_size(1 << 30), PART_SIZE);
        let huge: u64 = 100 << 30; // 100 GiB: 12,800 parts of 8 MiB
        let p = part_size(huge);
        assert_eq!(p, huge / MAX_PARTS + 1);
        assert!(parts(huge, p).len() as u64 <= MAX_PARTS);
    }

    #[test]
    fn complete_lists_the_parts_in_order() {
        let b = complete_body(&[(1, "\"a1\"".into()), (2, "\"b2\"".into())]);
        assert!(
            b.contains(
                "<Part><PartNumber>1</PartNumber><ETag>&quot;a1&quot;</ETag></Part><Part><PartNumber>2</PartNumber>"
            ),
            "{b}"
        );
    }
}
