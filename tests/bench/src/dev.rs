//! Benchmark: the inner loop. Through the Docker-backed cluster double (tests/e2e), after a one-line change
//! in `frontend/src` and then in `backend/src`: the time from the file write until the new version answers
//! through the forward in `cargo xtask dev`, against the time of a plain `cargo xtask deploy` after the same
//! kind of change, in one run. "The new version answers" means `/health` reports the new image's tag
//! (`build`, from the chart's `TODO_BUILD`).
//!
//! `cargo run --release -p bench -- dev`. Needs what the e2e tests need (root, Docker, debootstrap, helm).
//! Both sides are measured warm: a deploy (release profile) and dev's first deploy (image-dev profile)
//! build each profile's dependencies before anything is timed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use e2e_tests::harness::DoubleBins;
use e2e_tests::run::{free_port, Env, Setup};
use serde_json::Value;

/// The services, with the source file changed: a file of each library crate (the binary's `main.rs` alone
/// would leave the library compiled and measure little more than a link).
const SERVICES: [(&str, &str); 2] = [
    ("frontend", "frontend/src/lib.rs"),
    ("backend", "backend/src/app.rs"),
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Builds the double's binaries (debug, as the e2e tests use them) and returns their paths.
fn double_bins() -> Result<DoubleBins, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "-p", "e2e-tests", "--bins"])
        .current_dir(e2e_tests::run::workspace())
        .status()
        .map_err(|e| format!("cargo build -p e2e-tests: {e}"))?;
    if !st.success() {
        return Err("cargo build -p e2e-tests --bins failed".into());
    }
    let bin = |n: &str| target_dir().join("debug").join(n);
    Ok(DoubleBins {
        minikube: bin("minikube"),
        helm: bin("helm"),
        kubectl: bin("kubectl"),
    })
}

/// What `/health` on `port` reports as its build, if it answers. A new connection per call, as a new
/// visitor would open: a kept-alive one stays on the old pod until that pod drains it, as through a Service.
fn build_at(port: u16) -> Option<String> {
    let r = ureq::AgentBuilder::new()
        .build()
        .get(&format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?;
    let v: Value = r.into_json().ok()?;
    v["build"].as_str().map(str::to_string)
}

/// Polls until `/health` on `port` reports a build other than `old`; the time it took.
fn served_after(port: u16, old: &str, since: Instant, limit: Duration) -> Result<Duration, String> {
    while since.elapsed() < limit {
        if build_at(port).is_some_and(|b| b != old) {
            return Ok(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no new build answered on port {port} within {limit:?}"
    ))
}

fn one_line_change(root: &Path, file: &str, what: &str) -> Result<(), String> {
    let p = root.join(file);
    let mut text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    // A line of code, not a comment: rustc's incremental cache makes a trailing comment nearly free.
    let id = testkit::unique_id().replace('-', "_");
    text.push_str(&format!(
        "\n#[doc(hidden)]\npub const BENCH_DEV_{id}: &str = \"{what}\";\n"
    ));
    std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
}

/// A `dev --json` run: its events.
struct Dev {
    child: std::process::Child,
    /// Each JSON line of dev's stdout with the moment it was read.
    rx: Receiver<(Instant, Value)>,
}

impl Dev {
    /// The first event matching `pred` within `within`, with the moment dev printed it.
    fn wait(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<(Instant, Value)> {
        let end = Instant::now() + within;
        while let Ok((at, v)) = self
            .rx
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            if pred(&v) {
                return Some((at, v));
            }
        }
        None
    }
}

fn ms(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64 / 1000.0
}

fn measure(env: &Env<'_>) -> Result<(), String> {
    let (front, back) = (free_port(), free_port());
    let ports = |svc: &str| if svc == "frontend" { front } else { back };
    let deploy = |what: &str| -> Result<e2e_tests::run::Run, String> {
        let r = env.xtask(&[
            "deploy",
            "--json",
            "--port",
            &front.to_string(),
            "--backend-port",
            &back.to_string(),
        ]);
        env.built_by(&r);
        if r.code != Some(0) {
            return Err(format!("{what}: {}", r.dump()));
        }
        Ok(r)
    };
    // Warm the release profile's dependencies, then time a deploy after each one-line change.
    let t = Instant::now();
    deploy("the warm-up deploy")?;
    println!(
        "warm-up deploy (release profile, both images cold): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut plain = Vec::new();
    for (svc, file) in SERVICES {
        one_line_change(&env.root, file, "deploy")?;
        let t = Instant::now();
        let r = deploy(&format!("deploy after a {svc} change"))?;
        let took = t.elapsed();
        let step = |name: &str| {
            r.steps()
                .iter()
                .filter(|(s, _, _)| s == name)
                .map(|(_, _, ms)| *ms as f64 / 1000.0)
                .sum::<f64>()
        };
        println!(
            "deploy after a {svc} change: {:.1} s (images {:.1} s, load {:.1} s, release {:.1} s, smoke {:.1} s)",
            took.as_secs_f64(),
            step("images"),
            step("load"),
            step("release"),
            step("smoke")
        );
        plain.push(took);
    }
    // The same through dev: its first deploy warms the image-dev profile, then each change is timed from
    // the write until the new build answers through the forward.
    let mut child = env
        .command(&[
            "dev",
            "--json",
            "--no-logs",
            "--no-smoke",
            "--port",
            &front.to_string(),
            "--backend-port",
            &back.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("starting dev: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                // dev's own account, to explain an outlier: cycles and forward switches, not log lines.
                if v["event"] != "log" {
                    eprintln!("  dev +{:.1} s: {v}", started.elapsed().as_secs_f64());
                }
                let _ = tx.send((Instant::now(), v));
            }
        }
    });
    let dev = Dev { child, rx };
    let t = Instant::now();
    dev.wait(Duration::from_secs(1800), |v| {
        if v["event"] == "step_finished" && v["step"] == "images" {
            env.built_by(&e2e_tests::run::Run {
                code: Some(0),
                stdout: v.to_string(),
                stderr: String::new(),
                took: Duration::ZERO,
            });
        }
        v["event"] == "watching"
    })
    .ok_or("dev did not start watching")?;
    println!(
        "dev's first deploy (image-dev profile, both images cold): {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut lines = Vec::new();
    for ((svc, file), deploy_took) in SERVICES.iter().zip(&plain) {
        let port = ports(svc);
        let old = build_at(port).ok_or_else(|| format!("{svc} /health has no build"))?;
        one_line_change(&env.root, file, "dev")?;
        eprintln!(
            "  bench +{:.1} s: changed {file}",
            started.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let served = served_after(port, &old, t, Duration::from_secs(600))?;
        let (cycle_end, cycle) = dev
            .wait(Duration::from_secs(30), |v| v["event"] == "cycle")
            .ok_or_else(|| format!("dev printed no cycle for the {svc} change"))?;
        for r in cycle["rebuilt"].as_array().into_iter().flatten() {
            if let (Some(i), Some(tag)) = (r["image"].as_str(), r["tag"].as_str()) {
                env.built.borrow_mut().push(format!("{i}:{tag}"));
            }
        }
        let build = ms(&cycle["build_ms"]);
        let (load, rollout) = (ms(&cycle["load_ms"]), ms(&cycle["rollout_ms"]));
        // Before the cycle: the watcher's debounce and hashing; after it: the forward finding the new pod.
        let ended = cycle_end.saturating_duration_since(t).as_secs_f64();
        let before = ended - ms(&cycle["duration_ms"]);
        let after = served.as_secs_f64() - ended;
        println!(
            "{svc} in dev: watch {before:.1} s, build {build:.1} s, load {load:.1} s, rollout {rollout:.1} s, cycle {:.1} s, new version answered {after:+.1} s after the cycle line (negative: the forward had moved before the old pod went)",
            ms(&cycle["duration_ms"])
        );
        lines.push(format!(
            "dev: {svc} change served after {:.1} s (deploy after the same change: {:.1} s)",
            served.as_secs_f64(),
            deploy_took.as_secs_f64()
        ));
    }
    // SAFETY: kill(2) touches no memory.
    unsafe {
        libc::kill(dev.child.id() as i32, libc::SIGINT);
    }
    let mut child = dev.child;
    let _ = child.wait();
    println!();
    for l in lines {
        println!("{l}");
    }
    let r = env.xtask(&["clean"]);
    if r.code != Some(0) {
        return Err(format!("clean: {}", r.dump()));
    }
    Ok(())
}

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let bins = double_bins()?;
    let setup = Setup::new(&bins).ok_or("a prerequisite is missing (see above)")?;
    let mut outcome = Ok(());
    setup.run(|env| outcome = measure(env));
    outcome
}
