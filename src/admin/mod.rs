//! The HTTP endpoint: `/metrics`, `/healthz`, `/readyz`, safe to expose to a network.
//!
//! Owns the three routes (axum, on the admin thread's own runtime; never the hot path),
//! readiness (a flag the app sets once every capture source is open and the listener is
//! bound; health answers as long as the process serves), and [`Settings`], the runtime
//! form of `[metrics]`. The connection handling that keeps the endpoint answering under
//! abuse (timeouts, the connection cap, file descriptors kept for the rest of the daemon)
//! lives in `server`, the file-descriptor arithmetic in `fd_budget`.
//!
//! Does not own: the metric definitions (`crate::telemetry`) or the thread that runs this
//! (`crate::app`).

mod fd_budget;
mod server;

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

use crate::config::Config;
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
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Timeouts and the connection cap.
    pub limits: Limits,
}

impl Settings {
    /// The endpoint of a validated `config`. The connection cap is lowered if the process's
    /// file limit could not otherwise spare the descriptors kept for alert delivery and
    /// state (one warning says so); call it once the capture sockets are open, as they
    /// count against the same limit.
    pub fn from_config(config: &Config) -> Settings {
        let m = &config.metrics;
        let sinks = config.alerting.alertmanager_urls.len()
            + usize::from(!config.alerting.webhook.url.is_empty());
        Settings {
            listen: m.listen,
            limits: Limits {
                header_read_timeout: m.header_read_timeout.0,
                idle_timeout: m.idle_timeout.0,
                max_connections: fd_budget::connection_cap(m.max_connections, sinks),
            },
        }
    }
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
    server::serve(listener, settings.limits, app, http, shutdown).await
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
