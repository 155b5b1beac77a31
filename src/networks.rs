//! Protected networks and traffic direction.
//!
//! Owns [`NetworkSet`], built once from the configured `[[networks]]`, which answers for
//! each packet which protected network (if any) its source and destination belong to, and
//! so its [`Direction`]: inbound (into a protected network from outside), outbound,
//! internal (both ends protected) or external (neither; transit traffic). Lookups, twice
//! per packet, go through the crate's prefix map ([`CidrMap`]): allocation-free, and for
//! IPv4 usually one table read and one comparison.

use std::net::IpAddr;

use crate::cidr_map::CidrMap;
use crate::config::NetworkConfig;

/// Direction of a packet relative to the protected networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From outside into a protected network.
    Inbound,
    /// From a protected network to outside.
    Outbound,
    /// Between protected addresses.
    Internal,
    /// Between unprotected addresses (transit).
    External,
    /// Not IP: no addresses to judge.
    None,
}

impl Direction {
    /// Every direction, in label order.
    pub const ALL: [Direction; 5] = [
        Direction::Inbound,
        Direction::Outbound,
        Direction::Internal,
        Direction::External,
        Direction::None,
    ];

    /// The `direction` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
            Direction::External => "external",
            Direction::None => "none",
        }
    }

    /// Index into [`Direction::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The protected networks, ready for per-packet lookups.
#[derive(Clone, Debug, Default)]
pub struct NetworkSet {
    names: Vec<String>,
    /// Each prefix's network index.
    prefixes: CidrMap<u16>,
}

/// Where a packet's two ends fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Network index of the source, if protected.
    pub src: Option<u16>,
    /// Network index of the destination, if protected.
    pub dst: Option<u16>,
}

impl Placement {
    /// The packet's direction.
    pub fn direction(self) -> Direction {
        match (self.src, self.dst) {
            (Some(_), Some(_)) => Direction::Internal,
            (Some(_), None) => Direction::Outbound,
            (None, Some(_)) => Direction::Inbound,
            (None, None) => Direction::External,
        }
    }
}

impl NetworkSet {
    /// Builds the set. The most specific prefix wins when ranges overlap (the first
    /// network listed, for a prefix listed twice).
    pub fn new(networks: &[NetworkConfig]) -> NetworkSet {
        let names = networks.iter().map(|n| n.name.clone()).collect();
        let prefixes = networks.iter().enumerate().flat_map(|(i, n)| {
            let network = u16::try_from(i).unwrap_or(u16::MAX);
            n.cidrs.iter().map(move |cidr| (cidr.0, network))
        });
        NetworkSet {
            names,
            prefixes: CidrMap::new(prefixes),
        }
    }

    /// Network names, indexed by network index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The protected network containing `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<u16> {
        self.prefixes.lookup(addr)
    }

    /// Where a packet from `src` to `dst` falls.
    #[inline]
    pub fn place(&self, src: IpAddr, dst: IpAddr) -> Placement {
        Placement {
            src: self.lookup(src),
            dst: self.lookup(dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn set() -> NetworkSet {
        let nets = vec![
            NetworkConfig {
                name: "lan".into(),
                cidrs: vec![
                    "10.0.0.0/8".parse::<Cidr>().unwrap(),
                    "fd00::/8".parse().unwrap(),
                ],
            },
            NetworkConfig {
                name: "dmz".into(),
                cidrs: vec!["10.9.0.0/16".parse().unwrap()],
            },
        ];
        NetworkSet::new(&nets)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn most_specific_network_wins() {
        let s = set();
        assert_eq!(s.lookup(ip("10.1.2.3")), Some(0));
        assert_eq!(s.lookup(ip("10.9.2.3")), Some(1));
        assert_eq!(s.lookup(ip("fd00::1")), Some(0));
        assert_eq!(s.lookup(ip("::ffff:10.9.0.1")), Some(1));
        assert_eq!(s.lookup(ip("192.0.2.1")), None);
    }

    #[test]
    fn directions_follow_the_protected_side() {
        let s = set();
        assert_eq!(
            s.place(ip("192.0.2.1"), ip("10.0.0.1")).direction(),
            Direction::Inbound
        );
        assert_eq!(
            s.place(ip("10.0.0.1"), ip("192.0.2.1")).direction(),
            Direction::Outbound
        );
        assert_eq!(
            s.place(ip("10.0.0.1"), ip("10.9.0.1")).direction(),
            Direction::Internal
        );
        assert_eq!(
            s.place(ip("192.0.2.1"), ip("198.51.100.1")).direction(),
            Direction::External
        );
    }
}
