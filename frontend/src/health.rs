//! `GET /api/health` (own status plus backend reachability) and `GET /health` (liveness only).

use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;

/// What `/api/health` answers.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HealthReport {
    /// `ok` when the backend answered 2xx, `degraded` otherwise.
    pub status: &'static str,
    /// How the backend answered.
    pub backend: BackendHealth,
}

/// Result of probing the backend's `/health`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct BackendHealth {
    /// The configured backend URL.
    pub url: String,
    /// Whether an HTTP answer came back at all.
    pub reachable: bool,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// Time spent waiting, in milliseconds.
    pub latency_ms: u64,
    /// Why it is not healthy, when it is not.
    pub error: Option<String>,
}

impl HealthReport {
    /// Builds the report from the probe's outcome.
    pub fn new(backend: BackendHealth) -> Self {
        let healthy = backend.status.is_some_and(|s| (200..300).contains(&s));
        Self {
            status: if healthy { "ok" } else { "degraded" },
            backend,
        }
    }
}

/// Probes `BACKEND_URL/health` with a short timeout; never waits longer than that.
pub async fn probe(state: &AppState) -> BackendHealth {
    let upstream = &state.upstream;
    let started = Instant::now();
    let request = upstream.client().get(upstream.url("/health")).send();
    let outcome = tokio::time::timeout(state.health_timeout, request).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (reachable, status, error) = match outcome {
        Err(_) => (
            false,
            None,
            Some(format!(
                "no answer within {} ms",
                state.health_timeout.as_millis()
            )),
        ),
        Ok(Err(e)) if e.is_connect() => (false, None, Some("connection failed".to_owned())),
        Ok(Err(e)) if e.is_timeout() => (false, None, Some("timed out".to_owned())),
        Ok(Err(_)) => (false, None, Some("request failed".to_owned())),
        Ok(Ok(resp)) => {
            let s = resp.status();
            let error = (!s.is_success()).then(|| format!("backend answered {s}"));
            (true, Some(s.as_u16()), error)
        }
    };
    BackendHealth {
        url: upstream.base().to_owned(),
        reachable,
        status,
        latency_ms,
        error,
    }
}

/// `GET /api/health`: always 200 (this process is up); `status` tells whether the backend is.
pub async fn api_health(State(state): State<AppState>) -> Response {
    if state.stopping.load(std::sync::atomic::Ordering::Acquire) {
        let body = Json(serde_json::json!({ "status": "stopping" }));
        return no_store((axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response());
    }
    let report = HealthReport::new(probe(&state).await);
    no_store(Json(report).into_response())
}

/// `GET /health`: liveness of this process only, for probes that must not depend on the backend. `build`
/// names the image it runs (`TODO_BUILD`, set by the chart to the image tag).
pub async fn liveness() -> Response {
    no_store(Json(liveness_body(build())).into_response())
}

/// The build this process runs, from `TODO_BUILD` (read once).
pub fn build() -> Option<&'static str> {
    static BUILD: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BUILD
        .get_or_init(|| std::env::var("TODO_BUILD").ok().filter(|b| !b.is_empty()))
        .as_deref()
}

fn liveness_body(build: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "status": "ok", "build": build })
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_names_the_build() {
        assert_eq!(
            liveness_body(Some("ab12")),
            serde_json::json!({"status": "ok", "build": "ab12"})
        );
        assert_eq!(liveness_body(None)["build"], serde_json::Value::Null);
    }

    fn backend(status: Option<u16>) -> BackendHealth {
        BackendHealth {
            url: "http://b".into(),
            reachable: status.is_some(),
            status,
            latency_ms: 1,
            error: None,
        }
    }

    #[test]
    fn status_is_ok_only_for_a_2xx_backend() {
        assert_eq!(HealthReport::new(backend(Some(200))).status, "ok");
        assert_eq!(HealthReport::new(backend(Some(503))).status, "degraded");
        assert_eq!(HealthReport::new(backend(None)).status, "degraded");
    }

    #[test]
    fn serializes_to_the_contract_shape() {
        let v = serde_json::to_value(HealthReport::new(backend(None))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "degraded", "backend": {
                "url": "http://b", "reachable": false, "status": null, "latency_ms": 1, "error": null
            }})
        );
    }
}
