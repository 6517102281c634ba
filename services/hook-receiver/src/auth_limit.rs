//! Failed authentications per client address: after `hooks.auth_failures_per_minute`
//! failures within a minute of the first, the address is refused (429) until that
//! minute is over, whatever it sends, a right token included, so guessing cannot go
//! on at full speed. IPv6 addresses count per /64, the block one host usually has.
//! The count is per TCP peer: behind a reverse proxy every client is the proxy, so
//! there the limit belongs on the proxy (and `0` turns it off here).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses followed at most; the oldest are forgotten first.
const TRACKED_AT_MOST: usize = 100_000;

/// Whole seconds (rounded up) an address stays refused, and why, for a 429's
/// `Retry-After` and its reason; `then` says what to check.
pub fn refusal(left: Duration, then: &str) -> (u64, String) {
    let secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
    (
        secs,
        format!(
            "too many failed authentications from this address (hooks.auth_failures_per_minute): \
             refused for {secs} s more, whatever the token; {then}"
        ),
    )
}

pub struct AuthLimit {
    per_minute: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_addr: HashMap<IpAddr, Window>,
    /// (window start, address) in the order windows started, for O(1) expiry.
    order: VecDeque<(Instant, IpAddr)>,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl AuthLimit {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            state: Mutex::default(),
        }
    }

    /// How long `addr` is still refused, if it is.
    pub fn blocked(&self, addr: IpAddr) -> Option<Duration> {
        self.blocked_at(addr, Instant::now())
    }

    /// Count one failed authentication from `addr`.
    pub fn failed(&self, addr: IpAddr) {
        self.failed_at(addr, Instant::now());
    }

    fn blocked_at(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        if self.per_minute == 0 {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.expire(now);
        state
            .by_addr
            .get(&client(addr))
            .filter(|w| w.failures >= self.per_minute)
            .map(|w| WINDOW.saturating_sub(now.duration_since(w.started)))
    }

    fn failed_at(&self, addr: IpAddr, now: Instant) {
        if self.per_minute == 0 {
            return;
        }
        let addr = client(addr);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.expire(now);
        if let Some(w) = state.by_addr.get_mut(&addr) {
            w.failures = w.failures.saturating_add(1);
            return;
        }
        state.by_addr.insert(
            addr,
            Window {
                started: now,
                failures: 1,
            },
        );
        state.order.push_back((now, addr));
        if state.by_addr.len() > TRACKED_AT_MOST
            && let Some((started, oldest)) = state.order.pop_front()
        {
            state.forget(started, oldest);
        }
    }
}

impl State {
    fn expire(&mut self, now: Instant) {
        while let Some(&(started, addr)) = self.order.front() {
            if now.duration_since(started) < WINDOW {
                break;
            }
            self.order.pop_front();
            self.forget(started, addr);
        }
    }

    fn forget(&mut self, started: Instant, addr: IpAddr) {
        if self
            .by_addr
            .get(&addr)
            .is_some_and(|w| w.started == started)
        {
            self.by_addr.remove(&addr);
        }
    }
}

/// The address a limit applies to: IPv4 as is (also when mapped into IPv6), IPv6 by
/// its /64 prefix.
pub(crate) fn client(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_until_the_minute_is_over() {
        let limit = AuthLimit::new(3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(limit.blocked_at(a, t0), None, "after {i} failures");
            limit.failed_at(a, t0 + Duration::from_secs(i));
        }
        let left = limit.blocked_at(a, t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(left, Duration::from_secs(50));
        assert_eq!(limit.blocked_at(b, t0), None, "another address");
        assert_eq!(limit.blocked_at(a, t0 + WINDOW), None, "the minute is over");
    }

    #[test]
    fn ipv6_counts_per_64_and_zero_turns_it_off() {
        let limit = AuthLimit::new(2);
        let t0 = Instant::now();
        limit.failed_at("2001:db8::1".parse().unwrap(), t0);
        limit.failed_at("2001:db8::2".parse().unwrap(), t0);
        assert!(
            limit
                .blocked_at("2001:db8::ffff".parse().unwrap(), t0)
                .is_some()
        );
        let off = AuthLimit::new(0);
        for _ in 0..10 {
            off.failed_at("192.0.2.1".parse().unwrap(), t0);
        }
        assert_eq!(off.blocked_at("192.0.2.1".parse().unwrap(), t0), None);
    }

    #[test]
    fn the_number_of_followed_addresses_is_bounded() {
        let limit = AuthLimit::new(5);
        let t0 = Instant::now();
        for i in 0..(TRACKED_AT_MOST as u32 + 10) {
            limit.failed_at(IpAddr::V4(i.into()), t0);
        }
        let state = limit.state.lock().unwrap();
        assert_eq!(state.by_addr.len(), TRACKED_AT_MOST);
    }
}
