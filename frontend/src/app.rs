//! The router: which path goes to the UI, the health checks, the session routes or the proxy.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use axum::routing::{any, get, post};
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::assets::Assets;
use crate::config::Config;
use crate::error::ApiError;
use crate::proxy::Upstream;
use crate::{assets, auth, csrf, health, proxy, security};

/// Shared, read-only state of the running server.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The backend connection.
    pub upstream: Arc<Upstream>,
    /// Embedded UI files.
    pub assets: Arc<Assets>,
    /// Deadline for the backend probe in `/api/health`.
    pub health_timeout: Duration,
    /// Set once shutdown begins: `/api/health` answers 503 so no new traffic is routed here.
    pub stopping: Arc<AtomicBool>,
}

impl AppState {
    /// Builds the state from the configuration.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        Ok(Self {
            upstream: Arc::new(Upstream::new(config)?),
            assets: Assets::load(),
            health_timeout: config.health_timeout,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // The path only: a query string can carry what a user typed, and no body is ever logged.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        // Failures are already logged with their cause where they happen.
        .on_failure(());
    let mut app = Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/auth/register", post(auth::register))
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/{*rest}", any(proxy::forward))
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::middleware::from_fn(csrf::same_site_only))
        .layer(trace)
        // Probes arrive every few seconds forever: added after the trace layer, they stay out of the log.
        .route("/health", get(health::liveness))
        .route("/api/health", get(health::api_health))
        .with_state(state);
    for layer in security::layers() {
        app = app.layer(layer);
    }
    app
}
