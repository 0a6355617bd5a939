//! Shared test harness: a real backend (`backend::serve`) on 127.0.0.1:0 against a real PostgreSQL database.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use backend::app::StartupError;
use backend::Config;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use testkit::pg::TestDb;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The auth secret every test app uses.
pub const AUTH_SECRET: &str = "test-secret-0123456789abcdef0123456789";

/// A running backend.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client.
    pub client: Client,
    /// The database this app uses.
    pub db_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartupError>>>,
}

/// Configuration for a test app against `db_url`.
pub fn config_for(db_url: &str) -> Config {
    config_with(db_url, &[])
}

/// Configuration for a test app against `db_url` with extra variables. Sign-in rate limits are
/// lifted unless `extra` sets them: tests register many users from one address.
pub fn config_with(db_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: std::collections::HashMap<String, String> = [
        ("DATABASE_URL", db_url),
        ("AUTH_SECRET", AUTH_SECRET),
        ("AUTH_RATE_PER_ADDRESS", "1000000"),
        ("AUTH_RATE_PER_ADDRESS_EMAIL", "1000000"),
        ("HASH_QUEUE", "10000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(move |name| vars.get(name).cloned()).expect("test configuration is valid")
}

/// A backend on a fresh database of the shared test server; `None` when PostgreSQL is unavailable (skipped).
pub async fn spawn_app() -> Option<TestApp> {
    spawn_app_with(&[]).await
}

/// [`spawn_app`] with extra configuration variables.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> Option<TestApp> {
    let db = TestDb::shared_or_skip()?;
    let db_url = db.fresh_database().expect("create test database");
    let app = TestApp::start_with(&db_url, extra).await;
    app.wait_ready(Duration::from_secs(30)).await;
    Some(app)
}

impl TestApp {
    /// Starts `serve` on a free loopback port; does not wait for readiness.
    pub async fn start(db_url: &str) -> Self {
        Self::start_with(db_url, &[]).await
    }

    /// [`TestApp::start`] with extra configuration variables.
    pub async fn start_with(db_url: &str, extra: &[(&str, &str)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(backend::serve(
            config_with(db_url, extra),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Self {
            base,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                // No idle keep-alive connections: tests that count connections see only their own.
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
            db_url: db_url.to_string(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Polls `/ready` until it answers `expected` or the deadline passes (then panics with the last answer).
    pub async fn wait_ready_status(&self, expected: StatusCode, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.client.get(self.url("/ready")).send().await {
                Ok(r) => {
                    let status = r.status();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    if status == expected {
                        return body;
                    }
                    format!("{status} {body}")
                }
                Err(e) => format!("request failed: {e}"),
            };
            assert!(
                Instant::now() < deadline,
                "/ready did not become {expected} within {timeout:?}; last answer: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `/ready` to answer 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_ready_status(StatusCode::OK, timeout).await;
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    /// Like [`TestApp::call`], returning the status and the parsed body (`Null` when empty).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let res = self.call(method, path, token, body).await;
        let status = res.status();
        let text = res.text().await.expect("body read");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body ({e}): {text}"))
        };
        (status, value)
    }

    /// Registers `email` with a valid password; returns the token.
    pub async fn register(&self, email: &str) -> String {
        let (status, body) = self
            .json(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {email}: {body}");
        body["token"]
            .as_str()
            .expect("token in register answer")
            .to_string()
    }

    /// Creates a task; returns it.
    pub async fn create_task(&self, token: &str, title: &str) -> Value {
        let (status, body) = self
            .json(
                Method::POST,
                "/api/tasks",
                Some(token),
                Some(json!({"title": title})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create {title}: {body}");
        body
    }

    /// Triggers graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Triggers graceful shutdown and returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), StartupError> {
        self.begin_shutdown();
        let handle = self.handle.take().expect("serve task present");
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("serve returned within 30 s of shutdown")
            .expect("serve task did not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts the API error shape and code; returns the message.
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    expected_status: StatusCode,
    code: &str,
) -> String {
    assert_eq!(status, expected_status, "unexpected status, body: {body}");
    assert_eq!(body["error"]["code"], code, "unexpected error code: {body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error without message: {body}"))
        .to_string()
}

/// A raw TCP connection to the app (for what an HTTP client library would not send).
pub async fn raw_connection(app: &TestApp) -> tokio::net::TcpStream {
    let addr = app.base.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to the app")
}
