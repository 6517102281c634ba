//! Real payloads from the forges' documentation and example collections (see
//! `fixtures/SOURCES.md`), parsed into the normalized trigger.

use ferry_hooks::sources::parse;
use ferry_hooks::trigger::{Parsed, Reference, Source};
use ferry_hooks::verify::hmac_sha256_hex;
use ferry_shared::secret::Secret;
use http::{HeaderMap, HeaderName, HeaderValue};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in pairs {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn secret(s: &str) -> Secret<String> {
    Secret::new(s.to_owned())
}

#[test]
fn gitlab_push_hook() {
    let body = fixture("gitlab-push.json");
    let h = headers(&[
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", "gitlab-token-1"),
        ("Idempotency-Key", "f00d"),
    ]);
    let Parsed::Push(p) =
        parse(Source::Gitlab, &h, &body, Some(&secret("gitlab-token-1"))).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.repository, vec!["mike/diaspora"]);
    assert!(
        p.repository_urls
            .contains(&"http://example.com/mike/diaspora.git".to_owned())
    );
    assert_eq!(p.reference, Some(Reference::Branch("master".into())));
    assert_eq!(p.revision, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_eq!(p.author.as_deref(), Some("jsmith"));
    assert_eq!(
        p.pusher.as_deref(),
        Some("jsmith"),
        "GitLab's user_username pushed"
    );
    assert_eq!(p.message.as_deref(), Some("fixed readme"));
    assert_eq!(
        p.changed_paths,
        vec!["CHANGELOG", "app/controller/application.rb"]
    );
    // total_commits_count is 4 but two commits are listed: path filters must not trust the list.
    assert!(!p.paths_complete);
    assert_eq!(p.delivery_id.as_deref(), Some("f00d"));
    assert_eq!(p.default_branch.as_deref(), Some("master"));
}

#[test]
fn gitlab_tag_push_hook() {
    let body = fixture("gitlab-tag-push.json");
    let h = headers(&[
        ("X-Gitlab-Event", "Tag Push Hook"),
        ("X-Gitlab-Event-UUID", "u-1"),
    ]);
    let Parsed::Push(p) = parse(Source::Gitlab, &h, &body, None).unwrap() else {
        panic!()
    };
    assert_eq!(p.repository, vec!["jsmith/example"]);
    assert_eq!(p.reference, Some(Reference::Tag("v1.0.0".into())));
    assert_eq!(p.revision, "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7");
    assert_eq!(p.delivery_id.as_deref(), Some("u-1"));
}

#[test]
fn gitlab_wrong_token_is_refused_before_parsing() {
    let h = headers(&[
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", "nope-nope"),
    ]);
    let err = parse(
        Source::Gitlab,
        &h,
        b"not even json",
        Some(&secret("gitlab-token-1")),
    )
    .unwrap_err();
    assert_eq!(err.status, 401);
}

#[test]
fn github_push_signed_with_the_webhook_secret() {
    let body = fixture("github-push.json");
    let sig = format!("sha256={}", hmac_sha256_hex("gh-secret-123", &body));
    let h = headers(&[
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "d-42"),
        ("X-Hub-Signature-256", &sig),
    ]);
    let Parsed::Push(p) = parse(Source::Github, &h, &body, Some(&secret("gh-secret-123"))).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.repository, vec!["Codertocat/Hello-World"]);
    assert_eq!(p.reference, Some(Reference::Branch("master".into())));
    assert_eq!(p.revision, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_eq!(p.author.as_deref(), Some("Codertocat"));
    assert_eq!(
        p.author_email.as_deref(),
        Some("21031067+Codertocat@users.noreply.github.com")
    );
    assert_eq!(p.message.as_deref(), Some("Initial commit"));
    assert_eq!(p.changed_paths, vec!["README.md"]);
    assert!(p.paths_complete);
    assert_eq!(p.delivery_id.as_deref(), Some("d-42"));
    // The account GitHub authenticated (`sender.login`), not the commit's author.
    assert_eq!(p.pusher.as_deref(), Some("Codertocat"));

    // One byte changed: the signature no longer matches.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        parse(
            Source::Github,
            &h,
            &tampered,
            Some(&secret("gh-secret-123"))
        )
        .unwrap_err()
        .status,
        401
    );
}

#[test]
fn github_deleted_ref_and_ping_are_ignored_not_errors() {
    let body = fixture("github-push-delete.json");
    let h = headers(&[("X-GitHub-Event", "push")]);
    assert!(matches!(
        parse(Source::Github, &h, &body, None).unwrap(),
        Parsed::Ignored { .. }
    ));
    let ping = fixture("github-ping.json");
    let h = headers(&[("X-GitHub-Event", "ping")]);
    assert!(matches!(
        parse(Source::Github, &h, &ping, None).unwrap(),
        Parsed::Ignored { .. }
    ));
}

#[test]
fn gitea_push_signed_with_the_webhook_secret() {
    let body = fixture("gitea-push.json");
    let sig = hmac_sha256_hex("gitea-secret-1", &body);
    let h = headers(&[
        ("X-Gitea-Event", "push"),
        ("X-Gitea-Delivery", "g-7"),
        ("X-Gitea-Signature", &sig),
    ]);
    let Parsed::Push(p) = parse(Source::Gitea, &h, &body, Some(&secret("gitea-secret-1"))).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.repository, vec!["gitea/webhooks"]);
    assert_eq!(p.reference, Some(Reference::Branch("develop".into())));
    assert_eq!(p.revision, "bffeb74224043ba2feb48d137756c8a9331c449a");
    assert_eq!(p.author.as_deref(), Some("gitea"));
    assert_eq!(p.pusher.as_deref(), Some("gitea"), "Gitea's sender pushed");
    assert_eq!(p.message.as_deref(), Some("Webhooks Yay!"));
    // This (older) Gitea example lists no changed paths at all: unknown, not "none".
    assert!(p.changed_paths.is_empty());
    assert!(!p.paths_complete);
}

#[test]
fn harbor_push_artifact() {
    let body = fixture("harbor-push-artifact.json");
    let h = headers(&[("Authorization", "Basic aGFyYm9yOmhvb2s=")]);
    let Parsed::Image(i) = parse(
        Source::Harbor,
        &h,
        &body,
        Some(&secret("Basic aGFyYm9yOmhvb2s=")),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(i.repository, "test-webhook/debian");
    assert_eq!(i.image, "hub.harbor.com/test-webhook/debian");
    assert_eq!(i.tag, "latest");
    assert_eq!(
        i.digest,
        "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
    );
    assert_eq!(
        parse(
            Source::Harbor,
            &headers(&[]),
            &body,
            Some(&secret("Basic aGFyYm9yOmhvb2s="))
        )
        .unwrap_err()
        .status,
        401
    );
}
