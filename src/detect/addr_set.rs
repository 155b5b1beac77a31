//! [`AddrSet`]: a set of IPv4 and IPv6 addresses and CIDRs, looked up per packet.
//!
//! Owns the lookup structure of the `blocklist` rule and the parser of its list format
//! ([`parse_list`]: one address or CIDR per line, `#` comments, blank lines ignored).
//!
//! Does not own: reading files or turning parse problems into config errors (the
//! `blocklist` rule family does both), or deciding what a match means.
//!
//! # Invariants
//! - Entries become inclusive ranges of `u32` (IPv4) and `u128` (IPv6) that are sorted,
//!   disjoint and, within one list, merged when they overlap or touch; so a lookup is one
//!   binary search per family (about 17 comparisons for 100k ranges) and never allocates.
//! - Every range remembers the list (file) it came from. Where entries of two lists
//!   overlap, the address is attributed to the entry that starts lower (the longer one on
//!   a tie), so one address has exactly one list.
//! - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as its IPv4 address.

use std::net::IpAddr;

use ipnet::IpNet;

/// One inclusive range of addresses and the list it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span<T> {
    first: T,
    last: T,
    list: u16,
}

/// An address family's integer form.
trait Bits: Copy + Ord {
    /// The next address, `None` past the last one.
    fn next(self) -> Option<Self>;
}

impl Bits for u32 {
    fn next(self) -> Option<u32> {
        self.checked_add(1)
    }
}

impl Bits for u128 {
    fn next(self) -> Option<u128> {
        self.checked_add(1)
    }
}

/// Sorts `spans` and makes them disjoint (see the module invariants).
fn merge<T: Bits>(mut spans: Vec<Span<T>>) -> Vec<Span<T>> {
    spans.sort_unstable_by(|a, b| {
        a.first
            .cmp(&b.first)
            .then(b.last.cmp(&a.last))
            .then(a.list.cmp(&b.list))
    });
    let mut out: Vec<Span<T>> = Vec::with_capacity(spans.len());
    for s in spans {
        let Some(last) = out.last_mut() else {
            out.push(s);
            continue;
        };
        let touches = s.first <= last.last || last.last.next() == Some(s.first);
        if !touches {
            out.push(s);
        } else if s.last <= last.last {
            // Covered by the range before it.
        } else if s.list == last.list {
            last.last = s.last;
        } else if let Some(first) = last.last.next() {
            // `s.last > last.last`, so `last.last` is not the family's last address.
            out.push(Span {
                first,
                last: s.last,
                list: s.list,
            });
        }
    }
    out.shrink_to_fit();
    out
}

/// The list of the range holding `x`.
#[inline]
fn find<T: Bits>(spans: &[Span<T>], x: T) -> Option<u16> {
    let after = spans.partition_point(|s| s.first <= x);
    let s = spans.get(after.checked_sub(1)?)?;
    (x <= s.last).then_some(s.list)
}

/// Addresses and CIDRs from one or more named lists, ready for per-packet lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrSet {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
    lists: Vec<String>,
}

impl AddrSet {
    /// The list holding `ip`, if any (allocation-free).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<u16> {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }

    /// Whether `ip` is listed.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.lookup(ip).is_some()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Disjoint ranges held (after merging).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The name of list `list` (as given to [`AddrSetBuilder::list`]).
    pub fn list_name(&self, list: u16) -> &str {
        self.lists.get(usize::from(list)).map_or("", String::as_str)
    }
}

/// Collects entries, then merges them into an [`AddrSet`].
#[derive(Debug, Default)]
pub struct AddrSetBuilder {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
    lists: Vec<String>,
}

impl AddrSetBuilder {
    /// Starts a new list named `name` (a file's base name, `inline`); its entries are
    /// attributed to it. Past 65,536 lists the last one is reused.
    pub fn list(&mut self, name: &str) -> u16 {
        if let Ok(index) = u16::try_from(self.lists.len()) {
            self.lists.push(name.to_owned());
            index
        } else {
            u16::MAX
        }
    }

    /// Adds one network (a host is a /32 or /128) to list `list`.
    pub fn insert(&mut self, net: IpNet, list: u16) {
        match net.trunc() {
            IpNet::V4(n) => self.v4.push(Span {
                first: u32::from(n.network()),
                last: u32::from(n.broadcast()),
                list,
            }),
            IpNet::V6(n) => self.v6.push(Span {
                first: u128::from(n.network()),
                last: u128::from(n.broadcast()),
                list,
            }),
        }
    }

    /// The merged set.
    pub fn build(self) -> AddrSet {
        AddrSet {
            v4: merge(self.v4),
            v6: merge(self.v6),
            lists: self.lists,
        }
    }
}

/// Parses list text: one address or CIDR per line; `#` starts a comment (whole line or
/// trailing); blank lines are ignored. Each entry goes to `add`; each bad line to `bad`
/// as (1-based line number, message).
pub fn parse_list(text: &str, add: &mut dyn FnMut(IpNet), bad: &mut dyn FnMut(usize, String)) {
    for (index, raw) in text.lines().enumerate() {
        let entry = raw.split('#').next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        match entry.parse::<crate::config::Cidr>() {
            Ok(c) => add(c.0),
            Err(message) => bad(index + 1, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn set(entries: &[(&str, u16)]) -> AddrSet {
        let mut b = AddrSetBuilder::default();
        let max = entries.iter().map(|e| e.1).max().unwrap_or(0);
        for i in 0..=max {
            b.list(&format!("list{i}"));
        }
        for (e, list) in entries {
            b.insert(e.parse().unwrap(), *list);
        }
        b.build()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addr_set_finds_hosts_and_networks_of_both_families() {
        let s = set(&[
            ("203.0.113.0/24", 0),
            ("198.51.100.7/32", 1),
            ("2001:db8::1/128", 1),
            ("2001:db8:1::/48", 0),
        ]);
        assert_eq!(s.lookup(ip("203.0.113.0")), Some(0));
        assert_eq!(s.lookup(ip("203.0.113.255")), Some(0));
        assert_eq!(s.lookup(ip("203.0.114.0")), None);
        assert_eq!(s.lookup(ip("198.51.100.7")), Some(1));
        assert_eq!(s.lookup(ip("198.51.100.8")), None);
        assert_eq!(s.lookup(ip("2001:db8::1")), Some(1));
        assert_eq!(s.lookup(ip("2001:db8::2")), None);
        assert_eq!(s.lookup(ip("2001:db8:1:ffff::9")), Some(0));
        assert_eq!(s.lookup(ip("::ffff:203.0.113.9")), Some(0), "v4-mapped");
        assert_eq!(s.list_name(1), "list1");
    }

    #[test]
    fn addr_set_merges_overlapping_and_adjacent_entries_of_one_list() {
        let s = set(&[
            ("10.0.0.0/25", 0),
            ("10.0.0.128/25", 0),
            ("10.0.0.5/32", 0),
            ("0.0.0.0/0", 1),
            ("255.255.255.255/32", 1),
        ]);
        // 10.0.0.0/24 (list 0) is inside 0.0.0.0/0 (list 1, starts lower, longer).
        assert_eq!(s.v4.len(), 1, "{:?}", s.v4);
        let s = set(&[("10.0.0.0/25", 0), ("10.0.0.128/25", 0), ("10.0.0.5/32", 0)]);
        assert_eq!(s.v4.len(), 1, "{:?}", s.v4);
        assert_eq!(s.ranges(), 1);
    }

    #[test]
    fn list_lines_allow_comments_and_blank_lines_and_name_bad_lines() {
        let text =
            "# header\n\n203.0.113.0/24  # trailing\n  2001:db8::1\nnot-an-ip\n10.0.0.0/33\n";
        let mut added = Vec::new();
        let mut errors = Vec::new();
        parse_list(text, &mut |n| added.push(n), &mut |line, m| {
            errors.push((line, m));
        });
        assert_eq!(
            added,
            vec![
                "203.0.113.0/24".parse::<IpNet>().unwrap(),
                "2001:db8::1/128".parse().unwrap()
            ]
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 5);
        assert!(errors[0].1.contains("not-an-ip"), "{errors:?}");
        assert_eq!(errors[1].0, 6);
    }

    /// Networks concentrated in a small address range, so they overlap often.
    fn v4_net() -> impl Strategy<Value = (IpNet, u16)> {
        (0u32..4096, 20u8..=32, 0u16..3).prop_map(|(host, prefix, list)| {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 | host);
            (IpNet::new(IpAddr::V4(addr), prefix).unwrap().trunc(), list)
        })
    }

    fn v6_net() -> impl Strategy<Value = (IpNet, u16)> {
        (0u128..4096, 116u8..=128, 0u16..3).prop_map(|(host, prefix, list)| {
            let addr = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | host);
            (IpNet::new(IpAddr::V6(addr), prefix).unwrap().trunc(), list)
        })
    }

    proptest! {
        #[test]
        fn addr_set_agrees_with_a_naive_scan(
            nets in prop::collection::vec(prop_oneof![v4_net(), v6_net()], 0..60),
            probes in prop::collection::vec(0u128..5000, 1..100),
        ) {
            let mut b = AddrSetBuilder::default();
            for i in 0..3 {
                b.list(&format!("l{i}"));
            }
            for (n, l) in &nets {
                b.insert(*n, *l);
            }
            let s = b.build();
            for w in s.v4.windows(2) {
                prop_assert!(w[0].last < w[1].first, "sorted and disjoint");
            }
            for w in s.v6.windows(2) {
                prop_assert!(w[0].last < w[1].first, "sorted and disjoint");
            }
            for p in probes {
                #[allow(clippy::cast_possible_truncation)]
                let v4 = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 | p as u32));
                let v6 = IpAddr::V6(std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | p));
                for addr in [v4, v6] {
                    let holders: Vec<u16> = nets
                        .iter()
                        .filter(|(n, _)| n.contains(&addr))
                        .map(|(_, l)| *l)
                        .collect();
                    match s.lookup(addr) {
                        None => prop_assert!(holders.is_empty(), "{addr} missed"),
                        Some(l) => prop_assert!(holders.contains(&l), "{addr}: list {l} of {holders:?}"),
                    }
                }
            }
        }
    }
}
