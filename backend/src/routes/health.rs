//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// How long `/ready` waits for the database: below the 1 s default probe timeout, so the 503 reason arrives.
const DB_CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /health`: the process is alive; never touches the database.
pub async fn health() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /ready`: 200 once migrations are applied and the database answers, else 503 with a reason.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.readiness.stopping() {
        return not_ready("shutting down".into());
    }
    if !state.readiness.migrated() {
        let reason = state
            .readiness
            .last_error()
            .unwrap_or_else(|| "migrations pending".into());
        return not_ready(reason);
    }
    let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool);
    match tokio::time::timeout(DB_CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => axum::Json(json!({"status": "ready"})).into_response(),
        Ok(Err(e)) => not_ready(format!("database unreachable: {e}")),
        Err(_) => not_ready("database did not answer in time".into()),
    }
}

fn not_ready(reason: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"status": "not_ready", "reason": reason})),
    )
        .into_response()
}
