//! Commit messages and author names come from the sender and may be as long as the
//! body limit allows: events carry a bounded part, the run index (thousands of runs in
//! memory) only the subject line.

use ferry_shared::event::{Envelope, Event};

/// Bytes of a commit message an event carries.
pub const EVENT_MESSAGE_BYTES: usize = 1000;
/// Bytes of a message's first line, or of an author, kept per run in memory.
pub const KEPT_BYTES: usize = 200;

const ELLIPSIS: char = '…';

/// `text` if it fits in `max` bytes, else its longest prefix ending on a character
/// boundary that fits with an ellipsis after it.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(ELLIPSIS.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// The first line of `text`, cut to `max` bytes (with an ellipsis when more followed).
pub fn subject(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    if first.len() < text.trim_end().len() && first.len() + ELLIPSIS.len_utf8() <= max {
        format!("{first}{ELLIPSIS}")
    } else {
        cut(first, max)
    }
}

/// Bound what the sender wrote in the events about to be published.
pub fn bound(events: &mut [Envelope]) {
    for e in events {
        if let Event::SourceChanged(s) = &mut e.event {
            s.message = s.message.as_deref().map(|m| cut(m, EVENT_MESSAGE_BYTES));
            s.author = s.author.as_deref().map(|a| cut(a, KEPT_BYTES));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary_with_an_ellipsis() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(100); // 200 bytes
        let c = cut(&long, 11);
        assert!(c.len() <= 11, "{c}");
        assert_eq!(c, format!("{}…", "é".repeat(4)));
    }

    #[test]
    fn the_subject_is_the_first_line() {
        assert_eq!(subject("fix\n\nlong body", 200), "fix…");
        assert_eq!(subject("fix", 200), "fix");
        assert_eq!(subject("fix\n", 200), "fix");
        assert_eq!(subject(&"x".repeat(300), 10).len(), 10);
    }
}
