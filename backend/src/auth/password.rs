//! Argon2id password hashing, run off the async threads and bounded in parallelism
//! (each hash takes ~19 MiB and a core for tens of milliseconds).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

use crate::domain::account::Password;
use crate::error::ApiError;

static HASHING: Semaphore = Semaphore::const_new(2);

/// Hashes a password into a PHC string.
pub async fn hash(password: &Password) -> Result<String, ApiError> {
    let password = password.clone();
    run_bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("argon2 hash: {e}")))
    })
    .await
}

/// Checks a password against a stored PHC string.
pub async fn verify(password: &str, phc: &str) -> Result<bool, ApiError> {
    let password = password.to_owned();
    let phc = phc.to_owned();
    run_bounded(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| ApiError::internal(format!("stored hash unreadable: {e}")))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

/// A PHC hash of a random password: verifying against it costs the same as a real check,
/// so a login for an unknown e-mail takes as long as one with a wrong password.
pub async fn dummy_hash() -> &'static str {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(b"not-a-real-password", &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .await
}

async fn run_bounded<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("hashing semaphore: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("hashing task: {e}")))?
}
