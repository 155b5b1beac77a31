//! How alert delivery reaches one kind of receiver: TLS and credentials.
//!
//! Owns [`Client`], built once from a receiver's `tls_config`, `basic_auth` and
//! `authorization` (Prometheus's names): the rustls client configuration (the CA file or
//! the system's CA certificates, an optional client certificate, an optional
//! `server_name`, or no verification at all when the operator asked for that), and the
//! `Authorization` header, whose secret is read from its file at every request so it can
//! be rotated without a restart. Problems found while building are [`ConfigError`]s
//! naming the file and the config key. Does not own: the HTTP exchange (`http`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{AuthorizationConfig, BasicAuthConfig, ConfigError, TlsClientConfig};

/// Largest secret file read (a password or a token).
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// TLS and credentials of one receiver (or of every Alertmanager).
#[derive(Clone, Debug)]
pub(crate) struct Client {
    /// The TLS client for `https://` URLs; `None` when no URL of this client uses it.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    /// The name certificates are checked against instead of the URL's host.
    pub(crate) server_name: Option<ServerName<'static>>,
    auth: Auth,
}

/// Where the `Authorization` header comes from.
#[derive(Clone, Debug)]
enum Auth {
    None,
    Basic {
        username: String,
        password_file: PathBuf,
    },
    Scheme {
        scheme: String,
        credentials_file: PathBuf,
    },
}

/// Why a request could not be made ready.
#[derive(Debug)]
pub(crate) struct SecretUnreadable;

impl Client {
    /// A client without TLS or credentials.
    #[cfg(test)]
    pub(crate) fn plain() -> Client {
        Client {
            tls: None,
            server_name: None,
            auth: Auth::None,
        }
    }

    /// Builds the client of the config section `section` (`alerting` or
    /// `alerting.webhook`); TLS is set up only when `https` (some URL uses it).
    ///
    /// # Errors
    /// Files that cannot be read or used, and secrets that cannot be read now.
    pub(crate) fn build(
        section: &str,
        tls: &TlsClientConfig,
        basic: &BasicAuthConfig,
        authorization: &AuthorizationConfig,
        https: bool,
    ) -> Result<Client, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let auth = if !basic.username.is_empty() {
            Auth::Basic {
                username: basic.username.clone(),
                password_file: basic.password_file.clone(),
            }
        } else if authorization.credentials_file.as_os_str().is_empty() {
            Auth::None
        } else {
            Auth::Scheme {
                scheme: authorization.kind.clone(),
                credentials_file: authorization.credentials_file.clone(),
            }
        };
        // A secret that cannot be read at start is a configuration error, not a first
        // failed delivery.
        match &auth {
            Auth::Basic { password_file, .. } => check_secret(
                password_file,
                &format!("{section}.basic_auth.password_file"),
                &mut errors,
            ),
            Auth::Scheme {
                credentials_file, ..
            } => check_secret(
                credentials_file,
                &format!("{section}.authorization.credentials_file"),
                &mut errors,
            ),
            Auth::None => {}
        }
        // Validation refused names that do not parse.
        let server_name = (!tls.server_name.is_empty())
            .then(|| ServerName::try_from(tls.server_name.clone()).ok())
            .flatten();
        let config = if https {
            tls_config(section, tls).map_err(|e| errors.extend(e)).ok()
        } else {
            None
        };
        if errors.is_empty() {
            Ok(Client {
                tls: config.map(Arc::new),
                server_name,
                auth,
            })
        } else {
            Err(errors)
        }
    }

    /// The `Authorization` header value for the next request, read from its file now;
    /// `None` without credentials.
    ///
    /// # Errors
    /// The secret file cannot be read.
    pub(crate) fn authorization(&self) -> Result<Option<String>, SecretUnreadable> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Basic {
                username,
                password_file,
            } => {
                let password = read_secret(password_file).map_err(|_| SecretUnreadable)?;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Ok(Some(format!("Basic {token}")))
            }
            Auth::Scheme {
                scheme,
                credentials_file,
            } => {
                let credentials = read_secret(credentials_file).map_err(|_| SecretUnreadable)?;
                Ok(Some(format!("{scheme} {credentials}")))
            }
        }
    }
}

fn key_error(path: &Path, key: &str, message: String) -> ConfigError {
    ConfigError {
        path: path.to_owned(),
        line: None,
        column: None,
        key: Some(key.to_owned()),
        message,
    }
}

fn check_secret(path: &Path, key: &str, errors: &mut Vec<ConfigError>) {
    if let Err(message) = read_secret(path) {
        errors.push(key_error(path, key, message));
    }
}

/// The secret in `path`, without surrounding whitespace (as Prometheus reads it).
fn read_secret(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() || meta.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "must be a regular file of at most {MAX_SECRET_BYTES} bytes"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let secret = text.trim();
    if secret.is_empty() || secret.contains(['\r', '\n']) {
        return Err("must hold one non-empty line".to_owned());
    }
    Ok(secret.to_owned())
}

/// The rustls client configuration of `tls`.
fn tls_config(section: &str, tls: &TlsClientConfig) -> Result<ClientConfig, Vec<ConfigError>> {
    let key = |name: &str| format!("{section}.tls_config.{name}");
    let file_error = |path: &Path, name: &str, m: String| key_error(path, &key(name), m);
    let provider = Arc::new(crate::tls::provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| vec![file_error(Path::new(section), "ca_file", e.to_string())])?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            section,
            "TLS certificates of alert receivers are not verified (insecure_skip_verify)."
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
    } else {
        let roots = if tls.ca_file.as_os_str().is_empty() {
            system_roots().map_err(|m| vec![file_error(Path::new(section), "ca_file", m)])?
        } else {
            crate::tls::read_pem_file(&tls.ca_file)
                .and_then(|pem| crate::tls::roots(&pem))
                .map_err(|m| vec![file_error(&tls.ca_file, "ca_file", m)])?
        };
        builder.with_root_certificates(roots)
    };
    let mut config = if tls.cert_file.as_os_str().is_empty() {
        builder.with_no_client_auth()
    } else {
        let chain = crate::tls::read_pem_file(&tls.cert_file)
            .and_then(|pem| crate::tls::certificates(&pem))
            .map_err(|m| vec![file_error(&tls.cert_file, "cert_file", m)])?;
        let private = crate::tls::read_pem_file(&tls.key_file)
            .and_then(|pem| crate::tls::private_key(&pem))
            .map_err(|m| vec![file_error(&tls.key_file, "key_file", m)])?;
        builder.with_client_auth_cert(chain, private).map_err(|e| {
            vec![file_error(
                &tls.key_file,
                "key_file",
                format!("the key does not fit the certificate: {e}"),
            )]
        })?
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's CA certificates (`/etc/ssl/certs` and the like).
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no system CA certificates found (install ca-certificates, or set ca_file)".to_owned(),
        );
    }
    Ok(Arc::new(store))
}

/// `insecure_skip_verify`: any certificate is accepted; the handshake signature is still
/// checked, so the connection is encrypted to whoever answered.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_at_each_request_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let basic = BasicAuthConfig {
            username: "netwarden".to_owned(),
            password_file: file.clone(),
        };
        let client = Client::build(
            "alerting",
            &TlsClientConfig::default(),
            &basic,
            &AuthorizationConfig::default(),
            false,
        )
        .unwrap();
        // base64("netwarden:s3cret")
        assert_eq!(
            client.authorization().unwrap().as_deref(),
            Some("Basic bmV0d2FyZGVuOnMzY3JldA==")
        );
        std::fs::write(&file, "rotated").unwrap();
        assert_eq!(
            client.authorization().unwrap().as_deref(),
            Some("Basic bmV0d2FyZGVuOnJvdGF0ZWQ=")
        );
        std::fs::remove_file(&file).unwrap();
        assert!(client.authorization().is_err());
    }

    #[test]
    fn a_bearer_token_file_and_unreadable_files_name_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "abc.def\n").unwrap();
        let authorization = AuthorizationConfig {
            kind: "Bearer".to_owned(),
            credentials_file: token,
        };
        let client = Client::build(
            "alerting.webhook",
            &TlsClientConfig::default(),
            &BasicAuthConfig::default(),
            &authorization,
            false,
        )
        .unwrap();
        assert_eq!(
            client.authorization().unwrap().as_deref(),
            Some("Bearer abc.def")
        );
        let tls = TlsClientConfig {
            ca_file: dir.path().join("missing-ca.pem"),
            ..TlsClientConfig::default()
        };
        let errors = Client::build(
            "alerting",
            &tls,
            &BasicAuthConfig {
                username: "u".to_owned(),
                password_file: dir.path().join("missing"),
            },
            &AuthorizationConfig::default(),
            true,
        )
        .unwrap_err();
        let keys: Vec<&str> = errors.iter().filter_map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                "alerting.basic_auth.password_file",
                "alerting.tls_config.ca_file"
            ]
        );
    }
}
