//! Benchmark: the release frontend in front of the release backend (real PostgreSQL), loaded by `wrk`
//! from a second process on loopback.
//!
//! Expects `cargo build --release -p backend -p frontend` to have produced `target/release/todo-backend`
//! and `target/release/todo-frontend`; builds nothing. Prints the frontend's idle RSS and, in one run,
//! latency and throughput of `GET /api/tasks` sent directly to the backend (bearer token) and through
//! the frontend proxy (session cookie): the difference is the proxy's overhead.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::pg::TestDb;

use crate::support::{
    find_on_path, http_request, mib, parse_wrk_duration, release_binary, status_kib,
};

const AUTH_SECRET: &str = "bench-frontend-secret-0123456789abcdef";
const FIXTURE_TASKS: usize = 20;
const LOAD_SECONDS: u64 = 8;
const CONNECTIONS: u32 = 32;

/// Same request both ways; only how the token travels differs.
const DIRECT_LUA: &str = r#"wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
"#;
const PROXIED_LUA: &str = r#"wrk.method = "GET"
wrk.headers["Cookie"] = "todo_session=" .. os.getenv("BENCH_TOKEN")
"#;

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let backend_bin = release_binary("todo-backend", "backend")?;
    let frontend_bin = release_binary("todo-frontend", "frontend")?;
    let wrk = find_on_path("wrk").ok_or("wrk not found on PATH (apt-get install wrk)")?;
    let db = TestDb::new()?;
    let db_url = db.fresh_database()?;

    let backend = Proc::spawn(
        "backend",
        &backend_bin,
        &[
            ("DATABASE_URL", db_url.as_str()),
            ("AUTH_SECRET", AUTH_SECRET),
            ("LOG_LEVEL", "warn"),
        ],
    )?;
    backend.wait_for(|p| matches!(p.request("GET", "/ready", &[], ""), Ok((200, _))))?;
    let backend_url = format!("http://{}", backend.addr);

    let started = Instant::now();
    let frontend = Proc::spawn(
        "frontend",
        &frontend_bin,
        &[("BACKEND_URL", backend_url.as_str()), ("LOG_LEVEL", "warn")],
    )?;
    frontend.wait_for(|p| matches!(p.request("GET", "/health", &[], ""), Ok((200, _))))?;
    let start_to_listen = started.elapsed();
    // Settle, then read RSS before any proxied traffic: the footprint of an idle pod.
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = frontend.status_kib("VmRSS")?;

    let token = register(&backend)?;
    let auth = format!("Authorization: Bearer {token}");
    for i in 0..FIXTURE_TASKS {
        let body = format!(r#"{{"title":"bench task {i}"}}"#);
        let (status, _) = backend.request("POST", "/api/tasks", &[&auth], &body)?;
        if status != 201 {
            return Err(format!("creating fixture task {i}: HTTP {status}"));
        }
    }
    // Both paths must return the same listing before timing them.
    let cookie = format!("Cookie: todo_session={token}");
    let (s1, direct_body) = backend.request("GET", "/api/tasks", &[&auth], "")?;
    let (s2, proxied_body) = frontend.request("GET", "/api/tasks", &[&cookie], "")?;
    if s1 != 200 || s2 != 200 || direct_body != proxied_body {
        return Err(format!(
            "direct ({s1}) and proxied ({s2}) listings differ; is BACKEND_URL right?"
        ));
    }
    let (hs, health) = frontend.request("GET", "/api/health", &[], "")?;
    if hs != 200 || !health.contains(r#""status":"ok""#) {
        return Err(format!("frontend /api/health: HTTP {hs} {health}"));
    }
    let warm_rss = frontend.status_kib("VmRSS")?;

    let scripts = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let direct_script = write_script(scripts.path(), "direct.lua", DIRECT_LUA)?;
    let proxied_script = write_script(scripts.path(), "proxied.lua", PROXIED_LUA)?;
    let wrk_run = |script: &Path, target: &Proc, connections: u32, threads: u32| {
        run_wrk(
            &wrk,
            &token,
            script,
            target,
            connections,
            threads,
            &frontend,
        )
    };
    // One connection: per-request latency added by the extra hop. Many: throughput on shared cores.
    let direct_1 = wrk_run(&direct_script, &backend, 1, 1)?;
    let proxied_1 = wrk_run(&proxied_script, &frontend, 1, 1)?;
    let direct_n = wrk_run(&direct_script, &backend, CONNECTIONS, 2)?;
    let proxied_n = wrk_run(&proxied_script, &frontend, CONNECTIONS, 2)?;
    let after_rss = frontend.status_kib("VmRSS")?;
    let peak_rss = frontend.status_kib("VmHWM")?;

    let status = frontend.stop_gracefully()?;
    backend.stop_gracefully()?;

    println!();
    println!(
        "frontend benchmark: GET /api/tasks ({FIXTURE_TASKS} tasks), {LOAD_SECONDS} s per scenario, \
         wrk on the same 2-core machine as backend, frontend and PostgreSQL"
    );
    println!("{:<46} {:>14} {:>10}", "measure", "value", "goal");
    println!(
        "{:<46} {:>14} {:>10}",
        "frontend start to listening",
        ms(start_to_listen.as_secs_f64() * 1000.0),
        ""
    );
    println!(
        "{:<46} {:>14} {:>10}",
        "frontend idle RSS (before traffic)",
        mib(idle_rss),
        "< 10 MB"
    );
    println!(
        "{:<46} {:>14} {:>10}",
        "frontend RSS after first requests",
        mib(warm_rss),
        ""
    );
    println!(
        "{:<46} {:>14} {:>10}",
        format!("frontend RSS after load / peak (VmHWM)"),
        format!("{} / {}", mib(after_rss), mib(peak_rss)),
        ""
    );
    println!();
    println!(
        "{:<24} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "scenario", "req/s", "mean", "p50", "p99", "errors"
    );
    for (name, r) in [
        ("direct, 1 conn", &direct_1),
        ("via frontend, 1 conn", &proxied_1),
        (&*format!("direct, {CONNECTIONS} conns"), &direct_n),
        (&*format!("via frontend, {CONNECTIONS} conns"), &proxied_n),
    ] {
        println!(
            "{:<24} {:>12.0} {:>12} {:>12} {:>12} {:>10}",
            name,
            r.rps,
            ms(r.mean_ms),
            ms(r.p50_ms),
            ms(r.p99_ms),
            r.errors
        );
    }
    println!();
    println!(
        "proxy overhead per request (1 conn): p50 {}, mean {} ({:+.0}%)",
        signed_ms(proxied_1.p50_ms - direct_1.p50_ms),
        signed_ms(proxied_1.mean_ms - direct_1.mean_ms),
        (proxied_1.mean_ms / direct_1.mean_ms - 1.0) * 100.0
    );
    println!(
        "proxy overhead at {CONNECTIONS} conns: p50 {}, throughput {:+.0}%",
        signed_ms(proxied_n.p50_ms - direct_n.p50_ms),
        (proxied_n.rps / direct_n.rps - 1.0) * 100.0
    );
    println!("frontend exit after SIGTERM: {status}");
    // Other work on the machine skews every figure above; say how busy it was.
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!(
            "machine load average during the run (1/5/15 min): {}",
            load.join(" ")
        );
    }
    let errors = direct_1.errors + proxied_1.errors + direct_n.errors + proxied_n.errors;
    if errors > 0 {
        return Err(format!(
            "{errors} non-2xx responses or socket errors during the load"
        ));
    }
    Ok(())
}

fn ms(v: f64) -> String {
    format!("{v:.3} ms")
}

fn signed_ms(v: f64) -> String {
    format!("{v:+.3} ms")
}

fn write_script(dir: &Path, name: &str, lua: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, lua).map_err(|e| format!("writing {name}: {e}"))?;
    Ok(path)
}

/// A service binary running on a free loopback port; killed if dropped without a graceful stop.
struct Proc {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Proc {
    fn spawn(name: &'static str, binary: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        let mut cmd = Command::new(binary);
        // Secrets reach the child through its environment only, never its command line.
        cmd.env_clear().env("PORT", port.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
        Ok(Self {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    fn wait_for(&self, ready: impl Fn(&Self) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(self) {
            if Instant::now() > deadline {
                return Err(format!("{} not ready within 30 s", self.name));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn status_kib(&self, field: &str) -> Result<u64, String> {
        status_kib(self.child.id(), field).map_err(|e| format!("the {}: {e}", self.name))
    }

    /// One HTTP/1.1 request on a fresh connection; returns status and body.
    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &str,
    ) -> Result<(u16, String), String> {
        http_request(self.addr, method, path, headers, body)
            .map_err(|e| format!("the {}: {e}", self.name))
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    fn stop_gracefully(mut self) -> Result<String, String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map_err(|e| format!("kill -TERM {pid}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status.to_string()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "the {} did not exit within 25 s of SIGTERM",
                        self.name
                    ));
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn register(backend: &Proc) -> Result<String, String> {
    let body = r#"{"email":"bench-frontend@example.com","password":"bench password 123"}"#;
    let (status, answer) = backend.request("POST", "/api/auth/register", &[], body)?;
    if status != 201 {
        return Err(format!("register: HTTP {status}"));
    }
    let after = answer
        .split_once("\"token\":\"")
        .map(|(_, r)| r)
        .ok_or("no token in the register answer")?;
    Ok(after.split('"').next().unwrap_or_default().to_string())
}

struct Load {
    rps: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Runs wrk against `target` for `LOAD_SECONDS`; the token travels in wrk's environment.
fn run_wrk(
    wrk: &Path,
    token: &str,
    script: &Path,
    target: &Proc,
    connections: u32,
    threads: u32,
    frontend: &Proc,
) -> Result<Load, String> {
    // The frontend must still be alive: a crash under load would otherwise read as backend numbers.
    frontend.status_kib("VmRSS")?;
    let out = Command::new(wrk)
        .env("BENCH_TOKEN", token)
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{LOAD_SECONDS}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(format!("http://{}/api/tasks", target.addr))
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse_wrk(&text).ok_or_else(|| format!("cannot read wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let line_value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let rps = line_value("Requests/sec:")?.parse().ok()?;
    let mean_ms = parse_wrk_duration(line_value("Latency")?.split_whitespace().next()?)?;
    let p50_ms = parse_wrk_duration(line_value("50%")?)?;
    let p99_ms = parse_wrk_duration(line_value("99%")?)?;
    let non_2xx: u64 = line_value("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let socket_errors: u64 = line_value("Socket errors:")
        .map(|v| {
            v.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Some(Load {
        rps,
        mean_ms,
        p50_ms,
        p99_ms,
        errors: non_2xx + socket_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 8s test @ http://127.0.0.1:1/api/tasks
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   605.44us  170.63us   3.08ms   72.50%
    Req/Sec     1.65k   120.00     1.90k    70.00%
  Latency Distribution
     50%  580.00us
     75%  690.00us
     90%  800.00us
     99%    1.20ms
  13200 requests in 8.00s, 12.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   1650.00
Transfer/sec:      1.50MB
";

    #[test]
    fn reads_wrk_output() {
        let l = parse_wrk(SAMPLE).unwrap();
        assert_eq!(l.rps, 1650.0);
        assert!((l.mean_ms - 0.60544).abs() < 1e-9);
        assert!((l.p50_ms - 0.58).abs() < 1e-9);
        assert!((l.p99_ms - 1.2).abs() < 1e-9);
        assert_eq!(l.errors, 7);
    }
}
