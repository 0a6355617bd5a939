//! Which engine answers: the LLM engine when `OPENAI_API_KEY` is set, the built-in one otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use agent::{Agent, LlmConfig, Secret};

use crate::config::Config;
use crate::error::ApiError;

/// Identity of an engine configuration; the key is compared, never printed.
#[derive(PartialEq, Eq, Hash)]
struct EngineKey {
    base_url: String,
    model: String,
    timeout_ms: u128,
    api_key: String,
}

/// Agents by configuration: the HTTP client (and its connection pool) is reused across requests.
/// This holds no user data; every user-specific input arrives with the request.
static AGENTS: OnceLock<Mutex<HashMap<EngineKey, Arc<Agent>>>> = OnceLock::new();
static BUILTIN: OnceLock<Arc<Agent>> = OnceLock::new();

/// The agent for this configuration (built once, then shared).
pub fn agent_for(config: &Config) -> Result<Arc<Agent>, ApiError> {
    let Some(key) = &config.openai_api_key else {
        return Ok(BUILTIN.get_or_init(|| Arc::new(Agent::builtin())).clone());
    };
    let engine_key = EngineKey {
        base_url: config.openai_base_url.clone(),
        model: config.openai_model.clone(),
        timeout_ms: config.openai_timeout.as_millis(),
        api_key: key.expose().clone(),
    };
    let agents = AGENTS.get_or_init(Default::default);
    let mut agents = agents
        .lock()
        .map_err(|_| ApiError::internal("chat engine cache poisoned"))?;
    if let Some(agent) = agents.get(&engine_key) {
        return Ok(agent.clone());
    }
    let mut llm = LlmConfig::new(Secret::new(key.expose().clone()));
    llm.base_url = config.openai_base_url.clone();
    llm.model = config.openai_model.clone();
    llm.timeout = config.openai_timeout;
    // An explicitly longer call timeout also lengthens the budget of the whole turn.
    llm.turn_budget = llm.turn_budget.max(config.openai_timeout);
    let agent = Arc::new(
        Agent::with_llm(llm).map_err(|e| ApiError::internal(format!("chat engine: {e}")))?,
    );
    agents.insert(engine_key, agent.clone());
    Ok(agent)
}
