//! `blocklist`: traffic to or from an address or CIDR listed in files or inline.
//!
//! Key: the listed address, as `src` when it initiated the flow (or, without a flow, sent
//! the packet) and as `dst` when it is the side that was contacted; so a listed scanner
//! probing us is `src`, a listed server our hosts connect to is `dst`. Value: packets in
//! the window (default threshold 1: any packet). Contributors: the peers (hosts it talked
//! with), the services (the contacted side's port) and the list (file base name, or
//! `inline`) the address is in.
//!
//! The address set is built when the rule set is built ([`load`]: every file read and
//! checked, every bad line reported as `file:line`) and shared by `Arc`; a reload that
//! only changed a file's contents hands the running state the new set
//! ([`Blocklist::adopt`]) and keeps its counts.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::{contributors, ip_from_bits, service_name};
use crate::alert::{Contributor, ContributorKind};
use crate::config::{BlocklistParams, ConfigError};
use crate::config::{MAX_BLOCKLIST_BYTES, read_text};
use crate::detect::addr_set::{AddrSet, AddrSetBuilder, MAX_ENTRIES, parse_list};
use crate::detect::sketch::{KeyTable, Merge, Reset, TopK, Weight, hash128, ip_bits, mix64};
use crate::detect::{AlertKey, Finding, PacketView, Rule};

/// List name of the rule's inline `entries`.
const INLINE: &str = "inline";

/// Reads every file of `blocklist` rule `rule` and its inline entries into one set;
/// problems (a missing file, a bad line) go to `errors`, each naming its file (and line).
pub(in crate::detect) fn load(
    rule: &str,
    c: &BlocklistParams,
    errors: &mut Vec<ConfigError>,
) -> AddrSet {
    let mut b = AddrSetBuilder::default();
    for path in &c.files {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let list = b.list(&name);
        match read_text(path, MAX_BLOCKLIST_BYTES) {
            Ok(text) => parse_file(&text, path, list, &mut b, errors),
            Err(e) => errors.push(ConfigError::whole_file(
                path,
                format!("rule `{rule}`: blocklist: {e}"),
            )),
        }
    }
    let mut full = false;
    if !c.entries.is_empty() {
        let list = b.list(INLINE);
        for e in &c.entries {
            full |= !b.insert(e.0, list);
        }
    }
    if full {
        errors.push(ConfigError::whole_file(
            Path::new("<config>"),
            format!("rule `{rule}`: more than {MAX_ENTRIES} blocklist entries"),
        ));
    }
    b.build()
}

fn parse_file(
    text: &str,
    path: &Path,
    list: u16,
    b: &mut AddrSetBuilder,
    errors: &mut Vec<ConfigError>,
) {
    let mut full = false;
    parse_list(
        text,
        &mut |net| full |= !b.insert(net, list),
        &mut |line, message| {
            errors.push(ConfigError {
                path: path.to_owned(),
                line: Some(line),
                column: None,
                key: None,
                message,
            });
        },
    );
    if full {
        errors.push(ConfigError::whole_file(
            path,
            format!("more than {MAX_ENTRIES} entries in the rule's blocklists; split the rule or trim the list"),
        ));
    }
}

#[derive(Default)]
pub(super) struct Acc {
    packets: u64,
    list: u16,
    peers: TopK<u128, 8>,
    /// Protocol << 16 | port.
    services: TopK<u32, 8>,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.packets
    }
}

impl Merge for Acc {
    fn merge(&mut self, other: &Acc) {
        self.packets = self.packets.saturating_add(other.packets);
        if other.packets > 0 {
            self.list = other.list;
        }
        self.peers.merge(&other.peers);
        self.services.merge(&other.services);
    }
}

impl Reset for Acc {
    fn reset(&mut self) {
        let Acc {
            packets,
            list,
            peers,
            services,
        } = self;
        (*packets, *list) = (0, 0);
        peers.reset();
        services.reset();
    }
}

pub(in crate::detect) struct Blocklist {
    /// (listed address, whether it initiated).
    pub(super) table: KeyTable<(IpAddr, bool), Acc>,
    set: Arc<AddrSet>,
}

impl Blocklist {
    pub(super) fn new(max_keys: usize, set: Arc<AddrSet>) -> Blocklist {
        Blocklist {
            table: KeyTable::new(max_keys),
            set,
        }
    }

    /// Takes the set of a reloaded rule whose config did not change (a list file did).
    pub(super) fn adopt(&mut self, set: Arc<AddrSet>) {
        self.set = set;
    }

    /// An empty set counts nothing: no packet need be offered.
    pub(super) fn needs(&self) -> u32 {
        if self.set.is_empty() {
            super::need::NEVER
        } else {
            0
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>) {
        if self.set.is_empty() {
            return;
        }
        // Without a flow (ARP, later fragments) the sender counts as the initiator.
        let src_initiated = p.flow.is_none_or(|f| f.is_initiator_side);
        let port = if src_initiated {
            p.dst_port
        } else {
            p.src_port
        };
        let service = u32::from(p.protocol) << 16 | u32::from(port);
        for (listed, peer, is_src) in [(p.src, p.dst, true), (p.dst, p.src, false)] {
            let Some(list) = self.set.lookup(listed) else {
                continue;
            };
            let initiated = is_src == src_initiated;
            let hash = hash128(ip_bits(listed)) ^ mix64(u64::from(initiated));
            if let Some(mut acc) = self.table.entry((listed, initiated), hash) {
                acc.packets += 1;
                acc.list = list;
                acc.peers.add(ip_bits(peer), 1);
                acc.services.add(service, 1);
            }
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Finding)) {
        for ((listed, initiated), acc) in self.table.iter() {
            #[allow(clippy::cast_precision_loss)]
            let value = acc.packets as f64;
            if value < rule.threshold {
                continue;
            }
            let mut list = Vec::new();
            contributors(&mut list, ContributorKind::Peer, &acc.peers, 1, |b| {
                ip_from_bits(b).to_string()
            });
            contributors(
                &mut list,
                ContributorKind::Port,
                &acc.services,
                1,
                service_name,
            );
            list.push(Contributor {
                kind: ContributorKind::List,
                value: self.set.list_name(acc.list).to_owned(),
                count: acc.packets,
            });
            let (src, dst) = if *initiated {
                (Some(*listed), None)
            } else {
                (None, Some(*listed))
            };
            hold(Finding {
                key: AlertKey { src, dst, aux: 0 },
                value,
                contributors: list,
                port: None,
                sources: None,
                evidence: Vec::new(),
            });
        }
    }
}
