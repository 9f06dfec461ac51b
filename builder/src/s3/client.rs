//! One bucket's client: where its objects are (AWS's virtual-hosted endpoint, or an
//! `endpoint_url` with path-style or virtual-hosted addressing), and the object calls the cache
//! needs, each signed (SigV4) and retried on a transport error or a 5xx/429, as the AWS SDK's
//! standard retry mode does.

use super::multipart::{part_size, MAX_COPY, MULTIPART_THRESHOLD};
use super::sigv4::{self, Credentials, EMPTY_SHA256};
use super::S3Error;
use std::io::Read;
use std::path::Path;
use std::time::Duration;
use ureq::http;

pub(super) type Resp = http::Response<ureq::Body>;

/// An object's body as it arrives, and the status (200 whole, 206 from the offset asked).
pub type Download = (Box<dyn Read + Send>, u16);

/// Where a bucket is: the S3 endpoint and how objects are addressed on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// `host` or `host:port` of the service (the bucket not in it).
    pub authority: String,
    /// Path style: `/BUCKET/KEY` on the endpoint; else `BUCKET.ENDPOINT/KEY`.
    pub path_style: bool,
}

/// Whether a bucket name can be a DNS label in front of the endpoint (the SDK's endpoint rules,
/// `aws.isVirtualHostableS3Bucket` without subdomains): 3-63 of `a-z0-9-`, a letter or digit at
/// each end. A name with dots would not match the endpoint's wildcard certificate.
fn virtual_hostable(bucket: &str) -> bool {
    let b = bucket.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

impl Endpoint {
    /// Path style for `bucket` here: asked for (`use_path_style`), or, as the SDK's endpoint
    /// rules have it, an endpoint that is an IP address or a bucket name that is no DNS label.
    pub fn uses_path_style(&self, bucket: &str) -> bool {
        let host = match self.authority.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) && !h.is_empty() => h,
            _ => self.authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.path_style || host.parse::<std::net::IpAddr>().is_ok() || !virtual_hostable(bucket)
    }

    /// AWS's own endpoint for `region`, virtual-hosted (the SDK's default).
    pub fn aws(region: &str) -> Endpoint {
        let domain = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        Endpoint { scheme: "https".into(), authority: format!("s3.{region}.{domain}"), path_style: false }
    }

    /// An `endpoint_url` (`http(s)://host[:port]`, as the SDK's BaseEndpoint takes it).
    pub fn parse(url: &str, path_style: bool) -> Result<Endpoint, String> {
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| format!("endpoint_url={url}: expected http(s)://HOST[:PORT]"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("endpoint_url={url}: expected http(s)://HOST[:PORT]"));
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!("endpoint_url={url}: expected http(s)://HOST[:PORT] (no path)"));
        }
        Ok(Endpoint { scheme, authority: authority.to_string(), path_style })
    }
}

pub struct Bucket {
    pub bucket: String,
    region: String,
    endpoint: Endpoint,
    creds: Credentials,
    agent: ureq::Agent,
    /// Attempts per call (the SDK's retry_max_attempts, default 3).
    attempts: u32,
}

/// What a HEAD says of an object.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub size: u64,
    /// Last-Modified, Unix seconds.
    pub modified: Option<i64>,
}

/// A request body that can be sent again on a retry.
pub(super) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File { path: &'a Path, len: u64 },
}

/// The text of the first `<name>` element of a flat XML document (S3's and Azure's error
/// bodies: no XML parser needed), trimmed.
pub(crate) fn xml_field(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))? + start;
    Some(text[start..end].trim().to_string())
}

/// `<Code>` and `<Message>` of S3's XML error body.
pub(super) fn error_fields(body: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(body);
    (xml_field(&text, "Code"), xml_field(&text, "Message").unwrap_or_default())
}

/// S3's code for an answer without a body (HEAD): the SDK's names.
fn code_for_status(status: u16) -> &'static str {
    match status {
        301 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        412 => "PreconditionFailed",
        _ => "UnknownError",
    }
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Bucket {
    pub fn new(
        bucket: &str,
        region: &str,
        endpoint: Endpoint,
        creds: Credentials,
        attempts: u32,
    ) -> Result<Bucket, S3Error> {
        let (tls, _) = crate::registry::tls::config(&endpoint.authority, None, true)
            .map_err(|e| S3Error::Config(format!("TLS for {}: {e}", endpoint.authority)))?;
        Ok(Bucket {
            bucket: bucket.into(),
            region: region.into(),
            endpoint,
            creds,
            agent: crate::registry::client::agent(tls),
            attempts: attempts.max(1),
        })
    }

    /// The Host and the path of `key` (encoded as signed).
    fn locate(&self, key: &str) -> (String, String) {
        let k = sigv4::uri_encode(key, true);
        if self.endpoint.uses_path_style(&self.bucket) {
            (self.endpoint.authority.clone(), format!("/{}/{k}", sigv4::uri_encode(&self.bucket, false)))
        } else {
            (format!("{}.{}", self.bucket, self.endpoint.authority), format!("/{k}"))
        }
    }

    /// `s3://bucket/key`, for messages.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn send(
        &self,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: &Body,
        sha256: &str,
        op: &str,
    ) -> Result<Resp, S3Error> {
        self.send_query(method, key, &[], headers, body, sha256, op)
    }

    /// [`Self::send`] with query parameters (`uploads`, `partNumber`, `uploadId`); a parameter
    /// without a value is sent bare (`?uploads`) and signed as `uploads=`, as AWS documents.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_query(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &Body,
        sha256: &str,
        op: &str,
    ) -> Result<Resp, S3Error> {
        let (host, path) = self.locate(key);
        let mut url = format!("{}://{host}{path}", self.endpoint.scheme);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&sigv4::uri_encode(k, false));
            if !v.is_empty() {
                url.push('=');
                url.push_str(&sigv4::uri_encode(v, false));
            }
        }
        let tr = |why: String| S3Error::Transport { bucket: self.bucket.clone(), op: op.into(), why };
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                // the SDK's standard mode: exponential backoff with jitter, capped at 20 s
                let base = 100u64 << attempt.min(8);
                let jitter = u64::from(std::process::id() ^ attempt) % base;
                std::thread::sleep(Duration::from_millis((base + jitter).min(20_000)));
            }
            let signed = sigv4::sign(
                &self.creds,
                &self.region,
                now(),
                &sigv4::Request { method, host: &host, path: &path, query, headers, payload_sha256: sha256 },
            );
            let mut b = http::Request::builder().method(method).uri(&url);
            for (k, v) in
                headers.iter().map(|(k, v)| (*k, *v)).chain(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            {
                b = b.header(k, v);
            }
            let res = match body {
                // a PUT or POST without a body says Content-Length: 0 (ureq would send it
                // chunked, which some servers wait on)
                Body::Empty if method == "PUT" || method == "POST" => b
                    .header("Content-Length", "0")
                    .body(&[][..])
                    .map_err(|e| tr(e.to_string()))
                    .map(|r| self.agent.run(r))?,
                Body::Empty => b.body(()).map_err(|e| tr(e.to_string())).map(|r| self.agent.run(r))?,
                Body::Bytes(d) => b
                    .header("Content-Length", d.len().to_string())
                    .body(*d)
                    .map_err(|e| tr(e.to_string()))
                    .map(|r| self.agent.run(r))?,
                Body::File { path, len } => {
                    let f = std::fs::File::open(path).map_err(|err| S3Error::Io {
                        op: op.into(),
                        path: path.to_path_buf(),
                        err,
                    })?;
                    let mut r = std::io::BufReader::with_capacity(1 << 20, f).take(*len);
                    b.header("Content-Length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut r))
                        .map_err(|e| tr(e.to_string()))
                        .map(|r| self.agent.run(r))?
                }
            };
            match res {
                Ok(r) if r.status().as_u16() >= 500 || r.status().as_u16() == 429 => {
                    let e = self.fail(op, r);
                    last = Some(e);
                }
                Ok(r) => return Ok(r),
                Err(e) => last = Some(tr(e.to_string())),
            }
        }
        Err(last.unwrap_or_else(|| tr("no attempt".into())))
    }

    /// The error for an answer that is not a success: S3's code and message from its body.
    pub(super) fn fail(&self, op: &str, mut res: Resp) -> S3Error {
        let status = res.status().as_u16();
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        let (code, message) = error_fields(&body);
        S3Error::Status {
            bucket: self.bucket.clone(),
            op: op.into(),
            status,
            code: code.unwrap_or_else(|| code_for_status(status).into()),
            message,
        }
    }

    /// HEAD: the object's size and Last-Modified, None when there is no such key.
    pub fn head(&self, key: &str) -> Result<Option<Head>, S3Error> {
        let op = format!("HEAD {}", self.url(key));
        let res = self.send("HEAD", key, &[], &Body::Empty, EMPTY_SHA256, &op)?;
        match res.status().as_u16() {
            200 => {
                let h = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok());
                let size = h("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                let modified = h("last-modified")
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64);
                Ok(Some(Head { size, modified }))
            }
            // a HEAD has no body: 404 is a missing key, or a missing bucket (the PUT that
            // follows names which)
            404 => Ok(None),
            status => {
                // a HEAD's answer has no body, so no S3 error code: the same request as a GET
                // of one byte gets the error document that names it (SignatureDoesNotMatch,
                // InvalidAccessKeyId, AccessDenied...)
                let plain = self.fail(&op, res);
                match self.send("GET", key, &[("range", "bytes=0-0")], &Body::Empty, EMPTY_SHA256, &op) {
                    Ok(r) if r.status().as_u16() == status => match self.fail(&op, r) {
                        S3Error::Status { code, message, .. } => {
                            Err(S3Error::Status { bucket: self.bucket.clone(), op, status, code, message })
                        }
                        e => Err(e),
                    },
                    _ => Err(plain),
                }
            }
        }
    }

    /// GET from `offset`: the body as a reader, None when there is no such key (`NoSuchKey`;
    /// a missing bucket is an error).
    pub fn get(&self, key: &str, offset: u64) -> Result<Option<Download>, S3Error> {
        let op = format!("GET {}", self.url(key));
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 { &[("range", &range)] } else { &[] };
        let res = self.send("GET", key, headers, &Body::Empty, EMPTY_SHA256, &op)?;
        let status = res.status().as_u16();
        match status {
            200 | 206 => Ok(Some((Box::new(res.into_body().into_reader()), status))),
            _ => {
                let e = self.fail(&op, res);
                if e.code() == Some("NoSuchKey") {
                    return Ok(None);
                }
                Err(e)
            }
        }
    }

    /// GET of a small object (at most `limit` bytes), None when there is no such key.
    pub fn get_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, S3Error> {
        let Some((mut r, _)) = self.get(key, 0)? else { return Ok(None) };
        let mut out = Vec::new();
        (&mut r).take(limit + 1).read_to_end(&mut out).map_err(|e| S3Error::Transport {
            bucket: self.bucket.clone(),
            op: format!("GET {}", self.url(key)),
            why: e.to_string(),
        })?;
        if out.len() as u64 > limit {
            return Err(S3Error::Transport {
                bucket: self.bucket.clone(),
                op: format!("GET {}", self.url(key)),
                why: format!("more than {limit} bytes"),
            });
        }
        Ok(Some(out))
    }

    fn put(&self, key: &str, body: &Body, sha256: &str, content_type: &str) -> Result<(), S3Error> {
        let op = format!("PUT {}", self.url(key));
        let res = self.send("PUT", key, &[("content-type", content_type)], body, sha256, &op)?;
        match res.status().as_u16() {
            200 => Ok(()),
            _ => Err(self.fail(&op, res)),
        }
    }

    /// PUT of bytes.
    pub fn put_bytes(&self, key: &str, data: &[u8], content_type: &str) -> Result<(), S3Error> {
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data));
        self.put(key, &Body::Bytes(data), &sha, content_type)
    }

    /// Uploads a file as the SDK's transfer manager does: under [`MULTIPART_THRESHOLD`] in one
    /// PUT streamed from disk (its length and SHA-256 are known, a blob's digest, so nothing is
    /// buffered and the body is read once); from there in parts (`multipart.rs`).
    pub fn put_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        sha256_hex: &str,
        content_type: &str,
    ) -> Result<(), S3Error> {
        if len >= MULTIPART_THRESHOLD {
            return self.put_file_in_parts(key, path, len, part_size(len), content_type);
        }
        self.put(key, &Body::File { path, len }, sha256_hex, content_type)
    }

    /// `x-amz-copy-source` for an object of this bucket.
    pub(super) fn copy_source(&self, key: &str) -> String {
        format!("/{}/{}", self.bucket, sigv4::uri_encode(key, true))
    }

    /// Copies an object onto itself with new metadata, so its Last-Modified becomes now
    /// (BuildKit's `touch`: a bucket lifecycle rule that expires old objects spares a blob that
    /// caches still use). S3 copies less than 5 GiB in one call; a bigger object is copied in
    /// parts of 5 GiB, as BuildKit does.
    pub fn touch(&self, key: &str, size: u64) -> Result<(), S3Error> {
        if size >= MAX_COPY {
            return self.copy_onto_itself_in_parts(key, size, MAX_COPY);
        }
        let op = format!("PUT {} (copy onto itself to refresh it)", self.url(key));
        let source = self.copy_source(key);
        let stamp = crate::store::image::rfc3339(now());
        let headers = [
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-meta-updated-at", stamp.as_str()),
        ];
        let mut res = self.send("PUT", key, &headers, &Body::Empty, EMPTY_SHA256, &op)?;
        if res.status().as_u16() != 200 {
            return Err(self.fail(&op, res));
        }
        // a copy can fail after its 200 was sent: the body is then an <Error>
        let body = res.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        if let (Some(code), message) = error_fields(&body) {
            return Err(S3Error::Status { bucket: self.bucket.clone(), op, status: 200, code, message });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::aws("eu-west-1").authority, "s3.eu-west-1.amazonaws.com");
        assert_eq!(Endpoint::aws("cn-north-1").authority, "s3.cn-north-1.amazonaws.com.cn");
        let e = Endpoint::parse("HTTP://127.0.0.1:9000/", true).unwrap();
        assert_eq!((e.scheme.as_str(), e.authority.as_str(), e.path_style), ("http", "127.0.0.1:9000", true));
        for bad in ["127.0.0.1:9000", "ftp://h", "http://h/path", "http://"] {
            assert!(Endpoint::parse(bad, false).is_err(), "{bad}");
        }
        // the SDK's rules: virtual-hosted unless asked, an IP endpoint, or a name no DNS label
        let aws = Endpoint::aws("eu-west-1");
        assert!(!aws.uses_path_style("my-cache-1"));
        for b in ["my.cache", "My-Cache", "-x-", "ab"] {
            assert!(aws.uses_path_style(b), "{b}");
        }
        assert!(!Endpoint::parse("http://minio:9000", false).unwrap().uses_path_style("cache"));
        assert!(Endpoint::parse("http://minio:9000", true).unwrap().uses_path_style("cache"));
        assert!(Endpoint::parse("http://127.0.0.1:9000", false).unwrap().uses_path_style("cache"));
        assert!(Endpoint::parse("http://[::1]:9000", false).unwrap().uses_path_style("cache"));
    }

    #[test]
    fn error_bodies() {
        let b = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>b</BucketName></Error>"#;
        assert_eq!(error_fields(b), (Some("NoSuchBucket".into()), "The specified bucket does not exist".into()));
        assert_eq!(error_fields(b""), (None, String::new()));
    }
}
