//! The HTTP client of the chat and webhook channels: deadlines, no redirects, no
//! proxies, and a resolver that refuses host names resolving to loopback, private or
//! link-local addresses unless `notify.allow_hosts` lists them (so a DNS answer cannot
//! turn a public-looking URL into a request to the inside). Answers are sorted into
//! transient (retry) and permanent (give up) failures.

use crate::channels::SendError;
use ferry_shared::notify_config::{allowed, refused_range};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A host name that resolved only to addresses Ferry must not call.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{host}` resolves only to internal addresses ({addrs}); add it to notify.allow_hosts if that is intended"
)]
pub struct Refused {
    pub host: String,
    pub addrs: String,
}

struct Guard {
    allow: Vec<String>,
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow = self.allow.clone();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok = permitted(&host, &all, &allow).map_err(Box::new)?;
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` that may be called.
pub fn permitted(
    host: &str,
    addrs: &[SocketAddr],
    allow: &[String],
) -> Result<Vec<SocketAddr>, Refused> {
    if allowed(host, None, allow) {
        return Ok(addrs.to_vec());
    }
    let ok: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| refused_range(a.ip()).is_none() || allowed(host, Some(a.ip()), allow))
        .copied()
        .collect();
    if ok.is_empty() && !addrs.is_empty() {
        return Err(Refused {
            host: host.to_owned(),
            addrs: addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(ok)
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

/// A 2xx answer.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Http {
    pub fn new(timeout: Duration, allow: &[String]) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("ferry-notifier/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(Guard {
                allow: allow.to_vec(),
            }))
            .build()?;
        Ok(Self { client })
    }

    /// POST a JSON body (already serialised, so a signature covers exactly these bytes).
    pub async fn post_json(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> Result<Reply, SendError> {
        let mut req = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(request_error)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.map_err(|e| {
            SendError::transient(format!("reading the answer failed: {}", e.without_url()))
        })?;
        let excerpt = crate::notice::cut(body.trim(), 300);
        let code = status.as_u16();
        match code {
            200..=299 => Ok(Reply { status: code, body }),
            429 => Err(SendError::Transient {
                reason: format!("HTTP 429 (rate limited): {excerpt}"),
                retry_after,
            }),
            408 | 500..=599 => Err(SendError::Transient {
                reason: format!("HTTP {code}: {excerpt}"),
                retry_after,
            }),
            300..=399 => Err(SendError::Permanent(format!(
                "HTTP {code}: the URL redirects elsewhere; configure the final URL"
            ))),
            _ => Err(SendError::Permanent(format!(
                "HTTP {code}: {excerpt}; check the channel's URL and secret"
            ))),
        }
    }
}

/// A request that got no answer: our own refusal is permanent, the network's trouble
/// (timeouts, refused connections) transient. Never prints the URL: it holds the token.
fn request_error(e: reqwest::Error) -> SendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return SendError::Permanent(refused.to_string());
        }
        source = err.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(err) = source {
        detail = err.to_string();
        source = err.source();
    }
    if e.is_builder() {
        return SendError::Permanent(format!("invalid request: {detail}"));
    }
    SendError::transient(format!("{what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ips: &[&str]) -> Vec<SocketAddr> {
        ips.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 443))
            .collect()
    }

    #[test]
    fn a_name_resolving_only_inside_is_refused_unless_allowed() {
        let inside = addrs(&["10.0.0.5", "127.0.0.1"]);
        let err = permitted("robot.example.com", &inside, &[]).unwrap_err();
        assert!(err.to_string().contains("notify.allow_hosts"), "{err}");
        assert_eq!(
            permitted("robot.example.com", &inside, &["robot.example.com".into()])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            permitted("robot.example.com", &inside, &["10.0.0.0/8".into()]).unwrap(),
            addrs(&["10.0.0.5"])
        );
    }

    #[test]
    fn internal_answers_are_dropped_from_a_mixed_answer() {
        let mixed = addrs(&["192.168.1.1", "93.184.216.34"]);
        assert_eq!(
            permitted("example.com", &mixed, &[]).unwrap(),
            addrs(&["93.184.216.34"])
        );
    }
}
