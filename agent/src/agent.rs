//! The agent facade: validates the message and picks the engine.

use crate::executor::{ToolError, ToolExecutor};
use crate::llm::{LlmConfig, LlmEngine};
use crate::reply::{AgentReply, EngineKind, HistoryMessage};

/// Longest accepted message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Longest reply, in characters: a model's answer beyond it is cut (the built-in engine's
/// replies stay far below it by construction).
pub const MAX_REPLY_CHARS: usize = 8000;

/// Why the agent could not answer a message.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The message is longer than [`MAX_MESSAGE_CHARS`].
    #[error("message is too long: {chars} characters, at most {max} allowed")]
    MessageTooLong {
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The message is empty or only whitespace.
    #[error("message must not be empty")]
    EmptyMessage,
    /// Task storage failed; nothing sensible can be answered.
    #[error("task storage unavailable: {0}")]
    Storage(String),
    /// The LLM engine could not be set up (e.g. the HTTP client failed to build).
    #[error("cannot set up the LLM engine: {0}")]
    Setup(String),
}

impl From<ToolError> for AgentError {
    fn from(e: ToolError) -> Self {
        AgentError::Storage(e.to_string())
    }
}

/// The chat agent. Holds no per-user state: everything about the user comes in with each call.
#[derive(Debug)]
pub struct Agent {
    llm: Option<LlmEngine>,
}

impl Agent {
    /// An agent that only uses the built-in engine.
    pub fn builtin() -> Self {
        Agent { llm: None }
    }

    /// An agent that uses the LLM engine, falling back to the built-in one per message.
    pub fn with_llm(config: LlmConfig) -> Result<Self, AgentError> {
        Ok(Agent {
            llm: Some(LlmEngine::new(config)?),
        })
    }

    /// The engine tried first.
    pub fn preferred_engine(&self) -> EngineKind {
        if self.llm.is_some() {
            EngineKind::Llm
        } else {
            EngineKind::Builtin
        }
    }

    /// Answers `message` given the conversation so far (oldest first), running tools
    /// through `executor`, which is bound to the requesting user.
    pub async fn respond<E: ToolExecutor>(
        &self,
        history: &[HistoryMessage],
        message: &str,
        executor: &E,
    ) -> Result<AgentReply, AgentError> {
        let chars = message.chars().count();
        if chars > MAX_MESSAGE_CHARS {
            return Err(AgentError::MessageTooLong {
                chars,
                max: MAX_MESSAGE_CHARS,
            });
        }
        if message.trim().is_empty() {
            return Err(AgentError::EmptyMessage);
        }
        let mut reply = match &self.llm {
            Some(llm) => llm.respond(history, message, executor).await?,
            None => crate::builtin::respond(message, executor).await?,
        };
        reply.reply = crate::executor::clip(&reply.reply, MAX_REPLY_CHARS);
        Ok(reply)
    }
}
