//! How a service stops: keep serving for a pause after SIGTERM, then drain for a bounded time.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::HttpLimits;

/// When and how a service stops.
pub struct Shutdown<S, K> {
    /// Completes when the service is asked to stop (the first SIGTERM or Ctrl-C).
    pub requested: S,
    /// Cuts the pause short (a second SIGTERM or Ctrl-C).
    pub skip_delay: K,
    /// `SHUTDOWN_DELAY_SECS`: how long everything is still served after `requested`, while the
    /// service's readiness answers 503.
    ///
    /// The pause is how pods stop taking traffic before they stop serving: Kubernetes removes a
    /// terminating pod from its Service endpoints at the same time as it sends SIGTERM, and kube-proxy
    /// applies that a moment later, so for a few seconds new connections still arrive. It lives in
    /// the binary, not in a `preStop` hook, because the images are distroless (no shell or `sleep`
    /// for an `exec` hook), the `preStop.sleep` action needs Kubernetes >= 1.30, and `docker stop`
    /// runs no hooks at all.
    pub delay: Duration,
    /// How long requests in flight may still run once draining starts (a stuck upstream or a slow
    /// reader must not hold the pod in Terminating).
    pub drain_timeout: Duration,
}

/// Serves `router` until `shutdown.requested`, calls `on_stopping` (the service's readiness turns
/// 503), serves on for `shutdown.delay`, then drains for at most `shutdown.drain_timeout`.
pub async fn serve_until_stopped<S, K>(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: Shutdown<S, K>,
    on_stopping: impl FnOnce() + Send + 'static,
) where
    S: Future<Output = ()> + Send + 'static,
    K: Future<Output = ()> + Send + 'static,
{
    let Shutdown {
        requested,
        skip_delay,
        delay,
        drain_timeout,
    } = shutdown;
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        requested.await;
        on_stopping();
        if !delay.is_zero() {
            tracing::info!(
                delay_s = delay.as_secs(),
                "shutdown requested: serving on until load balancers stop sending traffic"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = skip_delay => tracing::info!("asked again: not waiting any longer"),
            }
        }
        tracing::info!("draining in-flight requests");
        let _ = draining_tx.send(());
    };
    let server = crate::serve(listener, router, limits, signal);
    let drain_deadline = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            // The server ended before any shutdown signal: nothing to bound.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = server => {}
        () = drain_deadline => {
            tracing::warn!(timeout_s = drain_timeout.as_secs(), "drain timed out, dropping remaining requests");
        }
    }
}
