//! The Rancher 1.6 simulator over real HTTP, against the test run's Docker daemons: stacks,
//! services, scaling, instances and health as the `v2-beta` API documents them.

use ferry_testkit::rancher::{
    ACCESS_KEY, LABEL_SERVICE, LABEL_SIM, Misbehave, PROJECT, RancherSim, SECRET_KEY, SimService,
};
use ferry_testkit::{docker, docker_hosts, http_request, unique_namespace, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

struct Api {
    addr: SocketAddr,
    auth: String,
}

impl Api {
    fn new(sim: &RancherSim) -> Self {
        Self::with_secret(sim, SECRET_KEY)
    }

    fn with_secret(sim: &RancherSim, secret: &str) -> Self {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{ACCESS_KEY}:{secret}"));
        Self {
            addr: sim.url.trim_start_matches("http://").parse().unwrap(),
            auth: format!("Basic {token}"),
        }
    }

    /// `path` under `/v2-beta`; (status, JSON body).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [
            ("Authorization", self.auth.as_str()),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
        ];
        let (status, text) = http_request(
            self.addr,
            method,
            &format!("/v2-beta{path}"),
            &headers,
            body.as_bytes(),
        )
        .await
        .unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", &format!("/projects/{PROJECT}{path}"), None)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", &format!("/projects/{PROJECT}{path}"), Some(body))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", &format!("/projects/{PROJECT}{path}"), Some(body))
            .await
    }

    async fn data(&self, path: &str) -> Vec<Value> {
        let (status, list) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {list}");
        assert_eq!(list["type"], "collection", "{list}");
        list["data"].as_array().cloned().unwrap()
    }

    /// Wait until the service satisfies `done`; its last resource.
    async fn wait_service(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/services/{id}");
        let (this, path_ref, done) = (self, &path, &done);
        let ok = wait_until(WAIT, move || async move {
            let (_, s) = this.get(path_ref).await;
            done(&s)
        })
        .await;
        let (_, s) = self.get(&path).await;
        assert!(ok, "service {id} never got {what}: {s:#}");
        s
    }
}

/// The same busybox web image on every host (see `ferry_testkit::web_image`).
fn web_image(name: &str, version: &str, healthy: bool) -> String {
    let mut tag = String::new();
    for host in docker_hosts() {
        tag = ferry_testkit::web_image(&host, name, version, healthy).unwrap();
    }
    tag
}

fn launch(image: &str, check: Value) -> Value {
    json!({
        "imageUuid": format!("docker:{image}"),
        "command": ["/bin/httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"],
        "environment": { "GREETING": "hello" },
        "labels": { "team": "web" },
        "healthCheck": check,
    })
}

fn check(extra: Value) -> Value {
    let mut c = json!({
        "port": 8080, "requestLine": "GET /healthz HTTP/1.0", "interval": 500,
        "responseTimeout": 1000, "healthyThreshold": 2, "unhealthyThreshold": 2,
        "strategy": "none",
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

fn running(s: &SimService) -> Vec<&ferry_testkit::rancher::SimInstance> {
    s.instances
        .iter()
        .filter(|i| i.state == "running")
        .collect()
}

/// The names of the simulator's containers of `service`, on every host.
fn sim_containers(sim: &RancherSim, service: &str) -> Vec<String> {
    let (by_sim, by_service) = (
        format!("label={LABEL_SIM}={}", sim.tag()),
        format!("label={LABEL_SERVICE}={service}"),
    );
    docker_hosts()
        .iter()
        .flat_map(|h| {
            let args = [
                "ps",
                "-a",
                "--filter",
                &by_sim,
                "--filter",
                &by_service,
                "--format",
                "{{.Names}}",
            ];
            docker(h, None, &args)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_invalid(reply: &(u16, Value), code: &str, field: &str) {
    let (status, body) = reply;
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["fieldName"], field, "{body}");
}

/// Create stack and service (scale 2, with a health check): both instances run on the
/// daemons and become healthy; scale to 3 and to 1; the API's validation errors; auth.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_is_created_scaled_and_checked_on_the_docker_hosts() {
    let ns = unique_namespace();
    let hosts = docker_hosts();
    let image = web_image(&format!("rsim-{ns}"), "v1", true);
    let sim = RancherSim::empty(&hosts, Misbehave::default()).unwrap();
    let api = Api::new(&sim);
    let stack_name = format!("shop-{ns}");

    // The stack.
    let (status, stack) = api.post("/stacks", json!({ "name": stack_name })).await;
    assert_eq!(status, 201, "{stack}");
    assert_eq!(
        (stack["type"].as_str(), stack["state"].as_str()),
        (Some("stack"), Some("active"))
    );
    let stack_id = stack["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.stacks(), [(stack_id.clone(), stack_name.clone())]);
    for query in [
        format!("name={stack_name}"),
        format!("name_eq={stack_name}"),
        "name_prefix=shop-".into(),
    ] {
        let found = api.data(&format!("/stacks?{query}")).await;
        assert_eq!(found.len(), 1, "{query}: {found:?}");
        assert_eq!(found[0]["id"], stack_id.as_str());
    }
    assert!(api.data("/stacks?name=other").await.is_empty());
    assert!(
        api.data(&format!("/stacks?name_ne={stack_name}"))
            .await
            .is_empty()
    );
    assert_invalid(
        &api.post("/stacks", json!({ "name": stack_name })).await,
        "NotUnique",
        "name",
    );
    assert_invalid(
        &api.post("/stacks", json!({ "name": "no_underscores" }))
            .await,
        "InvalidCharacters",
        "name",
    );
    assert_invalid(
        &api.post("/stacks", json!({ "name": "-edge" })).await,
        "InvalidCharacters",
        "name",
    );
    assert_invalid(
        &api.post("/stacks", json!({ "description": "nameless" }))
            .await,
        "MissingRequired",
        "name",
    );

    // The service: registering, then active with two healthy instances.
    let web = json!({
        "name": "web", "stackId": stack_id, "scale": 2, "startOnCreate": true,
        "launchConfig": launch(&image, check(json!({}))),
    });
    let (status, created) = api.post("/services", web.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["type"], "service");
    assert_eq!(created["state"], "registering");
    assert_eq!(created["launchConfig"]["networkMode"], "managed");
    let id = created["id"].as_str().unwrap().to_owned();
    let s = api
        .wait_service(&id, "active and healthy", |s| {
            s["state"] == "active" && s["healthState"] == "healthy"
        })
        .await;
    assert_eq!(
        (s["scale"].as_u64(), s["currentScale"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(s["instanceIds"].as_array().unwrap().len(), 2);
    let instances = api.data(&format!("/services/{id}/instances")).await;
    let names: BTreeSet<&str> = instances
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            format!("{stack_name}-web-1").as_str(),
            format!("{stack_name}-web-2").as_str()
        ])
    );
    for i in &instances {
        assert_eq!(
            (i["type"].as_str(), i["state"].as_str()),
            (Some("container"), Some("running")),
            "{i}"
        );
        assert_eq!(i["healthState"], "healthy", "{i}");
        assert_eq!(i["transitioning"], "no", "{i}");
        assert_eq!(i["imageUuid"], format!("docker:{image}"));
        assert!(
            i["primaryIpAddress"]
                .as_str()
                .unwrap()
                .starts_with("10.42."),
            "{i}"
        );
        let (status, one) = api
            .get(&format!("/containers/{}", i["id"].as_str().unwrap()))
            .await;
        assert_eq!((status, &one["name"]), (200, &i["name"]));
    }
    let host_ids: BTreeSet<&str> = instances
        .iter()
        .map(|i| i["hostId"].as_str().unwrap())
        .collect();
    assert_eq!(
        host_ids.len(),
        2.min(hosts.len()),
        "spread over the hosts: {instances:?}"
    );

    // Really there: on their hosts' daemons, with the launchConfig applied.
    let web_now = sim.service_named(&stack_name, "web").unwrap();
    assert_eq!(web_now.id, id);
    assert_eq!(
        (web_now.state.as_str(), web_now.health.as_str()),
        ("active", "healthy")
    );
    assert_eq!(running(&web_now).len(), 2);
    for i in &web_now.instances {
        assert_eq!(i.health, "healthy");
        let seen = docker(
            &i.host,
            None,
            &[
                "inspect",
                "--format",
                "{{.State.Status}} {{.HostConfig.NetworkMode}} {{index .Config.Labels \"team\"}} {{json .Config.Env}}",
                &i.container,
            ],
        )
        .unwrap();
        assert!(seen.starts_with("running none web "), "{seen}");
        assert!(seen.contains("GREETING=hello"), "{seen}");
    }

    // Filters on the collection, combined.
    assert_eq!(
        api.data(&format!("/services?name=web&stackId={stack_id}"))
            .await
            .len(),
        1
    );
    assert!(
        api.data("/services?name=web&stackId=1st999")
            .await
            .is_empty()
    );
    assert_eq!(api.data("/services?name=web&removed_null=1").await.len(), 1);

    // Scale up: updating-active, then three healthy instances.
    let (status, s) = api
        .put(&format!("/services/{id}"), json!({ "scale": 3 }))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["state"].as_str(), s["scale"].as_u64()),
        (Some("updating-active"), Some(3))
    );
    api.wait_service(&id, "3 healthy", |s| {
        s["state"] == "active" && s["currentScale"] == 3 && s["healthState"] == "healthy"
    })
    .await;
    let three = sim.service_named(&stack_name, "web").unwrap();
    assert_eq!(running(&three).len(), 3);
    assert!(
        three.instances.iter().all(|i| i.health == "healthy"),
        "{three:?}"
    );
    let spread: BTreeSet<&str> = three.instances.iter().map(|i| i.host.as_str()).collect();
    assert_eq!(
        spread.len(),
        3.min(hosts.len()),
        "least loaded first: {three:?}"
    );
    assert_eq!(sim_containers(&sim, &id).len(), 3);

    // Scale down: the newest go first.
    let (status, _) = api
        .put(&format!("/services/{id}/"), json!({ "scale": 1 }))
        .await;
    assert_eq!(status, 200);
    api.wait_service(&id, "1 instance", |s| {
        s["state"] == "active" && s["currentScale"] == 1
    })
    .await;
    let one = sim.service_named(&stack_name, "web").unwrap();
    assert_eq!(one.instances.len(), 1, "{one:?}");
    assert_eq!(
        one.instances[0].id, three.instances[0].id,
        "the oldest stays"
    );
    assert_eq!(
        sim_containers(&sim, &id),
        [one.instances[0].container.clone()]
    );
    let gone = &three.instances[2];
    let (_, removed) = api.get(&format!("/containers/{}", gone.id)).await;
    assert_eq!(removed["state"], "removed", "{removed}");

    // What Rancher refuses.
    assert_invalid(
        &api.put(&format!("/services/{id}"), json!({ "scale": -1 }))
            .await,
        "MinLimitExceeded",
        "scale",
    );
    assert_invalid(
        &api.post("/services", web.clone()).await,
        "NotUnique",
        "name",
    );
    let mut other = web.clone();
    other["name"] = json!("api");
    other["stackId"] = json!("1st999");
    assert_invalid(
        &api.post("/services", other.clone()).await,
        "InvalidReference",
        "stackId",
    );
    other["stackId"] = json!(stack_id);
    other["launchConfig"]["imageUuid"] = json!(image);
    assert_invalid(
        &api.post("/services", other.clone()).await,
        "InvalidReference",
        "imageUuid",
    );
    other["launchConfig"] = json!({ "command": ["true"] });
    assert_invalid(
        &api.post("/services", other.clone()).await,
        "MissingRequired",
        "imageUuid",
    );
    other["name"] = json!("a--b");
    assert_invalid(
        &api.post("/services", other).await,
        "InvalidCharacters",
        "name",
    );
    let (status, body) = Api::with_secret(&sim, "wrong").get("/services").await;
    assert_eq!((status, &body["code"]), (401, &json!("Unauthorized")));
    let (status, body) = api.call("GET", "/projects/1a99/services", None).await;
    assert_eq!((status, &body["code"]), (404, &json!("NotFound")));
    let (status, _) = api.get("/services/1s999").await;
    assert_eq!(status, 404);

    // Every request was logged: exactly three PUTs, all to the service.
    let puts: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|(m, _)| m == "PUT")
        .map(|(_, p)| p)
        .collect();
    let path = format!("/v2-beta/projects/{PROJECT}/services/{id}");
    assert_eq!(puts, [path.clone(), format!("{path}/"), path]);

    sim.cleanup();
    assert!(sim_containers(&sim, &id).is_empty());
}

/// A health check that never passes, a container that exits, and a service without a
/// check: the health states Rancher reports for each.
#[tokio::test(flavor = "multi_thread")]
async fn failing_and_exited_instances_show_in_the_health_states() {
    let ns = unique_namespace();
    let hosts = docker_hosts();
    let good = web_image(&format!("rsim-{ns}"), "v1", true);
    let bad = web_image(&format!("rsim-bad-{ns}"), "v1", false);
    let sim = RancherSim::empty(&hosts, Misbehave::default()).unwrap();
    let api = Api::new(&sim);
    let (_, stack) = api
        .post("/stacks", json!({ "name": format!("h-{ns}") }))
        .await;
    let stack_id = stack["id"].as_str().unwrap();

    let create = |name: &str, image: &str, check: Value, scale: u32| {
        json!({ "name": name, "stackId": stack_id, "scale": scale, "startOnCreate": true,
                "launchConfig": launch(image, check) })
    };
    let (_, web) = api
        .post("/services", create("web", &good, check(json!({})), 2))
        .await;
    let web = web["id"].as_str().unwrap().to_owned();
    // No /healthz: initializing until initializingTimeout, then unhealthy.
    let (_, broken) = api
        .post(
            "/services",
            create(
                "broken",
                &bad,
                check(json!({ "initializingTimeout": 2000 })),
                1,
            ),
        )
        .await;
    let broken = broken["id"].as_str().unwrap().to_owned();
    let (_, plain) = api
        .post("/services", create("plain", &good, Value::Null, 1))
        .await;
    let plain = plain["id"].as_str().unwrap().to_owned();

    api.wait_service(&broken, "initializing", |s| {
        s["state"] == "active" && s["healthState"] == "initializing"
    })
    .await;
    api.wait_service(&broken, "unhealthy", |s| s["healthState"] == "unhealthy")
        .await;
    let instances = api.data(&format!("/services/{broken}/instances")).await;
    assert_eq!(
        (
            instances[0]["state"].as_str(),
            instances[0]["healthState"].as_str()
        ),
        (Some("running"), Some("unhealthy"))
    );

    // Without a health check an instance has no health state, and counts as healthy.
    api.wait_service(&plain, "healthy", |s| {
        s["state"] == "active" && s["healthState"] == "healthy"
    })
    .await;
    let instances = api.data(&format!("/services/{plain}/instances")).await;
    assert_eq!(instances[0]["state"], "running");
    assert!(instances[0]["healthState"].is_null(), "{}", instances[0]);

    // One of web's two containers exits: stopped, and the service degraded.
    api.wait_service(&web, "healthy", |s| s["healthState"] == "healthy")
        .await;
    let (_, stack_now) = api.get(&format!("/stacks/{stack_id}")).await;
    assert_eq!(
        stack_now["healthState"], "degraded",
        "broken is unhealthy: {stack_now}"
    );
    let victim = sim.service(&web).unwrap().instances[0].clone();
    docker(&victim.host, None, &["stop", "-t", "1", &victim.container]).unwrap();
    let s = api
        .wait_service(&web, "degraded", |s| s["healthState"] == "degraded")
        .await;
    assert_eq!(s["state"], "active");
    let path = format!("/containers/{}", victim.id);
    let stopped = wait_until(WAIT, || async {
        api.get(&path).await.1["state"] == "stopped"
    })
    .await;
    let (_, i) = api.get(&path).await;
    assert!(stopped, "{i}");
    assert_eq!(i["transitioning"], "no", "{i}");
    let after = sim.service(&web).unwrap();
    assert_eq!(running(&after).len(), 1);

    sim.cleanup();
    for id in [web, broken, plain] {
        assert!(sim_containers(&sim, &id).is_empty());
    }
}

/// Without startOnCreate a service waits `inactive`; activate starts it; an upgrade
/// replaces every instance (the old ones kept stopped), rollback brings them back,
/// finishupgrade removes them; DELETE removes the service, which stays listed as removed.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_activates_upgrades_rolls_back_and_is_removed() {
    let ns = unique_namespace();
    let hosts = docker_hosts();
    let v1 = web_image(&format!("rsim-{ns}"), "v1", true);
    let v2 = web_image(&format!("rsim-{ns}"), "v2", true);
    let sim = RancherSim::empty(
        &hosts,
        Misbehave {
            transition_ms: 200,
            ..Misbehave::default()
        },
    )
    .unwrap();
    let api = Api::new(&sim);
    let (_, stack) = api
        .post("/stacks", json!({ "name": format!("u-{ns}") }))
        .await;
    let stack_name = stack["name"].as_str().unwrap().to_owned();
    let mut l = launch(&v1, Value::Null);
    l.as_object_mut().unwrap().remove("healthCheck");
    let (status, s) = api
        .post(
            "/services",
            json!({ "name": "web", "stackId": stack["id"], "scale": 2, "launchConfig": l }),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_owned();
    let s = api
        .wait_service(&id, "inactive", |s| s["state"] == "inactive")
        .await;
    assert!(s["actions"]["activate"].is_string(), "{s}");
    assert!(sim.service(&id).unwrap().instances.is_empty());
    assert!(sim_containers(&sim, &id).is_empty());
    let (status, body) = api
        .post(&format!("/services/{id}?action=finishupgrade"), json!({}))
        .await;
    assert_eq!((status, &body["code"]), (422, &json!("ActionNotAvailable")));

    let (status, s) = api
        .post(&format!("/services/{id}?action=activate"), json!({}))
        .await;
    assert_eq!((status, s["state"].as_str()), (202, Some("activating")));
    api.wait_service(&id, "active", |s| {
        s["state"] == "active" && s["currentScale"] == 2
    })
    .await;
    let before = sim.service_named(&stack_name, "web").unwrap();
    assert_eq!(running(&before).len(), 2);

    // Upgrade to v2: two new instances, the two old ones stopped and kept.
    let mut new = before.launch.clone();
    new["imageUuid"] = json!(format!("docker:{v2}"));
    let upgrade = json!({ "inServiceStrategy": { "launchConfig": new, "batchSize": 1, "startFirst": false } });
    let (status, _) = api
        .post(&format!("/services/{id}?action=upgrade"), upgrade.clone())
        .await;
    assert_eq!(status, 202);
    let s = api
        .wait_service(&id, "upgraded", |s| s["state"] == "upgraded")
        .await;
    assert_eq!(
        s["upgrade"]["inServiceStrategy"]["previousLaunchConfig"]["imageUuid"],
        format!("docker:{v1}")
    );
    let upgraded = sim.service(&id).unwrap();
    assert_eq!(upgraded.instances.len(), 4, "{upgraded:?}");
    let old: Vec<&str> = before.instances.iter().map(|i| i.id.as_str()).collect();
    for i in &upgraded.instances {
        let is_old = old.contains(&i.id.as_str());
        assert_eq!(
            i.state,
            if is_old { "stopped" } else { "running" },
            "{upgraded:?}"
        );
        let image = docker(
            &i.host,
            None,
            &["inspect", "--format", "{{.Config.Image}}", &i.container],
        )
        .unwrap();
        assert_eq!(&image, if is_old { &v1 } else { &v2 });
    }

    // Rollback: the old instances run again, the new ones are gone.
    let (status, _) = api
        .post(&format!("/services/{id}?action=rollback"), json!({}))
        .await;
    assert_eq!(status, 202);
    let s = api
        .wait_service(&id, "rolled back", |s| s["state"] == "active")
        .await;
    assert_eq!(s["launchConfig"]["imageUuid"], format!("docker:{v1}"));
    let back = sim.service(&id).unwrap();
    let ids: Vec<&str> = back.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, old);
    assert_eq!(running(&back).len(), 2, "{back:?}");
    assert_eq!(sim_containers(&sim, &id).len(), 2);

    // Upgrade again and finish: only the new instances are left.
    api.post(&format!("/services/{id}?action=upgrade"), upgrade)
        .await;
    api.wait_service(&id, "upgraded", |s| s["state"] == "upgraded")
        .await;
    let (status, _) = api
        .post(&format!("/services/{id}/?action=finishupgrade"), json!({}))
        .await;
    assert_eq!(status, 202);
    let s = api
        .wait_service(&id, "finished", |s| s["state"] == "active")
        .await;
    assert!(s["upgrade"].is_null(), "{s}");
    let done = sim.service(&id).unwrap();
    assert_eq!(done.instances.len(), 2);
    assert!(
        done.instances
            .iter()
            .all(|i| i.state == "running" && !old.contains(&i.id.as_str()))
    );
    assert_eq!(sim_containers(&sim, &id).len(), 2);

    // Remove: gone from Docker, still listed as removed unless `removed_null`.
    let (status, s) = api
        .call(
            "DELETE",
            &format!("/projects/{PROJECT}/services/{id}"),
            None,
        )
        .await;
    assert_eq!((status, s["state"].as_str()), (200, Some("removing")));
    api.wait_service(&id, "removed", |s| {
        s["state"] == "removed" && s["removed"].is_string()
    })
    .await;
    assert!(sim_containers(&sim, &id).is_empty());
    assert_eq!(api.data("/services?name=web").await.len(), 1);
    assert!(
        api.data("/services?name=web&removed_null=1")
            .await
            .is_empty()
    );
    assert!(sim.service_named(&stack_name, "web").is_none());
    sim.cleanup();
}

/// `start` as the updater's tests use it: stack `ferry` with `web` active on one host, and
/// the hosts API listing one active and one disconnected host.
#[tokio::test(flavor = "multi_thread")]
async fn the_prepared_service_sits_in_a_stack() {
    let host = docker_hosts()[0].clone();
    ferry_testkit::ensure_busybox_base(&host).unwrap();
    let sim = RancherSim::start(
        &host,
        ferry_testkit::BUSYBOX_BASE,
        vec!["/bin/sleep".into(), "3600".into()],
        Misbehave::default(),
    )
    .await
    .unwrap();
    let api = Api::new(&sim);
    assert_eq!(sim.stacks(), [("1st1".to_owned(), "ferry".to_owned())]);
    assert_eq!(sim.state(), "active");
    assert_eq!(
        sim.image(),
        format!("docker:{}", ferry_testkit::BUSYBOX_BASE)
    );
    let web = sim.service_named("ferry", "web").unwrap();
    assert_eq!(web.id, ferry_testkit::rancher::SERVICE);
    assert_eq!(
        (web.instances.len(), web.instances[0].host.as_str()),
        (1, host.as_str())
    );
    let (_, s) = api.get(&format!("/services/{}", web.id)).await;
    assert_eq!(
        (
            s["stackId"].as_str(),
            s["launchConfig"]["networkMode"].as_str()
        ),
        (Some("1st1"), Some("host"))
    );
    let hosts = api.data("/hosts").await;
    let listed: Vec<(&str, &str)> = hosts
        .iter()
        .map(|h| {
            (
                h["hostname"].as_str().unwrap(),
                h["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("sim-host-1", "active"), ("sim-host-2", "disconnected")]
    );
    let seen = docker(
        &host,
        None,
        &[
            "inspect",
            "--format",
            "{{.HostConfig.NetworkMode}}",
            &web.instances[0].container,
        ],
    )
    .unwrap();
    assert_eq!(seen, "host");
    sim.cleanup();
    assert!(sim_containers(&sim, &web.id).is_empty());
}
