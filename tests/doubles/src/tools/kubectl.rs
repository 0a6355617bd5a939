//! kubectl double: client version, namespaces, pods (ready or crash-looping, from real captures), warning
//! events, logs and a working port-forward (proxying to a test server when one is configured).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{fixture, flag, positionals, with_state, Reply};

const EMPTY_LIST: &str = "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n";

/// Answers one kubectl call.
pub fn run(argv: &[String]) -> Reply {
    let pos = positionals(
        argv,
        &[
            "--context",
            "-n",
            "--namespace",
            "-o",
            "--output",
            "-l",
            "--selector",
            "-c",
            "--container",
            "--tail",
            "--address",
            "--field-selector",
        ],
    );
    let words: Vec<&str> = pos.iter().map(String::as_str).collect();
    if let ["version", ..] = words.as_slice() {
        return Reply::ok(fixture("kubectl/version-client.json"));
    }
    if flag(argv, &["--context"]).is_none() {
        return Reply::err(1, "error: the test double refuses calls without --context (the user's current context must never be used)\n");
    }
    let ns = flag(argv, &["-n", "--namespace"]).unwrap_or_else(|| "default".into());
    let cluster = with_state(|s| s.str("cluster"));
    if cluster != "running" {
        return Reply::err(1, "The connection to the server 192.168.49.2:8443 was refused - did you specify the right host or port?\n");
    }
    match words.as_slice() {
        ["get", "namespace", name, ..] | ["get", "ns", name, ..] => with_state(|s| {
            let exists = s.0["namespaces"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == name));
            if exists {
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
            } else {
                Reply::err(
                    1,
                    format!("Error from server (NotFound): namespaces \"{name}\" not found\n"),
                )
            }
        }),
        ["create", "namespace", name, ..] => with_state(|s| {
            if let Some(a) = s.0["namespaces"].as_array_mut() {
                if a.iter().any(|n| n == name) {
                    return Reply::err(1, format!("Error from server (AlreadyExists): namespaces \"{name}\" already exists\n"));
                }
                a.push(json!(name));
            }
            Reply::ok(format!("namespace/{name} created\n"))
        }),
        ["label", "namespace", name, label, ..] => with_state(|s| {
            if let Some((k, v)) = label.split_once('=') {
                s.0["namespace_labels"][name.to_string()][k] = json!(v);
            }
            Reply::ok(format!("namespace/{name} labeled\n"))
        }),
        ["get", "pods", ..] => pods(argv),
        ["get", kinds, ..] if kinds.split(',').all(|k| kind_of(k).is_some()) => {
            let kinds: Vec<&str> = kinds.split(',').filter_map(kind_of).collect();
            let selector = flag(argv, &["-l", "--selector"]).unwrap_or_default();
            with_state(|s| {
                let items: Vec<Value> = s
                    .objects(&ns, &kinds, &selector)
                    .into_iter()
                    .map(|o| {
                        // Like the API server, empty maps are left out, never `null`.
                        let mut meta = json!({"name": o["name"], "namespace": ns});
                        for k in ["labels", "annotations"] {
                            if o[k].as_object().is_some_and(|m| !m.is_empty()) {
                                meta[k] = o[k].clone();
                            }
                        }
                        json!({"apiVersion": "v1", "kind": o["kind"], "metadata": meta})
                    })
                    .collect();
                Reply::ok(format!(
                    "{:#}\n",
                    json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
                ))
            })
        }
        ["delete", "namespace", name, ..] | ["delete", "ns", name, ..] => with_state(|s| {
            let existed = s.0["namespaces"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n == name));
            if let Some(a) = s.0["namespaces"].as_array_mut() {
                a.retain(|n| n != name);
            }
            if let Some(a) = s.0["objects"].as_array_mut() {
                a.retain(|o| o["namespace"] != *name);
            }
            if existed {
                Reply::ok(format!("namespace \"{name}\" deleted\n"))
            } else if argv.iter().any(|a| a == "--ignore-not-found") {
                Reply::ok("")
            } else {
                Reply::err(
                    1,
                    format!("Error from server (NotFound): namespaces \"{name}\" not found\n"),
                )
            }
        }),
        ["delete", kind, name, ..] if kind_of(kind).is_some() => with_state(|s| {
            let k = kind_of(kind).unwrap_or_default();
            if s.delete_object(&ns, k, name) {
                Reply::ok(format!("{} \"{name}\" deleted\n", k.to_ascii_lowercase()))
            } else if argv.iter().any(|a| a == "--ignore-not-found") {
                Reply::ok("")
            } else {
                let plural = if k == "Secret" {
                    "secrets"
                } else {
                    "persistentvolumeclaims"
                };
                Reply::err(
                    1,
                    format!("Error from server (NotFound): {plural} \"{name}\" not found\n"),
                )
            }
        }),
        ["get", "events", ..] => Reply::ok(EMPTY_LIST),
        ["logs", ..] => with_state(|s| Reply::ok(s.str("crash_logs"))),
        ["port-forward", target, ports, ..] => port_forward(&ns, target, ports),
        _ => Reply::err(
            1,
            format!("error: unknown command {pos:?} in the kubectl test double\n"),
        ),
    }
}

/// The Kind of a kubectl resource word the double models as plain objects.
fn kind_of(word: &str) -> Option<&'static str> {
    match word {
        "persistentvolumeclaims" | "persistentvolumeclaim" | "pvc" => Some("PersistentVolumeClaim"),
        "secrets" | "secret" => Some("Secret"),
        _ => None,
    }
}

fn pods(argv: &[String]) -> Reply {
    let selector = flag(argv, &["-l", "--selector"]).unwrap_or_default();
    let release = selector
        .strip_prefix("app.kubernetes.io/instance=")
        .unwrap_or("")
        .to_string();
    with_state(|s| {
        let rel = &s.0["releases"][&release];
        if rel.is_null() {
            return Reply::ok(EMPTY_LIST);
        }
        let file = if rel["pods"] == "crashloop" {
            "kubectl/pods-crashloopbackoff.json"
        } else {
            "kubectl/pods-running-ready.json"
        };
        let mut v: Value = serde_json::from_str(&fixture(file)).unwrap_or(Value::Null);
        // Label the captured pods as the release's, as the chart would.
        if let Some(items) = v["items"].as_array_mut() {
            for it in items {
                it["metadata"]["labels"]["app.kubernetes.io/instance"] = json!(release);
            }
        }
        Reply::ok(format!("{v:#}\n"))
    })
}

fn port_forward(ns: &str, target: &str, ports: &str) -> Reply {
    let service = target
        .trim_start_matches("svc/")
        .trim_start_matches("service/")
        .to_string();
    let (local, remote) = ports.split_once(':').unwrap_or((ports, ports));
    let Ok(local) = local.parse::<u16>() else {
        return Reply::err(1, format!("error: invalid port {local}\n"));
    };
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
    let exists = with_state(|s| !s.0["releases"][&service].is_null());
    if !exists {
        return Reply::err(
            1,
            format!("Error from server (NotFound): services \"{service}\" not found\n"),
        );
    }
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
    let _ = ns;
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
            None => serve_builtin(conn, started),
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
fn serve_builtin(mut conn: TcpStream, _started: Instant) {
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
    let body = json!({"status": "ok", "backend": {"url": "http://todo-backend:8000", "reachable": true, "status": 200, "latency_ms": 1, "error": null}}).to_string();
    let _ = write!(conn, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
}
