//! Docker hosts: connecting to an engine, pulling an image onto many hosts, the
//! `io.ferry.*` labels Ferry writes on what it runs, what runs on a host, and health
//! probes of a container.
//!
//! Error policy: every fallible call returns a `thiserror` enum whose message says
//! what failed and what to do (see `ferry_shared`).

pub mod connect;
pub mod health;
pub mod labels;
pub mod pull;
pub mod registry_auth;
pub mod running;

pub use bollard::Docker;
pub use connect::{DockerError, connect, connect_host};
pub use running::{ListError, Running, running, running_all};
