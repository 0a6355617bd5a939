//! A read-only slice of the Kubernetes API for the real helm's `--dry-run=server` render, so the charts'
//! `lookup` sees the double's live Secrets and Namespaces (generated passwords stay stable across upgrades,
//! as on a real cluster). Plain HTTP on 127.0.0.1, for the duration of one helm call.

use crate::state::Desired;
use crate::view;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

/// A running API slice; the listener thread ends with the process (one helm call).
pub struct LookupApi {
    /// Port on 127.0.0.1.
    pub port: u16,
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
                out.insert(format!("/api/v1/namespaces/{ns}/secrets/{name}"), s);
            }
        }
    }
    out
}

fn resource(name: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
}

fn route(path: &str, objs: &BTreeMap<String, Value>) -> (u16, Value) {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let list = |gv: &str, r: Vec<Value>| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": r});
    let group = |name: &str| {
        let gv = format!("{name}/v1");
        json!({"name": name, "versions": [{"groupVersion": gv, "version": "v1"}], "preferredVersion": {"groupVersion": gv, "version": "v1"}})
    };
    match path {
        "/version" => (
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.1", "platform": "linux/amd64"}),
        ),
        "/api" => (
            200,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/apis" => (
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("policy"), group("discovery.k8s.io")]}),
        ),
        "/api/v1" => (
            200,
            list(
                "v1",
                vec![
                    resource("configmaps", "ConfigMap", true),
                    resource("secrets", "Secret", true),
                    resource("services", "Service", true),
                    resource("serviceaccounts", "ServiceAccount", true),
                    resource("pods", "Pod", true),
                    resource("persistentvolumeclaims", "PersistentVolumeClaim", true),
                    resource("namespaces", "Namespace", false),
                ],
            ),
        ),
        "/apis/apps/v1" => (
            200,
            list(
                "apps/v1",
                vec![
                    resource("deployments", "Deployment", true),
                    resource("statefulsets", "StatefulSet", true),
                ],
            ),
        ),
        "/apis/policy/v1" => (
            200,
            list(
                "policy/v1",
                vec![resource(
                    "poddisruptionbudgets",
                    "PodDisruptionBudget",
                    true,
                )],
            ),
        ),
        "/apis/discovery.k8s.io/v1" => (
            200,
            list(
                "discovery.k8s.io/v1",
                vec![resource("endpointslices", "EndpointSlice", true)],
            ),
        ),
        p if p.ends_with("/secrets") => (
            200,
            json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}),
        ),
        p => match objs.get(p) {
            Some(o) => (200, o.clone()),
            None => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{p} not found")}),
            ),
        },
    }
}

fn serve(stream: TcpStream, objs: &BTreeMap<String, Value>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    std::io::Read::read_exact(&mut reader, &mut body)?;
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let (status, reply) = if method == "GET" {
        route(path, objs)
    } else {
        (
            405,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405, "message": "read-only"}),
        )
    };
    let text = reply.to_string();
    let mut stream = stream;
    write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}", text.len())?;
    stream.flush()
}

impl LookupApi {
    /// Serves the double's current Secrets and Namespaces.
    pub fn start(d: &Desired) -> std::io::Result<LookupApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let objs = objects(d);
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let _ = serve(s, &objs);
            }
        });
        Ok(LookupApi { port })
    }

    /// A kubeconfig pointing at this API (no credentials: it only serves reads).
    pub fn kubeconfig(&self, ns: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: http://127.0.0.1:{}\n\
             contexts:\n- name: double\n  context:\n    cluster: double\n    user: double\n    namespace: {ns}\n\
             current-context: double\nusers:\n- name: double\n  user: {{}}\n",
            self.port
        )
    }
}
