//! The database restarting, crashing, terminating connections or running out of connection slots
//! gives 503 with `Retry-After`, never a 500; pooled connections it killed are replaced before a
//! request uses them; and the service recovers by itself. Against a real PostgreSQL of its own.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::pg::TestDb;
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(60);

/// Every answer of the request loop, as (status, Retry-After, error code).
type Answers = Vec<(u16, Option<String>, Option<String>)>;

/// Lists and creates tasks in a loop until `stop` flips, recording every answer.
fn request_loop(
    app: &TestApp,
    token: &str,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Answers> {
    let client = app.client.clone();
    let base = app.base.clone();
    let token = token.to_string();
    tokio::spawn(async move {
        let mut seen = Answers::new();
        let mut i = 0u32;
        while !*stop.borrow() {
            i += 1;
            let req = if i.is_multiple_of(2) {
                client.get(format!("{base}/api/tasks"))
            } else {
                client
                    .post(format!("{base}/api/tasks"))
                    .json(&json!({"title": format!("during the restart {i}")}))
            };
            let Ok(resp) = req.bearer_auth(&token).send().await else {
                seen.push((0, None, None));
                continue;
            };
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let code = resp
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|b| b["error"]["code"].as_str().map(str::to_string));
            seen.push((status, retry, code));
        }
        seen
    })
}

fn assert_only_ok_or_503(answers: &Answers, what: &str) {
    for (status, retry, code) in answers {
        match status {
            200 | 201 => {}
            503 => {
                assert_eq!(
                    retry.as_deref(),
                    Some("1"),
                    "{what}: 503 without Retry-After"
                );
                assert_eq!(code.as_deref(), Some("service_unavailable"), "{what}");
            }
            other => panic!("{what}: answered {other} ({code:?}); all answers: {answers:?}"),
        }
    }
}

async fn until_ok(app: &TestApp, token: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = app.json(Method::GET, "/api/tasks", Some(token), None).await;
        if status == StatusCode::OK {
            return;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            Instant::now() < deadline,
            "the API did not recover: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn restart_under_load(db: &TestDb, immediate: bool) {
    let url = db.fresh_database().expect("database");
    let app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;
    let token = app.register("restart@example.com").await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let looping = request_loop(&app, &token, stop_rx);
    if immediate {
        // The throwaway server runs with synchronous_commit off: make the account durable first,
        // or the crash takes the session with it.
        db.psql("CHECKPOINT").expect("checkpoint");
        db.stop_immediately().expect("crash PostgreSQL");
    } else {
        db.stop().expect("stop PostgreSQL");
    }
    // While it is down, answers are 503 (each after the pool's acquire timeout).
    let (status, _) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    db.start().expect("start PostgreSQL again");
    until_ok(&app, &token).await;
    let _ = stop_tx.send(true);
    let answers = looping.await.expect("request loop");
    assert_only_ok_or_503(&answers, if immediate { "crash" } else { "restart" });
    assert!(
        answers.iter().all(|(s, _, _)| *s != 0),
        "the backend itself dropped connections: {answers:?}"
    );
    // Recovered for good: the next requests all succeed on the first try.
    for _ in 0..20 {
        let (status, body) = app
            .json(Method::GET, "/api/tasks", Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_restart_under_load_gives_503_never_500_and_recovers() {
    let Some(db) = TestDb::local_or_skip() else {
        return;
    };
    restart_under_load(&db, false).await;
}

#[tokio::test]
async fn a_crash_with_reset_sockets_gives_503_never_500_and_recovers() {
    let Some(db) = TestDb::local_or_skip() else {
        return;
    };
    restart_under_load(&db, true).await;
}

#[tokio::test]
async fn terminated_connections_are_replaced_before_a_request_uses_them() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().expect("database");
    let app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;
    let token = app.register("terminated@example.com").await;
    let dbname = url.rsplit('/').next().unwrap_or_default().to_string();
    for round in 0..3 {
        // Warm the pool, then kill every connection it holds (SQLSTATE 57P01 for each) once all of
        // them sit idle past the pool's check threshold, as they do when a database restarts.
        for _ in 0..5 {
            app.create_task(&token, "warm").await;
        }
        let idle_ms = backend::app::PING_IF_IDLE_FOR.as_millis() + 50;
        let deadline = Instant::now() + DEADLINE;
        loop {
            let busy = db
                .psql(&format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}' \
                     AND application_name = 'todo-backend' \
                     AND (state <> 'idle' OR now() - state_change < interval '{idle_ms} milliseconds')"
                ))
                .expect("pg_stat_activity");
            if busy == "0" {
                break;
            }
            assert!(Instant::now() < deadline, "the pool never went idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        db.psql(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = '{dbname}' AND application_name = 'todo-backend'"
        ))
        .expect("terminate the backend's connections");
        for _ in 0..10 {
            let (status, body) = app
                .json(Method::GET, "/api/tasks", Some(&token), None)
                .await;
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
        }
    }
}

#[tokio::test]
async fn no_connection_slot_left_gives_503_with_retry_after() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    // Superusers ignore connection limits: the app connects as a role of its own.
    let stamp = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let role = format!("slots_{stamp}_{nanos}");
    let dbname = format!("{role}_db");
    db.psql(&format!("CREATE ROLE {role} LOGIN")).expect("role");
    db.psql(&format!("CREATE DATABASE {dbname} OWNER {role}"))
        .expect("database");
    let maintenance = db.url();
    let base = maintenance
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("url");
    let url = base.replacen("postgres@", &format!("{role}@"), 1) + "/" + &dbname;
    let app = TestApp::start(&url).await;
    app.wait_ready(DEADLINE).await;
    let token = app.register("slots@example.com").await;
    db.psql(&format!("ALTER ROLE {role} CONNECTION LIMIT 0"))
        .expect("limit");
    db.psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{role}'"
    ))
    .expect("terminate");
    let resp = app
        .call(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    db.psql(&format!("ALTER ROLE {role} CONNECTION LIMIT -1"))
        .expect("unlimit");
    until_ok(&app, &token).await;
}
