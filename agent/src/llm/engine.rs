//! The tool loop against a Chat Completions endpoint.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::config::LlmConfig;
use super::fallback::FallbackReason;
use super::wire::{tool_definitions, ChatRequest, ChatResponse, Message, ResponseMessage};
use crate::agent::{AgentError, MAX_MESSAGE_CHARS};
use crate::executor::{ToolError, ToolExecutor};
use crate::reply::{Action, AgentReply, EngineKind, HistoryMessage, Role};
use crate::tools::{Tool, ToolCall, ToolName};

const SYSTEM_PROMPT: &str = "You are the assistant of a todo app. You manage the user's tasks \
only through the tools add_task, list_tasks, complete_task, delete_task and update_task. Tasks are \
identified by numeric ids, shown to the user as #id. When the user refers to a task by words, call \
list_tasks first to find its id. If a reference fits several tasks, ask which one is meant instead \
of guessing. After acting, confirm briefly what you did. Keep replies short.";

/// Most tool calls accepted in one model answer: each one is a database write and a stored message.
pub(crate) const MAX_TOOL_CALLS_PER_ANSWER: usize = 20;

/// The LLM engine; cheap to share, holds no per-user state.
#[derive(Debug)]
pub(crate) struct LlmEngine {
    config: LlmConfig,
    client: reqwest::Client,
    url: String,
}

/// Why the loop stopped without an answer.
enum LoopError {
    Fallback(FallbackReason, Vec<Action>),
    Fatal(AgentError),
}

impl LlmEngine {
    pub(crate) fn new(config: LlmConfig) -> Result<Self, AgentError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| AgentError::Setup(config.api_key.redact(&e.to_string())))?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(LlmEngine {
            config,
            client,
            url,
        })
    }

    pub(crate) async fn respond<E: ToolExecutor>(
        &self,
        history: &[HistoryMessage],
        message: &str,
        executor: &E,
    ) -> Result<AgentReply, AgentError> {
        match self.tool_loop(history, message, executor).await {
            Ok((reply, actions)) => Ok(AgentReply {
                reply,
                actions,
                engine: EngineKind::Llm,
                fallback_reason: None,
            }),
            Err(LoopError::Fatal(e)) => Err(e),
            Err(LoopError::Fallback(reason, actions)) => {
                let reason = self.config.api_key.redact(&reason.to_string());
                tracing::warn!(reason = %reason, actions = actions.len(), "llm engine fell back");
                if actions.is_empty() {
                    let mut reply = crate::builtin::respond(message, executor).await?;
                    reply.fallback_reason = Some(reason);
                    Ok(reply)
                } else {
                    // Tools already ran: re-running the message through the parser could repeat them.
                    Ok(AgentReply {
                        reply: crate::builtin::summary(&actions),
                        actions,
                        engine: EngineKind::Llm,
                        fallback_reason: Some(reason),
                    })
                }
            }
        }
    }

    fn initial_messages(&self, history: &[HistoryMessage], message: &str) -> Vec<Message> {
        let conversational: Vec<&HistoryMessage> = history
            .iter()
            .filter(|m| matches!(m.role, Role::User | Role::Assistant))
            .collect();
        let skip = conversational
            .len()
            .saturating_sub(self.config.history_window);
        let mut messages = vec![Message::text("system", SYSTEM_PROMPT)];
        messages.extend(conversational[skip..].iter().map(|m| {
            let role = if m.role == Role::User {
                "user"
            } else {
                "assistant"
            };
            Message::text(role, clip(&m.content))
        }));
        messages.push(Message::text("user", message));
        messages
    }

    async fn tool_loop<E: ToolExecutor>(
        &self,
        history: &[HistoryMessage],
        message: &str,
        executor: &E,
    ) -> Result<(String, Vec<Action>), LoopError> {
        let deadline = Instant::now() + self.config.turn_budget;
        let mut messages = self.initial_messages(history, message);
        let mut actions: Vec<Action> = Vec::new();
        for round in 0..self.config.max_rounds {
            let answer = match self.complete(&messages, deadline).await {
                Ok(a) => a,
                Err(reason) => return Err(LoopError::Fallback(reason, actions)),
            };
            let calls = answer.tool_calls.clone().unwrap_or_default();
            tracing::debug!(round, tool_calls = calls.len(), "llm answered");
            if calls.is_empty() {
                return match answer.content.filter(|c| !c.trim().is_empty()) {
                    Some(text) => Ok((text, actions)),
                    None => Err(LoopError::Fallback(
                        FallbackReason::Malformed("neither content nor tool calls".into()),
                        actions,
                    )),
                };
            }
            if calls.len() > MAX_TOOL_CALLS_PER_ANSWER {
                return Err(LoopError::Fallback(
                    FallbackReason::Malformed(format!(
                        "{} tool calls in one answer, at most {MAX_TOOL_CALLS_PER_ANSWER}",
                        calls.len()
                    )),
                    actions,
                ));
            }
            // Validate the whole turn before running any of it, so a bad call never half-applies.
            let mut planned: Vec<(String, Result<Tool, ToolError>)> = Vec::new();
            for call in &calls {
                let Some(name) = ToolName::from_name(&call.function.name) else {
                    // The name is model output: bounded and redacted before it is logged.
                    let shown = self.config.api_key.redact(&truncate(&call.function.name));
                    tracing::warn!(tool = %shown, "llm called an unknown tool");
                    planned.push((call.id.clone(), Err(ToolError::UnknownTool(shown))));
                    continue;
                };
                let tool = parse_arguments(&call.function.arguments)
                    .and_then(|arguments| {
                        Tool::try_from(&ToolCall {
                            tool: name,
                            arguments,
                        })
                    })
                    .map_err(|e| {
                        LoopError::Fallback(
                            FallbackReason::InvalidToolArguments(e.to_string()),
                            actions.clone(),
                        )
                    })?;
                planned.push((call.id.clone(), Ok(tool)));
            }
            messages.push(Message {
                role: "assistant",
                content: answer.content,
                tool_calls: Some(calls),
                tool_call_id: None,
            });
            for (id, tool) in planned {
                let result = match tool {
                    Err(e) => e.to_json(),
                    Ok(tool) => {
                        let result = match executor.execute(&tool).await {
                            Ok(out) => out.to_json(),
                            Err(ToolError::Unavailable(why)) => {
                                return Err(LoopError::Fatal(AgentError::Storage(why)))
                            }
                            Err(e) => e.to_json(),
                        };
                        actions.push(Action {
                            tool: tool.name(),
                            arguments: tool.arguments(),
                            result: result.clone(),
                        });
                        result
                    }
                };
                messages.push(Message::tool_result(&id, result.to_string()));
            }
        }
        Err(LoopError::Fallback(
            FallbackReason::TooManyRounds(self.config.max_rounds),
            actions,
        ))
    }

    async fn complete(
        &self,
        messages: &[Message],
        deadline: Instant,
    ) -> Result<ResponseMessage, FallbackReason> {
        let timeout = self
            .config
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(FallbackReason::Timeout(self.config.turn_budget));
        }
        tracing::debug!(url = %self.url, model = %self.config.model, messages = messages.len(), "calling llm");
        let body = ChatRequest {
            model: &self.config.model,
            messages,
            tools: tool_definitions(),
            tool_choice: "auto",
            temperature: 0.0,
        };
        let response = self
            .client
            .post(&self.url)
            .bearer_auth(self.config.api_key.expose())
            .timeout(timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| classify(&e, timeout))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(FallbackReason::RateLimited);
        }
        if status.is_server_error() {
            return Err(FallbackReason::ServerError(status.as_u16()));
        }
        if !status.is_success() {
            return Err(FallbackReason::HttpStatus(status.as_u16()));
        }
        let bytes = response.bytes().await.map_err(|e| classify(&e, timeout))?;
        let parsed: ChatResponse = serde_json::from_slice(&bytes)
            .map_err(|e| FallbackReason::Malformed(format!("not a chat completion ({e})")))?;
        parsed
            .choices
            .into_iter()
            .next()
            .map(|c| c.message)
            .ok_or_else(|| FallbackReason::Malformed("no choices".into()))
    }
}

/// Only the kind of a transport error is kept: its text may carry the URL and adds nothing.
fn classify(e: &reqwest::Error, timeout: Duration) -> FallbackReason {
    if e.is_timeout() {
        FallbackReason::Timeout(timeout)
    } else if e.is_decode() || e.is_body() {
        FallbackReason::Malformed("unreadable body".into())
    } else {
        FallbackReason::Unreachable
    }
}

fn parse_arguments(raw: &str) -> Result<Value, ToolError> {
    if raw.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(raw)
        .map_err(|e| ToolError::InvalidArguments(format!("arguments are not JSON ({e})")))
}

/// A history message as sent to the model: user messages are already at most
/// [`MAX_MESSAGE_CHARS`], but an assistant reply (a long task listing) is not bounded.
fn clip(content: &str) -> String {
    match content.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(64).collect()
}
