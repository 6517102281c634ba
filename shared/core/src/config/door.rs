//! The hook-receiver's front door: how many connections it serves, how long a request
//! may take to arrive, how many failed authentications an address may make, TLS, and
//! the operator API's own address. Checked at start-up with everything else.

use super::{FerryConfig, Problem, service_key};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Enough for a forge's bursts of parallel deliveries and a NAT of a few hosts, far
/// below the global cap so one address cannot hold the door.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 20;

/// One `hooks.trusted_proxies` entry: an address (`192.0.2.1`, a whole /32 or /128)
/// or a CIDR block (`10.0.0.0/8`).
pub fn parse_ip_or_cidr(entry: &str) -> Result<ipnet::IpNet, String> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<std::net::IpAddr>() {
        return Ok(addr.into());
    }
    entry
        .parse::<ipnet::IpNet>()
        .map_err(|_| format!("`{entry}` is neither an IP address nor a CIDR block like 10.0.0.0/8"))
}

/// A rustls server configuration from a PEM certificate chain and its private key.
/// The error names the key to fix (`services.hook_receiver.tls_cert` / `tls_key`).
pub fn tls_server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, Problem> {
    let own = format!("services.{}", service_key("hook-receiver"));
    let problem = |which: &str, message: String| Problem {
        key: format!("{own}.{which}"),
        message,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            problem(
                "tls_cert",
                format!("cannot read a PEM certificate from {}: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(problem(
            "tls_cert",
            format!("{} holds no PEM certificate", cert.display()),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        problem(
            "tls_key",
            format!("cannot read a PEM private key from {}: {e}", key.display()),
        )
    })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| problem("tls_cert", format!("no usable TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            problem(
                "tls_key",
                format!(
                    "{} does not go with the certificate in {}: {e}",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
    // The receiver speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl super::HooksConfig {
    /// `max_connections_per_address`, or its default (0: no limit).
    pub fn connections_per_address(&self) -> usize {
        self.max_connections_per_address
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS.min(self.max_connections))
    }
}

impl FerryConfig {
    pub(super) fn door_problems(&self, out: &mut Vec<Problem>) {
        let bad = |out: &mut Vec<Problem>, key: String, message: &str| {
            out.push(Problem {
                key,
                message: message.into(),
            })
        };
        let h = &self.hooks;
        for (key, value) in [
            ("hooks.max_connections", h.max_connections as u64),
            ("hooks.header_timeout_secs", h.header_timeout_secs),
            ("hooks.body_timeout_secs", h.body_timeout_secs),
        ] {
            if value == 0 {
                bad(out, key.into(), "must be greater than 0");
            }
        }
        if h.max_connections_per_address
            .is_some_and(|n| n > h.max_connections)
        {
            bad(
                out,
                "hooks.max_connections_per_address".into(),
                "must not exceed hooks.max_connections (0 turns the per-address cap off)",
            );
        }
        for entry in &h.trusted_proxies {
            if let Err(e) = parse_ip_or_cidr(entry) {
                bad(out, "hooks.trusted_proxies".into(), &e);
            }
        }
        let own = service_key("hook-receiver");
        for (name, s) in &self.services {
            let tls = s.tls_cert.is_some() || s.tls_key.is_some();
            if *name != own && (tls || s.api_listen.is_some()) {
                bad(
                    out,
                    format!("services.{name}"),
                    "tls_cert, tls_key and api_listen belong to [services.hook_receiver] only",
                );
            }
        }
        let s = self.service("hook-receiver");
        match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => {
                if let Err(p) = tls_server_config(cert, key) {
                    out.push(p);
                }
            }
            (Some(_), None) => bad(
                out,
                format!("services.{own}.tls_key"),
                "is required with tls_cert (the certificate's PEM private key)",
            ),
            (None, Some(_)) => bad(
                out,
                format!("services.{own}.tls_cert"),
                "is required with tls_key (the PEM certificate chain)",
            ),
            (None, None) => {}
        }
        if s.api_listen.is_some_and(|a| a.port() != 0) && s.api_listen == s.listen {
            bad(
                out,
                format!("services.{own}.api_listen"),
                "must differ from listen (leave it out to serve /api on listen)",
            );
        }
    }
}
