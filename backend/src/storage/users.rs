//! Users.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::account::Email;

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Normalized e-mail address.
    pub email: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A user with the stored password hash, for login.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    /// Id.
    pub id: i64,
    /// Normalized e-mail address.
    pub email: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Argon2 PHC string.
    pub password_hash: String,
}

impl Credentials {
    /// The public part.
    pub fn user(&self) -> User {
        User {
            id: self.id,
            email: self.email.clone(),
            created_at: self.created_at,
        }
    }
}

/// Inserts a user; `Ok(None)` when the e-mail is taken.
pub async fn create(
    pool: &PgPool,
    email: &Email,
    password_hash: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2)
         ON CONFLICT (email) DO NOTHING
         RETURNING id, email, created_at",
    )
    .bind(email.as_str())
    .bind(password_hash)
    .fetch_optional(pool)
    .await
}

/// Looks a user up by e-mail, with the password hash.
pub async fn credentials(pool: &PgPool, email: &Email) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as::<_, Credentials>(
        "SELECT id, email, created_at, password_hash FROM users WHERE email = $1",
    )
    .bind(email.as_str())
    .fetch_optional(pool)
    .await
}

/// Looks a user up by id.
pub async fn get(pool: &PgPool, user_id: i64) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>("SELECT id, email, created_at FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(pool)
        .await
}

/// Deletes a user; sessions, tasks and everything else owned cascade. Returns whether a row went.
pub async fn delete(pool: &PgPool, user_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
