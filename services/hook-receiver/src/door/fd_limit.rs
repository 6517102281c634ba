//! Each connection is a file descriptor: a receiver meant to hold thousands of them
//! open must not stop at the common soft limit of 1,024.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// What the kernel allows when the hard limit is "unlimited".
const UNLIMITED_FALLBACK: u64 = 1 << 20;

/// Raise this process's soft limit on open files to its hard limit; the limit now in
/// force (`None`: unlimited).
pub fn raise_fd_limit() -> Option<u64> {
    let now = getrlimit(Resource::Nofile);
    let wanted = now.maximum.unwrap_or(UNLIMITED_FALLBACK);
    if now.current.is_some_and(|c| c < wanted) {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: now.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open-files limit to {wanted}: {e}");
        }
    }
    getrlimit(Resource::Nofile).current
}
