//! Harness for the deploy pipeline tests: the real xtask binary against the tool doubles (crate tool-doubles)
//! placed first on PATH, in a throwaway workspace with the real charts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `target` directory of this test run.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/<test> -> target
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds the tool-double binary once (own target dir: the outer `cargo test` holds the main one's lock).
pub fn double_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = target_dir().join("tool-doubles");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "-p", "tool-doubles", "--target-dir"])
            .arg(&dir)
            .current_dir(workspace_root())
            .status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "building tool-doubles failed"
        );
        dir.join("debug").join("tool-double")
    })
    .clone()
}

/// `deploy --keep-forward` on a free port, with JSON events.
pub const SUPERVISED: [&str; 6] = [
    "deploy",
    "--no-smoke",
    "--port",
    "0",
    "--keep-forward",
    "--json",
];

/// One isolated environment: doubles on PATH, call log, state, a throwaway workspace, its own TMPDIR.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
    pub log: PathBuf,
    pub state: PathBuf,
    pub root: PathBuf,
    pub tmp: PathBuf,
    pub real_helm: Option<PathBuf>,
    pub real_kubectl: Option<PathBuf>,
    /// xtask processes started in the background: stopped when the test ends, even by a failed assertion.
    spawned: std::cell::RefCell<Vec<u32>>,
}

fn write(p: &Path, text: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .flatten()
    {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

impl Env {
    /// A fresh environment with the default double state (cluster running, docker runtime, Helm 3).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bin = dir.path().join("bin");
        tool_doubles::install(&double_binary(), &bin).unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("ws");
        write(
            &root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"backend\", \"frontend\"]\n",
        );
        write(&root.join("Cargo.lock"), "version = 4\n");
        for svc in ["backend", "frontend"] {
            write(&root.join(svc).join("Dockerfile"), "FROM rust AS build\n");
            write(
                &root.join(svc).join("Cargo.toml"),
                &format!("[package]\nname = \"{svc}\"\n[dependencies]\n"),
            );
            write(&root.join(svc).join("src/main.rs"), "fn main() {}\n");
        }
        copy_dir(&workspace_root().join("helm"), &root.join("helm"));
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{e}"));
        let env = Self {
            spawned: Default::default(),
            log: dir.path().join("calls.jsonl"),
            state: dir.path().join("state.json"),
            bin,
            root,
            tmp,
            real_helm: None,
            real_kubectl: None,
            dir,
        };
        env.set_state(|s| s["profile"] = "todo".into());
        env
    }

    /// Changes the double state.
    pub fn set_state(&self, f: impl FnOnce(&mut Value)) {
        let mut s = tool_doubles::State::read(&self.state);
        f(&mut s.0);
        s.write(&self.state).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Reads the double state.
    pub fn state(&self) -> Value {
        tool_doubles::State::read(&self.state).0
    }

    /// Renders charts with this real helm inside `helm upgrade` (the double delegates).
    pub fn with_real_helm(mut self, helm: Option<PathBuf>) -> Self {
        self.real_helm = helm;
        self
    }

    /// Client-side kubectl calls (`label --local`) go to this real kubectl (the double delegates).
    pub fn with_real_kubectl(mut self, kubectl: Option<PathBuf>) -> Self {
        self.real_kubectl = kubectl;
        self
    }

    /// The xtask command with this environment.
    pub fn xtask(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("TODO_WORKSPACE_ROOT", &self.root)
            .env("DOUBLES_LOG", &self.log)
            .env("DOUBLES_STATE", &self.state)
            .env("TMPDIR", &self.tmp)
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("DATABASE_URL")
            .env_remove("AUTH_SECRET")
            .env_remove("XTASK_DOCKER")
            .env_remove("BUILDX_BUILDER")
            .env_remove("TODO_PROFILE")
            .env_remove("TODO_NAMESPACE")
            .stdin(Stdio::null());
        match &self.real_helm {
            Some(h) => c.env("DOUBLES_REAL_HELM", h),
            None => c.env_remove("DOUBLES_REAL_HELM"),
        };
        match &self.real_kubectl {
            Some(k) => c.env("DOUBLES_REAL_KUBECTL", k),
            None => c.env_remove("DOUBLES_REAL_KUBECTL"),
        };
        c
    }

    /// Runs the xtask to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let t = Instant::now();
        let out = self
            .xtask(args)
            .output()
            .unwrap_or_else(|e| panic!("running xtask: {e}"));
        Run::new(out, t.elapsed())
    }

    /// Runs the xtask to completion with extra environment variables.
    pub fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let t = Instant::now();
        let mut c = self.xtask(args);
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.output().unwrap_or_else(|e| panic!("running xtask: {e}"));
        Run::new(out, t.elapsed())
    }

    /// Marks every recorded call so far (the log of a later run starts after it).
    pub fn calls_since(&self, n: usize) -> Vec<Value> {
        self.calls().into_iter().skip(n).collect()
    }

    /// Changes a source file of `service` (so its image tag changes and the next deploy rebuilds it).
    pub fn touch_source(&self, service: &str, text: &str) {
        std::fs::write(
            self.root.join(service).join("src/main.rs"),
            format!("fn main() {{ println!(\"{text}\"); }}\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the xtask in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let child = self
            .xtask(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        self.spawned.borrow_mut().push(child.id());
        child
    }

    /// All recorded calls.
    pub fn calls(&self) -> Vec<Value> {
        tool_doubles::read_log(&self.log)
    }

    /// Forgets the recorded calls (between two deploys).
    pub fn clear_calls(&self) {
        let _ = std::fs::remove_file(&self.log);
    }

    /// Calls of one tool, as argv joined by spaces.
    pub fn calls_of(&self, tool: &str) -> Vec<String> {
        self.calls()
            .iter()
            .filter(|c| c["tool"] == tool)
            .map(argv_line)
            .collect()
    }

    /// Every call, as `tool argv...`, in order.
    pub fn call_lines(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["tool"].as_str().unwrap_or_default(),
                    argv_line(c)
                )
            })
            .collect()
    }

    /// Starts xtask in the background with its stdout read as it comes (see [`Watched`]).
    pub fn spawn_watched(&self, args: &[&str]) -> Watched {
        let mut child = self.spawn(args);
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take();
        let sink = out.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in stdout
                .into_iter()
                .flat_map(|s| std::io::BufReader::new(s).lines())
            {
                let Ok(line) = line else { break };
                if let Ok(mut o) = sink.lock() {
                    o.push_str(&line);
                    o.push('\n');
                }
            }
        });
        Watched { child, out, reader }
    }

    /// Starts `deploy --keep-forward` (a supervised forward on a free port) in the background.
    pub fn spawn_supervised(&self) -> Child {
        self.spawn(&SUPERVISED)
    }

    /// Panics unless no image was built and no release upgraded (since the calls were last cleared).
    pub fn assert_nothing_built_or_upgraded(&self) {
        let docker = self.calls_of("docker");
        assert!(
            docker.iter().all(|c| !c.starts_with("build")),
            "{docker:#?}"
        );
        let helm = self.calls_of("helm");
        assert!(helm.iter().all(|c| !c.starts_with("upgrade")), "{helm:#?}");
    }

    /// Pids of the `kubectl port-forward` processes started so far, in order.
    pub fn port_forward_pids(&self) -> Vec<u32> {
        self.calls()
            .iter()
            .filter(|c| is_port_forward(c))
            .filter_map(|c| c["pid"].as_u64().map(|p| p as u32))
            .collect()
    }

    /// Files left in the xtask's TMPDIR.
    pub fn leftover_temp_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.tmp)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls the call log until `pred` holds (or panics after `within`).
    pub fn wait_for_calls(&self, within: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if pred(&self.calls()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}; calls: {:#?}", self.calls());
    }
}

/// A finished xtask run.
/// A background xtask whose stdout a test can wait on while it runs.
pub struct Watched {
    child: Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Watched {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits until stdout so far contains `text`, or panics with what it said.
    pub fn wait_for_output(&self, within: Duration, text: &str) {
        let end = Instant::now() + within;
        loop {
            let so_far = self.out.lock().map(|o| o.clone()).unwrap_or_default();
            if so_far.contains(text) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {text:?} in:\n{so_far}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit and returns the whole run.
    pub fn finish(self) -> Run {
        let t = Instant::now();
        let out = self
            .child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = self.reader.join();
        let mut run = Run::new(out, t.elapsed());
        run.stdout = self.out.lock().map(|o| o.clone()).unwrap_or_default();
        run
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    fn new(out: Output, took: Duration) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took,
        }
    }

    /// From a spawned child.
    pub fn wait(child: Child) -> Self {
        let t = Instant::now();
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        Self::new(out, t.elapsed())
    }

    /// JSON events (with --json).
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The JSON event of a step's end.
    pub fn step_event(&self, step: &str) -> Option<Value> {
        self.events().into_iter().find(|e| {
            e["step"] == step && e["event"] != "step_started" && e["event"] != "step_progress"
        })
    }
}

/// True when a process is alive (zombies count as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Sends SIGINT (as Ctrl-C does) to one process.
pub fn sigint(pid: u32) {
    // SAFETY: kill(2) touches no memory.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
}

/// Polls until `f` is true, or panics.
pub fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out: {what}");
}

/// True for a recorded `kubectl port-forward` call.
pub fn is_port_forward(call: &Value) -> bool {
    call["tool"] == "kubectl" && call["argv"].to_string().contains("port-forward")
}

/// A recorded call's argv joined by spaces.
fn argv_line(call: &Value) -> String {
    call["argv"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Drop for Env {
    /// A test that failed half-way leaves no `deploy --keep-forward` or `dev` running: each background
    /// xtask still alive gets Ctrl-C (it stops its own children), and SIGKILL if it has not gone in 10 s.
    fn drop(&mut self) {
        let ours = |pid: u32| {
            alive(pid)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(5).any(|w| w == b"xtask"))
        };
        let left: Vec<u32> = self
            .spawned
            .borrow()
            .iter()
            .copied()
            .filter(|p| ours(*p))
            .collect();
        for pid in &left {
            sigint(*pid);
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && left.iter().any(|p| ours(*p)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in left.iter().filter(|p| ours(**p)) {
            // SAFETY: kill(2) touches no memory.
            unsafe {
                libc::kill(*pid as i32, libc::SIGKILL);
            }
        }
    }
}
