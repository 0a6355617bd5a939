//! `cargo xtask`: builds, deploys, validates and cleans the todo chatbot on a local Minikube cluster.

mod bench_cmd;
mod clean;
mod cli;
mod context;
mod dev;
mod diagnose;
mod exit;
mod hash;
mod http;
mod kube;
mod logs;
mod pipeline;
mod process;
mod progress;
mod secrets;
mod status;
mod test_cmd;
#[cfg(test)]
mod testutil;
mod tools;
mod validate;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::{exit_code_of, final_message};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                exit::EXIT_USAGE
            } else {
                exit::EXIT_OK
            });
        }
    };
    if let Err(e) = process::interrupt::install_handler() {
        eprintln!("warning: {e:#}");
    }
    let code = match run(&cli) {
        Ok(()) => exit::EXIT_OK,
        Err(e) => {
            let code = exit_code_of(&e);
            let message = final_message(&e);
            if cli.global.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "error", "message": message, "exit_code": code})
                );
            } else {
                eprintln!("error: {message}");
            }
            code
        }
    };
    process::interrupt::cleanup();
    std::process::exit(code);
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let ctx = Context::new(&cli.global)?;
    match &cli.command {
        Command::Deploy(a) => a.run(&ctx),
        Command::Dev(a) => a.run(&ctx),
        Command::Logs(a) => a.run(&ctx),
        Command::Status(a) => a.run(&ctx),
        Command::Validate(a) => a.run(&ctx),
        Command::Clean(a) => a.run(&ctx),
        Command::Diagnose(a) => a.run(&ctx),
        Command::Test(a) => a.run(&ctx),
        Command::Bench(a) => a.run(&ctx),
    }
}
