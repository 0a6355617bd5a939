//! The chat API with the LLM engine, end to end: real backend, real PostgreSQL, and a local
//! fake of the Chat Completions API (the only double).

mod common;
#[path = "../../agent/tests/support/fake_openai.rs"]
mod fake_openai;

use std::time::{Duration, Instant};

use backend::Config;
use fake_openai::{answer, error, tool_calls, FakeOpenAi, Scripted};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use testkit::pg::TestDb;

const KEY: &str = "sk-test-SECRET123";

/// A backend configured with the LLM engine pointing at `fake`.
struct LlmApp {
    base: String,
    client: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl LlmApp {
    async fn start(fake: &FakeOpenAi) -> Option<LlmApp> {
        let db = TestDb::shared_or_skip()?;
        let db_url = db.fresh_database().expect("fresh database");
        let base_url = fake.base_url();
        let config = Config::from_lookup(move |name| match name {
            "DATABASE_URL" => Some(db_url.clone()),
            "AUTH_SECRET" => Some(common::AUTH_SECRET.into()),
            "OPENAI_API_KEY" => Some(KEY.into()),
            "OPENAI_BASE_URL" => Some(base_url.clone()),
            "OPENAI_MODEL" => Some("fake-model".into()),
            "OPENAI_TIMEOUT_SECS" => Some("1".into()),
            _ => None,
        })
        .expect("config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(backend::serve(config, listener, async move {
            let _ = rx.await;
        }));
        let app = LlmApp {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _stop: tx,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = app
                .client
                .get(format!("{}/ready", app.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK);
            if ready {
                return Some(app);
            }
            assert!(Instant::now() < deadline, "backend not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    async fn register(&self, email: &str) -> String {
        let (status, body, _) = self
            .json(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn chat(&self, token: &str, body: Value) -> Value {
        let (status, body, text) = self
            .json(Method::POST, "/api/chat", Some(token), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert!(
            !text.contains(KEY),
            "the API key leaked into a response: {text}"
        );
        body
    }
}

#[tokio::test]
async fn the_llm_engine_runs_tools_and_sees_the_history() {
    let fake = FakeOpenAi::start(vec![
        tool_calls(&[(
            "add_task",
            json!({"title": "buy milk", "description": "2 liters"}),
        )]),
        answer("Added \"buy milk\" to your list."),
        answer("You have one task: buy milk."),
    ])
    .await;
    let Some(app) = LlmApp::start(&fake).await else {
        return;
    };
    let token = app.register("ann@example.com").await;

    let first = app
        .chat(
            &token,
            json!({"message": "could you note that I need milk"}),
        )
        .await;
    assert_eq!(first["engine"], "llm");
    assert_eq!(first["fallback_reason"], Value::Null);
    assert_eq!(first["reply"], "Added \"buy milk\" to your list.");
    assert_eq!(first["actions"][0]["tool"], "add_task");
    let task_id = first["actions"][0]["result"]["id"].as_i64().unwrap();
    let (_, tasks, _) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(tasks[0]["id"], task_id);
    assert_eq!(tasks[0]["description"], "2 liters");

    let conversation = first["conversation_id"].as_i64().unwrap();
    let second = app
        .chat(
            &token,
            json!({"message": "what do I have?", "conversation_id": conversation}),
        )
        .await;
    assert_eq!(second["reply"], "You have one task: buy milk.");

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer sk-test-SECRET123")));
    assert_eq!(requests[0].body["model"], "fake-model");
    // The stored conversation went back to the model: user and assistant turns, no tool rows.
    let sent: Vec<(String, String)> = requests[2].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(
        sent[1],
        ("user".into(), "could you note that I need milk".into())
    );
    assert_eq!(
        sent[2],
        (
            "assistant".into(),
            "Added \"buy milk\" to your list.".into()
        )
    );
    assert_eq!(sent[3], ("user".into(), "what do I have?".into()));

    let (_, messages, _) = app
        .json(
            Method::GET,
            &format!("/api/conversations/{conversation}/messages"),
            Some(&token),
            None,
        )
        .await;
    let roles: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "tool", "assistant", "user", "assistant"]);
}

#[tokio::test]
async fn many_tool_rows_do_not_push_the_conversation_out_of_the_history() {
    let twenty: Vec<(&str, Value)> = (0..20).map(|_| ("list_tasks", json!({}))).collect();
    let fake = FakeOpenAi::start(vec![
        tool_calls(&twenty),
        tool_calls(&twenty),
        tool_calls(&twenty),
        answer("Your list is empty."),
        answer("You asked about your list."),
    ])
    .await;
    let Some(app) = LlmApp::start(&fake).await else {
        return;
    };
    let token = app.register("tools@example.com").await;
    let first = app
        .chat(&token, json!({"message": "check my list thoroughly"}))
        .await;
    assert_eq!(first["actions"].as_array().unwrap().len(), 60);
    let conversation = first["conversation_id"].as_i64().unwrap();
    app.chat(
        &token,
        json!({"message": "what did I ask?", "conversation_id": conversation}),
    )
    .await;

    let requests = fake.requests();
    assert_eq!(requests.len(), 5);
    let sent: Vec<(String, String)> = requests[4].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sent[1..],
        [
            ("user".into(), "check my list thoroughly".into()),
            ("assistant".into(), "Your list is empty.".into()),
            ("user".into(), "what did I ask?".into()),
        ],
        "{sent:?}"
    );
}

#[tokio::test]
async fn llm_failures_fall_back_to_the_builtin_engine_never_500() {
    let fake = FakeOpenAi::start(vec![
        error(500, &format!("upstream exploded, key {KEY}")),
        error(429, "slow down"),
        Scripted::Raw(200, "{\"choices\": [".into()),
        Scripted::Hang,
    ])
    .await;
    let Some(app) = LlmApp::start(&fake).await else {
        return;
    };
    let token = app.register("ann@example.com").await;
    let cases = [
        ("add buy bread", "server error (HTTP 500)"),
        ("add buy eggs", "rate limited (HTTP 429)"),
        ("add buy jam", "malformed"),
        ("add buy tea", "timed out"),
    ];
    for (message, reason) in cases {
        let started = Instant::now();
        let body = app.chat(&token, json!({"message": message})).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(body["engine"], "builtin", "{body}");
        let got = body["fallback_reason"].as_str().unwrap_or_default();
        assert!(got.contains(reason), "{message}: {got}");
        assert_eq!(body["actions"][0]["tool"], "add_task");
    }
    let (_, tasks, _) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    let titles: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["buy tea", "buy jam", "buy eggs", "buy bread"]);
}

#[tokio::test]
async fn a_model_cannot_reach_another_users_tasks() {
    // A fresh database numbers its first task 1, so the hostile script can name it up front.
    let evil = FakeOpenAi::start(vec![
        tool_calls(&[
            ("complete_task", json!({"task_id": 1, "user_id": 1})),
            ("update_task", json!({"task_id": 1, "title": "pwned"})),
            ("delete_task", json!({"task_id": 1})),
            ("list_tasks", json!({"status": "all"})),
        ]),
        answer("Done."),
    ])
    .await;
    let Some(app) = LlmApp::start(&evil).await else {
        return;
    };
    let ann = app.register("ann@example.com").await;
    let bob = app.register("bob@example.com").await;
    let (_, task, _) = app
        .json(
            Method::POST,
            "/api/tasks",
            Some(&ann),
            Some(json!({"title": "ann's task"})),
        )
        .await;
    assert_eq!(task["id"], 1);

    let body = app
        .chat(&bob, json!({"message": "finish ann's task"}))
        .await;
    assert_eq!(body["engine"], "llm");
    let actions = body["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 4);
    for a in &actions[..3] {
        assert_eq!(a["result"]["error"]["code"], "not_found", "{a}");
    }
    assert_eq!(actions[3]["result"], json!({"tasks": [], "total": 0}));
    let (status, t, _) = app
        .json(Method::GET, "/api/tasks/1", Some(&ann), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (t["title"].as_str(), t["completed"].as_bool()),
        (Some("ann's task"), Some(false))
    );
    // The tool results the model saw were Bob's view: not found, and an empty list.
    let tool_msgs: Vec<String> = evil.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(tool_msgs.len(), 4);
    assert!(
        tool_msgs.iter().all(|c| !c.contains("ann's task")),
        "{tool_msgs:?}"
    );
}
