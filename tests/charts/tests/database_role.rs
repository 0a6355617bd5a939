//! The backend connects to the bundled PostgreSQL as a role that owns its database and is not a superuser; the
//! superuser's credentials serve only the image's first-start initialisation. Checked on the rendered objects
//! with helm 3 and helm 4: the two passwords, where each one goes (and does not), how the official image's
//! entrypoint finds them (`*_FILE`, a Secret volume) and the init script it runs (a ConfigMap in
//! /docker-entrypoint-initdb.d). That the script really makes such a role is checked on a live PostgreSQL
//! in the e2e test `double_bundled_database`.

use charts_tests::checks::{self, EnvSource};
use charts_tests::helm::{Helm, Values};
use charts_tests::manifest::Rendered;
use charts_tests::{chart_dir, BACKEND_RELEASE};
use k8s_openapi::api::core::v1::{Container, PodSpec};

const DB: &str = "todo-backend-postgresql";

fn render(helm: &Helm, values: &Values) -> Rendered {
    helm.render(BACKEND_RELEASE, &chart_dir("backend"), values)
}

fn db_pod(r: &Rendered) -> (PodSpec, Container) {
    let spec = r.pod_spec("StatefulSet", DB);
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == "postgresql")
        .cloned()
        .expect("postgresql container");
    (spec, c)
}

/// Where the pod mounts volume `volume`, if it does.
fn mount_of(c: &Container, volume: &str) -> Option<String> {
    c.volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume)
        .map(|m| m.mount_path.clone())
}

/// The init script the entrypoint runs, and the directory it is mounted at.
fn init_script(r: &Rendered) -> (String, String) {
    let (spec, c) = db_pod(r);
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.config_map.is_some())
        .expect("a ConfigMap volume");
    let dir = mount_of(&c, &volume.name).expect("mounted");
    let cm_name = volume
        .config_map
        .clone()
        .map(|c| c.name)
        .unwrap_or_default();
    let data = r.config_map(&cm_name).data.clone().unwrap_or_default();
    let files: Vec<_> = data.keys().cloned().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].ends_with(".sql"),
        "the entrypoint runs *.sql with psql: {files:?}"
    );
    (data[&files[0]].clone(), dir)
}

#[test]
fn the_backend_gets_its_own_role_and_never_the_superusers_password() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let app = r.secret_value(DB, "APP_PASSWORD").expect("APP_PASSWORD");
        let superuser = r
            .secret_value(DB, "POSTGRES_PASSWORD")
            .expect("POSTGRES_PASSWORD");
        assert_ne!(app, superuser, "{helm}");
        let url = r
            .secret_value("todo-backend", "DATABASE_URL")
            .expect("DATABASE_URL");
        assert_eq!(
            url,
            format!("postgres://todo:{app}@{DB}:5432/todo"),
            "{helm}: the backend connects as role todo"
        );
        // The superuser's password is in the database's Secret and nowhere else: not in the backend's Secret,
        // not in any ConfigMap, environment or annotation.
        let backend_secret = r.secret("todo-backend");
        for (key, value) in backend_secret.data.iter().flatten() {
            assert!(
                !String::from_utf8_lossy(&value.0).contains(&superuser),
                "{helm}: backend Secret key {key} holds the superuser's password"
            );
        }
        checks::assert_secrets_hidden(&r, &[&superuser, &app]);
        // The backend's pods see only their own Secret.
        let api = r.container("Deployment", "todo-backend", "backend");
        for e in api.env.iter().flatten() {
            if let EnvSource::Secret { name, .. } = checks::env_source(&api, &e.name) {
                assert_eq!(name, "todo-backend", "{helm}: env {}", e.name);
            }
        }
    }
}

#[test]
fn the_entrypoint_reads_both_passwords_from_a_secret_volume_not_the_environment() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let (spec, c) = db_pod(&r);
        assert_eq!(
            checks::env_source(&c, "POSTGRES_USER"),
            EnvSource::Literal("postgres".into()),
            "{helm}: the superuser initialises"
        );
        for e in c.env.iter().flatten() {
            assert!(
                !matches!(checks::env_source(&c, &e.name), EnvSource::Secret { .. }),
                "{helm}: {} comes from a Secret into the environment",
                e.name
            );
        }
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.secret.is_some())
            .expect("a Secret volume");
        let source = volume.secret.clone().unwrap_or_default();
        assert_eq!(source.secret_name.as_deref(), Some(DB), "{helm}");
        assert_eq!(
            source.default_mode,
            Some(0o440),
            "{helm}: files readable by owner and fsGroup only"
        );
        let dir = mount_of(&c, &volume.name).expect("Secret volume mounted");
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == volume.name)
            .expect("mount");
        assert_eq!(mount.read_only, Some(true), "{helm}");
        // The official entrypoint's file_env: POSTGRES_PASSWORD_FILE names the file holding POSTGRES_PASSWORD.
        assert_eq!(
            checks::env_source(&c, "POSTGRES_PASSWORD_FILE"),
            EnvSource::Literal(format!("{dir}/POSTGRES_PASSWORD")),
            "{helm}"
        );
        // The Secret has that key (no `items` filter drops it).
        assert!(source.items.is_none(), "{helm}");
        assert!(r.secret_value(DB, "POSTGRES_PASSWORD").is_some(), "{helm}");
        // The init script reads the role's password from the same volume.
        let (sql, _) = init_script(&r);
        assert!(
            sql.contains(&format!("`cat {dir}/APP_PASSWORD`")),
            "{helm}: {sql}"
        );
    }
}

#[test]
fn the_init_script_makes_an_unprivileged_owner_of_the_database() {
    for helm in Helm::all() {
        let r = render(
            &helm,
            &Values::tagged()
                .set("postgresql.auth.username", "tasks_app")
                .set("postgresql.auth.database", "tasks"),
        );
        let (sql, dir) = init_script(&r);
        assert_eq!(dir, "/docker-entrypoint-initdb.d", "{helm}");
        for needle in [
            "\\set ON_ERROR_STOP on",
            "\\set app_user 'tasks_app'",
            "\\set app_database 'tasks'",
            "CREATE ROLE :\"app_user\" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'app_password';",
            "CREATE DATABASE :\"app_database\" OWNER :\"app_user\";",
            "REVOKE ALL ON DATABASE :\"app_database\" FROM PUBLIC;",
            "ALTER SCHEMA public OWNER TO :\"app_user\";",
            // The statement with the password is never written to the server log, even when it fails.
            "SET log_min_error_statement = 'panic';",
        ] {
            assert!(sql.contains(needle), "{helm}: init script lacks {needle:?}:\n{sql}");
        }
        let url = r
            .secret_value("todo-backend", "DATABASE_URL")
            .expect("DATABASE_URL");
        assert!(
            url.starts_with("postgres://tasks_app:") && url.ends_with(&format!("@{DB}:5432/tasks")),
            "{helm}: DATABASE_URL names the role and database"
        );
        // The probes ask for that database as that role.
        let (_, c) = db_pod(&r);
        let probe = c
            .readiness_probe
            .and_then(|p| p.exec)
            .and_then(|e| e.command)
            .unwrap_or_default();
        assert!(
            probe.windows(2).any(|w| w == ["-U", "tasks_app"])
                && probe.windows(2).any(|w| w == ["-d", "tasks"]),
            "{helm}: {probe:?}"
        );
    }
}

#[test]
fn the_database_runs_under_its_own_high_uid() {
    for helm in Helm::all() {
        let r = render(&helm, &Values::tagged());
        let (spec, _) = db_pod(&r);
        let sc = spec.security_context.unwrap_or_default();
        assert_eq!(
            (sc.run_as_user, sc.run_as_group, sc.fs_group),
            (Some(10999), Some(10999), Some(10999)),
            "{helm}"
        );
        let app = r
            .pod_spec("Deployment", "todo-backend")
            .security_context
            .unwrap_or_default();
        assert_ne!(
            app.run_as_user, sc.run_as_user,
            "{helm}: not the API's UID either"
        );
    }
}
