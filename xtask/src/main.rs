//! `cargo xtask`: builds, deploys, validates and cleans the todo chatbot on a local Minikube cluster.

mod bench_cmd;
mod clean;
mod cli;
mod context;
mod curl;
mod diagnose;
mod hash;
mod http;
mod kube;
mod pipeline;
mod progress;
mod secrets;
mod test_cmd;
mod tools;
mod validate;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::{exit_code_of, Context};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                context::EXIT_USAGE
            } else {
                context::EXIT_OK
            });
        }
    };
    if let Err(e) = context::install_ctrlc() {
        eprintln!("warning: {e:#}");
    }
    let code = match run(&cli) {
        Ok(()) => context::EXIT_OK,
        Err(e) => {
            let code = exit_code_of(&e);
            if !cli.global.json {
                eprintln!("error: {e:#}");
            } else {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "message": format!("{e:#}"), "exit_code": code})
                );
            }
            code
        }
    };
    context::interrupt().cleanup();
    std::process::exit(code);
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let ctx = Context::new(&cli.global)?;
    match &cli.command {
        Command::Deploy(a) => pipeline::deploy(&ctx, a),
        Command::Validate(a) => validate::run(&ctx, a),
        Command::Clean(a) => clean::run(&ctx, a),
        Command::Diagnose(a) => diagnose::run(&ctx, a),
        Command::Test(a) => test_cmd::run(&ctx, a),
        Command::Bench(a) => bench_cmd::run(&ctx, a),
    }
}
