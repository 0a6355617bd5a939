//! Pipeline tests: the real xtask binary against test doubles of minikube, helm, kubectl and docker
//! (crate tool-doubles) first on PATH. No live cluster exists on this machine: everything cluster-side here is
//! the doubles, which answer with real tool output formats (xtask/tests/fixtures, see PROVENANCE.md).

mod deploy_support;

use std::time::Duration;

use deploy_support::{alive, eventually, is_port_forward, sigint, Env, Run, Watched, SUPERVISED};
use serde_json::Value;

/// The pid on the first line of a forward's pid file (the second line is its URL).
fn first_line_pid(text: &str) -> Option<u32> {
    text.lines().next()?.trim().parse().ok()
}

fn contains_all(hay: &str, needles: &[&str]) -> bool {
    needles.iter().all(|n| hay.contains(n))
}

fn assert_profile_and_context_everywhere(env: &Env) {
    for c in env.calls_of("minikube") {
        assert!(
            c.contains("-p todo") || c.starts_with("version") || c.starts_with("profile list"),
            "minikube without -p: {c}"
        );
    }
    for c in env.calls_of("helm") {
        assert!(
            c.starts_with("version") || c.contains("--kube-context todo"),
            "helm without --kube-context: {c}"
        );
    }
    for c in env.calls_of("kubectl") {
        assert!(
            c.starts_with("version") || c.starts_with("--context todo"),
            "kubectl without --context: {c}"
        );
    }
}

#[test]
fn fresh_deploy_builds_into_the_node_and_installs_both_charts() {
    let env = Env::new().with_real_helm(testkit::tools::helm3());
    if env.real_helm.is_none() {
        testkit::ci::missing_prerequisite(
            "helm 3 (.ci/fetch-tools.sh): charts are rendered without it",
        );
    }
    let run = env.run(&["deploy", "--no-smoke", "--port", "0", "--json"]);
    run.assert_code(0);
    let builds = env
        .calls()
        .into_iter()
        .filter(|c| c["tool"] == "docker" && c["argv"][0] == "build")
        .collect::<Vec<_>>();
    assert_eq!(builds.len(), 2, "two builds");
    for b in &builds {
        assert_eq!(
            b["env"]["DOCKER_HOST"], "tcp://127.0.0.1:32842",
            "docker runtime: build inside the node"
        );
        assert_eq!(b["env"]["DOCKER_BUILDKIT"], "1");
        let argv = b["argv"].to_string();
        assert!(
            argv.contains("VERSION=") && argv.contains("REVISION="),
            "OCI label build args: {argv}"
        );
    }
    assert!(
        env.calls_of("minikube")
            .iter()
            .all(|c| !c.contains("image load")),
        "no load with the docker runtime"
    );
    let upgrades: Vec<String> = env
        .calls_of("helm")
        .into_iter()
        .filter(|c| c.starts_with("upgrade --install"))
        .collect();
    assert_eq!(upgrades.len(), 2);
    assert!(upgrades[0].contains("todo-backend") && upgrades[1].contains("todo-frontend"));
    for u in &upgrades {
        assert!(
            contains_all(
                u,
                &["--namespace todo", "--atomic", "--wait", "--timeout 300s"]
            ),
            "{u}"
        );
        assert!(!u.contains("--rollback-on-failure"));
    }
    // The namespace was made and labelled for `clean`.
    let k = env.calls_of("kubectl");
    assert!(k.iter().any(|c| c.ends_with("create namespace todo")));
    assert!(k
        .iter()
        .any(|c| c.contains("label namespace todo app.kubernetes.io/managed-by=todo-xtask")));
    // Image tags passed through a generated values file, 0600, gone afterwards.
    let vals: Vec<Value> = env
        .calls()
        .into_iter()
        .filter(|c| c["tool"] == "helm-values")
        .collect();
    assert_eq!(vals.len(), 2);
    for v in &vals {
        let tag = v["extra"]["image"]["tag"].as_str().unwrap_or("");
        assert_eq!(tag.len(), 12, "content-hash tag: {v}");
        assert_eq!(v["extra"]["image"]["pullPolicy"], "IfNotPresent");
        let files: Vec<&Value> = v["extra"]["files"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        // The chart's checked-in values-dev.yaml comes first; every generated file is 0600.
        assert!(
            files[0]["path"]
                .as_str()
                .unwrap_or("")
                .ends_with("/values-dev.yaml"),
            "dev values first: {v}"
        );
        for f in &files[1..] {
            assert_eq!(f["mode"], "600", "{f}");
        }
    }
    assert!(
        env.leftover_temp_files().is_empty(),
        "temp files left: {:?}",
        env.leftover_temp_files()
    );
    assert_profile_and_context_everywhere(&env);
    // --json: every stdout line is one JSON event.
    for line in run.stdout.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    let ev = run.events();
    assert!(ev
        .iter()
        .any(|e| e["event"] == "step_finished" && e["step"] == "images"));
    let summary = ev
        .iter()
        .find(|e| e["event"] == "summary")
        .cloned()
        .unwrap_or_default();
    assert_eq!(summary["ok"], true);
    assert!(summary["urls"]["frontend"]
        .as_str()
        .is_some_and(|u| u.starts_with("http://127.0.0.1:")));
    // The forward was torn down at the end.
    let pf = env.port_forward_pids();
    assert_eq!(pf.len(), 1);
    eventually(Duration::from_secs(5), "port-forward ended", || {
        pf.iter().all(|p| !alive(*p))
    });
}

#[test]
fn second_deploy_with_nothing_changed_builds_and_loads_nothing() {
    let env = Env::new();
    env.set_state(|s| s["runtime"] = "containerd".into());
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    env.clear_calls();
    let run = env.run(&["deploy", "--no-smoke", "--port", "0", "--json"]);
    run.assert_code(0);
    assert!(
        env.calls_of("docker")
            .iter()
            .all(|c| !c.starts_with("build")),
        "{:?}",
        env.calls_of("docker")
    );
    assert!(env
        .calls_of("minikube")
        .iter()
        .all(|c| !c.contains("image load")));
    assert_eq!(
        run.step_event("images").map(|e| e["event"].clone()),
        Some("step_skipped".into())
    );
    assert_eq!(
        run.step_event("load").map(|e| e["event"].clone()),
        Some("step_skipped".into())
    );
    // The upgrade still runs (and changes nothing but the revision).
    assert_eq!(env.state()["releases"]["todo-backend"]["revision"], 2);
}

#[test]
fn one_changed_service_is_the_only_one_rebuilt_and_loaded() {
    let env = Env::new();
    env.set_state(|s| s["runtime"] = "containerd".into());
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    let loads: Vec<String> = env
        .calls_of("minikube")
        .into_iter()
        .filter(|c| c.contains("image load"))
        .collect();
    assert_eq!(loads.len(), 2, "first deploy loads both: {loads:?}");
    let old_tag = env.state()["releases"]["todo-backend"]["image"]["tag"].clone();
    std::fs::write(
        env.root.join("frontend/src/main.rs"),
        "fn main() { println!(\"v2\"); }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    env.clear_calls();
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    let builds: Vec<String> = env
        .calls_of("docker")
        .into_iter()
        .filter(|c| c.starts_with("build"))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert!(builds[0].contains("frontend/Dockerfile"));
    let loads: Vec<String> = env
        .calls_of("minikube")
        .into_iter()
        .filter(|c| c.contains("image load"))
        .collect();
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert!(loads[0].contains("todo-frontend:"));
    for b in env.calls().iter().filter(|c| c["tool"] == "docker") {
        assert!(
            b["env"].get("DOCKER_HOST").is_none(),
            "containerd: build in the local engine"
        );
    }
    assert_eq!(
        env.state()["releases"]["todo-backend"]["image"]["tag"],
        old_tag,
        "backend tag unchanged"
    );
}

#[test]
fn missing_tool_and_dead_daemon_are_all_reported_with_fixes() {
    let env = Env::new();
    std::fs::remove_file(env.bin.join("helm")).unwrap_or_else(|e| panic!("{e}"));
    env.set_state(|s| s["docker_daemon"] = false.into());
    let run = env.run(&["deploy", "--no-smoke"]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("helm not found on PATH") && run.stderr.contains("https://helm.sh"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("docker daemon not reachable"),
        "{}",
        run.stderr
    );
    // Nothing changed before the check.
    assert!(env
        .calls_of("minikube")
        .iter()
        .all(|c| c.starts_with("version")));
}

#[test]
fn stopped_cluster_is_started_without_switching_context() {
    let env = Env::new();
    env.set_state(|s| s["cluster"] = "stopped".into());
    let run = env.run(&["deploy", "--no-smoke", "--port", "0"]);
    run.assert_code(0);
    let starts: Vec<String> = env
        .calls_of("minikube")
        .into_iter()
        .filter(|c| c.contains(" start"))
        .collect();
    assert_eq!(starts.len(), 1);
    assert!(
        starts[0].starts_with("-p todo start --keep-context"),
        "{}",
        starts[0]
    );
    assert_eq!(env.state()["cluster"], "running");
    assert_profile_and_context_everywhere(&env);
}

#[test]
fn crash_looping_pod_fails_fast_with_logs_and_rolls_back() {
    let env = Env::new();
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    env.set_state(|s| s["pods"] = "crashloop".into());
    std::fs::write(
        env.root.join("backend/src/main.rs"),
        "fn main() { panic!() }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    env.clear_calls();
    let run = env.run(&["deploy", "--no-smoke", "--port", "0"]);
    run.assert_code(4);
    assert!(
        run.took < Duration::from_secs(30),
        "failed fast, not after the 300 s helm timeout: {:?}",
        run.took
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    // The classified finding itself (the crash-loop analyzer on the pod), not any mention of a crash.
    assert!(
        all.contains("[crash-loop]") && all.contains("keeps crashing"),
        "{all}"
    );
    assert!(
        all.contains("DATABASE_URL must be set"),
        "last log lines shown: {all}"
    );
    // helm, stopped with SIGTERM, rolled back itself (--atomic); the xtask did not roll back beside it.
    assert!(
        all.contains("helm rolled todo-backend back to revision 1 itself (deployed at revision 3)"),
        "{all}"
    );
    assert!(
        env.calls_of("helm")
            .iter()
            .all(|c| !c.starts_with("rollback")),
        "{:?}",
        env.calls_of("helm")
    );
    // The waiting helm ended with its process group.
    let helm_pids: Vec<u32> = env
        .calls()
        .iter()
        .filter(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade")
        .filter_map(|c| c["pid"].as_u64().map(|p| p as u32))
        .collect();
    eventually(Duration::from_secs(5), "helm upgrade killed", || {
        helm_pids.iter().all(|p| !alive(*p))
    });
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
    assert!(env.leftover_temp_files().is_empty());
}

#[test]
fn busy_local_port_is_replaced_by_a_free_one() {
    let env = Env::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = busy.local_addr().map(|a| a.port()).unwrap_or(0);
    let run = env.run(&[
        "deploy",
        "--no-smoke",
        "--port",
        &port.to_string(),
        "--json",
    ]);
    run.assert_code(0);
    let pf: Vec<String> = env
        .calls_of("kubectl")
        .into_iter()
        .filter(|c| c.contains("port-forward"))
        .collect();
    assert_eq!(pf.len(), 1);
    assert!(!pf[0].contains(&format!(" {port}:3000")), "{}", pf[0]);
    let ev = run.step_event("forward").unwrap_or_default();
    assert!(
        ev["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("port {port} busy"))),
        "{ev}"
    );
}

/// Starts `deploy --keep-forward` with the frontend's forward failing after `after_ms` (`fault` is the
/// double's state key: it dies or stops answering), and waits until a second forward was started.
fn deploy_until_the_forward_is_replaced(
    env: &Env,
    fault: &str,
    after_ms: u64,
    within: Duration,
) -> Watched {
    env.set_state(|s| s[fault]["todo-frontend"] = after_ms.into());
    let child = env.spawn_watched(&SUPERVISED);
    env.wait_for_calls(within, "a second port-forward", |calls| {
        calls.iter().filter(|c| is_port_forward(c)).count() >= 2
    });
    child
}

#[test]
fn forward_that_dies_is_restored() {
    let env = Env::new();
    let child = deploy_until_the_forward_is_replaced(
        &env,
        "forward_die_after_ms",
        1500,
        Duration::from_secs(30),
    );
    let pid = child.id();
    // The forward's pid is recorded for `cargo xtask clean`, and goes with Ctrl-C.
    let pid_file = env.root.join(".cache/xtask/forward-todo.pid");
    let recorded = std::fs::read_to_string(&pid_file).unwrap_or_default();
    assert!(
        first_line_pid(&recorded).is_some_and(alive),
        "pid file: {recorded:?}"
    );
    // The user is told the forward is back.
    child.wait_for_output(Duration::from_secs(30), "restarted on http://127.0.0.1:");
    sigint(pid);
    let run = child.finish();
    run.assert_code(130);
    assert!(!pid_file.exists(), "pid file left after Ctrl-C");
    let pf = env.port_forward_pids();
    eventually(Duration::from_secs(5), "no forward left", || {
        pf.iter().all(|p| !alive(*p))
    });
}

#[test]
fn ctrl_c_during_the_build_leaves_no_process_and_no_temp_file() {
    let env = Env::new();
    env.set_state(|s| s["build_delay_ms"] = 60_000.into());
    let child = env.spawn(&["deploy", "--no-smoke", "--port", "0"]);
    let pid = child.id();
    env.wait_for_calls(Duration::from_secs(30), "both builds running", |calls| {
        calls
            .iter()
            .filter(|c| c["tool"] == "docker-build-child")
            .count()
            >= 2
    });
    sigint(pid);
    let run = Run::wait(child);
    run.assert_code(130);
    assert!(run.took < Duration::from_secs(10), "{:?}", run.took);
    let pids: Vec<u32> = env
        .calls()
        .iter()
        .filter(|c| c["tool"] == "docker" || c["tool"] == "docker-build-child")
        .filter_map(|c| {
            c["extra"]["child_pid"]
                .as_u64()
                .or(c["pid"].as_u64())
                .map(|p| p as u32)
        })
        .collect();
    assert!(pids.len() >= 4);
    eventually(
        Duration::from_secs(5),
        "builds and their children gone",
        || pids.iter().all(|p| !alive(*p)),
    );
    assert!(
        env.leftover_temp_files().is_empty(),
        "{:?}",
        env.leftover_temp_files()
    );
    assert!(
        env.calls_of("helm")
            .iter()
            .all(|c| !c.starts_with("upgrade")),
        "nothing deployed after Ctrl-C"
    );
}

#[test]
fn helm4_gets_its_own_flag_set() {
    let env = Env::new().with_real_helm(testkit::tools::helm4());
    if env.real_helm.is_none() {
        testkit::ci::missing_prerequisite(
            "helm 4 (.ci/fetch-tools.sh): charts are rendered without it",
        );
    }
    env.set_state(|s| s["helm_version"] = "v4.1.0".into());
    let run = env.run(&["deploy", "--no-smoke", "--port", "0"]);
    run.assert_code(0);
    let upgrades: Vec<String> = env
        .calls_of("helm")
        .into_iter()
        .filter(|c| c.starts_with("upgrade"))
        .collect();
    assert_eq!(upgrades.len(), 2);
    for u in upgrades {
        assert!(
            contains_all(
                &u,
                &["--rollback-on-failure", "--wait=watcher", "--timeout 300s"]
            ),
            "{u}"
        );
        assert!(!u.contains("--atomic"), "{u}");
    }
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let env = Env::new();
    env.set_state(|s| s["cluster"] = "stopped".into());
    let run = env.run(&["deploy", "--dry-run"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains("would run: minikube -p todo start --keep-context"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("would run: helm upgrade --install todo-backend"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("port-forward svc/todo-frontend"),
        "{}",
        run.stdout
    );
    let mutating = env
        .calls()
        .iter()
        .filter(|c| {
            let a = c["argv"].to_string();
            a.contains("\"start\"")
                || a.contains("\"build\"")
                || a.contains("\"upgrade\"")
                || a.contains("\"create\"")
                || a.contains("port-forward")
        })
        .count();
    assert_eq!(mutating, 0, "{:#?}", env.calls());
    assert_eq!(env.state()["cluster"], "stopped");
}

#[test]
fn secrets_reach_helm_only_through_a_0600_file() {
    let env = Env::new();
    let key = "sk-test-0123456789-secret";
    let env_file = env.dir.path().join("deploy.env");
    std::fs::write(&env_file, format!("OPENAI_API_KEY={key}\n")).unwrap_or_else(|e| panic!("{e}"));
    let run = env.run(&[
        "deploy",
        "--no-smoke",
        "--port",
        "0",
        "-v",
        "--env-file",
        env_file.to_str().unwrap_or_default(),
    ]);
    run.assert_code(0);
    assert!(
        !run.stdout.contains(key) && !run.stderr.contains(key),
        "secret printed"
    );
    let log = std::fs::read_to_string(&env.log).unwrap_or_default();
    assert!(!log.contains(key), "secret on a command line");
    let backend = env
        .calls()
        .into_iter()
        .find(|c| c["tool"] == "helm-values" && c["argv"][0] == "todo-backend")
        .unwrap_or_default();
    let files = backend["extra"]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        files.len(),
        3,
        "values-dev + generated + secrets: {backend}"
    );
    assert!(files
        .iter()
        .any(|f| f["keys"].to_string().contains("secrets") && f["mode"] == "600"));
    assert!(env.leftover_temp_files().is_empty());
    assert!(
        run.stderr.contains("$ helm upgrade --install"),
        "-v shows commands"
    );
}

#[test]
fn release_left_pending_by_an_interrupted_helm_is_recovered_first() {
    let env = Env::new();
    env.run(&["deploy", "--no-smoke", "--port", "0"])
        .assert_code(0);
    env.set_state(|s| {
        let r = &mut s["releases"]["todo-backend"];
        r["status"] = "pending-upgrade".into();
        r["revision"] = 2.into();
        if let Some(h) = r["history"].as_array_mut() {
            h.push(serde_json::json!({"revision": 2, "status": "pending-upgrade", "chart": "c", "app_version": "1"}));
        }
    });
    env.clear_calls();
    let run = env.run(&["deploy", "--no-smoke", "--port", "0"]);
    run.assert_code(0);
    let helm = env.calls_of("helm");
    let rb = helm
        .iter()
        .position(|c| c.starts_with("rollback todo-backend 1"));
    let up = helm
        .iter()
        .position(|c| c.starts_with("upgrade --install todo-backend"));
    assert!(
        rb.is_some() && rb < up,
        "rollback before the upgrade: {helm:#?}"
    );
    assert!(run.stdout.contains("pending-upgrade"), "{}", run.stdout);
}

#[test]
fn skip_build_without_images_fails_with_the_missing_tags() {
    let env = Env::new();
    let run = env.run(&["deploy", "--no-smoke", "--port", "0", "--skip-build"]);
    run.assert_code(4);
    assert!(
        run.stderr.contains("--skip-build") && run.stderr.contains("todo-backend:"),
        "{}",
        run.stderr
    );
    env.assert_nothing_built_or_upgraded();
}

#[test]
fn forward_that_stops_answering_is_detected_by_the_probe_and_restarted() {
    let env = Env::new();
    let child = deploy_until_the_forward_is_replaced(
        &env,
        "forward_hang_after_ms",
        1000,
        Duration::from_secs(40),
    );
    let pid = child.id();
    let first = env
        .calls()
        .iter()
        .find(|c| is_port_forward(c))
        .and_then(|c| c["pid"].as_u64())
        .unwrap_or(0) as u32;
    // The hung forward was alive: it was the probe, not an exit, that got it replaced (and killed).
    eventually(Duration::from_secs(5), "the hung forward killed", || {
        !alive(first)
    });
    sigint(pid);
    let run = child.finish();
    run.assert_code(130);
    assert!(run.stdout.contains("stopped answering"), "{}", run.stdout);
}

/// `clean` finds the forward a running `deploy --keep-forward` supervises by the lock it holds (no `/proc`),
/// stops it, and the supervisor does not restart it: the deploy ends by itself.
#[test]
fn clean_stops_a_supervised_forward_through_its_lock() {
    let env = Env::new();
    let mut deploy = env.spawn_supervised();
    let pid_file = env.root.join(".cache/xtask/forward-todo.pid");
    eventually(Duration::from_secs(60), "the forward is supervised", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| first_line_pid(&s).is_some_and(alive))
    });
    let forward: u32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| first_line_pid(&s))
        .unwrap_or(0);
    let run = env.run(&["clean"]);
    run.assert_code(0);
    assert!(
        run.stdout
            .contains(&format!("removed: port-forward (pid {forward})")),
        "{}",
        run.stdout
    );
    eventually(Duration::from_secs(10), "the forward is gone", || {
        !alive(forward)
    });
    // The supervisor saw clean's work and let go: deploy --keep-forward ends on its own, successfully.
    eventually(Duration::from_secs(20), "deploy ends", || {
        deploy.try_wait().ok().flatten().is_some()
    });
    let run = Run::wait(deploy);
    run.assert_code(0);
    assert!(
        run.stdout.contains("was stopped by clean; not restarting"),
        "{}",
        run.stdout
    );
    assert!(!pid_file.exists());
    assert_eq!(
        env.port_forward_pids().len(),
        1,
        "the forward was not restarted"
    );
}
