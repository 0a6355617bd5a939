//! Live checks against the running releases: pods, Deployments, Services, health through the API server
//! proxy, `helm test`, and the measured times against the plan's budgets.

use std::time::{Duration, Instant};

use super::check::CheckResult;
use crate::context::Context;
use crate::diagnose::{self, Snapshot};
use crate::kube::{rfc3339_secs, Pod};
use crate::process::Call;
use crate::tools::{helm, kubectl};

/// The releases (= Deployments = Services) that must be live.
pub const RELEASES: [&str; 2] = ["todo-backend", "todo-frontend"];
/// Health must answer within this.
pub const HEALTH_BUDGET: Duration = Duration::from_secs(2);
/// A pod must be Ready this long after it was created.
pub const STARTUP_BUDGET_SECS: i64 = 30;
/// A release must be available this long after install (the plan's "helm install < 60 s").
pub const INSTALL_BUDGET_SECS: i64 = 60;

/// Ok when at least one release is installed (`helm status` succeeds).
pub fn releases_installed(ctx: &Context) -> Result<(), String> {
    let mut found = false;
    let sh = ctx.sh().map_err(|e| format!("{e:#}"))?;
    for r in RELEASES {
        let out = ctx
            .run(&helm::status(&sh, r, &ctx.namespace, &ctx.profile))
            .map_err(|e| format!("{e:#}"))?;
        found |= out.ok();
    }
    if found {
        Ok(())
    } else {
        Err(format!(
            "no release installed in namespace {}",
            ctx.namespace
        ))
    }
}

/// Pods that are app pods (not finished hook/test pods, and not pods a rollout is
/// stopping: those turn unready on purpose while they drain).
fn app_pods(snap: &Snapshot) -> impl Iterator<Item = &Pod> {
    snap.pods
        .iter()
        .filter(|p| !matches!(p.status.phase.as_str(), "Succeeded"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !p.metadata.annotations.contains_key("helm.sh/hook"))
}

/// Every pod Running and Ready, with no restarts.
pub fn pods_check(snap: &Snapshot) -> CheckResult {
    let mut problems = Vec::new();
    let mut count = 0;
    for p in app_pods(snap) {
        count += 1;
        let restarts: u32 = p
            .status
            .container_statuses
            .iter()
            .map(|c| c.restart_count)
            .sum();
        if p.status.phase != "Running" {
            problems.push(format!("{} is {}", p.metadata.name, p.status.phase));
        } else if !p.is_ready() {
            problems.push(format!("{} is not Ready", p.metadata.name));
        }
        if restarts > 0 {
            problems.push(format!("{} restarted {restarts}x", p.metadata.name));
        }
    }
    if count == 0 {
        problems.push(format!("no pods in namespace {}", snap.namespace));
    }
    CheckResult::from_problems(
        "pods running and ready",
        &format!("{count} pod(s) Running, Ready, 0 restarts"),
        &problems,
        "`cargo xtask diagnose` says why",
    )
}

/// Each release's Deployment has its desired replicas ready.
pub fn deployments_check(snap: &Snapshot) -> CheckResult {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for name in RELEASES {
        match snap.deployments.iter().find(|d| d.metadata.name == name) {
            None => problems.push(format!("Deployment {name} missing")),
            Some(d) if d.status.ready_replicas < d.spec.replicas => problems.push(format!(
                "{name}: {}/{} ready",
                d.status.ready_replicas, d.spec.replicas
            )),
            Some(d) => seen.push(format!(
                "{name} {}/{}",
                d.status.ready_replicas, d.spec.replicas
            )),
        }
    }
    CheckResult::from_problems(
        "deployments at desired replicas",
        &seen.join(", "),
        &problems,
        "`cargo xtask diagnose`; a missing Deployment means a missing release: `cargo xtask deploy`",
    )
}

/// Each release's Service has a ClusterIP and at least one ready endpoint.
pub fn services_check(snap: &Snapshot) -> CheckResult {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for name in RELEASES {
        let Some(s) = snap.services.iter().find(|s| s.metadata.name == name) else {
            problems.push(format!("Service {name} missing"));
            continue;
        };
        let ip = s.spec.cluster_ip.clone().unwrap_or_default();
        if s.spec.type_.as_deref().unwrap_or("ClusterIP") != "ClusterIP"
            || ip.is_empty()
            || ip == "None"
        {
            problems.push(format!("{name}: no ClusterIP ({ip:?})"));
            continue;
        }
        let ready = diagnose::ready_endpoints(snap, s);
        if ready == 0 {
            problems.push(format!("{name}: no ready endpoints"));
        } else {
            seen.push(format!("{name} {ip} ({ready} endpoint(s))"));
        }
    }
    CheckResult::from_problems(
        "services with ClusterIP and endpoints",
        &seen.join(", "),
        &problems,
        "`cargo xtask diagnose` shows the selector and the pods behind it",
    )
}

/// Each app pod became Ready within the startup budget.
pub fn startup_check(snap: &Snapshot) -> CheckResult {
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for p in app_pods(snap) {
        let created = p
            .metadata
            .creation_timestamp
            .as_deref()
            .and_then(rfc3339_secs);
        let ready = p
            .condition("Ready")
            .filter(|c| c.is_true())
            .and_then(|c| c.last_transition_time.as_deref())
            .and_then(rfc3339_secs);
        if let (Some(c), Some(r)) = (created, ready) {
            let secs = r - c;
            if secs > STARTUP_BUDGET_SECS {
                problems.push(format!("{} ready after {secs}s", p.metadata.name));
            } else {
                seen.push(format!("{} {secs}s", p.metadata.name));
            }
        }
    }
    if seen.is_empty() && problems.is_empty() {
        return CheckResult::skip(
            "pod startup < 30 s",
            "no Ready pod to time",
            "`cargo xtask diagnose`",
        );
    }
    CheckResult::from_problems(
        "pod startup < 30 s",
        &seen.join(", "),
        &problems,
        "lower the probes' initialDelaySeconds, or find what slows startup (`kubectl logs`)",
    )
}

/// Time from a Deployment's creation to `Available=True`, for releases never upgraded since install.
pub fn install_check(snap: &Snapshot) -> CheckResult {
    let name = "release available < 60 s after install";
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for d in snap
        .deployments
        .iter()
        .filter(|d| RELEASES.contains(&d.metadata.name.as_str()))
        .filter(|d| d.metadata.generation == Some(1))
    {
        let created = d
            .metadata
            .creation_timestamp
            .as_deref()
            .and_then(rfc3339_secs);
        let available = d
            .condition("Available")
            .filter(|c| c.is_true())
            .and_then(|c| c.last_transition_time.as_deref())
            .and_then(rfc3339_secs);
        if let (Some(c), Some(a)) = (created, available) {
            let secs = a - c;
            if secs > INSTALL_BUDGET_SECS {
                problems.push(format!("{} available after {secs}s", d.metadata.name));
            } else {
                seen.push(format!("{} {secs}s", d.metadata.name));
            }
        }
    }
    if seen.is_empty() && problems.is_empty() {
        return CheckResult::skip(
            name,
            "measurable only for releases not upgraded since install",
            "`cargo xtask clean` then `cargo xtask deploy` to time a fresh install",
        );
    }
    CheckResult::from_problems(
        name,
        &seen.join(", "),
        &problems,
        "see `pod startup`; image loading and probe delays dominate install time",
    )
}

/// A health endpoint answered 2xx within the budget.
pub fn health_result(what: &str, ok: bool, took: Duration, detail: &str) -> CheckResult {
    let name = format!("health: {what} < 2 s");
    let ms = took.as_millis();
    if !ok {
        CheckResult::fail(
            &name,
            format!("no answer: {detail}"),
            "`cargo xtask diagnose`",
        )
    } else if took > HEALTH_BUDGET {
        CheckResult::fail(
            &name,
            format!("{ms} ms"),
            "the health endpoint must not do slow work; check the node's load",
        )
    } else {
        CheckResult::pass(&name, format!("{ms} ms"))
    }
}

/// The frontend's `/api/health` says it reaches the backend by its Service DNS name.
pub fn backend_dns_check(body: &str) -> CheckResult {
    let name = "frontend reaches backend by Service DNS";
    let v: serde_json::Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return CheckResult::fail(
                name,
                format!("/api/health is not JSON: {e}"),
                "check the frontend version",
            )
        }
    };
    let url = v["backend"]["url"].as_str().unwrap_or("");
    let host = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split([':', '/']).next())
        .unwrap_or("");
    let dns = host == "todo-backend" || host.starts_with("todo-backend.");
    if v["backend"]["reachable"] != true {
        CheckResult::fail(
            name,
            format!(
                "backend {url} not reachable: {}",
                v["backend"]["error"].as_str().unwrap_or("no error given")
            ),
            "`cargo xtask diagnose`; check BACKEND_URL in the frontend ConfigMap and the todo-backend Service",
        )
    } else if !dns {
        CheckResult::fail(
            name,
            format!("backend reached at {url}, not by the Service name"),
            "set backendUrl to http://todo-backend:8000 in the frontend chart",
        )
    } else {
        CheckResult::pass(
            name,
            format!(
                "{url} reachable in {} ms",
                v["backend"]["latency_ms"].as_u64().unwrap_or(0)
            ),
        )
    }
}

/// Outcome of `helm test R`.
pub fn helm_test_result(release: &str, code: i32, stdout: &str, stderr: &str) -> CheckResult {
    let name = format!("helm test: {release}");
    if code == 0 {
        let phase = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("Phase:"))
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        CheckResult::pass(
            &name,
            if phase.is_empty() {
                "passed".into()
            } else {
                phase
            },
        )
    } else {
        let why = stderr
            .lines()
            .chain(stdout.lines())
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("failed")
            .to_string();
        CheckResult::fail(
            &name,
            why,
            format!("`kubectl --namespace <ns> logs -l helm.sh/hook=test` (or `helm test {release} --logs`)"),
        )
    }
}

fn timed(ctx: &Context, cmd: &Call) -> (bool, Duration, String) {
    let start = Instant::now();
    match ctx.run(cmd) {
        Ok(o) => {
            let took = start.elapsed();
            let ok = o.ok();
            let body = if ok { o.stdout } else { o.reason() };
            (ok, took, body)
        }
        Err(e) => (false, start.elapsed(), format!("{e:#}")),
    }
}

/// All live checks.
pub fn checks(ctx: &Context) -> Vec<CheckResult> {
    let snap = match diagnose::collect(ctx, 20) {
        Ok(s) => s,
        Err(e) => {
            return vec![CheckResult::fail(
                "live: read the namespace",
                format!("{e:#}"),
                format!("`minikube -p {} status`", ctx.profile),
            )]
        }
    };
    let mut out = vec![
        pods_check(&snap),
        deployments_check(&snap),
        services_check(&snap),
    ];
    let sh = match ctx.sh() {
        Ok(sh) => sh,
        Err(e) => {
            out.push(CheckResult::fail(
                "live checks",
                format!("{e:#}"),
                "run from the workspace",
            ));
            return out;
        }
    };
    let (p, ns) = (&ctx.profile, &ctx.namespace);
    let (ok, took, body) = timed(
        ctx,
        &kubectl::proxy_get(&sh, p, ns, "todo-backend", "/health"),
    );
    out.push(health_result("backend /health", ok, took, &body));
    let (ok, took, body) = timed(
        ctx,
        &kubectl::proxy_get(&sh, p, ns, "todo-frontend", "/api/health"),
    );
    out.push(health_result("frontend /api/health", ok, took, &body));
    if ok {
        out.push(backend_dns_check(&body));
    }
    out.push(startup_check(&snap));
    out.push(install_check(&snap));
    for r in RELEASES {
        out.push(match ctx.run(&helm::test(&sh, r, ns, p, 120)) {
            Ok(o) => helm_test_result(r, o.code, &o.stdout, &o.stderr),
            Err(e) => CheckResult::fail(&format!("helm test: {r}"), format!("{e:#}"), "check helm"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::check::Outcome;
    use super::*;

    fn snap(json: &str) -> Snapshot {
        match diagnose::snapshot_from_json(json, "todo", "todo") {
            Ok(s) => s,
            Err(e) => panic!("{e:#}"),
        }
    }

    const HEALTHY: &str = include_str!("../../tests/fixtures/kubectl/release-healthy.json");
    const CRASH: &str = include_str!("../../tests/fixtures/kubectl/release-crash-loop.json");
    const NO_EP: &str =
        include_str!("../../tests/fixtures/kubectl/release-service-no-endpoints.json");

    #[test]
    fn healthy_release_passes_cluster_checks() {
        let s = snap(HEALTHY);
        for r in [
            pods_check(&s),
            deployments_check(&s),
            services_check(&s),
            startup_check(&s),
        ] {
            assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
        }
        assert_eq!(
            startup_check(&s).detail,
            "todo-backend-6d8f9c7b5d-k2x9q 12s, todo-frontend-7c9d8b6f4e-p4w7z 12s"
        );
    }

    #[test]
    fn crash_loop_fails_pods_deployments_services() {
        let s = snap(CRASH);
        let p = pods_check(&s);
        assert_eq!(p.outcome, Outcome::Fail);
        assert!(
            p.detail.contains("is not Ready") && p.detail.contains("restarted 5x"),
            "{}",
            p.detail
        );
        assert_eq!(deployments_check(&s).detail, "todo-backend: 0/1 ready");
        assert_eq!(
            services_check(&s).detail,
            "todo-backend: no ready endpoints"
        );
        assert_eq!(
            services_check(&snap(NO_EP)).detail,
            "todo-frontend: no ready endpoints"
        );
    }

    #[test]
    fn a_pod_being_stopped_by_a_rollout_is_not_a_problem() {
        let mut doc: serde_json::Value = match serde_json::from_str(HEALTHY) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let Some(items) = doc["items"].as_array_mut() else {
            panic!("no items")
        };
        let Some(mut old) = items.iter().find(|i| i["kind"] == "Pod").cloned() else {
            panic!("no pod")
        };
        old["metadata"]["name"] = "todo-frontend-old-abcde".into();
        old["metadata"]["deletionTimestamp"] = "2026-11-25T21:45:00Z".into();
        for c in old["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            c["status"] = "False".into();
        }
        items.push(old.clone());
        let s = snap(&doc.to_string());
        assert_eq!(
            pods_check(&s).outcome,
            Outcome::Pass,
            "{:?}",
            pods_check(&s)
        );
        // The same pod without the deletion mark is a real problem.
        let Some(last) = doc["items"].as_array_mut().and_then(|i| i.last_mut()) else {
            panic!("no items")
        };
        last["metadata"]
            .as_object_mut()
            .map(|m| m.remove("deletionTimestamp"));
        let r = pods_check(&snap(&doc.to_string()));
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!(
            r.detail.contains("todo-frontend-old-abcde is not Ready"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn install_budget() {
        let s = snap(HEALTHY);
        assert_eq!(
            install_check(&s).detail,
            "todo-backend 12s, todo-frontend 12s"
        );
        let pad = " ".repeat(24);
        let slow = HEALTHY.replacen(
            &format!("\"lastTransitionTime\": \"2026-11-25T21:40:15Z\",\n{pad}\"lastUpdateTime\""),
            &format!("\"lastTransitionTime\": \"2026-11-25T21:42:15Z\",\n{pad}\"lastUpdateTime\""),
            1,
        );
        let r = install_check(&snap(&slow));
        assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
        assert!(r.detail.contains("available after 132s"), "{}", r.detail);
        let upgraded = HEALTHY.replace("\"generation\": 1,", "\"generation\": 2,");
        assert_eq!(install_check(&snap(&upgraded)).outcome, Outcome::Skip);
    }

    #[test]
    fn health_budget() {
        assert_eq!(
            health_result("b", true, Duration::from_millis(40), "").outcome,
            Outcome::Pass
        );
        assert_eq!(
            health_result("b", true, Duration::from_millis(2500), "").outcome,
            Outcome::Fail
        );
        assert_eq!(
            health_result("b", false, Duration::from_millis(5), "503").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn backend_dns_from_frontend_health() {
        let ok = r#"{"status":"ok","backend":{"url":"http://todo-backend:8000","reachable":true,"status":200,"latency_ms":3,"error":null}}"#;
        assert_eq!(backend_dns_check(ok).outcome, Outcome::Pass);
        let down = r#"{"status":"degraded","backend":{"url":"http://todo-backend:8000","reachable":false,"status":null,"latency_ms":1001,"error":"connection refused"}}"#;
        let r = backend_dns_check(down);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.detail.contains("connection refused"));
        let by_ip = r#"{"status":"ok","backend":{"url":"http://10.96.120.15:8000","reachable":true,"status":200,"latency_ms":3,"error":null}}"#;
        assert_eq!(backend_dns_check(by_ip).outcome, Outcome::Fail);
    }

    #[test]
    fn helm_test_outcomes() {
        let ok = "NAME: todo-backend\nLAST DEPLOYED: Wed Nov 25 21:40:03 2026\nNAMESPACE: todo\nSTATUS: deployed\nREVISION: 1\nTEST SUITE:     todo-backend-test-health\nLast Started:   Wed Nov 25 21:42:00 2026\nLast Completed: Wed Nov 25 21:42:04 2026\nPhase:          Succeeded\n";
        assert_eq!(
            helm_test_result("todo-backend", 0, ok, "").detail,
            "Phase:          Succeeded"
        );
        let bad = helm_test_result(
            "todo-backend",
            1,
            "",
            "Error: 1 error occurred:\n\t* pod todo-backend-test-health failed\n",
        );
        assert_eq!(bad.outcome, Outcome::Fail);
        assert_eq!(bad.detail, "\t* pod todo-backend-test-health failed");
    }
}
