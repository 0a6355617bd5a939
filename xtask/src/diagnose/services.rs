//! Services without ready endpoints, and why (no matching pod, or pods not ready).

use super::finding::{Finding, Severity};
use super::snapshot::Snapshot;
use crate::kube::Service;

/// One finding per Service with a selector and no ready endpoint.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    snap.services
        .iter()
        .filter(|s| !s.spec.selector.is_empty())
        .filter(|s| ready_endpoints(snap, s) == 0)
        .map(|s| {
            let selector = s.selector_string();
            let matching: Vec<&str> = snap
                .pods
                .iter()
                .filter(|p| s.selects(&p.metadata.labels))
                .map(|p| p.metadata.name.as_str())
                .collect();
            let (what, fix) = if matching.is_empty() {
                (
                    format!("no pod matches the selector {selector}"),
                    "the Service selector and the pod template labels disagree: compare \
                     `selectorLabels` in helm/<chart>/templates/_helpers.tpl with the pods' labels \
                     (`kubectl get pods --show-labels`)"
                        .to_string(),
                )
            } else {
                (
                    format!(
                        "{} pod(s) match {selector} but none is ready",
                        matching.len()
                    ),
                    "see the pod findings: the Service only routes to Ready pods".to_string(),
                )
            };
            let mut evidence = vec![
                format!("selector: {selector}"),
                "ready endpoints: 0".to_string(),
            ];
            if !matching.is_empty() {
                evidence.push(format!("matching pods: {}", matching.join(", ")));
            }
            Finding {
                severity: Severity::Critical,
                analyzer: "service-endpoints",
                object: format!("Service/{}", s.metadata.name),
                what,
                evidence,
                fix,
                terminal: matching.is_empty(),
            }
        })
        .collect()
}

/// Ready endpoints of a Service, from EndpointSlices when there are any, else from Endpoints.
pub fn ready_endpoints(snap: &Snapshot, svc: &Service) -> usize {
    let name = svc.metadata.name.as_str();
    let slices: Vec<_> = snap
        .endpoint_slices
        .iter()
        .filter(|s| s.service_name() == Some(name))
        .collect();
    if !slices.is_empty() {
        return slices.iter().map(|s| s.ready_count()).sum();
    }
    snap.endpoints
        .iter()
        .filter(|e| e.metadata.name == name)
        .map(|e| e.ready_count())
        .sum()
}
