//! `dns_amplification` and `dns_tunnel`.
//!
//! - `dns_amplification` key: the victim (destination). Counts DNS responses from port 53
//!   of at least `min_response_bytes` that the victim did not ask for: the response opens
//!   a flow instead of answering the victim's query. Value: such responses per second over
//!   the window. Guard: at least `min_reflectors` distinct reflectors (`HyperLogLog`).
//!   Contributors: top reflectors.
//! - `dns_tunnel` key: (source, registered domain). A query is suspicious when a label
//!   below the registered domain is at least `min_label_len` long and the characters of
//!   those labels carry at least `min_entropy` bits each (encoded data, not words).
//!   Value: suspicious queries in the window. Contributors: the domain. The registered
//!   domain is taken as the last two labels (no public-suffix list, so `example.co.uk`
//!   groups as `co.uk`).

use std::net::IpAddr;
use std::time::Duration;

use super::{contributors, ip_from_bits, per_second};
use crate::alert::Contributor;
use crate::config::RuleConfig;
use crate::decode::{DnsName, ip_protocol};
use crate::detect::sketch::{Hll, KeyTable, TopK, Weight, hash128, ip_bits, mix64};
use crate::detect::{AlertKey, Observation, PacketView, Rule};

/// Bytes of the registered domain kept for the alert.
const DOMAIN_BYTES: usize = 64;

#[derive(Default)]
pub(super) struct AmpAcc {
    responses: u64,
    reflectors: Hll,
    top: TopK<8>,
}

impl Weight for AmpAcc {
    fn weight(&self) -> u64 {
        self.responses
    }
}

pub(in crate::detect) struct Amplification {
    pub(super) table: KeyTable<IpAddr, AmpAcc>,
    min_reflectors: u64,
    min_response_bytes: u32,
}

impl Amplification {
    pub(super) fn new(max_keys: usize, c: &RuleConfig) -> Amplification {
        Amplification {
            table: KeyTable::new(max_keys),
            min_reflectors: c.min_reflectors.unwrap_or(2),
            min_response_bytes: c.min_response_bytes.unwrap_or(512),
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>) {
        let Some(dns) = p.dns else {
            return;
        };
        let unsolicited = p.flow.is_none_or(|f| f.is_initiator_side);
        if p.protocol != ip_protocol::UDP
            || p.src_port != 53
            || !dns.is_response
            || !unsolicited
            || dns.message_len < self.min_response_bytes
        {
            return;
        }
        if let Some(acc) = self.table.entry(p.dst, hash128(ip_bits(p.dst))) {
            acc.responses += 1;
            let src = ip_bits(p.src);
            acc.reflectors.insert(hash128(src));
            acc.top.add(src, 1);
        }
    }

    pub(super) fn evaluate(
        &self,
        rule: &Rule,
        elapsed: Duration,
        hold: &mut dyn FnMut(Observation),
    ) {
        for (dst, acc) in self.table.iter() {
            let value = per_second(acc.responses, elapsed, rule.window);
            #[allow(clippy::cast_precision_loss)]
            let few = acc.reflectors.estimate().round() < self.min_reflectors as f64;
            if value < rule.threshold || few {
                continue;
            }
            let mut list = Vec::new();
            contributors(&mut list, "reflector", &acc.top, |b| {
                ip_from_bits(b).to_string()
            });
            hold(Observation {
                key: AlertKey {
                    src: None,
                    dst: Some(*dst),
                    aux: 0,
                },
                value,
                contributors: list,
                port: None,
            });
        }
    }
}

#[derive(Clone, Copy)]
pub(super) struct TunnelAcc {
    suspicious: u64,
    domain: [u8; DOMAIN_BYTES],
    domain_len: usize,
}

impl Default for TunnelAcc {
    fn default() -> TunnelAcc {
        TunnelAcc {
            suspicious: 0,
            domain: [0; DOMAIN_BYTES],
            domain_len: 0,
        }
    }
}

impl Weight for TunnelAcc {
    fn weight(&self) -> u64 {
        self.suspicious
    }
}

pub(in crate::detect) struct Tunnel {
    pub(super) table: KeyTable<(IpAddr, u64), TunnelAcc>,
    min_label_len: usize,
    min_entropy: f64,
}

/// What a query name looks like below its registered domain.
struct NameShape {
    longest_label: usize,
    entropy: f64,
    domain_hash: u64,
    domain: [u8; DOMAIN_BYTES],
    domain_len: usize,
}

/// Splits `name` into the labels below the registered domain (measured) and the last two
/// labels (hashed, case-insensitively, and copied). `None` without a label below it.
fn shape(name: &DnsName<'_>) -> Option<NameShape> {
    let count = name.labels().count();
    let below = count.checked_sub(2).filter(|&n| n > 0)?;
    let mut histogram = [0u32; 256];
    let mut chars = 0u32;
    let mut s = NameShape {
        longest_label: 0,
        entropy: 0.0,
        domain_hash: 0,
        domain: [0; DOMAIN_BYTES],
        domain_len: 0,
    };
    for (i, label) in name.labels().enumerate() {
        if i < below {
            s.longest_label = s.longest_label.max(label.len());
            for &b in label {
                if let Some(h) = histogram.get_mut(usize::from(b)) {
                    *h += 1;
                }
                chars += 1;
            }
            continue;
        }
        if i > below {
            push(&mut s, b'.');
        }
        for &b in label {
            let b = b.to_ascii_lowercase();
            s.domain_hash = mix64(s.domain_hash ^ u64::from(b));
            push(&mut s, b);
        }
        s.domain_hash = mix64(s.domain_hash ^ 0x2e);
    }
    let total = f64::from(chars.max(1));
    s.entropy = histogram
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum();
    Some(s)
}

fn push(s: &mut NameShape, b: u8) {
    if let Some(slot) = s.domain.get_mut(s.domain_len) {
        *slot = b;
        s.domain_len += 1;
    }
}

impl Tunnel {
    pub(super) fn new(max_keys: usize, c: &RuleConfig) -> Tunnel {
        Tunnel {
            table: KeyTable::new(max_keys),
            min_label_len: c.min_label_len.unwrap_or(20),
            min_entropy: c.min_entropy.unwrap_or(3.0),
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>) {
        let Some(question) = p.dns.filter(|d| !d.is_response).and_then(|d| d.question) else {
            return;
        };
        let Some(s) = shape(&question.name) else {
            return;
        };
        if s.longest_label < self.min_label_len || s.entropy < self.min_entropy {
            return;
        }
        let key = (p.src, s.domain_hash);
        if let Some(acc) = self
            .table
            .entry(key, hash128(ip_bits(p.src)) ^ s.domain_hash)
        {
            acc.suspicious += 1;
            acc.domain = s.domain;
            acc.domain_len = s.domain_len;
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Observation)) {
        for ((src, hash), acc) in self.table.iter() {
            #[allow(clippy::cast_precision_loss)]
            let value = acc.suspicious as f64;
            if value < rule.threshold {
                continue;
            }
            let domain = acc.domain.get(..acc.domain_len).unwrap_or_default();
            hold(Observation {
                key: AlertKey {
                    src: Some(*src),
                    dst: None,
                    aux: *hash,
                },
                value,
                contributors: vec![Contributor {
                    kind: "domain".to_owned(),
                    value: String::from_utf8_lossy(domain).into_owned(),
                    count: acc.suspicious,
                }],
                port: None,
            });
        }
    }
}
