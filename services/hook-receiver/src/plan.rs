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
                    repository: project.source.url.clone(),
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
                let events = projects
                    .into_iter()
                    .map(|p| start(delivery.as_deref(), p, source_changed(&push)))
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
                            revision: image.tag.clone(),
                            image: format!("{}:{}@{}", image.image, image.tag, image.digest),
                        });
                        start(delivery.as_deref(), p, pushed)
                    })
                    .collect();
                Plan::Start { delivery, events }
            }
        },
    }
}

fn start(delivery: Option<&str>, project: &str, event: Event) -> Envelope {
    match delivery {
        Some(d) => Envelope::start_run(
            Uuid::new_v5(&RUN_NAMESPACE, format!("{d}:{project}").as_bytes()),
            project,
            event,
        ),
        None => Envelope::new_run(project, event),
    }
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
