//! Test doubles of minikube, helm, kubectl and docker (tests only, never reachable from product code).
//!
//! One multi-call binary, `tool-double`, dispatches on the name it is called by: tests put symlinks named
//! `minikube`, `helm`, `kubectl` and `docker` first on PATH ([`install`]). Each call is appended to the log
//! file named by `DOUBLES_LOG` (argv, selected env, pid); cluster state lives in the JSON file named by
//! `DOUBLES_STATE`. Every argv is first parsed against the real tool's flag set ([`spec`]): an unknown flag
//! fails as it does with the real tool. Answers are real-format outputs from the fixtures in
//! `xtask/tests/fixtures` (see PROVENANCE.md there), with the same exit codes as the real tools; each
//! behaviour taken from a tool's source names the file and version in a comment.

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
/// Env var naming the real kubectl that client-side calls (`--local`, `--dry-run=client`) delegate to.
pub const REAL_KUBECTL_ENV: &str = "DOUBLES_REAL_KUBECTL";
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

/// Appends one call record to the log. A log that cannot be written fails the call (a test that only checks a
/// call did *not* happen must not pass on an empty log).
pub fn record(tool: &str, argv: &[String], extra: Value) -> Result<(), String> {
    let Some(path) = std::env::var_os(LOG_ENV) else {
        return Ok(());
    };
    let env: serde_json::Map<String, Value> = RECORDED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v))))
        .collect();
    let line =
        json!({"tool": tool, "argv": argv, "env": env, "pid": std::process::id(), "extra": extra});
    let shown = Path::new(&path).display().to_string();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("tool-double: cannot open the call log {shown}: {e}"))?;
    f.lock()
        .map_err(|e| format!("tool-double: cannot lock the call log {shown}: {e}"))?;
    writeln!(f, "{line}")
        .map_err(|e| format!("tool-double: cannot write the call log {shown}: {e}"))
}

/// [`record`] for what a double notes while it answers (a failure to write panics: the call must fail).
pub fn note(tool: &str, argv: &[String], extra: Value) {
    if let Err(e) = record(tool, argv, extra) {
        panic!("{e}");
    }
}

/// Reads the call log: one JSON object per call (none when no call was made yet).
pub fn read_log(path: &Path) -> Vec<Value> {
    // Shared lock: a double appending right now (exclusive lock) has written its whole line first.
    let text = std::fs::File::open(path).and_then(|mut f| {
        f.lock_shared()?;
        let mut t = String::new();
        std::io::Read::read_to_string(&mut f, &mut t)?;
        Ok(t)
    });
    match text {
        Ok(text) => text
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()))
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("reading the call log {}: {e}", path.display()),
    }
}

/// The fixtures directory (real tool outputs).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xtask/tests/fixtures")
}

/// A fixture's text; a fixture that is missing is a broken double, never an empty answer.
pub fn fixture(rel: &str) -> String {
    let p = fixtures_dir().join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("tool-double: fixture {}: {e}", p.display()))
}

/// A fixture parsed as JSON.
pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_str(&fixture(rel))
        .unwrap_or_else(|e| panic!("tool-double: fixture {rel}: {e}"))
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

impl From<spec::Refusal> for Reply {
    fn from(r: spec::Refusal) -> Self {
        Reply::err(r.code, r.stderr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_keeps_defaults_for_missing_keys() {
        let s = State::parse(br#"{"profile": "p", "cluster": "stopped"}"#);
        assert_eq!(s.str("cluster"), "stopped");
        assert_eq!(s.str("helm_version"), "v3.17.3");
        assert!(s.images("local").is_empty());
        assert_eq!(State::parse(b"not json").str("cluster"), "running");
    }

    #[test]
    fn a_log_that_cannot_be_written_fails_the_call() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // A directory where the log file should be: opening it for append fails.
        std::env::set_var(LOG_ENV, dir.path());
        let r = record("helm", &["version".into()], Value::Null);
        std::env::remove_var(LOG_ENV);
        assert!(r.is_err_and(|e| e.contains("cannot open the call log")));
    }
}
