//! Errors the frontend itself answers with, in the contract's `{"error": {"code", "message"}}` shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Something the frontend could not do on the browser's behalf.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The backend refused the connection, reset it, or sent something unusable.
    #[error("the backend is unavailable: {0}")]
    BackendUnavailable(String),
    /// The backend did not answer in time.
    #[error("the backend did not answer within {0} s")]
    BackendTimeout(u64),
    /// The request body is larger than the proxy forwards.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The request itself could not be read or forwarded.
    #[error("{0}")]
    BadRequest(String),
    /// The request body did not arrive within `BODY_READ_TIMEOUT_SECS`.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// A state-changing request from another site (CSRF).
    #[error("{0}")]
    Forbidden(String),
    /// No session cookie where one is required.
    #[error("not signed in")]
    Unauthorized,
    /// No such page or asset.
    #[error("not found")]
    NotFound,
}

impl ApiError {
    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BackendUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::BackendTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// Stable snake_case code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BackendUnavailable(_) => "backend_unavailable",
            Self::BackendTimeout(_) => "backend_timeout",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::BadRequest(_) => "bad_request",
            Self::RequestTimeout(_) => "request_timeout",
            Self::Forbidden(_) => "forbidden",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "request failed");
        }
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.to_string() }
        });
        let timed_out = matches!(self, Self::RequestTimeout(_));
        let mut resp = (self.status(), axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if timed_out {
            // The rest of the body may still be on its way: this connection cannot be reused.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_the_contract() {
        let e = ApiError::BackendUnavailable("refused".into());
        assert_eq!(
            (e.status().as_u16(), e.code()),
            (502, "backend_unavailable")
        );
        let e = ApiError::BackendTimeout(3);
        assert_eq!((e.status().as_u16(), e.code()), (504, "backend_timeout"));
        let e = ApiError::PayloadTooLarge(10);
        assert_eq!((e.status().as_u16(), e.code()), (413, "payload_too_large"));
    }
}
