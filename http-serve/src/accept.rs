//! The HTTP/1.1 accept loop: hyper's connection builder with a header read timeout, a cap on open
//! connections, the peer address on every request, and graceful shutdown.
//!
//! `axum::serve` exposes none of these per-connection bounds (it sets no hyper timer, so hyper's
//! header timeout is off, and it accepts without limit); this follows axum's `serve-with-hyper`
//! example with hyper-util's `GracefulShutdown` instead.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::HttpLimits;

/// What an over-the-cap connection reads before it is closed: the same JSON error as every other.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 86\r\n\r\n\
{\"error\":{\"code\":\"service_unavailable\",\"message\":\"too many connections, retry later\"}}";

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish
/// their current request (keep-alive connections close after it) and returns once all are gone.
/// Callers bound that wait (the services give it their drain timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(stream, peer);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout, malformed request): nothing to report.
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers 503 without waiting on the client and closes. Whatever the client already sent is read
/// first, so closing does not reset the connection before it reads the answer.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    tracing::warn!(%peer, "connection refused: MAX_CONNECTIONS reached");
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
    let _ = stream.try_write(TOO_MANY_CONNECTIONS);
}

/// Accept errors: per-connection ones (the peer went away) are skipped; resource exhaustion
/// (EMFILE) is logged and retried after a pause, as `axum::serve` does, instead of spinning.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_json_503() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "service_unavailable");
    }
}
