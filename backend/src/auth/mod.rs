//! Accounts' security: password hashing, bearer tokens, sign-in throttling and the extractor that
//! authenticates a request.

pub mod extractor;
pub mod password;
pub mod throttle;
pub mod token;

pub use extractor::AuthUser;
