use super::*;
use crate::order::RunOrder;

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
fn wire_format_has_kind_and_payload_next_to_the_envelope_fields() {
    let json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
    assert_eq!(json["kind"], "source.changed");
    assert_eq!(json["payload"]["revision"], "5");
    assert_eq!(json["project"], "shop");
    assert_eq!(json["schema_version"], 1);
    assert!(json.get("environment").is_none());
}

#[test]
fn the_fast_encoder_and_decoder_agree_with_the_derived_serde_form() {
    let e = source().follow(
        Event::DeploySucceeded(DeploySucceeded {
            revision: "5".into(),
            image: "r/x:5@sha256:00".into(),
            previous_image: Some("r/x:4@sha256:11".into()),
            hosts: vec![],
        }),
        Some("staging"),
    );
    let fast: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(fast, serde_json::to_value(&e).unwrap());
    let derived: Envelope = serde_json::from_value(fast).unwrap();
    assert_eq!(
        Envelope::from_json(&serde_json::to_vec(&derived).unwrap()).unwrap(),
        e
    );
}

#[test]
fn round_trip_keeps_every_field() {
    let e = source();
    assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), e);
}

#[test]
fn the_run_order_is_carried_by_every_following_event() {
    let mut e = source();
    e.order = Some(RunOrder::new(crate::order::OrderScale::Svn, 5));
    let json: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(
        json["order"],
        serde_json::json!({"scale": "svn", "value": 5})
    );
    assert_eq!(Envelope::from_json(&e.to_json()).unwrap(), e);
    let next = e.follow(e.event.clone(), Some("staging"));
    assert_eq!(next.order, e.order);
    // Events of an older Ferry have none.
    assert_eq!(
        Envelope::from_json(&source().to_json()).unwrap().order,
        None
    );
}

#[test]
fn routing_key_appends_the_environment() {
    let e = source();
    assert_eq!(e.routing_key(), "source.changed");
    let d = e.follow(
        Event::DeploySucceeded(DeploySucceeded {
            revision: "5".into(),
            image: "r/shop:5@sha256:00".into(),
            previous_image: None,
            hosts: vec![],
        }),
        Some("staging"),
    );
    assert_eq!(d.routing_key(), "deploy.succeeded.staging");
}

#[test]
fn follow_is_deterministic_and_keeps_the_run() {
    let e = source();
    let built = Event::ImageBuilt(ImageBuilt {
        docker_millis: None,
        build_host: None,
        revision: "5".into(),
        image: "r/shop:5".into(),
        config_commit: None,
        build_log: None,
    });
    let a = e.follow(built.clone(), None);
    let b = e.follow(built, None);
    assert_eq!(a.event_id, b.event_id);
    assert_ne!(a.event_id, e.event_id);
    assert_eq!(a.run_id, e.run_id);
    assert_eq!(a.causation_id, Some(e.event_id));
}

#[test]
fn unknown_kind_and_newer_schema_are_errors_not_panics() {
    let mut json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
    json["kind"] = "nonsense.happened".into();
    assert!(Envelope::from_json(json.to_string().as_bytes()).is_err());
    let mut json: serde_json::Value = serde_json::from_slice(&source().to_json()).unwrap();
    json["schema_version"] = 9.into();
    assert!(matches!(
        Envelope::from_json(json.to_string().as_bytes()),
        Err(EventDecodeError::NewerSchema(9))
    ));
    assert!(Envelope::from_json(b"{not json").is_err());
}

/// A `deploy.succeeded` as the version before typed ids and the `event/` split wrote it:
/// an event in flight during an upgrade must still be handled, and forwarded unchanged.
#[test]
fn an_event_written_by_the_previous_version_still_decodes() {
    let written = r#"{"event_id":"0190a5e2-7c1d-7b3e-9f00-3c2a1b4d5e6f","run_id":"0190a5e2-70aa-7cc1-8d2e-112233445566","causation_id":"0190a5e2-7b00-7000-8000-000000000001","schema_version":1,"time":"2024-07-01T10:20:30.123456Z","project":"shop","environment":"staging","started_by":{"push":{"pusher":"bob","authors":["jane"]}},"order":{"scale":"git","value":42,"explicit":true},"kind":"deploy.succeeded","payload":{"revision":"5","image":"127.0.0.1:5000/shop/web:5@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","previous_image":"127.0.0.1:5000/shop/web:4@sha256:00","hosts":[{"host":"web-1","millis":1200,"outcome":"pulled"}]}}"#;
    let e = Envelope::from_json(written.as_bytes()).unwrap();
    assert_eq!(
        e.run_id,
        "0190a5e2-70aa-7cc1-8d2e-112233445566"
            .parse::<uuid::Uuid>()
            .unwrap()
    );
    assert_eq!(e.routing_key(), "deploy.succeeded.staging");
    assert_eq!(
        e.started_by,
        Some(Starter::Push {
            pusher: "bob".into(),
            authors: vec!["jane".into()]
        })
    );
    let Event::DeploySucceeded(d) = &e.event else {
        panic!("{e:?}")
    };
    assert_eq!(d.hosts[0].host, "web-1");
    // Written back byte-compatible: same JSON value, through both encoders.
    let original: serde_json::Value = serde_json::from_str(written).unwrap();
    let fast: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(fast, original);
    assert_eq!(serde_json::to_value(&e).unwrap(), original);
}

/// A message in flight during an upgrade, as the previous version wrote it.
#[test]
fn deploy_events_of_the_previous_version_still_decode() {
    let old = r#"{"event_id":"0190b5a0-0000-7000-8000-000000000001","run_id":"0190b5a0-0000-7000-8000-000000000002","schema_version":1,"time":"2024-07-01T10:00:00Z","project":"shop","environment":"staging","kind":"deploy.succeeded","payload":{"revision":"5","image":"r/shop:5@sha256:00","previous_image":"r/shop:4@sha256:11","hosts":[{"host":"h1","millis":812,"outcome":"updated"},{"host":"h2","millis":0,"outcome":"already running"},{"host":"h3","millis":3}]}}"#;
    let e = Envelope::from_json(old.as_bytes()).unwrap();
    let Event::DeploySucceeded(d) = &e.event else {
        panic!("{e:?}")
    };
    assert_eq!(d.hosts[0].outcome, HostOutcome::Updated);
    assert_eq!(d.hosts[1].outcome, HostOutcome::AlreadyRunning);
    assert_eq!(d.hosts[2].outcome, HostOutcome::Unknown);
    assert_eq!(d.endpoints().count(), 0, "an old event names no endpoints");
    // Written back, it is the same JSON.
    let again: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
    assert_eq!(
        again,
        serde_json::from_str::<serde_json::Value>(old).unwrap()
    );

    let requested = r#"{"revision":"","image":"","reason":"rollback","requested_by":"alice"}"#;
    let r: DeployRequested = serde_json::from_str(requested).unwrap();
    assert_eq!(r.reason, DeployReason::Rollback);
    assert_eq!(serde_json::to_string(&r).unwrap(), requested);
    let pulled = r#"{"revision":"5","image":"r/shop:5@sha256:00","hosts":[{"host":"h1","millis":9,"outcome":"failed: no space left"}]}"#;
    let p: ImagePulled = serde_json::from_str(pulled).unwrap();
    assert_eq!(
        p.hosts[0].outcome,
        HostOutcome::Failed("no space left".into())
    );
    assert_eq!(serde_json::to_string(&p).unwrap(), pulled);
}
