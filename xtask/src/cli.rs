//! Command-line interface: the subcommands and their flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Builds, deploys, validates and cleans the todo chatbot on a local Minikube cluster.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Build, deploy, validate and clean the todo chatbot on a local Minikube cluster",
    long_about = "Build, deploy, validate and clean the todo chatbot on a local Minikube cluster.\n\n\
        Every command names the Minikube profile and its kube context explicitly: your current \
        kube context is never switched or used.\n\n\
        Exit codes: 0 ok, 2 usage, 3 missing prerequisite, 4 step failed, 5 smoke test failed, 130 interrupted."
)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Minikube profile; its kube context has the same name
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "TODO_PROFILE",
        default_value = "todo"
    )]
    pub profile: String,
    /// Kubernetes namespace of the releases
    #[arg(
        long,
        short = 'n',
        global = true,
        env = "TODO_NAMESPACE",
        default_value = "todo"
    )]
    pub namespace: String,
    /// Print each external command as it runs (secrets redacted)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// One JSON event per line on stdout, for machines
    #[arg(long, global = true)]
    pub json: bool,
    /// Print every command that would change something, in order, and change nothing
    #[arg(long, global = true)]
    pub dry_run: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the images, load them into Minikube, install the charts, forward a port and smoke-test
    Deploy(DeployArgs),
    /// Static checks of charts, Dockerfiles and images; live checks when the cluster runs
    Validate(ValidateArgs),
    /// Uninstall everything deploy made, idempotently
    Clean(CleanArgs),
    /// Explain why the release is not healthy (pods, events, logs)
    Diagnose(DiagnoseArgs),
    /// Run the test suite in stages: fmt, clippy, unit tests, image tests, end-to-end tests
    Test(TestArgs),
    /// Build release binaries and run a benchmark target
    Bench(BenchArgs),
}

/// Flags of `deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Local port of the frontend forward; a free one is chosen when it is busy
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Also forward the backend Service to this local port (a free one when busy)
    #[arg(long)]
    pub backend_port: Option<u16>,
    /// Extra Helm values file, after helm/<chart>/values-dev.yaml and the generated values;
    /// `backend=FILE` or `frontend=FILE` applies it to that chart only (repeatable)
    #[arg(long, value_name = "[CHART=]FILE")]
    pub values: Vec<String>,
    /// Read OPENAI_API_KEY, DATABASE_URL and AUTH_SECRET from this file (KEY=VALUE lines); without it, a
    /// `.env` at the workspace root is read when there is one. The environment wins over the file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// Remove a setting the release has (OPENAI_API_KEY, DATABASE_URL or AUTH_SECRET); a setting not
    /// given otherwise keeps the release's value (repeatable)
    #[arg(long, value_name = "NAME", value_parser = parse_setting)]
    pub unset: Vec<crate::pipeline::settings::Key>,
    /// Go ahead when this deploy changes which database the backend uses (bundled <-> external, or
    /// another external URL); without it such a deploy stops before changing anything
    #[arg(long)]
    pub switch_database: bool,
    /// Do not build images; use the tags of the current sources (they must exist)
    #[arg(long)]
    pub skip_build: bool,
    /// Skip the smoke test
    #[arg(long)]
    pub no_smoke: bool,
    /// Keep the port-forward running (supervised) until Ctrl-C
    #[arg(long)]
    pub keep_forward: bool,
    /// Helm timeout for each release, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// CPUs for a Minikube profile that has to be created
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Memory (MiB) for a Minikube profile that has to be created
    #[arg(long, default_value_t = 4096)]
    pub memory: u32,
}

fn parse_setting(name: &str) -> Result<crate::pipeline::settings::Key, String> {
    crate::pipeline::settings::Key::parse(name).ok_or_else(|| {
        format!("{name} is not a setting: OPENAI_API_KEY, DATABASE_URL or AUTH_SECRET")
    })
}

/// Flags of `validate`.
#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Only the static checks (charts, Dockerfiles, images), even when a cluster runs
    #[arg(long, visible_alias = "offline")]
    pub static_only: bool,
}

/// Flags of `clean`.
#[derive(Debug, Clone, Default, Args)]
pub struct CleanArgs {
    /// Also delete the bundled database's data: its volume (PVC) and password Secret, which clean keeps
    /// by default so that the next deploy finds every task again; asks first
    #[arg(long)]
    pub purge_data: bool,
    /// Also delete the Minikube profile (and with it everything in the cluster); asks first
    #[arg(long)]
    pub cluster: bool,
    /// Also remove the todo-backend/todo-frontend images from the local Docker engine
    #[arg(long)]
    pub images: bool,
    /// Confirm --purge-data / --cluster without asking; required when no terminal is attached
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Flags of `diagnose`.
#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Log lines to show per failing container
    #[arg(long, default_value_t = 20, value_name = "LINES")]
    pub tail: u32,
    /// Also ask an OpenAI-compatible model to explain the findings (anonymised first)
    ///
    /// Reads OPENAI_API_KEY (required), OPENAI_BASE_URL (default https://api.openai.com/v1; https checked
    /// against the platform's trust store, SSL_CERT_FILE adds a CA), OPENAI_MODEL (default gpt-4o-mini) and
    /// OPENAI_TIMEOUT_SECS (1-600, default 30).
    #[arg(long)]
    pub explain: bool,
}

/// Flags of `test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Only fmt, clippy and the unit tests (stages 1-3)
    #[arg(long)]
    pub fast: bool,
}

/// Flags of `bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Benchmark target: backend, frontend, images or xtask
    pub target: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "xtask",
            "deploy",
            "--profile",
            "p1",
            "-n",
            "ns",
            "--dry-run",
            "--port",
            "9000",
        ])
        .map_err(|e| e.to_string());
        let cli = match cli {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(cli.global.profile, "p1");
        assert_eq!(cli.global.namespace, "ns");
        assert!(cli.global.dry_run);
        match cli.command {
            Command::Deploy(d) => assert_eq!(d.port, 9000),
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn ops_flags_parse_and_offline_is_an_alias() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(c) => c.command,
            Err(e) => panic!("{args:?}: {e}"),
        };
        for flag in ["--static-only", "--offline"] {
            match parse(&["xtask", "validate", flag]) {
                Command::Validate(v) => assert!(v.static_only, "{flag}"),
                other => panic!("parsed {other:?}"),
            }
        }
        match parse(&["xtask", "clean", "--cluster", "--yes"]) {
            Command::Clean(c) => assert!(c.cluster && c.yes),
            other => panic!("parsed {other:?}"),
        }
        match parse(&["xtask", "clean"]) {
            Command::Clean(c) => assert!(!c.yes),
            other => panic!("parsed {other:?}"),
        }
        match parse(&["xtask", "diagnose", "--explain"]) {
            Command::Diagnose(d) => assert!(d.explain),
            other => panic!("parsed {other:?}"),
        }
    }
}
