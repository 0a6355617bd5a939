//! Benchmark: the xtask's own cost. Runs `cargo xtask deploy --no-smoke` (dev profile, as users run it)
//! against the instant tool doubles (crate tool-doubles, first on PATH) for a full deploy and for a no-op
//! redeploy, and subtracts the tools' time (calls x the measured cost of one double call); then measures the
//! cold compile time of the xtask crate (`cargo build -p xtask` into an empty target dir).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 5;

fn root() -> PathBuf {
    // This crate lives at <root>/tests/bench.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn build_dev() -> Result<PathBuf, String> {
    let st = Command::new(cargo())
        .args(["build", "--quiet", "-p", "xtask", "-p", "tool-doubles"])
        .current_dir(root())
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !st.success() {
        return Err("cargo build -p xtask -p tool-doubles failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("debug"))
}

struct Sandbox {
    dir: tempfile::TempDir,
    xtask: PathBuf,
}

impl Sandbox {
    fn new(debug: &Path) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
        for tool in ["minikube", "helm", "kubectl", "docker"] {
            std::os::unix::fs::symlink(debug.join("tool-double"), bin.join(tool))
                .map_err(|e| e.to_string())?;
        }
        std::fs::write(dir.path().join("state.json"), r#"{"profile": "todo"}"#)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            dir,
            xtask: debug.join("xtask"),
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env(
            "PATH",
            format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()),
        )
        .env("DOUBLES_LOG", self.dir.path().join("calls.jsonl"))
        .env("DOUBLES_STATE", self.dir.path().join("state.json"))
        .env_remove("DOUBLES_REAL_HELM")
        .env_remove("OPENAI_API_KEY")
        .env_remove("DATABASE_URL")
        .current_dir(root());
        c
    }

    fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("calls.jsonl"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn deploy(&self) -> Result<(Duration, usize), String> {
        let before = self.calls();
        let t = Instant::now();
        let out = self
            .command(&self.xtask)
            .args(["deploy", "--no-smoke", "--port", "0"])
            .output()
            .map_err(|e| e.to_string())?;
        let took = t.elapsed();
        if !out.status.success() {
            return Err(format!(
                "deploy failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok((took, self.calls() - before))
    }

    /// Mean wall time of one double call (process start + state file), the "tool time" unit.
    fn call_cost(&self) -> Duration {
        let n = 20;
        let t = Instant::now();
        for _ in 0..n {
            let _ = self
                .command(&self.dir.path().join("bin/minikube"))
                .args(["-p", "todo", "status", "-o", "json"])
                .output();
        }
        t.elapsed() / n
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let debug = build_dev()?;
    let mut full = Vec::new();
    let mut noop = Vec::new();
    let (mut full_calls, mut noop_calls) = (0, 0);
    let mut unit = Duration::ZERO;
    for _ in 0..RUNS {
        let sb = Sandbox::new(&debug)?;
        let (t, c) = sb.deploy()?;
        full.push(t);
        full_calls = c;
        let (t, c) = sb.deploy()?;
        noop.push(t);
        noop_calls = c;
        unit = sb.call_cost();
    }
    let (f, n) = (median(full), median(noop));
    let tools = |calls: usize| unit * calls as u32;
    println!("xtask deploy --no-smoke against instant doubles (median of {RUNS}, dev profile):");
    println!("  one double call:      {}", ms(unit));
    println!(
        "  full deploy:          {} wall, {full_calls} tool calls, xtask overhead ~{}",
        ms(f),
        ms(f.saturating_sub(tools(full_calls)))
    );
    println!("  no-op redeploy:       {} wall, {noop_calls} tool calls, xtask overhead ~{} (goal < 1000 ms)", ms(n), ms(n.saturating_sub(tools(noop_calls))));

    let target = tempfile::tempdir().map_err(|e| e.to_string())?;
    let t = Instant::now();
    let st = Command::new(cargo())
        .args(["build", "--quiet", "-p", "xtask"])
        .env("CARGO_TARGET_DIR", target.path())
        .current_dir(root())
        .status()
        .map_err(|e| e.to_string())?;
    let cold = t.elapsed();
    if !st.success() {
        return Err("cold build of xtask failed".into());
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "cold compile of the xtask crate (empty target dir, {cores} cores): {:.1} s (budget 75 s)",
        cold.as_secs_f64()
    );
    Ok(())
}
