//! Tasks, always scoped to their owner: a task of another user behaves exactly like a missing one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

pub use crate::domain::task::{Description, NewTask, StatusFilter, TaskPatch, Title};

/// A task as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Task {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Optional description.
    pub description: Option<String>,
    /// Done?
    pub completed: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, title, description, completed, created_at, updated_at";

/// The user's tasks, newest first.
pub async fn list(
    pool: &PgPool,
    user_id: i64,
    filter: StatusFilter,
) -> Result<Vec<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(
        "SELECT id, title, description, completed, created_at, updated_at FROM tasks
         WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2)
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .bind(filter.completed())
    .fetch_all(pool)
    .await
}

/// Creates a task for the user.
pub async fn create(pool: &PgPool, user_id: i64, task: &NewTask) -> Result<Task, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "INSERT INTO tasks (user_id, title, description) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .bind(task.title.as_str())
    .bind(task.description.as_ref().map(Description::as_str))
    .fetch_one(pool)
    .await
}

/// One of the user's tasks.
pub async fn get(pool: &PgPool, user_id: i64, id: i64) -> Result<Option<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

/// Applies a patch to one of the user's tasks; an empty patch returns the task unchanged.
pub async fn update(
    pool: &PgPool,
    user_id: i64,
    id: i64,
    patch: &TaskPatch,
) -> Result<Option<Task>, sqlx::Error> {
    if patch.is_empty() {
        return get(pool, user_id, id).await;
    }
    let (set_description, description) = match &patch.description {
        None => (false, None),
        Some(d) => (true, d.as_ref().map(Description::as_str)),
    };
    sqlx::query_as::<_, Task>(&format!(
        "UPDATE tasks SET
             title = COALESCE($3, title),
             description = CASE WHEN $4 THEN $5 ELSE description END,
             completed = COALESCE($6, completed),
             updated_at = now()
         WHERE id = $1 AND user_id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .bind(patch.title.as_ref().map(Title::as_str))
    .bind(set_description)
    .bind(description)
    .bind(patch.completed)
    .fetch_optional(pool)
    .await
}

/// Marks one of the user's tasks completed (idempotent).
pub async fn complete(pool: &PgPool, user_id: i64, id: i64) -> Result<Option<Task>, sqlx::Error> {
    let patch = TaskPatch {
        completed: Some(true),
        ..TaskPatch::default()
    };
    update(pool, user_id, id, &patch).await
}

/// Deletes one of the user's tasks; returns whether it existed.
pub async fn delete(pool: &PgPool, user_id: i64, id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
