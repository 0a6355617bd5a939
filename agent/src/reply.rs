//! What the agent answers, and the conversation history it is given.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tools::ToolName;

/// Which engine produced a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The deterministic intent parser.
    Builtin,
    /// The OpenAI-compatible model.
    Llm,
}

impl EngineKind {
    /// The wire name (`builtin` or `llm`).
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Builtin => "builtin",
            EngineKind::Llm => "llm",
        }
    }
}

/// One tool call the agent ran, with its result (or error object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The tool.
    pub tool: ToolName,
    /// The arguments it ran with.
    pub arguments: Value,
    /// The tool's JSON result, or `{"error": {"code", "message"}}`.
    pub result: Value,
}

/// The agent's answer to one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentReply {
    /// Text for the user.
    pub reply: String,
    /// Tools run while answering, in order.
    pub actions: Vec<Action>,
    /// The engine that answered.
    pub engine: EngineKind,
    /// Why the LLM engine was not (fully) used for this message, when it was configured.
    pub fallback_reason: Option<String>,
}

/// Who said a history message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user.
    User,
    /// The agent.
    Assistant,
    /// A tool result.
    Tool,
}

/// A stored message of the conversation so far, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    /// Who said it.
    pub role: Role,
    /// The text (for tool messages, a JSON string).
    pub content: String,
}
