//! End-to-end in headless Chromium against the real backend and PostgreSQL: sign up, chat
//! "add buy milk", see the task, complete it from the list, reload and still see the conversation.
//! Screenshots go to target/test-output/ for a person to look at.

mod support;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use support::webdriver::{binaries, test_output, Browser};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// Runs `scenario` in a fresh browser against a fresh stack, closing the browser even when it panics.
async fn with_browser<F, Fut>(width: u32, height: u32, scenario: F)
where
    F: FnOnce(Browser, Stack) -> Fut,
    Fut: std::future::Future<Output = Browser>,
{
    let Some((chromium, driver)) = binaries() else {
        testkit::ci::missing_prerequisite(
            "chromium and chromedriver (Debian packages chromium, chromium-driver)",
        );
        return;
    };
    let Some(stack) = start_stack().await else {
        return;
    };
    let browser = Browser::start(&chromium, &driver, width, height).await;
    // The browser is moved into the scenario; on panic chromedriver is killed on drop (kill_on_drop).
    let outcome = AssertUnwindSafe(scenario(browser, stack))
        .catch_unwind()
        .await;
    match outcome {
        Ok(browser) => browser.close().await,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn sign_up(b: &Browser, url: &str, email: &str) {
    b.goto(url).await;
    b.wait_js(
        "the sign-in form",
        WAIT,
        "return !document.getElementById('auth-view').hidden",
    )
    .await;
    b.click("[data-testid=auth-switch]").await;
    b.wait_js(
        "register mode",
        WAIT,
        "return document.getElementById('auth-submit').textContent === 'Create account'",
    )
    .await;
    b.type_into("#auth-email", email).await;
    b.type_into("#auth-password", "correct horse battery").await;
    b.click("[data-testid=auth-submit]").await;
    b.wait_js(
        "the signed-in view",
        WAIT,
        "return !document.getElementById('app-view').hidden",
    )
    .await;
    let shown = b
        .js("return document.getElementById('user-email').textContent")
        .await;
    assert_eq!(shown, email);
    // HttpOnly: the token is invisible to page scripts.
    let cookies = b.js("return document.cookie").await;
    assert!(
        !cookies.as_str().unwrap_or("").contains("todo_session"),
        "{cookies}"
    );
}

/// The task items' titles and completion, as the page shows them.
const TASKS_JS: &str =
    "return [...document.querySelectorAll('[data-testid=task-item]')].map(li => \
    ({id: li.dataset.taskId, title: li.querySelector('[data-testid=task-title-text]').textContent, \
      done: li.querySelector('[data-testid=task-complete]').checked}))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_adds_a_task_that_is_completed_from_the_list_and_survives_reload() {
    with_browser(1280, 860, |b, stack| async move {
        let url = stack.frontend.url.clone();
        // Used as a whole below (drop at the end), so the async block owns all of it until then.
        let stack = stack;
        let email = unique_email("e2e");
        sign_up(&b, &url, &email).await;
        b.wait_js(
            "the empty task list",
            WAIT,
            "return !document.getElementById('tasks-empty').hidden",
        )
        .await;

        b.type_into("#chat-input", "add buy milk").await;
        b.click("[data-testid=chat-send]").await;
        let reply = b
            .wait_js(
                "the assistant's reply",
                WAIT,
                "const r = document.querySelector('[data-testid=chat-reply]'); return r ? r.innerText : ''",
            )
            .await;
        assert!(!reply.as_str().unwrap_or("").is_empty());
        let actions = b
            .wait_js(
                "the actions the assistant took",
                WAIT,
                "return [...document.querySelectorAll('[data-testid=chat-action]')].map(a => a.textContent).join('|')",
            )
            .await;
        assert!(actions.as_str().unwrap_or("").contains("add task"), "{actions}");

        let item = b
            .wait_js(
                "'buy milk' in the task list",
                WAIT,
                "const t = [...document.querySelectorAll('[data-testid=task-item]')]\
                   .find(li => /buy milk/i.test(li.textContent)); return t ? t.dataset.taskId : ''",
            )
            .await;
        let id = item.as_str().unwrap().to_string();

        // Complete it from the list: it leaves the pending view and shows up as done under "Completed".
        b.click(&format!("[data-task-id='{id}'] [data-testid=task-complete]")).await;
        b.wait_js(
            "the completed task to leave the pending list",
            WAIT,
            &format!("return !document.querySelector(\"[data-task-id='{id}']\")"),
        )
        .await;
        b.click("[data-testid=filter-completed]").await;
        b.wait_js(
            "the task under Completed, checked",
            WAIT,
            &format!(
                "const c = document.querySelector(\"[data-task-id='{id}'] [data-testid=task-complete]\"); \
                 return c ? c.checked : false"
            ),
        )
        .await;

        // Reload: still signed in, and the conversation is loaded again from the server.
        b.refresh().await;
        b.wait_js("the signed-in view after reload", WAIT, "return !document.getElementById('app-view').hidden")
            .await;
        let log = b
            .wait_js(
                "the conversation after reload",
                WAIT,
                "const u = document.querySelector('[data-testid=chat-user]'); \
                 const r = document.querySelector('[data-testid=chat-reply]'); \
                 return u && r ? document.getElementById('chat-log').innerText : ''",
            )
            .await;
        assert!(log.as_str().unwrap().contains("add buy milk"), "{log}");
        let reloaded_actions = b
            .js("return [...document.querySelectorAll('[data-testid=chat-action]')].map(a => a.textContent).join('|')")
            .await;
        assert!(
            reloaded_actions.as_str().unwrap().contains("add task: buy milk"),
            "the actions are restored with the conversation: {reloaded_actions}"
        );

        // A second task through the chat, for a screenshot with both states visible.
        b.type_into("#chat-input", "add call the plumber").await;
        b.click("[data-testid=chat-send]").await;
        b.wait_js(
            "a second reply",
            WAIT,
            "return document.querySelectorAll('[data-testid=chat-reply]').length >= 2",
        )
        .await;
        b.click("[data-testid=filter-all]").await;
        b.wait_js(
            "both tasks under All",
            WAIT,
            "return document.querySelectorAll('[data-testid=task-item]').length >= 2",
        )
        .await;

        let console = b.console().await;
        let bad: Vec<_> = console
            .iter()
            .filter(|(_, m)| m.contains("Content Security Policy") || m.contains("Uncaught"))
            .collect();
        assert!(bad.is_empty(), "CSP violations or script errors: {bad:?}");

        b.screenshot(&test_output("ui-e2e.png")).await;
        b.resize(390, 844).await;
        b.wait_js("single-column layout at phone width", WAIT,
            "const w = document.querySelector('.workspace'); \
             return getComputedStyle(w).gridTemplateColumns.split(' ').length === 1").await;
        b.screenshot(&test_output("ui-e2e-phone.png")).await;
        drop(stack);
        b
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_list_add_edit_delete_filter_and_sign_out() {
    with_browser(1280, 860, |b, stack| async move {
        let url = stack.frontend.url.clone();
        // Used as a whole below (drop at the end), so the async block owns all of it until then.
        let stack = stack;
        let email = unique_email("e2e-tasks");
        sign_up(&b, &url, &email).await;

        for title in ["water the plants", "pay rent"] {
            b.type_into("#task-title", title).await;
            b.type_into("#task-title", "\u{E007}").await; // Enter submits the form
            b.wait_js(
                "the new task",
                WAIT,
                &format!("return document.getElementById('task-list').textContent.includes('{title}')"),
            )
            .await;
        }
        let tasks = b.js(TASKS_JS).await;
        assert_eq!(tasks.as_array().unwrap().len(), 2, "{tasks}");

        // Edit the first task's title.
        let id = tasks[0]["id"].as_str().unwrap().to_string();
        b.click(&format!("[data-task-id='{id}'] [data-testid=task-edit]")).await;
        b.js("const i = document.querySelector('[data-testid=task-edit-input]'); i.value = ''; return true")
            .await;
        b.type_into("[data-testid=task-edit-input]", "water the cactus").await;
        b.click("[data-testid=task-save]").await;
        b.wait_js(
            "the edited title",
            WAIT,
            "return document.getElementById('task-list').textContent.includes('water the cactus')",
        )
        .await;

        b.screenshot(&test_output("ui-tasks.png")).await;

        // Delete the other one.
        let other = tasks[1]["id"].as_str().unwrap().to_string();
        b.click(&format!("[data-task-id='{other}'] [data-testid=task-delete]")).await;
        b.wait_js(
            "the deleted task to disappear",
            WAIT,
            &format!("return !document.querySelector(\"[data-task-id='{other}']\")"),
        )
        .await;

        // Empty state under Completed.
        b.click("[data-testid=filter-completed]").await;
        b.wait_js("the empty state", WAIT, "return !document.getElementById('tasks-empty').hidden")
            .await;
        let pressed = b
            .js("return document.querySelector('[data-testid=filter-completed]').getAttribute('aria-pressed')")
            .await;
        assert_eq!(pressed, "true");

        // Sign out: back to the form, and a reload stays signed out.
        b.click("[data-testid=sign-out]").await;
        b.wait_js("the sign-in form", WAIT, "return !document.getElementById('auth-view').hidden")
            .await;
        b.refresh().await;
        b.wait_js("the sign-in form after reload", WAIT, "return !document.getElementById('auth-view').hidden")
            .await;
        let err = b.js("return document.getElementById('auth-error').hidden").await;
        assert_eq!(err, true, "a deliberate sign-out is not reported as an expired session");

        // Sign in again with the same account.
        b.type_into("#auth-email", &email).await;
        b.type_into("#auth-password", "correct horse battery").await;
        b.click("[data-testid=auth-submit]").await;
        b.wait_js("signed in again", WAIT, "return !document.getElementById('app-view').hidden")
            .await;
        b.wait_js(
            "the edited task is still there",
            WAIT,
            "return document.getElementById('task-list').textContent.includes('water the cactus')",
        )
        .await;

        // A stored conversation that no longer exists: the page starts a new one instead of failing.
        b.wait_js(
            "a stale conversation id in localStorage",
            WAIT,
            "return fetch('/api/auth/me').then(r => r.json()).then(u => { \
               localStorage.setItem('todo_conversation:' + u.id, '987654321'); return true; })",
        )
        .await;
        b.refresh().await;
        b.wait_js("the signed-in view", WAIT, "return !document.getElementById('app-view').hidden")
            .await;
        b.type_into("#chat-input", "add repot the cactus\u{E007}").await;
        b.wait_js(
            "a reply in a new conversation",
            WAIT,
            "return !!document.querySelector('[data-testid=chat-reply]') && \
               !document.querySelector('[data-testid=chat-error]')",
        )
        .await;

        // The session ends behind the page's back (account deleted elsewhere): the next action says so.
        b.js("fetch('/api/auth/me', {method: 'DELETE'}); return true").await;
        b.wait_js(
            "the account deletion",
            WAIT,
            "return fetch('/api/auth/me').then(r => r.status === 401)",
        )
        .await;
        b.type_into("#task-title", "one more\u{E007}").await;
        let message = b
            .wait_js(
                "the session-expired message",
                WAIT,
                "const e = document.getElementById('auth-error'); \
                 return !document.getElementById('auth-view').hidden && !e.hidden ? e.textContent : ''",
            )
            .await;
        assert!(
            message.as_str().unwrap().to_lowercase().contains("session expired"),
            "{message}"
        );
        drop(stack);
        b
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_outage_shows_errors_with_retry_that_recover() {
    with_browser(1280, 860, |b, stack| async move {
        let Stack {
            backend,
            frontend,
            database_url,
        } = stack;
        sign_up(&b, &frontend.url, &unique_email("e2e-outage")).await;
        b.type_into("#task-title", "survive the outage\u{E007}").await;
        b.wait_js(
            "the new task",
            WAIT,
            "return document.getElementById('task-list').textContent.includes('survive the outage')",
        )
        .await;

        let addr = backend.addr;
        backend.stop().await.expect("backend stops");

        // Task list: an error state with Retry instead of a silent or stale list.
        b.click("[data-testid=filter-all]").await;
        let error = b
            .wait_js(
                "the task-list error state",
                WAIT,
                "const e = document.getElementById('tasks-error'); return e.hidden ? '' : e.textContent",
            )
            .await;
        assert!(
            error.as_str().unwrap().contains("unavailable"),
            "{error}"
        );
        // Chat: the message stays visible with an error bubble and Retry.
        b.type_into("#chat-input", "add buy milk").await;
        b.click("[data-testid=chat-send]").await;
        b.wait_js(
            "the chat error with Retry",
            WAIT,
            "return !!document.querySelector('[data-testid=chat-error] [data-testid=chat-retry]')",
        )
        .await;
        b.screenshot(&test_output("ui-backend-down.png")).await;

        // The backend comes back on the same address; Retry recovers both panels.
        let backend = start_backend_at(addr, &database_url).await;
        b.click("[data-testid=tasks-retry]").await;
        b.wait_js(
            "the list after Retry",
            WAIT,
            "return document.getElementById('tasks-error').hidden && \
             document.getElementById('task-list').textContent.includes('survive the outage')",
        )
        .await;
        b.click("[data-testid=chat-retry]").await;
        b.wait_js(
            "the reply after Retry",
            WAIT,
            "return !document.querySelector('[data-testid=chat-error]') && \
             !!document.querySelector('[data-testid=chat-reply]')",
        )
        .await;
        b.wait_js(
            "the chat's task in the list",
            WAIT,
            "return document.getElementById('task-list').textContent.includes('buy milk')",
        )
        .await;
        drop((backend, frontend));
        b
    })
    .await;
}

/// Polls WebDriver (not page script, which is off) until the page's address satisfies `ok`.
async fn wait_url(b: &Browser, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let url = b.current_url().await;
        if ok(&url) {
            return url;
        }
        assert!(start.elapsed() < WAIT, "{what}: still at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_form_works_without_javascript_and_never_puts_the_password_in_a_url() {
    let Some((chromium, driver)) = binaries() else {
        testkit::ci::missing_prerequisite(
            "chromium and chromedriver (Debian packages chromium, chromium-driver)",
        );
        return;
    };
    let Some(stack) = start_stack().await else {
        return;
    };
    let url = stack.frontend.url.clone();
    let email = unique_email("nojs");
    support::sign_up(&url, &email).await;
    let b = Browser::start_with(&chromium, &driver, 1024, 768, false).await;
    let outcome = AssertUnwindSafe(async {
        // A wrong password first: back on the page, the reason in the fragment, no secret anywhere.
        b.goto(&url).await;
        assert!(
            b.displayed("#auth-form").await,
            "the form shows without script"
        );
        b.type_into("#auth-email", &email).await;
        b.type_into("#auth-password", "not the password").await;
        b.click("[data-testid=auth-submit]").await;
        let refused = wait_url(&b, "the refused sign-in", |u| u.contains("#auth-error=")).await;
        assert!(refused.ends_with("/#auth-error=unauthorized"), "{refused}");
        assert!(!refused.contains("password"), "{refused}");
        assert!(!b
            .cookie_names()
            .await
            .iter()
            .any(|c| c.contains("todo_session")));

        b.goto(&url).await;
        b.type_into("#auth-email", &email).await;
        b.type_into("#auth-password", "correct horse battery").await;
        b.click("[data-testid=auth-submit]").await;
        // The page was at / already: the session cookie, not the address, says the post went through.
        let start = std::time::Instant::now();
        while !b.cookie_names().await.iter().any(|c| c == "todo_session") {
            assert!(
                start.elapsed() < WAIT,
                "no session cookie after the form post"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let signed_in = wait_url(&b, "the page again", |u| u.trim_end_matches('/') == url).await;
        assert!(
            !signed_in.contains("correct") && !signed_in.contains('?'),
            "{signed_in}"
        );
    })
    .catch_unwind()
    .await;
    b.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_task_list_loads_page_by_page() {
    with_browser(1280, 860, |b, stack| async move {
        let url = stack.frontend.url.clone();
        let stack = stack;
        let email = unique_email("pages");
        let cookie = support::sign_up(&url, &email).await;
        let c = client();
        for i in 0..60 {
            let resp = c
                .post(format!("{url}/api/tasks"))
                .header(reqwest::header::COOKIE, &cookie)
                .json(&serde_json::json!({"title": format!("errand {i:02}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201);
        }
        b.goto(&url).await;
        b.wait_js(
            "the sign-in form",
            WAIT,
            "return !document.getElementById('auth-view').hidden",
        )
        .await;
        b.type_into("#auth-email", &email).await;
        b.type_into("#auth-password", "correct horse battery").await;
        b.click("[data-testid=auth-submit]").await;
        b.wait_js(
            "the signed-in view",
            WAIT,
            "return !document.getElementById('app-view').hidden",
        )
        .await;
        b.click("[data-testid=filter-all]").await;
        let count = "return document.querySelectorAll('[data-testid=task-item]').length";
        b.wait_js("the first page of tasks", WAIT, &format!("{count} === 50"))
            .await;
        let first = b.js(TASKS_JS).await;
        assert_eq!(first[0]["title"], "errand 59", "newest first: {first}");
        assert!(b.displayed("[data-testid=tasks-more]").await);
        b.click("[data-testid=tasks-more]").await;
        b.wait_js("all 60 tasks", WAIT, &format!("{count} === 60"))
            .await;
        b.wait_js(
            "no more to load",
            WAIT,
            "return document.getElementById('tasks-more').hidden",
        )
        .await;
        let all = b.js(TASKS_JS).await;
        assert_eq!(all[59]["title"], "errand 00", "{all}");
        drop(stack);
        b
    })
    .await;
}
