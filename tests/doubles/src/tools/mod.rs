//! One module per tool double.

pub mod docker;
pub mod helm;
pub mod kubectl;
pub mod minikube;
