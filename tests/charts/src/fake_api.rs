//! A test double of the Kubernetes API server, just enough for `helm install --dry-run=server`: discovery,
//! `/version`, GETs of the Secrets it holds (what the charts' `lookup` reads), 404 for everything else.
//! It binds 127.0.0.1 only, answers plain HTTP, and records every request so a test can prove nothing was written.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A running fake API server. Its listener thread lives until the test process exits (each test starts its own).
pub struct FakeApi {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl FakeApi {
    /// Serves `secrets` (namespace `todo`), keyed by name, each a map of key -> clear value.
    pub fn start(secrets: BTreeMap<String, BTreeMap<String, String>>) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let objects: BTreeMap<String, Value> = secrets
            .into_iter()
            .map(|(name, data)| (name.clone(), secret(&name, &data)))
            .collect();
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &objects, &log);
            }
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: todo\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
        );
        std::fs::write(&kubeconfig, config).expect("write kubeconfig");
        FakeApi {
            port,
            requests,
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
        self.port
    }

    /// "METHOD path" of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
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

fn resource(name: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
}

fn route(path: &str, objects: &BTreeMap<String, Value>) -> (u16, Value) {
    let (path, _query) = path.split_once('?').unwrap_or((path, ""));
    let list = |group_version: &str, resources: Vec<Value>| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources});
    match path {
        "/version" => (
            200,
            json!({"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}),
        ),
        "/api" => (
            200,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}),
        ),
        "/apis" => {
            let group = |name: &str| {
                let gv = format!("{name}/v1");
                json!({"name": name, "versions": [{"groupVersion": gv, "version": "v1"}],
                       "preferredVersion": {"groupVersion": gv, "version": "v1"}})
            };
            (
                200,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("policy")]}),
            )
        }
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
        "/api/v1/namespaces/todo/secrets" => {
            // Helm's release storage: no release recorded, so this is a first install of the release.
            (
                200,
                json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}),
            )
        }
        _ => match path
            .strip_prefix("/api/v1/namespaces/todo/secrets/")
            .and_then(|name| objects.get(name))
        {
            Some(object) => (200, object.clone()),
            None => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                       "message": format!("{path} not found")}),
            ),
        },
    }
}

fn serve(
    stream: TcpStream,
    objects: &BTreeMap<String, Value>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length];
    std::io::Read::read_exact(&mut reader, &mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    if let Ok(mut l) = log.lock() {
        l.push(format!("{method} {path}"));
    }
    let (status, reply) = if method == "GET" {
        route(&path, objects)
    } else {
        (
            405,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405, "message": "read-only fake"}),
        )
    };
    let body = reply.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
