//! Test harness: the real backend (on a fresh PostgreSQL database) and the frontend, both in-process,
//! plus small HTTP helpers. Shared by the proxy and browser tests.
#![allow(dead_code)]

pub mod webdriver;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in this process until dropped (or stopped explicitly).
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), String>>>,
}

impl Running {
    /// Asks the server to shut down and waits until `serve` has returned.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .map_err(|_| "server did not stop within 30 s".to_string())?
                .map_err(|e| format!("server task panicked: {e}"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn spawn<F, Fut, E>(addr: SocketAddr, run: F) -> Running
where
    F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let listener = TcpListener::bind(addr).await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel();
    let fut = run(listener, rx);
    let task = tokio::spawn(async move { fut.await.map_err(|e| e.to_string()) });
    Running {
        url: format!("http://{addr}"),
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&'static str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

/// Starts the frontend pointing at `backend_url`, with extra environment entries.
pub async fn start_frontend(backend_url: &str, extra: &[(&'static str, &str)]) -> Running {
    let mut env = vec![("BACKEND_URL", backend_url.to_string())];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let config = frontend::Config::from_lookup(lookup(env)).expect("frontend config");
    spawn(any_port(), |listener, rx| async move {
        frontend::serve(config, listener, async move {
            let _ = rx.await;
        })
        .await
    })
    .await
}

/// A fresh database on the shared test PostgreSQL; `None` when PostgreSQL is missing outside CI.
pub async fn fresh_database() -> Option<String> {
    let db = tokio::task::spawn_blocking(testkit::pg::TestDb::shared_or_skip)
        .await
        .expect("TestDb task")?;
    let url = tokio::task::spawn_blocking(move || db.fresh_database())
        .await
        .expect("fresh_database task")
        .expect("create a fresh database");
    Some(url)
}

/// Starts the real backend on a fresh database and waits until `/ready` says so.
/// `None` when PostgreSQL is missing outside CI (the caller returns: the test is skipped).
pub async fn start_backend() -> Option<Running> {
    let database_url = fresh_database().await?;
    Some(start_backend_at(any_port(), &database_url).await)
}

/// Starts the real backend on `addr` (port 0: any free one) over `database_url`; waits for `/ready`.
pub async fn start_backend_at(addr: SocketAddr, database_url: &str) -> Running {
    start_backend_with(addr, database_url, &[]).await
}

/// [`start_backend_at`] with extra (or overriding) backend environment entries.
pub async fn start_backend_with(
    addr: SocketAddr,
    database_url: &str,
    extra: &[(&'static str, &str)],
) -> Running {
    let mut env = vec![
        ("DATABASE_URL", database_url.to_string()),
        // A fixed test-only key; real deployments take it from a Secret.
        (
            "AUTH_SECRET",
            "frontend-tests-auth-secret-0123456789abcdef".to_string(),
        ),
        ("LOG_LEVEL", "warn".to_string()),
        // Every test signs up from 127.0.0.1: lift the sign-in limits (their own tests are the backend's).
        ("AUTH_RATE_PER_ADDRESS", "1000000".to_string()),
        ("AUTH_RATE_PER_ADDRESS_EMAIL", "1000000".to_string()),
        ("HASH_QUEUE", "10000".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let config = backend::Config::from_lookup(lookup(env)).expect("backend config");
    let running = spawn(addr, |listener, rx| async move {
        backend::serve(config, listener, async move {
            let _ = rx.await;
        })
        .await
    })
    .await;
    let client = reqwest::Client::new();
    let ready = format!("{}/ready", running.url);
    poll_until(Duration::from_secs(60), "backend /ready", || {
        let client = client.clone();
        let ready = ready.clone();
        async move { matches!(client.get(&ready).send().await, Ok(r) if r.status() == 200) }
    })
    .await;
    running
}

/// The backend and the frontend in front of it.
pub struct Stack {
    /// The real backend.
    pub backend: Running,
    /// The frontend proxying to it.
    pub frontend: Running,
    /// The backend's database, to start it again after a simulated outage.
    pub database_url: String,
}

/// Starts backend + frontend; `None` when PostgreSQL is missing outside CI.
pub async fn start_stack() -> Option<Stack> {
    start_stack_with(&[], &[]).await
}

/// [`start_stack`] with extra backend and frontend environment entries.
pub async fn start_stack_with(
    backend_env: &[(&'static str, &str)],
    frontend_env: &[(&'static str, &str)],
) -> Option<Stack> {
    let database_url = fresh_database().await?;
    let backend = start_backend_with(any_port(), &database_url, backend_env).await;
    let frontend = start_frontend(&backend.url, frontend_env).await;
    Some(Stack {
        backend,
        frontend,
        database_url,
    })
}

/// Polls `check` until it returns true, panicking after `deadline`.
pub async fn poll_until<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{what}: not reached within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP client that neither follows redirects nor keeps cookies: tests see exactly what the server sends.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

/// The `todo_session=<value>` (or `__Host-todo_session=<value>`) pair of a response's Set-Cookie,
/// with the full header line.
pub fn session_cookie(resp: &reqwest::Response) -> Option<(String, String)> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("todo_session=") || v.starts_with("__Host-todo_session="))
        .map(|line| {
            let pair = line.split(';').next().unwrap_or("").to_string();
            (pair, line.to_string())
        })
}

/// A unique e-mail address per call, so tests never collide.
pub fn unique_email(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{nanos}-{}@example.com",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Registers through the frontend and returns the `todo_session=...` cookie pair.
pub async fn sign_up(frontend: &str, email: &str) -> String {
    let resp = client()
        .post(format!("{frontend}/api/auth/register"))
        .json(&serde_json::json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .expect("register request");
    assert_eq!(resp.status(), 201, "register through the frontend");
    session_cookie(&resp)
        .expect("register sets the session cookie")
        .0
}

use testkit::raw_http::{read_answer, Seen};

/// Sends `request` as is on a fresh connection to `addr` and returns what came back.
pub async fn raw_request(addr: SocketAddr, request: &str) -> Seen {
    use tokio::io::AsyncWriteExt;
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(request.as_bytes()).await.expect("send");
    read_answer(&mut conn, Duration::from_secs(60)).await
}
