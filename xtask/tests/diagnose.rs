//! `cargo xtask diagnose` end to end: the real xtask binary against the tool doubles (crate tool-doubles),
//! whose kubectl answers `kubectl get <kinds> -o json` with a recorded real-format capture of each failure
//! class (tests/fixtures/kubectl/release-*.json) and `logs` with canned lines.

mod deploy_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use deploy_support::Env;

/// The doubles with the namespace's objects taken from `fixture` and `logs` as every container's log.
struct Double {
    env: Env,
}

impl Double {
    fn new(fixture: &str, logs: &str) -> Self {
        let env = Env::new();
        env.set_state(|s| {
            s["objects_fixture"] = format!("kubectl/{fixture}").into();
            s["crash_logs"] = logs.into();
        });
        env.clear_calls();
        Self { env }
    }

    /// Every call, as `tool argv...`.
    fn calls(&self) -> Vec<String> {
        self.env.call_lines()
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.env.xtask(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap_or_else(|e| panic!("running xtask: {e}"))
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn findings(o: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"diagnose\""))
        .unwrap_or_else(|| panic!("no diagnose event in:\n{}", text(o)));
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    v["findings"].as_array().cloned().unwrap_or_default()
}

#[test]
fn healthy_release_exits_zero_with_no_findings() {
    let d = Double::new("release-healthy.json", "");
    let o = d.run(&["diagnose", "-p", "todo", "-n", "todo"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("diagnose: no problems found in namespace todo"),
        "{}",
        text(&o)
    );
    let calls = d.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("kubectl --context todo --namespace todo get "),
        "{calls:?}"
    );
}

#[test]
fn each_failure_class_is_found() {
    let cases = [
        ("release-image-not-loaded.json", "image-not-loaded"),
        ("release-image-never-pull.json", "image-not-loaded"),
        ("release-crash-loop.json", "crash-loop"),
        ("release-oom-killed.json", "oom-killed"),
        ("release-config-error.json", "container-config"),
        ("release-probe-failing.json", "probe-failing"),
        ("release-service-no-endpoints.json", "service-endpoints"),
        ("release-pvc-pending.json", "pvc-pending"),
        ("release-unschedulable.json", "pod-unschedulable"),
        ("release-warning-event.json", "warning-event"),
    ];
    for (fixture, analyzer) in cases {
        let d = Double::new(fixture, "");
        let o = d.run(&["diagnose", "--json"], &[]);
        let found = findings(&o);
        assert!(
            found.iter().any(|f| f["analyzer"] == analyzer),
            "{fixture}: no {analyzer} in {found:#?}"
        );
        let critical = found.iter().any(|f| f["severity"] == "critical");
        assert_eq!(
            o.status.code(),
            Some(if critical { 4 } else { 0 }),
            "{fixture}: {}",
            text(&o)
        );
    }
}

#[test]
fn crash_loop_shows_previous_logs() {
    let d = Double::new(
        "release-crash-loop.json",
        "2026-11-25T21:40:14Z INFO starting\nError: DATABASE_URL must be set\n",
    );
    let o = d.run(&["diagnose", "--tail", "7"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("CRITICAL Pod/todo-backend-6d8f9c7b5d-k2x9q [crash-loop]"),
        "{out}"
    );
    assert!(out.contains("Error: DATABASE_URL must be set"), "{out}");
    assert!(
        out.contains("last exit code 1 (application error)"),
        "{out}"
    );
    let calls = d.calls();
    assert!(
        calls.iter().any(|c| c
            == "kubectl --context todo --namespace todo logs todo-backend-6d8f9c7b5d-k2x9q -c backend --tail 7 --previous"),
        "{calls:?}"
    );
}

#[test]
fn unreachable_cluster_is_a_prerequisite_error() {
    let d = Double::new("release-healthy.json", "");
    d.env.set_state(|s| s["cluster"] = "stopped".into());
    let o = d.run(&["diagnose"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("cannot read namespace todo in kube context todo"),
        "{}",
        text(&o)
    );
}

#[test]
fn missing_kubectl_is_a_prerequisite_with_its_fix() {
    let d = Double::new("release-healthy.json", "");
    std::fs::remove_file(d.env.bin.join("kubectl")).unwrap_or_else(|e| panic!("{e}"));
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = empty.path().display().to_string();
    let o = d.run(&["diagnose"], &[("PATH", &path)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains(
            "kubectl not found on PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/)"
        ),
        "{out}"
    );
}

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1764106800,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The backend cannot start: set DATABASE_URL, then run cargo xtask deploy."},"finish_reason":"stop"}]}"#;

/// Reads one HTTP/1.1 request (head and body) from `stream`, answers a chat completion; returns the request.
fn serve_one(stream: &mut (impl Read + Write)) -> String {
    let mut reader = BufReader::new(&mut *stream);
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let _ = stream.flush();
    format!("{head}\r\n{}", String::from_utf8_lossy(&body))
}

/// A one-shot OpenAI-compatible server over plain HTTP: records the request, answers a chat completion.
fn fake_openai() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let handle = std::thread::spawn(move || match listener.accept() {
        Ok((mut stream, _)) => serve_one(&mut stream),
        Err(_) => String::new(),
    });
    (format!("http://{addr}/v1"), handle)
}

/// The same server over HTTPS with a self-signed certificate for `localhost`, written as PEM to `ca_file`
/// for the client to trust (through `SSL_CERT_FILE`, as a corporate CA would be).
fn fake_openai_tls(ca_file: &Path) -> (String, std::thread::JoinHandle<String>) {
    use std::sync::Arc;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .unwrap_or_else(|e| panic!("certificate: {e}"));
    std::fs::write(ca_file, cert.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| panic!("{e}"))
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap_or_else(|e| panic!("{e}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let handle = std::thread::spawn(move || {
        let Ok((tcp, _)) = listener.accept() else {
            return String::new();
        };
        let Ok(conn) = rustls::ServerConnection::new(Arc::new(config)) else {
            return String::new();
        };
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let request = serve_one(&mut tls);
        tls.conn.send_close_notify();
        let _ = tls.flush();
        request
    });
    (format!("https://localhost:{port}/v1"), handle)
}

/// A PATH with only the tool doubles: no curl, nothing else.
fn path_without_curl(d: &Double) -> String {
    d.env.bin.display().to_string()
}

#[test]
fn explain_sends_anonymised_findings_and_prints_the_answer() {
    let d = Double::new(
        "release-crash-loop.json",
        "connecting to postgres://todo:hunter2-secret@10.96.0.12:5432/todo\npanic: bad AUTH_SECRET=abcdefghijklmnopqrstuvwxyz0123456789\n",
    );
    let (base, server) = fake_openai();
    let path = path_without_curl(&d);
    let o = d.run(
        &["diagnose", "--explain"],
        &[
            ("OPENAI_API_KEY", "sk-test-0123456789abcdef"),
            ("OPENAI_BASE_URL", &base),
            ("PATH", &path),
        ],
    );
    let out = text(&o);
    let request = server.join().unwrap_or_default();
    assert!(
        out.contains("The backend cannot start: set DATABASE_URL"),
        "{out}"
    );
    assert!(
        request.starts_with("POST /v1/chat/completions "),
        "{request}"
    );
    assert!(
        request.contains("Bearer sk-test-0123456789abcdef"),
        "the key goes in the header: {request}"
    );
    let body = request.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(body.contains("crash-loop"), "{body}");
    for secret in [
        "hunter2-secret",
        "abcdefghijklmnopqrstuvwxyz0123456789",
        "10.96.0.12",
        "sk-test",
    ] {
        assert!(!body.contains(secret), "{secret} sent to the model: {body}");
    }
    assert!(
        !out.contains("sk-test-0123456789abcdef"),
        "key printed: {out}"
    );
}

#[test]
fn explain_without_key_keeps_the_findings() {
    let d = Double::new("release-oom-killed.json", "");
    let o = d.run(&["diagnose", "--explain"], &[]);
    let out = text(&o);
    assert!(out.contains("[oom-killed]"), "{out}");
    assert!(
        out.contains("OPENAI_API_KEY is not set; the findings above stand alone"),
        "{out}"
    );
}

#[test]
fn explain_over_https_trusts_the_platform_store_and_needs_no_curl() {
    let d = Double::new(
        "release-crash-loop.json",
        "connecting to postgres://todo:hunter2-secret@10.96.0.12:5432/todo\n",
    );
    let ca = d.env.dir.path().join("ca.pem");
    let (base, server) = fake_openai_tls(&ca);
    let key = "sk-x-0123456789abcdef";
    let path = path_without_curl(&d);
    let ca = ca.display().to_string();
    let o = d.run(
        &["diagnose", "--explain", "-v"],
        &[
            ("OPENAI_API_KEY", key),
            ("OPENAI_BASE_URL", &base),
            ("SSL_CERT_FILE", &ca),
            ("PATH", &path),
        ],
    );
    let out = text(&o);
    let request = server.join().unwrap_or_default();
    assert!(
        out.contains("The backend cannot start: set DATABASE_URL"),
        "{out}"
    );
    assert!(!out.contains(key), "key printed: {out}");
    assert!(
        request.starts_with("POST /v1/chat/completions "),
        "{request}"
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {key}")),
        "the key goes in the header: {request}"
    );
    let body = request.split("\r\n\r\n").nth(1).unwrap_or("");
    assert!(body.contains("crash-loop"), "{body}");
    assert!(
        !body.contains("hunter2-secret") && !body.contains(key),
        "{body}"
    );
    // Nothing but kubectl was started: the request came from the xtask itself.
    assert!(
        d.calls().iter().all(|c| c.starts_with("kubectl ")),
        "{:?}",
        d.calls()
    );
}

#[test]
fn explain_over_https_refuses_a_certificate_nobody_trusts() {
    let d = Double::new("release-oom-killed.json", "");
    let ca = d.env.dir.path().join("ca.pem");
    let (base, server) = fake_openai_tls(&ca);
    let path = path_without_curl(&d);
    let o = d.run(
        &["diagnose", "--explain"],
        &[
            ("OPENAI_API_KEY", "sk-x-0123456789abc"),
            ("OPENAI_BASE_URL", &base),
            ("PATH", &path),
        ],
    );
    let out = text(&o);
    // The TLS handshake fails before any request: the server saw nothing, the key went nowhere.
    let request = server.join().unwrap_or_default();
    assert!(
        !request.contains("POST"),
        "a request got through: {request}"
    );
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("[oom-killed]"), "the findings stay: {out}");
    assert!(
        out.contains(&format!("--explain: cannot reach {base}/chat/completions")),
        "{out}"
    );
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    assert!(!out.contains("sk-x-0123456789abc"), "{out}");
}

#[test]
fn explain_gives_up_after_the_timeout() {
    let d = Double::new("release-oom-killed.json", "");
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let hold = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let base = format!("http://{addr}/v1");
    let path = path_without_curl(&d);
    let o = d.run(
        &["diagnose", "--explain"],
        &[
            ("OPENAI_API_KEY", "sk-x-0123456789abc"),
            ("OPENAI_BASE_URL", &base),
            ("OPENAI_TIMEOUT_SECS", "1"),
            ("PATH", &path),
        ],
    );
    let out = text(&o);
    assert!(out.contains("timed out after 1 s"), "{out}");
    assert!(out.contains("[oom-killed]"), "{out}");
    drop(hold.join());
}
