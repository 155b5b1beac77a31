//! One HTTP/1.1 JSON POST, for the Alertmanager and webhook sinks.
//!
//! Owns [`post`] and its bounded error kinds. Each request opens its own connection (alerts
//! are rare; a pool would only keep dead sockets to a receiver that restarted) and the
//! whole exchange, connect included, runs under one timeout. Plain `http://` only: the
//! config refuses other schemes. Does not own: retries or queues (`delivery`).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why one attempt failed. `as_str` is the `error_type` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The TCP connection could not be made.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection broke or the answer was not HTTP.
    Protocol,
    /// The receiver refused the request (4xx): retrying will not help.
    Rejected(u16),
    /// The receiver failed (5xx or another non-2xx): worth retrying.
    Failed(u16),
}

impl SendError {
    /// The `error_type` label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SendError::Connect => "connect",
            SendError::Timeout => "timeout",
            SendError::Protocol => "protocol",
            SendError::Rejected(_) => "status_4xx",
            SendError::Failed(_) => "status_5xx",
        }
    }

    /// Whether another attempt may succeed.
    pub(crate) fn is_retryable(self) -> bool {
        !matches!(self, SendError::Rejected(_))
    }
}

/// Where to POST: the parsed URL, split once.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    host: String,
    port: u16,
    authority: String,
    path: Uri,
}

impl Target {
    /// Splits an `http://` URL. `None` if it has no host or its path is invalid.
    pub(crate) fn new(url: &Uri) -> Option<Target> {
        let host = url.host()?.trim_start_matches('[').trim_end_matches(']');
        let path = url
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        Some(Target {
            host: host.to_owned(),
            port: url.port_u16().unwrap_or(80),
            authority: url.authority()?.as_str().to_owned(),
            path: path.parse().ok()?,
        })
    }
}

/// POSTs `body` as JSON to `target`, succeeding on any 2xx answer.
pub(crate) async fn post(target: &Target, body: Bytes, timeout: Duration) -> Result<(), SendError> {
    tokio::time::timeout(timeout, exchange(target, body))
        .await
        .map_err(|_| SendError::Timeout)?
}

async fn exchange(target: &Target, body: Bytes) -> Result<(), SendError> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| SendError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| SendError::Protocol)?;
    // The connection task ends when `sender` is dropped or the peer closes.
    tokio::spawn(connection);
    let request = Request::post(target.path.clone())
        .header(HOST, target.authority.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("netwarden/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body))
        .map_err(|_| SendError::Protocol)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| SendError::Protocol)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        Err(SendError::Rejected(status.as_u16()))
    } else {
        Err(SendError::Failed(status.as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_host_port_and_path() {
        let t = Target::new(&"http://127.0.0.1:9093/am/api/v2/alerts".parse().unwrap()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9093));
        assert_eq!(t.authority, "127.0.0.1:9093");
        assert_eq!(t.path, "/am/api/v2/alerts");
        let t = Target::new(&"http://[::1]/".parse().unwrap()).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
    }

    #[test]
    fn only_4xx_other_than_timeout_and_throttle_is_final() {
        assert!(!SendError::Rejected(400).is_retryable());
        assert!(SendError::Failed(503).is_retryable());
        assert!(SendError::Connect.is_retryable());
        assert_eq!(SendError::Rejected(400).as_str(), "status_4xx");
    }
}
