//! Step 7: HTTP checks through the forward: health of both services, a throwaway user, a task round-trip,
//! a chat round-trip that creates a task, then the user deleted. Each check is timed against its budget.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

use super::{Check, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::progress::{Budget, Reporter};

/// Budget: health through the forward.
pub const HEALTH_BUDGET: Duration = Duration::from_secs(2);

/// The smoke step.
pub struct Smoke;

/// A client bound to the frontend URL that carries the session cookie.
pub struct Client {
    base: String,
    cookie: Option<String>,
}

/// Extracts the `todo_session` cookie (`name=value`) from Set-Cookie headers.
pub fn session_cookie<'a>(set_cookies: impl IntoIterator<Item = &'a str>) -> Option<String> {
    set_cookies
        .into_iter()
        .filter_map(|h| h.split(';').next())
        .map(str::trim)
        .find(|kv| kv.starts_with("todo_session=") && kv.len() > "todo_session=".len())
        .map(str::to_string)
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            cookie: None,
        }
    }

    fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| anyhow!("{method} {path}: {e}"))?;
        let mut req = crate::http::local()?
            .request(method.clone(), &url)
            .timeout(Duration::from_secs(30))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(c) = &self.cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = req.send().map_err(|e| anyhow!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        if let Some(c) = session_cookie(set_cookies.iter().map(String::as_str)) {
            self.cookie = Some(c);
        }
        let text = resp
            .text()
            .map_err(|e| anyhow!("{method} {path}: reading the answer: {e}"))?;
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, v))
    }

    fn expect(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Value> {
        let (s, v) = self.call(method, path, body)?;
        if !ok.contains(&s) {
            bail!("{method} {path} answered {s}: {v}");
        }
        Ok(v)
    }
}

/// One timed check.
#[derive(Debug)]
pub struct Timed {
    /// Name.
    pub name: &'static str,
    /// Duration.
    pub took: Duration,
}

/// Runs every check against the frontend (and backend when forwarded); returns the timings.
pub fn run_checks(frontend: &str, backend: Option<&str>) -> Result<Vec<Timed>> {
    let mut timings = Vec::new();
    let mut c = Client::new(frontend);
    let t = Instant::now();
    let health = c
        .expect("GET", "/api/health", None, &[200])
        .context("frontend health")?;
    timings.push(Timed {
        name: "health",
        took: t.elapsed(),
    });
    if health["status"] != "ok" || health["backend"]["reachable"] != true {
        bail!(
            "frontend health is {}: backend {}",
            health["status"],
            health["backend"]
        );
    }
    if let Some(b) = backend {
        let t = Instant::now();
        Client::new(b)
            .expect("GET", "/health", None, &[200])
            .context("backend health")?;
        timings.push(Timed {
            name: "backend health",
            took: t.elapsed(),
        });
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let email = format!("smoke-{stamp}@example.com");
    let t = Instant::now();
    c.expect(
        "POST",
        "/api/auth/register",
        Some(json!({"email": email, "password": format!("Smoke-{stamp}-pw!")})),
        &[200, 201],
    )
    .context("registering a throwaway user")?;
    if c.cookie.is_none() {
        bail!("register did not set the todo_session cookie");
    }
    timings.push(Timed {
        name: "register",
        took: t.elapsed(),
    });
    let result = user_checks(&mut c, &mut timings);
    // The throwaway user goes even when a check failed.
    let t = Instant::now();
    let deleted = c
        .expect("DELETE", "/api/auth/me", None, &[200, 204])
        .context("deleting the throwaway user");
    timings.push(Timed {
        name: "delete user",
        took: t.elapsed(),
    });
    result?;
    deleted?;
    Ok(timings)
}

fn user_checks(c: &mut Client, timings: &mut Vec<Timed>) -> Result<()> {
    let t = Instant::now();
    let task = c
        .expect(
            "POST",
            "/api/tasks",
            Some(json!({"title": "smoke round-trip"})),
            &[201],
        )
        .context("creating a task")?;
    let id = task["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("created task has no id: {task}"))?;
    let list = c
        .expect("GET", "/api/tasks", None, &[200])
        .context("listing tasks")?;
    if !list
        .as_array()
        .is_some_and(|a| a.iter().any(|t| t["id"] == id))
    {
        bail!("task {id} missing from the list");
    }
    c.expect("DELETE", &format!("/api/tasks/{id}"), None, &[204])
        .context("deleting the task")?;
    timings.push(Timed {
        name: "task round-trip",
        took: t.elapsed(),
    });

    let t = Instant::now();
    let chat = c
        .expect(
            "POST",
            "/api/chat",
            Some(json!({"message": "add smoke test task"})),
            &[200],
        )
        .context("chat")?;
    let added = chat["actions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["tool"] == "add_task"));
    if !added {
        bail!("chat did not call add_task: {chat}");
    }
    let list = c.expect("GET", "/api/tasks", None, &[200])?;
    if !list.as_array().is_some_and(|a| {
        a.iter().any(|t| {
            t["title"]
                .as_str()
                .is_some_and(|s| s.to_lowercase().contains("smoke test"))
        })
    }) {
        bail!("the task the chat created is not in the list: {list}");
    }
    timings.push(Timed {
        name: "chat round-trip",
        took: t.elapsed(),
    });
    Ok(())
}

impl Step for Smoke {
    fn name(&self) -> &'static str {
        "smoke"
    }

    fn check(&self, ctx: &Context, st: &mut State) -> Result<Check> {
        if ctx.dry_run {
            return Ok(Check::Skip("dry run".into()));
        }
        if st.forward.is_none() {
            return Err(Failure::smoke("no forward to test through").into());
        }
        Ok(Check::Run)
    }

    fn run(&self, _ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let urls = st
            .forward
            .as_ref()
            .map(|f| f.targets.clone())
            .unwrap_or_default();
        let front = urls
            .iter()
            .find(|t| t.service == "todo-frontend")
            .map(|t| t.url());
        let back = urls
            .iter()
            .find(|t| t.service == "todo-backend")
            .map(|t| t.url());
        let front = front.ok_or_else(|| Failure::smoke("frontend is not forwarded"))?;
        rep.note(self.name(), &format!("checking {front}"));
        let timings =
            run_checks(&front, back.as_deref()).map_err(|e| Failure::smoke(format!("{e:#}")))?;
        if let Some(h) = timings.iter().find(|t| t.name == "health") {
            st.budgets.push(Budget {
                name: "health",
                measured: h.took,
                budget: HEALTH_BUDGET,
            });
        }
        let d: Vec<String> = timings
            .iter()
            .map(|t| format!("{} {}", t.name, crate::progress::fmt_dur(t.took)))
            .collect();
        Ok(d.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_headers() {
        let h = [
            "other=1; Path=/",
            "todo_session=abc.def; HttpOnly; SameSite=Strict; Path=/",
        ];
        assert_eq!(session_cookie(h), Some("todo_session=abc.def".into()));
        assert_eq!(session_cookie(["todo_session=; Max-Age=0"]), None);
    }
}
