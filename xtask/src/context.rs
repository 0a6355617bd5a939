//! What every command shares: the global options, the workspace root and the runner.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use xshell::Shell;

use crate::cli::GlobalArgs;
use crate::process::{Call, Output, Runner};

/// Global options plus the runner, handed to every command.
#[derive(Debug, Clone)]
pub struct Context {
    /// Minikube profile = kube context name.
    pub profile: String,
    /// Namespace of the releases.
    pub namespace: String,
    /// --json.
    pub json: bool,
    /// --dry-run.
    pub dry_run: bool,
    /// Runs external commands.
    pub runner: Runner,
    /// Workspace root (where helm/, backend/, frontend/ live).
    pub root: PathBuf,
}

impl Context {
    /// Builds the context from the global flags.
    pub fn new(g: &GlobalArgs) -> Result<Self> {
        Ok(Self {
            profile: g.profile.clone(),
            namespace: g.namespace.clone(),
            json: g.json,
            dry_run: g.dry_run,
            runner: Runner::new(g.verbose > 0, g.dry_run, g.json),
            root: workspace_root()?,
        })
    }

    /// A shell to write commands with `cmd!`, in the current directory (commands that need the workspace
    /// root, such as builds and git, `push_dir` it themselves). Shells are cheap and not `Sync`: make one
    /// where commands are written (one per thread).
    pub fn sh(&self) -> Result<Shell> {
        Shell::new().context("reading the current directory")
    }

    /// Runs a command to completion (see [`Runner::output`]).
    pub fn run(&self, call: &Call) -> Result<Output> {
        self.runner.output(call)
    }
}

/// The workspace root: `TODO_WORKSPACE_ROOT`, else the parent of this crate's manifest dir when it holds the
/// workspace manifest, else the current directory.
pub fn workspace_root() -> Result<PathBuf> {
    if let Ok(r) = std::env::var("TODO_WORKSPACE_ROOT") {
        return Ok(PathBuf::from(r));
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(parent) = manifest.parent() {
        if parent.join("Cargo.toml").is_file() {
            return Ok(parent.to_path_buf());
        }
    }
    std::env::current_dir().context("reading the current directory")
}
