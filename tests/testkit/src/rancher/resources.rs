//! The model rendered as the API's resources (`host`, `stack`, `service`, `container`),
//! and as the views tests get ([`SimService`]).

use super::instances::rancher_labels;
use super::lifecycle::{actions_for, transitioning};
use super::state::{Instance, Service, Sim, Stack};
use super::{PROJECT, SimInstance, SimService};
use serde_json::{Value, json};

/// ISO-8601 in UTC, as the API spec wants dates.
pub(super) fn iso(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Sim {
    pub(super) fn actions(&self, self_url: &str, names: &[&str]) -> Value {
        Value::Object(
            names
                .iter()
                .map(|a| ((*a).to_owned(), json!(format!("{self_url}/?action={a}"))))
                .collect(),
        )
    }

    pub(super) fn host_json(&self, n: usize) -> Value {
        let h = &self.hosts[n];
        let self_url = self.url("hosts", &h.id);
        let instance_ids: Vec<&str> = self
            .instances
            .iter()
            .filter(|i| i.host == n && i.removed.is_none())
            .map(|i| i.id.as_str())
            .collect();
        json!({
            "id": h.id, "type": "host", "baseType": "host", "kind": "docker", "name": null,
            "hostname": h.hostname, "agentIpAddress": h.agent_ip, "state": h.state,
            "agentState": if h.state == "active" { Value::Null } else { json!(h.state) },
            "accountId": PROJECT, "labels": {}, "instanceIds": instance_ids, "removed": null,
            "transitioning": "no",
            "links": { "self": self_url, "instances": format!("{self_url}/instances") },
            "actions": {},
        })
    }

    pub(super) fn stack_json(&self, st: &Stack) -> Value {
        let self_url = self.url("stacks", &st.id);
        let service_ids: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.stack == st.id && s.removed.is_none())
            .map(|s| s.id.as_str())
            .collect();
        let actions: &[&str] = match st.state.as_str() {
            "active" => &["update", "remove"],
            "removing" | "removed" => &[],
            _ => &["remove"],
        };
        json!({
            "id": st.id, "type": "stack", "baseType": "stack", "kind": "stack", "name": st.name,
            "uuid": st.uuid, "description": st.description, "state": st.state,
            "healthState": self.stack_health(st), "accountId": PROJECT,
            "startOnCreate": st.start_on_create, "system": false, "serviceIds": service_ids,
            "environment": null, "outputs": null, "externalId": null,
            "created": iso(st.created), "createdTS": st.created, "removed": st.removed.map(iso),
            "transitioning": transitioning(&st.state), "transitioningMessage": null,
            "links": { "self": self_url, "services": format!("{self_url}/services") },
            "actions": self.actions(&self_url, actions),
        })
    }

    pub(super) fn service_json(&self, s: &Service) -> Value {
        let self_url = self.url("services", &s.id);
        let instance_ids: Vec<&str> = self.instances_of(s).map(|i| i.id.as_str()).collect();
        let current_scale = s
            .current
            .iter()
            .filter_map(|id| self.instance(id))
            .filter(|i| i.removed.is_none())
            .count();
        json!({
            "id": s.id, "type": "service", "baseType": "service", "kind": "service",
            "name": s.name, "uuid": s.uuid, "description": s.description, "stackId": s.stack,
            "state": s.state, "accountId": PROJECT, "scale": s.scale,
            "currentScale": current_scale, "healthState": self.service_health(s),
            "launchConfig": s.launch, "secondaryLaunchConfigs": [],
            "upgrade": s.previous.as_ref().map(|p| json!({ "inServiceStrategy": { "previousLaunchConfig": p, "launchConfig": s.launch } })),
            "instanceIds": instance_ids, "startOnCreate": s.start_on_create, "system": false,
            "fqdn": null,
            "createIndex": self.instances.iter().filter(|i| i.service == s.id).count(),
            "created": iso(s.created), "createdTS": s.created, "removed": s.removed.map(iso),
            "transitioning": transitioning(&s.state), "transitioningMessage": null,
            "actions": self.actions(&self_url, actions_for(&s.state)),
            "links": {
                "self": self_url,
                "instances": format!("{self_url}/instances"),
                "stack": self.url("stacks", &s.stack),
            },
        })
    }

    pub(super) fn instance_json(&self, i: &Instance) -> Value {
        let self_url = self.url("containers", &i.id);
        let host = &self.hosts[i.host];
        let l = &i.launch;
        let mut labels = l["labels"].as_object().cloned().unwrap_or_default();
        for (k, v) in rancher_labels(self, i) {
            labels.insert(k, json!(v));
        }
        json!({
            "id": i.id, "type": "container", "baseType": "instance", "kind": "container",
            "name": i.name, "uuid": i.uuid, "state": i.state, "healthState": i.health,
            "accountId": PROJECT, "hostId": host.id, "imageUuid": l["imageUuid"],
            "primaryIpAddress": i.ip, "networkMode": l["networkMode"], "command": l["command"],
            "entryPoint": l["entryPoint"], "environment": l["environment"], "labels": labels,
            "healthCheck": l["healthCheck"], "serviceId": i.service, "serviceIds": [i.service],
            "stackId": i.stack, "externalId": i.external_id, "createIndex": i.index,
            "startCount": i.start_count, "firstRunning": i.first_running.map(iso),
            "created": iso(i.created), "createdTS": i.created, "removed": i.removed.map(iso),
            "transitioning": if i.state == "error" { "error" } else { transitioning(&i.state) },
            "transitioningMessage": i.message,
            "links": {
                "self": self_url,
                "hosts": self.url("hosts", &host.id),
                "services": format!("{self_url}/services"),
            },
            "actions": {},
        })
    }

    pub(super) fn sim_service(&self, s: &Service) -> SimService {
        SimService {
            id: s.id.clone(),
            state: s.state.clone(),
            scale: s.scale,
            health: self.service_health(s).to_owned(),
            launch: s.launch.clone(),
            instances: self
                .instances_of(s)
                .map(|i| SimInstance {
                    id: i.id.clone(),
                    host: self.hosts[i.host].docker.clone().unwrap_or_default(),
                    container: i.container.clone(),
                    state: i.state.clone(),
                    health: i.health.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_iso_8601_utc() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }
}
