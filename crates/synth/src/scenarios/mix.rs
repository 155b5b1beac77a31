//! `mix`: a realistic gateway traffic mix for benchmarks and fixtures.
//!
//! Owns the flow plan and the interleaving loop. Flows arrive as a Poisson process over
//! `duration`: 50% TCP sessions (handshake, request, heavy-tailed bulk transfer with delayed
//! ACKs, FIN or 8% RST teardown, 20% uploads), 40% DNS lookups over UDP/53 (5% unanswered),
//! 10% ICMP/ICMPv6 pings of 1-8 echoes. Frames are bimodal (60-ish byte control frames and
//! 1514-byte data frames), averaging roughly 800 bytes with the defaults.
//!
//! Exact packet count: a first pass over the plan stream (no packets made) sums the fixed
//! packets of DNS and ICMP flows and the minimum and heavy-tailed weight of every TCP
//! session; the remaining budget is then shared out in proportion to the weights, with
//! integer arithmetic, the last TCP session taking the remainder. The last flow is always
//! TCP so there is one to absorb it. Only if `packets` is below the sum of minimums does
//! the trace stop early (`trimmed`), cutting sessions the way a capture window does.
//!
//! 5-tuples are unique by construction: flow `i` gets client address and port from an
//! affine bijection of `i`, so the flow counts are exact ground truth for a flow table.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::{Endpoints, Hosts};
use super::schedule::Scheduler;
use super::session::{DnsSession, IcmpSession, TcpPlan, TcpSession};
use super::{DEFAULT_SEED, DEFAULT_START, ScenarioError, Tally, TraceTotals, require};
use crate::rng::{Draw as _, Rng};

/// Client hosts: 10.201.1.1 to 10.201.255.254.
const CLIENT_HOSTS: u64 = 255 * 254;
/// Client ports: 1024 to 65535.
const CLIENT_PORTS: u64 = 65536 - 1024;
/// Distinct (client host, client port) pairs, hence the most flows a mix can have.
const CLIENT_SLOTS: u64 = CLIENT_HOSTS * CLIENT_PORTS;
/// Multiplier of the flow-index bijection; prime and not a factor of `CLIENT_SLOTS`.
const SLOT_STRIDE: u64 = 2_654_435_761;
/// Servers per address family; low indices are picked more often (popular servers).
const SERVERS: u64 = 4096;
/// Server ports of TCP sessions (443 three times as common).
const TCP_PORTS: [u16; 7] = [443, 443, 443, 80, 22, 8080, 993];

/// Parameters of [`mix`].
#[derive(Clone, Debug, PartialEq)]
pub struct MixParams {
    /// Exact number of frames to emit.
    pub packets: u64,
    /// Flows (TCP sessions, DNS lookups, pings) to start.
    pub flows: u64,
    /// Trace time over which flows start.
    pub duration: Duration,
    /// Fraction of flows over IPv6, in `[0, 1]`.
    pub ipv6_share: f64,
    /// Fraction of flows carried in an 802.1Q VLAN (201 or 202), in `[0, 1]`.
    pub vlan_share: f64,
    /// Time of the first frame.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for MixParams {
    fn default() -> MixParams {
        MixParams {
            packets: 5_000_000,
            flows: 200_000,
            duration: Duration::from_secs(120),
            ipv6_share: 0.10,
            vlan_share: 0.10,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Flows started, by transport protocol (each flow is one 5-tuple).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlowCounts {
    /// TCP sessions.
    pub tcp: u64,
    /// UDP flows (DNS lookups).
    pub udp: u64,
    /// ICMP and `ICMPv6` echo flows (identifier as the port).
    pub icmp: u64,
}

/// Ground truth of a [`mix`] trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MixTruth {
    /// Frames, bytes and time span.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// Flows that emitted at least one frame, by protocol.
    pub flows: FlowCounts,
    /// Sum of `flows`.
    pub flows_total: u64,
    /// Flows over IPv6.
    pub ipv6_flows: u64,
    /// Flows carried in a VLAN.
    pub vlan_flows: u64,
    /// True if `packets` was too small for the planned flows and the trace was cut short.
    pub trimmed: bool,
}

/// What one flow will be, drawn from the plan stream.
#[derive(Clone, Copy, Debug)]
enum FlowPlan {
    Tcp {
        weight: u64,
        rst: bool,
        upload: bool,
    },
    Dns {
        answered: bool,
    },
    Icmp {
        echoes: u16,
    },
}

impl FlowPlan {
    fn draw(rng: &mut Rng, is_last: bool) -> FlowPlan {
        let roll = rng.below(100);
        if is_last || roll < 50 {
            let weight = rng.pareto_weight();
            FlowPlan::Tcp {
                weight,
                rst: rng.chance(0.08),
                upload: rng.chance(0.20),
            }
        } else if roll < 90 {
            FlowPlan::Dns {
                answered: rng.chance(0.95),
            }
        } else {
            FlowPlan::Icmp {
                echoes: rng.between_u16(1, 8),
            }
        }
    }

    /// Packets of a flow whose size does not depend on the budget (DNS, ICMP).
    fn fixed_packets(self) -> u64 {
        match self {
            FlowPlan::Tcp { .. } => 0,
            FlowPlan::Dns { answered } => 1 + u64::from(answered),
            FlowPlan::Icmp { echoes } => 2 * u64::from(echoes),
        }
    }
}

/// Streams flow plans and shares the TCP packet budget out over them.
struct Planner {
    rng: Rng,
    flows: u64,
    next_index: u64,
    /// Budget above the TCP minimums not yet handed out.
    extra_left: u64,
    /// Sum of the weights of TCP flows not yet planned.
    weight_left: u64,
    trimmed: bool,
}

impl Planner {
    fn new(params: &MixParams) -> Planner {
        let rng = Rng::stream(params.seed, 1);
        let (mut fixed, mut tcp_min, mut weight) = (0u64, 0u64, 0u64);
        let mut dry = rng.clone();
        for index in 0..params.flows {
            let plan = FlowPlan::draw(&mut dry, index + 1 == params.flows);
            fixed += plan.fixed_packets();
            if let FlowPlan::Tcp { weight: w, rst, .. } = plan {
                tcp_min += TcpPlan::min_packets(rst);
                weight += w;
            }
        }
        let needed = fixed + tcp_min;
        Planner {
            rng,
            flows: params.flows,
            next_index: 0,
            extra_left: params.packets.saturating_sub(needed),
            weight_left: weight,
            trimmed: params.packets < needed,
        }
    }

    /// The next flow's index and plan, with its TCP packet count; `None` when all are out.
    fn next(&mut self) -> Option<(u64, FlowPlan, u64)> {
        if self.next_index == self.flows {
            return None;
        }
        let index = self.next_index;
        self.next_index += 1;
        let plan = FlowPlan::draw(&mut self.rng, self.next_index == self.flows);
        let mut packets = 0;
        if let FlowPlan::Tcp { weight, rst, .. } = plan {
            let share = u128::from(weight) * u128::from(self.extra_left)
                / u128::from(self.weight_left.max(1));
            let extra = u64::try_from(share)
                .unwrap_or(self.extra_left)
                .min(self.extra_left);
            self.extra_left -= extra;
            self.weight_left = self.weight_left.saturating_sub(weight);
            packets = TcpPlan::min_packets(rst) + extra;
        }
        Some((index, plan, packets))
    }
}

/// An active flow.
enum MixSession {
    Tcp(TcpSession),
    Dns(DnsSession),
    Icmp(IcmpSession),
}

struct MixFlow {
    session: MixSession,
    started: bool,
    is_v6: bool,
    has_vlan: bool,
}

/// Generates the mix, calling `emit` for every frame in time order.
///
/// # Errors
/// [`ScenarioError`] if `flows` is 0 while `packets` is not, `flows` exceeds the unique
/// client address/port space (4,178,442,240), or a share is outside `[0, 1]`.
pub fn mix(
    params: &MixParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<MixTruth, ScenarioError> {
    require(
        params.flows > 0 || params.packets == 0,
        "flows",
        "must be > 0 when packets > 0",
    )?;
    require(
        params.flows <= CLIENT_SLOTS,
        "flows",
        "exceeds the unique client port space",
    )?;
    require(
        (0.0..=1.0).contains(&params.ipv6_share),
        "ipv6_share",
        "must be in [0, 1]",
    )?;
    require(
        (0.0..=1.0).contains(&params.vlan_share),
        "vlan_share",
        "must be in [0, 1]",
    )?;
    let mut tally = Tally::new(emit);
    let mut truth = MixTruth::default();
    let mut planner = Planner::new(params);
    truth.trimmed = planner.trimmed;
    let mut arrivals = Rng::stream(params.seed, 2);
    let mut details = Rng::stream(params.seed, 3);
    let slot_offset = Rng::stream(params.seed, 4).below(CLIENT_SLOTS);
    let duration_ns = u64::try_from(params.duration.as_nanos()).unwrap_or(u64::MAX);
    let mean_gap_ns = duration_ns / params.flows.max(1);
    let mut next_arrival = params.start.as_nanos();
    let mut pending = planner.next();
    let mut active: Scheduler<MixFlow> = Scheduler::new();
    let mut frame = Vec::with_capacity(2048);
    while tally.totals.packets < params.packets {
        if let Some((index, plan, packets)) = pending
            && active.peek_ns().is_none_or(|at| next_arrival <= at)
        {
            let flow = open_flow(params, index, plan, packets, slot_offset, &mut details);
            active.push(next_arrival, flow);
            next_arrival = next_arrival.saturating_add(arrivals.exp_nanos(mean_gap_ns));
            pending = planner.next();
            continue;
        }
        let Some((at, mut flow)) = active.pop() else {
            break;
        };
        let delay = match &mut flow.session {
            MixSession::Tcp(s) => s.next_frame(&mut details, &mut frame),
            MixSession::Dns(s) => s.next_frame(&mut frame),
            MixSession::Icmp(s) => s.next_frame(&mut frame),
        };
        tally.emit(at, &frame);
        if !flow.started {
            flow.started = true;
            count_flow(&mut truth, &flow);
        }
        if let Some(delay) = delay {
            active.push(at.saturating_add(delay), flow);
        }
    }
    truth.totals = tally.totals;
    truth.flows_total = truth.flows.tcp + truth.flows.udp + truth.flows.icmp;
    Ok(truth)
}

fn count_flow(truth: &mut MixTruth, flow: &MixFlow) {
    match flow.session {
        MixSession::Tcp(_) => truth.flows.tcp += 1,
        MixSession::Dns(_) => truth.flows.udp += 1,
        MixSession::Icmp(_) => truth.flows.icmp += 1,
    }
    truth.ipv6_flows += u64::from(flow.is_v6);
    truth.vlan_flows += u64::from(flow.has_vlan);
}

/// Builds flow `index`: unique client slot, a server, IP version, VLAN and the session.
fn open_flow(
    params: &MixParams,
    index: u64,
    plan: FlowPlan,
    packets: u64,
    slot_offset: u64,
    rng: &mut Rng,
) -> MixFlow {
    let slot = (u128::from(index) * u128::from(SLOT_STRIDE) + u128::from(slot_offset))
        % u128::from(CLIENT_SLOTS);
    let slot = u64::try_from(slot).unwrap_or(0);
    let (host, port) = (slot / CLIENT_PORTS, slot % CLIENT_PORTS);
    let client_port = u16::try_from(1024 + port).unwrap_or(u16::MAX);
    let is_v6 = rng.chance(params.ipv6_share);
    let vlan = rng
        .chance(params.vlan_share)
        .then(|| rng.pick(&[201, 202], 201));
    // Popular servers: an index below a uniform bound is skewed toward 0.
    let bound = rng.below(SERVERS) + 1;
    let server = u32::try_from(rng.below(bound)).unwrap_or(0);
    let is_dns = matches!(plan, FlowPlan::Dns { .. });
    let hosts = if is_v6 {
        let client = Ipv6Addr::from((0xfd00_0201_u128 << 96) | u128::from(mix64(host)));
        let server = if is_dns {
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, rng.pick(&[0x53, 0x54], 0x53))
        } else {
            Ipv6Addr::from((0x2001_0db8_0000_0010_u128 << 64) | u128::from(server + 1))
        };
        Hosts::V6 { client, server }
    } else {
        let host = u32::try_from(host).unwrap_or(0);
        let client = Ipv4Addr::new(10, 201, octet(1 + host / 254), octet(1 + host % 254));
        let server = if is_dns {
            let resolvers = [Ipv4Addr::new(198, 18, 0, 53), Ipv4Addr::new(198, 19, 0, 53)];
            rng.pick(&resolvers, resolvers[0])
        } else {
            Ipv4Addr::from(0xc612_0100 + server)
        };
        Hosts::V4 { client, server }
    };
    let server_port = match plan {
        FlowPlan::Tcp { .. } => rng.pick(&TCP_PORTS, 443),
        FlowPlan::Dns { .. } => 53,
        FlowPlan::Icmp { .. } => 0,
    };
    let ep = Endpoints::new(hosts, (client_port, server_port), vlan, true, rng);
    let session = match plan {
        FlowPlan::Tcp { rst, upload, .. } => MixSession::Tcp(TcpSession::new(
            ep,
            TcpPlan {
                packets,
                rst,
                upload,
            },
            rng,
        )),
        FlowPlan::Dns { answered } => MixSession::Dns(DnsSession::new(ep, answered, rng)),
        FlowPlan::Icmp { echoes } => MixSession::Icmp(IcmpSession::new(ep, echoes, rng)),
    };
    MixFlow {
        session,
        started: false,
        is_v6,
        has_vlan: vlan.is_some(),
    }
}

fn octet(value: u32) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

/// A bijection on `u64` (the `SplitMix64` finaliser), turning host numbers into IPv6
/// interface ids that look random but never collide.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
