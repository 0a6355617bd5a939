//! Tasks REST API; every query is scoped to the authenticated user.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::domain::task::{double_option, Description, NewTask, StatusFilter, TaskPatch, Title};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::storage::tasks::{self, Task};

/// Query of the listing.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: StatusFilter,
}

/// Body of `POST /api/tasks`.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    title: String,
    #[serde(default)]
    description: Option<String>,
}

/// Body of `PATCH /api/tasks/{id}`.
#[derive(Debug, Deserialize)]
pub struct PatchBody {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    description: Option<Option<String>>,
    #[serde(default)]
    completed: Option<bool>,
}

fn not_found() -> ApiError {
    ApiError::NotFound("task not found".into())
}

/// `GET /api/tasks?status=all|pending|completed`, newest first.
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<Task>>, ApiError> {
    Ok(Json(
        tasks::list(&state.pool, auth.user_id, q.status).await?,
    ))
}

/// `POST /api/tasks` -> 201.
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let new = NewTask::parse(&body.title, body.description.as_deref())?;
    let task = tasks::create(&state.pool, auth.user_id, &new).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// `GET /api/tasks/{id}`.
pub async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<Task>, ApiError> {
    tasks::get(&state.pool, auth.user_id, id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// `PATCH /api/tasks/{id}`.
pub async fn update(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    Json(body): Json<PatchBody>,
) -> Result<Json<Task>, ApiError> {
    let patch = TaskPatch {
        title: body.title.as_deref().map(Title::parse).transpose()?,
        description: match body.description {
            None => None,
            Some(None) => Some(None),
            Some(Some(d)) => Some(Description::parse(&d)?),
        },
        completed: body.completed,
    };
    tasks::update(&state.pool, auth.user_id, id, &patch)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// `POST /api/tasks/{id}/complete`.
pub async fn complete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<Json<Task>, ApiError> {
    tasks::complete(&state.pool, auth.user_id, id)
        .await?
        .map(Json)
        .ok_or_else(not_found)
}

/// `DELETE /api/tasks/{id}` -> 204.
pub async fn delete(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if tasks::delete(&state.pool, auth.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
