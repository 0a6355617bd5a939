//! Validated input types: once constructed, a value is known to be acceptable to storage.

pub mod account;
pub mod page;
pub mod task;

use crate::error::ApiError;

/// Why an input value was refused; shown to the client as a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Validation(e.0)
    }
}

/// PostgreSQL `text` cannot hold NUL, and other control characters have no place in a title or an address.
fn has_forbidden_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
}
