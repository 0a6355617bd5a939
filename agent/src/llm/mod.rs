//! The LLM engine: OpenAI-compatible Chat Completions with tool calling.

mod config;
mod engine;
mod fallback;
mod wire;

pub use config::{ConfigError, LlmConfig, Secret};
pub(crate) use engine::LlmEngine;
pub use fallback::FallbackReason;
