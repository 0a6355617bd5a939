//! `docker`: version, daemon check, builder check, image inspect/ls/rm, build.

use std::path::Path;

use serde::Deserialize;
use xshell::{cmd, Shell};

use crate::process::Call;
use crate::tools::Version;

/// Go template that prints one JSON object.
const JSON: &str = "{{json .}}";

/// The docker program: `XTASK_DOCKER` overrides it (e.g. a client with BuildKit support).
pub fn program() -> String {
    std::env::var("XTASK_DOCKER").unwrap_or_else(|_| "docker".into())
}

/// `docker version --format '{{json .}}'`: client always, server only when the daemon answers.
pub fn version(sh: &Shell) -> Call {
    let docker = program();
    Call::query(cmd!(sh, "{docker} version --format {JSON}"))
}

/// Parsed `docker version --format '{{json .}}'`.
#[derive(Debug, Deserialize)]
pub struct DockerVersion {
    /// Client half.
    #[serde(rename = "Client")]
    pub client: Option<Component>,
    /// Server half, `null` when the daemon is down.
    #[serde(rename = "Server")]
    pub server: Option<Component>,
}

/// One half of `docker version`.
#[derive(Debug, Deserialize)]
pub struct Component {
    /// Version string such as `20.10.24+dfsg1`.
    #[serde(rename = "Version")]
    pub version: String,
}

impl DockerVersion {
    /// Parses the first JSON line of stdout (docker prints the error about the daemon on stderr).
    pub fn parse(stdout: &str) -> anyhow::Result<Self> {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("");
        Ok(serde_json::from_str(line)?)
    }
    /// The client version.
    pub fn client_version(&self) -> Option<Version> {
        self.client
            .as_ref()
            .and_then(|c| Version::parse_loose(&c.version))
    }
}

/// `docker buildx version`: exit 0 when the buildx plugin works (docker 23+ needs it for BuildKit builds).
pub fn buildx_version(sh: &Shell) -> Call {
    let docker = program();
    Call::query(cmd!(sh, "{docker} buildx version"))
}

/// How `docker build` gets to BuildKit (the Dockerfiles need it: `RUN --mount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// docker CLI before 23 with `DOCKER_BUILDKIT=1`: its built-in BuildKit client, which always stores the
    /// image in the daemon it talks to.
    BuiltIn,
    /// docker CLI 23+: `docker build` is `docker buildx build` (docker/cli cmd/docker/builder.go).
    Buildx,
}

/// The oldest docker CLI that builds with BuildKit only through buildx.
pub const BUILDX_REQUIRED_FROM: Version = Version::new(23, 0, 0);

/// `docker image inspect --format '{{.Id}}' IMAGE`: exit 0 when the image exists.
pub fn image_exists(sh: &Shell, image: &str) -> Call {
    let docker = program();
    let id = "{{.Id}}";
    Call::query(cmd!(sh, "{docker} image inspect --format {id} {image}"))
}

/// `docker image inspect IMAGE` (a JSON array).
pub fn image_inspect(sh: &Shell, image: &str) -> Call {
    let docker = program();
    Call::query(cmd!(sh, "{docker} image inspect {image}"))
}

/// `docker history --no-trunc --format '{{.CreatedBy}}' IMAGE`.
pub fn history(sh: &Shell, image: &str) -> Call {
    let docker = program();
    let created_by = "{{.CreatedBy}}";
    Call::query(cmd!(
        sh,
        "{docker} history --no-trunc --format {created_by} {image}"
    ))
}

/// `docker image ls --format '{{json .}}' --filter reference=R...`: one JSON object per line.
pub fn image_ls(sh: &Shell, repositories: &[&str]) -> Call {
    let docker = program();
    let filters: Vec<String> = repositories
        .iter()
        .flat_map(|r| ["--filter".to_string(), format!("reference={r}")])
        .collect();
    Call::query(cmd!(sh, "{docker} image ls --format {JSON} {filters...}"))
}

/// `docker image rm IMAGE`.
pub fn image_rm(sh: &Shell, image: &str) -> Call {
    let docker = program();
    Call::change(cmd!(sh, "{docker} image rm {image}"))
}

/// `docker build -f DOCKERFILE -t IMAGE [--build-arg K=V]... [--load] .` with BuildKit, run from the repo
/// root. Through buildx, `--load` makes the result land in the daemon docker talks to (the one minikube
/// reads, or the node's with docker-env) whichever builder is selected: a docker-container builder (a
/// `BUILDX_BUILDER` of the user's) keeps it in its cache otherwise (docker/buildx build/build.go, "No output
/// specified"). The built-in builder of docker 20.10 has no `--load` and needs none.
pub fn build(
    sh: &Shell,
    root: &Path,
    dockerfile: &str,
    image: &str,
    build_args: &[(String, String)],
    builder: Builder,
) -> Call {
    let docker = program();
    let args: Vec<String> = build_args
        .iter()
        .flat_map(|(k, v)| ["--build-arg".to_string(), format!("{k}={v}")])
        .collect();
    let load = (builder == Builder::Buildx).then_some("--load");
    let _dir = sh.push_dir(root);
    Call::change(cmd!(
        sh,
        "{docker} build -f {dockerfile} -t {image} {args...} {load...} ."
    ))
    .env("DOCKER_BUILDKIT", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_with_and_without_daemon() {
        let up = r#"{"Client":{"Version":"20.10.24+dfsg1","ApiVersion":"1.41"},"Server":{"Version":"20.10.24+dfsg1"}}"#;
        let v = DockerVersion::parse(up).map_err(|e| e.to_string());
        let v = v.as_ref().map_err(Clone::clone);
        assert_eq!(
            v.ok().and_then(|v| v.client_version()),
            Some(Version::new(20, 10, 24))
        );
        let down = "{\"Client\":{\"Version\":\"28.0.1\"},\"Server\":null}\n";
        let v = DockerVersion::parse(down).ok();
        assert!(v.as_ref().is_some_and(|v| v.server.is_none()));
    }

    #[test]
    fn build_runs_from_root_with_buildkit() {
        let sh = Shell::new().unwrap_or_else(|e| panic!("{e}"));
        let args = [("VERSION".to_string(), "0.1.0".to_string())];
        let c = build(
            &sh,
            Path::new("/r"),
            "backend/Dockerfile",
            "todo-backend:abc",
            &args,
            Builder::BuiltIn,
        );
        assert!(!c.args().contains(&"--load".to_string()));
        let buildx = build(
            &sh,
            Path::new("/r"),
            "backend/Dockerfile",
            "todo-backend:abc",
            &args,
            Builder::Buildx,
        );
        assert!(
            buildx
                .display()
                .ends_with("--build-arg VERSION=0.1.0 --load ."),
            "{}",
            buildx.display()
        );
        assert_eq!(c.args().last().map(String::as_str), Some("."));
        assert!(c
            .args()
            .windows(2)
            .any(|w| w == ["--build-arg", "VERSION=0.1.0"]));
        assert_eq!(c.env_value("DOCKER_BUILDKIT").as_deref(), Some("1"));
        assert!(c.changes());
        assert_eq!(c.cwd(), Some(Path::new("/r")));
        assert!(c
            .display()
            .contains("docker build -f backend/Dockerfile -t todo-backend:abc"));
    }
}
