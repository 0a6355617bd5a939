//! Pods: spec (containers, probes, env) and status (phase, conditions, container states).

use serde::Deserialize;

use super::meta::{Condition, ObjectMeta};

/// A Pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Desired state.
    pub spec: PodSpec,
    /// Observed state.
    pub status: PodStatus,
}

/// `spec` of a Pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// App containers.
    pub containers: Vec<Container>,
    /// Init containers.
    pub init_containers: Vec<Container>,
    /// Node the scheduler picked, if any.
    pub node_name: Option<String>,
}

/// A container of a pod spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Pull policy (`IfNotPresent`, `Never`, `Always`).
    pub image_pull_policy: Option<String>,
    /// Liveness probe.
    pub liveness_probe: Option<Probe>,
    /// Readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Startup probe.
    pub startup_probe: Option<Probe>,
    /// Environment (only names and references are read, never values).
    pub env: Vec<EnvVar>,
}

/// A probe; only HTTP probes carry a path.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    /// HTTP GET action.
    pub http_get: Option<HttpGetAction>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: Option<u32>,
    /// Probe timeout.
    pub timeout_seconds: Option<u32>,
    /// Failures before the probe counts as failed.
    pub failure_threshold: Option<u32>,
}

/// `httpGet` of a probe.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HttpGetAction {
    /// Request path.
    pub path: Option<String>,
    /// Port: a number or a named port.
    pub port: serde_json::Value,
}

impl HttpGetAction {
    /// `path` on `port`, as a human reads it.
    pub fn describe(&self) -> String {
        let port = match &self.port {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!(
            "GET {} on port {}",
            self.path.as_deref().unwrap_or("/"),
            port
        )
    }
}

/// An environment variable; `value_from` says where a secret comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Source reference.
    pub value_from: Option<serde_json::Value>,
}

/// `status` of a Pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    /// Conditions (`PodScheduled`, `Ready`, ...).
    pub conditions: Vec<Condition>,
    /// App container statuses.
    pub container_statuses: Vec<ContainerStatus>,
    /// Init container statuses.
    pub init_container_statuses: Vec<ContainerStatus>,
    /// Pod-level reason (e.g. `Evicted`).
    pub reason: Option<String>,
    /// Pod-level message.
    pub message: Option<String>,
}

impl Pod {
    /// The condition of this type, if reported.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// True when the `Ready` condition is `True`.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(Condition::is_true)
    }

    /// The spec of the named container (app or init).
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.spec
            .containers
            .iter()
            .chain(&self.spec.init_containers)
            .find(|c| c.name == name)
    }

    /// All container statuses, init containers first.
    pub fn all_statuses(&self) -> impl Iterator<Item = &ContainerStatus> {
        self.status
            .init_container_statuses
            .iter()
            .chain(&self.status.container_statuses)
    }
}

/// Status of one container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Current state.
    pub state: ContainerState,
    /// State before the last restart.
    pub last_state: ContainerState,
    /// Readiness.
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: u32,
    /// Image as the runtime reports it.
    pub image: String,
}

/// One of waiting / running / terminated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ContainerState {
    /// Waiting (e.g. CrashLoopBackOff).
    pub waiting: Option<ContainerStateWaiting>,
    /// Running since.
    pub running: Option<serde_json::Value>,
    /// Terminated with an exit code.
    pub terminated: Option<ContainerStateTerminated>,
}

/// `state.waiting`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ContainerStateWaiting {
    /// Reason such as `ImagePullBackOff`.
    pub reason: String,
    /// Kubelet message.
    pub message: Option<String>,
}

/// `state.terminated`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStateTerminated {
    /// Process exit code.
    pub exit_code: i32,
    /// Reason such as `OOMKilled`, `Error`, `Completed`.
    pub reason: Option<String>,
    /// Runtime message.
    pub message: Option<String>,
}
