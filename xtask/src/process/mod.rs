//! The one layer every external command passes through.
//!
//! Call sites write commands with xshell's `cmd!` (quoting and `{args...}` splats where the command is read)
//! and say whether the command changes something ([`Call::query`] / [`Call::change`]). The [`Runner`] then
//! does what every command needs: `--dry-run` records a change instead of running it, `-v` echoes the
//! command line with secrets redacted, the program is looked up on PATH with `which` (a missing tool is a
//! prerequisite failure with its fix, exit 3), and the child is started with duct in its own process group
//! and registered for Ctrl-C. xshell's own runner is not used to start children because it offers neither a
//! process group nor a handle to stop the child with; duct offers both (`before_spawn`, `Handle`).

pub mod interrupt;

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::exit::Failure;

/// One external command, as its call site wrote it, plus what the runner needs to know about it.
#[derive(Debug, Clone)]
pub struct Call {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    changes: bool,
    secrets: Vec<String>,
    stdin: Option<Vec<u8>>,
}

impl Call {
    /// A command that only reads: it also runs under `--dry-run`.
    pub fn query(cmd: xshell::Cmd<'_>) -> Self {
        Self::from_xshell(cmd, false)
    }

    /// A command that changes something (the cluster, an image, a local port): `--dry-run` only prints it.
    pub fn change(cmd: xshell::Cmd<'_>) -> Self {
        Self::from_xshell(cmd, true)
    }

    fn from_xshell(cmd: xshell::Cmd<'_>, changes: bool) -> Self {
        // xshell hands out what it built (program, arguments, its shell's directory and variables) only as a
        // std Command; it is read here and never run.
        let c: std::process::Command = cmd.into();
        Self {
            program: c.get_program().to_owned(),
            args: c.get_args().map(OsStr::to_owned).collect(),
            env: c
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(OsStr::to_owned)))
                .collect(),
            cwd: c.get_current_dir().map(Path::to_path_buf),
            changes,
            secrets: Vec::new(),
            stdin: None,
        }
    }

    /// Registers a value that must never be printed (replaced by `***` wherever the command is shown).
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.secrets.push(value);
        }
        self
    }

    /// Registers several secret values.
    pub fn secrets<I: IntoIterator<Item = S>, S: Into<String>>(self, values: I) -> Self {
        values.into_iter().fold(self, Call::secret)
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Bytes written to the child's stdin (never shown).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// True when the command changes something.
    #[cfg(test)]
    pub fn changes(&self) -> bool {
        self.changes
    }

    /// The program as written (`helm`, not its path).
    pub fn program(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }

    /// The arguments, lossily as text (for tests and messages).
    #[cfg(test)]
    pub fn args(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The directory it runs in.
    #[cfg(test)]
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// The value of an environment variable set on the command.
    #[cfg(test)]
    pub fn env_value(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_ref())
            .map(|v| v.to_string_lossy().into_owned())
    }

    /// The command line as a POSIX shell would take it, variables first; secrets and secret-looking
    /// variables redacted.
    pub fn display(&self) -> String {
        let mut words: Vec<String> = Vec::new();
        for (k, v) in &self.env {
            if let Some(v) = v {
                let k = k.to_string_lossy();
                words.push(format!(
                    "{k}={}",
                    quote(&redact_env(&k, &v.to_string_lossy()))
                ));
            }
        }
        words.push(quote(&self.program.to_string_lossy()));
        words.extend(self.args.iter().map(|a| quote(&a.to_string_lossy())));
        redact(&words.join(" "), &self.secrets)
    }

    /// What to print for this command's own error output: its secrets redacted.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets)
    }

    fn expression(&self, program: &Path) -> duct::Expression {
        let mut e = duct::cmd(program, &self.args);
        if let Some(dir) = &self.cwd {
            e = e.dir(dir);
        }
        for (k, v) in &self.env {
            e = match v {
                Some(v) => e.env(k, v),
                None => e.env_remove(k),
            };
        }
        e = match &self.stdin {
            Some(bytes) => e.stdin_bytes(bytes.clone()),
            None => e.stdin_null(),
        };
        // Own process group: Ctrl-C stops the whole tree (docker build's helpers, helm's plugins), and a
        // Ctrl-C at the terminal reaches the xtask alone, which then stops the children in order.
        #[cfg(unix)]
        {
            e = e.before_spawn(|c| {
                use std::os::unix::process::CommandExt as _;
                c.process_group(0);
                Ok(())
            });
        }
        e.unchecked()
    }
}

/// Replaces every secret in `text` by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

fn redact_env(key: &str, value: &str) -> String {
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

/// POSIX shell quoting for display (copy-paste safe). Written here because shlex, the usual crate, also
/// quotes `=` and `*`, which turns every `--flag=value` and every redacted `***` into `'...'` noise.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@+%^*".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, Default)]
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

    fn from_std(o: &std::process::Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Result of [`Runner::output_until`].
#[derive(Debug)]
pub enum Watched {
    /// The command finished by itself.
    Done(Output),
    /// The command was stopped early.
    Stopped {
        /// Why it was stopped.
        reason: String,
        /// What it printed until then.
        output: Output,
    },
}

/// Runs external commands: records changes under `--dry-run`, echoes with `-v`, registers children for Ctrl-C.
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

    /// The changes recorded under `--dry-run`, in order.
    pub fn planned(&self) -> Vec<String> {
        self.planned.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Prints or records the command; false when it must not run (a change under `--dry-run`).
    fn announce(&self, call: &Call) -> bool {
        let line = call.display();
        if self.dry_run && call.changes {
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

    /// Starts the child and registers it for Ctrl-C with the time it gets to end after SIGTERM.
    fn spawn(&self, call: &Call, expr: duct::Expression, grace: Duration) -> Result<Running> {
        let handle = Arc::new(
            expr.start()
                .with_context(|| format!("starting `{}`", call.display()))?,
        );
        let pid = handle.pids().first().copied().unwrap_or(0);
        interrupt::register_child(pid, &handle, grace, &call.display());
        Ok(Running { handle, pid })
    }

    /// Runs to completion, capturing stdout and stderr. A change under `--dry-run` is only printed and
    /// "succeeds" with empty output.
    pub fn output(&self, call: &Call) -> Result<Output> {
        if !self.announce(call) {
            return Ok(Output::default());
        }
        let program = crate::tools::resolve(&call.program)?;
        let running = self.spawn(
            call,
            call.expression(&program).stdout_capture().stderr_capture(),
            interrupt::GRACE,
        )?;
        let out = running.handle.wait();
        interrupt::unregister_child(running.pid);
        let out = out.with_context(|| format!("waiting for `{}`", call.display()))?;
        Ok(Output::from_std(out))
    }

    /// Runs with a deadline; the child's process group is stopped (SIGTERM, then after `grace` SIGKILL) when
    /// the deadline passes, when `stop` returns a reason, or on Ctrl-C. `stop` is asked about every 250 ms.
    /// A child that handles SIGTERM by cleaning up after itself (helm rolling back the release it was
    /// installing) is given `grace` to do so in each case.
    pub fn output_until(
        &self,
        call: &Call,
        deadline: Duration,
        grace: Duration,
        stop: &dyn Fn() -> Option<String>,
    ) -> Result<Watched> {
        if !self.announce(call) {
            return Ok(Watched::Done(Output::default()));
        }
        let program = crate::tools::resolve(&call.program)?;
        let running = self.spawn(
            call,
            call.expression(&program).stdout_capture().stderr_capture(),
            grace,
        )?;
        let started = Instant::now();
        let result = loop {
            match running.handle.wait_timeout(Duration::from_millis(250)) {
                Ok(Some(out)) => break Ok(Watched::Done(Output::from_std(out))),
                Ok(None) => {}
                Err(e) => {
                    break Err(e).with_context(|| format!("waiting for `{}`", call.display()))
                }
            }
            if interrupt::is_set() {
                interrupt::stop(running.pid, Some(&running.handle), grace);
                break Err(Failure::interrupted().into());
            }
            let reason = if started.elapsed() > deadline {
                Some(format!(
                    "{} took longer than {}s",
                    call.program(),
                    deadline.as_secs()
                ))
            } else {
                stop()
            };
            if let Some(reason) = reason {
                interrupt::stop(running.pid, Some(&running.handle), grace);
                // The grace ran out or the group ended: what it printed is complete within moments.
                let output = running
                    .handle
                    .wait_timeout(Duration::from_secs(10))
                    .ok()
                    .flatten()
                    .map(Output::from_std)
                    .unwrap_or_default();
                break Ok(Watched::Stopped { reason, output });
            }
        };
        interrupt::unregister_child(running.pid);
        result
    }

    /// Starts a long-running child whose stdout and stderr arrive, merged, line by line at `on_line` (on a
    /// reader thread); the last lines are also kept for error messages. None under `--dry-run` for a change.
    pub fn start(
        &self,
        call: &Call,
        on_line: impl FnMut(&str) + Send + 'static,
    ) -> Result<Option<Child>> {
        if !self.announce(call) {
            return Ok(None);
        }
        let program = crate::tools::resolve(&call.program)?;
        let (reader, writer) = std::io::pipe().context("creating a pipe for a child's output")?;
        let writer2 = writer
            .try_clone()
            .context("creating a pipe for a child's output")?;
        let running = self.spawn(
            call,
            call.expression(&program)
                .stdout_file(writer)
                .stderr_file(writer2),
            interrupt::GRACE,
        )?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let reader_thread = {
            let tail = Arc::clone(&tail);
            let mut on_line = on_line;
            std::thread::spawn(move || {
                // The expression holds the write ends until the child ends; EOF comes when the child and
                // everything that inherited its output are gone.
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    // Kept before it is handed on: whoever saw a line also finds it in the tail.
                    if let Ok(mut t) = tail.lock() {
                        t.push(line.clone());
                    }
                    on_line(&line);
                }
            })
        };
        Ok(Some(Child {
            running,
            tail,
            reader: Some(reader_thread),
            display: call.display(),
        }))
    }

    /// Runs with the terminal as stdin/stdout/stderr (`cargo xtask test` stages); true on exit 0.
    pub fn run_inherited(&self, call: &Call) -> Result<bool> {
        if !self.announce(call) {
            return Ok(true);
        }
        let program = crate::tools::resolve(&call.program)?;
        let mut expr = duct::cmd(&program, &call.args).unchecked();
        if let Some(dir) = &call.cwd {
            expr = expr.dir(dir);
        }
        let running = self.spawn(call, expr, interrupt::GRACE)?;
        let out = running.handle.wait();
        interrupt::unregister_child(running.pid);
        let out = out.with_context(|| format!("waiting for `{}`", call.display()))?;
        Ok(out.status.success())
    }
}

struct Running {
    handle: Arc<duct::Handle>,
    pid: u32,
}

/// The last lines a child printed, bounded.
#[derive(Debug, Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
}

impl Tail {
    const MAX: usize = 400;
    fn push(&mut self, line: String) {
        if self.lines.len() == Self::MAX {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// A running long-lived child (a build, a port-forward, a log stream); stopped when dropped.
pub struct Child {
    running: Running,
    tail: Arc<Mutex<Tail>>,
    reader: Option<std::thread::JoinHandle<()>>,
    display: String,
}

impl std::fmt::Debug for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.running.pid)
            .field("command", &self.display)
            .finish()
    }
}

impl Child {
    /// The child's pid (its process group id on Unix).
    pub fn pid(&self) -> u32 {
        self.running.pid
    }

    /// The exit code once it has ended.
    pub fn try_wait(&self) -> Option<i32> {
        match self.running.handle.try_wait() {
            Ok(Some(o)) => Some(o.status.code().unwrap_or(-1)),
            Ok(None) => None,
            Err(_) => Some(-1),
        }
    }

    /// Waits until it ends and all its output was read; the exit code.
    pub fn wait(&mut self) -> Result<i32> {
        let out = self
            .running
            .handle
            .wait()
            .with_context(|| format!("waiting for `{}`", self.display))?;
        let code = out.status.code().unwrap_or(-1);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(code)
    }

    /// The last `n` lines it printed (stdout and stderr merged).
    pub fn tail(&self, n: usize) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| {
                let skip = t.lines.len().saturating_sub(n);
                t.lines.iter().skip(skip).cloned().collect()
            })
            .unwrap_or_default()
    }

    /// Stops it and everything it started (SIGTERM to the group, SIGKILL after `grace`) and reaps it.
    pub fn stop(&self, grace: Duration) {
        interrupt::stop(self.running.pid, Some(&self.running.handle), grace);
        let _ = self.running.handle.wait_timeout(Duration::from_secs(5));
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            self.stop(interrupt::GRACE);
        }
        interrupt::unregister_child(self.running.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xshell::{cmd, Shell};

    fn sh() -> Shell {
        Shell::new().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn display_redacts_secrets_and_secret_env_and_quotes() {
        let sh = sh();
        let value = "k=sk-abc123";
        let format = "{{json .}}";
        let c = Call::query(cmd!(sh, "helm upgrade --set {value} --format {format}"))
            .env("OPENAI_API_KEY", "sk-abc123")
            .env("DOCKER_HOST", "tcp://1.2.3.4:2376")
            .secret("sk-abc123");
        let d = c.display();
        assert!(!d.contains("sk-abc123"), "{d}");
        assert!(d.contains("DOCKER_HOST=tcp://1.2.3.4:2376"), "{d}");
        assert!(d.contains("k=***"), "{d}");
        assert!(d.contains("'{{json .}}'"), "{d}");
        assert!(d.contains("OPENAI_API_KEY=*** DOCKER_HOST"), "{d}");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("--wait=watcher"), "--wait=watcher");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn dry_run_records_changes_only() {
        let sh = sh();
        let r = Runner::new(false, true, true);
        let out = r.output(&Call::change(cmd!(sh, "definitely-not-a-tool-xyz x")));
        assert!(out.is_ok());
        assert_eq!(r.planned(), vec!["definitely-not-a-tool-xyz x".to_string()]);
        let err = r.output(&Call::query(cmd!(sh, "definitely-not-a-tool-xyz")));
        let err = err.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            err.contains("definitely-not-a-tool-xyz not found on PATH"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn output_captures_both_streams_and_the_exit_code() {
        let sh = sh();
        let r = Runner::new(false, false, false);
        let script = "echo out; echo err >&2; exit 3";
        let out = r
            .output(&Call::query(cmd!(sh, "sh -c {script}")))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(
            (out.code, out.stdout.trim(), out.stderr.trim()),
            (3, "out", "err")
        );
        let input = "piped";
        let out = r
            .output(&Call::query(cmd!(sh, "cat")).stdin(input))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(out.stdout, "piped");
    }

    #[cfg(unix)]
    #[test]
    fn a_started_child_streams_lines_and_stops_with_its_group() {
        let sh = sh();
        let r = Runner::new(false, false, false);
        let (tx, rx) = std::sync::mpsc::channel();
        // The grandchild `sleep` must go too: it shares the child's process group.
        let script = "echo ready; sleep 600 & echo $!; wait";
        let child = r
            .start(&Call::query(cmd!(sh, "sh -c {script}")), move |l| {
                let _ = tx.send(l.to_string());
            })
            .unwrap_or_else(|e| panic!("{e:#}"))
            .unwrap_or_else(|| panic!("not started"));
        let first = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        assert_eq!(first, "ready");
        let grandchild: i32 = rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        assert!(grandchild > 0);
        assert_eq!(child.try_wait(), None);
        child.stop(Duration::from_secs(3));
        assert!(child.try_wait().is_some());
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = || unsafe { libc::kill(grandchild, 0) } != 0 || zombie(grandchild);
        let end = Instant::now() + Duration::from_secs(5);
        while !gone() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(), "the grandchild survived");
        assert_eq!(child.tail(5), ["ready".to_string(), grandchild.to_string()]);
    }

    #[cfg(unix)]
    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }

    /// helm traps SIGTERM and rolls back before it exits: the runner gives it the grace it was told to.
    #[cfg(unix)]
    #[test]
    fn output_until_lets_a_child_that_handles_sigterm_finish_within_its_grace() {
        let sh = sh();
        let r = Runner::new(false, false, false);
        // Longer than the default 3 s grace, shorter than the one given.
        let script = "trap 'sleep 3.5; echo rolled back; exit 1' TERM; echo started; while :; do sleep 0.1; done";
        let w = r
            .output_until(
                &Call::query(cmd!(sh, "sh -c {script}")),
                Duration::from_secs(60),
                Duration::from_secs(20),
                &|| Some("stop".to_string()),
            )
            .unwrap_or_else(|e| panic!("{e:#}"));
        match w {
            Watched::Stopped { output, .. } => {
                assert_eq!(output.stdout, "started\nrolled back\n");
                assert_eq!(output.code, 1, "ended by itself, not by SIGKILL");
            }
            Watched::Done(o) => panic!("finished by itself: {o:?}"),
        }
    }

    #[cfg(unix)]
    #[test]
    fn output_until_stops_when_asked_and_keeps_what_was_printed() {
        let sh = sh();
        let r = Runner::new(false, false, false);
        let script = "echo started; exec sleep 600";
        let asked = std::sync::atomic::AtomicU32::new(0);
        let stop = || {
            (asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2)
                .then(|| "enough".to_string())
        };
        let t = Instant::now();
        let w = r
            .output_until(
                &Call::query(cmd!(sh, "sh -c {script}")),
                Duration::from_secs(60),
                Duration::from_secs(3),
                &stop,
            )
            .unwrap_or_else(|e| panic!("{e:#}"));
        match w {
            Watched::Stopped { reason, output } => {
                assert_eq!(reason, "enough");
                assert_eq!(output.stdout.trim(), "started");
            }
            Watched::Done(o) => panic!("finished by itself: {o:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(30));
    }
}
