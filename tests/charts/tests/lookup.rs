//! Generated secrets are kept across upgrades. Against a fake Kubernetes API (no cluster can run here) holding
//! the release's Secrets, `helm install --dry-run=server` runs the charts' `lookup` as a real upgrade does, and
//! must reuse the live values. Also checks the NOTES an install prints. Helm 3 and helm 4.

use std::collections::BTreeMap;

use charts_tests::fake_api::FakeApi;
use charts_tests::helm::{DryRun, Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, BACKEND_RELEASE, FRONTEND_RELEASE};

const LIVE_AUTH: &str = "live-auth-secret-kept-across-upgrades-0123456789";
const LIVE_PASSWORD: &str = "livePassword0123456789abcdefABCD";
const LIVE_SUPERUSER_PASSWORD: &str = "liveSuperuser0123456789abcdefABC";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn live_release() -> FakeApi {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "todo-backend".to_owned(),
        map(&[
            ("AUTH_SECRET", LIVE_AUTH),
            ("DATABASE_URL", "postgres://stale"),
        ]),
    );
    secrets.insert(
        "todo-backend-postgresql".to_owned(),
        map(&[
            ("POSTGRES_PASSWORD", LIVE_SUPERUSER_PASSWORD),
            ("APP_PASSWORD", LIVE_PASSWORD),
        ]),
    );
    FakeApi::start(secrets)
}

fn dry_run(helm: &Helm, api: &FakeApi, release: &str, chart: &str, values: &Values) -> DryRun {
    let out = helm
        .install_dry_run_server(api.kubeconfig(), release, &chart_dir(chart), values)
        .assert_success();
    DryRun::parse(&out.stdout)
}

#[test]
fn an_upgrade_keeps_the_generated_auth_secret_and_database_password() {
    for helm in Helm::all() {
        let api = live_release();
        let run = dry_run(&helm, &api, BACKEND_RELEASE, "backend", &Values::tagged());
        let r = Rendered::parse(&run.manifests).unwrap_or_else(|e| panic!("{helm}: {e}"));
        assert_eq!(
            r.secret_value("todo-backend", "AUTH_SECRET").as_deref(),
            Some(LIVE_AUTH),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend-postgresql", "APP_PASSWORD")
                .as_deref(),
            Some(LIVE_PASSWORD),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend-postgresql", "POSTGRES_PASSWORD")
                .as_deref(),
            Some(LIVE_SUPERUSER_PASSWORD),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend", "DATABASE_URL"),
            Some(format!(
                "postgres://todo:{LIVE_PASSWORD}@todo-backend-postgresql:5432/todo"
            )),
            "{helm}: DATABASE_URL must be rebuilt from the kept password"
        );
        let requests = api.requests();
        for name in ["todo-backend", "todo-backend-postgresql"] {
            let get = format!("GET /api/v1/namespaces/todo/secrets/{name}");
            assert!(
                requests.iter().any(|r| r == &get),
                "{helm}: no lookup of {name}: {requests:?}"
            );
        }
        assert!(
            requests.iter().all(|r| r.starts_with("GET ")),
            "{helm}: a dry run wrote: {requests:?}"
        );
    }
}

#[test]
fn given_values_win_over_live_ones_and_a_first_install_generates_fresh_ones() {
    for helm in Helm::all() {
        let api = live_release();
        let given = "given-auth-secret-0123456789abcdef0123456789";
        let values = Values::tagged()
            .set("secrets.authSecret", given)
            .set("postgresql.auth.password", "givenPw")
            .set("postgresql.auth.postgresPassword", "givenSuperPw");
        let r =
            Rendered::parse(&dry_run(&helm, &api, BACKEND_RELEASE, "backend", &values).manifests)
                .expect("parse");
        assert_eq!(
            r.secret_value("todo-backend", "AUTH_SECRET").as_deref(),
            Some(given),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend-postgresql", "APP_PASSWORD")
                .as_deref(),
            Some("givenPw"),
            "{helm}"
        );
        assert_eq!(
            r.secret_value("todo-backend-postgresql", "POSTGRES_PASSWORD")
                .as_deref(),
            Some("givenSuperPw"),
            "{helm}"
        );

        let empty = FakeApi::start(BTreeMap::new());
        let r = Rendered::parse(
            &dry_run(&helm, &empty, BACKEND_RELEASE, "backend", &Values::tagged()).manifests,
        )
        .expect("parse");
        let auth = r
            .secret_value("todo-backend", "AUTH_SECRET")
            .expect("AUTH_SECRET");
        let password = r
            .secret_value("todo-backend-postgresql", "APP_PASSWORD")
            .expect("password");
        assert!(
            auth.len() >= 32 && auth != LIVE_AUTH,
            "{helm}: generated AUTH_SECRET {} chars",
            auth.len()
        );
        assert!(
            password.len() == 32 && password != LIVE_PASSWORD,
            "{helm}: generated password"
        );
    }
}

#[test]
fn notes_tell_how_to_reach_the_app() {
    for helm in Helm::all() {
        let api = FakeApi::start(BTreeMap::new());
        let backend = dry_run(&helm, &api, BACKEND_RELEASE, "backend", &Values::tagged()).notes;
        for needle in [
            "http://todo-backend:8000",
            "cargo xtask deploy",
            "kubectl --namespace todo port-forward svc/todo-backend 8000:http",
            "helm test todo-backend --namespace todo",
            "todo-backend-postgresql",
        ] {
            assert!(
                backend.contains(needle),
                "{helm}: backend NOTES lack {needle:?}:\n{backend}"
            );
        }
        let frontend = dry_run(&helm, &api, FRONTEND_RELEASE, "frontend", &Values::tagged()).notes;
        for needle in [
            "cargo xtask deploy",
            "kubectl --namespace todo port-forward svc/todo-frontend 3000:http",
            "http://127.0.0.1:3000/",
            "BACKEND_URL=http://todo-backend:8000",
        ] {
            assert!(
                frontend.contains(needle),
                "{helm}: frontend NOTES lack {needle:?}:\n{frontend}"
            );
        }
    }
}
