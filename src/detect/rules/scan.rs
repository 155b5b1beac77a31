//! `port_scan` and `host_sweep`: one source probing many services of a host, or many
//! hosts, with few answers.
//!
//! Both read the packet's [`Probe`]: the first packet of a flow is an attempt, the
//! target's first packet back an answer, a RST or an ICMP unreachable quoting the probe a
//! refusal. In the spirit of sequential hypothesis testing (TRW), what counts against a
//! source is probes that fail or go unanswered: the guard `max_answered_ratio` lets a
//! source whose connections mostly succeed (a browser, a resolver) through, while a
//! scanner crosses the threshold after a few tens of probes. A fast scan is caught by a
//! short window, a slow one by a second rule with a window of minutes. A second guard,
//! `max_probe_bytes`, keeps floods out: probes are small (nmap and masscan send about 60
//! bytes on the wire), so a key whose attempts average more is a flood to random ports
//! or hosts (left to `volume`), not a scan. A flood of small packets to random ports
//! still reads as a scan: nothing in the packets tells the two apart but the rate.
//!
//! - `port_scan` key: (scanner, target), value: distinct services (`protocol/port`, or
//!   the IP protocol for protocol scans) probed, contributors: the services.
//! - `host_sweep` key: scanner, value: distinct hosts probed, contributors: the hosts;
//!   the alert's `port` is set when one port carries nearly all probes.

use std::net::IpAddr;

use super::{Hashes, contributors, ip_from_bits, service_name};
use crate::alert::ContributorKind;
use crate::config::ScanParams;
use crate::detect::sketch::{Hll, KeyTable, Merge, Reset, TopK, Weight, hash64, hash128, ip_bits};
use crate::detect::{AlertKey, Finding, Outcome, PacketView, Rule};

/// Probes of one key.
#[derive(Clone, Copy, Default)]
struct Counts {
    attempts: u64,
    answered: u64,
    failed: u64,
    /// Wire bytes of the attempts.
    attempt_bytes: u64,
}

impl Counts {
    fn add(&mut self, outcome: Outcome, wire_len: u32) {
        match outcome {
            Outcome::Attempt => {
                self.attempts += 1;
                self.attempt_bytes = self.attempt_bytes.saturating_add(u64::from(wire_len));
            }
            Outcome::Answered => self.answered += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    /// Whether the attempts average at most `max_bytes` on the wire.
    fn merge(&mut self, other: Counts) {
        self.attempts = self.attempts.saturating_add(other.attempts);
        self.answered = self.answered.saturating_add(other.answered);
        self.failed = self.failed.saturating_add(other.failed);
        self.attempt_bytes = self.attempt_bytes.saturating_add(other.attempt_bytes);
    }

    fn small_probes(self, max_bytes: u64) -> bool {
        self.attempt_bytes <= max_bytes.saturating_mul(self.attempts)
    }

    /// Both guards of a scan: mostly unanswered, small probes.
    fn scan_like(self, g: Guards) -> bool {
        self.mostly_unanswered(g.max_answered_ratio) && self.small_probes(g.max_probe_bytes)
    }

    /// Whether answers stay within `ratio` of the probes.
    fn mostly_unanswered(self, ratio: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let probes = self.attempts.saturating_add(self.failed) as f64;
        #[allow(clippy::cast_precision_loss)]
        let answered = self.answered as f64;
        answered <= ratio * probes
    }
}

#[derive(Default)]
pub(super) struct PortAcc {
    counts: Counts,
    services: Hll,
    top: TopK<u32, 8>,
}

impl Weight for PortAcc {
    fn weight(&self) -> u64 {
        self.counts.attempts + self.counts.failed
    }
}

impl Merge for PortAcc {
    fn merge(&mut self, other: &PortAcc) {
        self.counts.merge(other.counts);
        self.services.merge(&other.services);
        self.top.merge(&other.top);
    }
}

impl Reset for PortAcc {
    fn reset(&mut self) {
        let PortAcc {
            counts,
            services,
            top,
        } = self;
        *counts = Counts::default();
        services.reset();
        top.reset();
    }
}

/// What separates a scan from other traffic with many targets.
#[derive(Clone, Copy)]
struct Guards {
    max_answered_ratio: f64,
    max_probe_bytes: u64,
}

impl Guards {
    fn new(p: &ScanParams) -> Guards {
        Guards {
            max_answered_ratio: p.max_answered_ratio,
            max_probe_bytes: u64::from(p.max_probe_bytes),
        }
    }
}

pub(in crate::detect) struct PortScan {
    pub(super) table: KeyTable<(IpAddr, IpAddr), PortAcc>,
    guards: Guards,
}

impl PortScan {
    pub(super) fn new(max_keys: usize, p: &ScanParams) -> PortScan {
        PortScan {
            table: KeyTable::new(max_keys),
            guards: Guards::new(p),
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        let Some(probe) = p.probe else {
            return;
        };
        let key = (probe.scanner, probe.target);
        let hash = h.pair(&probe);
        let acc = match probe.outcome {
            Outcome::Answered => self.table.get_mut(key, hash),
            Outcome::Attempt | Outcome::Failed => self.table.entry(key, hash),
        };
        let Some(mut acc) = acc else {
            return;
        };
        acc.counts.add(probe.outcome, p.wire_len);
        if probe.outcome != Outcome::Answered {
            acc.services.insert(hash64(u64::from(probe.service)));
            acc.top.add(probe.service, 1);
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Finding)) {
        for ((scanner, target), acc) in self.table.iter() {
            // The guards first: they are cheap and drop most keys before the estimate.
            if !acc.counts.scan_like(self.guards) {
                continue;
            }
            let value = acc.services.estimate().round();
            if value < rule.threshold {
                continue;
            }
            let mut list = Vec::new();
            contributors(&mut list, ContributorKind::Port, &acc.top, 1, service_name);
            hold(Finding {
                key: AlertKey {
                    src: Some(*scanner),
                    dst: Some(*target),
                    aux: 0,
                },
                value,
                contributors: list,
                port: None,
                sources: None,
                evidence: Vec::new(),
            });
        }
    }
}

#[derive(Default)]
pub(super) struct SweepAcc {
    counts: Counts,
    hosts: Hll,
    top_hosts: TopK<u128, 8>,
    top_services: TopK<u32, 4>,
}

impl Weight for SweepAcc {
    fn weight(&self) -> u64 {
        self.counts.attempts + self.counts.failed
    }
}

impl Merge for SweepAcc {
    fn merge(&mut self, other: &SweepAcc) {
        self.counts.merge(other.counts);
        self.hosts.merge(&other.hosts);
        self.top_hosts.merge(&other.top_hosts);
        self.top_services.merge(&other.top_services);
    }
}

impl Reset for SweepAcc {
    fn reset(&mut self) {
        let SweepAcc {
            counts,
            hosts,
            top_hosts,
            top_services,
        } = self;
        *counts = Counts::default();
        hosts.reset();
        top_hosts.reset();
        top_services.reset();
    }
}

pub(in crate::detect) struct HostSweep {
    pub(super) table: KeyTable<IpAddr, SweepAcc>,
    guards: Guards,
}

impl HostSweep {
    pub(super) fn new(max_keys: usize, p: &ScanParams) -> HostSweep {
        HostSweep {
            table: KeyTable::new(max_keys),
            guards: Guards::new(p),
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        let Some(probe) = p.probe else {
            return;
        };
        let hash = h.scanner(&probe);
        let acc = match probe.outcome {
            Outcome::Answered => self.table.get_mut(probe.scanner, hash),
            Outcome::Attempt | Outcome::Failed => self.table.entry(probe.scanner, hash),
        };
        let Some(mut acc) = acc else {
            return;
        };
        acc.counts.add(probe.outcome, p.wire_len);
        if probe.outcome != Outcome::Answered {
            let target = ip_bits(probe.target);
            acc.hosts.insert(hash128(target));
            acc.top_hosts.add(target, 1);
            acc.top_services.add(probe.service, 1);
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Finding)) {
        for (scanner, acc) in self.table.iter() {
            // The guards first: they are cheap and drop most keys before the estimate.
            if !acc.counts.scan_like(self.guards) {
                continue;
            }
            let value = acc.hosts.estimate().round();
            if value < rule.threshold {
                continue;
            }
            let mut list = Vec::new();
            contributors(&mut list, ContributorKind::Host, &acc.top_hosts, 1, |b| {
                ip_from_bits(b).to_string()
            });
            let probes = acc.counts.attempts + acc.counts.failed;
            let port = acc.top_services.sorted().first().and_then(|&(s, n)| {
                let has_port = matches!(s >> 16, 6 | 17);
                (has_port && n.saturating_mul(10) >= probes.saturating_mul(9))
                    .then(|| u16::try_from(s & 0xffff).ok())
                    .flatten()
            });
            hold(Finding {
                key: AlertKey {
                    src: Some(*scanner),
                    dst: None,
                    aux: 0,
                },
                value,
                contributors: list,
                port,
                sources: None,
                evidence: Vec::new(),
            });
        }
    }
}
