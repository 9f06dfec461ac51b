//! TLS trust for one registry, as docker and podman set it up: the system roots, plus a
//! certificate directory (`--cert-dir`, else `/etc/docker/certs.d/HOST[:PORT]/` and
//! `/etc/containers/certs.d/HOST[:PORT]/`) whose `*.crt` files are extra CAs and whose
//! `NAME.cert`/`NAME.key` pairs are a client certificate.

use super::error::RegistryError;
use std::path::{Path, PathBuf};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Where the trust for a registry came from (for error messages).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    pub sources: Vec<String>,
}

fn system_bundle() -> Option<PathBuf> {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        return Some(PathBuf::from(f));
    }
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn read_certs(path: &Path) -> Result<Vec<Certificate<'static>>, RegistryError> {
    let data = std::fs::read(path).map_err(|err| RegistryError::Io { path: path.into(), err })?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(RegistryError::Io { path: path.into(), err: std::io::Error::other(format!("PEM: {e}")) })
            }
        }
    }
    Ok(out)
}

/// The certificate directories consulted for `registry`.
pub fn cert_dirs(registry: &str, cert_dir: Option<&Path>) -> Vec<PathBuf> {
    match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => {
            vec![Path::new("/etc/docker/certs.d").join(registry), Path::new("/etc/containers/certs.d").join(registry)]
        }
    }
}

/// Builds the TLS configuration for `registry`. `verify: false` accepts any certificate
/// (`--tls-verify=false`).
pub fn config(registry: &str, cert_dir: Option<&Path>, verify: bool) -> Result<(TlsConfig, Trust), RegistryError> {
    let mut trust = Trust::default();
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    if let Some(b) = system_bundle() {
        roots.extend(read_certs(&b)?);
        trust.sources.push(format!("system roots {}", b.display()));
    }
    let mut client = None;
    for dir in cert_dirs(registry, cert_dir) {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && cert_dir.is_none() => continue,
            Err(err) => return Err(RegistryError::Io { path: dir, err }),
        };
        let mut names: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in &names {
            match p.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    roots.extend(read_certs(p)?);
                    trust.sources.push(p.display().to_string());
                }
                Some("cert") => {
                    let key = p.with_extension("key");
                    if !key.is_file() {
                        return Err(RegistryError::Io {
                            path: key,
                            err: std::io::Error::other(format!("missing key for client certificate {}", p.display())),
                        });
                    }
                    let chain = read_certs(p)?;
                    let kb = std::fs::read(&key).map_err(|err| RegistryError::Io { path: key.clone(), err })?;
                    let k = PrivateKey::from_pem(&kb).map_err(|e| RegistryError::Io {
                        path: key.clone(),
                        err: std::io::Error::other(format!("private key: {e}")),
                    })?;
                    // ureq panics on a certificate rustls refuses (an X.509 v1 one, a key of
                    // another type): ask rustls first, and say which files
                    check_client_cert(&chain, &kb).map_err(|why| RegistryError::Io {
                        path: p.clone(),
                        err: std::io::Error::other(format!("client certificate (with {}): {why}", key.display())),
                    })?;
                    client = Some(ClientCert::new_with_certs(&chain, k));
                }
                _ => {}
            }
        }
    }
    let roots = if roots.is_empty() { RootCerts::WebPki } else { RootCerts::new_with_certs(&roots) };
    let cfg = TlsConfig::builder().root_certs(roots).client_cert(client).disable_verification(!verify).build();
    Ok((cfg, trust))
}

/// Whether rustls takes this chain and key as a client certificate.
fn check_client_cert(chain: &[Certificate<'static>], key_pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = chain.iter().map(|c| CertificateDer::from(c.der().to_vec())).collect();
    if certs.is_empty() {
        return Err("no certificate in the file".into());
    }
    // the provider ureq's rustls connector builds with (its `rustls` feature: ring)
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
