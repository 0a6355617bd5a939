//! `AuthUser`: the authenticated user of a request, from `Authorization: Bearer <token>` only.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::token::{looks_like_token, TokenHash};
use crate::app::AppState;
use crate::error::ApiError;
use crate::storage;

/// The user a valid, unexpired bearer token belongs to. Handlers act for `user_id` and nobody else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The authenticated user's id.
    pub user_id: i64,
    /// The stored form of the token that authenticated this request (its session).
    pub session: TokenHash,
}

impl<S> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("expected `Authorization: Bearer <token>`".into())
            })?;
        let invalid = || ApiError::Unauthorized("invalid or expired token".into());
        if !looks_like_token(token) {
            return Err(invalid());
        }
        let hash = TokenHash::of(&state.config.auth_secret, token);
        let user_id = storage::sessions::user_for(&state.pool, &hash)
            .await?
            .ok_or_else(invalid)?;
        Ok(Self {
            user_id,
            session: hash,
        })
    }
}
