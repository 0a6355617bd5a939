//! Recent Warning events that no other analyzer explained.

use std::collections::BTreeMap;

use super::finding::{Finding, Severity};
use super::snapshot::Snapshot;

/// How many event groups to report at most.
const RECENT: usize = 10;

/// Groups Warning events by object and reason, skipping objects already in `known`.
pub fn analyze(snap: &Snapshot, known: &[Finding]) -> Vec<Finding> {
    let mut groups: BTreeMap<(String, String), (u32, String, String)> = BTreeMap::new();
    for e in snap.events.iter().filter(|e| e.is_warning()) {
        let object = format!("{}/{}", e.involved_object.kind, e.involved_object.name);
        if known.iter().any(|f| f.object == object) {
            continue;
        }
        let entry = groups
            .entry((object, e.reason.clone()))
            .or_insert_with(|| (0, String::new(), String::new()));
        entry.0 += e.count.unwrap_or(1);
        if e.when() >= entry.2.as_str() {
            entry.1 = e.message.clone();
            entry.2 = e.when().to_string();
        }
    }
    let mut list: Vec<_> = groups.into_iter().collect();
    list.sort_by(|a, b| b.1 .2.cmp(&a.1 .2));
    list.into_iter()
        .take(RECENT)
        .map(|((object, reason), (count, message, when))| Finding {
            severity: Severity::Info,
            analyzer: "warning-event",
            object,
            what: format!("Warning event {reason}"),
            evidence: vec![format!(
                "{count}x, last {}: {message}",
                if when.is_empty() { "-" } else { &when }
            )],
            fix: format!(
                "`kubectl describe` the object in namespace {}",
                snap.namespace
            ),
            terminal: false,
        })
        .collect()
}
