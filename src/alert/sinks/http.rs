//! One HTTP/1.1 JSON POST, for the Alertmanager and webhook sinks.
//!
//! Owns [`post`] and its bounded error kinds. Each request opens its own connection (alerts
//! are rare; a pool would only keep dead sockets to a receiver that restarted) and the
//! whole exchange, connect and TLS handshake included, runs under one timeout. `https://`
//! targets go through rustls with their [`Client`]'s trust and client certificate; the
//! `Authorization` header is added when the client has credentials. The `Host` header is
//! built from the host and port alone, never from a URL's user-info. Does not own:
//! retries or queues (`delivery`), or building TLS and credentials (`client`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::client::Client;

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
    /// The TLS handshake failed (an untrusted or wrong certificate, a refused client
    /// certificate).
    Tls,
    /// The password or token file could not be read.
    Credentials,
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
            SendError::Tls => "tls",
            SendError::Credentials => "credentials",
        }
    }

    /// Whether another attempt may succeed.
    pub(crate) fn is_retryable(self) -> bool {
        !matches!(self, SendError::Rejected(_))
    }
}

/// Where to POST: the parsed URL, split once, with how to reach it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    host: String,
    port: u16,
    /// `host[:port]`, as the `Host` header carries it (never user-info).
    host_header: String,
    path: Uri,
    /// TLS and credentials; `https` says whether TLS is used.
    client: Arc<Client>,
    https: bool,
}

impl Target {
    /// Splits an `http://` or `https://` URL. `None` if it has no host, its path is
    /// invalid, or it is `https://` and `client` has no TLS configuration.
    pub(crate) fn new(url: &Uri, client: Arc<Client>) -> Option<Target> {
        let https = url.scheme_str() == Some("https");
        if https && client.tls.is_none() {
            return None;
        }
        let bracketed = url.host()?;
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        let path = url
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str);
        let host_header = match url.port_u16() {
            Some(port) => format!("{bracketed}:{port}"),
            None => bracketed.to_owned(),
        };
        Some(Target {
            host: host.to_owned(),
            port: url.port_u16().unwrap_or(if https { 443 } else { 80 }),
            host_header,
            path: path.parse().ok()?,
            client,
            https,
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
    let authorization = target
        .client
        .authorization()
        .map_err(|_| SendError::Credentials)?;
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|_| SendError::Connect)?;
    let request = Request::post(target.path.clone())
        .header(HOST, target.host_header.as_str())
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("netwarden/", env!("CARGO_PKG_VERSION")));
    let request = match &authorization {
        Some(value) => request.header(AUTHORIZATION, value.as_str()),
        None => request,
    }
    .body(Full::new(body))
    .map_err(|_| SendError::Protocol)?;
    match (&target.client.tls, target.https) {
        (Some(tls), true) => {
            let name = match &target.client.server_name {
                Some(name) => name.clone(),
                None => ServerName::try_from(target.host.clone()).map_err(|_| SendError::Tls)?,
            };
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
                .connect(name, stream)
                .await
                .map_err(|_| SendError::Tls)?;
            send(stream, request).await
        }
        _ => send(stream, request).await,
    }
}

async fn send<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<(), SendError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| SendError::Protocol)?;
    // The connection task ends when `sender` is dropped or the peer closes.
    tokio::spawn(connection);
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

    fn target(url: &str) -> Option<Target> {
        Target::new(&url.parse().unwrap(), Arc::new(Client::plain()))
    }

    #[test]
    fn target_splits_host_port_and_path() {
        let t = target("http://127.0.0.1:9093/am/api/v2/alerts").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 9093));
        assert_eq!(t.host_header, "127.0.0.1:9093");
        assert_eq!(t.path, "/am/api/v2/alerts");
        let t = target("http://[::1]/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 80));
        assert_eq!(t.host_header, "[::1]");
        // https needs a TLS client configuration.
        assert!(target("https://am.example/").is_none());
    }

    #[test]
    fn credentials_in_a_url_never_reach_the_host_header() {
        let t = target("http://alice:s3cret@am.example:9093/").unwrap();
        assert_eq!(t.host_header, "am.example:9093");
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn only_4xx_other_than_timeout_and_throttle_is_final() {
        assert!(!SendError::Rejected(400).is_retryable());
        assert!(SendError::Failed(503).is_retryable());
        assert!(SendError::Connect.is_retryable());
        assert_eq!(SendError::Rejected(400).as_str(), "status_4xx");
    }
}
