//! The bundled database's data survives `helm uninstall` and comes back with the next install: what outlives an
//! uninstall (the data volume and the database's Secret, nothing else), and what an install then renders
//! against a cluster that still holds them. Against a fake Kubernetes API (no cluster can run here),
//! `helm install --dry-run=server` runs the charts' `lookup` and helm's own check of existing objects (which
//! adopts an object only when its ownership metadata names the release), as a real install does. Helm 3 and 4.

use std::collections::BTreeMap;

use charts_tests::fake_api::{claim, secret, FakeApi};
use charts_tests::helm::{DryRun, Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, value_sets, BACKEND_RELEASE, FRONTEND_RELEASE};

const DB: &str = "todo-backend-postgresql";
const CLAIM: &str = "data-todo-backend-postgresql-0";
const KEPT_APP: &str = "keptAppPassword0123456789abcdefA";
const KEPT_SUPERUSER: &str = "keptSuperuser0123456789abcdefABC";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What `helm uninstall todo-backend` leaves in namespace `todo`: the kept Secret and the claim.
fn after_uninstall(secret_data: &[(&str, &str)], release: &str) -> FakeApi {
    FakeApi::serve([secret(DB, &map(secret_data), release), claim(CLAIM, false)].into())
}

fn install(helm: &Helm, api: &FakeApi, values: &Values) -> charts_tests::helm::HelmOutput {
    helm.install_dry_run_server(
        api.kubeconfig(),
        BACKEND_RELEASE,
        &chart_dir("backend"),
        values,
    )
}

fn rendered(helm: &Helm, api: &FakeApi, values: &Values) -> Rendered {
    let out = install(helm, api, values).assert_success();
    Rendered::parse(&DryRun::parse(&out.stdout).manifests).unwrap_or_else(|e| panic!("{helm}: {e}"))
}

#[test]
fn exactly_the_database_secret_and_volume_outlive_an_uninstall() {
    for helm in Helm::all() {
        for (chart, release) in [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)] {
            for (label, values) in value_sets(chart) {
                let r = helm.render(release, &chart_dir(chart), &values);
                // helm deletes every object of the release on uninstall except those marked keep.
                let kept: Vec<(&str, String)> = r
                    .objects
                    .iter()
                    .map(|o| o.meta())
                    .filter(|(_, m)| {
                        m.annotations
                            .as_ref()
                            .and_then(|a| a.get("helm.sh/resource-policy"))
                            .is_some_and(|p| p == "keep")
                    })
                    .map(|(kind, m)| (kind, m.name.clone().unwrap_or_default()))
                    .collect();
                // StatefulSet claims are made by the controller, not helm, and retained when it is deleted.
                let claims: Vec<String> = r
                    .stateful_sets()
                    .flat_map(|s| {
                        let spec = s.spec.clone().unwrap_or_default();
                        let policy = spec
                            .persistent_volume_claim_retention_policy
                            .unwrap_or_default();
                        assert_eq!(
                            (
                                policy.when_deleted.as_deref(),
                                policy.when_scaled.as_deref()
                            ),
                            (Some("Retain"), Some("Retain")),
                            "{helm} {label}: claims retained"
                        );
                        let name = s.metadata.name.clone().unwrap_or_default();
                        spec.volume_claim_templates
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |c| {
                                format!("{}-{name}-0", c.metadata.name.unwrap_or_default())
                            })
                    })
                    .collect();
                let bundled = chart == "backend" && !label.contains("external");
                if bundled {
                    assert_eq!(kept, [("Secret", DB.to_owned())], "{helm} {label}");
                    assert_eq!(claims, [CLAIM], "{helm} {label}");
                    // The kept Secret carries what the xtask's `clean --purge-data` selects on.
                    let labels = r.secret(DB).metadata.labels.clone().unwrap_or_default();
                    assert_eq!(
                        labels
                            .get("app.kubernetes.io/component")
                            .map(String::as_str),
                        Some("database"),
                        "{helm}"
                    );
                } else {
                    assert!(
                        kept.is_empty() && claims.is_empty(),
                        "{helm} {chart} {label}: {kept:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_install_after_uninstall_adopts_the_kept_secret_and_its_passwords() {
    for helm in Helm::all() {
        let api = after_uninstall(
            &[
                ("POSTGRES_PASSWORD", KEPT_SUPERUSER),
                ("APP_PASSWORD", KEPT_APP),
            ],
            BACKEND_RELEASE,
        );
        let r = rendered(&helm, &api, &Values::tagged());
        assert_eq!(
            r.secret_value(DB, "APP_PASSWORD").as_deref(),
            Some(KEPT_APP),
            "{helm}"
        );
        assert_eq!(
            r.secret_value(DB, "POSTGRES_PASSWORD").as_deref(),
            Some(KEPT_SUPERUSER),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend", "DATABASE_URL"),
            Some(format!("postgres://todo:{KEPT_APP}@{DB}:5432/todo")),
            "{helm}: the backend can read the old data"
        );
        // The backend's own Secret went with the uninstall: a fresh AUTH_SECRET (users sign in again).
        let auth = r
            .secret_value("todo-backend", "AUTH_SECRET")
            .unwrap_or_default();
        assert_eq!(auth.len(), 48, "{helm}");
        let requests = api.requests();
        assert!(
            requests
                .iter()
                .any(|q| q == &format!("GET /api/v1/namespaces/todo/secrets/{DB}")),
            "{helm}: {requests:?}"
        );
        assert!(
            requests.iter().all(|q| q.starts_with("GET ")),
            "{helm}: {requests:?}"
        );
    }
}

#[test]
fn a_secret_that_is_not_the_releases_is_not_taken_over() {
    for helm in Helm::all() {
        let api = after_uninstall(
            &[
                ("POSTGRES_PASSWORD", KEPT_SUPERUSER),
                ("APP_PASSWORD", KEPT_APP),
            ],
            "some-other-release",
        );
        let out = install(&helm, &api, &Values::tagged()).assert_failure();
        assert!(
            out.contains(DB) && out.contains("cannot be imported"),
            "{helm}: helm must refuse to adopt it:\n{out}"
        );
        assert!(
            !out.contains(KEPT_APP) && !out.contains(KEPT_SUPERUSER),
            "{helm}: {out}"
        );
    }
}

#[test]
fn a_volume_from_chart_0_1_0_keeps_running_as_it_was_initialised() {
    for helm in Helm::all() {
        // Chart 0.1.0: the backend's user `todo` was the superuser, with POSTGRES_PASSWORD, and ran as 999.
        let api = after_uninstall(&[("POSTGRES_PASSWORD", KEPT_APP)], BACKEND_RELEASE);
        let r = rendered(&helm, &api, &Values::tagged());
        let secret = r.secret(DB);
        let keys: Vec<_> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            keys,
            ["POSTGRES_PASSWORD"],
            "{helm}: the Secret stays in its 0.1.0 shape"
        );
        assert_eq!(
            r.secret_value(DB, "POSTGRES_PASSWORD").as_deref(),
            Some(KEPT_APP),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend", "DATABASE_URL"),
            Some(format!("postgres://todo:{KEPT_APP}@{DB}:5432/todo")),
            "{helm}"
        );
        let spec = r.pod_spec("StatefulSet", DB);
        let sc = spec.security_context.clone().unwrap_or_default();
        assert_eq!(
            (sc.run_as_user, sc.run_as_group, sc.fs_group),
            (Some(999), Some(999), Some(999)),
            "{helm}: the data directory belongs to 999"
        );
        let c = &spec.containers[0];
        let env: BTreeMap<String, String> = c
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect();
        assert_eq!(
            env.get("POSTGRES_USER").map(String::as_str),
            Some("todo"),
            "{helm}"
        );
        assert_eq!(
            env.get("POSTGRES_DB").map(String::as_str),
            Some("todo"),
            "{helm}"
        );
        assert!(
            spec.volumes
                .iter()
                .flatten()
                .all(|v| v.config_map.is_none())
                && !r.inventory().iter().any(|(_, n)| n.ends_with("-init")),
            "{helm}: no init script for a database that exists"
        );
    }
}

#[test]
fn a_kept_volume_without_its_secret_stops_the_install() {
    for helm in Helm::all() {
        let api = FakeApi::serve([claim(CLAIM, false)].into());
        let out = install(&helm, &api, &Values::tagged()).assert_failure();
        for needle in [CLAIM, DB, "postgresql.auth.password", "delete pvc"] {
            assert!(
                out.contains(needle),
                "{helm}: message lacks {needle:?}:\n{out}"
            );
        }
        // Given the old password, or with the claim already on its way out, the install goes ahead.
        let r = rendered(
            &helm,
            &api,
            &Values::tagged().set("postgresql.auth.password", "theOldOne"),
        );
        assert_eq!(
            r.secret_value(DB, "APP_PASSWORD").as_deref(),
            Some("theOldOne"),
            "{helm}"
        );
        let deleting = FakeApi::serve([claim(CLAIM, true)].into());
        let r = rendered(&helm, &deleting, &Values::tagged());
        assert_eq!(
            r.secret_value(DB, "APP_PASSWORD").map(|p| p.len()),
            Some(32),
            "{helm}"
        );
        let requests = deleting.requests();
        let get = format!("GET /api/v1/namespaces/todo/persistentvolumeclaims/{CLAIM}");
        assert!(requests.contains(&get), "{helm}: {requests:?}");
    }
}
