//! `--explain`: asks an OpenAI-compatible Chat Completions endpoint to explain the findings (anonymised first).

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

use super::finding::Finding;
use super::redact::redact;

/// Where and how to ask; from the same variables the backend reads.
#[derive(Clone)]
pub struct Settings {
    /// API key (never printed).
    api_key: String,
    /// Base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// `OPENAI_API_KEY` (required), `OPENAI_BASE_URL`, `OPENAI_MODEL`, `OPENAI_TIMEOUT_SECS`; None without a key.
    pub fn from_env() -> Option<Self> {
        let api_key = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())?;
        let var = |k: &str, d: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| d.into())
        };
        Some(Self {
            api_key,
            base_url: var("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            model: var("OPENAI_MODEL", "gpt-4o-mini"),
            // The backend accepts 1..=600; the same range here, so a typo cannot mean "no time at all".
            timeout: Duration::from_secs(
                var("OPENAI_TIMEOUT_SECS", "30")
                    .parse::<u64>()
                    .unwrap_or(30)
                    .clamp(1, 600),
            ),
        })
    }
}

const SYSTEM: &str = "You help a developer fix a local Kubernetes (Minikube) deployment of two Helm releases, \
todo-backend (Rust API, port 8000, PostgreSQL) and todo-frontend (Rust web UI, port 3000), made by `cargo xtask \
deploy`. You get the findings of `cargo xtask diagnose`. Name the most likely root cause first, then the fix steps \
in order (prefer the xtask commands the findings suggest). Be brief. Secrets were redacted; never ask for them.";

/// The user message: findings rendered and anonymised.
pub fn prompt(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "No findings: the release looks healthy.".into();
    }
    redact(
        &findings
            .iter()
            .map(Finding::render)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
}

/// POSTs the anonymised findings to `{base_url}/chat/completions` and returns the model's answer. The key
/// travels in the Authorization header only: never on a command line, never in an error message.
pub fn explain(settings: &Settings, findings: &[Finding]) -> Result<String> {
    let url = format!(
        "{}/chat/completions",
        settings.base_url.trim_end_matches('/')
    );
    let body = serde_json::json!({
        "model": settings.model,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": prompt(findings)},
        ],
    });
    let client = crate::http::remote(settings.timeout).context("--explain")?;
    let response = client
        .post(&url)
        .bearer_auth(&settings.api_key)
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .map_err(|e| {
            anyhow::anyhow!(
                "--explain: cannot reach {url}: {}",
                describe(&e, settings.timeout)
            )
        })?;
    let status = response.status().as_u16();
    let answer = response.text().map_err(|e| {
        anyhow::anyhow!(
            "--explain: reading the answer from {url}: {}",
            describe(&e, settings.timeout)
        )
    })?;
    if !(200..300).contains(&status) {
        bail!(
            "--explain: {url} answered HTTP {status}: {}",
            redact(answer.trim())
        );
    }
    let completion: Completion = serde_json::from_str(&answer)
        .with_context(|| format!("--explain: {url} did not answer a Chat Completions JSON"))?;
    completion
        .choices
        .into_iter()
        .find_map(|c| c.message.content)
        .filter(|c| !c.trim().is_empty())
        .context("--explain: the model answered with no text")
}

/// A transport error in words, with its cause chain (TLS and DNS errors hide in the sources); reqwest's
/// errors carry the URL but never the request's headers.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
