//! `cargo xtask dev` (placeholder while the loop is written).

use anyhow::Result;

use crate::cli::DevArgs;
use crate::context::Context;

impl DevArgs {
    /// Runs `cargo xtask dev`.
    pub fn run(&self, _ctx: &Context) -> Result<()> {
        anyhow::bail!("not yet")
    }
}
