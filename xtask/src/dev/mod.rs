//! `cargo xtask dev`: the inner loop. A normal deploy first (images built with the fast `image-dev` profile),
//! then every change to an image's inputs or a chart is one cycle: only the images whose hash changed are
//! rebuilt, only the releases they (or their chart) belong to are upgraded, with deploy's fail-fast rollout
//! watch, and one line says what changed, why it rebuilt, what rolled out and how long it took. The forward
//! keeps its URL across rollouts; the pods' logs stream meanwhile. A build that fails prints the compiler's
//! errors and leaves the running release alone; Ctrl-C ends the loop and deletes nothing.

mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use self::watch::{Affected, Inputs, Watch};
use crate::cli::{DeployArgs, DevArgs};
use crate::context::Context;
use crate::logs::{Options, Sink, Streamer};
use crate::pipeline::images::{self, Profile, SERVICES};
use crate::pipeline::{self, load, release, Image, State, Step};
use crate::process::interrupt;
use crate::progress::{fmt_dur, Outcome, Reporter};
use crate::tools::kubectl::From;

impl DevArgs {
    /// Runs `cargo xtask dev`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        let inputs = watched(ctx, &self.deploy.values)?;
        if ctx.dry_run {
            let (_, rep) = pipeline::deploy(ctx, &self.deploy, Profile::Dev)?;
            rep.println("dry run: dev would now watch the images' inputs and the charts, and roll out each change");
            return Ok(());
        }
        let (watch, roots) = Watch::start(&inputs)?;
        let mut st = first_deploy(ctx, &self.deploy, &inputs, &watch)?;
        interrupt::set_hint("the releases keep running: `cargo xtask clean` removes them");
        let stop_logs = Arc::new(AtomicBool::new(false));
        let logs = (!self.no_logs).then(|| {
            let mut streamer = Streamer::new(
                ctx,
                Options {
                    services: Vec::new(),
                    first: From::Tail(5),
                    previous_tail: 20,
                },
                Arc::new(Sink::new(ctx.json)),
            );
            let stop = Arc::clone(&stop_logs);
            std::thread::spawn(move || streamer.run(&stop))
        });
        say(
            ctx,
            json!({"event": "watching", "roots": roots}),
            &format!(
                "[dev] watching {roots} director(ies); edit and save to roll out; Ctrl-C stops the loop and leaves the release running"
            ),
        );
        let mut running = st.images.clone();
        let mut charts = chart_digests(ctx, &self.deploy.values);
        let mut n = 0u32;
        let outcome = loop {
            if st.forward.as_ref().is_some_and(pipeline::Forward::ended) {
                say(
                    ctx,
                    json!({"event": "stopped", "reason": "the forward was stopped by clean"}),
                    "[dev] the forward was stopped by `cargo xtask clean`; dev ends",
                );
                break Ok(());
            }
            let paths = match watch.next(Duration::from_millis(500)) {
                Ok(Some(p)) => p,
                Ok(None) => continue,
                Err(e) => break Err(e),
            };
            let affected = inputs.affected_all(&paths);
            if affected.is_empty() {
                continue;
            }
            n += 1;
            let c = Cycle {
                n,
                affected,
                started: Instant::now(),
            };
            c.run(ctx, &mut st, &mut running, &mut charts, &self.deploy.values);
        };
        stop_logs.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = logs {
            let _ = t.join();
        }
        outcome
    }
}

/// The first deploy. One that fails for something the sources can fix (a compile error, a crash, a failed
/// smoke test) is said and tried again at the next change, as the loop would; a missing prerequisite or a
/// refused setting ends `dev`.
fn first_deploy(ctx: &Context, args: &DeployArgs, inputs: &Inputs, watch: &Watch) -> Result<State> {
    loop {
        match pipeline::deploy(ctx, args, Profile::Dev) {
            Ok((st, _)) => return Ok(st),
            Err(e) if fixable(&e) => say(
                ctx,
                json!({"event": "first_deploy_failed", "error": crate::exit::final_message(&e)}),
                "[dev] the first deploy failed (above); fix it and save: dev tries again at the next change",
            ),
            Err(e) => return Err(e),
        }
        loop {
            match watch.next(Duration::from_millis(500))? {
                Some(paths) if !inputs.affected_all(&paths).is_empty() => break,
                _ if interrupt::is_set() => return Err(crate::exit::Failure::interrupted().into()),
                _ => {}
            }
        }
    }
}

/// True for a failure an edit of the sources can fix: a build, a rollout, the forward or the smoke test;
/// not a missing prerequisite, a cluster that does not start, or a refused setting.
fn fixable(e: &anyhow::Error) -> bool {
    matches!(
        crate::exit::failed_step(e),
        Some("images" | "load" | "release" | "forward" | "smoke")
    )
}

/// The inputs of both images (in the dev profile) and of both charts.
fn watched(ctx: &Context, values: &[String]) -> Result<Inputs> {
    let images: Vec<(&'static str, crate::hash::ImageInputs)> = SERVICES
        .iter()
        .filter_map(|(s, ..)| images::inputs(ctx, s, Profile::Dev).map(|i| (*s, i)))
        .collect();
    Inputs::new(&ctx.root, &images, values)
}

/// A fingerprint of each chart and the values files given for it: a save that changes nothing upgrades
/// nothing.
fn chart_digests(ctx: &Context, values: &[String]) -> BTreeMap<&'static str, String> {
    ["backend", "frontend"]
        .into_iter()
        .map(|svc| {
            let mut files: Vec<PathBuf> = vec![ctx.root.join("helm").join(svc)];
            files.extend(release::values_for(values, svc).map(Path::to_path_buf));
            (svc, crate::hash::tree_digest(&files))
        })
        .collect()
}

/// An image a cycle rebuilds, and the inputs that differ from the running one.
struct Rebuilt {
    service: &'static str,
    tag: String,
    because: Vec<String>,
}

/// One batch of changes.
struct Cycle {
    n: u32,
    affected: Affected,
    started: Instant,
}

impl Cycle {
    fn run(
        &self,
        ctx: &Context,
        st: &mut State,
        running: &mut Vec<Image>,
        charts: &mut BTreeMap<&'static str, String>,
        values: &[String],
    ) {
        let changed: Vec<String> = self
            .affected
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        if let Err(e) = images::compute_tags(ctx, st) {
            self.report(
                ctx,
                &changed,
                &[],
                &[],
                Err(format!("{e:#}")),
                &Reporter::quiet(ctx.json),
            );
            return;
        }
        // Which images differ from what runs, and which of their inputs made them differ.
        let rebuild: Vec<Rebuilt> = st
            .images
            .iter()
            .filter(|i| self.affected.images.contains(i.service))
            .filter_map(|i| {
                let old = running.iter().find(|r| r.service == i.service)?;
                (old.tag != i.tag).then(|| Rebuilt {
                    service: i.service,
                    tag: i.tag.clone(),
                    because: i.digests.changed_since(&old.digests),
                })
            })
            .collect();
        let now = chart_digests(ctx, values);
        let chart_changed: BTreeSet<&'static str> = self
            .affected
            .charts
            .iter()
            .copied()
            .filter(|svc| now.get(svc) != charts.get(svc))
            .collect();
        let upgrade: BTreeSet<&'static str> = rebuild
            .iter()
            .map(|r| r.service)
            .chain(chart_changed.iter().copied())
            .collect();
        if upgrade.is_empty() {
            st.images.clone_from(running);
            say(
                ctx,
                json!({"event": "cycle", "n": self.n, "changed": changed, "ok": true, "rebuilt": [], "upgraded": []}),
                &format!(
                    "[dev] {} changed: no input of an image or chart differs, nothing to do",
                    changed.join(", ")
                ),
            );
            return;
        }
        st.only = Some(upgrade.iter().copied().collect());
        let mut rep = Reporter::quiet(ctx.json);
        let steps: Vec<Box<dyn Step>> = vec![
            Box::new(images::Images),
            Box::new(load::Load),
            Box::new(release::Release),
        ];
        let result = pipeline::run_steps(ctx, st, &mut rep, &steps);
        st.only = None;
        let upgraded: Vec<&'static str> = upgrade.iter().copied().collect();
        match result {
            Ok(()) => {
                running.clone_from(&st.images);
                for svc in &chart_changed {
                    if let Some(d) = now.get(svc) {
                        charts.insert(svc, d.clone());
                    }
                }
                self.report(ctx, &changed, &rebuild, &upgraded, Ok(()), &rep);
            }
            Err(e) => {
                // The running release is what it was (a build failure touched nothing; a failed rollout was
                // rolled back): the next cycle compares against it.
                st.images.clone_from(running);
                let why = rep
                    .rows()
                    .iter()
                    .find_map(|r| match &r.outcome {
                        Outcome::Failed(t) => Some(t.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| format!("{e:#}"));
                self.report(ctx, &changed, &rebuild, &upgraded, Err(why), &rep);
            }
        }
    }

    fn report(
        &self,
        ctx: &Context,
        changed: &[String],
        rebuilt: &[Rebuilt],
        upgraded: &[&'static str],
        result: Result<(), String>,
        rep: &Reporter,
    ) {
        let took = |step: &str| {
            rep.rows()
                .iter()
                .filter(|r| {
                    r.step == step && matches!(r.outcome, Outcome::Done(_) | Outcome::Failed(_))
                })
                .map(|r| r.duration)
                .sum::<Duration>()
        };
        let (build, load, rollout) = (took("images"), took("load"), took("release"));
        let total = self.started.elapsed();
        let ok = result.is_ok();
        if ctx.json {
            let rebuilt: Vec<_> = rebuilt
                .iter()
                .map(|r| json!({"image": format!("todo-{}", r.service), "tag": r.tag, "because": r.because}))
                .collect();
            let mut v = json!({
                "event": "cycle", "n": self.n, "changed": changed, "ok": ok,
                "rebuilt": rebuilt, "upgraded": upgraded.iter().map(|s| format!("todo-{s}")).collect::<Vec<_>>(),
                "build_ms": build.as_millis() as u64, "load_ms": load.as_millis() as u64,
                "rollout_ms": rollout.as_millis() as u64, "duration_ms": total.as_millis() as u64,
            });
            if let Err(why) = &result {
                v["error"] = json!(why);
            }
            println!("{v}");
            return;
        }
        let mut line = format!("[dev] {} changed", changed.join(", "));
        for r in rebuilt {
            line.push_str(&format!(
                " -> rebuilt todo-{} ({})",
                r.service,
                r.because.join(", ")
            ));
        }
        if !build.is_zero() {
            line.push_str(&format!(" in {}", fmt_dur(build)));
        }
        match &result {
            Ok(()) => {
                let names: Vec<String> = upgraded.iter().map(|s| format!("todo-{s}")).collect();
                line.push_str(&format!(", rolled out {}", names.join(" and ")));
                if !rollout.is_zero() {
                    line.push_str(&format!(" in {}", fmt_dur(rollout + load)));
                }
                line.push_str(&format!("; {} in all", fmt_dur(total)));
                println!("{line}");
            }
            Err(why) => {
                line.push_str(&format!(
                    "; FAILED after {}, the running version stays:\n{why}\n[dev] waiting for the next change",
                    fmt_dur(total)
                ));
                eprintln!("{line}");
            }
        }
    }
}

/// A line for humans, or the event for machines.
fn say(ctx: &Context, event: serde_json::Value, text: &str) {
    if ctx.json {
        println!("{event}");
    } else {
        println!("{text}");
    }
}
