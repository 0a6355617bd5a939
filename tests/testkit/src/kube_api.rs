//! A read-only fake of the Kubernetes API server, just enough for the real helm's
//! `install/upgrade --dry-run=server`: discovery, `/version`, GETs of the objects it is given
//! (what the charts' `lookup` reads), an empty Secret list (helm's release storage), 404 for
//! anything else and 405 for every write. Plain HTTP on 127.0.0.1; every request is recorded so
//! a test can prove nothing was written. Used by the chart tests and the e2e cluster double.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A running read-only API. Its listener thread lives until the process exits.
pub struct ReadOnlyApi {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ReadOnlyApi {
    /// Serves `objects`, keyed by their API path (`/api/v1/namespaces/NS/secrets/NAME`).
    pub fn start(objects: BTreeMap<String, Value>) -> std::io::Result<ReadOnlyApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &objects, &log);
            }
        });
        Ok(ReadOnlyApi { port, requests })
    }

    /// Port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// "METHOD path" of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// A kubeconfig (no credentials: it only serves reads) whose current context `name` is this server.
    pub fn kubeconfig(&self, name: &str, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n    namespace: {namespace}\n\
             current-context: {name}\nusers:\n- name: {name}\n  user: {{}}\n",
            port = self.port
        )
    }
}

/// The path under which the API serves Secret `name` of `namespace`.
pub fn secret_path(namespace: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/secrets/{name}")
}

fn resource(name: &str, kind: &str, namespaced: bool) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
           "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
}

fn route(path: &str, objects: &BTreeMap<String, Value>) -> (u16, Value) {
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
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("policy"), group("discovery.k8s.io"), group("networking.k8s.io")]}),
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
        "/apis/networking.k8s.io/v1" => (
            200,
            list(
                "networking.k8s.io/v1",
                vec![resource("networkpolicies", "NetworkPolicy", true)],
            ),
        ),
        // Helm's release storage: no release recorded, so every render is a first install of the release.
        p if p.ends_with("/secrets") => (
            200,
            json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": []}),
        ),
        p => match objects.get(p) {
            Some(object) => (200, object.clone()),
            None => (
                404,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                       "message": format!("{p} not found")}),
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
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    if let Ok(mut l) = log.lock() {
        l.push(format!("{method} {path}"));
    }
    let (status, reply) = if method == "GET" {
        route(path, objects)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One HTTP/1.1 request to the running fake; its status code and JSON body.
    fn request(api: &ReadOnlyApi, method: &str, path: &str, body: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", api.port())).expect("connect to the fake API");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send the request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read the answer");
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status line");
        let json = text
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok())
            .expect("a JSON body");
        (code, json)
    }

    #[test]
    fn serves_discovery_objects_and_refuses_writes() {
        let mut objects = BTreeMap::new();
        let secret = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "djE="}});
        objects.insert(secret_path("todo", "s"), secret.clone());
        let api = ReadOnlyApi::start(objects).expect("start the fake API");
        let (code, got) = request(&api, "GET", "/api/v1/namespaces/todo/secrets/s?x=1", "");
        assert_eq!((code, got), (200, secret.clone()));
        let (code, list) = request(&api, "GET", "/api/v1/namespaces/todo/secrets", "");
        assert_eq!(
            (code, list["items"].as_array().map(Vec::len)),
            (200, Some(0))
        );
        assert_eq!(
            request(&api, "GET", "/api/v1/namespaces/todo/secrets/t", "").0,
            404
        );
        assert_eq!(request(&api, "GET", "/apis/apps/v1", "").0, 200);
        assert_eq!(
            request(&api, "GET", "/apis/networking.k8s.io/v1", "").0,
            200
        );
        // Every write is refused, and the object it aimed at is unchanged afterwards.
        let changed = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "djI="}});
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let path = if method == "POST" {
                "/api/v1/namespaces/todo/secrets"
            } else {
                "/api/v1/namespaces/todo/secrets/s"
            };
            let (code, status) = request(&api, method, path, &changed.to_string());
            assert_eq!(
                (code, status["code"].clone()),
                (405, json!(405)),
                "{method}"
            );
        }
        assert_eq!(
            request(&api, "GET", "/api/v1/namespaces/todo/secrets/s", "").1,
            secret,
            "a write changed the object"
        );
        let seen = api.requests();
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(
                seen.iter().any(|r| r.starts_with(&format!("{method} "))),
                "{method} not recorded: {seen:?}"
            );
        }
    }
}
