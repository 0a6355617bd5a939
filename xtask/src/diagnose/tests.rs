//! Each analyzer against a fixture that triggers it and the healthy release where it stays silent.

use super::pods::exit_code_meaning;
use super::*;
use crate::kube::{parse_items, Event, Pod};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/kubectl/", $name))
    };
}

fn snap(json: &str) -> Snapshot {
    match snapshot_from_json(json, "todo", "todo") {
        Ok(s) => s,
        Err(e) => panic!("fixture does not parse: {e:#}"),
    }
}

fn analyzers(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.analyzer).collect()
}

fn only(findings: &[Finding], analyzer: &str) -> Finding {
    let hits: Vec<_> = findings.iter().filter(|f| f.analyzer == analyzer).collect();
    assert_eq!(
        hits.len(),
        1,
        "want one {analyzer} finding, got {:?}",
        analyzers(findings)
    );
    hits[0].clone()
}

#[test]
fn healthy_release_has_no_findings() {
    let s = snap(fixture!("release-healthy.json"));
    assert_eq!(
        (s.pods.len(), s.deployments.len(), s.services.len()),
        (2, 2, 2)
    );
    assert_eq!(
        (s.endpoints.len(), s.endpoint_slices.len(), s.pvcs.len()),
        (2, 2, 1)
    );
    assert!(!s.events.is_empty());
    let f = analyze(&s);
    assert!(f.is_empty(), "{}", render(&f, "todo"));
    assert!(classify_rollout(&s.pods, &s.events).is_none());
}

#[test]
fn upstream_running_pod_is_silent() {
    let s = snap(fixture!("upstream-pods-running-ready.json"));
    assert!(analyze(&s).is_empty());
}

#[test]
fn image_missing_from_the_cluster_says_load_it() {
    for file in [
        fixture!("release-image-not-loaded.json"),
        fixture!("release-image-never-pull.json"),
    ] {
        let f = analyze(&snap(file));
        let hit = only(&f, "image-not-loaded");
        assert_eq!(hit.severity, Severity::Critical);
        assert!(
            hit.what.contains("todo-backend:3f9a1c2b7d4e"),
            "{}",
            hit.what
        );
        assert!(hit.fix.contains("cargo xtask deploy"), "{}", hit.fix);
        assert!(
            hit.fix
                .contains("minikube -p todo image load todo-backend:3f9a1c2b7d4e"),
            "{}",
            hit.fix
        );
        assert!(hit.terminal);
    }
    let never = analyze(&snap(fixture!("release-image-never-pull.json")));
    assert!(only(&never, "image-not-loaded")
        .evidence
        .iter()
        .any(|e| e.contains("ErrImageNeverPull")));
}

#[test]
fn foreign_image_pull_failure_is_an_image_pull_finding() {
    let f = analyze(&snap(fixture!("upstream-pods-errimagepull.json")));
    let hit = only(&f, "image-pull");
    assert!(
        hit.what.contains("noimage.com/no-such-image"),
        "{}",
        hit.what
    );
    assert!(hit.evidence[0].contains("x509"), "{:?}", hit.evidence);
    let f = analyze(&snap(fixture!("upstream-pod-imagepullbackoff.json")));
    assert!(only(&f, "image-pull").what.contains("golan:1.14"));
}

#[test]
fn crash_loop_reports_exit_code_and_logs() {
    let mut s = snap(fixture!("release-crash-loop.json"));
    let pod = s.pods[0].metadata.name.clone();
    s.logs.insert(
        format!("{pod}/backend"),
        "Error: configuration: DATABASE_URL is not set\n".into(),
    );
    let f = analyze(&s);
    let hit = only(&f, "crash-loop");
    let text = hit.evidence.join("\n");
    assert!(text.contains("restarts: 5"), "{text}");
    assert!(
        text.contains("last exit code 1 (application error), reason Error"),
        "{text}"
    );
    assert!(text.contains("DATABASE_URL is not set"), "{text}");
    assert!(
        hit.fix
            .contains(&format!("kubectl logs -n todo {pod} -c backend --previous")),
        "{}",
        hit.fix
    );
    assert!(analyzers(&f).contains(&"deployment-replicas"));
    assert!(analyzers(&f).contains(&"service-endpoints"));
}

#[test]
fn upstream_crash_loop_exit_127() {
    let f = analyze(&snap(fixture!("upstream-pods-crashloopbackoff.json")));
    let hit = only(&f, "crash-loop");
    assert!(
        hit.evidence
            .iter()
            .any(|e| e.contains("127 (command not found)")),
        "{:?}",
        hit.evidence
    );
}

#[test]
fn oom_killed_is_reported_once_not_as_a_crash() {
    let f = analyze(&snap(fixture!("release-oom-killed.json")));
    let hit = only(&f, "oom-killed");
    assert!(
        hit.evidence[0].contains("exit code 137"),
        "{:?}",
        hit.evidence
    );
    assert!(hit.fix.contains("resources.limits.memory"));
    assert!(!analyzers(&f).contains(&"crash-loop"));
    // The upstream capture: a Job pod whose current state is terminated/OOMKilled.
    let f = analyze(&snap(fixture!("upstream-pods-oomkilled.json")));
    only(&f, "oom-killed");
}

#[test]
fn config_error_names_the_missing_secret_key() {
    let f = analyze(&snap(fixture!("release-config-error.json")));
    let hit = only(&f, "container-config");
    assert_eq!(hit.what, "Secret todo/todo-backend has no key AUTH_SECRET");
    assert!(hit
        .evidence
        .iter()
        .any(|e| e == "env AUTH_SECRET reads key AUTH_SECRET of Secret todo/todo-backend"));
}

#[test]
fn failing_probe_names_its_path() {
    let f = analyze(&snap(fixture!("release-probe-failing.json")));
    let hit = only(&f, "probe-failing");
    assert!(
        hit.what
            .contains("readiness probe of container backend fails (GET /ready on port http)"),
        "{}",
        hit.what
    );
    assert!(hit.evidence[0]
        .contains("31x Readiness probe failed: HTTP probe failed with statuscode: 503"));
    assert_eq!(hit.severity, Severity::Critical);
    assert!(!hit.terminal);
    // Probes alone do not stop a rollout early: the app may still be starting.
    let s = snap(fixture!("release-probe-failing.json"));
    assert!(classify_rollout(&s.pods, &s.events).is_none());
}

#[test]
fn probe_failing_past_the_give_up_time_stops_the_rollout() {
    let with_first = |first: &str| {
        fixture!("release-probe-failing.json").replace(
            "\"lastTimestamp\": \"2026-11-25T21:40:15Z\",",
            &format!(
                "\"firstTimestamp\": \"{first}\", \"lastTimestamp\": \"2026-11-25T21:40:15Z\","
            ),
        )
    };
    // 75 s of failures on a pod that never became ready: waiting longer will not help.
    let s = snap(&with_first("2026-11-25T21:39:00Z"));
    let hit = classify_rollout(&s.pods, &s.events);
    let hit = hit.as_ref().map(|f| (f.analyzer, f.what.clone()));
    assert_eq!(hit.as_ref().map(|h| h.0), Some("probe-failing"), "{hit:?}");
    assert!(hit.is_some_and(|h| h.1.contains("GET /ready")));
    // 15 s of failures is a slow start (the database coming up), not a failure.
    let s = snap(&with_first("2026-11-25T21:40:00Z"));
    assert!(classify_rollout(&s.pods, &s.events).is_none());
}

#[test]
fn deployment_below_desired_replicas() {
    let f = analyze(&snap(fixture!("release-crash-loop.json")));
    let hit = only(&f, "deployment-replicas");
    assert_eq!(hit.object, "Deployment/todo-backend");
    assert_eq!(hit.what, "0 of 1 replicas ready");
    assert!(hit
        .evidence
        .iter()
        .any(|e| e.contains("MinimumReplicasUnavailable")));
    let f = analyze(&snap(fixture!(
        "upstream-deploy-progress-deadline-exceeded.json"
    )));
    let hit = only(&f, "deployment-replicas");
    assert!(hit.terminal, "ProgressDeadlineExceeded is final");
    assert!(hit
        .evidence
        .iter()
        .any(|e| e.contains("ProgressDeadlineExceeded")));
}

#[test]
fn service_without_endpoints_shows_the_selector() {
    let f = analyze(&snap(fixture!("release-service-no-endpoints.json")));
    let hit = only(&f, "service-endpoints");
    assert_eq!(hit.object, "Service/todo-frontend");
    assert_eq!(
        hit.what,
        "no pod matches the selector app.kubernetes.io/instance=todo-frontend,app.kubernetes.io/name=frontend"
    );
    assert_eq!(f.len(), 1, "{}", render(&f, "todo"));
}

#[test]
fn service_with_unready_pods_points_at_them() {
    let f = analyze(&snap(fixture!("release-probe-failing.json")));
    let hit = only(&f, "service-endpoints");
    assert!(hit.what.starts_with("1 pod(s) match"), "{}", hit.what);
}

#[test]
fn pending_pvc_shows_the_provisioner_error() {
    let f = analyze(&snap(fixture!("release-pvc-pending.json")));
    let hit = only(&f, "pvc-pending");
    assert!(hit
        .evidence
        .iter()
        .any(|e| e.contains("storageclass.storage.k8s.io \"standard\" not found")));
    assert!(hit
        .fix
        .contains("minikube -p todo addons enable storage-provisioner"));
    assert!(
        !analyzers(&f).contains(&"warning-event"),
        "the PVC's event is explained already"
    );
}

#[test]
fn unschedulable_pod_quotes_the_scheduler() {
    let f = analyze(&snap(fixture!("release-unschedulable.json")));
    let hit = only(&f, "pod-unschedulable");
    assert!(
        hit.evidence[0].contains("1 Insufficient memory"),
        "{:?}",
        hit.evidence
    );
    assert!(hit.fix.contains("--memory"), "{}", hit.fix);
    let f = analyze(&snap(fixture!(
        "upstream-pods-pending-unschedulable-insufficient-gpu.json"
    )));
    assert!(only(&f, "pod-unschedulable").evidence[0].contains("nvidia.com/gpu"));
}

#[test]
fn unexplained_warning_events_are_reported() {
    let f = analyze(&snap(fixture!("release-warning-event.json")));
    let hit = only(&f, "warning-event");
    assert_eq!(hit.object, "Pod/todo-backend-postgresql-0");
    assert_eq!(hit.severity, Severity::Info);
    assert!(hit.evidence[0].starts_with("2x"), "{:?}", hit.evidence);
}

#[test]
fn upstream_event_list_parses_and_groups() {
    let s = snap(fixture!("upstream-events-full-minikube.json"));
    assert!(s.events.len() > 50);
    let f = analyze(&s);
    // An events-only fixture has no pods: the namespace counts as empty too.
    let events: Vec<_> = f.iter().filter(|x| x.analyzer == "warning-event").collect();
    assert!(!events.is_empty() && events.len() <= 10);
    assert_eq!(f.len(), events.len() + 1, "{}", render(&f, "todo"));
}

#[test]
fn classify_rollout_picks_terminal_failures() {
    for (file, want) in [
        (
            fixture!("release-image-never-pull.json"),
            "image-not-loaded",
        ),
        (fixture!("release-config-error.json"), "container-config"),
        (fixture!("release-crash-loop.json"), "crash-loop"),
        (fixture!("release-oom-killed.json"), "oom-killed"),
        (fixture!("release-unschedulable.json"), "pod-unschedulable"),
    ] {
        let pods: Vec<Pod> = parse_items::<serde_json::Value>(file)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v["kind"] == "Pod")
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let events: Vec<Event> = Vec::new();
        let got = classify_rollout(&pods, &events).map(|f| f.analyzer);
        assert_eq!(got, Some(want));
    }
}

#[test]
fn exit_codes_are_explained() {
    assert_eq!(
        exit_code_meaning(137),
        "SIGKILL: killed, often by the OOM killer or a failed liveness probe"
    );
    assert_eq!(exit_code_meaning(139), "SIGSEGV: segmentation fault");
    assert_eq!(exit_code_meaning(42), "application error");
}

#[test]
fn causes_come_before_symptoms() {
    let f = analyze(&snap(fixture!("release-config-error.json")));
    assert_eq!(
        analyzers(&f),
        [
            "container-config",
            "deployment-replicas",
            "service-endpoints"
        ]
    );
}

#[test]
fn empty_namespace_says_deploy() {
    let empty = "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n";
    let f = analyze(&snap(empty));
    let hit = only(&f, "nothing-deployed");
    assert_eq!(hit.object, "Namespace/todo");
    assert!(hit.fix.contains("cargo xtask deploy"));
    assert!(analyze(&snap(fixture!("release-healthy.json")))
        .iter()
        .all(|x| x.analyzer != "nothing-deployed"));
}
