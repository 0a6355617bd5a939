//! Todo chatbot frontend: serves the embedded web UI and proxies `/api/*` to the backend,
//! turning the HttpOnly session cookie into a bearer token.

pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod csrf;
pub mod error;
pub mod health;
pub mod proxy;
pub mod security;
pub mod session;

use std::future::Future;

pub use config::{Config, ConfigError, LogFormat};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The HTTP client for the backend could not be built.
    #[error("cannot build the backend HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Accepting or serving connections failed.
    #[error("server I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the frontend on `listener` until `shutdown` resolves, then drains open requests for at
/// most `config.drain_timeout` (a stuck upstream or a slow reader must not hold the pod in Terminating).
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_until(config, listener, shutdown, std::future::pending()).await
}

/// [`serve`], with the pause of `SHUTDOWN_DELAY_SECS` after `shutdown` cut short when `skip_delay`
/// completes (the binary: a second SIGTERM or Ctrl-C).
///
/// During the pause everything is served as usual and `/api/health` answers 503 `stopping`:
/// Kubernetes removes a terminating pod from its endpoints while it sends SIGTERM, and kube-proxy
/// applies that a moment later. The pause lives in the binary rather than a `preStop` hook because
/// the image is distroless (no shell or `sleep` for an `exec` hook), `preStop.sleep` needs
/// Kubernetes >= 1.30, and `docker stop` runs no hooks at all.
pub async fn serve_until(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    skip_delay: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = app::AppState::new(&config)?;
    let stopping = state.stopping.clone();
    let router = app::router(state);
    let delay = config.shutdown_delay;
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        stopping.store(true, std::sync::atomic::Ordering::Release);
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
        tracing::info!("draining connections");
        let _ = stopping_tx.send(());
    };
    let server = http_serve::serve(listener, router, config.http, signal);
    let drain_timeout = config.drain_timeout;
    let drain_deadline = async move {
        match stopping_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            // The server ended before any shutdown signal: the other branch reports how.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = server => {}
        () = drain_deadline => {
            tracing::warn!(timeout_s = drain_timeout.as_secs(), "drain timed out, dropping remaining requests");
        }
    }
    Ok(())
}
