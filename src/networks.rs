//! Protected networks and traffic direction.
//!
//! Owns [`NetworkSet`], built once from the configured `[[networks]]`, which answers for
//! each packet which protected network (if any) its source and destination belong to, and
//! so its [`Direction`]: inbound (into a protected network from outside), outbound,
//! internal (both ends protected) or external (neither; transit traffic). Lookups are a
//! short linear scan over at most `config::limits::MAX_NETWORKS` prefixes per address
//! family, allocation-free, cheap next to a hash lookup for the sizes a gateway has.
//! IPv4, twice per packet, first reads a 64 KiB table indexed by the address's top 16 bits,
//! which settles every address outside blocks that hold a prefix longer than /16 (all of
//! them for the usual RFC 1918 networks) with one load.

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
    v4_blocks: V4Blocks,
}

/// [`V4Blocks`] entry: no protected network contains any address of the /16 block.
const BLOCK_NONE: u8 = 0;
/// [`V4Blocks`] entry: a prefix longer than /16 lies in the block; scan the prefixes.
const BLOCK_SCAN: u8 = u8::MAX;

/// The answer for each IPv4 /16 block: [`BLOCK_NONE`], [`BLOCK_SCAN`], or network index + 1
/// for a block that one prefix of at most /16 covers whole (and no longer prefix lies in).
/// Empty (every lookup scans) in a `NetworkSet::default()`.
#[derive(Clone, Default)]
struct V4Blocks(Vec<u8>);

impl std::fmt::Debug for V4Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V4Blocks({} blocks)", self.0.len())
    }
}

impl V4Blocks {
    /// The table for `v4`, sorted longest prefix first (as `NetworkSet::new` sorts it).
    fn new(v4: &[Prefix<u32>]) -> V4Blocks {
        let table = (0..=u16::MAX)
            .map(|block| {
                let base = u32::from(block) << 16;
                for p in v4 {
                    if p.mask.count_ones() > 16 {
                        // A longer prefix inside this block: the answer depends on the low bits.
                        if p.bits & 0xffff_0000 == base {
                            return BLOCK_SCAN;
                        }
                    } else if base & p.mask == p.bits {
                        // The most specific prefix covering the whole block.
                        return u8::try_from(p.network + 1)
                            .ok()
                            .filter(|&v| v != BLOCK_SCAN)
                            .unwrap_or(BLOCK_SCAN);
                    }
                }
                BLOCK_NONE
            })
            .collect();
        V4Blocks(table)
    }
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
        set.v4_blocks = V4Blocks::new(&set.v4);
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
                let [b0, b1, _, _] = a.to_be_bytes();
                match self
                    .v4_blocks
                    .0
                    .get(usize::from(u16::from_be_bytes([b0, b1])))
                {
                    Some(&BLOCK_NONE) => None,
                    Some(&BLOCK_SCAN) | None => self.scan_v4(a),
                    Some(&n) => Some(u16::from(n - 1)),
                }
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

    /// The most specific IPv4 prefix containing `a`, by linear scan.
    fn scan_v4(&self, a: u32) -> Option<u16> {
        self.v4
            .iter()
            .find(|p| a & p.mask == p.bits)
            .map(|p| p.network)
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

    #[test]
    fn block_table_agrees_with_the_linear_scan() {
        // Overlapping prefixes of every kind: shorter and longer than /16, nested, a /32,
        // one straddling nothing, and the default route.
        let nets = vec![
            NetworkConfig {
                name: "a".into(),
                cidrs: vec![
                    "10.0.0.0/8".parse::<Cidr>().unwrap(),
                    "192.168.7.0/24".parse().unwrap(),
                ],
            },
            NetworkConfig {
                name: "b".into(),
                cidrs: vec![
                    "10.9.0.0/16".parse().unwrap(),
                    "10.9.8.7/32".parse().unwrap(),
                    "172.16.0.0/12".parse().unwrap(),
                ],
            },
            NetworkConfig {
                name: "c".into(),
                cidrs: vec![
                    "10.9.128.0/17".parse().unwrap(),
                    "0.0.0.0/0".parse().unwrap(),
                ],
            },
        ];
        let s = NetworkSet::new(&nets);
        let mut x: u32 = 0x1234_5678;
        let edges = [
            0x0a00_0000,
            0x0a09_0000,
            0x0a09_7fff,
            0x0a09_8000,
            0x0a09_0807,
            0x0a09_0808,
            0xc0a8_0700,
            0xc0a8_0800,
            0xac10_0000,
            0xac20_0000,
            0,
            u32::MAX,
        ];
        let random = (0..200_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Half the draws near the interesting prefixes, half anywhere.
            if x & 1 == 0 {
                0x0a09_0000 | (x >> 16)
            } else {
                x
            }
        });
        for a in edges.into_iter().chain(random) {
            let addr = IpAddr::V4(a.into());
            assert_eq!(s.lookup(addr), s.scan_v4(a), "{addr}");
        }
        assert_eq!(s.lookup(ip("10.9.8.7")), Some(1));
        assert_eq!(s.lookup(ip("10.9.200.1")), Some(2));
        assert_eq!(s.lookup(ip("8.8.8.8")), Some(2));
        assert_eq!(NetworkSet::default().lookup(ip("10.0.0.1")), None);
    }
}
