//! The backend chart's rendered objects, parsed into typed Kubernetes objects and checked against
//! docs/contracts.md, with helm 3 and helm 4.

use std::collections::BTreeMap;

use charts_tests::checks::{self, EnvSource};
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_set, BACKEND_RELEASE};
use k8s_openapi::api::core::v1::Container;

const APP: &str = "todo-backend";
const DB: &str = "todo-backend-postgresql";
const DB_HEADLESS: &str = "todo-backend-postgresql-hl";
const APP_UID: i64 = 10001;
/// The database's own UID (>= 10000; the official image's entrypoint runs under any UID).
const POSTGRES_UID: i64 = 10999;

/// Non-secret settings the backend reads, with the chart's default values.
const CONFIG_ENV: [(&str, &str); 9] = [
    ("PORT", "8000"),
    ("LOG_LEVEL", "info"),
    ("LOG_FORMAT", "json"),
    ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    ("OPENAI_MODEL", "gpt-4o-mini"),
    ("OPENAI_TIMEOUT_SECS", "20"),
    ("TOKEN_TTL_HOURS", "168"),
    ("SHUTDOWN_DELAY_SECS", "5"),
    ("TRUSTED_PROXIES", "10.244.0.0/16"),
];
/// Secret settings the backend reads.
const SECRET_ENV: [&str; 3] = ["DATABASE_URL", "AUTH_SECRET", "OPENAI_API_KEY"];

fn render(helm: &Helm, values: &Values) -> Rendered {
    helm.render(BACKEND_RELEASE, &chart_dir("backend"), values)
}

/// Every value set the chart supports, labelled.
fn value_sets() -> Vec<(&'static str, Values)> {
    vec![
        ("defaults", Values::tagged()),
        (
            "values-dev.yaml",
            Values::tagged().file(chart_dir("backend").join("values-dev.yaml")),
        ),
        (
            "external database",
            Values::tagged().file(value_set("backend-external-db.yaml")),
        ),
        (
            "3 replicas",
            Values::tagged().file(value_set("backend-replicas-3.yaml")),
        ),
    ]
}

fn app_container(r: &Rendered) -> Container {
    r.container("Deployment", APP, "backend")
}

fn db_container(r: &Rendered) -> Container {
    r.container("StatefulSet", DB, "postgresql")
}

/// Values file with fake secrets, so they travel as a file (as the xtask passes them), not on a command line.
struct SecretValues {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn secret_values(yaml: &str) -> SecretValues {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("secrets.yaml");
    std::fs::write(&path, yaml).expect("write secrets values");
    SecretValues { _dir: dir, path }
}

#[test]
fn defaults_render_the_api_the_bundled_database_and_the_contract_names() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let mut inventory = r.inventory();
        inventory.sort();
        let expected: Vec<(&str, String)> = vec![
            ("ConfigMap", APP.into()),
            ("ConfigMap", format!("{DB}-init")),
            ("Deployment", APP.into()),
            ("NetworkPolicy", APP.into()),
            ("NetworkPolicy", DB.into()),
            ("NetworkPolicy", format!("{APP}-test")),
            ("Pod", format!("{APP}-test-health")),
            ("Secret", APP.into()),
            ("Secret", DB.into()),
            ("Service", APP.into()),
            ("Service", DB.into()),
            ("Service", DB_HEADLESS.into()),
            ("ServiceAccount", APP.into()),
            ("StatefulSet", DB.into()),
        ];
        assert_eq!(inventory, expected, "{helm}");
        let d = r.deployment(APP);
        assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(1), "{helm}");
        let c = app_container(&r);
        assert_eq!(c.image.as_deref(), Some("todo-backend:test"), "{helm}");
        assert_eq!(
            c.image_pull_policy.as_deref(),
            Some("IfNotPresent"),
            "{helm}"
        );
        assert!(
            c.env_from.is_none(),
            "{helm}: envFrom hides where variables come from"
        );
    }
}

#[test]
fn every_container_is_hardened_and_bounded_in_every_value_set() {
    for helm in Helm::all() {
        for (label, values) in value_sets() {
            let r = render(&helm, &values);
            let workloads = r.workloads();
            assert!(workloads.len() >= 2, "{helm} {label}: {:?}", r.inventory());
            for w in &workloads {
                let uid = if w.kind == "StatefulSet" {
                    POSTGRES_UID
                } else {
                    APP_UID
                };
                checks::assert_hardened(w, uid);
                checks::assert_resources_bounded(w);
                let pod_sc = w.spec.security_context.clone().unwrap_or_default();
                if w.kind != "Pod" {
                    assert_eq!(
                        pod_sc.fs_group,
                        Some(uid),
                        "{helm} {label}: {} fsGroup",
                        w.name
                    );
                }
                for c in checks::all_containers(w) {
                    assert_eq!(
                        c.image_pull_policy.as_deref(),
                        Some("IfNotPresent"),
                        "{helm} {label}: {}",
                        c.name
                    );
                }
            }
            let api = workloads
                .iter()
                .find(|w| w.kind == "Deployment")
                .expect("deployment");
            checks::assert_empty_dir_at(api, &api.spec.containers[0], "/tmp");
        }
    }
}

#[test]
fn probes_use_health_and_ready_on_the_named_port() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let c = app_container(&r);
        checks::assert_http_probe(&c, &c.liveness_probe, "liveness", "/health", "http");
        checks::assert_http_probe(&c, &c.readiness_probe, "readiness", "/ready", "http");
        let port = c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some("http"))
            .expect("port http");
        assert_eq!(port.container_port, 8000, "{helm}");

        let spec = r.pod_spec("Deployment", APP);
        // The API waits for the database through /ready, not through init-container sleeps.
        assert!(
            spec.init_containers.unwrap_or_default().is_empty(),
            "{helm}: init containers"
        );

        let db = db_container(&r);
        for (what, probe) in [
            ("startup", &db.startup_probe),
            ("liveness", &db.liveness_probe),
            ("readiness", &db.readiness_probe),
        ] {
            let command = probe
                .as_ref()
                .and_then(|p| p.exec.clone())
                .and_then(|e| e.command)
                .unwrap_or_default();
            assert_eq!(
                command.first().map(String::as_str),
                Some("pg_isready"),
                "{helm}: postgres {what} probe"
            );
            assert!(
                command.windows(2).any(|w| w == ["-U", "todo"]),
                "{helm}: {what} probe user: {command:?}"
            );
            assert!(
                command.windows(2).any(|w| w == ["-d", "todo"]),
                "{helm}: {what} probe db: {command:?}"
            );
        }
    }
}

#[test]
fn services_match_the_dns_contract_and_select_only_their_pods() {
    for helm in Helm::all() {
        for (label, values) in value_sets() {
            let r = render(&helm, &values);
            checks::assert_service_routes_only_to(
                &r,
                APP,
                8000,
                "http",
                &format!("Deployment {APP}"),
            );
            if label != "external database" {
                checks::assert_service_routes_only_to(
                    &r,
                    DB,
                    5432,
                    "tcp-postgresql",
                    &format!("StatefulSet {DB}"),
                );
                checks::assert_service_routes_only_to(
                    &r,
                    DB_HEADLESS,
                    5432,
                    "tcp-postgresql",
                    &format!("StatefulSet {DB}"),
                );
                let hl = r.service(DB_HEADLESS).spec.clone().unwrap_or_default();
                assert_eq!(
                    hl.cluster_ip.as_deref(),
                    Some("None"),
                    "{helm}: headless Service"
                );
                let sts = r.stateful_set(DB).spec.clone().unwrap_or_default();
                assert_eq!(
                    sts.service_name, DB_HEADLESS,
                    "{helm}: StatefulSet serviceName"
                );
            }
        }
        let renamed = render(
            &helm,
            &Values::tagged()
                .set("service.name", "api")
                .set("service.port", "8080"),
        );
        checks::assert_service_routes_only_to(
            &renamed,
            "api",
            8080,
            "http",
            &format!("Deployment {APP}"),
        );
        let c = app_container(&renamed);
        assert_eq!(
            c.ports.unwrap_or_default()[0].container_port,
            8080,
            "{helm}: container port follows service.port"
        );
        let cm = renamed.config_map(APP).data.clone().unwrap_or_default();
        assert_eq!(
            cm.get("PORT").map(String::as_str),
            Some("8080"),
            "{helm}: PORT follows service.port"
        );
    }
}

#[test]
fn every_variable_the_backend_reads_comes_from_the_right_place() {
    for helm in Helm::all() {
        for (label, values) in [
            ("no OpenAI key", Values::tagged()),
            (
                "OpenAI key",
                Values::tagged().set("secrets.openaiApiKey", "sk-fake"),
            ),
        ] {
            let r = render(&helm, &values);
            let c = app_container(&r);
            let config = r.config_map(APP).data.clone().unwrap_or_default();
            for (var, default) in CONFIG_ENV {
                assert_eq!(
                    checks::env_source(&c, var),
                    EnvSource::ConfigMap {
                        name: APP.into(),
                        key: var.into()
                    },
                    "{helm} {label}: {var}"
                );
                assert_eq!(
                    config.get(var).map(String::as_str),
                    Some(default),
                    "{helm} {label}: ConfigMap {var}"
                );
            }
            for var in SECRET_ENV {
                let optional = var == "OPENAI_API_KEY";
                assert_eq!(
                    checks::env_source(&c, var),
                    EnvSource::Secret {
                        name: APP.into(),
                        key: var.into(),
                        optional
                    },
                    "{helm} {label}: {var}"
                );
                assert!(
                    !config.contains_key(var),
                    "{helm} {label}: {var} in the ConfigMap"
                );
            }
            // The image tag, for /health to report which build answers.
            assert_eq!(
                checks::env_source(&c, "TODO_BUILD"),
                EnvSource::Literal("test".into()),
                "{helm} {label}: TODO_BUILD"
            );
            let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
            assert_eq!(
                names.len(),
                CONFIG_ENV.len() + SECRET_ENV.len() + 1,
                "{helm} {label}: unexpected env {names:?}"
            );
            let key = r.secret_value(APP, "OPENAI_API_KEY");
            if label == "OpenAI key" {
                assert_eq!(key.as_deref(), Some("sk-fake"), "{helm}");
            } else {
                // No key at all (not an empty one): the backend then uses its built-in engine.
                assert_eq!(key, None, "{helm}: empty OPENAI_API_KEY rendered");
            }
        }
        let tuned = render(
            &helm,
            &Values::tagged()
                .set("config.logLevel", "debug")
                .set("config.logFormat", "text")
                .set("config.openaiBaseUrl", "http://llm.local/v1")
                .set("config.openaiModel", "m")
                .set("config.openaiTimeoutSecs", "5")
                .set("config.tokenTtlHours", "2"),
        );
        let config = tuned.config_map(APP).data.clone().unwrap_or_default();
        let got: BTreeMap<&str, &str> = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let want: BTreeMap<&str, &str> = [
            ("PORT", "8000"),
            ("LOG_LEVEL", "debug"),
            ("LOG_FORMAT", "text"),
            ("OPENAI_BASE_URL", "http://llm.local/v1"),
            ("OPENAI_MODEL", "m"),
            ("OPENAI_TIMEOUT_SECS", "5"),
            ("TOKEN_TTL_HOURS", "2"),
            ("SHUTDOWN_DELAY_SECS", "5"),
            ("TRUSTED_PROXIES", "10.244.0.0/16"),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want, "{helm}: config values reach the ConfigMap");
    }
}

#[test]
fn secrets_go_to_the_secret_and_nowhere_else() {
    const KEY: &str = "sk-fake-openai-key-7f3a9c";
    const AUTH: &str = "fake-auth-secret-0123456789abcdef0123456789";
    const URL: &str =
        "postgres://neon_user:fake-db-pass-91ab@ep-fake.neon.tech/todo?sslmode=require";
    for helm in Helm::all() {
        let external = secret_values(&format!(
            "secrets:\n  openaiApiKey: {KEY}\n  authSecret: {AUTH}\nexternalDatabase:\n  url: \"{URL}\"\n"
        ));
        let r = render(&helm, &Values::tagged().file(&external.path));
        checks::assert_secrets_hidden(&r, &[KEY, AUTH, URL, "fake-db-pass-91ab"]);
        assert_eq!(
            r.secret_value(APP, "OPENAI_API_KEY").as_deref(),
            Some(KEY),
            "{helm}"
        );
        assert_eq!(
            r.secret_value(APP, "AUTH_SECRET").as_deref(),
            Some(AUTH),
            "{helm}"
        );
        assert_eq!(
            r.secret_value(APP, "DATABASE_URL").as_deref(),
            Some(URL),
            "{helm}"
        );
        assert_eq!(
            r.stateful_sets().count(),
            0,
            "{helm}: an external URL turns the bundled database off"
        );

        // Bundled database, nothing given: the generated values are consistent and hidden too.
        let r = render(&helm, &Values::tagged());
        let password = r.secret_value(DB, "APP_PASSWORD").expect("APP_PASSWORD");
        let superuser = r
            .secret_value(DB, "POSTGRES_PASSWORD")
            .expect("POSTGRES_PASSWORD");
        let auth = r.secret_value(APP, "AUTH_SECRET").expect("AUTH_SECRET");
        let url = r.secret_value(APP, "DATABASE_URL").expect("DATABASE_URL");
        assert_eq!(password.len(), 32, "{helm}: generated password length");
        assert_eq!(superuser.len(), 32, "{helm}: generated password length");
        assert_ne!(password, superuser, "{helm}: one password per role");
        assert!(
            auth.len() >= 32,
            "{helm}: generated AUTH_SECRET is {} chars",
            auth.len()
        );
        assert_eq!(
            url,
            format!("postgres://todo:{password}@{DB}:5432/todo"),
            "{helm}: DATABASE_URL wiring"
        );
        checks::assert_secrets_hidden(&r, &[&password, &superuser, &auth, &url]);
        // The database reads its passwords from the mounted Secret (database_role.rs), not from its environment.
        let db = db_container(&r);
        assert_eq!(
            checks::env_source(&db, "POSTGRES_PASSWORD"),
            EnvSource::Missing,
            "{helm}"
        );
    }
}

#[test]
fn bundled_postgresql_is_a_pinned_non_root_statefulset_with_a_volume() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let db = db_container(&r);
        assert_eq!(
            db.image.as_deref(),
            Some("postgres:16.4-bookworm"),
            "{helm}: pinned official image"
        );
        // The superuser initialises; the init script makes the backend's role and its database.
        assert_eq!(
            checks::env_source(&db, "POSTGRES_USER"),
            EnvSource::Literal("postgres".into()),
            "{helm}"
        );
        assert_eq!(
            checks::env_source(&db, "POSTGRES_DB"),
            EnvSource::Missing,
            "{helm}"
        );
        let pgdata = match checks::env_source(&db, "PGDATA") {
            EnvSource::Literal(v) => v,
            other => panic!("{helm}: PGDATA {other:?}"),
        };
        let data_mount = db
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "data")
            .expect("data volume mounted");
        assert!(
            pgdata.starts_with(&format!("{}/", data_mount.mount_path)),
            "{helm}: PGDATA {pgdata} must be a subdirectory of the volume {}",
            data_mount.mount_path
        );
        let workloads = r.workloads();
        let w = workloads
            .iter()
            .find(|w| w.kind == "StatefulSet")
            .expect("statefulset");
        checks::assert_empty_dir_at(w, &db, "/var/run/postgresql");
        checks::assert_empty_dir_at(w, &db, "/tmp");

        let sts = r.stateful_set(DB).spec.clone().unwrap_or_default();
        assert_eq!(sts.replicas, Some(1), "{helm}");
        let claims = sts.volume_claim_templates.unwrap_or_default();
        assert_eq!(claims.len(), 1, "{helm}: volumeClaimTemplates");
        assert_eq!(claims[0].metadata.name.as_deref(), Some("data"), "{helm}");
        let claim_labels = claims[0].metadata.labels.clone().unwrap_or_default();
        for changing in ["helm.sh/chart", "app.kubernetes.io/version"] {
            assert!(
                !claim_labels.contains_key(changing),
                "{helm}: {changing} on the immutable volumeClaimTemplates breaks upgrades"
            );
        }
        let claim = claims[0].spec.clone().unwrap_or_default();
        assert_eq!(
            claim.access_modes,
            Some(vec!["ReadWriteOnce".to_owned()]),
            "{helm}"
        );
        let storage = claim
            .resources
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").cloned());
        assert_eq!(storage.map(|q| q.0), Some("1Gi".to_owned()), "{helm}");
        assert_eq!(
            claim.storage_class_name, None,
            "{helm}: default StorageClass unless one is given"
        );

        // The password must outlive `helm uninstall` as long as the volume (which helm never deletes).
        let keep = r
            .secret(DB)
            .metadata
            .annotations
            .clone()
            .unwrap_or_default();
        assert_eq!(
            keep.get("helm.sh/resource-policy").map(String::as_str),
            Some("keep"),
            "{helm}"
        );

        let custom = render(
            &helm,
            &Values::tagged()
                .set("postgresql.image.repository", "local/postgres")
                .set("postgresql.image.tag", "15-bookworm")
                .set("postgresql.persistence.storageClass", "standard")
                .set("postgresql.persistence.size", "2Gi"),
        );
        assert_eq!(
            db_container(&custom).image.as_deref(),
            Some("local/postgres:15-bookworm"),
            "{helm}"
        );
        let claim = custom
            .stateful_set(DB)
            .spec
            .clone()
            .unwrap_or_default()
            .volume_claim_templates
            .unwrap_or_default();
        let claim = claim[0].spec.clone().unwrap_or_default();
        assert_eq!(
            claim.storage_class_name.as_deref(),
            Some("standard"),
            "{helm}"
        );

        // An image built with another postgres user (e.g. a Debian-based stand-in) still runs non-root.
        let other_user = render(
            &helm,
            &Values::tagged()
                .set("postgresql.runAsUser", "105")
                .set("postgresql.runAsGroup", "106"),
        );
        let pod = other_user
            .pod_spec("StatefulSet", DB)
            .security_context
            .unwrap_or_default();
        assert_eq!(
            (pod.run_as_user, pod.run_as_group, pod.fs_group),
            (Some(105), Some(106), Some(106)),
            "{helm}"
        );
    }
}

#[test]
fn an_external_database_url_turns_the_bundled_one_off() {
    for helm in Helm::all() {
        // Even with postgresql.enabled left true, a URL wins.
        let r = render(
            &helm,
            &Values::tagged().set("externalDatabase.url", "postgres://u:p@db.example/todo"),
        );
        assert_eq!(r.stateful_sets().count(), 0, "{helm}");
        let services: Vec<_> = r
            .services()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(services, vec![APP.to_owned()], "{helm}");
        let secrets: Vec<_> = r
            .secrets()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(secrets, vec![APP.to_owned()], "{helm}");
        assert_eq!(
            r.secret_value(APP, "DATABASE_URL").as_deref(),
            Some("postgres://u:p@db.example/todo"),
            "{helm}"
        );
    }
}

#[test]
fn an_existing_secret_replaces_the_charts_secret() {
    for helm in Helm::all() {
        let values = Values::tagged()
            .set("secrets.existingSecret", "todo-prod-secrets")
            .set("postgresql.enabled", "false");
        let r = render(&helm, &values);
        assert_eq!(
            r.secrets().count(),
            0,
            "{helm}: the chart must not create a Secret: {:?}",
            r.inventory()
        );
        let c = app_container(&r);
        for var in SECRET_ENV {
            assert_eq!(
                checks::env_source(&c, var),
                EnvSource::Secret {
                    name: "todo-prod-secrets".into(),
                    key: var.into(),
                    optional: var == "OPENAI_API_KEY"
                },
                "{helm}: {var}"
            );
        }
        // With the bundled database, the user's URL needs the database password they chose.
        let r = render(
            &helm,
            &Values::tagged()
                .set("secrets.existingSecret", "todo-prod-secrets")
                .set("postgresql.auth.password", "chosen-by-user"),
        );
        let secrets: Vec<_> = r
            .secrets()
            .filter_map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(secrets, vec![DB.to_owned()], "{helm}");
        assert_eq!(
            r.secret_value(DB, "APP_PASSWORD").as_deref(),
            Some("chosen-by-user"),
            "{helm}"
        );
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
            let d = r.deployment(APP);
            assert_eq!(
                d.spec.as_ref().and_then(|s| s.replicas),
                Some(replicas),
                "{helm}"
            );
            let pdbs: Vec<_> = r.pdbs().collect();
            if replicas == 1 {
                assert!(
                    pdbs.is_empty(),
                    "{helm}: PDB with one replica blocks node drains"
                );
                continue;
            }
            assert_eq!(pdbs.len(), 1, "{helm}: replicas {replicas}");
            let spec = pdbs[0].spec.clone().unwrap_or_default();
            assert_eq!(
                spec.min_available,
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1)),
                "{helm}"
            );
            let selector = spec
                .selector
                .and_then(|s| s.match_labels)
                .unwrap_or_default();
            assert_eq!(
                checks::selected_workloads(&r, &selector),
                vec![format!("Deployment {APP}")],
                "{helm}"
            );
        }
    }
}

#[test]
fn labels_and_selectors_are_consistent() {
    for helm in Helm::all() {
        for (label, values) in value_sets() {
            let r = render(&helm, &values);
            checks::assert_labels_everywhere(
                &r,
                "backend",
                BACKEND_RELEASE,
                &["backend", "database", "test"],
            );
            checks::assert_selectors_consistent(&r);
            checks::assert_valid_names(&r);
            let component = |w: &charts_tests::manifest::Workload| {
                w.pod_labels.get("app.kubernetes.io/component").cloned()
            };
            for w in r.workloads() {
                let want = match w.kind {
                    "Deployment" => "backend",
                    "StatefulSet" => "database",
                    _ => "test",
                };
                assert_eq!(
                    component(&w).as_deref(),
                    Some(want),
                    "{helm} {label}: {} {}",
                    w.kind,
                    w.name
                );
            }
        }
    }
}

#[test]
fn config_and_secret_changes_roll_the_pods() {
    fn annotations(r: &Rendered) -> (String, String) {
        let d = r.deployment(APP);
        let meta = d
            .spec
            .clone()
            .and_then(|s| s.template.metadata)
            .unwrap_or_default();
        let a = meta.annotations.unwrap_or_default();
        (
            a.get("checksum/config").cloned().expect("checksum/config"),
            a.get("checksum/secret").cloned().expect("checksum/secret"),
        )
    }
    for helm in Helm::all() {
        let base = annotations(&render(&helm, &Values::tagged()));
        // Generated secrets differ on every `helm template`, yet the checksum is stable: no spurious rollouts.
        assert_eq!(
            base,
            annotations(&render(&helm, &Values::tagged())),
            "{helm}: checksums must be stable"
        );
        let config = annotations(&render(
            &helm,
            &Values::tagged().set("config.logLevel", "debug"),
        ));
        assert_ne!(
            config.0, base.0,
            "{helm}: a config change must change checksum/config"
        );
        assert_eq!(
            config.1, base.1,
            "{helm}: a config change must not change checksum/secret"
        );
        let secret = annotations(&render(
            &helm,
            &Values::tagged().set("secrets.openaiApiKey", "sk-other"),
        ));
        assert_eq!(secret.0, base.0, "{helm}");
        assert_ne!(
            secret.1, base.1,
            "{helm}: a secret change must change checksum/secret"
        );
    }
}

#[test]
fn the_helm_test_pod_checks_health_through_the_service() {
    for helm in Helm::all() {
        let r = render(
            &helm,
            &Values::tagged().set("tests.image", "local/busybox:1"),
        );
        let pod = r.pods().next().expect("test pod");
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get("helm.sh/hook").map(String::as_str),
            Some("test"),
            "{helm}"
        );
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"), "{helm}");
        let c = &spec.containers[0];
        assert_eq!(
            c.image.as_deref(),
            Some("local/busybox:1"),
            "{helm}: tests.image"
        );
        let script = c.args.clone().unwrap_or_default().join(" ");
        for url in [
            "http://todo-backend:8000/health",
            "http://todo-backend:8000/ready",
        ] {
            assert!(
                script.contains(url),
                "{helm}: test does not fetch {url}: {script}"
            );
        }
        let off = render(&helm, &Values::tagged().set("tests.enabled", "false"));
        assert_eq!(off.pods().count(), 0, "{helm}: tests.enabled=false");
    }
}
