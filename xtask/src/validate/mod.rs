//! `cargo xtask validate`: a checklist of static checks (charts, Dockerfiles, images) and, when the
//! cluster and releases exist, live checks; non-zero exit when any check fails.

mod charts;
mod check;
mod dockerfile;
mod image;
mod live;
mod policy;

use anyhow::Result;

pub use check::{render_table, CheckResult, Outcome};

use crate::cli::ValidateArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::pipeline::cluster::{profile_state, unreadable};
use crate::tools::minikube::ClusterState;

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only the static checks, even when a cluster runs.
    pub static_only: bool,
}

impl From<&ValidateArgs> for Options {
    fn from(a: &ValidateArgs) -> Self {
        Self {
            static_only: a.static_only,
        }
    }
}

/// Runs the static checks: charts, Dockerfiles, built images.
pub fn static_checks(ctx: &Context) -> Vec<CheckResult> {
    let mut out = charts::checks(ctx);
    out.extend(dockerfile::checks(ctx));
    out.extend(image::checks(ctx));
    out
}

/// Whether live checks can run: the profile runs and a release is installed.
fn live_possible(ctx: &Context) -> std::result::Result<(), String> {
    let state = ctx
        .sh()
        .and_then(|sh| profile_state(ctx, &sh))
        .map_err(|e| format!("{e:#}"))?;
    match state {
        ClusterState::Running => live::releases_installed(ctx),
        ClusterState::Missing => Err(format!("Minikube profile {} does not exist", ctx.profile)),
        ClusterState::Stopped(host) => Err(format!(
            "Minikube profile {} is not running (host {host})",
            ctx.profile
        )),
        ClusterState::Misconfigured => Err(format!(
            "the kubeconfig entry of Minikube profile {p} is stale (minikube status: kubeconfig Misconfigured): \
             run `minikube -p {p} update-context` (or `cargo xtask deploy`, which fixes it and keeps your \
             current context)",
            p = ctx.profile
        )),
        ClusterState::Unreadable => Err(unreadable(&ctx.profile)),
    }
}

impl ValidateArgs {
    /// Runs `cargo xtask validate`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        run(ctx, self)
    }
}

fn run(ctx: &Context, args: &ValidateArgs) -> Result<()> {
    let opts = Options::from(args);
    let mut results = static_checks(ctx);
    if opts.static_only {
        results.push(CheckResult::skip(
            "live checks",
            "static checks only were asked for",
            "run without --static-only once `cargo xtask deploy` succeeded",
        ));
    } else {
        match live_possible(ctx) {
            Ok(()) => results.extend(live::checks(ctx)),
            Err(why) => results.push(CheckResult::skip(
                "live checks",
                &why,
                "`cargo xtask deploy` first, then validate again",
            )),
        }
    }
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"event": "validate", "checks": results})
        );
    } else {
        print!("{}", render_table(&results));
    }
    let missing: std::collections::BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.missing_tool.as_deref())
        .map(|t| crate::tools::missing(t).message)
        .collect();
    if !missing.is_empty() {
        let mut msg = format!("{} prerequisite problem(s):", missing.len());
        for m in &missing {
            msg.push_str("\n  - ");
            msg.push_str(m);
        }
        return Err(Failure::prereq(msg).into());
    }
    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Fail)
        .count();
    if failed > 0 {
        return Err(Failure::step(format!("{failed} check(s) failed")).into());
    }
    Ok(())
}
