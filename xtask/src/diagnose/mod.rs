//! `cargo xtask diagnose`: k8sgpt-style analyzers over the release's namespace, each finding with evidence and a fix.

mod collect;
mod events;
pub mod explain;
mod finding;
mod pods;
pub mod redact;
mod rollout;
mod services;
mod snapshot;
mod storage;
mod workloads;

use anyhow::Result;

pub use collect::collect;
#[cfg(test)]
pub use collect::snapshot_from_json;
pub use finding::{Finding, Severity};
pub use rollout::classify_rollout;
pub use services::ready_endpoints;
pub use snapshot::Snapshot;

use crate::cli::DiagnoseArgs;
use crate::context::Context;
use crate::exit::Failure;

/// Runs every analyzer; findings come out most severe first, causes before symptoms.
pub fn analyze(snap: &Snapshot) -> Vec<Finding> {
    // Causes before symptoms: volumes and pods explain the Deployments and Services that follow.
    let mut found = storage::analyze(snap);
    found.extend(pods::analyze(snap));
    found.extend(workloads::nothing_deployed(snap));
    found.extend(workloads::analyze(snap));
    found.extend(services::analyze(snap));
    let events = events::analyze(snap, &found);
    found.extend(events);
    found.sort_by_key(|f| f.severity);
    found
}

/// Renders findings for a terminal, with a one-line verdict first.
pub fn render(findings: &[Finding], namespace: &str) -> String {
    if findings.is_empty() {
        return format!("diagnose: no problems found in namespace {namespace}\n");
    }
    let critical = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    let mut out = format!(
        "diagnose: {} finding(s) in namespace {namespace}, {critical} critical\n\n",
        findings.len()
    );
    for f in findings {
        out.push_str(&f.render());
        out.push('\n');
    }
    out
}

impl DiagnoseArgs {
    /// Runs `cargo xtask diagnose`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        run(ctx, self)
    }
}

/// Collect, analyze, print, optionally explain; fails when a critical finding exists.
fn run(ctx: &Context, args: &DiagnoseArgs) -> Result<()> {
    let snap = collect(ctx, args.tail)?;
    let findings = analyze(&snap);
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"event": "diagnose", "namespace": snap.namespace, "findings": findings})
        );
    } else {
        print!("{}", render(&findings, &snap.namespace));
    }
    if args.explain {
        match explain::Settings::from_env() {
            Some(settings) => {
                let text = explain::explain(&settings, &findings)?;
                if ctx.json {
                    println!(
                        "{}",
                        serde_json::json!({"event": "explanation", "text": text})
                    );
                } else {
                    println!("explanation ({}):\n{text}", settings.model);
                }
            }
            None => {
                eprintln!("--explain: OPENAI_API_KEY is not set; the findings above stand alone")
            }
        }
    }
    let critical = findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    if critical > 0 {
        return Err(Failure::step(format!(
            "{critical} critical finding(s) in namespace {}",
            snap.namespace
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
