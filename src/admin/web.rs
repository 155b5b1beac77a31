//! The endpoint's web configuration at run time: the TLS acceptor, basic authentication,
//! response headers and the rate limit, and picking up changes to their files.
//!
//! Owns [`Web`] (built from a [`LoadedWebConfig`]; `answer` applies headers, the rate
//! limit and authentication around the routes, in the toolkit's order) and [`WebSource`],
//! which, as the toolkit does, notices on each new connection when the web configuration
//! or the certificate, key or client CA it names changed (modification time, size, inode)
//! and rebuilds; a change that does not load is logged and the running configuration kept,
//! so a certificate renewal needs no restart and a bad edit no outage.
//!
//! Basic authentication: bcrypt is slow on purpose (about 70 ms at cost 10), so checks run
//! off the admin thread one at a time, and a successful (user, password) pair is
//! remembered (at most [`MAX_REMEMBERED`]) so a scraper pays once. An unknown user costs
//! a bcrypt check too, so timing does not tell which users exist.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::header::{AUTHORIZATION, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use axum::http::{Request, Response, StatusCode};
use base64::Engine as _;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::config::ConfigErrors;
use crate::config::web::LoadedWebConfig;
use crate::telemetry::HttpMetrics;

/// Most (user, password) pairs remembered as verified.
const MAX_REMEMBERED: usize = 256;

/// A web configuration ready to serve.
pub(super) struct Web {
    /// TLS, when enabled.
    pub(super) tls: Option<TlsAcceptor>,
    auth: Option<BasicAuth>,
    headers: Vec<(HeaderName, HeaderValue)>,
    limiter: Option<Mutex<TokenBucket>>,
}

impl Web {
    /// Plain HTTP, no authentication: no web configuration file.
    pub(super) fn plain() -> Web {
        Web {
            tls: None,
            auth: None,
            headers: Vec::new(),
            limiter: None,
        }
    }

    /// Builds from a checked web configuration, reading its certificate and key.
    ///
    /// # Errors
    /// Files that cannot be read or used, each naming the file and key.
    pub(super) fn build(loaded: &LoadedWebConfig) -> Result<Web, ConfigErrors> {
        let c = &loaded.config;
        let tls = match c.tls_server_config.as_ref().filter(|t| t.is_enabled()) {
            Some(t) => Some(TlsAcceptor::from(
                super::tls::server_config(loaded, t).map_err(ConfigErrors)?,
            )),
            None => None,
        };
        let headers = c
            .http_server_config
            .iter()
            .flat_map(|h| &h.headers)
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::try_from(name.as_str()).ok()?,
                    HeaderValue::from_str(value).ok()?,
                ))
            })
            .collect();
        let limiter = c.rate_limit.as_ref().and_then(|r| {
            let interval = humantime::parse_duration(&r.interval).ok()?;
            (!interval.is_zero()).then(|| Mutex::new(TokenBucket::new(interval, r.burst)))
        });
        Ok(Web {
            tls,
            auth: c
                .basic_auth_users
                .as_ref()
                .filter(|u| !u.is_empty())
                .map(|users| BasicAuth::new(users.clone())),
            headers,
            limiter,
        })
    }

    /// Answers `request` with `app`, unless the rate limit or authentication refuses it;
    /// every answer carries the configured headers.
    pub(super) async fn answer(
        &self,
        request: Request<Incoming>,
        app: &TowerToHyperService<Router>,
        metrics: &HttpMetrics,
    ) -> Result<Response<Body>, Infallible> {
        let mut response = if self.limiter.as_ref().is_some_and(|l| !lock(l).take()) {
            metrics.reject("rate_limited");
            refusal(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n")
        } else if let Some(auth) = &self.auth
            && !auth.allows(request.headers().get(AUTHORIZATION)).await
        {
            metrics.reject("unauthorized");
            let mut r = refusal(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            r
        } else {
            hyper::service::Service::call(app, request).await?
        };
        for (name, value) in &self.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(response)
    }
}

fn refusal(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these; a poisoned one is still consistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `basic_auth_users`.
struct BasicAuth {
    users: BTreeMap<String, String>,
    remembered: Mutex<HashSet<(String, String)>>,
    /// One bcrypt check at a time.
    checking: tokio::sync::Semaphore,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, String>) -> BasicAuth {
        BasicAuth {
            users,
            remembered: Mutex::new(HashSet::new()),
            checking: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether `header` holds the credentials of a configured user.
    async fn allows(&self, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(basic_credentials) else {
            return false;
        };
        let pair = (user, password);
        if lock(&self.remembered).contains(&pair) {
            return true;
        }
        let known = self.users.get(&pair.0);
        // An unknown user is checked against some hash anyway, to take as long.
        let Some(hash) = known.or_else(|| self.users.values().next()).cloned() else {
            return false;
        };
        let Ok(_turn) = self.checking.acquire().await else {
            return false;
        };
        let password = pair.1.clone();
        let matches =
            tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        if matches && known.is_some() {
            let mut remembered = lock(&self.remembered);
            if remembered.len() >= MAX_REMEMBERED {
                remembered.clear();
            }
            remembered.insert(pair);
            return true;
        }
        false
    }
}

/// The user and password of an `Authorization: Basic …` header.
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// `rate_limit`: one request per `interval`, up to `burst` at once.
struct TokenBucket {
    interval: Duration,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(interval: Duration, burst: u32) -> TokenBucket {
        TokenBucket {
            interval,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The web configuration in force, rebuilt when its files change (see the module doc).
pub(super) struct WebSource {
    path: Option<PathBuf>,
    state: Mutex<Current>,
}

/// The running configuration and the files it was built from, with their stamps.
struct Current {
    files: Vec<PathBuf>,
    stamps: Vec<Stamp>,
    web: Arc<Web>,
}

/// What identifies a file's contents cheaply: modification time, size, inode.
type Stamp = Option<(SystemTime, u64, u64)>;

impl WebSource {
    /// Loads `path` (`None`: plain HTTP without authentication).
    ///
    /// # Errors
    /// The file or what it names cannot be loaded, each problem naming file, line and key.
    pub(super) fn load(path: Option<&Path>) -> Result<WebSource, ConfigErrors> {
        let current = match path {
            Some(p) => build(p)?,
            None => Current {
                files: Vec::new(),
                stamps: Vec::new(),
                web: Arc::new(Web::plain()),
            },
        };
        Ok(WebSource {
            path: path.map(Path::to_owned),
            state: Mutex::new(current),
        })
    }

    /// The configuration for a new connection, rebuilt first if one of its files changed.
    pub(super) fn current(&self) -> Arc<Web> {
        let mut state = lock(&self.state);
        if let Some(path) = &self.path
            && stamps(&state.files) != state.stamps
        {
            match build(path) {
                Ok(current) => {
                    tracing::info!(path = %path.display(), "Web configuration reloaded.");
                    *state = current;
                }
                Err(e) => {
                    tracing::error!(
                        path = %path.display(), error = %e,
                        "Web configuration not reloaded; keeping the running one."
                    );
                    // Warn once per change, not once per connection.
                    state.stamps = stamps(&state.files);
                }
            }
        }
        Arc::clone(&state.web)
    }
}

/// Loads the web configuration at `path`; stamps it and the TLS files it names.
fn build(path: &Path) -> Result<Current, ConfigErrors> {
    // Stamped before reading, so a change during the read is seen next time.
    let before = stamp(path);
    let loaded = crate::config::web::load(path)?;
    let mut files = vec![path.to_owned()];
    if let Some(t) = &loaded.config.tls_server_config {
        for f in [&t.cert_file, &t.key_file, &t.client_ca_file] {
            if !f.is_empty() {
                files.push(loaded.resolve(f));
            }
        }
    }
    let mut stamps = stamps(&files);
    if let Some(first) = stamps.first_mut() {
        *first = before;
    }
    let web = Arc::new(Web::build(&loaded)?);
    Ok(Current { files, stamps, web })
}

fn stamps(files: &[PathBuf]) -> Vec<Stamp> {
    files.iter().map(|f| stamp(f)).collect()
}

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded_from_the_header() {
        let header = HeaderValue::from_static("Basic cHJvbTpzM2NyZXQ6eA==");
        assert_eq!(
            basic_credentials(&header),
            Some(("prom".to_owned(), "s3cret:x".to_owned()))
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Bearer x")),
            None
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Basic !!")),
            None
        );
    }

    #[tokio::test]
    async fn only_configured_users_with_their_password_are_allowed() {
        let auth = BasicAuth::new(BTreeMap::from([(
            "prom".to_owned(),
            bcrypt::hash("s3cret", 4).unwrap(),
        )]));
        let header = |user: &str, password: &str| {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
        };
        assert!(auth.allows(Some(&header("prom", "s3cret"))).await);
        // Remembered now, and still only for the right password.
        assert!(auth.allows(Some(&header("prom", "s3cret"))).await);
        assert!(!auth.allows(Some(&header("prom", "wrong"))).await);
        assert!(!auth.allows(Some(&header("mallory", "s3cret"))).await);
        assert!(!auth.allows(None).await);
    }

    #[test]
    fn an_edited_file_is_picked_up_and_a_broken_edit_keeps_the_running_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.yml");
        let users = |name: &str| {
            format!(
                "basic_auth_users:\n  {name}: '{}'\n",
                bcrypt::hash("x", 4).unwrap()
            )
        };
        std::fs::write(&path, users("alice")).unwrap();
        let source = WebSource::load(Some(&path)).unwrap();
        let names = |web: &Web| -> Vec<String> {
            web.auth.as_ref().unwrap().users.keys().cloned().collect()
        };
        assert_eq!(names(&source.current()), ["alice"]);
        std::fs::write(&path, users("bob")).unwrap();
        assert_eq!(names(&source.current()), ["bob"]);
        std::fs::write(&path, "basic_auth_users:\n  carol: plain\n").unwrap();
        assert_eq!(names(&source.current()), ["bob"]);
    }

    #[test]
    fn the_token_bucket_allows_a_burst_then_one_per_interval() {
        let mut bucket = TokenBucket::new(Duration::from_secs(3600), 2);
        assert!(bucket.take());
        assert!(bucket.take());
        assert!(!bucket.take());
    }
}
