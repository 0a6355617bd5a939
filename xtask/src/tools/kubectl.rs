//! `kubectl`: client version, namespaces, pods, events, logs, port-forward, the service proxy, offline YAML to
//! JSON. Every cluster command carries `--context <profile>`.

use anyhow::{Context as _, Result};
use serde::Deserialize;
use xshell::{cmd, Shell};

use crate::process::Call;
use crate::tools::Version;

/// `kubectl version --client -o json` (needs no cluster).
pub fn version(sh: &Shell) -> Call {
    Call::query(cmd!(sh, "kubectl version --client -o json"))
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

/// `kubectl config current-context`: the user's current context (exit 1 when none is set). The only kubectl
/// call without `--context`: it reads the kubeconfig, not a cluster.
pub fn current_context(sh: &Shell) -> Call {
    Call::query(cmd!(sh, "kubectl config current-context"))
}

/// `kubectl config use-context NAME` (puts back a current context another tool switched).
pub fn use_context(sh: &Shell, name: &str) -> Call {
    Call::change(cmd!(sh, "kubectl config use-context {name}"))
}

/// `kubectl config unset current-context` (puts back "no current context").
pub fn unset_current_context(sh: &Shell) -> Call {
    Call::change(cmd!(sh, "kubectl config unset current-context"))
}

/// `kubectl --context C get namespace NS -o json` (exit 1 + NotFound when missing).
pub fn get_namespace(sh: &Shell, context: &str, ns: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} get namespace {ns} -o json"
    ))
}

/// `kubectl --context C create namespace NS`.
pub fn create_namespace(sh: &Shell, context: &str, ns: &str) -> Call {
    Call::change(cmd!(
        sh,
        "kubectl --context {context} create namespace {ns}"
    ))
}

/// `kubectl --context C label namespace NS KEY=VALUE --overwrite`.
pub fn label_namespace(sh: &Shell, context: &str, ns: &str, label: &str) -> Call {
    Call::change(cmd!(
        sh,
        "kubectl --context {context} label namespace {ns} {label} --overwrite"
    ))
}

/// `kubectl --context C delete namespace NS --ignore-not-found`.
pub fn delete_namespace(sh: &Shell, context: &str, ns: &str) -> Call {
    Call::change(cmd!(
        sh,
        "kubectl --context {context} delete namespace {ns} --ignore-not-found"
    ))
}

/// `kubectl --context C -n NS get pods -l SELECTOR -o json`.
pub fn get_pods(sh: &Shell, context: &str, ns: &str, selector: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} get pods -l {selector} -o json"
    ))
}

/// `kubectl --context C -n NS get KINDS -o json` (a mixed List).
pub fn get(sh: &Shell, context: &str, ns: &str, kinds: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} get {kinds} -o json"
    ))
}

/// `kubectl --context C -n NS get KINDS -l SELECTOR -o json`.
pub fn get_selected(sh: &Shell, context: &str, ns: &str, kinds: &str, selector: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} get {kinds} -l {selector} -o json"
    ))
}

/// `kubectl --context C -n NS delete KIND NAME --ignore-not-found`.
pub fn delete(sh: &Shell, context: &str, ns: &str, kind: &str, name: &str) -> Call {
    Call::change(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} delete {kind} {name} --ignore-not-found"
    ))
}

/// `kubectl --context C -n NS get service NAME -o json`.
pub fn get_service(sh: &Shell, context: &str, ns: &str, name: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} get service {name} -o json"
    ))
}

/// The label selector (`k=v,k2=v2`) of a Service from `kubectl get service -o json`.
pub fn selector_of(service_json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Service {
        spec: Spec,
    }
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        selector: std::collections::BTreeMap<String, String>,
    }
    let s: Service = serde_json::from_str(service_json).ok()?;
    (!s.spec.selector.is_empty()).then(|| {
        s.spec
            .selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// `kubectl --context C -n NS get events --field-selector type=Warning -o json`.
pub fn get_warning_events(sh: &Shell, context: &str, ns: &str) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} get events --field-selector type=Warning -o json"
    ))
}

/// `kubectl --context C -n NS logs POD -c CONTAINER --tail N [--previous]`.
pub fn logs(
    sh: &Shell,
    context: &str,
    ns: &str,
    pod: &str,
    container: &str,
    tail: u32,
    previous: bool,
) -> Call {
    let tail = tail.to_string();
    let previous = previous.then_some("--previous");
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} logs {pod} -c {container} --tail {tail} {previous...}"
    ))
}

/// Where a timestamped log read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The last N lines.
    Tail(u32),
    /// Lines newer than a duration (`10m`, `1h`).
    Since(String),
    /// Lines at or after an RFC 3339 time (a stream that reconnects).
    SinceTime(String),
    /// Everything the container printed.
    Start,
}

/// One timestamped read of a container's log.
#[derive(Debug, Clone)]
pub struct LogRead<'a> {
    /// Pod name.
    pub pod: &'a str,
    /// Container name.
    pub container: &'a str,
    /// Keep reading until the container ends (`--follow`).
    pub follow: bool,
    /// The container's previous run (after a restart).
    pub previous: bool,
    /// Where to start.
    pub from: From,
}

/// `kubectl --context C -n NS logs POD -c CONTAINER --timestamps [--follow] [--previous] [--tail=N|--since=D|--since-time=T]`.
pub fn logs_stamped(sh: &Shell, context: &str, ns: &str, read: &LogRead<'_>) -> Call {
    let LogRead { pod, container, .. } = read;
    let mut opts: Vec<String> = Vec::new();
    if read.follow {
        opts.push("--follow".into());
    }
    if read.previous {
        opts.push("--previous".into());
    }
    match &read.from {
        From::Tail(n) => opts.push(format!("--tail={n}")),
        From::Since(d) => opts.push(format!("--since={d}")),
        From::SinceTime(t) => opts.push(format!("--since-time={t}")),
        From::Start => {}
    }
    Call::query(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} logs {pod} -c {container} --timestamps {opts...}"
    ))
}

/// `kubectl --context C -n NS port-forward TARGET LOCAL:REMOTE --address 127.0.0.1` (TARGET `pod/NAME` or
/// `svc/NAME`).
pub fn port_forward(
    sh: &Shell,
    context: &str,
    ns: &str,
    target: &str,
    local: u16,
    remote: u16,
) -> Call {
    let ports = format!("{local}:{remote}");
    // Not a cluster change, but it holds a local port open: --dry-run only prints it.
    Call::change(cmd!(
        sh,
        "kubectl --context {context} --namespace {ns} port-forward {target} {ports} --address 127.0.0.1"
    ))
}

/// `kubectl --context C get --raw /api/v1/namespaces/NS/services/http:SVC:http/proxy/PATH`: reaches a
/// ClusterIP Service through the API server, without a port-forward.
pub fn proxy_get(sh: &Shell, context: &str, ns: &str, service: &str, path: &str) -> Call {
    let raw = format!("/api/v1/namespaces/{ns}/services/http:{service}:http/proxy{path}");
    Call::query(cmd!(sh, "kubectl --context {context} get --raw {raw}"))
}

/// `kubectl label --local -f - -o json <absent-label>-`: prints each YAML document on stdin as JSON, offline.
pub fn yaml_to_json(sh: &Shell) -> Call {
    Call::query(cmd!(
        sh,
        "kubectl label --local -f - -o json validate.todo-xtask.invalid/none-"
    ))
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
        let sh = Shell::new().unwrap_or_else(|e| panic!("{e}"));
        for c in [
            get_namespace(&sh, "p", "n"),
            create_namespace(&sh, "p", "n"),
            get_pods(&sh, "p", "n", "a=b"),
            port_forward(&sh, "p", "n", "svc/s", 1, 2),
            logs(&sh, "p", "n", "pod", "c", 5, true),
            proxy_get(&sh, "p", "n", "s", "/health"),
        ] {
            assert_eq!(&c.args()[..2], ["--context", "p"]);
        }
        assert_eq!(
            logs(&sh, "p", "n", "pod", "c", 5, true)
                .args()
                .last()
                .map(String::as_str),
            Some("--previous")
        );
        assert_eq!(
            selector_of(r#"{"kind":"Service","spec":{"selector":{"app.kubernetes.io/name":"frontend","app.kubernetes.io/instance":"todo-frontend"}}}"#).as_deref(),
            Some("app.kubernetes.io/instance=todo-frontend,app.kubernetes.io/name=frontend")
        );
        assert!(is_not_found(
            r#"Error from server (NotFound): namespaces "todo" not found"#
        ));
    }
}
