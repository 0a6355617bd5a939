//! Step 6: a supervised `kubectl port-forward` to the frontend Service (and the backend on request), on the
//! requested local port or a free one; restarted with backoff when an HTTP probe fails, not only on exit.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{poll, Check, State, Step};
use crate::context::{interrupt, kill_group, Context, Failure, Runner};
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
    let l = TcpListener::bind(("127.0.0.1", 0))?;
    Ok((l.local_addr()?.port(), requested != 0))
}

/// True when something answers HTTP at `url` (any status: the forward itself works).
pub fn probe(url: &str) -> bool {
    crate::http::request("GET", url, &[], None, Duration::from_secs(2)).is_ok()
}

struct Running {
    pid: u32,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

fn start(runner: &Runner, ctx: &SupCtx, t: &Target) -> Result<Option<Running>> {
    let cmd = kubectl::port_forward(&ctx.profile, &ctx.namespace, t.service, t.local, t.remote);
    let Some(mut child) = runner.spawn(&cmd)? else {
        return Ok(None);
    };
    let pid = child.id();
    write_pid_file(ctx, t.service, pid);
    let stderr = Arc::new(Mutex::new(String::new()));
    // Drain both pipes: kubectl prints a line per connection and would block on a full pipe.
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(out.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    if let Some(mut err) = child.stderr.take() {
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if s.len() > 8192 {
                        let cut = s.len() - 4096;
                        let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                        s.drain(..cut);
                    }
                }
            }
        });
    }
    Ok(Some(Running { pid, child, stderr }))
}

fn stop(r: &mut Running) {
    kill_group(r.pid);
    let _ = r.child.wait();
    interrupt().unregister_child(r.pid);
}

#[derive(Debug, Clone)]
struct SupCtx {
    profile: String,
    namespace: String,
    root: PathBuf,
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

fn write_pid_file(ctx: &SupCtx, service: &str, pid: u32) {
    let p = pid_file(&ctx.root, &ctx.profile, service);
    if let Some(d) = p.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if std::fs::write(&p, format!("{pid}\n")).is_ok() {
        // Removed on Ctrl-C with the temp files; on a normal end by `stop_supervision`.
        interrupt().register_temp(p);
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
            let Some(mut running) = start(&ctx.runner, &sup, t)? else {
                continue;
            };
            let probe_url = format!("{}{}", t.url(), t.probe_path);
            let up = poll(READY_WITHIN, Duration::from_millis(25), || {
                if probe(&probe_url) {
                    return Some(Ok(()));
                }
                match running.child.try_wait() {
                    Ok(Some(_)) => Some(Err(running
                        .stderr
                        .lock()
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default())),
                    _ => None,
                }
            });
            match up {
                Some(Ok(())) => {}
                Some(Err(stderr)) => {
                    stop(&mut running);
                    retire(&sup, t.service);
                    return Err(Failure::step(format!(
                        "kubectl port-forward svc/{} exited: {stderr}",
                        t.service
                    ))
                    .into());
                }
                None => {
                    stop(&mut running);
                    retire(&sup, t.service);
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
                supervise(runner, sup, t, running, flags, json)
            }));
        }
        Ok(Self {
            stop: stop_flag,
            ended,
            threads,
            targets,
        })
    }

    /// Blocks until Ctrl-C (the handler ends the process).
    pub fn wait_forever(&mut self) {
        while !interrupt().is_set() && !self.ended.load(Ordering::SeqCst) {
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

fn retire(sup: &SupCtx, service: &str) {
    let p = pid_file(&sup.root, &sup.profile, service);
    let _ = std::fs::remove_file(&p);
    interrupt().unregister_temp(&p);
}

fn supervise(
    runner: Runner,
    sup: SupCtx,
    t: Target,
    mut running: Running,
    flags: Flags,
    json: bool,
) {
    let Flags {
        stop: stop_flag,
        ended,
    } = flags;
    let url = format!("{}{}", t.url(), t.probe_path);
    let mut failed = 0u32;
    let mut backoff = Duration::from_millis(500);
    let mut next_probe = Instant::now() + PROBE_EVERY;
    while !stop_flag.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() < next_probe {
            continue;
        }
        next_probe = Instant::now() + PROBE_EVERY;
        let exited = matches!(running.child.try_wait(), Ok(Some(_)));
        if !exited && probe(&url) {
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
        stop(&mut running);
        let pf = pid_file(&sup.root, &sup.profile, t.service);
        if !pf.exists() {
            // `cargo xtask clean` removed the pid file after stopping the forward: stop supervising it.
            report(
                json,
                &format!(
                    "port-forward svc/{} was stopped by clean; not restarting",
                    t.service
                ),
            );
            ended.store(true, Ordering::SeqCst);
            return;
        }
        let resume = Instant::now() + backoff;
        while Instant::now() < resume && !stop_flag.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if stop_flag.load(Ordering::SeqCst) {
            retire(&sup, t.service);
            return;
        }
        match start(&runner, &sup, &t) {
            Ok(Some(r)) => {
                running = r;
                failed = 0;
                report(
                    json,
                    &format!("port-forward svc/{} restarted on {}", t.service, t.url()),
                );
            }
            Ok(None) => {
                retire(&sup, t.service);
                return;
            }
            Err(e) => report(
                json,
                &format!("port-forward svc/{}: restart failed: {e:#}", t.service),
            ),
        }
    }
    stop(&mut running);
    retire(&sup, t.service);
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
    fn probe_sees_http_and_not_closed_ports() {
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        std::thread::spawn(move || {
            use std::io::Write;
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        assert!(probe(&format!("http://127.0.0.1:{port}/x")));
        let dead = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        assert!(!probe(&format!("http://127.0.0.1:{dead}/x")));
    }
}
