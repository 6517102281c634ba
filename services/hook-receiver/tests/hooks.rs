//! The webhook endpoints over real HTTP against the real RabbitMQ: what is accepted
//! starts runs (202 only after the confirm), everything else publishes nothing.

mod common;

use common::*;
use ferry_shared::event::Event;
use ferry_testkit::{PrivateBroker, Tap, amqp_url, unique_namespace};
use std::time::{Duration, Instant};

const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn setup() -> (Receiver, Tap) {
    let ns = unique_namespace();
    let cfg = config(&amqp_url(), &ns, "svn://127.0.0.1/repo", "");
    // A tap bound to everything stands in for the stages' queues (publishes are mandatory).
    let tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    (start(cfg).await, tap)
}

#[tokio::test]
async fn gitlab_push_starts_one_run_and_a_redelivery_starts_none() {
    let (rx, mut tap) = setup().await;
    let body = fixture("gitlab-push.json");
    let headers = [
        JSON,
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", GITLAB_TOKEN),
        ("Idempotency-Key", "k-1"),
    ];
    let (status, reply) = rx.post("gitlab", &headers, &body).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["projects"], serde_json::json!(["shop"]));
    let event = tap
        .expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply["run_ids"][0], event.run_id.to_string());
    assert_eq!(event.project, "shop");
    let Event::SourceChanged(s) = &event.event else {
        panic!()
    };
    assert_eq!(
        (s.source.as_str(), s.revision.as_str()),
        ("gitlab", "da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
    );
    assert_eq!(s.reference.as_deref(), Some("master"));
    assert_eq!(s.author.as_deref(), Some("jsmith"));
    // The head commit's own time, where lead time for changes starts.
    assert_eq!(
        s.committed.map(|t| t.to_rfc3339()),
        Some("2012-01-03T21:36:29+00:00".to_owned())
    );

    let (status, again) = rx.post("gitlab", &headers, &body).await;
    assert_eq!(status, 202);
    assert_eq!(again["run_ids"], reply["run_ids"]);
    assert_eq!(again["duplicate"], true);
    assert!(
        tap.drain(Duration::from_millis(300)).await.is_empty(),
        "the redelivery published again"
    );
    rx.stop().await;
}

#[tokio::test]
async fn a_push_to_an_unfollowed_branch_is_ignored_with_a_reason() {
    let (rx, mut tap) = setup().await;
    let body = String::from_utf8(fixture("gitlab-push.json"))
        .unwrap()
        .replace("refs/heads/master", "refs/heads/feature-x");
    let (status, reply) = rx
        .post(
            "gitlab",
            &[
                JSON,
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Token", GITLAB_TOKEN),
            ],
            body.as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        reply["ignored"].as_str().unwrap().contains("feature-x"),
        "{reply}"
    );
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn one_github_push_starts_every_project_whose_filters_match() {
    let (rx, mut tap) = setup().await;
    let body = fixture("github-push.json");
    let sig = github_signature(&body);
    let (status, reply) = rx
        .post(
            "github",
            &[
                JSON,
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "d-1"),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    // README.md changed: `hello` (no filter) and `hello-docs` run, `hello-src` (src/) does not.
    let mut projects: Vec<String> = tap
        .drain(Duration::from_millis(500))
        .await
        .into_iter()
        .map(|e| e.project)
        .collect();
    projects.sort();
    assert_eq!(projects, vec!["hello", "hello-docs"]);
    rx.stop().await;
}

#[tokio::test]
async fn gitea_push_and_harbor_image_start_their_runs() {
    let (rx, mut tap) = setup().await;
    let body = fixture("gitea-push.json");
    let sig = ferry_hooks::verify::hmac_sha256_hex(GITEA_SECRET, &body);
    let (status, reply) = rx
        .post(
            "gitea",
            &[JSON, ("X-Gitea-Event", "push"), ("X-Gitea-Signature", &sig)],
            &body,
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let e = tap
        .expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e.project, "webhooks");

    let body = fixture("harbor-push-artifact.json");
    let (status, reply) = rx
        .post("harbor", &[JSON, ("Authorization", HARBOR_AUTH)], &body)
        .await;
    assert_eq!(status, 202, "{reply}");
    // Built elsewhere: the run starts at "image pushed", by digest.
    let e = tap
        .expect("image.pushed", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e.project, "debian");
    let Event::ImagePushed(p) = &e.event else {
        panic!()
    };
    assert_eq!(
        p.image,
        "hub.harbor.com/test-webhook/debian:latest@sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
    );
    rx.stop().await;
}

/// A Harbor hook decides which image is deployed, and the puller pulls it with
/// Ferry's registry credentials: only an image on `registry.address` whose repository
/// is a project's `image` may start a run. Everything else is ignored with a reason
/// and publishes nothing.
#[tokio::test]
async fn a_harbor_push_naming_another_registry_starts_nothing() {
    let (rx, mut tap) = setup().await;
    let harbor = String::from_utf8(fixture("harbor-push-artifact.json")).unwrap();
    let ours = "hub.harbor.com/test-webhook/debian:latest";
    for (resource_url, why) in [
        (
            "attacker.example/test-webhook/debian:latest",
            "attacker.example",
        ),
        (
            "hub.harbor.com.attacker.example/test-webhook/debian:latest",
            "attacker.example",
        ),
        (
            "hub.harbor.com:5000/test-webhook/debian:latest",
            "hub.harbor.com:5000",
        ),
        // No host: Docker Hub's, as the engine would pull it.
        ("test-webhook/debian:latest", "docker.io"),
        // Our registry, but not the repository the payload claims.
        ("hub.harbor.com/attacker/evil:latest", "attacker/evil"),
    ] {
        let body = harbor.replace(ours, resource_url);
        let (status, reply) = rx
            .post(
                "harbor",
                &[JSON, ("Authorization", HARBOR_AUTH)],
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 200, "{resource_url}: {reply}");
        let ignored = reply["ignored"].as_str().unwrap_or_default();
        assert!(ignored.contains(why), "{resource_url}: {reply}");
    }
    // A reference that is not one (an option, a URL) is refused outright.
    for resource_url in ["--help", "http://hub.harbor.com/test-webhook/debian:latest"] {
        let body = harbor.replace(ours, resource_url);
        let (status, reply) = rx
            .post(
                "harbor",
                &[JSON, ("Authorization", HARBOR_AUTH)],
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, 400, "{resource_url}: {reply}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    assert!(
        tap.drain(Duration::from_millis(500)).await.is_empty(),
        "a foreign image started a run"
    );
    rx.stop().await;
}

#[tokio::test]
async fn github_ping_gets_200() {
    let (rx, mut tap) = setup().await;
    let body = fixture("github-ping.json");
    let sig = github_signature(&body);
    let (status, reply) = rx
        .post(
            "github",
            &[
                JSON,
                ("X-GitHub-Event", "ping"),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(tap.drain(Duration::from_millis(200)).await.is_empty());
    rx.stop().await;
}

/// Every request here is refused with a JSON reason, and none publishes anything.
#[tokio::test]
async fn bad_input_gets_a_clear_error_and_publishes_nothing() {
    let (rx, mut tap) = setup().await;
    let gitlab = fixture("gitlab-push.json");
    let github = fixture("github-push.json");
    let gitea = fixture("gitea-push.json");
    let harbor = fixture("harbor-push-artifact.json");
    let gl = |extra: &[(&'static str, &'static str)]| {
        let mut h = vec![
            JSON,
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ];
        h.extend_from_slice(extra);
        h
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let signed = |b: &[u8]| github_signature(b);
    let gh_body_no_repo = text(&github).replace("\"repository\"", "\"repositoryX\"");
    let gh_short_after =
        text(&github).replace("6113728f27ae82c7b1a177c8d03f9e96e0adf246", "6113728f");
    let gh_bad_json = b"{\"ref\": \"refs/heads/master\", ".to_vec();
    let big = vec![b' '; 70_000];
    let harbor_no_data = text(&harbor).replace("\"event_data\"", "\"event_dataX\"");
    let harbor_bad_digest = text(&harbor).replace("sha256:8a9e", "md5:8a9e");
    let harbor_no_resources = br#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[],"repository":{"repo_full_name":"test-webhook/debian"}}}"#.to_vec();
    let gitlab_no_project = text(&gitlab).replace("\"project\"", "\"projectX\"");
    let gitlab_no_ref = text(&gitlab).replace("\"ref\"", "\"refX\"");
    let gitlab_bad_after =
        text(&gitlab).replace("da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "not-a-sha");
    let svn = |rev: &str| {
        format!(
            r#"{{"repository_url":"svn://127.0.0.1/repo","revision":{rev},"author":"alice","changed_paths":["/trunk/shop/a"]}}"#
        )
    };
    let bearer_svn = format!("Bearer {SVN_TOKEN}");
    let bearer_manual = format!("Bearer {MANUAL_TOKEN}");

    // (name, source, headers, body, expected status)
    type Case<'a> = (&'a str, &'a str, Vec<(String, String)>, Vec<u8>, u16);
    let mut cases: Vec<Case<'_>> = Vec::new();
    let own = |h: Vec<(&str, &str)>| {
        h.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    let sig_of = |b: &[u8]| signed(b);
    // GitLab
    cases.push((
        "gitlab: no token",
        "gitlab",
        own(vec![JSON, ("X-Gitlab-Event", "Push Hook")]),
        gitlab.clone(),
        401,
    ));
    cases.push((
        "gitlab: wrong token",
        "gitlab",
        own(vec![
            JSON,
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "gitlab-token-2"),
        ]),
        gitlab.clone(),
        401,
    ));
    cases.push((
        "gitlab: a right and a wrong token",
        "gitlab",
        own(gl(&[("X-Gitlab-Token", "gitlab-token-2")])),
        gitlab.clone(),
        401,
    ));
    cases.push((
        "gitlab: token in other case",
        "gitlab",
        own(vec![
            JSON,
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "GITLAB-TOKEN-1"),
        ]),
        gitlab.clone(),
        401,
    ));
    cases.push((
        "gitlab: no event header",
        "gitlab",
        own(vec![JSON, ("X-Gitlab-Token", GITLAB_TOKEN)]),
        gitlab.clone(),
        400,
    ));
    cases.push((
        "gitlab: malformed JSON",
        "gitlab",
        own(gl(&[])),
        b"{\"object_kind\": \"push\",".to_vec(),
        400,
    ));
    cases.push((
        "gitlab: no project",
        "gitlab",
        own(gl(&[])),
        gitlab_no_project.into_bytes(),
        400,
    ));
    cases.push((
        "gitlab: no ref",
        "gitlab",
        own(gl(&[])),
        gitlab_no_ref.into_bytes(),
        400,
    ));
    cases.push((
        "gitlab: revision not a sha",
        "gitlab",
        own(gl(&[])),
        gitlab_bad_after.into_bytes(),
        400,
    ));
    cases.push((
        "gitlab: text/plain",
        "gitlab",
        own(vec![
            ("Content-Type", "text/plain"),
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ]),
        gitlab.clone(),
        415,
    ));
    cases.push((
        "gitlab: no content type",
        "gitlab",
        own(vec![
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ]),
        gitlab.clone(),
        415,
    ));
    cases.push((
        "gitlab: body over the limit",
        "gitlab",
        own(gl(&[])),
        big.clone(),
        413,
    ));
    cases.push(("gitlab: empty body", "gitlab", own(gl(&[])), vec![], 400));
    cases.push((
        "gitlab: a JSON array",
        "gitlab",
        own(gl(&[])),
        b"[1,2,3]".to_vec(),
        400,
    ));
    // GitHub
    let gh_sig = sig_of(&github);
    cases.push((
        "github: no signature",
        "github",
        own(vec![JSON, ("X-GitHub-Event", "push")]),
        github.clone(),
        401,
    ));
    cases.push((
        "github: signature without prefix",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", gh_sig.trim_start_matches("sha256=")),
        ]),
        github.clone(),
        401,
    ));
    cases.push((
        "github: signature of another body",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig_of(b"{}")),
        ]),
        github.clone(),
        401,
    ));
    let wrong_key = format!(
        "sha256={}",
        ferry_hooks::verify::hmac_sha256_hex("another-secret", &github)
    );
    cases.push((
        "github: signed with another secret",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &wrong_key),
        ]),
        github.clone(),
        401,
    ));
    cases.push((
        "github: signature not hex",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", "sha256=zzzz"),
        ]),
        github.clone(),
        401,
    ));
    cases.push((
        "github: sha1 signature only",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            (
                "X-Hub-Signature",
                "sha1=0123456789abcdef0123456789abcdef01234567",
            ),
        ]),
        github.clone(),
        401,
    ));
    cases.push((
        "github: no event header",
        "github",
        own(vec![JSON, ("X-Hub-Signature-256", &gh_sig)]),
        github.clone(),
        400,
    ));
    cases.push((
        "github: malformed JSON",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig_of(&gh_bad_json)),
        ]),
        gh_bad_json.clone(),
        400,
    ));
    cases.push((
        "github: no repository",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig_of(gh_body_no_repo.as_bytes())),
        ]),
        gh_body_no_repo.clone().into_bytes(),
        400,
    ));
    cases.push((
        "github: short revision",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig_of(gh_short_after.as_bytes())),
        ]),
        gh_short_after.clone().into_bytes(),
        400,
    ));
    cases.push((
        "github: form encoded",
        "github",
        own(vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &gh_sig),
        ]),
        github.clone(),
        415,
    ));
    cases.push((
        "github: binary body",
        "github",
        own(vec![
            JSON,
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &sig_of(&[0xff, 0xfe, 0x00])),
        ]),
        vec![0xff, 0xfe, 0x00],
        400,
    ));
    // Gitea
    let gt_sig = ferry_hooks::verify::hmac_sha256_hex(GITEA_SECRET, &gitea);
    cases.push((
        "gitea: no signature",
        "gitea",
        own(vec![JSON, ("X-Gitea-Event", "push")]),
        gitea.clone(),
        401,
    ));
    cases.push((
        "gitea: wrong signature",
        "gitea",
        own(vec![
            JSON,
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &"0".repeat(64)),
        ]),
        gitea.clone(),
        401,
    ));
    cases.push((
        "gitea: no event header",
        "gitea",
        own(vec![JSON, ("X-Gitea-Signature", &gt_sig)]),
        gitea.clone(),
        400,
    ));
    let truncated = gitea[..gitea.len() / 2].to_vec();
    let tr_sig = ferry_hooks::verify::hmac_sha256_hex(GITEA_SECRET, &truncated);
    cases.push((
        "gitea: truncated JSON",
        "gitea",
        own(vec![
            JSON,
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &tr_sig),
        ]),
        truncated,
        400,
    ));
    // SVN
    cases.push((
        "svn: no token",
        "svn",
        own(vec![JSON]),
        svn("5").into_bytes(),
        401,
    ));
    cases.push((
        "svn: wrong token",
        "svn",
        own(vec![JSON, ("Authorization", "Bearer svn-token-999")]),
        svn("5").into_bytes(),
        401,
    ));
    cases.push((
        "svn: basic auth instead of bearer",
        "svn",
        own(vec![JSON, ("Authorization", "Basic c3ZuOnN2bg==")]),
        svn("5").into_bytes(),
        401,
    ));
    cases.push((
        "svn: revision 0",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        svn("0").into_bytes(),
        400,
    ));
    cases.push((
        "svn: empty revision",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        svn("\"\"").into_bytes(),
        400,
    ));
    cases.push((
        "svn: revision not a number",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        svn("\"HEAD\"").into_bytes(),
        400,
    ));
    cases.push((
        "svn: negative revision",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        svn("-5").into_bytes(),
        400,
    ));
    cases.push((
        "svn: no repository",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        br#"{"revision":5}"#.to_vec(),
        400,
    ));
    cases.push((
        "svn: unknown field",
        "svn",
        own(vec![JSON, ("Authorization", &bearer_svn)]),
        br#"{"repository_url":"svn://x","revision":5,"rev":5}"#.to_vec(),
        400,
    ));
    // Harbor
    cases.push((
        "harbor: no auth",
        "harbor",
        own(vec![JSON]),
        harbor.clone(),
        401,
    ));
    cases.push((
        "harbor: no event data",
        "harbor",
        own(vec![JSON, ("Authorization", HARBOR_AUTH)]),
        harbor_no_data.into_bytes(),
        400,
    ));
    cases.push((
        "harbor: digest not sha256",
        "harbor",
        own(vec![JSON, ("Authorization", HARBOR_AUTH)]),
        harbor_bad_digest.into_bytes(),
        400,
    ));
    cases.push((
        "harbor: no resources",
        "harbor",
        own(vec![JSON, ("Authorization", HARBOR_AUTH)]),
        harbor_no_resources,
        400,
    ));
    // Manual and the rest
    cases.push((
        "manual: no token",
        "manual",
        own(vec![JSON]),
        br#"{"project":"shop","revision":"1"}"#.to_vec(),
        401,
    ));
    cases.push((
        "manual: empty revision",
        "manual",
        own(vec![JSON, ("Authorization", &bearer_manual)]),
        br#"{"project":"shop","revision":" "}"#.to_vec(),
        400,
    ));
    cases.push((
        "manual: missing revision",
        "manual",
        own(vec![JSON, ("Authorization", &bearer_manual)]),
        br#"{"project":"shop"}"#.to_vec(),
        400,
    ));
    cases.push((
        "unknown source",
        "bitbucket",
        own(vec![JSON]),
        b"{}".to_vec(),
        404,
    ));

    assert!(cases.len() >= 30);
    let mut failures = Vec::new();
    for (name, source, headers, body, expected) in &cases {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, reply) = rx.post(source, &h, body).await;
        if status != *expected || !reply["error"].is_string() {
            failures.push(format!(
                "{name}: got {status} {reply}, expected {expected} with a JSON error"
            ));
        }
        let leaked = tap.drain(Duration::from_millis(100)).await;
        if !leaked.is_empty() {
            failures.push(format!(
                "{name}: published {:?}",
                leaked.iter().map(|e| e.routing_key()).collect::<Vec<_>>()
            ));
        }
    }
    let (status, _) = ferry_testkit::http_request(rx.addr, "GET", "/hooks/github", &[], b"")
        .await
        .unwrap();
    assert_eq!(status, 405, "GET on a hook endpoint");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    rx.stop().await;
}

#[tokio::test]
async fn broker_down_gives_503_and_back_gives_202_without_a_restart() {
    let broker = PrivateBroker::start().unwrap();
    let ns = unique_namespace();
    let cfg = config(&broker.url(), &ns, "svn://127.0.0.1/repo", "");
    let rx = start(cfg).await;
    let body = br#"{"project":"svnshop","revision":"7"}"#;
    let headers = [JSON, ("Authorization", "Bearer manual-token-1")];
    {
        let _tap = Tap::new(&broker.url(), &ns, "#").await.unwrap();
        assert_eq!(rx.post("manual", &headers, body).await.0, 202);
    }
    broker.stop().unwrap();
    let t = Instant::now();
    let (status, reply) = rx.post("manual", &headers, body).await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "503 took {:?}",
        t.elapsed()
    );

    broker.restart().unwrap();
    let mut tap = Tap::new(&broker.url(), &ns, "#").await.unwrap();
    let back = ferry_testkit::wait_until(Duration::from_secs(15), || async {
        rx.post("manual", &headers, body).await.0 == 202
    })
    .await;
    assert!(
        back,
        "the receiver did not accept hooks again after the broker came back"
    );
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    rx.stop().await;
}
