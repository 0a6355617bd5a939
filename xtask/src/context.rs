//! What every command shares: global options, the command runner and the Ctrl-C state.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::cli::GlobalArgs;

/// Exit code of a successful run.
pub const EXIT_OK: i32 = 0;
/// Exit code of a usage error (clap uses it too).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when a prerequisite (tool, daemon) is missing.
pub const EXIT_PREREQ: i32 = 3;
/// Exit code when a step failed.
pub const EXIT_STEP: i32 = 4;
/// Exit code when the smoke test failed.
pub const EXIT_SMOKE: i32 = 5;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: i32 = 130;

/// An error that decides the process exit code; anything else exits with [`EXIT_STEP`].
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: i32,
    /// What went wrong, for humans.
    pub message: String,
}

impl Failure {
    /// A missing or unusable prerequisite.
    pub fn prereq(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_PREREQ,
            message: message.into(),
        }
    }
    /// A step that failed.
    pub fn step(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_STEP,
            message: message.into(),
        }
    }
    /// A smoke check that failed.
    pub fn smoke(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_SMOKE,
            message: message.into(),
        }
    }
    /// The user pressed Ctrl-C.
    pub fn interrupted() -> Self {
        Self {
            code: EXIT_INTERRUPTED,
            message: "interrupted".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error maps to.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    if interrupt().is_set() {
        return EXIT_INTERRUPTED;
    }
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>().map(|f| f.code))
        .unwrap_or(EXIT_STEP)
}

/// One external command: program, arguments, extra environment, and which values to hide in logs.
#[derive(Debug, Clone)]
pub struct Cmd {
    /// Program name (looked up on PATH).
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// True when the command changes something (skipped by --dry-run).
    pub mutating: bool,
    /// Values that must never be printed.
    pub secrets: Vec<String>,
}

impl Cmd {
    /// A read-only command.
    pub fn new(program: &str) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            mutating: false,
            secrets: Vec::new(),
        }
    }
    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Appends arguments.
    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }
    /// Adds an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }
    /// Marks the command as one that changes state.
    pub fn mutating(mut self) -> Self {
        self.mutating = true;
        self
    }
    /// Registers a value to redact when printing.
    pub fn secret(mut self, s: impl Into<String>) -> Self {
        let s = s.into();
        if !s.is_empty() {
            self.secrets.push(s);
        }
        self
    }

    /// The command line as a shell would show it, secrets redacted.
    pub fn display(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in &self.env {
            parts.push(format!("{k}={}", quote(&redact_value(k, v))));
        }
        parts.push(self.program.clone());
        parts.extend(self.args.iter().map(|a| quote(a)));
        let mut line = parts.join(" ");
        for s in &self.secrets {
            line = line.replace(s.as_str(), "***");
        }
        line
    }

    fn to_command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(self.args.iter().map(OsString::from));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }
}

fn redact_value(key: &str, value: &str) -> String {
    let k = key.to_ascii_uppercase();
    if ["KEY", "SECRET", "TOKEN", "PASSWORD", "DATABASE_URL"]
        .iter()
        .any(|w| k.contains(w))
    {
        "***".into()
    } else {
        value.into()
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%{}".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// True when the exit code is 0.
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// The last non-empty line of stderr (or stdout), for error messages.
    pub fn reason(&self) -> String {
        let pick = |s: &str| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        };
        pick(&self.stderr)
            .or_else(|| pick(&self.stdout))
            .unwrap_or_else(|| format!("exit code {}", self.code))
    }
}

fn status_code(s: ExitStatus) -> i32 {
    s.code().unwrap_or(-1)
}

/// Runs external commands: prints them with -v, records them for --dry-run, registers children for Ctrl-C.
#[derive(Debug, Clone)]
pub struct Runner {
    verbose: bool,
    dry_run: bool,
    json: bool,
    planned: Arc<Mutex<Vec<String>>>,
}

impl Runner {
    /// A runner with the given printing and dry-run behaviour.
    pub fn new(verbose: bool, dry_run: bool, json: bool) -> Self {
        Self {
            verbose,
            dry_run,
            json,
            planned: Arc::default(),
        }
    }

    /// The mutating commands recorded under --dry-run, in order.
    pub fn planned(&self) -> Vec<String> {
        self.planned.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn announce(&self, cmd: &Cmd) -> bool {
        let line = cmd.display();
        if self.dry_run && cmd.mutating {
            if let Ok(mut p) = self.planned.lock() {
                p.push(line.clone());
            }
            if self.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "planned_command", "command": line})
                );
            } else {
                println!("would run: {line}");
            }
            return false;
        }
        if self.verbose {
            eprintln!("$ {line}");
        }
        true
    }

    /// Runs to completion, capturing output. Under --dry-run a mutating command only gets printed.
    pub fn output(&self, cmd: &Cmd) -> Result<Output> {
        self.output_with_stdin(cmd, None)
    }

    /// Like [`Runner::output`], feeding `stdin`.
    pub fn output_with_stdin(&self, cmd: &Cmd, stdin: Option<&str>) -> Result<Output> {
        if !self.announce(cmd) {
            return Ok(Output {
                code: 0,
                stdout: String::new(),
                stderr: String::new(),
            });
        }
        let mut child = self.spawn_raw(cmd, stdin.is_some(), true)?;
        if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            w.write_all(input.as_bytes())
                .with_context(|| format!("writing to {}", cmd.program))?;
        }
        let out = wait_collect(child, None)?;
        Ok(out)
    }

    /// Runs with a deadline; the child's process group is killed when it passes or when `stop` says so.
    pub fn output_until(
        &self,
        cmd: &Cmd,
        deadline: Duration,
        stop: &dyn Fn() -> Option<String>,
    ) -> Result<Watched> {
        if !self.announce(cmd) {
            return Ok(Watched::Done(Output {
                code: 0,
                stdout: String::new(),
                stderr: String::new(),
            }));
        }
        let child = self.spawn_raw(cmd, false, true)?;
        let pid = child.id();
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(wait_collect(child, None));
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(res) => return res.map(Watched::Done),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    anyhow::bail!("lost track of {}", cmd.program)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if interrupt().is_set() {
                kill_group(pid);
                return Err(Failure::interrupted().into());
            }
            let reason = if started.elapsed() > deadline {
                Some(format!(
                    "{} took longer than {}s",
                    cmd.program,
                    deadline.as_secs()
                ))
            } else {
                stop()
            };
            if let Some(r) = reason {
                kill_group(pid);
                // Reap the killed child so no zombie or pipe reader is left behind.
                let _ = rx.recv_timeout(Duration::from_secs(10));
                return Ok(Watched::Stopped { reason: r });
            }
        }
    }

    /// Starts a long-running child (stdout/stderr piped) in its own process group.
    pub fn spawn(&self, cmd: &Cmd) -> Result<Option<Child>> {
        if !self.announce(cmd) {
            return Ok(None);
        }
        self.spawn_raw(cmd, false, true).map(Some)
    }

    fn spawn_raw(&self, cmd: &Cmd, stdin: bool, pipe: bool) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        let mut c = cmd.to_command();
        // Own process group: Ctrl-C kills the whole tree (e.g. docker build's helpers), never only the leader.
        c.process_group(0);
        c.stdin(if stdin { Stdio::piped() } else { Stdio::null() });
        if pipe {
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let child = c
            .spawn()
            .with_context(|| format!("starting `{}`", cmd.display()))?;
        interrupt().register_child(child.id());
        Ok(child)
    }
}

/// Result of [`Runner::output_until`].
#[derive(Debug)]
pub enum Watched {
    /// The command finished by itself.
    Done(Output),
    /// The command was stopped early; output when it could still be collected.
    Stopped {
        /// Why it was stopped.
        reason: String,
    },
}

fn wait_collect(mut child: Child, _limit: Option<usize>) -> Result<Output> {
    let pid = child.id();
    let mut so = child.stdout.take();
    let mut se = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = se.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut stdout = String::new();
    if let Some(o) = so.as_mut() {
        let _ = o.read_to_string(&mut stdout);
    }
    let stderr = err_thread.join().unwrap_or_default();
    let status = child.wait().context("waiting for a child process")?;
    interrupt().unregister_child(pid);
    Ok(Output {
        code: status_code(status),
        stdout,
        stderr,
    })
}

/// Sends SIGTERM to a child's process group, then SIGKILL if anything in it is still running after a moment.
pub fn kill_group(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !group_running(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// True while a process of group `pgid` runs. Zombies (ended, not yet reaped by their waiting thread) don't
/// count; without /proc the group's existence is all that can be asked.
fn group_running(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // SAFETY: signal 0 only checks whether the group exists.
        return unsafe { libc::kill(-pgid, 0) } == 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // Fields after the parenthesised command: state ppid pgrp ...
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or("Z");
            let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && state != "Z" && state != "X"
        })
}

/// Ctrl-C state: a flag, the children to kill and the temp files to remove.
#[derive(Debug, Default)]
pub struct Interrupt {
    flag: AtomicBool,
    children: Mutex<Vec<u32>>,
    temp_files: Mutex<Vec<PathBuf>>,
}

impl Interrupt {
    /// True once Ctrl-C was pressed.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    fn register_child(&self, pid: u32) {
        if let Ok(mut c) = self.children.lock() {
            c.push(pid);
        }
    }
    /// Forgets a child that has ended.
    pub fn unregister_child(&self, pid: u32) {
        if let Ok(mut c) = self.children.lock() {
            c.retain(|p| *p != pid);
        }
    }
    /// Remembers a temp file to delete on Ctrl-C.
    pub fn register_temp(&self, p: PathBuf) {
        if let Ok(mut t) = self.temp_files.lock() {
            t.push(p);
        }
    }
    /// Forgets a temp file already deleted.
    pub fn unregister_temp(&self, p: &std::path::Path) {
        if let Ok(mut t) = self.temp_files.lock() {
            t.retain(|x| x != p);
        }
    }
    /// Kills every child group and removes every temp file (idempotent).
    pub fn cleanup(&self) {
        let kids: Vec<u32> = self
            .children
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let handles: Vec<_> = kids
            .into_iter()
            .map(|pid| std::thread::spawn(move || kill_group(pid)))
            .collect();
        for h in handles {
            let _ = h.join();
        }
        let files: Vec<PathBuf> = self
            .temp_files
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    }
}

static INTERRUPT: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();

/// The process-wide Ctrl-C state.
pub fn interrupt() -> &'static Interrupt {
    INTERRUPT.get_or_init(Interrupt::default)
}

/// Installs the Ctrl-C (and SIGTERM) handler: kill children, remove temp files, exit 130.
pub fn install_ctrlc() -> Result<()> {
    ctrlc::set_handler(|| {
        let st = interrupt();
        st.flag.store(true, Ordering::SeqCst);
        st.cleanup();
        eprintln!("\ninterrupted: child processes stopped, temporary files removed; nothing was deleted from the cluster");
        std::process::exit(EXIT_INTERRUPTED);
    })
    .context("installing the Ctrl-C handler")
}

/// Global options plus the runner, handed to every command.
#[derive(Debug, Clone)]
pub struct Context {
    /// Minikube profile = kube context name.
    pub profile: String,
    /// Namespace of the releases.
    pub namespace: String,
    /// -v level (for subcommands that print more with -vv).
    #[allow(dead_code)]
    pub verbose: u8,
    /// --json.
    pub json: bool,
    /// --dry-run.
    pub dry_run: bool,
    /// Runs external commands.
    pub runner: Runner,
    /// Workspace root (where helm/, backend/, frontend/ live).
    pub root: PathBuf,
}

impl Context {
    /// Builds the context from the global flags.
    pub fn new(g: &GlobalArgs) -> Result<Self> {
        Ok(Self {
            profile: g.profile.clone(),
            namespace: g.namespace.clone(),
            verbose: g.verbose,
            json: g.json,
            dry_run: g.dry_run,
            runner: Runner::new(g.verbose > 0, g.dry_run, g.json),
            root: workspace_root()?,
        })
    }
}

/// The workspace root: `CARGO_WORKSPACE_DIR`-like lookup from this crate's manifest dir, or the current dir.
pub fn workspace_root() -> Result<PathBuf> {
    if let Ok(r) = std::env::var("TODO_WORKSPACE_ROOT") {
        return Ok(PathBuf::from(r));
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(parent) = manifest.parent() {
        if parent.join("Cargo.toml").is_file() {
            return Ok(parent.to_path_buf());
        }
    }
    std::env::current_dir().context("reading the current directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_redacts_secrets_and_secret_env() {
        let c = Cmd::new("helm")
            .args(["upgrade", "--set", "k=sk-abc123"])
            .env("OPENAI_API_KEY", "sk-abc123")
            .env("DOCKER_HOST", "tcp://1.2.3.4:2376")
            .secret("sk-abc123");
        let d = c.display();
        assert!(!d.contains("sk-abc123"), "{d}");
        assert!(d.contains("DOCKER_HOST=tcp://1.2.3.4:2376"), "{d}");
        assert!(d.contains("k=***"), "{d}");
    }

    #[test]
    fn dry_run_records_mutating_commands_only() {
        let r = Runner::new(false, true, true);
        let out = r.output(&Cmd::new("definitely-not-a-tool-xyz").arg("x").mutating());
        assert!(out.is_ok());
        assert_eq!(r.planned(), vec!["definitely-not-a-tool-xyz x".to_string()]);
        assert!(r.output(&Cmd::new("definitely-not-a-tool-xyz")).is_err());
    }

    #[test]
    fn exit_codes_follow_failure_kind() {
        let e = anyhow::Error::new(Failure::prereq("x")).context("outer");
        assert_eq!(exit_code_of(&e), EXIT_PREREQ);
        assert_eq!(exit_code_of(&anyhow::anyhow!("plain")), EXIT_STEP);
    }
}
