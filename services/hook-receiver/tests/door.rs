//! The front door under hostile clients, over real TCP against the real RabbitMQ:
//! slow headers and bodies are cut, wrong tokens are refused before the body is read,
//! the connection cap holds, failed authentications are limited per address, repeats
//! publish once, delivery ids and messages are bounded, and TLS and the operator API's
//! own port work. Every case also checks that nothing was published that should not be.
//!
//! The deadlines below (`SAFETY`) only keep a failing test from hanging: nothing here
//! asserts how fast anything is.

mod common;

use common::*;
use ferry_shared::event::Event;
use ferry_testkit::{Tap, amqp_url, unique_namespace};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const JSON: (&str, &str) = ("Content-Type", "application/json");
const SAFETY: Duration = Duration::from_secs(30);

/// The test configuration with `hooks` lines added to its `[hooks]` table.
fn door_config(ns: &str, hooks: &str, extra: &str) -> String {
    config_text(&amqp_url(), ns, "svn://127.0.0.1/repo", extra)
        .replace("[hooks]\n", &format!("[hooks]\n{hooks}\n"))
}

async fn setup(hooks: &str) -> (Receiver, Tap) {
    let ns = unique_namespace();
    let tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    (start(parse(&door_config(&ns, hooks, ""))).await, tap)
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: serde_json::Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 response from `stream`.
async fn read_reply(stream: &mut BufReader<TcpStream>) -> Reply {
    let read = async {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {line:?}"))
            .parse()
            .unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            stream.read_line(&mut line).await.unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.unwrap();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        }
    };
    tokio::time::timeout(SAFETY, read)
        .await
        .expect("no answer: the receiver is still waiting for this client")
}

/// Whether the server closes `stream` (reads end, or the connection is reset).
async fn closed_by_server(stream: &mut BufReader<TcpStream>) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(SAFETY, stream.read_to_end(&mut sink))
        .await
        .is_ok()
}

async fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(addr).await.unwrap())
}

fn head(source: &str, headers: &[(&str, &str)], length: usize) -> String {
    let mut h =
        format!("POST /hooks/{source} HTTP/1.1\r\nHost: ferry\r\nContent-Length: {length}\r\n");
    for (k, v) in headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h + "\r\n"
}

fn gitlab_headers(key: &str) -> Vec<(&'static str, String)> {
    vec![
        JSON,
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Token", GITLAB_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .chain([("Idempotency-Key", key.to_owned())])
    .collect()
}

fn borrowed<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_and_publish_nothing() {
    let (rx, mut tap) = setup("header_timeout_secs = 1\nbody_timeout_secs = 1").await;

    // Headers a byte at a time, never finished: the connection is closed.
    let mut slow = connect(rx.addr).await;
    for b in b"POST /hooks/gitlab HTTP/1.1\r\nHo" {
        slow.get_mut().write_all(&[*b]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        closed_by_server(&mut slow).await,
        "a client that never finishes its headers holds its connection"
    );

    // An authenticated hook whose body never finishes: 408 with a reason, then closed.
    let body = fixture("gitlab-push.json");
    let headers = gitlab_headers("slow-body");
    let mut slow = connect(rx.addr).await;
    let h = head("gitlab", &borrowed(&headers), body.len());
    slow.get_mut().write_all(h.as_bytes()).await.unwrap();
    slow.get_mut().write_all(&body[..100]).await.unwrap();
    let reply = read_reply(&mut slow).await;
    assert_eq!(reply.status, 408, "{}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("body_timeout_secs"),
        "{}",
        reply.body
    );
    assert!(closed_by_server(&mut slow).await);
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn a_request_that_cannot_authenticate_is_refused_before_its_body_is_read() {
    let (rx, mut tap) = setup("").await;
    let bearer = |t: &str| format!("Bearer {t}");
    let wrong = "wrong-token-1234".to_owned();
    // (source, headers): each declares a body within the limit and never sends it.
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "manual",
            vec![JSON_OWNED(), ("Authorization", bearer(&wrong))],
        ),
        ("manual", vec![JSON_OWNED()]),
        ("svn", vec![JSON_OWNED(), ("Authorization", bearer(&wrong))]),
        (
            "gitlab",
            vec![
                JSON_OWNED(),
                ("X-Gitlab-Event", "Push Hook".into()),
                ("X-Gitlab-Token", wrong.clone()),
            ],
        ),
        (
            "harbor",
            vec![JSON_OWNED(), ("Authorization", wrong.clone())],
        ),
        (
            "github",
            vec![JSON_OWNED(), ("X-GitHub-Event", "push".into())],
        ),
        (
            "github",
            vec![
                JSON_OWNED(),
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", "sha256=zz".into()),
            ],
        ),
        (
            "gitea",
            vec![JSON_OWNED(), ("X-Gitea-Event", "push".into())],
        ),
    ];
    for (source, headers) in &cases {
        let mut c = connect(rx.addr).await;
        let h = head(source, &borrowed(headers), 60_000);
        c.get_mut().write_all(h.as_bytes()).await.unwrap();
        let reply = read_reply(&mut c).await;
        assert_eq!(reply.status, 401, "{source} {headers:?}: {}", reply.body);
        assert!(reply.body["error"].is_string(), "{}", reply.body);
    }
    // A huge declared body with a wrong token: 401 (not 413: the token comes first).
    let mut c = connect(rx.addr).await;
    let h = head(
        "manual",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer nope-nope-nope"),
        ],
        1 << 30,
    );
    c.get_mut().write_all(h.as_bytes()).await.unwrap();
    assert_eq!(read_reply(&mut c).await.status, 401);
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}

#[allow(non_snake_case)]
fn JSON_OWNED() -> (&'static str, String) {
    (JSON.0, JSON.1.to_owned())
}

#[tokio::test]
async fn the_connection_cap_holds_and_a_real_hook_gets_through_once_slow_ones_are_cut() {
    let (rx, mut tap) = setup("max_connections = 3\nheader_timeout_secs = 3").await;
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut c = connect(rx.addr).await;
        c.get_mut()
            .write_all(b"POST /hooks/gitlab HTTP/1.1\r\nHo")
            .await
            .unwrap();
        slow.push(c);
    }
    // Over the cap: answered 503 with a reason, not queued.
    let body = fixture("gitlab-push.json");
    let headers = gitlab_headers("over-the-cap");
    let mut over = connect(rx.addr).await;
    let h = head("gitlab", &borrowed(&headers), body.len());
    over.get_mut().write_all(h.as_bytes()).await.unwrap();
    over.get_mut().write_all(&body).await.unwrap();
    let reply = read_reply(&mut over).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("max_connections")
    );
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());

    for c in &mut slow {
        assert!(closed_by_server(c).await, "a slow connection was not cut");
    }
    // Their places are free again (a permit returns just after its socket closes).
    let headers = gitlab_headers("after-the-slow-ones");
    let mut accepted = false;
    for _ in 0..50 {
        let (status, _) = rx.post("gitlab", &borrowed(&headers), &body).await;
        if status == 202 {
            accepted = true;
            break;
        }
        assert_eq!(status, 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the real hook never got through");
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    rx.stop().await;
}

/// A connection from `from` (any 127.0.0.0/8 address works on Linux's loopback).
async fn connect_from(from: &str, addr: SocketAddr) -> BufReader<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    BufReader::new(socket.connect(addr).await.unwrap())
}

#[tokio::test]
async fn one_address_cannot_take_every_place_and_another_address_is_still_served() {
    let (rx, mut tap) = setup("max_connections_per_address = 3\nheader_timeout_secs = 60").await;
    // One host holds its three places with headers that never finish...
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from("127.0.0.1", rx.addr).await;
        c.get_mut()
            .write_all(b"POST /hooks/gitlab HTTP/1.1\r\nHo")
            .await
            .unwrap();
        slow.push(c);
    }
    // ...and its next connection, a real hook even, is refused with a reason.
    let body = fixture("gitlab-push.json");
    let headers = gitlab_headers("fourth-from-one-address");
    let h = head("gitlab", &borrowed(&headers), body.len());
    let mut over = connect_from("127.0.0.1", rx.addr).await;
    over.get_mut().write_all(h.as_bytes()).await.unwrap();
    over.get_mut().write_all(&body).await.unwrap();
    let reply = read_reply(&mut over).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("max_connections_per_address"),
        "{}",
        reply.body
    );
    assert!(closed_by_server(&mut over).await);
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());

    // Another address is served while the first still holds its places.
    let headers = gitlab_headers("from-another-address");
    let h = head("gitlab", &borrowed(&headers), body.len());
    let mut other = connect_from("127.0.0.2", rx.addr).await;
    other.get_mut().write_all(h.as_bytes()).await.unwrap();
    other.get_mut().write_all(&body).await.unwrap();
    let reply = read_reply(&mut other).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());

    // A place given back is a place again.
    drop(slow.pop());
    let headers = gitlab_headers("after-one-closed");
    let mut accepted = false;
    for _ in 0..50 {
        let mut c = connect_from("127.0.0.1", rx.addr).await;
        let h = head("gitlab", &borrowed(&headers), body.len());
        c.get_mut().write_all(h.as_bytes()).await.unwrap();
        c.get_mut().write_all(&body).await.unwrap();
        let reply = read_reply(&mut c).await;
        if reply.status == 202 {
            accepted = true;
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "a closed connection's place never came back");
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    drop(slow);
    rx.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_failed_authentications_count_per_forwarded_client() {
    let (rx, mut tap) = setup(
        "auth_failures_per_minute = 2\nmax_connections_per_address = 1\n\
         header_timeout_secs = 60\ntrusted_proxies = [\"127.0.0.1\"]",
    )
    .await;
    let body = br#"{"project":"svnshop","revision":"7"}"#;
    let right = format!("Bearer {MANUAL_TOKEN}");
    let send = |xff: &'static str, auth: String| {
        let addr = rx.addr;
        async move {
            let mut c = connect_from("127.0.0.1", addr).await;
            let h = head(
                "manual",
                &[JSON, ("Authorization", &auth), ("X-Forwarded-For", xff)],
                body.len(),
            );
            c.get_mut().write_all(h.as_bytes()).await.unwrap();
            c.get_mut().write_all(body).await.unwrap();
            read_reply(&mut c).await
        }
    };
    // The proxy holds a slow connection: it is not capped per address (cap 1 here).
    let mut held = connect_from("127.0.0.1", rx.addr).await;
    held.get_mut()
        .write_all(b"POST /hooks/manual HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // One client behind the proxy guesses, also spoofing a left-hand address...
    for xff in ["198.51.100.7", "6.6.6.6, 198.51.100.7"] {
        let reply = send(xff, "Bearer guess-guess-guess".into()).await;
        assert_eq!(reply.status, 401, "{xff}: {}", reply.body);
    }
    // ...and is blocked whatever it writes on the left, the right token included...
    let reply = send("1.2.3.4, 198.51.100.7", right.clone()).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    // ...while another client behind the same proxy is served.
    let reply = send("198.51.100.8", right.clone()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    // A peer that is not a trusted proxy cannot choose its address.
    for i in 0..3 {
        let mut c = connect_from("127.0.0.2", rx.addr).await;
        let h = head(
            "manual",
            &[
                JSON,
                ("Authorization", "Bearer guess-guess-guess"),
                (
                    "X-Forwarded-For",
                    if i == 0 { "10.0.0.1" } else { "10.0.0.2" },
                ),
            ],
            body.len(),
        );
        c.get_mut().write_all(h.as_bytes()).await.unwrap();
        c.get_mut().write_all(body).await.unwrap();
        let reply = read_reply(&mut c).await;
        assert_eq!(
            reply.status,
            if i < 2 { 401 } else { 429 },
            "{}",
            reply.body
        );
    }
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    drop(held);
    rx.stop().await;
}

#[test]
fn a_per_address_cap_above_the_global_cap_or_a_bad_proxy_is_refused_at_start_up() {
    let text = door_config(
        "cap",
        "max_connections = 10\nmax_connections_per_address = 11",
        "",
    );
    let err = ferry_shared::config::FerryConfig::from_toml_with_env(
        &text,
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("hooks.max_connections_per_address"), "{err}");
    let text = door_config(
        "cap",
        "trusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]",
        "",
    );
    let err = ferry_shared::config::FerryConfig::from_toml_with_env(
        &text,
        std::path::Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("hooks.trusted_proxies") && err.contains("proxy.local"),
        "{err}"
    );
}

#[tokio::test]
async fn repeated_failed_authentication_blocks_the_address_even_with_the_right_token() {
    let (rx, mut tap) = setup("auth_failures_per_minute = 3").await;
    let body = br#"{"project":"shop","revision":"7"}"#;
    let wrong = [JSON, ("Authorization", "Bearer guess-guess-guess")];
    for i in 0..3 {
        let (status, reply) = rx.post("manual", &wrong, body).await;
        assert_eq!(status, 401, "failure {i}: {reply}");
    }
    let mut c = connect(rx.addr).await;
    let h = head("manual", &wrong, body.len());
    c.get_mut().write_all(h.as_bytes()).await.unwrap();
    c.get_mut().write_all(body).await.unwrap();
    let reply = read_reply(&mut c).await;
    assert_eq!(reply.status, 429, "{}", reply.body);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(
        reply.body["error"]
            .as_str()
            .unwrap()
            .contains("auth_failures_per_minute")
    );

    // Blocked means blocked: the right token is refused too until the minute is over.
    let right = format!("Bearer {MANUAL_TOKEN}");
    let (status, reply) = rx
        .post("manual", &[JSON, ("Authorization", &right)], body)
        .await;
    assert_eq!(status, 429, "{reply}");
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn identical_deliveries_arriving_together_publish_one_event() {
    let (rx, mut tap) = setup("").await;
    let rx = std::sync::Arc::new(rx);
    let body = std::sync::Arc::new(fixture("gitlab-push.json"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (rx, body) = (rx.clone(), body.clone());
            tokio::spawn(async move {
                let headers = gitlab_headers("same-delivery");
                rx.post("gitlab", &borrowed(&headers), &body).await
            })
        })
        .collect();
    let mut run_ids = Vec::new();
    for t in tasks {
        let (status, reply) = t.await.unwrap();
        assert_eq!(status, 202, "{reply}");
        run_ids.push(reply["run_ids"].clone());
    }
    run_ids.dedup();
    assert_eq!(run_ids.len(), 1, "different run ids: {run_ids:?}");
    let published = tap.drain(Duration::from_millis(1000)).await;
    assert_eq!(
        published.len(),
        1,
        "{:?}",
        published.iter().map(|e| e.run_id).collect::<Vec<_>>()
    );
    std::sync::Arc::into_inner(rx).unwrap().stop().await;
}

#[tokio::test]
async fn an_oversized_delivery_id_is_refused_and_publishes_nothing() {
    let (rx, mut tap) = setup("").await;
    let body = fixture("github-push.json");
    let sig = github_signature(&body);
    let long = "d".repeat(300);
    let (status, reply) = rx
        .post(
            "github",
            &[
                JSON,
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", &long),
                ("X-Hub-Signature-256", &sig),
            ],
            &body,
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("X-GitHub-Delivery")
    );
    let headers = gitlab_headers(&long);
    let (status, reply) = rx
        .post("gitlab", &borrowed(&headers), &fixture("gitlab-push.json"))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}

#[tokio::test]
async fn a_long_commit_message_is_published_cut() {
    let (rx, mut tap) = setup("").await;
    let mut push: serde_json::Value = serde_json::from_slice(&fixture("gitlab-push.json")).unwrap();
    let long = format!("subject line\n\n{}", "é".repeat(5_000));
    for c in push["commits"].as_array_mut().unwrap() {
        c["message"] = long.clone().into();
    }
    let body = serde_json::to_vec(&push).unwrap();
    let headers = gitlab_headers("long-message");
    let (status, reply) = rx.post("gitlab", &borrowed(&headers), &body).await;
    assert_eq!(status, 202, "{reply}");
    let e = tap
        .expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    let Event::SourceChanged(s) = &e.event else {
        panic!()
    };
    let m = s.message.as_deref().unwrap();
    assert!(m.len() <= 1000, "{} bytes", m.len());
    assert!(m.starts_with("subject line") && m.ends_with('…'), "{m}");
    rx.stop().await;
}

#[tokio::test]
async fn tls_serves_hooks_and_the_operator_api_has_its_own_port() {
    let ca = ferry_testkit::tls::private_ca().unwrap();
    let ns = unique_namespace();
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let text = door_config(
        &ns,
        "",
        r#"
        [operators.alice]
        token = "alice-operator-token-123"
        "#,
    )
    .replace(
        "[services.hook_receiver]\n",
        &format!(
            "[services.hook_receiver]\ntls_cert = {:?}\ntls_key = {:?}\napi_listen = \"127.0.0.1:0\"\n",
            ca.cert_file(),
            ca.key_file()
        ),
    );
    let r = hook_receiver::HookReceiver::bind(parse(&text))
        .await
        .unwrap();
    let (hooks, api) = (r.addr, r.api_addr.expect("api_listen is set"));
    let (trigger, stop) = ferry_shared::shutdown::channel();
    let task = tokio::spawn(r.run_until_stopped(stop.wait_owned()));

    let ca_pem = std::fs::read(ca.ca_file()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    let reply = client
        .post(format!("https://{hooks}/hooks/manual"))
        .bearer_auth(MANUAL_TOKEN)
        .header("Content-Type", "application/json")
        .body(r#"{"project":"svnshop","revision":"7"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202, "{:?}", reply.text().await);
    tap.expect("source.changed", Duration::from_secs(5))
        .await
        .unwrap();
    // Plain HTTP on the TLS port is not served.
    assert!(
        ferry_testkit::http_request(hooks, "POST", "/hooks/manual", &[], b"")
            .await
            .map_or(true, |(status, _)| status != 202 && status != 401)
    );

    let runs = "/api/projects/shop/runs";
    let on_hooks = client
        .get(format!("https://{hooks}{runs}"))
        .bearer_auth("alice-operator-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(on_hooks.status(), 404, "/api on the webhook port");
    let on_api = client
        .get(format!("https://{api}{runs}"))
        .bearer_auth("alice-operator-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(on_api.status(), 200, "{:?}", on_api.text().await);
    let hook_on_api = client
        .post(format!("https://{api}/hooks/manual"))
        .bearer_auth(MANUAL_TOKEN)
        .header("Content-Type", "application/json")
        .body(r#"{"project":"shop","revision":"8"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(hook_on_api.status(), 404, "hooks on the API port");
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    trigger.trigger();
    task.await.unwrap().unwrap();
}

#[test]
fn unusable_tls_files_are_refused_at_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("cert.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let ca = ferry_testkit::tls::private_ca().unwrap();
    for (cert, key, named) in [
        (
            not_pem.clone(),
            ca.key_file(),
            "services.hook_receiver.tls_cert",
        ),
        (
            ca.cert_file(),
            not_pem.clone(),
            "services.hook_receiver.tls_key",
        ),
        (
            ca.cert_file(),
            ca.ca_file(),
            "services.hook_receiver.tls_key",
        ),
        (
            dir.path().join("missing.pem"),
            ca.key_file(),
            "services.hook_receiver.tls_cert",
        ),
    ] {
        let text = door_config("tls", "", "").replace(
            "[services.hook_receiver]\n",
            &format!("[services.hook_receiver]\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
        );
        let err = ferry_shared::config::FerryConfig::from_toml_with_env(
            &text,
            std::path::Path::new("t.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(named), "{cert:?} {key:?}: {err}");
    }
}

#[tokio::test]
async fn guessing_operator_tokens_is_limited_like_webhook_secrets() {
    let ns = unique_namespace();
    let mut tap = Tap::new(&amqp_url(), &ns, "#").await.unwrap();
    let operators = "[operators.alice]\ntoken = \"alice-operator-token-123\"\ncan = [\"deploy\"]\n";
    let rx = start(parse(&door_config(
        &ns,
        "auth_failures_per_minute = 3",
        operators,
    )))
    .await;
    let deploy = "/api/projects/svnshop/deploy";
    let body = br#"{"revision":"7"}"#;
    for guess in [
        "guess-1-guess-1-guess",
        "guess-2-guess-2-guess",
        "guess-3-guess-3",
    ] {
        let auth = format!("Bearer {guess}");
        let (status, reply) = ferry_testkit::http_request(
            rx.addr,
            "POST",
            deploy,
            &[JSON, ("Authorization", &auth)],
            body,
        )
        .await
        .unwrap();
        assert_eq!(status, 401, "{reply}");
    }
    // The right token from the same address is refused until the minute is over.
    let (status, reply) = ferry_testkit::http_request(
        rx.addr,
        "POST",
        deploy,
        &[JSON, ("Authorization", "Bearer alice-operator-token-123")],
        body,
    )
    .await
    .unwrap();
    assert_eq!(status, 429, "{reply}");
    assert!(reply.contains("auth_failures_per_minute"), "{reply}");
    assert!(tap.drain(Duration::from_millis(300)).await.is_empty());
    rx.stop().await;
}
