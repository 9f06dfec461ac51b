//! AWS Signature Version 4 for S3 requests (the `Authorization` header form): the canonical
//! request, the string to sign and the derived signing key, as AWS documents them. Pure: no
//! I/O, no clock (the caller passes the time), so it is tested against AWS's published examples.
//!
//! Written by hand: the signing is ~100 lines over HMAC-SHA256 (the `hmac` and `sha2` crates,
//! RustCrypto), and no small, well-kept crate does only this; the AWS SDK for Rust would bring an
//! async runtime and hundreds of crates into a synchronous binary for four S3 calls.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The payload hash of an empty body (GET, HEAD, a copy).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An access key: what signs the requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Temporary credentials' token (`x-amz-security-token`).
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // the secret and the token never reach a log
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ access_key_id: {:?}, .. }}", self.access_key_id)
    }
}

/// One request to sign. `path` is the URI path as sent, already encoded ([`uri_encode`] of each
/// segment); `headers` are the headers to sign besides `host` and the `x-amz-*` ones that
/// [`sign`] adds.
pub struct Request<'a> {
    pub method: &'a str,
    /// `host` or `host:port` as the request's Host header says it.
    pub host: &'a str,
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body (a blob's digest, so a big body is never read twice).
    pub payload_sha256: &'a str,
}

/// AWS's URI encoding: everything but the unreserved characters percent-encoded (upper-case
/// hex); `/` kept when `keep_slash` (an object key in a path).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length: new_from_slice cannot fail for it
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `20130524T000000Z` for a Unix time.
pub fn amz_date(unix: i64) -> String {
    crate::store::image::rfc3339(unix).replace(['-', ':'], "")
}

/// The headers to add to `req` to sign it at `unix` (seconds, UTC): `x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` (temporary credentials) and `authorization`.
pub fn sign(creds: &Credentials, region: &str, unix: i64, req: &Request) -> Vec<(String, String)> {
    sign_for("s3", creds, region, unix, req)
}

/// [`sign`] for another AWS service (`sts`).
pub fn sign_for(service: &str, creds: &Credentials, region: &str, unix: i64, req: &Request) -> Vec<(String, String)> {
    let date_time = amz_date(unix);
    let date = &date_time[..8];
    let mut add = vec![
        ("x-amz-content-sha256".to_string(), req.payload_sha256.to_string()),
        ("x-amz-date".to_string(), date_time.clone()),
    ];
    if let Some(t) = &creds.session_token {
        add.push(("x-amz-security-token".to_string(), t.clone()));
    }
    // canonical headers: lower-case names, trimmed values with inner runs of spaces folded
    let mut headers: Vec<(String, String)> = vec![("host".into(), req.host.into())];
    headers.extend(req.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())));
    headers.extend(add.iter().cloned());
    for h in &mut headers {
        h.1 = h.1.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let mut query: Vec<(String, String)> =
        req.query.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method,
        req.path,
        query.join("&"),
        req.payload_sha256
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{}", sha256_hex(canonical.as_bytes()));
    let mut key = hmac(format!("AWS4{}", creds.secret_access_key).as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    add.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed},Signature={signature}",
            creds.access_key_id
        ),
    ));
    add
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn auth(h: &[(String, String)]) -> &str {
        &h.iter().find(|(k, _)| k == "authorization").unwrap().1
    }

    // 2013-05-24T00:00:00Z, the time of AWS's examples
    const T: i64 = 1_369_353_600;

    #[test]
    fn aws_documented_examples() {
        assert_eq!(amz_date(T), "20130524T000000Z");
        // "Signature Calculations for the Authorization Header", example GET Object
        let h = sign(
            &example_creds(),
            "us-east-1",
            T,
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: &[],
                headers: &[("Range", "bytes=0-9")],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert_eq!(
            auth(&h),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // example PUT Object: a key with `$` (encoded), a Date header and a storage class
        let body = b"Welcome to Amazon S3.";
        let h = sign(
            &example_creds(),
            "us-east-1",
            T,
            &Request {
                method: "PUT",
                host: "examplebucket.s3.amazonaws.com",
                path: &format!("/{}", uri_encode("test$file.text", true)),
                query: &[],
                headers: &[("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
                payload_sha256: &sha256_hex(body),
            },
        );
        assert_eq!(
            auth(&h),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
        // example GET Bucket lifecycle: a query parameter without a value
        let h = sign(
            &example_creds(),
            "us-east-1",
            T,
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/",
                query: &[("lifecycle", "")],
                headers: &[],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert!(auth(&h).ends_with("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
        // example Get Bucket (List Objects): two parameters, sorted
        let h = sign(
            &example_creds(),
            "us-east-1",
            T,
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/",
                query: &[("prefix", "J"), ("max-keys", "2")],
                headers: &[],
                payload_sha256: EMPTY_SHA256,
            },
        );
        assert!(auth(&h).ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
    }

    #[test]
    fn session_token_is_signed() {
        let mut c = example_creds();
        c.session_token = Some("tok  en".into());
        let r = Request {
            method: "HEAD",
            host: "h:9000",
            path: "/b/k",
            query: &[],
            headers: &[],
            payload_sha256: EMPTY_SHA256,
        };
        let h = sign(&c, "eu-west-1", T, &r);
        assert!(h.iter().any(|(k, v)| k == "x-amz-security-token" && v == "tok  en"));
        assert!(auth(&h).contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
        assert!(auth(&h).contains("/20130524/eu-west-1/s3/aws4_request,"));
        assert!(!format!("{c:?}").contains("EXAMPLEKEY"));
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("blobs/sha256:ab", true), "blobs/sha256%3Aab");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(uri_encode("~-_.", true), "~-_.");
    }
}
