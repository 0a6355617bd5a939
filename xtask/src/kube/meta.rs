//! Metadata, conditions and the `List` wrapper shared by every kind.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// `metadata` of any object.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    pub name: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub creation_timestamp: Option<String>,
    /// Set once the object is being deleted (a terminating pod).
    pub deletion_timestamp: Option<String>,
    /// Spec generation (1 until the spec first changes).
    pub generation: Option<u64>,
}

/// A status condition (Pod, Deployment, ...).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`, `PodScheduled`, `Available`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: Option<String>,
}

impl Condition {
    /// True when the condition's status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// `kubectl get` output for several objects: `{"kind": "List", "items": [...]}` (or `PodList`, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct List<T> {
    /// The objects.
    #[serde(default)]
    pub items: Vec<T>,
}

#[derive(Deserialize)]
struct KindOnly {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Option<serde_json::Value>,
}

/// Parses `kubectl get -o json` output that is either a List (any `*List` kind) or a single object.
pub fn parse_items<T: DeserializeOwned>(json: &str) -> Result<Vec<T>> {
    let head: KindOnly = serde_json::from_str(json).context("kubectl output is not JSON")?;
    if head.kind.ends_with("List") || (head.kind.is_empty() && head.items.is_some()) {
        let list: List<T> =
            serde_json::from_str(json).with_context(|| format!("parsing a {}", head.kind))?;
        Ok(list.items)
    } else {
        let one: T =
            serde_json::from_str(json).with_context(|| format!("parsing a {}", head.kind))?;
        Ok(vec![one])
    }
}
