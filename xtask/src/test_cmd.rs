//! `cargo xtask test`: the README test command, in stages, stopping at the first failure.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::TestArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::tools::cargo;

/// One stage of the test command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Short name.
    pub name: &'static str,
    /// `cargo` arguments.
    pub args: Vec<&'static str>,
}

/// The stages in order; `--fast` keeps the first three.
pub fn stages(fast: bool) -> Vec<Stage> {
    let all = vec![
        Stage {
            name: "fmt",
            args: vec!["fmt", "--all", "--", "--check"],
        },
        Stage {
            name: "clippy",
            args: vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        },
        Stage {
            name: "unit tests",
            args: vec![
                "test",
                "--workspace",
                "--exclude",
                "images-tests",
                "--exclude",
                "e2e-tests",
            ],
        },
        Stage {
            name: "image tests",
            args: vec!["test", "-p", "images-tests"],
        },
        Stage {
            name: "end-to-end tests",
            args: vec!["test", "-p", "e2e-tests"],
        },
    ];
    if fast {
        all.into_iter().take(3).collect()
    } else {
        all
    }
}

impl TestArgs {
    /// Runs `cargo xtask test`: the stages with inherited output, printing timings and a summary.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        run(ctx, self)
    }
}

fn run(ctx: &Context, args: &TestArgs) -> Result<()> {
    let sh = ctx.sh()?;
    let plan = stages(args.fast);
    let mut results: Vec<(&str, Duration, bool)> = Vec::new();
    for (i, st) in plan.iter().enumerate() {
        eprintln!(
            "==> [{}/{}] {}: cargo {}",
            i + 1,
            plan.len(),
            st.name,
            st.args.join(" ")
        );
        let cmd = cargo::run(&sh, &ctx.root, &st.args);
        if ctx.dry_run {
            ctx.run(&cmd)?;
            continue;
        }
        let t = Instant::now();
        let ok = ctx.runner.run_inherited(&cmd)?;
        results.push((st.name, t.elapsed(), ok));
        eprintln!(
            "<== {} {} in {:.1}s",
            st.name,
            if ok { "passed" } else { "FAILED" },
            t.elapsed().as_secs_f64()
        );
        if !ok {
            break;
        }
    }
    eprintln!("\nsummary:");
    for (name, d, ok) in &results {
        eprintln!(
            "  {:<18} {:>8.1}s  {}",
            name,
            d.as_secs_f64(),
            if *ok { "ok" } else { "FAILED" }
        );
    }
    if results.iter().any(|r| !r.2) {
        return Err(Failure::step("a test stage failed").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_runs_the_first_three_stages() {
        let names: Vec<_> = stages(true).iter().map(|s| s.name).collect();
        assert_eq!(names, ["fmt", "clippy", "unit tests"]);
        assert_eq!(stages(false).len(), 5);
        assert_eq!(stages(false)[4].args, ["test", "-p", "e2e-tests"]);
    }
}
