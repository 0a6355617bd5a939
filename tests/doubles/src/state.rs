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
            "cluster": "running",          // running | stopped | missing
            "runtime": "docker",           // docker | containerd
            "helm_version": "v3.17.3",
            "docker_daemon": true,
            "images": {"local": [], "node": []},
            "releases": {},
            "namespaces": ["default", "kube-system"],
            "pods": "ready",               // ready | crashloop
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

    /// Releases by name.
    pub fn releases(&self) -> BTreeMap<String, Value> {
        self.0["releases"]
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default()
    }
}

/// Runs `f` on the state with the file locked; writes it back afterwards.
pub fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let Some(path) = std::env::var_os(crate::STATE_ENV) else {
        let mut s = State::default();
        return f(&mut s);
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    let Ok(mut file) = file else {
        let mut s = State::default();
        return f(&mut s);
    };
    let _ = file.lock();
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let mut st = State::parse(&buf);
    let before = st.0.clone();
    let out = f(&mut st);
    if st.0 != before {
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(&serde_json::to_vec_pretty(&st.0).unwrap_or_default());
    }
    let _ = file.unlock();
    out
}
