//! Step 6: a supervised `kubectl port-forward` to the frontend Service (and the backend on request), on the
//! requested local port or a free one; restarted with backoff when an HTTP probe fails, not only on exit.
//!
//! While a forward is supervised, its kubectl pid is in `.cache/xtask/forward-<profile>[.<svc>].pid` and the
//! supervisor holds an exclusive lock on the matching `.lock` file. `cargo xtask clean` finds a live forward
//! by that lock (portable: no `/proc`, and a lock dies with its process, so a crashed deploy leaves only a
//! stale file), stops the pid and removes the pid file, which tells the supervisor not to restart it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::{poll, Check, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::process::{interrupt, Child, Runner};
use crate::progress::Reporter;
use crate::tools::kubectl;

/// How long a fresh forward may take to answer.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How often the supervisor probes.
const PROBE_EVERY: Duration = Duration::from_millis(1000);
/// Consecutive failed probes that mean the forward is dead.
const FAILED_PROBES: u32 = 2;
/// Longest pause between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What to forward.
#[derive(Debug, Clone)]
pub struct Target {
    /// Service name.
    pub service: &'static str,
    /// Local port.
    pub local: u16,
    /// Service port.
    pub remote: u16,
    /// Path probed over HTTP.
    pub probe_path: &'static str,
}

impl Target {
    /// `http://127.0.0.1:<local>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.local)
    }
}

/// `requested` if it can be bound on 127.0.0.1, else a free port the OS picks.
pub fn pick_port(requested: u16) -> Result<(u16, bool)> {
    if requested != 0 && TcpListener::bind(("127.0.0.1", requested)).is_ok() {
        return Ok((requested, false));
    }
    let l = TcpListener::bind(("127.0.0.1", 0)).context("finding a free local port")?;
    Ok((l.local_addr()?.port(), requested != 0))
}

/// Where the pid of a forward is recorded for `cargo xtask clean`:
/// `<root>/.cache/xtask/forward-<profile>.pid` (frontend) or `forward-<profile>.backend.pid`.
pub fn pid_file(root: &Path, profile: &str, service: &str) -> PathBuf {
    let name = match service {
        "todo-frontend" => format!("forward-{profile}.pid"),
        other => format!(
            "forward-{profile}.{}.pid",
            other.trim_start_matches("todo-")
        ),
    };
    root.join(".cache").join("xtask").join(name)
}

/// The lock file beside a pid file: held by the supervisor while it supervises.
pub fn lock_file(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("lock")
}

/// True when a live process holds the lock of `pid_file` (its forward is supervised right now).
pub fn supervised(pid_file: &Path) -> bool {
    match File::options().write(true).open(lock_file(pid_file)) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

#[derive(Debug, Clone)]
struct SupCtx {
    profile: String,
    namespace: String,
    root: PathBuf,
}

impl SupCtx {
    fn pid_file(&self, service: &str) -> PathBuf {
        pid_file(&self.root, &self.profile, service)
    }

    /// Takes the lock that marks `service`'s forward as supervised by this process.
    fn lock(&self, service: &str) -> Result<File> {
        let p = lock_file(&self.pid_file(service));
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| format!("opening {}", p.display()))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(Failure::step(format!(
                "another xtask already forwards svc/{service} for profile {} (it holds {}); \
                 stop it (Ctrl-C there, or `cargo xtask clean`) and deploy again",
                self.profile,
                p.display()
            ))
            .into()),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", p.display()))
            }
        }
    }

    fn record(&self, service: &str, pid: u32) {
        let p = self.pid_file(service);
        if std::fs::write(&p, format!("{pid}\n")).is_ok() {
            // Removed on Ctrl-C with the temp files; on a normal end by `retire`.
            interrupt::register_temp(&p);
        }
    }

    fn retire(&self, service: &str) {
        let p = self.pid_file(service);
        let _ = std::fs::remove_file(&p);
        interrupt::unregister_temp(&p);
    }
}

fn start(runner: &Runner, sup: &SupCtx, t: &Target) -> Result<Option<Child>> {
    let sh = xshell::Shell::new().context("reading the current directory")?;
    let call = kubectl::port_forward(
        &sh,
        &sup.profile,
        &sup.namespace,
        t.service,
        t.local,
        t.remote,
    );
    // kubectl prints a line per connection; the runner drains them and keeps the last ones for errors.
    let Some(child) = runner.start(&call, |_| {})? else {
        return Ok(None);
    };
    sup.record(t.service, child.pid());
    Ok(Some(child))
}

/// A running, supervised forward; dropping it ends the forward.
pub struct Forward {
    stop: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// The forwarded targets.
    pub targets: Vec<Target>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("targets", &self.targets)
            .finish()
    }
}

impl Forward {
    /// Starts every target and waits until each answers; then supervises them in the background.
    pub fn start(ctx: &Context, targets: Vec<Target>, rep: &Reporter) -> Result<Self> {
        let stop_flag = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(AtomicBool::new(false));
        let sup = SupCtx {
            profile: ctx.profile.clone(),
            namespace: ctx.namespace.clone(),
            root: ctx.root.clone(),
        };
        let mut threads = Vec::new();
        for t in &targets {
            let lock = if ctx.dry_run {
                None
            } else {
                Some(sup.lock(t.service)?)
            };
            let Some(running) = start(&ctx.runner, &sup, t)? else {
                continue;
            };
            let probe_url = format!("{}{}", t.url(), t.probe_path);
            let up = poll(READY_WITHIN, Duration::from_millis(25), || {
                if crate::http::answers(&probe_url) {
                    return Some(Ok(()));
                }
                running
                    .try_wait()
                    .map(|_| Err(running.tail(20).join("\n").trim().to_string()))
            });
            match up {
                Some(Ok(())) => {}
                Some(Err(output)) => {
                    drop(running);
                    sup.retire(t.service);
                    return Err(Failure::step(format!(
                        "kubectl port-forward svc/{} exited: {output}",
                        t.service
                    ))
                    .into());
                }
                None => {
                    drop(running);
                    sup.retire(t.service);
                    return Err(Failure::step(format!(
                        "svc/{} did not answer on {probe_url} within {}s",
                        t.service,
                        READY_WITHIN.as_secs()
                    ))
                    .into());
                }
            }
            let (runner, sup, t) = (ctx.runner.clone(), sup.clone(), t.clone());
            let flags = Flags {
                stop: Arc::clone(&stop_flag),
                ended: Arc::clone(&ended),
            };
            let json = rep.mode() == crate::progress::Mode::Json;
            threads.push(std::thread::spawn(move || {
                // The lock lives as long as the supervision: released when this thread ends.
                let _lock = lock;
                supervise(&runner, &sup, &t, running, &flags, json)
            }));
        }
        Ok(Self {
            stop: stop_flag,
            ended,
            threads,
            targets,
        })
    }

    /// Blocks until Ctrl-C (the handler ends the process) or until `clean` stopped the forward.
    pub fn wait_forever(&mut self) {
        while !interrupt::is_set() && !self.ended.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Shared flags of a supervisor: `stop` asks it to end, `ended` says it gave up (clean stopped the forward).
struct Flags {
    stop: Arc<AtomicBool>,
    ended: Arc<AtomicBool>,
}

/// Sleeps until `until`, or less when asked to stop; false when asked to stop.
fn pause(until: Instant, stop: &AtomicBool) -> bool {
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !stop.load(Ordering::SeqCst)
}

fn supervise(runner: &Runner, sup: &SupCtx, t: &Target, running: Child, flags: &Flags, json: bool) {
    let url = format!("{}{}", t.url(), t.probe_path);
    let mut running = Some(running);
    let mut failed = 0u32;
    let mut backoff = Duration::from_millis(500);
    while pause(Instant::now() + PROBE_EVERY, &flags.stop) {
        let exited = running.as_ref().is_none_or(|r| r.try_wait().is_some());
        if !exited && crate::http::answers(&url) {
            failed = 0;
            backoff = Duration::from_millis(500);
            continue;
        }
        failed += 1;
        if !exited && failed < FAILED_PROBES {
            continue;
        }
        let why = if exited {
            "exited"
        } else {
            "stopped answering"
        };
        report(
            json,
            &format!(
                "port-forward svc/{} {why}; restarting in {}ms",
                t.service,
                backoff.as_millis()
            ),
        );
        // Dropping the child stops its process group.
        running = None;
        if !sup.pid_file(t.service).exists() {
            // `cargo xtask clean` removed the pid file after stopping the forward: stop supervising it.
            report(
                json,
                &format!(
                    "port-forward svc/{} was stopped by clean; not restarting",
                    t.service
                ),
            );
            flags.ended.store(true, Ordering::SeqCst);
            return;
        }
        if !pause(Instant::now() + backoff, &flags.stop) {
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match start(runner, sup, t) {
            Ok(Some(r)) => {
                running = Some(r);
                failed = 0;
                report(
                    json,
                    &format!("port-forward svc/{} restarted on {}", t.service, t.url()),
                );
            }
            Ok(None) => break,
            Err(e) => report(
                json,
                &format!("port-forward svc/{}: restart failed: {e:#}", t.service),
            ),
        }
    }
    drop(running);
    sup.retire(t.service);
}

fn report(json: bool, msg: &str) {
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "forward", "message": msg})
        );
    } else {
        eprintln!("{msg}");
    }
}

/// The forward step.
pub struct ForwardStep;

impl Step for ForwardStep {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn check(&self, _ctx: &Context, _st: &mut State) -> Result<Check> {
        Ok(Check::Run)
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let mut targets = Vec::new();
        let mut notes = Vec::new();
        let (port, moved) = pick_port(st.args.port)?;
        if moved {
            notes.push(format!("port {} busy, using {port}", st.args.port));
        }
        targets.push(Target {
            service: "todo-frontend",
            local: port,
            remote: 3000,
            probe_path: "/api/health",
        });
        if let Some(bp) = st.args.backend_port {
            let (p, moved) = pick_port(bp)?;
            if moved {
                notes.push(format!("port {bp} busy, using {p}"));
            }
            targets.push(Target {
                service: "todo-backend",
                local: p,
                remote: 8000,
                probe_path: "/health",
            });
        }
        let fw = Forward::start(ctx, targets.clone(), rep)?;
        for t in &targets {
            let name = if t.service == "todo-frontend" {
                "frontend"
            } else {
                "backend"
            };
            st.urls.push((name.to_string(), t.url()));
        }
        st.forward = Some(fw);
        let mut d: Vec<String> = targets
            .iter()
            .map(|t| format!("{} -> svc/{}", t.url(), t.service))
            .collect();
        d.extend(notes);
        Ok(d.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_port_is_replaced() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("{e}"));
        let busy = l.local_addr().map(|a| a.port()).unwrap_or(0);
        let (p, moved) = pick_port(busy).unwrap_or((0, false));
        assert!(moved);
        assert_ne!(p, busy);
        drop(l);
        assert_eq!(pick_port(busy).ok(), Some((busy, false)));
    }

    #[test]
    fn a_held_lock_marks_the_forward_supervised_and_dies_with_its_holder() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sup = SupCtx {
            profile: "todo".into(),
            namespace: "todo".into(),
            root: dir.path().to_path_buf(),
        };
        let pf = sup.pid_file("todo-frontend");
        assert!(!supervised(&pf), "no lock file yet");
        let lock = sup
            .lock("todo-frontend")
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(supervised(&pf));
        let again = sup.lock("todo-frontend").err().map(|e| format!("{e:#}"));
        assert!(
            again.is_some_and(|e| e.contains("another xtask already forwards svc/todo-frontend")),
            "a second supervisor is refused"
        );
        drop(lock);
        assert!(!supervised(&pf), "released with its holder");
    }
}
