//! Lays a [`Notice`] out as Markdown (DingTalk, WeCom, Feishu), Slack mrkdwn, plain
//! text, HTML (email) or the JSON summary (generic webhook).

use crate::escape;
use crate::i18n::{self, Lang, Word};
use crate::notice::{Notice, Tone};
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `**bold**`, `` `code` ``, `> quote` (DingTalk, WeCom, Feishu lark_md).
    Markdown,
    /// Slack's mrkdwn: `*bold*`, `` `code` ``, ```` ``` ```` blocks.
    Slack,
}

pub fn icon(tone: Tone) -> &'static str {
    match tone {
        Tone::Good => "✅",
        Tone::Bad => "❌",
        Tone::Attention => "⚠️",
        Tone::Info => "ℹ️",
    }
}

/// The headline with its icon.
pub fn title(n: &Notice) -> String {
    format!("{} {}", icon(n.tone), n.headline)
}

fn label(n: &Notice, w: Word) -> &'static str {
    i18n::word(n.lang, w)
}

/// The (label, value) lines of a notice: revision, author, commit, then the facts.
fn fact_lines(n: &Notice) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(r) = &n.revision {
        out.push((
            label(n, Word::Revision).to_owned(),
            crate::notice::display_revision(r),
        ));
    }
    if let Some(a) = &n.author {
        out.push((label(n, Word::Author).to_owned(), a.clone()));
    }
    if let Some(m) = &n.message {
        out.push((label(n, Word::Commit).to_owned(), m.clone()));
    }
    out.extend(n.facts.iter().cloned());
    out.push((label(n, Word::Run).to_owned(), n.run_id.to_string()));
    out
}

fn stage_line(n: &Notice) -> Option<String> {
    (!n.stages.is_empty()).then(|| {
        n.stages
            .iter()
            .map(|(s, d)| format!("{s} {d}"))
            .collect::<Vec<_>>()
            .join(" · ")
    })
}

/// Markdown body (without a title line when `with_title` is false). Every value from
/// outside Ferry is escaped for the dialect (see [`escape`]).
pub fn markdown(n: &Notice, dialect: Dialect, with_title: bool) -> String {
    let bold = |s: &str| match dialect {
        Dialect::Markdown => format!("**{s}**"),
        Dialect::Slack => format!("*{s}*"),
    };
    let esc = |s: &str| match dialect {
        Dialect::Markdown => escape::markdown(s),
        Dialect::Slack => escape::slack(s),
    };
    let mut out = String::new();
    if with_title {
        match dialect {
            Dialect::Markdown => out.push_str(&format!("### {}\n\n", title(n))),
            Dialect::Slack => out.push_str(&format!("{}\n\n", bold(&title(n)))),
        }
    }
    for (k, v) in fact_lines(n) {
        // One line per fact; a multi-line commit message is folded.
        let v = esc(&v.replace('\n', " "));
        out.push_str(&format!("- {}: {}\n", bold(&k), v));
    }
    if let Some(stages) = stage_line(n) {
        out.push_str(&format!("- {}: {}\n", bold(label(n, Word::Stages)), stages));
    }
    if let Some(reason) = &n.reason {
        out.push_str(&format!("\n{}\n", bold(label(n, Word::Reason))));
        match dialect {
            Dialect::Slack => out.push_str(&format!(
                "```\n{}\n```\n",
                esc(&reason.replace("```", "'''"))
            )),
            Dialect::Markdown => {
                for line in reason.lines() {
                    out.push_str(&format!("> {}\n", esc(line)));
                }
            }
        }
    }
    if !n.checks.is_empty() {
        out.push_str(&format!("\n{}\n", bold(label(n, Word::FailedChecks))));
        for c in &n.checks {
            out.push_str(&format!("- {}\n", esc(c)));
        }
    }
    if !n.commands.is_empty() {
        out.push('\n');
        for (what, cmd) in &n.commands {
            out.push_str(&format!("- {what}: `{cmd}`\n"));
        }
    }
    if let Some((what, url)) = &n.link {
        // The URL is Ferry's own (`dashboard.url`, checked at start-up) plus a run id.
        match dialect {
            Dialect::Slack => out.push_str(&format!("\n<{url}|{what}>\n")),
            Dialect::Markdown => out.push_str(&format!("\n[{what}]({url})\n")),
        }
    }
    out
}

/// Plain text: the email's text part, the webhook's `text`.
pub fn text(n: &Notice) -> String {
    text_with(n, str::to_owned)
}

/// Plain text for a chat's text message: values from outside Ferry mention no one.
pub fn chat_text(n: &Notice) -> String {
    text_with(n, escape::markdown)
}

fn text_with(n: &Notice, esc: impl Fn(&str) -> String) -> String {
    let mut out = format!("{}\n", title(n));
    for (k, v) in fact_lines(n) {
        out.push_str(&format!("{k}: {}\n", esc(&v.replace('\n', " "))));
    }
    if let Some(stages) = stage_line(n) {
        out.push_str(&format!("{}: {stages}\n", label(n, Word::Stages)));
    }
    if let Some(reason) = &n.reason {
        out.push_str(&format!("\n{}:\n{}\n", label(n, Word::Reason), esc(reason)));
    }
    if !n.checks.is_empty() {
        out.push_str(&format!("\n{}:\n", label(n, Word::FailedChecks)));
        for c in &n.checks {
            out.push_str(&format!("- {}\n", esc(c)));
        }
    }
    if !n.commands.is_empty() {
        out.push('\n');
        for (what, cmd) in &n.commands {
            out.push_str(&format!("{what}: {cmd}\n"));
        }
    }
    if let Some((what, url)) = &n.link {
        out.push_str(&format!("{what}: {url}\n"));
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The email's HTML part.
pub fn html(n: &Notice) -> String {
    let color = match n.tone {
        Tone::Good => "#1a7f37",
        Tone::Bad => "#cf222e",
        Tone::Attention => "#9a6700",
        Tone::Info => "#0969da",
    };
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"{}\"><body style=\"font-family:sans-serif\">\
         <h2 style=\"color:{color}\">{}</h2><table>",
        n.lang.code(),
        esc(&title(n))
    );
    let mut rows = fact_lines(n);
    if let Some(stages) = stage_line(n) {
        rows.push((label(n, Word::Stages).to_owned(), stages));
    }
    for (k, v) in rows {
        out.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\">{}</th><td>{}</td></tr>",
            esc(&k),
            esc(&v)
        ));
    }
    out.push_str("</table>");
    if let Some(reason) = &n.reason {
        out.push_str(&format!(
            "<h3>{}</h3><pre style=\"white-space:pre-wrap\">{}</pre>",
            esc(label(n, Word::Reason)),
            esc(reason)
        ));
    }
    if !n.checks.is_empty() {
        out.push_str(&format!(
            "<h3>{}</h3><ul>",
            esc(label(n, Word::FailedChecks))
        ));
        for c in &n.checks {
            out.push_str(&format!("<li>{}</li>", esc(c)));
        }
        out.push_str("</ul>");
    }
    if !n.commands.is_empty() {
        out.push_str("<ul>");
        for (what, cmd) in &n.commands {
            out.push_str(&format!(
                "<li>{}: <code>{}</code></li>",
                esc(what),
                esc(cmd)
            ));
        }
        out.push_str("</ul>");
    }
    if let Some((what, url)) = &n.link {
        out.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            esc(url),
            esc(what)
        ));
    }
    out.push_str("</body></html>");
    out
}

/// The generic webhook's body: the run summary as JSON.
pub fn summary(n: &Notice) -> Value {
    json!({
        "event_id": n.event_id,
        "run_id": n.run_id,
        "kind": n.kind,
        "outcome": match n.tone {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Attention => "attention",
            Tone::Info => "info",
        },
        "project": n.project,
        "environment": n.environment,
        "time": n.time,
        "revision": n.revision,
        "author": n.author,
        "message": n.message,
        "title": n.headline,
        "facts": n.facts.iter().map(|(k, v)| json!({"label": k, "value": v})).collect::<Vec<_>>(),
        "reason": n.reason,
        "failed_checks": n.checks,
        "stages": n.stages.iter().map(|(s, d)| json!({"stage": s, "took": d})).collect::<Vec<_>>(),
        "commands": n.commands.iter().map(|(w, c)| json!({"label": w, "command": c})).collect::<Vec<_>>(),
        "link": n.link.as_ref().map(|(_, url)| url),
        "language": n.lang.code(),
        "text": text(n),
    })
}

/// The title of several notices merged into one message.
pub fn batch_title(batch: &[&Notice]) -> String {
    match batch {
        [one] => title(one),
        many => {
            let lang = many.first().map(|n| n.lang).unwrap_or(Lang::En);
            let bad = many.iter().any(|n| n.tone == Tone::Bad);
            let icon = if bad {
                icon(Tone::Bad)
            } else {
                icon(Tone::Info)
            };
            let sep = if lang == Lang::En { " " } else { "" };
            format!(
                "{icon} Ferry: {}{sep}{}",
                many.len(),
                i18n::word(lang, Word::Updates)
            )
        }
    }
}

/// Cut `s` to at most `max` bytes at a character boundary, saying so.
pub fn fit_bytes(s: &str, max: usize, lang: Lang) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let note = format!("\n{}", i18n::word(lang, Word::Truncated));
    let mut end = max.saturating_sub(note.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &s[..end])
}
