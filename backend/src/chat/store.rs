//! Conversations and messages in PostgreSQL; every query names the owning user.

use agent::{AgentReply, HistoryMessage, Role};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::domain::page::{Page, PageRequest};

/// How many stored user/assistant messages are loaded as history (the agent windows them further).
const HISTORY_ROWS: i64 = 60;
/// Longest conversation title, in characters (taken from the first message).
const TITLE_CHARS: usize = 80;

/// A conversation as `GET /api/conversations` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Conversation {
    /// Id.
    pub id: i64,
    /// Title (the start of the first message).
    pub title: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last message.
    pub updated_at: DateTime<Utc>,
}

/// A message as `GET /api/conversations/{id}/messages` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredMessage {
    /// Id.
    pub id: i64,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    /// Text; for tool messages a JSON object `{arguments, result}`.
    pub content: String,
    /// The tool, for tool messages.
    pub tool_name: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Where a page of conversations starts: after this (last activity, id).
pub type ConversationCursor = (DateTime<Utc>, i64);

/// `<microseconds since the epoch>.<id>`: PostgreSQL keeps microseconds, so the position is exact.
pub fn conversation_cursor(c: &Conversation) -> String {
    format!("{}.{}", c.updated_at.timestamp_micros(), c.id)
}

/// Parses [`conversation_cursor`]'s form.
pub fn parse_conversation_cursor(raw: &str) -> Option<ConversationCursor> {
    let (micros, id) = raw.split_once('.')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
    Some((at, id))
}

/// One page of the user's conversations, most recently active first.
pub async fn conversations(
    pool: &PgPool,
    user_id: i64,
    page: &PageRequest<ConversationCursor>,
) -> Result<Page<Conversation>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Conversation>(
        "SELECT id, title, created_at, updated_at FROM conversations
         WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3))
         ORDER BY updated_at DESC, id DESC LIMIT $4",
    )
    .bind(user_id)
    .bind(page.after.map(|(at, _)| at))
    .bind(page.after.map(|(_, id)| id))
    .bind(page.limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, page.limit, conversation_cursor))
}

/// How many conversations the user has.
pub async fn count_conversations(pool: &PgPool, user_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM conversations WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await
}

/// How many user and assistant messages (tool rows aside) one conversation holds.
pub async fn count_messages(
    pool: &PgPool,
    user_id: i64,
    conversation_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM messages
         WHERE conversation_id = $1 AND user_id = $2 AND role IN ('user', 'assistant')",
    )
    .bind(conversation_id)
    .bind(user_id)
    .fetch_one(pool)
    .await
}

/// Whether the user owns this conversation.
pub async fn owns(pool: &PgPool, user_id: i64, conversation_id: i64) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM conversations WHERE id = $1 AND user_id = $2")
            .bind(conversation_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// One page of a conversation's messages: the latest `limit` before the cursor, shown oldest
/// first; the next cursor leads to earlier ones.
pub async fn messages(
    pool: &PgPool,
    user_id: i64,
    conversation_id: i64,
    page: &PageRequest<i64>,
) -> Result<Page<StoredMessage>, sqlx::Error> {
    let rows = sqlx::query_as::<_, StoredMessage>(
        "SELECT id, role, content, tool_name, created_at FROM messages
         WHERE conversation_id = $1 AND user_id = $2 AND ($3::bigint IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(conversation_id)
    .bind(user_id)
    .bind(page.after)
    .bind(page.limit + 1)
    .fetch_all(pool)
    .await?;
    let mut page = Page::from_rows(rows, page.limit, |m| m.id.to_string());
    page.items.reverse();
    Ok(page)
}

/// The latest user and assistant messages of a conversation as agent history, oldest first.
/// Tool rows are left out here: the agent does not replay them, and one busy turn (up to 100
/// tool rows) would otherwise push every earlier exchange out of the window.
pub async fn history(
    pool: &PgPool,
    user_id: i64,
    conversation_id: i64,
) -> Result<Vec<HistoryMessage>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT role, content FROM (
             SELECT id, role, content FROM messages
             WHERE conversation_id = $1 AND user_id = $2 AND role IN ('user', 'assistant')
             ORDER BY id DESC LIMIT $3
         ) latest ORDER BY id",
    )
    .bind(conversation_id)
    .bind(user_id)
    .bind(HISTORY_ROWS)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(role, content)| HistoryMessage {
            role: if role == "user" {
                Role::User
            } else {
                Role::Assistant
            },
            content,
        })
        .collect())
}

fn title_of(message: &str) -> String {
    let first_line = message.trim().lines().next().unwrap_or_default().trim();
    let mut title: String = first_line.chars().take(TITLE_CHARS).collect();
    if first_line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    title
}

/// Stores one exchange (user message, tool results, reply) in one transaction, creating the
/// conversation when `conversation_id` is `None`; returns the conversation id, or `None` when the
/// conversation is gone (the account was deleted while the agent was answering).
pub async fn record_exchange(
    pool: &PgPool,
    user_id: i64,
    conversation_id: Option<i64>,
    message: &str,
    reply: &AgentReply,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let id: i64 = match conversation_id {
        Some(id) => {
            let updated: Option<i64> = sqlx::query_scalar(
                "UPDATE conversations SET updated_at = now() WHERE id = $1 AND user_id = $2 RETURNING id",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            match updated {
                Some(id) => id,
                None => return Ok(None),
            }
        }
        None => {
            sqlx::query_scalar(
                "INSERT INTO conversations (user_id, title) VALUES ($1, $2) RETURNING id",
            )
            .bind(user_id)
            .bind(title_of(message))
            .fetch_one(&mut *tx)
            .await?
        }
    };
    // Model output may carry NUL (as a JSON escape), which PostgreSQL text cannot store.
    let clean = |s: &str| s.replace('\0', "");
    let insert = "INSERT INTO messages (conversation_id, user_id, role, content, tool_name)
                  VALUES ($1, $2, $3, $4, $5)";
    sqlx::query(insert)
        .bind(id)
        .bind(user_id)
        .bind("user")
        .bind(message)
        .bind(None::<String>)
        .execute(&mut *tx)
        .await?;
    for action in &reply.actions {
        let content = serde_json::json!({"arguments": action.arguments, "result": action.result});
        sqlx::query(insert)
            .bind(id)
            .bind(user_id)
            .bind("tool")
            .bind(clean(&content.to_string()))
            .bind(action.tool.as_str())
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(insert)
        .bind(id)
        .bind(user_id)
        .bind("assistant")
        .bind(clean(&reply.reply))
        .bind(None::<String>)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(id))
}
