//! A Docker engine for tests, and the stand-in base images the product's Dockerfiles build on.
//!
//! No registry is reachable on CI machines, so tests that build or run images:
//!
//! ```no_run
//! use testkit::docker::{self, DockerEngine, Cleanup};
//! # fn t() -> Result<(), String> {
//! let engine = DockerEngine::ensure()?;          // an engine that answers, or `dockerd` started here
//! let bases = docker::ensure_standin_images()?;  // rust:<v>-slim-bookworm, distroless cc, postgres:15-bookworm
//! let cleanup = Cleanup::new("e2e");             // removes what carries its label, pass or fail
//! let args = docker::standin_build_args(&bases);
//! docker::build(&docker::workspace_root(), "backend/Dockerfile", "todo-backend:e2e", &cleanup, &args)?;
//! cleanup.track_image("todo-backend:e2e");
//! let net = format!("todo-e2e-{}", cleanup.id());
//! docker::run(&["network", "create", "--label", &cleanup.label(), &net])?;
//! docker::run(&["run", "-d", "--label", &cleanup.label(), "--network", &net, "postgres:15-bookworm"])?;
//! # drop((engine, bases)); Ok(()) }
//! ```
//!
//! Declare `cleanup` after `engine` so it is dropped first (Rust drops locals in reverse order):
//! the containers go before the engine this process may stop. Every container, network, volume
//! and image a test makes should carry `cleanup.label()` (`--label todo-test=<run id>`), or be
//! registered with [`Cleanup::track_image`]. The stand-in base images and the build cache stay:
//! they are cache. Secrets go to containers through `-e NAME` with the value in the environment of
//! the `docker` process ([`run_with_env`]), never on a command line.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a freshly started `dockerd` may take to answer `docker info`.
const ENGINE_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How many times a `dockerd` that dies before answering is started again.
const ENGINE_START_ATTEMPTS: u32 = 3;
/// How long a `dockerd` started here may take to stop after SIGTERM before it is killed. Generous:
/// a killed engine leaves half-written network state that the next start may die restoring.
const ENGINE_STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// The label key that marks what a test made (value: the run id).
pub const TEST_LABEL: &str = "todo-test";

/// The Docker client: `$DOCKER_BIN`, else Debian's `/usr/bin/docker` (20.10, builds with BuildKit;
/// the preinstalled /usr/local/bin/docker has no buildx plugin, so its BuildKit builds fail).
pub fn docker_bin() -> PathBuf {
    match std::env::var_os("DOCKER_BIN") {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => PathBuf::from("/usr/bin/docker"),
    }
}

/// The workspace root (the build context of both Dockerfiles).
pub fn workspace_root() -> PathBuf {
    crate::tools::workspace_root()
}

/// A `docker` command with `DOCKER_BUILDKIT=1`, its output captured.
pub fn docker() -> Command {
    let mut cmd = Command::new(docker_bin());
    cmd.env("DOCKER_BUILDKIT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `docker <args>` and returns its trimmed stdout, or an error naming the command and its stderr.
pub fn run(args: &[&str]) -> Result<String, String> {
    run_with_env(args, &[])
}

/// Like [`run`], with extra environment for the `docker` process: pass secrets to a container as
/// `-e NAME` in `args` and the value here, so it never appears on a command line.
pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let mut cmd = docker();
    cmd.args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", docker_bin().display()))?;
    checked(args, output)
}

fn checked(args: &[&str], output: Output) -> Result<String, String> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            output.status,
            tail(&String::from_utf8_lossy(&output.stderr), 40)
        ))
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// True when a Docker engine answers `docker info`.
pub fn engine_answers() -> bool {
    docker()
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A `dockerd` this process started, shared by every [`DockerEngine`] guard alive in it.
struct Started {
    child: Child,
    users: usize,
    log: PathBuf,
}

static STARTED: Mutex<Option<Started>> = Mutex::new(None);

/// A Docker engine that answers. Holds a reference to a `dockerd` started by this process (if any):
/// the last guard dropped stops it. An engine that was already running is never stopped.
pub struct DockerEngine {
    owned: bool,
}

impl DockerEngine {
    /// Uses the engine that answers, or starts `/usr/sbin/dockerd` (as root, default data root
    /// /var/lib/docker so base images and build cache persist between runs) and waits for it.
    pub fn ensure() -> Result<Self, String> {
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = started.as_mut() {
            s.users += 1;
            return Ok(DockerEngine { owned: true });
        }
        if engine_answers() {
            return Ok(DockerEngine { owned: false });
        }
        let dockerd = dockerd_bin().ok_or(
            "no Docker engine answers and dockerd is not installed (apt-get install docker.io)",
        )?;
        let log = std::env::temp_dir().join(format!("todo-dockerd-{}.log", std::process::id()));
        let mut failures = Vec::new();
        for attempt in 1..=ENGINE_START_ATTEMPTS {
            match start_dockerd(&dockerd, &log)? {
                Start::Answering(child) => {
                    if !failures.is_empty() {
                        eprintln!(
                            "dockerd answered on attempt {attempt} after: {}",
                            failures.join("; ")
                        );
                    }
                    *started = Some(Started {
                        child,
                        users: 1,
                        log,
                    });
                    return Ok(DockerEngine { owned: true });
                }
                Start::OtherEngine => return Ok(DockerEngine { owned: false }),
                // dockerd 20.10 can die while restoring the state an engine stopped a moment
                // earlier left behind (seen on CI as a panic under `initNetworkController`); a
                // fresh start reads the state the dead one settled.
                Start::Exited(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
        }
        Err(format!(
            "dockerd exited before answering, {ENGINE_START_ATTEMPTS} times; its log: {}\n{}",
            log.display(),
            failures.join("\n")
        ))
    }

    /// True when this process started the engine (and will stop it when the last guard drops).
    pub fn started_here(&self) -> bool {
        self.owned
    }
}

fn wait_for_engine(deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if engine_answers() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// How one start of `dockerd` ended.
enum Start {
    /// It answers `docker info`.
    Answering(Child),
    /// It exited, but an engine another process started answers.
    OtherEngine,
    /// It exited before answering: what its log says about why.
    Exited(String),
}

fn start_dockerd(dockerd: &Path, log: &Path) -> Result<Start, String> {
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err_file = log_file
        .try_clone()
        .map_err(|e| format!("cannot reuse {}: {e}", log.display()))?;
    let mut child = Command::new(dockerd)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", dockerd.display()))?;
    let deadline = Instant::now() + ENGINE_START_TIMEOUT;
    loop {
        if engine_answers() {
            return Ok(Start::Answering(child));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            // Another process may have started an engine at the same moment: use it if it answers.
            if engine_answers() || (text.contains("docker.pid") && wait_for_engine(deadline)) {
                return Ok(Start::OtherEngine);
            }
            return Ok(Start::Exited(format!("{status}: {}", why_it_died(&text))));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "dockerd did not answer within {ENGINE_START_TIMEOUT:?}; log: {}",
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The lines of a dead `dockerd`'s log that say why: a Go panic with the first frames under it,
/// else its fatal and error lines, else its last lines.
fn why_it_died(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    if let Some(at) = lines.iter().position(|l| l.starts_with("panic:")) {
        return lines[at..lines.len().min(at + 12)].join("\n");
    }
    let fatal: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("level=fatal") || l.contains("failed to start daemon"))
        .collect();
    if !fatal.is_empty() {
        return fatal.join("\n");
    }
    tail(log, 20)
}

fn dockerd_bin() -> Option<PathBuf> {
    ["/usr/sbin/dockerd", "/usr/bin/dockerd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let mut started = STARTED.lock().unwrap_or_else(|p| p.into_inner());
        let last = match started.as_mut() {
            Some(s) => {
                s.users -= 1;
                s.users == 0
            }
            None => false,
        };
        if !last {
            return;
        }
        if let Some(mut s) = started.take() {
            // SIGTERM lets dockerd stop its containers and containerd cleanly.
            let _ = Command::new("kill")
                .args(["-TERM", &s.child.id().to_string()])
                .status();
            let deadline = Instant::now() + ENGINE_STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = s.child.try_wait() {
                    // A clean stop leaves nothing worth reading; the log stays only when it hangs.
                    let _ = std::fs::remove_file(&s.log);
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!(
                "dockerd did not stop within {ENGINE_STOP_TIMEOUT:?}; killing it (log {})",
                s.log.display()
            );
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

/// The stand-in base images made by `.ci/standin-images.sh`, by the names the Dockerfiles use.
#[derive(Debug, Clone)]
pub struct StandinImages {
    /// `rust:<major.minor>-slim-bookworm` (the host's toolchain).
    pub rust: String,
    /// `gcr.io/distroless/cc-debian12:nonroot`.
    pub runtime: String,
    /// `postgres:15-bookworm` (Debian bookworm ships PostgreSQL 15).
    pub postgres: String,
    /// What the script printed.
    pub report: String,
}

static STANDINS: OnceLock<Result<StandinImages, String>> = OnceLock::new();

/// Runs `.ci/standin-images.sh` once per process (seconds when its cache is warm) and returns
/// the image names. Needs a running engine ([`DockerEngine::ensure`]), root and debootstrap.
pub fn ensure_standin_images() -> Result<StandinImages, String> {
    STANDINS.get_or_init(make_standins).clone()
}

fn make_standins() -> Result<StandinImages, String> {
    let script = workspace_root().join(".ci").join("standin-images.sh");
    let output = Command::new("bash")
        .arg(&script)
        .env("DOCKER", docker_bin())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let report = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}):\n{}\n{}",
            script.display(),
            output.status,
            report,
            tail(&String::from_utf8_lossy(&output.stderr), 30)
        ));
    }
    Ok(StandinImages {
        rust: format!("rust:{}-slim-bookworm", host_rust_minor()?),
        runtime: "gcr.io/distroless/cc-debian12:nonroot".into(),
        postgres: "postgres:15-bookworm".into(),
        report,
    })
}

/// The host rustc's `major.minor` (the stand-in builder carries the host toolchain).
pub fn host_rust_minor() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .split_whitespace()
        .nth(1)
        .ok_or("unexpected `rustc --version` output")?;
    Ok(version.split('.').take(2).collect::<Vec<_>>().join("."))
}

/// Build arguments that point the Dockerfiles at the stand-ins (the host rustc may differ from the
/// version pinned in the Dockerfile).
pub fn standin_build_args(images: &StandinImages) -> Vec<(String, String)> {
    vec![
        ("BUILDER_IMAGE".into(), images.rust.clone()),
        ("RUNTIME_IMAGE".into(), images.runtime.clone()),
    ]
}

/// The result of a successful [`build`].
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// Wall time of `docker build`.
    pub elapsed: Duration,
    /// The BuildKit plain-progress log.
    pub log: String,
}

impl BuildOutcome {
    /// The crates cargo compiled in this build (`Compiling <name> v<version>` lines).
    pub fn compiled_crates(&self) -> Vec<String> {
        self.log
            .lines()
            .filter_map(|line| line.split("Compiling ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}

/// Builds `dockerfile` (relative to `context`) with BuildKit as `tag`, labelled for `cleanup`.
/// On failure the error holds the end of the build log.
pub fn build(
    context: &Path,
    dockerfile: &str,
    tag: &str,
    cleanup: &Cleanup,
    build_args: &[(String, String)],
) -> Result<BuildOutcome, String> {
    let mut cmd = docker();
    cmd.current_dir(context)
        .args([
            "build",
            "--progress=plain",
            "-f",
            dockerfile,
            "-t",
            tag,
            "--label",
        ])
        .arg(cleanup.label());
    for (name, value) in build_args {
        cmd.arg("--build-arg").arg(format!("{name}={value}"));
    }
    cmd.arg(".");
    let start = Instant::now();
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", docker_bin().display()))?;
    let elapsed = start.elapsed();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(BuildOutcome { elapsed, log })
    } else {
        Err(format!(
            "building {tag} from {} failed ({}):\n{}",
            context.join(dockerfile).display(),
            output.status,
            tail(&log, 40)
        ))
    }
}

/// Removes every container, network, volume and image labelled with its run id (and the images
/// registered with [`Cleanup::track_image`]) when dropped, whether the test passed or failed.
pub struct Cleanup {
    id: String,
    images: Mutex<Vec<String>>,
}

impl Cleanup {
    /// A new run id: `<prefix>-<pid>-<time>-<n>`, unique per process and call.
    pub fn new(prefix: &str) -> Self {
        Cleanup {
            id: format!("{prefix}-{}", crate::unique_id()),
            images: Mutex::new(Vec::new()),
        }
    }

    /// The run id (safe in container and network names).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `todo-test=<run id>`, for `--label`.
    pub fn label(&self) -> String {
        format!("{TEST_LABEL}={}", self.id)
    }

    /// Registers an image (name:tag) to remove at the end.
    pub fn track_image(&self, image: &str) {
        self.images
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(image.to_string());
    }

    /// Removes now what the run made; returns what could not be removed.
    pub fn remove_all(&self) -> Vec<String> {
        let filter = format!("label={}", self.label());
        let mut failures = Vec::new();
        let mut remove = |list: &[&str], rm: &[&str]| match run(list) {
            Ok(ids) => {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let args: Vec<&str> = rm.iter().chain(ids.iter()).copied().collect();
                    if let Err(e) = run(&args) {
                        failures.push(e);
                    }
                }
            }
            Err(e) => failures.push(e),
        };
        remove(&["ps", "-aq", "--filter", &filter], &["rm", "-f", "-v"]);
        remove(
            &["network", "ls", "-q", "--filter", &filter],
            &["network", "rm"],
        );
        remove(
            &["volume", "ls", "-q", "--filter", &filter],
            &["volume", "rm", "-f"],
        );
        remove(&["images", "-q", "--filter", &filter], &["rmi", "-f"]);
        let images = std::mem::take(&mut *self.images.lock().unwrap_or_else(|p| p.into_inner()));
        for image in images {
            if run(&["image", "inspect", "--format", "{{.Id}}", &image]).is_ok() {
                if let Err(e) = run(&["rmi", "-f", &image]) {
                    failures.push(e);
                }
            }
        }
        failures
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for failure in self.remove_all() {
            eprintln!("cleanup of {}: {failure}", self.id);
        }
    }
}

/// Polls `probe` until it returns `Some`, or fails after `timeout` with `what` in the message.
pub fn poll<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: not reached within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The 127.0.0.1 host port published for `container_port` (e.g. `"3000/tcp"`) of a container.
pub fn published_port(container: &str, container_port: &str) -> Result<u16, String> {
    let out = run(&["port", container, container_port])?;
    out.lines()
        .find_map(|line| line.strip_prefix("127.0.0.1:"))
        .and_then(|port| port.trim().parse().ok())
        .ok_or_else(|| {
            format!("no 127.0.0.1 port published for {container} {container_port}: {out:?}")
        })
}

#[cfg(test)]
mod tests {
    use super::why_it_died;

    #[test]
    fn a_panic_is_reported_with_its_first_frames_not_the_end_of_the_stack() {
        let mut log = String::from("time=\"t\" level=info msg=\"Loading containers: start.\"\n");
        log.push_str("panic: runtime error: invalid memory address or nil pointer dereference\n");
        for frame in 0..40 {
            log.push_str(&format!("frame{frame}()\n"));
        }
        let why = why_it_died(&log);
        assert!(why.starts_with("panic: runtime error"), "{why}");
        assert!(
            why.contains("frame0()") && !why.contains("frame39()"),
            "{why}"
        );
    }

    #[test]
    fn without_a_panic_the_fatal_line_is_the_reason() {
        let log = "level=info msg=a\nfailed to start daemon: Error initializing network controller\nlevel=info msg=b\n";
        assert_eq!(
            why_it_died(log),
            "failed to start daemon: Error initializing network controller"
        );
    }
}
