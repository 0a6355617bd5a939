//! Ids no other call returns, in this process or in any earlier run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `<pid>-<unix millis>-<n>`: unique per call and per run, safe in container, network and tag names.
/// Also what makes a test's source change new to BuildKit, whose layer cache outlives test runs.
pub fn unique_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{}-{millis}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_call_differs() {
        let a = super::unique_id();
        let b = super::unique_id();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", std::process::id())), "{a}");
    }
}
