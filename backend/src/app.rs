//! The application: shared state, the router with its layers, and `serve` with graceful shutdown.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::Agent;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth::password::Hasher;
use crate::auth::throttle::SignInThrottle;
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
/// A pooled connection idle at least this long is pinged before a request gets it.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_millis(100);
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
    /// Register/login rate limits.
    pub throttle: Arc<SignInThrottle>,
    /// The bounded password-hashing pool.
    pub hasher: Arc<Hasher>,
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
            // Connections idle for a while are pinged before use, so the ones a database restart, failover
            // or pg_terminate_backend closed are replaced instead of failing a request (a restart takes
            // longer than PING_IF_IDLE_FOR, so after one every pooled connection is checked). Connections
            // in constant use skip the round trip, which cost a quarter of GET /api/tasks' throughput in
            // the backend benchmark; if one of those died just now, its request gets a 503 and it is dropped.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        let agent = Arc::new(crate::chat::build_agent(&config)?);
        Ok(Self {
            pool,
            throttle: Arc::new(SignInThrottle::new(&config.sign_in)),
            hasher: Arc::new(Hasher::new(&config.sign_in)),
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
        .layer(middleware::from_fn_with_state(
            state.clone(),
            read_body_in_time,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Receives the whole body (at most [`BODY_LIMIT`]) within `BODY_READ_TIMEOUT_SECS` before any handler
/// runs: a client sending one byte per second holds neither a handler nor more memory than the limit.
/// Every handler reads its (small, JSON) body whole anyway, so buffering here costs nothing extra.
async fn read_body_in_time(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let timeout = state.config.http.body_read_timeout;
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Err(_) => {
            let mut resp = ApiError::RequestTimeout(timeout.as_secs()).into_response();
            // The rest of the body may still be on its way: this connection cannot be reused.
            resp.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            resp
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge { limit: BODY_LIMIT }.into_response()
            } else {
                ApiError::BadRequest(format!("the request body was cut off: {e}")).into_response()
            }
        }
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
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
    serve_until(config, listener, shutdown, std::future::pending()).await
}

/// [`serve`], with the pause of `SHUTDOWN_DELAY_SECS` after `shutdown` cut short when `skip_delay`
/// completes (the binary: a second SIGTERM or Ctrl-C).
///
/// During the pause everything is served as usual and `/ready` answers 503 (why: [`http_serve::Shutdown`]).
pub async fn serve_until(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    skip_delay: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let state = AppState::new(config)?;
    let pool = state.pool.clone();
    let migrations = tokio::spawn(migrate_until_done(pool.clone(), state.readiness.clone()));
    let limits = state.config.http;
    let throttle = state.throttle.clone();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            throttle.forget_idle();
        }
    });
    let readiness = state.readiness.clone();
    let shutdown = http_serve::Shutdown {
        requested: shutdown,
        skip_delay,
        delay: state.config.shutdown_delay,
        drain_timeout: DRAIN_TIMEOUT,
    };
    http_serve::serve_until_stopped(listener, router(state), limits, shutdown, move || {
        readiness.set_stopping()
    })
    .await;
    migrations.abort();
    sweeper.abort();
    if tokio::time::timeout(POOL_CLOSE_TIMEOUT, pool.close())
        .await
        .is_err()
    {
        tracing::warn!("database pool did not close in time");
    }
    tracing::info!("stopped");
    Ok(())
}
