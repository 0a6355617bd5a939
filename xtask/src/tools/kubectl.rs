//! `kubectl`: client version, namespaces, pods, logs, port-forward. Every cluster command carries `--context <profile>`.

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::context::Cmd;
use crate::tools::Version;

fn kc(context: &str) -> Cmd {
    Cmd::new("kubectl").args(["--context", context])
}

/// `kubectl version --client -o json` (needs no cluster).
pub fn version() -> Cmd {
    Cmd::new("kubectl").args(["version", "--client", "-o", "json"])
}

/// Parsed `kubectl version --client -o json`.
#[derive(Debug, Deserialize)]
pub struct KubectlVersion {
    /// The client half.
    #[serde(rename = "clientVersion")]
    pub client_version: ClientVersion,
}

/// `clientVersion`.
#[derive(Debug, Deserialize)]
pub struct ClientVersion {
    /// Such as `v1.36.3`.
    #[serde(rename = "gitVersion")]
    pub git_version: String,
}

impl KubectlVersion {
    /// Parses the JSON; the version from `gitVersion`.
    pub fn parse(s: &str) -> Result<Version> {
        let v: Self =
            serde_json::from_str(s.trim()).context("parsing `kubectl version --client -o json`")?;
        Version::parse_loose(&v.client_version.git_version).with_context(|| {
            format!(
                "unreadable kubectl version {:?}",
                v.client_version.git_version
            )
        })
    }
}

/// `kubectl --context C get namespace NS -o json` (exit 1 + NotFound when missing).
pub fn get_namespace(context: &str, ns: &str) -> Cmd {
    kc(context).args(["get", "namespace", ns, "-o", "json"])
}

/// `kubectl --context C create namespace NS`.
pub fn create_namespace(context: &str, ns: &str) -> Cmd {
    kc(context).args(["create", "namespace", ns]).mutating()
}

/// `kubectl --context C label namespace NS KEY=VALUE --overwrite`.
pub fn label_namespace(context: &str, ns: &str, label: &str) -> Cmd {
    kc(context)
        .args(["label", "namespace", ns, label, "--overwrite"])
        .mutating()
}

/// `kubectl --context C -n NS get pods -l SELECTOR -o json`.
pub fn get_pods(context: &str, ns: &str, selector: &str) -> Cmd {
    kc(context).args([
        "--namespace",
        ns,
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "json",
    ])
}

/// `kubectl --context C -n NS get events --field-selector type=Warning -o json`.
pub fn get_warning_events(context: &str, ns: &str) -> Cmd {
    kc(context).args([
        "--namespace",
        ns,
        "get",
        "events",
        "--field-selector",
        "type=Warning",
        "-o",
        "json",
    ])
}

/// `kubectl --context C -n NS logs POD -c CONTAINER --tail N [--previous]`.
pub fn logs(context: &str, ns: &str, pod: &str, container: &str, tail: u32, previous: bool) -> Cmd {
    let c = kc(context).args([
        "--namespace",
        ns,
        "logs",
        pod,
        "-c",
        container,
        "--tail",
        &tail.to_string(),
    ]);
    if previous {
        c.arg("--previous")
    } else {
        c
    }
}

/// `kubectl --context C -n NS port-forward svc/NAME LOCAL:REMOTE --address 127.0.0.1`.
pub fn port_forward(context: &str, ns: &str, service: &str, local: u16, remote: u16) -> Cmd {
    kc(context)
        .args([
            "--namespace",
            ns,
            "port-forward",
            &format!("svc/{service}"),
            &format!("{local}:{remote}"),
            "--address",
            "127.0.0.1",
        ])
        // Not a cluster change, but it holds a local port open: --dry-run only prints it.
        .mutating()
}

/// True when kubectl's stderr says the object does not exist.
pub fn is_not_found(stderr: &str) -> bool {
    stderr.contains("(NotFound)") || stderr.contains(" not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_version_from_fixture() {
        let v = KubectlVersion::parse(include_str!(
            "../../tests/fixtures/kubectl/version-client.json"
        ))
        .ok();
        assert_eq!(v, Some(Version::new(1, 36, 3)));
        // A broken build reports v0.0.0, which preflight then rejects as too old.
        let broken = KubectlVersion::parse(include_str!(
            "../../tests/fixtures/kubectl/version-client-broken-build.json"
        ))
        .ok();
        assert_eq!(broken, Some(Version::new(0, 0, 0)));
    }

    #[test]
    fn every_command_names_the_context() {
        for c in [
            get_namespace("p", "n"),
            create_namespace("p", "n"),
            get_pods("p", "n", "a=b"),
            port_forward("p", "n", "s", 1, 2),
        ] {
            assert_eq!(&c.args[..2], ["--context", "p"]);
        }
        assert!(is_not_found(
            r#"Error from server (NotFound): namespaces "todo" not found"#
        ));
    }
}
