//! The HTTP endpoint: `/metrics`, `/healthz`, `/readyz`.
//!
//! Owns binding the listener and serving the three routes with axum on the tokio runtime
//! (the edge, never the hot path). Readiness is a flag the app sets once every capture
//! source is open and the listener is bound; health answers as long as the process serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::telemetry::Metrics;

/// State shared with the handlers.
#[derive(Clone)]
pub struct AdminState {
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Set when the daemon is ready to serve traffic.
    pub ready: Arc<AtomicBool>,
}

/// Binds `addr`. Binding happens before readiness so a port clash fails start-up.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` resolves.
///
/// # Errors
/// The server fails while running.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
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
