//! What the end-to-end tests share: a snapshot of the workspace, the xtask binary run against a cluster
//! double (`Env`), and the setup and teardown around a scenario (`Setup`).

use crate::harness::{ensure_busybox_image, Cluster, DoubleBins};
use crate::state;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The real workspace (the tests copy it).
pub fn workspace() -> PathBuf {
    testkit::tools::workspace_root()
}

/// Copies the files git considers part of the workspace (tracked + untracked, ignored excluded).
pub fn snapshot(dest: &Path) -> anyhow::Result<()> {
    let root = workspace();
    for rel in testkit::tools::workspace_files().map_err(anyhow::Error::msg)? {
        let src = root.join(&rel);
        if !src.is_file() {
            continue;
        }
        let dst = dest.join(&rel);
        if let Some(p) = dst.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(&src, &dst)?;
    }
    Ok(())
}

/// Builds the xtask and returns its binary.
pub fn xtask_bin() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "-p", "xtask"])
        .current_dir(workspace())
        .status()?;
    anyhow::ensure!(st.success(), "cargo build -p xtask failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    Ok(target.join("debug/xtask"))
}

/// A finished xtask run.
pub struct Run {
    /// Exit code.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// How long it took.
    pub took: Duration,
}

impl Run {
    /// `(step, status, ms)` of its `--json` step events.
    pub fn steps(&self) -> Vec<(String, String, u64)> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("duration_ms").is_some() && v.get("step").is_some())
            .map(|v| {
                (
                    v["step"].as_str().unwrap_or("").to_string(),
                    v["status"]
                        .as_str()
                        .or(v["event"].as_str())
                        .unwrap_or("")
                        .to_string(),
                    v["duration_ms"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// Prints its exit, duration and step timings.
    pub fn report(&self, what: &str) {
        println!(
            "== {what}: exit {:?} in {:.1} s",
            self.code,
            self.took.as_secs_f64()
        );
        for (step, status, ms) in self.steps() {
            println!("   {step:<10} {status:<10} {:>8.1} s", ms as f64 / 1000.0);
        }
    }

    /// Its whole output, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The xtask on a workspace snapshot against a cluster double.
pub struct Env<'a> {
    /// The double.
    pub c: &'a Cluster,
    /// The xtask binary.
    pub xtask: PathBuf,
    /// The workspace snapshot.
    pub root: PathBuf,
    /// A PATH directory with the docker client BuildKit builds need.
    pub docker_dir: PathBuf,
    /// Images the double lets "pull" from the local engine.
    pub pulled: String,
    /// Every image a deploy of this test built, removed at the end.
    pub built: std::cell::RefCell<Vec<String>>,
}

impl Env<'_> {
    /// The images the `images` step of `run` built (from its `--json` events), remembered for removal.
    pub fn built_by(&self, run: &Run) -> Vec<String> {
        let detail = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["step"] == "images" && v["event"] == "step_finished")
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or_default();
        let images: Vec<String> = detail
            .strip_prefix("built ")
            .and_then(|rest| rest.split(" in ").next())
            .map(|list| list.split(", ").map(str::to_string).collect())
            .unwrap_or_default();
        self.built.borrow_mut().extend(images.iter().cloned());
        images
    }

    /// The xtask command with this double's environment, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.c.cmd(&self.xtask.display().to_string());
        let path = format!("{}:{}", self.docker_dir.display(), self.c.path);
        cmd.args(args)
            .current_dir(&self.root)
            .env("PATH", path)
            .env("TODO_WORKSPACE_ROOT", &self.root)
            .env("XTASK_DOCKER", "/usr/bin/docker")
            .env("TODO_CLUSTER_DOUBLE_RUNTIME", "containerd")
            .env("NO_COLOR", "1")
            .env("TODO_CLUSTER_DOUBLE_REGISTRY", &self.pulled)
            .env_remove("OPENAI_API_KEY")
            .env_remove("DATABASE_URL");
        cmd
    }

    /// Runs the xtask to its end.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let t = Instant::now();
        let out = self.command(args).output().expect("run xtask");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: t.elapsed(),
        }
    }

    /// The release's pods (the double's `kubectl get pods`).
    pub fn pods(&self) -> Vec<Value> {
        self.c
            .get_json(&["pods", "-n", "todo", "--context", "todo"])
            .ok()
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    /// (pod name, container id, restarts) of each pod whose name starts with `prefix`, leaving out pods being
    /// deleted: one an earlier rollout is stopping may go at any moment, and it serves nothing new.
    pub fn pod_ids(&self, prefix: &str) -> Vec<(String, String, u64)> {
        let mut v: Vec<_> = self
            .pods()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(prefix)
                    && !p["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .contains("postgresql")
            })
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    p["status"]["containerStatuses"][0]["containerID"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    p["status"]["containerStatuses"][0]["restartCount"]
                        .as_u64()
                        .unwrap_or(0),
                )
            })
            .collect();
        v.sort();
        v
    }

    pub fn calls_since(&self, n: usize) -> Vec<(String, Vec<String>)> {
        state::read_calls(&self.c.state)
            .into_iter()
            .skip(n)
            .collect()
    }

    pub fn backend_ready(&self) -> Option<bool> {
        self.pods()
            .iter()
            .find(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "backend")
            .map(|p| p["status"]["containerStatuses"][0]["ready"] == true)
    }
}

/// Lines that differ between the last two revisions of a release (why pods rolled).
pub fn revision_diff(state_dir: &Path, key: &str) -> String {
    let d = state::read_desired(state_dir).unwrap_or_default();
    let Some(r) = d.releases.get(key) else {
        return String::new();
    };
    let n = r.revisions.len();
    if n < 2 {
        return String::new();
    }
    let (a, b) = (&r.revisions[n - 2].manifest, &r.revisions[n - 1].manifest);
    // Secret data lines show as their key only: values never reach a log.
    let redact = |l: &str| match l.split_once(':') {
        Some((k, _))
            if [
                "DATABASE_URL",
                "AUTH_SECRET",
                "OPENAI_API_KEY",
                "POSTGRES_PASSWORD",
            ]
            .contains(&k.trim()) =>
        {
            format!("{k}: <redacted>")
        }
        _ => l.to_string(),
    };
    let old: Vec<String> = a
        .lines()
        .filter(|l| !b.lines().any(|x| x == *l))
        .map(redact)
        .collect();
    let new: Vec<String> = b
        .lines()
        .filter(|l| !a.lines().any(|x| x == *l))
        .map(redact)
        .collect();
    format!(
        "revision diff of {key}:\n- {}\n+ {}",
        old.join("\n- "),
        new.join("\n+ ")
    )
}

/// The images `minikube image load` was called with.
pub fn loads(calls: &[(String, Vec<String>)]) -> Vec<String> {
    calls
        .iter()
        .filter(|(t, a)| t == "minikube" && a.iter().any(|x| x == "load"))
        .filter_map(|(_, a)| a.last().cloned())
        .collect()
}

/// A free local port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

/// Makes the chart's pinned official PostgreSQL image from the stand-in (test-only naming, like the other
/// stand-ins), with the official image's `postgres` user id 999 that the chart runs as (the Debian-based
/// stand-in's user is 100). Returns the name when this test made it (removed at the end).
pub fn postgres_image(standin: &str) -> anyhow::Result<(String, bool)> {
    let values = std::fs::read_to_string(workspace().join("helm/backend/values.yaml"))?;
    let v: serde_yaml::Value = serde_yaml::from_str(&values)?;
    let repo = v["postgresql"]["image"]["repository"]
        .as_str()
        .unwrap_or("postgres");
    let tag = v["postgresql"]["image"]["tag"]
        .as_str()
        .unwrap_or("16.4-bookworm");
    let uid = v["postgresql"]["runAsUser"].as_i64().unwrap_or(999);
    let name = format!("{repo}:{tag}");
    if crate::engine::image_inspect(&name).is_some() {
        return Ok((name, false));
    }
    let dockerfile = format!(
        "FROM {standin}\nUSER 0\nRUN usermod -u {uid} postgres && groupmod -g {uid} postgres \\\n && chown -R {uid}:{uid} /var/lib/postgresql /var/run/postgresql\nUSER {uid}\n"
    );
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("Dockerfile"), dockerfile)?;
    let out = crate::engine::docker()
        .args([
            "build",
            "-q",
            "--label",
            "todo-test=e2e-postgres",
            "-t",
            &name,
        ])
        .arg(dir.path())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "building {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((name, true))
}

/// Appends a Rust line comment to a source file: a change of content, not of behaviour.
pub fn append_comment(path: &Path, text: &str) {
    let mut src =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    src.push_str(&format!("\n// {text}\n"));
    std::fs::write(path, src).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Everything a scenario needs: a Docker engine, the stand-in base images, a cluster double, the xtask
/// and a workspace snapshot whose sources no earlier run has built. Dropping it tears everything down.
pub struct Setup {
    started: Instant,
    engine: Option<testkit::docker::DockerEngine>,
    c: Cluster,
    xtask: PathBuf,
    root: PathBuf,
    docker_dir: PathBuf,
    pulled: String,
    pg: Option<String>,
}

impl Setup {
    /// None (after reporting the missing prerequisite) when Docker, the stand-ins or helm are missing.
    pub fn new(bins: &DoubleBins) -> Option<Self> {
        let started = Instant::now();
        let engine = crate::engine_and_helm()?;
        let standins = match testkit::docker::ensure_standin_images() {
            Ok(s) => s,
            Err(e) => {
                crate::missing_prerequisite(&format!("stand-in base images: {e}"));
                return None;
            }
        };
        let busybox = ensure_busybox_image().expect("busybox stand-in");
        let (pg_image, pg_made) = postgres_image(&standins.postgres)
            .expect("the PostgreSQL stand-in as the chart's image");
        let xtask = xtask_bin().expect("building the xtask");
        let c = Cluster::new(bins).expect("cluster double");
        let root = c.root.path().join("workspace");
        snapshot(&root).expect("workspace snapshot");
        // A clean state: sources no earlier run has built, so the first deploy must build both images
        // (tags are content hashes) and the test can remove exactly what it built.
        let nonce = testkit::unique_id();
        for service in ["backend", "frontend"] {
            append_comment(
                &root.join(service).join("src/main.rs"),
                &format!("e2e run {nonce}"),
            );
        }
        let docker_dir = c.root.path().join("docker-bin");
        std::fs::create_dir_all(&docker_dir).expect("docker dir");
        std::os::unix::fs::symlink("/usr/bin/docker", docker_dir.join("docker"))
            .expect("docker link");
        // Public images a real node pulls from Docker Hub: the double lets those "pull" from the local engine.
        let pulled = format!("{pg_image},{busybox}");
        Some(Self {
            started,
            engine: Some(engine),
            c,
            xtask,
            root,
            docker_dir,
            pulled,
            pg: pg_made.then_some(pg_image),
        })
    }

    /// Runs `scenario`; tears everything down, pass or fail, then passes a failure on.
    pub fn run(self, scenario: impl FnOnce(&Env<'_>)) {
        let env = Env {
            c: &self.c,
            xtask: self.xtask.clone(),
            root: self.root.clone(),
            docker_dir: self.docker_dir.clone(),
            pulled: self.pulled.clone(),
            built: Default::default(),
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&env)));
        self.c.teardown();
        for image in env.built.borrow().iter() {
            let _ = crate::engine::run(&["rmi", image]);
        }
        drop(env);
        if let Some(pg) = &self.pg {
            let _ = crate::engine::run(&["rmi", pg]);
        }
        println!("e2e total {:.1} s", self.started.elapsed().as_secs_f64());
        drop(self);
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        // The engine goes last: teardown above needed it.
        drop(self.engine.take());
    }
}
