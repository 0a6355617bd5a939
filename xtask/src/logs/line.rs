//! One log line of one container: where it came from (a prefix per service and pod, with a colour that stays
//! the same for that pod), when (kubectl's `--timestamps`), and whether it was already shown (a stream that
//! reconnects with `--since-time` gets the last lines again).

use crate::kube::time::rfc3339_nanos;

/// Which service a pod belongs to, from its labels.
pub fn service_of(instance: &str, component: Option<&str>) -> String {
    if component == Some("database") {
        return "postgresql".into();
    }
    instance.trim_start_matches("todo-").to_string()
}

/// The prefix of a pod's lines: the service and what makes the pod unique (`backend-x7k2p`,
/// `postgresql-0`), plus the container when the pod has several.
pub fn prefix(service: &str, pod: &str, container: Option<&str>) -> String {
    let unique = pod.rsplit('-').next().unwrap_or(pod);
    match container {
        Some(c) => format!("{service}-{unique}/{c}"),
        None => format!("{service}-{unique}"),
    }
}

/// ANSI colours for prefixes (no red: that reads as an error).
const PALETTE: [u8; 6] = [36, 32, 33, 35, 34, 96];

/// The colour of a pod's prefix: the same for the same pod name, in every run.
pub fn colour(pod: &str) -> u8 {
    // FNV-1a: stable across runs and platforms, unlike std's randomly seeded hasher.
    let h = pod.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

/// A line as kubectl printed it with `--timestamps`: `2026-12-01T10:00:00.123456789Z text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped<'a> {
    /// The timestamp as written (for `--since-time`).
    pub time: &'a str,
    /// `(seconds, nanoseconds)`, to compare.
    pub at: (i64, u32),
    /// The line itself.
    pub text: &'a str,
}

/// Splits a `--timestamps` line; None when it carries no timestamp.
pub fn stamped(line: &str) -> Option<Stamped<'_>> {
    let (time, text) = line.split_once(' ').unwrap_or((line, ""));
    Some(Stamped {
        time,
        at: rfc3339_nanos(time)?,
        text,
    })
}

/// What one container's stream has shown so far: the newest timestamp and the lines shown at it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The newest timestamp shown, as written.
    pub last_time: Option<String>,
    last_at: Option<(i64, u32)>,
    at_last: Vec<String>,
}

impl Seen {
    /// True when the line is new: later than everything shown, or at the same instant with other text.
    /// Reconnecting with `--since-time=<last>` repeats the lines of that instant; they are dropped here.
    pub fn admit(&mut self, line: &Stamped<'_>) -> bool {
        match self.last_at {
            Some(last) if line.at < last => false,
            Some(last) if line.at == last => {
                if self.at_last.iter().any(|t| t == line.text) {
                    return false;
                }
                self.at_last.push(line.text.to_string());
                true
            }
            _ => {
                self.last_at = Some(line.at);
                self.last_time = Some(line.time.to_string());
                self.at_last = vec![line.text.to_string()];
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_service_and_the_pod() {
        assert_eq!(service_of("todo-backend", None), "backend");
        assert_eq!(service_of("todo-backend", Some("database")), "postgresql");
        assert_eq!(
            prefix("backend", "todo-backend-7c9f8d5b6-x7k2p", None),
            "backend-x7k2p"
        );
        assert_eq!(
            prefix("postgresql", "todo-backend-postgresql-0", None),
            "postgresql-0"
        );
        assert_eq!(
            prefix("frontend", "todo-frontend-6b-q", Some("init")),
            "frontend-q/init"
        );
    }

    #[test]
    fn colours_are_stable_per_pod() {
        let a = colour("todo-backend-7c9f8d5b6-x7k2p");
        assert_eq!(a, colour("todo-backend-7c9f8d5b6-x7k2p"));
        assert!(PALETTE.contains(&a));
        let distinct: std::collections::BTreeSet<u8> = (0..40)
            .map(|i| colour(&format!("todo-frontend-abc-{i}")))
            .collect();
        assert!(distinct.len() > 2, "{distinct:?}");
    }

    #[test]
    fn a_reconnect_does_not_repeat_lines() {
        let first = [
            "2026-12-01T10:00:00.1Z listening on 0.0.0.0:8000",
            "2026-12-01T10:00:01.5Z GET /health 200",
            "2026-12-01T10:00:01.5Z GET /ready 200",
        ];
        let mut seen = Seen::default();
        let shown: Vec<bool> = first
            .iter()
            .filter_map(|l| stamped(l))
            .map(|s| seen.admit(&s))
            .collect();
        assert_eq!(shown, [true, true, true]);
        assert_eq!(seen.last_time.as_deref(), Some("2026-12-01T10:00:01.5Z"));
        // `--since-time=2026-12-01T10:00:01.5Z` answers from that instant on, again.
        let again = [
            "2026-12-01T10:00:01.5Z GET /health 200",
            "2026-12-01T10:00:01.5Z GET /ready 200",
            "2026-12-01T10:00:01.5Z GET /api/tasks 200",
            "2026-12-01T10:00:02Z shutting down",
        ];
        let shown: Vec<&str> = again
            .iter()
            .filter_map(|l| stamped(l))
            .filter(|s| seen.admit(s))
            .map(|s| s.text)
            .collect();
        assert_eq!(shown, ["GET /api/tasks 200", "shutting down"]);
        assert_eq!(stamped("no timestamp here"), None);
    }
}
