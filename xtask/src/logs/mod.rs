//! `cargo xtask logs` and the log stream of `cargo xtask dev`: the pods' logs, one colour-stable prefix per
//! service and pod, following new pods across rollouts and restarts (a crashed container's previous logs
//! shown once), with no line shown twice when a stream reconnects.
//!
//! Like stern: the pods of the releases are listed every second; each running container gets its own
//! `kubectl logs --follow --timestamps`, restarted with `--since-time=<last line>` when it ends while the
//! container still runs.

pub mod line;

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};

use self::line::{colour, prefix, service_of, stamped, Seen};
use crate::cli::LogsArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::kube::{parse_items, Pod};
use crate::process::{interrupt, Child, Runner};
use crate::tools::kubectl::{self, From, LogRead};

/// The pods of both releases (the bundled PostgreSQL carries the backend's instance label).
pub const SELECTOR: &str = "app.kubernetes.io/instance in (todo-backend,todo-frontend)";
/// The services a user can name.
pub const SERVICES: [&str; 3] = ["backend", "frontend", "postgresql"];

/// Where lines go: the terminal (prefix, colour) or JSON events.
pub struct Sink {
    json: bool,
    colour: bool,
    out: Mutex<()>,
}

impl Sink {
    /// Text with colours on a terminal (unless `NO_COLOR`), or JSON events.
    pub fn new(json: bool) -> Self {
        let colour = !json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            json,
            colour,
            out: Mutex::new(()),
        }
    }

    fn line(&self, src: &Source, time: &str, text: &str, previous: bool) {
        let _guard = self.out.lock();
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(
                stdout,
                "{}",
                serde_json::json!({"event": "log", "service": src.service, "pod": src.pod, "container": src.container, "time": time, "previous": previous, "line": text})
            )
        } else {
            let tag = if previous { " (previous)" } else { "" };
            if self.colour {
                writeln!(
                    stdout,
                    "\u{1b}[{}m{}{tag}\u{1b}[0m | {text}",
                    src.colour, src.prefix
                )
            } else {
                writeln!(stdout, "{}{tag} | {text}", src.prefix)
            }
        };
    }
}

/// Which container a line comes from.
#[derive(Debug, Clone)]
struct Source {
    service: String,
    pod: String,
    container: String,
    prefix: String,
    colour: u8,
}

/// One container being followed.
struct Stream {
    source: Source,
    seen: Arc<Mutex<Seen>>,
    child: Option<Child>,
    restarts: u32,
    previous_shown: bool,
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Options {
    /// Services to show (empty: all).
    pub services: Vec<String>,
    /// Where a container seen for the first time starts: `--tail`, `--since`, or everything.
    pub first: From,
    /// Lines of a crashed container's previous run to show.
    pub previous_tail: u32,
}

/// Follows the logs of the releases' pods.
pub struct Streamer {
    runner: Runner,
    profile: String,
    namespace: String,
    opts: Options,
    sink: Arc<Sink>,
    streams: BTreeMap<(String, String), Stream>,
    /// Pods present at the first listing: later pods are new and shown from their start.
    known: Option<Vec<String>>,
}

impl Streamer {
    /// A streamer for the releases in `ctx`'s namespace.
    pub fn new(ctx: &Context, opts: Options, sink: Arc<Sink>) -> Self {
        Self {
            runner: ctx.runner.clone(),
            profile: ctx.profile.clone(),
            namespace: ctx.namespace.clone(),
            opts,
            sink,
            streams: BTreeMap::new(),
            known: None,
        }
    }

    fn pods(&self) -> Result<Vec<Pod>> {
        let sh = xshell::Shell::new().context("reading the current directory")?;
        let out = self.runner.output(&kubectl::get_pods(
            &sh,
            &self.profile,
            &self.namespace,
            SELECTOR,
        ))?;
        if !out.ok() {
            return Err(Failure::prereq(format!(
                "cannot list the pods in namespace {} (kube context {}): {}",
                self.namespace,
                self.profile,
                out.reason()
            ))
            .into());
        }
        parse_items(&out.stdout)
    }

    /// Containers of the wanted services: `(source, running, restarts)`.
    fn containers(&self, pods: &[Pod]) -> Vec<(Source, bool, u32)> {
        let mut out = Vec::new();
        for p in pods {
            let l = &p.metadata.labels;
            let instance = l
                .get("app.kubernetes.io/instance")
                .map(String::as_str)
                .unwrap_or("");
            let service = service_of(
                instance,
                l.get("app.kubernetes.io/component").map(String::as_str),
            );
            if !self.opts.services.is_empty() && !self.opts.services.contains(&service) {
                continue;
            }
            let several = p.status.container_statuses.len() > 1;
            for cs in &p.status.container_statuses {
                let source = Source {
                    prefix: prefix(
                        &service,
                        &p.metadata.name,
                        several.then_some(cs.name.as_str()),
                    ),
                    colour: colour(&p.metadata.name),
                    service: service.clone(),
                    pod: p.metadata.name.clone(),
                    container: cs.name.clone(),
                };
                out.push((source, cs.state.running.is_some(), cs.restart_count));
            }
        }
        out
    }

    /// Prints what each container printed so far (and a crashed one's previous run), then returns.
    pub fn dump(&mut self) -> Result<()> {
        let pods = self.pods()?;
        for (src, _running, restarts) in self.containers(&pods) {
            if restarts > 0 {
                self.read_once(&src, true, &From::Tail(self.opts.previous_tail));
            }
            self.read_once(&src, false, &self.opts.first.clone());
        }
        Ok(())
    }

    /// Looks at the pods once: starts streams for new or restarted containers, drops gone ones.
    pub fn poll(&mut self) -> Result<()> {
        let pods = self.pods()?;
        let first_listing = self.known.is_none();
        let known = self
            .known
            .get_or_insert_with(|| pods.iter().map(|p| p.metadata.name.clone()).collect())
            .clone();
        let containers = self.containers(&pods);
        let present: Vec<(String, String)> = containers
            .iter()
            .map(|(s, ..)| (s.pod.clone(), s.container.clone()))
            .collect();
        self.streams.retain(|k, _| present.contains(k));
        for (src, running, restarts) in containers {
            let key = (src.pod.clone(), src.container.clone());
            let is_new = !self.streams.contains_key(&key);
            if is_new {
                self.streams.insert(
                    key.clone(),
                    Stream {
                        source: src.clone(),
                        seen: Arc::default(),
                        child: None,
                        restarts,
                        previous_shown: false,
                    },
                );
            }
            let Some(stream) = self.streams.get_mut(&key) else {
                continue;
            };
            // A container found after a crash: its previous run's last lines, once. One that crashed while
            // followed was shown live already.
            if restarts > 0 && !stream.previous_shown && is_new {
                stream.previous_shown = true;
                let src = stream.source.clone();
                self.read_once(&src, true, &From::Tail(self.opts.previous_tail));
            }
            let Some(stream) = self.streams.get_mut(&key) else {
                continue;
            };
            if restarts > stream.restarts {
                // A new run of the container: its lines start after everything shown so far.
                stream.restarts = restarts;
                stream.previous_shown = true;
            }
            let following = stream
                .child
                .as_ref()
                .is_some_and(|c| c.try_wait().is_none());
            if !running || following {
                continue;
            }
            let last = stream.seen.lock().ok().and_then(|s| s.last_time.clone());
            let from = match last {
                Some(t) => From::SinceTime(t),
                // Pods that were there when the stream began start at --tail/--since; pods that appear
                // later (a rollout, a restart) are shown from their first line.
                None if first_listing || known.contains(&src.pod) => self.opts.first.clone(),
                None => From::Start,
            };
            let sink = Arc::clone(&self.sink);
            stream.child = follow(
                &self.runner,
                &self.profile,
                &self.namespace,
                stream,
                from,
                sink,
            )?;
        }
        Ok(())
    }

    /// Polls every second until `stop` is set (or Ctrl-C).
    /// A pod listing that fails (the API server restarting) is said once, and the stream goes on.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        let mut said: Option<String> = None;
        while !stop.load(Ordering::SeqCst) && !interrupt::is_set() {
            match self.poll() {
                Ok(()) => said = None,
                Err(e) => {
                    let msg = format!("{e:#}");
                    if said.as_deref() != Some(msg.as_str()) {
                        eprintln!("logs: {msg}; trying again");
                        said = Some(msg);
                    }
                }
            }
            for _ in 0..10 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn read_once(&self, src: &Source, previous: bool, from: &From) {
        let Ok(sh) = xshell::Shell::new() else { return };
        let read = LogRead {
            pod: &src.pod,
            container: &src.container,
            follow: false,
            previous,
            from: from.clone(),
        };
        let call = kubectl::logs_stamped(&sh, &self.profile, &self.namespace, &read);
        // A container that has no previous run (or went away) simply has nothing to show.
        if let Ok(out) = self.runner.output(&call) {
            if out.ok() {
                for l in out.stdout.lines() {
                    match stamped(l) {
                        Some(s) => self.sink.line(src, s.time, s.text, previous),
                        None => self.sink.line(src, "", l, previous),
                    }
                }
            }
        }
    }
}

/// Starts `kubectl logs --follow` for one container; its lines go through the stream's `Seen`.
fn follow(
    runner: &Runner,
    profile: &str,
    namespace: &str,
    stream: &Stream,
    from: From,
    sink: Arc<Sink>,
) -> Result<Option<Child>> {
    let sh = xshell::Shell::new().context("reading the current directory")?;
    let read = LogRead {
        pod: &stream.source.pod,
        container: &stream.source.container,
        follow: true,
        previous: false,
        from,
    };
    let call = kubectl::logs_stamped(&sh, profile, namespace, &read);
    let (src, seen) = (stream.source.clone(), Arc::clone(&stream.seen));
    runner.start(&call, move |l| {
        let Some(s) = stamped(l) else {
            // kubectl's own errors ("container ... is terminated") are not log lines.
            return;
        };
        if seen.lock().is_ok_and(|mut seen| seen.admit(&s)) {
            sink.line(&src, s.time, s.text, false);
        }
    })
}

/// Parses `--since` (`30s`, `10m`, `2h`) for kubectl.
pub fn parse_since(s: &str) -> Result<String, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    match (n.parse::<u64>(), unit) {
        (Ok(_), "s" | "m" | "h") => Ok(s.to_string()),
        _ => Err(format!("{s} is not a duration such as 30s, 10m or 2h")),
    }
}

impl LogsArgs {
    /// Runs `cargo xtask logs`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        for s in &self.services {
            if !SERVICES.contains(&s.as_str()) {
                return Err(Failure {
                    code: crate::exit::EXIT_USAGE,
                    message: format!("unknown service {s}: one of backend, frontend, postgresql"),
                }
                .into());
            }
        }
        crate::pipeline::require_cluster(ctx)?;
        let first = match (&self.since, self.tail) {
            (Some(d), _) => From::Since(d.clone()),
            (None, Some(n)) => From::Tail(n),
            (None, None) if self.follow => From::Tail(10),
            (None, None) => From::Start,
        };
        let opts = Options {
            services: self.services.clone(),
            first,
            previous_tail: self.tail.unwrap_or(20),
        };
        let mut streamer = Streamer::new(ctx, opts, Arc::new(Sink::new(ctx.json)));
        if !self.follow {
            return streamer.dump();
        }
        streamer.run(&AtomicBool::new(false))
    }
}
