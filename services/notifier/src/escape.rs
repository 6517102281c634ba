//! Text from outside Ferry (commit messages, authors, branch names, failure causes and
//! application answers) as it may appear in a chat message: shown, never interpreted.
//! Without this, a commit message `<!channel>`, `<at id=all></at>` or
//! `![x](https://tracker.example/pixel)` pings everyone or loads an image in every
//! team's chat. Only Ferry's own mentions (from `[notify.authors]`, added by the
//! channels after rendering) may mention people.
//!
//! Each function takes one value and returns it safe for one syntax:
//! - [`slack`]: Slack mrkdwn, escaped as Slack documents (`&`, `<`, `>`), which leaves
//!   no `<!channel>`, `<@U…>`, `<!subteam…>` or `<url|text>` link; bare URLs are
//!   broken inside `://` so they are neither linked nor unfurled.
//! - [`markdown`]: the Markdown of DingTalk, WeCom and Feishu (`lark_md`), which differ
//!   in what they accept (HTML, `<at>`, `<@id>`, `<font>`) and do not all honour
//!   backslash escapes; so tags are made impossible (`<` `>` become `‹` `›`) and links
//!   and images are broken with an invisible space after `]` (no `[text](url)`,
//!   `![img](url)`, `[ref]: url`) and inside `://` (no bare autolink).
//!   The same serves chat text messages: Feishu reads `<at user_id="all">` there too,
//!   and clients turn bare URLs into links.
//! - [`mentions`]: every chat syntax, text messages included: an invisible space after
//!   `@`, so `@all`, `@here` or `@13800000000` in the text names no one.

/// U+200B ZERO WIDTH SPACE: invisible, and not part of any syntax.
const ZWSP: char = '\u{200B}';

pub fn slack(s: &str) -> String {
    // `]` too: mrkdwn has no `[text](url)`, but a client or bridge rendering Markdown would.
    unlinked(&mentions(s))
        .replace(']', "]\u{200B}")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in unlinked(&mentions(s)).chars() {
        match c {
            '<' => out.push('‹'),
            '>' => out.push('›'),
            ']' => {
                out.push(']');
                out.push(ZWSP);
            }
            c => out.push(c),
        }
    }
    out
}

/// No bare URL that a client would turn into a link (or unfurl, fetching it).
fn unlinked(s: &str) -> String {
    s.replace("://", ":\u{200B}//")
}

/// What platforms read as "everyone" after an `@`, compared without case.
const EVERYONE: &[&str] = &["all", "here", "channel", "everyone", "所有人"];

/// Only the "everyone" words are touched: an `@` in an image digest or an e-mail
/// address stays as it is (a person's `@<mobile>` or `@<id>` mentions only when Ferry
/// also names them in the platform's mention list).
pub fn mentions(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let lower = rest
            .get(..rest.len().min(12))
            .unwrap_or(rest)
            .to_lowercase();
        if EVERYONE.iter().any(|w| lower.starts_with(w)) {
            out.push(ZWSP);
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "fix <!channel> <@U024BE7LH> <at id=all></at> <@all> @all \
                           [click](https://evil.example/a) ![px](https://evil.example/p.png) \
                           <https://evil.example> <font color=red>x</font> a&b";

    #[test]
    fn slack_leaves_no_control_sequence_or_link() {
        let s = slack(HOSTILE);
        assert!(!s.contains('<') && !s.contains('>'), "{s}");
        assert!(s.contains("&lt;!channel&gt;"), "{s}");
        assert!(s.contains("a&amp;b"), "{s}");
        assert!(!s.contains("@all"), "{s}");
    }

    #[test]
    fn markdown_leaves_no_tag_link_image_or_mention() {
        let m = markdown(HOSTILE);
        for bad in ["<", ">", "](", "![px](", "https://", "@all", "<at", "<@"] {
            assert!(!m.contains(bad), "`{bad}` in {m}");
        }
        // Still readable: the words are all there.
        let visible: String = m.chars().filter(|c| *c != ZWSP).collect();
        assert!(
            visible.contains("[click](https://evil.example/a)"),
            "{visible}"
        );
        assert!(visible.contains("‹at id=all›‹/at›"), "{visible}");
    }

    #[test]
    fn mentions_keep_the_text_but_name_no_one() {
        assert_eq!(
            mentions("@all @ALL @所有人"),
            "@\u{200B}all @\u{200B}ALL @\u{200B}所有人"
        );
        assert_eq!(
            mentions("web@sha256:ab a@b.c no at"),
            "web@sha256:ab a@b.c no at"
        );
    }
}
