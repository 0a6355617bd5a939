//! PostgreSQL access. Every function takes the pool and, where data is owned, the owning user's id.

pub mod sessions;
pub mod tasks;
pub mod users;

/// Embedded migrations (`backend/migrations`); the migrator holds a Postgres advisory lock while it runs.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
