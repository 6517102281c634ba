//! The ops config repository (`projects.<name>.config_repo`): its checkout at the
//! branch's latest commit, the files it lays over the code, and the secrets in them.
//!
//! The builder lays the files over the code it builds; the tester only reads the
//! secret files, to scrub their values from what it reports.

mod checkout;
mod files;

pub use checkout::{Checkout, checkout, working_copy};
pub use files::{Overlay, config_secrets, is_secret_file, overlay};

/// Why the config repo could not be used, said so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigRepoError {
    /// Fetching or cloning failed, or the branch lacks the configured folder.
    #[error("config repo checkout failed: {0}; check projects.<name>.config_repo")]
    Checkout(String),
    /// A file listed in `config_repo.files` is not in the checkout.
    #[error(
        "config repo file `{0}` does not exist: fix projects.<name>.config_repo.files or add the file"
    )]
    MissingFile(String),
    /// The run names a config commit its branch does not contain (a forged event, or
    /// the branch was force-pushed since): nothing is built from it.
    #[error(
        "config commit {commit} is not on branch {branch} of the config repo (force-pushed away, or never pushed there); push the change again"
    )]
    NotOnBranch { commit: String, branch: String },
    /// The working copy's folder could not be cleared or created.
    #[error("cannot prepare the config repo's working copy: {0}")]
    Workspace(String),
}
