//! DNS abuse: `dns-amplification` (large responses from many reflectors to a victim that
//! never asked) and `dns-tunnel` (one client exfiltrating through long random labels).
//!
//! Owns both generators. Amplification responses are single oversized frames: IP
//! fragmentation is deliberately not modelled, so a 3.5 KB response is one 3.5 KB frame.

use std::net::Ipv4Addr;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::link;
use super::schedule::Scheduler;
use super::{
    DEFAULT_SEED, DEFAULT_START, ScenarioError, Tally, TraceTotals, rate_offset_ns, require,
};
use crate::dns::{DnsAnswers, DnsMessage, rtype};
use crate::frame::{FrameSpec, IpSpec, Ipv4Spec, Payload, TransportSpec, UdpSpec};
use crate::rng::{Draw as _, Rng};

/// First reflector: 198.18.128.1.
const FIRST_REFLECTOR: u32 = 0xc612_8001;
/// Most reflectors (198.18.128.1 to 198.18.255.255).
const MAX_REFLECTORS: u32 = 32_767;
/// The name reflectors are asked about.
const AMPLIFIED_NAME: [&[u8]; 2] = [b"example", b"org"];
/// Wire bytes of `AMPLIFIED_NAME` plus QTYPE and QCLASS, after the 12-byte header.
const AMPLIFIED_QUESTION_LEN: usize = 1 + 7 + 1 + 3 + 1 + 4;
/// Bytes of each answer record besides its RDATA (name pointer, type, class, TTL, length).
const RECORD_OVERHEAD: usize = 12;
/// Target RDATA bytes per amplification answer record.
const RDATA_PER_RECORD: usize = 400;
/// The tunnel's parent domain; queries are `<label>.<label>[.<label>].t.tunnel.example`.
const TUNNEL_DOMAIN: [&[u8]; 3] = [b"t", b"tunnel", b"example"];
/// RFC 4648 base32 alphabet in lower case, as tunnel tools encode data.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Most data labels of one tunnel query.
const MAX_DATA_LABELS: usize = 3;

/// Parameters of [`dns_amplification`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAmplificationParams {
    /// Responses sent to the victim.
    pub packets: u64,
    /// Responses per second of trace time.
    pub pps: u64,
    /// Reflectors (open resolvers), used round-robin (at most 32767).
    pub reflectors: u32,
    /// The victim whose address was spoofed.
    pub victim: Ipv4Addr,
    /// Target DNS message size of each response in bytes (200 to 65000); the actual size
    /// is up to 160 bytes smaller (equal-sized answer records) and is in the truth.
    pub response_bytes: usize,
    /// Time of the first response.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for DnsAmplificationParams {
    fn default() -> DnsAmplificationParams {
        DnsAmplificationParams {
            packets: 2000,
            pps: 2000,
            reflectors: 200,
            victim: Ipv4Addr::new(10, 201, 0, 50),
            response_bytes: 3500,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`dns_amplification`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsAmplificationTruth {
    /// All frames (every one a response to the victim).
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The victim.
    pub victim: Ipv4Addr,
    /// Distinct reflectors that sent at least one response.
    pub reflectors: u64,
    /// Actual DNS message bytes of each response.
    pub response_bytes: usize,
    /// Queries the victim sent (always 0: that is the point).
    pub victim_queries: u64,
    /// Time of the first response (ns since the epoch).
    pub attack_start_ns: u64,
    /// Time of the last response (ns since the epoch).
    pub attack_end_ns: u64,
}

/// Generates reflected DNS ANY responses to a victim that sent no queries.
///
/// # Errors
/// [`ScenarioError`] for zero `pps`, `reflectors` outside `1..=32767` or
/// `response_bytes` outside `200..=65000`.
pub fn dns_amplification(
    params: &DnsAmplificationParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<DnsAmplificationTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (1..=MAX_REFLECTORS).contains(&params.reflectors),
        "reflectors",
        "must be in 1..=32767",
    )?;
    let size_ok = (200..=65_000).contains(&params.response_bytes);
    require(size_ok, "response_bytes", "must be in 200..=65000")?;
    // Equal answer records of about RDATA_PER_RECORD bytes; the message comes within
    // `count` bytes below `response_bytes` (the truth reports the exact size).
    let answer_bytes = params.response_bytes - 12 - AMPLIFIED_QUESTION_LEN;
    let count = (answer_bytes / (RECORD_OVERHEAD + RDATA_PER_RECORD)).max(1);
    let rdata_len = answer_bytes / count - RECORD_OVERHEAD;
    let message_bytes = 12 + AMPLIFIED_QUESTION_LEN + count * (RECORD_OVERHEAD + rdata_len);
    let mut tally = Tally::new(emit);
    let mut rng = Rng::stream(params.seed, 30);
    let mut frame = Vec::with_capacity(params.response_bytes + 64);
    for j in 0..params.packets {
        let at = params
            .start
            .as_nanos()
            .saturating_add(rate_offset_ns(j, params.pps));
        let k = u32::try_from(j % u64::from(params.reflectors)).unwrap_or(0);
        let reflector = Ipv4Addr::from(FIRST_REFLECTOR + k);
        let answers = DnsAnswers::Opaque {
            rtype: rng.pick(&[rtype::RRSIG, rtype::TXT], rtype::TXT),
            count: u16::try_from(count).unwrap_or(u16::MAX),
            rdata_len: u16::try_from(rdata_len).unwrap_or(u16::MAX),
            ttl: 3600,
        };
        let query = DnsMessage::query(rng.next_u16(), &AMPLIFIED_NAME, rtype::ANY);
        let message = query.answer(answers);
        let udp = UdpSpec {
            src_port: 53,
            dst_port: rng.between_u16(1024, 65535),
        };
        let ip = Ipv4Spec {
            ttl: u8::try_from(40 + k % 200).unwrap_or(64),
            ident: rng.next_u16(),
            dont_fragment: false,
            ..Ipv4Spec::new(reflector, params.victim)
        };
        FrameSpec {
            link: link(false, None),
            ip: IpSpec::V4(ip),
            transport: TransportSpec::Udp(udp),
            payload: Payload::Dns(&message),
            l4_checksum: true,
        }
        .write(&mut frame);
        tally.emit(at, &frame);
    }
    Ok(DnsAmplificationTruth {
        totals: tally.totals,
        victim: params.victim,
        reflectors: params.packets.min(u64::from(params.reflectors)),
        response_bytes: message_bytes,
        victim_queries: 0,
        attack_start_ns: tally.totals.first_ts_ns,
        attack_end_ns: tally.totals.last_ts_ns,
    })
}

/// Parameters of [`dns_tunnel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsTunnelParams {
    /// Queries sent (each gets one response).
    pub queries: u64,
    /// Queries per second of trace time.
    pub qps: u64,
    /// The tunnelling client.
    pub client: Ipv4Addr,
    /// The resolver it talks to.
    pub resolver: Ipv4Addr,
    /// Time of the first query.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for DnsTunnelParams {
    fn default() -> DnsTunnelParams {
        DnsTunnelParams {
            queries: 1000,
            qps: 20,
            client: Ipv4Addr::new(10, 201, 0, 60),
            resolver: Ipv4Addr::new(198, 18, 0, 53),
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`dns_tunnel`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsTunnelTruth {
    /// All frames.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The tunnelling client.
    pub client: Ipv4Addr,
    /// Its resolver.
    pub resolver: Ipv4Addr,
    /// The domain every query falls under.
    pub domain: &'static str,
    /// Queries sent.
    pub queries: u64,
    /// Responses received.
    pub responses: u64,
    /// Shortest query name in presentation form (no trailing dot), in characters.
    pub min_qname_len: usize,
    /// Longest query name in presentation form, in characters.
    pub max_qname_len: usize,
    /// Time of the first query (ns since the epoch).
    pub start_ns: u64,
    /// Time of the last frame (ns since the epoch).
    pub end_ns: u64,
}

/// What a tunnel query needs again for its response.
#[derive(Clone, Copy, Debug)]
struct TunnelQuery {
    label_seed: u64,
    id: u16,
    port: u16,
    qtype: u16,
}

enum TunnelEvent {
    Query(u64),
    Response(TunnelQuery),
}

/// Random base32 data labels of one query, regenerated from its seed for the response.
struct DataLabels {
    bytes: [[u8; 63]; MAX_DATA_LABELS],
    lens: [usize; MAX_DATA_LABELS],
    count: usize,
}

impl DataLabels {
    /// Two or three labels of 40 to 63 base32 characters (5 bits of entropy each).
    fn new(seed: u64) -> DataLabels {
        let mut rng = Rng::new(seed);
        let mut labels = DataLabels {
            bytes: [[0; 63]; MAX_DATA_LABELS],
            lens: [0; MAX_DATA_LABELS],
            count: 0,
        };
        labels.count = usize::try_from(rng.between(2, 3)).unwrap_or(2);
        for (label, len) in labels
            .bytes
            .iter_mut()
            .zip(labels.lens.iter_mut())
            .take(labels.count)
        {
            *len = usize::try_from(rng.between(40, 63)).unwrap_or(63);
            for byte in label.iter_mut().take(*len) {
                *byte = rng.pick(BASE32, b'a');
            }
        }
        labels
    }

    /// The full query name: data labels then the tunnel domain.
    fn qname(&self) -> ([&[u8]; MAX_DATA_LABELS + 3], usize) {
        let mut name: [&[u8]; MAX_DATA_LABELS + 3] = [&[]; MAX_DATA_LABELS + 3];
        let data = self
            .bytes
            .iter()
            .zip(self.lens)
            .map(|(b, len)| b.get(..len).unwrap_or(b));
        for (slot, label) in name
            .iter_mut()
            .zip(data.take(self.count).chain(TUNNEL_DOMAIN))
        {
            *slot = label;
        }
        (name, self.count + TUNNEL_DOMAIN.len())
    }
}

/// Generates a DNS tunnel: long high-entropy queries under one domain, each answered.
///
/// # Errors
/// [`ScenarioError`] for a zero `qps`.
pub fn dns_tunnel(
    params: &DnsTunnelParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<DnsTunnelTruth, ScenarioError> {
    require(params.qps > 0, "qps", "must be > 0")?;
    let mut tally = Tally::new(emit);
    let mut rng = Rng::stream(params.seed, 31);
    let mut truth = DnsTunnelTruth {
        client: params.client,
        resolver: params.resolver,
        domain: "t.tunnel.example",
        queries: 0,
        responses: 0,
        min_qname_len: usize::MAX,
        max_qname_len: 0,
        start_ns: 0,
        end_ns: 0,
        totals: TraceTotals::default(),
    };
    let mut events = Scheduler::new();
    if params.queries > 0 {
        events.push(params.start.as_nanos(), TunnelEvent::Query(0));
    }
    let mut frame = Vec::with_capacity(512);
    while let Some((at, event)) = events.pop() {
        let (query, is_response) = match event {
            TunnelEvent::Query(j) => {
                let query = TunnelQuery {
                    label_seed: rng.next_u64(),
                    id: rng.next_u16(),
                    port: rng.between_u16(1024, 65535),
                    qtype: rng.pick(&[rtype::TXT, rtype::TXT, rtype::NULL], rtype::TXT),
                };
                events.push(
                    at + rng.between(5_000_000, 60_000_000),
                    TunnelEvent::Response(query),
                );
                if j + 1 < params.queries {
                    let next = params
                        .start
                        .as_nanos()
                        .saturating_add(rate_offset_ns(j + 1, params.qps));
                    events.push(next, TunnelEvent::Query(j + 1));
                }
                (query, false)
            }
            TunnelEvent::Response(query) => (query, true),
        };
        let labels = DataLabels::new(query.label_seed);
        let (name, len) = labels.qname();
        let qname = name.get(..len).unwrap_or(&name);
        let message = DnsMessage::query(query.id, qname, query.qtype);
        if is_response {
            let rdata_len = u16::try_from(rng.between(32, 220)).unwrap_or(64);
            let answers = DnsAnswers::Opaque {
                rtype: query.qtype,
                count: 1,
                rdata_len,
                ttl: 0,
            };
            let ends = ((params.resolver, 53), (params.client, query.port));
            write_dns(&message.answer(answers), ends, false, &mut rng, &mut frame);
            truth.responses += 1;
        } else {
            let ends = ((params.client, query.port), (params.resolver, 53));
            write_dns(&message, ends, true, &mut rng, &mut frame);
            truth.queries += 1;
            let text_len = qname
                .iter()
                .map(|l| l.len() + 1)
                .sum::<usize>()
                .saturating_sub(1);
            truth.min_qname_len = truth.min_qname_len.min(text_len);
            truth.max_qname_len = truth.max_qname_len.max(text_len);
        }
        tally.emit(at, &frame);
    }
    if truth.queries == 0 {
        truth.min_qname_len = 0;
    }
    truth.totals = tally.totals;
    truth.start_ns = tally.totals.first_ts_ns;
    truth.end_ns = tally.totals.last_ts_ns;
    Ok(truth)
}

/// Writes a DNS message over UDP between the inside client and the outside resolver.
fn write_dns(
    message: &DnsMessage<'_>,
    ((src, src_port), (dst, dst_port)): ((Ipv4Addr, u16), (Ipv4Addr, u16)),
    outbound: bool,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) {
    let ip = Ipv4Spec {
        ident: rng.next_u16(),
        ..Ipv4Spec::new(src, dst)
    };
    FrameSpec {
        link: link(outbound, None),
        ip: IpSpec::V4(ip),
        transport: TransportSpec::Udp(UdpSpec { src_port, dst_port }),
        payload: Payload::Dns(message),
        l4_checksum: true,
    }
    .write(out);
}
