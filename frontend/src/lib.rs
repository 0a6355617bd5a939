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

/// Serves the frontend on `listener` until `shutdown` resolves, then drains open requests.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = app::AppState::new(&config)?;
    let router = app::router(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
