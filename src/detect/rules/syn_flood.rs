//! `syn_flood`: SYNs per second to a destination that completes few handshakes.
//!
//! Key: the destination (victim), only inside the rule's scope (under `protected`, a
//! protected host). Value: SYNs (SYN without ACK) per second over the
//! window. Guard: completed handshakes (the initiator's ACK moving a flow from
//! `SynSent`/`SynReceived` to `Established`) are at most `max_completion_ratio` of the
//! SYNs, so a busy but healthy server does not alert; and the SYNs go to at most
//! `max_ports` distinct ports (`HyperLogLog`), so a fast port scan is not called a flood.
//! Contributors: top sources and ports by guaranteed count, only those worth naming,
//! and the distinct-source estimate (spoofed floods have about one SYN per source).

use std::net::IpAddr;
use std::time::Duration;

use super::{Hashes, contributors, ip_from_bits, meaningful, per_second};
use crate::alert::ContributorKind;
use crate::config::SynFloodParams;
use crate::detect::sketch::{Hll, KeyTable, Merge, Reset, TopK, Weight, hash64, hash128, ip_bits};
use crate::detect::{AlertKey, Finding, PacketView, Rule, Scope, SourceCount};

#[derive(Default)]
pub(super) struct Acc {
    syns: u64,
    completions: u64,
    ports_seen: Hll,
    sources: TopK<u128, 8>,
    ports: TopK<u16, 8>,
    sources_seen: Hll,
}

impl Weight for Acc {
    fn weight(&self) -> u64 {
        self.syns
    }
}

impl Merge for Acc {
    fn merge(&mut self, other: &Acc) {
        self.syns = self.syns.saturating_add(other.syns);
        self.completions = self.completions.saturating_add(other.completions);
        self.ports_seen.merge(&other.ports_seen);
        self.sources.merge(&other.sources);
        self.ports.merge(&other.ports);
        self.sources_seen.merge(&other.sources_seen);
    }
}

impl Reset for Acc {
    fn reset(&mut self) {
        let Acc {
            syns,
            completions,
            ports_seen,
            sources,
            ports,
            sources_seen,
        } = self;
        (*syns, *completions) = (0, 0);
        ports_seen.reset();
        sources.reset();
        ports.reset();
        sources_seen.reset();
    }
}

pub(in crate::detect) struct SynFlood {
    pub(super) table: KeyTable<IpAddr, Acc>,
    max_completion_ratio: f64,
    max_ports: f64,
    scope: Scope,
}

impl SynFlood {
    pub(super) fn new(rule: &Rule, p: &SynFloodParams) -> SynFlood {
        SynFlood {
            table: KeyTable::new(rule.max_keys),
            scope: rule.scope.clone(),
            max_completion_ratio: p.max_completion_ratio,
            #[allow(clippy::cast_precision_loss)]
            max_ports: p.max_ports as f64,
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        let Some(flags) = p.tcp_flags else {
            return;
        };
        if flags.is_syn_only() {
            if !self.scope.admits_dst(p) {
                return;
            }
            if let Some(mut acc) = self.table.entry(p.dst, h.dst(p)) {
                acc.syns += 1;
                let src = ip_bits(p.src);
                acc.sources.add(src, 1);
                acc.sources_seen.insert(hash128(src));
                acc.ports.add(p.dst_port, 1);
                acc.ports_seen.insert(hash64(u64::from(p.dst_port)));
            }
            return;
        }
        // Hashed only here: most packets are neither SYNs nor completions.
        if super::filter::completes_handshake(p)
            && let Some(mut acc) = self.table.get_mut(p.dst, h.dst(p))
        {
            acc.completions += 1;
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (dst, acc) in self.table.iter() {
            let value = per_second(acc.syns, elapsed, rule.window);
            #[allow(clippy::cast_precision_loss)]
            let healthy = acc.completions as f64 > self.max_completion_ratio * acc.syns as f64;
            // The distinct-port estimate is the dear test: only for keys the others pass.
            if value < rule.threshold
                || healthy
                || acc.ports_seen.estimate().round() > self.max_ports
            {
                continue;
            }
            let mut list = Vec::new();
            let min = meaningful(acc.syns);
            contributors(&mut list, ContributorKind::Source, &acc.sources, min, |b| {
                ip_from_bits(b).to_string()
            });
            contributors(&mut list, ContributorKind::Port, &acc.ports, min, |p| {
                format!("tcp/{p}")
            });
            hold(Finding {
                key: AlertKey {
                    src: None,
                    dst: Some(*dst),
                    aux: 0,
                },
                value,
                contributors: list,
                port: None,
                sources: Some(SourceCount {
                    distinct: acc.sources_seen.estimate(),
                    packets: acc.syns,
                }),
                evidence: Vec::new(),
            });
        }
    }
}
