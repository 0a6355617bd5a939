//! `cargo xtask status` and `cargo xtask logs`: the real xtask binary against the tool doubles (tests/doubles).
//! Following logs across rollouts is tested through the Docker-backed double (tests/e2e), where pods really
//! roll.

mod deploy_support;

use deploy_support::Env;
use serde_json::Value;

fn deployed() -> Env {
    let env = Env::new();
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    env
}

#[test]
fn status_without_a_cluster_says_so_with_exit_3() {
    let env = Env::new();
    env.set_state(|s| s["cluster"] = "missing".into());
    let run = env.run(&["status"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("Minikube profile todo does not exist"),
        "{}",
        run.stderr
    );
    env.set_state(|s| s["cluster"] = "stopped".into());
    let run = env.run(&["status"]);
    run.assert_code(3);
    assert!(run.stderr.contains("is not running"), "{}", run.stderr);
}

#[test]
fn status_tells_up_to_date_from_stale_and_names_the_input() {
    let env = deployed();
    let run = env.run(&["status"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("todo-backend   revision 1 deployed, chart backend-0.2.0"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": up to date"), "{}", run.stdout);
    assert!(
        run.stdout.contains("pods 1/1 ready, 0 restart(s)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("forward        none running"),
        "{}",
        run.stdout
    );
    // A source edit after the deploy: the backend is stale, and status says which file; the frontend is not.
    let main = env.root.join("backend/src/main.rs");
    std::fs::write(&main, "fn main() { println!(\"changed\"); }\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let run = env.run(&["status", "--json"]);
    run.assert_code(0);
    let ev: Value = run
        .events()
        .into_iter()
        .find(|e| e["event"] == "status")
        .unwrap_or_default();
    let rel = |name: &str| {
        ev["releases"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["release"] == name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(rel("todo-backend")["sources"]["state"], "stale", "{ev}");
    assert_eq!(
        rel("todo-backend")["sources"]["changed"][0],
        "backend/src/main.rs",
        "{ev}"
    );
    assert_eq!(
        rel("todo-frontend")["sources"]["state"],
        "up_to_date",
        "{ev}"
    );
    assert_eq!(
        rel("todo-frontend")["sources"]["profile"],
        "release",
        "{ev}"
    );
}

#[test]
fn logs_prefix_every_line_with_service_and_pod() {
    let env = deployed();
    env.set_state(|s| s["crash_logs"] = "listening on 0.0.0.0:8000\nGET /health 200\n".into());
    let run = env.run(&["logs", "backend"]);
    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(!lines.is_empty(), "no lines: {}", run.stderr);
    assert!(lines.iter().all(|l| l.starts_with("backend-")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("| listening on 0.0.0.0:8000")),
        "{lines:?}"
    );
    assert!(
        !run.stdout.contains("2026-01-01T00:00:"),
        "timestamps are for deduplication, not shown: {}",
        run.stdout
    );
    let calls = env.calls_of("kubectl");
    assert!(
        calls
            .iter()
            .any(|c| c.contains(" logs todo-backend-") && c.contains("--timestamps")),
        "{calls:#?}"
    );
    assert!(
        calls.iter().all(|c| !c.contains(" logs todo-frontend-")),
        "only the backend was asked for"
    );
    let json = env.run(&["logs", "--json"]);
    json.assert_code(0);
    let ev: Vec<Value> = json
        .events()
        .into_iter()
        .filter(|e| e["event"] == "log")
        .collect();
    assert!(ev.iter().any(|e| e["service"] == "frontend"), "{ev:?}");
    assert!(
        ev.iter()
            .all(|e| e["time"].as_str().is_some_and(|t| t.starts_with("2026-"))),
        "{ev:?}"
    );
    let bad = env.run(&["logs", "database"]);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("unknown service database"),
        "{}",
        bad.stderr
    );
}
