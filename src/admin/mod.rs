//! The HTTP endpoint: `/metrics`, `/healthz`, `/readyz`, safe to expose to a network.
//!
//! Owns the three routes (axum, on the admin thread's own runtime; never the hot path),
//! readiness (a flag the app sets once every capture source is open and the listener is
//! bound; health answers as long as the process serves), and [`Settings`], the runtime
//! form of `[metrics]`. The connection handling that keeps the endpoint answering under
//! abuse (timeouts, the connection cap, file descriptors kept for the rest of the daemon)
//! lives in `server`, the file-descriptor arithmetic in `fd_budget`; TLS, basic
//! authentication, headers and the rate limit of the web configuration file in `web`
//! and `tls`.
//!
//! Does not own: the metric definitions (`crate::telemetry`) or the thread that runs this
//! (`crate::app`).

mod fd_budget;
mod server;
mod tls;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

pub use server::Limits;

use crate::config::{Config, ConfigErrors};
use crate::telemetry::Metrics;

/// State shared with the handlers.
#[derive(Clone)]
pub struct AdminState {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Set when the daemon is ready to serve traffic.
    pub ready: Arc<AtomicBool>,
}

/// The runtime form of `[metrics]`: where to listen and how to protect the endpoint.
#[derive(Clone)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Timeouts and the connection cap.
    pub limits: Limits,
    /// TLS, authentication, headers and rate limit (`metrics.web_config_file`).
    web: Arc<web::WebSource>,
}

impl Settings {
    /// The endpoint of a validated `config`, with its web configuration file loaded. The
    /// connection cap is lowered if the process's file limit could not otherwise spare
    /// the descriptors kept for alert delivery and state (one warning says so); call it
    /// once the capture sockets are open, as they count against the same limit.
    ///
    /// # Errors
    /// The web configuration file, or a certificate or key it names, cannot be used.
    pub fn from_config(config: &Config) -> Result<Settings, ConfigErrors> {
        let m = &config.metrics;
        let sinks = config.alerting.alertmanager_urls.len()
            + usize::from(!config.alerting.webhook.url.is_empty());
        let web_file = Some(m.web_config_file.as_path()).filter(|p| !p.as_os_str().is_empty());
        Ok(Settings {
            listen: m.listen,
            limits: Limits {
                header_read_timeout: m.header_read_timeout.0,
                idle_timeout: m.idle_timeout.0,
                max_connections: fd_budget::connection_cap(m.max_connections, sinks),
            },
            web: Arc::new(web::WebSource::load(web_file)?),
        })
    }
}

/// Checks `config`'s web configuration file and the certificate, key and CA it names, as
/// start-up would (for `netwarden check-config`).
///
/// # Errors
/// Every problem, naming file, line and key.
pub fn check_web_config(config: &Config) -> Result<(), ConfigErrors> {
    let path = &config.metrics.web_config_file;
    if !path.as_os_str().is_empty() {
        web::WebSource::load(Some(path))?;
    }
    Ok(())
}

/// Binds `addr`. Binding happens before readiness so a port clash fails start-up.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves, then closes every connection.
///
/// # Errors
/// The listener fails for good (not per-connection errors, which are only counted).
pub async fn serve(
    listener: TcpListener,
    settings: &Settings,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let http = state.metrics.http.clone();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state);
    server::serve(
        listener,
        settings.limits,
        Arc::clone(&settings.web),
        app,
        http,
        shutdown,
    )
    .await
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        state.metrics.render(),
    )
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}
