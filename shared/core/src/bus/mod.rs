//! The event bus on RabbitMQ: confirmed publishing, supervised consuming with
//! retries and a parking lot, and the topology both rely on.

pub mod connect;
mod consumer;
mod error;
mod handler;
pub mod headers;
pub mod history;
pub mod hold;
mod latest;
mod lock;
mod origin;
mod publisher;
pub mod topology;
pub mod users;

pub use consumer::{Consumer, ConsumerOptions, Settled, SettledAs};
pub use error::BusError;
pub use handler::{Context, Handler, Outcome};
pub use latest::Latest;
pub use lock::{Contender, Lock};
pub use publisher::Publisher;
pub use topology::{StageSpec, Topology};
