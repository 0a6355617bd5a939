//! Helpers for the image tests (tests only): a temp copy of the build context, secret scanning of
//! images, a small cookie-aware HTTP client, and the running stack (PostgreSQL, backend, frontend).

pub mod context;
pub mod http;
pub mod scan;
pub mod stack;
