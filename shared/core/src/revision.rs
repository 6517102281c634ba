//! Revisions as typed values: what a webhook, an operator or an event names is parsed
//! once, per the project's source kind, before anything is built from it. The builder
//! passes these to `git` and `svn`; a value that could be read as an option (`-x`,
//! `--upload-pack=...`) or as a revision expression (`HEAD~1`, `main^`, `a..b`) is not
//! representable.

use std::fmt;
use std::num::NonZeroU64;

/// Why a text is not a revision, said so the sender can fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    #[error("`{0}` is not an SVN revision: give a positive whole number such as 42")]
    NotSvn(String),
    #[error(
        "`{0}` is neither a full commit id nor a branch or tag name: give the 40-hex (or 64-hex) \
         commit id, a branch or tag name, or refs/heads/<branch> / refs/tags/<tag>"
    )]
    NotGit(String),
    #[error(
        "`{0}` looks like an abbreviated commit id: give the full 40-hex (or 64-hex) commit id, \
         or refs/heads/{0} if it is a branch of that name"
    )]
    Abbreviated(String),
    #[error("the all-zero commit id names no commit")]
    ZeroCommit,
    #[error("`{0}` is not a commit id: give the full 40-hex (or 64-hex) commit id")]
    NotCommit(String),
    #[error("`{0}` is not a source kind; use `svn` or `git`")]
    UnknownKind(String),
}

/// At most this much of a rejected text is quoted back, escaped.
const QUOTED_AT_MOST: usize = 80;

/// `text` as it may appear in a message: control characters escaped, long text cut.
fn quoted(text: &str) -> String {
    let mut s: String = text.chars().take(QUOTED_AT_MOST).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s.escape_debug().to_string()
}

/// A Subversion revision: a positive number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SvnRevision(NonZeroU64);

impl SvnRevision {
    pub fn new(n: u64) -> Option<Self> {
        NonZeroU64::new(n).map(Self)
    }

    /// Decimal digits only (no sign, no spaces, no `r` prefix), above zero.
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        let bad = || RevisionError::NotSvn(quoted(text));
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        text.parse::<u64>().ok().and_then(Self::new).ok_or_else(bad)
    }

    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for SvnRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A full git commit id: 40 (SHA-1) or 64 (SHA-256) hex digits, lowercase, not all zero.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        if !looks_like_full_sha(text) {
            return Err(RevisionError::NotCommit(quoted(text)));
        }
        if text.bytes().all(|b| b == b'0') {
            return Err(RevisionError::ZeroCommit);
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn looks_like_full_sha(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A branch or tag name (what follows `refs/heads/` or `refs/tags/`), by git's
/// `check-ref-format` rules and stricter: printable ASCII only, no leading `-`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefName(String);

/// Longer names are refused (git allows more; no forge makes them).
const REF_NAME_AT_MOST: usize = 200;

impl RefName {
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        if ref_name_ok(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(RevisionError::NotGit(quoted(text)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn ref_name_ok(name: &str) -> bool {
    let forbidden = |c: char| !c.is_ascii() || c.is_ascii_control() || " ~^:?*[\\".contains(c);
    !name.is_empty()
        && name.len() <= REF_NAME_AT_MOST
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && name != "@"
        && !name.chars().any(forbidden)
        && name
            .split('/')
            .all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

/// A branch or tag named by hand: `refs/heads/<b>`, `refs/tags/<t>`, or a bare name
/// that the builder looks up as both (and refuses if both exist).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GitRef {
    Branch(RefName),
    Tag(RefName),
    Either(RefName),
}

impl GitRef {
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        if let Some(b) = text.strip_prefix("refs/heads/") {
            return RefName::parse(b).map(Self::Branch);
        }
        if let Some(t) = text.strip_prefix("refs/tags/") {
            return RefName::parse(t).map(Self::Tag);
        }
        let name = RefName::parse(text)?;
        // `HEAD`, `FETCH_HEAD`, `refs/...`: not names a forge gives a branch.
        if text == "HEAD" || text.ends_with("_HEAD") || text.starts_with("refs/") {
            return Err(RevisionError::NotGit(quoted(text)));
        }
        // `abc1234` could be a commit to git, a branch to us: make the sender say which.
        if text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RevisionError::Abbreviated(quoted(text)));
        }
        Ok(Self::Either(name))
    }

    pub fn name(&self) -> &RefName {
        match self {
            Self::Branch(n) | Self::Tag(n) | Self::Either(n) => n,
        }
    }
}

impl fmt::Display for GitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Branch(n) => write!(f, "refs/heads/{n}"),
            Self::Tag(n) => write!(f, "refs/tags/{n}"),
            Self::Either(n) => write!(f, "{n}"),
        }
    }
}

/// What a git project can be asked to build.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GitRevision {
    Commit(CommitId),
    /// Resolved to a commit by the builder (`git ls-remote`), which records the commit.
    Ref(GitRef),
}

impl GitRevision {
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        if looks_like_full_sha(text) {
            return CommitId::parse(text).map(Self::Commit);
        }
        GitRef::parse(text).map(Self::Ref)
    }
}

impl fmt::Display for GitRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Commit(c) => c.fmt(f),
            Self::Ref(r) => r.fmt(f),
        }
    }
}

/// A revision of a project's source, parsed per its kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Revision {
    Svn(SvnRevision),
    Git(GitRevision),
}

impl Revision {
    /// `text` for a source of `kind` (`svn` or `git`, as in `projects.<name>.source.kind`).
    pub fn parse(kind: &str, text: &str) -> Result<Self, RevisionError> {
        match kind {
            "svn" => SvnRevision::parse(text).map(Self::Svn),
            "git" => GitRevision::parse(text).map(Self::Git),
            other => Err(RevisionError::UnknownKind(quoted(other))),
        }
    }

    /// An exact revision only (an SVN number or a full commit id): what images are
    /// tagged with, so what a rollback can name.
    pub fn parse_exact(kind: &str, text: &str) -> Result<Self, RevisionError> {
        match Self::parse(kind, text)? {
            Self::Git(GitRevision::Ref(_)) => Err(RevisionError::NotCommit(quoted(text))),
            exact => Ok(exact),
        }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Svn(r) => r.fmt(f),
            Self::Git(g) => g.fmt(f),
        }
    }
}

/// The branch or tag a push names, as `SourceChanged.reference` carries it: `main`
/// for a branch, `tags/v1.2` for a tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PushedRef {
    Branch(RefName),
    Tag(RefName),
}

impl PushedRef {
    pub fn parse(text: &str) -> Result<Self, RevisionError> {
        match text.strip_prefix("tags/") {
            Some(t) => RefName::parse(t).map(Self::Tag),
            None => RefName::parse(text).map(Self::Branch),
        }
    }
}

impl fmt::Display for PushedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Branch(b) => write!(f, "{b}"),
            Self::Tag(t) => write!(f, "tags/{t}"),
        }
    }
}

/// `*` matches any run of characters (including `/`); everything else literally. The
/// branch and tag filters of `projects.<name>.source`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    #[test]
    fn svn_revisions_are_positive_numbers_only() {
        assert_eq!(SvnRevision::parse("42").unwrap().get(), 42);
        for bad in [
            "",
            "0",
            "-5",
            "+5",
            " 5",
            "5 ",
            "r5",
            "5a",
            "--upload-pack=x",
            "99999999999999999999999",
        ] {
            assert!(SvnRevision::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn git_revisions_are_full_shas_or_ref_names() {
        assert_eq!(
            GitRevision::parse(&SHA.to_uppercase()).unwrap(),
            GitRevision::Commit(CommitId(SHA.into()))
        );
        assert!(GitRevision::parse(&"a".repeat(64)).is_ok());
        assert_eq!(
            GitRevision::parse(&"0".repeat(40)),
            Err(RevisionError::ZeroCommit)
        );
        for (text, want) in [
            ("main", "main"),
            ("release/1.2", "release/1.2"),
            ("refs/heads/cafe", "refs/heads/cafe"),
            ("refs/tags/v1.0", "refs/tags/v1.0"),
            ("feature-x", "feature-x"),
        ] {
            assert_eq!(GitRevision::parse(text).unwrap().to_string(), want);
        }
        for bad in [
            "--upload-pack=touch /tmp/x",
            "-x",
            "HEAD",
            "HEAD~1",
            "main^",
            "a..b",
            "abc",
            "0",
            "-5",
            "6113728",
            "",
            "x y",
            "x:y",
            "x\ny",
            "x\u{202e}y",
            "a/.b",
            "a.lock",
            "a//b",
            "/a",
            "a/",
            "a.",
            "x@{1}",
            "@",
            "refs/heads/-x",
            "refs/remotes/origin/main",
            "ext::sh -c touch",
            "*",
            "[a]",
            "a\\b",
        ] {
            assert!(GitRevision::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn rollbacks_name_exact_revisions() {
        assert!(Revision::parse_exact("git", SHA).is_ok());
        assert!(Revision::parse_exact("svn", "3").is_ok());
        assert!(Revision::parse_exact("git", "main").is_err());
        assert!(Revision::parse_exact("svn", "main").is_err());
        assert!(Revision::parse("hg", "1").is_err());
    }

    #[test]
    fn pushed_refs_round_trip() {
        for text in ["main", "tags/v1.2", "release/7"] {
            assert_eq!(PushedRef::parse(text).unwrap().to_string(), text);
        }
        assert!(PushedRef::parse("--x").is_err());
        assert!(PushedRef::parse("tags/-x").is_err());
    }

    #[test]
    fn messages_quote_escaped_and_cut() {
        let e = SvnRevision::parse(&format!("\u{1b}[31m{}", "9".repeat(500))).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn globs() {
        assert!(glob("release/*", "release/1.2"));
        assert!(glob("main", "main"));
        assert!(!glob("main", "main2"));
        assert!(glob("a*b*c", "axxbyyc"));
    }
}
