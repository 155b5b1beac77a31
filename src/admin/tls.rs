//! The endpoint's TLS: a rustls server configuration built from a web configuration's
//! `tls_server_config`.
//!
//! Owns reading the certificate, key and client CA (files relative to the web
//! configuration, or inline PEM), mapping Go's names for versions, cipher suites, curves
//! and client-auth policies onto rustls, and checking client certificates' subject
//! alternative names. Every failure is a [`ConfigError`] naming the web configuration
//! file and the key at fault. Does not own: the schema and its checks (`crate::config::web`).

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, NamedGroup, SignatureScheme};

use crate::config::ConfigError;
use crate::config::web::{ClientAuthType, LoadedWebConfig, TlsServerConfig, TlsVersion};

/// The server configuration for `t`, a `tls_server_config` of `web`.
///
/// # Errors
/// Every file that cannot be read or used, and settings rustls cannot honour.
pub(super) fn server_config(
    web: &LoadedWebConfig,
    t: &TlsServerConfig,
) -> Result<Arc<ServerConfig>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let provider = Arc::new(provider_for(t, &mut |key, m| {
        errors.push(web.error(&tls_key(key), m));
    }));
    let chain = pem_of(web, &t.cert, &t.cert_file, "cert_file").and_then(|p| {
        crate::tls::certificates(&p).map_err(|m| web.error(&tls_key("cert_file"), m))
    });
    let key = pem_of(web, &t.key, &t.key_file, "key_file")
        .and_then(|p| crate::tls::private_key(&p).map_err(|m| web.error(&tls_key("key_file"), m)));
    let verifier = client_verifier(web, t, &provider);
    let (chain, key, verifier) = match (chain, key, verifier) {
        (Ok(chain), Ok(key), Ok(verifier)) if errors.is_empty() => (chain, key, verifier),
        (chain, key, verifier) => {
            errors.extend(chain.err());
            errors.extend(key.err());
            errors.extend(verifier.err());
            return Err(errors);
        }
    };
    let versions: &[&rustls::SupportedProtocolVersion] = match (t.min_version, t.max_version) {
        (TlsVersion::Tls13, _) => &[&rustls::version::TLS13],
        (_, TlsVersion::Tls12) => &[&rustls::version::TLS12],
        _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| vec![web.error(&tls_key("min_version"), e.to_string())])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            vec![web.error(
                &tls_key("key_file"),
                format!("the key does not fit the certificate: {e}"),
            )]
        })?;
    // HTTP/1.1 only: a client offering h2 falls back, as it would with `http2: false`.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = t.prefer_server_cipher_suites;
    Ok(Arc::new(config))
}

/// The dotted key of `name` under `tls_server_config`.
fn tls_key(name: &str) -> String {
    format!("tls_server_config.{name}")
}

/// The PEM text of `inline`, or of `file` (relative to the web configuration) when set;
/// errors are about `name`.
fn pem_of(
    web: &LoadedWebConfig,
    inline: &str,
    file: &str,
    name: &str,
) -> Result<Vec<u8>, ConfigError> {
    if file.is_empty() {
        Ok(inline.as_bytes().to_vec())
    } else {
        crate::tls::read_pem_file(&web.resolve(file)).map_err(|m| web.error(&tls_key(name), m))
    }
}

/// The provider narrowed to `cipher_suites` and `curve_preferences`, in their order.
/// Names Go knows but rustls does not offer are left out with a warning.
fn provider_for(t: &TlsServerConfig, bad: &mut impl FnMut(&str, String)) -> CryptoProvider {
    let mut provider = crate::tls::provider();
    if !t.cipher_suites.is_empty() {
        let all = std::mem::take(&mut provider.cipher_suites);
        // TLS 1.3 suites are not configurable in Go either.
        provider.cipher_suites = all
            .iter()
            .filter(|s| s.tls13().is_some())
            .copied()
            .collect();
        for name in &t.cipher_suites {
            // Names are Go's (checked at load); TLS 1.3 ones are on already.
            if let Some(suite) = all.iter().find(|s| format!("{:?}", s.suite()) == *name) {
                if suite.tls13().is_none() {
                    provider.cipher_suites.push(*suite);
                }
            } else {
                tracing::warn!(
                    cipher_suite = %name,
                    "TLS cipher suite not offered by netwarden (only ECDHE with AES-GCM or ChaCha20); left out."
                );
            }
        }
        if t.max_version == TlsVersion::Tls12
            && provider.cipher_suites.iter().all(|s| s.tls13().is_some())
        {
            bad(
                "cipher_suites",
                "none of these TLS 1.2 suites is offered by netwarden".to_owned(),
            );
        }
    }
    if !t.curve_preferences.is_empty() {
        let all = std::mem::take(&mut provider.kx_groups);
        for name in &t.curve_preferences {
            let group = match name.as_str() {
                "X25519" => NamedGroup::X25519,
                "CurveP256" => NamedGroup::secp256r1,
                "CurveP384" => NamedGroup::secp384r1,
                _ => {
                    tracing::warn!(curve = %name, "TLS curve not offered by netwarden; left out.");
                    continue;
                }
            };
            provider
                .kx_groups
                .extend(all.iter().filter(|g| g.name() == group).copied());
        }
        if provider.kx_groups.is_empty() {
            bad(
                "curve_preferences",
                "none of these curves is offered by netwarden".to_owned(),
            );
        }
    }
    provider
}

/// How client certificates are asked for and checked.
fn client_verifier(
    web: &LoadedWebConfig,
    t: &TlsServerConfig,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match t.client_auth_type {
        ClientAuthType::NoClientCert => return Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuthType::RequestClientCert => Arc::new(AnyClientCert {
            mandatory: false,
            algorithms,
        }),
        ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert {
            mandatory: true,
            algorithms,
        }),
        auth @ (ClientAuthType::VerifyClientCertIfGiven
        | ClientAuthType::RequireAndVerifyClientCert) => {
            let bad = |m: String| web.error(&tls_key("client_ca_file"), m);
            let ca = pem_of(web, &t.client_ca, &t.client_ca_file, "client_ca_file")?;
            let roots = crate::tls::roots(&ca).map_err(bad)?;
            let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider));
            let builder = if auth.requires() {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder.build().map_err(|e| bad(e.to_string()))?
        }
    };
    Ok(match &t.client_allowed_sans {
        Some(sans) => Arc::new(AllowedSans {
            inner: verifier,
            sans: sans.clone(),
        }),
        None => verifier,
    })
}

/// Asks for a client certificate and accepts any (`RequestClientCert`,
/// `RequireAnyClientCert`): the client still proves it holds the key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: the inner policy, then the certificate must be valid for one of
/// the names (DNS names as TLS matches server names, so a wildcard certificate matches).
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    sans: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let allowed = self.sans.iter().any(|san| {
            let name = match san.parse::<IpAddr>() {
                Ok(ip) => ServerName::IpAddress(ip.into()),
                Err(_) => match ServerName::try_from(san.as_str()) {
                    Ok(name) => name,
                    Err(_) => return false,
                },
            };
            cert.verify_is_valid_for_subject_name(&name).is_ok()
        });
        if allowed {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A self-signed certificate for localhost and its key, as PEM.
    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn errors(web: &str) -> Vec<String> {
        let loaded = crate::config::web::parse(web, Path::new("web.yml")).unwrap();
        let t = loaded.config.tls_server_config.clone().unwrap();
        match server_config(&loaded, &t) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn inline(cert: &str, key: &str, extra: &str) -> String {
        let indent = |pem: &str| pem.replace('\n', "\n    ");
        format!(
            "tls_server_config:\n  cert: |\n    {}\n  key: |\n    {}\n{extra}",
            indent(cert.trim_end()),
            indent(key.trim_end())
        )
    }

    #[test]
    fn inline_certificate_and_key_make_a_server() {
        let (cert, key) = self_signed();
        assert_eq!(errors(&inline(&cert, &key, "")), Vec::<String>::new());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_at_key_file() {
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let errs = errors(&inline(&cert, &other_key, ""));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains("key `tls_server_config.key_file`: the key does not fit"),
            "{errs:?}"
        );
    }

    #[test]
    fn missing_files_and_suites_netwarden_lacks_are_each_reported() {
        let errs = errors(
            "tls_server_config:\n  cert_file: /nonexistent/cert.pem\n  key_file: /nonexistent/key.pem\n  \
             max_version: TLS12\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n",
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].contains("web.yml:5:1: key `tls_server_config.cipher_suites`"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("web.yml:2:1: key `tls_server_config.cert_file`: cannot read"),
            "{errs:?}"
        );
        assert!(
            errs[2].contains("web.yml:3:1: key `tls_server_config.key_file`: cannot read"),
            "{errs:?}"
        );
    }
}
