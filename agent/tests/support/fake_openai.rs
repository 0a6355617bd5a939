//! A local server speaking the Chat Completions protocol with scripted answers
//! (a test double of the OpenAI API; it binds 127.0.0.1 only).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// Status and raw body (JSON content type).
    Raw(u16, String),
    /// Never answer (the client must time out).
    Hang,
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Scripted>,
    requests: Vec<Recorded>,
}

/// The running fake; dropped with the test's runtime.
#[derive(Clone)]
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeOpenAi {
    /// Starts the server with a script of answers, served in order.
    pub async fn start(script: Vec<Scripted>) -> FakeOpenAi {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.into(),
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenAi { addr, inner }
    }

    /// The base URL to configure (`OPENAI_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Scripted answers not served yet.
    pub fn remaining(&self) -> usize {
        self.inner.lock().unwrap().script.len()
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let next = {
        let mut g = inner.lock().unwrap();
        g.requests.push(Recorded {
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
        });
        g.script.pop_front()
    };
    match next {
        Some(Scripted::Raw(status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        Some(Scripted::Hang) => {
            std::future::pending::<()>().await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"message": "script exhausted", "type": "server_error"}}).to_string(),
        )
            .into_response(),
    }
}

fn completion(message: Value, finish_reason: &str) -> Scripted {
    Scripted::Raw(
        200,
        json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        })
        .to_string(),
    )
}

/// A final text answer, as the real API returns it.
pub fn answer(text: &str) -> Scripted {
    completion(
        json!({"role": "assistant", "content": text, "refusal": null}),
        "stop",
    )
}

/// A turn calling tools: (name, arguments object). Arguments are sent JSON-encoded as a string.
pub fn tool_calls(calls: &[(&str, Value)]) -> Scripted {
    let calls: Vec<(&str, String)> = calls.iter().map(|(n, a)| (*n, a.to_string())).collect();
    raw_tool_calls(
        &calls
            .iter()
            .map(|(n, a)| (*n, a.as_str()))
            .collect::<Vec<_>>(),
    )
}

/// A turn calling tools with raw argument strings (to script invalid JSON).
pub fn raw_tool_calls(calls: &[(&str, &str)]) -> Scripted {
    let calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| {
            json!({"id": format!("call_{i}_{name}"), "type": "function",
                   "function": {"name": name, "arguments": args}})
        })
        .collect();
    completion(
        json!({"role": "assistant", "content": null, "tool_calls": calls, "refusal": null}),
        "tool_calls",
    )
}

/// An error answer shaped like the real API's.
pub fn error(status: u16, message: &str) -> Scripted {
    Scripted::Raw(
        status,
        json!({"error": {"message": message, "type": "requests", "param": null, "code": null}})
            .to_string(),
    )
}
