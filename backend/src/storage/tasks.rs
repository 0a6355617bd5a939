//! Tasks, always scoped to their owner: a task of another user behaves exactly like a missing one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

pub use crate::domain::page::{Page, PageRequest};
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

/// One page of the user's tasks, newest (highest id) first.
pub async fn page(
    pool: &PgPool,
    user_id: i64,
    filter: StatusFilter,
    page: &PageRequest<i64>,
) -> Result<Page<Task>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2)
           AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(filter.completed())
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, page.limit, |t| t.id.to_string()))
}

/// Every task of the user, newest first (at most the per-user cap), for resolving references.
pub async fn all(pool: &PgPool, user_id: i64) -> Result<Vec<Task>, sqlx::Error> {
    sqlx::query_as::<_, Task>(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE user_id = $1 ORDER BY id DESC"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// How many of the user's tasks match `filter`.
pub async fn count(pool: &PgPool, user_id: i64, filter: StatusFilter) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE user_id = $1 AND ($2::boolean IS NULL OR completed = $2)",
    )
    .bind(user_id)
    .bind(filter.completed())
    .fetch_one(pool)
    .await
}

/// The user already holds the most tasks allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("you have {cap} tasks, the most allowed; delete some to add more")]
pub struct TaskCapReached {
    /// The cap.
    pub cap: i64,
}

/// Creates a task for the user unless they already hold `cap` tasks. One statement: it locks the
/// user's row (NO KEY UPDATE: concurrent creates of this user queue on it, foreign-key checks do
/// not), checks `task_count` (kept by a trigger on tasks, migration 0003) and inserts; a create
/// that waited for the lock re-checks the count it left, so concurrent creates cannot pass the cap.
pub async fn create(
    pool: &PgPool,
    user_id: i64,
    task: &NewTask,
    cap: i64,
) -> Result<Result<Task, TaskCapReached>, sqlx::Error> {
    let created = sqlx::query_as::<_, Task>(&format!(
        "WITH owner AS (
             SELECT id FROM users WHERE id = $1 AND task_count < $4 FOR NO KEY UPDATE
         )
         INSERT INTO tasks (user_id, title, description)
         SELECT id, $2, $3 FROM owner
         RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .bind(task.title.as_str())
    .bind(task.description.as_ref().map(Description::as_str))
    .bind(cap)
    .fetch_optional(pool)
    .await?;
    // No row: the cap (a user deleted meanwhile has no session left to ask again).
    Ok(created.ok_or(TaskCapReached { cap }))
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
