//! What runs where, per host, as `ferry status` shows it: read from the hosts (or
//! Rancher), never from memory.

use crate::{Environment, ReadError, Running};
use ferry_rancher::{ServiceState, running_of, state_of};

/// One host's (or the Rancher service's) answer.
#[derive(Debug)]
pub struct HostStatus {
    /// The host's name, or `rancher:<service id>`.
    pub host: String,
    pub state: State,
}

#[derive(Debug)]
pub enum State {
    /// Runs this (on Rancher: the service is `active`).
    Running(Running),
    /// The Rancher service is in another state (`upgraded`, `upgrading`...); what its
    /// launchConfig names, if anything.
    Service {
        state: Option<String>,
        running: Option<Running>,
    },
    /// Nothing of the project runs on the host.
    Nothing,
    /// The host's engine could not be reached.
    Unreachable(String),
    /// The host or Rancher answered with an error.
    Error(String),
}

impl Environment<'_> {
    /// What runs on each of the environment's hosts (one row for a Rancher service).
    pub async fn status(&self) -> Vec<HostStatus> {
        match self {
            Self::Rancher(t) => {
                let state = match t.service().await {
                    Ok(service) => match (state_of(&service), running_of(&service)) {
                        (ServiceState::Active, Some(run)) => State::Running(run),
                        (state, running) => State::Service {
                            state: service["state"].as_str().map(|_| state.to_string()),
                            running,
                        },
                    },
                    Err(e) => State::Error(e.to_string()),
                };
                vec![HostStatus {
                    host: t.name(),
                    state,
                }]
            }
            Self::Docker(t) => t
                .running_per_host()
                .await
                .into_iter()
                .map(|(host, running)| HostStatus {
                    host: host.name.clone(),
                    state: match running {
                        Ok(r) => r.into_iter().next().map_or(State::Nothing, State::Running),
                        Err(ReadError::Connect { source, .. }) => {
                            State::Unreachable(source.to_string())
                        }
                        Err(e) => State::Error(e.to_string()),
                    },
                })
                .collect(),
        }
    }
}
