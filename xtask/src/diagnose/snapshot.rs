//! Everything the analyzers read, gathered once from the cluster (or a test fixture).

use std::collections::BTreeMap;

use crate::kube::{
    Deployment, EndpointSlice, Endpoints, Event, PersistentVolumeClaim, Pod, Service,
};

/// The state of one namespace at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Namespace the objects come from.
    pub namespace: String,
    /// Minikube profile, used in suggested commands.
    pub profile: String,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// Services.
    pub services: Vec<Service>,
    /// Endpoints.
    pub endpoints: Vec<Endpoints>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Events.
    pub events: Vec<Event>,
    /// PersistentVolumeClaims.
    pub pvcs: Vec<PersistentVolumeClaim>,
    /// Last log lines of crashed containers, keyed by `pod/container`.
    pub logs: BTreeMap<String, String>,
}

impl Snapshot {
    /// Events about `kind/name`, oldest first.
    pub fn events_for<'a>(
        &'a self,
        kind: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Event> {
        self.events
            .iter()
            .filter(move |e| e.involved_object.kind == kind && e.involved_object.name == name)
    }
}
