//! One client must not take the service down for everybody: sign-in is throttled per client
//! address and per (address, e-mail), the hashing queue refuses instead of growing, slow or idle
//! connections are cut off, and connections beyond the cap are refused with a JSON 503.

mod common;

use std::time::Duration;

use common::{raw_connection, spawn_app_with, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::raw_http::{read_answer, Seen};
use tokio::io::AsyncWriteExt;

const DEADLINE: Duration = Duration::from_secs(60);

async fn login_from(app: &TestApp, addr: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", addr)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request")
}

async fn assert_rate_limited(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
}

#[tokio::test]
async fn wrong_logins_are_throttled_per_address_and_email_without_locking_the_owner_out() {
    let Some(app) = spawn_app_with(&[("AUTH_RATE_PER_ADDRESS_EMAIL", "3")]).await else {
        return;
    };
    let email = "owner@example.com";
    app.register(email).await;
    let attacker = "203.0.113.66";
    for _ in 0..3 {
        let resp = login_from(&app, attacker, email, "wrong password!").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_rate_limited(login_from(&app, attacker, email, "wrong password!").await).await;
    // Even the right password waits there: the attacker cannot probe faster by guessing well...
    assert_rate_limited(login_from(&app, attacker, email, "correct horse battery").await).await;
    // ...while the owner, elsewhere, signs in at once, and other accounts from there are untouched.
    let resp = login_from(&app, "198.51.100.7", email, "correct horse battery").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = login_from(
        &app,
        attacker,
        "someone-else@example.com",
        "wrong password!",
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_is_throttled_per_client_address() {
    let Some(app) = spawn_app_with(&[("AUTH_RATE_PER_ADDRESS", "4")]).await else {
        return;
    };
    let flood = "203.0.113.9";
    for i in 0..4 {
        let resp = login_from(&app, flood, &format!("guess{i}@example.com"), "password1").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_rate_limited(login_from(&app, flood, "guess9@example.com", "password1").await).await;
    let resp = app
        .client
        .post(app.url("/api/auth/register"))
        .header("x-forwarded-for", flood)
        .json(&json!({"email": "new@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_rate_limited(resp).await;
    let resp = login_from(&app, "198.51.100.8", "guess9@example.com", "password1").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "another address");
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    // The test client (127.0.0.1) is not a trusted proxy here: its X-Forwarded-For is ignored.
    let Some(app) = spawn_app_with(&[
        ("AUTH_RATE_PER_ADDRESS", "3"),
        ("TRUSTED_PROXIES", "192.0.2.1"),
    ])
    .await
    else {
        return;
    };
    for i in 0..3 {
        let resp = login_from(
            &app,
            &format!("203.0.113.{i}"),
            "x@example.com",
            "password1",
        )
        .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    assert_rate_limited(login_from(&app, "203.0.113.200", "x@example.com", "password1").await)
        .await;
}

#[tokio::test]
async fn a_full_hashing_queue_refuses_with_503_and_retry_after() {
    let Some(app) = spawn_app_with(&[("HASH_WORKERS", "1"), ("HASH_QUEUE", "0")]).await else {
        return;
    };
    let mut refused = 0;
    for round in 0..20 {
        let attempts = (0..12).map(|i| {
            let client = app.client.clone();
            let url = app.url("/api/auth/register");
            async move {
                client
                    .post(url)
                    .json(&json!({"email": format!("q{round}-{i}@example.com"), "password": "correct horse battery"}))
                    .send()
                    .await
                    .expect("register request")
            }
        });
        for resp in futures_util::future::join_all(attempts).await {
            match resp.status() {
                StatusCode::CREATED => {}
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(resp.headers()["retry-after"], "1");
                    let body: Value = resp.json().await.unwrap();
                    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
                    refused += 1;
                }
                other => panic!("register under a full queue: {other}"),
            }
        }
        if refused > 0 {
            return;
        }
    }
    panic!("twelve parallel registrations never found the single hashing slot taken");
}

#[tokio::test]
async fn a_request_head_sent_byte_by_byte_is_cut_off() {
    let Some(app) = spawn_app_with(&[("HEADER_READ_TIMEOUT_SECS", "1")]).await else {
        return;
    };
    let mut conn = raw_connection(&app).await;
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        // Far longer than the timeout: only the server can end this.
        for _ in 0..600 {
            if conn.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server kept reading a request head for a minute");
    };
    trickle.await;
    let mut idle = raw_connection(&app).await;
    assert!(
        matches!(
            read_answer(&mut idle, DEADLINE).await,
            Seen::Closed | Seen::Response(408, _)
        ),
        "an idle connection is closed too"
    );
    let (status, _) = app.json(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_sent_byte_by_byte_gets_408() {
    let Some(app) = spawn_app_with(&[("BODY_READ_TIMEOUT_SECS", "1")]).await else {
        return;
    };
    let mut conn = raw_connection(&app).await;
    conn.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{",
    )
    .await
    .unwrap();
    let (mut reader, mut writer) = conn.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..600 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut text = String::new();
    let seen = tokio::time::timeout(DEADLINE, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if text.contains("\r\n\r\n") && text.ends_with('}') {
                break;
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        seen.is_ok(),
        "no answer to a trickled body within {DEADLINE:?}"
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_json_503_until_one_closes() {
    let Some(app) = spawn_app_with(&[
        ("MAX_CONNECTIONS", "2"),
        ("HEADER_READ_TIMEOUT_SECS", "300"),
    ])
    .await
    else {
        return;
    };
    // Two connections, each proven accepted by a full keep-alive request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = raw_connection(&app).await;
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        match read_answer(&mut conn, DEADLINE).await {
            Seen::Response(200, _) => held.push(conn),
            other => panic!("held connection: {other:?}"),
        }
    }
    let mut third = raw_connection(&app).await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    match read_answer(&mut third, DEADLINE).await {
        Seen::Response(503, text) => {
            assert!(
                text.to_ascii_lowercase().contains("retry-after: 1"),
                "{text}"
            );
            assert!(text.contains("\"service_unavailable\""), "{text}");
        }
        other => panic!("over the cap: {other:?}"),
    }
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut conn = raw_connection(&app).await;
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        if let Seen::Response(200, _) = read_answer(&mut conn, DEADLINE).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed slot was never reused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
