//! kubectl double (kubectl 1.35, the version of the real binary beside helm 4 here): client version,
//! namespaces, pods (ready, unready or crash-looping, from real captures), objects, warning events, logs,
//! kubeconfig contexts, and a working port-forward (proxying to a test server when one is configured).
//! JSON only with `-o json`, like the real kubectl; every argv is checked against kubectl's flag set first.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::spec::Parsed;
use crate::tools::minikube::STALE_ENDPOINT;
use crate::{fixture, fixture_json, with_state, Reply};

const EMPTY_LIST: &str = "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n";

/// The kubectl flag set the double answers with.
fn spec() -> &'static crate::spec::Spec {
    crate::spec::kubectl(35)
}

/// kubectl's error for a command line it accepted but cannot carry out (cmdutil.CheckErr: `error: ` + message).
fn error(msg: &str) -> Reply {
    Reply::err(1, format!("error: {msg}\n"))
}

/// Answers one kubectl call.
pub fn run(argv: &[String]) -> Reply {
    let a = match spec().parse(argv) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let words = a.words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if let ["version", ..] = words.as_slice() {
        if !a.on("--client") {
            return error("the test double answers `kubectl version --client` only");
        }
        return match a.get("--output").as_deref() {
            Some("json") => Reply::ok(fixture("kubectl/version-client.json")),
            _ => Reply::ok("Client Version: v1.36.3\nKustomize Version: v5.7.1\n"),
        };
    }
    if let ["config", rest @ ..] = words.as_slice() {
        return config(rest);
    }
    if a.on("--local") || a.get("--dry-run").as_deref() == Some("client") {
        // Client-side only: the real kubectl answers without a cluster.
        return delegate(argv);
    }
    let Some(context) = a.get("--context") else {
        return error("the test double refuses calls without --context (the user's current context must never be used)");
    };
    let ns = a.get("--namespace").unwrap_or_else(|| "default".into());
    let (cluster, kubeconfig, profile) =
        with_state(|s| (s.str("cluster"), s.str("kubeconfig"), s.str("profile")));
    if cluster != "running" {
        return Reply::err(1, "The connection to the server 192.168.49.2:8443 was refused - did you specify the right host or port?\n");
    }
    if kubeconfig == "Misconfigured" && context == profile {
        // A kubeconfig entry minikube calls Misconfigured points at an endpoint of an earlier start.
        return Reply::err(1, format!("The connection to the server {STALE_ENDPOINT} was refused - did you specify the right host or port?\n"));
    }
    let json_out = a.get("--output").as_deref() == Some("json");
    match words.as_slice() {
        ["get", "namespace" | "ns" | "namespaces", name] => with_state(|s| {
            if !s.has_namespace(name) {
                return Reply::err(
                    1,
                    format!("Error from server (NotFound): namespaces \"{name}\" not found\n"),
                );
            }
            if !json_out {
                return Reply::ok(format!("NAME   STATUS   AGE\n{name}   Active   5m\n"));
            }
            let mut labels = json!({"kubernetes.io/metadata.name": name});
            for (k, v) in s.0["namespace_labels"][*name]
                .as_object()
                .into_iter()
                .flatten()
            {
                labels[k] = v.clone();
            }
            Reply::ok(format!(
                "{:#}\n",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}, "status": {"phase": "Active"}})
            ))
        }),
        ["create", "namespace" | "ns", name] => {
            with_state(|s| {
                if s.has_namespace(name) {
                    return Reply::err(1, format!("Error from server (AlreadyExists): namespaces \"{name}\" already exists\n"));
                }
                if let Some(a) = s.0["namespaces"].as_array_mut() {
                    a.push(json!(name));
                }
                Reply::ok(format!("namespace/{name} created\n"))
            })
        }
        ["label", "namespace" | "ns" | "namespaces", name, labels @ ..] if !labels.is_empty() => {
            label_namespace(name, labels, a.on("--overwrite"))
        }
        ["get"] if a.given("--raw") => raw_get(&a.get("--raw").unwrap_or_default()),
        // One Service as the API server returns it: its selector picks the release's pods (the forward reads
        // it to pick a ready pod).
        ["get", "service" | "services" | "svc", name] if json_out => with_state(|s| {
            let found = s.releases().into_iter().find_map(|(release, r)| {
                r["services"]
                    .as_array()?
                    .iter()
                    .find(|svc| svc["name"] == *name)
                    .map(|svc| (release, svc.clone()))
            });
            let Some((release, svc)) = found else {
                return Reply::err(
                    1,
                    format!("Error from server (NotFound): services \"{name}\" not found\n"),
                );
            };
            Reply::ok(format!(
                "{:#}\n",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                       "spec": {"selector": {"app.kubernetes.io/instance": release}, "ports": svc["ports"], "type": "ClusterIP"}})
            ))
        }),
        ["get", kinds] => get(&a, &ns, kinds, json_out),
        ["delete", "namespace" | "ns", name] => with_state(|s| {
            let existed = s.has_namespace(name);
            if let Some(a) = s.0["namespaces"].as_array_mut() {
                a.retain(|n| n != name);
            }
            if let Some(a) = s.0["objects"].as_array_mut() {
                a.retain(|o| o["namespace"] != *name);
            }
            if existed {
                Reply::ok(format!("namespace \"{name}\" deleted\n"))
            } else if a.on("--ignore-not-found") {
                Reply::ok("")
            } else {
                Reply::err(
                    1,
                    format!("Error from server (NotFound): namespaces \"{name}\" not found\n"),
                )
            }
        }),
        ["delete", kind, name] if kind_of(kind).is_some() => with_state(|s| {
            let k = kind_of(kind).unwrap_or_default();
            if s.delete_object(&ns, k, name) {
                Reply::ok(format!("{} \"{name}\" deleted\n", k.to_ascii_lowercase()))
            } else if a.on("--ignore-not-found") {
                Reply::ok("")
            } else {
                Reply::err(
                    1,
                    format!(
                        "Error from server (NotFound): {} \"{name}\" not found\n",
                        plural(k)
                    ),
                )
            }
        }),
        // `--timestamps` puts each line's RFC 3339 time first (pkg/cmd/logs; one second apart here).
        ["logs", _pod] => with_state(|s| {
            let text = s.str("crash_logs");
            if !a.on("--timestamps") {
                return Reply::ok(text);
            }
            let stamped: String = text
                .lines()
                .enumerate()
                .map(|(i, l)| format!("2026-01-01T00:00:{:02}.000000001Z {l}\n", i % 60))
                .collect();
            Reply::ok(stamped)
        }),
        ["port-forward", target, ports] => port_forward(&ns, target, ports),
        _ => error(&format!(
            "unknown command {words:?} in the kubectl test double"
        )),
    }
}

/// Runs the real kubectl named by DOUBLES_REAL_KUBECTL, stdin passed through (`label --local -f -`).
fn delegate(argv: &[String]) -> Reply {
    let Some(real) = std::env::var_os(crate::REAL_KUBECTL_ENV) else {
        return error("DOUBLES_REAL_KUBECTL is not set: client-side calls need the real kubectl");
    };
    match std::process::Command::new(real)
        .args(argv)
        .stdin(std::process::Stdio::inherit())
        .output()
    {
        Ok(o) => Reply {
            code: o.status.code().unwrap_or(1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => error(&format!("running the real kubectl: {e}")),
    }
}

/// `kubectl get --raw /api/v1/namespaces/NS/services/[scheme:]NAME[:port]/proxy/PATH`: the API server's
/// service proxy. The state's `service_proxy` maps `NAME/PATH` to what the Service answers; a Service with
/// nothing behind it gets the API server's 503 (k8s.io/apiserver proxy: "no endpoints available for service").
fn raw_get(raw: &str) -> Reply {
    let parts: Vec<&str> = raw.trim_start_matches('/').splitn(7, '/').collect();
    let ["api", "v1", "namespaces", _ns, "services", svc_ref, rest] = parts.as_slice() else {
        return Reply::err(
            1,
            "Error from server (NotFound): the server could not find the requested resource\n",
        );
    };
    let Some(path) = rest.strip_prefix("proxy") else {
        return Reply::err(
            1,
            "Error from server (NotFound): the server could not find the requested resource\n",
        );
    };
    let name = svc_ref.split(':').nth(1).unwrap_or(svc_ref);
    with_state(|s| {
        match s.0["service_proxy"][format!("{name}{path}")].as_str() {
        Some(body) => Reply::ok(body.to_string()),
        None => Reply::err(1, format!("Error from server (ServiceUnavailable): no endpoints available for service \"{svc_ref}\"\n")),
    }
    })
}

/// `kubectl config ...` on the kubeconfig the double keeps: the user's own context plus the profile's.
fn config(rest: &[&str]) -> Reply {
    with_state(|s| match rest {
        ["current-context"] => match s.str("current_context").as_str() {
            // pkg/cmd/config/current_context.go.
            "" => error("current-context is not set"),
            c => Reply::ok(format!("{c}\n")),
        },
        ["use-context", name] => {
            let known = *name == s.str("profile") || *name == "user-own-context";
            if !known {
                return error(&format!("no context exists with the name: \"{name}\""));
            }
            s.0["current_context"] = json!(name);
            Reply::ok(format!("Switched to context \"{name}\".\n"))
        }
        ["unset", "current-context"] => {
            s.0["current_context"] = json!("");
            Reply::ok("Property \"current-context\" unset.\n")
        }
        _ => error(&format!(
            "unknown command \"config {}\" in the kubectl test double",
            rest.join(" ")
        )),
    })
}

/// pkg/cmd/label/label.go: a label that exists with another value needs `--overwrite`
/// (validateNoOverwrites: `'%s' already has a value (%s), and --overwrite is false`); `k-` removes one.
fn label_namespace(name: &str, labels: &[&str], overwrite: bool) -> Reply {
    with_state(|s| {
        if !s.has_namespace(name) {
            return Reply::err(
                1,
                format!("Error from server (NotFound): namespaces \"{name}\" not found\n"),
            );
        }
        let current = s.0["namespace_labels"][name].clone();
        for l in labels {
            if let Some((k, v)) = l.split_once('=') {
                if let Some(old) = current[k].as_str() {
                    if old != v && !overwrite {
                        return error(&format!(
                            "'{k}' already has a value ({old}), and --overwrite is false"
                        ));
                    }
                }
            }
        }
        for l in labels {
            if let Some((k, v)) = l.split_once('=') {
                s.0["namespace_labels"][name][k] = json!(v);
            } else if let Some(k) = l.strip_suffix('-') {
                if let Some(m) = s.0["namespace_labels"][name].as_object_mut() {
                    m.remove(k);
                }
            }
        }
        Reply::ok(format!("namespace/{name} labeled\n"))
    })
}

/// The Kind of a kubectl resource word.
fn kind_of(word: &str) -> Option<&'static str> {
    Some(match word {
        "pods" | "pod" | "po" => "Pod",
        "deployments" | "deployment" | "deploy" => "Deployment",
        "services" | "service" | "svc" => "Service",
        "endpoints" | "ep" => "Endpoints",
        "endpointslices" | "endpointslice" => "EndpointSlice",
        "events" | "event" | "ev" => "Event",
        "persistentvolumeclaims" | "persistentvolumeclaim" | "pvc" => "PersistentVolumeClaim",
        "secrets" | "secret" => "Secret",
        _ => return None,
    })
}

fn plural(kind: &str) -> String {
    match kind {
        "Endpoints" => "endpoints".into(),
        "PersistentVolumeClaim" => "persistentvolumeclaims".into(),
        k => format!("{}s", k.to_ascii_lowercase()),
    }
}

/// `kubectl get KINDS -o json`: pods of the releases (from real captures), the objects the releases made
/// (claims and Secrets), no events; or, when the state names an `objects_fixture` (a recorded real
/// `kubectl get ... -o json` of a namespace), that fixture's items of the requested kinds.
fn get(a: &Parsed, ns: &str, kinds: &str, json_out: bool) -> Reply {
    let mut wanted = Vec::new();
    for k in kinds.split(',') {
        match kind_of(k) {
            Some(kind) => wanted.push(kind),
            None => {
                return Reply::err(
                    1,
                    format!("error: the server doesn't have a resource type \"{k}\"\n"),
                )
            }
        }
    }
    // RBAC (state `forbidden_kinds`): the API server's 403, as kubectl prints it (k8s.io/apiserver
    // pkg/endpoints/handlers/responsewriters: "<resource> is forbidden: User ... cannot list resource ...").
    let forbidden = with_state(|s| {
        s.0["forbidden_kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_string))
            .find(|k| wanted.iter().any(|w| kind_of(k) == Some(*w)))
    });
    if let Some(k) = forbidden {
        return Reply::err(1, format!("Error from server (Forbidden): {k} is forbidden: User \"developer\" cannot list resource \"{k}\" in API group \"\" in the namespace \"{ns}\"\n"));
    }
    let selector = a.get("--selector").unwrap_or_default();
    let field = a.get("--field-selector").unwrap_or_default();
    let items = with_state(|s| {
        if let Some(f) = s.0["objects_fixture"].as_str() {
            return fixture_json(f)["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|i| wanted.iter().any(|k| i["kind"] == *k))
                .collect::<Vec<Value>>();
        }
        let mut items = Vec::new();
        for kind in &wanted {
            match *kind {
                "Pod" => items.extend(pods(s, &selector)),
                "PersistentVolumeClaim" | "Secret" => {
                    items.extend(s.objects(ns, &[kind], &selector).into_iter().map(|o| {
                        // Like the API server, empty maps are left out, never `null`.
                        let mut meta = json!({"name": o["name"], "namespace": ns});
                        for k in ["labels", "annotations"] {
                            if o[k].as_object().is_some_and(|m| !m.is_empty()) {
                                meta[k] = o[k].clone();
                            }
                        }
                        json!({"apiVersion": "v1", "kind": o["kind"], "metadata": meta})
                    }))
                }
                _ => {}
            }
        }
        items
    });
    let items: Vec<Value> = items
        .into_iter()
        .filter(|i| field.is_empty() || field_matches(i, &field))
        .collect();
    if !json_out {
        // The default table (names only here); an empty result is a note on stderr, exit 0
        // (pkg/cmd/get/get.go: "No resources found in %s namespace.").
        if items.is_empty() {
            return Reply {
                code: 0,
                stdout: String::new(),
                stderr: format!("No resources found in {ns} namespace.\n"),
            };
        }
        let mut t = "NAME\n".to_string();
        for i in &items {
            t.push_str(&format!(
                "{}/{}\n",
                i["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                i["metadata"]["name"].as_str().unwrap_or_default()
            ));
        }
        return Reply::ok(t);
    }
    if items.is_empty() {
        return Reply::ok(EMPTY_LIST);
    }
    Reply::ok(format!(
        "{:#}\n",
        json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
    ))
}

/// `type=Warning`-style field selectors on top-level string fields.
fn field_matches(item: &Value, selector: &str) -> bool {
    selector.split(',').all(|t| match t.split_once('=') {
        Some((k, v)) => {
            item.pointer(&format!("/{}", k.replace('.', "/")))
                .and_then(Value::as_str)
                == Some(v)
        }
        None => true,
    })
}

/// The pods of the release a selector names, from real captures, labelled as the release's.
/// The releases a selector on `app.kubernetes.io/instance` names: `=R` or the set form `in (R1,R2)`.
fn selected_releases(selector: &str) -> Vec<String> {
    let key = "app.kubernetes.io/instance";
    if let Some(set) = selector
        .strip_prefix(&format!("{key} in ("))
        .and_then(|r| r.split(')').next())
    {
        return set.split(',').map(|r| r.trim().to_string()).collect();
    }
    selector
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(|r| vec![r.to_string()])
        .unwrap_or_default()
}

fn pods(s: &crate::State, selector: &str) -> Vec<Value> {
    selected_releases(selector)
        .iter()
        .flat_map(|r| release_pods(s, r))
        .collect()
}

/// The pods of one release: the captured fixture's, labelled and named as the chart and its ReplicaSet would
/// (`<release>-<template hash>-<suffix>`).
fn release_pods(s: &crate::State, release: &str) -> Vec<Value> {
    let rel = &s.0["releases"][release];
    if rel.is_null() {
        return Vec::new();
    }
    let (file, unready) = match rel["pods"].as_str() {
        Some("crashloop") => ("kubectl/pods-crashloopbackoff.json", false),
        Some("unready") => ("kubectl/pods-running-ready.json", true),
        _ => ("kubectl/pods-running-ready.json", false),
    };
    let mut v = fixture_json(file);
    let mut items = v["items"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    for it in items.iter_mut() {
        it["metadata"]["labels"]["app.kubernetes.io/instance"] = json!(release);
        let suffix = it["metadata"]["name"]
            .as_str()
            .and_then(|n| n.rsplit('-').next())
            .unwrap_or("x0000")
            .to_string();
        it["metadata"]["name"] = json!(format!("{release}-75b66db9b9-{suffix}"));
        if unready {
            // Running, not (yet) ready, nothing failing: what a rollout looks like while it waits.
            for cs in it["status"]["containerStatuses"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                cs["ready"] = json!(false);
            }
            for c in it["status"]["conditions"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    c["status"] = json!("False");
                }
            }
        }
    }
    items
}

fn port_forward(ns: &str, target: &str, ports: &str) -> Reply {
    let (local, remote) = ports.split_once(':').unwrap_or((ports, ports));
    // svc/NAME, or pod/NAME: a pod of a release (its name starts with the release's), forwarded like the
    // release's Service on that port (the charts' Service port is the container port).
    let service = match target.split_once('/') {
        Some(("pod" | "pods" | "po", pod)) => {
            let port = remote.parse::<u64>().unwrap_or(0);
            let svc = with_state(|s| {
                s.releases().into_iter().find_map(|(release, r)| {
                    if !pod.starts_with(&format!("{release}-")) {
                        return None;
                    }
                    let svcs = r["services"].as_array()?.clone();
                    svcs.iter()
                        .find(|svc| {
                            svc["ports"]
                                .as_array()
                                .is_some_and(|p| p.iter().any(|p| p["port"].as_u64() == Some(port)))
                        })
                        .or(svcs.first())
                        .and_then(|svc| svc["name"].as_str().map(str::to_string))
                })
            });
            match svc {
                Some(svc) => svc,
                None => {
                    return Reply::err(
                        1,
                        format!("Error from server (NotFound): pods \"{pod}\" not found\n"),
                    )
                }
            }
        }
        Some((_, name)) => name.to_string(),
        None => target.to_string(),
    };
    let Ok(local) = local.parse::<u16>() else {
        return error(&format!("invalid port {local}"));
    };
    let Ok(remote_port) = remote.parse::<u64>() else {
        return error(&format!("invalid port {remote}"));
    };
    // pkg/cmd/portforward/portforward.go Complete: the Service is read and the port translated to the pod's
    // (pkg/util/service_port.go LookupContainerPortNumberByServicePort) before anything listens.
    let svc = with_state(|s| {
        s.releases()
            .values()
            .filter(|r| r["namespace"] == ns)
            .flat_map(|r| r["services"].as_array().cloned().unwrap_or_default())
            .find(|svc| svc["name"] == service.as_str())
    });
    let Some(svc) = svc else {
        return Reply::err(
            1,
            format!("Error from server (NotFound): services \"{service}\" not found\n"),
        );
    };
    let has_port = svc["ports"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["port"].as_u64() == Some(remote_port)));
    if !has_port {
        return error(&format!(
            "Service {service} does not have a service port {remote_port}"
        ));
    }
    let remote = remote.to_string();
    let listener = match TcpListener::bind(("127.0.0.1", local)) {
        Ok(l) => l,
        Err(e) => {
            return Reply::err(
                1,
                format!("Unable to listen on port {local}: Listeners failed to create with the following errors: [unable to create listener: Error listen tcp4 127.0.0.1:{local}: bind: {e}]\nerror: unable to listen on any of the requested ports: [{{{local} {remote}}}]\n"),
            );
        }
    };
    let (upstream, die_after, hang_after) = with_state(|s| {
        let up = s.0["forward_targets"][&service]
            .as_str()
            .map(str::to_string);
        // Only the first forward of a service dies: the restarted one stays up.
        let die = s.0["forward_die_after_ms"][&service].as_u64();
        if die.is_some() {
            s.0["forward_die_after_ms"][&service] = Value::Null;
        }
        // A forward that stays alive but stops answering (a stuck tunnel): only a probe can see it.
        let hang = s.0["forward_hang_after_ms"][&service].as_u64();
        if hang.is_some() {
            s.0["forward_hang_after_ms"][&service] = Value::Null;
        }
        (up, die, hang)
    });
    println!("Forwarding from 127.0.0.1:{local} -> {remote}");
    let _ = std::io::stdout().flush();
    if let Some(ms) = die_after {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            eprintln!("E0101 portforward.go:413] an error occurred forwarding {local} -> {remote}: error forwarding port {remote} to pod, uid : network namespace for sandbox is closed");
            eprintln!("error: lost connection to pod");
            std::process::exit(1);
        });
    }
    let started = Instant::now();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        if hang_after.is_some_and(|ms| started.elapsed() >= Duration::from_millis(ms)) {
            // Accept and never answer, as a wedged SPDY stream does.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(600));
                drop(conn);
            });
            continue;
        }
        println!("Handling connection for {local}");
        let up = upstream.clone();
        std::thread::spawn(move || match up {
            Some(addr) => proxy(conn, &addr),
            None => serve_builtin(conn),
        });
    }
    Reply::ok("")
}

fn proxy(client: TcpStream, addr: &str) {
    let Ok(server) = TcpStream::connect(addr) else {
        return;
    };
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut c, mut s) = (client, server);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut s, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

/// With no upstream configured, the double answers the frontend's health route like the frontend would.
fn serve_builtin(mut conn: TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
    let body = json!({"status": "ok", "backend": {"url": "http://todo-backend:8000", "reachable": true, "status": 200, "latency_ms": 1, "error": null}}).to_string();
    let _ = write!(conn, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
}
