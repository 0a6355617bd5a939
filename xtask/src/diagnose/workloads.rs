//! Deployments below their desired replica count.

use super::finding::{Finding, Severity};
use super::snapshot::Snapshot;

/// A namespace with nothing in it: the releases are not installed (or the namespace is wrong).
pub fn nothing_deployed(snap: &Snapshot) -> Option<Finding> {
    if !(snap.pods.is_empty() && snap.deployments.is_empty() && snap.services.is_empty()) {
        return None;
    }
    Some(Finding {
        severity: Severity::Critical,
        analyzer: "nothing-deployed",
        object: format!("Namespace/{}", snap.namespace),
        what: "no pods, Deployments or Services in the namespace".into(),
        evidence: vec![format!(
            "kubectl get pods,deployments,services -n {} returned no items",
            snap.namespace
        )],
        fix: "`cargo xtask deploy` installs todo-backend and todo-frontend; if they live elsewhere, pass --namespace"
            .into(),
        terminal: false,
    })
}

/// One finding per Deployment with fewer ready replicas than desired.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    snap.deployments
        .iter()
        .filter(|d| d.status.ready_replicas < d.spec.replicas)
        .map(|d| {
            let mut evidence = vec![format!(
                "replicas desired {}, ready {}, available {}, updated {}",
                d.spec.replicas, d.status.ready_replicas, d.status.available_replicas, d.status.updated_replicas
            )];
            for c in d.status.conditions.iter().filter(|c| !c.is_true()) {
                evidence.push(format!(
                    "{}=False {}: {}",
                    c.type_,
                    c.reason.as_deref().unwrap_or("-"),
                    c.message.as_deref().unwrap_or("")
                ));
            }
            let deadline = d
                .condition("Progressing")
                .is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
            Finding {
                severity: if d.status.ready_replicas == 0 { Severity::Critical } else { Severity::Warning },
                analyzer: "deployment-replicas",
                object: format!("Deployment/{}", d.metadata.name),
                what: format!(
                    "{} of {} replicas ready",
                    d.status.ready_replicas, d.spec.replicas
                ),
                evidence,
                fix: "the pod findings say why its pods are not ready; after fixing, `cargo xtask deploy` rolls it out again"
                    .into(),
                terminal: deadline,
            }
        })
        .collect()
}
