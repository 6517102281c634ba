//! A Rancher 1.6 simulator: the `v2-beta` service resource over real HTTP, with basic
//! auth, Rancher's state machine and error shapes, and real containers: the service's
//! `launchConfig.imageUuid` runs on a Docker host the simulator is given, so a
//! "Rancher" deploy in a test yields a container that answers over HTTP.
//!
//! States and the actions each allows, as in Rancher 1.6:
//! `active` (upgrade) → `upgrading` (cancelupgrade) → `upgraded` (finishupgrade,
//! rollback) → `finishing-upgrade` → `active`; `rolling-back` → `active`;
//! `canceling-upgrade` → `canceled-upgrade` (rollback, finishupgrade). Any other action
//! is `422 ActionNotAvailable`. It misbehaves on request: slow transitions, an upgrade
//! stuck in `upgrading`, a number of `500`s.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ACCESS_KEY: &str = "sim-access-key";
pub const SECRET_KEY: &str = "sim-secret-key-123";
pub const PROJECT: &str = "1a5";
pub const SERVICE: &str = "1s12";

/// How the simulator misbehaves.
#[derive(Clone, Debug, Default)]
pub struct Misbehave {
    /// Length of each transition (upgrading, finishing-upgrade, rolling-back...).
    pub transition_ms: u64,
    /// The next upgrade never leaves `upgrading`.
    pub stuck_upgrading: bool,
    /// Answer this many requests with 500 first.
    pub fail_requests: u32,
    /// Answer this many actions with 422 ActionNotAvailable (a state change raced them).
    pub refuse_actions: u32,
}

struct Service {
    state: String,
    launch: Value,
    previous: Option<Value>,
    /// Container running the current launchConfig, and the one kept for a rollback.
    container: Option<String>,
    previous_container: Option<String>,
    generation: u32,
}

struct Sim {
    service: Service,
    misbehave: Misbehave,
    docker_host: String,
    base: String,
}

type Shared = Arc<Mutex<Sim>>;

pub struct RancherSim {
    pub url: String,
    shared: Shared,
    _task: tokio::task::JoinHandle<()>,
}

impl RancherSim {
    /// A service already `active` with `image` running (command `command`, `{port}` unused).
    pub async fn start(
        docker_host: &str,
        image: &str,
        command: Vec<String>,
        misbehave: Misbehave,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let launch = json!({ "imageUuid": format!("docker:{image}"), "command": command, "networkMode": "host", "labels": {} });
        let mut service = Service {
            state: "active".into(),
            launch,
            previous: None,
            container: None,
            previous_container: None,
            generation: 0,
        };
        service.container = Some(run_container(docker_host, &service.launch, 0)?);
        let shared = Arc::new(Mutex::new(Sim {
            service,
            misbehave,
            docker_host: docker_host.to_owned(),
            base: url.clone(),
        }));
        let app = Router::new()
            .route("/v2-beta/projects/{project}/hosts", get(hosts))
            .route(
                "/v2-beta/projects/{project}/services/{service}",
                get(read).post(act),
            )
            .route(
                "/v2-beta/projects/{project}/services/{service}/",
                get(read).post(act),
            )
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            shared,
            _task: task,
        })
    }

    /// Put the service in `upgraded` with `image` as the new launchConfig, as a run
    /// that timed out would leave it.
    pub fn leave_upgraded(&self, image: &str, command: Vec<String>) -> anyhow::Result<()> {
        let mut sim = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let new = json!({ "imageUuid": format!("docker:{image}"), "command": command, "networkMode": "host", "labels": {} });
        let old_container = sim.service.container.take();
        if let Some(c) = &old_container {
            let _ = crate::docker(&sim.docker_host, None, &["stop", "-t", "1", c]);
        }
        sim.service.generation += 1;
        let container = run_container(&sim.docker_host, &new, sim.service.generation)?;
        let s = &mut sim.service;
        s.previous = Some(std::mem::replace(&mut s.launch, new));
        s.previous_container = old_container;
        s.container = Some(container);
        s.state = "upgraded".into();
        Ok(())
    }

    pub fn state(&self) -> String {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .service
            .state
            .clone()
    }

    pub fn image(&self) -> String {
        let sim = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        sim.service.launch["imageUuid"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn set_misbehave(&self, m: Misbehave) {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .misbehave = m;
    }

    /// Remove the simulator's containers.
    pub fn cleanup(&self) {
        let sim = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        for c in [&sim.service.container, &sim.service.previous_container]
            .into_iter()
            .flatten()
        {
            let _ = crate::docker(&sim.docker_host, None, &["rm", "-f", c]);
        }
    }
}

fn run_container(host: &str, launch: &Value, generation: u32) -> anyhow::Result<String> {
    let image = launch["imageUuid"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("docker:")
        .to_owned();
    let name = format!(
        "rancher-sim-{}-{}",
        uuid::Uuid::new_v4().simple(),
        generation
    );
    let mut args = vec![
        "run".to_owned(),
        "-d".into(),
        "--network".into(),
        "host".into(),
        "--name".into(),
        name.clone(),
        image,
    ];
    args.extend(
        launch["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(str::to_owned)),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    crate::docker(host, None, &refs)?;
    Ok(name)
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        axum::Json(
            json!({ "type": "error", "status": status.as_u16(), "code": code, "message": code }),
        ),
    )
        .into_response()
}

/// Basic auth, misbehaviour and the project/service ids, checked before anything else.
fn gate(sim: &mut Sim, headers: &HeaderMap, project: &str, service: &str) -> Option<Response> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCESS_KEY}:{SECRET_KEY}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return Some(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    if sim.misbehave.fail_requests > 0 {
        sim.misbehave.fail_requests -= 1;
        return Some(error(StatusCode::INTERNAL_SERVER_ERROR, "ServerError"));
    }
    if project != PROJECT || service != SERVICE {
        return Some(error(StatusCode::NOT_FOUND, "NotFound"));
    }
    None
}

/// The environment's hosts, as Rancher lists them: one active agent on loopback and one
/// that is down (which must be left out).
async fn hosts(
    State(shared): State<Shared>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut sim = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(refused) = gate(&mut sim, &headers, &project, SERVICE) {
        return refused;
    }
    let base = format!("{}/v2-beta/projects/{PROJECT}/hosts", sim.base);
    axum::Json(json!({
        "type": "collection", "resourceType": "host",
        "links": { "self": base },
        "data": [
            { "id": "1h1", "type": "host", "hostname": "sim-host-1", "agentIpAddress": "127.0.0.1", "state": "active" },
            { "id": "1h2", "type": "host", "hostname": "sim-host-2", "agentIpAddress": "127.0.0.2", "state": "disconnected" },
        ],
    }))
    .into_response()
}

fn actions_for(state: &str) -> &'static [&'static str] {
    match state {
        "active" => &["upgrade", "restart", "update", "deactivate", "remove"],
        "upgrading" => &["cancelupgrade"],
        "upgraded" => &["finishupgrade", "rollback"],
        "canceled-upgrade" => &["rollback", "finishupgrade"],
        _ => &[],
    }
}

fn resource(sim: &Sim) -> Value {
    let s = &sim.service;
    let self_url = format!("{}/v2-beta/projects/{PROJECT}/services/{SERVICE}", sim.base);
    let actions: serde_json::Map<String, Value> = actions_for(&s.state)
        .iter()
        .map(|a| ((*a).to_owned(), json!(format!("{self_url}/?action={a}"))))
        .collect();
    json!({
        "id": SERVICE, "type": "service", "baseType": "service", "name": "web", "state": s.state,
        "accountId": PROJECT, "scale": 1, "launchConfig": s.launch,
        "upgrade": s.previous.as_ref().map(|p| json!({ "inServiceStrategy": { "previousLaunchConfig": p, "launchConfig": s.launch } })),
        "actions": actions,
        "links": { "self": self_url, "instances": format!("{self_url}/instances") },
    })
}

async fn read(
    State(shared): State<Shared>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut sim = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = gate(&mut sim, &headers, &project, &service) {
        return r;
    }
    axum::Json(resource(&sim)).into_response()
}

async fn act(
    State(shared): State<Shared>,
    Path((project, service)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut sim = shared.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = gate(&mut sim, &headers, &project, &service) {
        return r;
    }
    let action = q.get("action").cloned().unwrap_or_default();
    let refused = sim.misbehave.refuse_actions > 0;
    sim.misbehave.refuse_actions = sim.misbehave.refuse_actions.saturating_sub(1);
    if refused || !actions_for(&sim.service.state).contains(&action.as_str()) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({
                "type": "error", "status": 422, "code": "ActionNotAvailable", "fieldName": "action",
                "message": format!("action {action} not available in state {}", sim.service.state)
            })),
        )
            .into_response();
    }
    let delay = Duration::from_millis(sim.misbehave.transition_ms);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (transitional, next): (&str, &str) = match action.as_str() {
        "upgrade" => {
            let Some(launch) = body["inServiceStrategy"]["launchConfig"]
                .as_object()
                .cloned()
            else {
                return error(StatusCode::UNPROCESSABLE_ENTITY, "MissingRequired");
            };
            let s = &mut sim.service;
            s.previous = Some(std::mem::replace(&mut s.launch, Value::Object(launch)));
            ("upgrading", "upgraded")
        }
        "finishupgrade" => ("finishing-upgrade", "active"),
        "rollback" => ("rolling-back", "active"),
        "cancelupgrade" => ("canceling-upgrade", "canceled-upgrade"),
        _ => ("active", "active"),
    };
    let stuck = action == "upgrade" && std::mem::take(&mut sim.misbehave.stuck_upgrading);
    sim.service.state = transitional.to_owned();
    let reply = resource(&sim);
    drop(sim);
    let worker = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if stuck {
            return;
        }
        let mut sim = worker.lock().unwrap_or_else(|e| e.into_inner());
        let host = sim.docker_host.clone();
        let s = &mut sim.service;
        match action.as_str() {
            "upgrade" => {
                // startFirst = false: stop the old container, start the new one.
                if let Some(c) = &s.container {
                    let _ = crate::docker(&host, None, &["stop", "-t", "1", c]);
                }
                s.generation += 1;
                s.previous_container = s.container.take();
                s.container = run_container(&host, &s.launch, s.generation).ok();
            }
            "finishupgrade" => {
                if let Some(c) = s.previous_container.take() {
                    let _ = crate::docker(&host, None, &["rm", "-f", &c]);
                }
                s.previous = None;
            }
            "rollback" => {
                if let Some(prev) = s.previous.take() {
                    s.launch = prev;
                }
                // Only an upgrade that got as far as swapping containers has one to undo.
                if let Some(old) = s.previous_container.take() {
                    if let Some(c) = s.container.take() {
                        let _ = crate::docker(&host, None, &["rm", "-f", &c]);
                    }
                    let _ = crate::docker(&host, None, &["start", &old]);
                    s.container = Some(old);
                }
            }
            _ => {}
        }
        s.state = next.to_owned();
    });
    (StatusCode::ACCEPTED, axum::Json(reply)).into_response()
}
