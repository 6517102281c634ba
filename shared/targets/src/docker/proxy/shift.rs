//! Moving one replica's traffic between its slots through the proxy: the new slot is
//! put in at weight 0 and gets traffic only once the proxy's own check passes, then the
//! old slot is drained (no new requests; those in flight finish, up to the drain
//! timeout, after which its sessions are shut) and taken out (`maint`). Each change is
//! saved to the backend's state file at once.

use super::render::FULL_WEIGHT;
use super::{Proxy, ProxyError};
use std::time::{Duration, Instant};

/// One replica's move from `old` to `new` (server names) in `backend`.
pub struct Shift<'a> {
    pub backend: &'a str,
    pub new: String,
    /// None for a replica that had nothing running.
    pub old: Option<String>,
    /// How long the proxy's check of the new slot may take to pass.
    pub check_timeout: Duration,
    pub drain_timeout: Duration,
}

pub async fn shift(p: &Proxy<'_>, s: &Shift<'_>) -> Result<(), ProxyError> {
    let b = s.backend;
    enter(p, b, &s.new, s.check_timeout).await?;
    let mut change = format!("set server {b}/{} weight {FULL_WEIGHT}", s.new);
    if let Some(o) = &s.old {
        change.push_str(&format!("; set server {b}/{o} state drain"));
    }
    p.set(&change).await?;
    p.persist(b).await?;
    if let Some(o) = &s.old {
        drain(p, b, o, s.drain_timeout).await?;
    }
    Ok(())
}

/// Put `server` in at weight 0, and wait for the proxy's own check of it to pass; taken
/// out again (`maint`) when it does not within `timeout`.
pub async fn enter(
    p: &Proxy<'_>,
    backend: &str,
    server: &str,
    timeout: Duration,
) -> Result<(), ProxyError> {
    let (b, n) = (backend, server);
    // `state ready` alone would make it UP before any check: weight 0 first.
    p.set(&format!(
        "set server {b}/{n} weight 0; set server {b}/{n} state ready"
    ))
    .await?;
    if let Err(why) = until(p, b, n, timeout, |st| st.checked_up()).await {
        p.set(&format!("set server {b}/{n} state maint")).await?;
        p.persist(b).await?;
        return Err(ProxyError::Traffic(format!(
            "the proxy's check of the new container did not pass ({why})"
        )));
    }
    p.persist(b).await
}

/// `keep` takes all new requests (checked first when it was not taking any), and
/// `others` are drained and taken out: what settles a split an interrupted deploy left.
pub async fn take_over(
    p: &Proxy<'_>,
    backend: &str,
    keep: &str,
    others: &[String],
    check_timeout: Duration,
    drain_timeout: Duration,
) -> Result<(), ProxyError> {
    let now = p.servers(backend).await?;
    let taking = now.iter().any(|s| s.name == keep && s.taking());
    if !taking {
        enter(p, backend, keep, check_timeout).await?;
    }
    p.set(&format!("set server {backend}/{keep} weight {FULL_WEIGHT}"))
        .await?;
    p.persist(backend).await?;
    for o in others {
        drain(p, backend, o, drain_timeout).await?;
    }
    Ok(())
}

/// Undo a canary: `old` takes all new requests again (first, so capacity never drops),
/// then `new` is drained and taken out.
pub async fn revert(
    p: &Proxy<'_>,
    backend: &str,
    old: &str,
    new: &str,
    drain_timeout: Duration,
) -> Result<(), ProxyError> {
    p.set(&format!(
        "set server {backend}/{old} state ready; set server {backend}/{old} weight {FULL_WEIGHT}; set server {backend}/{new} weight 0"
    ))
    .await?;
    p.persist(backend).await?;
    drain(p, backend, new, drain_timeout).await
}

/// Send `percent` of new requests to `new` and the rest to `old` (raised first, so the
/// pair never takes less than all requests between the two commands).
pub async fn split(
    p: &Proxy<'_>,
    backend: &str,
    old: &str,
    new: &str,
    percent: u8,
) -> Result<(), ProxyError> {
    let rest = 100 - u32::from(percent.min(100));
    p.set(&format!(
        "set server {backend}/{new} weight {percent}; set server {backend}/{old} state ready; set server {backend}/{old} weight {rest}"
    ))
    .await?;
    p.persist(backend).await
}

/// Take `server` out of `backend` once its requests in flight are done (at most
/// `timeout`, then they are cut).
pub async fn drain(
    p: &Proxy<'_>,
    backend: &str,
    server: &str,
    timeout: Duration,
) -> Result<(), ProxyError> {
    p.set(&format!("set server {backend}/{server} state drain"))
        .await?;
    let idle = until(p, backend, server, timeout, |st| {
        st.scur == 0 && st.qcur == 0
    })
    .await;
    p.set(&format!("set server {backend}/{server} state maint"))
        .await?;
    if idle.is_err() {
        tracing::warn!(
            backend,
            server,
            "drain timed out: closing its remaining connections"
        );
        p.set(&format!("shutdown sessions server {backend}/{server}"))
            .await?;
    }
    p.persist(backend).await
}

/// Undo a move: `old` (running again) takes the traffic back, `new` goes out.
pub async fn bring_back(
    p: &Proxy<'_>,
    backend: &str,
    old: Option<&str>,
    new: &str,
) -> Result<(), ProxyError> {
    let mut change = String::new();
    if let Some(o) = old {
        change.push_str(&format!(
            "set server {backend}/{o} state ready; set server {backend}/{o} weight {FULL_WEIGHT}; "
        ));
    }
    change.push_str(&format!("set server {backend}/{new} state maint"));
    p.set(&change).await?;
    p.persist(backend).await
}

/// Poll `server` until `ok` holds, up to `timeout`; the last status seen otherwise.
async fn until(
    p: &Proxy<'_>,
    backend: &str,
    server: &str,
    timeout: Duration,
    ok: impl Fn(&super::ServerStat) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match p.servers(backend).await {
            Ok(list) => match list.iter().find(|s| s.name == server) {
                Some(st) if ok(st) => return Ok(()),
                Some(st) => format!(
                    "{} {} with {} in flight",
                    st.status, st.check_status, st.scur
                ),
                None => "not listed".to_owned(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("after {} s: {last}", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
