//! Readiness: migrations run in the background until they succeed; `/ready` reports them and the database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::PgPool;

use crate::storage::MIGRATOR;

/// Shared readiness state.
#[derive(Debug, Default)]
pub struct Readiness {
    migrated: AtomicBool,
    stopping: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Readiness {
    /// True once the migrations have been applied.
    pub fn migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// True once shutdown has begun: `/ready` answers 503 so no new traffic is routed here.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Marks the start of shutdown.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    /// Why migrations have not completed yet, if an attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    fn set_error(&self, e: String) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(e);
        }
    }
}

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Applies the migrations, retrying with backoff until they succeed (the database may come up later than us).
pub async fn migrate_until_done(pool: PgPool, readiness: std::sync::Arc<Readiness>) {
    let mut delay = FIRST_RETRY;
    loop {
        match MIGRATOR.run(&pool).await {
            Ok(()) => {
                readiness.migrated.store(true, Ordering::Release);
                tracing::info!("database migrations applied");
                return;
            }
            Err(e) => {
                let msg = format!("migrations pending: {e}");
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "migrations failed, retrying");
                readiness.set_error(msg);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
        }
    }
}
