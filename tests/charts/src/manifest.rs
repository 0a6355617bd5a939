//! `helm template` output parsed into typed Kubernetes objects (k8s-openapi), with lookups by kind and name.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Pod, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One rendered object of a kind the charts may produce. Any other kind fails the parse: a chart change
/// that adds a kind must extend the checks too.
pub enum Object {
    /// apps/v1 Deployment.
    Deployment(Box<Deployment>),
    /// apps/v1 StatefulSet.
    StatefulSet(Box<StatefulSet>),
    /// v1 Service.
    Service(Box<Service>),
    /// v1 ConfigMap.
    ConfigMap(Box<ConfigMap>),
    /// v1 Secret.
    Secret(Box<Secret>),
    /// v1 Pod (the `helm test` hooks).
    Pod(Box<Pod>),
    /// policy/v1 PodDisruptionBudget.
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// v1 ServiceAccount.
    ServiceAccount(Box<ServiceAccount>),
    /// networking.k8s.io/v1 NetworkPolicy.
    NetworkPolicy(Box<NetworkPolicy>),
}

impl Object {
    /// The object's kind and metadata.
    pub fn meta(&self) -> (&'static str, &ObjectMeta) {
        match self {
            Object::Deployment(x) => ("Deployment", &x.metadata),
            Object::StatefulSet(x) => ("StatefulSet", &x.metadata),
            Object::Service(x) => ("Service", &x.metadata),
            Object::ConfigMap(x) => ("ConfigMap", &x.metadata),
            Object::Secret(x) => ("Secret", &x.metadata),
            Object::Pod(x) => ("Pod", &x.metadata),
            Object::PodDisruptionBudget(x) => ("PodDisruptionBudget", &x.metadata),
            Object::ServiceAccount(x) => ("ServiceAccount", &x.metadata),
            Object::NetworkPolicy(x) => ("NetworkPolicy", &x.metadata),
        }
    }
}

/// Everything one `helm template` printed.
pub struct Rendered {
    /// The objects, in output order.
    pub objects: Vec<Object>,
    /// The raw text, for "this string appears nowhere" checks.
    pub text: String,
}

/// A pod template (of a Deployment or StatefulSet) or a bare Pod, with where it came from.
pub struct Workload<'a> {
    /// `Deployment`, `StatefulSet` or `Pod`.
    pub kind: &'static str,
    /// Object name.
    pub name: String,
    /// Labels of the pods it makes.
    pub pod_labels: BTreeMap<String, String>,
    /// Annotations of the pods it makes.
    pub pod_annotations: BTreeMap<String, String>,
    /// The pod spec.
    pub spec: &'a PodSpec,
}

/// Deserializes into `T`, then requires that serializing it back loses nothing: k8s-openapi ignores unknown
/// fields, so a misspelled field in a template (`readinesProbe`) would otherwise vanish silently, as it would
/// (with a mere warning) on the API server.
fn typed<T: DeserializeOwned + Serialize>(doc: serde_yaml::Value) -> Result<Box<T>, String> {
    let original: serde_json::Value =
        serde_yaml::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let object: T = serde_yaml::from_value(doc).map_err(|e| e.to_string())?;
    let round_trip = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    dropped_fields(&original, &round_trip, String::new(), &mut lost);
    if !lost.is_empty() {
        let name = original
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or_default();
        return Err(format!(
            "{} {name}: unknown or mistyped fields {lost:?}",
            original["kind"]
        ));
    }
    Ok(Box::new(object))
}

/// Paths present in `original` whose value `round_trip` does not reproduce.
fn dropped_fields(
    original: &serde_json::Value,
    round_trip: &serde_json::Value,
    path: String,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let at = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => dropped_fields(value, other, at, out),
                    // An explicit null round-trips to "absent": nothing was lost.
                    None if value.is_null() => {}
                    None => out.push(at),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                dropped_fields(x, y, format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(path),
    }
}

impl Rendered {
    /// Parses a multi-document YAML stream.
    pub fn parse(text: &str) -> Result<Rendered, String> {
        let mut objects = Vec::new();
        for document in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(document).map_err(|e| e.to_string())?;
            if value.is_null() {
                continue;
            }
            let kind = value
                .get("kind")
                .and_then(|k| k.as_str())
                .unwrap_or_default()
                .to_owned();
            let object = match kind.as_str() {
                "Deployment" => Object::Deployment(typed(value)?),
                "StatefulSet" => Object::StatefulSet(typed(value)?),
                "Service" => Object::Service(typed(value)?),
                "ConfigMap" => Object::ConfigMap(typed(value)?),
                "Secret" => Object::Secret(typed(value)?),
                "Pod" => Object::Pod(typed(value)?),
                "PodDisruptionBudget" => Object::PodDisruptionBudget(typed(value)?),
                "ServiceAccount" => Object::ServiceAccount(typed(value)?),
                "NetworkPolicy" => Object::NetworkPolicy(typed(value)?),
                other => return Err(format!("unexpected kind {other:?} in rendered output")),
            };
            objects.push(object);
        }
        Ok(Rendered {
            objects,
            text: text.to_owned(),
        })
    }

    /// All Deployments.
    pub fn deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.objects.iter().filter_map(|o| match o {
            Object::Deployment(d) => Some(d.as_ref()),
            _ => None,
        })
    }

    /// All StatefulSets.
    pub fn stateful_sets(&self) -> impl Iterator<Item = &StatefulSet> {
        self.objects.iter().filter_map(|o| match o {
            Object::StatefulSet(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    /// All Services.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.objects.iter().filter_map(|o| match o {
            Object::Service(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    /// All ConfigMaps.
    pub fn config_maps(&self) -> impl Iterator<Item = &ConfigMap> {
        self.objects.iter().filter_map(|o| match o {
            Object::ConfigMap(c) => Some(c.as_ref()),
            _ => None,
        })
    }

    /// All Secrets.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.objects.iter().filter_map(|o| match o {
            Object::Secret(s) => Some(s.as_ref()),
            _ => None,
        })
    }

    /// All bare Pods (test hooks).
    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.objects.iter().filter_map(|o| match o {
            Object::Pod(p) => Some(p.as_ref()),
            _ => None,
        })
    }

    /// All PodDisruptionBudgets.
    pub fn pdbs(&self) -> impl Iterator<Item = &PodDisruptionBudget> {
        self.objects.iter().filter_map(|o| match o {
            Object::PodDisruptionBudget(p) => Some(p.as_ref()),
            _ => None,
        })
    }

    /// All NetworkPolicies.
    pub fn network_policies(&self) -> impl Iterator<Item = &NetworkPolicy> {
        self.objects.iter().filter_map(|o| match o {
            Object::NetworkPolicy(p) => Some(p.as_ref()),
            _ => None,
        })
    }

    /// Kind and name of every object, for failure messages and inventory checks.
    pub fn inventory(&self) -> Vec<(&'static str, String)> {
        self.objects
            .iter()
            .map(|o| {
                let (kind, meta) = o.meta();
                (kind, meta.name.clone().unwrap_or_default())
            })
            .collect()
    }

    /// The Deployment named `name`.
    pub fn deployment(&self, name: &str) -> &Deployment {
        find(
            self.deployments(),
            name,
            |d| &d.metadata.name,
            "Deployment",
            self,
        )
    }

    /// The StatefulSet named `name`.
    pub fn stateful_set(&self, name: &str) -> &StatefulSet {
        find(
            self.stateful_sets(),
            name,
            |s| &s.metadata.name,
            "StatefulSet",
            self,
        )
    }

    /// The Service named `name`.
    pub fn service(&self, name: &str) -> &Service {
        find(self.services(), name, |s| &s.metadata.name, "Service", self)
    }

    /// The ConfigMap named `name`.
    pub fn config_map(&self, name: &str) -> &ConfigMap {
        find(
            self.config_maps(),
            name,
            |c| &c.metadata.name,
            "ConfigMap",
            self,
        )
    }

    /// The Secret named `name`.
    pub fn secret(&self, name: &str) -> &Secret {
        find(self.secrets(), name, |s| &s.metadata.name, "Secret", self)
    }

    /// The decoded value of `key` in Secret `name` (`data` or `stringData`).
    pub fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.secret(name);
        if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
            return Some(String::from_utf8_lossy(&bytes.0).into_owned());
        }
        secret
            .string_data
            .as_ref()
            .and_then(|d| d.get(key))
            .cloned()
    }

    /// The pod spec of the workload of `kind` (`Deployment`, `StatefulSet`, `Pod`) named `workload`.
    pub fn pod_spec(&self, kind: &str, workload: &str) -> PodSpec {
        self.workloads()
            .iter()
            .find(|w| w.kind == kind && w.name == workload)
            .map(|w| w.spec.clone())
            .unwrap_or_else(|| panic!("no {kind} {workload}; rendered: {:?}", self.inventory()))
    }

    /// The container `container` of the workload of `kind` (`Deployment`, `StatefulSet`, `Pod`) named `workload`.
    pub fn container(&self, kind: &str, workload: &str, container: &str) -> Container {
        self.pod_spec(kind, workload)
            .containers
            .into_iter()
            .find(|c| c.name == container)
            .unwrap_or_else(|| panic!("{kind} {workload} has no container `{container}`"))
    }

    /// Every pod template and bare Pod.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        let mut out = Vec::new();
        for d in self.deployments() {
            if let Some(spec) = d.spec.as_ref() {
                out.push(workload("Deployment", &d.metadata, &spec.template));
            }
        }
        for s in self.stateful_sets() {
            if let Some(spec) = s.spec.as_ref() {
                out.push(workload("StatefulSet", &s.metadata, &spec.template));
            }
        }
        for p in self.pods() {
            if let Some(spec) = p.spec.as_ref() {
                out.push(Workload {
                    kind: "Pod",
                    name: p.metadata.name.clone().unwrap_or_default(),
                    pod_labels: p.metadata.labels.clone().unwrap_or_default(),
                    pod_annotations: p.metadata.annotations.clone().unwrap_or_default(),
                    spec,
                });
            }
        }
        out
    }
}

fn workload<'a>(
    kind: &'static str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    template: &'a k8s_openapi::api::core::v1::PodTemplateSpec,
) -> Workload<'a> {
    let template_meta = template.metadata.clone().unwrap_or_default();
    let spec = template
        .spec
        .as_ref()
        .unwrap_or_else(|| panic!("{kind} {:?} has a pod template without spec", meta.name));
    Workload {
        kind,
        name: meta.name.clone().unwrap_or_default(),
        pod_labels: template_meta.labels.unwrap_or_default(),
        pod_annotations: template_meta.annotations.unwrap_or_default(),
        spec,
    }
}

fn find<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    name: &str,
    name_of: impl Fn(&T) -> &Option<String>,
    kind: &str,
    rendered: &Rendered,
) -> &'a T {
    let mut items = items;
    items
        .find(|item| name_of(item).as_deref() == Some(name))
        .unwrap_or_else(|| {
            panic!(
                "no {kind} named {name:?}; rendered: {:?}",
                rendered.inventory()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::Rendered;

    const SERVICE: &str =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n";

    #[test]
    fn parses_multi_document_output_and_skips_empty_documents() {
        let r = Rendered::parse(&format!("---\n# Source: x\n---\n{SERVICE}---\n")).expect("parses");
        assert_eq!(r.inventory(), vec![("Service", "s".to_owned())]);
    }

    #[test]
    fn a_misspelled_field_is_an_error_not_silently_dropped() {
        let typo = SERVICE.replace("  ports:", "  prots:");
        let err = Rendered::parse(&typo).err().expect("must fail");
        assert!(err.contains(".spec.prots"), "{err}");
    }

    #[test]
    fn an_unknown_kind_is_an_error() {
        let err = Rendered::parse("apiVersion: v1\nkind: Ingress\nmetadata:\n  name: i\n")
            .err()
            .expect("must fail");
        assert!(err.contains("Ingress"), "{err}");
    }
}
