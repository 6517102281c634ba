//! From a parsed trigger to the events that start its runs.

use crate::matching;
use crate::trigger::{Parsed, Push, Rejection};
use axum::http::StatusCode;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::{Envelope, Event, ImagePushed, SourceChanged};
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
                let event = Event::SourceChanged(SourceChanged {
                    source: "manual".into(),
                    repository: project.source.public_url(),
                    reference: None,
                    revision: m.revision,
                    author: m.author,
                    message: m.message,
                    changed_paths: vec![],
                });
                Plan::Start {
                    delivery: None,
                    events: vec![Envelope::new_run(m.project, event)],
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
                let at = push
                    .committed_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis());
                let events = projects
                    .into_iter()
                    .map(|p| start(delivery.as_deref(), at, p, source_changed(&push)))
                    .collect();
                Plan::Start { delivery, events }
            }
        },
        Parsed::Image(image) => match matching::projects_for_image(cfg, &image) {
            Err(why) => Plan::Ignore(why),
            Ok(projects) => {
                let delivery = Some(format!("harbor:{}:{}", image.image, image.digest));
                let events = projects
                    .into_iter()
                    .map(|p| {
                        let pushed = Event::ImagePushed(ImagePushed {
                            docker_millis: None,
                            revision: image.tag.clone(),
                            image: format!("{}:{}@{}", image.image, image.tag, image.digest),
                        });
                        start(
                            delivery.as_deref(),
                            image.occurred_at.map(|s| s * 1000),
                            p,
                            pushed,
                        )
                    })
                    .collect();
                Plan::Start { delivery, events }
            }
        },
    }
}

/// The run's first event. Run ids are UUIDv7, so they sort by time: the updater uses
/// that to refuse deploying a run older than the one running. When the sender names
/// its delivery, the id is also deterministic: its time is the commit's (or the
/// push's) and its random part a hash of the delivery id, so a redelivery, on this
/// replica or another, yields the same run id and event ids.
fn start(delivery: Option<&str>, at_millis: Option<i64>, project: &str, event: Event) -> Envelope {
    match (delivery, at_millis) {
        (Some(d), Some(ms)) => Envelope::start_run(
            time_ordered_id(ms, &format!("{d}:{project}")),
            project,
            event,
        ),
        _ => Envelope::new_run(project, event),
    }
}

/// A UUIDv7 for `millis` whose remaining bits come from a hash of `key`.
fn time_ordered_id(millis: i64, key: &str) -> Uuid {
    let hash = Uuid::new_v5(&RUN_NAMESPACE, key.as_bytes());
    let mut bytes = *hash.as_bytes();
    let ms = (millis.max(0) as u64).to_be_bytes();
    bytes[..6].copy_from_slice(&ms[2..]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f); // version 7
    bytes[8] = 0x80 | (bytes[8] & 0x3f); // RFC 4122 variant
    Uuid::from_bytes(bytes)
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
    fn delivery_run_ids_are_deterministic_and_ordered_by_time() {
        let a = time_ordered_id(1_700_000_000_000, "github:d-1:shop");
        assert_eq!(a, time_ordered_id(1_700_000_000_000, "github:d-1:shop"));
        assert_eq!(a.get_version_num(), 7);
        let later = time_ordered_id(1_700_000_000_001, "github:d-0:shop");
        assert!(later > a);
        assert_eq!(a.get_timestamp().unwrap().to_unix().0, 1_700_000_000);
    }
}
