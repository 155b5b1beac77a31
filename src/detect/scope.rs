//! The traffic a rule looks at.
//!
//! Owns [`Scope`], a rule's `scope` resolved against the config: everything, the
//! protected networks, or a host group with its prefixes. Whether a packet is in scope is
//! decided per packet, so [`Scope::admits`] allocates nothing.
//!
//! Does not own: parsing the `scope` string (`crate::config::RuleScope`, parsed once when
//! the config is read) or which packets a rule is offered (`super::detector`, which skips
//! the prefix test for scopes that need none).

use std::net::IpAddr;

use super::PacketView;
use crate::cidr_map::CidrMap;

/// Which traffic a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    All,
    /// Packets with at least one end in a protected network.
    Protected,
    /// Packets with at least one end in this host group (name, prefixes).
    Group(String, CidrMap<()>),
}

impl Scope {
    /// Whether `p` has an end in the scope.
    #[inline]
    pub(super) fn admits(&self, p: &PacketView<'_>) -> bool {
        match self {
            Scope::All => true,
            Scope::Protected => p.placement.src.is_some() || p.placement.dst.is_some(),
            Scope::Group(_, nets) => nets.contains(p.src) || nets.contains(p.dst),
        }
    }

    /// Whether `p`'s destination is in the scope: the victims a flood rule keys by are
    /// only those it protects, never the outside peer of a busy protected host.
    #[inline]
    pub(super) fn admits_dst(&self, p: &PacketView<'_>) -> bool {
        self.admits_host(p.dst, p.placement.dst)
    }

    /// Whether the host `addr`, in protected network `network` (if any), is in the scope.
    #[inline]
    pub(super) fn admits_host(&self, addr: IpAddr, network: Option<u16>) -> bool {
        match self {
            Scope::All => true,
            Scope::Protected => network.is_some(),
            Scope::Group(_, nets) => nets.contains(addr),
        }
    }

    /// The `network` of the scope's alerts: a host group's name.
    pub(super) fn network(&self) -> Option<String> {
        match self {
            Scope::Group(name, _) => Some(name.clone()),
            _ => None,
        }
    }
}
