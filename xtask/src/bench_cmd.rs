//! `cargo xtask bench <target>`: release binaries first, then the bench runner.

use anyhow::{Context as _, Result};

use crate::cli::BenchArgs;
use crate::context::{Cmd, Context, Failure};

/// Builds backend and frontend in release mode, then runs `bench <target>`.
pub fn run(ctx: &Context, args: &BenchArgs) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let steps = [
        Cmd::new(&cargo).args(["build", "--release", "-p", "backend", "-p", "frontend"]),
        Cmd::new(&cargo)
            .args(["run", "--release", "-p", "bench", "--"])
            .arg(&args.target),
    ];
    for c in steps {
        let c = c.cwd(&ctx.root).mutating();
        if ctx.dry_run {
            ctx.runner.output(&c)?;
            continue;
        }
        eprintln!("==> {}", c.display());
        let st = std::process::Command::new(&c.program)
            .args(&c.args)
            .current_dir(&ctx.root)
            .status()
            .with_context(|| format!("running `{}`", c.display()))?;
        if !st.success() {
            return Err(Failure::step(format!("`{}` failed", c.display())).into());
        }
    }
    Ok(())
}
