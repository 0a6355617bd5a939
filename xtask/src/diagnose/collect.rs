//! Reads the namespace from the cluster: one `kubectl get ... -o json`, then the logs of crashed containers.

use anyhow::{Context as _, Result};
use serde::Deserialize;

use super::snapshot::Snapshot;
use crate::context::Context;
use crate::exit::Failure;
use crate::kube::{
    parse_items, Deployment, EndpointSlice, Endpoints, Event, PersistentVolumeClaim, Pod, Service,
};
use crate::tools::kubectl;

/// The kinds one `kubectl get` fetches (a mixed `List`).
pub const KINDS: &str =
    "pods,deployments,services,endpoints,endpointslices,persistentvolumeclaims,events";

#[derive(Deserialize)]
struct Kind {
    #[serde(default)]
    kind: String,
}

/// Sorts the items of a mixed `kubectl get -o json` List into a snapshot; unknown kinds are ignored.
pub fn snapshot_from_json(json: &str, namespace: &str, profile: &str) -> Result<Snapshot> {
    let items: Vec<serde_json::Value> = parse_items(json)?;
    let mut snap = Snapshot {
        namespace: namespace.to_string(),
        profile: profile.to_string(),
        ..Snapshot::default()
    };
    for item in items {
        let kind: Kind = serde_json::from_value(item.clone()).context("reading an item's kind")?;
        let what = || format!("parsing a {} from kubectl", kind.kind);
        match kind.kind.as_str() {
            "Pod" => snap
                .pods
                .push(serde_json::from_value::<Pod>(item).with_context(what)?),
            "Deployment" => snap
                .deployments
                .push(serde_json::from_value::<Deployment>(item).with_context(what)?),
            "Service" => snap
                .services
                .push(serde_json::from_value::<Service>(item).with_context(what)?),
            "Endpoints" => snap
                .endpoints
                .push(serde_json::from_value::<Endpoints>(item).with_context(what)?),
            "EndpointSlice" => snap
                .endpoint_slices
                .push(serde_json::from_value::<EndpointSlice>(item).with_context(what)?),
            "PersistentVolumeClaim" => snap
                .pvcs
                .push(serde_json::from_value::<PersistentVolumeClaim>(item).with_context(what)?),
            "Event" => snap
                .events
                .push(serde_json::from_value::<Event>(item).with_context(what)?),
            _ => {}
        }
    }
    Ok(snap)
}

/// Containers whose previous run's logs explain a crash: `(pod, container)`.
pub fn crashed_containers(snap: &Snapshot) -> Vec<(String, String)> {
    snap.pods
        .iter()
        .flat_map(|p| {
            p.all_statuses()
                .filter(|cs| {
                    // Completed containers (helm test hooks) have no crash to explain.
                    cs.restart_count > 0
                        || cs
                            .state
                            .terminated
                            .as_ref()
                            .is_some_and(|t| t.exit_code != 0)
                })
                .map(move |cs| (p.metadata.name.clone(), cs.name.clone()))
        })
        .collect()
}

/// Gathers the snapshot of `ctx.namespace` through kubectl (read-only, so it also runs under --dry-run).
pub fn collect(ctx: &Context, tail: u32) -> Result<Snapshot> {
    let sh = ctx.sh()?;
    let out = ctx.run(&kubectl::get(&sh, &ctx.profile, &ctx.namespace, KINDS))?;
    if !out.ok() {
        return Err(Failure::prereq(format!(
            "cannot read namespace {} in kube context {}: {} (is the cluster running? `minikube -p {} status`)",
            ctx.namespace,
            ctx.profile,
            out.reason(),
            ctx.profile
        ))
        .into());
    }
    let mut snap = snapshot_from_json(&out.stdout, &ctx.namespace, &ctx.profile)?;
    for (pod, container) in crashed_containers(&snap) {
        let logs = kubectl::logs(
            &sh,
            &ctx.profile,
            &ctx.namespace,
            &pod,
            &container,
            tail,
            true,
        );
        // Logs are evidence, not a precondition: a pod deleted meanwhile just has none.
        if let Ok(out) = ctx.run(&logs) {
            if out.ok() {
                snap.logs.insert(format!("{pod}/{container}"), out.stdout);
            }
        }
    }
    Ok(snap)
}
