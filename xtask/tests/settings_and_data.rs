//! Settings survive redeploys and data survives `clean`: the real xtask binary against the tool doubles
//! (tests/doubles), the charts rendered by the real helm 3 inside the double's `helm upgrade`, so "the
//! release's Secret" and "the objects" below are what the real chart made of the values the xtask handed on.

mod deploy_support;

use deploy_support::Env;
use serde_json::Value;

const KEY: &str = "sk-test-settings-0123456789";
const NEON: &str = "postgres://app:s3cret-pw@ep-cool-1.eu.aws.neon.tech/todo?sslmode=require";
const OTHER: &str = "postgres://app:other-pw@db.example.com/todo";

/// An environment whose helm renders the real charts; None (after the CI check) without helm 3.
fn env() -> Option<Env> {
    let env = Env::new().with_real_helm(testkit::tools::helm3());
    if env.real_helm.is_none() {
        testkit::ci::missing_prerequisite(
            "helm 3 (.ci/fetch-tools.sh): the charts are rendered with it",
        );
        return None;
    }
    Some(env)
}

/// `KEY` of the backend's Secret as the real chart rendered it on the last upgrade.
fn secret(env: &Env, key: &str) -> Option<String> {
    env.state()["rendered_secrets"]["todo-backend"]["todo-backend"][key]
        .as_str()
        .map(str::to_string)
}

fn env_file(env: &Env, name: &str, text: &str) -> String {
    let p = env.dir.path().join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    p.display().to_string()
}

fn deploy(env: &Env, extra: &[&str]) -> deploy_support::Run {
    let mut args = vec!["deploy", "--no-smoke", "--port", "0"];
    args.extend_from_slice(extra);
    env.run(&args)
}

#[test]
fn a_redeploy_without_the_settings_keeps_them() {
    let Some(env) = env() else { return };
    let file = env_file(
        &env,
        "first.env",
        &format!("OPENAI_API_KEY={KEY}\nDATABASE_URL={NEON}\n"),
    );
    deploy(&env, &["--env-file", &file]).assert_code(0);
    assert_eq!(secret(&env, "OPENAI_API_KEY").as_deref(), Some(KEY));
    assert_eq!(secret(&env, "DATABASE_URL").as_deref(), Some(NEON));
    // A new shell without the file or the variables: nothing is lost, no bundled database appears.
    let run = deploy(&env, &[]);
    run.assert_code(0);
    assert_eq!(
        secret(&env, "OPENAI_API_KEY").as_deref(),
        Some(KEY),
        "the key was dropped"
    );
    assert_eq!(
        secret(&env, "DATABASE_URL").as_deref(),
        Some(NEON),
        "the database changed"
    );
    assert!(
        env.state()["rendered_secrets"]["todo-backend"]["todo-backend-postgresql"].is_null(),
        "the bundled PostgreSQL came back: {}",
        env.state()["rendered_secrets"]
    );
    assert!(
        run.stdout.contains("OPENAI_API_KEY kept from the release")
            && run.stdout.contains("DATABASE_URL kept from the release"),
        "{}",
        run.stdout
    );
    for s in [KEY, "s3cret-pw"] {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "{s} printed"
        );
    }
}

#[test]
fn unset_removes_a_setting_and_dry_run_shows_it() {
    let Some(env) = env() else { return };
    let file = env_file(&env, "first.env", &format!("OPENAI_API_KEY={KEY}\n"));
    deploy(&env, &["--env-file", &file]).assert_code(0);
    let dry = env.run(&["deploy", "--dry-run", "--unset", "OPENAI_API_KEY"]);
    dry.assert_code(0);
    assert!(
        dry.stdout.contains("OPENAI_API_KEY removed (--unset)"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        secret(&env, "OPENAI_API_KEY").as_deref(),
        Some(KEY),
        "--dry-run changed it"
    );
    deploy(&env, &["--unset", "OPENAI_API_KEY"]).assert_code(0);
    assert_eq!(secret(&env, "OPENAI_API_KEY"), None);
    let bad = env.run(&["deploy", "--unset", "PASSWORD"]);
    bad.assert_code(2);
    assert!(
        bad.stderr.contains("PASSWORD is not a setting"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_database_switch_stops_before_anything_changes_unless_asked_for() {
    let Some(env) = env() else { return };
    deploy(&env, &[]).assert_code(0);
    let bundled = secret(&env, "DATABASE_URL").unwrap_or_default();
    assert!(
        bundled.contains("@todo-backend-postgresql:5432/"),
        "{bundled}"
    );
    for (to, shown) in [
        (NEON, "postgres://ep-cool-1.eu.aws.neon.tech/todo"),
        (OTHER, "postgres://db.example.com/todo"),
    ] {
        env.clear_calls();
        let file = env_file(&env, "switch.env", &format!("DATABASE_URL={to}\n"));
        let run = deploy(&env, &["--env-file", &file]);
        run.assert_code(4);
        assert!(
            run.stderr.contains("would switch the backend from"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(shown), "{}", run.stderr);
        assert!(run.stderr.contains("--switch-database"), "{}", run.stderr);
        assert!(!run.stderr.contains("s3cret-pw") && !run.stderr.contains("other-pw"));
        // Stopped before the images step: nothing built, loaded or upgraded.
        env.assert_nothing_built_or_upgraded();
        let run = deploy(&env, &["--env-file", &file, "--switch-database"]);
        run.assert_code(0);
        assert_eq!(secret(&env, "DATABASE_URL").as_deref(), Some(to));
    }
    // External -> bundled is a switch too: --unset DATABASE_URL alone stops.
    deploy(&env, &["--unset", "DATABASE_URL"]).assert_code(4);
    deploy(&env, &["--unset", "DATABASE_URL", "--switch-database"]).assert_code(0);
    assert!(
        secret(&env, "DATABASE_URL").is_some_and(|u| u.contains("@todo-backend-postgresql:5432/"))
    );
}

#[test]
fn a_dot_env_at_the_workspace_root_is_read_and_the_environment_wins() {
    let Some(env) = env() else { return };
    std::fs::write(
        env.root.join(".env"),
        format!("# like docker compose\nOPENAI_API_KEY={KEY}\nAUTH_SECRET=from-dot-env-0123456789-0123456789-xx\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut c = env.xtask(&["deploy", "--no-smoke", "--port", "0"]);
    c.env("AUTH_SECRET", "from-the-environment-0123456789-0123456789");
    let out = c.output().unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("from {}", env.root.join(".env").display())),
        "{stdout}"
    );
    assert_eq!(secret(&env, "OPENAI_API_KEY").as_deref(), Some(KEY));
    assert_eq!(
        secret(&env, "AUTH_SECRET").as_deref(),
        Some("from-the-environment-0123456789-0123456789")
    );
    let config: &Value = &env.state()["releases"]["todo-backend"]["config"];
    assert_eq!(config["secrets"]["openaiApiKey"], KEY);
}

/// `Kind/name` of the objects the double's cluster holds in namespace `todo`.
fn objects(env: &Env) -> Vec<String> {
    env.state()["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["namespace"] == "todo")
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

const PVC: &str = "PersistentVolumeClaim/data-todo-backend-postgresql-0";
const PG_SECRET: &str = "Secret/todo-backend-postgresql";

#[test]
fn clean_keeps_the_database_and_purge_data_removes_it_after_asking() {
    let Some(env) = env() else { return };
    deploy(&env, &[]).assert_code(0);
    assert!(
        objects(&env).contains(&PVC.to_string()),
        "{:?}",
        objects(&env)
    );
    let run = env.run(&["clean"]);
    run.assert_code(0);
    let left = objects(&env);
    assert_eq!(
        left,
        [PG_SECRET, PVC],
        "only the data outlives clean: {left:?}"
    );
    // kubectl lists `get persistentvolumeclaims,secrets` kind by kind, in the order asked for.
    assert!(
        run.stdout.contains("kept the bundled database's data in namespace todo: pvc data-todo-backend-postgresql-0, secret todo-backend-postgresql")
            && run.stdout.contains("cargo xtask clean --purge-data")
            && run.stdout.contains("kept namespace todo"),
        "{}",
        run.stdout
    );
    assert!(
        env.state()["namespaces"].to_string().contains("\"todo\""),
        "the namespace went"
    );
    // A deploy after clean adopts the kept objects: still one claim, and the release owns its Secret again.
    deploy(&env, &[]).assert_code(0);
    assert_eq!(
        objects(&env)
            .iter()
            .filter(|o| o.starts_with("PersistentVolumeClaim/"))
            .count(),
        1
    );
    // --purge-data without a terminal and without --yes deletes nothing.
    let run = env.run(&["clean", "--purge-data"]);
    run.assert_code(4);
    assert!(
        run.stderr
            .contains("refusing to delete the bundled database's data"),
        "{}",
        run.stderr
    );
    assert!(objects(&env).contains(&PVC.to_string()));
    let dry = env.run(&["clean", "--purge-data", "--dry-run"]);
    dry.assert_code(0);
    assert!(
        dry.stdout.contains(
            "would remove: pvc data-todo-backend-postgresql-0 (the bundled database's data)"
        ),
        "{}",
        dry.stdout
    );
    let run = env.run(&["clean", "--purge-data", "--yes"]);
    run.assert_code(0);
    assert!(objects(&env).is_empty(), "{:?}", objects(&env));
    assert!(
        !env.state()["namespaces"].to_string().contains("\"todo\""),
        "namespace kept after --purge-data"
    );
}
