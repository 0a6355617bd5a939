//! Startup, readiness across a database outage, concurrent migrations, shutdown, and the binary's
//! behaviour with bad configuration and SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestApp, AUTH_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::pg::TestDb;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn readiness_follows_the_database_and_recovers() {
    let Some(db) = TestDb::local_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;
    let token = app.register("outage@example.com").await;

    db.stop().expect("stop PostgreSQL");
    let body = app
        .wait_ready_status(StatusCode::SERVICE_UNAVAILABLE, DEADLINE)
        .await;
    assert_eq!(body["status"], "not_ready", "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    let (status, body) = app.json(Method::GET, "/health", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "ok", "build": null})),
        "liveness ignores the database"
    );
    let (status, body) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert!(
        status.is_server_error(),
        "API during outage: {status} {body}"
    );
    assert!(
        body["error"]["code"].is_string(),
        "JSON error during outage: {body}"
    );

    db.start().expect("restart PostgreSQL");
    app.wait_ready(DEADLINE).await;
    // The API itself recovers (stale pooled connections may fail once each; poll with a deadline).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = app
            .json(Method::GET, "/api/tasks", Some(&token), None)
            .await;
        if status == StatusCode::OK {
            assert_eq!(body, json!([]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "API did not recover: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn starts_without_database_and_migrates_when_it_appears() {
    let Some(db) = TestDb::local_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    db.stop().expect("stop PostgreSQL");

    let started = Instant::now();
    let app = TestApp::start(&url).await;
    let (status, _) = app.json(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "startup blocked on the database"
    );
    let body = app
        .wait_ready_status(StatusCode::SERVICE_UNAVAILABLE, DEADLINE)
        .await;
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("migrations"),
        "{body}"
    );

    db.start().expect("start PostgreSQL");
    app.wait_ready(DEADLINE).await;
    app.register("late@example.com").await;
    app.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn concurrent_replicas_migrate_safely() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let mut apps = Vec::new();
    for _ in 0..6 {
        apps.push(TestApp::start(&url).await);
    }
    for app in &apps {
        app.wait_ready(DEADLINE).await;
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected = backend::storage::MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .count();
    assert_eq!(
        applied.len(),
        expected,
        "each migration recorded once: {applied:?}"
    );
    assert!(applied.iter().all(|(_, ok)| *ok));
    // Every replica serves the same data.
    let token = apps[0].register("replicas@example.com").await;
    apps[1].create_task(&token, "from replica 1").await;
    let (status, list) = apps[5]
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(
        (status, list.as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    for app in apps {
        app.stop().await.expect("clean shutdown");
    }
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;
    let base = app.base.clone();
    app.stop()
        .await
        .expect("serve returns Ok after graceful shutdown");
    let client = reqwest::Client::new();
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let mut app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;

    // Hold a lock so a registration stays in flight, deterministically, until the test releases it.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let client = app.client.clone();
    let register = app.url("/api/auth/register");
    let in_flight = tokio::spawn(async move {
        client
            .post(register)
            .json(&json!({"email": "drain@example.com", "password": "long enough password"}))
            .send()
            .await
            .map(|r| r.status())
    });
    let deadline = Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the registration never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    app.begin_shutdown();
    // Shutdown has taken effect once new connections are refused; the registration is still waiting.
    let fresh = reqwest::Client::new();
    let deadline = Instant::now() + DEADLINE;
    while fresh.get(app.url("/health")).send().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting connections after shutdown began"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "the registration finished before the lock was released"
    );
    blocker.commit().await.unwrap();
    let status = in_flight
        .await
        .unwrap()
        .expect("in-flight request answered during shutdown");
    assert_eq!(status, StatusCode::CREATED);
    app.stop().await.expect("serve returns Ok after draining");
}

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_todo-backend"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

#[test]
fn binary_refuses_bad_configuration_with_one_line() {
    for (vars, name) in [
        (vec![("AUTH_SECRET", AUTH_SECRET)], "DATABASE_URL"),
        (
            vec![("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db")],
            "AUTH_SECRET",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db"),
                ("AUTH_SECRET", AUTH_SECRET),
                ("PORT", "http"),
            ],
            "PORT",
        ),
        (
            vec![
                ("DATABASE_URL", "postgres://u:pw@127.0.0.1:1/db"),
                ("AUTH_SECRET", "too-short"),
            ],
            "AUTH_SECRET",
        ),
    ] {
        let out = binary()
            .envs(vars)
            .stdin(Stdio::null())
            .output()
            .expect("run todo-backend");
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(name), "names {name}: {stderr}");
        assert!(
            !stderr.contains("too-short") && !stderr.contains(":pw@"),
            "no secret echoed: {stderr}"
        );
    }
}

#[tokio::test]
async fn binary_serves_logs_without_secrets_and_stops_on_sigterm() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    // Trust authentication ignores the password, so a marker password can be checked for in the logs.
    let url_with_password = url.replacen("postgres@", "postgres:marker-db-password@", 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = binary()
        .env("DATABASE_URL", &url_with_password)
        .env("AUTH_SECRET", AUTH_SECRET)
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn todo-backend");
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        assert!(Instant::now() < deadline, "binary never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "bin@example.com", "password": "marker-user-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let res = client
        .get(format!(
            "{base}/api/tasks?status=pending&q=marker-query-text"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("wait for todo-backend");
    assert!(out.status.success(), "exit after SIGTERM: {:?}", out.status);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        AUTH_SECRET,
        "marker-db-password",
        "marker-user-password",
        "marker-query-text",
        token.as_str(),
    ] {
        assert!(!logs.contains(secret), "log leaked {secret}");
    }
    let request_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["path"] == "/api/tasks")
        .unwrap_or_else(|| panic!("no JSON request log line for /api/tasks in:\n{logs}"));
    assert_eq!(request_line["method"], "GET");
    assert_eq!(request_line["status"], 200);
    assert!(request_line["latency_ms"].is_number());
    assert!(logs.contains("SIGTERM received"), "{logs}");
}

#[tokio::test]
async fn after_sigterm_the_binary_serves_on_for_the_delay_then_a_second_signal_ends_it() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Far longer than the test: only the second signal may end the pause.
    let mut child = binary()
        .env("DATABASE_URL", &url)
        .env("AUTH_SECRET", AUTH_SECRET)
        .env("PORT", port.to_string())
        .env("SHUTDOWN_DELAY_SECS", "300")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn todo-backend");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    while !matches!(client.get(format!("{base}/ready")).send().await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "binary never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    let term = || {
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
    };
    assert!(term().success());
    // Readiness turns 503 so traffic stops arriving...
    let deadline = Instant::now() + DEADLINE;
    loop {
        let resp = client
            .get(format!("{base}/ready"))
            .send()
            .await
            .expect("still accepting connections after SIGTERM");
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["reason"], "shutting down", "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/ready never reported the shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...while everything that still arrives is served, on new connections too.
    let resp = client
        .post(format!("{base}/api/auth/register"))
        .json(&json!({"email": "late@example.com", "password": "long enough password"}))
        .send()
        .await
        .expect("served during the pause");
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited during the pause"
    );
    assert!(term().success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .expect("wait for todo-backend");
    assert!(
        status.success(),
        "exit after the second SIGTERM: {status:?}"
    );
}
