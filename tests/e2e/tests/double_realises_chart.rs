//! The cluster double itself, on the real Docker engine with the real helm: a small chart (busybox httpd) is
//! installed, probed, forwarded, tested, upgraded, broken in the ways the xtask must classify, and removed.

use e2e_tests::harness::{ensure_busybox_image, Cluster};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/demo-chart")
        .display()
        .to_string()
}

fn pods(c: &Cluster) -> Vec<Value> {
    c.get_json(&["pods", "-n", "demo", "--context", "todo"])
        .ok()
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

fn ready_pods(c: &Cluster) -> Vec<Value> {
    pods(c)
        .into_iter()
        .filter(|p| p.pointer("/status/containerStatuses/0/ready") == Some(&Value::Bool(true)))
        .collect()
}

fn waiting_reason(p: &Value) -> String {
    p.pointer("/status/containerStatuses/0/state/waiting/reason")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

fn helm(c: &Cluster, extra: &[&str]) -> std::process::Output {
    let ch = chart();
    let mut a = vec![
        "upgrade",
        "--install",
        "demo",
        ch.as_str(),
        "-n",
        "demo",
        "--create-namespace",
        "--kube-context",
        "todo",
    ];
    a.extend_from_slice(extra);
    c.tool("helm", &a)
}

#[test]
fn double_realises_installs_probes_forwards_and_classifies_failures() {
    let started = Instant::now();
    let Some(engine) = e2e_tests::engine_and_helm() else {
        return;
    };
    let image = match ensure_busybox_image() {
        Ok(i) => i,
        Err(e) => {
            return e2e_tests::missing_prerequisite(&format!("busybox stand-in image: {e:#}"))
        }
    };
    let c = Cluster::new(&e2e_tests::double_bins!()).expect("cluster double");
    let minute = Duration::from_secs(60);

    // minikube: missing profile exits 85; start with containerd (images must be loaded explicitly).
    assert_eq!(
        c.tool("minikube", &["status", "-p", "todo", "-o", "json"])
            .status
            .code(),
        Some(85)
    );
    c.ok(
        "minikube",
        &[
            "start",
            "-p",
            "todo",
            "--container-runtime",
            "containerd",
            "--keep-context",
        ],
    )
    .unwrap();
    let st: Value = serde_json::from_str(
        &c.ok("minikube", &["status", "-p", "todo", "-o", "json"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(st["Host"], "Running");

    // Drill: the image was never loaded -> ErrImagePull / ImagePullBackOff, then it recovers once loaded.
    let out = helm(&c, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reason = c
        .poll("an image pull error", minute, || {
            pods(&c)
                .first()
                .map(waiting_reason)
                .filter(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
        })
        .unwrap();
    println!("never-loaded image shows as {reason}");
    let events = c
        .get_json(&["events", "-n", "demo", "--context", "todo"])
        .unwrap();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "Failed" && e["type"] == "Warning"),
        "{events}"
    );
    c.ok("minikube", &["-p", "todo", "image", "load", &image])
        .unwrap();
    let ls = c
        .ok(
            "minikube",
            &["-p", "todo", "image", "ls", "--format", "json"],
        )
        .unwrap();
    assert!(ls.contains("docker.io/library/busybox:1.36.1"), "{ls}");
    c.poll("a ready pod after the load", minute, || {
        (ready_pods(&c).len() == 1).then_some(())
    })
    .unwrap();

    // A no-op upgrade with --wait: revision 2, the same container, no restart.
    let before = ready_pods(&c)[0].clone();
    let t = Instant::now();
    let out = helm(&c, &["--wait", "--timeout", "60s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("no-op helm upgrade --wait took {:?}", t.elapsed());
    let after = ready_pods(&c)[0].clone();
    assert_eq!(
        before["status"]["containerStatuses"][0]["containerID"],
        after["status"]["containerStatuses"][0]["containerID"]
    );
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    let hist: Value = serde_json::from_str(
        &c.ok(
            "helm",
            &[
                "history",
                "demo",
                "-n",
                "demo",
                "--kube-context",
                "todo",
                "-o",
                "json",
            ],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(hist[1]["revision"], 2);
    assert_eq!(hist[1]["status"], "deployed");
    let list: Value = serde_json::from_str(
        &c.ok(
            "helm",
            &["list", "-n", "demo", "--kube-context", "todo", "-o", "json"],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["revision"], "2");

    // The container is what the pod spec says: non-root, read-only, no capabilities, limited, secret not on argv.
    let cid = after["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("docker://")
        .to_string();
    let inspect: Value =
        serde_json::from_str(&e2e_tests::engine::run(&["inspect", &cid]).unwrap()).unwrap();
    let hc = &inspect[0]["HostConfig"];
    assert_eq!(inspect[0]["Config"]["User"], "10001:10001");
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(hc["Memory"], 32 << 20);
    assert!(
        !inspect[0]["Args"].to_string().contains("s3cr3t"),
        "secret reached the command line"
    );
    let logs = c
        .ok(
            "kubectl",
            &["logs", "deploy/demo", "-n", "demo", "--context", "todo"],
        )
        .unwrap();
    assert!(logs.contains("uid=10001 secret_len=36"), "{logs}");

    // port-forward svc/demo through a free local port.
    let mut pf = c
        .cmd(&c.bin.join("kubectl").display().to_string())
        .args([
            "port-forward",
            "svc/demo",
            ":8000",
            "-n",
            "demo",
            "--context",
            "todo",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut pf_out = BufReader::new(pf.stdout.take().unwrap());
    pf_out.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("Forwarding from 127.0.0.1:") && line.trim_end().ends_with("-> 8000"),
        "{line}"
    );
    let port: u16 = line
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let body = http_get(port, "/health").unwrap();
    let _ = pf.kill();
    let _ = pf.wait();
    drop(pf_out);
    assert!(
        body.starts_with("HTTP/1.") && body.contains("hello"),
        "{body}"
    );

    // helm test runs the rendered test pod against the Service DNS name.
    let out = c
        .ok(
            "helm",
            &["test", "demo", "-n", "demo", "--kube-context", "todo"],
        )
        .unwrap();
    assert!(out.contains("Phase:          Succeeded"), "{out}");

    // A config change rolls the pod.
    let old_name = after["metadata"]["name"].as_str().unwrap().to_string();
    let out = helm(
        &c,
        &["--wait", "--timeout", "60s", "--set", "message=changed"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rolled = c.poll("the old pod gone", minute, || {
        let p = ready_pods(&c);
        (p.len() == 1 && p[0]["metadata"]["name"] != old_name.as_str() && pods(&c).len() == 1)
            .then_some(p)
    });
    assert!(rolled.is_ok(), "{rolled:?}");

    // Drill: a readiness path that never turns green -> helm --wait fails, rolls back; the event names the failure.
    let major = e2e_tests::cli::helm::real_helm_major();
    let flag = if major >= 4 {
        "--rollback-on-failure"
    } else {
        "--atomic"
    };
    let out = helm(
        &c,
        &[
            "--wait",
            "--timeout",
            "8s",
            flag,
            "--set",
            "readyPath=/nope",
            "--set",
            "message=changed",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("UPGRADE FAILED") && err.contains("has been rolled back"),
        "{err}"
    );
    let events = c
        .ok(
            "kubectl",
            &[
                "get",
                "events",
                "-n",
                "demo",
                "--context",
                "todo",
                "-o",
                "json",
            ],
        )
        .unwrap();
    assert!(
        events.contains("Readiness probe failed: HTTP probe failed with statuscode: 404"),
        "{events}"
    );
    c.poll("the rollback to settle", minute, || {
        (ready_pods(&c).len() == 1 && pods(&c).len() == 1).then_some(())
    })
    .unwrap();

    // Drill: a container that exits at start -> restarts with backoff, CrashLoopBackOff, logs of the previous run.
    let out = helm(&c, &["--set", "crash=true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let crashing = c
        .poll("CrashLoopBackOff", minute, || {
            pods(&c)
                .into_iter()
                .find(|p| waiting_reason(p) == "CrashLoopBackOff")
        })
        .unwrap();
    assert!(
        crashing["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(
        crashing["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        3
    );
    let prev = c
        .ok(
            "kubectl",
            &[
                "logs",
                crashing["metadata"]["name"].as_str().unwrap(),
                "--previous",
                "-n",
                "demo",
                "--context",
                "todo",
            ],
        )
        .unwrap();
    assert!(prev.contains("boom: cannot start"), "{prev}");
    assert_eq!(
        ready_pods(&c).len(),
        1,
        "the old pod keeps serving during a failed rollout"
    );
    let rs = c.tool(
        "kubectl",
        &[
            "rollout",
            "status",
            "deployment/demo",
            "-n",
            "demo",
            "--context",
            "todo",
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(rs.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rs.stderr).contains("timed out waiting for the condition"));

    // Removal: uninstall, delete the namespace -> no container, no network left.
    c.ok(
        "helm",
        &["uninstall", "demo", "-n", "demo", "--kube-context", "todo"],
    )
    .unwrap();
    c.ok(
        "kubectl",
        &["delete", "namespace", "demo", "--context", "todo"],
    )
    .unwrap();
    c.poll("no container and no network", minute, || {
        (c.containers().is_empty() && c.networks().is_empty()).then_some(())
    })
    .unwrap();
    assert_eq!(
        c.tool(
            "helm",
            &["status", "demo", "-n", "demo", "--kube-context", "todo"]
        )
        .status
        .code(),
        Some(1)
    );
    println!("double test took {:?}", started.elapsed());
    drop(c);
    drop(engine);
}
