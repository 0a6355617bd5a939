//! `minikube`: status, profiles, start, docker-env, image ls/load. Every command carries `-p <profile>`.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use xshell::{cmd, Shell};

use crate::process::Call;

/// `minikube version -o json`.
pub fn version(sh: &Shell) -> Call {
    Call::query(cmd!(sh, "minikube version -o json"))
}

/// Parsed `minikube version -o json`.
#[derive(Debug, Deserialize)]
pub struct MinikubeVersion {
    /// Such as `v1.36.0`.
    #[serde(rename = "minikubeVersion")]
    pub minikube_version: String,
}

/// `minikube -p P status -o json`; the exit code is a bitmask (1 host, 2 kubelet/apiserver, 4 kubeconfig),
/// 85 = no such profile.
pub fn status(sh: &Shell, profile: &str) -> Call {
    Call::query(cmd!(sh, "minikube -p {profile} status -o json"))
}

/// Exit code of `minikube status` for a profile that does not exist.
pub const EXIT_PROFILE_NOT_FOUND: i32 = 85;

/// Bit of `minikube status`'s exit code for a kubeconfig that is not `Configured` (cmd/minikube/cmd/status.go).
pub const KUBECONFIG_BIT: i32 = 4;

/// One node of `minikube status -o json`.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeStatus {
    /// `Running`, `Stopped`, `Nonexistent`...
    #[serde(rename = "Host")]
    pub host: String,
    /// Kubelet state.
    #[serde(rename = "Kubelet")]
    pub kubelet: String,
    /// API server state.
    #[serde(rename = "APIServer")]
    pub apiserver: String,
    /// `Configured`, `Misconfigured` (no usable context or a stale endpoint), `Irrelevant` on workers.
    #[serde(rename = "Kubeconfig", default)]
    pub kubeconfig: String,
}

/// The state of a profile, derived from `minikube status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Host, kubelet and API server running, the kubeconfig entry current.
    Running,
    /// Running, but the kubeconfig has no usable context for the profile or points at an old endpoint
    /// (exit bit 4): kubectl and helm cannot reach it until `minikube update-context`.
    Misconfigured,
    /// Exists but is not (fully) running: the host state.
    Stopped(String),
    /// The profile does not exist.
    Missing,
    /// `null`: minikube (v1.35+) could not read a node's state (the driver does not answer, e.g. the Docker
    /// daemon is down under the docker driver, or the node is gone). Whether the profile exists is for
    /// `minikube profile list` to say.
    Unreadable,
}

/// Parses `minikube status -o json` (an object, an array with several nodes, or `null`) plus its exit code.
pub fn parse_status(code: i32, stdout: &str) -> Result<ClusterState> {
    if code == EXIT_PROFILE_NOT_FOUND {
        return Ok(ClusterState::Missing);
    }
    let trimmed = stdout.trim();
    // cmd/minikube/cmd/status.go statusJSON over the empty list GetStatus returns on a status error
    // (pkg/minikube/cluster/status.go, v1.35.0+): `null`, exit 0 up to v1.37, 7 since v1.38.
    if trimmed == "null" {
        return Ok(ClusterState::Unreadable);
    }
    let nodes: Vec<NodeStatus> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).context("parsing `minikube status -o json`")?
    } else if trimmed.starts_with('{') {
        // In JSON mode, a missing profile prints CloudEvents rather than a status object.
        let v: serde_json::Value = serde_json::from_str(trimmed.lines().next().unwrap_or(trimmed))
            .context("parsing `minikube status -o json`")?;
        if v.get("specversion").is_some() {
            return Ok(ClusterState::Missing);
        }
        vec![serde_json::from_str(trimmed).context("parsing `minikube status -o json`")?]
    } else {
        Vec::new()
    };
    let Some(first) = nodes.first() else {
        return Ok(ClusterState::Missing);
    };
    if first.host == "Nonexistent" {
        return Ok(ClusterState::Missing);
    }
    let running = nodes
        .iter()
        .all(|n| n.host == "Running" && n.kubelet == "Running")
        && first.apiserver == "Running";
    if !running || code & 3 != 0 {
        return Ok(ClusterState::Stopped(first.host.clone()));
    }
    let stale = code & KUBECONFIG_BIT != 0
        || nodes
            .iter()
            .any(|n| !matches!(n.kubeconfig.as_str(), "Configured" | "Irrelevant" | ""));
    Ok(if stale {
        ClusterState::Misconfigured
    } else {
        ClusterState::Running
    })
}

/// `minikube -p P update-context`: points the profile's kubeconfig entry at the running cluster. It also makes
/// the profile the current context (cmd/minikube/cmd/update-context.go), which callers put back.
pub fn update_context(sh: &Shell, profile: &str) -> Call {
    Call::change(cmd!(sh, "minikube -p {profile} update-context"))
}

/// `minikube -p P start --cpus N --memory M --keep-context`: `--keep-context` keeps the user's current context.
pub fn start(sh: &Shell, profile: &str, cpus: u32, memory_mib: u32) -> Call {
    let cpus = cpus.to_string();
    let memory = format!("{memory_mib}mb");
    Call::change(cmd!(
        sh,
        "minikube -p {profile} start --keep-context --cpus {cpus} --memory {memory}"
    ))
}

/// `minikube delete -p P` (the whole cluster).
pub fn delete(sh: &Shell, profile: &str) -> Call {
    Call::change(cmd!(sh, "minikube delete -p {profile}"))
}

/// `minikube profile list -o json`.
pub fn profile_list(sh: &Shell) -> Call {
    Call::query(cmd!(sh, "minikube profile list -o json"))
}

/// Parsed `minikube profile list -o json`.
#[derive(Debug, Deserialize)]
pub struct ProfileList {
    /// Profiles that load (broken ones are under `invalid`, not read).
    #[serde(default)]
    pub valid: Vec<Profile>,
}

/// One profile.
#[derive(Debug, Deserialize)]
pub struct Profile {
    /// Profile name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The cluster config.
    #[serde(rename = "Config")]
    pub config: Option<ProfileConfig>,
}

/// The part of a profile's config the xtask reads.
#[derive(Debug, Deserialize)]
pub struct ProfileConfig {
    /// Kubernetes settings.
    #[serde(rename = "KubernetesConfig")]
    pub kubernetes_config: KubernetesConfig,
}

/// Kubernetes settings of a profile.
#[derive(Debug, Deserialize)]
pub struct KubernetesConfig {
    /// `docker`, `containerd` or `crio`.
    #[serde(rename = "ContainerRuntime")]
    pub container_runtime: String,
}

/// The container runtime of the cluster's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Docker: images can be built straight into the node's daemon.
    Docker,
    /// containerd or cri-o: images go in with `minikube image load`.
    Other,
}

impl ProfileList {
    /// Parses the JSON.
    pub fn parse(stdout: &str) -> Result<Self> {
        serde_json::from_str(stdout.trim()).context("parsing `minikube profile list -o json`")
    }
    /// The listed profile of that name.
    pub fn get(&self, profile: &str) -> Option<&Profile> {
        self.valid.iter().find(|p| p.name == profile)
    }
    /// The runtime of `profile`, if it is listed.
    pub fn runtime_of(&self, profile: &str) -> Option<Runtime> {
        let p = self.valid.iter().find(|p| p.name == profile)?;
        let rt = &p.config.as_ref()?.kubernetes_config.container_runtime;
        Some(if rt == "docker" {
            Runtime::Docker
        } else {
            Runtime::Other
        })
    }
}

/// `minikube -p P docker-env --shell bash`.
pub fn docker_env(sh: &Shell, profile: &str) -> Call {
    Call::query(cmd!(sh, "minikube -p {profile} docker-env --shell bash"))
}

/// Parses `export K="V"` lines of `docker-env --shell bash`.
pub fn parse_docker_env(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// `minikube -p P image ls --format json`.
pub fn image_ls(sh: &Shell, profile: &str) -> Call {
    Call::query(cmd!(sh, "minikube -p {profile} image ls --format json"))
}

/// One image of `minikube image ls --format json` (`size` is a string of bytes).
#[derive(Debug, Deserialize)]
pub struct ListedImage {
    /// Tags such as `docker.io/library/todo-backend:abc`.
    #[serde(rename = "repoTags", default)]
    pub repo_tags: Vec<String>,
}

/// Parses `image ls --format json`.
pub fn parse_image_ls(stdout: &str) -> Result<Vec<ListedImage>> {
    let t = stdout.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(t).context("parsing `minikube image ls --format json`")
}

/// The names a node's runtime may list for an image loaded as `name:tag`: as given; `docker.io/library/...`
/// (docker through minikube's AddDockerIO, containerd's normalised names); `localhost/...` on cri-o, which
/// minikube loads with `podman load` (pkg/minikube/cruntime/crio.go), and podman names a short docker-archive
/// tag `localhost/name:tag` (containers/common libimage/normalize.go NormalizeName).
pub fn node_names(image: &str) -> [String; 4] {
    [
        image.to_string(),
        format!("docker.io/library/{image}"),
        format!("docker.io/{image}"),
        format!("localhost/{image}"),
    ]
}

/// True when `image` (`name:tag`) is among the listed tags, under any name the runtime gives it.
pub fn has_image(images: &[ListedImage], image: &str) -> bool {
    let want = node_names(image);
    images
        .iter()
        .flat_map(|i| i.repo_tags.iter())
        .any(|t| want.iter().any(|w| w == t))
}

/// `minikube -p P image load IMAGE` (from the local Docker engine).
pub fn image_load(sh: &Shell, profile: &str, image: &str) -> Call {
    Call::change(cmd!(sh, "minikube -p {profile} image load {image}"))
}

/// `minikube -p P image rm IMAGE`.
pub fn image_rm(sh: &Shell, profile: &str, image: &str) -> Call {
    Call::change(cmd!(sh, "minikube -p {profile} image rm {image}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#;
    const STOPPED: &str = r#"{"Name":"minikube","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}"#;

    #[test]
    fn status_states() {
        assert_eq!(parse_status(0, RUNNING).ok(), Some(ClusterState::Running));
        assert_eq!(
            parse_status(7, STOPPED).ok(),
            Some(ClusterState::Stopped("Stopped".into()))
        );
        assert_eq!(parse_status(85, "").ok(), Some(ClusterState::Missing));
        let arr = format!("[{RUNNING},{RUNNING}]");
        assert_eq!(parse_status(0, &arr).ok(), Some(ClusterState::Running));
        let event = r#"{"data":{"message":"Profile \"x\" not found.\n"},"datacontenttype":"application/json","id":"1","source":"https://minikube.sigs.k8s.io/","specversion":"1.0","type":"io.k8s.sigs.minikube.info"}"#;
        assert_eq!(parse_status(7, event).ok(), Some(ClusterState::Missing));
        // v1.35+: a node whose state cannot be read; exit 7 since v1.38, 0 before.
        assert_eq!(parse_status(7, "null").ok(), Some(ClusterState::Unreadable));
        assert_eq!(parse_status(0, "null").ok(), Some(ClusterState::Unreadable));
        // Bit 4: running, but the kubeconfig entry is stale.
        let stale = RUNNING.replace("\"Configured\"", "\"Misconfigured\"");
        assert_eq!(
            parse_status(4, &stale).ok(),
            Some(ClusterState::Misconfigured)
        );
        assert_eq!(
            parse_status(4, RUNNING).ok(),
            Some(ClusterState::Misconfigured)
        );
    }

    #[test]
    fn profile_runtime_from_real_output() {
        let json = include_str!("../../tests/fixtures/minikube/profile-list.v1.36.0.compact.json");
        let list = ProfileList::parse(json).ok();
        assert_eq!(
            list.as_ref().and_then(|l| l.runtime_of("minikube-1")),
            Some(Runtime::Docker)
        );
        assert_eq!(list.as_ref().and_then(|l| l.runtime_of("nope")), None);
    }

    #[test]
    fn docker_env_exports() {
        let env = parse_docker_env(include_str!(
            "../../tests/fixtures/minikube/docker-env-bash.dockerdriver.golden.txt"
        ));
        assert_eq!(
            env.get("DOCKER_HOST").map(String::as_str),
            Some("tcp://127.0.0.1:32842")
        );
        assert_eq!(env.get("DOCKER_TLS_VERIFY").map(String::as_str), Some("1"));
        assert_eq!(
            env.get("MINIKUBE_ACTIVE_DOCKERD").map(String::as_str),
            Some("dockerdriver")
        );
        assert_eq!(env.len(), 4);
    }

    #[test]
    fn image_ls_matches_docker_io_prefix() {
        let json = r#"[{"id":"6f2c","repoDigests":[],"repoTags":["docker.io/library/todo-backend:0123456789ab"],"size":"1234"}]"#;
        let imgs = parse_image_ls(json).unwrap_or_default();
        assert!(has_image(&imgs, "todo-backend:0123456789ab"));
        assert!(!has_image(&imgs, "todo-frontend:0123456789ab"));
        // cri-o: podman's name for a loaded short name.
        let json = r#"[{"id":"6f2c","repoDigests":["localhost/todo-backend@sha256:0a1b"],"repoTags":["localhost/todo-backend:0123456789ab"],"size":"1234"}]"#;
        let imgs = parse_image_ls(json).unwrap_or_default();
        assert!(has_image(&imgs, "todo-backend:0123456789ab"));
    }

    #[test]
    fn every_command_names_the_profile() {
        let sh = Shell::new().unwrap_or_else(|e| panic!("{e}"));
        for c in [
            status(&sh, "x"),
            start(&sh, "x", 2, 4096),
            docker_env(&sh, "x"),
            image_ls(&sh, "x"),
            image_load(&sh, "x", "i:t"),
            image_rm(&sh, "x", "i:t"),
            update_context(&sh, "x"),
        ] {
            assert_eq!(&c.args()[..2], ["-p", "x"]);
        }
        assert_eq!(delete(&sh, "x").args(), ["delete", "-p", "x"]);
    }
}
