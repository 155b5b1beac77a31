//! [`CidrMap`]: from an address to the value of the most specific CIDR prefix holding it,
//! looked up per packet.
//!
//! The crate's one prefix lookup: the protected networks (`crate::networks`: which network
//! an address is in), the blocklist rule's lists (`crate::detect::addr_set`: which list
//! names it) and host-group scopes (whether it is in the group, [`CidrMap::from_nets`]).
//!
//! Does not own: parsing prefixes (`crate::config::Cidr`) or what a match means.
//!
//! # Invariants
//! - Built once: the prefixes become sorted, disjoint, inclusive ranges of `u32` (IPv4)
//!   and `u128` (IPv6), each carrying the value of the most specific prefix that covers
//!   it (of equal prefixes, the first given); touching ranges with equal values are merged.
//! - A lookup never allocates. IPv6 is one binary search. IPv4 first reads a table of 4096
//!   entries (12 bytes each for a `u16` value), indexed by the address's top
//!   [`BLOCK_BITS`] bits, which settles every address of a block that no range touches or
//!   one range covers (all of them, for the usual private networks) with that one read; in
//!   the other blocks the search only compares against the ranges that touch the block.
//! - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as its IPv4 address.

use std::net::IpAddr;

use ipnet::IpNet;

/// Bits of an IPv4 address that pick its block in the IPv4 index.
pub const BLOCK_BITS: u32 = 12;

/// One inclusive range of addresses and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span<T, V> {
    first: T,
    last: T,
    value: V,
}

/// An address family's integer form.
trait Bits: Copy + Ord {
    /// The lowest address.
    const ZERO: Self;
    /// The next address, `None` past the last one.
    fn next(self) -> Option<Self>;
    /// The previous address, `None` before the first one.
    fn prev(self) -> Option<Self>;
}

/// Implements [`Bits`] for unsigned integer types.
macro_rules! impl_bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            const ZERO: $t = 0;
            fn next(self) -> Option<$t> {
                self.checked_add(1)
            }
            fn prev(self) -> Option<$t> {
                self.checked_sub(1)
            }
        }
    )*};
}

impl_bits!(u32, u128);

/// Appends `first..=last` with `value`, merged into the last range when they touch and
/// share the value.
fn push<T: Bits, V: Eq>(out: &mut Vec<Span<T, V>>, first: T, last: T, value: V) {
    if let Some(prev) = out.last_mut()
        && prev.value == value
        && prev.last.next() == Some(first)
    {
        prev.last = last;
        return;
    }
    out.push(Span { first, last, value });
}

/// Emits the part of the innermost open prefix from `cursor` to its end, then closes it;
/// `cursor` moves past it (`None` past the family's last address).
fn close<T: Bits, V: Copy + Eq>(
    open: &mut Vec<Span<T, V>>,
    out: &mut Vec<Span<T, V>>,
    cursor: &mut Option<T>,
) {
    if let Some(top) = open.pop() {
        if let Some(from) = *cursor
            && from <= top.last
        {
            push(out, from, top.last, top.value);
        }
        *cursor = top.last.next();
    }
}

/// Turns prefixes, in the order given, into the disjoint ranges of the module invariants.
///
/// Two prefixes are either nested or disjoint, so sorted by start (outer first, then the
/// order given) they form a tree walked with a stack of the prefixes open at the cursor:
/// each address goes to the innermost one.
fn flatten<T: Bits, V: Copy + Eq>(prefixes: Vec<Span<T, V>>) -> Vec<Span<T, V>> {
    let mut sorted: Vec<(usize, Span<T, V>)> = prefixes.into_iter().enumerate().collect();
    sorted.sort_by(|(i, a), (j, b)| {
        a.first
            .cmp(&b.first)
            .then(b.last.cmp(&a.last))
            .then(i.cmp(j))
    });
    let mut out = Vec::with_capacity(sorted.len());
    let mut open: Vec<Span<T, V>> = Vec::new();
    let mut cursor = Some(T::ZERO);
    for (_, p) in sorted {
        while open.last().is_some_and(|top| top.last < p.first) {
            close(&mut open, &mut out, &mut cursor);
        }
        if let Some(top) = open.last() {
            if top.first == p.first && top.last == p.last {
                // The same prefix again: the first one given keeps it.
                continue;
            }
            // The enclosing prefix holds the addresses up to where this one starts.
            if let (Some(from), Some(to)) = (cursor, p.first.prev())
                && from <= to
            {
                push(&mut out, from, to, top.value);
            }
        }
        cursor = Some(p.first);
        open.push(p);
    }
    while !open.is_empty() {
        close(&mut open, &mut out, &mut cursor);
    }
    out.shrink_to_fit();
    out
}

/// The value of the range holding `x` among `spans`.
#[inline]
fn find<T: Bits, V: Copy>(spans: &[Span<T, V>], x: T) -> Option<V> {
    let after = spans.partition_point(|s| s.first <= x);
    let s = spans.get(after.checked_sub(1)?)?;
    (x <= s.last).then_some(s.value)
}

/// What an IPv4 block (the addresses sharing their top [`BLOCK_BITS`] bits) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block<V> {
    /// No range holds any address of the block.
    None,
    /// One range holds the whole block; this is its value.
    Whole(V),
    /// Ranges hold parts of the block: they are among `ranges[from..=to]`.
    Search { from: u32, to: u32 },
}

/// One [`Block`] per IPv4 block, so that most lookups are settled by one read. Empty when
/// there are no IPv4 ranges.
#[derive(Clone, PartialEq, Eq)]
struct V4Index<V>(Vec<Block<V>>);

impl<V> Default for V4Index<V> {
    fn default() -> V4Index<V> {
        V4Index(Vec::new())
    }
}

impl<V> std::fmt::Debug for V4Index<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "V4Index({} blocks)", self.0.len())
    }
}

impl<V: Copy> V4Index<V> {
    fn new(spans: &[Span<u32, V>]) -> V4Index<V> {
        // Range indices are u32; billions of ranges never fit in memory anyway.
        if spans.is_empty() || u32::try_from(spans.len()).is_err() {
            return V4Index::default();
        }
        let size = 1u64 << (32 - BLOCK_BITS);
        let blocks = (0..1u64 << BLOCK_BITS)
            .map(|block| {
                let (base, end) = (block * size, block * size + size - 1);
                // The ranges that touch the block: from the first ending in or after it to
                // the last starting in or before it.
                let from = spans.partition_point(|s| u64::from(s.last) < base);
                let to = spans.partition_point(|s| u64::from(s.first) <= end);
                match spans.get(from) {
                    Some(s)
                        if to == from + 1
                            && u64::from(s.first) <= base
                            && u64::from(s.last) >= end =>
                    {
                        Block::Whole(s.value)
                    }
                    Some(_) if to > from => Block::Search {
                        from: u32::try_from(from).unwrap_or(u32::MAX),
                        to: u32::try_from(to - 1).unwrap_or(u32::MAX),
                    },
                    _ => Block::None,
                }
            })
            .collect();
        V4Index(blocks)
    }
}

/// Addresses to values through CIDR prefixes, most specific first (see the module
/// invariants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrMap<V> {
    v4: Vec<Span<u32, V>>,
    v6: Vec<Span<u128, V>>,
    v4_index: V4Index<V>,
}

impl<V> Default for CidrMap<V> {
    fn default() -> CidrMap<V> {
        CidrMap {
            v4: Vec::new(),
            v6: Vec::new(),
            v4_index: V4Index::default(),
        }
    }
}

impl CidrMap<()> {
    /// The set of addresses in any of `nets`: ask it [`CidrMap::contains`].
    pub fn from_nets(nets: &[IpNet]) -> CidrMap<()> {
        CidrMap::new(nets.iter().map(|&n| (n, ())))
    }
}

impl<V: Copy + Eq> CidrMap<V> {
    /// The map of `entries`: each address maps to the value of the longest prefix that
    /// holds it, and of equal prefixes to the first one's. Host bits set in a prefix are
    /// ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn new(entries: impl IntoIterator<Item = (IpNet, V)>) -> CidrMap<V> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (net, value) in entries {
            match net.trunc() {
                IpNet::V4(n) => v4.push(Span {
                    first: u32::from(n.network()),
                    last: u32::from(n.broadcast()),
                    value,
                }),
                IpNet::V6(n) => v6.push(Span {
                    first: u128::from(n.network()),
                    last: u128::from(n.broadcast()),
                    value,
                }),
            }
        }
        let v4 = flatten(v4);
        CidrMap {
            v4_index: V4Index::new(&v4),
            v4,
            v6: flatten(v6),
        }
    }

    /// The value of the most specific prefix holding `ip`, if any.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<V> {
        match ip {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.lookup_v4(u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }

    /// Whether a prefix holds `ip`.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.lookup(ip).is_some()
    }

    /// Whether no prefix was given.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Disjoint ranges held (after merging).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Most addresses are settled by their block's entry alone.
    #[inline]
    fn lookup_v4(&self, x: u32) -> Option<V> {
        let block = usize::try_from(x >> (32 - BLOCK_BITS)).ok()?;
        match *self.v4_index.0.get(block)? {
            Block::Whole(value) => Some(value),
            Block::Search { from, to } => {
                let (from, to) = (usize::try_from(from).ok()?, usize::try_from(to).ok()?);
                find(self.v4.get(from..=to)?, x)
            }
            Block::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The value a plain scan finds: the longest prefix holding `addr`, the first given
    /// of equal ones.
    fn naive<V: Copy>(entries: &[(IpNet, V)], addr: IpAddr) -> Option<V> {
        let addr = match addr {
            IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        let mut best: Option<(u8, V)> = None;
        for (n, v) in entries {
            if n.trunc().contains(&addr) && best.is_none_or(|(len, _)| n.prefix_len() > len) {
                best = Some((n.prefix_len(), *v));
            }
        }
        best.map(|(_, v)| v)
    }

    #[test]
    fn most_specific_prefix_wins_and_equal_prefixes_keep_the_first() {
        let entries = [
            (net("10.0.0.0/8"), 0u16),
            (net("10.9.0.0/16"), 1),
            (net("10.9.8.7/32"), 2),
            (net("10.9.0.0/16"), 3),
            (net("0.0.0.0/0"), 4),
            (net("2001:db8::/32"), 5),
            (net("2001:db8:1::/48"), 6),
        ];
        let m = CidrMap::new(entries);
        assert_eq!(m.lookup(ip("10.1.2.3")), Some(0));
        assert_eq!(m.lookup(ip("10.9.2.3")), Some(1));
        assert_eq!(m.lookup(ip("10.9.8.7")), Some(2));
        assert_eq!(m.lookup(ip("10.9.8.8")), Some(1));
        assert_eq!(m.lookup(ip("8.8.8.8")), Some(4));
        assert_eq!(m.lookup(ip("255.255.255.255")), Some(4));
        assert_eq!(m.lookup(ip("::ffff:10.9.8.7")), Some(2), "v4-mapped");
        assert_eq!(m.lookup(ip("2001:db8:1::1")), Some(6));
        assert_eq!(m.lookup(ip("2001:db8:2::1")), Some(5));
        assert_eq!(m.lookup(ip("2001:db9::1")), None);
        assert_eq!(CidrMap::<u16>::default().lookup(ip("10.0.0.1")), None);
    }

    #[test]
    fn touching_ranges_of_one_value_merge() {
        let m = CidrMap::from_nets(&[
            net("10.0.0.0/25"),
            net("10.0.0.128/25"),
            net("10.0.0.5/32"),
            net("10.0.1.0/24"),
            net("::/0"),
            net("2001:db8::1/128"),
        ]);
        assert_eq!(m.ranges(), 2, "{m:?}");
        assert!(m.contains(ip("10.0.1.255")));
        assert!(!m.contains(ip("10.0.2.0")));
        assert!(m.contains(ip("2001:db8::2")));
        assert!(!CidrMap::from_nets(&[]).contains(ip("::")));
    }

    #[test]
    fn family_edges_are_covered() {
        let m = CidrMap::new([
            (net("0.0.0.0/1"), 1u8),
            (net("255.255.255.255/32"), 2),
            (net("0.0.0.0/32"), 3),
            (net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"), 4),
        ]);
        assert_eq!(m.lookup(ip("0.0.0.0")), Some(3));
        assert_eq!(m.lookup(ip("0.0.0.1")), Some(1));
        assert_eq!(m.lookup(ip("127.255.255.255")), Some(1));
        assert_eq!(m.lookup(ip("128.0.0.0")), None);
        assert_eq!(m.lookup(ip("255.255.255.254")), None);
        assert_eq!(m.lookup(ip("255.255.255.255")), Some(2));
        assert_eq!(
            m.lookup(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
            Some(4)
        );
    }

    /// Prefixes concentrated in a few blocks of each family, so they nest and touch often.
    fn entry() -> impl Strategy<Value = (IpNet, u8)> {
        let v4 = (0u32..3, 0u32..1 << 16, 0u8..=32).prop_map(|(block, low, len)| {
            let addr = std::net::Ipv4Addr::from((0x0a00_0000 + (block << 20)) | low);
            IpNet::new(IpAddr::V4(addr), len).unwrap()
        });
        let v6 = (0u128..1 << 16, 96u8..=128).prop_map(|(low, len)| {
            let addr = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | low);
            IpNet::new(IpAddr::V6(addr), len).unwrap()
        });
        (prop_oneof![v4, v6], 0u8..4)
    }

    fn probe() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (0u32..3, 0u32..1 << 16).prop_map(|(block, low)| IpAddr::V4(std::net::Ipv4Addr::from(
                (0x0a00_0000 + (block << 20)) | low
            ))),
            any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
            (0u128..1 << 16).prop_map(|low| IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2001_0db8u128 << 96) | low
            ))),
            any::<u32>().prop_map(|a| IpAddr::V6(std::net::Ipv4Addr::from(a).to_ipv6_mapped())),
        ]
    }

    proptest! {
        #[test]
        fn lookup_agrees_with_a_naive_scan(
            entries in prop::collection::vec(entry(), 0..40),
            probes in prop::collection::vec(probe(), 1..200),
        ) {
            let m = CidrMap::new(entries.iter().copied());
            for w in m.v4.windows(2) {
                prop_assert!(w[0].last < w[1].first, "sorted and disjoint");
            }
            for w in m.v6.windows(2) {
                prop_assert!(w[0].last < w[1].first, "sorted and disjoint");
            }
            let mut addresses = probes;
            // Every range's edges and their neighbours.
            for s in &m.v4 {
                for a in [Some(s.first), s.first.prev(), Some(s.last), s.last.next()].into_iter().flatten() {
                    addresses.push(IpAddr::V4(a.into()));
                }
            }
            for s in &m.v6 {
                for a in [Some(s.first), s.first.prev(), Some(s.last), s.last.next()].into_iter().flatten() {
                    addresses.push(IpAddr::V6(a.into()));
                }
            }
            for addr in addresses {
                prop_assert_eq!(m.lookup(addr), naive(&entries, addr), "{}", addr);
            }
        }
    }
}
