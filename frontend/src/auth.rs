//! Register, login and logout: the only routes where the frontend reads the backend's answer.
//!
//! Register and login take JSON (the page's script) or an HTML form post (the same form before
//! or without the script): a form is answered with a redirect to the page, so signing in works
//! either way and the password never travels in a URL.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::SIGN_IN_MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::proxy::{self, BodyFate};
use crate::session::{self, SessionToken};

/// What the backend answers to a successful register or login.
#[derive(Debug, Deserialize)]
struct AuthSuccess {
    token: String,
    user: serde_json::Value,
}

/// The fields of the sign-in form (and of the JSON the page's script sends).
#[derive(Deserialize, Serialize)]
struct Credentials {
    email: String,
    password: String,
}

/// `POST /api/auth/register`.
pub async fn register(state: State<AppState>, req: Request) -> Response {
    sign_in(state, req, "/api/auth/register").await
}

/// `POST /api/auth/login`.
pub async fn login(state: State<AppState>, req: Request) -> Response {
    sign_in(state, req, "/api/auth/login").await
}

/// `POST /api/auth/logout`: ends the session at the backend, so a copy of the token stops working
/// too, and forgets it in this browser. The cookie is cleared even when the backend cannot be
/// reached: signing out must always work in the browser.
pub async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers();
    if let Some(token) = session::from_headers(headers) {
        let mut upstream = HeaderMap::new();
        upstream.insert(header::AUTHORIZATION, token.bearer());
        proxy::set_forwarded_for(&mut upstream, proxy::peer(req.extensions()));
        let ended = state
            .upstream
            .send(
                Method::POST,
                "/api/auth/logout",
                upstream,
                None,
                &BodyFate::default(),
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
    for clear in session::clear_cookies() {
        resp.headers_mut().append(header::SET_COOKIE, clear);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn sign_in(State(state): State<AppState>, req: Request, path: &str) -> Response {
    let form = is_form(req.headers());
    match forward_sign_in(&state, req, path, form).await {
        Ok(resp) => resp,
        Err(e) if form => see_page(Some(e.code())),
        Err(e) => e.into_response(),
    }
}

async fn forward_sign_in(
    state: &AppState,
    req: Request,
    path: &str,
    form: bool,
) -> Result<Response, ApiError> {
    let upstream = &state.upstream;
    // The backend's own limit: a larger body is refused here, before it is buffered.
    let max = SIGN_IN_MAX_BODY_BYTES;
    let (parts, body) = req.into_parts();
    let body = proxy::within_declared_length(&parts.headers, body, max).await?;
    let body = proxy::read_limited(body, max, upstream.body_deadline(), || {
        upstream.body_timed_out()
    })
    .await?;
    let body = if form {
        let fields: Credentials = serde_urlencoded::from_bytes(&body)
            .map_err(|_| ApiError::BadRequest("expected the email and password fields".into()))?;
        serde_json::to_vec(&fields)
            .map_err(|_| ApiError::BadRequest("cannot encode the credentials".into()))?
            .into()
    } else {
        body
    };

    // Credentials go upstream without any old session: signing in replaces it.
    let mut headers = proxy::end_to_end_headers(
        &parts.headers,
        &[header::COOKIE, header::HOST, header::AUTHORIZATION],
    );
    headers.remove(header::CONTENT_LENGTH);
    if form {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    proxy::set_forwarded_for(&mut headers, proxy::peer(&parts.extensions));
    let resp = upstream
        .send(
            Method::POST,
            path,
            headers,
            Some(reqwest::Body::from(body)),
            &BodyFate::default(),
        )
        .await?;

    let status = resp.status();
    if !status.is_success() {
        if form {
            return Ok(see_page(Some(failure_code(status))));
        }
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
    let cookie = token.set_cookie(session::behind_https(&parts.headers));
    if form {
        let mut out = see_page(None);
        out.headers_mut().insert(header::SET_COOKIE, cookie);
        return Ok(out);
    }

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
    h.insert(header::SET_COOKIE, cookie);
    Ok(out)
}

/// The `code` the page shows for a refused form sign-in (the same codes as the JSON errors).
fn failure_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "unauthorized",
        409 => "conflict",
        413 => "payload_too_large",
        422 => "validation_failed",
        429 => "rate_limited",
        _ => "backend_unavailable",
    }
}

/// `303 See Other` back to the page; a failure is named in the fragment, which never reaches a
/// server log, for the page to show.
fn see_page(error: Option<&str>) -> Response {
    let location = match error {
        None => "/".to_owned(),
        Some(code) => format!("/#auth-error={code}"),
    };
    let mut out = StatusCode::SEE_OTHER.into_response();
    let h = out.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out
}
