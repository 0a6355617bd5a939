//! `helm lint --strict` passes, with helm 3 and helm 4, for every value set we ship or support.

use charts_tests::helm::{Helm, Values};
use charts_tests::{chart_dir, value_set};

fn assert_lints(chart: &str, sets: &[(&str, Values)]) {
    let helms = Helm::all();
    for helm in &helms {
        for (label, values) in sets {
            let out = helm.lint(&chart_dir(chart), values).assert_success();
            assert!(
                out.stdout.contains("1 chart(s) linted, 0 chart(s) failed"),
                "{helm} lint {chart} ({label}): unexpected output:\n{}",
                out.stdout
            );
            assert!(
                !out.stdout.contains("[WARNING]"),
                "{helm} lint {chart} ({label}) warns:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn backend_lints_strictly_for_every_value_set() {
    let dev = chart_dir("backend").join("values-dev.yaml");
    assert_lints(
        "backend",
        &[
            ("defaults", Values::tagged()),
            ("values-dev.yaml", Values::tagged().file(&dev)),
            (
                "external database",
                Values::tagged().file(value_set("backend-external-db.yaml")),
            ),
            (
                "3 replicas",
                Values::tagged().file(value_set("backend-replicas-3.yaml")),
            ),
            (
                "dev + external database + 3 replicas",
                Values::tagged()
                    .file(&dev)
                    .file(value_set("backend-external-db.yaml"))
                    .file(value_set("backend-replicas-3.yaml")),
            ),
        ],
    );
}

#[test]
fn frontend_lints_strictly_for_every_value_set() {
    let dev = chart_dir("frontend").join("values-dev.yaml");
    assert_lints(
        "frontend",
        &[
            ("defaults", Values::tagged()),
            ("values-dev.yaml", Values::tagged().file(&dev)),
            (
                "3 replicas",
                Values::tagged().file(value_set("frontend-replicas-3.yaml")),
            ),
        ],
    );
}

#[test]
fn lint_fails_on_a_misspelled_key() {
    for helm in Helm::all() {
        for chart in ["backend", "frontend"] {
            let out = helm
                .lint(&chart_dir(chart), &Values::tagged().set("replicaCont", "2"))
                .assert_failure();
            assert!(
                out.contains("replicaCont"),
                "{helm} lint {chart}: message does not name the key:\n{out}"
            );
        }
    }
}
