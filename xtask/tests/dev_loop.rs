//! `cargo xtask dev` against the tool doubles (tests/doubles): the real xtask binary, its watcher on a real
//! workspace copy, the doubles for the cluster (instant builds, rollouts, a compile error the way BuildKit
//! prints rustc's). The same loop against real image builds and real pods is in tests/e2e.

mod deploy_support;

use std::io::{BufRead, BufReader};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use deploy_support::{alive, sigint, Env, Run};
use serde_json::Value;

/// A running `dev --json`: its stdout events arrive on a channel.
struct Dev {
    child: std::process::Child,
    events: Receiver<Value>,
    seen: Vec<Value>,
}

impl Dev {
    fn start(env: &Env) -> Self {
        let mut child = env.spawn(&["dev", "--json", "--no-smoke", "--no-logs", "--port", "0"]);
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Self {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event matching `pred`, within `within`.
    fn wait_for(&mut self, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!("no {what} within {within:?}; events: {:#?}", self.seen)
                }
            }
        }
    }

    fn cycle(&mut self) -> Value {
        self.wait_for(Duration::from_secs(60), "cycle", |v| v["event"] == "cycle")
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| x["image"].as_str().or(x.as_str()).unwrap_or("").to_string())
        .collect()
}

fn append(env: &Env, rel: &str, line: &str) {
    let p = env.root.join(rel);
    let mut text = std::fs::read_to_string(&p).unwrap_or_default();
    text.push_str(line);
    text.push('\n');
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

#[test]
fn dev_rebuilds_what_changed_keeps_serving_on_errors_and_leaves_the_release_on_ctrl_c() {
    let env = Env::new().with_real_helm(testkit::tools::helm3());
    if env.real_helm.is_none() {
        return testkit::ci::missing_prerequisite("helm 3 (.ci/fetch-tools.sh)");
    }
    let mut dev = Dev::start(&env);
    dev.wait_for(Duration::from_secs(60), "the watch", |v| {
        v["event"] == "watching"
    });
    let builds_at_start = env
        .calls_of("docker")
        .iter()
        .filter(|c| c.starts_with("build"))
        .count();
    assert_eq!(builds_at_start, 2, "the first deploy builds both images");
    let pf_pids = env.port_forward_pids();
    assert!(!pf_pids.is_empty(), "the forward runs");
    assert!(
        env.calls_of("docker")
            .iter()
            .all(|c| !c.starts_with("build") || c.contains("CARGO_PROFILE=image-dev")),
        "dev builds with the fast profile: {:#?}",
        env.calls_of("docker")
    );

    // 1. A backend source change: only the backend is rebuilt and upgraded, and the line says why.
    env.clear_calls();
    append(&env, "backend/src/main.rs", "// dev loop test: a change");
    let c = dev.cycle();
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["rebuilt"]), ["todo-backend"], "{c}");
    assert_eq!(c["rebuilt"][0]["because"][0], "backend/src/main.rs", "{c}");
    assert_eq!(names(&c["upgraded"]), ["todo-backend"], "{c}");
    let helm = env.calls_of("helm");
    assert!(
        helm.iter()
            .any(|h| h.starts_with("upgrade --install todo-backend")),
        "{helm:#?}"
    );
    assert!(
        !helm
            .iter()
            .any(|h| h.starts_with("upgrade --install todo-frontend")),
        "{helm:#?}"
    );
    let builds: Vec<String> = env
        .calls_of("docker")
        .into_iter()
        .filter(|c| c.starts_with("build"))
        .collect();
    assert_eq!(builds.len(), 1, "{builds:#?}");
    assert!(builds[0].contains("todo-backend:"), "{builds:#?}");

    // 2. A chart value: an upgrade of that release and no build at all.
    env.clear_calls();
    append(
        &env,
        "helm/frontend/values-dev.yaml",
        "podAnnotations:\n  dev-loop-test: \"1\"",
    );
    let c = dev.cycle();
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["rebuilt"]), Vec::<String>::new(), "{c}");
    assert_eq!(names(&c["upgraded"]), ["todo-frontend"], "{c}");
    assert!(
        env.calls_of("docker")
            .iter()
            .all(|c| !c.starts_with("build")),
        "{:#?}",
        env.calls_of("docker")
    );

    // 3. A compile error: the compiler's lines, nothing upgraded, and the loop goes on.
    env.clear_calls();
    append(
        &env,
        "frontend/src/main.rs",
        "compile_error!(\"the dev loop test broke this\");",
    );
    let c = dev.cycle();
    assert_eq!(c["ok"], false, "{c}");
    let err = c["error"].as_str().unwrap_or_default();
    assert!(err.contains("frontend does not compile"), "{err}");
    assert!(
        err.contains("error: the dev loop test broke this")
            && err.contains("--> frontend/src/main.rs:"),
        "{err}"
    );
    assert!(
        !err.contains("ERROR: failed to solve"),
        "BuildKit's own summary is left out: {err}"
    );
    assert!(
        env.calls_of("helm")
            .iter()
            .all(|h| !h.starts_with("upgrade")),
        "a failed build upgrades nothing"
    );

    // 4. The fix rolls out, and the line names the input against what runs.
    let main = env.root.join("frontend/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap_or_default();
    std::fs::write(
        &main,
        text.replace(
            "compile_error!(\"the dev loop test broke this\");",
            "// fixed",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = dev.cycle();
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["upgraded"]), ["todo-frontend"], "{c}");

    // 5. Ctrl-C: the loop ends with 130, its children with it; the releases stay.
    sigint(dev.child.id());
    let run = Run::wait(dev.child);
    run.assert_code(130);
    assert!(
        run.stderr.contains("`cargo xtask clean` removes them"),
        "{}",
        run.stderr
    );
    deploy_support::eventually(Duration::from_secs(10), "no forward left", || {
        pf_pids.iter().all(|p| !alive(*p))
    });
    let state = env.state();
    for r in ["todo-backend", "todo-frontend"] {
        assert_eq!(
            state["releases"][r]["status"], "deployed",
            "{r} was touched: {}",
            state["releases"]
        );
    }
    assert!(env
        .calls_of("helm")
        .iter()
        .all(|h| !h.starts_with("uninstall")));
    assert!(
        env.leftover_temp_files().is_empty(),
        "{:?}",
        env.leftover_temp_files()
    );
}

/// A first deploy that fails for something an edit fixes (here a compile error) does not end `dev`: it says
/// so and deploys again at the next change.
#[test]
fn a_failed_first_deploy_is_tried_again_at_the_next_change() {
    let env = Env::new().with_real_helm(testkit::tools::helm3());
    if env.real_helm.is_none() {
        return testkit::ci::missing_prerequisite("helm 3 (.ci/fetch-tools.sh)");
    }
    append(
        &env,
        "frontend/src/main.rs",
        "compile_error!(\"broken before dev started\");",
    );
    let mut dev = Dev::start(&env);
    let failed = dev.wait_for(Duration::from_secs(60), "the failed first deploy", |v| {
        v["event"] == "first_deploy_failed"
    });
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("step images failed")),
        "{failed}"
    );
    assert!(
        env.calls_of("helm")
            .iter()
            .all(|h| !h.starts_with("upgrade")),
        "nothing was installed"
    );
    let main = env.root.join("frontend/src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap_or_default();
    std::fs::write(
        &main,
        text.replace("compile_error!(\"broken before dev started\");", "// fixed"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dev.wait_for(
        Duration::from_secs(60),
        "the watch after the retried deploy",
        |v| v["event"] == "watching",
    );
    let helm = env.calls_of("helm");
    assert!(
        helm.iter()
            .any(|h| h.starts_with("upgrade --install todo-frontend")),
        "{helm:#?}"
    );
    sigint(dev.child.id());
    Run::wait(dev.child).assert_code(130);
}
