//! Deployments: desired vs ready replicas and rollout conditions.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::meta::{Condition, ObjectMeta};

/// A Deployment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: DeploymentSpec,
    /// Observed state.
    pub status: DeploymentStatus,
}

/// `spec` of a Deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DeploymentSpec {
    /// Desired replicas (the API defaults it to 1).
    pub replicas: u32,
    /// `selector.matchLabels`.
    pub selector: LabelSelector,
}

impl Default for DeploymentSpec {
    fn default() -> Self {
        Self {
            replicas: 1,
            selector: LabelSelector::default(),
        }
    }
}

/// A label selector (only `matchLabels`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Equality requirements.
    pub match_labels: BTreeMap<String, String>,
}

/// `status` of a Deployment; absent counts are zero.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeploymentStatus {
    /// Pods with the Ready condition.
    pub ready_replicas: u32,
    /// Pods available for `minReadySeconds`.
    pub available_replicas: u32,
    /// Pods not yet available.
    pub unavailable_replicas: u32,
    /// Pods on the newest template.
    pub updated_replicas: u32,
    /// `Available`, `Progressing`, `ReplicaFailure`.
    pub conditions: Vec<Condition>,
}

impl Deployment {
    /// The condition of this type, if reported.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }
}
