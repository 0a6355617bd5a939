//! Events (core/v1), as `kubectl get events -o json` prints them.

use serde::Deserialize;

use super::meta::ObjectMeta;

/// An Event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The object the event is about.
    pub involved_object: InvolvedObject,
    /// `Unhealthy`, `FailedScheduling`, `BackOff`, ...
    pub reason: String,
    /// Human text.
    pub message: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// How many times it happened (absent for new-style events).
    pub count: Option<u32>,
    /// First occurrence (old-style events).
    pub first_timestamp: Option<String>,
    /// Last occurrence (old-style events).
    pub last_timestamp: Option<String>,
    /// Occurrence (new-style events).
    pub event_time: Option<String>,
}

impl Event {
    /// True for `type: Warning`.
    pub fn is_warning(&self) -> bool {
        self.type_ == "Warning"
    }

    /// The best timestamp available, for ordering (RFC 3339 strings sort chronologically).
    pub fn when(&self) -> &str {
        self.last_timestamp
            .as_deref()
            .or(self.event_time.as_deref())
            .or(self.metadata.creation_timestamp.as_deref())
            .unwrap_or("")
    }

    /// The container named by `fieldPath` (`spec.containers{name}`), if any.
    pub fn container(&self) -> Option<&str> {
        let path = self.involved_object.field_path.as_deref()?;
        let start = path.find('{')? + 1;
        let end = path.rfind('}')?;
        path.get(start..end)
    }
}

/// `involvedObject` of an Event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InvolvedObject {
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// e.g. `spec.containers{backend}`.
    pub field_path: Option<String>,
}
