//! The subset of rendered Kubernetes objects the double realises, parsed from `helm template` output.

use anyhow::{Context, Result};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A key reference into a ConfigMap or Secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyRef {
    /// Object name.
    pub name: String,
    /// Key.
    pub key: String,
    /// Missing allowed.
    pub optional: Option<bool>,
}

/// `fieldRef`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FieldRef {
    /// e.g. metadata.name.
    pub field_path: String,
}

/// `valueFrom`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVarSource {
    /// From a ConfigMap.
    pub config_map_key_ref: Option<KeyRef>,
    /// From a Secret.
    pub secret_key_ref: Option<KeyRef>,
    /// From the pod.
    pub field_ref: Option<FieldRef>,
}

/// One env entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Indirect value.
    pub value_from: Option<EnvVarSource>,
}

/// A whole-object reference for `envFrom`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NameRef {
    /// Object name.
    pub name: String,
    /// Missing allowed.
    pub optional: Option<bool>,
}

/// `envFrom`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvFromSource {
    /// All keys of a ConfigMap.
    pub config_map_ref: Option<NameRef>,
    /// All keys of a Secret.
    pub secret_ref: Option<NameRef>,
    /// Name prefix.
    pub prefix: Option<String>,
}

/// A container port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    /// Port name.
    pub name: Option<String>,
    /// Number.
    pub container_port: u16,
}

/// `httpGet`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpGet {
    /// Path.
    pub path: Option<String>,
    /// Number or name.
    pub port: Value,
}

/// `exec`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecAction {
    /// argv.
    pub command: Vec<String>,
}

/// `tcpSocket`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpSocket {
    /// Number or name.
    pub port: Value,
}

/// A probe with the kubelet's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Probe {
    /// HTTP GET.
    pub http_get: Option<HttpGet>,
    /// Exec.
    pub exec: Option<ExecAction>,
    /// TCP connect.
    pub tcp_socket: Option<TcpSocket>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: u64,
    /// Seconds between probes.
    pub period_seconds: u64,
    /// Seconds before a probe times out.
    pub timeout_seconds: u64,
    /// Successes to pass.
    pub success_threshold: u32,
    /// Failures to fail.
    pub failure_threshold: u32,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            http_get: None,
            exec: None,
            tcp_socket: None,
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

/// Capabilities.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Capabilities {
    /// Added.
    pub add: Vec<String>,
    /// Dropped.
    pub drop: Vec<String>,
}

/// Container securityContext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityContext {
    /// UID.
    pub run_as_user: Option<i64>,
    /// GID.
    pub run_as_group: Option<i64>,
    /// Refuse root.
    pub run_as_non_root: Option<bool>,
    /// Read-only rootfs.
    pub read_only_root_filesystem: Option<bool>,
    /// no-new-privileges when false.
    pub allow_privilege_escalation: Option<bool>,
    /// Capabilities.
    pub capabilities: Option<Capabilities>,
}

/// Pod securityContext.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSecurityContext {
    /// UID.
    pub run_as_user: Option<i64>,
    /// GID.
    pub run_as_group: Option<i64>,
    /// Refuse root.
    pub run_as_non_root: Option<bool>,
    /// Volume group.
    pub fs_group: Option<i64>,
}

/// Resource requests and limits (quantities kept as text).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Resources {
    /// Limits.
    pub limits: BTreeMap<String, Value>,
    /// Requests.
    pub requests: BTreeMap<String, Value>,
}

/// A volume mount.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeMount {
    /// Volume name.
    pub name: String,
    /// Where.
    pub mount_path: String,
    /// Read-only.
    pub read_only: bool,
    /// Sub path.
    pub sub_path: Option<String>,
}

/// A container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Always / IfNotPresent / Never.
    pub image_pull_policy: Option<String>,
    /// Entrypoint override.
    pub command: Vec<String>,
    /// Cmd override.
    pub args: Vec<String>,
    /// Env.
    pub env: Vec<EnvVar>,
    /// Env from objects.
    pub env_from: Vec<EnvFromSource>,
    /// Ports.
    pub ports: Vec<ContainerPort>,
    /// Resources.
    pub resources: Resources,
    /// Security.
    pub security_context: Option<SecurityContext>,
    /// Liveness.
    pub liveness_probe: Option<Probe>,
    /// Readiness.
    pub readiness_probe: Option<Probe>,
    /// Startup.
    pub startup_probe: Option<Probe>,
    /// Mounts.
    pub volume_mounts: Vec<VolumeMount>,
    /// Working dir.
    pub working_dir: Option<String>,
}

impl Container {
    /// Resolves a probe/service port (number or container port name).
    pub fn resolve_port(&self, port: &Value) -> Option<u16> {
        match port {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(s) => s.parse().ok().or_else(|| {
                self.ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(s))
                    .map(|p| p.container_port)
            }),
            _ => None,
        }
    }
}

/// A volume.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    /// Name.
    pub name: String,
    /// emptyDir.
    pub empty_dir: Option<Value>,
    /// configMap.
    pub config_map: Option<NameRef>,
    /// secret.
    pub secret: Option<SecretVolume>,
    /// persistentVolumeClaim.
    pub persistent_volume_claim: Option<ClaimRef>,
}

/// `secret` volume source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretVolume {
    /// Secret name.
    pub secret_name: String,
}

/// `persistentVolumeClaim` volume source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClaimRef {
    /// Claim name.
    pub claim_name: String,
}

/// A pod spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    /// Containers (the double realises the first; see README of this crate).
    pub containers: Vec<Container>,
    /// Init containers (run to completion before the main one).
    pub init_containers: Vec<Container>,
    /// Pod security.
    pub security_context: Option<PodSecurityContext>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Grace period.
    pub termination_grace_period_seconds: Option<u64>,
}

/// Object metadata subset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Meta {
    /// Name.
    pub name: String,
    /// Namespace (may be absent in rendered output).
    pub namespace: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A pod template.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodTemplate {
    /// Metadata.
    pub metadata: Meta,
    /// Spec.
    pub spec: PodSpec,
}

/// A Deployment or StatefulSet.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Deployment or StatefulSet.
    pub kind: String,
    /// Metadata.
    pub meta: Meta,
    /// Replicas.
    pub replicas: u32,
    /// matchLabels of the selector.
    pub selector: BTreeMap<String, String>,
    /// Pod template.
    pub template: PodTemplate,
    /// The template as rendered (for pod JSON).
    pub template_json: Value,
    /// pod-template-hash.
    pub template_hash: String,
    /// volumeClaimTemplates names (StatefulSet).
    pub claim_templates: Vec<String>,
    /// serviceName (StatefulSet).
    pub service_name: Option<String>,
    /// The rendered object.
    pub raw: Value,
}

/// A Service port.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePort {
    /// Name.
    pub name: Option<String>,
    /// Service port.
    pub port: u16,
    /// Target (number or name).
    pub target_port: Value,
}

/// A Service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Metadata.
    pub meta: Meta,
    /// Selector.
    pub selector: BTreeMap<String, String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
    /// The rendered object.
    pub raw: Value,
}

/// All objects of a namespace the double understands.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// Deployments and StatefulSets.
    pub workloads: Vec<Workload>,
    /// Services.
    pub services: Vec<Service>,
    /// ConfigMap data.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secret data, decoded.
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Every object as rendered (for `kubectl get` of other kinds).
    pub raw: Vec<Value>,
}

/// Parses a multi-document YAML stream into JSON values, skipping empty documents.
pub fn parse_docs(yaml: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v: serde_yaml::Value =
            serde_yaml::Value::deserialize(doc).context("parsing rendered YAML")?;
        if v.is_null() {
            continue;
        }
        let json: Value = serde_json::to_value(v).context("converting rendered YAML to JSON")?;
        if json.get("kind").is_some() {
            out.push(json);
        }
    }
    Ok(out)
}

/// A stable short hash of a JSON value.
pub fn hash_json(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(crate::printer::sorted(v).to_string().as_bytes());
    d.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn meta_of(v: &Value) -> Result<Meta> {
    serde_json::from_value(v.get("metadata").cloned().unwrap_or(Value::Null))
        .context("reading metadata")
}

/// True for helm hook objects (tests and lifecycle hooks are not part of the release's applied set).
pub fn is_hook(v: &Value) -> bool {
    v.pointer("/metadata/annotations/helm.sh~1hook").is_some()
}

impl Objects {
    /// Classifies parsed objects.
    pub fn from_docs(docs: &[Value]) -> Result<Objects> {
        let mut o = Objects::default();
        for v in docs {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
            let meta = meta_of(v)?;
            match kind {
                "Deployment" | "StatefulSet" => {
                    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
                    let template_json = spec.get("template").cloned().unwrap_or(Value::Null);
                    let template: PodTemplate = serde_json::from_value(template_json.clone())
                        .with_context(|| {
                            format!("{kind}/{}: reading the pod template", meta.name)
                        })?;
                    let selector: BTreeMap<String, String> = spec
                        .pointer("/selector/matchLabels")
                        .cloned()
                        .map(serde_json::from_value)
                        .transpose()?
                        .unwrap_or_default();
                    let claim_templates = spec
                        .get("volumeClaimTemplates")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|c| {
                                    c.pointer("/metadata/name")?.as_str().map(str::to_string)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    o.workloads.push(Workload {
                        kind: kind.to_string(),
                        replicas: spec.get("replicas").and_then(Value::as_u64).unwrap_or(1) as u32,
                        selector,
                        template_hash: hash_json(&template_json),
                        template,
                        template_json,
                        claim_templates,
                        service_name: spec
                            .get("serviceName")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        meta,
                        raw: v.clone(),
                    });
                }
                "Service" => {
                    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
                    o.services.push(Service {
                        selector: spec
                            .get("selector")
                            .cloned()
                            .map(serde_json::from_value)
                            .transpose()?
                            .unwrap_or_default(),
                        ports: spec
                            .get("ports")
                            .cloned()
                            .map(serde_json::from_value)
                            .transpose()?
                            .unwrap_or_default(),
                        meta,
                        raw: v.clone(),
                    });
                }
                "ConfigMap" => {
                    let data = string_map(v.get("data"));
                    o.config_maps.insert(meta.name.clone(), data);
                }
                "Secret" => {
                    let mut data = BTreeMap::new();
                    for (k, val) in string_map(v.get("data")) {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(val.trim())
                            .with_context(|| {
                                format!("Secret {}: key {k} is not base64", meta.name)
                            })?;
                        data.insert(k, String::from_utf8_lossy(&bytes).into_owned());
                    }
                    data.extend(string_map(v.get("stringData")));
                    o.secrets.insert(meta.name.clone(), data);
                }
                _ => {}
            }
            o.raw.push(v.clone());
        }
        Ok(o)
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// True when every selector label is on the pod.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Memory quantity to bytes (`512Mi`, `1G`, `1000`).
pub fn memory_bytes(q: &Value) -> Option<u64> {
    let s = match q {
        Value::Number(n) => return n.as_u64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    const UNITS: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1000),
        ("K", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, mult) in UNITS {
        if let Some(num) = s.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| (n * *mult as f64) as u64);
        }
    }
    s.parse::<f64>().ok().map(|n| n as u64)
}

/// CPU quantity to cores (`250m`, `1`, `0.5`).
pub fn cpu_cores(q: &Value) -> Option<f64> {
    match q {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.strip_suffix('m') {
            Some(m) => m.parse::<f64>().ok().map(|m| m / 1000.0),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"---
# Source: x/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: s
data:
  DATABASE_URL: cG9zdGdyZXM6Ly94
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: web:1
          ports: [{name: http, containerPort: 8000}]
          readinessProbe:
            httpGet: {path: /ready, port: http}
---
"#;

    #[test]
    fn parses_workloads_secrets_and_probe_defaults() {
        let docs = parse_docs(RENDERED).unwrap();
        assert_eq!(docs.len(), 2);
        let o = Objects::from_docs(&docs).unwrap();
        assert_eq!(o.secrets["s"]["DATABASE_URL"], "postgres://x");
        let w = &o.workloads[0];
        assert_eq!(w.replicas, 2);
        let c = &w.template.spec.containers[0];
        let p = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            (p.period_seconds, p.failure_threshold, p.timeout_seconds),
            (10, 3, 1)
        );
        assert_eq!(
            c.resolve_port(&p.http_get.as_ref().unwrap().port),
            Some(8000)
        );
        assert_eq!(w.template_hash.len(), 10);
    }

    #[test]
    fn quantities() {
        assert_eq!(memory_bytes(&Value::from("256Mi")), Some(256 << 20));
        assert_eq!(memory_bytes(&Value::from("1G")), Some(1_000_000_000));
        assert_eq!(cpu_cores(&Value::from("250m")), Some(0.25));
        assert_eq!(cpu_cores(&Value::from(2)), Some(2.0));
    }
}
