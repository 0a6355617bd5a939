//! Argon2id password hashing off the async threads, with a bounded queue: at most `HASH_WORKERS`
//! hashes run at once (each takes ~19 MiB and a core for tens of milliseconds), at most
//! `HASH_QUEUE` more wait, first come first served, and none waits longer than `HASH_WAIT_SECS`;
//! beyond either bound a sign-in is refused with 503 instead of waiting behind a flood for many
//! seconds. Waiting in order (rather than refusing as soon as the workers are busy) is what lets a
//! real sign-in through a flood from many addresses: refused flood requests retry at once and would
//! otherwise take every slot that frees before a newcomer gets to it.

use std::time::Duration;

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::SignInLimits;
use crate::domain::account::Password;
use crate::error::ApiError;

/// The hashing pool of one server.
#[derive(Debug)]
pub struct Hasher {
    workers: Semaphore,
    /// Permits for running and waiting hashes together.
    admitted: Arc<Semaphore>,
    wait: Duration,
    dummy: OnceCell<String>,
}

impl Hasher {
    /// A pool with the configured workers and queue.
    pub fn new(limits: &SignInLimits) -> Self {
        Self {
            workers: Semaphore::new(limits.hash_workers.max(1)),
            admitted: Arc::new(Semaphore::new(
                limits.hash_workers.max(1) + limits.hash_queue,
            )),
            wait: limits.hash_wait,
            dummy: OnceCell::new(),
        }
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, ApiError> {
        let password = password.clone();
        self.run(move || hash_blocking(password.expose()))
            .await?
            .map_err(|e| ApiError::internal(format!("argon2 hash: {e}")))
    }

    /// Checks a password against a stored PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, ApiError> {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.run(move || {
            let parsed = PasswordHash::new(&phc)
                .map_err(|e| ApiError::internal(format!("stored hash unreadable: {e}")))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await?
    }

    /// Verifies against the hash of a random password: a login for an unknown e-mail costs as
    /// much as one with a wrong password, so timing does not tell which e-mails exist.
    pub async fn verify_dummy(&self, password: &str) -> Result<(), ApiError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                self.run(|| hash_blocking("not-a-real-password"))
                    .await?
                    .map_err(|e| ApiError::internal(format!("argon2 hash: {e}")))
            })
            .await?;
        self.verify(password, dummy).await.map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy =
            || ApiError::ServiceUnavailable("too many sign-ins at once, retry in a moment".into());
        let Ok(_admitted) = self.admitted.clone().try_acquire_owned() else {
            return Err(busy());
        };
        // tokio's semaphore hands out permits in the order they were asked for.
        let _worker = tokio::time::timeout(self.wait, self.workers.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|e| ApiError::internal(format!("hashing semaphore: {e}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::internal(format!("hashing task: {e}")))
    }
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_workers_and_queue_a_hash_is_refused_not_queued() {
        let hasher = Arc::new(Hasher::new(&SignInLimits {
            hash_workers: 1,
            hash_queue: 1,
            hash_wait: Duration::from_millis(50),
            ..SignInLimits::default()
        }));
        // Hold both admissions: one as the running hash, one as the waiting one.
        let running = hasher.admitted.clone().try_acquire_owned().unwrap();
        let waiting = hasher.admitted.clone().try_acquire_owned().unwrap();
        let password = Password::parse("long enough password").unwrap();
        match hasher.hash(&password).await {
            Err(ApiError::ServiceUnavailable(_)) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop((running, waiting));
        // A worker busy for longer than the wait: refused after the wait, not queued behind it.
        let busy_worker = hasher.workers.acquire().await.unwrap();
        match hasher.hash(&password).await {
            Err(ApiError::ServiceUnavailable(_)) => {}
            other => panic!("expected a refusal after the wait, got {other:?}"),
        }
        drop(busy_worker);
        let phc = hasher.hash(&password).await.unwrap();
        assert!(hasher.verify("long enough password", &phc).await.unwrap());
        assert!(!hasher.verify("wrong password!!", &phc).await.unwrap());
        hasher.verify_dummy("anything at all").await.unwrap();
    }
}
