//! Forwards `/api/*` to the backend: streamed bodies, session cookie turned into a bearer token.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::app::AppState;
use crate::config::Config;
use crate::error::ApiError;
use crate::session;

/// Headers that describe one connection, not the message, so a proxy must not pass them on (RFC 9110 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What became of a request body streamed upstream, for classifying a failed send.
#[derive(Debug, Default)]
pub struct BodyFate(AtomicU8);

impl BodyFate {
    const TOO_LARGE: u8 = 1;
    const TIMED_OUT: u8 = 2;

    fn set(&self, fate: u8) {
        self.0.store(fate, Ordering::Relaxed);
    }

    fn error(&self, upstream: &Upstream) -> Option<ApiError> {
        match self.0.load(Ordering::Relaxed) {
            Self::TOO_LARGE => Some(ApiError::PayloadTooLarge(upstream.max_body_bytes)),
            Self::TIMED_OUT => Some(ApiError::RequestTimeout(upstream.body_timeout.as_secs())),
            _ => None,
        }
    }
}

/// The backend as seen by the proxy: a pooled HTTP client plus where and how long to wait.
#[derive(Debug)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl Upstream {
    /// Builds the HTTP client for `config.backend_url`.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.backend_timeout.min(Duration::from_secs(5)))
            // A backend that stops sending mid-body must not pin the connection forever.
            .read_timeout(config.backend_timeout)
            // Below the backend's idle close (its HEADER_READ_TIMEOUT_SECS, 10 s by default): reusing a
            // connection the backend is closing at that moment would fail the request with a 502.
            .pool_idle_timeout(Duration::from_secs(4))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            base: config.backend_url.as_str().trim_end_matches('/').to_owned(),
            timeout: config.backend_timeout,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.http.body_read_timeout,
        })
    }

    /// Absolute backend URL for a path (with query) that starts with `/`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base, path_and_query)
    }

    /// The configured backend base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client, shared with the health check.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Largest request body forwarded.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// When a request body that starts arriving now must have arrived completely.
    pub fn body_deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.body_timeout
    }

    /// The 408 for a body that missed [`Upstream::body_deadline`].
    pub fn body_timed_out(&self) -> ApiError {
        ApiError::RequestTimeout(self.body_timeout.as_secs())
    }

    /// Sends one request and waits (bounded) for the response headers.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Option<reqwest::Body>,
        fate: &BodyFate,
    ) -> Result<reqwest::Response, ApiError> {
        let mut req = self
            .client
            .request(method, self.url(path_and_query))
            .headers(headers);
        if let Some(body) = body {
            req = req.body(body);
        }
        match tokio::time::timeout(self.timeout, req.send()).await {
            Err(_) => Err(ApiError::BackendTimeout(self.timeout.as_secs())),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(classify(&e, fate, self)),
        }
    }
}

fn classify(e: &reqwest::Error, fate: &BodyFate, upstream: &Upstream) -> ApiError {
    if let Some(refused) = fate.error(upstream) {
        return refused;
    }
    tracing::warn!(error = %error_chain(e), "backend request failed");
    if e.is_timeout() && !e.is_connect() {
        ApiError::BackendTimeout(upstream.timeout.as_secs())
    } else if e.is_connect() {
        ApiError::BackendUnavailable("cannot connect to the backend".into())
    } else {
        ApiError::BackendUnavailable("the backend closed the connection".into())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Copies end-to-end headers: drops hop-by-hop ones, those named in `Connection`, and `extra`.
pub fn end_to_end_headers(src: &HeaderMap, extra: &[HeaderName]) -> HeaderMap {
    let listed: Vec<String> = src
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(src.len());
    for (name, value) in src {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || listed.iter().any(|l| l == n) || extra.contains(name) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Headers that name the client or the path to it: only what this proxy itself saw is passed on.
const FORWARDING: [&str; 3] = ["x-forwarded-for", "x-real-ip", "forwarded"];

/// Headers sent to the backend: the browser's end-to-end headers minus `Cookie` and `Host`,
/// with the session turned into `Authorization` and the client address in `X-Forwarded-For`.
pub fn upstream_request_headers(src: &HeaderMap, peer: Option<SocketAddr>) -> HeaderMap {
    let mut headers = end_to_end_headers(src, &[header::COOKIE, header::HOST]);
    if let Some(token) = session::from_headers(src) {
        headers.insert(header::AUTHORIZATION, token.bearer());
    }
    set_forwarded_for(&mut headers, peer);
    headers
}

/// Replaces whatever the client claimed with the address it connects from. The frontend is the
/// edge: a client-supplied `X-Forwarded-For` would let anyone pick the address the backend's
/// sign-in limits count against.
pub fn set_forwarded_for(headers: &mut HeaderMap, peer: Option<SocketAddr>) {
    for name in FORWARDING {
        headers.remove(name);
    }
    if let Some(peer) = peer {
        if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
            headers.insert("x-forwarded-for", v);
        }
    }
}

/// The TCP peer `http_serve::serve` recorded for this request.
pub fn peer(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// Checks that `path` is a normalised path under `/api/`: segments of letters, digits and `-._~`
/// only, none empty, `.` or `..`. Anything else (dot segments, `%`-escapes of dots or slashes,
/// backslashes, which URL parsers turn into slashes) could resolve to a backend route outside the
/// API once the URL is parsed again upstream, so it is refused rather than "fixed".
pub fn check_api_path(path: &str) -> Result<(), ApiError> {
    let refused = || ApiError::BadRequest("the path is not a normalised /api/ path".into());
    let rest = path.strip_prefix("/api/").ok_or_else(refused)?;
    let clean = rest.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    });
    if clean {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Headers sent back to the browser: the backend's end-to-end headers; cookies stay the frontend's business.
pub fn downstream_response_headers(src: &HeaderMap) -> HeaderMap {
    let mut headers = end_to_end_headers(src, &[header::SET_COOKIE]);
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Rejects a declared length over the limit before anything is sent upstream.
fn check_declared_length(headers: &HeaderMap, max: usize) -> Result<(), ApiError> {
    match declared_length(headers) {
        Some(n) if n > max as u64 => Err(ApiError::PayloadTooLarge(max)),
        _ => Ok(()),
    }
}

/// [`check_declared_length`], reading a refused body away (see [`linger`]); the body back if fine.
pub async fn within_declared_length(
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<Body, ApiError> {
    match check_declared_length(headers, max) {
        Ok(()) => Ok(body),
        Err(e) => {
            linger(body.into_data_stream()).await;
            Err(e)
        }
    }
}

/// The whole body in memory, at most `max` bytes, by `deadline`; a longer one is read away and
/// refused with 413, a late one with 408.
pub async fn read_limited(
    body: Body,
    max: usize,
    deadline: tokio::time::Instant,
    late: impl FnOnce() -> ApiError,
) -> Result<Bytes, ApiError> {
    let mut data = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, data.next()).await else {
            return Err(late());
        };
        let Some(chunk) = next else { break };
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("the request body was cut off: {e}")))?;
        if buf.len().saturating_add(chunk.len()) > max {
            linger(data).await;
            return Err(ApiError::PayloadTooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn has_body(headers: &HeaderMap) -> bool {
    match declared_length(headers) {
        Some(n) => n > 0,
        None => headers.contains_key(header::TRANSFER_ENCODING),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit")]
struct BodyTooLarge;

#[derive(Debug, thiserror::Error)]
#[error("request body did not arrive in time")]
struct BodyTooSlow;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Streams the browser's body upstream, failing once it passes `max` bytes (the rest of the body
/// is read away first, see [`linger`], so the browser gets to read the 413) or misses `deadline`;
/// `fate` records which, for the answer.
fn limited_stream(
    body: Body,
    max: usize,
    deadline: tokio::time::Instant,
    fate: Arc<BodyFate>,
) -> reqwest::Body {
    let stream =
        futures_util::stream::unfold(Some((body.into_data_stream(), 0usize)), move |state| {
            let fate = fate.clone();
            async move {
                let (mut data, seen) = state?;
                let Ok(next) = tokio::time::timeout_at(deadline, data.next()).await else {
                    fate.set(BodyFate::TIMED_OUT);
                    let late: BoxError = Box::new(BodyTooSlow);
                    return Some((Err(late), None));
                };
                let item: Result<Bytes, BoxError> = match next? {
                    Err(e) => Err(Box::new(e)),
                    Ok(chunk) => {
                        let seen = seen.saturating_add(chunk.len());
                        if seen <= max {
                            return Some((Ok(chunk), Some((data, seen))));
                        }
                        fate.set(BodyFate::TOO_LARGE);
                        linger(data).await;
                        Err(Box::new(BodyTooLarge))
                    }
                };
                Some((item, None))
            }
        });
    reqwest::Body::wrap_stream(stream)
}

/// How long, and how much more, a refused body is read before the connection is given up.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Reads and discards what is left of a refused request body, within bounds. Closing a socket
/// with unread data makes the kernel send a reset, which can destroy the 413 before the client
/// reads it (nginx and Apache do the same "lingering close").
async fn linger(mut rest: axum::body::BodyDataStream) {
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut left = LINGER_BYTES;
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, rest.next()).await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            break;
        }
    }
}

/// Streams a backend response back to the browser.
pub fn stream_response(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let headers = downstream_response_headers(resp.headers());
    let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// Handler for every `/api/*` route the frontend does not answer itself.
pub async fn forward(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let upstream = &state.upstream;
    let (parts, body) = req.into_parts();
    check_api_path(parts.uri.path())?;
    // These answer with a token: only the sign-in handlers (which keep it in the cookie) call them.
    if matches!(parts.uri.path(), "/api/auth/login" | "/api/auth/register") {
        return Err(ApiError::NotFound);
    }
    let body = within_declared_length(&parts.headers, body, upstream.max_body_bytes()).await?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let had_session = session::from_headers(&parts.headers).is_some();
    let headers = upstream_request_headers(&parts.headers, peer(&parts.extensions));

    let fate = Arc::new(BodyFate::default());
    let body = has_body(&parts.headers).then(|| {
        limited_stream(
            body,
            upstream.max_body_bytes(),
            upstream.body_deadline(),
            fate.clone(),
        )
    });
    let resp = upstream
        .send(parts.method.clone(), path_and_query, headers, body, &fate)
        .await?;

    let status = resp.status();
    let mut out = stream_response(resp);
    let deleted_account =
        parts.method == Method::DELETE && parts.uri.path() == "/api/auth/me" && status.is_success();
    // A stale or revoked token is useless: drop it so the browser stops sending it.
    if deleted_account || (had_session && status == StatusCode::UNAUTHORIZED) {
        for clear in session::clear_cookies() {
            out.headers_mut().append(header::SET_COOKIE, clear);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_hop_by_hop_and_connection_listed_headers() {
        let h = map(&[
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ]);
        let out = end_to_end_headers(&h, &[]);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "accept"]);
    }

    #[test]
    fn cookie_becomes_bearer_and_is_never_forwarded() {
        let h = map(&[
            ("cookie", "theme=dark; todo_session=tok123"),
            ("host", "localhost:3000"),
            ("content-type", "application/json"),
        ]);
        let out = upstream_request_headers(&h, None);
        assert!(out.get(header::COOKIE).is_none());
        assert!(out.get(header::HOST).is_none());
        assert_eq!(out.get(header::AUTHORIZATION).unwrap(), "Bearer tok123");
    }

    #[test]
    fn cookie_token_overrides_a_client_authorization_header() {
        let h = map(&[
            ("authorization", "Bearer other"),
            ("cookie", "todo_session=mine"),
        ]);
        let out = upstream_request_headers(&h, None);
        assert_eq!(out.get_all(header::AUTHORIZATION).iter().count(), 1);
        assert_eq!(out.get(header::AUTHORIZATION).unwrap(), "Bearer mine");
    }

    #[test]
    fn response_headers_drop_set_cookie_and_default_to_no_store() {
        let h = map(&[
            ("set-cookie", "evil=1"),
            ("content-type", "application/json"),
            ("connection", "close"),
        ]);
        let out = downstream_response_headers(&h);
        assert!(out.get(header::SET_COOKIE).is_none());
        assert!(out.get(header::CONNECTION).is_none());
        assert_eq!(out.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }

    #[test]
    fn declared_length_over_limit_is_rejected() {
        assert!(check_declared_length(&map(&[("content-length", "11")]), 10).is_err());
        assert!(check_declared_length(&map(&[("content-length", "10")]), 10).is_ok());
        assert!(check_declared_length(&map(&[]), 10).is_ok());
    }

    #[tokio::test]
    async fn read_limited_takes_up_to_the_limit_and_refuses_more() {
        let later = || tokio::time::Instant::now() + Duration::from_secs(60);
        let late = || ApiError::RequestTimeout(60);
        let ten = read_limited(Body::from(vec![b'x'; 10]), 10, later(), late)
            .await
            .unwrap();
        assert_eq!(ten.len(), 10);
        let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 4]));
        let streamed = Body::from_stream(futures_util::stream::iter(chunks));
        assert!(matches!(
            read_limited(streamed, 10, later(), late).await,
            Err(ApiError::PayloadTooLarge(10))
        ));
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert!(matches!(
            read_limited(never, 10, tokio::time::Instant::now(), late).await,
            Err(ApiError::RequestTimeout(60))
        ));
    }

    #[test]
    fn forwarded_for_is_the_peer_never_what_the_client_claims() {
        let h = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        let peer: SocketAddr = "198.51.100.4:5555".parse().unwrap();
        let out = upstream_request_headers(&h, Some(peer));
        assert_eq!(
            out.get_all("x-forwarded-for").iter().collect::<Vec<_>>(),
            ["198.51.100.4"]
        );
        assert!(out.get("forwarded").is_none() && out.get("x-real-ip").is_none());
        assert!(upstream_request_headers(&h, None)
            .get("x-forwarded-for")
            .is_none());
    }

    #[test]
    fn only_normalised_api_paths_pass() {
        for ok in [
            "/api/tasks",
            "/api/tasks/12/complete",
            "/api/conversations/3/messages",
            "/api/a.b~c_d-e",
        ] {
            assert!(check_api_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/api/../ready",
            "/api/./tasks",
            "/api/tasks/..",
            "/api/%2e%2e/ready",
            "/api/.%2E/ready",
            "/api/tasks%2F..%2F..%2Fready",
            "/api/tasks/..%5c..%5cready",
            "/api/tasks\\..\\..\\ready",
            "/api//auth/login",
            "/api/tasks/",
            "/api/",
            "/ready",
            "/api/auth/log%69n",
            "/api/tasks;x=1",
        ] {
            assert!(
                matches!(check_api_path(bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn body_presence_follows_framing_headers() {
        assert!(!has_body(&map(&[])));
        assert!(!has_body(&map(&[("content-length", "0")])));
        assert!(has_body(&map(&[("content-length", "2")])));
        assert!(has_body(&map(&[("transfer-encoding", "chunked")])));
    }
}
