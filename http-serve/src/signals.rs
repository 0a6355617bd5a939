//! SIGTERM and Ctrl-C: the first starts the shutdown, a second cuts its pause short.

use std::future::Future;

use tokio::sync::watch;

/// Two futures: the first completes at the first SIGTERM or Ctrl-C, the second at the second one.
/// Must be called within a Tokio runtime (it spawns the listener).
pub fn shutdown_signals() -> (impl Future<Output = ()>, impl Future<Output = ()>) {
    let (tx, rx) = watch::channel(0u32);
    tokio::spawn(async move {
        loop {
            shutdown_signal().await;
            tx.send_modify(|n| *n += 1);
        }
    });
    (wait_for(rx.clone(), 1), wait_for(rx, 2))
}

async fn wait_for(mut signals: watch::Receiver<u32>, n: u32) {
    if signals.wait_for(|seen| *seen >= n).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    // SIGTERM is what Kubernetes and `docker stop` send; elsewhere (Windows) only Ctrl-C exists.
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
