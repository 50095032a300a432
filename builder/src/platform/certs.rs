//! An app's TLS certificate (Dokku's `certs:*`; Let's Encrypt's land here too): a PEM chain and
//! its key in `certs/APP/server.crt` and `server.key` under the data dir (mode 0600). Both are
//! checked where they enter and again where root's router copies them: the chain parses, the key
//! is the leaf's, and the certificate names at least one of the app's host names. The router
//! serves the hosts it names over HTTPS and redirects their HTTP requests.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// At most this much PEM text is read for a chain or a key.
pub const MAX_PEM: u64 = 256 * 1024;

#[derive(Debug, Error)]
pub enum CertError {
    #[error("the certificate file holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("the certificate does not parse: {0}")]
    BadCertificate(String),
    #[error("the key file holds no PEM private key (PKCS#8, RSA or EC)")]
    NoKey,
    #[error("the key is not one slipway can use (RSA, ECDSA P-256/P-384 or Ed25519): {0}")]
    BadKey(String),
    #[error("the key does not belong to the certificate (their public keys differ)")]
    KeyMismatch,
    #[error("the certificate names none of the app's hosts ({hosts}); it is for {names}")]
    NoHostCovered { hosts: String, names: String },
}

/// What `certs:report` shows of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    /// Its DNS names (subject alternative names, else the subject's common name).
    pub names: Vec<String>,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertInfo {
    /// Whether it names `host` (exactly, or by a wildcard for one leftmost label).
    pub fn covers(&self, host: &str) -> bool {
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(parent) => host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => name.eq_ignore_ascii_case(host),
        })
    }

    /// The hosts of `hosts` it names.
    pub fn covered<'a>(&self, hosts: &'a [String]) -> Vec<&'a String> {
        hosts.iter().filter(|h| self.covers(h)).collect()
    }
}

/// Checks a chain and its key: returns the leaf's details.
pub fn inspect(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertInfo, CertError> {
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let leaf = chain.first().ok_or(CertError::NoCertificate)?;
    for cert in &chain[1..] {
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    }
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertError::NoKey)?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| CertError::BadKey(e.to_string()))?;
    let public = signer.public_key().ok_or_else(|| CertError::BadKey("its public key is unknown".into()))?;
    if public.as_ref() != cert.public_key().raw {
        return Err(CertError::KeyMismatch);
    }
    let mut names: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        names,
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Checks a chain and key for an app answering at `hosts`: one of them at least must be named.
pub fn inspect_for(chain_pem: &[u8], key_pem: &[u8], hosts: &[String]) -> Result<CertInfo, CertError> {
    let info = inspect(chain_pem, key_pem)?;
    if info.covered(hosts).is_empty() {
        return Err(CertError::NoHostCovered { hosts: hosts.join(", "), names: info.names.join(", ") });
    }
    Ok(info)
}

/// Where an app's certificate is kept.
pub fn dir(data_dir: &Path, app: &str) -> PathBuf {
    data_dir.join("certs").join(app)
}

pub fn chain_path(data_dir: &Path, app: &str) -> PathBuf {
    dir(data_dir, app).join("server.crt")
}

pub fn key_path(data_dir: &Path, app: &str) -> PathBuf {
    dir(data_dir, app).join("server.key")
}

/// A small file's bytes, never through a link (None: there is none).
pub fn read_pem(path: &Path) -> Result<Option<Vec<u8>>> {
    Ok(crate::engine::fsutil::read_no_follow(path, MAX_PEM)?.map(String::into_bytes))
}

/// The app's stored chain and key, when it has both.
pub fn stored(data_dir: &Path, app: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    match (read_pem(&chain_path(data_dir, app))?, read_pem(&key_path(data_dir, app))?) {
        (Some(chain), Some(key)) => Ok(Some((chain, key))),
        _ => Ok(None),
    }
}

/// The stored certificate's details (None: the app has none; a damaged one is an error).
pub fn info(data_dir: &Path, app: &str) -> Result<Option<CertInfo>> {
    let Some((chain, key)) = stored(data_dir, app)? else { return Ok(None) };
    Ok(Some(inspect(&chain, &key).with_context(|| format!("the stored certificate of {app}"))?))
}

/// Stores a chain and key that were checked, replacing the app's (each file written aside,
/// then renamed, mode 0600).
pub fn store(data_dir: &Path, app: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = dir(data_dir, app);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    if std::fs::symlink_metadata(&dir)?.file_type().is_symlink() {
        bail!("{} is a link", dir.display());
    }
    crate::engine::fsutil::write_private(&dir.join("server.key"), key_pem)?;
    crate::engine::fsutil::write_private(&dir.join("server.crt"), chain_pem)
}

/// Removes the app's certificate; false when it had none.
pub fn remove(data_dir: &Path, app: &str) -> Result<bool> {
    let dir = dir(data_dir, app);
    if !dir.exists() {
        return Ok(false);
    }
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    Ok(true)
}

/// Stores a checked chain and key and points the router at them; when the router refuses,
/// the app's previous certificate (or none) is put back and the error returned.
pub async fn install(r: &super::runner::Runner, app: &str, chain: &[u8], key: &[u8]) -> Result<()> {
    let data_dir = &r.state.data_dir;
    let previous = stored(data_dir, app).ok().flatten();
    store(data_dir, app, chain, key)?;
    if let Err(e) = r.refresh_routes(app).await {
        match &previous {
            Some((chain, key)) => store(data_dir, app, chain, key)?,
            None => {
                remove(data_dir, app)?;
            }
        }
        let _ = r.refresh_routes(app).await;
        return Err(e.context("the router did not take the certificate; the app's certificate is as it was"));
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A self-signed certificate for `names` and its key, as PEM.
    pub fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_chain_and_its_key_are_checked_and_described() {
        let (chain, key) = self_signed(&["demo.example.com", "*.demo.example.com"]);
        let info = inspect(chain.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(info.names, ["demo.example.com", "*.demo.example.com"]);
        assert!(info.not_after > info.not_before);
        assert!(info.covers("demo.example.com") && info.covers("www.demo.example.com"));
        assert!(
            !info.covers("a.b.demo.example.com") && !info.covers("example.com") && !info.covers(".demo.example.com")
        );
        let (_, other_key) = self_signed(&["demo.example.com"]);
        assert!(matches!(inspect(chain.as_bytes(), other_key.as_bytes()), Err(CertError::KeyMismatch)));
        assert!(matches!(inspect(b"junk", key.as_bytes()), Err(CertError::NoCertificate)));
        assert!(matches!(inspect(chain.as_bytes(), b"junk"), Err(CertError::NoKey)));
        let hosts = vec!["shop.example.org".to_string()];
        let err = inspect_for(chain.as_bytes(), key.as_bytes(), &hosts).unwrap_err().to_string();
        assert!(err.contains("names none of the app's hosts (shop.example.org)"), "{err}");
    }

    #[test]
    fn stored_certificates_are_private_and_never_read_through_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let (chain, key) = self_signed(&["demo.example.com"]);
        store(dir.path(), "demo", chain.as_bytes(), key.as_bytes()).unwrap();
        let mode = std::fs::metadata(key_path(dir.path(), "demo")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(info(dir.path(), "demo").unwrap().unwrap().names, ["demo.example.com"]);
        std::fs::remove_file(key_path(dir.path(), "demo")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", key_path(dir.path(), "demo")).unwrap();
        assert!(stored(dir.path(), "demo").is_err(), "a link is not followed");
        assert!(remove(dir.path(), "demo").unwrap());
        assert!(!remove(dir.path(), "demo").unwrap());
        assert_eq!(info(dir.path(), "demo").unwrap(), None);
    }
}
