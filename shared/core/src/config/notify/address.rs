//! The address rules every notification URL and SMTP host is checked against: no
//! loopback, private or link-local destination unless `notify.allow_hosts` lists it, so
//! a channel cannot be pointed at the services next to Ferry.

use std::net::IpAddr;

/// Check a notification URL: `http`/`https` only, no credentials in it, and a host
/// that is not loopback, private or link-local unless `allow` lists it. The error says
/// what to change. (Host names are checked again when they resolve, by the notifier.)
pub fn check_url(url: &str, allow: &[String]) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "must start with http:// or https://".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry user:password@; use the channel's `secret`".into());
    }
    let host = split_host_port(authority).ok_or_else(|| "has no valid host[:port]".to_owned())?;
    check_host(host, allow)
}

/// The host of `host[:port]` or `[v6]:port`; `None` when malformed.
fn split_host_port(authority: &str) -> Option<&str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (!host.is_empty() && port_ok).then_some(host)
}

/// Check a host name or literal address against the address rules.
pub fn check_host(host: &str, allow: &[String]) -> Result<(), String> {
    let ip = host.parse::<IpAddr>().ok();
    if allowed(host, ip, allow) {
        return Ok(());
    }
    let why = match ip {
        Some(ip) => refused_range(ip),
        None if host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Some("loopback")
        }
        None => None,
    };
    match why {
        Some(why) => Err(format!(
            "`{host}` is a {why} address; notifications go to public endpoints unless \
             notify.allow_hosts lists it (e.g. allow_hosts = [\"{host}\"])"
        )),
        None => Ok(()),
    }
}

/// Whether `host` (or its address) is on the allow-list.
pub fn allowed(host: &str, ip: Option<IpAddr>, allow: &[String]) -> bool {
    allow.iter().any(|entry| {
        let entry = entry.trim();
        if entry.eq_ignore_ascii_case(host) {
            return true;
        }
        match (ip, entry.parse::<IpAddr>(), parse_cidr(entry)) {
            (Some(ip), Ok(e), _) => canonical(ip) == canonical(e),
            (Some(ip), _, Some((net, bits))) => in_cidr(canonical(ip), net, bits),
            _ => false,
        }
    })
}

/// Why an address is refused: `Some("private")` etc., `None` for a public address.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || o[0] == 0 {
                Some("non-routable")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("non-routable")
            } else {
                None
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

pub(super) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (net, bits) = s.trim().split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if net.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((canonical(net), bits))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |len: u32| -> u128 {
        if bits == 0 {
            0
        } else {
            u128::MAX << (len - u32::from(bits))
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = mask(32);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(b)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = mask(128);
            (u128::from(a) & m) == (u128::from(b) & m)
        }
        _ => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allow_listed() {
        for url in [
            "http://127.0.0.1:9/x",
            "https://10.1.2.3/hook",
            "http://192.168.0.5",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:80/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://100.64.0.1/",
        ] {
            assert!(check_url(url, &[]).is_err(), "{url} was accepted");
        }
        let allow = vec![
            "127.0.0.1".to_owned(),
            "10.1.0.0/16".to_owned(),
            "localhost".to_owned(),
        ];
        for url in [
            "http://127.0.0.1:9/x",
            "https://10.1.2.3/hook",
            "http://localhost:1/",
        ] {
            assert_eq!(check_url(url, &allow), Ok(()), "{url}");
        }
        assert!(check_url("https://10.2.0.1/", &allow).is_err());
    }

    #[test]
    fn only_http_and_https_without_credentials() {
        assert!(check_url("ftp://example.com/", &[]).is_err());
        assert!(check_url("file:///etc/passwd", &[]).is_err());
        assert!(check_url("https://user:pw@example.com/", &[]).is_err());
        assert!(check_url("https://example.com:99999/", &[]).is_err());
        assert!(check_url("https://oapi.dingtalk.com/robot/send?access_token=x", &[]).is_ok());
    }
}
