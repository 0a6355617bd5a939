//! Pod analyzers: scheduling, image pulls, crash loops, OOM kills, config errors, probes.

use super::finding::{Finding, Severity};
use super::snapshot::Snapshot;
use crate::kube::{ContainerStateTerminated, ContainerStatus, Pod};

/// Runs every pod analyzer over every pod.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for pod in &snap.pods {
        out.extend(unschedulable(pod));
        for cs in pod.all_statuses() {
            out.extend(image_pull(snap, pod, cs));
            out.extend(config_error(pod, cs));
            out.extend(oom_killed(pod, cs));
            out.extend(crash_loop(snap, pod, cs));
        }
        // A pod a rollout is stopping fails its readiness probe on purpose while it drains.
        if pod.metadata.deletion_timestamp.is_none() {
            out.extend(failing_probes(snap, pod));
        }
    }
    out
}

fn object(pod: &Pod) -> String {
    format!("Pod/{}", pod.metadata.name)
}

/// A pending pod the scheduler cannot place, with the scheduler's own message.
pub fn unschedulable(pod: &Pod) -> Option<Finding> {
    if pod.status.phase != "Pending" {
        return None;
    }
    let cond = pod.condition("PodScheduled").filter(|c| !c.is_true())?;
    let message = cond.message.clone().unwrap_or_default();
    let fix = if message.contains("Insufficient cpu") || message.contains("Insufficient memory") {
        "lower resources.requests in helm/<chart>/values-dev.yaml, or give the cluster more: \
         `minikube delete -p <profile>` then `minikube start -p <profile> --cpus 4 --memory 6g`"
    } else if message.contains("Insufficient") {
        "the pod requests a resource no node offers: remove that request from the chart values"
    } else if message.contains("affinity")
        || message.contains("selector")
        || message.contains("taint")
    {
        "the pod's nodeSelector/affinity/tolerations match no node: remove them from the values for Minikube"
    } else if message.contains("persistentvolumeclaim") {
        "a PersistentVolumeClaim is not bound: see the PVC finding"
    } else {
        "read the scheduler message; `kubectl describe pod` shows the full scheduling history"
    };
    Some(Finding {
        severity: Severity::Critical,
        analyzer: "pod-unschedulable",
        object: object(pod),
        what: "the pod cannot be scheduled on any node".into(),
        evidence: vec![format!(
            "PodScheduled=False reason={}: {message}",
            cond.reason.as_deref().unwrap_or("-")
        )],
        fix: fix.into(),
        terminal: true,
    })
}

/// Image pull failures; `ErrImageNeverPull` means the image was never loaded into the cluster.
pub fn image_pull(snap: &Snapshot, pod: &Pod, cs: &ContainerStatus) -> Option<Finding> {
    let waiting = cs.state.waiting.as_ref()?;
    let reason = waiting.reason.as_str();
    if !matches!(
        reason,
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName"
    ) {
        return None;
    }
    let image = pod
        .container(&cs.name)
        .map(|c| c.image.clone())
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| cs.image.clone());
    let ours = image.starts_with("todo-backend:") || image.starts_with("todo-frontend:");
    let profile = if snap.profile.is_empty() {
        "<profile>"
    } else {
        &snap.profile
    };
    let (analyzer, what, fix) = if reason == "ErrImageNeverPull" || ours {
        (
            "image-not-loaded",
            format!("image {image} is not loaded into the cluster"),
            format!(
                "run `cargo xtask deploy` (it builds and loads the images), or load it by hand: \
                 `minikube -p {profile} image load {image}`"
            ),
        )
    } else if reason == "InvalidImageName" {
        (
            "image-invalid",
            format!("image reference {image} is not valid"),
            "fix image.repository / image.tag in the chart values".to_string(),
        )
    } else {
        (
            "image-pull",
            format!("image {image} cannot be pulled"),
            format!(
                "no registry is reachable from the cluster: load the image instead \
                 (`minikube -p {profile} image load {image}`) or fix the reference"
            ),
        )
    };
    let mut evidence = vec![format!(
        "container {} waiting: {reason}: {}",
        cs.name,
        waiting.message.as_deref().unwrap_or("")
    )];
    if let Some(policy) = pod
        .container(&cs.name)
        .and_then(|c| c.image_pull_policy.as_deref())
    {
        evidence.push(format!("imagePullPolicy: {policy}"));
    }
    Some(Finding {
        severity: Severity::Critical,
        analyzer,
        object: object(pod),
        what,
        evidence,
        fix,
        terminal: true,
    })
}

/// `CreateContainerConfigError`: usually a missing Secret or key; names it.
pub fn config_error(pod: &Pod, cs: &ContainerStatus) -> Option<Finding> {
    let waiting = cs
        .state
        .waiting
        .as_ref()
        .filter(|w| w.reason == "CreateContainerConfigError")?;
    let message = waiting.message.clone().unwrap_or_default();
    let mut evidence = vec![format!(
        "container {} waiting: CreateContainerConfigError: {message}",
        cs.name
    )];
    let what = match missing_secret_key(&message) {
        Some((key, secret)) => {
            if let Some(var) = env_var_for_key(pod, &cs.name, &key) {
                evidence.push(format!("env {var} reads key {key} of Secret {secret}"));
            }
            format!("Secret {secret} has no key {key}")
        }
        None => "the container's configuration references something missing".to_string(),
    };
    Some(Finding {
        severity: Severity::Critical,
        analyzer: "container-config",
        object: object(pod),
        what,
        evidence,
        fix: "`cargo xtask deploy` writes the backend Secret (DATABASE_URL, AUTH_SECRET, OPENAI_API_KEY); \
              with secrets.existingSecret, add the missing key to that Secret"
            .into(),
        terminal: true,
    })
}

/// Parses kubelet's `couldn't find key K in Secret NS/NAME`.
fn missing_secret_key(message: &str) -> Option<(String, String)> {
    let rest = message.split("couldn't find key ").nth(1)?;
    let (key, rest) = rest.split_once(" in Secret ")?;
    let secret = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    Some((key.to_string(), secret.to_string()))
}

fn env_var_for_key(pod: &Pod, container: &str, key: &str) -> Option<String> {
    pod.container(container)?
        .env
        .iter()
        .find(|e| {
            e.value_from
                .as_ref()
                .and_then(|v| v.pointer("/secretKeyRef/key"))
                .and_then(|k| k.as_str())
                == Some(key)
        })
        .map(|e| e.name.clone())
}

fn terminated_oom(t: &Option<ContainerStateTerminated>) -> Option<&ContainerStateTerminated> {
    t.as_ref()
        .filter(|t| t.reason.as_deref() == Some("OOMKilled"))
}

/// A container killed for exceeding its memory limit, now or before its last restart.
pub fn oom_killed(pod: &Pod, cs: &ContainerStatus) -> Option<Finding> {
    let t = terminated_oom(&cs.state.terminated)
        .or_else(|| terminated_oom(&cs.last_state.terminated))?;
    Some(Finding {
        severity: Severity::Critical,
        analyzer: "oom-killed",
        object: object(pod),
        what: format!("container {} was killed for using more memory than its limit", cs.name),
        evidence: vec![format!(
            "terminated: OOMKilled, exit code {} ({}), restarts {}",
            t.exit_code,
            exit_code_meaning(t.exit_code),
            cs.restart_count
        )],
        fix: "raise resources.limits.memory in helm/<chart>/values.yaml (or values-dev.yaml) and redeploy".into(),
        terminal: true,
    })
}

/// A container that keeps exiting: exit code, reason and its last log lines.
pub fn crash_loop(snap: &Snapshot, pod: &Pod, cs: &ContainerStatus) -> Option<Finding> {
    let looping = cs
        .state
        .waiting
        .as_ref()
        .is_some_and(|w| w.reason == "CrashLoopBackOff");
    let last = cs
        .last_state
        .terminated
        .as_ref()
        .or(cs.state.terminated.as_ref());
    let restarted = cs.restart_count > 0 && last.is_some();
    if !looping && !restarted {
        return None;
    }
    if last.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled")) {
        return None; // reported by `oom_killed`
    }
    let mut evidence = vec![format!("restarts: {}", cs.restart_count)];
    if let Some(t) = last {
        evidence.push(format!(
            "last exit code {} ({}), reason {}{}",
            t.exit_code,
            exit_code_meaning(t.exit_code),
            t.reason.as_deref().unwrap_or("-"),
            t.message
                .as_deref()
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        ));
    }
    let key = format!("{}/{}", pod.metadata.name, cs.name);
    if let Some(logs) = snap.logs.get(&key).filter(|l| !l.trim().is_empty()) {
        evidence.push(format!(
            "last log lines (kubectl logs --previous):\n{}",
            logs.trim_end()
        ));
    }
    Some(Finding {
        severity: Severity::Critical,
        analyzer: "crash-loop",
        object: object(pod),
        what: format!("container {} keeps crashing", cs.name),
        evidence,
        fix: format!(
            "read the logs: `kubectl logs -n {} {} -c {} --previous`; a missing or wrong \
             DATABASE_URL/AUTH_SECRET is the usual cause for the backend",
            ns(snap),
            pod.metadata.name,
            cs.name
        ),
        terminal: looping,
    })
}

fn ns(snap: &Snapshot) -> &str {
    if snap.namespace.is_empty() {
        "todo"
    } else {
        &snap.namespace
    }
}

/// What a container exit code usually means.
pub fn exit_code_meaning(code: i32) -> &'static str {
    match code {
        0 => "exited normally",
        1 => "application error",
        2 => "misuse of a shell builtin or bad arguments",
        126 => "command not executable",
        127 => "command not found",
        128 => "invalid exit argument",
        134 => "SIGABRT: aborted (a panic with panic=abort)",
        137 => "SIGKILL: killed, often by the OOM killer or a failed liveness probe",
        139 => "SIGSEGV: segmentation fault",
        143 => "SIGTERM: asked to stop",
        c if c > 128 => "killed by a signal",
        _ => "application error",
    }
}

/// Probes failing (`Unhealthy` events), with the probe's path from the pod spec.
pub fn failing_probes(snap: &Snapshot, pod: &Pod) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for ev in snap
        .events_for("Pod", &pod.metadata.name)
        .filter(|e| e.reason == "Unhealthy" && e.is_warning())
    {
        let kind = ev
            .message
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let container_name = ev
            .container()
            .map(str::to_string)
            .or_else(|| pod.spec.containers.first().map(|c| c.name.clone()))
            .unwrap_or_default();
        let probe = pod
            .container(&container_name)
            .and_then(|c| match kind.as_str() {
                "Liveness" => c.liveness_probe.as_ref(),
                "Readiness" => c.readiness_probe.as_ref(),
                "Startup" => c.startup_probe.as_ref(),
                _ => None,
            });
        let probe_desc = probe
            .and_then(|p| p.http_get.as_ref())
            .map(|h| h.describe())
            .unwrap_or_else(|| "a non-HTTP probe".into());
        let analyzer = "probe-failing";
        let obj = object(pod);
        let what = format!(
            "{} probe of container {container_name} fails ({probe_desc})",
            kind.to_lowercase()
        );
        if out.iter().any(|f| f.what == what) {
            continue;
        }
        let mut evidence = vec![format!(
            "{}x {}",
            ev.count.unwrap_or(1),
            ev.message.trim_end_matches([' ', ':'])
        )];
        if let Some(p) = probe {
            evidence.push(format!(
                "probe: {probe_desc}, timeout {}s, failureThreshold {}",
                p.timeout_seconds.unwrap_or(1),
                p.failure_threshold.unwrap_or(3)
            ));
        }
        let ready = pod.is_ready();
        let persistent = !ready && probe_failing_for_good(ev);
        if persistent {
            evidence.push(format!(
                "failing for {}s or more: waiting longer will not help",
                PROBE_GIVE_UP.as_secs()
            ));
        }
        out.push(Finding {
            severity: if ready { Severity::Warning } else { Severity::Critical },
            analyzer,
            object: obj,
            what,
            evidence,
            fix: match kind.as_str() {
                "Readiness" => "the backend's /ready answers 503 while PostgreSQL is unreachable: check the \
                                database pod and DATABASE_URL; otherwise check the probe path/port in the chart"
                    .into(),
                _ => "check that the probe path and port match the app (backend GET /health :8000, frontend \
                      GET /health and /api/health :3000); raise initialDelaySeconds/timeoutSeconds if the app starts slowly"
                    .into(),
            },
            terminal: persistent,
        });
    }
    out
}

/// How long a probe may keep failing on a pod that is not ready before the rollout is called
/// failed: longer than the plan's 30 s pod-ready budget plus a slow first database start.
pub const PROBE_GIVE_UP: std::time::Duration = std::time::Duration::from_secs(60);

/// True when an `Unhealthy` event shows the probe failing for at least [`PROBE_GIVE_UP`]
/// (first to last occurrence), so a probe that only fails while the database starts is not fatal.
fn probe_failing_for_good(ev: &crate::kube::Event) -> bool {
    use crate::kube::rfc3339_secs;
    let first = ev.first_timestamp.as_deref().and_then(rfc3339_secs);
    let last = ev.last_timestamp.as_deref().and_then(rfc3339_secs);
    match (first, last) {
        (Some(f), Some(l)) => l - f >= PROBE_GIVE_UP.as_secs() as i64,
        _ => false,
    }
}
