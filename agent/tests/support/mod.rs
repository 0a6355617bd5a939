//! Shared test support: an in-memory executor and a fake Chat Completions server.
#![allow(dead_code)]

pub mod fake_openai;
pub mod memory;
