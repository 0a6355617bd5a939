//! Placeholder until the ops engineer's implementation lands (issue 8).

use crate::cli::ValidateArgs;
use crate::context::Context;

/// Runs the subcommand.
pub fn run(_ctx: &Context, _args: &ValidateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
