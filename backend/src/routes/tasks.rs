//! Tasks REST API; every query is scoped to the authenticated user.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::domain::page::{id_cursor, Page, PageQuery};
use crate::domain::task::{double_option, Description, NewTask, StatusFilter, TaskPatch, Title};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::storage::tasks::{self, Task};

/// Query of the listing.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: StatusFilter,
    // Not `#[serde(flatten)]`: through a flattened struct, query values reach serde as strings
    // and numbers no longer parse.
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    cursor: Option<String>,
}

/// Name of the response header that carries the cursor of the next page.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// A page as the API answers it: the items as a JSON array (the shape of the unpaged API, so
/// existing clients keep working) and the next page's cursor in `X-Next-Cursor`.
pub fn page_response<T: serde::Serialize>(page: Page<T>) -> Response {
    let mut resp = Json(page.items).into_response();
    if let Some(next) = page.next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(NEXT_CURSOR, next);
    }
    resp
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

/// `GET /api/tasks?status=all|pending|completed&limit=&cursor=`, newest first, one page.
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse(id_cursor)
    .map_err(|e| ApiError::BadRequest(e.0))?;
    let page = tasks::page(&state.pool, auth.user_id, q.status, &page).await?;
    Ok(page_response(page))
}

/// `POST /api/tasks` -> 201.
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Task>), ApiError> {
    let new = NewTask::parse(&body.title, body.description.as_deref())?;
    let task = tasks::create(
        &state.pool,
        auth.user_id,
        &new,
        state.config.caps.tasks_per_user,
    )
    .await?
    .map_err(|e| ApiError::LimitReached(e.to_string()))?;
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
