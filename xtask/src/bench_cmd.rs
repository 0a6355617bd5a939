//! `cargo xtask bench <target>`: release binaries first, then the bench runner.

use anyhow::Result;

use crate::cli::BenchArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::tools::cargo;

impl BenchArgs {
    /// Builds backend and frontend in release mode, then runs `bench <target>`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        let sh = ctx.sh()?;
        let target = self.target.as_str();
        let steps = [
            cargo::run(
                &sh,
                &ctx.root,
                &["build", "--release", "-p", "backend", "-p", "frontend"],
            ),
            cargo::run(
                &sh,
                &ctx.root,
                &["run", "--release", "-p", "bench", "--", target],
            ),
        ];
        for c in steps {
            if ctx.dry_run {
                ctx.run(&c)?;
                continue;
            }
            eprintln!("==> {}", c.display());
            if !ctx.runner.run_inherited(&c)? {
                return Err(Failure::step(format!("`{}` failed", c.display())).into());
            }
        }
        Ok(())
    }
}
