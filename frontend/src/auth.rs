//! Register, login and logout: the only routes where the frontend reads the backend's answer.

use std::sync::atomic::AtomicBool;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::proxy;
use crate::session::{self, SessionToken};

/// What the backend answers to a successful register or login.
#[derive(Debug, Deserialize)]
struct AuthSuccess {
    token: String,
    user: serde_json::Value,
}

/// `POST /api/auth/register`.
pub async fn register(state: State<AppState>, req: Request) -> Result<Response, ApiError> {
    sign_in(state, req, "/api/auth/register").await
}

/// `POST /api/auth/login`.
pub async fn login(state: State<AppState>, req: Request) -> Result<Response, ApiError> {
    sign_in(state, req, "/api/auth/login").await
}

/// `POST /api/auth/logout`: ends the session at the backend, so a copy of the token stops working
/// too, and forgets it in this browser. The cookie is cleared even when the backend cannot be
/// reached: signing out must always work in the browser.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session::from_headers(&headers) {
        let mut upstream = HeaderMap::new();
        upstream.insert(header::AUTHORIZATION, token.bearer());
        let ended = state
            .upstream
            .send(
                Method::POST,
                "/api/auth/logout",
                upstream,
                None,
                &AtomicBool::new(false),
            )
            .await;
        match ended {
            // 401: the session had already ended (expired, or logged out elsewhere).
            Ok(r) if r.status().is_success() || r.status() == StatusCode::UNAUTHORIZED => {}
            Ok(r) => tracing::warn!(status = %r.status(), "the backend did not end the session"),
            Err(e) => tracing::warn!(error = %e, "the backend did not end the session"),
        }
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn sign_in(
    State(state): State<AppState>,
    req: Request,
    path: &str,
) -> Result<Response, ApiError> {
    let upstream = &state.upstream;
    let max = upstream.max_body_bytes();
    let (parts, body) = req.into_parts();
    let body = proxy::within_declared_length(&parts.headers, body, max).await?;
    let body = proxy::read_limited(body, max).await?;

    // Credentials go upstream without any old session: signing in replaces it.
    let mut headers = proxy::end_to_end_headers(
        &parts.headers,
        &[header::COOKIE, header::HOST, header::AUTHORIZATION],
    );
    headers.remove(header::CONTENT_LENGTH);
    let resp = upstream
        .send(
            Method::POST,
            path,
            headers,
            Some(reqwest::Body::from(body)),
            &AtomicBool::new(false),
        )
        .await?;

    let status = resp.status();
    if !status.is_success() {
        return Ok(proxy::stream_response(resp));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|_| ApiError::BackendUnavailable("the backend's answer was cut off".into()))?;
    let success: AuthSuccess = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::BackendUnavailable("the backend answered sign-in in an unexpected shape".into())
    })?;
    let token = SessionToken::parse(&success.token).ok_or_else(|| {
        ApiError::BackendUnavailable("the backend issued a token that cannot be a cookie".into())
    })?;

    let body = serde_json::to_vec(&serde_json::json!({ "user": success.user }))
        .map_err(|_| ApiError::BackendUnavailable("cannot encode the user".into()))?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    let h = out.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::SET_COOKIE,
        token.set_cookie(session::behind_https(&parts.headers)),
    );
    Ok(out)
}
