use super::*;
use crate::bus::hold;
use crate::event::{ALL_KINDS, ImageBuilt, SourceChanged};

/// Whether the topic pattern `pattern` matches `key` (`*` one word, `#` zero or more).
fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match (p.first(), k.first()) {
            (None, None) => true,
            (Some(&"#"), _) => go(&p[1..], k) || (!k.is_empty() && go(p, &k[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &k[1..]),
            (Some(w), Some(x)) if w == x => go(&p[1..], &k[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

/// The routing keys an event of `kind` can be delivered under.
fn keys_of(kind: EventKind) -> Vec<String> {
    let mut keys = vec![
        kind.as_str().to_owned(),
        format!("{}.staging", kind.as_str()),
    ];
    if kind == EventKind::ApprovalRequested {
        keys.push(hold::expired_key("staging"));
    }
    keys
}

fn check<I: Input>() {
    let spec = I::spec();
    for t in I::TAKES {
        assert!(
            keys_of(t.kind).iter().any(|k| topic_matches(t.binding, k)),
            "{}: binding `{}` never brings `{}`",
            I::SERVICE,
            t.binding,
            t.kind.as_str()
        );
    }
    // Whatever a binding brings, the stage takes (hold expiries are the one key that
    // is not a kind's own).
    for kind in EventKind::ALL {
        let brought = spec.bindings.iter().any(|b| {
            keys_of(*kind)
                .iter()
                .filter(|k| !k.starts_with("hold."))
                .any(|k| topic_matches(b, k))
        });
        let taken = I::TAKES.iter().any(|t| t.kind == *kind);
        assert!(
            !brought || taken,
            "{}: a binding brings `{}`, which the input does not take",
            I::SERVICE,
            kind.as_str()
        );
    }
}

#[test]
fn every_binding_brings_a_kind_the_stage_takes_and_nothing_else() {
    check::<BuildInput>();
    check::<PushInput>();
    check::<PullInput>();
    check::<DeployInput>();
    check::<TestInput>();
    check::<NotifyInput>();
}

#[test]
fn event_kinds_name_their_wire_kinds() {
    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ALL_KINDS);
}

#[test]
fn the_topic_matcher_follows_rabbitmq() {
    assert!(topic_matches("*.failed.#", "build.failed"));
    assert!(topic_matches("*.failed.#", "deploy.failed.production"));
    assert!(topic_matches("image.pulled.*", "image.pulled.staging"));
    assert!(!topic_matches("image.pulled.*", "image.pulled"));
    assert!(!topic_matches(
        "approval.granted.*",
        "approval.requested.staging"
    ));
}

fn source() -> Envelope {
    Envelope::new_run(
        "shop",
        Event::SourceChanged(SourceChanged {
            source: "svn".into(),
            repository: "svn://127.0.0.1/shop".into(),
            reference: None,
            revision: "5".into(),
            author: Some("alice".into()),
            message: None,
            changed_paths: vec![],
            config_change: None,
            committed: None,
        }),
    )
}

#[test]
fn an_envelope_becomes_the_stage_input_only_for_a_kind_it_takes() {
    let e = source();
    let received = Received::<BuildInput>::new(e.clone()).expect("the builder takes it");
    let BuildInput::SourceChanged(s) = &received.input;
    assert_eq!(s.revision, "5");
    assert_eq!(received.project, "shop");
    assert!(Received::<PushInput>::new(e).is_none());
}

#[test]
fn an_expired_hold_reaches_the_updater_as_its_own_variant() {
    let held = source().follow(
        Event::ApprovalRequested(crate::event::ApprovalRequested {
            revision: "5".into(),
            image: "r/shop:5@sha256:00".into(),
            passed_in: None,
            expires_at: chrono::Utc::now(),
            canary_percent: None,
        }),
        Some("production"),
    );
    let received = Received::<DeployInput>::new(held).unwrap();
    assert!(matches!(received.input, DeployInput::HoldExpired(_)));
}

#[test]
fn a_failure_follows_the_event_into_its_stages_failed_kind() {
    let built = source().follow(
        Event::ImageBuilt(ImageBuilt {
            revision: "5".into(),
            image: "r/shop:5".into(),
            config_commit: None,
            build_log: None,
            docker_millis: None,
            build_host: None,
        }),
        None,
    );
    let cause = FailedCause::Event {
        event: &built,
        environment: None,
    };
    let failed = failed_event("pusher", StageName::Push, cause, 3, "no registry".into());
    assert_eq!(failed.routing_key(), "push.failed");
    assert_eq!(failed.run_id, built.run_id);
    assert_eq!(failed.causation_id, Some(built.event_id));
    let Event::PushFailed(f) = &failed.event else {
        panic!("not push.failed: {failed:?}");
    };
    assert_eq!(
        (f.service.as_str(), f.attempts, f.failed_kind.as_str()),
        ("pusher", 3, "image.built")
    );
    let cause = FailedCause::Event {
        event: &built,
        environment: Some("production"),
    };
    let failed = failed_event("rancher-updater", StageName::Deploy, cause, 1, "x".into());
    assert_eq!(failed.routing_key(), "deploy.failed.production");
}

#[test]
fn every_stage_fails_under_its_own_name() {
    for stage in [
        StageName::Build,
        StageName::Push,
        StageName::Pull,
        StageName::Deploy,
        StageName::Test,
        StageName::Notify,
    ] {
        let failure = StageFailed {
            service: "x".into(),
            reason: "y".into(),
            attempts: 1,
            failed_event_id: uuid::Uuid::nil(),
            failed_kind: "z".into(),
        };
        assert_eq!(stage.failed(failure).kind(), format!("{stage}.failed"));
    }
}
