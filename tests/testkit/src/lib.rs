//! Test support shared by the workspace tests. Never a dependency of product code.

pub mod ci;
pub mod docker;
pub mod kube_api;
pub mod pg;
#[cfg(feature = "raw-http")]
pub mod raw_http;
pub mod tools;
pub mod unique;

pub use unique::unique_id;
