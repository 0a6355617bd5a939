//! The chart tests' view of `testkit::kube_api::ReadOnlyApi`: a fake Kubernetes API holding a live
//! release's Secrets (and claims) in namespace `todo`, for `helm install --dry-run=server` (what the charts'
//! `lookup` reads, and what helm checks before it adopts an existing object).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use testkit::kube_api::{secret_path, ReadOnlyApi};

/// A running fake API server with a kubeconfig pointing at it.
pub struct FakeApi {
    api: ReadOnlyApi,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl FakeApi {
    /// Serves `secrets` (namespace `todo`, owned by release `todo-backend`), keyed by name, each a map of
    /// key -> clear value.
    pub fn start(secrets: BTreeMap<String, BTreeMap<String, String>>) -> FakeApi {
        let objects: BTreeMap<String, Value> = secrets
            .into_iter()
            .map(|(name, data)| secret(&name, &data, "todo-backend"))
            .collect();
        FakeApi::serve(objects)
    }

    /// Serves `objects`, keyed by API path (see [`secret`] and [`claim`]).
    pub fn serve(objects: BTreeMap<String, Value>) -> FakeApi {
        let api = ReadOnlyApi::start(objects).expect("bind 127.0.0.1");
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, api.kubeconfig("fake", "todo")).expect("write kubeconfig");
        FakeApi {
            api,
            _dir: dir,
            kubeconfig,
        }
    }

    /// A kubeconfig whose current context is this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Port it listens on.
    pub fn port(&self) -> u16 {
        self.api.port()
    }

    /// "METHOD path" of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.api.requests()
    }
}

/// Secret `name` of namespace `todo` holding `data` (clear values), with the ownership metadata helm gives the
/// objects of `release` (and leaves on those it keeps on uninstall), so helm adopts it into that release instead
/// of reporting a conflict. Returns its API path and the object.
pub fn secret(name: &str, data: &BTreeMap<String, String>, release: &str) -> (String, Value) {
    use base64::Engine;
    let encoded: BTreeMap<&String, String> = data
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    let object = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": name, "namespace": "todo", "resourceVersion": "1",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": "todo",
                            "helm.sh/resource-policy": "keep"}
        },
        "data": encoded
    });
    (secret_path("todo", name), object)
}

/// A bound PersistentVolumeClaim `name` of namespace `todo`, as a StatefulSet's volumeClaimTemplates leave it
/// (no helm ownership), being deleted when `deleting`. Returns its API path and the object.
pub fn claim(name: &str, deleting: bool) -> (String, Value) {
    let mut object = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "todo", "resourceVersion": "1",
                     "finalizers": ["kubernetes.io/pvc-protection"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Bound"}
    });
    if deleting {
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    (
        format!("/api/v1/namespaces/todo/persistentvolumeclaims/{name}"),
        object,
    )
}
