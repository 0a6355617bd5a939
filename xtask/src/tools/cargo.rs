//! `cargo`: the test stages and the benchmark runner call the cargo that runs the xtask.

use std::path::Path;

use xshell::{cmd, Shell};

use crate::process::Call;

/// The cargo running this xtask (`CARGO`), else `cargo` on PATH.
pub fn program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// `cargo ARGS...` in the workspace root. Test stages and builds change the target dir: they count as
/// changes, so `--dry-run` prints them.
pub fn run(sh: &Shell, root: &Path, args: &[&str]) -> Call {
    let cargo = program();
    let _dir = sh.push_dir(root);
    Call::change(cmd!(sh, "{cargo} {args...}"))
}
