//! Chat (placeholder until the chat engineer's module lands).

/// Chat routes, mounted under `/api` behind authentication.
pub fn router() -> axum::Router<crate::app::AppState> {
    axum::Router::new()
}
