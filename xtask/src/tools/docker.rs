//! `docker`: version, daemon check, image inspect, build.

use serde::Deserialize;

use crate::context::Cmd;
use crate::tools::Version;

/// The docker program: `XTASK_DOCKER` overrides it (e.g. a client with BuildKit support).
pub fn program() -> String {
    std::env::var("XTASK_DOCKER").unwrap_or_else(|_| "docker".into())
}

/// `docker version --format '{{json .}}'`: client always, server only when the daemon answers.
pub fn version() -> Cmd {
    Cmd::new(&program()).args(["version", "--format", "{{json .}}"])
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

/// `docker image inspect --format '{{.Id}}' IMAGE`: exit 0 when the image exists.
pub fn image_inspect(image: &str) -> Cmd {
    Cmd::new(&program()).args(["image", "inspect", "--format", "{{.Id}}", image])
}

/// `docker build -f DOCKERFILE -t IMAGE [--build-arg K=V]... .` with BuildKit, run from the repo root.
pub fn build(
    root: &std::path::Path,
    dockerfile: &str,
    image: &str,
    build_args: &[(String, String)],
) -> Cmd {
    let mut c = Cmd::new(&program())
        .args(["build", "-f", dockerfile, "-t", image])
        .env("DOCKER_BUILDKIT", "1")
        .cwd(root)
        .mutating();
    for (k, v) in build_args {
        c = c.arg("--build-arg").arg(format!("{k}={v}"));
    }
    c.arg(".")
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
        let c = build(
            std::path::Path::new("/r"),
            "backend/Dockerfile",
            "todo-backend:abc",
            &[],
        );
        assert_eq!(c.args.last().map(String::as_str), Some("."));
        assert!(c
            .env
            .iter()
            .any(|(k, v)| k == "DOCKER_BUILDKIT" && v == "1"));
        assert!(c.mutating);
    }
}
