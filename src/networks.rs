//! Protected networks and traffic direction.
//!
//! Owns [`NetworkSet`], built once from the configured `[[networks]]`, which answers for
//! each packet which protected network (if any) its source and destination belong to, and
//! so its [`Direction`]: inbound (into a protected network from outside), outbound,
//! internal (both ends protected) or external (neither; transit traffic). Lookups are a
//! short linear scan over at most `config::limits::MAX_NETWORKS` prefixes per address
//! family, allocation-free, cheap next to a hash lookup for the sizes a gateway has.

use std::net::IpAddr;

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

/// One prefix: network bits, mask, and the index of the network it belongs to.
#[derive(Clone, Copy, Debug)]
struct Prefix<T> {
    bits: T,
    mask: T,
    network: u16,
}

/// The protected networks, ready for per-packet lookups.
#[derive(Clone, Debug, Default)]
pub struct NetworkSet {
    names: Vec<String>,
    v4: Vec<Prefix<u32>>,
    v6: Vec<Prefix<u128>>,
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
    /// Builds the set. Longer prefixes are tried first, so a more specific network wins
    /// when ranges overlap.
    pub fn new(networks: &[NetworkConfig]) -> NetworkSet {
        let mut set = NetworkSet::default();
        for (i, n) in networks.iter().enumerate() {
            let network = u16::try_from(i).unwrap_or(u16::MAX);
            set.names.push(n.name.clone());
            for cidr in &n.cidrs {
                match cidr.0 {
                    ipnet::IpNet::V4(net) => set.v4.push(Prefix {
                        bits: u32::from(net.network()),
                        mask: u32::from(net.netmask()),
                        network,
                    }),
                    ipnet::IpNet::V6(net) => set.v6.push(Prefix {
                        bits: u128::from(net.network()),
                        mask: u128::from(net.netmask()),
                        network,
                    }),
                }
            }
        }
        set.v4
            .sort_by_key(|p| std::cmp::Reverse(p.mask.count_ones()));
        set.v6
            .sort_by_key(|p| std::cmp::Reverse(p.mask.count_ones()));
        set
    }

    /// Network names, indexed by network index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The protected network containing `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<u16> {
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find(|p| a & p.mask == p.bits)
                    .map(|p| p.network)
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.lookup(IpAddr::V4(v4));
                }
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find(|p| a & p.mask == p.bits)
                    .map(|p| p.network)
            }
        }
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
