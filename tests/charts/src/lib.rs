//! Tests of the Helm charts in `helm/`: rendered and linted by the real helm 3 and helm 4 binaries,
//! the output parsed into typed Kubernetes objects and checked.

pub mod checkov;
pub mod checks;
pub mod fake_api;
pub mod helm;
pub mod manifest;
pub mod netpol;

use std::path::PathBuf;

use helm::Values;

/// Release names and namespace the xtask installs with (docs/contracts.md).
pub const BACKEND_RELEASE: &str = "todo-backend";
/// Release name of the frontend chart.
pub const FRONTEND_RELEASE: &str = "todo-frontend";
/// Default namespace of both releases.
pub const NAMESPACE: &str = "todo";

/// Directory of a chart under `helm/` (`backend` or `frontend`).
pub fn chart_dir(chart: &str) -> PathBuf {
    testkit::tools::workspace_root().join("helm").join(chart)
}

/// A value set kept under `tests/charts/values/`.
pub fn value_set(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("values")
        .join(file)
}

/// `version` of a chart's Chart.yaml.
pub fn chart_version(chart: &str) -> String {
    let path = chart_dir(chart).join("Chart.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    doc.get("version")
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{} has no version", path.display()))
        .to_owned()
}

/// The value sets a chart ships or supports, labelled: defaults, `values-dev.yaml`, the largest scale, and for
/// the backend an external database. Every check that must hold "whatever the user deploys" runs over these.
pub fn value_sets(chart: &str) -> Vec<(&'static str, Values)> {
    let mut sets = vec![
        ("defaults", Values::tagged()),
        (
            "values-dev.yaml",
            Values::tagged().file(chart_dir(chart).join("values-dev.yaml")),
        ),
        (
            "3 replicas",
            Values::tagged().file(value_set(&format!("{chart}-replicas-3.yaml"))),
        ),
    ];
    if chart == "backend" {
        sets.push((
            "external database",
            Values::tagged().file(value_set("backend-external-db.yaml")),
        ));
        sets.push((
            "dev + external database",
            Values::tagged()
                .file(chart_dir(chart).join("values-dev.yaml"))
                .file(value_set("backend-external-db.yaml")),
        ));
    }
    sets
}
