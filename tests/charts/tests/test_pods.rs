//! The `helm test` Pods run with the same identity, security context and resource bounds as the workloads
//! they test (one definition in each chart's helpers, so they cannot drift apart), for every value set,
//! with helm 3 and helm 4; their requests and limits come from `tests.resources`.

use charts_tests::checks;
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_sets, BACKEND_RELEASE, FRONTEND_RELEASE};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

const CHARTS: [(&str, &str); 2] = [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)];

fn spec_of<'a>(r: &'a Rendered, kind: &str, name: &str) -> &'a PodSpec {
    r.workloads()
        .into_iter()
        .find(|w| w.kind == kind && w.name == name)
        .map(|w| w.spec)
        .unwrap_or_else(|| panic!("no {kind} {name}: {:?}", r.inventory()))
}

fn quantity(map: &Option<BTreeMap<String, Quantity>>, key: &str) -> String {
    map.as_ref()
        .and_then(|m| m.get(key))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

#[test]
fn test_pods_run_like_the_workload_they_test() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            for (label, values) in value_sets(chart) {
                let r = helm.render(release, &chart_dir(chart), &values);
                let at = format!("{helm} {chart} {label}");
                let app = spec_of(&r, "Deployment", release);
                let test = spec_of(&r, "Pod", &format!("{release}-test-health"));
                assert_eq!(
                    test.security_context, app.security_context,
                    "{at}: pod securityContext"
                );
                assert_eq!(
                    test.service_account_name, app.service_account_name,
                    "{at}: service account"
                );
                assert_eq!(
                    test.automount_service_account_token,
                    Some(false),
                    "{at}: token mounted"
                );
                assert_eq!(
                    test.containers[0].security_context, app.containers[0].security_context,
                    "{at}: container securityContext"
                );
                let workloads = r.workloads();
                let w = workloads
                    .iter()
                    .find(|w| w.kind == "Pod")
                    .expect("test pod");
                checks::assert_hardened(w, 10001);
                checks::assert_resources_bounded(w);
            }
        }
    }
}

#[test]
fn test_pod_resources_come_from_tests_resources() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            let r = helm.render(
                release,
                &chart_dir(chart),
                &Values::tagged()
                    .set("tests.resources.requests.memory", "24Mi")
                    .set("tests.resources.limits.memory", "48Mi")
                    .set("tests.resources.limits.cpu", "200m"),
            );
            let c = &spec_of(&r, "Pod", &format!("{release}-test-health")).containers[0];
            let res = c.resources.clone().unwrap_or_default();
            let got = [
                quantity(&res.requests, "cpu"),
                quantity(&res.requests, "memory"),
                quantity(&res.limits, "cpu"),
                quantity(&res.limits, "memory"),
            ];
            assert_eq!(got, ["10m", "24Mi", "200m", "48Mi"], "{helm} {chart}");
            // Unbounded test containers are refused like unbounded workloads.
            let out = helm
                .template(
                    release,
                    &chart_dir(chart),
                    &Values::tagged().set("tests.resources.limits", "null"),
                )
                .assert_failure();
            assert!(out.contains("limits"), "{helm} {chart}: {out}");
        }
    }
}
