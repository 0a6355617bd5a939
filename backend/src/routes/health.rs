//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// How long `/ready` waits for the database: below the 1 s default probe timeout, so the 503 reason arrives.
const DB_CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /health`: the process is alive; never touches the database. `build` names the image it runs
/// (`TODO_BUILD`, set by the chart to the image tag), so a client can tell which version answered.
pub async fn health() -> Response {
    axum::Json(health_body(build())).into_response()
}

/// The build this process runs, from `TODO_BUILD` (read once).
pub fn build() -> Option<&'static str> {
    static BUILD: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BUILD
        .get_or_init(|| std::env::var("TODO_BUILD").ok().filter(|b| !b.is_empty()))
        .as_deref()
}

fn health_body(build: Option<&str>) -> serde_json::Value {
    json!({"status": "ok", "build": build})
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_names_the_build() {
        assert_eq!(
            health_body(Some("0123456789ab")),
            json!({"status": "ok", "build": "0123456789ab"})
        );
        assert_eq!(health_body(None), json!({"status": "ok", "build": null}));
    }
}
