//! Bad values fail at render time (so `helm install` and `helm upgrade` fail before touching the cluster)
//! with a message that names what is wrong, with helm 3 and helm 4.

use charts_tests::helm::{Helm, Values};
use charts_tests::{chart_dir, BACKEND_RELEASE, FRONTEND_RELEASE};

const CHARTS: [(&str, &str); 2] = [("backend", BACKEND_RELEASE), ("frontend", FRONTEND_RELEASE)];

/// Renders `chart` with `values`, expects failure, and checks every one of `needles` is in the message.
fn assert_rejected(helm: &Helm, chart: &str, release: &str, values: Values, needles: &[&str]) {
    let message = helm
        .template(release, &chart_dir(chart), &values)
        .assert_failure();
    for needle in needles {
        assert!(
            message.to_lowercase().contains(&needle.to_lowercase()),
            "{helm} {chart}: message lacks {needle:?}:\n{message}"
        );
    }
}

#[test]
fn a_misspelled_key_is_named_at_any_depth() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("replicaCont", "2"),
                &["replicaCont", "not allowed"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("config.logLevl", "debug"),
                &["logLevl", "not allowed"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("image.tags", "x"),
                &["tags", "not allowed"],
            );
        }
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("postgresql.persistance.size", "1Gi"),
            &["persistance", "not allowed"],
        );
    }
}

#[test]
fn replicas_must_be_an_integer_from_one_to_three() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("replicaCount", "0"),
                &["replicaCount"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("replicaCount", "4"),
                &["replicaCount"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("replicaCount", "two"),
                &["replicaCount", "integer"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("replicaCount", "1.5"),
                &["replicaCount"],
            );
        }
    }
}

#[test]
fn the_image_tag_is_required_and_never_latest() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            assert_rejected(
                &helm,
                chart,
                release,
                Values::new(),
                &["image.tag is required"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::new().set("image.tag", ""),
                &["image.tag is required"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::new().set("image.tag", "latest"),
                &["must not be \"latest\""],
            );
        }
    }
}

#[test]
fn a_disabled_database_without_an_external_url_is_refused() {
    for helm in Helm::all() {
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("postgresql.enabled", "false"),
            &[
                "postgresql.enabled=false needs a database",
                "externalDatabase.url",
            ],
        );
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged()
                .set("postgresql.enabled", "false")
                .set("externalDatabase.url", ""),
            &["externalDatabase.url"],
        );
    }
}

#[test]
fn inconsistent_secret_settings_are_refused() {
    for helm in Helm::all() {
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("secrets.authSecret", "too-short"),
            &["secrets.authSecret must be at least 32 characters"],
        );
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("secrets.existingSecret", "mine"),
            &["postgresql.auth.password"],
        );
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("postgresql.runAsUser", "0"),
            &["runAsUser"],
        );
        assert_rejected(
            &helm,
            "backend",
            BACKEND_RELEASE,
            Values::tagged().set("externalDatabase.url", "mysql://u:p@h/db"),
            &["url"],
        );
    }
}

#[test]
fn wrong_types_and_enums_are_refused() {
    for helm in Helm::all() {
        for (chart, release) in CHARTS {
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("config.logFormat", "xml"),
                &["logFormat"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("image.pullPolicy", "Sometimes"),
                &["pullPolicy"],
            );
            assert_rejected(
                &helm,
                chart,
                release,
                Values::tagged().set("service.port", "http"),
                &["port"],
            );
        }
        assert_rejected(
            &helm,
            "frontend",
            FRONTEND_RELEASE,
            Values::tagged().set("backendUrl", "todo-backend:8000"),
            &["backendUrl"],
        );
    }
}
