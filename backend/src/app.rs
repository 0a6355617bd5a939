//! The application: shared state, the router with its layers, and `serve` with graceful shutdown.

use std::future::{Future, IntoFuture};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::Agent;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::error::ApiError;
use crate::extract::BODY_LIMIT;
use crate::readiness::{migrate_until_done, Readiness};
use crate::routes::{auth, health, tasks};

/// How long in-flight requests may run after shutdown starts before they are cut off.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a request waits for a pooled connection before it fails with 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_CONNECTIONS: u32 = 10;
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    /// Lazily connecting pool: startup never waits for the database.
    pub pool: PgPool,
    /// The configuration.
    pub config: Arc<Config>,
    /// Migration progress, reported by `/ready`.
    pub readiness: Arc<Readiness>,
    /// The chat agent, built once: it holds no user data, every user-specific input comes with the request.
    pub agent: Arc<Agent>,
}

/// Why `serve` could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database settings are unusable.
    #[error("invalid database configuration: {0}")]
    Database(String),
    /// The chat engine could not be set up.
    #[error("chat engine: {0}")]
    Chat(#[from] agent::AgentError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(#[from] std::io::Error),
}

impl AppState {
    /// Builds the state with a lazy pool; nothing connects yet.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let options = PgConnectOptions::from_str(config.database_url.expose())
            .map_err(|_| {
                StartupError::Database("DATABASE_URL is not a valid postgres:// URL".into())
            })?
            .application_name("todo-backend");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            // A ping per checkout would double the round trips; a dead connection fails one query with 503 instead.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let agent = Arc::new(crate::chat::build_agent(&config)?);
        Ok(Self {
            pool,
            config: Arc::new(config),
            readiness: Arc::new(Readiness::default()),
            agent,
        })
    }
}

/// The full router: probes, `/api` (auth, tasks, chat), JSON fallbacks, body limit, panic guard, request log.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me).delete(auth::delete_me))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/tasks/{id}",
            get(tasks::get).patch(tasks::update).delete(tasks::delete),
        )
        .route("/tasks/{id}/complete", post(tasks::complete))
        .merge(crate::chat::router());
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .nest("/api", api)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::internal("handler panicked").into_response()
            },
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    // Probes arrive every few seconds forever; keep them out of the info log.
    if path == "/health" || path == "/ready" {
        tracing::debug!(target: "http", %method, %path, status, latency_ms, "request");
    } else if status >= 500 {
        tracing::warn!(target: "http", %method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(target: "http", %method, %path, status, latency_ms, "request");
    }
    response
}

/// Serves on `listener` until `shutdown` completes: migrations run in the background (retrying while the
/// database is down), requests in flight get up to [`DRAIN_TIMEOUT`] to finish, then the pool is closed.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let state = AppState::new(config)?;
    let pool = state.pool.clone();
    let migrations = tokio::spawn(migrate_until_done(pool.clone(), state.readiness.clone()));

    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested, draining in-flight requests");
        let _ = stopping_tx.send(true);
    };
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(signal)
        .into_future();
    let drain_deadline = async move {
        if stopping_rx.wait_for(|stopping| *stopping).await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        result = server => result.map_err(StartupError::from),
        () = drain_deadline => {
            tracing::warn!(timeout_s = DRAIN_TIMEOUT.as_secs(), "drain timed out, dropping remaining requests");
            Ok(())
        }
    };
    migrations.abort();
    if tokio::time::timeout(POOL_CLOSE_TIMEOUT, pool.close())
        .await
        .is_err()
    {
        tracing::warn!("database pool did not close in time");
    }
    tracing::info!("stopped");
    result
}
