//! Reconnaissance: `port-scan` (one source, many ports of one host) and `host-sweep`
//! (one source, one port across a /24).
//!
//! Owns both generators and the probe/answer loop they share. The scanner sits outside
//! (198.18.0.0/15) and sends SYN probes at a constant rate from one source port, as a
//! SYN scanner does. An open port answers SYN-ACK after the RTT and the scanner's kernel
//! resets it; a closed port answers RST for a configurable share of probes (firewalls drop
//! the rest); everything else stays silent.

use std::net::Ipv4Addr;

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::{ACK, RST, SYN, link};
use super::schedule::Scheduler;
use super::{
    DEFAULT_SEED, DEFAULT_START, ScenarioError, Tally, TraceTotals, rate_offset_ns, require,
};
use crate::frame::{FrameSpec, IpSpec, Ipv4Spec, Payload, TcpSpec, TransportSpec};
use crate::rng::{Draw as _, Rng};

/// Delay between a SYN-ACK and the scanner kernel's RST.
const SCANNER_RESET_DELAY_NS: u64 = 50_000;

/// Parameters of [`port_scan`].
#[derive(Clone, Debug, PartialEq)]
pub struct PortScanParams {
    /// Ports probed: 1 to `ports`, in random order.
    pub ports: u16,
    /// Probes per second of trace time.
    pub pps: u64,
    /// The scanning host.
    pub scanner: Ipv4Addr,
    /// The scanned host.
    pub target: Ipv4Addr,
    /// Ports that answer SYN-ACK.
    pub open_ports: Vec<u16>,
    /// Share of closed ports that answer RST, in `[0, 1]`.
    pub rst_share: f64,
    /// Time of the first probe.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for PortScanParams {
    fn default() -> PortScanParams {
        PortScanParams {
            ports: 1000,
            pps: 1000,
            scanner: Ipv4Addr::new(198, 18, 66, 6),
            target: Ipv4Addr::new(10, 201, 0, 30),
            open_ports: vec![22, 80, 443],
            rst_share: 0.05,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`port_scan`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortScanTruth {
    /// All frames.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The scanning host.
    pub scanner: Ipv4Addr,
    /// The scanned host.
    pub target: Ipv4Addr,
    /// SYN probes sent, one per distinct port.
    pub probes: u64,
    /// Probed ports that answered SYN-ACK, ascending.
    pub open_ports_found: Vec<u16>,
    /// RST answers from closed ports.
    pub rst_replies: u64,
    /// RSTs the scanner sent after SYN-ACKs.
    pub scanner_resets: u64,
    /// Time of the first probe (ns since the epoch).
    pub scan_start_ns: u64,
    /// Time of the last probe (ns since the epoch).
    pub scan_end_ns: u64,
}

/// Parameters of [`host_sweep`].
#[derive(Clone, Debug, PartialEq)]
pub struct HostSweepParams {
    /// The swept /24 (the last octet is ignored); hosts .1 to .254 in random order.
    pub subnet: Ipv4Addr,
    /// The probed port.
    pub port: u16,
    /// Probes per second of trace time.
    pub pps: u64,
    /// The scanning host.
    pub scanner: Ipv4Addr,
    /// Share of hosts answering SYN-ACK, and (separately) of the rest answering RST.
    pub live_share: f64,
    /// Time of the first probe.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for HostSweepParams {
    fn default() -> HostSweepParams {
        HostSweepParams {
            subnet: Ipv4Addr::new(10, 201, 9, 0),
            port: 22,
            pps: 100,
            scanner: Ipv4Addr::new(198, 18, 66, 7),
            live_share: 0.05,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`host_sweep`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostSweepTruth {
    /// All frames.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The scanning host.
    pub scanner: Ipv4Addr,
    /// The probed port.
    pub port: u16,
    /// Hosts probed (254).
    pub probes: u64,
    /// Hosts that answered SYN-ACK, ascending.
    pub open_hosts: Vec<Ipv4Addr>,
    /// Hosts that answered RST, ascending.
    pub reset_hosts: Vec<Ipv4Addr>,
    /// Time of the first probe (ns since the epoch).
    pub sweep_start_ns: u64,
    /// Time of the last probe (ns since the epoch).
    pub sweep_end_ns: u64,
}

/// How a probed host:port answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Silent,
    SynAck,
    Reset,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    dst: Ipv4Addr,
    port: u16,
    answer: Answer,
}

/// Pending work of a scan: probe `k`, the target's answer, or the scanner's reset.
enum ScanEvent {
    Probe(usize),
    Answer { probe: usize, seq: u32 },
    ScannerReset { probe: usize, seq: u32 },
}

/// What a probe run emitted besides the probes.
#[derive(Default)]
struct ProbeCounts {
    resets: u64,
    scanner_resets: u64,
    last_probe_ns: u64,
}

/// Generates a SYN scan of ports 1 to `ports` of one host.
///
/// # Errors
/// [`ScenarioError`] for zero `ports` or `pps`, or `rst_share` outside `[0, 1]`.
pub fn port_scan(
    params: &PortScanParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<PortScanTruth, ScenarioError> {
    require(params.ports > 0, "ports", "must be > 0")?;
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (0.0..=1.0).contains(&params.rst_share),
        "rst_share",
        "must be in [0, 1]",
    )?;
    let mut rng = Rng::stream(params.seed, 20);
    let mut ports: Vec<u16> = (1..=params.ports).collect();
    shuffle(&mut ports, &mut rng);
    let probes: Vec<Probe> = ports
        .iter()
        .map(|&port| {
            let answer = if params.open_ports.contains(&port) {
                Answer::SynAck
            } else if rng.chance(params.rst_share) {
                Answer::Reset
            } else {
                Answer::Silent
            };
            Probe {
                dst: params.target,
                port,
                answer,
            }
        })
        .collect();
    let mut tally = Tally::new(emit);
    let counts = run_probes(
        &probes,
        params.scanner,
        params.pps,
        params.start,
        &mut rng,
        &mut tally,
    );
    let mut open: Vec<u16> = probes
        .iter()
        .filter(|p| p.answer == Answer::SynAck)
        .map(|p| p.port)
        .collect();
    open.sort_unstable();
    Ok(PortScanTruth {
        totals: tally.totals,
        scanner: params.scanner,
        target: params.target,
        probes: u64::from(params.ports),
        open_ports_found: open,
        rst_replies: counts.resets,
        scanner_resets: counts.scanner_resets,
        scan_start_ns: params.start.as_nanos(),
        scan_end_ns: counts.last_probe_ns,
    })
}

/// Generates a SYN sweep of one port across a /24.
///
/// # Errors
/// [`ScenarioError`] for zero `pps` or `live_share` outside `[0, 1]`.
pub fn host_sweep(
    params: &HostSweepParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<HostSweepTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    require(
        (0.0..=1.0).contains(&params.live_share),
        "live_share",
        "must be in [0, 1]",
    )?;
    let mut rng = Rng::stream(params.seed, 21);
    let [a, b, c, _] = params.subnet.octets();
    let mut hosts: Vec<u8> = (1..=254).collect();
    shuffle(&mut hosts, &mut rng);
    let probes: Vec<Probe> = hosts
        .iter()
        .map(|&host| {
            let (live, reset) = (rng.chance(params.live_share), rng.chance(params.live_share));
            let answer = match (live, reset) {
                (true, _) => Answer::SynAck,
                (false, true) => Answer::Reset,
                (false, false) => Answer::Silent,
            };
            Probe {
                dst: Ipv4Addr::new(a, b, c, host),
                port: params.port,
                answer,
            }
        })
        .collect();
    let mut tally = Tally::new(emit);
    let counts = run_probes(
        &probes,
        params.scanner,
        params.pps,
        params.start,
        &mut rng,
        &mut tally,
    );
    let answered = |kind: Answer| {
        let mut v: Vec<Ipv4Addr> = probes
            .iter()
            .filter(|p| p.answer == kind)
            .map(|p| p.dst)
            .collect();
        v.sort_unstable();
        v
    };
    Ok(HostSweepTruth {
        totals: tally.totals,
        scanner: params.scanner,
        port: params.port,
        probes: 254,
        open_hosts: answered(Answer::SynAck),
        reset_hosts: answered(Answer::Reset),
        sweep_start_ns: params.start.as_nanos(),
        sweep_end_ns: counts.last_probe_ns,
    })
}

/// Fisher-Yates shuffle driven by `rng`.
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = usize::try_from(rng.below(u64::try_from(i + 1).unwrap_or(1))).unwrap_or(i);
        items.swap(i, j);
    }
}

/// Sends `probes` at `pps` and interleaves the answers and the scanner's resets.
fn run_probes<F: FnMut(Timestamp, &[u8])>(
    probes: &[Probe],
    scanner: Ipv4Addr,
    pps: u64,
    start: Timestamp,
    rng: &mut Rng,
    tally: &mut Tally<F>,
) -> ProbeCounts {
    let scanner_port = rng.between_u16(40_000, 60_000);
    let rtt_ns = rng.between(200_000, 2_000_000);
    let mut counts = ProbeCounts::default();
    let mut events = Scheduler::new();
    if !probes.is_empty() {
        events.push(start.as_nanos(), ScanEvent::Probe(0));
    }
    let mut frame = Vec::with_capacity(64);
    while let Some((at, event)) = events.pop() {
        let index = match event {
            ScanEvent::Probe(k) | ScanEvent::Answer { probe: k, .. } => k,
            ScanEvent::ScannerReset { probe, .. } => probe,
        };
        let Some(probe) = probes.get(index) else {
            continue;
        };
        let scanner_end = (scanner, scanner_port);
        let target_end = (probe.dst, probe.port);
        match event {
            ScanEvent::Probe(k) => {
                let seq = rng.next_u32();
                write_tcp(
                    scanner_end,
                    target_end,
                    (seq, 0, SYN),
                    false,
                    rng,
                    &mut frame,
                );
                counts.last_probe_ns = at;
                if probe.answer != Answer::Silent {
                    events.push(at + rtt_ns, ScanEvent::Answer { probe: k, seq });
                }
                if k + 1 < probes.len() {
                    let offset = rate_offset_ns(u64::try_from(k + 1).unwrap_or(u64::MAX), pps);
                    events.push(
                        start.as_nanos().saturating_add(offset),
                        ScanEvent::Probe(k + 1),
                    );
                }
            }
            ScanEvent::Answer { probe: k, seq } if probe.answer == Answer::SynAck => {
                let fields = (rng.next_u32(), seq.wrapping_add(1), SYN | ACK);
                write_tcp(target_end, scanner_end, fields, true, rng, &mut frame);
                let reset = ScanEvent::ScannerReset {
                    probe: k,
                    seq: seq.wrapping_add(1),
                };
                events.push(at + SCANNER_RESET_DELAY_NS, reset);
            }
            ScanEvent::Answer { seq, .. } => {
                let fields = (0, seq.wrapping_add(1), RST | ACK);
                write_tcp(target_end, scanner_end, fields, true, rng, &mut frame);
                counts.resets += 1;
            }
            ScanEvent::ScannerReset { seq, .. } => {
                write_tcp(
                    scanner_end,
                    target_end,
                    (seq, 0, RST),
                    false,
                    rng,
                    &mut frame,
                );
                counts.scanner_resets += 1;
            }
        }
        tally.emit(at, &frame);
    }
    counts
}

/// Writes one TCP segment between outside (scanner) and inside (target) hosts.
fn write_tcp(
    (src, src_port): (Ipv4Addr, u16),
    (dst, dst_port): (Ipv4Addr, u16),
    (seq, ack, flags): (u32, u32, u8),
    outbound: bool,
    rng: &mut Rng,
    out: &mut Vec<u8>,
) {
    let ttl = if outbound { 64 } else { 52 };
    let ip = Ipv4Spec {
        ttl,
        ident: rng.next_u16(),
        ..Ipv4Spec::new(src, dst)
    };
    let mss = (flags & SYN != 0).then_some(1460);
    let window = if flags & RST != 0 { 0 } else { 1024 };
    let tcp = TcpSpec {
        src_port,
        dst_port,
        seq,
        ack,
        flags,
        window,
        mss,
    };
    FrameSpec {
        link: link(outbound, None),
        ip: IpSpec::V4(ip),
        transport: TransportSpec::Tcp(tcp),
        payload: Payload::Zeros(0),
        l4_checksum: true,
    }
    .write(out);
}
