//! The reverse proxy on a Docker host (`ferry-proxy`, HAProxy 2.6 from Debian, host
//! networking): Ferry creates it when missing, keeps its configuration current (written
//! from Ferry's configuration, checked with `haproxy -c`, then a seamless reload), and
//! moves traffic between a replica's blue/green slots over its runtime API (the admin
//! socket, reached with `docker exec`, never over the network). After every change the
//! backend's server state is saved to its file, which HAProxy reads at start: a reload
//! or a restart of the proxy keeps the split.

mod render;
mod shift;
mod stats;

pub use render::{backend, server};
pub use shift::{Shift, bring_back, drain, enter, revert, shift, split, take_over};
pub use stats::{Counters, ServerStat};

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, UploadToContainerOptionsBuilder};
use ferry_docker::Docker;
use ferry_shared::config::FerryConfig;
use futures_util::StreamExt;
use render::{SOCKET, STATE_DIR};
use std::time::{Duration, Instant};

const CONFIG: &str = "/etc/haproxy/haproxy.cfg";
/// How long a proxy that does not answer is waited for (a restart takes about a second).
const RESTART_WAIT: Duration = Duration::from_secs(20);

/// Why the proxy could not be worked with; completes "the proxy on <host> ...".
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "could not be started: {0}; is proxy.image on the host (docker build -t ferry/haproxy:2.6 deploy/proxy)?"
    )]
    Start(String),
    #[error("refused its new configuration: {0}")]
    Config(String),
    #[error("did not answer on its admin socket: {0}")]
    Socket(String),
    #[error("is not there: {0}")]
    Missing(String),
    #[error("refused `{command}`: {answer}")]
    Refused { command: String, answer: String },
    #[error("{0}")]
    Traffic(String),
}

/// The proxy of one host.
pub struct Proxy<'a> {
    pub(crate) docker: &'a Docker,
    pub(crate) cfg: &'a FerryConfig,
    pub(crate) host: &'a str,
}

impl Proxy<'_> {
    /// The proxy runs with the configuration the host should have now.
    pub async fn ensure(&self) -> Result<(), ProxyError> {
        let wanted = render::render(self.cfg, self.host);
        let running = self
            .docker
            .inspect_container(&self.cfg.proxy.container, None)
            .await
            .ok()
            .and_then(|c| c.state.and_then(|s| s.running));
        match running {
            None => self.create(&wanted).await?,
            Some(false) => {
                self.docker
                    .start_container(&self.cfg.proxy.container, None)
                    .await
                    .map_err(|e| ProxyError::Start(e.to_string()))?;
            }
            Some(true) => {}
        }
        let (_, current) = self.exec(&["cat", CONFIG]).await?;
        if current != wanted {
            self.reload(&wanted).await?;
        }
        self.ready().await
    }

    async fn create(&self, config: &str) -> Result<(), ProxyError> {
        let start = |e: bollard::errors::Error| ProxyError::Start(e.to_string());
        let body = ContainerCreateBody {
            image: Some(self.cfg.proxy.image.clone()),
            labels: Some([("io.ferry.proxy".to_owned(), "1".to_owned())].into()),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&self.cfg.proxy.container)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(start)?;
        self.upload("haproxy.cfg", config).await?;
        self.docker
            .start_container(&self.cfg.proxy.container, None)
            .await
            .map_err(start)
    }

    /// A new configuration: checked by HAProxy first, every backend's state saved, then
    /// a seamless reload (the master hands the listeners to the new worker).
    async fn reload(&self, config: &str) -> Result<(), ProxyError> {
        self.upload("haproxy.cfg.new", config).await?;
        let new = format!("{CONFIG}.new");
        let (code, out) = self.exec(&["haproxy", "-c", "-q", "-f", &new]).await?;
        if code != 0 {
            return Err(ProxyError::Config(out));
        }
        self.persist_all().await?;
        self.exec_ok(&["mv", &new, CONFIG]).await?;
        // Through exec: `docker kill -s USR2` would count as a stop and end the restart
        // policy.
        self.exec_ok(&["kill", "-USR2", "1"]).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    }

    /// Wait for the admin socket to answer.
    async fn ready(&self) -> Result<(), ProxyError> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.command("show info").await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Runtime API commands (`;`-separated); what the proxy answered. A proxy that is
    /// restarting (Docker's restart policy, or someone's `docker restart`) is waited for
    /// a while: its state file brings back the split it had.
    pub async fn command(&self, commands: &str) -> Result<String, ProxyError> {
        self.retrying(|| self.command_once(commands)).await
    }

    async fn retrying<T, F: std::future::Future<Output = Result<T, ProxyError>>>(
        &self,
        attempt: impl Fn() -> F,
    ) -> Result<T, ProxyError> {
        let deadline = Instant::now() + RESTART_WAIT;
        loop {
            match attempt().await {
                Err(ProxyError::Socket(why)) if Instant::now() < deadline => {
                    tracing::debug!(
                        host = self.host,
                        "the proxy did not answer ({why}): waiting"
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                other => return other,
            }
        }
    }

    async fn command_once(&self, commands: &str) -> Result<String, ProxyError> {
        let script = format!("printf '%s\\n' \"$1\" | socat -t5 stdio UNIX-CONNECT:{SOCKET}");
        let (code, out) = self.exec(&["sh", "-c", &script, "sh", commands]).await?;
        if code != 0 {
            return Err(ProxyError::Socket(out));
        }
        Ok(out)
    }

    /// Commands that change state: any answer but an empty one is a refusal.
    pub async fn set(&self, commands: &str) -> Result<(), ProxyError> {
        let answer = self.command(commands).await?;
        if answer.trim().is_empty() {
            Ok(())
        } else {
            Err(ProxyError::Refused {
                command: commands.to_owned(),
                answer: answer.trim().to_owned(),
            })
        }
    }

    /// The servers of `backend` as the proxy sees them now.
    pub async fn servers(&self, backend: &str) -> Result<Vec<ServerStat>, ProxyError> {
        Ok(stats::parse(
            &self.command(&format!("show stat {backend} 4 -1")).await?,
        ))
    }

    /// Save `backend`'s server state to its file (read back at the next start).
    pub async fn persist(&self, backend: &str) -> Result<(), ProxyError> {
        self.retrying(|| self.persist_once(backend)).await
    }

    async fn persist_once(&self, backend: &str) -> Result<(), ProxyError> {
        // The name goes in as an argument, never into the script's text.
        let script = format!(
            "printf 'show servers state %s\\n' \"$1\" | socat -t5 stdio UNIX-CONNECT:{SOCKET} > \"{STATE_DIR}/$1.tmp\" && mv \"{STATE_DIR}/$1.tmp\" \"{STATE_DIR}/$1\""
        );
        self.exec_ok(&["sh", "-c", &script, "sh", backend]).await
    }

    async fn persist_all(&self) -> Result<(), ProxyError> {
        let script = format!(
            "for b in $(printf 'show backend\\n' | socat -t5 stdio UNIX-CONNECT:{SOCKET} | grep '^be_'); do \
             printf 'show servers state %s\\n' \"$b\" | socat -t5 stdio UNIX-CONNECT:{SOCKET} > {STATE_DIR}/$b.tmp && mv {STATE_DIR}/$b.tmp {STATE_DIR}/$b; done"
        );
        self.exec_ok(&["sh", "-c", &script]).await
    }

    async fn upload(&self, name: &str, text: &str) -> Result<(), ProxyError> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, text.as_bytes())
            .map_err(|e| ProxyError::Start(e.to_string()))?;
        let bytes = tar
            .into_inner()
            .map_err(|e| ProxyError::Start(e.to_string()))?;
        let options = UploadToContainerOptionsBuilder::default()
            .path("/etc/haproxy")
            .build();
        self.docker
            .upload_to_container(
                &self.cfg.proxy.container,
                Some(options),
                bollard::body_full(bytes.into()),
            )
            .await
            .map_err(|e| ProxyError::Start(format!("cannot write {name}: {e}")))
    }

    async fn exec_ok(&self, cmd: &[&str]) -> Result<(), ProxyError> {
        match self.exec(cmd).await? {
            (0, _) => Ok(()),
            (code, out) => Err(ProxyError::Socket(format!(
                "`{}` exited {code}: {}",
                cmd.join(" "),
                out.trim()
            ))),
        }
    }

    /// Run `cmd` in the proxy's container: its exit code and output.
    async fn exec(&self, cmd: &[&str]) -> Result<(i64, String), ProxyError> {
        let socket = |e: bollard::errors::Error| ProxyError::Socket(e.to_string());
        let exec = self
            .docker
            .create_exec(
                &self.cfg.proxy.container,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|c| (*c).to_owned()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| match e {
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    message,
                } => ProxyError::Missing(message),
                e => socket(e),
            })?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(socket)?
        {
            let read = async {
                while let Some(Ok(chunk)) = output.next().await {
                    text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
                }
            };
            if tokio::time::timeout(Duration::from_secs(15), read)
                .await
                .is_err()
            {
                return Err(ProxyError::Socket(format!(
                    "`{}` did not finish",
                    cmd.join(" ")
                )));
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(socket)?
            .exit_code
            .unwrap_or(-1);
        Ok((code, text))
    }
}
