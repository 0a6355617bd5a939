//! The deploy pipeline (being written).

use crate::cli::DeployArgs;
use crate::context::Context;

/// Runs `cargo xtask deploy`.
pub fn deploy(_ctx: &Context, _args: &DeployArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
