//! Ferry's shared library: the event model, the RabbitMQ bus, configuration,
//! telemetry and the admin endpoints every service serves.
//!
//! Error policy: library code returns `thiserror` enums whose messages say what failed
//! and what to do; `anyhow` is for binaries and tests only.

pub mod admin;
pub mod bus;
pub mod config;
pub mod event;
pub mod image_ref;
pub mod metrics;
/// The path the services import `[notify]` from.
pub use config::notify as notify_config;
pub mod order;
pub mod pipeline;
pub mod revision;
pub mod scrub;
pub mod secret;
pub mod service;
pub mod shutdown;
pub mod stage;
pub mod telemetry;
pub mod test_plan;

/// Every service binary, in pipeline order.
pub const SERVICES: [&str; 7] = [
    "hook-receiver",
    "builder",
    "pusher",
    "puller",
    "rancher-updater",
    "tester",
    "notifier",
];
