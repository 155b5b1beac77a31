//! `carpet-bomb`: a flood spread over every host of one protected /24, so that no single
//! host receives enough to cross a per-host threshold.
//!
//! Owns [`carpet_bomb`] and its ground truth. Each packet goes to a random host of
//! `prefix` (.1 to .`hosts`) from a random one of `sources` outside addresses
//! (198.18.0.0/15 upward), at a constant rate of trace time: UDP to random ports, TCP
//! SYNs to ports 80/443, or ICMP echo requests. Nothing answers.

use std::net::Ipv4Addr;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::{SYN, link};
use super::{
    DEFAULT_SEED, DEFAULT_START, ScenarioError, Tally, TraceTotals, rate_offset_ns, require,
};
use crate::frame::{
    FrameSpec, IcmpEchoSpec, IpSpec, Ipv4Spec, Payload, TcpSpec, TransportSpec, UdpSpec,
};
use crate::rng::{Draw as _, Rng};

/// First source address: 198.18.0.0.
const FIRST_SOURCE: u32 = 0xc612_0000;
/// Most sources: the whole of 198.18.0.0/15.
const MAX_SOURCES: u32 = 1 << 17;

/// What a carpet bomb sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CarpetProtocol {
    /// UDP datagrams to random ports.
    Udp,
    /// TCP SYNs to ports 80 and 443.
    Syn,
    /// ICMP echo requests.
    Icmp,
}

/// Parameters of [`carpet_bomb`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarpetBombParams {
    /// Attack packets.
    pub packets: u64,
    /// Packets per second of trace time, over the whole prefix.
    pub pps: u64,
    /// What is sent.
    pub protocol: CarpetProtocol,
    /// The attacked /24 (its host bits are ignored).
    pub prefix: Ipv4Addr,
    /// Hosts hit: .1 to .`hosts` (1 to 254).
    pub hosts: u32,
    /// Distinct source addresses, 198.18.0.0 upward (1 to 131072).
    pub sources: u32,
    /// Zero bytes of UDP payload or echo data per packet (at most 1400).
    pub payload_bytes: usize,
    /// Time of the first packet.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for CarpetBombParams {
    fn default() -> CarpetBombParams {
        CarpetBombParams {
            packets: 100_000,
            pps: 50_000,
            protocol: CarpetProtocol::Udp,
            prefix: Ipv4Addr::new(10, 201, 7, 0),
            hosts: 254,
            sources: 64,
            payload_bytes: 64,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`carpet_bomb`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CarpetBombTruth {
    /// All frames (every one is an attack packet).
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// What was sent.
    pub protocol: CarpetProtocol,
    /// The attacked /24's first address.
    pub prefix: Ipv4Addr,
    /// Most packets any one host received.
    pub max_packets_per_host: u64,
    /// Time of the first attack packet (ns since the epoch).
    pub attack_start_ns: u64,
    /// Time of the last attack packet (ns since the epoch).
    pub attack_end_ns: u64,
}

/// Generates a carpet bomb of one /24.
///
/// # Errors
/// [`ScenarioError`] for a zero `pps`, `hosts` outside `1..=254`, `sources` outside
/// `1..=131072` or a payload above 1400 bytes.
pub fn carpet_bomb(
    params: &CarpetBombParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<CarpetBombTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (1..=254).contains(&params.hosts),
        "hosts",
        "must be in 1..=254",
    )?;
    require(
        (1..=MAX_SOURCES).contains(&params.sources),
        "sources",
        "must be in 1..=131072",
    )?;
    require(
        params.payload_bytes <= 1400,
        "payload_bytes",
        "must be <= 1400",
    )?;
    let mut tally = Tally::new(emit);
    let mut rng = Rng::stream(params.seed, 21);
    let base = params.prefix.to_bits() & 0xffff_ff00;
    let mut per_host = [0u64; 256];
    let mut frame = Vec::with_capacity(params.payload_bytes + 64);
    for j in 0..params.packets {
        let at = params
            .start
            .as_nanos()
            .saturating_add(rate_offset_ns(j, params.pps));
        let host = u32::try_from(rng.below(u64::from(params.hosts))).unwrap_or(0) + 1;
        if let Some(n) = per_host.get_mut(usize::try_from(host).unwrap_or(0)) {
            *n += 1;
        }
        let source = u32::try_from(rng.below(u64::from(params.sources))).unwrap_or(0);
        let ip = Ipv4Spec {
            ident: rng.next_u16(),
            dont_fragment: false,
            ..Ipv4Spec::new(
                Ipv4Addr::from(FIRST_SOURCE + source),
                Ipv4Addr::from(base | host),
            )
        };
        let (transport, payload) = transport(params, j, &mut rng);
        FrameSpec {
            link: link(false, None),
            ip: IpSpec::V4(ip),
            transport,
            payload: Payload::Zeros(payload),
            l4_checksum: true,
        }
        .write(&mut frame);
        tally.emit(at, &frame);
    }
    Ok(CarpetBombTruth {
        totals: tally.totals,
        protocol: params.protocol,
        prefix: Ipv4Addr::from(base),
        max_packets_per_host: per_host.iter().copied().max().unwrap_or(0),
        attack_start_ns: tally.totals.first_ts_ns,
        attack_end_ns: tally.totals.last_ts_ns,
    })
}

/// The transport header and payload length of packet `j`.
fn transport(params: &CarpetBombParams, j: u64, rng: &mut Rng) -> (TransportSpec, usize) {
    match params.protocol {
        CarpetProtocol::Udp => {
            let udp = UdpSpec {
                src_port: rng.between_u16(1024, 65535),
                dst_port: rng.between_u16(1, 65535),
            };
            (TransportSpec::Udp(udp), params.payload_bytes)
        }
        CarpetProtocol::Syn => {
            let tcp = TcpSpec {
                src_port: rng.between_u16(1024, 65535),
                dst_port: rng.pick(&[80, 443], 80),
                seq: rng.next_u32(),
                ack: 0,
                flags: SYN,
                window: 1024,
                mss: None,
            };
            (TransportSpec::Tcp(tcp), 0)
        }
        CarpetProtocol::Icmp => {
            let echo = IcmpEchoSpec {
                is_reply: false,
                ident: 0x4242,
                seq: u16::try_from(j & 0xffff).unwrap_or(0),
            };
            (TransportSpec::IcmpEcho(echo), params.payload_bytes)
        }
    }
}
