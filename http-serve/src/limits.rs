//! The per-connection and per-request bounds of the HTTP server.

use std::time::Duration;

/// Bounds of the HTTP server that keep slow or idle clients from holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `HEADER_READ_TIMEOUT_SECS` (default 10): a connection that has not sent a whole request head
    /// within this time (also between keep-alive requests) is closed.
    pub header_read_timeout: Duration,
    /// `BODY_READ_TIMEOUT_SECS`: a request body not received completely within this time is refused
    /// with 408 (the services apply it; each has its own default).
    pub body_read_timeout: Duration,
    /// `MAX_CONNECTIONS` (default 4096): open connections beyond this are answered 503 and closed.
    pub max_connections: usize,
}

impl HttpLimits {
    /// The defaults, with a service's own body read timeout.
    pub const fn with_body_read_timeout(body_read_timeout: Duration) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout,
            max_connections: 4096,
        }
    }
}
