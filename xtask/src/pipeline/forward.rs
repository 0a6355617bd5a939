//! Step 6: a supervised forward to the frontend Service (and the backend on request) on the requested local
//! port or a free one. The xtask listens on that port itself ([`super::relay`]) and relays to a `kubectl
//! port-forward` to a ready pod of the Service on a private port. The supervisor probes it over HTTP, starts a
//! new kubectl to the newest ready pod when pods roll (before the old pod goes), and restarts it with backoff
//! when it dies or stops answering; the URL stays the same throughout, and requests meanwhile wait.
//!
//! While a forward is supervised, its kubectl pid and URL are in `.cache/xtask/forward-<profile>[.<svc>].pid`
//! and the supervisor holds an exclusive lock on the matching `.lock` file. `cargo xtask clean` finds a live
//! forward by that lock (portable: no `/proc`, and a lock dies with its process, so a crashed deploy leaves
//! only a stale file), stops the pid and removes the pid file, which tells the supervisor to stop.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::relay::{Relay, WAIT_FOR_UPSTREAM};
use super::{poll, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::kube::{parse_items, Pod};
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
/// How often the supervisor looks for a newer ready pod.
const PODS_EVERY: Duration = Duration::from_secs(1);
/// How long a replaced kubectl keeps serving the connections it has.
const RETIRE_AFTER: Duration = Duration::from_secs(30);

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

/// The kubectl pid a pid file records (its first line; the second is the URL).
pub fn recorded_pid(text: &str) -> Option<u32> {
    text.lines().next()?.trim().parse().ok()
}

/// The URL a pid file records.
pub fn recorded_url(text: &str) -> Option<String> {
    text.lines()
        .nth(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
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

    fn record(&self, service: &str, pid: u32, url: &str) {
        let p = self.pid_file(service);
        if std::fs::write(&p, format!("{pid}\n{url}\n")).is_ok() {
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

/// A kubectl port-forward behind the relay: to which pod, on which private port.
struct Upstream {
    child: Child,
    port: u16,
    pod: Option<String>,
    started: Instant,
}

impl Upstream {
    fn probe_url(&self, t: &Target) -> String {
        format!("http://127.0.0.1:{}{}", self.port, t.probe_path)
    }
}

/// The newest ready, not terminating pod behind `service` (None: let kubectl pick through the Service).
fn best_pod(runner: &Runner, sup: &SupCtx, service: &str) -> Option<String> {
    let sh = xshell::Shell::new().ok()?;
    let svc = runner
        .output(&kubectl::get_service(
            &sh,
            &sup.profile,
            &sup.namespace,
            service,
        ))
        .ok()
        .filter(|o| o.ok())?;
    let selector = kubectl::selector_of(&svc.stdout)?;
    let out = runner
        .output(&kubectl::get_pods(
            &sh,
            &sup.profile,
            &sup.namespace,
            &selector,
        ))
        .ok()
        .filter(|o| o.ok())?;
    let pods: Vec<Pod> = parse_items(&out.stdout).ok()?;
    newest_ready(&pods)
}

/// Of `pods`, the newest that is ready and not being deleted: the one a rollout keeps.
pub fn newest_ready(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter(|p| p.is_ready() && p.metadata.deletion_timestamp.is_none())
        .max_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        })
        .map(|p| p.metadata.name.clone())
}

/// Starts kubectl to `pod` (or the Service) on a fresh private port and waits until it answers.
fn connect(
    runner: &Runner,
    sup: &SupCtx,
    t: &Target,
    pod: Option<String>,
) -> Result<Option<Upstream>> {
    let (port, _) = pick_port(0)?;
    let sh = xshell::Shell::new().context("reading the current directory")?;
    let target = match &pod {
        Some(p) => format!("pod/{p}"),
        None => format!("svc/{}", t.service),
    };
    let call = kubectl::port_forward(&sh, &sup.profile, &sup.namespace, &target, port, t.remote);
    // kubectl prints a line per connection; the runner drains them and keeps the last ones for errors.
    let Some(child) = runner.start(&call, |_| {})? else {
        return Ok(None);
    };
    // Recorded at once: `clean` can stop it even while it is still coming up.
    sup.record(t.service, child.pid(), &t.url());
    let up = Upstream {
        child,
        port,
        pod,
        started: Instant::now(),
    };
    let probe_url = up.probe_url(t);
    let ready = poll(READY_WITHIN, Duration::from_millis(25), || {
        if crate::http::answers(&probe_url) {
            return Some(Ok(()));
        }
        up.child
            .try_wait()
            .map(|_| Err(up.child.tail(20).join("\n").trim().to_string()))
    });
    match ready {
        Some(Ok(())) => Ok(Some(up)),
        Some(Err(output)) => {
            Err(Failure::step(format!("kubectl port-forward {target} exited: {output}")).into())
        }
        None => Err(Failure::step(format!(
            "{target} did not answer on {probe_url} within {}s",
            READY_WITHIN.as_secs()
        ))
        .into()),
    }
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
            if ctx.dry_run {
                // Prints the kubectl command it would run; nothing listens.
                let sh = ctx.sh()?;
                ctx.run(&kubectl::port_forward(
                    &sh,
                    &ctx.profile,
                    &ctx.namespace,
                    &format!("svc/{}", t.service),
                    t.local,
                    t.remote,
                ))?;
                continue;
            }
            let lock = sup.lock(t.service)?;
            let listener = TcpListener::bind(("127.0.0.1", t.local))
                .with_context(|| format!("listening on 127.0.0.1:{}", t.local))?;
            let relay = Relay::start(listener, WAIT_FOR_UPSTREAM)?;
            let pod = best_pod(&ctx.runner, &sup, t.service);
            let Some(up) = connect(&ctx.runner, &sup, t, pod)? else {
                continue;
            };
            relay.set_upstream(Some(up.port));
            let (runner, sup, t) = (ctx.runner.clone(), sup.clone(), t.clone());
            let flags = Flags {
                stop: Arc::clone(&stop_flag),
                ended: Arc::clone(&ended),
            };
            let json = rep.mode() == crate::progress::Mode::Json;
            threads.push(std::thread::spawn(move || {
                // The lock lives as long as the supervision: released when this thread ends.
                let _lock = lock;
                supervise(&runner, &sup, &t, &relay, up, &flags, json)
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

    /// True once `clean` stopped it.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
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

fn supervise(
    runner: &Runner,
    sup: &SupCtx,
    t: &Target,
    relay: &Relay,
    up: Upstream,
    flags: &Flags,
    json: bool,
) {
    let mut up = Some(up);
    let mut retiring: Vec<Upstream> = Vec::new();
    let mut failed = 0u32;
    let mut backoff = Duration::from_millis(500);
    let mut next_pods = Instant::now() + PODS_EVERY;
    let mut said = Collapse::default();
    while pause(Instant::now() + PROBE_EVERY, &flags.stop) {
        retiring.retain(|r| r.child.try_wait().is_none() && r.started.elapsed() < RETIRE_AFTER);
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
        let exited = up.as_ref().is_none_or(|u| u.child.try_wait().is_some());
        let healthy = !exited
            && up
                .as_ref()
                .is_some_and(|u| crate::http::answers(&u.probe_url(t)));
        if healthy {
            failed = 0;
            backoff = Duration::from_millis(500);
            if Instant::now() >= next_pods {
                next_pods = Instant::now() + PODS_EVERY;
                let _ = roll_over(runner, sup, t, relay, &mut up, &mut retiring, json);
            }
            continue;
        }
        failed += 1;
        if !exited && failed < FAILED_PROBES {
            // The pod forwarded to stopped answering while a rollout may have a newer one ready: take that
            // at once rather than after the failures that count as a dead forward.
            if roll_over(runner, sup, t, relay, &mut up, &mut retiring, json) {
                failed = 0;
            }
            continue;
        }
        let why = if exited {
            "exited"
        } else {
            "stopped answering"
        };
        if let Some(line) = said.say(&format!(
            "port-forward svc/{} {why}; reconnecting",
            t.service
        )) {
            report(json, &line);
        }
        // Hold new connections while there is nothing to relay to; dropping the child stops its group.
        relay.set_upstream(None);
        up = None;
        if !pause(Instant::now() + backoff, &flags.stop) {
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        let pod = best_pod(runner, sup, t.service);
        match connect(runner, sup, t, pod) {
            Ok(Some(u)) => {
                relay.set_upstream(Some(u.port));
                report(
                    json,
                    &format!("port-forward svc/{} restarted on {}", t.service, t.url()),
                );
                said = Collapse::default();
                up = Some(u);
                failed = 0;
            }
            Ok(None) => break,
            Err(e) => {
                if let Some(line) = said.say(&format!(
                    "port-forward svc/{}: restart failed: {e:#}",
                    t.service
                )) {
                    report(json, &line);
                }
            }
        }
    }
    drop(up);
    drop(retiring);
    sup.retire(t.service);
}

/// When a newer ready pod than the one forwarded to exists (a rollout), forwards to it before the old one
/// goes: the relay switches to the new kubectl, the old one keeps its open connections for a while. True
/// when it switched.
fn roll_over(
    runner: &Runner,
    sup: &SupCtx,
    t: &Target,
    relay: &Relay,
    up: &mut Option<Upstream>,
    retiring: &mut Vec<Upstream>,
    json: bool,
) -> bool {
    let Some(current) = up.as_ref() else {
        return false;
    };
    let Some(best) = best_pod(runner, sup, t.service) else {
        return false;
    };
    if current.pod.as_deref() == Some(best.as_str()) {
        return false;
    }
    let current_pid = current.child.pid();
    let Ok(Some(next)) = connect(runner, sup, t, Some(best.clone())) else {
        // The pod was not ready after all: the current forward stays, and so does its pid in the file.
        sup.record(t.service, current_pid, &t.url());
        return false;
    };
    relay.set_upstream(Some(next.port));
    report(
        json,
        &format!(
            "port-forward svc/{} now to pod {best} (same URL {})",
            t.service,
            t.url()
        ),
    );
    if let Some(old) = up.replace(next) {
        retiring.push(old);
    }
    true
}

/// Says a message once, then only how often it repeated: a forward that keeps failing prints one line per
/// kind of failure, not one per attempt.
#[derive(Default)]
struct Collapse {
    last: Option<String>,
    repeats: u32,
}

impl Collapse {
    fn say(&mut self, msg: &str) -> Option<String> {
        if self.last.as_deref() == Some(msg) {
            self.repeats += 1;
            // 2, 4, 8, ... repeats: the user still sees that it goes on.
            return self
                .repeats
                .is_power_of_two()
                .then(|| format!("{msg} (repeated {} times)", self.repeats));
        }
        self.last = Some(msg.to_string());
        self.repeats = 0;
        Some(msg.to_string())
    }
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
    fn repeated_messages_are_collapsed() {
        let mut c = Collapse::default();
        let said: Vec<Option<String>> = (0..5).map(|_| c.say("x died")).collect();
        assert_eq!(
            said,
            [
                Some("x died".to_string()),
                Some("x died (repeated 1 times)".to_string()),
                Some("x died (repeated 2 times)".to_string()),
                None,
                Some("x died (repeated 4 times)".to_string()),
            ]
        );
        assert_eq!(c.say("y"), Some("y".to_string()));
    }

    #[test]
    fn the_newest_ready_pod_that_is_not_terminating_is_chosen() {
        let pod = |name: &str, created: &str, ready: bool, deleting: bool| {
            let mut v = serde_json::json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            });
            if deleting {
                v["metadata"]["deletionTimestamp"] = "2026-12-01T10:05:00Z".into();
            }
            serde_json::from_value::<Pod>(v).unwrap_or_default()
        };
        let old = pod("fe-old", "2026-12-01T10:00:00Z", true, false);
        let new_unready = pod("fe-new", "2026-12-01T10:04:00Z", false, false);
        assert_eq!(
            newest_ready(&[old.clone(), new_unready]),
            Some("fe-old".into())
        );
        let new_ready = pod("fe-new", "2026-12-01T10:04:00Z", true, false);
        assert_eq!(
            newest_ready(&[old, new_ready.clone()]),
            Some("fe-new".into())
        );
        let old_going = pod("fe-old", "2026-12-01T10:00:00Z", true, true);
        assert_eq!(newest_ready(&[old_going]), None);
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
