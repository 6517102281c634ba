//! Which channels hear about an event, and whether they mention its author.

use ferry_shared::event::Envelope;
use ferry_shared::notify_config::{NotifyConfig, RouteConfig, kind_matches};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub channel: String,
    pub mention_author: bool,
}

fn matches(r: &RouteConfig, e: &Envelope) -> bool {
    let project = r.projects.is_empty() || r.projects.contains(&e.project);
    let env = r.environments.is_empty()
        || e.environment
            .as_ref()
            .is_some_and(|env| r.environments.contains(env));
    project && env && r.on.iter().any(|p| kind_matches(p, e.kind()))
}

/// Every channel some matching route names, once, mentioning the author if any of
/// those routes asks for it. In configuration order.
pub fn targets(notify: &NotifyConfig, e: &Envelope) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for r in notify.routes.iter().filter(|r| matches(r, e)) {
        for ch in &r.channels {
            match out.iter_mut().find(|t| &t.channel == ch) {
                Some(t) => t.mention_author |= r.mention_author,
                None => out.push(Target {
                    channel: ch.clone(),
                    mention_author: r.mention_author,
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_shared::event::{DeploySucceeded, Event, StageFailed};
    use uuid::Uuid;

    fn route(on: &[&str], envs: &[&str], channels: &[&str], mention: bool) -> RouteConfig {
        RouteConfig {
            projects: vec!["shop".into()],
            environments: envs.iter().map(|s| (*s).into()).collect(),
            on: on.iter().map(|s| (*s).into()).collect(),
            channels: channels.iter().map(|s| (*s).into()).collect(),
            mention_author: mention,
        }
    }

    fn event(kind: &str, env: Option<&str>) -> Envelope {
        let failed = StageFailed {
            service: "builder".into(),
            reason: "x".into(),
            attempts: 1,
            failed_event_id: Uuid::nil(),
            failed_kind: "source.changed".into(),
        };
        let ev = match kind {
            "build.failed" => Event::BuildFailed(failed),
            _ => Event::DeploySucceeded(DeploySucceeded {
                revision: "1".into(),
                image: "i".into(),
                previous_image: None,
                hosts: vec![],
            }),
        };
        let mut e = Envelope::new_run("shop", ev);
        e.environment = env.map(Into::into);
        e
    }

    #[test]
    fn failures_reach_committer_and_team_production_successes_the_team_only() {
        let cfg = NotifyConfig {
            routes: vec![
                route(&["failed"], &[], &["team", "mail"], true),
                route(&["deploy.succeeded"], &["production"], &["team"], false),
            ],
            ..Default::default()
        };
        let t = targets(&cfg, &event("build.failed", None));
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.mention_author));
        let t = targets(&cfg, &event("deploy.succeeded", Some("production")));
        assert_eq!(
            t,
            vec![Target {
                channel: "team".into(),
                mention_author: false
            }]
        );
        assert!(targets(&cfg, &event("deploy.succeeded", Some("staging"))).is_empty());
        let mut other = event("build.failed", None);
        other.project = "blog".into();
        assert!(targets(&cfg, &other).is_empty());
    }
}
