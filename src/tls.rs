//! TLS material shared by the metrics endpoint (`crate::admin`) and alert delivery
//! (`crate::alert::sinks`): the crypto provider and reading PEM certificates, keys and CA
//! bundles.
//!
//! netwarden's TLS is rustls (memory-safe, no OpenSSL in the process) with its default
//! provider, aws-lc-rs, which offers the post-quantum X25519MLKEM768 key exchange (rustls
//! deprecated its `ring` provider for lacking it); it builds with the C compiler alone.
//! Files are read whole, at most [`MAX_PEM_BYTES`], so a wrong path (a device, a huge
//! file) fails fast. Does not own: when files are read or what they configure.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Largest PEM file read (a certificate chain or a CA bundle such as the system's).
pub const MAX_PEM_BYTES: u64 = 4 << 20;

/// The crypto provider everything uses.
pub fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Reads `path` (at most [`MAX_PEM_BYTES`], a regular file).
///
/// # Errors
/// A message saying why it cannot be read.
pub fn read_pem_file(path: &Path) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every certificate in PEM text, in order.
///
/// # Errors
/// Malformed PEM, or no certificate at all.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in PEM text.
///
/// # Errors
/// Malformed PEM, or no private key.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no PEM private key: {e}"))
}

/// A root store of every certificate in PEM text.
///
/// # Errors
/// Malformed PEM, no certificate, or a certificate that is not a usable trust anchor.
pub fn roots(pem: &[u8]) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem)? {
        store
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    Ok(Arc::new(store))
}
