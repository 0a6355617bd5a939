//! The exit-code taxonomy: every error that decides how the process ends carries a [`Failure`].

use std::fmt;

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code of a usage error (clap uses it too).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when a prerequisite (tool, daemon, cluster) is missing.
pub const EXIT_PREREQ: i32 = 3;
/// Exit code when a step failed.
pub const EXIT_STEP: i32 = 4;
/// Exit code when the smoke test failed.
pub const EXIT_SMOKE: i32 = 5;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that decides the process exit code; anything else exits with [`EXIT_STEP`].
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: i32,
    /// What went wrong, for humans.
    pub message: String,
}

impl Failure {
    /// A missing or unusable prerequisite.
    pub fn prereq(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_PREREQ,
            message: message.into(),
        }
    }
    /// A step that failed.
    pub fn step(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_STEP,
            message: message.into(),
        }
    }
    /// A smoke check that failed.
    pub fn smoke(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_SMOKE,
            message: message.into(),
        }
    }
    /// The user pressed Ctrl-C.
    pub fn interrupted() -> Self {
        Self {
            code: EXIT_INTERRUPTED,
            message: "interrupted".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Marks an error whose details were already printed (a failed step's diagnosis in the step stream), so the
/// last line of the run names it once instead of repeating the whole block.
#[derive(Debug)]
pub struct Reported {
    /// One line that names what failed.
    pub headline: String,
    /// The step that failed, when a pipeline step did.
    pub step: Option<&'static str>,
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline)
    }
}

impl std::error::Error for Reported {}

/// The pipeline step an error comes from, when it does.
pub fn failed_step(err: &anyhow::Error) -> Option<&'static str> {
    err.downcast_ref::<Reported>().and_then(|r| r.step)
}

/// The exit code an error maps to.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    if crate::process::interrupt::is_set() {
        return EXIT_INTERRUPTED;
    }
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>().map(|f| f.code))
        .unwrap_or(EXIT_STEP)
}

/// What to print after the run for `err`: the headline alone when the details were reported already.
pub fn final_message(err: &anyhow::Error) -> String {
    // A context value is found by downcasting the anyhow::Error itself, not the members of its chain.
    match err.downcast_ref::<Reported>() {
        Some(r) => r.headline.clone(),
        None => format!("{err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_failure_kind() {
        let e = anyhow::Error::new(Failure::prereq("x")).context("outer");
        assert_eq!(exit_code_of(&e), EXIT_PREREQ);
        assert_eq!(exit_code_of(&anyhow::anyhow!("plain")), EXIT_STEP);
    }

    #[test]
    fn reported_errors_end_with_their_headline_only() {
        let detailed = anyhow::Error::new(Failure::step(
            "rollout stopped\n  finding: crash loop\n  fix: ...",
        ))
        .context(Reported {
            headline: "step release failed (details above)".into(),
            step: Some("release"),
        });
        assert_eq!(
            final_message(&detailed),
            "step release failed (details above)"
        );
        assert_eq!(exit_code_of(&detailed), EXIT_STEP);
        let plain = anyhow::Error::new(Failure::step("a")).context("b");
        assert_eq!(final_message(&plain), "b: a");
    }
}
