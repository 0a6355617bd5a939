//! Benchmark: the release backend against a real PostgreSQL, loaded by `wrk` from a second process on loopback.
//!
//! Expects `cargo build --release -p backend` to have produced `target/release/todo-backend`; builds nothing.
//! Prints start-to-ready time, idle RSS, and req/s + p99 for listing 100 tasks and for creating tasks,
//! with RSS under load.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::pg::TestDb;

use crate::support::{
    find_on_path, http_request, mib, parse_wrk_duration, release_binary, status_kib,
};

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
    let binary = release_binary("todo-backend", "backend")?;
    let wrk = find_on_path("wrk").ok_or("wrk not found on PATH (apt-get install wrk)")?;
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
    // Lists are paged (50 by default): ask for the whole fixture, as before paging.
    let (status, body) = server.request("GET", "/api/tasks?limit=100", Some(&token), None)?;
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
        "/api/tasks?limit=100",
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
    println!(
        "backend benchmark ({CONNECTIONS} connections, {WRK_THREADS} wrk threads, {LOAD_SECONDS} s per scenario; \
         wrk, backend and PostgreSQL share this machine's cores)"
    );
    let row = |name: &str, value: String, goal: &str| println!("{name:<44} {value:>16} {goal:>10}");
    row("measure", "value".into(), "goal");
    row(
        "start-to-ready, first start (migrates)",
        ms(first_ready),
        "",
    );
    row(
        &format!("start-to-ready, restart (median of {})", restarts.len()),
        ms(median_restart),
        "< 100 ms",
    );
    row("idle RSS", mib(idle_rss), "< 15 MB");
    for (name, r, goal) in [
        ("GET /api/tasks (100 tasks)", &list, "> 5000"),
        ("POST /api/tasks", &create, ""),
    ] {
        row(&format!("{name} req/s"), format!("{:.0}", r.rps), goal);
        row(&format!("{name} p99"), format!("{:.2} ms", r.p99_ms), "");
        row(&format!("{name} RSS under load"), mib(r.rss_kib), "");
        row(
            &format!("{name} CPU/request backend+db"),
            format!("{:.0}+{:.0} us", r.backend_cpu_us, r.db_cpu_us),
            "",
        );
    }
    row(
        "RSS after load / peak (VmHWM)",
        format!("{} / {}", mib(idle_after), mib(peak)),
        "",
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

struct LoadResult {
    rps: f64,
    p99_ms: f64,
    rss_kib: u64,
    errors: u64,
    /// CPU time per request of the backend process, in microseconds.
    backend_cpu_us: f64,
    /// CPU time per request of the PostgreSQL sessions serving the benchmark database, in microseconds.
    db_cpu_us: f64,
}

/// User+system CPU ticks of a process (from /proc/PID/stat), 0 when it is gone.
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// CPU ticks of the PostgreSQL backends connected to `dbname` (their title names the database).
fn db_ticks(dbname: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&format!(" {dbname} ")))
                .unwrap_or(false)
        })
        .map(cpu_ticks)
        .sum()
}

/// Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

struct Server {
    child: Child,
    addr: SocketAddr,
    dbname: String,
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
            // The create scenario adds tens of thousands of tasks: above the default cap of 10000 every
            // create would be a 409 and the figure would no longer measure creating.
            .env("MAX_TASKS_PER_USER", "10000000")
            .env(
                "LOG_LEVEL",
                std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        let dbname = db_url
            .rsplit('/')
            .next()
            .and_then(|d| d.split('?').next())
            .unwrap_or_default()
            .to_string();
        let server = Self {
            child,
            addr,
            dbname,
        };
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
        status_kib(self.child.id(), field)
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
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let headers: Vec<&str> = auth.iter().map(String::as_str).collect();
        http_request(self.addr, method, path, &headers, body.unwrap_or(""))
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
        let dbname = self.dbname.clone();
        let (backend_before, db_before) = (cpu_ticks(self.child.id()), db_ticks(&dbname));
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
        let backend_ticks = cpu_ticks(self.child.id()).saturating_sub(backend_before);
        let db_ticks_used = db_ticks(&dbname).saturating_sub(db_before);
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "wrk failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let rps: f64 = text
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
        let requests = (rps * LOAD_SECONDS as f64).max(1.0);
        let per_request_us = |ticks: u64| ticks as f64 / TICKS_PER_SEC * 1e6 / requests;
        Ok(LoadResult {
            rps,
            p99_ms,
            rss_kib,
            errors,
            backend_cpu_us: per_request_us(backend_ticks),
            db_cpu_us: per_request_us(db_ticks_used),
        })
    }
}
