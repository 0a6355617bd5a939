//! What exactly reaches the backend and comes back (through an echo server that reports it), and
//! how the proxy fails: backend down -> 502 JSON, backend silent -> 504 JSON, health never hangs.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap as AxHeaders, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures_util::StreamExt;
use reqwest::header;
use serde_json::{json, Value};
use support::*;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

#[derive(Clone, Default)]
struct Echo {
    /// Raised when the echo server has received the first request chunk.
    first_chunk_in: Arc<Notify>,
    /// Raised by the test to let the streaming response finish.
    release_response: Arc<Notify>,
}

fn header_map(h: &AxHeaders) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in h {
        out.insert(
            k.as_str().to_string(),
            json!(v.to_str().unwrap_or("<binary>")),
        );
    }
    Value::Object(out)
}

async fn echo(State(echo): State<Echo>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/api/stream-response" {
        // First chunk now, the rest only when the test says so: a buffering proxy would never deliver it.
        let release = echo.release_response.clone();
        let stream = futures_util::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(b"first|"))
        })
        .chain(futures_util::stream::once(async move {
            release.notified().await;
            Ok(Bytes::from_static(b"second"))
        }));
        return Body::from_stream(stream).into_response();
    }
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        total += chunk.len();
        if first && !chunk.is_empty() {
            first = false;
            echo.first_chunk_in.notify_one();
        }
    }
    let body = json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": header_map(&parts.headers),
        "body_len": total,
    });
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        "set-cookie",
        HeaderValue::from_static("backend_cookie=1; Path=/"),
    );
    h.insert("connection", HeaderValue::from_static("x-hop"));
    h.insert("x-hop", HeaderValue::from_static("secret"));
    h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    h.insert("x-backend", HeaderValue::from_static("echo"));
    h.insert(
        "cache-control",
        HeaderValue::from_static("private, max-age=5"),
    );
    resp
}

async fn start_echo() -> (String, Echo, tokio::task::JoinHandle<()>) {
    let state = Echo::default();
    let app = Router::new().fallback(any(echo)).with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_token_not_cookie_and_strips_hop_by_hop_headers() {
    let (backend, _echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;
    let resp = client()
        .patch(format!("{}/api/tasks/7?x=1&y=two", fe.url))
        .header(header::COOKIE, "theme=dark; todo_session=tok-123; other=1")
        .header(header::CONNECTION, "keep-alive, x-client-hop")
        .header("x-client-hop", "drop me")
        .header("keep-alive", "timeout=9")
        .header("x-request-id", "req-42")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"title":"t"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // What the browser gets back.
    let h = resp.headers().clone();
    assert!(
        h.get(header::SET_COOKIE).is_none(),
        "backend cookies never reach the browser"
    );
    assert!(
        h.get("x-hop").is_none(),
        "headers named in Connection are hop-by-hop"
    );
    assert!(h.get("keep-alive").is_none());
    assert_eq!(
        h.get("x-backend").unwrap(),
        "echo",
        "end-to-end headers pass"
    );
    assert_eq!(h.get(header::CACHE_CONTROL).unwrap(), "private, max-age=5");
    assert!(h.get(header::CONTENT_SECURITY_POLICY).is_some());

    // What the backend saw.
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["method"], "PATCH");
    assert_eq!(seen["uri"], "/api/tasks/7?x=1&y=two");
    let headers = &seen["headers"];
    assert!(
        headers.get("cookie").is_none(),
        "Cookie must not be forwarded: {headers}"
    );
    assert_eq!(headers["authorization"], "Bearer tok-123");
    assert!(headers.get("x-client-hop").is_none(), "{headers}");
    assert!(headers.get("keep-alive").is_none(), "{headers}");
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "the client address, never what the client claims: {headers}"
    );
    assert!(headers.get("forwarded").is_none(), "{headers}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(seen["body_len"], 13);
    assert!(!headers["host"]
        .as_str()
        .unwrap()
        .contains(&fe.addr.port().to_string()));

    // Without a session cookie the request goes out without credentials of ours.
    let anon: Value = client()
        .get(format!("{}/api/tasks", fe.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(anon["headers"].get("authorization").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_bodies_are_streamed() {
    let (backend, echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;

    // Request: the second chunk is only produced after the backend has received the first one.
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let url = format!("{}/api/upload", fe.url);
    let sending = tokio::spawn(async move { client().post(url).body(body).send().await });
    tx.send(Ok(vec![b'a'; 64 * 1024])).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), echo.first_chunk_in.notified())
        .await
        .expect("the first request chunk reached the backend before the body ended");
    tx.send(Ok(vec![b'b'; 100 * 1024])).await.unwrap();
    drop(tx);
    let resp = sending.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["body_len"], 164 * 1024);

    // Response: the first chunk arrives while the backend still holds back the second.
    let mut resp = client()
        .get(format!("{}/api/stream-response", fe.url))
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("first response chunk arrives before the backend finishes")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"first|");
    echo.release_response.notify_one();
    let rest = resp.bytes().await.unwrap();
    assert_eq!(&rest[..], b"second");
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_streamed_body_is_refused_with_413() {
    let (backend, _echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;
    // No Content-Length: the limit must hold while streaming, not only for declared sizes.
    let chunks = (0..40).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024]));
    let resp = client()
        .post(format!("{}/api/tasks", fe.url))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");
}

/// Reads one HTTP/1.1 response (head and Content-Length body) from a raw connection.
async fn read_response(conn: &mut tokio::io::BufReader<tokio::net::TcpStream>) -> (u16, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut status_line = String::new();
    conn.read_line(&mut status_line).await.unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_body_is_read_away_so_the_413_arrives_and_the_connection_lives_on() {
    use tokio::io::AsyncWriteExt;
    let (backend, _echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;
    let addr = fe.url.trim_start_matches("http://").to_string();
    let mut conn = tokio::io::BufReader::new(tokio::net::TcpStream::connect(&addr).await.unwrap());

    // A declared length over the limit, and a chunked body that passes it while streaming: both
    // are refused, and both bodies are read to their end rather than left unread in the socket
    // (a close with unread data resets the connection, and the client may never see the 413).
    let size = 2 * 1024 * 1024;
    let declared = format!(
        "POST /api/tasks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    );
    conn.get_mut().write_all(declared.as_bytes()).await.unwrap();
    conn.get_mut().write_all(&vec![b' '; size]).await.unwrap();
    let (status, body) = read_response(&mut conn).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");

    let chunked = format!(
        "POST /api/tasks HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    conn.get_mut().write_all(chunked.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..32 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        conn.get_mut().write_all(&framed).await.unwrap();
    }
    conn.get_mut().write_all(b"0\r\n\r\n").await.unwrap();
    let (status, body) = read_response(&mut conn).await;
    assert_eq!(status, 413, "{body}");

    // Sign-in bodies are read whole by the frontend (it keeps the token): the same holds there.
    let register = format!(
        "POST /api/auth/register HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    conn.get_mut().write_all(register.as_bytes()).await.unwrap();
    for _ in 0..32 {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        conn.get_mut().write_all(&framed).await.unwrap();
    }
    conn.get_mut().write_all(b"0\r\n\r\n").await.unwrap();
    let (status, body) = read_response(&mut conn).await;
    assert_eq!(status, 413, "{body}");

    // The same connection answers the next request: nothing of the refused bodies was left over.
    let next = format!("GET /health HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    conn.get_mut().write_all(next.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut conn).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_gives_502_json_and_degraded_health() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fe = start_frontend(&format!("http://127.0.0.1:{port}"), &[]).await;
    let c = client();

    for (method, path) in [
        ("GET", "/api/tasks"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/chat"),
    ] {
        let resp = c
            .request(method.parse().unwrap(), format!("{}{path}", fe.url))
            .header(header::COOKIE, "todo_session=t")
            .json(&json!({"email": "a@b.c", "password": "12345678", "message": "hi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{method} {path}");
        assert!(resp
            .headers()
            .get(header::CONTENT_SECURITY_POLICY)
            .is_some());
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v["error"]["code"], "backend_unavailable",
            "{method} {path}: {v}"
        );
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    let resp = c
        .get(format!("{}/api/health", fe.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the frontend itself is healthy");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["backend"]["reachable"], false);
    assert!(v["backend"]["status"].is_null());
    assert!(v["backend"]["error"].as_str().is_some());

    // The UI still loads while the backend is down.
    assert_eq!(
        c.get(format!("{}/", fe.url)).send().await.unwrap().status(),
        200
    );
    // Signing out still works in the browser: the cookie is cleared although the backend could
    // not be told.
    let out = c
        .post(format!("{}/api/auth/logout", fe.url))
        .header(header::COOKIE, "todo_session=t")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let cleared = out
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.starts_with("todo_session=;"), "{cleared}");
}

/// Accepts connections and never answers: a hung backend.
async fn start_silent_backend() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_backend_gives_504_json_and_health_never_hangs() {
    let (backend, _task) = start_silent_backend().await;
    let fe = start_frontend(&backend, &[("BACKEND_TIMEOUT_SECS", "1")]).await;
    let c = client();

    let started = Instant::now();
    let resp = c
        .get(format!("{}/api/tasks", fe.url))
        .header(header::COOKIE, "todo_session=t")
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.status(), 504);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "backend_timeout");

    let started = Instant::now();
    let resp = c
        .post(format!("{}/api/auth/register", fe.url))
        .json(&json!({"email": "a@b.c", "password": "12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));

    let started = Instant::now();
    let resp = c
        .get(format!("{}/api/health", fe.url))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "health answered in {:?}",
        started.elapsed()
    );
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["backend"]["reachable"], false);
    assert!(v["backend"]["latency_ms"].as_u64().unwrap() >= 900);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_returns() {
    let (backend, _echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;
    let url = fe.url.clone();
    assert_eq!(
        client()
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fe.stop()
        .await
        .expect("serve returns Ok after the shutdown signal");
    assert!(
        client().get(format!("{url}/health")).send().await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_waiting_for_a_stuck_request_after_the_drain_timeout() {
    // A backend that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = format!("http://{}", silent.local_addr().unwrap());
    let (accepted_tx, mut accepted_rx) = mpsc::channel(1);
    let _silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
            let _ = accepted_tx.try_send(());
        }
    });
    let mut config = frontend::Config::from_lookup(|k| match k {
        "BACKEND_URL" => Some(backend.clone()),
        "BACKEND_TIMEOUT_SECS" => Some("120".into()),
        _ => None,
    })
    .unwrap();
    config.drain_timeout = Duration::from_secs(1);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frontend::serve(config, listener, async move {
        let _ = stop_rx.await;
    }));
    let _stuck = tokio::spawn(async move { client().get(format!("{url}/api/tasks")).send().await });
    tokio::time::timeout(Duration::from_secs(10), accepted_rx.recv())
        .await
        .expect("the request reached the silent backend");

    let started = Instant::now();
    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("serve returned within the drain timeout, not the 120 s backend timeout");
    assert!(result.unwrap().is_ok());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the stuck request got its drain time: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_bodies_over_the_backends_limit_never_leave_the_frontend() {
    assert_eq!(
        frontend::config::SIGN_IN_MAX_BODY_BYTES,
        backend::extract::BODY_LIMIT
    );
    let (backend, _echo, _task) = start_echo().await;
    let fe = start_frontend(&backend, &[]).await;
    let limit = backend::extract::BODY_LIMIT;
    for path in ["/api/auth/login", "/api/auth/register"] {
        // Over the backend's limit: refused here, declared or streamed.
        let over = vec![b' '; limit + 1];
        let declared = client()
            .post(format!("{}{path}", fe.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(over.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(declared.status(), 413, "{path}");
        let chunks = over
            .chunks(8192)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>();
        let streamed = client()
            .post(format!("{}{path}", fe.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.status(), 413, "{path} streamed");
        // At the limit it is forwarded (the echo's answer has no token: 502 from the frontend).
        let at = client()
            .post(format!("{}{path}", fe.url))
            .header(header::CONTENT_TYPE, "application/json")
            .body(vec![b' '; limit])
            .send()
            .await
            .unwrap();
        assert_eq!(at.status(), 502, "{path}: forwarded");
    }
}
