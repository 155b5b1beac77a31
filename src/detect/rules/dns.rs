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
//!   Value: suspicious queries in the window. Contributors: the domain (escaped:
//!   `crate::decode::escape_name_text`, as it leaves the process in alerts). The registered
//!   domain is the public suffix (Mozilla's Public Suffix List, compiled in by the `psl`
//!   crate, ICANN and private sections) plus one label: `example.co.uk`, `example.com`;
//!   an unknown top-level domain counts as a suffix of one label. The lookup runs on a
//!   lower-cased copy of the name on the stack, so the hot path does not allocate.

use std::net::IpAddr;
use std::time::Duration;

use psl::Psl as _;

use super::{contributors, ip_from_bits, per_second};
use crate::alert::{Contributor, ContributorKind};
use crate::config::{DnsAmplificationParams, DnsTunnelParams};
use crate::decode::{DnsName, ip_protocol};
use crate::detect::sketch::{
    Hll, KeyTable, Merge, Reset, TopK, Weight, hash_key, hash128, ip_bits, mix64,
};
use crate::detect::{AlertKey, Finding, PacketView, Rule, SourceCount};

/// Bytes of the registered domain kept for the alert.
const DOMAIN_BYTES: usize = 64;

/// Most bytes of label text in a DNS name (255 on the wire, length bytes included).
const NAME_BYTES: usize = 255;

/// Most labels in a DNS name (each takes at least two bytes on the wire).
const MAX_LABELS: usize = 128;

/// A DNS name's labels, lower-cased into a stack buffer.
struct Labels {
    bytes: [u8; NAME_BYTES],
    /// (start, length) of each label in `bytes`, leftmost first.
    spans: [(u8, u8); MAX_LABELS],
    count: usize,
}

impl Labels {
    /// Copies `name`; a hand-built name longer than the wire limits is cut.
    fn new(name: &DnsName<'_>) -> Labels {
        let mut l = Labels {
            bytes: [0; NAME_BYTES],
            spans: [(0, 0); MAX_LABELS],
            count: 0,
        };
        let mut used = 0usize;
        for label in name.labels() {
            let end = used.saturating_add(label.len());
            let (Some(out), Some(span), Ok(start), Ok(len)) = (
                l.bytes.get_mut(used..end),
                l.spans.get_mut(l.count),
                u8::try_from(used),
                u8::try_from(label.len()),
            ) else {
                break;
            };
            for (o, b) in out.iter_mut().zip(label) {
                *o = b.to_ascii_lowercase();
            }
            *span = (start, len);
            used = end;
            l.count += 1;
        }
        l
    }

    /// Label `i` (lower-cased), empty past the end.
    fn get(&self, i: usize) -> &[u8] {
        self.spans
            .get(i)
            .and_then(|&(start, len)| {
                let start = usize::from(start);
                self.bytes.get(start..start + usize::from(len))
            })
            .unwrap_or_default()
    }

    /// Labels in the registered domain: the public suffix's plus one.
    fn registered(&self) -> usize {
        let info = psl::List.find((0..self.count).rev().map(|i| self.get(i)));
        // `info.len` is the suffix's length in dotted form; count the labels it spans.
        let mut labels = 0;
        let mut len = 0;
        while len < info.len && labels < self.count {
            len += self.get(self.count - 1 - labels).len() + usize::from(labels > 0);
            labels += 1;
        }
        labels.max(1) + 1
    }
}

#[derive(Default)]
pub(super) struct AmpAcc {
    responses: u64,
    reflectors: Hll,
    top: TopK<u128, 8>,
}

impl Weight for AmpAcc {
    fn weight(&self) -> u64 {
        self.responses
    }
}

impl Merge for AmpAcc {
    fn merge(&mut self, other: &AmpAcc) {
        self.responses = self.responses.saturating_add(other.responses);
        self.reflectors.merge(&other.reflectors);
        self.top.merge(&other.top);
    }
}

impl Reset for AmpAcc {
    fn reset(&mut self) {
        let AmpAcc {
            responses,
            reflectors,
            top,
        } = self;
        *responses = 0;
        reflectors.reset();
        top.reset();
    }
}

pub(in crate::detect) struct Amplification {
    pub(super) table: KeyTable<IpAddr, AmpAcc>,
    min_reflectors: u64,
    min_response_bytes: u32,
}

impl Amplification {
    pub(super) fn new(max_keys: usize, p: &DnsAmplificationParams) -> Amplification {
        Amplification {
            table: KeyTable::new(max_keys),
            min_reflectors: p.min_reflectors,
            min_response_bytes: p.min_response_bytes,
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut super::Hashes) {
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
        if let Some(mut acc) = self.table.entry(p.dst, h.dst(p)) {
            acc.responses += 1;
            let src = ip_bits(p.src);
            acc.reflectors.insert(hash128(src));
            acc.top.add(src, 1);
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (dst, acc) in self.table.iter() {
            let value = per_second(acc.responses, elapsed, rule.window);
            if value < rule.threshold {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let min_reflectors = self.min_reflectors as f64;
            if acc.reflectors.estimate().round() < min_reflectors {
                continue;
            }
            let mut list = Vec::new();
            let min = super::meaningful(acc.responses);
            contributors(&mut list, ContributorKind::Reflector, &acc.top, min, |b| {
                ip_from_bits(b).to_string()
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
                    distinct: acc.reflectors.estimate(),
                    packets: acc.responses,
                }),
                evidence: Vec::new(),
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

impl Merge for TunnelAcc {
    /// Counts add up; the domain is the merged side's, as the latest name seen.
    fn merge(&mut self, other: &TunnelAcc) {
        self.suspicious = self.suspicious.saturating_add(other.suspicious);
        if other.suspicious > 0 {
            self.domain = other.domain;
            self.domain_len = other.domain_len;
        }
    }
}

impl Reset for TunnelAcc {
    /// The domain's bytes are only read up to its length.
    fn reset(&mut self) {
        let TunnelAcc {
            suspicious,
            domain: _,
            domain_len,
        } = self;
        (*suspicious, *domain_len) = (0, 0);
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

/// Splits `name` into the labels below the registered domain (measured) and the
/// registered domain (hashed, case-insensitively, and copied). `None` without a label
/// below it.
fn shape(name: &DnsName<'_>) -> Option<NameShape> {
    let labels = Labels::new(name);
    let count = labels.count;
    let below = count.checked_sub(labels.registered()).filter(|&n| n > 0)?;
    let mut histogram = [0u32; 256];
    let mut chars = 0u32;
    let mut s = NameShape {
        longest_label: 0,
        entropy: 0.0,
        domain_hash: hash_key(),
        domain: [0; DOMAIN_BYTES],
        domain_len: 0,
    };
    for (i, label) in name.labels().enumerate() {
        // Entropy is measured on the labels as sent (case carries information in
        // encodings such as base64); the domain is hashed and kept lower-cased.
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
        for &b in labels.get(i) {
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
    pub(super) fn new(max_keys: usize, p: &DnsTunnelParams) -> Tunnel {
        Tunnel {
            table: KeyTable::new(max_keys),
            min_label_len: p.min_label_len,
            min_entropy: p.min_entropy,
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
        if let Some(mut acc) = self
            .table
            .entry(key, hash128(ip_bits(p.src)) ^ s.domain_hash)
        {
            acc.suspicious += 1;
            acc.domain = s.domain;
            acc.domain_len = s.domain_len;
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Finding)) {
        for ((src, hash), acc) in self.table.iter() {
            #[allow(clippy::cast_precision_loss)]
            let value = acc.suspicious as f64;
            if value < rule.threshold {
                continue;
            }
            let domain = acc.domain.get(..acc.domain_len).unwrap_or_default();
            hold(Finding {
                key: AlertKey {
                    src: Some(*src),
                    dst: None,
                    aux: *hash,
                },
                value,
                contributors: vec![Contributor {
                    kind: ContributorKind::Domain,
                    value: crate::decode::escape_name_text(domain),
                    count: acc.suspicious,
                }],
                port: None,
                sources: None,
                evidence: Vec::new(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name` (dotted) in wire form, without the terminating zero.
    fn wire(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(u8::try_from(label.len()).unwrap());
            out.extend_from_slice(label.as_bytes());
        }
        out
    }

    fn registered(name: &str) -> Option<(String, u64)> {
        let bytes = wire(name);
        let s = shape(&DnsName {
            wire: &bytes,
            is_compressed: false,
        })?;
        let domain = String::from_utf8(s.domain[..s.domain_len].to_vec()).unwrap();
        Some((domain, s.domain_hash))
    }

    #[test]
    fn dns_tunnel_groups_by_the_registered_domain_of_the_public_suffix_list() {
        let (uk, uk_hash) = registered("dGhpcyBpcyBlbmNvZGVk.Data.Example.CO.UK").unwrap();
        assert_eq!(uk, "example.co.uk");
        let (com, com_hash) = registered("dGhpcyBpcyBlbmNvZGVk.tunnel.example.com").unwrap();
        assert_eq!(com, "example.com");
        assert_ne!(uk_hash, com_hash);
        // Another name under the same domain, in another case, groups with it.
        assert_eq!(registered("xyz.EXAMPLE.co.uk").map(|r| r.1), Some(uk_hash));
        // An unknown top-level domain is a one-label suffix.
        assert_eq!(registered("abc.corp.internal").unwrap().0, "corp.internal");
    }

    #[test]
    fn dns_tunnel_needs_a_label_below_the_registered_domain() {
        assert_eq!(registered("example.co.uk"), None);
        assert_eq!(registered("co.uk"), None);
        assert_eq!(registered("example.com"), None);
        assert!(registered("www.example.com").is_some());
    }

    #[test]
    fn dns_tunnel_entropy_is_measured_below_the_registered_domain_only() {
        let bytes = wire("aaaaaaaaaaaaaaaaaaaaaaaa.example.co.uk");
        let s = shape(&DnsName {
            wire: &bytes,
            is_compressed: false,
        })
        .unwrap();
        assert_eq!(s.longest_label, 24);
        assert!(s.entropy < 1e-9, "one repeated character: {}", s.entropy);
    }
}
