//! Commit messages and author names come from the sender and may be as long as the
//! body limit allows: events carry a bounded part, the run index (thousands of runs in
//! memory) only the subject line.

use ferry_shared::event::{Envelope, Event};

/// Bytes of a commit message an event carries.
pub const EVENT_MESSAGE_BYTES: usize = 1000;
/// Bytes of a message's first line, or of an author, kept per run in memory.
pub const KEPT_BYTES: usize = 200;
/// Changed config files an event names (their names, each cut to `KEPT_BYTES`).
pub const EVENT_CONFIG_FILES: usize = 100;

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
            if let Some(c) = &mut s.config_change {
                c.author = c.author.as_deref().map(|a| cut(a, KEPT_BYTES));
                c.files.truncate(EVENT_CONFIG_FILES);
                for f in &mut c.files {
                    *f = cut(f, KEPT_BYTES);
                }
            }
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
    fn a_config_change_names_a_bounded_number_of_bounded_files() {
        let change = ferry_shared::event::ConfigChange {
            commit: "c".into(),
            author: Some("a".repeat(10_000)),
            files: vec!["f".repeat(10_000); 5_000],
        };
        let mut events = [Envelope::new_run(
            "shop",
            Event::SourceChanged(ferry_shared::event::SourceChanged {
                source: "config".into(),
                repository: "r".into(),
                reference: None,
                revision: "1".into(),
                author: None,
                message: None,
                changed_paths: vec![],
                config_change: Some(change),
                committed: None,
            }),
        )];
        bound(&mut events);
        let Event::SourceChanged(s) = &events[0].event else {
            unreachable!()
        };
        let c = s.config_change.as_ref().unwrap();
        assert_eq!(c.files.len(), EVENT_CONFIG_FILES);
        assert!(c.files.iter().all(|f| f.len() <= KEPT_BYTES));
        assert!(c.author.as_ref().unwrap().len() <= KEPT_BYTES);
    }

    #[test]
    fn the_subject_is_the_first_line() {
        assert_eq!(subject("fix\n\nlong body", 200), "fix…");
        assert_eq!(subject("fix", 200), "fix");
        assert_eq!(subject("fix\n", 200), "fix");
        assert_eq!(subject(&"x".repeat(300), 10).len(), 10);
    }
}
