//! What the backend and the frontend serve HTTP with: the same bounds on slow and idle clients, the same
//! graceful shutdown, the same answer to SIGTERM. One crate, so the two services cannot drift apart.

mod accept;
mod limits;
mod shutdown;
mod signals;

pub use accept::serve;
pub use limits::HttpLimits;
pub use shutdown::{serve_until_stopped, Shutdown};
pub use signals::shutdown_signals;
