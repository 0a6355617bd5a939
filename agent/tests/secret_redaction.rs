//! The API key never shows up in logs, errors, fallback reasons or Debug output.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::{Agent, LlmConfig, Secret};
use serde_json::json;
use support::fake_openai::{error, tool_calls, FakeOpenAi, Scripted};
use support::memory::Store;

const KEY: &str = "sk-test-SECRET123";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn the_key_never_leaks() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Each scripted answer echoes the key back, as a hostile or buggy server might.
    let echo = format!("invalid key {KEY} (Authorization: Bearer {KEY})");
    let fake = FakeOpenAi::start(vec![
        error(401, &echo),
        error(500, &echo),
        error(429, &echo),
        Scripted::Raw(200, format!("{{\"oops\": \"{KEY}\"")),
        tool_calls(&[(KEY, json!({"key": KEY}))]),
        Scripted::Raw(
            200,
            json!({"choices": [{"message": {"content": null}}]}).to_string(),
        ),
        Scripted::Hang,
    ])
    .await;
    let mut config = LlmConfig::new(Secret::new(KEY));
    config.base_url = fake.base_url();
    config.timeout = Duration::from_millis(300);
    assert!(!format!("{config:?}").contains(KEY));
    assert!(!format!("{}", config.api_key).contains(KEY));
    let agent = Agent::with_llm(config).unwrap();
    assert!(!format!("{agent:?}").contains(KEY));

    let store = Store::new();
    let mut texts = Vec::new();
    for _ in 0..6 {
        let reply = agent
            .respond(&[], "what's on my list", &store.executor(1))
            .await
            .unwrap();
        texts.push(format!("{reply:?}"));
        texts.push(reply.fallback_reason.clone().unwrap_or_default());
    }
    let too_long = agent
        .respond(&[], &"x".repeat(5000), &store.executor(1))
        .await
        .unwrap_err();
    texts.push(too_long.to_string());
    texts.push(format!("{too_long:?}"));

    // The key did go where it belongs: the Authorization header.
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))));
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("llm engine fell back"),
        "capture works: {logs}"
    );
    assert!(logs.contains("rate limited"), "{logs}");
    assert!(logs.contains("llm called an unknown tool"), "{logs}");
    assert!(!logs.contains(KEY), "key in logs:\n{logs}");
    for t in &texts {
        assert!(!t.contains(KEY), "key in {t}");
    }
}
