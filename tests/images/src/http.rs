//! A small HTTP client for the published 127.0.0.1 ports, keeping the frontend's session cookie.

use std::time::Duration;

use serde_json::Value;

/// An HTTP answer: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Parsed body.
    pub body: Value,
}

/// A client for one base URL, remembering the `todo_session` cookie the frontend sets.
pub struct Client {
    base: String,
    agent: ureq::Agent,
    cookie: Option<String>,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:49153`).
    pub fn new(base: &str) -> Self {
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
            cookie: None,
        }
    }

    /// GET `path`.
    pub fn get(&mut self, path: &str) -> Result<Answer, String> {
        let req = self.agent.get(&format!("{}{path}", self.base));
        self.send(req, None)
    }

    /// POST `path` with a JSON body.
    pub fn post(&mut self, path: &str, body: Value) -> Result<Answer, String> {
        let req = self.agent.post(&format!("{}{path}", self.base));
        self.send(req, Some(body))
    }

    /// True once a session cookie was received.
    pub fn has_session(&self) -> bool {
        self.cookie.is_some()
    }

    fn send(&mut self, mut req: ureq::Request, body: Option<Value>) -> Result<Answer, String> {
        let url = req.url().to_string();
        if let Some(cookie) = &self.cookie {
            req = req.set("Cookie", cookie);
        }
        let result = match body {
            Some(body) => req.send_json(body),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(format!("{url}: {e}")),
        };
        for header in response.all("set-cookie") {
            if let Some(pair) = header.split(';').next() {
                if pair.starts_with("todo_session=") {
                    self.cookie = Some(pair.to_string());
                }
            }
        }
        let status = response.status();
        let text = response
            .into_string()
            .map_err(|e| format!("{url}: cannot read the body: {e}"))?;
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }
}
