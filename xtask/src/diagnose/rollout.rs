//! Fail-fast classification of a rollout in progress (deploy calls it while `helm --wait` runs).

use super::finding::Finding;
use super::pods;
use super::snapshot::Snapshot;
use crate::kube::{Event, Pod};

/// The first failure among `pods` that waiting will not fix, if any.
pub fn classify_rollout(pods: &[Pod], events: &[Event]) -> Option<Finding> {
    let snap = Snapshot {
        pods: pods.to_vec(),
        events: events.to_vec(),
        ..Snapshot::default()
    };
    let mut found: Vec<Finding> = pods::analyze(&snap)
        .into_iter()
        .filter(|f| f.terminal)
        .collect();
    found.sort_by_key(|f| f.severity);
    found.into_iter().next()
}
