//! `cargo xtask dev` on this machine, the cluster played by the Docker-backed double: the first deploy, then a
//! frontend source change (only the frontend rebuilt and rolled, the URL answering all along, the new pod's
//! lines in the log stream), a chart value (an upgrade without a build), a compile error (the compiler's
//! lines, the previous version still serving), its fix (rolled out), and Ctrl-C (no process left, the
//! releases still installed). Real image builds (the `image-dev` profile) and real containers.

use e2e_tests::run::{append_comment, free_port, Env, Setup};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn dev_loop_through_the_docker_backed_double() {
    let Some(setup) = Setup::new(&e2e_tests::double_bins!()) else {
        return;
    };
    setup.run(scenario);
}

/// A client that asks `url` every 50 ms and counts what did not answer 200.
struct Client {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Client {
    fn start(url: String) -> Self {
        let c = Self {
            stop: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            errors: Arc::default(),
        };
        let (stop, ok, failed, errors) = (
            Arc::clone(&c.stop),
            Arc::clone(&c.ok),
            Arc::clone(&c.failed),
            Arc::clone(&c.errors),
        );
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(40))
                .build();
            while !stop.load(Ordering::SeqCst) {
                match agent.get(&url).call() {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        if let Ok(mut e) = errors.lock() {
                            e.push(format!("{:?}", other.map(|r| r.status())));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        c
    }

    /// Waits until `n` requests were answered in all; panics after `within`.
    fn wait_for_answers(&self, n: u64, within: Duration) {
        let end = Instant::now() + within;
        while self.ok.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < end,
                "fewer than {n} answers within {within:?}: {:?}",
                self.counts()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The events of a running `dev --json`.
struct Events {
    rx: Receiver<Value>,
    seen: Vec<Value>,
}

impl Events {
    fn wait(&mut self, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + within;
        while let Ok(v) = self
            .rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.seen.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
        let tail: Vec<&Value> = self.seen.iter().rev().take(40).collect();
        panic!("no {what} within {within:?}; last events: {tail:#?}");
    }

    fn cycle(&mut self, what: &str, built: &std::cell::RefCell<Vec<String>>) -> Value {
        let c = self.wait(Duration::from_secs(900), what, |v| v["event"] == "cycle");
        for r in c["rebuilt"].as_array().into_iter().flatten() {
            if let (Some(i), Some(t)) = (r["image"].as_str(), r["tag"].as_str()) {
                built.borrow_mut().push(format!("{i}:{t}"));
            }
        }
        println!(
            "== {what}: ok {} in {:.1} s (build {:.1} s, load {:.1} s, rollout {:.1} s)",
            c["ok"],
            ms(&c["duration_ms"]),
            ms(&c["build_ms"]),
            ms(&c["load_ms"]),
            ms(&c["rollout_ms"])
        );
        c
    }

    /// The first event from the `since`-th on that matches `pred`, among those seen or the next ones: an
    /// event can arrive before the one a test waited for first (a forward switch before the cycle line).
    fn find_or_wait(
        &mut self,
        since: usize,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        match self.seen.iter().skip(since).find(|v| pred(v)) {
            Some(v) => v.clone(),
            None => self.wait(within, what, pred),
        }
    }

    /// Frontend pods that printed a line so far.
    fn frontend_pods(&self) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter(|e| e["event"] == "log" && e["service"] == "frontend")
            .filter_map(|e| e["pod"].as_str().map(str::to_string))
            .collect()
    }
}

fn ms(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64 / 1000.0
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|x| x["image"].as_str().or(x.as_str()).unwrap_or("").to_string())
        .collect()
}

/// Every process descended from `pid` (from /proc: test code on Linux).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let rest = stat.rsplit_once(')')?.1;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn scenario(env: &Env<'_>) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/health");
    // What a user's browser asks for: the page. (`/api/health` is the readiness endpoint: a pod that is
    // stopping says 503 there on purpose, while it still serves everything else.)
    let page = format!("http://127.0.0.1:{port}/");
    let mut child = env
        .command(&["dev", "--json", "--port", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting dev");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let errlog = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = Arc::clone(&errlog);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(mut s) = sink.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
    let mut ev = Events {
        rx,
        seen: Vec::new(),
    };
    let t = Instant::now();
    ev.wait(
        Duration::from_secs(1800),
        "the first deploy and the watch",
        |v| v["event"] == "watching",
    );
    println!(
        "== dev: first deploy (image-dev profile, both images) and watch in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let smoke = ev
        .seen
        .iter()
        .find(|e| e["step"] == "smoke" && e["event"] == "step_finished");
    assert!(
        smoke.is_some(),
        "the first deploy ran the smoke test: {:#?}",
        ev.seen
    );
    for e in &ev.seen {
        if e["event"] == "step_finished" && e["step"] == "images" {
            let d = e["detail"].as_str().unwrap_or("");
            env.built.borrow_mut().extend(
                d.strip_prefix("built ")
                    .and_then(|r| r.split(" in ").next())
                    .map(|l| l.split(", ").map(str::to_string).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        }
    }
    ev.wait(Duration::from_secs(60), "the first log lines", |v| {
        v["event"] == "log" && v["service"] == "frontend"
    });
    let client = Client::start(page.clone());

    // 1. A frontend source change: only the frontend rebuilt and rolled; the URL answers throughout.
    let pods_before = ev.frontend_pods();
    let since_change = ev.seen.len();
    let (ok_before, failed_before) = client.counts();
    append_comment(
        &env.root.join("frontend/src/main.rs"),
        "dev loop e2e: a source-only change",
    );
    let c = ev.cycle("frontend source change", &env.built);
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["rebuilt"]), ["todo-frontend"], "{c}");
    assert_eq!(
        c["rebuilt"][0]["because"],
        serde_json::json!(["frontend/src/main.rs"]),
        "{c}"
    );
    assert_eq!(names(&c["upgraded"]), ["todo-frontend"], "{c}");
    // The new pod's lines arrive with its own prefix.
    let new_pod = ev.wait(
        Duration::from_secs(120),
        "a log line of the new frontend pod",
        |v| {
            v["event"] == "log"
                && v["service"] == "frontend"
                && v["pod"].as_str().is_some_and(|p| !pods_before.contains(p))
        },
    );
    println!("   new pod {} logged: {}", new_pod["pod"], new_pod["line"]);
    // The forward moves to the new pod while the old one still serves (as kubectl would reach a terminating
    // pod until it exits), not after the old one stopped answering.
    let new_name = new_pod["pod"].as_str().unwrap_or_default().to_string();
    let moved = ev.find_or_wait(
        since_change,
        Duration::from_secs(60),
        "the frontend forward moving to the new pod",
        |v| {
            v["event"] == "forward"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("svc/todo-frontend"))
        },
    );
    let msg = moved["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(" now to pod ") && msg.contains(&new_name),
        "the forward did not roll over to {new_name}: {msg}"
    );
    // And requests answered through the new pod too.
    let (ok_moved, _) = client.counts();
    client.wait_for_answers(ok_moved + 5, Duration::from_secs(30));
    let (ok_after, failed_after) = client.counts();
    println!(
        "   requests through the forward during the change: {} answered, {} failed",
        ok_after - ok_before,
        failed_after - failed_before
    );
    assert!(ok_after > ok_before, "the client got no answer at all");
    assert_eq!(
        failed_after - failed_before,
        0,
        "requests failed during the rollout: {:?}",
        client.errors.lock().map(|e| e.clone()).unwrap_or_default()
    );

    // 2. A chart value: the release upgraded, nothing built.
    let values = env.root.join("helm/frontend/values-dev.yaml");
    let mut text = std::fs::read_to_string(&values).unwrap_or_default();
    text.push_str("\npodAnnotations:\n  dev-loop-e2e: \"1\"\n");
    std::fs::write(&values, text).expect("values-dev.yaml");
    let c = ev.cycle("chart value change", &env.built);
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["rebuilt"]), Vec::<String>::new(), "{c}");
    assert_eq!(c["build_ms"], 0, "{c}");
    assert_eq!(names(&c["upgraded"]), ["todo-frontend"], "{c}");

    // 3. A compile error: rustc's lines, nothing rolled out, the previous version still serving.
    let main = env.root.join("frontend/src/main.rs");
    let good = std::fs::read_to_string(&main).unwrap_or_default();
    std::fs::write(
        &main,
        format!("{good}\ncompile_error!(\"dev loop e2e broke the build\");\n"),
    )
    .expect("main.rs");
    let serving_before = env.pod_ids("todo-frontend");
    let c = ev.cycle("compile error", &env.built);
    assert_eq!(c["ok"], false, "{c}");
    let err = c["error"].as_str().unwrap_or_default();
    assert!(err.contains("error: dev loop e2e broke the build"), "{err}");
    assert!(err.contains("--> frontend/src/main.rs:"), "{err}");
    assert!(err.contains("could not compile `frontend`"), "{err}");
    assert_eq!(
        env.pod_ids("todo-frontend"),
        serving_before,
        "a failed build touched the release"
    );
    let r = ureq::get(&url).timeout(Duration::from_secs(10)).call();
    assert!(
        r.is_ok_and(|r| r.status() == 200),
        "the previous version stopped serving"
    );

    // 4. The fix rolls out.
    std::fs::write(&main, format!("{good}\n// fixed\n")).expect("main.rs");
    let c = ev.cycle("the fix", &env.built);
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(names(&c["upgraded"]), ["todo-frontend"], "{c}");
    assert_ne!(
        env.pod_ids("todo-frontend"),
        serving_before,
        "the fix did not roll out"
    );
    let (ok_total, failed_total) = client.counts();
    println!("   requests over the whole loop: {ok_total} answered, {failed_total} failed");
    assert_eq!(
        failed_total,
        0,
        "requests failed during the loop's rollouts: {:?}",
        client.errors.lock().map(|e| e.clone()).unwrap_or_default()
    );
    drop(client);

    // 5. Ctrl-C: exit 130, no process left behind, the releases still installed.
    let kids = descendants(child.id());
    assert!(!kids.is_empty(), "dev runs a forward and log streams");
    // SAFETY: kill(2) touches no memory.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("dev exits");
    assert_eq!(
        status.code(),
        Some(130),
        "{}",
        errlog.lock().map(|s| s.clone()).unwrap_or_default()
    );
    let end = Instant::now() + Duration::from_secs(15);
    while kids.iter().any(|p| alive(*p)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<u32> = kids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "processes left after Ctrl-C: {left:?}");
    for r in ["todo-backend", "todo-frontend"] {
        let s = env
            .c
            .ok(
                "helm",
                &[
                    "status",
                    r,
                    "-n",
                    "todo",
                    "--kube-context",
                    "todo",
                    "-o",
                    "json",
                ],
            )
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(v["info"]["status"], "deployed", "{r} after Ctrl-C: {s}");
    }
    let r = env.xtask(&["clean"]);
    assert_eq!(r.code, Some(0), "{}", r.dump());
}
