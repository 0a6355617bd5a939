//! Benchmark: the release backend, with its default limits, against a real PostgreSQL of its own,
//! under the abuse issue 14 is about. Prints:
//! - a real user's login latency alone, during a wrong-password flood from one address, and during
//!   one spread over thousands of addresses, with what the flood got back (401/429/503);
//! - `/health` requests per second (wrk) alone and while thousands of slow sockets are held open,
//!   and how many of those the server had closed after its header read timeout;
//! - the size of the chat reply and of what was stored for "what's on my list" with 5,000 tasks,
//!   next to the size the whole listing would have been;
//! - what a request loop got while PostgreSQL restarted (fast shutdown) and crashed (immediate):
//!   2xx, 503, 500, other answers and connection errors, and how long until the first success.
//!
//! Expects `cargo build --release -p backend`; needs `wrk` and PostgreSQL's binaries.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::pg::TestDb;

use crate::support::{find_on_path, http_request, parse_wrk_duration, release_binary};

const AUTH_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const PASSWORD: &str = "the real password";
const FLOOD_THREADS: usize = 32;
const FLOOD_SECONDS: u64 = 8;
const SLOW_SOCKETS: usize = 3000;

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let binary = release_binary("todo-backend", "backend")?;
    let wrk = find_on_path("wrk").ok_or("wrk not found on PATH (apt-get install wrk)")?;
    // A server of its own: this benchmark stops and crashes it.
    let db = TestDb::local()?;
    let url = db.fresh_database()?;
    let dbname = url.rsplit('/').next().unwrap_or_default().to_string();
    let backend = Backend::start(&binary, &url)?;
    println!();
    println!(
        "abuse benchmark: release backend with its default limits, PostgreSQL on this machine"
    );
    println!(
        "(flood and load generators share the machine's cores with the backend and PostgreSQL)"
    );

    sign_in_under_flood(&backend)?;
    slow_sockets(&backend, &wrk)?;
    chat_with_5000_tasks(&backend, &db, &dbname)?;
    database_restarts(&backend, &db)?;
    backend.stop();
    Ok(())
}

struct Backend {
    child: Child,
    addr: SocketAddr,
}

impl Backend {
    fn start(binary: &Path, db_url: &str) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let child = Command::new(binary)
            .env_clear()
            .env("DATABASE_URL", db_url)
            .env("AUTH_SECRET", AUTH_SECRET)
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let backend = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(backend.get("/ready", &[]), Ok((200, _))) {
            if Instant::now() > deadline {
                return Err("backend not ready within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(backend)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn get(&self, path: &str, headers: &[&str]) -> Result<(u16, String), String> {
        http_request(self.addr, "GET", path, headers, "")
    }

    fn post(&self, path: &str, headers: &[&str], body: &str) -> Result<(u16, String), String> {
        http_request(self.addr, "POST", path, headers, body)
    }

    /// A sign-in from client address `from` (the backend trusts loopback's X-Forwarded-For).
    fn sign_in(
        &self,
        path: &str,
        from: &str,
        email: &str,
        password: &str,
    ) -> Result<(u16, String), String> {
        let xff = format!("X-Forwarded-For: {from}");
        let body = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        self.post(path, &[&xff], &body)
    }
}

fn token_of(answer: &str) -> Result<String, String> {
    answer
        .split_once("\"token\":\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .map(str::to_string)
        .ok_or_else(|| format!("no token in {answer}"))
}

/// Latency summary of a set of timed logins: count, p50, max (ms), and how many did not succeed.
fn summary(samples: &[(Duration, u16)]) -> String {
    let mut ms: Vec<f64> = samples
        .iter()
        .map(|(d, _)| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let failed = samples.iter().filter(|(_, s)| *s != 200).count();
    if ms.is_empty() {
        return "no samples".into();
    }
    format!(
        "{:>3} logins  p50 {:>7.1} ms  max {:>7.1} ms  not 200: {failed}",
        ms.len(),
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

fn sign_in_under_flood(backend: &Backend) -> Result<(), String> {
    let email = "real-user@example.com";
    let (status, _) = backend.sign_in("/api/auth/register", "198.51.100.1", email, PASSWORD)?;
    if status != 201 {
        return Err(format!("register the real user: HTTP {status}"));
    }
    // Each real login from an address of its own: the user is not the one being throttled.
    let next_real = AtomicU64::new(0);
    let real_login = || -> Result<(Duration, u16), String> {
        let n = next_real.fetch_add(1, Ordering::Relaxed);
        let from = format!("198.51.{}.{}", 101 + n / 250, 1 + n % 250);
        let started = Instant::now();
        let (status, _) = backend.sign_in("/api/auth/login", &from, email, PASSWORD)?;
        Ok((started.elapsed(), status))
    };
    let mut alone = Vec::new();
    for _ in 0..10 {
        alone.push(real_login()?);
        std::thread::sleep(Duration::from_millis(100));
    }
    println!();
    println!("sign-in: a real user's login ({FLOOD_THREADS} flood threads of wrong-password logins for the same e-mail, {FLOOD_SECONDS} s)");
    println!("  {:<34} {}", "no flood", summary(&alone));
    for (label, spread) in [
        ("flood from one address", false),
        ("flood from a new address each time", true),
    ] {
        let stop = AtomicBool::new(false);
        let counts: Mutex<[u64; 5]> = Mutex::new([0; 5]); // 401, 429, 503, other, connection errors
        let samples = std::thread::scope(|s| -> Result<Vec<(Duration, u16)>, String> {
            for t in 0..FLOOD_THREADS {
                let (stop, counts) = (&stop, &counts);
                s.spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let from = if spread {
                            format!("10.{}.{}.{}", t, (i / 250) % 250, 1 + i % 250)
                        } else {
                            "203.0.113.66".to_string()
                        };
                        let slot =
                            match backend.sign_in("/api/auth/login", &from, email, "a wrong guess")
                            {
                                Ok((401, _)) => 0,
                                Ok((429, _)) => 1,
                                Ok((503, _)) => 2,
                                Ok(_) => 3,
                                Err(_) => 4,
                            };
                        if let Ok(mut c) = counts.lock() {
                            c[slot] += 1;
                        }
                    }
                });
            }
            let started = Instant::now();
            let mut samples = Vec::new();
            // Let the flood build up first.
            std::thread::sleep(Duration::from_millis(500));
            while started.elapsed() < Duration::from_secs(FLOOD_SECONDS) {
                samples.push(real_login()?);
                std::thread::sleep(Duration::from_millis(250));
            }
            stop.store(true, Ordering::Relaxed);
            Ok(samples)
        })?;
        let c = counts.lock().map(|c| *c).unwrap_or_default();
        println!("  {label:<34} {}", summary(&samples));
        println!(
            "  {:<34} {} flood requests: 401 {}, 429 {}, 503 {}, other {}, connection errors {}",
            "",
            c.iter().sum::<u64>(),
            c[0],
            c[1],
            c[2],
            c[3],
            c[4]
        );
    }
    Ok(())
}

/// wrk against `/health` for 5 s with 8 connections; requests per second and p99.
fn health_load(backend: &Backend, wrk: &Path) -> Result<(f64, f64, String), String> {
    let out = Command::new(wrk)
        .args(["-t", "2", "-c", "8", "-d", "5s", "--latency"])
        .arg(format!("http://{}/health", backend.addr))
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_wrk_duration(v.trim()))
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Ok((rps, p99, errors))
}

fn slow_sockets(backend: &Backend, wrk: &Path) -> Result<(), String> {
    let (alone_rps, alone_p99, alone_err) = health_load(backend, wrk)?;
    // Slowloris: each socket sends the start of a request head, then one header line a second.
    let mut sockets = Vec::with_capacity(SLOW_SOCKETS);
    for _ in 0..SLOW_SOCKETS {
        let mut s = TcpStream::connect(backend.addr).map_err(|e| format!("slow socket: {e}"))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: bench\r\n")
            .map_err(|e| format!("slow socket: {e}"))?;
        let _ = s.set_nonblocking(true);
        sockets.push(s);
    }
    let opened = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicU64::new(0));
    let trickler = {
        let (stop, closed) = (stop.clone(), closed.clone());
        std::thread::spawn(move || {
            let mut open: Vec<Option<TcpStream>> = sockets.into_iter().map(Some).collect();
            while !stop.load(Ordering::Relaxed) {
                for slot in open.iter_mut() {
                    let gone = match slot {
                        Some(s) => {
                            matches!(s.write(b"X-a: b\r\n"), Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
                        }
                        None => false,
                    };
                    if gone {
                        *slot = None;
                        closed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let (held_rps, held_p99, held_err) = health_load(backend, wrk)?;
    // Past the 10 s header read timeout (plus a trickle round): how many did the server close?
    let wait = Duration::from_secs(13).saturating_sub(opened.elapsed());
    std::thread::sleep(wait);
    let closed_after = closed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = trickler.join();
    println!();
    println!("slow clients: GET /health with wrk (2 threads, 8 connections, 5 s)");
    println!(
        "  {:<44} {alone_rps:>8.0} req/s  p99 {alone_p99:.2} ms {alone_err}",
        "alone"
    );
    println!(
        "  {:<44} {held_rps:>8.0} req/s  p99 {held_p99:.2} ms {held_err}",
        format!("with {SLOW_SOCKETS} slow sockets held open")
    );
    println!(
        "  slow sockets closed by the server 13 s after opening (header read timeout 10 s): {closed_after} of {SLOW_SOCKETS}"
    );
    Ok(())
}

fn chat_with_5000_tasks(backend: &Backend, db: &TestDb, dbname: &str) -> Result<(), String> {
    let email = "busy-user@example.com";
    let (status, answer) =
        backend.sign_in("/api/auth/register", "198.51.100.200", email, PASSWORD)?;
    if status != 201 {
        return Err(format!("register: HTTP {status}"));
    }
    let token = token_of(&answer)?;
    db.psql_in(
        dbname,
        &format!(
            "INSERT INTO tasks (user_id, title, description) \
             SELECT u.id, 'errand number ' || g, 'details of errand ' || g FROM users u, generate_series(1, 5000) g \
             WHERE u.email = '{email}'"
        ),
    )?;
    let auth = format!("Authorization: Bearer {token}");
    let (status, answer) =
        backend.post("/api/chat", &[&auth], r#"{"message":"what's on my list"}"#)?;
    if status != 200 {
        return Err(format!("chat: HTTP {status}: {answer}"));
    }
    let reply = answer
        .split_once("\"reply\":\"")
        .and_then(|(_, r)| r.split("\",\"actions\"").next())
        .unwrap_or_default();
    let conversation = answer
        .split_once("\"conversation_id\":")
        .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or("0");
    let stored = db.psql_in(
        dbname,
        &format!("SELECT sum(octet_length(content)) FROM messages WHERE conversation_id = {conversation}"),
    )?;
    let whole = db.psql_in(
        dbname,
        &format!(
            "SELECT sum(octet_length('[ ] #' || t.id || ' ' || t.title || ' - ' || coalesce(t.description, '')) + 1) \
             FROM tasks t JOIN users u ON u.id = t.user_id WHERE u.email = '{email}'"
        ),
    )?;
    println!();
    println!("chat: \"what's on my list\" with 5000 tasks");
    println!(
        "  reply                         {:>8} bytes (JSON-escaped), ends: {:?}",
        reply.len(),
        reply.rsplit("\\n").next().unwrap_or_default()
    );
    println!("  whole answer                  {:>8} bytes", answer.len());
    println!(
        "  stored for the turn           {:>8} bytes (user message, tool result, reply)",
        stored
    );
    println!("  the full listing would be     {:>8} bytes", whole);
    Ok(())
}

/// What a request loop saw in one phase.
#[derive(Default, Clone, Copy)]
struct Tally {
    ok: u64,
    unavailable: u64,
    internal: u64,
    other: u64,
    connection: u64,
}

fn database_restarts(backend: &Backend, db: &TestDb) -> Result<(), String> {
    println!();
    println!(
        "database restarts: 8 threads listing and creating tasks in a loop (answers per phase)"
    );
    println!(
        "  {:<26} {:>6} {:>6} {:>6} {:>6} {:>6}   first 2xx after start",
        "", "2xx", "503", "500", "other", "conn"
    );
    for (n, (label, crash)) in [
        ("restart (fast shutdown)", false),
        ("crash (immediate stop)", true),
    ]
    .into_iter()
    .enumerate()
    {
        // A user per phase: the loop creates thousands of tasks, and MAX_TASKS_PER_USER holds.
        let email = format!("loop{n}@example.com");
        let from = format!("198.51.100.{}", 210 + n);
        let (status, answer) = backend.sign_in("/api/auth/register", &from, &email, PASSWORD)?;
        if status != 201 {
            return Err(format!("register: HTTP {status}"));
        }
        let token = token_of(&answer)?;
        // The throwaway server runs with fsync off: make the account durable before the crash.
        db.psql("CHECKPOINT")?;
        let stop = AtomicBool::new(false);
        let tally = Mutex::new(Tally::default());
        // When start() returned, and the first success the loop saw after that.
        let started_again = Mutex::new(None::<Instant>);
        let first_ok = Mutex::new(None::<Instant>);
        std::thread::scope(|s| -> Result<(), String> {
            for t in 0..8u64 {
                let (stop, tally, token) = (&stop, &tally, &token);
                let (started_again, first_ok) = (&started_again, &first_ok);
                s.spawn(move || {
                    let auth = format!("Authorization: Bearer {token}");
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let answer = if (i + t).is_multiple_of(2) {
                            backend.get("/api/tasks?limit=5", &[&auth])
                        } else {
                            backend.post(
                                "/api/tasks",
                                &[&auth],
                                r#"{"title":"written during the restart"}"#,
                            )
                        };
                        let Ok(mut tl) = tally.lock() else { return };
                        match answer {
                            Ok((200 | 201, _)) => {
                                tl.ok += 1;
                                let restarted =
                                    started_again.lock().ok().and_then(|v| *v).is_some();
                                if let Ok(mut first) = first_ok.lock() {
                                    if restarted && first.is_none() {
                                        *first = Some(Instant::now());
                                    }
                                }
                            }
                            Ok((503, _)) => tl.unavailable += 1,
                            Ok((500, _)) => tl.internal += 1,
                            Ok(_) => tl.other += 1,
                            Err(_) => tl.connection += 1,
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_secs(2));
            if crash {
                db.stop_immediately()?;
            } else {
                db.stop()?;
            }
            std::thread::sleep(Duration::from_secs(2));
            db.start()?;
            if let Ok(mut at) = started_again.lock() {
                *at = Some(Instant::now());
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while first_ok.lock().ok().and_then(|v| *v).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::Relaxed);
            Ok(())
        })?;
        let t = tally.lock().map(|t| *t).unwrap_or_default();
        let recovery = match (
            started_again.lock().ok().and_then(|v| *v),
            first_ok.lock().ok().and_then(|v| *v),
        ) {
            (Some(start), Some(ok)) => {
                format!("{:.0} ms", ok.duration_since(start).as_secs_f64() * 1000.0)
            }
            _ => "never (30 s)".into(),
        };
        println!(
            "  {label:<26} {:>6} {:>6} {:>6} {:>6} {:>6}   {recovery}",
            t.ok, t.unavailable, t.internal, t.other, t.connection
        );
    }
    Ok(())
}
