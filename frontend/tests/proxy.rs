//! The frontend in front of the REAL backend (on a real PostgreSQL): cookie flow, every API route,
//! security headers; plus an echo server that shows exactly what reaches the backend, a closed
//! port (backend down) and a server that never answers (backend slow).

mod support;

use reqwest::header::{self, HeaderMap};
use serde_json::{json, Value};
use support::*;

fn assert_security_headers(h: &HeaderMap, what: &str) {
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    for d in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(d), "{what}: CSP lacks {d}: {csp}");
    }
    assert_eq!(
        h.get(header::X_CONTENT_TYPE_OPTIONS).unwrap(),
        "nosniff",
        "{what}"
    );
    assert_eq!(
        h.get(header::REFERRER_POLICY).unwrap(),
        "no-referrer",
        "{what}"
    );
    assert_eq!(h.get(header::X_FRAME_OPTIONS).unwrap(), "DENY", "{what}");
}

async fn error_code(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.expect("JSON error body");
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_flow_register_me_logout_login() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = &stack.frontend.url;
    let c = client();
    let email = unique_email("cookie");

    let resp = c
        .post(format!("{fe}/api/auth/register"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let (cookie, line) = session_cookie(&resp).expect("Set-Cookie todo_session");
    assert!(line.contains("HttpOnly"), "{line}");
    assert!(line.contains("SameSite=Strict"), "{line}");
    assert!(line.contains("Path=/"), "{line}");
    assert_eq!(
        resp.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    assert!(
        body.get("token").is_none(),
        "the token never reaches page scripts: {body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only the user: {body}");

    let me = c
        .get(format!("{fe}/api/auth/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], email.as_str());

    let anon = c.get(format!("{fe}/api/auth/me")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert_eq!(error_code(anon).await, "unauthorized");

    // A forged cookie is passed on as a token the backend rejects; the frontend then clears it.
    let forged = c
        .get(format!("{fe}/api/tasks"))
        .header(header::COOKIE, "todo_session=forged-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (cleared, line) = session_cookie(&forged).expect("a rejected session is cleared");
    assert_eq!(cleared, "todo_session=");
    assert!(line.contains("Max-Age=0"), "{line}");

    let out = c
        .post(format!("{fe}/api/auth/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let (cleared, line) = session_cookie(&out).expect("logout clears the cookie");
    assert_eq!(cleared, "todo_session=");
    assert!(
        line.contains("Max-Age=0") && line.contains("HttpOnly"),
        "{line}"
    );
    // The session ended at the backend too: a copy of the old cookie no longer works.
    let replayed = c
        .get(format!("{fe}/api/auth/me"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);

    let bad = c
        .post(format!("{fe}/api/auth/login"))
        .json(&json!({"email": email, "password": "wrong password!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(
        session_cookie(&bad).is_none(),
        "no cookie for a failed login"
    );
    assert_eq!(error_code(bad).await, "unauthorized");

    let dup = c
        .post(format!("{fe}/api/auth/register"))
        .json(&json!({"email": email, "password": "another password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409, "backend errors pass through unchanged");
    assert!(session_cookie(&dup).is_none());
    assert_eq!(error_code(dup).await, "conflict");

    let ok = c
        .post(format!("{fe}/api/auth/login"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (cookie2, line) = session_cookie(&ok).expect("login sets the cookie");
    assert!(
        !line.contains("Secure"),
        "plain http: no Secure flag: {line}"
    );
    let body: Value = ok.json().await.unwrap();
    assert!(body.get("token").is_none());
    let me = c
        .get(format!("{fe}/api/auth/me"))
        .header(header::COOKIE, &cookie2)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // Behind a TLS-terminating proxy the cookie is Secure, and then `__Host-` prefixed: no
    // subdomain and no plain-http page can set or shadow it.
    let tls = c
        .post(format!("{fe}/api/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(tls.status(), 200);
    let (pair, line) = session_cookie(&tls).expect("login sets the cookie");
    assert!(pair.starts_with("__Host-todo_session="), "{line}");
    assert!(
        line.ends_with("; Secure") && line.contains("Path=/"),
        "{line}"
    );
    assert!(!line.contains("Domain"), "{line}");
    let me = c
        .get(format!("{fe}/api/auth/me"))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the __Host- cookie is a session");
    let out = c
        .post(format!("{fe}/api/auth/logout"))
        .header(header::COOKIE, &pair)
        .send()
        .await
        .unwrap();
    let cleared: Vec<&str> = out
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("__Host-todo_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );

    // Validation errors of the backend (bad JSON) come back as its own JSON, not swallowed.
    let invalid = c
        .post(format!("{fe}/api/auth/register"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(invalid.status().is_client_error(), "{}", invalid.status());
    assert!(!error_code(invalid).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_route_through_the_proxy() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = &stack.frontend.url;
    let c = client();
    let cookie = sign_up(fe, &unique_email("tasks")).await;
    let send = |req: reqwest::RequestBuilder| req.header(header::COOKIE, cookie.clone()).send();

    let created = send(
        c.post(format!("{fe}/api/tasks"))
            .json(&json!({"title": "buy milk", "description": "2 litres"})),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    assert_security_headers(created.headers(), "proxied POST /api/tasks");
    let task: Value = created.json().await.unwrap();
    let id = task["id"].as_i64().expect("task id");
    assert_eq!(task["title"], "buy milk");
    assert_eq!(task["completed"], false);

    let second = send(
        c.post(format!("{fe}/api/tasks"))
            .json(&json!({"title": "call mom"})),
    )
    .await
    .unwrap();
    assert_eq!(second.status(), 201);
    let second_id = second.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    let got = send(c.get(format!("{fe}/api/tasks/{id}"))).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(
        got.json::<Value>().await.unwrap()["description"],
        "2 litres"
    );

    let patched = send(
        c.patch(format!("{fe}/api/tasks/{id}"))
            .json(&json!({"title": "buy oat milk"})),
    )
    .await
    .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(
        patched.json::<Value>().await.unwrap()["title"],
        "buy oat milk"
    );

    let done = send(c.post(format!("{fe}/api/tasks/{id}/complete")))
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["completed"], true);

    let titles = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_string())
            .collect()
    };
    for (status, expected) in [
        ("completed", vec!["buy oat milk"]),
        ("pending", vec!["call mom"]),
        ("all", vec!["call mom", "buy oat milk"]),
    ] {
        let list = send(c.get(format!("{fe}/api/tasks?status={status}")))
            .await
            .unwrap();
        assert_eq!(list.status(), 200);
        let mut got = titles(list.json().await.unwrap());
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "status={status}: the query string reaches the backend"
        );
    }

    let invalid = send(
        c.post(format!("{fe}/api/tasks"))
            .json(&json!({"title": ""})),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), 422);
    assert_eq!(error_code(invalid).await, "validation_failed");

    let deleted = send(c.delete(format!("{fe}/api/tasks/{second_id}")))
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = send(c.get(format!("{fe}/api/tasks/{second_id}")))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(error_code(gone).await, "not_found");

    // Under the frontend's limit but over the backend's: the backend's own 413 comes through.
    let over_backend = send(
        c.post(format!("{fe}/api/tasks"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(vec![b' '; 512 * 1024]),
    )
    .await
    .unwrap();
    assert_eq!(over_backend.status(), 413);
    assert_eq!(error_code(over_backend).await, "payload_too_large");

    // Deleting the account also ends the session in the browser.
    let bye = send(c.delete(format!("{fe}/api/auth/me"))).await.unwrap();
    assert_eq!(bye.status(), 204);
    assert_eq!(
        session_cookie(&bye).expect("cookie cleared").0,
        "todo_session="
    );
    let after = send(c.get(format!("{fe}/api/auth/me"))).await.unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_conversation_history_through_the_proxy() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = &stack.frontend.url;
    let c = client();
    let cookie = sign_up(fe, &unique_email("chat")).await;

    let resp = c
        .post(format!("{fe}/api/chat"))
        .header(header::COOKIE, &cookie)
        .json(&json!({"message": "add buy milk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "POST /api/chat through the proxy");
    let chat: Value = resp.json().await.unwrap();
    let conv = chat["conversation_id"].as_i64().expect("conversation_id");
    assert!(!chat["reply"].as_str().unwrap_or_default().is_empty());
    assert_eq!(chat["actions"][0]["tool"], "add_task", "{chat}");

    let tasks: Value = c
        .get(format!("{fe}/api/tasks?status=all"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["title"].as_str().unwrap_or("").contains("milk")),
        "the chat's task is in the list: {tasks}"
    );

    let messages = c
        .get(format!("{fe}/api/conversations/{conv}/messages"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 200);
    let messages: Value = messages.json().await.unwrap();
    let roles: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert!(
        roles.contains(&"user") && roles.contains(&"assistant"),
        "{messages}"
    );

    let convs = c
        .get(format!("{fe}/api/conversations"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        convs.status(),
        200,
        "GET /api/conversations through the proxy"
    );
    let convs: Value = convs.json().await.unwrap();
    assert!(
        convs.as_array().unwrap().iter().any(|c| c["id"] == conv),
        "{convs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_assets_health_and_security_headers() {
    let Some(stack) = start_stack().await else {
        return;
    };
    let fe = &stack.frontend.url;
    let c = client();

    let index = c.get(format!("{fe}/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_security_headers(index.headers(), "GET /");
    assert_eq!(
        index.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-cache"
    );
    assert!(index.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let etag = index
        .headers()
        .get(header::ETAG)
        .cloned()
        .expect("index ETag");
    let html = index.text().await.unwrap();

    let again = c
        .get(format!("{fe}/"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "revalidation of an unchanged index");

    let mut checked = 0;
    for (prefix, ext, mime) in [
        ("app.", ".js", "text/javascript"),
        ("app.", ".css", "text/css"),
    ] {
        let path = html
            .split('"')
            .find(|s| s.starts_with(&format!("/assets/{prefix}")) && s.ends_with(ext))
            .expect("hashed asset link");
        assert!(
            path.ends_with(ext) && path.len() > "/assets/app..js".len() + 8,
            "{path}"
        );
        let asset = c.get(format!("{fe}{path}")).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_security_headers(asset.headers(), path);
        let cc = asset.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            cc.contains("immutable") && cc.contains("max-age=31536000"),
            "{path}: {cc}"
        );
        assert!(asset.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(mime));
        checked += 1;
    }
    assert_eq!(checked, 2);
    let unknown = c
        .get(format!("{fe}/assets/app.0000.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let health = c.get(format!("{fe}/api/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_security_headers(health.headers(), "/api/health");
    let h: Value = health.json().await.unwrap();
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["backend"]["reachable"], true);
    assert_eq!(h["backend"]["status"], 200);
    assert_eq!(h["backend"]["url"], stack.backend.url.as_str());
    assert!(h["backend"]["latency_ms"].is_u64());
    assert!(h["backend"]["error"].is_null());

    let live = c.get(format!("{fe}/health")).send().await.unwrap();
    assert_eq!(live.status(), 200);

    let too_big = c
        .post(format!("{fe}/api/tasks"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(error_code(too_big).await, "payload_too_large");

    stack
        .frontend
        .stop()
        .await
        .expect("graceful shutdown of the frontend");
}
