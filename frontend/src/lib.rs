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
/// During the pause everything is served as usual and `/api/health` answers 503 `stopping` (why:
/// [`http_serve::Shutdown`]).
pub async fn serve_until(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    skip_delay: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = app::AppState::new(&config)?;
    let stopping = state.stopping.clone();
    let router = app::router(state);
    let shutdown = http_serve::Shutdown {
        requested: shutdown,
        skip_delay,
        delay: config.shutdown_delay,
        drain_timeout: config.drain_timeout,
    };
    http_serve::serve_until_stopped(listener, router, config.http, shutdown, move || {
        stopping.store(true, std::sync::atomic::Ordering::Release)
    })
    .await;
    Ok(())
}
