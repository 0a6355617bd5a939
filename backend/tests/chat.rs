//! The chat API with the built-in engine, over real HTTP against a real PostgreSQL.

mod common;

use common::{assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn chat(app: &common::TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.json(Method::POST, "/api/chat", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn a_chat_round_trip_manages_tasks_and_persists_history() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("ann@example.com").await;

    let (status, first) = chat(&app, &token, json!({"message": "add buy milk"})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["engine"], "builtin");
    assert_eq!(first["fallback_reason"], Value::Null);
    let conversation = first["conversation_id"].as_i64().expect("conversation id");
    assert_eq!(first["actions"][0]["tool"], "add_task");
    assert_eq!(
        first["actions"][0]["arguments"],
        json!({"title": "buy milk"})
    );
    let task_id = first["actions"][0]["result"]["id"]
        .as_i64()
        .expect("task id");
    assert_eq!(
        first["reply"],
        format!("Added \"buy milk\" as task #{task_id}.")
    );

    // The task is a real task of the REST API.
    let (status, tasks) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tasks[0]["id"], task_id);
    assert_eq!(tasks[0]["title"], "buy milk");
    assert_eq!(tasks[0]["completed"], false);

    // A second message in the same conversation, referring to the task by words.
    let (status, second) = chat(
        &app,
        &token,
        json!({"message": "I finished the milk one", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["conversation_id"], conversation);
    assert_eq!(second["actions"][0]["tool"], "complete_task");
    assert_eq!(
        second["actions"][0]["arguments"],
        json!({"task_id": task_id})
    );
    let (_, done) = app
        .json(
            Method::GET,
            "/api/tasks?status=completed",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(done.as_array().unwrap().len(), 1);
    assert_eq!(done[0]["id"], task_id);

    let (status, convs) = app
        .json(Method::GET, "/api/conversations", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(convs.as_array().unwrap().len(), 1);
    assert_eq!(convs[0]["id"], conversation);
    assert_eq!(convs[0]["title"], "add buy milk");
    assert!(convs[0]["created_at"].is_string() && convs[0]["updated_at"].is_string());

    let (status, messages) = app
        .json(
            Method::GET,
            &format!("/api/conversations/{conversation}/messages"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "tool", "assistant", "user", "tool", "assistant"]
    );
    assert_eq!(messages[0]["content"], "add buy milk");
    assert_eq!(messages[0]["tool_name"], Value::Null);
    assert_eq!(messages[1]["tool_name"], "add_task");
    let tool: Value = serde_json::from_str(messages[1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(tool["arguments"], json!({"title": "buy milk"}));
    assert_eq!(tool["result"]["id"], task_id);
    assert_eq!(messages[2]["content"], first["reply"]);
    assert_eq!(messages[4]["tool_name"], "complete_task");
    assert!(messages[0]["id"].as_i64() < messages[5]["id"].as_i64());

    // A message without conversation_id starts a new conversation, listed first.
    let (_, third) = chat(&app, &token, json!({"message": "hello"})).await;
    assert_ne!(third["conversation_id"], conversation);
    assert_eq!(third["actions"], json!([]));
    let (_, convs) = app
        .json(Method::GET, "/api/conversations", Some(&token), None)
        .await;
    assert_eq!(convs[0]["id"], third["conversation_id"]);
    assert_eq!(convs[1]["id"], conversation);
}

#[tokio::test]
async fn conversations_and_tasks_are_private() {
    let Some(app) = spawn_app().await else { return };
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (_, first) = chat(&app, &ann, json!({"message": "add secret plan"})).await;
    let conversation = first["conversation_id"].as_i64().unwrap();
    let task_id = first["actions"][0]["result"]["id"].as_i64().unwrap();

    let (status, body) = app
        .json(
            Method::GET,
            &format!("/api/conversations/{conversation}/messages"),
            Some(&bob),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = chat(
        &app,
        &bob,
        json!({"message": "what's on my list", "conversation_id": conversation}),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, convs) = app
        .json(Method::GET, "/api/conversations", Some(&bob), None)
        .await;
    assert_eq!(convs, json!([]));

    // Bob's chat cannot reach Ann's task, by id or by words.
    for message in [
        format!("delete task {task_id}"),
        format!("mark {task_id} as done"),
        "delete the secret plan".to_string(),
        format!("rename {task_id} to mine"),
    ] {
        let (status, body) = chat(&app, &bob, json!({"message": message})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["actions"], json!([]), "{message}: {body}");
        assert!(
            body["reply"].as_str().unwrap().contains("couldn't find"),
            "{body}"
        );
    }
    let (_, list) = chat(&app, &bob, json!({"message": "show all tasks"})).await;
    assert_eq!(
        list["actions"][0]["result"],
        json!({"tasks": [], "total": 0})
    );
    let (status, task) = app
        .json(
            Method::GET,
            &format!("/api/tasks/{task_id}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (task["title"].as_str(), task["completed"].as_bool()),
        (Some("secret plan"), Some(false))
    );

    // Deleting the account deletes its conversations and messages, and only those.
    let (_, me) = app
        .json(Method::GET, "/api/auth/me", Some(&ann), None)
        .await;
    let ann_id = me["id"].as_i64().unwrap();
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let count = |table: &'static str, owner: bool| {
        let pool = pool.clone();
        async move {
            let sql = if owner {
                format!("SELECT count(*) FROM {table} WHERE user_id = $1")
            } else {
                format!("SELECT count(*) FROM {table} WHERE user_id <> $1")
            };
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(ann_id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("conversations", true).await, 1);
    assert_eq!(count("messages", true).await, 3);
    let bobs = (
        count("conversations", false).await,
        count("messages", false).await,
    );
    assert_eq!(bobs.0, 5);
    let res = app
        .call(Method::DELETE, "/api/auth/me", Some(&ann), None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(count("conversations", true).await, 0);
    assert_eq!(count("messages", true).await, 0);
    assert_eq!(
        (
            count("conversations", false).await,
            count("messages", false).await
        ),
        bobs
    );
}

#[tokio::test]
async fn bad_chat_requests_get_clear_4xx() {
    let Some(app) = spawn_app().await else { return };
    let token = app.register("ann@example.com").await;

    let (status, body) = chat(&app, &token, json!({"message": "x".repeat(4001)})).await;
    let message = assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    assert!(message.contains("at most 4000"), "{message}");
    let (status, body) = chat(&app, &token, json!({"message": "é".repeat(4000)})).await;
    assert_eq!(status, StatusCode::OK, "4000 characters are fine: {body}");
    for empty in ["", "   "] {
        let (status, body) = chat(&app, &token, json!({"message": empty})).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        );
    }
    let (status, body) = chat(&app, &token, json!({"message": "add a\u{0}b"})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = chat(&app, &token, json!({"message": "x".repeat(70_000)})).await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
    let (status, body) = chat(&app, &token, json!({"text": "hi"})).await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = chat(
        &app,
        &token,
        json!({"message": "hi", "conversation_id": "x"}),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let (status, body) = chat(
        &app,
        &token,
        json!({"message": "hi", "conversation_id": 999_999}),
    )
    .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .json(
            Method::POST,
            "/api/chat",
            None,
            Some(json!({"message": "hi"})),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let res = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"message\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let (status, body) = app
        .json(
            Method::GET,
            "/api/conversations/abc/messages",
            Some(&token),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    let (status, body) = app
        .json(Method::GET, "/api/conversations", None, None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    // None of the refused messages was stored.
    let (_, convs) = app
        .json(Method::GET, "/api/conversations", Some(&token), None)
        .await;
    assert_eq!(convs.as_array().unwrap().len(), 1);
}

#[test]
fn no_message_text_makes_the_endpoint_fail() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(app) = rt.block_on(spawn_app()) else {
        return;
    };
    let token = rt.block_on(app.register("fuzz@example.com"));
    let words = prop::sample::select(vec![
        "add",
        "delete",
        "mark",
        "done",
        "rename",
        "to",
        "task",
        "1",
        "#2",
        "the",
        "milk",
        "é",
        "🙂",
        "'",
        "\"",
        ":",
        "--",
        "show",
        "completed",
        "İ",
        "\\",
        "%",
        "';--",
        "\u{7}",
    ]);
    let soup = prop::collection::vec(words, 1..10).prop_map(|w| w.join(" "));
    let mut runner = TestRunner::new(Config {
        cases: 60,
        ..Config::default()
    });
    runner
        .run(&prop_oneof![soup, "\\PC{1,300}"], |message| {
            let (status, body) = rt.block_on(app.json(
                Method::POST,
                "/api/chat",
                Some(&token),
                Some(json!({"message": message})),
            ));
            prop_assert!(
                status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{status} {body}"
            );
            if status == StatusCode::OK {
                prop_assert!(body["reply"].as_str().is_some_and(|r| !r.is_empty()));
            }
            Ok(())
        })
        .unwrap();
    drop(app);
}
