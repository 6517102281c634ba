//! Typed values of the deploy events whose wire form is a plain string: why a deploy
//! was requested, and what happened on each host. Each keeps the exact JSON string an
//! older Ferry wrote and reads, and an unknown string (from a newer Ferry) is kept as
//! it is rather than refused.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a `deploy.requested` was published: `"promotion"`, `"manual"` or `"rollback"`
/// on the wire. Only a rollback may go back to an older run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeployReason {
    Promotion,
    /// `ferry deploy`: an operator's explicit deploy.
    Manual,
    /// `ferry rollback`.
    Rollback,
    /// A reason this version does not know, kept as written.
    Other(String),
}

impl DeployReason {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Promotion => "promotion",
            Self::Manual => "manual",
            Self::Rollback => "rollback",
            Self::Other(s) => s,
        }
    }
}

impl DeployReason {
    fn wire_eq(&self, text: &str) -> bool {
        self.as_str() == text
    }
}

impl From<&str> for DeployReason {
    fn from(s: &str) -> Self {
        match s {
            "promotion" => Self::Promotion,
            "manual" => Self::Manual,
            "rollback" => Self::Rollback,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What happened on one host (or replica): `"pulled"`, `"present"`, `"updated"`,
/// `"already running"` or `"failed: <cause>"` on the wire; absent when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HostOutcome {
    /// The image was pulled onto the host.
    Pulled,
    /// The host already had the image.
    Present,
    /// The host now runs the deployed image.
    Updated,
    /// The host ran the deployed image already: nothing was changed.
    AlreadyRunning,
    /// Nothing was done; why.
    Failed(String),
    /// An outcome this version does not know, kept as written (empty: none given).
    Other(String),
    #[default]
    Unknown,
}

impl HostOutcome {
    /// Nothing to write: the field is left out of the JSON.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }

    fn wire_eq(&self, text: &str) -> bool {
        match self {
            Self::Failed(cause) => text.strip_prefix("failed: ") == Some(cause.as_str()),
            Self::Other(other) => other == text,
            Self::Unknown => text.is_empty(),
            Self::Pulled => text == "pulled",
            Self::Present => text == "present",
            Self::Updated => text == "updated",
            Self::AlreadyRunning => text == "already running",
        }
    }
}

impl From<&str> for HostOutcome {
    fn from(s: &str) -> Self {
        match s {
            "" => Self::Unknown,
            "pulled" => Self::Pulled,
            "present" => Self::Present,
            "updated" => Self::Updated,
            "already running" => Self::AlreadyRunning,
            other => match other.strip_prefix("failed: ") {
                Some(cause) => Self::Failed(cause.to_owned()),
                None => Self::Other(other.to_owned()),
            },
        }
    }
}

impl fmt::Display for HostOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pulled => "pulled",
            Self::Present => "present",
            Self::Updated => "updated",
            Self::AlreadyRunning => "already running",
            Self::Failed(cause) => return write!(f, "failed: {cause}"),
            Self::Other(s) => s,
            Self::Unknown => "",
        })
    }
}

impl fmt::Display for DeployReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Both compare with a wire string (as the plain `String` fields they replace did) and
/// are written and read as one.
macro_rules! as_wire_string {
    ($($t:ty),*) => {$(
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.wire_eq(other)
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.wire_eq(other)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::from(text.as_ref()))
            }
        }
    )*};
}
as_wire_string!(DeployReason, HostOutcome);

/// Where a deployed run answers on one host or replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The host's address as the environment reaches it (`docker_hosts.<name>.address`).
    pub address: String,
    /// The port the run's container serves on there.
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_strings_are_those_of_the_plain_string_fields() {
        for text in ["promotion", "manual", "rollback", "from-the-future"] {
            let r: DeployReason = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("{text:?}"));
        }
        assert_eq!(DeployReason::from("rollback"), DeployReason::Rollback);
        for text in [
            "pulled",
            "present",
            "updated",
            "already running",
            "failed: no space",
            "odd",
        ] {
            let o: HostOutcome = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(o, text);
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("{text:?}"));
        }
        assert_eq!(
            HostOutcome::from("failed: no space"),
            HostOutcome::Failed("no space".into())
        );
    }
}
