//! Runs the real `checkov` (pip package `checkov`, Prisma Cloud's policy scanner) on rendered manifests and
//! parses its JSON report.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// Where `.ci/run` installs checkov (a venv, so system Python packages stay untouched).
pub const CI_VENV_BIN: &str = "/var/cache/todo-ci/checkov/bin/checkov";

/// The checkov binary: `$CHECKOV_BIN`, else the CI venv's, else `checkov` on PATH. `None` when there is none
/// (an override that names no file counts as none: it is not silently replaced).
pub fn binary() -> Option<PathBuf> {
    if let Some(value) = std::env::var_os("CHECKOV_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(value);
        return path.is_file().then_some(path);
    }
    let venv = PathBuf::from(CI_VENV_BIN);
    if venv.is_file() {
        return Some(venv);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("checkov"))
        .find(|p| p.is_file())
}

/// One check's outcome on one resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    /// `CKV_K8S_43`.
    pub check_id: String,
    /// What it checks.
    pub check_name: String,
    /// `Kind.namespace.name`.
    pub resource: String,
    /// The file, relative to the scanned directory (`/backend-defaults.yaml`).
    pub file_path: String,
    /// Result and, for a skipped check, the reason given.
    pub check_result: Outcome,
}

/// `check_result` of a [`Check`].
#[derive(Debug, Clone, Deserialize)]
pub struct Outcome {
    /// PASSED, FAILED or SKIPPED.
    pub result: String,
    /// The reason of a skip (the text after `=` in the `checkov.io/skip` annotation).
    #[serde(default)]
    pub suppress_comment: Option<String>,
}

/// The checks by outcome.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Results {
    /// Passed.
    #[serde(default)]
    pub passed_checks: Vec<Check>,
    /// Failed.
    #[serde(default)]
    pub failed_checks: Vec<Check>,
    /// Skipped by an annotation.
    #[serde(default)]
    pub skipped_checks: Vec<Check>,
}

/// The report's totals.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    /// Passed checks.
    pub passed: u64,
    /// Failed checks.
    pub failed: u64,
    /// Skipped checks.
    pub skipped: u64,
    /// Files checkov could not parse.
    pub parsing_errors: u64,
    /// Resources scanned.
    pub resource_count: u64,
    /// checkov's version.
    pub checkov_version: String,
}

/// The report of one framework (`-o json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    /// `kubernetes`.
    #[serde(default)]
    pub check_type: String,
    /// The checks.
    pub results: Results,
    /// The totals.
    pub summary: Summary,
}

/// Parses `checkov -o json` output: one report object, or a list of them (one per framework) from which the
/// kubernetes one is taken.
pub fn parse(json: &str) -> Result<Report, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("checkov printed no JSON ({e})"))?;
    let report = match value {
        serde_json::Value::Array(reports) => reports
            .into_iter()
            .find(|r| r["check_type"] == "kubernetes")
            .ok_or("checkov's report has no kubernetes section")?,
        other => other,
    };
    if report.get("results").is_none() {
        // What checkov prints when it found no file to scan (it skips hidden directories, for one).
        return Err(format!("checkov scanned nothing: {report}"));
    }
    serde_json::from_value(report).map_err(|e| format!("unexpected checkov report: {e}"))
}

/// `checkov -d <dir> --framework kubernetes -o json --skip-download` (nothing is fetched from Prisma Cloud).
/// Exit code 1 only means failed checks: the report is parsed either way.
pub fn scan(checkov: &Path, dir: &Path) -> Result<Report, String> {
    let output = Command::new(checkov)
        .arg("-d")
        .arg(dir)
        .args(["--framework", "kubernetes", "-o", "json", "--skip-download"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", checkov.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    parse(&stdout).map_err(|e| {
        format!(
            "{e}; exit {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    const REPORT: &str = r#"{"check_type": "kubernetes", "results": {
        "passed_checks": [{"check_id": "CKV_K8S_21", "check_name": "ns", "resource": "Service.todo.a",
            "file_path": "/a.yaml", "check_result": {"result": "PASSED"}, "other": 1}],
        "failed_checks": [],
        "skipped_checks": [{"check_id": "CKV_K8S_43", "check_name": "digest", "resource": "Pod.todo.p",
            "file_path": "/a.yaml", "check_result": {"result": "SKIPPED", "suppress_comment": "local image"}}]},
        "summary": {"passed": 1, "failed": 0, "skipped": 1, "parsing_errors": 0, "resource_count": 2,
            "checkov_version": "3.3.30"}}"#;

    #[test]
    fn parses_a_report_and_a_list_of_reports() {
        let r = parse(REPORT).expect("parses");
        assert_eq!(r.summary.passed, 1);
        assert_eq!(
            r.results.skipped_checks[0]
                .check_result
                .suppress_comment
                .as_deref(),
            Some("local image")
        );
        let list =
            format!(r#"[{{"check_type": "secrets", "results": {{}}, "summary": {{}}}}, {REPORT}]"#);
        assert_eq!(parse(&list).expect("parses").check_type, "kubernetes");
        assert!(parse("Traceback ...").is_err());
        let nothing =
            r#"{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}"#;
        assert!(parse(nothing).unwrap_err().contains("scanned nothing"));
    }
}
