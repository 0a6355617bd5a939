//! The product running in containers the way Kubernetes runs it: PostgreSQL, the backend with the
//! network alias `todo-backend`, and the frontend with `BACKEND_URL=http://todo-backend:8000`, on a
//! user-defined network; both services `--read-only --cap-drop ALL`, ports published on 127.0.0.1.

use std::io::Read;
use std::time::{Duration, Instant};

use testkit::docker::{self, Cleanup};

use crate::http::Client;

/// How long a container may take to answer its health check.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Secrets handed to the containers at run time only (through the `docker` process environment).
pub struct Secrets {
    /// PostgreSQL password (inside `DATABASE_URL`).
    pub db_password: String,
    /// `AUTH_SECRET`.
    pub auth_secret: String,
    /// `OPENAI_API_KEY` (the endpoint is unreachable on purpose: the built-in engine answers).
    pub openai_key: String,
}

impl Secrets {
    /// Fresh random values, so a hit in a scan can only come from this run.
    pub fn random() -> Result<Self, String> {
        Ok(Secrets {
            db_password: random_hex(16)?,
            auth_secret: random_hex(32)?,
            openai_key: format!("sk-test-{}", random_hex(24)?),
        })
    }

    /// Every secret value, for scans.
    pub fn values(&self) -> Vec<&str> {
        vec![&self.db_password, &self.auth_secret, &self.openai_key]
    }
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The images to run.
pub struct Images {
    /// Backend image (name:tag).
    pub backend: String,
    /// Frontend image (name:tag).
    pub frontend: String,
    /// PostgreSQL image (the `postgres:15-bookworm` stand-in).
    pub postgres: String,
}

/// The running containers.
pub struct Stack {
    /// The user-defined network.
    pub network: String,
    /// PostgreSQL container name.
    pub postgres: String,
    /// Backend container name.
    pub backend: String,
    /// Frontend container name.
    pub frontend: String,
    /// 127.0.0.1 port of the backend.
    pub backend_port: u16,
    /// 127.0.0.1 port of the frontend.
    pub frontend_port: u16,
    /// From `docker run` of the backend to its first 200 on `/health`.
    pub backend_health_after: Duration,
    /// From `docker run` of the frontend to its first 200 on `/health`.
    pub frontend_health_after: Duration,
}

/// Starts the stack; everything carries `cleanup`'s label.
pub fn start(cleanup: &Cleanup, images: &Images, secrets: &Secrets) -> Result<Stack, String> {
    let id = cleanup.id();
    let label = cleanup.label();
    let network = format!("todo-img-{id}");
    docker::run(&["network", "create", "--label", &label, &network])?;

    let postgres = format!("todo-img-pg-{id}");
    docker::run_with_env(
        &[
            "run",
            "-d",
            "--label",
            &label,
            "--name",
            &postgres,
            "--network",
            &network,
            "--network-alias",
            "todo-backend-postgresql",
            "-e",
            "POSTGRES_USER=todo",
            "-e",
            "POSTGRES_DB=todo",
            "-e",
            "POSTGRES_PASSWORD",
            &images.postgres,
        ],
        &[("POSTGRES_PASSWORD", &secrets.db_password)],
    )?;

    let database_url = format!(
        "postgres://todo:{}@todo-backend-postgresql:5432/todo",
        secrets.db_password
    );
    let backend = format!("todo-img-backend-{id}");
    let started = Instant::now();
    docker::run_with_env(
        &[
            "run",
            "-d",
            "--label",
            &label,
            "--name",
            &backend,
            "--network",
            &network,
            "--network-alias",
            "todo-backend",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "-p",
            "127.0.0.1::8000",
            "-e",
            "DATABASE_URL",
            "-e",
            "AUTH_SECRET",
            "-e",
            "OPENAI_API_KEY",
            "-e",
            "OPENAI_BASE_URL=http://127.0.0.1:9/v1",
            "-e",
            "OPENAI_TIMEOUT_SECS=2",
            "-e",
            "LOG_FORMAT=json",
            &images.backend,
        ],
        &[
            ("DATABASE_URL", &database_url),
            ("AUTH_SECRET", &secrets.auth_secret),
            ("OPENAI_API_KEY", &secrets.openai_key),
        ],
    )?;
    let backend_port = docker::published_port(&backend, "8000/tcp")?;
    let backend_health_after = wait_ok(&backend, backend_port, "/health", started)?;

    let frontend = format!("todo-img-frontend-{id}");
    let started = Instant::now();
    docker::run(&[
        "run",
        "-d",
        "--label",
        &label,
        "--name",
        &frontend,
        "--network",
        &network,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-p",
        "127.0.0.1::3000",
        "-e",
        "BACKEND_URL=http://todo-backend:8000",
        "-e",
        "LOG_FORMAT=json",
        &images.frontend,
    ])?;
    let frontend_port = docker::published_port(&frontend, "3000/tcp")?;
    let frontend_health_after = wait_ok(&frontend, frontend_port, "/health", started)?;
    // Registration needs the database: wait for the backend's readiness too.
    wait_ok(&backend, backend_port, "/ready", started)?;
    Ok(Stack {
        network,
        postgres,
        backend,
        frontend,
        backend_port,
        frontend_port,
        backend_health_after,
        frontend_health_after,
    })
}

/// Polls `path` on a published port until it answers 200; the error carries the container's log.
fn wait_ok(container: &str, port: u16, path: &str, since: Instant) -> Result<Duration, String> {
    let mut client = Client::new(&format!("http://127.0.0.1:{port}"));
    docker::poll(
        &format!("{container} {path} answering 200"),
        START_TIMEOUT,
        || matches!(client.get(path), Ok(a) if a.status == 200).then(|| since.elapsed()),
    )
    .map_err(|e| format!("{e}\n{container} log:\n{}", logs(container)))
}

/// The end of a container's log (stdout and stderr).
pub fn logs(container: &str) -> String {
    let out = docker::docker()
        .args(["logs", "--tail", "40", container])
        .output();
    match out {
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("(cannot read logs: {e})"),
    }
}

/// The host PID of a container's main process.
pub fn pid(container: &str) -> Result<u32, String> {
    let out = docker::run(&["inspect", "--format", "{{.State.Pid}}", container])?;
    out.parse()
        .map_err(|e| format!("pid of {container}: {out:?}: {e}"))
}

/// A field of /proc/<pid>/status (e.g. `Uid`, `VmRSS`), as its whitespace-separated values.
pub fn proc_status(pid: u32, field: &str) -> Result<Vec<String>, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .ok_or_else(|| format!("no {field} in {path}"))
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let values = proc_status(pid, "VmRSS")?;
    values
        .first()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("unreadable VmRSS of {pid}: {values:?}"))
}
