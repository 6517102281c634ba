//! Which of two runs is newer, by something a committer cannot forge.
//!
//! A commit's date is whatever the committer's clock (or `git commit --date`) said, and
//! Harbor's `occur_at` is whatever the sender wrote: neither may decide what is "older".
//! A run's place is instead:
//! - SVN: the revision number, which the server assigns;
//! - git: the number of commits reachable from the commit (`git rev-list --count`),
//!   counted by the builder in its checkout. Every ancestor of a commit reaches strictly
//!   fewer commits, so a commit that is an ancestor of the deployed one always counts as
//!   older, whatever its date; a rebased commit counts its new history;
//! - Harbor (an image built elsewhere, no source revision): the receiver's clock when the
//!   push arrived, in milliseconds.
//!
//! Places on different scales are not comparable (see [`RunOrder::is_behind`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a run's place is measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderScale {
    /// The SVN revision number.
    Svn,
    /// Commits reachable from the git commit.
    Git,
    /// The receiver's clock (Unix milliseconds) when the hook arrived.
    Received,
}

impl OrderScale {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Svn => "svn",
            Self::Git => "git",
            Self::Received => "received",
        }
    }
}

/// A place on one scale, as recorded on what runs (label `io.ferry.order`, e.g.
/// `git:1234`): the newest place deployed to the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderMark {
    pub scale: OrderScale,
    pub value: u64,
}

impl fmt::Display for OrderMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scale.as_str(), self.value)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{0}` is not a run order (expected `svn:<n>`, `git:<n>` or `received:<n>`); the label io.ferry.order was not written by Ferry"
)]
pub struct BadOrderMark(String);

impl FromStr for OrderMark {
    type Err = BadOrderMark;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadOrderMark(s.chars().take(64).collect());
        let (scale, value) = s.split_once(':').ok_or_else(bad)?;
        let scale = match scale {
            "svn" => OrderScale::Svn,
            "git" => OrderScale::Git,
            "received" => OrderScale::Received,
            _ => return Err(bad()),
        };
        // Digits only: `u64::from_str` would also take a leading `+`.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let value = value.parse().map_err(|_| bad())?;
        Ok(Self { scale, value })
    }
}

/// A run's place, carried by every event of the run from the stage that learns it (the
/// builder for code, the receiver for Harbor) to the deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOrder {
    pub scale: OrderScale,
    pub value: u64,
    /// Started by an operator (`ferry deploy`, `/hooks/manual`, a rebuild to roll back):
    /// deployed even where something newer runs, as asked. It still never lowers the
    /// environment's mark.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit: bool,
}

impl RunOrder {
    pub fn new(scale: OrderScale, value: u64) -> Self {
        Self {
            scale,
            value,
            explicit: false,
        }
    }

    pub fn mark(&self) -> OrderMark {
        OrderMark {
            scale: self.scale,
            value: self.value,
        }
    }

    /// Whether this run must not replace what runs, whose mark is `mark` and whose
    /// revision is `running_revision`: it is behind the mark, or at the mark with
    /// another revision (the environment was rolled back from this very place; only an
    /// operator goes there again). An explicit run, a mark on another scale, or no mark
    /// (deployed by an older Ferry) never hold a run back.
    pub fn is_behind(
        &self,
        mark: Option<&OrderMark>,
        running_revision: &str,
        revision: &str,
    ) -> bool {
        let Some(mark) = mark.filter(|m| m.scale == self.scale) else {
            return false;
        };
        !self.explicit
            && (self.value < mark.value
                || (self.value == mark.value && running_revision != revision))
    }
}

/// The environment's mark once `run` (if it has a place) is deployed over `old`: the
/// greater on one scale, so neither a rollback nor an explicit deploy of an older
/// revision lets a replay of something in between through; the run's own when the
/// scales differ or nothing was recorded.
///
/// An operator's explicit deploy (`resets`: explicit and not a rollback) sets the mark
/// to its own place instead: that is the way out of an environment pinned by an
/// inflated history (a branch that gained thousands of commits, then lost them to a
/// force-push), where every later push would otherwise stand down.
pub fn next_mark(
    old: Option<OrderMark>,
    run: Option<&RunOrder>,
    resets: bool,
) -> Option<OrderMark> {
    match (old, run) {
        (_, Some(r)) if resets => Some(r.mark()),
        (Some(m), Some(r)) if m.scale == r.scale => Some(OrderMark {
            scale: m.scale,
            value: m.value.max(r.value),
        }),
        (_, Some(r)) => Some(r.mark()),
        (m, None) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(v: u64) -> RunOrder {
        RunOrder::new(OrderScale::Git, v)
    }

    #[test]
    fn marks_round_trip_and_junk_is_refused() {
        let m: OrderMark = "git:1234".parse().unwrap();
        assert_eq!(m, git(1234).mark());
        assert_eq!(m.to_string(), "git:1234");
        assert_eq!("svn:7".parse::<OrderMark>().unwrap().scale, OrderScale::Svn);
        for bad in [
            "",
            "git",
            "git:",
            "git:+1",
            "git:-1",
            "cvs:1",
            "git:99999999999999999999",
        ] {
            assert!(bad.parse::<OrderMark>().is_err(), "{bad}");
        }
    }

    #[test]
    fn behind_the_mark_or_at_it_with_another_revision_is_held_back() {
        let mark = Some(git(10).mark());
        assert!(git(9).is_behind(mark.as_ref(), "b", "a"));
        assert!(!git(11).is_behind(mark.as_ref(), "b", "c"));
        // The same commit again (a newer config): not older.
        assert!(!git(10).is_behind(mark.as_ref(), "b", "b"));
        // Rolled back from place 10: only an operator goes there again.
        assert!(git(10).is_behind(mark.as_ref(), "a", "b"));
        let explicit = RunOrder {
            explicit: true,
            ..git(1)
        };
        assert!(!explicit.is_behind(mark.as_ref(), "b", "a"));
        assert!(!git(1).is_behind(None, "b", "a"));
        let other = RunOrder::new(OrderScale::Received, 1);
        assert!(!other.is_behind(mark.as_ref(), "b", "a"));
    }

    #[test]
    fn the_mark_only_goes_up_on_one_scale() {
        let m = Some(git(10).mark());
        assert_eq!(next_mark(m, Some(&git(4)), false), m);
        assert_eq!(next_mark(m, Some(&git(12)), false), Some(git(12).mark()));
        assert_eq!(next_mark(m, None, false), m);
        assert_eq!(next_mark(None, Some(&git(3)), false), Some(git(3).mark()));
        let svn = RunOrder::new(OrderScale::Svn, 2);
        assert_eq!(next_mark(m, Some(&svn), false), Some(svn.mark()));
    }

    #[test]
    fn an_operators_deploy_moves_a_pinned_mark_down_to_its_place() {
        let pinned = Some(git(200_000).mark());
        assert_eq!(
            next_mark(pinned, Some(&git(40)), true),
            Some(git(40).mark())
        );
        assert_eq!(next_mark(pinned, None, true), pinned);
    }
}
