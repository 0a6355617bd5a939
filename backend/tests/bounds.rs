//! Bounded work per user: every list is paged (`limit`, `cursor` -> `X-Next-Cursor`), per-user
//! caps answer 409 `limit_reached` with nothing written, and a chat over 5,000 tasks answers and
//! stores a bounded amount.

mod common;

use common::{assert_error, spawn_app_with, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Follows `X-Next-Cursor` from `first` to the end; returns the pages' items.
async fn all_pages(app: &TestApp, token: &str, first: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = first.to_string();
    loop {
        let resp = app.call(Method::GET, &url, Some(token), None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let next = resp
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        let body: Value = resp.json().await.unwrap();
        pages.push(body.as_array().expect("a page is a JSON array").clone());
        match next {
            Some(cursor) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                url = format!("{first}{sep}cursor={cursor}");
            }
            None => return pages,
        }
        assert!(pages.len() < 100, "paging never ended");
    }
}

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|i| i["id"].as_i64().unwrap()).collect()
}

async fn insert_tasks(app: &TestApp, email: &str, n: i64) {
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    sqlx::query(
        "INSERT INTO tasks (user_id, title, description)
         SELECT u.id, 'errand number ' || g, 'a description that is not short: ' || repeat('x', 100)
         FROM users u, generate_series(1, $2) g WHERE u.email = $1",
    )
    .bind(email)
    .bind(n)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn task_lists_are_paged_newest_first_with_a_cursor() {
    let Some(app) = spawn_app_with(&[]).await else {
        return;
    };
    let email = "pages@example.com";
    let token = app.register(email).await;
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(
            app.create_task(&token, &format!("task {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    app.call(
        Method::POST,
        &format!("/api/tasks/{}/complete", created[2]),
        Some(&token),
        None,
    )
    .await;
    let pages = all_pages(&app, &token, "/api/tasks?limit=3").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    let seen: Vec<i64> = pages.iter().flat_map(|p| ids(p)).collect();
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let pending: Vec<i64> = all_pages(&app, &token, "/api/tasks?status=pending&limit=2")
        .await
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    assert_eq!(pending.len(), 6);
    assert!(!pending.contains(&created[2]));

    insert_tasks(&app, email, 300).await;
    let (status, first) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first.as_array().unwrap().len(), 50, "default page size");
    let (_, most) = app
        .json(Method::GET, "/api/tasks?limit=200", Some(&token), None)
        .await;
    assert_eq!(most.as_array().unwrap().len(), 200);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=x",
        "cursor=abc",
        "cursor=-5",
    ] {
        let (s, b) = app
            .json(
                Method::GET,
                &format!("/api/tasks?{bad}"),
                Some(&token),
                None,
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
    }
}

#[tokio::test]
async fn conversations_and_messages_are_paged() {
    let Some(app) = spawn_app_with(&[]).await else {
        return;
    };
    let token = app.register("chats@example.com").await;
    let mut conversations = Vec::new();
    for i in 0..3 {
        let (s, b) = app
            .json(
                Method::POST,
                "/api/chat",
                Some(&token),
                Some(json!({"message": format!("add thing {i}")})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        conversations.push(b["conversation_id"].as_i64().unwrap());
    }
    let listed: Vec<i64> = all_pages(&app, &token, "/api/conversations?limit=2")
        .await
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    assert_eq!(
        listed,
        conversations.iter().rev().copied().collect::<Vec<_>>()
    );
    // Two more turns in the first: it becomes the most recently active.
    let first = conversations[0];
    for msg in ["add more", "what's on my list"] {
        let (s, _) = app
            .json(
                Method::POST,
                "/api/chat",
                Some(&token),
                Some(json!({"message": msg, "conversation_id": first})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, top) = app
        .json(
            Method::GET,
            "/api/conversations?limit=1",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(ids(top.as_array().unwrap()), [first]);
    // 3 turns of user, tool, assistant: 9 messages; pages of 4 go back in time, each in order.
    let path = format!("/api/conversations/{first}/messages?limit=4");
    let pages = all_pages(&app, &token, &path).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
    for page in &pages {
        let ids = ids(page);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "oldest first within a page: {ids:?}"
        );
    }
    assert!(
        ids(&pages[1]).last() < ids(&pages[0]).first(),
        "the cursor goes back in time"
    );
    assert_eq!(pages[0].last().unwrap()["role"], "assistant");
    assert_eq!(pages[2][0]["role"], "user");
    let (s, b) = app
        .json(
            Method::GET,
            &format!("/api/conversations/{first}/messages?limit=500"),
            Some(&token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bad_request");
}

#[tokio::test]
async fn the_task_cap_holds_under_concurrent_creates_and_through_the_chat() {
    let Some(app) = spawn_app_with(&[("MAX_TASKS_PER_USER", "5")]).await else {
        return;
    };
    let token = app.register("capped@example.com").await;
    let creates = (0..12).map(|i| {
        let client = app.client.clone();
        let url = app.url("/api/tasks");
        let token = token.clone();
        async move {
            let resp = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"title": format!("t{i}")}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    });
    let results = futures_util::future::join_all(creates).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5, "{results:?}");
    for (s, b) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        let message = assert_error(*s, b, StatusCode::CONFLICT, "limit_reached");
        assert!(message.contains('5'), "{message}");
    }
    let (s, chat) = app
        .json(
            Method::POST,
            "/api/chat",
            Some(&token),
            Some(json!({"message": "add one too many"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{chat}");
    assert_eq!(
        chat["actions"][0]["result"]["error"]["code"], "limit_reached",
        "{chat}"
    );
    let (_, list) = app
        .json(Method::GET, "/api/tasks?limit=200", Some(&token), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 5);
    // Deleting one makes room for one (the count is kept by a trigger).
    let victim = list[0]["id"].as_i64().unwrap();
    let resp = app
        .call(
            Method::DELETE,
            &format!("/api/tasks/{victim}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.create_task(&token, "in the freed place").await;
    let (s, b) = app
        .json(
            Method::POST,
            "/api/tasks",
            Some(&token),
            Some(json!({"title": "over again"})),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "limit_reached");
    // Another user has a cap of their own.
    let other = app.register("uncapped@example.com").await;
    app.create_task(&other, "mine").await;
}

#[tokio::test]
async fn conversation_and_message_caps_refuse_before_anything_runs() {
    let Some(app) = spawn_app_with(&[
        ("MAX_CONVERSATIONS_PER_USER", "2"),
        ("MAX_MESSAGES_PER_CONVERSATION", "4"),
    ])
    .await
    else {
        return;
    };
    let token = app.register("talker@example.com").await;
    let chat = |body: Value| app.json(Method::POST, "/api/chat", Some(&token), Some(body));
    let (_, a) = chat(json!({"message": "add first"})).await;
    let first = a["conversation_id"].as_i64().unwrap();
    let (s, _) = chat(json!({"message": "add second"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = chat(json!({"message": "add third"})).await;
    assert_error(s, &b, StatusCode::CONFLICT, "limit_reached");
    let (s, _) = chat(json!({"message": "add fourth", "conversation_id": first})).await;
    assert_eq!(s, StatusCode::OK, "2 + 2 messages fit");
    let (s, b) = chat(json!({"message": "add fifth", "conversation_id": first})).await;
    assert_error(s, &b, StatusCode::CONFLICT, "limit_reached");
    // Nothing of the refused messages happened: no task added, no message stored.
    let (_, tasks) = app
        .json(Method::GET, "/api/tasks", Some(&token), None)
        .await;
    let titles: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(titles, ["fourth", "second", "first"]);
    let (_, messages) = app
        .json(
            Method::GET,
            &format!("/api/conversations/{first}/messages"),
            Some(&token),
            None,
        )
        .await;
    assert!(messages
        .as_array()
        .unwrap()
        .iter()
        .all(|m| !m["content"].as_str().unwrap().contains("fifth")));
    let (_, conversations) = app
        .json(Method::GET, "/api/conversations", Some(&token), None)
        .await;
    assert_eq!(conversations.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn whats_on_my_list_with_5000_tasks_answers_and_stores_a_bounded_amount() {
    let Some(app) = spawn_app_with(&[]).await else {
        return;
    };
    let email = "busy@example.com";
    let token = app.register(email).await;
    insert_tasks(&app, email, 5000).await;
    let (s, b) = app
        .json(
            Method::POST,
            "/api/chat",
            Some(&token),
            Some(json!({"message": "what's on my list"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let reply = b["reply"].as_str().unwrap();
    assert!(reply.starts_with("You have 5000 tasks"), "{reply}");
    assert!(reply.contains("and 4980 more"), "{reply}");
    assert!(reply.len() < 8 * 1024, "reply of {} bytes", reply.len());
    assert!(
        b.to_string().len() < 24 * 1024,
        "answer of {} bytes",
        b.to_string().len()
    );
    let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar(
        "SELECT sum(length(content))::bigint FROM messages WHERE conversation_id = $1",
    )
    .bind(b["conversation_id"].as_i64().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        stored < 24 * 1024,
        "stored {stored} characters for one turn"
    );
    // Naming one of them still works: matching covers every title, not just the first page.
    let (s, done) = app
        .json(
            Method::POST,
            "/api/chat",
            Some(&token),
            Some(json!({"message": "mark errand number 7 as done"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert!(
        done["reply"].as_str().unwrap().contains("errand number 7"),
        "{done}"
    );
}
