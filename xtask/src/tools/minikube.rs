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

/// `minikube -p P status -o json`; the exit code is a bitmask (1 host, 2 kubelet/apiserver, 4 kubeconfig), 85 = no such profile.
pub fn status(sh: &Shell, profile: &str) -> Call {
    Call::query(cmd!(sh, "minikube -p {profile} status -o json"))
}

/// Exit code of `minikube status` for a profile that does not exist.
pub const EXIT_PROFILE_NOT_FOUND: i32 = 85;

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
}

/// The state of a profile, derived from `minikube status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterState {
    /// Host, kubelet and API server running.
    Running,
    /// Exists but is not (fully) running: the host state.
    Stopped(String),
    /// The profile does not exist.
    Missing,
}

/// Parses `minikube status -o json` (an object, or an array with several nodes) plus its exit code.
pub fn parse_status(code: i32, stdout: &str) -> Result<ClusterState> {
    if code == EXIT_PROFILE_NOT_FOUND {
        return Ok(ClusterState::Missing);
    }
    let trimmed = stdout.trim();
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
    Ok(if running && code & 3 == 0 {
        ClusterState::Running
    } else {
        ClusterState::Stopped(first.host.clone())
    })
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

/// True when `image` (`name:tag`) is among the listed tags; the runtime may have added `docker.io/library/`.
pub fn has_image(images: &[ListedImage], image: &str) -> bool {
    let want = [
        image.to_string(),
        format!("docker.io/library/{image}"),
        format!("docker.io/{image}"),
    ];
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
        ] {
            assert_eq!(&c.args()[..2], ["-p", "x"]);
        }
        assert_eq!(delete(&sh, "x").args(), ["delete", "-p", "x"]);
    }
}
