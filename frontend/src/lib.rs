//! Todo chatbot frontend: serves the embedded web UI and proxies `/api/*` to the backend,
//! turning the HttpOnly session cookie into a bearer token.

pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod proxy;
pub mod security;
pub mod session;

use std::future::{Future, IntoFuture};

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
    let state = app::AppState::new(&config)?;
    let router = app::router(state);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    };
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .into_future();
    let drain_timeout = config.drain_timeout;
    let drain_deadline = async move {
        match stopping_rx.await {
            Ok(()) => tokio::time::sleep(drain_timeout).await,
            // The server ended before any shutdown signal: the other branch reports how.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        result = server => result?,
        () = drain_deadline => {
            tracing::warn!(timeout_s = drain_timeout.as_secs(), "drain timed out, dropping remaining requests");
        }
    }
    Ok(())
}
