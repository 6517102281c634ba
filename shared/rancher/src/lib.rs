//! Rancher 1.6 (Cattle) through its `v2-beta` API: a service's state, the upgrade and
//! scale actions on it, creating it (and its stack) from a launch file, what the service runs (Ferry's labels on its launchConfig), and the
//! environment's active hosts.

pub mod api;
pub mod client;
pub mod hosts;
pub mod launch;
pub mod service;

pub use api::{Api, ApiError};
pub use hosts::rancher_hosts;
pub use launch::{LaunchError, LaunchFile, launch_path};
pub use service::{ServiceState, running_of, state_of};
