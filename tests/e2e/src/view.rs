//! The cluster as the API server would show it: desired objects from the applied releases, merged with the
//! supervisor's observed pods, rendered in the shapes `kubectl get -o json` prints.

use crate::manifest::{self, Objects, Workload};
use crate::state::{ContainerState, Desired, EventRecord, Observed, PodRecord};
use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// RFC3339 with seconds, as the API server prints times.
pub fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Objects applied in each namespace, from every installed release, and those helm kept on uninstall.
pub fn objects_by_namespace(d: &Desired) -> Result<BTreeMap<String, Objects>> {
    let mut docs: BTreeMap<String, Vec<Value>> = d.kept.clone();
    for rel in d.releases.values() {
        let Some(applied) = &rel.applied else {
            continue;
        };
        for doc in manifest::parse_docs(applied)? {
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(&rel.namespace)
                .to_string();
            let mut doc = doc;
            if let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("namespace".into(), Value::from(ns.clone()));
                let labels = m.entry("annotations").or_insert_with(|| json!({}));
                if let Some(a) = labels.as_object_mut() {
                    a.insert(
                        "meta.helm.sh/release-name".into(),
                        Value::from(rel.name.clone()),
                    );
                    a.insert(
                        "meta.helm.sh/release-namespace".into(),
                        Value::from(rel.namespace.clone()),
                    );
                }
            }
            docs.entry(ns).or_default().push(doc);
        }
    }
    docs.into_iter()
        .map(|(ns, d)| Ok((ns, Objects::from_docs(&d)?)))
        .collect()
}

/// The release (`namespace/name`) owning an object, from its helm annotations.
pub fn release_of(raw: &Value) -> Option<(String, String)> {
    let a = raw.pointer("/metadata/annotations")?;
    Some((
        a.get("meta.helm.sh/release-namespace")?
            .as_str()?
            .to_string(),
        a.get("meta.helm.sh/release-name")?.as_str()?.to_string(),
    ))
}

fn cond(type_: &str, ok: bool, at: &DateTime<Utc>, reason: Option<&str>) -> Value {
    let mut c = json!({"type": type_, "status": if ok {"True"} else {"False"}, "lastProbeTime": null, "lastTransitionTime": ts(at)});
    if let Some(r) = reason {
        c["reason"] = Value::from(r);
    }
    c
}

fn state_json(s: &ContainerState) -> Value {
    match s {
        ContainerState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = Value::from(message.clone());
            }
            json!({"waiting": w})
        }
        ContainerState::Running { started_at } => json!({"running": {"startedAt": ts(started_at)}}),
        ContainerState::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
            container_id,
        } => json!({"terminated": {
            "exitCode": exit_code, "reason": reason,
            "startedAt": started_at.as_ref().map(ts), "finishedAt": finished_at.as_ref().map(ts),
            "containerID": format!("docker://{container_id}")}}),
    }
}

/// `kubectl get pod -o json` of one pod.
pub fn pod_json(p: &PodRecord) -> Value {
    let running = matches!(p.state, ContainerState::Running { .. });
    let phase = match &p.state {
        ContainerState::Running { .. } => "Running",
        ContainerState::Terminated { .. } if p.restart_count == 0 && p.last_state.is_none() => {
            "Running"
        }
        _ if p.container_id.is_some() || p.restart_count > 0 => "Running",
        _ => "Pending",
    };
    let containers_ready = running && p.ready;
    let ready_reason = (!containers_ready).then_some("ContainersNotReady");
    let mut cs = json!({
        "name": p.container_name, "image": p.image, "imageID": p.image_id.clone().map(|i| format!("docker-pullable://{i}")).unwrap_or_default(),
        "ready": containers_ready, "restartCount": p.restart_count, "started": running,
        "state": state_json(&p.state), "lastState": p.last_state.as_ref().map(state_json).unwrap_or_else(|| json!({})),
    });
    if let Some(id) = &p.container_id {
        cs["containerID"] = Value::from(format!("docker://{id}"));
    }
    let mut meta = json!({
        "name": p.name, "namespace": p.namespace, "uid": p.uid, "labels": p.labels, "annotations": p.annotations,
        "creationTimestamp": ts(&p.created), "resourceVersion": "1",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": if p.owner_kind == "Deployment" {"ReplicaSet"} else {"StatefulSet"},
            "name": if p.owner_kind == "Deployment" {format!("{}-{}", p.owner_name, p.template_hash)} else {p.owner_name.clone()},
            "controller": true, "blockOwnerDeletion": true, "uid": "00000000-0000-0000-0000-000000000000"}],
    });
    if p.owner_kind == "Deployment" {
        meta["generateName"] = Value::from(format!("{}-{}-", p.owner_name, p.template_hash));
    }
    if p.terminating {
        meta["deletionTimestamp"] = Value::from(ts(&Utc::now()));
    }
    let mut spec = p.spec.clone();
    spec["nodeName"] = Value::from("minikube");
    let mut status = json!({
        "phase": phase, "hostIP": "192.168.49.2", "qosClass": "Burstable", "startTime": ts(&p.created),
        "conditions": [
            cond("PodReadyToStartContainers", p.container_id.is_some(), &p.created, None),
            cond("Initialized", true, &p.created, None),
            cond("Ready", containers_ready, &p.ready_since, ready_reason),
            cond("ContainersReady", containers_ready, &p.ready_since, ready_reason),
            cond("PodScheduled", true, &p.created, None),
        ],
        "containerStatuses": [cs],
    });
    if let Some(ip) = &p.ip {
        status["podIP"] = Value::from(ip.clone());
        status["podIPs"] = json!([{"ip": ip}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status})
}

/// Pods of a workload.
pub fn pods_of<'a>(obs: &'a Observed, ns: &str, w: &Workload) -> Vec<&'a PodRecord> {
    obs.pods
        .iter()
        .filter(|p| p.namespace == ns && p.owner_kind == w.kind && p.owner_name == w.meta.name)
        .collect()
}

/// Rollout counters of a workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Desired.
    pub replicas: u32,
    /// All pods.
    pub current: u32,
    /// Pods on the current template.
    pub updated: u32,
    /// Ready pods (any template).
    pub ready: u32,
    /// Ready pods on the current template.
    pub updated_ready: u32,
}

impl Rollout {
    /// True when the rollout is complete.
    pub fn complete(&self) -> bool {
        self.updated_ready >= self.replicas && self.current == self.replicas
    }
}

/// Rollout counters, counting only what the supervisor has seen for the current generation.
pub fn rollout(obs: &Observed, ns: &str, w: &Workload) -> Rollout {
    let pods: Vec<_> = pods_of(obs, ns, w)
        .into_iter()
        .filter(|p| !p.terminating)
        .collect();
    let is_ready = |p: &&&&PodRecord| p.ready && matches!(p.state, ContainerState::Running { .. });
    let updated: Vec<_> = pods
        .iter()
        .filter(|p| p.template_hash == w.template_hash)
        .collect();
    Rollout {
        replicas: w.replicas,
        current: pods.len() as u32,
        updated: updated.len() as u32,
        ready: pods
            .iter()
            .filter(|p| p.ready && matches!(p.state, ContainerState::Running { .. }))
            .count() as u32,
        updated_ready: updated.iter().filter(is_ready).count() as u32,
    }
}

/// `kubectl get deploy/sts -o json` of one workload.
pub fn workload_json(w: &Workload, ns: &str, obs: &Observed, generation: u64) -> Value {
    let r = rollout(obs, ns, w);
    let mut v = w.raw.clone();
    v["metadata"]["namespace"] = Value::from(ns);
    v["metadata"]["generation"] = Value::from(generation);
    if w.kind == "Deployment" {
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            Value::from(generation.to_string());
    }
    let now = Utc::now();
    let mut status = json!({"observedGeneration": generation, "replicas": r.current, "updatedReplicas": r.updated});
    if r.ready > 0 {
        status["readyReplicas"] = Value::from(r.ready);
        status["availableReplicas"] = Value::from(r.ready);
    }
    if r.replicas > r.ready {
        status["unavailableReplicas"] = Value::from(r.replicas - r.ready);
    }
    if w.kind == "Deployment" {
        let available = r.ready >= r.replicas;
        status["conditions"] = json!([
            {"type": "Available", "status": if available {"True"} else {"False"},
             "reason": if available {"MinimumReplicasAvailable"} else {"MinimumReplicasUnavailable"},
             "message": if available {"Deployment has minimum availability."} else {"Deployment does not have minimum availability."},
             "lastTransitionTime": ts(&now), "lastUpdateTime": ts(&now)},
            {"type": "Progressing", "status": "True",
             "reason": if r.complete() {"NewReplicaSetAvailable"} else {"ReplicaSetUpdated"},
             "message": format!("ReplicaSet \"{}-{}\" {}", w.meta.name, w.template_hash, if r.complete() {"has successfully progressed."} else {"is progressing."}),
             "lastTransitionTime": ts(&now), "lastUpdateTime": ts(&now)}
        ]);
    } else {
        status["currentReplicas"] = Value::from(r.updated);
        status["availableReplicas"] = Value::from(r.ready);
    }
    v["status"] = status;
    v
}

/// A ClusterIP derived from the service name, stable across calls.
pub fn cluster_ip(ns: &str, name: &str) -> String {
    let h = manifest::hash_json(&json!([ns, name]));
    let b = u32::from_str_radix(&h[..6], 16).unwrap_or(1);
    format!("10.96.{}.{}", (b >> 8) % 256, (b % 254) + 1)
}

/// `kubectl get svc -o json` of one service.
pub fn service_json(s: &manifest::Service, ns: &str) -> Value {
    let mut v = s.raw.clone();
    v["metadata"]["namespace"] = Value::from(ns);
    let ip = cluster_ip(ns, &s.meta.name);
    if v["spec"]["type"].is_null() {
        v["spec"]["type"] = Value::from("ClusterIP");
    }
    if v["spec"]["clusterIP"].as_str() != Some("None") {
        v["spec"]["clusterIP"] = Value::from(ip.clone());
        v["spec"]["clusterIPs"] = json!([ip]);
    }
    v["status"] = json!({"loadBalancer": {}});
    v
}

/// `kubectl get endpoints -o json` of one service (no `subsets` key when nothing matches).
pub fn endpoints_json(s: &manifest::Service, ns: &str, obs: &Observed) -> Value {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for p in obs.pods.iter().filter(|p| {
        p.namespace == ns && !p.terminating && manifest::selector_matches(&s.selector, &p.labels)
    }) {
        let Some(ip) = &p.ip else { continue };
        let addr = json!({"ip": ip, "nodeName": "minikube", "targetRef": {"kind": "Pod", "name": p.name, "namespace": ns, "uid": p.uid}});
        if p.ready && matches!(p.state, ContainerState::Running { .. }) {
            ready.push(addr);
        } else {
            not_ready.push(addr);
        }
    }
    let mut v = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": s.meta.name, "namespace": ns, "labels": s.meta.labels}});
    if !ready.is_empty() || !not_ready.is_empty() {
        let ports: Vec<Value> = s
            .ports
            .iter()
            .map(|p| {
                let port = p.target_port.as_u64().unwrap_or(p.port as u64);
                let mut e = json!({"port": port, "protocol": "TCP"});
                if let Some(n) = &p.name {
                    e["name"] = Value::from(n.clone());
                }
                e
            })
            .collect();
        let mut subset = json!({"ports": ports});
        if !ready.is_empty() {
            subset["addresses"] = Value::from(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = Value::from(not_ready);
        }
        v["subsets"] = json!([subset]);
    }
    v
}

/// `kubectl get events -o json` of one event.
pub fn event_json(e: &EventRecord, idx: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event", "type": e.type_, "reason": e.reason, "message": e.message, "count": e.count,
        "firstTimestamp": ts(&e.first), "lastTimestamp": ts(&e.last), "eventTime": null, "reportingComponent": "kubelet", "reportingInstance": "minikube",
        "source": {"component": "kubelet", "host": "minikube"},
        "involvedObject": {"apiVersion": "v1", "kind": e.kind, "name": e.name, "namespace": e.namespace},
        "metadata": {"name": format!("{}.{:016x}", e.name, idx), "namespace": e.namespace, "creationTimestamp": ts(&e.first)},
    })
}

/// `kubectl get namespace -o json` of one namespace.
pub fn namespace_json(name: &str, ns: &crate::state::Namespace) -> Value {
    let mut labels = ns.labels.clone();
    labels.insert("kubernetes.io/metadata.name".into(), name.to_string());
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "uid": ns.uid, "labels": labels, "creationTimestamp": ts(&ns.created)},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

/// `kubectl get endpointslices -o json` of a service's slice (`endpoints: null` when nothing matches).
pub fn endpoint_slice_json(s: &manifest::Service, ns: &str, obs: &Observed) -> Value {
    let eps: Vec<Value> = obs
        .pods
        .iter()
        .filter(|p| p.namespace == ns && !p.terminating && manifest::selector_matches(&s.selector, &p.labels))
        .filter_map(|p| {
            let ready = p.ready && matches!(p.state, ContainerState::Running { .. });
            Some(json!({"addresses": [p.ip.clone()?], "conditions": {"ready": ready, "serving": ready, "terminating": false},
                        "nodeName": "minikube", "targetRef": {"kind": "Pod", "name": p.name, "namespace": ns, "uid": p.uid}}))
        })
        .collect();
    let ports: Vec<Value> = s.ports.iter().map(|p| json!({"name": p.name.clone().unwrap_or_default(), "port": p.target_port.as_u64().unwrap_or(p.port as u64), "protocol": "TCP"})).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
           "metadata": {"name": format!("{}-{}", s.meta.name, &hash_short(&s.meta.name)), "namespace": ns,
                        "labels": {"kubernetes.io/service-name": s.meta.name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
           "endpoints": if eps.is_empty() { Value::Null } else { Value::from(eps) }, "ports": ports})
}

fn hash_short(s: &str) -> String {
    manifest::hash_json(&Value::from(s))[..5].to_string()
}

/// `kubectl get pvc -o json` of a StatefulSet claim (the double's volumes are host dirs, always Bound).
pub fn pvc_json(name: &str, ns: &str, sts: &Value, template: &str) -> Value {
    let spec = sts
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|c| c.pointer("/metadata/name").and_then(Value::as_str) == Some(template))
        })
        .and_then(|c| c.get("spec").cloned())
        .unwrap_or(json!({}));
    let cap = spec
        .pointer("/resources/requests/storage")
        .cloned()
        .unwrap_or(Value::from("1Gi"));
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": ns},
           "spec": spec, "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": cap}}})
}
