//! The deploy pipeline: typed steps (name, check, run) in a fixed order, with exit codes per failure kind.

mod build_errors;
pub mod cluster;
pub mod forward;
pub mod images;
pub mod load;
mod preflight;
mod relay;
pub mod release;
pub mod settings;
mod smoke;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::DeployArgs;
use crate::context::Context;
use crate::exit::{Failure, Reported};
use crate::process::interrupt;
use crate::progress::{Budget, Outcome, Reporter};
use crate::tools::docker::Builder;
use crate::tools::helm::Flavor;
use crate::tools::minikube::Runtime;

pub use cluster::require_cluster;
pub use forward::Forward;

/// What a step's precondition check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The step has work to do.
    Run,
    /// Nothing to do, and why.
    Skip(String),
}

/// One typed unit of the pipeline.
pub trait Step {
    /// Short name shown in progress lines.
    fn name(&self) -> &'static str;
    /// Decides whether the step has anything to do; errors when it cannot run. Most steps always run.
    fn check(&self, _ctx: &Context, _st: &mut State) -> Result<Check> {
        Ok(Check::Run)
    }
    /// Does the work; returns a one-line detail for the summary.
    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String>;
}

/// One image the deploy builds.
#[derive(Debug, Clone)]
pub struct Image {
    /// `backend` or `frontend`.
    pub service: &'static str,
    /// `todo-backend`.
    pub repository: String,
    /// Content hash tag.
    pub tag: String,
    /// The digests of its inputs (the tag is computed from them).
    pub digests: crate::hash::Digests,
    /// Built by this run.
    pub built: bool,
    /// Loaded into the node by this run.
    pub loaded: bool,
}

impl Image {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// What the steps learn and hand on to later steps.
#[derive(Debug)]
pub struct State {
    /// The deploy flags.
    pub args: DeployArgs,
    /// Helm 3 or 4, from preflight.
    pub helm: Option<Flavor>,
    /// How docker builds with BuildKit, from preflight.
    pub builder: Option<Builder>,
    /// The node's container runtime, from the cluster step.
    pub runtime: Option<Runtime>,
    /// Environment pointing docker at Minikube's daemon (Docker runtime only).
    pub docker_env: BTreeMap<String, String>,
    /// False under --dry-run when the cluster is not running (later queries would fail).
    pub cluster_up: bool,
    /// The images, from the images step.
    pub images: Vec<Image>,
    /// The cargo profile images are built with.
    pub profile: images::Profile,
    /// The running forward(s).
    pub forward: Option<Forward>,
    /// Measured figures with their budgets.
    pub budgets: Vec<Budget>,
    /// Name -> URL for the summary.
    pub urls: Vec<(String, String)>,
    /// Secret values to redact from printed commands.
    pub secret_values: Vec<String>,
    /// The settings the release gets, from the settings step.
    pub settings: Option<settings::Plan>,
    /// The services whose releases the release step upgrades (None: both); a dev cycle narrows it.
    pub only: Option<Vec<&'static str>>,
}

impl State {
    /// Fresh state for a run.
    pub fn new(args: &DeployArgs) -> Self {
        Self {
            args: args.clone(),
            helm: None,
            builder: None,
            runtime: None,
            docker_env: BTreeMap::new(),
            cluster_up: true,
            images: Vec::new(),
            profile: images::Profile::Release,
            forward: None,
            budgets: Vec::new(),
            urls: Vec::new(),
            secret_values: Vec::new(),
            settings: None,
            only: None,
        }
    }
}

/// The ordered steps for these flags.
pub fn plan(args: &DeployArgs) -> Vec<Box<dyn Step>> {
    let mut steps: Vec<Box<dyn Step>> = vec![
        Box::new(preflight::Preflight),
        Box::new(cluster::Cluster),
        Box::new(settings::SettingsStep),
        Box::new(images::Images),
        Box::new(load::Load),
        Box::new(release::Release),
        Box::new(forward::ForwardStep),
    ];
    if !args.no_smoke {
        steps.push(Box::new(smoke::Smoke));
    }
    steps
}

impl DeployArgs {
    /// Runs `cargo xtask deploy`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        let (mut st, rep) = deploy(ctx, self, images::Profile::Release)?;
        if self.keep_forward && !ctx.dry_run {
            if let Some(fw) = st.forward.as_mut() {
                rep.println("port-forward kept open (supervised); press Ctrl-C to stop");
                fw.wait_forever();
            }
        }
        Ok(())
    }
}

/// Runs every step with images built in `profile`, prints the summary; the state (forward included) is
/// handed back to whoever goes on from there (`dev`).
pub fn deploy(
    ctx: &Context,
    args: &DeployArgs,
    profile: images::Profile,
) -> Result<(State, Reporter)> {
    let started = Instant::now();
    let mut rep = Reporter::new(ctx.json);
    let mut st = State::new(args);
    st.profile = profile;
    let result = run_steps(ctx, &mut st, &mut rep, &plan(args));
    let ok = result.is_ok();
    if ctx.dry_run {
        rep.println(&format!(
            "dry run: {} command(s) would change something; nothing was changed",
            ctx.runner.planned().len()
        ));
    }
    rep.summary(ok, &st.urls, &st.budgets, started.elapsed());
    result?;
    Ok((st, rep))
}

/// Runs `steps` in order: each is checked, then run or skipped; the first failure ends the run.
pub fn run_steps(
    ctx: &Context,
    st: &mut State,
    rep: &mut Reporter,
    steps: &[Box<dyn Step>],
) -> Result<()> {
    for step in steps {
        if interrupt::is_set() {
            return Err(Failure::interrupted().into());
        }
        let name = step.name();
        rep.started(name);
        let t = Instant::now();
        let res = step.check(ctx, st).and_then(|c| match c {
            Check::Skip(why) => Ok(Outcome::Skipped(why)),
            Check::Run => step.run(ctx, st, rep).map(Outcome::Done),
        });
        match res {
            Ok(outcome) => rep.finished(name, outcome, t.elapsed()),
            Err(e) => {
                rep.finished(name, Outcome::Failed(format!("{e:#}")), t.elapsed());
                // The step line above carries the whole diagnosis; the run ends with one line that names it.
                return Err(e.context(Reported {
                    headline: format!("step {name} failed (see above)"),
                    step: Some(name),
                }));
            }
        }
    }
    Ok(())
}

/// Polls `f` until it returns Some or the deadline passes (no fixed sleeps as synchronisation).
pub fn poll<T>(deadline: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end || interrupt::is_set() {
            return None;
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> DeployArgs {
        let mut argv = vec!["xtask", "deploy"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(crate::cli::Command::Deploy(d)) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_order_and_no_smoke() {
        let names: Vec<_> = plan(&args(&[])).iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "cluster",
                "settings",
                "images",
                "load",
                "release",
                "forward",
                "smoke"
            ]
        );
        let names: Vec<_> = plan(&args(&["--no-smoke"]))
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(names.last(), Some(&"forward"));
    }

    #[test]
    fn poll_returns_value_or_gives_up() {
        let mut n = 0;
        assert_eq!(
            poll(Duration::from_secs(1), Duration::from_millis(1), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        assert_eq!(
            poll(
                Duration::from_millis(20),
                Duration::from_millis(5),
                || None::<()>
            ),
            None
        );
    }
}
