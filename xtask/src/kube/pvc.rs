//! PersistentVolumeClaims: phase and requested storage class.

use serde::Deserialize;

use super::meta::ObjectMeta;

/// A PersistentVolumeClaim.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PersistentVolumeClaim {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: PvcSpec,
    /// Observed state.
    pub status: PvcStatus,
}

/// `spec` of a PVC.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PvcSpec {
    /// Storage class asked for (None = the default class).
    pub storage_class_name: Option<String>,
}

/// `status` of a PVC.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PvcStatus {
    /// `Pending`, `Bound`, `Lost`.
    pub phase: String,
}
