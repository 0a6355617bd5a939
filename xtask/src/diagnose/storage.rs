//! PersistentVolumeClaims that stay Pending.

use super::finding::{Finding, Severity};
use super::snapshot::Snapshot;

/// One finding per Pending PVC, with its provisioning events.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    snap.pvcs
        .iter()
        .filter(|p| p.status.phase == "Pending")
        .map(|p| {
            let mut evidence = vec![format!(
                "phase Pending, storageClassName {}",
                p.spec.storage_class_name.as_deref().unwrap_or("(default)")
            )];
            evidence.extend(
                snap.events_for("PersistentVolumeClaim", &p.metadata.name)
                    .map(|e| format!("{} {}: {}", e.type_, e.reason, e.message)),
            );
            let profile = if snap.profile.is_empty() { "<profile>" } else { &snap.profile };
            Finding {
                severity: Severity::Warning,
                analyzer: "pvc-pending",
                object: format!("PersistentVolumeClaim/{}", p.metadata.name),
                what: "the volume claim is not bound, so the database pod cannot start".into(),
                evidence,
                fix: format!(
                    "enable Minikube's provisioner: `minikube -p {profile} addons enable storage-provisioner` \
                     and `minikube -p {profile} addons enable default-storageclass`"
                ),
                terminal: false,
            }
        })
        .collect()
}
