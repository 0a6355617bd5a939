//! The chart tests' view of `testkit::kube_api::ReadOnlyApi`: a fake Kubernetes API holding a live
//! release's Secrets in namespace `todo`, for `helm install --dry-run=server` (what the charts' `lookup` reads).

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
    /// Serves `secrets` (namespace `todo`), keyed by name, each a map of key -> clear value.
    pub fn start(secrets: BTreeMap<String, BTreeMap<String, String>>) -> FakeApi {
        let objects: BTreeMap<String, Value> = secrets
            .into_iter()
            .map(|(name, data)| (secret_path("todo", &name), secret(&name, &data)))
            .collect();
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

fn secret(name: &str, data: &BTreeMap<String, String>) -> Value {
    use base64::Engine;
    let encoded: BTreeMap<&String, String> = data
        .iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    // Owned by the release, as helm leaves it, so helm adopts it instead of reporting a conflict.
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": name, "namespace": "todo", "resourceVersion": "1",
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "todo-backend", "meta.helm.sh/release-namespace": "todo"}
        },
        "data": encoded
    })
}
