//! From a parsed trigger to the events that start its runs.

use crate::matching;
use crate::trigger::{Parsed, Push, Rejection};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{ConfigChange, Envelope, Event, ImagePushed, SourceChanged, Starter};
use ferry_shared::order::{OrderScale, RunOrder};
use http::StatusCode;
use uuid::Uuid;

/// Namespace of run ids derived from delivery ids.
const RUN_NAMESPACE: Uuid = Uuid::from_u128(0x3b0e_5f7c_9d21_4a6b_8e13_c0a4_71f2_d95e);

pub enum Plan {
    /// Nothing to start, and why (answered 200).
    Ignore(String),
    /// A request that names something that does not exist (manual triggers).
    Reject(Rejection),
    /// Publish these, one per run; `delivery` keys deduplication when the sender
    /// identifies its deliveries.
    Start {
        delivery: Option<String>,
        events: Vec<Envelope>,
    },
}

/// A revision of a project that ran or was built: what a config change rebuilds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub revision: String,
    /// The branch or tag it was pushed on (git), which the builder checks again.
    pub reference: Option<String>,
}

/// What the receiver knows of each project's releases (from the run history).
pub trait Releases {
    /// The revision running in the project's last environment, or when nothing was
    /// deployed, the last one built.
    fn current(&self, project: &str) -> Option<Release>;
}

/// No knowledge of releases (`ferry hook inspect`, the fuzz targets): a config change
/// is reported as starting nothing.
pub struct NoReleases;

impl Releases for NoReleases {
    fn current(&self, _: &str) -> Option<Release> {
        None
    }
}

pub fn plan(cfg: &FerryConfig, parsed: Parsed, releases: &dyn Releases) -> Plan {
    match parsed {
        Parsed::Ignored { reason } => Plan::Ignore(reason),
        Parsed::Manual(m) => match cfg.projects.get(&m.project) {
            None => Plan::Reject(Rejection::new(
                StatusCode::NOT_FOUND,
                format!("project `{}` is not configured", m.project),
            )),
            Some(project) => {
                let revision = match crate::sources::manual::revision_for(project, &m.revision) {
                    Ok(r) => r,
                    Err(rejection) => return Plan::Reject(rejection),
                };
                let event = Event::SourceChanged(SourceChanged {
                    source: "manual".into(),
                    repository: project.source.public_url(),
                    reference: None,
                    revision,
                    author: m.author,
                    message: m.message,
                    changed_paths: vec![],
                    config_change: None,
                    committed: None,
                });
                let mut run = Envelope::new_run(m.project, event);
                // The body's author is free text behind a shared token: it names nobody
                // for the own-run rule.
                run.started_by = Some(Starter::ManualHook);
                Plan::Start {
                    delivery: None,
                    events: vec![run],
                }
            }
        },
        Parsed::Push(push) => plan_push(cfg, &push, releases),
        Parsed::Image(image) => match matching::projects_for_image(cfg, &image) {
            Err(why) => Plan::Ignore(why),
            Ok(projects) => {
                let delivery = Some(format!("harbor:{}:{}", image.image, image.digest));
                // An image built elsewhere has no revision to count: its place is when
                // this receiver got the push (never Harbor's `occur_at`, which the
                // sender writes). Clamped at zero: a clock before 1970 is nobody's.
                let received = RunOrder::new(
                    OrderScale::Received,
                    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
                );
                let events = projects
                    .into_iter()
                    .map(|p| {
                        let pushed = Event::ImagePushed(ImagePushed {
                            docker_millis: None,
                            revision: image.tag.clone(),
                            image: format!("{}:{}@{}", image.image, image.tag, image.digest),
                        });
                        let mut e = start(delivery.as_deref(), p, pushed);
                        e.order = Some(received);
                        e
                    })
                    .collect();
                Plan::Start { delivery, events }
            }
        },
    }
}

/// A push starts the projects whose code it changes, and those whose config repo it
/// changes (see `config_run`); one repository may be both.
fn plan_push(cfg: &FerryConfig, push: &Push, releases: &dyn Releases) -> Plan {
    let delivery = push
        .delivery_id
        .as_ref()
        .map(|d| format!("{}:{d}", push.source.as_str()));
    let starter = pushed_by(push);
    let mut events = Vec::new();
    let mut reasons = Vec::new();
    let config = matching::projects_for_config_push(cfg, push);
    let is_config_repo = config.as_ref().map_or(true, |f| !f.is_empty());
    match matching::projects_for_push(cfg, push) {
        // The commit date plays no part: the builder learns the run's place from the
        // revision itself (see `ferry_shared::order`).
        Ok(projects) => events.extend(
            projects
                .into_iter()
                .map(|p| start(delivery.as_deref(), p, source_changed(push))),
        ),
        // "No project follows" is no news about a config repo.
        Err(why) if is_config_repo && why.starts_with("no project follows") => {}
        Err(why) => reasons.push(why),
    }
    match config {
        Ok(followers) => {
            for f in followers {
                match releases.current(f.project) {
                    Some(release) => {
                        let key = delivery.as_ref().map(|d| format!("{d}:config"));
                        let project = f.project;
                        let event = config_run(cfg, push, f, release);
                        events.push(start(key.as_deref(), project, event));
                    }
                    None => reasons.push(format!(
                        "{}: its config changed, but none of its revisions was built or deployed yet (or the run history is still being read): the change is built into its next run",
                        f.project
                    )),
                }
            }
        }
        Err(why) => reasons.push(why),
    }
    if events.is_empty() {
        return Plan::Ignore(reasons.join("; "));
    }
    for run in &mut events {
        if let Some(starter) = &starter {
            run.started_by = Some(starter.clone());
        }
    }
    Plan::Start { delivery, events }
}

/// A config change's run: the code stays at the release now in production (or the last
/// built), the config is the pushed commit. The run goes through every environment and
/// its tests like any other; its events name the change's author and files, never their
/// content.
fn config_run(
    cfg: &FerryConfig,
    push: &Push,
    follower: matching::ConfigFollower<'_>,
    release: Release,
) -> Event {
    let author = push
        .pusher
        .clone()
        .or_else(|| push.author.clone())
        .or_else(|| push.author_email.clone());
    Event::SourceChanged(SourceChanged {
        source: "config".into(),
        repository: cfg
            .projects
            .get(follower.project)
            .map(|p| p.source.public_url())
            .unwrap_or_default(),
        reference: release.reference,
        revision: release.revision,
        author: push.author.clone().or_else(|| push.author_email.clone()),
        message: push.message.clone(),
        changed_paths: vec![],
        config_change: Some(ConfigChange {
            commit: push.revision.clone(),
            author,
            files: follower.files,
        }),
        committed: committed_at(push),
    })
}

/// The run's first event. When the sender names its delivery, the run id is derived
/// from the delivery id (and the project) alone, so a redelivery, on this replica or
/// another, yields the same run id and event ids and the stages treat it as a repeat.
/// It carries no time: run ids order nothing (the run's place does, see
/// `ferry_shared::order`), and a time from the receiver's clock would differ between
/// replicas and so defeat the repeat detection; one from the payload is the sender's
/// to choose. Without a delivery id the run gets a fresh id.
fn start(delivery: Option<&str>, project: &str, event: Event) -> Envelope {
    match delivery {
        Some(d) => Envelope::start_run(delivery_run_id(&format!("{d}:{project}")), project, event),
        None => Envelope::new_run(project, event),
    }
}

/// The run id of a delivery: a UUIDv5 of `key`.
fn delivery_run_id(key: &str) -> Uuid {
    Uuid::new_v5(&RUN_NAMESPACE, key.as_bytes())
}

/// Who started a push's run: the account the forge authenticated, and the head
/// commit's author as written (both count for the own-run rule). Without a pusher
/// (SVN) the run keeps its author as the starter.
fn pushed_by(push: &Push) -> Option<Starter> {
    let pusher = push.pusher.clone()?;
    let mut authors: Vec<String> = [&push.author, &push.author_email]
        .into_iter()
        .flatten()
        .filter(|a| !a.trim().is_empty() && !a.trim().eq_ignore_ascii_case(pusher.trim()))
        .map(|a| crate::message::cut(a, crate::message::KEPT_BYTES))
        .collect();
    authors.dedup();
    Some(Starter::Push { pusher, authors })
}

fn source_changed(push: &Push) -> Event {
    Event::SourceChanged(SourceChanged {
        source: push.source.as_str().to_owned(),
        repository: push
            .repository
            .first()
            .or(push.repository_urls.first())
            .or(push.repository_uuid.as_ref())
            .cloned()
            .unwrap_or_default(),
        reference: push.reference.as_ref().map(|r| match r {
            crate::trigger::Reference::Branch(b) => b.clone(),
            crate::trigger::Reference::Tag(t) => format!("tags/{t}"),
        }),
        revision: push.revision.clone(),
        author: push.author.clone().or_else(|| push.author_email.clone()),
        message: push.message.clone(),
        changed_paths: push.changed_paths.clone(),
        config_change: None,
        committed: committed_at(push),
    })
}

/// The commit's time as the sender gave it (RFC 3339): where lead time starts.
fn committed_at(push: &Push) -> Option<chrono::DateTime<chrono::Utc>> {
    push.committed_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_run_ids_are_deterministic_and_carry_no_time() {
        let a = delivery_run_id("github:d-1:shop");
        assert_eq!(a, delivery_run_id("github:d-1:shop"));
        assert_ne!(a, delivery_run_id("github:d-2:shop"));
        assert_ne!(a, delivery_run_id("github:d-1:blog"));
        assert_eq!(a.get_version_num(), 5);
        assert!(a.get_timestamp().is_none());
    }
}
