//! The canary's Prometheus check against a real Prometheus scraping the host's real
//! HAProxy (its built-in exporter, on `proxy.metrics_port`): a release the proxy's own
//! counters would let through but whose 5xx ratio in Prometheus is above `max` is stopped
//! with the query's value, and a healthy release passes the same check.

mod common;

use common::*;
use ferry_shared::bus::Publisher;
use ferry_shared::config::FerryConfig;
use ferry_shared::event::Event;
use ferry_testkit::control::Control;
use ferry_testkit::load::Load;
use ferry_testkit::prometheus::{Prometheus, ScrapeJob};
use ferry_testkit::{Tap, amqp_url, docker, docker_hosts, free_port, unique_namespace};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

/// The share of the canary's responses that were 5xx over the last 15 s, as an operator
/// writes it: `{project}`, `{environment}` and `{servers}` (the new release's proxy
/// servers) are filled in by the updater.
const ERROR_RATIO: &str = r#"sum(rate(haproxy_server_http_responses_total{proxy="be_{project}_{environment}",server=~"{servers}",code="5xx"}[15s])) / sum(rate(haproxy_server_http_responses_total{proxy="be_{project}_{environment}",server=~"{servers}"}[15s]))"#;

/// The most [`ERROR_RATIO`] may be.
const MAX: f64 = 0.1;

/// A project behind its own proxy container, whose exporter a real Prometheus scrapes,
/// with `steps` as the staging canary: the proxy's bound is loose (50 % of the canary's
/// responses may fail), so only the Prometheus check (at most [`MAX`]) can stop it.
struct Setup {
    ns: String,
    project: String,
    ports: [u16; 2],
    stable: u16,
    proxy: String,
    cfg: Arc<FerryConfig>,
    prometheus: Prometheus,
}

async fn setup(steps: &str) -> Setup {
    let host = &docker_hosts()[0];
    let proxy_image = ferry_testkit::ensure_proxy_image(host).unwrap();
    let ns = unique_namespace();
    let project = format!("cp{}", &ns[1..9]);
    let (ports, stable, metrics) = ([free_port(), free_port()], free_port(), free_port());
    let proxy = format!("ferry-proxy-{ns}");
    // Started first: Prometheus takes 5-10 s to scrape new targets, and the proxy only
    // comes up with the first deploy.
    let target = format!("127.0.0.1:{metrics}");
    let prometheus = Prometheus::start(&[ScrapeJob::new("proxy", &[target.as_str()])])
        .await
        .unwrap();
    let query = ERROR_RATIO;
    let _ = config(&ns, &project, ports);
    let _ = edit_config(
        &ns,
        "health_timeout_secs = 6",
        &format!(
            "health_timeout_secs = 6\n        proxy_ports = {{ staging = {stable} }}\n        \
             [proxy]\n        image = \"{proxy_image}\"\n        container = \"{proxy}\"\n        \
             bind_address = \"127.0.0.1\"\n        drain_timeout_secs = 5\n        \
             metrics_port = {metrics}"
        ),
    );
    let cfg = edit_config(
        &ns,
        "hosts = [\"h1\"]\n",
        &format!(
            "hosts = [\"h1\"]\n        [environments.staging.canary]\n        {steps}\n        \
             max_error_percent = 50.0\n        \
             prometheus = {{ url = \"{url}\", query = '{query}', max = {MAX} }}\n",
            url = prometheus.url(),
        ),
    );
    Setup {
        ns,
        project,
        ports,
        stable,
        proxy,
        cfg,
        prometheus,
    }
}

impl Setup {
    fn image(&self, version: &str, every: u32) -> String {
        ferry_testkit::flaky_web_image(
            &docker_hosts()[0],
            &format!("web-{}", self.ns),
            version,
            every,
        )
        .unwrap()
    }

    /// [`ERROR_RATIO`] as the updater sends it: the first release took the first slot,
    /// so the canary is on the second.
    fn query(&self) -> String {
        ERROR_RATIO
            .replace("{servers}", &format!("r0-{}", self.ports[1]))
            .replace("{project}", &self.project)
            .replace("{environment}", "staging")
    }

    /// The first release deployed (no canary: nothing runs yet), on the first slot, and
    /// Prometheus scraping the proxy it brought up.
    async fn first_release(&self, tap: &mut Tap, publisher: &Publisher, image: &str) {
        publisher
            .publish(&request(&self.project, image, "v1"))
            .await
            .unwrap();
        tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
        assert_eq!(
            serving(self.ports[0]).await.as_deref(),
            Some("v1"),
            "the first release takes the first slot, so canaries take the second"
        );
        assert!(
            self.prometheus
                .wait_for_target_up("proxy", Duration::from_secs(30))
                .await,
            "Prometheus did not scrape the proxy's exporter: {}",
            self.prometheus.log()
        );
    }

    /// `(percent, status)` per slot, as `ferry status` shows it, sorted.
    fn split(&self) -> Vec<(u64, String)> {
        let status = ferry_status(&self.ns, &self.project);
        let mut v: Vec<(u64, String)> = status[0]["traffic"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|t| {
                (
                    t["percent"].as_u64().unwrap(),
                    t["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn load(&self, path: &str) -> Load {
        let addr = format!("127.0.0.1:{}", self.stable).parse().unwrap();
        Load::start(addr, path, 4, Duration::from_secs(300))
    }

    fn done(&self) {
        cleanup(&self.project);
        let _ = docker(&docker_hosts()[0], None, &["rm", "-f", &self.proxy]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_the_proxy_would_pass_is_stopped_by_its_prometheus_query() {
    let s = setup("steps = [{ percent = 50, secs = 5 }]").await;
    // v2 fails 1 request in 3: within the proxy's 50 %, far above Prometheus' 10 %.
    let (v1, v2) = (s.image("v1", 0), s.image("v2", 3));
    let mut tap = Tap::new(&amqp_url(), &s.ns, "deploy.#").await.unwrap();
    let updater = start_updater(&s.cfg).await;
    let publisher = Publisher::new(&s.cfg.broker, "test", None);
    s.first_release(&mut tap, &publisher, &v1).await;

    let load = s.load("/cgi-bin/flaky");
    publisher
        .publish(&request(&s.project, &v2, "v2"))
        .await
        .unwrap();
    let failed = tap.expect("deploy.failed.staging", WAIT).await.unwrap();
    let seen = load.stop().await;
    let Event::DeployFailed(f) = &failed.event else {
        panic!()
    };
    println!("{}", f.reason);
    let query = s.query();
    let stated = format!("Prometheus' `{query}` is ");
    assert!(
        f.reason.contains("stopped at 50 %") && f.reason.contains(&stated),
        "{}",
        f.reason
    );
    // The value the query gave, as the reason names it: about v2's 1 in 3.
    let value: f64 = f.reason[f.reason.find(&stated).unwrap() + stated.len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value > MAX && value < 0.5, "{value}: {}", f.reason);
    assert!(
        f.reason.contains(&format!("above the {MAX} allowed")),
        "{}",
        f.reason
    );
    assert!(
        seen.bodies.contains_key("flaky-v2-error"),
        "the canary got requests and failed some: {seen:?}"
    );

    // Only the old release is left, serving everything.
    assert_eq!(serving(s.stable).await.as_deref(), Some("v1"));
    assert_eq!(
        running_revisions(&s.project),
        ["v1"],
        "the canary is removed"
    );
    let split = s.split();
    assert_eq!(split.last().map(|x| x.0), Some(100), "{split:?}");
    updater.stop().await;
    s.done();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_passes_its_prometheus_query_and_completes() {
    let s = setup("steps = [{ percent = 50, secs = 5 }]").await;
    let (v1, v2) = (s.image("v1", 0), s.image("v2", 0));
    let mut tap = Tap::new(&amqp_url(), &s.ns, "deploy.#").await.unwrap();
    let updater = start_updater(&s.cfg).await;
    let publisher = Publisher::new(&s.cfg.broker, "test", None);
    s.first_release(&mut tap, &publisher, &v1).await;

    let control = Control::start(&docker_hosts()[0]).await.unwrap();
    let load = s.load("/cgi-bin/flaky");
    let v2_request = request(&s.project, &v2, "v2");
    publisher.publish(&v2_request).await.unwrap();
    let done = tap.expect("deploy.succeeded.staging", WAIT).await.unwrap();
    assert_eq!(done.run_id, v2_request.run_id);
    let seen = load.stop().await;
    control.stop().await.judge(&seen);
    assert!(seen.bodies.contains_key("flaky-v2"), "{seen:?}");
    // The query the updater asked had data (a ratio, not an empty answer): it passed
    // because it was 0, not because nothing was judged.
    let ratio = s.prometheus.value(&s.query()).await.unwrap();
    println!("{} = {ratio:?}; the load saw {seen:?}", s.query());
    assert_eq!(ratio, Some(0.0), "{}", s.query());

    assert_eq!(serving(s.stable).await.as_deref(), Some("v2"));
    assert_eq!(running_revisions(&s.project), ["v2"]);
    let split = s.split();
    assert_eq!(
        split.iter().map(|x| x.0).collect::<Vec<_>>(),
        [0, 100],
        "{split:?}"
    );
    updater.stop().await;
    s.done();
}
