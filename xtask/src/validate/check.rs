//! One line of the checklist and the table that prints them.

use serde::Serialize;

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Passed with a remark.
    Warn,
    /// Failed: validate exits non-zero.
    Fail,
    /// Could not run here (a missing tool, no cluster).
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One line of the checklist: check, result, detail, how to fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// What was checked.
    pub check: String,
    /// The result.
    pub outcome: Outcome,
    /// What was seen.
    pub detail: String,
    /// How to fix it (empty when it passed).
    pub fix: String,
    /// The tool whose absence made the check fail (validate then exits 3, like deploy's preflight).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_tool: Option<String>,
}

impl CheckResult {
    /// A passing check.
    pub fn pass(check: &str, detail: impl Into<String>) -> Self {
        Self::new(check, Outcome::Pass, detail.into(), String::new())
    }
    /// A failing check with its fix.
    pub fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(check, Outcome::Fail, detail.into(), fix.into())
    }
    /// A passing check with a remark.
    pub fn warn(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(check, Outcome::Warn, detail.into(), fix.into())
    }
    /// A check that could not run.
    pub fn skip(check: &str, detail: &str, fix: &str) -> Self {
        Self::new(check, Outcome::Skip, detail.into(), fix.into())
    }
    /// A check that cannot run because `tool` is not on PATH: fails with the prerequisite message.
    pub fn missing_tool(check: &str, tool: &str) -> Self {
        let mut r = Self::fail(
            check,
            format!("{tool} not found on PATH"),
            crate::tools::fix_for(tool),
        );
        r.missing_tool = Some(tool.to_string());
        r
    }
    fn new(check: &str, outcome: Outcome, detail: String, fix: String) -> Self {
        Self {
            check: check.into(),
            outcome,
            detail,
            fix,
            missing_tool: None,
        }
    }
    /// Pass when `problems` is empty, else fail listing them.
    pub fn from_problems(check: &str, ok: &str, problems: &[String], fix: &str) -> Self {
        if problems.is_empty() {
            Self::pass(check, ok)
        } else {
            Self::fail(check, problems.join("; "), fix)
        }
    }
}

/// Renders the checklist as an aligned table plus a summary line.
pub fn render_table(results: &[CheckResult]) -> String {
    let w = results
        .iter()
        .map(|r| r.check.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!("{:<w$}  RESULT  DETAIL / HOW TO FIX\n", "CHECK");
    for r in results {
        out.push_str(&format!(
            "{:<w$}  {:<6}  {}\n",
            r.check,
            r.outcome.label(),
            r.detail
        ));
        if !r.fix.is_empty() && r.outcome != Outcome::Pass {
            out.push_str(&format!("{:<w$}  {:<6}  fix: {}\n", "", "", r.fix));
        }
    }
    let count = |o| results.iter().filter(|r| r.outcome == o).count();
    out.push_str(&format!(
        "\n{} passed, {} warnings, {} failed, {} skipped\n",
        count(Outcome::Pass),
        count(Outcome::Warn),
        count(Outcome::Fail),
        count(Outcome::Skip)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_fix_for_failures_only() {
        let rows = [
            CheckResult::pass("chart lint: backend", "0 errors"),
            CheckResult::fail(
                "image user: backend",
                "runs as root",
                "set USER 10001:10001",
            ),
        ];
        let t = render_table(&rows);
        assert!(
            t.contains("image user: backend  FAIL    runs as root"),
            "{t}"
        );
        assert!(t.contains("fix: set USER 10001:10001"), "{t}");
        assert_eq!(t.matches("fix:").count(), 1, "{t}");
        assert!(
            t.ends_with("1 passed, 0 warnings, 1 failed, 0 skipped\n"),
            "{t}"
        );
    }
}
