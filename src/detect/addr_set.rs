//! [`AddrSet`]: a set of IPv4 and IPv6 addresses and CIDRs, looked up per packet.
//!
//! Owns the `blocklist` rule's named lists of addresses (kept in the crate's prefix map)
//! and the parser of their format ([`parse_list`]: one address or CIDR per line, `#`
//! comments, blank lines ignored).
//!
//! Does not own: reading files or turning parse problems into config errors (the
//! `blocklist` rule family does both), or deciding what a match means.
//!
//! # Invariants
//! - The entries go into the crate's prefix map ([`CidrMap`]): sorted, disjoint ranges
//!   (merged where entries of one list touch), so a lookup is a table read and a short
//!   binary search per family, and never allocates.
//! - Every address has at most one list: where entries of two lists overlap, the more
//!   specific entry names it (the entry listed first, for the same network listed twice).
//! - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is looked up as its IPv4 address.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cidr_map::CidrMap;

/// Addresses and CIDRs from one or more named lists, ready for per-packet lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrSet {
    entries: CidrMap<u16>,
    lists: Vec<String>,
}

impl AddrSet {
    /// The list holding `ip`, if any (allocation-free).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<u16> {
        self.entries.lookup(ip)
    }

    /// Whether `ip` is listed.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.entries.contains(ip)
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Disjoint ranges held (after merging).
    pub fn ranges(&self) -> usize {
        self.entries.ranges()
    }

    /// The name of list `list` (as given to [`AddrSetBuilder::list`]).
    pub fn list_name(&self, list: u16) -> &str {
        self.lists.get(usize::from(list)).map_or("", String::as_str)
    }
}

/// Most entries one set holds (a blocklist rule's files and inline entries together):
/// building takes about 40 bytes an entry, so a list of ten million cannot take the
/// daemon past its memory limit.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Collects entries, then merges them into an [`AddrSet`].
#[derive(Debug, Default)]
pub struct AddrSetBuilder {
    entries: Vec<(IpNet, u16)>,
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

    /// Adds one network (a host is a /32 or /128) to list `list`; false, adding nothing,
    /// once the set holds [`MAX_ENTRIES`].
    pub fn insert(&mut self, net: IpNet, list: u16) -> bool {
        if self.entries.len() >= MAX_ENTRIES {
            return false;
        }
        self.entries.push((net, list));
        true
    }

    /// The merged set.
    pub fn build(self) -> AddrSet {
        AddrSet {
            entries: CidrMap::new(self.entries),
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
    fn addr_set_merges_entries_of_one_list_and_names_the_more_specific_list() {
        let s = set(&[("10.0.0.0/25", 0), ("10.0.0.128/25", 0), ("10.0.0.5/32", 0)]);
        assert_eq!(s.ranges(), 1);
        let s = set(&[
            ("10.0.0.0/24", 0),
            ("0.0.0.0/0", 1),
            ("255.255.255.255/32", 1),
        ]);
        assert_eq!(s.lookup(ip("10.0.0.9")), Some(0));
        assert_eq!(s.lookup(ip("10.0.1.0")), Some(1));
        assert_eq!(s.ranges(), 3, "list 1 around list 0");
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
}
