//! Webhooks in, typed triggers out: each source's request (GitLab, GitHub, Gitea,
//! Harbor, SVN, manual) authenticated on its raw bytes, parsed once into a [`trigger::Parsed`],
//! matched to the configured projects and turned into the events that start its runs.
//!
//! Pure functions, no I/O: the hook-receiver serves them over HTTP, `ferry hook inspect`
//! runs them offline on one request, and the fuzz targets (`fuzz/`) feed them garbage.

pub mod matching;
pub mod message;
pub mod plan;
pub mod preauth;
pub mod sources;
pub mod trigger;
pub mod verify;
