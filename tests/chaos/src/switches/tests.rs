//! The detector on event sequences written by hand.

use super::*;

fn run(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// `(time, action, container, env, run)` rows as events.
fn events(rows: &[(i64, &str, &str, &str, u128)]) -> Vec<ContainerEvent> {
    rows.iter()
        .map(|&(time_ns, action, id, env, r)| ContainerEvent {
            time_ns,
            action: action.into(),
            id: id.into(),
            name: format!("app-{env}-{id}"),
            env: env.into(),
            run_id: Some(run(r)),
        })
        .collect()
}

/// Run `r` deploys container `c` in "staging" from `t`, retiring `prev` if any.
fn deploy(
    t: i64,
    c: &'static str,
    r: u128,
    prev: Option<(&'static str, u128)>,
) -> Vec<(i64, &'static str, &'static str, &'static str, u128)> {
    let mut rows = vec![
        (t, "create", c, "staging", r),
        (t + 1, "start", c, "staging", r),
    ];
    rows.push((t + 2, "health_status: healthy", c, "staging", r));
    if let Some((p, pr)) = prev {
        for (i, a) in ["kill", "die", "stop", "rename"].into_iter().enumerate() {
            rows.push((t + 3 + i as i64, a, p, "staging", pr));
        }
    }
    rows
}

#[test]
fn clean_sequence_of_deploys_has_no_overlap() {
    let mut rows = deploy(0, "a", 1, None);
    rows.extend(deploy(10, "b", 2, Some(("a", 1))));
    rows.extend(deploy(20, "c", 3, Some(("b", 2))));
    rows.push((30, "destroy", "a", "staging", 1));
    assert_eq!(concurrent_switches(&events(&rows)), vec![]);
}

#[test]
fn leftover_destroyed_before_the_next_create_is_no_overlap() {
    let mut rows = deploy(0, "a", 1, None);
    // Run 2 is SIGKILLed after starting its container; run 3 removes it first.
    rows.extend([
        (10, "create", "b", "staging", 2),
        (11, "start", "b", "staging", 2),
    ]);
    for (i, a) in ["kill", "die", "destroy"].into_iter().enumerate() {
        rows.push((20 + i as i64, a, "b", "staging", 2));
    }
    rows.extend(deploy(30, "c", 3, Some(("a", 1))));
    assert_eq!(concurrent_switches(&events(&rows)), vec![]);
}

#[test]
fn retried_run_creating_twice_is_one_span() {
    let mut rows = deploy(0, "a", 1, None);
    // Run 2 is SIGKILLed after its create; its redelivery creates again.
    rows.push((10, "create", "b1", "staging", 2));
    rows.extend(deploy(20, "b2", 2, Some(("a", 1))));
    rows.push((30, "destroy", "b1", "staging", 2));
    assert_eq!(concurrent_switches(&events(&rows)), vec![]);
}

#[test]
fn interleaved_creates_are_one_overlap() {
    let mut rows = deploy(0, "a", 1, None);
    rows.extend([
        (10, "create", "b", "staging", 2),
        (11, "create", "c", "staging", 3),
        (12, "start", "b", "staging", 2),
        (13, "start", "c", "staging", 3),
        (14, "kill", "a", "staging", 1),
        (15, "die", "a", "staging", 1),
        (16, "kill", "b", "staging", 2),
        (17, "die", "b", "staging", 2),
    ]);
    let expected = Overlap {
        env: "staging".into(),
        running: run(2),
        intruder: run(3),
        at_ns: 11,
        span_opened_ns: 10,
        container: "app-staging-c".into(),
    };
    assert_eq!(concurrent_switches(&events(&rows)), vec![expected]);
}

#[test]
fn environments_are_judged_apart() {
    let rows = [
        (0, "create", "s1", "staging", 1),
        (1, "create", "p1", "production", 2),
        (2, "start", "s1", "staging", 1),
        (3, "start", "p1", "production", 2),
        (10, "create", "s2", "staging", 3),
        (11, "create", "p2", "production", 4),
        (12, "start", "s2", "staging", 3),
        (13, "start", "p2", "production", 4),
        (14, "kill", "s1", "staging", 1),
        (15, "kill", "p1", "production", 2),
    ];
    assert_eq!(concurrent_switches(&events(&rows)), vec![]);
}

#[test]
fn predecessor_older_than_the_log_keeps_the_span_open() {
    // `a` was created before the window: its first event is its retire.
    let rows = [
        (10, "create", "b", "staging", 2),
        (11, "start", "b", "staging", 2),
        (12, "create", "c", "staging", 3),
        (13, "kill", "a", "staging", 1),
    ];
    let got = concurrent_switches(&events(&rows));
    assert_eq!(
        got.iter()
            .map(|o| (o.running, o.intruder))
            .collect::<Vec<_>>(),
        [(run(2), run(3))]
    );
}

#[test]
fn parses_docker_event_lines() {
    let line = |t: i64, action: &str, ty: &str, env: Option<&str>| {
        let mut attrs = serde_json::json!({
            "name": "app-b", "io.ferry.project": "p",
            "io.ferry.run-id": run(2).to_string(),
        });
        if let Some(env) = env {
            attrs["io.ferry.environment"] = env.into();
        }
        serde_json::json!({
            "status": action, "id": "cid", "Type": ty, "Action": action,
            "Actor": {"ID": "cid", "Attributes": attrs}, "scope": "local",
            "time": t / 1_000_000_000, "timeNano": t,
        })
        .to_string()
    };
    let text = [
        line(3_000_000_000, "start", "container", Some("staging")),
        line(2_000_000_000, "create", "container", Some("staging")),
        line(2_500_000_000, "connect", "network", Some("staging")),
        line(2_600_000_000, "create", "container", None),
    ]
    .join("\n");
    let parsed = parse_events(&text).unwrap();
    let got: Vec<_> = parsed
        .iter()
        .map(|e| (e.time_ns, e.action.as_str()))
        .collect();
    assert_eq!(got, [(2_000_000_000, "create"), (3_000_000_000, "start")]);
    assert_eq!(
        (parsed[0].id.as_str(), parsed[0].name.as_str()),
        ("cid", "app-b")
    );
    assert_eq!(
        (parsed[0].env.as_str(), parsed[0].run_id),
        ("staging", Some(run(2)))
    );
}
