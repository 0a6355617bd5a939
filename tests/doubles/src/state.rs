//! The doubles' shared cluster/engine state: a JSON file, locked while a call reads and changes it.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

use serde_json::{json, Value};

/// The state, as a JSON object (tests write it with [`State::write`] and read it back).
#[derive(Debug, Clone)]
pub struct State(pub Value);

impl Default for State {
    fn default() -> Self {
        Self(json!({
            "cluster": "running",          // running | stopped | missing | unreadable (status `null`)
            "runtime": "docker",           // docker | containerd | crio
            "minikube_version": "v1.38.1",
            "kubeconfig": "Configured",    // Configured | Misconfigured (status bit 4: stale endpoint)
            "current_context": "user-own-context", // the user's kubeconfig current-context ("" = unset)
            "helm_version": "v3.17.3",
            "docker_daemon": true,
            "docker_version": "20.10.24+dfsg1", // 20.10.x: built-in BuildKit; 23+: needs buildx
            "buildx": null,                // buildx plugin version, null = not installed
            "buildx_builders": {},         // non-default builder name -> driver (e.g. docker-container)
            "images": {"local": [], "node": []},
            "image_load_drops": [],        // repositories `minikube image load` never gets onto the node
            "releases": {},
            "namespaces": ["default", "kube-system"],
            "pods": "ready",               // next upgrade's pods: ready | crashloop | unready
            "rollback_pods": null,         // pods of a rolled-back revision, when they differ from its own
            "helm_rollback_ms": 0,         // how long helm's own rollback/uninstall after a failure takes
            "crash_logs": "Error: DATABASE_URL must be set\n",
            "build_delay_ms": 0,
            "forward_targets": {},         // service -> "127.0.0.1:port"
            "forward_die_after_ms": {},    // service -> ms: the first forward exits after that long
            "forward_hang_after_ms": {},   // service -> ms: the first forward stops answering (stays alive)
        }))
    }
}

impl State {
    /// Writes the state file.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(&self.0).unwrap_or_default())
    }
    /// Reads the state file.
    pub fn read(path: &std::path::Path) -> Self {
        Self::parse(&std::fs::read(path).unwrap_or_default())
    }

    /// Parses a state file; keys it leaves out keep their defaults.
    pub fn parse(bytes: &[u8]) -> Self {
        let mut st = Self::default();
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(bytes) {
            for (k, v) in m {
                st.0[k] = v;
            }
        }
        st
    }
    /// A string field.
    pub fn str(&self, k: &str) -> String {
        self.0[k].as_str().unwrap_or_default().to_string()
    }
    /// Images in a store (`local` or `node`).
    pub fn images(&self, store: &str) -> Vec<String> {
        self.0["images"][store]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Adds an image to a store.
    pub fn add_image(&mut self, store: &str, image: &str) {
        if !self.images(store).iter().any(|i| i == image) {
            if let Some(a) = self.0["images"][store].as_array_mut() {
                a.push(json!(image));
            }
        }
    }
    /// Removes an image from a store.
    pub fn remove_image(&mut self, store: &str, image: &str) {
        if let Some(a) = self.0["images"][store].as_array_mut() {
            a.retain(|v| v.as_str() != Some(image));
        }
    }
    /// Records what an upgrade of `release` applied in `ns`: its objects replace the release's earlier ones
    /// (kept objects of an earlier install are adopted), controller-made claims are added once.
    pub fn apply(&mut self, ns: &str, release: &str, objects: Vec<Value>) {
        let mut all = self.0["objects"].as_array().cloned().unwrap_or_default();
        all.retain(|o| !(o["namespace"] == ns && o["release"] == release && o["owned"] == true));
        for mut o in objects {
            let same = |x: &Value| {
                x["namespace"] == ns && x["kind"] == o["kind"] && x["name"] == o["name"]
            };
            if o["owned"] == true {
                all.retain(|x| !same(x));
            } else if all.iter().any(same) {
                continue;
            }
            o["namespace"] = json!(ns);
            o["release"] = json!(release);
            all.push(o);
        }
        self.0["objects"] = Value::Array(all);
    }

    /// Removes what `helm uninstall` removes; returns the `Kind/name` of the objects kept by their
    /// `helm.sh/resource-policy: keep` annotation.
    pub fn uninstall(&mut self, ns: &str, release: &str) -> Vec<String> {
        let mut kept = Vec::new();
        let mut all = self.0["objects"].as_array().cloned().unwrap_or_default();
        all.retain(|o| {
            if o["namespace"] != ns || o["release"] != release || o["owned"] != true {
                return true;
            }
            let keep = o["annotations"]["helm.sh/resource-policy"] == "keep";
            if keep {
                kept.push(format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["name"].as_str().unwrap_or_default()
                ));
            }
            keep
        });
        self.0["objects"] = Value::Array(all);
        kept
    }

    /// Objects of `ns` whose kind is one of `kinds` and whose labels match every `k=v` of `selector`.
    pub fn objects(&self, ns: &str, kinds: &[&str], selector: &str) -> Vec<Value> {
        let wanted: Vec<(&str, &str)> = selector
            .split(',')
            .filter(|s| !s.is_empty())
            .filter_map(|kv| kv.split_once('='))
            .collect();
        self.0["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["namespace"] == ns && kinds.iter().any(|k| o["kind"] == *k))
            .filter(|o| wanted.iter().all(|(k, v)| o["labels"][*k] == *v))
            .cloned()
            .collect()
    }

    /// Deletes one object; false when there was none.
    pub fn delete_object(&mut self, ns: &str, kind: &str, name: &str) -> bool {
        let mut all = self.0["objects"].as_array().cloned().unwrap_or_default();
        let before = all.len();
        all.retain(|o| !(o["namespace"] == ns && o["kind"] == kind && o["name"] == name));
        let deleted = all.len() != before;
        self.0["objects"] = Value::Array(all);
        deleted
    }

    /// True when namespace `ns` exists.
    pub fn has_namespace(&self, ns: &str) -> bool {
        self.0["namespaces"]
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n == ns))
    }

    /// Releases by name.
    pub fn releases(&self) -> BTreeMap<String, Value> {
        self.0["releases"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default()
    }
}

/// Runs `f` on the state with the file locked; writes it back afterwards. A state file that cannot be read
/// or written is a broken test setup: the double panics (the call fails) instead of answering from defaults.
pub fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let Some(path) = std::env::var_os(crate::STATE_ENV) else {
        let mut s = State::default();
        return f(&mut s);
    };
    let shown = std::path::Path::new(&path).display().to_string();
    let fail = |what: &str, e: std::io::Error| -> ! { panic!("tool-double: {what} {shown}: {e}") };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| fail("opening the state", e));
    file.lock().unwrap_or_else(|e| fail("locking the state", e));
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .unwrap_or_else(|e| fail("reading the state", e));
    let mut st = State::parse(&buf);
    let before = st.0.clone();
    let out = f(&mut st);
    if st.0 != before {
        let bytes = serde_json::to_vec_pretty(&st.0).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(&bytes))
            .unwrap_or_else(|e| fail("writing the state", e));
    }
    let _ = file.unlock();
    out
}
