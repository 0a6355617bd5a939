//! Todo chatbot backend: accounts, tasks and a chat agent over PostgreSQL, served by axum.

pub mod app;
pub mod auth;
pub mod chat;
pub mod client_addr;
pub mod config;
pub mod domain;
pub mod error;
pub mod extract;
pub mod readiness;
pub mod routes;
pub mod storage;

pub use app::{serve, AppState};
pub use config::Config;
