//! The chat API: `POST /api/chat` runs the agent for the authenticated user; conversations and
//! their messages persist in PostgreSQL, so any replica can serve any request.

mod engine;
mod executor;
mod routes;
mod store;

pub use engine::build_agent;
pub use executor::DbExecutor;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

/// Chat routes, mounted under `/api`; every handler requires a bearer token.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/chat", post(routes::chat))
        .route("/conversations", get(routes::conversations))
        .route("/conversations/{id}/messages", get(routes::messages))
}
