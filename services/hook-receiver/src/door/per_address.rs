//! Connections open per client address (`hooks.max_connections_per_address`), checked
//! before the global cap so that one host cannot take every place and leave real
//! forges with 503s. IPv6 addresses count per /64, like failed authentications.
//! An address is followed only while it has a connection open: memory is bounded by
//! the connections being served.

use crate::auth_limit::client;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub struct PerAddress {
    /// 0: no limit.
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; its place is given back when this is dropped.
pub struct Place {
    owner: Arc<PerAddress>,
    addr: IpAddr,
}

impl PerAddress {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: Mutex::default(),
        })
    }

    /// A place for one more connection from `addr`, unless it already has `cap` open.
    /// `None` also when there is no limit (nothing to give back then).
    pub fn enter(self: &Arc<Self>, addr: IpAddr) -> Result<Option<Place>, Full> {
        if self.cap == 0 {
            return Ok(None);
        }
        let addr = client(addr);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(addr).or_insert(0);
        if *n >= self.cap {
            return Err(Full);
        }
        *n += 1;
        Ok(Some(Place {
            owner: self.clone(),
            addr,
        }))
    }

    #[cfg(test)]
    fn followed(&self) -> usize {
        self.open.lock().unwrap().len()
    }
}

/// The address already has `hooks.max_connections_per_address` connections open.
#[derive(Debug)]
pub struct Full;

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_places_come_back_and_are_forgotten() {
        let limit = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.enter(a).unwrap();
        let _second = limit.enter(a).unwrap();
        assert!(
            limit.enter(a).is_err(),
            "a third connection from one address"
        );
        let _other = limit.enter(b).unwrap();
        drop(first);
        let _again = limit.enter(a).unwrap();
        drop((_second, _again, _other));
        assert_eq!(
            limit.followed(),
            0,
            "addresses without connections are kept"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_zero_turns_it_off() {
        let limit = PerAddress::new(1);
        let _one = limit.enter("2001:db8::1".parse().unwrap()).unwrap();
        assert!(limit.enter("2001:db8::2".parse().unwrap()).is_err());
        assert!(limit.enter("2001:db8:0:1::1".parse().unwrap()).is_ok());
        let off = PerAddress::new(0);
        for _ in 0..10 {
            assert!(off.enter("192.0.2.1".parse().unwrap()).unwrap().is_none());
        }
        assert_eq!(off.followed(), 0);
    }
}
