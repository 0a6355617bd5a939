//! Why a message was not (fully) answered by the LLM.

use std::time::Duration;

/// Why the LLM engine gave up on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackReason {
    /// HTTP 429.
    RateLimited,
    /// HTTP 5xx.
    ServerError(u16),
    /// Any other non-success HTTP status (e.g. 401 for a bad key).
    HttpStatus(u16),
    /// No answer within the timeout.
    Timeout(Duration),
    /// Connection failed.
    Unreachable,
    /// The body was not a Chat Completions response.
    Malformed(String),
    /// The model called a tool with arguments that do not fit its schema.
    InvalidToolArguments(String),
    /// The model kept calling tools past the bound.
    TooManyRounds(usize),
}

impl std::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FallbackReason::RateLimited => write!(f, "llm rate limited (HTTP 429)"),
            FallbackReason::ServerError(s) => write!(f, "llm server error (HTTP {s})"),
            FallbackReason::HttpStatus(s) => write!(f, "llm request rejected (HTTP {s})"),
            FallbackReason::Timeout(d) => write!(f, "llm timed out after {} ms", d.as_millis()),
            FallbackReason::Unreachable => write!(f, "llm unreachable"),
            FallbackReason::Malformed(why) => write!(f, "llm returned a malformed response: {why}"),
            FallbackReason::InvalidToolArguments(why) => {
                write!(f, "llm sent invalid tool arguments: {why}")
            }
            FallbackReason::TooManyRounds(n) => write!(f, "llm used more than {n} tool rounds"),
        }
    }
}
