//! Whether a container is ready: an HTTP `GET` of its health path answering 2xx, or a
//! health command run inside it exiting 0, polled until a deadline.
//!
//! The HTTP probe goes through reqwest with redirects off (a 3xx is an answer, not
//! ready) and no proxy (the address is the host's own), each attempt within
//! [`PROBE_TIMEOUT`].

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One HTTP attempt: connecting and the answer's status line.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a health command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after the first attempt, doubled after each until [`POLL_MAX`]: most apps
/// answer within tens of milliseconds of their start, and a fixed 200 ms pause cost
/// every deploy about that much (issue 19).
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(200);

/// How a container shows it is ready.
pub struct Probe<'a> {
    /// `GET` this path on the container's port; used when `command` is empty.
    pub path: &'a str,
    /// Run inside the container (`docker exec`); `{port}` is replaced by the port the
    /// app listens on inside.
    pub command: &'a [String],
    /// How long the container has to become ready.
    pub timeout: Duration,
}

/// Why a container did not become ready. Completes "the new container is unhealthy: ...".
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    #[error("it exited with code {0}")]
    Exited(i64),
    #[error("{last} after {} s", .waited.as_secs())]
    TimedOut { last: String, waited: Duration },
}

/// Poll container `name` until it is ready, exits, or `probe.timeout` passes. The HTTP
/// probe asks `address:port`, the health command sees `inside` (the port inside the
/// container).
pub async fn wait_healthy(
    docker: &Docker,
    name: &str,
    (address, port, inside): (&str, u16, u16),
    probe: &Probe<'_>,
) -> Result<(), Unhealthy> {
    let deadline = Instant::now() + probe.timeout;
    let mut last = String::from("no answer yet");
    let mut pause = POLL_FIRST;
    while Instant::now() < deadline {
        let attempt = if probe.command.is_empty() {
            match http_status(address, port, probe.path).await {
                Ok(s) if (200..300).contains(&s) => return Ok(()),
                Ok(s) => format!("GET {} answered {s}", probe.path),
                Err(e) => e,
            }
        } else {
            match exec_status(docker, name, probe.command, inside).await {
                Ok(0) => return Ok(()),
                Ok(code) => format!("the health command exited with {code}"),
                Err(e) => e,
            }
        };
        last = attempt;
        let state = docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|i| i.state);
        if state.as_ref().and_then(|s| s.running) == Some(false) {
            return Err(Unhealthy::Exited(
                state.and_then(|s| s.exit_code).unwrap_or_default(),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(POLL_MAX);
    }
    Err(Unhealthy::TimedOut {
        last,
        waited: probe.timeout,
    })
}

/// The probes' client: no redirects, no proxy, a deadline per attempt, and no idle
/// connection kept to the container (it would hold the container's graceful stop at
/// the next deploy: an nginx waits for its kept-alive connections).
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("ferry-health/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(PROBE_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// The status `GET http://address:port<path>` answers; the body is not read.
pub async fn http_status(address: &str, port: u16, path: &str) -> Result<u16, String> {
    // An IPv6 literal needs its brackets in a URL.
    let host = if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]")
    } else {
        address.to_owned()
    };
    let url = format!("http://{host}:{port}{path}");
    let response = client().get(&url).send().await.map_err(|e| {
        if e.is_timeout() {
            "timed out".to_owned()
        } else {
            describe(&e)
        }
    })?;
    Ok(response.status().as_u16())
}

/// reqwest's error with its causes (connection refused is only in the chain).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Run the health command in the container; its exit code.
async fn exec_status(
    docker: &Docker,
    name: &str,
    command: &[String],
    port: u16,
) -> Result<i64, String> {
    let cmd: Vec<String> = command
        .iter()
        .map(|c| c.replace("{port}", &port.to_string()))
        .collect();
    let exec = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(false),
                attach_stderr: Some(false),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot run the health command: {e}"))?;
    docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| format!("cannot run the health command: {e}"))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let mut pause = Duration::from_millis(10);
    while Instant::now() < deadline {
        let state = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| e.to_string())?;
        if state.running != Some(true) {
            return state
                .exit_code
                .ok_or_else(|| "the health command reported no exit code".to_owned());
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    Err(format!(
        "the health command did not finish within {} s",
        COMMAND_TIMEOUT.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering `head`; its port.
    async fn answer(head: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(head.as_bytes()).await;
        });
        port
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        let port = answer(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert_eq!(http_status("127.0.0.1", port, "/healthz").await, Ok(302));
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_that_says_so() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = http_status("127.0.0.1", port, "/").await.unwrap_err();
        assert!(err.to_lowercase().contains("connect"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        assert_eq!(
            http_status("127.0.0.1", port, "/").await,
            Err("timed out".into())
        );
        assert!(started.elapsed() < PROBE_TIMEOUT + Duration::from_secs(1));
        drop(listener);
    }
}
