//! What a test does when a prerequisite is missing: skip locally, fail loudly under `CI=true`.

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Reports a missing prerequisite. Under CI this panics (no test may skip there);
/// elsewhere it prints why the test is skipped, and the caller returns early.
pub fn missing_prerequisite(what: &str) {
    if in_ci() {
        panic!("missing test prerequisite under CI=true: {what}");
    }
    eprintln!("SKIPPED (missing prerequisite, would fail under CI=true): {what}");
}
