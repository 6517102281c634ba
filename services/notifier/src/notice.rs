//! A notification's content, independent of where it goes: what happened, the facts a
//! person needs to act, the cause of a failure, and the commands to go further.
//! Channels only lay it out ([`crate::render`]).

use crate::i18n::{self, Lang, Word};
use crate::runs::{Release, RunInfo};
use chrono::{DateTime, Utc};
use ferry_shared::event::{
    CheckResult, Envelope, Event, HostTiming, RunId, StageFailed, TestReport,
};
use uuid::Uuid;

/// Longest cause kept (a build step's last lines fit; a whole log does not).
const MAX_REASON: usize = 1500;
/// Failed checks listed before "n more".
const MAX_CHECKS: usize = 10;
const MAX_COMMIT: usize = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    /// Needs someone (approval) or went backwards (rollback).
    Attention,
    Info,
}

#[derive(Clone, Debug)]
pub struct Notice {
    pub event_id: Uuid,
    pub run_id: RunId,
    pub kind: String,
    pub project: String,
    pub environment: Option<String>,
    pub time: DateTime<Utc>,
    pub lang: Lang,
    pub tone: Tone,
    /// `shop · production: deploy failed`
    pub headline: String,
    /// The outcome alone (`deploy failed`).
    pub outcome: String,
    /// The revision the notice is about, as the run names it (`15`, a git commit).
    pub revision: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// Further (label, value) pairs.
    pub facts: Vec<(String, String)>,
    /// Why it failed, as the failing stage said it (may span lines).
    pub reason: Option<String>,
    /// Failed checks, one line each.
    pub checks: Vec<String>,
    /// (stage, duration) of this run as far as known.
    pub stages: Vec<(String, String)>,
    /// (what, command) a person can run next.
    pub commands: Vec<(String, String)>,
    /// (label, URL) of the run's page on the dashboard (`dashboard.url`).
    pub link: Option<(String, String)>,
}

impl Notice {
    /// Build the notice for an event. `cli` is the operators' command (`ferry`).
    pub fn build(e: &Envelope, run: &RunInfo, lang: Lang, cli: &str) -> Notice {
        let mut n = Notice::headline(e, run, lang);
        let (failure, report) = n.describe(&e.event, run);
        if let Some(f) = failure {
            n.reason = Some(cut(f.reason.trim(), MAX_REASON));
            n.fact(Word::Attempts, &f.attempts.to_string());
        }
        if let Some(r) = report {
            n.checks = failed_checks(lang, &r.checks);
            if r.millis > 0 {
                n.stages.push((
                    i18n::stage(lang, "test").into(),
                    i18n::duration(lang, r.millis),
                ));
            }
        }
        let mut stages: Vec<(String, String)> = run
            .durations(e.environment.as_deref())
            .into_iter()
            .map(|(s, ms)| (i18n::stage(lang, s).to_owned(), i18n::duration(lang, ms)))
            .collect();
        stages.append(&mut n.stages);
        if let Some(start) = run.marks.get("source.changed")
            && e.time > *start
            && !stages.is_empty()
        {
            let total = (e.time - *start).num_milliseconds() as u64;
            stages.push((
                i18n::word(lang, Word::Total).to_owned(),
                i18n::duration(lang, total),
            ));
        }
        n.stages = stages;
        n.commands = commands(e, lang, cli);
        n
    }

    /// The notice's envelope part: what happened to which revision, where, by whom.
    /// The headline leads with the revision the event is about (for a rollback, the
    /// one rolled back), so a subject line alone says which commit it was.
    fn headline(e: &Envelope, run: &RunInfo, lang: Lang) -> Notice {
        let kind = e.kind();
        let rollback = matches!(&e.event, Event::DeployStarted(d) if d.rollback);
        let outcome = match (&e.event, rollback) {
            (Event::DeployRolledBack(d), _) if !d.revision.is_empty() => {
                i18n::rolled_back_to(lang, &display_revision(&d.revision))
            }
            (_, true) => i18n::outcome(lang, "deploy.started.rollback")
                .unwrap_or(kind)
                .to_owned(),
            _ => i18n::outcome(lang, kind).unwrap_or(kind).to_owned(),
        };
        let revision = match &e.event {
            Event::DeployRolledBack(d) => d.from_revision.clone(),
            other => other.revision().map(str::to_owned),
        }
        .filter(|r| !r.is_empty())
        .or_else(|| run.revision.clone().filter(|r| !r.is_empty()));
        // The commit is the run's: shown when the notice is about the run's revision.
        let own = revision.is_some() && revision == run.revision;
        let mut place = e.project.clone();
        if let Some(r) = &revision {
            place = format!("{place} {}", display_revision(r));
        }
        if let Some(env) = &e.environment {
            place = format!("{place} · {env}");
        }
        // A config change's run says so (its commit is the config repo's), with the
        // files' names: never their content.
        let facts = match &run.config_change {
            Some(c) if own => vec![(
                i18n::word(lang, Word::ConfigChange).to_owned(),
                one_line(&i18n::config_change(lang, c.author.as_deref(), &c.files)),
            )],
            _ => Vec::new(),
        };
        Notice {
            event_id: e.event_id,
            run_id: e.run_id,
            kind: kind.to_owned(),
            project: e.project.clone(),
            environment: e.environment.clone(),
            time: e.time,
            lang,
            tone: tone(kind),
            headline: one_line(&format!("{place}: {outcome}")),
            outcome,
            revision: revision.as_deref().map(one_line),
            author: run.author.clone().filter(|_| own),
            message: run
                .message
                .as_deref()
                .filter(|_| own)
                .map(|m| cut(m.trim(), MAX_COMMIT)),
            facts,
            reason: None,
            checks: Vec::new(),
            stages: Vec::new(),
            commands: Vec::new(),
            link: None,
        }
    }

    /// Links the run's page under the dashboard's address: where an approval is asked,
    /// the page to approve or reject it on.
    pub fn link_to(&mut self, dashboard: &ferry_shared::config::DashboardUrl) {
        let label = if self.kind == "approval.requested" {
            Word::ApproveInFerry
        } else {
            Word::OpenInFerry
        };
        self.link = Some((
            i18n::word(self.lang, label).to_owned(),
            dashboard.run(self.run_id),
        ));
    }

    /// The payload's facts, and what the environment runs now; the failure and the
    /// test report, where the event has them.
    fn describe<'a>(
        &mut self,
        event: &'a Event,
        run: &RunInfo,
    ) -> (Option<&'a StageFailed>, Option<&'a TestReport>) {
        let lang = self.lang;
        let env = self.environment.clone();
        let before = env.as_ref().and_then(|e| run.before.get(e));
        let running = run.running.as_ref();
        let unchanged = |lang| i18n::word(lang, Word::Unchanged).to_owned();
        let mut report: Option<&TestReport> = None;
        let mut failure: Option<&StageFailed> = None;
        if let Some(env) = &env {
            self.fact(Word::Environment, env);
        }
        match event {
            Event::BuildFailed(f) | Event::PushFailed(f) => {
                failure = Some(f);
                self.fact(Word::RunningNow, i18n::word(lang, Word::NothingDeployed));
            }
            Event::PullFailed(f) | Event::DeployFailed(f) => {
                failure = Some(f);
                let now = before.or(running).map(release);
                let now =
                    now.map_or_else(|| unchanged(lang), |r| format!("{r} ({})", unchanged(lang)));
                self.fact(Word::RunningNow, &now);
            }
            Event::NotifyFailed(f) => failure = Some(f),
            Event::TestFailed(t) => {
                failure = Some(&t.failure);
                report = t.report.as_ref();
                // With a report, the updater rolls the environment back next.
                if let (Some(r), Some(_)) = (running, report) {
                    let now = format!("{} ({})", release(r), i18n::word(lang, Word::RollingBack));
                    self.fact(Word::RunningNow, &now);
                } else {
                    self.fact_release(Word::RunningNow, running);
                }
            }
            Event::TestPassed(t) => {
                report = Some(t);
                self.fact_release(Word::RunningNow, running);
            }
            Event::DeployStarted(d) => {
                self.fact(Word::Image, &d.image);
                self.fact_release(Word::RunningNow, before);
            }
            Event::DeploySucceeded(d) => {
                self.fact(
                    Word::RunningNow,
                    &release(&Release {
                        revision: Some(d.revision.clone()).filter(|r| !r.is_empty()),
                        image: d.image.clone(),
                    }),
                );
                match before {
                    Some(b) => self.fact(Word::Replaced, &release(b)),
                    None => self.fact(Word::Replaced, d.previous_image.as_deref().unwrap_or("")),
                }
                self.fact(Word::Hosts, &hosts(lang, &d.hosts));
            }
            Event::DeploySuperseded(d) => {
                self.fact(Word::Image, &d.image);
                self.fact_release(Word::RunningNow, running);
            }
            Event::DeployRolledBack(d) => {
                self.fact(
                    Word::RunningNow,
                    &release(&Release {
                        revision: Some(d.revision.clone()).filter(|r| !r.is_empty()),
                        image: d.image.clone(),
                    }),
                );
                if let Some(from) = &d.from_image {
                    self.fact(
                        Word::RolledBackFrom,
                        &release(&Release {
                            revision: d.from_revision.clone().filter(|r| !r.is_empty()),
                            image: from.clone(),
                        }),
                    );
                }
                self.fact(Word::Hosts, &hosts(lang, &d.hosts));
                self.reason = Some(cut(&d.reason, MAX_REASON));
            }
            Event::ApprovalRequested(a) => {
                self.fact(Word::Waiting, &a.image);
                self.fact(Word::PassedIn, a.passed_in.as_deref().unwrap_or(""));
                if let Some(p) = a.canary_percent {
                    self.fact(Word::Canary, &format!("{p}%"));
                }
                self.fact_release(Word::RunningNow, running);
                self.fact(
                    Word::ExpiresAt,
                    &a.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                );
            }
            Event::ApprovalGranted(d) | Event::ApprovalRejected(d) | Event::ApprovalExpired(d) => {
                self.fact(Word::By, &d.by);
                self.fact(Word::Comment, d.comment.as_deref().unwrap_or(""));
                self.fact_release(Word::RunningNow, running);
            }
            Event::DeployRequested(d) => {
                self.fact(Word::Image, &d.image);
                self.fact(Word::By, d.requested_by.as_deref().unwrap_or(""));
                self.fact_release(Word::RunningNow, running);
            }
            Event::ScaleSucceeded(d) => {
                self.fact(Word::Scale, &format!("{} → {}", d.from, d.to));
                self.fact(Word::By, d.requested_by.as_deref().unwrap_or(""));
                self.fact_release(Word::RunningNow, running);
            }
            // Kinds added after this notifier: the envelope alone says enough.
            _ => {}
        }
        (failure, report)
    }

    fn fact_release(&mut self, label: Word, r: Option<&Release>) {
        if let Some(r) = r {
            let text = release(r);
            self.fact(label, &text);
        }
    }

    /// A (label, value) fact in the notice's language; empty values are left out.
    fn fact(&mut self, label: Word, value: &str) {
        if !value.is_empty() {
            self.facts
                .push((i18n::word(self.lang, label).to_owned(), value.to_owned()));
        }
    }

    /// Everything that goes to chat as plain words, for scrubbing and size checks.
    pub fn texts_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let facts = self.facts.iter_mut().map(|(_, v)| v);
        [&mut self.headline]
            .into_iter()
            .chain(self.message.as_mut())
            .chain(self.reason.as_mut())
            .chain(self.author.as_mut())
            .chain(facts)
            .chain(self.checks.iter_mut())
    }
}

fn tone(kind: &str) -> Tone {
    match kind {
        k if k.ends_with(".failed") => Tone::Bad,
        "approval.rejected" | "approval.expired" => Tone::Bad,
        "deploy.succeeded" | "test.passed" | "approval.granted" => Tone::Good,
        "deploy.rolled_back" | "approval.requested" => Tone::Attention,
        _ => Tone::Info,
    }
}

fn hosts(lang: Lang, hosts: &[HostTiming]) -> String {
    hosts
        .iter()
        .map(|h| format!("{} {}", h.host, i18n::duration(lang, h.millis)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `r15` for an SVN revision, the first 10 characters of a git commit, else as given,
/// on one line and made inert: it comes from a push and stands in the headline, which
/// every channel shows as its title without escaping it (a revision `<at id=all>` or
/// `@all` must mention no one there).
pub fn display_revision(r: &str) -> String {
    let r = one_line(r.trim());
    if !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()) {
        format!("r{r}")
    } else if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
        r[..10].to_owned()
    } else {
        crate::escape::markdown(&cut(&r, 64))
    }
}

/// `r14 · registry/shop:14@sha256:…`, or the image alone when the revision is unknown.
fn release(r: &Release) -> String {
    match &r.revision {
        Some(rev) => format!("{} · {}", display_revision(rev), r.image),
        None => r.image.clone(),
    }
}

/// Control characters (a CR/LF from a webhook's revision) become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn failed_checks(lang: Lang, checks: &[CheckResult]) -> Vec<String> {
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| !c.passed).collect();
    let mut out: Vec<String> = failed
        .iter()
        .take(MAX_CHECKS)
        .map(|c| {
            let took = i18n::duration(lang, c.millis);
            match &c.detail {
                Some(d) => format!("{} ({took}): {}", c.name, cut(d.trim(), 300)),
                None => format!("{} ({took})", c.name),
            }
        })
        .collect();
    if failed.len() > MAX_CHECKS {
        out.push(format!(
            "+{} {}",
            failed.len() - MAX_CHECKS,
            i18n::word(lang, Word::More)
        ));
    }
    out
}

/// What a reader can run next: the run's log, and what the event calls for (approve
/// or reject a held run; roll back a release that is live and may be wrong; see what
/// runs where after a deploy).
fn commands(e: &Envelope, lang: Lang, cli: &str) -> Vec<(String, String)> {
    let w = |x| i18n::word(lang, x).to_owned();
    let kind = e.kind();
    let run = e.run_id;
    let mut out = vec![(w(Word::Logs), format!("{cli} logs {run}"))];
    // Tests that failed with a report are rolled back by Ferry itself; a deploy that
    // failed left the release before it running.
    let rolled_back_by_ferry = matches!(&e.event, Event::TestFailed(t) if t.report.is_some());
    match (kind, &e.environment) {
        ("approval.requested", _) => {
            out.push((w(Word::Approve), format!("{cli} approve {run}")));
            out.push((w(Word::Reject), format!("{cli} reject {run}")));
        }
        ("test.failed" | "deploy.succeeded", Some(env)) if !rolled_back_by_ferry => {
            out.push((
                w(Word::Rollback),
                format!("{cli} rollback {} --env {env}", e.project),
            ));
        }
        _ => {}
    }
    if kind.starts_with("deploy.") || kind.starts_with("test.") {
        out.push((w(Word::Status), format!("{cli} status {}", e.project)));
    }
    out
}

/// At most about `max` characters, cut at a character boundary, with `…` where cut. A
/// multi-line cause keeps its first line (what failed) and its end (a build's last
/// lines say the most).
pub fn cut(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_owned();
    }
    if let Some((first, rest)) = s.split_once('\n')
        && first.chars().count() < max / 2
    {
        let keep = max - first.chars().count();
        let rest_count = rest.chars().count();
        let tail: String = rest.chars().skip(rest_count.saturating_sub(keep)).collect();
        format!("{first}\n…{tail}")
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::event::{
        DeployStarted, DeploySucceeded, ImageBuilt, ImagePulled, ImagePushed, SourceChanged,
    };

    #[test]
    fn a_deploy_says_how_long_each_stage_took_in_both_languages() {
        let runs = crate::runs::Runs::default();
        let mut src = Envelope::new_run(
            "shop",
            Event::SourceChanged(SourceChanged {
                source: "svn".into(),
                repository: "svn://x/shop".into(),
                reference: None,
                revision: "42".into(),
                author: Some("alice".into()),
                message: Some("line one\nline two".into()),
                changed_paths: vec![],
                config_change: None,
                committed: None,
            }),
        );
        let t0 = src.time;
        let at = |e: &mut Envelope, ms: i64| e.time = t0 + chrono::Duration::milliseconds(ms);
        at(&mut src, 0);
        runs.observe(&src);
        let mut built = src.follow(
            Event::ImageBuilt(ImageBuilt {
                docker_millis: None,
                build_host: None,
                revision: "42".into(),
                image: "r/shop:42".into(),
                config_commit: None,
                build_log: None,
            }),
            None,
        );
        at(&mut built, 65_000);
        runs.observe(&built);
        let mut pushed = built.follow(
            Event::ImagePushed(ImagePushed {
                docker_millis: None,
                revision: "42".into(),
                image: "i@sha256:0".into(),
            }),
            None,
        );
        at(&mut pushed, 67_000);
        runs.observe(&pushed);
        let mut pulled = pushed.follow(
            Event::ImagePulled(ImagePulled {
                revision: "42".into(),
                image: "i@sha256:0".into(),
                hosts: vec![],
            }),
            Some("staging"),
        );
        at(&mut pulled, 70_000);
        runs.observe(&pulled);
        let mut started = pulled.follow(
            Event::DeployStarted(DeployStarted {
                revision: "42".into(),
                image: "i@sha256:0".into(),
                previous_image: None,
                rollback: false,
            }),
            Some("staging"),
        );
        at(&mut started, 70_500);
        runs.observe(&started);
        let mut done = started.follow(
            Event::DeploySucceeded(DeploySucceeded {
                revision: "42".into(),
                image: "i@sha256:0".into(),
                previous_image: None,
                hosts: vec![],
            }),
            Some("staging"),
        );
        at(&mut done, 80_500);
        let run = runs.observe(&done);

        let en = Notice::build(&done, &run, Lang::En, "ferry");
        assert_eq!(en.headline, "shop r42 · staging: deployed");
        assert_eq!(en.tone, Tone::Good);
        assert_eq!(en.author.as_deref(), Some("alice"));
        let stages: Vec<String> = en.stages.iter().map(|(s, d)| format!("{s} {d}")).collect();
        assert_eq!(
            stages,
            [
                "build 1 min 5 s",
                "push 2.0 s",
                "pre-pull 3.0 s",
                "deploy 10.0 s",
                "total 1 min 20 s"
            ]
        );
        assert!(
            en.commands
                .iter()
                .any(|(_, c)| c == "ferry rollback shop --env staging")
        );

        let zh = Notice::build(&done, &run, Lang::ZhCn, "ferry");
        assert_eq!(zh.headline, "shop r42 · staging: 部署成功");
        assert_eq!(zh.stages[0], ("构建".to_owned(), "1分 5秒".to_owned()));
    }

    /// The headline is every channel's title, unescaped: the revision in it (from a
    /// push) must be inert in all of them.
    #[test]
    fn a_hostile_revision_is_inert_in_every_title() {
        let runs = crate::runs::Runs::default();
        let src = Envelope::new_run(
            "shop",
            Event::SourceChanged(SourceChanged {
                source: "git".into(),
                repository: "https://git.example/shop.git".into(),
                reference: None,
                revision: "<at id=all></at> @all [x](https://e.vil/p.png)".into(),
                author: None,
                message: None,
                changed_paths: vec![],
                config_change: None,
                committed: None,
            }),
        );
        let n = Notice::build(&src, &runs.observe(&src), Lang::En, "ferry");
        let md = crate::render::markdown(&n, crate::render::Dialect::Markdown, true);
        let slack = crate::render::markdown(&n, crate::render::Dialect::Slack, true);
        for text in [&n.headline, &md, &slack, &crate::render::chat_text(&n)] {
            assert!(!text.contains("<at"), "{text}");
            assert!(!text.contains("@all"), "{text}");
            assert!(!text.contains("](") && !text.contains("://"), "{text}");
        }
    }

    #[test]
    fn a_long_cause_keeps_its_first_line_and_its_end() {
        let cause = format!(
            "step 4/9 RUN npm ci failed\n{}\nnpm ERR! the last line",
            "x\n".repeat(2000)
        );
        let cut = cut(&cause, 200);
        assert!(cut.starts_with("step 4/9 RUN npm ci failed\n…"));
        assert!(cut.ends_with("npm ERR! the last line"));
        assert!(cut.chars().count() <= 202);
    }
}
