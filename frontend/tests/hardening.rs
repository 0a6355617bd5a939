//! The frontend under abuse, against the real backend: cross-site requests are refused, only
//! normalised /api/ paths are proxied, the client address reaches the backend's sign-in limits,
//! and slow or idle clients are cut off.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header;
use serde_json::{json, Value};
use support::*;
use testkit::raw_http::{read_answer, Seen};
use tokio::io::AsyncWriteExt;

const DEADLINE: Duration = Duration::from_secs(60);

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("host:port")
}

async fn code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.expect("JSON body");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn state_changes_from_another_site_are_refused() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = &stack.frontend.url;
    let host = fe.trim_start_matches("http://");
    let email = unique_email("csrf");
    let cookie = sign_up(fe, &email).await;
    let c = client();
    let post_task = |title: &str| {
        c.post(format!("{fe}/api/tasks"))
            .header(header::COOKIE, &cookie)
            .json(&json!({"title": title}))
    };
    for (what, req) in [
        (
            "foreign Origin",
            post_task("evil").header("origin", "https://evil.example"),
        ),
        ("opaque Origin", post_task("evil").header("origin", "null")),
        (
            "cross-site fetch",
            post_task("evil").header("sec-fetch-site", "cross-site"),
        ),
        (
            "same-site but other origin",
            post_task("evil").header("sec-fetch-site", "same-site"),
        ),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{what}");
        assert_eq!(code(resp).await, "forbidden", "{what}");
    }
    // Login CSRF (signing the victim into the attacker's account) and forced logout too.
    for path in ["/api/auth/login", "/api/auth/register", "/api/auth/logout"] {
        let resp = c
            .post(format!("{fe}{path}"))
            .header("sec-fetch-site", "cross-site")
            .json(&json!({"email": email, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        assert!(session_cookie(&resp).is_none(), "{path}: no cookie change");
    }
    // The page itself, and clients that are not browsers, go through.
    let own = post_task("mine")
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    assert_eq!(post_task("curl").send().await.unwrap().status(), 201);
    let list: Value = c
        .get(format!("{fe}/api/tasks"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let titles: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(titles, ["curl", "mine"], "nothing refused was written");
}

#[tokio::test]
async fn only_normalised_api_paths_reach_the_backend() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = addr_of(&stack.frontend.url);
    let cookie = sign_up(&stack.frontend.url, &unique_email("paths")).await;
    for path in [
        "/api/../ready",
        "/api/tasks/../../ready",
        "/api/%2e%2e/ready",
        "/api/.%2E/ready",
        "/api/tasks%2F..%2F..%2Fready",
        "/api/tasks/..%5C..%5Cready",
        "/api/tasks\\..\\..\\ready",
        "/api/./auth/login",
        "/api//auth/login",
        "/api/auth/log%69n",
        "/api/auth/login/",
    ] {
        for method in ["GET", "POST"] {
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {fe}\r\nCookie: {cookie}\r\nContent-Type: application/json\r\n\
                 Content-Length: 58\r\nConnection: close\r\n\r\n{{\"email\":\"a@example.com\",\"password\":\"correct horse bat\"}}"
            );
            match raw_request(fe, &request).await {
                Seen::Response(status, text) => {
                    assert!(
                        matches!(status, 400 | 404 | 405),
                        "{method} {path}: {status}\n{text}"
                    );
                    assert!(
                        !text.contains("\"ready\"") && !text.contains("not_ready"),
                        "{text}"
                    );
                    assert!(!text.contains("\"token\""), "{method} {path}: {text}");
                }
                Seen::Closed => panic!("{method} {path}: closed without an answer"),
            }
        }
    }
    let request =
        format!("GET /api/%2e%2e/ready HTTP/1.1\r\nHost: {fe}\r\nConnection: close\r\n\r\n");
    match raw_request(fe, &request).await {
        Seen::Response(400, text) => assert!(text.contains("\"bad_request\""), "{text}"),
        other => panic!("encoded dot segments: {other:?}"),
    }
    let request = format!(
        "GET /api/tasks?status=pending HTTP/1.1\r\nHost: {fe}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    assert!(
        matches!(raw_request(fe, &request).await, Seen::Response(200, _)),
        "a normal path still works"
    );
}

#[tokio::test]
async fn the_backends_sign_in_limit_counts_the_browser_not_the_frontend() {
    let Some(stack) = start_stack_with(&[("AUTH_RATE_PER_ADDRESS", "3")], &[]).await else {
        return;
    };
    let fe = &stack.frontend.url;
    let from = |last_octet: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last_octet]))
            .build()
            .expect("client bound to a loopback address")
    };
    let login = |c: reqwest::Client| async move {
        c.post(format!("{fe}/api/auth/login"))
            .header("x-forwarded-for", "192.0.2.99")
            .json(&json!({"email": "nobody@example.com", "password": "wrong password"}))
            .send()
            .await
            .expect("login")
    };
    for _ in 0..3 {
        assert_eq!(login(from(2)).await.status(), 401);
    }
    let limited = login(from(2)).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(code(limited).await, "rate_limited");
    // Another browser is not held up by the first one's flood (nor by what it claims to be).
    assert_eq!(login(from(3)).await.status(), 401);
}

#[tokio::test]
async fn slow_and_idle_connections_are_cut_off() {
    let Some(stack) = start_stack_with(
        &[],
        &[
            ("HEADER_READ_TIMEOUT_SECS", "1"),
            ("BODY_READ_TIMEOUT_SECS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let fe = addr_of(&stack.frontend.url);
    // A request head trickled byte by byte.
    let mut conn = tokio::net::TcpStream::connect(fe).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut cut_off = false;
    for _ in 0..600 {
        if conn.write_all(b"X-Slow: 1\r\n").await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cut_off,
        "the frontend kept reading a request head for a minute"
    );
    // A connection that never sends anything.
    let mut idle = tokio::net::TcpStream::connect(fe).await.unwrap();
    assert!(matches!(
        read_answer(&mut idle, DEADLINE).await,
        Seen::Closed | Seen::Response(408, _)
    ));
    // Bodies trickled byte by byte: proxied ones and sign-in ones.
    let cookie = sign_up(&stack.frontend.url, &unique_email("slow")).await;
    for path in ["/api/tasks", "/api/auth/login"] {
        let conn = tokio::net::TcpStream::connect(fe).await.unwrap();
        let (mut reader, mut writer) = conn.into_split();
        writer
            .write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: application/json\r\n\
                     Content-Length: 5000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let trickle = tokio::spawn(async move {
            for _ in 0..600 {
                if writer.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let answer = tokio::time::timeout(DEADLINE, async {
            use tokio::io::AsyncReadExt;
            let mut text = String::new();
            let mut buf = [0u8; 4096];
            while !text.contains("request_timeout") {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
            text
        })
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer to a trickled body within {DEADLINE:?}"));
        trickle.abort();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("\"request_timeout\""), "{path}: {answer}");
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_json_503() {
    let Some(stack) = start_stack_with(
        &[],
        &[
            ("MAX_CONNECTIONS", "1"),
            ("HEADER_READ_TIMEOUT_SECS", "300"),
        ],
    )
    .await
    else {
        return;
    };
    let fe = addr_of(&stack.frontend.url);
    let mut held = tokio::net::TcpStream::connect(fe).await.unwrap();
    held.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(matches!(
        read_answer(&mut held, DEADLINE).await,
        Seen::Response(200, _)
    ));
    match raw_request(fe, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await {
        Seen::Response(503, text) => {
            assert!(text.contains("\"service_unavailable\""), "{text}");
            assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
        }
        other => panic!("over the cap: {other:?}"),
    }
    drop(held);
    poll_until(DEADLINE, "a freed connection slot", || async {
        matches!(
            raw_request(
                fe,
                "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .await,
            Seen::Response(200, _)
        )
    })
    .await;
}
