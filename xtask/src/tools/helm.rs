//! `helm`: version detection, `upgrade --install` with the Helm 3 or Helm 4 flag set, status, history, rollback.
//! Every cluster command carries `--kube-context <profile>`.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use xshell::{cmd, Shell};

use crate::process::Call;
use crate::tools::Version;

/// `helm version --template '{{.Version}}'` (no trailing newline).
pub fn version(sh: &Shell) -> Call {
    let template = "{{.Version}}";
    Call::query(cmd!(sh, "helm version --template {template}"))
}

/// Helm major version family: decides the rollback/wait flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Helm 3: `--atomic --wait`.
    Helm3,
    /// Helm 4: `--rollback-on-failure --wait=watcher`.
    Helm4,
}

/// Parses the version printed by `helm version` in any of its forms.
pub fn parse_version(text: &str) -> Option<(Version, Flavor)> {
    let v = Version::parse_loose(text)?;
    let f = if v.major >= 4 {
        Flavor::Helm4
    } else {
        Flavor::Helm3
    };
    Some((v, f))
}

/// Everything `helm upgrade --install` needs.
#[derive(Debug, Clone)]
pub struct Upgrade<'a> {
    /// Release name.
    pub release: &'a str,
    /// Chart directory.
    pub chart: &'a Path,
    /// Namespace.
    pub namespace: &'a str,
    /// Kube context (= Minikube profile).
    pub context: &'a str,
    /// Values files, in order.
    pub values: Vec<&'a Path>,
    /// Timeout in seconds.
    pub timeout_secs: u64,
    /// Helm 3 or 4.
    pub flavor: Flavor,
}

/// `helm upgrade --install` with wait and rollback-on-failure in the flavor's syntax.
pub fn upgrade_install(sh: &Shell, u: &Upgrade<'_>) -> Call {
    let Upgrade {
        release,
        chart,
        namespace,
        context,
        timeout_secs,
        ..
    } = u;
    let values: Vec<String> = u
        .values
        .iter()
        .flat_map(|v| ["-f".to_string(), v.display().to_string()])
        .collect();
    let wait: &[&str] = match u.flavor {
        Flavor::Helm3 => &["--atomic", "--wait"],
        Flavor::Helm4 => &["--rollback-on-failure", "--wait=watcher"],
    };
    let timeout = format!("{timeout_secs}s");
    Call::change(cmd!(
        sh,
        "helm upgrade --install {release} {chart} --namespace {namespace} --kube-context {context} {values...} {wait...} --timeout {timeout}"
    ))
}

/// `helm status R -n NS --kube-context C -o json`.
pub fn status(sh: &Shell, release: &str, namespace: &str, context: &str) -> Call {
    Call::query(cmd!(
        sh,
        "helm status {release} --namespace {namespace} --kube-context {context} -o json"
    ))
}

/// The part of `helm status -o json` the xtask reads.
#[derive(Debug, Deserialize)]
pub struct Status {
    /// Release info.
    pub info: StatusInfo,
    /// Current revision (absent in some goldens).
    #[serde(default)]
    pub version: Option<u32>,
}

/// `info` of `helm status`.
#[derive(Debug, Deserialize)]
pub struct StatusInfo {
    /// `deployed`, `failed`, `pending-upgrade`...
    pub status: String,
}

impl Status {
    /// Parses the JSON.
    pub fn parse(s: &str) -> Result<Self> {
        serde_json::from_str(s.trim()).context("parsing `helm status -o json`")
    }
}

/// `helm history R -n NS --kube-context C -o json`.
pub fn history(sh: &Shell, release: &str, namespace: &str, context: &str) -> Call {
    Call::query(cmd!(
        sh,
        "helm history {release} --namespace {namespace} --kube-context {context} -o json"
    ))
}

/// `helm list -n NS --kube-context C -o json` (the releases of the namespace).
pub fn list(sh: &Shell, namespace: &str, context: &str) -> Call {
    Call::query(cmd!(
        sh,
        "helm list --namespace {namespace} --kube-context {context} -o json"
    ))
}

/// `helm get values R -n NS --kube-context C -o json`: the user-supplied values of the current revision
/// (`null` when none). They hold the secret settings: the output is never printed.
pub fn get_values(sh: &Shell, release: &str, namespace: &str, context: &str) -> Call {
    Call::query(cmd!(
        sh,
        "helm get values {release} --namespace {namespace} --kube-context {context} -o json"
    ))
}

/// One revision of `helm history -o json` (`revision` is a number here, unlike `helm list`).
#[derive(Debug, Clone, Deserialize)]
pub struct Revision {
    /// Revision number.
    pub revision: u32,
    /// `deployed`, `superseded`, `failed`...
    pub status: String,
    /// Such as `Upgrade complete` or `Rollback to 3` (pkg/action/rollback.go).
    #[serde(default)]
    pub description: Option<String>,
}

impl Revision {
    /// The revision a rollback revision went back to (`Rollback to N`).
    pub fn rolled_back_to(&self) -> Option<u32> {
        self.description
            .as_deref()?
            .strip_prefix("Rollback to ")?
            .trim()
            .parse()
            .ok()
    }
}

/// Parses `helm history -o json`.
pub fn parse_history(s: &str) -> Result<Vec<Revision>> {
    serde_json::from_str(s.trim()).context("parsing `helm history -o json`")
}

/// The newest revision that was `deployed` or `superseded` and older than the newest, to roll back to.
pub fn rollback_target(history: &[Revision]) -> Option<u32> {
    let newest = history.iter().map(|r| r.revision).max()?;
    history
        .iter()
        .filter(|r| r.revision < newest && matches!(r.status.as_str(), "deployed" | "superseded"))
        .map(|r| r.revision)
        .max()
}

/// What a failed `helm upgrade --install` with `--atomic` / `--rollback-on-failure` did about it, from its
/// error text (pkg/action/upgrade.go and install.go `failRelease`, helm v3.17 and v4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnRecovery {
    /// "release X failed, and has been rolled back due to atomic/rollback-on-failure being set".
    RolledBack,
    /// "release X failed, and has been uninstalled due to ..." (a failed first install).
    Uninstalled,
    /// "an error occurred while rolling back (uninstalling) the release. original ... error: ...".
    Failed,
    /// Nothing (no such flag, or helm was killed before it got that far).
    None,
}

impl OwnRecovery {
    /// Reads helm's error output.
    pub fn from_output(text: &str) -> Self {
        if text.contains("an error occurred while rolling back the release")
            || text.contains("an error occurred while uninstalling the release")
        {
            Self::Failed
        } else if text.contains("has been rolled back due to") {
            Self::RolledBack
        } else if text.contains("has been uninstalled due to") {
            Self::Uninstalled
        } else {
            Self::None
        }
    }
}

/// `helm rollback R REV -n NS --kube-context C` plus the flavor's wait: Helm 3 `--wait` (a bool), Helm 4
/// `--wait=watcher` (without it Helm 4 waits for hooks only), and `--timeout`. Without a wait, helm reports
/// success as soon as the old manifests are applied, before the old pods serve.
pub fn rollback(
    sh: &Shell,
    release: &str,
    revision: u32,
    namespace: &str,
    context: &str,
    flavor: Flavor,
    timeout_secs: u64,
) -> Call {
    let revision = revision.to_string();
    let wait = match flavor {
        Flavor::Helm3 => "--wait",
        Flavor::Helm4 => "--wait=watcher",
    };
    let timeout = format!("{timeout_secs}s");
    Call::change(cmd!(
        sh,
        "helm rollback {release} {revision} --namespace {namespace} --kube-context {context} {wait} --timeout {timeout}"
    ))
}

/// `helm uninstall R -n NS --kube-context C [--wait]` (what `--atomic` does to a failed first install).
pub fn uninstall(sh: &Shell, release: &str, namespace: &str, context: &str, wait: bool) -> Call {
    let wait = wait.then_some("--wait");
    Call::change(cmd!(
        sh,
        "helm uninstall {release} --namespace {namespace} --kube-context {context} {wait...}"
    ))
}

/// `helm template R CHART --namespace NS --set image.tag=T [-f values]...` (offline render).
pub fn template(
    sh: &Shell,
    release: &str,
    chart: &Path,
    namespace: &str,
    tag: &str,
    values: &[&Path],
) -> Call {
    let set = format!("image.tag={tag}");
    let values: Vec<String> = values
        .iter()
        .flat_map(|v| ["-f".to_string(), v.display().to_string()])
        .collect();
    Call::query(cmd!(
        sh,
        "helm template {release} {chart} --namespace {namespace} --set {set} {values...}"
    ))
}

/// `helm lint CHART --set image.tag=T`.
pub fn lint(sh: &Shell, chart: &Path, tag: &str) -> Call {
    let set = format!("image.tag={tag}");
    Call::query(cmd!(sh, "helm lint {chart} --set {set}"))
}

/// `helm test R -n NS --kube-context C --timeout T` (runs the chart's test hooks in the cluster). A check,
/// not a change of the release: it also runs under `--dry-run`.
pub fn test(sh: &Shell, release: &str, namespace: &str, context: &str, timeout_secs: u64) -> Call {
    let timeout = format!("{timeout_secs}s");
    Call::query(cmd!(
        sh,
        "helm test {release} --namespace {namespace} --kube-context {context} --timeout {timeout}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/helm")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn versions_from_fixtures() {
        let cases = [
            ("golden-v3.21.4-version-template.txt", 3, Flavor::Helm3),
            ("golden-v4.2.4-version-template.txt", 4, Flavor::Helm4),
            ("golden-v3.21.4-version-short.txt", 3, Flavor::Helm3),
            ("golden-v4.2.4-version.txt", 4, Flavor::Helm4),
            ("version-v3.7.0.txt", 3, Flavor::Helm3),
            ("version-short-v3.0.2.txt", 3, Flavor::Helm3),
            (
                "version-short-v3.11-distro-packaged.EDGE.txt",
                3,
                Flavor::Helm3,
            ),
            ("version-v3.9.0-redhat-build.EDGE.txt", 3, Flavor::Helm3),
            ("version-v4-dev-build.EDGE.txt", 4, Flavor::Helm4),
            ("version-v4.2.3.txt", 4, Flavor::Helm4),
        ];
        for (f, major, flavor) in cases {
            let got = parse_version(&fixture(f));
            assert_eq!(
                got.map(|(v, fl)| (v.major, fl)),
                Some((major, flavor)),
                "{f}"
            );
        }
        assert_eq!(
            parse_version(&fixture("version-v3.9.0-redhat-build.EDGE.txt")).map(|v| v.0),
            Some(Version::new(3, 9, 0))
        );
    }

    #[test]
    fn flag_sets_per_flavor() {
        let chart = Path::new("helm/backend");
        let mut u = Upgrade {
            release: "todo-backend",
            chart,
            namespace: "todo",
            context: "todo",
            values: vec![Path::new("/tmp/v.yaml")],
            timeout_secs: 60,
            flavor: Flavor::Helm3,
        };
        let sh = Shell::new().unwrap_or_else(|e| panic!("{e}"));
        let c3 = upgrade_install(&sh, &u).args();
        assert!(c3.contains(&"--atomic".into()) && c3.contains(&"--wait".into()));
        assert!(c3.windows(2).any(|w| w == ["--kube-context", "todo"]));
        assert!(c3.windows(2).any(|w| w == ["-f", "/tmp/v.yaml"]));
        u.flavor = Flavor::Helm4;
        let c4 = upgrade_install(&sh, &u).args();
        assert!(c4.contains(&"--rollback-on-failure".into()));
        assert!(c4.contains(&"--wait=watcher".into()));
        assert!(!c4.contains(&"--atomic".into()));
        assert!(c4.windows(2).any(|w| w == ["--timeout", "60s"]));
        let r3 = rollback(&sh, "todo-backend", 2, "todo", "todo", Flavor::Helm3, 60).display();
        assert_eq!(
            r3,
            "helm rollback todo-backend 2 --namespace todo --kube-context todo --wait --timeout 60s"
        );
        let r4 = rollback(&sh, "todo-backend", 2, "todo", "todo", Flavor::Helm4, 60).display();
        assert!(r4.ends_with("--wait=watcher --timeout 60s"), "{r4}");
    }

    #[test]
    fn what_helm_did_after_a_failure() {
        let e = "Error: UPGRADE FAILED: release todo-backend failed, and has been rolled back due to atomic being set: context canceled";
        assert_eq!(OwnRecovery::from_output(e), OwnRecovery::RolledBack);
        let e = "Error: release todo-backend failed, and has been uninstalled due to rollback-on-failure being set: context deadline exceeded";
        assert_eq!(OwnRecovery::from_output(e), OwnRecovery::Uninstalled);
        let e = "Error: UPGRADE FAILED: an error occurred while rolling back the release. original upgrade error: context canceled: release todo-backend failed: context deadline exceeded";
        assert_eq!(OwnRecovery::from_output(e), OwnRecovery::Failed);
        assert_eq!(
            OwnRecovery::from_output("Release todo-backend has been cancelled.\n"),
            OwnRecovery::None
        );
        let h = parse_history(&fixture("golden-main-e9b85e4-history-with-rollback.json"))
            .unwrap_or_default();
        assert!(h.iter().any(|r| r.rolled_back_to().is_some()), "{h:?}");
    }

    #[test]
    fn status_and_history_from_fixtures() {
        let s = Status::parse(&fixture("golden-v4.2.4-status.json")).ok();
        assert_eq!(s.map(|s| s.info.status), Some("deployed".to_string()));
        let h = parse_history(&fixture("golden-v3.21.4-history.json")).unwrap_or_default();
        assert_eq!(h.len(), 2);
        assert_eq!(rollback_target(&h), Some(3));
        let h = parse_history(&fixture("golden-main-e9b85e4-history-with-rollback.json"))
            .unwrap_or_default();
        assert!(!h.is_empty());
        assert_eq!(rollback_target(&h[..1]), None);
    }
}
