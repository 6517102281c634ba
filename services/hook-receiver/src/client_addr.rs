//! Whom a request comes from, for the per-address limits. Normally the TCP peer; when
//! the peer is one of `hooks.trusted_proxies`, the address that proxy saw, read from
//! `X-Forwarded-For` from the right: each trusted proxy appends the address it was
//! connected from, so the first untrusted address from the right is the one the
//! nearest trusted proxy vouches for. The addresses to its left are whatever the
//! client wrote and are never used (taking the left-most would let a client pick a
//! fresh address for every guess).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `hooks.trusted_proxies`: addresses or CIDR blocks. Start-up has checked
    /// them (`door_problems`), so one that does not parse here cannot happen; it is
    /// skipped rather than trusted.
    pub fn new(entries: &[String]) -> Self {
        Self(
            entries
                .iter()
                .filter_map(|e| ferry_shared::config::parse_ip_or_cidr(e).ok())
                .collect(),
        )
    }

    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client address the limits apply to (see the module's comment). A trusted
    /// peer without a usable `X-Forwarded-For` counts as itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(v) = value.to_str() else {
                return peer;
            };
            hops.extend(v.split(',').map(str::trim));
        }
        for hop in hops.into_iter().rev() {
            let Ok(addr) = hop.parse::<IpAddr>() else {
                // Garbage where a proxy should have written an address: trust nothing
                // further left.
                return peer;
            };
            if !self.trusts(addr) {
                return addr;
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn only_a_trusted_peer_is_looked_through_and_only_up_to_the_first_untrusted_hop() {
        let t = TrustedProxies::new(&["10.0.0.0/8".into(), "192.0.2.1".into()]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            t.client(ip("203.0.113.9"), &xff("1.1.1.1")),
            ip("203.0.113.9")
        );
        assert_eq!(t.client(ip("192.0.2.1"), &xff("1.1.1.1")), ip("1.1.1.1"));
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff("6.6.6.6, 198.51.100.7, 10.9.9.9")),
            ip("198.51.100.7"),
            "the client-written left part is not used"
        );
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        assert_eq!(t.client(ip("10.1.2.3"), &xff("junk")), ip("10.1.2.3"));
        assert!(t.trusts(ip("::ffff:10.0.0.1")));
        assert!(!TrustedProxies::default().trusts(ip("10.0.0.1")));
    }
}
