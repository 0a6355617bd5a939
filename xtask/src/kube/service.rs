//! Services, Endpoints and EndpointSlices.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::meta::ObjectMeta;

/// A Service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: ServiceSpec,
}

/// `spec` of a Service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`, `ExternalName`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Pod selector; empty means endpoints are managed by hand.
    pub selector: BTreeMap<String, String>,
    /// Cluster IP (`None` for headless services).
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
}

impl Service {
    /// The selector as `k=v,k=v` (what `kubectl get pods -l` takes).
    pub fn selector_string(&self) -> String {
        self.spec
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// True when every selector label is on `labels`.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.spec.selector.is_empty()
            && self
                .spec
                .selector
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A Service port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name.
    pub name: Option<String>,
    /// Service port.
    pub port: u16,
    /// Target port: a number or a named port.
    pub target_port: serde_json::Value,
}

/// Endpoints (core/v1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Endpoints {
    /// Metadata (name = the Service name).
    pub metadata: ObjectMeta,
    /// Subsets; absent when nothing matches.
    pub subsets: Vec<EndpointSubset>,
}

impl Endpoints {
    /// Number of ready addresses.
    pub fn ready_count(&self) -> usize {
        self.subsets.iter().map(|s| s.addresses.len()).sum()
    }
}

/// One subset of Endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EndpointSubset {
    /// Ready addresses.
    pub addresses: Vec<EndpointAddress>,
    /// Addresses whose pod is not ready.
    pub not_ready_addresses: Vec<EndpointAddress>,
}

/// An endpoint address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointAddress {
    /// Pod IP.
    pub ip: String,
}

/// An EndpointSlice (discovery.k8s.io/v1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EndpointSlice {
    /// Metadata; label `kubernetes.io/service-name` names the Service.
    pub metadata: ObjectMeta,
    /// Endpoints; null when none.
    #[serde(deserialize_with = "null_as_empty")]
    pub endpoints: Vec<SliceEndpoint>,
}

impl EndpointSlice {
    /// The Service this slice belongs to.
    pub fn service_name(&self) -> Option<&str> {
        self.metadata
            .labels
            .get("kubernetes.io/service-name")
            .map(String::as_str)
    }

    /// Number of endpoints whose `conditions.ready` is true.
    pub fn ready_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.is_ready()).count()
    }
}

/// One endpoint of a slice.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SliceEndpoint {
    /// Addresses.
    pub addresses: Vec<String>,
    /// `{"ready": bool, ...}`.
    pub conditions: BTreeMap<String, serde_json::Value>,
}

impl SliceEndpoint {
    /// `conditions.ready`; an absent value means ready (per the API docs).
    pub fn is_ready(&self) -> bool {
        self.conditions
            .get("ready")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true)
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}
