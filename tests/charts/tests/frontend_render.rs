//! The frontend chart's rendered objects, parsed into typed Kubernetes objects and checked against
//! docs/contracts.md, with helm 3 and helm 4. The frontend must receive no secret at all.

use charts_tests::checks::{self, EnvSource};
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_set, FRONTEND_RELEASE};
use k8s_openapi::api::core::v1::Container;

const APP: &str = "todo-frontend";

/// What the frontend reads (docs/contracts.md), with the chart's defaults.
const CONFIG_ENV: [(&str, &str); 6] = [
    ("BACKEND_URL", "http://todo-backend:8000"),
    ("PORT", "3000"),
    ("LOG_LEVEL", "info"),
    ("LOG_FORMAT", "json"),
    ("BACKEND_TIMEOUT_SECS", "30"),
    ("SHUTDOWN_DELAY_SECS", "5"),
];

fn render(helm: &Helm, values: &Values) -> Rendered {
    helm.render(FRONTEND_RELEASE, &chart_dir("frontend"), values)
}

fn value_sets() -> Vec<(&'static str, Values)> {
    vec![
        ("defaults", Values::tagged()),
        (
            "values-dev.yaml",
            Values::tagged().file(chart_dir("frontend").join("values-dev.yaml")),
        ),
        (
            "3 replicas",
            Values::tagged().file(value_set("frontend-replicas-3.yaml")),
        ),
    ]
}

fn app_container(r: &Rendered) -> Container {
    r.container("Deployment", APP, "frontend")
}

#[test]
fn defaults_render_the_ui_under_the_contract_names() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let mut inventory = r.inventory();
        inventory.sort();
        let expected: Vec<(&str, String)> = vec![
            ("ConfigMap", APP.into()),
            ("Deployment", APP.into()),
            ("NetworkPolicy", APP.into()),
            ("NetworkPolicy", format!("{APP}-test")),
            ("Pod", format!("{APP}-test-health")),
            ("Service", APP.into()),
            ("ServiceAccount", APP.into()),
        ];
        assert_eq!(inventory, expected, "{helm}");
        let c = app_container(&r);
        assert_eq!(c.image.as_deref(), Some("todo-frontend:test"), "{helm}");
        assert_eq!(
            c.image_pull_policy.as_deref(),
            Some("IfNotPresent"),
            "{helm}"
        );
    }
}

#[test]
fn every_container_is_hardened_and_bounded_in_every_value_set() {
    for helm in Helm::all() {
        for (label, values) in value_sets() {
            let r = render(&helm, &values);
            let workloads = r.workloads();
            assert_eq!(workloads.len(), 2, "{helm} {label}: {:?}", r.inventory());
            for w in &workloads {
                checks::assert_hardened(w, 10001);
                checks::assert_resources_bounded(w);
            }
            let ui = workloads
                .iter()
                .find(|w| w.kind == "Deployment")
                .expect("deployment");
            assert_eq!(
                ui.spec
                    .security_context
                    .clone()
                    .unwrap_or_default()
                    .fs_group,
                Some(10001),
                "{helm}"
            );
            checks::assert_empty_dir_at(ui, &ui.spec.containers[0], "/tmp");
            assert!(
                ui.spec
                    .init_containers
                    .clone()
                    .unwrap_or_default()
                    .is_empty(),
                "{helm}: init containers"
            );
        }
    }
}

#[test]
fn probes_use_api_health_on_the_named_port() {
    for helm in Helm::all() {
        let c = app_container(&render(&helm, &Values::tagged()));
        checks::assert_http_probe(&c, &c.liveness_probe, "liveness", "/health", "http");
        checks::assert_http_probe(&c, &c.readiness_probe, "readiness", "/api/health", "http");
        let port = c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("http"))
            .expect("port http");
        assert_eq!(port.container_port, 3000, "{helm}");
    }
}

#[test]
fn the_service_matches_the_dns_contract_and_selects_only_the_ui() {
    for helm in Helm::all() {
        for (_, values) in value_sets() {
            let r = render(&helm, &values);
            checks::assert_service_routes_only_to(
                &r,
                APP,
                3000,
                "http",
                &format!("Deployment {APP}"),
            );
        }
        let renamed = render(&helm, &Values::tagged().set("service.name", "web"));
        checks::assert_service_routes_only_to(
            &renamed,
            "web",
            3000,
            "http",
            &format!("Deployment {APP}"),
        );
    }
}

#[test]
fn the_ui_gets_its_settings_from_the_config_map_and_no_secret() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let c = app_container(&r);
        let config = r.config_map(APP).data.clone().unwrap_or_default();
        for (var, default) in CONFIG_ENV {
            assert_eq!(
                checks::env_source(&c, var),
                EnvSource::ConfigMap {
                    name: APP.into(),
                    key: var.into()
                },
                "{helm}: {var}"
            );
            assert_eq!(
                config.get(var).map(String::as_str),
                Some(default),
                "{helm}: ConfigMap {var}"
            );
        }
        // The image tag, for /health to report which build answers.
        assert_eq!(
            checks::env_source(&c, "TODO_BUILD"),
            EnvSource::Literal("test".into()),
            "{helm}: TODO_BUILD"
        );
        let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names.len(),
            CONFIG_ENV.len() + 1,
            "{helm}: unexpected env {names:?}"
        );
        assert!(c.env_from.is_none(), "{helm}: envFrom");
        assert_eq!(
            r.secrets().count(),
            0,
            "{helm}: the frontend chart renders a Secret"
        );
        for var in ["DATABASE_URL", "AUTH_SECRET", "OPENAI_API_KEY"] {
            assert_eq!(
                checks::env_source(&c, var),
                EnvSource::Missing,
                "{helm}: {var} reaches the frontend"
            );
            assert!(
                !config.contains_key(var),
                "{helm}: {var} in the frontend ConfigMap"
            );
        }
        for w in r.workloads() {
            for c in checks::all_containers(&w) {
                for e in c.env.iter().flatten() {
                    let from_secret = e
                        .value_from
                        .as_ref()
                        .is_some_and(|f| f.secret_key_ref.is_some());
                    assert!(
                        !from_secret,
                        "{helm}: {} env {} comes from a Secret",
                        w.name, e.name
                    );
                }
            }
            assert!(
                w.spec.volumes.iter().flatten().all(|v| v.secret.is_none()),
                "{helm}: Secret volume"
            );
        }

        let tuned = render(
            &helm,
            &Values::tagged()
                .set("backendUrl", "http://api.todo.svc.cluster.local:8000")
                .set("config.logLevel", "debug")
                .set("config.logFormat", "text")
                .set("config.backendTimeoutSecs", "5"),
        );
        let config = tuned.config_map(APP).data.clone().unwrap_or_default();
        let get = |k: &str| config.get(k).map(String::as_str);
        assert_eq!(
            get("BACKEND_URL"),
            Some("http://api.todo.svc.cluster.local:8000"),
            "{helm}"
        );
        assert_eq!(get("LOG_LEVEL"), Some("debug"), "{helm}");
        assert_eq!(get("LOG_FORMAT"), Some("text"), "{helm}");
        assert_eq!(get("BACKEND_TIMEOUT_SECS"), Some("5"), "{helm}");
    }
}

#[test]
fn a_disruption_budget_exists_only_above_one_replica() {
    for helm in Helm::all() {
        for replicas in [1, 2, 3] {
            let r = render(
                &helm,
                &Values::tagged().set("replicaCount", &replicas.to_string()),
            );
            assert_eq!(
                r.deployment(APP).spec.as_ref().and_then(|s| s.replicas),
                Some(replicas),
                "{helm}"
            );
            let pdbs: Vec<_> = r.pdbs().collect();
            assert_eq!(
                pdbs.len(),
                usize::from(replicas > 1),
                "{helm}: replicas {replicas}"
            );
            if let Some(pdb) = pdbs.first() {
                let selector = pdb
                    .spec
                    .clone()
                    .and_then(|s| s.selector)
                    .and_then(|s| s.match_labels);
                let selected = checks::selected_workloads(&r, &selector.unwrap_or_default());
                assert_eq!(selected, vec![format!("Deployment {APP}")], "{helm}");
            }
        }
    }
}

#[test]
fn labels_and_selectors_are_consistent() {
    for helm in Helm::all() {
        for (_, values) in value_sets() {
            let r = render(&helm, &values);
            checks::assert_labels_everywhere(
                &r,
                "frontend",
                FRONTEND_RELEASE,
                &["frontend", "test"],
            );
            checks::assert_selectors_consistent(&r);
            checks::assert_valid_names(&r);
        }
    }
}

#[test]
fn a_config_change_rolls_the_pods() {
    fn checksum(r: &Rendered) -> String {
        let meta = r
            .deployment(APP)
            .spec
            .clone()
            .and_then(|s| s.template.metadata)
            .unwrap_or_default();
        meta.annotations
            .unwrap_or_default()
            .get("checksum/config")
            .cloned()
            .expect("checksum/config")
    }
    for helm in Helm::all() {
        let base = checksum(&render(&helm, &Values::tagged()));
        assert_eq!(
            base,
            checksum(&render(&helm, &Values::tagged())),
            "{helm}: stable"
        );
        let moved = checksum(&render(
            &helm,
            &Values::tagged().set("backendUrl", "http://elsewhere:8000"),
        ));
        assert_ne!(
            base, moved,
            "{helm}: a BACKEND_URL change must roll the pods"
        );
    }
}

#[test]
fn the_helm_test_pod_checks_health_through_the_service() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let pod = r.pods().next().expect("test pod");
        let hook = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            hook.get("helm.sh/hook").map(String::as_str),
            Some("test"),
            "{helm}"
        );
        let spec = pod.spec.clone().expect("spec");
        let script = spec.containers[0]
            .args
            .clone()
            .unwrap_or_default()
            .join(" ");
        assert!(
            script.contains("http://todo-frontend:3000/api/health"),
            "{helm}: {script}"
        );
    }
}
