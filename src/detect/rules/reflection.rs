//! `reflection`: UDP reflection and amplification, judged by what it is: responses of a
//! reflector service far larger than the requests they answer.
//!
//! - **Services:** the UDP ports of `services` (DNS 53, NTP 123, SSDP 1900, memcached
//!   11211, CLDAP 389, chargen 19, SNMP 161, WS-Discovery 3702… see the parameter's
//!   default). A packet from a service port is a response of that service; a packet to
//!   one is a request. A packet between two service ports is both.
//! - **Key** (`key = "victim"`, the default): (victim, service), the victim being the
//!   destination of the responses. Its requests are the packets it sent (or that were
//!   sent in its name: spoofed requests seen on the link, when the reflectors are inside
//!   or beside the protected networks) to that service. `key = "reflector"`: (server,
//!   service), the server sending the responses (one of ours abused as a reflector), and
//!   the requests it received on that service.
//! - **Value:** response bits per second (wire lengths of the packets carrying UDP ports;
//!   later fragments of a large response are not counted, so the value is a lower bound)
//!   over the window.
//! - **Guards:** the amplification factor, response bytes over request bytes of the same
//!   key, reaches `min_factor` (no request seen at all: unsolicited, unbounded), and the
//!   responses come from (go to) at least `min_peers` distinct reflectors (victims),
//!   estimated with a `HyperLogLog`.
//! - **Evidence:** the top reflectors (or victims) with guaranteed packet counts, the
//!   service as `port`, and annotations `service`, `amplification_factor`,
//!   `response_bytes`, `request_bytes`; keyed by victim, `distinct_sources` and
//!   `source_hint` as for floods.
//!
//! Under any scope but `all`, only victims (abused servers) inside the protected networks
//! are keys: an outside victim of our servers is the reflector-keyed rule's, and outside
//! reflectors answering our victim are not "abused servers" of ours.
//!
//! Memory: one `KeyTable` of `max_keys` (victim or server, service) entries, the lightest
//! (bytes of requests and responses) evicted first; the service set is a fixed bitmap of
//! the 65,536 ports.

use std::net::IpAddr;
use std::time::Duration;

use super::{Hashes, contributors, ip_from_bits, meaningful, per_second};
use crate::alert::ContributorKind;
use crate::config::{ReflectionKey, ReflectionParams};
use crate::decode::ip_protocol;
use crate::detect::scope::Scope;
use crate::detect::sketch::{Hll, KeyTable, Merge, Reset, TopK, Weight, hash128, ip_bits, mix64};
use crate::detect::{AlertKey, Finding, PacketView, Rule, SourceCount};

/// 64-bit words of the port bitmap.
const PORT_WORDS: usize = 65_536 / 64;

#[derive(Default)]
pub(super) struct ReflAcc {
    response_bytes: u64,
    response_packets: u64,
    request_bytes: u64,
    peers: Hll,
    top: TopK<u128, 8>,
}

impl Weight for ReflAcc {
    fn weight(&self) -> u64 {
        self.response_bytes.saturating_add(self.request_bytes)
    }
}

impl Merge for ReflAcc {
    fn merge(&mut self, other: &ReflAcc) {
        self.response_bytes = self.response_bytes.saturating_add(other.response_bytes);
        self.response_packets = self.response_packets.saturating_add(other.response_packets);
        self.request_bytes = self.request_bytes.saturating_add(other.request_bytes);
        self.peers.merge(&other.peers);
        self.top.merge(&other.top);
    }
}

impl Reset for ReflAcc {
    fn reset(&mut self) {
        let ReflAcc {
            response_bytes,
            response_packets,
            request_bytes,
            peers,
            top,
        } = self;
        (*response_bytes, *response_packets, *request_bytes) = (0, 0, 0);
        peers.reset();
        top.reset();
    }
}

pub(in crate::detect) struct Reflection {
    pub(super) table: KeyTable<(IpAddr, u16), ReflAcc>,
    key: ReflectionKey,
    min_factor: f64,
    min_peers: u64,
    /// Key only victims (servers) inside the protected networks: every scope but `all`.
    protected_only: bool,
    /// Bit `port` set for each service port.
    services: Vec<u64>,
}

/// The (word, mask) of `port` in the bitmap.
fn port_bit(port: u16) -> (usize, u64) {
    (usize::from(port / 64), 1u64 << (port % 64))
}

/// Hash of a (host, service) key from the host's hash.
fn key_hash(host: u64, port: u16) -> u64 {
    host ^ mix64(u64::from(port) + 1)
}

impl Reflection {
    pub(super) fn new(rule: &Rule, p: &ReflectionParams) -> Reflection {
        let mut services = vec![0u64; PORT_WORDS];
        for &port in &p.services {
            let (word, mask) = port_bit(port);
            if let Some(w) = services.get_mut(word) {
                *w |= mask;
            }
        }
        Reflection {
            table: KeyTable::new(rule.max_keys),
            key: p.key,
            protected_only: !matches!(rule.scope, Scope::All),
            min_factor: p.min_factor,
            min_peers: p.min_peers,
            services,
        }
    }

    #[inline]
    fn is_service(&self, port: u16) -> bool {
        let (word, mask) = port_bit(port);
        port != 0 && self.services.get(word).is_some_and(|w| w & mask != 0)
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        if p.protocol != ip_protocol::UDP {
            return;
        }
        let bytes = u64::from(p.wire_len);
        let (src_ok, dst_ok) = if self.protected_only {
            (p.placement.src.is_some(), p.placement.dst.is_some())
        } else {
            (true, true)
        };
        if self.is_service(p.src_port) {
            let (host, hash, peer, ok) = match self.key {
                ReflectionKey::Victim => (p.dst, h.dst(p), p.src, dst_ok),
                ReflectionKey::Reflector => (p.src, h.src(p), p.dst, src_ok),
            };
            if ok
                && let Some(mut acc) =
                    self.table
                        .entry_weighing((host, p.src_port), key_hash(hash, p.src_port), bytes)
            {
                acc.response_bytes = acc.response_bytes.saturating_add(bytes);
                acc.response_packets += 1;
                let peer = ip_bits(peer);
                acc.peers.insert(hash128(peer));
                acc.top.add(peer, 1);
            }
        }
        if self.is_service(p.dst_port) {
            let (host, hash, ok) = match self.key {
                ReflectionKey::Victim => (p.src, h.src(p), src_ok),
                ReflectionKey::Reflector => (p.dst, h.dst(p), dst_ok),
            };
            if ok
                && let Some(mut acc) =
                    self.table
                        .entry_weighing((host, p.dst_port), key_hash(hash, p.dst_port), bytes)
            {
                acc.request_bytes = acc.request_bytes.saturating_add(bytes);
            }
        }
    }

    pub(super) fn evaluate(&self, rule: &Rule, elapsed: Duration, hold: &mut dyn FnMut(Finding)) {
        for (&(host, port), acc) in self.table.iter() {
            let value = per_second(acc.response_bytes.saturating_mul(8), elapsed, rule.window);
            if value < rule.threshold {
                continue;
            }
            #[allow(clippy::cast_precision_loss)]
            let factor = if acc.request_bytes == 0 {
                f64::INFINITY
            } else {
                acc.response_bytes as f64 / acc.request_bytes as f64
            };
            #[allow(clippy::cast_precision_loss)]
            let min_peers = self.min_peers as f64;
            if factor < self.min_factor || acc.peers.estimate().round() < min_peers {
                continue;
            }
            hold(self.finding(host, port, value, factor, acc));
        }
    }

    fn finding(&self, host: IpAddr, port: u16, value: f64, factor: f64, acc: &ReflAcc) -> Finding {
        let (key, kind, sources) = match self.key {
            ReflectionKey::Victim => (
                AlertKey {
                    src: None,
                    dst: Some(host),
                    aux: u64::from(port),
                },
                ContributorKind::Reflector,
                Some(SourceCount {
                    distinct: acc.peers.estimate(),
                    packets: acc.response_packets,
                }),
            ),
            ReflectionKey::Reflector => (
                AlertKey {
                    src: Some(host),
                    dst: None,
                    aux: u64::from(port),
                },
                ContributorKind::Victim,
                None,
            ),
        };
        let mut list = Vec::new();
        let min = meaningful(acc.response_packets);
        contributors(&mut list, kind, &acc.top, min, |b| {
            ip_from_bits(b).to_string()
        });
        let factor = if factor.is_finite() {
            format!("{factor:.1}")
        } else {
            "unsolicited".to_owned()
        };
        let mut evidence = vec![
            ("service", service_label(port)),
            ("amplification_factor", factor),
            ("response_bytes", acc.response_bytes.to_string()),
            ("request_bytes", acc.request_bytes.to_string()),
        ];
        if self.key == ReflectionKey::Reflector {
            evidence.push(("distinct_victims", format!("{:.0}", acc.peers.estimate())));
        }
        Finding {
            key,
            value,
            contributors: list,
            port: Some(port),
            sources,
            evidence,
        }
    }
}

/// `udp/<port>`, with the name of a well-known reflector service.
pub(in crate::detect) fn service_label(port: u16) -> String {
    let name = match port {
        17 => "qotd",
        19 => "chargen",
        53 => "dns",
        69 => "tftp",
        111 => "portmap",
        123 => "ntp",
        137 => "netbios",
        161 => "snmp",
        389 => "cldap",
        500 => "isakmp",
        520 => "rip",
        1434 => "mssql",
        1900 => "ssdp",
        3283 => "arms",
        3478 => "stun",
        3702 => "ws-discovery",
        4500 => "ipsec-nat-t",
        5353 => "mdns",
        5683 => "coap",
        10001 => "ubiquiti",
        11211 => "memcached",
        37810 => "dvr-discovery",
        47808 => "bacnet",
        _ => return format!("udp/{port}"),
    };
    format!("udp/{port} ({name})")
}
