//! Settings of the LLM engine, and the redacting [`Secret`] that holds the API key.

use std::time::Duration;

/// A secret string whose `Debug`/`Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself; use only where it must go on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "[redacted]")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A setting of the LLM engine that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{name} is invalid: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: &'static str,
    /// What is wrong with it (never its value).
    pub reason: String,
}

/// Settings of the LLM engine.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL of the API, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// API key.
    pub api_key: Secret,
    /// Timeout of each HTTP call.
    pub timeout: Duration,
    /// Most model calls per message (tool rounds included).
    pub max_rounds: usize,
    /// Most history messages sent along.
    pub history_window: usize,
    /// Wall-clock budget of one message across all its model calls; kept under the
    /// frontend's 30 s proxy timeout so a slow model degrades to the built-in engine instead.
    pub turn_budget: Duration,
}

impl LlmConfig {
    /// Default `OPENAI_BASE_URL`.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";
    /// Default `OPENAI_MODEL`.
    pub const DEFAULT_MODEL: &'static str = "gpt-4o-mini";
    /// Default `OPENAI_TIMEOUT_SECS`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
    /// Default [`LlmConfig::turn_budget`].
    pub const DEFAULT_TURN_BUDGET: Duration = Duration::from_secs(25);

    /// A config with default URL, model, timeout and bounds.
    pub fn new(api_key: Secret) -> Self {
        LlmConfig {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            model: Self::DEFAULT_MODEL.to_owned(),
            api_key,
            timeout: Self::DEFAULT_TIMEOUT,
            max_rounds: 5,
            history_window: 20,
            turn_budget: Self::DEFAULT_TURN_BUDGET,
        }
    }

    /// Reads `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_MODEL`, `OPENAI_TIMEOUT_SECS` through
    /// `lookup` (e.g. `|k| std::env::var(k).ok()`); `Ok(None)` when no key is set.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<LlmConfig>, ConfigError> {
        let non_empty = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = non_empty("OPENAI_API_KEY") else {
            return Ok(None);
        };
        let mut config = LlmConfig::new(Secret::new(key));
        if let Some(url) = non_empty("OPENAI_BASE_URL") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError {
                    name: "OPENAI_BASE_URL",
                    reason: "must start with http:// or https://".into(),
                });
            }
            config.base_url = url;
        }
        if let Some(model) = non_empty("OPENAI_MODEL") {
            config.model = model;
        }
        if let Some(secs) = non_empty("OPENAI_TIMEOUT_SECS") {
            let secs: u64 = secs.parse().map_err(|_| ConfigError {
                name: "OPENAI_TIMEOUT_SECS",
                reason: "must be a whole number of seconds".into(),
            })?;
            if secs == 0 || secs > 600 {
                return Err(ConfigError {
                    name: "OPENAI_TIMEOUT_SECS",
                    reason: "must be between 1 and 600".into(),
                });
            }
            config.timeout = Duration::from_secs(secs);
            // An explicitly longer call timeout also lengthens the budget of the whole turn.
            config.turn_budget = config.turn_budget.max(config.timeout);
        }
        Ok(Some(config))
    }
}
