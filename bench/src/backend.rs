//! Benchmark: the release backend against a real PostgreSQL, loaded by `wrk` from a second process on loopback.
//!
//! Expects `cargo build --release -p backend` to have produced `target/release/todo-backend`; builds nothing.
//! Prints start-to-ready time, idle RSS, and req/s + p99 for listing 100 tasks and for creating tasks,
//! with RSS under load.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::pg::TestDb;

const AUTH_SECRET: &str = "bench-secret-0123456789abcdef0123456789";
const LOAD_SECONDS: u64 = 10;
const CONNECTIONS: u32 = 64;
const WRK_THREADS: u32 = 2;
const STARTS: usize = 5;

const LIST_LUA: &str = r#"wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
"#;
const CREATE_LUA: &str = r#"wrk.method = "POST"
wrk.body = '{"title":"bench task","description":"created by wrk"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
"#;

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let binary = backend_binary()?;
    let wrk = find_wrk()?;
    let db = TestDb::new()?;
    let url = db.fresh_database()?;

    // First start migrates an empty database; later starts find it migrated (a restart or extra replica).
    let mut first_ready = Duration::ZERO;
    let mut restarts = Vec::new();
    for i in 0..STARTS {
        let (server, ready) = Server::start(&binary, &url)?;
        if i == 0 {
            first_ready = ready;
        } else {
            restarts.push(ready);
        }
        server.stop();
    }
    restarts.sort();
    let median_restart = restarts[restarts.len() / 2];

    let (server, _) = Server::start(&binary, &url)?;
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = server.rss_kib()?;

    let token = server.register()?;
    for i in 0..100 {
        let body = format!(r#"{{"title":"task {i}","description":"benchmark fixture"}}"#);
        let (status, _) = server.request("POST", "/api/tasks", Some(&token), Some(&body))?;
        if status != 201 {
            return Err(format!("creating fixture task {i}: HTTP {status}"));
        }
    }
    let (status, body) = server.request("GET", "/api/tasks", Some(&token), None)?;
    let listed = body.matches("\"id\":").count();
    if status != 200 || listed != 100 {
        return Err(format!("fixture listing: HTTP {status}, {listed} tasks"));
    }

    let scripts = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let list = server.load(
        &wrk,
        scripts.path(),
        "list.lua",
        LIST_LUA,
        "/api/tasks",
        &token,
    )?;
    let create = server.load(
        &wrk,
        scripts.path(),
        "create.lua",
        CREATE_LUA,
        "/api/tasks",
        &token,
    )?;
    let idle_after = server.rss_kib()?;
    let peak = server.status_kib("VmHWM")?;
    server.stop();

    println!();
    println!("backend benchmark ({} connections, {} wrk threads, {LOAD_SECONDS} s per scenario, 2-core machine shared by wrk, backend and PostgreSQL)", CONNECTIONS, WRK_THREADS);
    println!("{:<42} {:>14} {:>12}", "measure", "value", "goal");
    println!(
        "{:<42} {:>14} {:>12}",
        "start-to-ready, first start (migrates)",
        ms(first_ready),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        format!("start-to-ready, restart (median of {})", restarts.len()),
        ms(median_restart),
        "< 100 ms"
    );
    println!("{:<42} {:>14} {:>12}", "idle RSS", mib(idle_rss), "< 15 MB");
    println!(
        "{:<42} {:>14} {:>12}",
        "GET /api/tasks (100 tasks) req/s",
        format!("{:.0}", list.rps),
        "> 5000"
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "GET /api/tasks (100 tasks) p99",
        format!("{:.2} ms", list.p99_ms),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "GET /api/tasks RSS under load",
        mib(list.rss_kib),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "POST /api/tasks req/s",
        format!("{:.0}", create.rps),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "POST /api/tasks p99",
        format!("{:.2} ms", create.p99_ms),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "POST /api/tasks RSS under load",
        mib(create.rss_kib),
        ""
    );
    println!(
        "{:<42} {:>14} {:>12}",
        "RSS after load / peak (VmHWM)",
        format!("{} / {}", mib(idle_after), mib(peak)),
        ""
    );
    if list.errors > 0 || create.errors > 0 {
        println!(
            "non-2xx or socket errors: list {}, create {}",
            list.errors, create.errors
        );
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn backend_binary() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("release/todo-backend");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first with `cargo build --release -p backend`",
            bin.display()
        ))
    }
}

fn find_wrk() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("wrk"))
        .find(|p| p.is_file())
        .ok_or_else(|| "wrk not found on PATH (apt-get install wrk)".into())
}

struct LoadResult {
    rps: f64,
    p99_ms: f64,
    rss_kib: u64,
    errors: u64,
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Spawns the backend and returns it with the time from spawn to the first `/ready` 200.
    fn start(binary: &PathBuf, db_url: &str) -> Result<(Self, Duration), String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let spawned = Instant::now();
        let child = Command::new(binary)
            .env_clear()
            .env("DATABASE_URL", db_url)
            .env("AUTH_SECRET", AUTH_SECRET)
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let server = Self { child, addr };
        let deadline = spawned + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = server.request("GET", "/ready", None, None) {
                return Ok((server, spawned.elapsed()));
            }
            if Instant::now() > deadline {
                return Err("backend not ready within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    fn status_kib(&self, field: &str) -> Result<u64, String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| format!("reading /proc status: {e}"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{field} not in /proc status"))
    }

    fn rss_kib(&self) -> Result<u64, String> {
        self.status_kib("VmRSS")
    }

    /// One HTTP/1.1 request on a fresh connection; returns status and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| format!("socket: {e}"))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(t) = token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let body = body.unwrap_or("");
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|e| format!("receive: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("malformed HTTP response")?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    fn register(&self) -> Result<String, String> {
        let body = r#"{"email":"bench@example.com","password":"bench password 123"}"#;
        let (status, answer) = self.request("POST", "/api/auth/register", None, Some(body))?;
        if status != 201 {
            return Err(format!("register: HTTP {status}"));
        }
        let after = answer
            .split_once("\"token\":\"")
            .map(|(_, r)| r)
            .ok_or("no token in register answer")?;
        Ok(after.split('"').next().unwrap_or_default().to_string())
    }

    /// Runs wrk for `LOAD_SECONDS`, sampling RSS at mid-run.
    fn load(
        &self,
        wrk: &PathBuf,
        dir: &std::path::Path,
        name: &str,
        lua: &str,
        path: &str,
        token: &str,
    ) -> Result<LoadResult, String> {
        let script = dir.join(name);
        std::fs::write(&script, lua).map_err(|e| format!("writing {name}: {e}"))?;
        // The token goes through the environment, never the command line.
        let child = Command::new(wrk)
            .env("BENCH_TOKEN", token)
            .args([
                "-t",
                &WRK_THREADS.to_string(),
                "-c",
                &CONNECTIONS.to_string(),
                "-d",
                &format!("{LOAD_SECONDS}s"),
                "--latency",
                "-s",
            ])
            .arg(&script)
            .arg(format!("http://{}{path}", self.addr))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning wrk: {e}"))?;
        std::thread::sleep(Duration::from_secs(LOAD_SECONDS / 2));
        let rss_kib = self.rss_kib()?;
        let out = child
            .wait_with_output()
            .map_err(|e| format!("waiting for wrk: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "wrk failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let rps = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}"))?;
        let p99_ms = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("99%"))
            .and_then(|v| parse_wrk_duration(v.trim()))
            .ok_or_else(|| format!("no 99% latency in wrk output:\n{text}"))?;
        let errors = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum::<u64>()
            + u64::from(text.contains("Socket errors"));
        Ok(LoadResult {
            rps,
            p99_ms,
            rss_kib,
            errors,
        })
    }
}

/// Parses wrk durations such as `850.00us`, `12.34ms`, `1.20s` into milliseconds.
fn parse_wrk_duration(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    match unit {
        "us" => Some(n / 1000.0),
        "ms" => Some(n),
        "s" => Some(n * 1000.0),
        "m" => Some(n * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_wrk_duration;

    #[test]
    fn wrk_durations() {
        assert_eq!(parse_wrk_duration("850.00us"), Some(0.85));
        assert_eq!(parse_wrk_duration("12.34ms"), Some(12.34));
        assert_eq!(parse_wrk_duration("1.20s"), Some(1200.0));
        assert_eq!(parse_wrk_duration("fast"), None);
    }
}
