//! Every endpoint of the accounts and tasks API, over real HTTP against a real PostgreSQL.

mod common;

use common::{assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn health_and_ready_answer_json() {
    let Some(app) = spawn_app().await else { return };
    let (status, body) = app.json(Method::GET, "/health", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "ok", "build": null}))
    );
    let (status, body) = app.json(Method::GET, "/ready", None, None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
    app.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn account_lifecycle() {
    let Some(app) = spawn_app().await else { return };
    let creds = json!({"email": "Ann@Example.com", "password": "correct horse battery"});

    let (status, body) = app
        .json(
            Method::POST,
            "/api/auth/register",
            None,
            Some(creds.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43);
    assert_eq!(body["user"]["email"], "ann@example.com");
    let user_id = body["user"]["id"].as_i64().expect("numeric user id");
    assert!(body["user"]["created_at"].as_str().is_some());
    assert!(body["user"].get("password_hash").is_none());

    // Same address in another case: taken.
    let (status, body) = app
        .json(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "ANN@example.com", "password": "whatever123"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "conflict");

    let (status, body) = app
        .json(Method::POST, "/api/auth/login", None, Some(creds.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], user_id);
    let second_token = body["token"].as_str().unwrap().to_string();
    assert_ne!(second_token, token, "each login issues a new token");

    let (status, body) = app
        .json(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ann@example.com", "password": "wrong password"})),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .json(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "nobody@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    for t in [&token, &second_token] {
        let (status, body) = app.json(Method::GET, "/api/auth/me", Some(t), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], user_id);
        assert_eq!(body["email"], "ann@example.com");
    }

    // Logout ends the session it is called with, and only that one.
    let (_, body) = app
        .json(Method::POST, "/api/auth/login", None, Some(creds.clone()))
        .await;
    let third_token = body["token"].as_str().unwrap().to_string();
    let (status, body) = app
        .json(Method::POST, "/api/auth/logout", Some(&third_token), None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    for path in ["/api/auth/me", "/api/tasks"] {
        let (status, body) = app.json(Method::GET, path, Some(&third_token), None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, body) = app
        .json(Method::POST, "/api/auth/logout", Some(&third_token), None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app.json(Method::POST, "/api/auth/logout", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    for t in [&token, &second_token] {
        let (status, _) = app.json(Method::GET, "/api/auth/me", Some(t), None).await;
        assert_eq!(status, StatusCode::OK, "another session survives a logout");
    }

    app.create_task(&token, "will be deleted with the account")
        .await;
    let (status, body) = app
        .json(Method::DELETE, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    for t in [&token, &second_token] {
        let (status, body) = app.json(Method::GET, "/api/auth/me", Some(t), None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, body) = app
        .json(Method::POST, "/api/auth/login", None, Some(creds.clone()))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    for table in ["users", "sessions", "tasks"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} still has rows after account deletion");
    }
    // The address is free again.
    app.register("ann@example.com").await;
}

#[tokio::test]
async fn register_validates_input() {
    let Some(app) = spawn_app().await else { return };
    for (email, password) in [
        ("not-an-email", "long enough password"),
        ("a@b", "long enough password"),
        ("", "long enough password"),
        ("ok@example.com", "short"),
        ("ok@example.com", &"p".repeat(129)),
    ] {
        let (status, body) = app
            .json(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = app
        .json(
            Method::POST,
            "/api/auth/register",
            None,
            Some(json!({"email": "x@example.com"})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn task_crud_round_trip() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("tasks@example.com").await;
    let t = Some(token.as_str());

    let (status, empty) = app.json(Method::GET, "/api/tasks", t, None).await;
    assert_eq!((status, empty), (StatusCode::OK, json!([])));

    let (status, first) = app
        .json(
            Method::POST,
            "/api/tasks",
            t,
            Some(json!({"title": "  buy milk  ", "description": "2 litres"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["title"], "buy milk", "title is trimmed");
    assert_eq!(first["description"], "2 litres");
    assert_eq!(first["completed"], false);
    for field in ["created_at", "updated_at"] {
        let ts = first[field].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(ts)
            .unwrap_or_else(|e| panic!("{field}={ts} not RFC 3339: {e}"));
    }
    let second = app.create_task(&token, "walk the dog").await;
    assert_eq!(second["description"], Value::Null);
    let id1 = first["id"].as_i64().unwrap();
    let id2 = second["id"].as_i64().unwrap();

    let (_, list) = app.json(Method::GET, "/api/tasks", t, None).await;
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![id2, id1], "newest first");

    let (status, got) = app
        .json(Method::GET, &format!("/api/tasks/{id1}"), t, None)
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &first));

    let (status, patched) = app
        .json(
            Method::PATCH,
            &format!("/api/tasks/{id1}"),
            t,
            Some(json!({"title": "buy oat milk", "description": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["title"], "buy oat milk");
    assert_eq!(
        patched["description"],
        Value::Null,
        "null clears the description"
    );
    assert_eq!(patched["completed"], false, "absent fields are unchanged");
    assert!(patched["updated_at"].as_str().unwrap() >= first["updated_at"].as_str().unwrap());

    let (status, patched) = app
        .json(
            Method::PATCH,
            &format!("/api/tasks/{id1}"),
            t,
            Some(json!({"description": "oat", "completed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            patched["title"].as_str(),
            patched["description"].as_str(),
            patched["completed"].as_bool()
        ),
        (Some("buy oat milk"), Some("oat"), Some(true))
    );

    let (status, completed) = app
        .json(Method::POST, &format!("/api/tasks/{id2}/complete"), t, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(completed["completed"], true);
    let (status, again) = app
        .json(Method::POST, &format!("/api/tasks/{id2}/complete"), t, None)
        .await;
    assert_eq!(
        (status, again["completed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "complete is idempotent"
    );

    let id3 = app.create_task(&token, "pending one").await["id"]
        .as_i64()
        .unwrap();
    let filtered = |status: &'static str| {
        let app = &app;
        async move {
            let (s, list) = app
                .json(Method::GET, &format!("/api/tasks?status={status}"), t, None)
                .await;
            assert_eq!(s, StatusCode::OK);
            list.as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered("pending").await, vec![id3]);
    assert_eq!(filtered("completed").await, vec![id2, id1]);
    assert_eq!(filtered("all").await, vec![id3, id2, id1]);

    let (status, body) = app
        .json(Method::DELETE, &format!("/api/tasks/{id1}"), t, None)
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = app
        .json(Method::GET, &format!("/api/tasks/{id1}"), t, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .json(Method::DELETE, &format!("/api/tasks/{id1}"), t, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(filtered("all").await, vec![id3, id2]);
}

#[tokio::test]
async fn users_never_see_each_others_tasks() {
    let Some(app) = spawn_app().await else { return };
    let alice = app.register("alice@example.com").await;
    let bob = app.register("bob@example.com").await;
    let task = app.create_task(&alice, "alice's secret").await;
    let id = task["id"].as_i64().unwrap();
    let b = Some(bob.as_str());

    let (status, list) = app.json(Method::GET, "/api/tasks", b, None).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    let path = format!("/api/tasks/{id}");
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"title": "hijacked", "completed": true})),
        ),
        (Method::POST, format!("{path}/complete"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        let (status, answer) = app.json(method.clone(), &path, b, body.clone()).await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "not_found");
        // Indistinguishable from a task that does not exist at all.
        let missing = path.replace(&id.to_string(), &(id + 1_000_000).to_string());
        let (status2, body2) = app.json(method, &missing, b, body).await;
        let body = answer;
        assert_eq!((status, &body), (status2, &body2));
    }
    let (status, still) = app.json(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(
        (status, still),
        (StatusCode::OK, task),
        "alice's task is untouched"
    );
}

#[tokio::test]
async fn bad_bodies_get_json_errors() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("bad@example.com").await;
    let post = |body: String, content_type: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/api/tasks"))
            .bearer_auth(&token)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move {
            let res = req.send().await.expect("request sent");
            let status = res.status();
            let body: Value = res.json().await.expect("JSON error body");
            (status, body)
        }
    };

    let (s, b) = post("{\"title\": ".into(), Some("application/json")).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, b) = post("not json at all".into(), Some("application/json")).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "invalid_json");
    let (s, b) = post("{\"title\":\"x\"}".into(), Some("text/plain")).await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (s, b) = post("{\"title\":\"x\"}".into(), None).await;
    assert_error(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let big = json!({"title": "x", "description": "d".repeat(70 * 1024)}).to_string();
    let (s, b) = post(big, Some("application/json")).await;
    assert_error(s, &b, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let (s, b) = post("{\"title\": 5}".into(), Some("application/json")).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, b) = post("[1,2,3]".into(), Some("application/json")).await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, b) = post(deep, Some("application/json")).await;
    assert!(s.is_client_error(), "deeply nested JSON: {s} {b}");

    for (body, what) in [
        (json!({"title": ""}), "empty title"),
        (json!({"title": "   "}), "blank title"),
        (json!({"title": "t".repeat(201)}), "title of 201 chars"),
        (json!({"title": "nul\u{0}byte"}), "title with NUL"),
        (
            json!({"title": "ok", "description": "d".repeat(2001)}),
            "description of 2001 chars",
        ),
        (json!({"description": "no title"}), "missing title"),
    ] {
        let (s, b) = app
            .json(Method::POST, "/api/tasks", Some(&token), Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {b}");
        assert_eq!(b["error"]["code"], "validation_failed", "{what}: {b}");
    }
    let max = app.create_task(&token, &"t".repeat(200)).await;
    assert_eq!(max["title"].as_str().unwrap().chars().count(), 200);

    let id = max["id"].as_i64().unwrap();
    let (s, b) = app
        .json(
            Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&token),
            Some(json!({"title": ""})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, b) = app
        .json(
            Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&token),
            Some(json!({"completed": "yes"})),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn bad_paths_queries_and_routes_get_json_errors() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("paths@example.com").await;
    let t = Some(token.as_str());
    let (s, b) = app.json(Method::GET, "/api/tasks/999999", t, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.json(Method::GET, "/api/tasks/abc", t, None).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = app
        .json(Method::GET, "/api/tasks/99999999999999999999999", t, None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = app.json(Method::GET, "/api/tasks/-1", t, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app
        .json(Method::GET, "/api/tasks?status=bogus", t, None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    let (s, b) = app.json(Method::GET, "/api/nothing-here", t, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.json(Method::GET, "/nothing", None, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.json(Method::PUT, "/api/tasks", t, None).await;
    assert_error(s, &b, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn tokens_are_checked() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("tok@example.com").await;

    let (s, b) = app.json(Method::GET, "/api/tasks", None, None).await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    let forged = "A".repeat(43);
    for bad in ["nonsense", forged.as_str(), &token[..42]] {
        let (s, b) = app.json(Method::GET, "/api/tasks", Some(bad), None).await;
        assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    for header in [
        format!("Basic {token}"),
        token.clone(),
        "Bearer".into(),
        "Bearer ".into(),
    ] {
        let res = app
            .client
            .get(app.url("/api/auth/me"))
            .header("authorization", header.clone())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (s, _) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);

    // Expire it in the database: expiry is enforced on every request.
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let expired = sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(expired.rows_affected(), 1);
    let (s, b) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_error(s, &b, StatusCode::UNAUTHORIZED, "unauthorized");

    // Stored is only the HMAC, never the token itself.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 32 && h.as_slice() != token.as_bytes()));
}

#[tokio::test]
async fn hostile_inputs_never_cause_server_errors() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("fuzz@example.com").await;
    let bodies = [
        "",
        "null",
        "{}",
        "\"string\"",
        "1e999",
        "{\"title\": null}",
        "{\"title\": {\"nested\": true}}",
        "{\"title\": \"\\ud800\"}",
        "{\"title\": \"ok\", \"completed\": 1}",
        "{\"title\": \"\u{202e}\u{fe0f}emoji 🎉\"}",
        "{\"title\": \"ok\", \"description\": [\"a\"]}",
        "{\"title\":\"a\",\"title\":\"b\"}",
    ];
    for path in ["/api/tasks", "/api/auth/register", "/api/auth/login"] {
        for body in bodies {
            let res = app
                .client
                .post(app.url(path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let text = res.text().await.unwrap();
            assert!(
                !status.is_server_error(),
                "POST {path} {body:?} -> {status} {text}"
            );
            let _: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("POST {path} {body:?}: non-JSON {text} ({e})"));
        }
    }
    let id = app.create_task(&token, "target").await["id"]
        .as_i64()
        .unwrap();
    for body in bodies {
        let res = app
            .client
            .patch(app.url(&format!("/api/tasks/{id}")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            !res.status().is_server_error(),
            "PATCH {body:?} -> {}",
            res.status()
        );
    }
}
