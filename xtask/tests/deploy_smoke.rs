//! The smoke step for real: `cargo xtask deploy` (cluster side: tool doubles, as no cluster can run here) whose
//! port-forward carries real TCP to the REAL frontend and backend running in-process on a real PostgreSQL.

mod deploy_support;

use std::time::{Duration, Instant};

use deploy_support::Env;
use testkit::pg::TestDb;

const AUTH_SECRET: &str = "smoke-test-secret-0123456789abcdef0123";

struct Services {
    frontend: String,
    _rt: tokio::runtime::Runtime,
}

fn start_services(db_url: &str) -> Services {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let db = db_url.to_string();
    let (backend_addr, frontend_addr) = rt.block_on(async move {
        let bl = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let fl = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (ba, fa) = (
            bl.local_addr().unwrap_or_else(|e| panic!("{e}")),
            fl.local_addr().unwrap_or_else(|e| panic!("{e}")),
        );
        let bconf = backend::Config::from_lookup(move |k| match k {
            "DATABASE_URL" => Some(db.clone()),
            "AUTH_SECRET" => Some(AUTH_SECRET.into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("backend config: {e}"));
        let burl = format!("http://{ba}");
        let fconf = frontend::Config::from_lookup(move |k| match k {
            "BACKEND_URL" => Some(burl.clone()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("frontend config: {e}"));
        tokio::spawn(backend::serve(bconf, bl, std::future::pending()));
        tokio::spawn(frontend::serve(fconf, fl, std::future::pending()));
        (ba, fa)
    });
    // Ready = backend migrated (the smoke test must not race the migrations).
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if answers_200(backend_addr, "/ready") {
            return Services {
                frontend: frontend_addr.to_string(),
                _rt: rt,
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("backend not ready within 60 s");
}

/// One plain HTTP/1.1 GET over std TCP: true when the status line says 200.
fn answers_200(addr: std::net::SocketAddr, path: &str) -> bool {
    use std::io::{Read, Write};
    let timeout = Duration::from_secs(2);
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    s.write_all(req.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
        && &head[9..12] == b"200"
}

#[test]
fn smoke_step_passes_against_the_real_services() {
    let Some(db) = TestDb::shared_or_skip() else {
        return;
    };
    let url = db.fresh_database().unwrap_or_else(|e| panic!("{e}"));
    let svc = start_services(&url);
    let env = Env::new();
    env.set_state(|s| s["forward_targets"]["todo-frontend"] = svc.frontend.clone().into());
    let run = env.run(&["deploy", "--port", "0", "--json"]);
    run.assert_code(0);
    let smoke = run.step_event("smoke").unwrap_or_default();
    assert_eq!(smoke["event"], "step_finished", "{smoke}");
    let detail = smoke["detail"].as_str().unwrap_or("");
    for check in [
        "health",
        "register",
        "task round-trip",
        "chat round-trip",
        "delete user",
    ] {
        assert!(detail.contains(check), "{check} missing: {detail}");
    }
    let summary = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "summary")
        .unwrap_or_default();
    let health = summary["budgets"]
        .as_array()
        .and_then(|b| b.iter().find(|x| x["check"] == "health").cloned())
        .unwrap_or_default();
    assert_eq!(health["within"], true, "health < 2 s: {health}");
}

#[test]
fn smoke_step_fails_with_exit_5_when_the_backend_is_down() {
    // A frontend whose backend does not answer: health reports degraded, the smoke step fails (exit 5).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let faddr = rt.block_on(async move {
        let fl = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let fa = fl.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let burl = format!("http://{dead}");
        let fconf =
            frontend::Config::from_lookup(move |k| (k == "BACKEND_URL").then(|| burl.clone()))
                .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(frontend::serve(fconf, fl, std::future::pending()));
        fa
    });
    let env = Env::new();
    env.set_state(|s| s["forward_targets"]["todo-frontend"] = faddr.to_string().into());
    let run = env.run(&["deploy", "--port", "0"]);
    run.assert_code(5);
    assert!(run.stderr.contains("health"), "{}", run.stderr);
}
