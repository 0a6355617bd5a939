//! API errors: every failure leaves as `{"error": {"code", "message"}}` with the status of docs/contracts.md.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error returned by a handler; the variant decides the status and the `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON (400 `invalid_json`).
    #[error("{0}")]
    InvalidJson(String),
    /// The request is malformed in another way (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The input is well-formed but not acceptable (422 `validation_failed`).
    #[error("{0}")]
    Validation(String),
    /// Missing, bad or expired credentials (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// Nothing there, or not yours (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The method is not served on this path (405 `method_not_allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Clashes with existing state (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The body exceeds the limit (413 `payload_too_large`).
    #[error("request body too large (limit {limit} bytes)")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not `application/json` (415 `unsupported_media_type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body did not arrive in time (408 `request_timeout`).
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// A per-user cap is reached (409 `limit_reached`); nothing was written.
    #[error("{0}")]
    LimitReached(String),
    /// Too many attempts (429 `rate_limited`), with the seconds after which one is allowed again.
    #[error("too many attempts, retry in {retry_after} s")]
    RateLimited {
        /// Seconds until the next attempt is allowed (the `Retry-After` header).
        retry_after: u64,
    },
    /// The database cannot be reached right now, or the server is saturated
    /// (503 `service_unavailable`, with `Retry-After`).
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A bug or an unexpected failure: details go to the log, never to the client (500 `internal`).
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::LimitReached(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RequestTimeout(_) => "request_timeout",
            Self::LimitReached(_) => "limit_reached",
            Self::RateLimited { .. } => "rate_limited",
            Self::ServiceUnavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// Shorthand for an internal error with context for the log.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }
}

/// Seconds a client is asked to wait after a 503 (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// True for a database error that says "not now" rather than "this request is wrong": the server
/// is restarting or shutting down (57P01-57P03), a connection failed (class 08) or was reset, the
/// pool is exhausted, or PostgreSQL has no connection slot left (53300) or other resources (class 53).
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            tracing::warn!(error = %e, "database unavailable");
            Self::ServiceUnavailable("the database is unavailable, retry later".into())
        } else {
            Self::Internal(format!("database: {e}"))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal server error".to_string()
            }
            other => other.to_string(),
        };
        let body = Body {
            error: Detail {
                code: self.code(),
                message,
            },
        };
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some((*retry_after).max(1)),
            Self::ServiceUnavailable(_) => Some(RETRY_AFTER_SECS),
            _ => None,
        };
        let mut resp = (self.status(), axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
