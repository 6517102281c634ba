//! `rancher/<env>.json` in a project's config repo: the service Ferry creates in
//! Rancher when the environment has none yet (the Jenkins Rancher plugin's "create the
//! stack and service" step). Written in Rancher's own v2-beta field names, so ops can
//! start from a service's "View in API" page:
//!
//! ```json
//! { "scale": 2,
//!   "launchConfig": { "ports": ["8080:80/tcp"], "environment": {"APP_ENV": "prod"},
//!                     "labels": {"io.rancher.scheduler.affinity:host_label": "web=1"},
//!                     "healthCheck": {"port": 80, "requestLine": "GET /healthz HTTP/1.0"} } }
//! ```
//!
//! The image is never in the file: Ferry sets the run's image by digest. Fields Ferry
//! does not know (`networkMode`, `command`, `memory`...) go to Rancher as written, and
//! Rancher's answer to them is the deploy's failure reason.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Where a project's launch configuration for `env` is, relative to `config_repo.path`.
pub fn launch_path(env: &str) -> String {
    format!("rancher/{env}.json")
}

/// Most instances a launch file may ask for.
pub const MAX_SCALE: u32 = 100;

/// Ferry's labels on the launchConfig: the file may not set them.
const FERRY_LABELS: &str = "io.ferry.";

/// A parsed launch file.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchFile {
    #[serde(default = "one")]
    pub scale: u32,
    pub launch_config: LaunchConfig,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchConfig {
    #[serde(default)]
    ports: Vec<String>,
    /// Values may be secrets: they go to Rancher only, never to a log or an event.
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    health_check: Option<HealthCheck>,
    /// Everything else, as written.
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthCheck {
    port: u16,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// The environment's values are secrets: only the keys are shown.
impl std::fmt::Debug for LaunchFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.launch_config;
        f.debug_struct("LaunchFile")
            .field("scale", &self.scale)
            .field("ports", &l.ports)
            .field("environment", &l.environment.keys().collect::<Vec<_>>())
            .field("labels", &l.labels)
            .finish_non_exhaustive()
    }
}

/// Why a launch file cannot be used; completes "rancher/<env>.json ...".
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("is not valid: {0}")]
    Syntax(String),
    #[error("sets `imageUuid`: remove it, Ferry deploys the run's image by digest")]
    Image,
    #[error("has scale {0}: use 1 to {MAX_SCALE}")]
    Scale(u32),
    #[error("has port `{0}`: write `public:private/tcp`, `private/udp` or `private`")]
    Port(String),
    #[error("sets label `{0}`: labels starting with io.ferry. are Ferry's own")]
    Label(String),
}

impl LaunchFile {
    /// Parse and check a launch file's text.
    pub fn parse(text: &str) -> Result<Self, LaunchError> {
        let file: LaunchFile =
            serde_json::from_str(text).map_err(|e| LaunchError::Syntax(describe(&e)))?;
        let l = &file.launch_config;
        if l.other.contains_key("imageUuid") {
            return Err(LaunchError::Image);
        }
        if file.scale == 0 || file.scale > MAX_SCALE {
            return Err(LaunchError::Scale(file.scale));
        }
        if let Some(bad) = l.ports.iter().find(|p| !port_spec_ok(p)) {
            return Err(LaunchError::Port(bad.clone()));
        }
        if let Some(bad) = l.labels.keys().find(|k| k.starts_with(FERRY_LABELS)) {
            return Err(LaunchError::Label(bad.clone()));
        }
        Ok(file)
    }

    /// The launchConfig Rancher gets: the file's, with the run's image and Ferry's labels.
    pub fn launch_config<'a>(
        &self,
        image: &str,
        ferry_labels: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Value {
        let l = &self.launch_config;
        let mut launch = l.other.clone();
        launch.insert("imageUuid".into(), json!(format!("docker:{image}")));
        launch.insert("ports".into(), json!(l.ports));
        launch.insert("environment".into(), json!(l.environment));
        let mut labels = l.labels.clone();
        labels.extend(ferry_labels.into_iter().map(|(k, v)| (k.to_owned(), v)));
        launch.insert("labels".into(), json!(labels));
        if let Some(h) = &l.health_check {
            let mut check = h.other.clone();
            check.insert("port".into(), json!(h.port));
            launch.insert("healthCheck".into(), Value::Object(check));
        }
        Value::Object(launch)
    }

    /// Whether the service has a health check: then a first deploy waits for it.
    pub fn has_health_check(&self) -> bool {
        self.launch_config.health_check.is_some()
    }
}

/// serde_json's reason, without a value it quotes (`invalid type: string "hunter2"`):
/// the file's values may be secrets.
fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("invalid type") || text.starts_with("invalid value") {
        let expected = text
            .split_once(", expected ")
            .map(|(_, rest)| rest.split(" at line").next().unwrap_or(rest))
            .unwrap_or("another type");
        return format!(
            "a value is not {expected} at line {} column {}",
            e.line(),
            e.column()
        );
    }
    text
}

/// `8080:80/tcp`, `80/udp`, `80`; an address in front (`127.0.0.1:8080:80`) too.
fn port_spec_ok(spec: &str) -> bool {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    if !matches!(proto, "tcp" | "udp") {
        return false;
    }
    let parts: Vec<&str> = ports.split(':').collect();
    let numbers = match parts.as_slice() {
        [private] => vec![*private],
        [public, private] => vec![*public, *private],
        [ip, public, private] if ip.parse::<std::net::IpAddr>().is_ok() => {
            vec![*public, *private]
        }
        _ => return false,
    };
    numbers
        .iter()
        .all(|n| n.parse::<u16>().is_ok_and(|n| n > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_file_becomes_the_launch_config_with_the_runs_image() {
        let file = LaunchFile::parse(
            r#"{"scale": 2, "launchConfig": {"ports": ["8080:80/tcp"], "networkMode": "managed",
                "environment": {"DB_PASSWORD": "hunter2"}, "labels": {"team": "web"},
                "healthCheck": {"port": 80, "requestLine": "GET /healthz HTTP/1.0"}}}"#,
        )
        .unwrap();
        assert_eq!(file.scale, 2);
        assert!(file.has_health_check());
        let l = file.launch_config("r/shop:1@sha256:ab", [("io.ferry.revision", "1".into())]);
        assert_eq!(l["imageUuid"], "docker:r/shop:1@sha256:ab");
        assert_eq!(l["networkMode"], "managed");
        assert_eq!(l["labels"]["team"], "web");
        assert_eq!(l["labels"]["io.ferry.revision"], "1");
        assert_eq!(l["healthCheck"]["port"], 80);
        assert_eq!(l["healthCheck"]["requestLine"], "GET /healthz HTTP/1.0");
        assert!(!format!("{file:?}").contains("hunter2"));
    }

    #[test]
    fn what_rancher_or_ferry_would_refuse_is_refused_with_the_reason() {
        let refused = |text: &str| LaunchFile::parse(text).unwrap_err().to_string();
        assert!(refused(r#"{"launchConfig": {"imageUuid": "docker:x"}}"#).contains("imageUuid"));
        assert!(refused(r#"{"scale": 0, "launchConfig": {}}"#).contains("scale 0"));
        assert!(refused(r#"{"launchConfig": {"ports": ["80:http"]}}"#).contains("80:http"));
        assert!(
            refused(r#"{"launchConfig": {"labels": {"io.ferry.image": "x"}}}"#)
                .contains("io.ferry.image")
        );
        assert!(refused(r#"{"launchConfig": {}, "scael": 2}"#).contains("scael"));
        let wrong = refused(r#"{"launchConfig": {"environment": {"A": 12345}}}"#);
        assert!(
            wrong.contains("line 1") && !wrong.contains("12345"),
            "{wrong}"
        );
        for ok in ["80", "8080:80/tcp", "53/udp", "127.0.0.1:8080:80"] {
            assert!(port_spec_ok(ok), "{ok}");
        }
    }
}
