//! Which engine answers: the LLM engine when `OPENAI_API_KEY` is set, the built-in one otherwise.

use agent::{Agent, AgentError, LlmConfig, Secret};

use crate::config::Config;

/// Builds the agent once at startup; its HTTP client (and connection pool) then serves every request.
pub fn build_agent(config: &Config) -> Result<Agent, AgentError> {
    let Some(key) = &config.openai_api_key else {
        return Ok(Agent::builtin());
    };
    let mut llm = LlmConfig::new(Secret::new(key.expose().clone()));
    llm.base_url = config.openai_base_url.clone();
    llm.model = config.openai_model.clone();
    llm.timeout = config.openai_timeout;
    // An explicitly longer call timeout also lengthens the budget of the whole turn.
    llm.turn_budget = llm.turn_budget.max(config.openai_timeout);
    Agent::with_llm(llm)
}
