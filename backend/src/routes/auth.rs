//! Accounts: register, login, logout, me, delete me.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::token::{Token, TokenHash};
use crate::auth::AuthUser;
use crate::client_addr::ClientAddr;
use crate::domain::account::{Email, Password};
use crate::error::ApiError;
use crate::extract::Json;
use crate::storage::{self, users::User};

/// Body of register and login.
#[derive(Debug, Deserialize)]
pub struct CredentialsBody {
    email: String,
    password: String,
}

/// Answer of register and login.
#[derive(Debug, Serialize)]
pub struct SessionBody {
    token: String,
    user: User,
}

/// `POST /api/auth/register` -> 201 with a token; 409 when the e-mail is taken; 429 when the client
/// address (or the address with this e-mail) tried too often.
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<CredentialsBody>,
) -> Result<(StatusCode, Json<SessionBody>), ApiError> {
    state.throttle.check_address(client)?;
    let email = Email::parse(&body.email)?;
    state.throttle.check_account(client, email.as_str())?;
    let password = Password::parse(&body.password)?;
    let hash = state.hasher.hash(&password).await?;
    let user = storage::users::create(&state.pool, &email, &hash)
        .await?
        .ok_or_else(|| ApiError::Conflict("an account with this email already exists".into()))?;
    let token = issue(&state, user.id).await?;
    Ok((StatusCode::CREATED, Json(SessionBody { token, user })))
}

/// `POST /api/auth/login` -> 200 with a token; 401 for an unknown e-mail or a wrong password alike;
/// 429 when the client address (or the address with this e-mail) tried too often.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Json(body): Json<CredentialsBody>,
) -> Result<Json<SessionBody>, ApiError> {
    state.throttle.check_address(client)?;
    let rejected = || ApiError::Unauthorized("wrong email or password".into());
    // Malformed input cannot match an account; answer like a wrong password so nothing is revealed.
    let Ok(email) = Email::parse(&body.email) else {
        return Err(rejected());
    };
    state.throttle.check_account(client, email.as_str())?;
    if body.password.chars().count() > crate::domain::account::PASSWORD_MAX {
        return Err(rejected());
    }
    let Some(creds) = storage::users::credentials(&state.pool, &email).await? else {
        // Same work as a real check, so timing does not tell which e-mails exist.
        state.hasher.verify_dummy(&body.password).await?;
        return Err(rejected());
    };
    if !state
        .hasher
        .verify(&body.password, &creds.password_hash)
        .await?
    {
        return Err(rejected());
    }
    let token = issue(&state, creds.id).await?;
    Ok(Json(SessionBody {
        token,
        user: creds.user(),
    }))
}

/// `POST /api/auth/logout` -> 204; the token of this request stops working (other sessions of the
/// user, e.g. another browser, stay signed in).
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> Result<StatusCode, ApiError> {
    storage::sessions::delete(&state.pool, &auth.session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/auth/me`.
pub async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<User>, ApiError> {
    storage::users::get(&state.pool, auth.user_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::Unauthorized("account no longer exists".into()))
}

/// `DELETE /api/auth/me` -> 204; the account and all its data are gone.
pub async fn delete_me(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<StatusCode, ApiError> {
    storage::users::delete(&state.pool, auth.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn issue(state: &AppState, user_id: i64) -> Result<String, ApiError> {
    let token = Token::generate();
    let hash = TokenHash::of(&state.config.auth_secret, token.as_str());
    storage::sessions::create(&state.pool, user_id, &hash, state.config.token_ttl).await?;
    Ok(token.into_string())
}
