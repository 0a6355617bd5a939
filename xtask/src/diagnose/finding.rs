//! What an analyzer reports: one problem, its evidence and the fix.

use std::fmt;

use serde::Serialize;

/// How bad a finding is; ordered so that `Critical` sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The release cannot work until this is fixed.
    Critical,
    /// Degraded or about to fail.
    Warning,
    /// Worth knowing.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
            Severity::Info => "INFO",
        })
    }
}

/// One problem found in the release's namespace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Which analyzer found it (stable id, e.g. `image-not-loaded`).
    pub analyzer: &'static str,
    /// `Kind/name` of the object.
    pub object: String,
    /// One sentence: what is wrong.
    pub what: String,
    /// Facts read from the cluster that show it.
    pub evidence: Vec<String>,
    /// What to do about it (often an xtask command).
    pub fix: String,
    /// True when waiting will not help: a rollout can stop at once.
    pub terminal: bool,
}

impl Finding {
    /// Renders the finding for a terminal.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} {} [{}]\n  {}\n",
            self.severity, self.object, self.analyzer, self.what
        );
        for e in &self.evidence {
            for (i, line) in e.lines().enumerate() {
                let lead = if i == 0 { "  - " } else { "    " };
                out.push_str(lead);
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("  fix: ");
        out.push_str(&self.fix);
        out.push('\n');
        out
    }
}
