//! The double's cluster state: what the CLIs asked for (`desired.json`, written under a lock by
//! minikube/helm/kubectl) and what the supervisor observed on Docker (`observed.json`, one writer).

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Env var naming the directory that holds the double's state.
pub const STATE_ENV: &str = "TODO_CLUSTER_DOUBLE_STATE";

/// The state directory, from [`STATE_ENV`].
pub fn state_dir() -> Result<PathBuf> {
    let dir = std::env::var_os(STATE_ENV)
        .map(PathBuf::from)
        .with_context(|| {
            format!("{STATE_ENV} is not set: the cluster double needs a state directory")
        })?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A short stable id of a state dir, used to label the Docker objects it owns.
pub fn state_id(dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// Whether a minikube profile is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    /// `minikube start` ran.
    Running,
    /// `minikube stop` ran.
    Stopped,
}

/// A minikube profile (the double runs one node per profile, backed by the local Docker engine).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Running or stopped.
    pub host: HostState,
    /// `docker` or `containerd`.
    pub runtime: String,
    /// CPUs given at start.
    pub cpus: u32,
    /// Memory in MB given at start.
    pub memory_mb: u64,
    /// Kubernetes version reported.
    pub kubernetes_version: String,
    /// Images loaded with `minikube image load` (normalised `repo:tag`).
    pub loaded_images: BTreeSet<String>,
}

/// A namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// Object uid.
    pub uid: String,
}

/// One helm release revision (what `helm history` lists).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    /// 1-based revision number.
    pub revision: u32,
    /// deployed, superseded, failed, pending-install, pending-upgrade, pending-rollback, uninstalled.
    pub status: String,
    /// `name-version` of the chart.
    pub chart: String,
    /// Chart appVersion.
    pub app_version: String,
    /// Last change.
    pub updated: DateTime<Utc>,
    /// When the release was first deployed.
    pub first_deployed: DateTime<Utc>,
    /// "Install complete", "Upgrade complete", "Rollback to N", ...
    pub description: String,
    /// The rendered non-hook manifest.
    pub manifest: String,
    /// The rendered test hooks.
    pub hooks: String,
    /// Rendered NOTES.txt.
    pub notes: String,
}

/// A helm release.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// All revisions, oldest first.
    pub revisions: Vec<Revision>,
    /// The manifest currently applied to the cluster (None once uninstalled).
    pub applied: Option<String>,
}

impl Release {
    /// The newest revision.
    pub fn latest(&self) -> Option<&Revision> {
        self.revisions.last()
    }
}

/// Everything the CLIs asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Desired {
    /// Bumped on every change the supervisor must act on.
    pub generation: u64,
    /// The kube context `minikube start` made current (tests check the xtask never relies on it).
    pub current_context: Option<String>,
    /// Profiles by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Namespaces by name (per cluster: the double runs a single cluster per state dir).
    pub namespaces: BTreeMap<String, Namespace>,
    /// Releases keyed `namespace/name`.
    pub releases: BTreeMap<String, Release>,
    /// Pods `kubectl delete pod` asked to remove (`namespace/name`).
    pub pod_deletions: BTreeSet<String>,
    /// `kubectl scale` overrides keyed `namespace/Kind/name`.
    #[serde(default)]
    pub scale: BTreeMap<String, u32>,
    /// Objects left in each namespace by `helm uninstall` (or an upgrade that no longer renders them) because
    /// they carry `helm.sh/resource-policy: keep`, with helm's ownership metadata (see `keep`).
    #[serde(default)]
    pub kept: BTreeMap<String, Vec<serde_json::Value>>,
}

impl Desired {
    /// The profile whose kube context is `ctx`, or the current context's.
    pub fn profile_for_context(&self, ctx: Option<&str>) -> Option<(&String, &Profile)> {
        let name = ctx
            .map(str::to_string)
            .or_else(|| self.current_context.clone())?;
        self.profiles.get_key_value(&name)
    }
}

/// A container's state as the kubelet reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Not running yet or backing off.
    Waiting {
        /// ContainerCreating, CrashLoopBackOff, ErrImageNeverPull, ...
        reason: String,
        /// Human text.
        message: String,
    },
    /// Running since.
    Running {
        /// Start time.
        started_at: DateTime<Utc>,
    },
    /// Exited.
    Terminated {
        /// Exit code.
        exit_code: i64,
        /// Completed, Error, OOMKilled.
        reason: String,
        /// Start time.
        started_at: Option<DateTime<Utc>>,
        /// End time.
        finished_at: Option<DateTime<Utc>>,
        /// Docker id.
        container_id: String,
    },
}

/// A pod realised as a Docker container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodRecord {
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// uid.
    pub uid: String,
    /// Deployment or StatefulSet.
    pub owner_kind: String,
    /// Owner name.
    pub owner_name: String,
    /// pod-template-hash of the template it runs.
    pub template_hash: String,
    /// Labels (template labels + pod-template-hash).
    pub labels: BTreeMap<String, String>,
    /// Template annotations.
    pub annotations: BTreeMap<String, String>,
    /// Creation time.
    pub created: DateTime<Utc>,
    /// The rendered pod spec (as JSON) for `kubectl get pod -o json`.
    pub spec: serde_json::Value,
    /// Name of the (single realised) container.
    pub container_name: String,
    /// Image reference.
    pub image: String,
    /// Docker container id, once created.
    pub container_id: Option<String>,
    /// Docker image id.
    pub image_id: Option<String>,
    /// Current state.
    pub state: ContainerState,
    /// Previous termination.
    pub last_state: Option<ContainerState>,
    /// Restarts so far.
    pub restart_count: u32,
    /// Readiness.
    pub ready: bool,
    /// Time Ready last changed.
    pub ready_since: DateTime<Utc>,
    /// IP on the namespace network.
    pub ip: Option<String>,
    /// Network aliases it was connected with.
    pub aliases: Vec<String>,
    /// Set once the pod is being deleted.
    pub terminating: bool,
}

/// A Kubernetes event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// Namespace.
    pub namespace: String,
    /// Pod, Deployment, ...
    pub kind: String,
    /// Object name.
    pub name: String,
    /// Scheduled, Pulled, Started, Unhealthy, BackOff, Failed, Killing, ...
    pub reason: String,
    /// Human text.
    pub message: String,
    /// Normal or Warning.
    pub type_: String,
    /// Repeats.
    pub count: u32,
    /// First seen.
    pub first: DateTime<Utc>,
    /// Last seen.
    pub last: DateTime<Utc>,
}

/// What the supervisor sees on Docker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Observed {
    /// The desired generation this observation reflects.
    pub generation_seen: u64,
    /// Pods.
    pub pods: Vec<PodRecord>,
    /// Events, newest last.
    pub events: Vec<EventRecord>,
    /// Namespaces that have a Docker network now.
    pub networks: BTreeSet<String>,
    /// Heartbeat.
    pub updated: Option<DateTime<Utc>>,
}

/// Writes `bytes` to `path` atomically (temp file + rename), mode 0600: the state holds secrets.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T> {
    match fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads the desired state without locking (writes are atomic).
pub fn read_desired(dir: &Path) -> Result<Desired> {
    read_json(&dir.join("desired.json"))
}

/// Reads the observed state.
pub fn read_observed(dir: &Path) -> Result<Observed> {
    read_json(&dir.join("observed.json"))
}

/// Writes the observed state (supervisor only).
pub fn write_observed(dir: &Path, obs: &Observed) -> Result<()> {
    write_atomic(&dir.join("observed.json"), &serde_json::to_vec(obs)?)
}

/// Read-modify-write of the desired state under an exclusive flock.
pub fn update_desired<T>(dir: &Path, f: impl FnOnce(&mut Desired) -> Result<T>) -> Result<T> {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("desired.lock"))
        .context("opening the state lock")?;
    // SAFETY: flock on a valid, owned file descriptor.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        anyhow::bail!(
            "locking the double's state: {}",
            std::io::Error::last_os_error()
        );
    }
    let mut desired = read_desired(dir)?;
    let out = f(&mut desired)?;
    write_atomic(
        &dir.join("desired.json"),
        &serde_json::to_vec_pretty(&desired)?,
    )?;
    drop(lock);
    Ok(out)
}

/// Appends one invocation to `calls.log` so tests can assert what the xtask ran.
pub fn record_call(tool: &str, args: &[String]) {
    let Ok(dir) = state_dir() else { return };
    let line = serde_json::json!({"tool": tool, "args": args, "at": Utc::now().to_rfc3339()});
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("calls.log"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// Reads `calls.log` back as (tool, args) pairs.
pub fn read_calls(dir: &Path) -> Vec<(String, Vec<String>)> {
    let text = fs::read_to_string(dir.join("calls.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let tool = v["tool"].as_str().unwrap_or_default().to_string();
            let args = v["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (tool, args)
        })
        .collect()
}

/// A fresh uid-like string.
pub fn new_uid() -> String {
    use sha2::{Digest, Sha256};
    let seed = format!(
        "{:?}{}{:?}",
        std::time::SystemTime::now(),
        std::process::id(),
        std::thread::current().id()
    );
    let h: String = Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A short random suffix like the ReplicaSet controller's.
pub fn pod_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let uid = new_uid();
    uid.bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .take(5)
        .map(|b| ALPHABET[(b as usize) % ALPHABET.len()] as char)
        .collect()
}
