//! `checkov --framework kubernetes` on `helm template` output of both charts (default values and
//! values-dev.yaml, and the backend with an external database), rendered by helm 3 and helm 4: zero failed
//! checks, and the only skips are the in-template `checkov.io/skip` annotations this test knows, each with
//! its reason: image digest and pull policy `Always` (which do not fit an image loaded into the cluster) on
//! every workload, and secrets as files on the backend (it reads its configuration from the environment only).

use std::collections::BTreeSet;
use std::time::Instant;

use charts_tests::checkov;
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_set, BACKEND_RELEASE, FRONTEND_RELEASE, NAMESPACE};

/// Skips that are allowed, as (check, resource or `*` for every workload).
const ALLOWED_SKIPS: [(&str, &str); 3] = [
    ("CKV_K8S_43", "*"),
    ("CKV_K8S_15", "*"),
    ("CKV_K8S_35", "Deployment.todo.todo-backend"),
];

fn value_sets(chart: &str) -> Vec<(&'static str, Values)> {
    let mut sets = vec![
        ("defaults", Values::tagged()),
        (
            "dev",
            Values::tagged().file(chart_dir(chart).join("values-dev.yaml")),
        ),
    ];
    if chart == "backend" {
        sets.push((
            "external-db",
            Values::tagged().file(value_set("backend-external-db.yaml")),
        ));
    }
    sets
}

#[test]
fn checkov_finds_no_unjustified_failure_in_either_chart() {
    let Some(bin) = checkov::binary() else {
        return testkit::ci::missing_prerequisite(
            "checkov (pip install checkov; .ci/run installs it into /var/cache/todo-ci/checkov)",
        );
    };
    // Not tempfile's default `.tmpXXXX`: checkov ignores hidden directories.
    let dir = tempfile::Builder::new()
        .prefix("checkov-charts-")
        .tempdir()
        .expect("temp dir");
    // Every workload rendered, by file, so the report can be checked to cover each of them.
    let mut workloads: Vec<(String, String)> = Vec::new();
    for helm in Helm::all() {
        for (chart, release) in [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)] {
            for (label, values) in value_sets(chart) {
                let out = helm
                    .template(release, &chart_dir(chart), &values)
                    .assert_success();
                let file = format!("{chart}-{label}-helm{}.yaml", helm.major());
                std::fs::write(dir.path().join(&file), &out.stdout).expect("write render");
                let rendered = Rendered::parse(&out.stdout).expect("parses");
                for w in rendered.workloads() {
                    workloads.push((
                        format!("/{file}"),
                        format!("{}.{NAMESPACE}.{}", w.kind, w.name),
                    ));
                }
            }
        }
    }
    let started = Instant::now();
    let report = checkov::scan(&bin, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let s = &report.summary;
    let ids: BTreeSet<&str> = report
        .results
        .passed_checks
        .iter()
        .chain(&report.results.skipped_checks)
        .map(|c| c.check_id.as_str())
        .collect();
    println!(
        "checkov {} in {:.1} s over {} resources: {} distinct checks, {} passed, {} failed, {} skipped",
        s.checkov_version,
        started.elapsed().as_secs_f64(),
        s.resource_count,
        ids.len(),
        s.passed,
        s.failed,
        s.skipped
    );
    assert_eq!(s.parsing_errors, 0, "checkov could not parse a render");
    let failures: Vec<String> = report
        .results
        .failed_checks
        .iter()
        .map(|c| {
            format!(
                "{} ({}) on {} in {}",
                c.check_id, c.check_name, c.resource, c.file_path
            )
        })
        .collect();
    assert!(
        failures.is_empty() && s.failed == 0,
        "checkov failed checks:\n{}",
        failures.join("\n")
    );
    // checkov read every workload (it did not skip a file or an object).
    for (file, resource) in &workloads {
        assert!(
            report
                .results
                .passed_checks
                .iter()
                .any(|c| &c.file_path == file && &c.resource == resource),
            "checkov has no result for {resource} in {file}"
        );
    }
    let mut unexpected = Vec::new();
    for c in &report.results.skipped_checks {
        let allowed = ALLOWED_SKIPS
            .iter()
            .any(|(id, on)| *id == c.check_id && (*on == "*" || *on == c.resource));
        let reason = c.check_result.suppress_comment.clone().unwrap_or_default();
        if !allowed || reason.len() < 20 || reason == "No comment provided" {
            unexpected.push(format!(
                "{} on {} in {}: {reason:?}",
                c.check_id, c.resource, c.file_path
            ));
        }
    }
    assert!(
        unexpected.is_empty(),
        "skips that are not allowed or give no reason:\n{}",
        unexpected.join("\n")
    );
    // The image skips sit on every workload; nothing else is skipped anywhere.
    for (file, resource) in &workloads {
        for id in ["CKV_K8S_43", "CKV_K8S_15"] {
            assert!(
                report
                    .results
                    .skipped_checks
                    .iter()
                    .any(|c| c.check_id == id && &c.file_path == file && &c.resource == resource),
                "{id} is not skipped (with its reason) on {resource} in {file}"
            );
        }
    }
}
