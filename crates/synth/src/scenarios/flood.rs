//! Volume attacks: `syn-flood`, `udp-flood`, `icmp-flood`.
//!
//! Owns the flood generators and their ground truth. Attack packets arrive at a constant
//! rate of trace time (`pps`), entering the protected network from outside.
//!
//! `syn_flood` spoofs `sources` distinct addresses of 10.192.0.0/10 outside 10.201.0.0/16:
//! packet `j < sources` uses source `j` of an affine bijection onto that range, later packets
//! reuse a random earlier one, so the distinct-source count is exactly
//! `min(packets, sources)`. An optional benign warm-up (20 TCP sessions per second from
//! 198.18.0.0/15 to the victims) lets detectors see the attack start.

use std::net::Ipv4Addr;
use std::time::Duration;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::{Endpoints, Hosts, SYN, link};
use super::schedule::Scheduler;
use super::session::{TcpPlan, TcpSession};
use super::{
    DEFAULT_SEED, DEFAULT_START, NANOS_PER_SEC, ScenarioError, Tally, TraceTotals, rate_offset_ns,
    require,
};
use crate::frame::{
    FrameSpec, IcmpEchoSpec, IpSpec, Ipv4Spec, Payload, TcpSpec, TransportSpec, UdpSpec,
};
use crate::rng::{Draw as _, Rng};

/// First address of the spoofing range 10.192.0.0/10.
const SPOOF_BASE: u32 = 0x0ac0_0000;
/// Offset of the excluded protected range 10.201.0.0/16 inside the spoofing range.
const SPOOF_HOLE_START: u64 = 9 << 16;
/// Size of the excluded range.
const SPOOF_HOLE_LEN: u64 = 1 << 16;
/// Usable spoofed addresses: the /10 minus the /16.
const SPOOF_SLOTS: u64 = (1 << 22) - SPOOF_HOLE_LEN;
/// Multiplier of the source bijection; prime, coprime with `SPOOF_SLOTS` (2^16 * 63).
const SPOOF_STRIDE: u64 = 2_654_435_761;
/// First victim of `syn_flood`: 10.201.0.10.
const FIRST_VICTIM: u32 = 0x0ac9_000a;
/// Most victims `syn_flood` supports (10.201.0.10 to 10.201.0.254).
const MAX_VICTIMS: u32 = 245;
/// Ports the SYNs target.
const VICTIM_PORTS: [u16; 2] = [80, 443];
/// Benign warm-up sessions started per second of trace time.
const WARMUP_SESSIONS_PER_SEC: u64 = 20;
/// First source of `udp_flood`/`icmp_flood`: 198.19.0.1.
const FIRST_FLOOD_SOURCE: u32 = 0xc613_0001;
/// Most sources of `udp_flood`/`icmp_flood` ("one or a few").
const MAX_FLOOD_SOURCES: u32 = 256;

/// Parameters of [`syn_flood`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynFloodParams {
    /// SYN packets in the attack.
    pub packets: u64,
    /// Victims, 10.201.0.10 upward (at most 245).
    pub victims: u32,
    /// Distinct spoofed sources (at most 4,128,768).
    pub sources: u64,
    /// Attack rate in packets per second of trace time.
    pub pps: u64,
    /// Benign traffic to the victims before the attack starts.
    pub warmup: Duration,
    /// Start of the trace (of the warm-up, if any).
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for SynFloodParams {
    fn default() -> SynFloodParams {
        SynFloodParams {
            packets: 5_000_000,
            victims: 3,
            sources: 3_000_000,
            pps: 500_000,
            warmup: Duration::ZERO,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`syn_flood`] trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SynFloodTruth {
    /// All frames, benign and attack.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// SYNs of the attack.
    pub attack_packets: u64,
    /// Time of the first attack SYN (ns since the epoch).
    pub attack_start_ns: u64,
    /// Time of the last attack SYN (ns since the epoch).
    pub attack_end_ns: u64,
    /// Attacked addresses.
    pub victims: Vec<Ipv4Addr>,
    /// Attacked ports.
    pub victim_ports: [u16; 2],
    /// Distinct spoofed source addresses used.
    pub distinct_sources: u64,
    /// Benign warm-up TCP sessions.
    pub benign_flows: u64,
    /// Frames of the benign sessions.
    pub benign_packets: u64,
}

/// Pending work of a SYN flood trace.
enum SynEvent {
    Benign(Box<TcpSession>),
    Syn(u64),
}

/// Generates a SYN flood, optionally after a benign warm-up.
///
/// # Errors
/// [`ScenarioError`] if `pps` is 0, `victims` is not in `1..=245` or `sources` is not in
/// `1..=4_128_768`.
pub fn syn_flood(
    params: &SynFloodParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<SynFloodTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (1..=MAX_VICTIMS).contains(&params.victims),
        "victims",
        "must be in 1..=245",
    )?;
    require(
        (1..=SPOOF_SLOTS).contains(&params.sources),
        "sources",
        "must be in 1..=4128768",
    )?;
    let mut tally = Tally::new(emit);
    let mut rng = Rng::stream(params.seed, 10);
    let spoof_offset = rng.below(SPOOF_SLOTS);
    let warmup_ns = u64::try_from(params.warmup.as_nanos()).unwrap_or(u64::MAX);
    let attack_start = params.start.as_nanos().saturating_add(warmup_ns);
    let victims: Vec<Ipv4Addr> = (0..params.victims)
        .map(|k| Ipv4Addr::from(FIRST_VICTIM + k))
        .collect();
    let mut truth = SynFloodTruth {
        victims,
        victim_ports: VICTIM_PORTS,
        ..SynFloodTruth::default()
    };
    let mut events = Scheduler::new();
    if params.packets > 0 {
        events.push(attack_start, SynEvent::Syn(0));
    }
    let mut next_benign = params.start.as_nanos();
    let mut frame = Vec::with_capacity(128);
    loop {
        if next_benign < attack_start && events.peek_ns().is_none_or(|at| next_benign <= at) {
            let session = benign_session(&truth.victims, &mut rng);
            events.push(next_benign, SynEvent::Benign(Box::new(session)));
            truth.benign_flows += 1;
            next_benign += rng
                .exp_nanos(NANOS_PER_SEC / WARMUP_SESSIONS_PER_SEC)
                .max(1);
            continue;
        }
        let Some((at, event)) = events.pop() else {
            break;
        };
        match event {
            SynEvent::Benign(mut session) => {
                let delay = session.next_frame(&mut rng, &mut frame);
                tally.emit(at, &frame);
                truth.benign_packets += 1;
                if let Some(delay) = delay {
                    events.push(at + delay, SynEvent::Benign(session));
                }
            }
            SynEvent::Syn(j) => {
                let source_index = if j < params.sources {
                    j
                } else {
                    rng.below(params.sources)
                };
                let src = spoofed_source(source_index, spoof_offset);
                let victim = truth
                    .victims
                    .get(usize::try_from(j % u64::from(params.victims)).unwrap_or(0));
                let dst = victim.copied().unwrap_or(Ipv4Addr::from(FIRST_VICTIM));
                write_syn(src, dst, &mut rng, &mut frame);
                tally.emit(at, &frame);
                if j == 0 {
                    truth.attack_start_ns = at;
                }
                truth.attack_end_ns = at;
                truth.attack_packets += 1;
                if j + 1 < params.packets {
                    let next = attack_start.saturating_add(rate_offset_ns(j + 1, params.pps));
                    events.push(next, SynEvent::Syn(j + 1));
                }
            }
        }
    }
    truth.distinct_sources = params.packets.min(params.sources);
    truth.totals = tally.totals;
    Ok(truth)
}

/// Source `index` of the spoofing range; distinct indices below `SPOOF_SLOTS` give distinct
/// addresses, none of them in 10.201.0.0/16.
fn spoofed_source(index: u64, offset: u64) -> Ipv4Addr {
    let slot = (u128::from(index) * u128::from(SPOOF_STRIDE) + u128::from(offset))
        % u128::from(SPOOF_SLOTS);
    let mut slot = u64::try_from(slot).unwrap_or(0);
    if slot >= SPOOF_HOLE_START {
        slot += SPOOF_HOLE_LEN;
    }
    Ipv4Addr::from(SPOOF_BASE + u32::try_from(slot).unwrap_or(0))
}

/// A spoofed SYN as flood tools send it: no options, small window, random fields.
fn write_syn(src: Ipv4Addr, dst: Ipv4Addr, rng: &mut Rng, out: &mut Vec<u8>) {
    let ttl = u8::try_from(rng.between(32, 128)).unwrap_or(64);
    let ip = Ipv4Spec {
        ttl,
        ident: rng.next_u16(),
        dont_fragment: false,
        ..Ipv4Spec::new(src, dst)
    };
    let tcp = TcpSpec {
        src_port: rng.between_u16(1024, 65535),
        dst_port: rng.pick(&VICTIM_PORTS, 80),
        seq: rng.next_u32(),
        ack: 0,
        flags: SYN,
        window: 1024,
        mss: None,
    };
    FrameSpec {
        link: link(false, None),
        ip: IpSpec::V4(ip),
        transport: TransportSpec::Tcp(tcp),
        payload: Payload::Zeros(0),
        l4_checksum: true,
    }
    .write(out);
}

/// A short web session from an outside client to one of the victims.
fn benign_session(victims: &[Ipv4Addr], rng: &mut Rng) -> TcpSession {
    let client = Ipv4Addr::from(0xc612_0000 + u32::try_from(rng.below(1 << 17)).unwrap_or(0));
    let server = rng.pick(victims, Ipv4Addr::from(FIRST_VICTIM));
    let ports = (rng.between_u16(1024, 65535), rng.pick(&VICTIM_PORTS, 443));
    let ep = Endpoints::new(Hosts::V4 { client, server }, ports, None, false, rng);
    let plan = TcpPlan {
        packets: rng.between(10, 40),
        rst: rng.chance(0.05),
        upload: false,
    };
    TcpSession::new(ep, plan, rng)
}

/// Parameters of [`udp_flood`] and [`icmp_flood`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloodParams {
    /// Attack packets.
    pub packets: u64,
    /// Rate in packets per second of trace time.
    pub pps: u64,
    /// Sources, 198.19.0.1 upward, used round-robin (at most 256).
    pub sources: u32,
    /// The attacked address.
    pub victim: Ipv4Addr,
    /// Zero bytes of UDP payload or ICMP echo data per packet (at most 65000).
    pub payload_bytes: usize,
    /// ICMP only: the victim answers every echo request with an echo reply, as a host
    /// under a ping flood does (UDP floods are never answered).
    pub replies: bool,
    /// Time of the first packet.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for FloodParams {
    fn default() -> FloodParams {
        FloodParams {
            packets: 10_000,
            pps: 20_000,
            sources: 1,
            victim: Ipv4Addr::new(10, 201, 0, 40),
            payload_bytes: 512,
            replies: false,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`udp_flood`] or [`icmp_flood`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FloodTruth {
    /// All frames (every one is an attack packet).
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// `"udp"` or `"icmp"`.
    pub protocol: &'static str,
    /// The attacked address.
    pub victim: Ipv4Addr,
    /// Source addresses that sent at least one packet.
    pub sources: Vec<Ipv4Addr>,
    /// Time of the first attack packet (ns since the epoch).
    pub attack_start_ns: u64,
    /// Time of the last attack packet (ns since the epoch).
    pub attack_end_ns: u64,
    /// Echo replies from the victim.
    pub replies: u64,
}

/// Generates a UDP flood to random destination ports of one victim.
///
/// # Errors
/// [`ScenarioError`] for a zero `pps`, `sources` outside `1..=256` or an oversized payload.
pub fn udp_flood(
    params: &FloodParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<FloodTruth, ScenarioError> {
    constant_rate_flood(params, FloodKind::Udp, emit)
}

/// Generates an ICMP echo-request flood to one victim.
///
/// # Errors
/// [`ScenarioError`] for a zero `pps`, `sources` outside `1..=256` or an oversized payload.
pub fn icmp_flood(
    params: &FloodParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<FloodTruth, ScenarioError> {
    constant_rate_flood(params, FloodKind::Icmp, emit)
}

/// Which packets a constant-rate flood sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FloodKind {
    Udp,
    Icmp,
}

fn constant_rate_flood(
    params: &FloodParams,
    kind: FloodKind,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<FloodTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (1..=MAX_FLOOD_SOURCES).contains(&params.sources),
        "sources",
        "must be in 1..=256",
    )?;
    require(
        params.payload_bytes <= 65_000,
        "payload_bytes",
        "must be <= 65000",
    )?;
    let mut tally = Tally::new(emit);
    let mut rng = Rng::stream(params.seed, 11);
    let used = params.packets.min(u64::from(params.sources));
    let sources: Vec<Ipv4Addr> = (0..u32::try_from(used).unwrap_or(0))
        .map(|k| Ipv4Addr::from(FIRST_FLOOD_SOURCE + k))
        .collect();
    let mut frame = Vec::with_capacity(params.payload_bytes + 64);
    let mut replies = 0;
    for j in 0..params.packets {
        let at = params
            .start
            .as_nanos()
            .saturating_add(rate_offset_ns(j, params.pps));
        let k = j % u64::from(params.sources);
        let src = sources.get(usize::try_from(k).unwrap_or(0)).copied();
        let src = src.unwrap_or(Ipv4Addr::from(FIRST_FLOOD_SOURCE));
        let transport = if kind == FloodKind::Udp {
            let src_port = rng.between_u16(1024, 65535);
            TransportSpec::Udp(UdpSpec {
                src_port,
                dst_port: rng.between_u16(1, 65535),
            })
        } else {
            let ident = 0x4000 + u16::try_from(k).unwrap_or(0);
            let seq = u16::try_from((j / u64::from(params.sources)) & 0xffff).unwrap_or(0);
            TransportSpec::IcmpEcho(IcmpEchoSpec {
                is_reply: false,
                ident,
                seq,
            })
        };
        let ip = Ipv4Spec {
            ident: rng.next_u16(),
            dont_fragment: false,
            ..Ipv4Spec::new(src, params.victim)
        };
        FrameSpec {
            link: link(false, None),
            ip: IpSpec::V4(ip),
            transport,
            payload: Payload::Zeros(params.payload_bytes),
            l4_checksum: true,
        }
        .write(&mut frame);
        tally.emit(at, &frame);
        if let (TransportSpec::IcmpEcho(echo), true) = (transport, params.replies) {
            // Halfway to the next request, so frames stay in time order.
            let next = rate_offset_ns(j + 1, params.pps) - rate_offset_ns(j, params.pps);
            write_echo_reply(src, params, echo, &mut frame);
            tally.emit(at + next / 2, &frame);
            replies += 1;
        }
    }
    Ok(FloodTruth {
        totals: tally.totals,
        protocol: if kind == FloodKind::Udp {
            "udp"
        } else {
            "icmp"
        },
        victim: params.victim,
        sources,
        attack_start_ns: tally.totals.first_ts_ns,
        attack_end_ns: tally.totals.last_ts_ns,
        replies,
    })
}

/// The victim's echo reply to `echo` from `src`.
fn write_echo_reply(src: Ipv4Addr, params: &FloodParams, echo: IcmpEchoSpec, out: &mut Vec<u8>) {
    FrameSpec {
        link: link(true, None),
        ip: IpSpec::V4(Ipv4Spec::new(params.victim, src)),
        transport: TransportSpec::IcmpEcho(IcmpEchoSpec {
            is_reply: true,
            ..echo
        }),
        payload: Payload::Zeros(params.payload_bytes),
        l4_checksum: true,
    }
    .write(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_sources_are_distinct_and_avoid_the_protected_range() {
        // Every slot index maps to a distinct address of 10.192.0.0/10 outside 10.201/16.
        let mut seen = vec![0u64; 1 << 16]; // one bit per address of the /10
        for index in 0..SPOOF_SLOTS {
            let offset = spoofed_source(index, 12_345).to_bits() - SPOOF_BASE;
            assert!(offset < 1 << 22);
            assert!(
                !(0x9_0000..0xa_0000).contains(&offset),
                "in 10.201/16: {offset:#x}"
            );
            let (word, bit) = ((offset >> 6) as usize, offset & 63);
            assert_eq!(seen[word] >> bit & 1, 0, "duplicate source");
            seen[word] |= 1 << bit;
        }
    }
}
