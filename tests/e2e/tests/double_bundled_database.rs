//! The backend chart's bundled PostgreSQL, deployed through the cluster double on the real Docker engine with the
//! real helm and the postgres stand-in (built like the official image, with its entrypoint): it initialises under
//! the chart's own UID, the backend's role owns its database and is no superuser, the superuser's password is
//! only in its Secret, and the data survives `helm uninstall` (PVC and the kept Secret) into the next install.

use e2e_tests::harness::Cluster;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

const NS: &str = "todo";
const DB: &str = "todo-backend-postgresql";

fn chart() -> String {
    testkit::tools::workspace_root()
        .join("helm/backend")
        .display()
        .to_string()
}

/// `helm upgrade --install todo-backend` with the stand-in as the database image. The API's own image is never
/// built here: only the database matters, and the API pods just wait for their image.
fn install(c: &Cluster, image: &str) -> Output {
    let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let ch = chart();
    c.tool(
        "helm",
        &[
            "upgrade",
            "--install",
            "todo-backend",
            &ch,
            "-n",
            NS,
            "--create-namespace",
            "--kube-context",
            "todo",
            "--set",
            "image.tag=not-built-here",
            "--set",
            &format!("postgresql.image.repository={repo}"),
            "--set",
            &format!("postgresql.image.tag={tag}"),
        ],
    )
}

fn db_pod(c: &Cluster) -> Option<Value> {
    c.get_json(&["pods", "-n", NS, "--context", "todo"])
        .ok()?
        .get("items")?
        .as_array()?
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "database")
        .cloned()
}

fn wait_db_ready(c: &Cluster) -> Value {
    c.poll("the database pod ready", Duration::from_secs(180), || {
        db_pod(c)
            .filter(|p| p.pointer("/status/containerStatuses/0/ready") == Some(&Value::Bool(true)))
    })
    .unwrap()
}

fn secret(c: &Cluster, name: &str, key: &str) -> Option<String> {
    use base64::Engine as _;
    let s = c
        .get_json(&["secret", name, "-n", NS, "--context", "todo"])
        .ok()?;
    let v = s.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    String::from_utf8(bytes).ok()
}

/// psql in the database pod, over TCP to the Service name (as the backend connects; not loopback, which the
/// official image's pg_hba trusts) with a password read from the mounted Secret file `password_file` (so no
/// password is on a command line): (success, stdout, stderr).
fn psql(
    c: &Cluster,
    user: &str,
    db: &str,
    password_file: &str,
    sql: &str,
) -> (bool, String, String) {
    let script = format!(
        "PGPASSWORD=\"$(cat {password_file})\" psql -h {DB} -U {user} -d {db} -XAtq -v ON_ERROR_STOP=1 -c \"{sql}\""
    );
    let out = c.tool(
        "kubectl",
        &[
            "exec",
            &format!("statefulset/{DB}"),
            "-n",
            NS,
            "--context",
            "todo",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

const APP_FILE: &str = "/run/secrets/postgresql/APP_PASSWORD";
const SUPERUSER_FILE: &str = "/run/secrets/postgresql/POSTGRES_PASSWORD";

#[test]
fn bundled_database_uses_an_unprivileged_owner_role_and_survives_uninstall() {
    let started = Instant::now();
    let Some(engine) = e2e_tests::engine_and_helm() else {
        return;
    };
    let standins = match testkit::docker::ensure_standin_images() {
        Ok(s) => s,
        Err(e) => return e2e_tests::missing_prerequisite(&format!("stand-in base images: {e}")),
    };
    // A name of this run's own for the chart's database image: other runs may use postgres:16.4-bookworm.
    let image = format!("todo-e2e-postgres:{}", testkit::unique_id());
    e2e_tests::engine::run(&["tag", &standins.postgres, &image]).expect("tag the stand-in");
    let c = Cluster::new(&e2e_tests::double_bins!()).expect("cluster double");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&c, &image)));
    c.teardown();
    let _ = e2e_tests::engine::run(&["rmi", &image]);
    drop(c);
    drop(engine);
    println!(
        "bundled database test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn scenario(c: &Cluster, image: &str) {
    c.ok(
        "minikube",
        &[
            "start",
            "-p",
            "todo",
            "--container-runtime",
            "docker",
            "--keep-context",
        ],
    )
    .unwrap();
    let out = install(c, image);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    let pod = wait_db_ready(c);
    println!(
        "first start (initdb + init script) ready after {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The container runs as the chart's own UID, which the image does not know (nss_wrapper), with no password in
    // its environment.
    let cid = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("docker://")
        .to_string();
    let inspect: Value =
        serde_json::from_str(&e2e_tests::engine::run(&["inspect", &cid]).unwrap()).unwrap();
    assert_eq!(inspect[0]["Config"]["User"], "10999:10999");
    let app_password = secret(c, DB, "APP_PASSWORD").expect("APP_PASSWORD");
    let superuser_password = secret(c, DB, "POSTGRES_PASSWORD").expect("POSTGRES_PASSWORD");
    let env = inspect[0]["Config"]["Env"].to_string();
    assert!(
        !env.contains(&app_password) && !env.contains(&superuser_password),
        "a password is in the database container's environment"
    );
    let url = secret(c, "todo-backend", "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(
        url,
        format!("postgres://todo:{app_password}@{DB}:5432/todo")
    );

    // The backend's role: logs in with its password over TCP, owns its database, is nothing more.
    let (ok, attrs, err) = psql(
        c,
        "todo",
        "todo",
        APP_FILE,
        "select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls from pg_roles where rolname = current_user",
    );
    assert!(ok, "{err}");
    assert_eq!(attrs, "f|f|f|f|f", "role attributes");
    let (ok, owner, err) = psql(
        c,
        "todo",
        "todo",
        APP_FILE,
        "select pg_get_userbyid(datdba) from pg_database where datname = current_database()",
    );
    assert!(ok, "{err}");
    assert_eq!(owner, "todo", "owner of the database");
    let (ok, _, err) = psql(
        c,
        "todo",
        "todo",
        APP_FILE,
        "create table kept_rows (v text); insert into kept_rows values ('written before uninstall')",
    );
    assert!(ok, "the owner creates tables in public: {err}");
    let (ok, _, err) = psql(c, "todo", "todo", APP_FILE, "create role intruder");
    assert!(!ok && err.contains("permission denied"), "{err}");
    let (ok, public, err) = psql(
        c,
        "postgres",
        "postgres",
        SUPERUSER_FILE,
        "select has_database_privilege('public', 'todo', 'CONNECT')",
    );
    assert!(
        ok && public == "f",
        "only the owner may connect to its database: {public} {err}"
    );
    // The superuser exists with the Secret's other password, and passwords are checked on TCP.
    let (ok, one, err) = psql(c, "postgres", "postgres", SUPERUSER_FILE, "select 1");
    assert!(ok && one == "1", "{err}");
    let (ok, _, err) = psql(c, "todo", "todo", SUPERUSER_FILE, "select 1");
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    // Neither password, nor the statement that set one, reached the server log.
    let logs = c
        .ok(
            "kubectl",
            &[
                "logs",
                &format!("statefulset/{DB}"),
                "-n",
                NS,
                "--context",
                "todo",
            ],
        )
        .unwrap();
    assert!(
        logs.contains("running /docker-entrypoint-initdb.d/10-app-role.sql"),
        "{logs}"
    );
    assert!(!logs.contains(&app_password) && !logs.contains(&superuser_password));

    // helm uninstall keeps the Secret (and the claim's data); the rest goes.
    let out = c
        .ok(
            "helm",
            &[
                "uninstall",
                "todo-backend",
                "-n",
                NS,
                "--kube-context",
                "todo",
            ],
        )
        .unwrap();
    assert!(
        out.contains("These resources were kept due to the resource policy:")
            && out.contains(&format!("[Secret] {DB}")),
        "{out}"
    );
    c.poll("the release's pods gone", Duration::from_secs(60), || {
        db_pod(c).is_none().then_some(())
    })
    .unwrap();
    assert_eq!(
        secret(c, DB, "APP_PASSWORD").as_deref(),
        Some(app_password.as_str())
    );
    assert!(
        secret(c, "todo-backend", "DATABASE_URL").is_none(),
        "the backend's Secret is not kept"
    );
    let claim: PathBuf = c
        .state
        .join("volumes")
        .join(NS)
        .join("pvc")
        .join(format!("data-{DB}-0"));
    assert!(
        claim.join("pgdata/PG_VERSION").is_file(),
        "the data volume is kept"
    );

    // The next install adopts the kept Secret, reads its passwords back and finds the old data.
    let out = install(c, image);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Instant::now();
    wait_db_ready(c);
    println!(
        "restart on the kept volume ready after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        secret(c, DB, "APP_PASSWORD").as_deref(),
        Some(app_password.as_str())
    );
    assert_eq!(
        secret(c, "todo-backend", "DATABASE_URL").as_deref(),
        Some(url.as_str()),
        "the backend gets the old role's password again"
    );
    let (ok, rows, err) = psql(c, "todo", "todo", APP_FILE, "select v from kept_rows");
    assert!(ok, "{err}");
    assert_eq!(rows, "written before uninstall");
}
