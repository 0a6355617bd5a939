//! The whole `cargo xtask deploy` on this machine, with the cluster played by the Docker-backed double:
//! fresh deploy to a green smoke test, a no-op redeploy, a frontend-only change, validate, the failure
//! drills, and clean. Runs the real xtask binary on a snapshot of the workspace (so concurrent edits to
//! the tree cannot change image hashes mid-test) with the unchanged product code, charts and Dockerfiles.

use e2e_tests::run::{append_comment, free_port, loads, revision_diff, Env, Run, Setup};
use e2e_tests::state;
use std::time::{Duration, Instant};

#[test]
fn xtask_deploy_validate_drills_and_clean_through_the_docker_backed_double() {
    let Some(setup) = Setup::new(&e2e_tests::double_bins!()) else {
        return;
    };
    setup.run(scenario);
}

fn scenario(env: &Env<'_>) {
    let c = env.c;
    let port = free_port().to_string();

    // 1. Fresh deploy: profile created, images built and loaded, both releases installed, smoke test green.
    let first = env.xtask(&["deploy", "--json", "--port", &port]);
    first.report("fresh deploy");
    let built = env.built_by(&first);
    assert!(
        built.len() == 2
            && built.iter().any(|i| i.starts_with("todo-backend:"))
            && built.iter().any(|i| i.starts_with("todo-frontend:")),
        "a fresh deploy built {built:?}\n{}",
        first.dump()
    );
    assert_eq!(first.code, Some(0), "{}", first.dump());
    let loaded = loads(&state::read_calls(&c.state));
    assert!(
        loaded.iter().any(|i| i.starts_with("todo-backend:"))
            && loaded.iter().any(|i| i.starts_with("todo-frontend:")),
        "{loaded:?}"
    );
    assert!(
        state::read_desired(&c.state)
            .unwrap()
            .current_context
            .is_none(),
        "deploy switched the kube context"
    );

    // 2. Nothing changed: no build, no load, no pod restarted.
    let backend_before = env.pod_ids("todo-backend");
    let frontend_before = env.pod_ids("todo-frontend");
    let n = state::read_calls(&c.state).len();
    let second = env.xtask(&["deploy", "--json", "--port", &port]);
    second.report("no-op redeploy");
    assert_eq!(second.code, Some(0), "{}", second.dump());
    assert!(
        loads(&env.calls_since(n)).is_empty(),
        "a no-op deploy loaded images"
    );
    if env.pod_ids("todo-backend") != backend_before {
        println!("{}", revision_diff(&c.state, "todo/todo-backend"));
    }
    assert_eq!(
        env.pod_ids("todo-backend"),
        backend_before,
        "backend pods restarted"
    );
    assert_eq!(
        env.pod_ids("todo-frontend"),
        frontend_before,
        "frontend pods restarted"
    );

    // 3. A frontend-only source change: only the frontend is rebuilt, loaded and rolled.
    append_comment(
        &env.root.join("frontend/src/main.rs"),
        "e2e: a source change in the frontend only",
    );
    let n = state::read_calls(&c.state).len();
    let third = env.xtask(&["deploy", "--json", "--port", &port]);
    third.report("frontend-only change");
    assert_eq!(third.code, Some(0), "{}", third.dump());
    let built = env.built_by(&third);
    assert!(
        built.len() == 1 && built[0].starts_with("todo-frontend:"),
        "a frontend-only change built {built:?}"
    );
    let l = loads(&env.calls_since(n));
    assert!(
        l.iter().all(|i| i.starts_with("todo-frontend:")) && l.len() == 1,
        "loaded {l:?}"
    );
    assert_eq!(
        env.pod_ids("todo-backend"),
        backend_before,
        "the backend was rolled"
    );
    assert_ne!(
        env.pod_ids("todo-frontend"),
        frontend_before,
        "the frontend was not rolled"
    );

    // 4. validate: static and live checks pass against the double.
    let v = env.xtask(&["validate"]);
    println!(
        "== validate: exit {:?} in {:.1} s\n{}",
        v.code,
        v.took.as_secs_f64(),
        v.stdout
    );
    assert_eq!(v.code, Some(0), "{}", v.dump());

    // 4b. Data survives clean: a task made before `clean` is there after the next deploy.
    data_survives_clean(env, &port);

    // 5. Drill: the bundled database stops (scaled to 0): the backend turns not ready, then recovers.
    c.ok(
        "kubectl",
        &[
            "--context",
            "todo",
            "-n",
            "todo",
            "scale",
            "statefulset/todo-backend-postgresql",
            "--replicas=0",
        ],
    )
    .unwrap();
    let t = Instant::now();
    c.poll(
        "the backend reported not ready",
        Duration::from_secs(120),
        || (env.backend_ready() == Some(false)).then_some(()),
    )
    .unwrap();
    println!(
        "== database stopped: backend not ready after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let d = env.xtask(&["diagnose"]);
    println!(
        "== diagnose (database down): exit {:?}\n{}",
        d.code, d.stdout
    );
    // What diagnose must say while the database is down: the backend's readiness probe fails on /ready, so
    // its Deployment has no ready replica; critical findings, exit 4.
    assert_eq!(d.code, Some(4), "{}", d.dump());
    for finding in [
        "[probe-failing]",
        "readiness probe of container backend fails (GET /ready on port http)",
        "Deployment/todo-backend [deployment-replicas]",
        "0 of 1 replicas ready",
    ] {
        assert!(
            d.stdout.contains(finding),
            "no {finding:?} in:\n{}",
            d.stdout
        );
    }
    c.ok(
        "kubectl",
        &[
            "--context",
            "todo",
            "-n",
            "todo",
            "scale",
            "statefulset/todo-backend-postgresql",
            "--replicas=1",
        ],
    )
    .unwrap();
    let t = Instant::now();
    c.poll("the backend ready again", Duration::from_secs(180), || {
        (env.backend_ready() == Some(true)).then_some(())
    })
    .unwrap();
    println!(
        "== database back: backend ready after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The drills report what the xtask did not classify, and the run still reaches clean.
    let mut failed: Vec<String> = Vec::new();
    // 6. Drill: an image tag that was never loaded -> classified pull failure, release rolled back.
    let values = c.root.path().join("never-loaded.yaml");
    std::fs::write(&values, "image:\n  tag: \"0123456789ab\"\n").unwrap();
    let r = env.xtask(&[
        "deploy",
        "--skip-build",
        "--no-smoke",
        "--timeout",
        "60",
        "--port",
        &port,
        "--values",
        &values.display().to_string(),
    ]);
    let text = drill_outcome(&mut failed, "never-loaded tag", &r);
    check(
        &mut failed,
        text.contains("[image-not-loaded]")
            && text.contains("image todo-backend:0123456789ab is not loaded into the cluster"),
        &text,
    );

    // 7. Drill: a backend that crashes at start (an unparseable external DATABASE_URL).
    let envf = c.root.path().join("crash.env");
    std::fs::write(
        &envf,
        "DATABASE_URL=postgres://todo:drill-pw-0451@db.invalid:notaport/todo\n",
    )
    .unwrap();
    // Each drill points the backend at another database: a switch the xtask stops unless asked for
    // (--switch-database).
    let r = env.xtask(&[
        "deploy",
        "--skip-build",
        "--no-smoke",
        "--switch-database",
        "--timeout",
        "90",
        "--port",
        &port,
        "--env-file",
        &envf.display().to_string(),
    ]);
    let text = drill_outcome(&mut failed, "crashing backend", &r);
    check(
        &mut failed,
        text.contains("[crash-loop]") && text.contains("container backend keeps crashing"),
        &text,
    );
    // The settings step names the database it switches to without its credentials
    // (`postgres://db.invalid:notaport/todo`); the password and the URL as given never appear.
    check(
        &mut failed,
        !text.contains("drill-pw-0451") && !text.contains("todo:drill-pw"),
        "the database password was printed",
    );

    // 8. Drill: readiness never green (a well-formed external database URL where nothing listens:
    // inside the pod 127.0.0.1:1 refuses at once, and no traffic leaves this machine).
    std::fs::write(&envf, "DATABASE_URL=postgres://u:p@127.0.0.1:1/todo\n").unwrap();
    let r = env.xtask(&[
        "deploy",
        "--skip-build",
        "--no-smoke",
        "--switch-database",
        // Longer than the xtask's 60 s give-up time for a failing probe: the classification, not
        // helm's timeout, must end this deploy.
        "--timeout",
        "150",
        "--port",
        &port,
        "--env-file",
        &envf.display().to_string(),
    ]);
    let text = drill_outcome(&mut failed, "readiness never green", &r);
    check(
        &mut failed,
        // Classified by the rollout watch (probe and path named), not left to helm's timeout.
        text.contains("readiness probe") && text.contains("GET /ready"),
        &text,
    );

    // 9. clean: no container, network or release left.
    let r = env.xtask(&["clean"]);
    println!(
        "== clean: exit {:?} in {:.1} s\n{}",
        r.code,
        r.took.as_secs_f64(),
        r.stdout
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    c.poll(
        "no container and no network",
        Duration::from_secs(60),
        || (c.containers().is_empty() && c.networks().is_empty()).then_some(()),
    )
    .unwrap();
    let list = c
        .ok(
            "helm",
            &["list", "-A", "--kube-context", "todo", "-o", "json"],
        )
        .unwrap();
    assert_eq!(list.trim(), "[]", "releases left: {list}");
    assert!(
        failed.is_empty(),
        "failure drills not classified as promised:\n{}",
        failed.join("\n---\n")
    );
}

/// Prints a drill's outcome and records a failure if its deploy succeeded; returns its output, for
/// the checks of the classification.
fn drill_outcome(failed: &mut Vec<String>, name: &str, r: &Run) -> String {
    println!(
        "== drill {name}: exit {:?} in {:.1} s\n{}{}",
        r.code,
        r.took.as_secs_f64(),
        r.stdout,
        r.stderr
    );
    check(failed, r.code != Some(0), "the drill deploy succeeded");
    format!("{}{}", r.stdout, r.stderr)
}

fn check(failed: &mut Vec<String>, ok: bool, what: &str) {
    if !ok {
        let tail: String = what
            .chars()
            .rev()
            .take(1500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        failed.push(tail);
    }
}

/// Runs `deploy --keep-forward` until the frontend answers through the forward; the deploy is stopped with
/// Ctrl-C (which leaves the release running) when the returned guard drops.
fn forwarded(env: &Env<'_>, port: &str) -> KeepForward {
    let child = env
        .command(&["deploy", "--no-smoke", "--keep-forward", "--port", port])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("deploy --keep-forward");
    let guard = KeepForward(child);
    let url = format!("http://127.0.0.1:{port}/api/health");
    env.c
        .poll("the forward", Duration::from_secs(300), || {
            ureq::get(&url)
                .timeout(Duration::from_secs(5))
                .call()
                .ok()
                .and_then(|r| r.into_json::<serde_json::Value>().ok())
                .filter(|v| v["backend"]["reachable"] == true)
        })
        .expect("the frontend answers through the forward");
    guard
}

struct KeepForward(std::process::Child);

impl Drop for KeepForward {
    fn drop(&mut self) {
        // SAFETY: kill(2) touches no memory.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGINT);
        }
        let _ = self.0.wait();
    }
}

/// Signs in through the frontend (the session cookie), or registers first.
fn session(base: &str, email: &str, register: bool) -> String {
    let path = if register { "register" } else { "login" };
    let r = ureq::post(&format!("{base}/api/auth/{path}"))
        .timeout(Duration::from_secs(30))
        .send_json(serde_json::json!({"email": email, "password": "survives-clean-pw-0123"}))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    r.all("set-cookie")
        .into_iter()
        .filter_map(|c| c.split(';').next())
        .find(|c| c.contains("todo_session="))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{path} set no session cookie"))
}

fn data_survives_clean(env: &Env<'_>, port: &str) {
    let base = format!("http://127.0.0.1:{port}");
    let email = format!("survivor-{}@example.com", testkit::unique_id());
    let title = "this task survives cargo xtask clean";
    {
        let _fw = forwarded(env, port);
        let cookie = session(&base, &email, true);
        ureq::post(&format!("{base}/api/tasks"))
            .set("cookie", &cookie)
            .timeout(Duration::from_secs(30))
            .send_json(serde_json::json!({"title": title}))
            .expect("creating the task");
    }
    let r = env.xtask(&["clean"]);
    println!(
        "== clean keeping the data: exit {:?} in {:.1} s\n{}",
        r.code,
        r.took.as_secs_f64(),
        r.stdout
    );
    assert_eq!(r.code, Some(0), "{}", r.dump());
    assert!(
        r.stdout
            .contains("kept the bundled database's data in namespace todo"),
        "{}",
        r.dump()
    );
    let list = env
        .c
        .ok(
            "helm",
            &["list", "-A", "--kube-context", "todo", "-o", "json"],
        )
        .unwrap_or_default();
    assert_eq!(list.trim(), "[]", "releases left: {list}");
    let again = env.xtask(&["deploy", "--no-smoke", "--port", port]);
    again.report("deploy after clean");
    assert_eq!(again.code, Some(0), "{}", again.dump());
    let _fw = forwarded(env, port);
    // The account and its task are in the old volume, readable with the kept password.
    let cookie = session(&base, &email, false);
    let tasks: serde_json::Value = ureq::get(&format!("{base}/api/tasks"))
        .set("cookie", &cookie)
        .timeout(Duration::from_secs(30))
        .call()
        .expect("listing the tasks")
        .into_json()
        .expect("the task list is JSON");
    assert!(
        tasks
            .as_array()
            .is_some_and(|a| a.iter().any(|t| t["title"] == title)),
        "the task did not survive clean: {tasks}"
    );
    println!("== data survived clean: the task made before clean is there after the next deploy");
}
