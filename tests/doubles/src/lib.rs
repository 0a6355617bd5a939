//! Test doubles of minikube, helm, kubectl and docker (tests only, never reachable from product code).
//!
//! One multi-call binary, `tool-double`, dispatches on the name it is called by: tests put symlinks named
//! `minikube`, `helm`, `kubectl` and `docker` first on PATH ([`install`]). Each call is appended to the log
//! file named by `DOUBLES_LOG` (argv, selected env, pid); cluster state lives in the JSON file named by
//! `DOUBLES_STATE`. Answers are real-format outputs from the fixtures in `xtask/tests/fixtures`
//! (see PROVENANCE.md there), with the same exit codes as the real tools.

pub mod spec;
pub mod state;
pub mod tools;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub use state::{with_state, State};

/// Env var naming the call log.
pub const LOG_ENV: &str = "DOUBLES_LOG";
/// Env var naming the state file.
pub const STATE_ENV: &str = "DOUBLES_STATE";
/// Env var naming the real helm binary that `helm template`/`lint` (and upgrade's render check) delegate to.
pub const REAL_HELM_ENV: &str = "DOUBLES_REAL_HELM";
/// The tool names the binary answers to.
pub const TOOLS: [&str; 4] = ["minikube", "helm", "kubectl", "docker"];
/// Env vars recorded with each call.
const RECORDED_ENV: [&str; 4] = [
    "DOCKER_HOST",
    "MINIKUBE_ACTIVE_DOCKERD",
    "DOCKER_BUILDKIT",
    "KUBECONFIG",
];

/// Creates `dir/<tool>` symlinks to the `tool-double` binary, for PATH.
pub fn install(binary: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for t in TOOLS {
        let link = dir.join(t);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(binary, &link)?;
    }
    Ok(())
}

/// Appends one call record to the log.
pub fn record(tool: &str, argv: &[String], extra: Value) {
    let Some(path) = std::env::var_os(LOG_ENV) else {
        return;
    };
    let env: serde_json::Map<String, Value> = RECORDED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v))))
        .collect();
    let line =
        json!({"tool": tool, "argv": argv, "env": env, "pid": std::process::id(), "extra": extra});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.lock();
        let _ = writeln!(f, "{line}");
    }
}

/// Reads the call log: one JSON object per call.
pub fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The fixtures directory (real tool outputs).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/tests/fixtures")
}

/// A fixture's text.
pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(rel)).unwrap_or_default()
}

/// What a double call produces.
#[derive(Debug, Default)]
pub struct Reply {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Reply {
    /// Exit 0 with stdout.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Self {
            code: 0,
            stdout: stdout.into(),
            stderr: String::new(),
        }
    }
    /// Exit `code` with stderr.
    pub fn err(code: i32, stderr: impl Into<String>) -> Self {
        Self {
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        }
    }
}

/// Value of `--flag V` or `--flag=V` in argv.
pub fn flag(argv: &[String], names: &[&str]) -> Option<String> {
    for (i, a) in argv.iter().enumerate() {
        for n in names {
            if a == n {
                return argv.get(i + 1).cloned();
            }
            if let Some(v) = a.strip_prefix(&format!("{n}=")) {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// Positional arguments (flags and their values removed); `with_value` lists flags that take a value.
pub fn positionals(argv: &[String], with_value: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in argv {
        if skip {
            skip = false;
            continue;
        }
        if a.starts_with('-') {
            if !a.contains('=') && with_value.contains(&a.as_str()) {
                skip = true;
            }
            continue;
        }
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn flags_and_positionals() {
        let a = argv("--context todo -n ns get pods -l app=x -o json");
        assert_eq!(flag(&a, &["--context"]).as_deref(), Some("todo"));
        assert_eq!(
            flag(&argv("--wait=watcher"), &["--wait"]).as_deref(),
            Some("watcher")
        );
        assert_eq!(
            positionals(&a, &["--context", "-n", "-l", "-o"]),
            ["get", "pods"]
        );
    }

    #[test]
    fn state_keeps_defaults_for_missing_keys() {
        let s = State::parse(br#"{"profile": "p", "cluster": "stopped"}"#);
        assert_eq!(s.str("cluster"), "stopped");
        assert_eq!(s.str("helm_version"), "v3.17.3");
        assert!(s.images("local").is_empty());
        assert_eq!(State::parse(b"not json").str("cluster"), "running");
    }
}
