//! The metrics endpoint's connections: accepting them, bounding them, timing them out.
//!
//! Owns the accept loop and each connection's lifetime, by the rules an exposed endpoint
//! needs (the same ones Go's `net/http` server offers Prometheus exporters):
//! - **header read timeout**: a request head must arrive whole within
//!   [`Limits::header_read_timeout`], counted from the connection's start for its first
//!   request and from the first byte for later ones. A half-sent request is dropped
//!   unanswered.
//! - **idle timeout**: between requests, or while an answer cannot be written, a
//!   connection on which no byte moves for [`Limits::idle_timeout`] is closed.
//! - **connection cap**: at most [`Limits::max_connections`] are open. A new connection at
//!   the cap closes the oldest one that has no request in progress (an idle scraper or an
//!   attacker's silent socket), so a client that sends its request at once is always
//!   served; if every connection is mid-request the new one is closed instead.
//!
//! Invariant: the endpoint holds at most `max_connections + 1` descriptors (the +1 is the
//! connection just accepted): an evicted connection is dropped before the next accept.
//! `fd_budget` sizes the cap so that this never eats into what the rest of the daemon
//! needs. Every closed or refused connection is counted by reason
//! (`netwarden_http_rejections_total`).
//!
//! With TLS on, the handshake counts as part of the first request head. Does not own: the
//! routes (`super`), or TLS and authentication settings (`web`).

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::web::{Web, WebSource};
use crate::telemetry::HttpMetrics;

/// How the endpoint protects itself; see the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a request head may take to arrive.
    pub header_read_timeout: Duration,
    /// Longest a connection may sit without a byte moving, outside a request.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// Largest request head (request line and headers) read; hyper's smallest allowed buffer
/// is 8 KiB, and a scrape request is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 << 10;

/// Pause after a failed accept (the file limit reached after all, or a network error), so
/// a lasting failure does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Most scheduler turns to wait for an evicted connection to be dropped.
const MAX_EVICTION_YIELDS: usize = 64;

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then closes every
/// connection.
///
/// # Errors
/// None today: accept errors are retried after a pause; the signature leaves room for a
/// listener that fails for good.
pub(super) async fn serve(
    listener: TcpListener,
    limits: Limits,
    web: Arc<WebSource>,
    app: Router,
    metrics: HttpMetrics,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let connections = Arc::new(Connections::new(limits.max_connections, metrics.clone()));
    let origin = Instant::now();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "Metrics endpoint cannot accept a connection.");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let activity = Arc::new(Activity::new(origin));
        let Some(admitted) = connections.admit(&activity) else {
            metrics.reject("over_capacity");
            continue;
        };
        let task = tokio::spawn(connection(
            stream,
            Peer {
                activity,
                limits,
                web: web.current(),
                metrics: metrics.clone(),
            },
            app.clone(),
            admitted,
        ));
        connections.attach(task.abort_handle());
        // An evicted connection closes its socket when its task is dropped, on the
        // scheduler's next turn: let that happen before accepting another.
        for _ in 0..MAX_EVICTION_YIELDS {
            if !connections.is_closing() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    connections.close_all();
    Ok(())
}

/// What one connection is served with.
struct Peer {
    activity: Arc<Activity>,
    limits: Limits,
    web: Arc<Web>,
    metrics: HttpMetrics,
}

/// Drives one connection until it ends or breaks a limit: the TLS handshake first (within
/// the header read timeout) when TLS is on, then HTTP/1.1.
async fn connection(stream: TcpStream, peer: Peer, app: Router, _admitted: Admitted) {
    let tracked = Tracked {
        inner: stream,
        activity: Arc::clone(&peer.activity),
    };
    let Some(acceptor) = peer.web.tls.clone() else {
        return http(tracked, &peer, app).await;
    };
    let deadline = peer
        .activity
        .expiry(&peer.limits)
        .map_or_else(Instant::now, |(at, _)| at);
    match tokio::time::timeout_at(deadline, acceptor.accept(tracked)).await {
        Ok(Ok(tls)) => http(tls, &peer, app).await,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake with a metrics client failed.");
            peer.metrics.reject("tls_handshake");
        }
        Err(_) => peer.metrics.reject("header_timeout"),
    }
}

/// Serves HTTP/1.1 on `io` until the client leaves or a limit closes the connection.
async fn http<IO>(io: IO, peer: &Peer, app: Router)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tower = Arc::new(TowerToHyperService::new(app));
    let (activity, web, metrics) = (
        Arc::clone(&peer.activity),
        Arc::clone(&peer.web),
        peer.metrics.clone(),
    );
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = RequestGuard::begin(Arc::clone(&activity));
        let (web, tower, metrics) = (Arc::clone(&web), Arc::clone(&tower), metrics.clone());
        async move {
            let response = web.answer(request, &tower, &metrics).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header timeout is ours (hyper's would also cut idle keep-alive connections).
    builder
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut served = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));
    loop {
        let expiry = peer.activity.expiry(&peer.limits);
        let wake = expiry.map_or_else(|| Instant::now() + peer.limits.idle_timeout, |(at, _)| at);
        tokio::select! {
            result = &mut served => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "Metrics connection ended with an error.");
                }
                return;
            }
            () = tokio::time::sleep_until(wake) => {
                if let Some((at, reason)) = peer.activity.expiry(&peer.limits)
                    && at <= Instant::now()
                {
                    peer.metrics.reject(reason);
                    return;
                }
            }
        }
    }
}

/// "No time recorded" in an [`Activity`] field.
const NEVER: u64 = u64::MAX;

/// What one connection is doing, shared by its I/O wrapper, its request handler and the
/// eviction choice. Times are milliseconds since the server's start.
struct Activity {
    origin: Instant,
    /// When a byte last moved either way.
    last_io: AtomicU64,
    /// When the request head being read began ([`NEVER`]: none is being read).
    head_since: AtomicU64,
    /// A request is being handled.
    in_request: AtomicBool,
}

impl Activity {
    /// A connection accepted now: its first request head is timed from this moment.
    fn new(origin: Instant) -> Activity {
        let a = Activity {
            origin,
            last_io: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_request: AtomicBool::new(false),
        };
        let now = a.now();
        a.last_io.store(now, Ordering::Relaxed);
        a.head_since.store(now, Ordering::Relaxed);
        a
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.origin + Duration::from_millis(millis)
    }

    /// Bytes arrived: outside a request, they start the next request's head.
    fn on_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if !self.in_request.load(Ordering::Relaxed) {
            let _ =
                self.head_since
                    .compare_exchange(NEVER, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection must close unless something happens first, and why; `None`
    /// while a request is being handled.
    fn expiry(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        if self.in_request.load(Ordering::Relaxed) {
            return None;
        }
        match self.head_since.load(Ordering::Relaxed) {
            NEVER => Some((
                self.at(self.last_io.load(Ordering::Relaxed)) + limits.idle_timeout,
                "idle_timeout",
            )),
            since => Some((
                self.at(since) + limits.header_read_timeout,
                "header_timeout",
            )),
        }
    }
}

/// Marks a request as being handled while it lives.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn begin(activity: Arc<Activity>) -> RequestGuard {
        activity.in_request.store(true, Ordering::Relaxed);
        activity.head_since.store(NEVER, Ordering::Relaxed);
        RequestGuard(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_request.store(false, Ordering::Relaxed);
        self.0.on_write();
    }
}

/// A stream that records in its [`Activity`] when bytes move.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.on_write();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The open connections, oldest first (ids grow with each accept).
struct Connections {
    max: usize,
    open: Mutex<Open>,
    metrics: HttpMetrics,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    by_id: BTreeMap<u64, Entry>,
    /// Evicted connections whose tasks have not been dropped yet.
    closing: usize,
}

struct Entry {
    activity: Arc<Activity>,
    abort: Option<AbortHandle>,
    evicted: bool,
}

/// A connection's place among the open ones, given up when its task ends.
struct Admitted {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.remove(self.id);
    }
}

impl Connections {
    fn new(max: usize, metrics: HttpMetrics) -> Connections {
        Connections {
            max: max.max(1),
            open: Mutex::new(Open::default()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // Nothing panics while holding it; if something did, the map is still usable.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes room for a new connection (closing the oldest idle one at the cap) and
    /// registers it; `None` when every open connection is handling a request.
    fn admit(self: &Arc<Self>, activity: &Arc<Activity>) -> Option<Admitted> {
        let mut open = self.lock();
        let live = open.by_id.len().saturating_sub(open.closing);
        if live >= self.max {
            let victim = open
                .by_id
                .values_mut()
                .find(|e| !e.evicted && !e.activity.in_request.load(Ordering::Relaxed))?;
            victim.evicted = true;
            if let Some(abort) = &victim.abort {
                abort.abort();
            }
            open.closing = open.closing.saturating_add(1);
            self.metrics.reject("evicted");
        }
        let id = open.next_id;
        open.next_id = open.next_id.wrapping_add(1);
        open.by_id.insert(
            id,
            Entry {
                activity: Arc::clone(activity),
                abort: None,
                evicted: false,
            },
        );
        self.metrics.open.inc();
        Some(Admitted {
            id,
            connections: Arc::clone(self),
        })
    }

    /// Records how to stop the newest connection.
    fn attach(&self, abort: AbortHandle) {
        if let Some((_, entry)) = self.lock().by_id.iter_mut().next_back() {
            entry.abort = Some(abort);
        }
    }

    fn is_closing(&self) -> bool {
        self.lock().closing > 0
    }

    fn remove(&self, id: u64) {
        let mut open = self.lock();
        if let Some(entry) = open.by_id.remove(&id) {
            if entry.evicted {
                open.closing = open.closing.saturating_sub(1);
            }
            self.metrics.open.dec();
        }
    }

    fn close_all(&self) {
        for entry in self.lock().by_id.values() {
            if let Some(abort) = &entry.abort {
                abort.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 2,
        }
    }

    /// When `expiry` falls, as time since the server's start (whole seconds), and why.
    fn expiry_secs(a: &Activity) -> Option<(u64, &'static str)> {
        a.expiry(&limits())
            .map(|(at, why)| (at.duration_since(a.origin).as_secs(), why))
    }

    #[test]
    fn the_first_head_is_timed_from_the_start_later_ones_from_their_first_byte() {
        let a = Arc::new(Activity::new(Instant::now()));
        assert_eq!(expiry_secs(&a), Some((10, "header_timeout")));
        let request = RequestGuard::begin(Arc::clone(&a));
        assert_eq!(expiry_secs(&a), None, "never cut a request being handled");
        drop(request);
        assert_eq!(expiry_secs(&a), Some((60, "idle_timeout")));
        // A byte of the answer moved at 30 s: idle counts from there.
        a.last_io.store(30_000, Ordering::Relaxed);
        assert_eq!(expiry_secs(&a), Some((90, "idle_timeout")));
        // The next request's first byte starts its head's clock.
        a.on_read();
        assert_eq!(expiry_secs(&a), Some((10, "header_timeout")));
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let metrics = Metrics::new(&[], 10).unwrap();
        let connections = Arc::new(Connections::new(2, metrics.http.clone()));
        let origin = Instant::now();
        let busy = Arc::new(Activity::new(origin));
        let first = connections.admit(&busy).unwrap();
        let _request = RequestGuard::begin(Arc::clone(&busy));
        let idle = Arc::new(Activity::new(origin));
        let second = connections.admit(&idle).unwrap();
        // Full: the busy one is kept, the idle one goes.
        let third = connections.admit(&Arc::new(Activity::new(origin))).unwrap();
        assert!(connections.lock().by_id.get(&second.id).unwrap().evicted);
        assert!(connections.is_closing());
        drop(second);
        assert!(!connections.is_closing());
        assert_eq!(metrics.http.open.get(), 2);
        // Both remaining are busy: a new one is refused.
        let _also_busy = RequestGuard::begin(Arc::clone(
            &connections.lock().by_id.get(&third.id).unwrap().activity,
        ));
        assert!(
            connections
                .admit(&Arc::new(Activity::new(origin)))
                .is_none()
        );
        drop((first, third));
        assert_eq!(metrics.http.open.get(), 0);
    }
}
