//! Sessions: hashed bearer tokens with an expiry.

use std::time::Duration;

use sqlx::PgPool;

use crate::auth::token::TokenHash;

/// Stores a session valid for `ttl`; also prunes this user's expired sessions.
pub async fn create(
    pool: &PgPool,
    user_id: i64,
    hash: &TokenHash,
    ttl: Duration,
) -> Result<(), sqlx::Error> {
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    sqlx::query(
        "WITH pruned AS (DELETE FROM sessions WHERE user_id = $1 AND expires_at <= now())
         INSERT INTO sessions (token_hash, user_id, expires_at)
         VALUES ($2, $1, now() + make_interval(secs => $3))",
    )
    .bind(user_id)
    .bind(hash.as_bytes())
    .bind(ttl_secs as f64)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user owning an unexpired session with this token hash.
pub async fn user_for(pool: &PgPool, hash: &TokenHash) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(
        "SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > now()",
    )
    .bind(hash.as_bytes())
    .fetch_optional(pool)
    .await
}

/// Ends one session (logout); true when it existed.
pub async fn delete(pool: &PgPool, hash: &TokenHash) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(hash.as_bytes())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
