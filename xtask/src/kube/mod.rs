//! Typed Kubernetes objects, just the fields the xtask reads, parsed from `kubectl get -o json`.

mod deployment;
mod event;
mod meta;
mod pod;
mod pvc;
mod service;

pub use deployment::{Deployment, DeploymentSpec, DeploymentStatus, LabelSelector};
pub use event::{Event, InvolvedObject};
pub use meta::{parse_items, Condition, List, ObjectMeta};
pub use pod::{
    Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    EnvVar, HttpGetAction, Pod, PodSpec, PodStatus, Probe,
};
pub use pvc::{PersistentVolumeClaim, PvcSpec, PvcStatus};
pub use service::{
    EndpointAddress, EndpointSlice, EndpointSubset, Endpoints, Service, ServicePort, ServiceSpec,
    SliceEndpoint,
};
