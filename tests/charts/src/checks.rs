//! Assertions shared by the backend and frontend chart tests. Each panics with the offending object named.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::manifest::{Rendered, Workload};

/// Where a container's environment variable comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum EnvSource {
    /// `valueFrom.configMapKeyRef`.
    ConfigMap { name: String, key: String },
    /// `valueFrom.secretKeyRef`.
    Secret {
        name: String,
        key: String,
        optional: bool,
    },
    /// A literal `value`.
    Literal(String),
    /// Some other `valueFrom` (field or resource reference).
    Other,
    /// Not set in `env`.
    Missing,
}

/// Where `var` comes from in `container`'s `env`.
pub fn env_source(container: &Container, var: &str) -> EnvSource {
    let Some(env) = container.env.iter().flatten().find(|e| e.name == var) else {
        return EnvSource::Missing;
    };
    if let Some(value) = &env.value {
        return EnvSource::Literal(value.clone());
    }
    let Some(from) = &env.value_from else {
        return EnvSource::Literal(String::new());
    };
    if let Some(r) = &from.config_map_key_ref {
        return EnvSource::ConfigMap {
            name: r.name.clone(),
            key: r.key.clone(),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        return EnvSource::Secret {
            name: r.name.clone(),
            key: r.key.clone(),
            optional: r.optional == Some(true),
        };
    }
    EnvSource::Other
}

/// Containers, init containers included.
pub fn all_containers<'a>(w: &Workload<'a>) -> Vec<&'a Container> {
    w.spec
        .init_containers
        .iter()
        .flatten()
        .chain(w.spec.containers.iter())
        .collect()
}

/// The security baseline on every container of `w`, which runs as `uid`:`uid`.
/// Container settings win over pod settings, as in the kubelet.
pub fn assert_hardened(w: &Workload, uid: i64) {
    let at = format!("{} {}", w.kind, w.name);
    assert_eq!(
        w.spec.automount_service_account_token,
        Some(false),
        "{at}: service account token mounted"
    );
    assert!(
        w.spec.host_network != Some(true) && w.spec.host_pid != Some(true),
        "{at}: host namespaces"
    );
    let pod = w.spec.security_context.clone().unwrap_or_default();
    let containers = all_containers(w);
    assert!(!containers.is_empty(), "{at}: no containers");
    for c in containers {
        let at = format!("{at} container {}", c.name);
        let sc = c
            .security_context
            .clone()
            .unwrap_or_else(|| panic!("{at}: no container securityContext"));
        assert_eq!(
            sc.run_as_non_root.or(pod.run_as_non_root),
            Some(true),
            "{at}: runAsNonRoot"
        );
        assert_eq!(
            sc.run_as_user.or(pod.run_as_user),
            Some(uid),
            "{at}: runAsUser"
        );
        assert_eq!(
            sc.run_as_group.or(pod.run_as_group),
            Some(uid),
            "{at}: runAsGroup"
        );
        assert_eq!(
            sc.allow_privilege_escalation,
            Some(false),
            "{at}: allowPrivilegeEscalation"
        );
        assert_eq!(
            sc.read_only_root_filesystem,
            Some(true),
            "{at}: readOnlyRootFilesystem"
        );
        assert_ne!(sc.privileged, Some(true), "{at}: privileged");
        let caps = sc.capabilities.clone().unwrap_or_default();
        assert!(
            caps.drop.iter().flatten().any(|d| d == "ALL"),
            "{at}: capabilities not dropped: {caps:?}"
        );
        assert!(
            caps.add.iter().flatten().next().is_none(),
            "{at}: capabilities added: {caps:?}"
        );
        let seccomp = sc.seccomp_profile.clone().or(pod.seccomp_profile.clone());
        assert_eq!(
            seccomp.map(|s| s.type_),
            Some("RuntimeDefault".to_owned()),
            "{at}: seccomp profile"
        );
    }
}

/// `path` is mounted in `container` from an emptyDir volume (a writable place on a read-only root).
pub fn assert_empty_dir_at(w: &Workload, container: &Container, path: &str) {
    let mount = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == path)
        .unwrap_or_else(|| panic!("{} {}: nothing mounted at {path}", w.name, container.name));
    let volume = w
        .spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("{}: volume {} not declared", w.name, mount.name));
    assert!(
        volume.empty_dir.is_some(),
        "{}: {path} is not an emptyDir: {volume:?}",
        w.name
    );
}

/// Requests and limits of CPU and memory on every container.
pub fn assert_resources_bounded(w: &Workload) {
    for c in all_containers(w) {
        let at = format!("{} {} container {}", w.kind, w.name, c.name);
        let res = c
            .resources
            .clone()
            .unwrap_or_else(|| panic!("{at}: no resources"));
        for (what, map) in [("requests", res.requests), ("limits", res.limits)] {
            let map = map.unwrap_or_else(|| panic!("{at}: no {what}"));
            for key in ["cpu", "memory"] {
                assert!(map.contains_key(key), "{at}: no {what}.{key}");
            }
        }
    }
}

/// `probe` is an HTTP GET of `path` on the container's named port `port_name`.
pub fn assert_http_probe(
    container: &Container,
    probe: &Option<Probe>,
    what: &str,
    path: &str,
    port_name: &str,
) {
    let at = format!("container {} {what}", container.name);
    let get = probe
        .as_ref()
        .and_then(|p| p.http_get.clone())
        .unwrap_or_else(|| panic!("{at}: no httpGet probe"));
    assert_eq!(get.path.as_deref(), Some(path), "{at}: path");
    assert_eq!(
        get.port,
        IntOrString::String(port_name.to_owned()),
        "{at}: must use the named port"
    );
    assert!(
        container
            .ports
            .iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some(port_name)),
        "{at}: container has no port named {port_name}"
    );
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Names of the workloads whose pods `selector` matches.
pub fn selected_workloads(rendered: &Rendered, selector: &BTreeMap<String, String>) -> Vec<String> {
    rendered
        .workloads()
        .iter()
        .filter(|w| selects(selector, &w.pod_labels))
        .map(|w| format!("{} {}", w.kind, w.name))
        .collect()
}

/// Service `name` is a ClusterIP Service on `port` (named `port_name`) whose selector matches the pods of
/// `workload` (e.g. "Deployment todo-backend") and no others, and whose target port is a named container port.
pub fn assert_service_routes_only_to(
    rendered: &Rendered,
    name: &str,
    port: i32,
    port_name: &str,
    workload: &str,
) {
    let svc = rendered.service(name);
    let spec = svc.spec.clone().unwrap_or_default();
    assert!(
        matches!(spec.type_.as_deref(), None | Some("ClusterIP")),
        "Service {name}: type {:?}",
        spec.type_
    );
    let selector = spec.selector.clone().unwrap_or_default();
    assert_eq!(
        selected_workloads(rendered, &selector),
        vec![workload.to_owned()],
        "Service {name} selects"
    );
    let ports = spec.ports.clone().unwrap_or_default();
    let p = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(port_name))
        .unwrap_or_else(|| panic!("Service {name}: no port named {port_name}: {ports:?}"));
    assert_eq!(p.port, port, "Service {name} port {port_name}");
    let target = match &p.target_port {
        Some(IntOrString::String(s)) => s.clone(),
        other => panic!("Service {name}: targetPort must be a named port, got {other:?}"),
    };
    let workloads = rendered.workloads();
    let w = workloads
        .iter()
        .find(|w| format!("{} {}", w.kind, w.name) == workload)
        .unwrap_or_else(|| panic!("no {workload}"));
    assert!(
        w.spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .any(|cp| cp.name.as_deref() == Some(&target)),
        "Service {name}: targetPort {target} is not a named port of {workload}"
    );
}

/// Every workload's selector matches its own pod template; every PDB selects exactly one workload.
pub fn assert_selectors_consistent(rendered: &Rendered) {
    let mut own: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for d in rendered.deployments() {
        let spec = d.spec.clone().unwrap_or_default();
        own.push((
            format!("Deployment {}", d.metadata.name.clone().unwrap_or_default()),
            match_labels(&spec.selector),
        ));
    }
    for s in rendered.stateful_sets() {
        let spec = s.spec.clone().unwrap_or_default();
        own.push((
            format!(
                "StatefulSet {}",
                s.metadata.name.clone().unwrap_or_default()
            ),
            match_labels(&spec.selector),
        ));
    }
    for (name, selector) in &own {
        assert_eq!(
            &selected_workloads(rendered, selector),
            &vec![name.clone()],
            "selector of {name}"
        );
    }
    for pdb in rendered.pdbs() {
        let spec = pdb.spec.clone().unwrap_or_default();
        let selector = spec.selector.map(|s| match_labels(&s)).unwrap_or_default();
        let name = pdb.metadata.name.clone().unwrap_or_default();
        assert_eq!(
            selected_workloads(rendered, &selector).len(),
            1,
            "PodDisruptionBudget {name} selects"
        );
    }
}

fn match_labels(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> BTreeMap<String, String> {
    assert!(
        selector.match_expressions.is_none(),
        "selectors use matchLabels only"
    );
    selector.match_labels.clone().unwrap_or_default()
}

/// The app.kubernetes.io/* labels of the contract on `labels`, with `component` one of `components`.
pub fn assert_standard_labels(
    at: &str,
    labels: &BTreeMap<String, String>,
    chart: &str,
    release: &str,
    components: &[&str],
) {
    let get = |k: &str| labels.get(k).map(String::as_str);
    assert_eq!(
        get("app.kubernetes.io/name"),
        Some(chart),
        "{at}: name label"
    );
    assert_eq!(
        get("app.kubernetes.io/instance"),
        Some(release),
        "{at}: instance label"
    );
    assert_eq!(
        get("app.kubernetes.io/part-of"),
        Some("todo-chatbot"),
        "{at}: part-of label"
    );
    assert_eq!(
        get("app.kubernetes.io/managed-by"),
        Some("Helm"),
        "{at}: managed-by label"
    );
    assert!(
        get("app.kubernetes.io/version").is_some_and(|v| !v.is_empty()),
        "{at}: version label"
    );
    let component = get("app.kubernetes.io/component").unwrap_or_default();
    assert!(
        components.contains(&component),
        "{at}: component {component:?} not in {components:?}"
    );
}

/// Standard labels on every object and every pod template of a render.
pub fn assert_labels_everywhere(
    rendered: &Rendered,
    chart: &str,
    release: &str,
    components: &[&str],
) {
    for o in &rendered.objects {
        let (_, meta) = o.meta();
        let at = format!("{:?}", meta.name);
        assert_standard_labels(
            &at,
            &meta.labels.clone().unwrap_or_default(),
            chart,
            release,
            components,
        );
    }
    for w in rendered.workloads() {
        let at = format!("pods of {} {}", w.kind, w.name);
        assert_standard_labels(&at, &w.pod_labels, chart, release, components);
    }
}

/// Every object of the render names `namespace` in its own metadata (every kind the charts render is
/// namespaced), so applying the output with plain `kubectl apply -f` or a GitOps tool puts nothing in the
/// current context's namespace. Lists every object that does not.
pub fn assert_namespaced(rendered: &Rendered, namespace: &str) {
    let wrong: Vec<String> = rendered
        .objects
        .iter()
        .map(|o| o.meta())
        .filter(|(_, meta)| meta.namespace.as_deref() != Some(namespace))
        .map(|(kind, meta)| {
            format!(
                "{kind} {}: namespace {:?}",
                meta.name.clone().unwrap_or_default(),
                meta.namespace
            )
        })
        .collect();
    assert!(
        !rendered.objects.is_empty() && wrong.is_empty(),
        "objects without metadata.namespace {namespace:?}: {wrong:#?}"
    );
}

/// None of `secrets` appears in clear anywhere in the output (ConfigMaps, env literals, annotations...),
/// and no ConfigMap value holds one even base64-encoded.
pub fn assert_secrets_hidden(rendered: &Rendered, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty(), "empty secret given to the check");
        assert!(
            !rendered.text.contains(secret),
            "secret value appears in clear in the rendered output"
        );
        for cm in rendered.config_maps() {
            let name = cm.metadata.name.clone().unwrap_or_default();
            for value in cm.data.iter().flat_map(|d| d.values()) {
                assert!(
                    !value.contains(secret),
                    "ConfigMap {name} holds a secret value"
                );
            }
            assert!(cm.binary_data.is_none(), "ConfigMap {name} has binaryData");
        }
        for w in rendered.workloads() {
            for c in all_containers(&w) {
                for e in c.env.iter().flatten() {
                    let literal = e.value.clone().unwrap_or_default();
                    assert!(
                        !literal.contains(secret),
                        "{} env {} holds a secret value in clear",
                        w.name,
                        e.name
                    );
                }
            }
        }
    }
}

fn is_dns_label(s: &str, first_must_be_letter: bool) -> bool {
    let bytes = s.as_bytes();
    let body_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || (!first_must_be_letter && b.is_ascii_digit()));
    let last_ok = bytes.last().is_some_and(|b| *b != b'-');
    !s.is_empty() && s.len() <= 63 && body_ok && first_ok && last_ok
}

/// Names the API server would refuse: Services must be DNS-1035 labels, other objects and containers DNS-1123
/// labels here, and port names IANA service names (at most 15 characters, with a letter).
pub fn assert_valid_names(rendered: &Rendered) {
    for (kind, name) in rendered.inventory() {
        assert!(
            is_dns_label(&name, kind == "Service"),
            "{kind} name {name:?} is not a valid DNS label"
        );
    }
    for w in rendered.workloads() {
        for c in all_containers(&w) {
            assert!(
                is_dns_label(&c.name, false),
                "{}: container name {:?}",
                w.name,
                c.name
            );
            for p in c.ports.iter().flatten() {
                let name = p.name.clone().unwrap_or_default();
                let valid = is_dns_label(&name, false)
                    && name.len() <= 15
                    && name.bytes().any(|b| b.is_ascii_lowercase());
                assert!(
                    valid,
                    "{}: port name {name:?} is not an IANA service name",
                    w.name
                );
            }
        }
    }
    for svc in rendered.services() {
        for p in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let name = p.name.clone().unwrap_or_default();
            assert!(
                name.len() <= 15 && is_dns_label(&name, false),
                "Service port name {name:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_dns_label;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("todo-backend-postgresql", true));
        assert!(is_dns_label("0abc", false));
        assert!(
            !is_dns_label("0abc", true),
            "a Service name must start with a letter"
        );
        for bad in ["", "a-", "-a", "Upper", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad, false), "{bad:?}");
        }
    }
}
