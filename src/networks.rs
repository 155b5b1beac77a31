//! Protected networks, their host-group segments, and traffic direction.
//!
//! Owns [`NetworkSet`], built once from the configured `[[networks]]` (and
//! `[[host_groups]]`), which answers for each packet which protected network (if any) its
//! source and destination belong to, and so its [`Direction`]: inbound (into a protected
//! network from outside), outbound, internal (both ends protected) or external (neither;
//! transit traffic). It also answers which [`Segment`] each protected end is in: the part
//! of its network that one host group (or no group) holds, whose traffic the per-network
//! series count under the labels `network`, `host_group`, `protection_level` and
//! `data_grade`. Lookups, twice per packet, go through the crate's prefix map
//! ([`CidrMap`]): one map answers both questions, allocation-free, and for IPv4 usually
//! with one table read and one comparison.
//!
//! # Invariants
//! - An address's network is the most specific network prefix holding it, its host group
//!   the most specific group prefix holding it (the first listed, for a prefix listed
//!   twice), as if each were looked up alone: the one map holds every prefix of both, each
//!   with the network and group of the most specific prefixes holding all of it, and an
//!   address's most specific prefix overall has the network and group of the address.
//! - Segments are fixed when the set is built: one per protected network with no group,
//!   plus one per (network, group) pair whose prefixes meet, so their number is bounded
//!   by the config, never by traffic.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cidr_map::CidrMap;
use crate::config::{HostGroupConfig, NetworkConfig};
use crate::protection::{Asset, Protection};

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
    /// Each prefix's network and segment.
    prefixes: CidrMap<Slot>,
    segments: Vec<Segment>,
}

/// What a range of addresses is: its protected network and segment, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    network: Option<u16>,
    segment: Option<u16>,
}

/// The part of a protected network one host group holds (or that no group holds): the
/// unit the per-network series count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The protected network's name.
    pub network: String,
    /// The host group (or the default asset, for the addresses in no group).
    pub asset: Asset,
}

/// The segments of both ends of a packet, for the ends in a protected network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segments {
    /// Segment index of the source.
    pub src: Option<u16>,
    /// Segment index of the destination.
    pub dst: Option<u16>,
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
    /// Builds the set with no host groups: one segment per network. The most specific
    /// prefix wins when ranges overlap (the first network listed, for a prefix listed
    /// twice).
    pub fn new(networks: &[NetworkConfig]) -> NetworkSet {
        NetworkSet::with_host_groups(networks, &[], &Protection::default())
    }

    /// Builds the set with its segments: `host_groups` are the config's groups, in the
    /// order of `protection`'s group indices.
    pub fn with_host_groups(
        networks: &[NetworkConfig],
        host_groups: &[HostGroupConfig],
        protection: &Protection,
    ) -> NetworkSet {
        let index = |i: usize| u16::try_from(i).unwrap_or(u16::MAX);
        let nets: Vec<(IpNet, u16)> = (networks.iter().enumerate())
            .flat_map(|(i, n)| n.cidrs.iter().map(move |c| (c.0, index(i))))
            .collect();
        let groups: Vec<(IpNet, u16)> = (host_groups.iter().enumerate())
            .flat_map(|(i, g)| g.cidrs.iter().map(move |c| (c.0, index(i))))
            .collect();
        let mut segments: Vec<(u16, Option<u16>)> =
            (0..networks.len()).map(|n| (index(n), None)).collect();
        let mut entries = Vec::with_capacity(nets.len() + groups.len());
        for &(prefix, _) in nets.iter().chain(&groups) {
            let network = innermost(&nets, prefix);
            let group = innermost(&groups, prefix);
            let segment = network.map(|n| {
                let key = (n, group);
                let at = segments.iter().position(|s| *s == key).unwrap_or_else(|| {
                    segments.push(key);
                    segments.len() - 1
                });
                index(at)
            });
            entries.push((prefix, Slot { network, segment }));
        }
        let segments = segments
            .into_iter()
            .map(|(n, g)| Segment {
                network: networks
                    .get(usize::from(n))
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                asset: protection.asset_of_group(g).clone(),
            })
            .collect();
        NetworkSet {
            names: networks.iter().map(|n| n.name.clone()).collect(),
            prefixes: CidrMap::new(entries),
            segments,
        }
    }

    /// Network names, indexed by network index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Every segment, indexed by segment index: each network's addresses in no group
    /// first (segment `n` for network `n`), then each (network, group) pair.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The protected network containing `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<u16> {
        self.prefixes.lookup(addr).and_then(|s| s.network)
    }

    /// Where a packet from `src` to `dst` falls, and the segments of its protected ends.
    #[inline]
    pub fn locate(&self, src: IpAddr, dst: IpAddr) -> (Placement, Segments) {
        let none = Slot {
            network: None,
            segment: None,
        };
        let s = self.prefixes.lookup(src).unwrap_or(none);
        let d = self.prefixes.lookup(dst).unwrap_or(none);
        (
            Placement {
                src: s.network,
                dst: d.network,
            },
            Segments {
                src: s.segment,
                dst: d.segment,
            },
        )
    }
}

/// The value of the most specific prefix of `prefixes` holding all of `net` (the first
/// listed, among equal ones).
fn innermost(prefixes: &[(IpNet, u16)], net: IpNet) -> Option<u16> {
    let mut best: Option<(u8, u16)> = None;
    for &(p, value) in prefixes {
        if p.contains(&net) && best.is_none_or(|(len, _)| p.prefix_len() > len) {
            best = Some((p.prefix_len(), value));
        }
    }
    best.map(|(_, value)| value)
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
            s.locate(ip("192.0.2.1"), ip("10.0.0.1")).0.direction(),
            Direction::Inbound
        );
        assert_eq!(
            s.locate(ip("10.0.0.1"), ip("192.0.2.1")).0.direction(),
            Direction::Outbound
        );
        assert_eq!(
            s.locate(ip("10.0.0.1"), ip("10.9.0.1")).0.direction(),
            Direction::Internal
        );
        assert_eq!(
            s.locate(ip("192.0.2.1"), ip("198.51.100.1")).0.direction(),
            Direction::External
        );
    }

    fn segment_of(s: &NetworkSet, addr: &str) -> Option<(String, String)> {
        let (_, segments) = s.locate(ip(addr), ip("192.0.2.1"));
        let seg = s.segments().get(usize::from(segments.src?))?;
        Some((seg.network.clone(), seg.asset.host_group.clone()))
    }

    #[test]
    fn each_protected_address_falls_in_the_segment_of_its_network_and_group() {
        let config = crate::config::parse(
            r#"
[[networks]]
name = "lan"
cidrs = ["10.0.0.0/8"]
[[networks]]
name = "dmz"
cidrs = ["10.9.0.0/16"]
[[host_groups]]
name = "db"
cidrs = ["10.9.5.0/24"]
protection_level = 4
[[host_groups]]
name = "wide"
cidrs = ["10.0.0.0/7", "10.3.0.0/16"]
"#,
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let protection = Protection::new(&config);
        let s = NetworkSet::with_host_groups(&config.networks, &config.host_groups, &protection);
        let pair = |n: &str, g: &str| Some((n.to_owned(), g.to_owned()));
        assert_eq!(segment_of(&s, "10.1.2.3"), pair("lan", "wide"));
        assert_eq!(segment_of(&s, "10.3.2.3"), pair("lan", "wide"));
        assert_eq!(segment_of(&s, "10.9.5.1"), pair("dmz", "db"));
        assert_eq!(segment_of(&s, "10.9.6.1"), pair("dmz", "wide"));
        assert_eq!(
            segment_of(&s, "11.0.0.1"),
            None,
            "a group outside every network"
        );
        assert_eq!(s.lookup(ip("11.0.0.1")), None);
        assert_eq!(s.lookup(ip("10.9.5.1")), Some(1));
        // The networks' ungrouped segments come first, in network order, then the pairs as
        // their prefixes are met (networks' first, then groups').
        let labels: Vec<(&str, &str, &str)> = (s.segments().iter())
            .map(|g| {
                (
                    g.network.as_str(),
                    g.asset.host_group.as_str(),
                    g.asset.level.as_str(),
                )
            })
            .collect();
        assert_eq!(
            labels,
            [
                ("lan", "ungrouped", "2"),
                ("dmz", "ungrouped", "2"),
                ("lan", "wide", "2"),
                ("dmz", "wide", "2"),
                ("dmz", "db", "4"),
            ]
        );
    }

    #[test]
    fn without_host_groups_each_network_is_one_ungrouped_segment() {
        let s = set();
        assert_eq!(
            segment_of(&s, "10.1.2.3"),
            Some(("lan".into(), "ungrouped".into()))
        );
        assert_eq!(
            segment_of(&s, "10.9.2.3"),
            Some(("dmz".into(), "ungrouped".into()))
        );
        assert_eq!(s.segments().len(), 2);
    }
}
