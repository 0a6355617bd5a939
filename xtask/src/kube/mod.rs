//! Typed Kubernetes objects, just the fields the xtask reads, parsed from `kubectl get -o json`.

mod deployment;
mod event;
mod meta;
mod pod;
mod pvc;
mod service;
pub mod time;

pub use deployment::Deployment;
pub use event::Event;
pub use meta::{parse_items, ObjectMeta};
pub use pod::{ContainerStateTerminated, ContainerStatus, Pod};
pub use pvc::PersistentVolumeClaim;
pub use service::{EndpointSlice, Endpoints, Service};
pub use time::rfc3339_secs;
