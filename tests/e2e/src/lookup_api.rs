//! A read-only slice of the Kubernetes API for the real helm's `--dry-run=server` render, so the charts'
//! `lookup` sees the double's live Secrets and Namespaces (generated passwords stay stable across upgrades,
//! as on a real cluster). Plain HTTP on 127.0.0.1, for the duration of one helm call.

use crate::state::Desired;
use crate::view;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use testkit::kube_api::{secret_path, ReadOnlyApi};

/// A running API slice; the listener thread ends with the process (one helm call).
pub struct LookupApi {
    /// Port on 127.0.0.1.
    pub port: u16,
    api: ReadOnlyApi,
}

/// Objects the API answers with, by request path.
fn objects(d: &Desired) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (name, ns) in &d.namespaces {
        out.insert(
            format!("/api/v1/namespaces/{name}"),
            view::namespace_json(name, ns),
        );
    }
    if let Ok(by_ns) = view::objects_by_namespace(d) {
        for (ns, objs) in by_ns {
            for raw in objs
                .raw
                .iter()
                .filter(|v| v.get("kind").and_then(Value::as_str) == Some("Secret"))
            {
                let name = raw
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let data: BTreeMap<String, String> = objs
                    .secrets
                    .get(&name)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    base64::engine::general_purpose::STANDARD.encode(v),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut s = raw.clone();
                s["data"] = json!(data);
                if let Some(m) = s.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("stringData");
                    m.insert("resourceVersion".into(), Value::from("1"));
                    let labels = m.entry("labels").or_insert_with(|| json!({}));
                    labels["app.kubernetes.io/managed-by"] = Value::from("Helm");
                }
                if let Some(o) = s.as_object_mut() {
                    o.remove("stringData");
                }
                out.insert(secret_path(&ns, &name), s);
            }
        }
    }
    out
}

impl LookupApi {
    /// Serves the double's current Secrets and Namespaces.
    pub fn start(d: &Desired) -> std::io::Result<LookupApi> {
        let api = ReadOnlyApi::start(objects(d))?;
        Ok(LookupApi {
            port: api.port(),
            api,
        })
    }

    /// A kubeconfig pointing at this API (no credentials: it only serves reads).
    pub fn kubeconfig(&self, ns: &str) -> String {
        self.api.kubeconfig("double", ns)
    }
}
