//! Handlers of the chat API.

use agent::{Action, AgentError, EngineKind, MAX_MESSAGE_CHARS};
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::executor::DbExecutor;
use super::store;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::domain::page::{id_cursor, PageQuery};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::routes::tasks::page_response;

/// Body of `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    message: String,
    #[serde(default)]
    conversation_id: Option<i64>,
}

/// Answer of `POST /api/chat`.
#[derive(Debug, Serialize)]
pub struct ChatAnswer {
    conversation_id: i64,
    reply: String,
    actions: Vec<Action>,
    engine: EngineKind,
    fallback_reason: Option<String>,
}

fn conversation_not_found() -> ApiError {
    ApiError::NotFound("conversation not found".into())
}

/// `POST /api/chat`: one message in, the agent's reply and the actions it took out.
pub async fn chat(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ChatBody>,
) -> Result<Json<ChatAnswer>, ApiError> {
    // Checked before any database work; the agent checks again (it is the rule's owner).
    let chars = body.message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(ApiError::Validation(format!(
            "message is too long: {chars} characters, at most {MAX_MESSAGE_CHARS} allowed"
        )));
    }
    if body.message.trim().is_empty() {
        return Err(ApiError::Validation("message must not be empty".into()));
    }
    // PostgreSQL text cannot hold NUL; refuse it here rather than fail on insert.
    if body.message.contains('\0') {
        return Err(ApiError::Validation(
            "message must not contain NUL characters".into(),
        ));
    }
    // Caps are checked before the agent runs, so a refused message changes nothing at all.
    let caps = state.config.caps;
    let history = match body.conversation_id {
        Some(id) => {
            if !store::owns(&state.pool, user.user_id, id).await? {
                return Err(conversation_not_found());
            }
            let held = store::count_messages(&state.pool, user.user_id, id).await?;
            if held + 2 > caps.messages_per_conversation {
                return Err(ApiError::LimitReached(format!(
                    "this conversation holds {held} messages, the most allowed is {}; start a new conversation",
                    caps.messages_per_conversation
                )));
            }
            store::history(&state.pool, user.user_id, id).await?
        }
        None => {
            let held = store::count_conversations(&state.pool, user.user_id).await?;
            if held >= caps.conversations_per_user {
                return Err(ApiError::LimitReached(format!(
                    "you have {held} conversations, the most allowed; continue one of them"
                )));
            }
            Vec::new()
        }
    };
    let executor = DbExecutor::new(&state.pool, user.user_id, caps.tasks_per_user);
    let reply = state
        .agent
        .respond(&history, &body.message, &executor)
        .await
        .map_err(|e| match e {
            AgentError::MessageTooLong { .. } | AgentError::EmptyMessage => {
                ApiError::Validation(e.to_string())
            }
            AgentError::Storage(why) => ApiError::ServiceUnavailable(why),
            AgentError::Setup(why) => ApiError::internal(why),
        })?;
    let conversation_id = store::record_exchange(
        &state.pool,
        user.user_id,
        body.conversation_id,
        &body.message,
        &reply,
    )
    .await?
    .ok_or_else(conversation_not_found)?;
    tracing::info!(
        conversation_id,
        engine = reply.engine.as_str(),
        actions = reply.actions.len(),
        fallback = reply.fallback_reason.as_deref().unwrap_or("none"),
        "chat answered"
    );
    Ok(Json(ChatAnswer {
        conversation_id,
        reply: reply.reply,
        actions: reply.actions,
        engine: reply.engine,
        fallback_reason: reply.fallback_reason,
    }))
}

/// `GET /api/conversations?limit=&cursor=`: one page of the user's conversations, most recently
/// active first.
pub async fn conversations(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q
        .parse(store::parse_conversation_cursor)
        .map_err(|e| ApiError::BadRequest(e.0))?;
    Ok(page_response(
        store::conversations(&state.pool, user.user_id, &page).await?,
    ))
}

/// `GET /api/conversations/{id}/messages?limit=&cursor=`: the latest messages of one of the
/// user's conversations (oldest first within the page); the cursor leads to earlier ones.
pub async fn messages(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.parse(id_cursor).map_err(|e| ApiError::BadRequest(e.0))?;
    if !store::owns(&state.pool, user.user_id, id).await? {
        return Err(conversation_not_found());
    }
    Ok(page_response(
        store::messages(&state.pool, user.user_id, id, &page).await?,
    ))
}
