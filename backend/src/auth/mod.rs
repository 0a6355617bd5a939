//! Accounts' security: password hashing, bearer tokens and the extractor that authenticates a request.

pub mod extractor;
pub mod password;
pub mod token;

pub use extractor::AuthUser;
