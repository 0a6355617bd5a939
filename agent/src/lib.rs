//! The todo chat agent: turns a user's chat message into task tool calls and a reply.
//!
//! Two engines sit behind [`Agent::respond`]: a deterministic built-in intent parser
//! (always available, used offline) and an OpenAI-compatible tool-calling engine that
//! falls back to the built-in one for any message it cannot serve.

mod agent;
pub mod builtin;
mod executor;
pub mod llm;
mod reply;
mod tools;

pub use agent::{Agent, AgentError, MAX_MESSAGE_CHARS, MAX_REPLY_CHARS};
pub use executor::{
    clip, TaskView, ToolError, ToolExecutor, ToolOutput, LIST_DESCRIPTION_CHARS, LIST_PAGE,
};
pub use llm::{LlmConfig, Secret};
pub use reply::{Action, AgentReply, EngineKind, HistoryMessage, Role};
pub use tools::{StatusFilter, Tool, ToolCall, ToolName};
