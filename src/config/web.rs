//! The web configuration file of the metrics endpoint: TLS and basic authentication in
//! the Prometheus exporter-toolkit format (`--web.config.file` of `node_exporter`,
//! Prometheus and Alertmanager), so the file an operator already has works here as is.
//!
//! Owns the YAML schema ([`WebConfig`]: `tls_server_config`, `http_server_config`,
//! `basic_auth_users`, `rate_limit`), [`load`] (read, parse, check every value) and the
//! errors it reports, each naming the file, line and key. Relative paths in
//! `tls_server_config` are relative to the web configuration file's folder, as in the
//! toolkit. Does not own: reading certificates and keys or serving (`crate::admin`).
//!
//! Where netwarden serves less than Go's TLS stack (TLS 1.0/1.1, CBC and RSA-key-exchange
//! cipher suites, the P-521 curve, HTTP/2), the file is still accepted: a weaker minimum
//! version is raised to TLS 1.2, and suites or curves that are not offered are left out
//! with a warning; a list left empty by that is an error.
//!
//! Invariant after [`load`] returns `Ok`: TLS, if enabled, names a certificate and a key;
//! every bcrypt hash parses; every header is one the toolkit allows, with a valid value;
//! every cipher suite and curve name is one Go knows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, ConfigErrors};

/// Largest web configuration file read (it holds a few hashes and paths, or inline PEM).
pub const MAX_WEB_CONFIG_BYTES: u64 = 1 << 20;

/// The whole file. Every section is optional; an empty file serves plain HTTP without
/// authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// TLS for the endpoint; absent or empty: plain HTTP.
    pub tls_server_config: Option<TlsServerConfig>,
    /// HTTP options: extra response headers.
    pub http_server_config: Option<HttpServerConfig>,
    /// User name to bcrypt hash. Non-empty: every request needs HTTP basic
    /// authentication as one of these users.
    pub basic_auth_users: Option<BTreeMap<String, String>>,
    /// A token bucket over all requests; absent or a zero interval: no limit.
    pub rate_limit: Option<RateLimitConfig>,
}

/// `tls_server_config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsServerConfig {
    /// The server certificate chain as inline PEM (instead of `cert_file`).
    pub cert: String,
    /// The server's private key as inline PEM (instead of `key_file`).
    pub key: String,
    /// CA certificates for client certificates, inline PEM (instead of `client_ca_file`).
    pub client_ca: String,
    /// PEM file of the server certificate chain, leaf first.
    pub cert_file: String,
    /// PEM file of the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// Whether and how client certificates are asked for and checked.
    pub client_auth_type: ClientAuthType,
    /// PEM file of the CA certificates client certificates must chain to.
    pub client_ca_file: String,
    /// Client certificates must carry one of these DNS names or IP addresses as a
    /// subject alternative name (needs `RequireAnyClientCert` or
    /// `RequireAndVerifyClientCert`).
    pub client_allowed_sans: Option<Vec<String>>,
    /// Oldest TLS version accepted (`TLS10` and `TLS11` act as `TLS12`).
    pub min_version: TlsVersion,
    /// Newest TLS version accepted.
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites offered, by Go name, in order; empty: all netwarden offers.
    /// TLS 1.3 suites are always on, as in Go.
    pub cipher_suites: Vec<String>,
    /// Serve the suites in `cipher_suites` order rather than the client's.
    pub prefer_server_cipher_suites: bool,
    /// Key-exchange groups, by Go name (`X25519`, `CurveP256`, `CurveP384`), in order.
    pub curve_preferences: Vec<String>,
}

impl Default for TlsServerConfig {
    fn default() -> Self {
        TlsServerConfig {
            cert: String::new(),
            key: String::new(),
            client_ca: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            client_auth_type: ClientAuthType::NoClientCert,
            client_ca_file: String::new(),
            client_allowed_sans: None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            prefer_server_cipher_suites: true,
            curve_preferences: Vec::new(),
        }
    }
}

impl TlsServerConfig {
    /// Whether any field turns TLS on (the toolkit's `IsEnabled`).
    pub fn is_enabled(&self) -> bool {
        [
            &self.cert,
            &self.key,
            &self.client_ca,
            &self.cert_file,
            &self.key_file,
            &self.client_ca_file,
        ]
        .iter()
        .any(|s| !s.is_empty())
            || self.client_auth_type != ClientAuthType::NoClientCert
    }
}

/// `client_auth_type`, named as Go's `tls.ClientAuthType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum ClientAuthType {
    /// No client certificate is asked for.
    #[serde(alias = "")]
    NoClientCert,
    /// Asked for, not required, not checked.
    RequestClientCert,
    /// Required, not checked against a CA.
    #[serde(alias = "RequireClientCert")]
    RequireAnyClientCert,
    /// Checked against the client CA when one is sent.
    VerifyClientCertIfGiven,
    /// Required and checked against the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// Whether a client certificate is checked against `client_ca`/`client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }

    /// Whether a client without a certificate is refused.
    pub fn requires(self) -> bool {
        matches!(
            self,
            ClientAuthType::RequireAnyClientCert | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

/// `min_version` / `max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.0 (served as TLS 1.2 at least).
    #[serde(rename = "TLS10")]
    Tls10,
    /// TLS 1.1 (served as TLS 1.2 at least).
    #[serde(rename = "TLS11")]
    Tls11,
    /// TLS 1.2.
    #[serde(rename = "TLS12")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "TLS13")]
    Tls13,
}

/// `http_server_config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    /// Accepted for compatibility; netwarden serves HTTP/1.1 (and offers only
    /// `http/1.1` in TLS ALPN, so clients never try HTTP/2).
    pub http2: bool,
    /// Headers added to every response. Allowed, as in the toolkit:
    /// `Content-Security-Policy`, `X-Frame-Options` (`deny` or `sameorigin`),
    /// `X-Content-Type-Options` (`nosniff`), `X-XSS-Protection`,
    /// `Strict-Transport-Security`.
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

/// `rate_limit`: a token bucket shared by all clients.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Time to earn one request (Go duration, e.g. `"100ms"`); empty or zero: no limit.
    pub interval: String,
    /// Requests that may come at once.
    pub burst: u32,
}

/// Headers the toolkit lets a web config set (compared case-insensitively).
const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

/// Every cipher suite Go's `tls.CipherSuites()` names (the ones the toolkit accepts).
pub const GO_CIPHER_SUITES: [&str; 17] = [
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Every curve name the toolkit accepts.
pub const GO_CURVES: [&str; 4] = ["CurveP256", "CurveP384", "CurveP521", "X25519"];

/// A loaded web configuration file.
#[derive(Clone, Debug)]
pub struct LoadedWebConfig {
    /// The file.
    pub path: PathBuf,
    /// Its text, for locating keys in error messages.
    pub source: String,
    /// The parsed and checked contents.
    pub config: WebConfig,
}

impl LoadedWebConfig {
    /// An error about `key` (dotted, e.g. `tls_server_config.cert_file`) in this file.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let line = locate_yaml(&self.source, key);
        ConfigError {
            path: self.path.clone(),
            line,
            column: line.map(|_| 1),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }

    /// `file` (a path from the file) made relative to the web configuration's folder.
    pub fn resolve(&self, file: &str) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }
}

/// Reads, parses and checks the web configuration file at `path`.
///
/// # Errors
/// Every problem, each naming the file, line and key.
pub fn load(path: &Path) -> Result<LoadedWebConfig, ConfigErrors> {
    let whole = |message: String| {
        ConfigErrors(vec![ConfigError {
            key: Some("metrics.web_config_file".to_owned()),
            ..ConfigError::whole_file(path, message)
        }])
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(whole("not a regular file".to_owned()));
    }
    if meta.len() > MAX_WEB_CONFIG_BYTES {
        return Err(whole(format!("larger than {MAX_WEB_CONFIG_BYTES} bytes")));
    }
    let source = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    parse(&source, path)
}

/// Parses and checks web configuration text; `path` names it in errors and anchors its
/// relative paths.
///
/// # Errors
/// Every problem found.
pub fn parse(source: &str, path: &Path) -> Result<LoadedWebConfig, ConfigErrors> {
    // An empty document is YAML's null: no TLS, no authentication.
    let parsed = if source.trim().is_empty() {
        Ok(WebConfig::default())
    } else {
        serde_norway::from_str::<Option<WebConfig>>(source).map(Option::unwrap_or_default)
    };
    let config = parsed.map_err(|e| {
        let location = e.location();
        ConfigErrors(vec![ConfigError {
            path: path.to_owned(),
            line: location.as_ref().map(serde_norway::Location::line),
            column: location.as_ref().map(serde_norway::Location::column),
            key: None,
            message: yaml_message(&e),
        }])
    })?;
    let loaded = LoadedWebConfig {
        path: path.to_owned(),
        source: source.to_owned(),
        config,
    };
    let mut errors = Vec::new();
    validate(&loaded.config, &mut |key, message| {
        errors.push(loaded.error(key, message));
    });
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The parser's message without the position it appends (reported separately).
fn yaml_message(e: &serde_norway::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text.get(..at).unwrap_or(&text).to_owned(),
        None => text,
    }
}

/// Reports every semantic problem of `c` as (dotted key, message).
fn validate(c: &WebConfig, bad: &mut impl FnMut(&str, String)) {
    if let Some(tls) = &c.tls_server_config {
        validate_tls(tls, bad);
    }
    if let Some(http) = &c.http_server_config {
        validate_headers(&http.headers, bad);
    }
    for (user, hash) in c.basic_auth_users.iter().flatten() {
        if user.is_empty() || user.contains(':') {
            bad(
                "basic_auth_users",
                format!("user name `{user}` must be non-empty and without `:`"),
            );
        }
        if hash.parse::<bcrypt::HashParts>().is_err() {
            bad(
                &format!("basic_auth_users.{user}"),
                "not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                    .to_owned(),
            );
        }
    }
    if let Some(limit) = &c.rate_limit
        && !limit.interval.is_empty()
    {
        match humantime::parse_duration(&limit.interval) {
            Err(_) => bad(
                "rate_limit.interval",
                format!("`{}` is not a duration such as \"100ms\"", limit.interval),
            ),
            Ok(d) if !d.is_zero() && limit.burst == 0 => bad(
                "rate_limit.burst",
                "must be at least 1 when interval is set".to_owned(),
            ),
            Ok(_) => {}
        }
    }
}

fn validate_tls(t: &TlsServerConfig, bad: &mut impl FnMut(&str, String)) {
    if !t.is_enabled() {
        return;
    }
    let key = |name: &str| format!("tls_server_config.{name}");
    for (inline_name, inline, file_name, file, required) in [
        ("cert", &t.cert, "cert_file", &t.cert_file, true),
        ("key", &t.key, "key_file", &t.key_file, true),
        (
            "client_ca",
            &t.client_ca,
            "client_ca_file",
            &t.client_ca_file,
            false,
        ),
    ] {
        if !inline.is_empty() && !file.is_empty() {
            bad(
                &key(file_name),
                format!("set either {inline_name} or {file_name}, not both"),
            );
        }
        if required && inline.is_empty() && file.is_empty() {
            bad(
                &key(file_name),
                format!("TLS is enabled but neither {inline_name} nor {file_name} is set"),
            );
        }
    }
    let has_ca = !t.client_ca.is_empty() || !t.client_ca_file.is_empty();
    if has_ca && t.client_auth_type == ClientAuthType::NoClientCert {
        bad(
            &key("client_auth_type"),
            "a client CA is set without a client_auth_type that uses it".to_owned(),
        );
    }
    if t.client_auth_type.verifies() && !has_ca {
        bad(
            &key("client_ca_file"),
            format!(
                "{:?} needs client_ca_file (or client_ca)",
                t.client_auth_type
            ),
        );
    }
    if t.client_allowed_sans.is_some() && !t.client_auth_type.requires() {
        bad(
            &key("client_allowed_sans"),
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert".to_owned(),
        );
    }
    for san in t.client_allowed_sans.iter().flatten() {
        if san.parse::<std::net::IpAddr>().is_err()
            && rustls::pki_types::DnsName::try_from(san.as_str()).is_err()
        {
            bad(
                &key("client_allowed_sans"),
                format!("`{san}`: only DNS names and IP addresses can be matched"),
            );
        }
    }
    if t.max_version < TlsVersion::Tls12 {
        bad(
            &key("max_version"),
            "netwarden serves TLS 1.2 and 1.3 only".to_owned(),
        );
    }
    if t.min_version > t.max_version {
        bad(
            &key("min_version"),
            "must not be newer than max_version".to_owned(),
        );
    }
    for suite in &t.cipher_suites {
        if !GO_CIPHER_SUITES.contains(&suite.as_str()) {
            bad(
                &key("cipher_suites"),
                format!("unknown cipher suite `{suite}`"),
            );
        }
    }
    for curve in &t.curve_preferences {
        if !GO_CURVES.contains(&curve.as_str()) {
            bad(
                &key("curve_preferences"),
                format!("unknown curve `{curve}`"),
            );
        }
    }
}

fn validate_headers(headers: &BTreeMap<String, String>, bad: &mut impl FnMut(&str, String)) {
    for (name, value) in headers {
        let key = format!("http_server_config.headers.{name}");
        let Some(known) = ALLOWED_HEADERS
            .iter()
            .find(|h| h.eq_ignore_ascii_case(name))
        else {
            bad(
                &key,
                format!("header `{name}` cannot be set; allowed: {ALLOWED_HEADERS:?}"),
            );
            continue;
        };
        let v = value.to_ascii_lowercase();
        let fine = match *known {
            "X-Frame-Options" => v == "deny" || v == "sameorigin",
            "X-Content-Type-Options" => v == "nosniff",
            _ => true,
        };
        if !fine || axum::http::HeaderValue::from_str(value).is_err() {
            bad(&key, format!("`{value}` is not a valid value for {known}"));
        }
    }
}

/// The 1-based line where dotted `key` is written in block-style YAML, if it is: each
/// `name:` line nests under the nearest less-indented one above it.
fn locate_yaml(source: &str, key: &str) -> Option<usize> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in source.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = raw.len() - trimmed.len();
        let Some((name, _)) = trimmed.split_once(':') else {
            continue;
        };
        let name = name.trim().trim_matches(|c| c == '"' || c == '\'');
        while stack.last().is_some_and(|(at, _)| *at >= indent) {
            stack.pop();
        }
        stack.push((indent, name.to_owned()));
        let path: Vec<&str> = stack.iter().map(|(_, n)| n.as_str()).collect();
        if path.join(".") == key {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(src: &str) -> Vec<String> {
        match parse(src, Path::new("web.yml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// A cost-4 bcrypt hash (of "pw"): cheap enough for tests.
    fn hash() -> String {
        bcrypt::hash("pw", 4).unwrap()
    }

    #[test]
    fn the_toolkit_documentation_example_loads() {
        let src = format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  \
             min_version: TLS12\n  max_version: TLS13\n  cipher_suites:\n    \
             - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  prefer_server_cipher_suites: true\n  \
             curve_preferences: [X25519, CurveP256]\n\
             http_server_config:\n  http2: false\n  headers:\n    \
             X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n\
             basic_auth_users:\n  prometheus: '{}'\n\
             rate_limit:\n  interval: 100ms\n  burst: 10\n",
            hash()
        );
        let loaded = parse(&src, Path::new("/etc/netwarden/web.yml")).unwrap();
        let tls = loaded.config.tls_server_config.clone().unwrap();
        assert!(tls.is_enabled());
        assert_eq!(
            tls.client_auth_type,
            ClientAuthType::RequireAndVerifyClientCert
        );
        assert_eq!(
            loaded.resolve(&tls.cert_file),
            Path::new("/etc/netwarden/server.crt")
        );
        assert_eq!(loaded.config.basic_auth_users.unwrap().len(), 1);
    }

    #[test]
    fn empty_file_means_plain_http_without_authentication() {
        assert_eq!(
            parse("", Path::new("w")).unwrap().config,
            WebConfig::default()
        );
        assert_eq!(
            parse("# nothing\n", Path::new("w")).unwrap().config,
            WebConfig::default()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let errs = errors_of("tls_server_config:\n  cert_fil: x\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("web.yml:2:"), "{}", errs[0]);
        assert!(errs[0].contains("unknown field `cert_fil`"), "{}", errs[0]);

        let errs = errors_of(
            "tls_server_config:\n  cert_file: a\n  min_version: TLS13\n  max_version: TLS12\n\
             basic_auth_users:\n  alice: plain-text\n\
             http_server_config:\n  headers:\n    X-Frame-Options: allow\n    Server: x\n",
        );
        assert_eq!(errs.len(), 5, "{errs:?}");
        assert!(
            errs.iter()
                .any(|e| e.starts_with("web.yml: key `tls_server_config.key_file`: TLS is")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("web.yml:3:1: key `tls_server_config.min_version`")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("web.yml:6:1: key `basic_auth_users.alice`")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e
                    .starts_with("web.yml:9:1: key `http_server_config.headers.X-Frame-Options`")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("web.yml:10:1: key `http_server_config.headers.Server`")),
            "{errs:?}"
        );
    }

    #[test]
    fn client_certificate_settings_must_agree() {
        let errs =
            errors_of("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("client_auth_type"), "{}", errs[0]);
        let errs = errors_of(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [x@y]\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        let errs = errors_of(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Bogus\n",
        );
        assert!(errs[0].contains("unknown variant `Bogus`"), "{errs:?}");
    }

    #[test]
    fn yaml_keys_are_located_by_indentation() {
        let src = "a:\n  b: 1\n  c:\n    d: 2\n# a.e: no\ne: 3\n";
        assert_eq!(locate_yaml(src, "a.b"), Some(2));
        assert_eq!(locate_yaml(src, "a.c.d"), Some(4));
        assert_eq!(locate_yaml(src, "e"), Some(6));
        assert_eq!(locate_yaml(src, "a.e"), None);
    }
}
