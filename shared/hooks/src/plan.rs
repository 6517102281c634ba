//! From a parsed trigger to the events that start its runs.

use crate::matching;
use crate::trigger::{Parsed, Push, Rejection};
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePushed, SourceChanged, Starter};
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

pub fn plan(cfg: &FerryConfig, parsed: Parsed) -> Plan {
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
        Parsed::Push(push) => match matching::projects_for_push(cfg, &push) {
            Err(why) => Plan::Ignore(why),
            Ok(projects) => {
                let delivery = push
                    .delivery_id
                    .as_ref()
                    .map(|d| format!("{}:{d}", push.source.as_str()));
                // The commit date plays no part: the builder learns the run's place
                // from the revision itself (see `ferry_shared::order`).
                let events = projects
                    .into_iter()
                    .map(|p| {
                        let mut run = start(delivery.as_deref(), p, source_changed(&push));
                        if let Some(starter) = pushed_by(&push) {
                            run.started_by = Some(starter);
                        }
                        run
                    })
                    .collect();
                Plan::Start { delivery, events }
            }
        },
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
    })
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
