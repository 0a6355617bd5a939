//! End-to-end tests of `cargo xtask` with a Docker-backed cluster double.
//!
//! The double (bins `minikube`, `helm`, `kubectl` of this crate) stands in for the cluster side: it answers
//! like the real tools and realises what the charts render as Docker containers. Test code only: nothing in
//! the product depends on it.

pub mod cli;
pub mod engine;
pub mod harness;
pub mod keep;
pub mod lookup_api;
pub mod manifest;
pub mod printer;
pub mod probe;
pub mod realise;
pub mod run;
pub mod state;
pub mod supervisor;
pub mod view;

pub use testkit::ci::{in_ci, missing_prerequisite};

/// What every Docker-backed scenario needs first: an engine that answers (started here when none does) and the
/// real helm binary the double hands client-side calls to. None after reporting what is missing (a skip, or a
/// failure under `CI=true`).
pub fn engine_and_helm() -> Option<testkit::docker::DockerEngine> {
    let engine = match testkit::docker::DockerEngine::ensure() {
        Ok(e) => e,
        Err(e) => {
            missing_prerequisite(&format!("Docker engine: {e}"));
            return None;
        }
    };
    if !cli::helm::real_helm().exists() {
        missing_prerequisite("real helm binary (.ci/fetch-tools.sh)");
        return None;
    }
    Some(engine)
}
