//! `todo-frontend`: reads its configuration from the environment and serves until SIGTERM or Ctrl-C.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use frontend::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("todo-frontend: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    // Two workers are plenty for a proxy and keep idle memory low on small pods.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "todo-frontend stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, backend = %config.backend_url, "todo-frontend listening");
    let (first, second) = http_serve::shutdown_signals();
    frontend::serve_until(config, listener, first, second)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("todo-frontend stopped cleanly");
    Ok(())
}

fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|e| {
        eprintln!(
            "todo-frontend: invalid log filter {:?} ({e}); using info",
            config.log_filter
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
