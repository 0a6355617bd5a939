//! The LLM engine against a local fake Chat Completions server: tool loops, bounds and fallbacks.

mod support;

use std::time::{Duration, Instant};

use agent::{Agent, EngineKind, HistoryMessage, LlmConfig, Role, Secret, Tool, ToolName};
use serde_json::{json, Value};
use support::fake_openai::{answer, error, raw_tool_calls, tool_calls, FakeOpenAi, Scripted};
use support::memory::Store;

const KEY: &str = "sk-test-SECRET123";

fn config(fake: &FakeOpenAi) -> LlmConfig {
    let mut c = LlmConfig::new(Secret::new(KEY));
    c.base_url = fake.base_url();
    c.model = "test-model".into();
    c.timeout = Duration::from_millis(500);
    c
}

async fn setup(script: Vec<Scripted>) -> (FakeOpenAi, Agent, Store) {
    let fake = FakeOpenAi::start(script).await;
    let agent = Agent::with_llm(config(&fake)).expect("agent");
    let store = Store::new();
    store.seed(1, "buy milk", false); // 1
    store.seed(1, "call mom", false); // 2
    store.seed(2, "other user's task", false); // 3
    (fake, agent, store)
}

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_tool_call_sequence_runs_against_the_users_tasks() {
    let (fake, agent, store) = setup(vec![
        tool_calls(&[("list_tasks", json!({"status": "pending"}))]),
        tool_calls(&[("complete_task", json!({"task_id": 1}))]),
        answer("Marked \"buy milk\" as done."),
    ])
    .await;
    let reply = agent
        .respond(&[], "I bought the milk", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.engine, EngineKind::Llm);
    assert_eq!(reply.fallback_reason, None);
    assert_eq!(reply.reply, "Marked \"buy milk\" as done.");
    let tools: Vec<ToolName> = reply.actions.iter().map(|a| a.tool).collect();
    assert_eq!(tools, [ToolName::ListTasks, ToolName::CompleteTask]);
    assert_eq!(reply.actions[1].result["completed"], json!(true));
    assert!(store.tasks_of(1).iter().any(|t| t.id == 1 && t.completed));

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some("Bearer sk-test-SECRET123")
    );
    let first = &requests[0].body;
    assert_eq!(first["model"], "test-model");
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        [
            "add_task",
            "list_tasks",
            "complete_task",
            "delete_task",
            "update_task"
        ]
    );
    assert_eq!(roles(first), ["system", "user"]);
    // The second call carries the assistant's tool call and the tool result, linked by id.
    let second = &requests[1].body;
    assert_eq!(roles(second), ["system", "user", "assistant", "tool"]);
    let msgs = second["messages"].as_array().unwrap();
    assert_eq!(msgs[2]["tool_calls"][0]["id"], "call_0_list_tasks");
    assert_eq!(msgs[3]["tool_call_id"], "call_0_list_tasks");
    let listed: Value = serde_json::from_str(msgs[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(listed["total"], 2);
    let titles: Vec<&str> = listed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["call mom", "buy milk"],
        "only user 1's pending tasks"
    );
}

#[tokio::test]
async fn a_multi_tool_turn_runs_every_call_in_order() {
    let (fake, agent, store) = setup(vec![
        tool_calls(&[
            ("add_task", json!({"title": "water plants"})),
            (
                "add_task",
                json!({"title": "pay bills", "description": "electricity"}),
            ),
            ("delete_task", json!({"task_id": 2})),
        ]),
        answer("Added two tasks and removed one."),
    ])
    .await;
    let reply = agent
        .respond(
            &[],
            "add water plants and pay bills, drop call mom",
            &store.executor(1),
        )
        .await
        .unwrap();
    assert_eq!(reply.engine, EngineKind::Llm);
    assert_eq!(reply.actions.len(), 3);
    assert_eq!(
        reply.actions[1].arguments,
        json!({"title": "pay bills", "description": "electricity"})
    );
    let titles: Vec<String> = store.tasks_of(1).into_iter().map(|t| t.title).collect();
    assert_eq!(titles, ["pay bills", "water plants", "buy milk"]);
    let second = &fake.requests()[1].body;
    assert_eq!(
        roles(second),
        ["system", "user", "assistant", "tool", "tool", "tool"]
    );
}

#[tokio::test]
async fn invalid_tool_arguments_fall_back_to_the_builtin_engine() {
    for bad in [
        raw_tool_calls(&[("add_task", "{\"title\": ")]),
        tool_calls(&[("complete_task", json!({"task_id": "abc"}))]),
        tool_calls(&[("add_task", json!({"description": "no title"}))]),
        // A valid call next to an invalid one: nothing of the turn runs.
        tool_calls(&[
            ("delete_task", json!({"task_id": 2})),
            ("update_task", json!({"task_id": 1})),
        ]),
    ] {
        let (_fake, agent, store) = setup(vec![bad]).await;
        let reply = agent
            .respond(&[], "add buy bread", &store.executor(1))
            .await
            .unwrap();
        assert_eq!(reply.engine, EngineKind::Builtin);
        let reason = reply.fallback_reason.unwrap();
        assert!(reason.contains("invalid tool arguments"), "{reason}");
        assert_eq!(reply.actions.len(), 1);
        assert_eq!(
            store.calls(),
            vec![(
                1,
                Tool::AddTask {
                    title: "buy bread".into(),
                    description: None
                }
            )]
        );
    }
}

#[tokio::test]
async fn an_unknown_tool_is_reported_back_to_the_model() {
    let (fake, agent, store) = setup(vec![
        tool_calls(&[("send_email", json!({"to": "boss"}))]),
        answer("I can only manage your tasks."),
    ])
    .await;
    let reply = agent
        .respond(&[], "email my boss", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.engine, EngineKind::Llm);
    assert_eq!(reply.reply, "I can only manage your tasks.");
    assert!(reply.actions.is_empty());
    assert!(store.calls().is_empty());
    let msgs = fake.requests()[1].body["messages"].clone();
    let tool_msg = &msgs[3];
    assert_eq!(tool_msg["role"], "tool");
    let content: Value = serde_json::from_str(tool_msg["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["error"]["code"], "unknown_tool");
}

async fn assert_falls_back(script: Vec<Scripted>, reason_part: &str) {
    let (fake, agent, store) = setup(script).await;
    let started = Instant::now();
    let reply = agent
        .respond(&[], "add buy bread", &store.executor(1))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(reply.engine, EngineKind::Builtin, "{reason_part}");
    let reason = reply.fallback_reason.expect("a fallback reason");
    assert!(
        reason.contains(reason_part),
        "{reason:?} lacks {reason_part:?}"
    );
    assert_eq!(reply.reply, "Added \"buy bread\" as task #4.");
    assert_eq!(reply.actions.len(), 1);
    assert_eq!(fake.requests().len(), 1, "one attempt per message");
}

#[tokio::test]
async fn timeout_falls_back() {
    assert_falls_back(vec![Scripted::Hang], "timed out after 500 ms").await;
}

#[tokio::test]
async fn rate_limit_falls_back() {
    assert_falls_back(
        vec![error(429, "Rate limit reached")],
        "rate limited (HTTP 429)",
    )
    .await;
}

#[tokio::test]
async fn server_errors_fall_back() {
    assert_falls_back(vec![error(500, "boom")], "server error (HTTP 500)").await;
    assert_falls_back(vec![error(503, "overloaded")], "server error (HTTP 503)").await;
}

#[tokio::test]
async fn a_rejected_key_falls_back() {
    assert_falls_back(vec![error(401, "Incorrect API key")], "rejected (HTTP 401)").await;
}

#[tokio::test]
async fn malformed_responses_fall_back() {
    assert_falls_back(vec![Scripted::Raw(200, "not json{".into())], "malformed").await;
    assert_falls_back(
        vec![Scripted::Raw(200, "{\"choices\": []}".into())],
        "no choices",
    )
    .await;
    assert_falls_back(
        vec![Scripted::Raw(
            200,
            json!({"choices": [{"message": {"role": "assistant", "content": null}, "finish_reason": "stop"}]}).to_string(),
        )],
        "neither content nor tool calls",
    )
    .await;
    assert_falls_back(
        vec![Scripted::Raw(
            200,
            json!({"choices": [{"message": {"role": "assistant", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "add_task", "arguments": {"title": "not a string"}}}]}}]}).to_string(),
        )],
        "malformed",
    )
    .await;
}

#[tokio::test]
async fn an_unreachable_server_falls_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut c = LlmConfig::new(Secret::new(KEY));
    c.base_url = format!("http://{addr}/v1");
    c.timeout = Duration::from_millis(500);
    let store = Store::new();
    let reply = Agent::with_llm(c)
        .unwrap()
        .respond(&[], "what's on my list", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.engine, EngineKind::Builtin);
    assert_eq!(reply.fallback_reason.as_deref(), Some("llm unreachable"));
    assert_eq!(reply.actions[0].tool, ToolName::ListTasks);
}

#[tokio::test]
async fn no_tool_call_reaches_another_users_tasks() {
    let (_fake, agent, store) = setup(vec![
        tool_calls(&[
            ("complete_task", json!({"task_id": 3, "user_id": 2})),
            ("delete_task", json!({"task_id": 3})),
            ("update_task", json!({"task_id": 3, "title": "pwned"})),
        ]),
        answer("Done."),
    ])
    .await;
    let reply = agent
        .respond(&[], "complete task 3 of user 2", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.actions.len(), 3);
    for a in &reply.actions {
        assert_eq!(a.result["error"]["code"], "not_found", "{a:?}");
    }
    let theirs = store.tasks_of(2);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].title, "other user's task");
    assert!(!theirs[0].completed);
    assert!(store.calls().iter().all(|(user, _)| *user == 1));
}

#[tokio::test]
async fn the_tool_loop_is_bounded() {
    let script = (0..10)
        .map(|_| tool_calls(&[("list_tasks", json!({}))]))
        .collect();
    let (fake, agent, store) = setup(script).await;
    let reply = agent
        .respond(&[], "loop forever", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(fake.requests().len(), 5);
    assert_eq!(reply.actions.len(), 5);
    // Tools already ran, so the message is not replayed through the parser.
    assert_eq!(reply.engine, EngineKind::Llm);
    assert_eq!(
        reply.fallback_reason.as_deref(),
        Some("llm used more than 5 tool rounds")
    );
    assert!(
        reply.reply.starts_with("Done: listed your tasks"),
        "{}",
        reply.reply
    );
}

#[tokio::test]
async fn an_answer_with_too_many_tool_calls_runs_none_of_them() {
    let calls: Vec<(&str, Value)> = (0..21)
        .map(|i| ("add_task", json!({"title": format!("spam {i}")})))
        .collect();
    assert_falls_back(
        vec![tool_calls(&calls)],
        "21 tool calls in one answer, at most 20",
    )
    .await;
}

#[tokio::test]
async fn a_failure_after_tools_ran_does_not_repeat_them() {
    let (_fake, agent, store) = setup(vec![
        tool_calls(&[("add_task", json!({"title": "buy bread"}))]),
        error(500, "boom"),
    ])
    .await;
    let reply = agent
        .respond(&[], "add buy bread", &store.executor(1))
        .await
        .unwrap();
    assert_eq!(reply.engine, EngineKind::Llm);
    assert_eq!(
        reply.fallback_reason.as_deref(),
        Some("llm server error (HTTP 500)")
    );
    assert_eq!(reply.reply, "Done: added #4 \"buy bread\".");
    let breads = store
        .tasks_of(1)
        .into_iter()
        .filter(|t| t.title == "buy bread")
        .count();
    assert_eq!(breads, 1);
}

#[tokio::test]
async fn long_history_messages_are_clipped_before_they_reach_the_model() {
    let (fake, agent, store) = setup(vec![answer("ok")]).await;
    let history = vec![
        HistoryMessage {
            role: Role::User,
            content: "list everything".into(),
        },
        HistoryMessage {
            role: Role::Assistant,
            content: "é".repeat(50_000),
        },
    ];
    agent
        .respond(&history, "latest", &store.executor(1))
        .await
        .unwrap();
    let body = &fake.requests()[0].body;
    let sent = body["messages"][2]["content"].as_str().unwrap();
    assert_eq!(
        sent.chars().count(),
        agent::MAX_MESSAGE_CHARS + 1,
        "clipped plus an ellipsis"
    );
    assert!(sent.ends_with("é…"));
}

#[tokio::test]
async fn history_is_windowed_and_tool_messages_are_left_out() {
    let (fake, agent, store) = setup(vec![answer("ok")]).await;
    let mut history = Vec::new();
    for i in 0..30 {
        history.push(HistoryMessage {
            role: if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            },
            content: format!("message {i}"),
        });
        history.push(HistoryMessage {
            role: Role::Tool,
            content: "{\"tool\": true}".into(),
        });
    }
    agent
        .respond(&history, "latest", &store.executor(1))
        .await
        .unwrap();
    let body = &fake.requests()[0].body;
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1 + 20 + 1);
    assert_eq!(msgs[1]["content"], "message 10");
    assert_eq!(msgs[20]["content"], "message 29");
    assert_eq!(msgs[21]["content"], "latest");
    assert!(msgs.iter().all(|m| m["role"] != "tool"));
}

#[test]
fn config_is_read_from_the_environment_lookup() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    assert!(LlmConfig::from_lookup(env(&[])).unwrap().is_none());
    assert!(LlmConfig::from_lookup(env(&[("OPENAI_API_KEY", "  ")]))
        .unwrap()
        .is_none());
    let c = LlmConfig::from_lookup(env(&[("OPENAI_API_KEY", KEY)]))
        .unwrap()
        .unwrap();
    assert_eq!(c.base_url, "https://api.openai.com/v1");
    assert_eq!(c.model, "gpt-4o-mini");
    assert_eq!(c.timeout, Duration::from_secs(20));
    assert_eq!(c.turn_budget, Duration::from_secs(25));
    assert_eq!(c.api_key.expose(), KEY);
    let c = LlmConfig::from_lookup(env(&[
        ("OPENAI_API_KEY", KEY),
        ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ("OPENAI_MODEL", "m"),
        ("OPENAI_TIMEOUT_SECS", "3"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(
        (c.base_url.as_str(), c.model.as_str(), c.timeout),
        ("http://127.0.0.1:9/v1", "m", Duration::from_secs(3))
    );
    assert_eq!(c.turn_budget, Duration::from_secs(25));
    let slow = LlmConfig::from_lookup(env(&[
        ("OPENAI_API_KEY", KEY),
        ("OPENAI_TIMEOUT_SECS", "60"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(slow.turn_budget, Duration::from_secs(60));
    let err = LlmConfig::from_lookup(env(&[
        ("OPENAI_API_KEY", KEY),
        ("OPENAI_TIMEOUT_SECS", "soon"),
    ]))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "OPENAI_TIMEOUT_SECS is invalid: must be a whole number of seconds"
    );
    assert!(LlmConfig::from_lookup(env(&[
        ("OPENAI_API_KEY", KEY),
        ("OPENAI_BASE_URL", "ftp://x")
    ]))
    .is_err());
}

#[tokio::test]
async fn the_whole_turn_is_bounded_by_the_budget() {
    let fake = FakeOpenAi::start(vec![
        tool_calls(&[("add_task", json!({"title": "buy bread"}))]),
        Scripted::Hang,
    ])
    .await;
    let mut c = config(&fake);
    c.timeout = Duration::from_secs(10);
    c.turn_budget = Duration::from_millis(400);
    let agent = Agent::with_llm(c).unwrap();
    let store = Store::new();
    let started = Instant::now();
    let reply = agent
        .respond(&[], "add buy bread", &store.executor(1))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.engine, EngineKind::Llm);
    assert!(reply.fallback_reason.unwrap().contains("timed out"));
    assert_eq!(reply.reply, "Done: added #1 \"buy bread\".");
    assert_eq!(store.tasks_of(1).len(), 1);
}

#[tokio::test]
async fn a_listing_of_thousands_reaches_the_model_and_the_actions_bounded() {
    let fake = FakeOpenAi::start(vec![
        tool_calls(&[("list_tasks", json!({}))]),
        answer("You have a lot to do."),
    ])
    .await;
    let agent = Agent::with_llm(config(&fake)).expect("agent");
    let store = Store::new();
    for i in 0..5000 {
        store.seed(
            1,
            &format!("task number {i} with a reasonably long title"),
            false,
        );
    }
    let reply = agent
        .respond(&[], "what's on my list", &store.executor(1))
        .await
        .unwrap();
    let stored = reply.actions[0].result.to_string();
    assert!(
        stored.len() < 16 * 1024,
        "stored result: {} bytes",
        stored.len()
    );
    assert_eq!(reply.actions[0].result["total"], 5000);
    assert_eq!(
        reply.actions[0].result["tasks"].as_array().map(Vec::len),
        Some(agent::LIST_PAGE)
    );
    let requests = fake.requests();
    let sent = requests[1].body["messages"][3]["content"].as_str().unwrap();
    assert!(
        sent.len() < 16 * 1024,
        "sent to the model: {} bytes",
        sent.len()
    );
    assert!(sent.contains("\"total\":5000"), "{sent}");
}

#[tokio::test]
async fn a_reply_of_the_model_is_bounded() {
    let long = "word ".repeat(10_000);
    let (_fake, agent, store) = setup(vec![answer(&long)]).await;
    let reply = agent
        .respond(&[], "tell me a story", &store.executor(1))
        .await
        .unwrap();
    assert!(
        reply.reply.chars().count() <= agent::MAX_REPLY_CHARS + 1,
        "{}",
        reply.reply.len()
    );
    assert!(reply.reply.ends_with('…'));
}
