//! The `todo-frontend` binary: its request log names method, path and status but never a query
//! string or a body; after SIGTERM it serves on for `SHUTDOWN_DELAY_SECS`, then drains.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::any;
use axum::Router;
use support::*;

const DEADLINE: Duration = Duration::from_secs(60);

/// A backend that answers every request with `{}`.
async fn start_stub_backend() -> String {
    let app = Router::new().fallback(any(|| async { axum::Json(serde_json::json!({})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_frontend(backend: &str, port: u16, extra: &[(&str, &str)]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_todo-frontend"))
        .env_clear()
        .env("BACKEND_URL", backend)
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .envs(extra.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn todo-frontend")
}

async fn wait_healthy(base: &str) {
    let c = client();
    let url = format!("{base}/health");
    poll_until(DEADLINE, "todo-frontend /health", || {
        let c = c.clone();
        let url = url.clone();
        async move { matches!(c.get(&url).send().await, Ok(r) if r.status() == 200) }
    })
    .await;
}

fn term(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_never_contain_query_strings_or_bodies() {
    let backend = start_stub_backend().await;
    let port = free_port();
    let child = spawn_frontend(&backend, port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let c = client();
    let r = c
        .get(format!(
            "{base}/api/tasks?status=pending&q=marker-query-text"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{base}/api/tasks"))
        .json(&serde_json::json!({"title": "marker-body-text"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A form posted to the wrong place by an old page: still no password in any log line.
    let _ = c
        .get(format!(
            "{base}/?email=a%40b.c&password=marker-password-text"
        ))
        .send()
        .await
        .unwrap();
    term(child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("wait for todo-frontend");
    assert!(out.status.success(), "{:?}", out.status);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for marker in [
        "marker-query-text",
        "marker-body-text",
        "marker-password-text",
        "status=pending",
    ] {
        assert!(!logs.contains(marker), "the log holds {marker}:\n{logs}");
    }
    assert!(
        logs.contains("\"path\":\"/api/tasks\""),
        "request lines name the path:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_it_serves_on_for_the_delay_then_a_second_signal_ends_it() {
    let backend = start_stub_backend().await;
    let port = free_port();
    let mut child = spawn_frontend(&backend, port, &[("SHUTDOWN_DELAY_SECS", "300")]);
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    term(child.id());
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let resp = c
            .get(format!("{base}/api/health"))
            .send()
            .await
            .expect("still accepting connections after SIGTERM");
        if resp.status() == 503 {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["status"], "stopping");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/api/health never reported the shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = c
        .get(format!("{base}/"))
        .send()
        .await
        .expect("served during the pause");
    assert_eq!(page.status(), 200);
    let api = c
        .get(format!("{base}/api/tasks"))
        .send()
        .await
        .expect("proxied during the pause");
    assert_eq!(api.status(), 200);
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited during the pause"
    );
    term(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait");
    assert!(status.success(), "{status:?}");
}
