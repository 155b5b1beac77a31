//! The command line of `netwarden-pcapgen`: one subcommand per scenario, each turned into
//! that scenario's parameter struct.
//!
//! Owns parsing only; [`super::generate`] runs what was parsed. Defaults come from the
//! parameter structs' `Default`, so the command line and the library never disagree.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netwarden::timestamp::Timestamp;

use crate::scenarios::{
    CarpetBombParams, CarpetProtocol, DEFAULT_SEED, DnsAmplificationParams, DnsTunnelParams,
    FloodParams, HostSweepParams, MixParams, PortScanParams, ReflectionLayout, ReflectionParams,
    ReflectorService, SynFloodParams, TransferParams,
};

/// Generate deterministic synthetic traffic as a pcap file and print its ground truth as JSON.
#[derive(Parser, Debug)]
#[command(name = "netwarden-pcapgen", version)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) scenario: Scenario,
}

/// Options every scenario takes.
#[derive(Args, Debug)]
pub(super) struct Common {
    /// Output pcap file (overwritten).
    #[arg(long, value_name = "FILE")]
    pub(super) out: PathBuf,
    /// Seed; the same seed and options always give a byte-identical file.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub(super) seed: u64,
    /// Timestamp of the trace start, RFC 3339.
    #[arg(long, value_name = "TIME", default_value = "2026-01-01T00:00:00Z", value_parser = parse_start)]
    pub(super) start: Timestamp,
}

#[derive(Subcommand, Debug)]
pub(super) enum Scenario {
    /// Realistic gateway mix: TCP sessions, DNS lookups, pings; exactly --packets frames.
    Mix(MixArgs),
    /// Spoofed SYN flood to victims 10.201.0.10 upward, ports 80/443.
    SynFlood(SynFloodArgs),
    /// UDP flood from one or a few sources to one victim.
    UdpFlood(FloodArgs),
    /// ICMP echo-request flood from one or a few sources to one victim (--replies: the
    /// victim answers each request).
    IcmpFlood(FloodArgs),
    /// SYN scan of ports 1..=--ports of one host.
    PortScan(PortScanArgs),
    /// SYN sweep of one port across 10.201.9.0/24.
    HostSweep(HostSweepArgs),
    /// Large DNS responses from many reflectors to a victim that sent no queries.
    DnsAmplification(DnsAmplificationArgs),
    /// DNS tunnel: long base32 labels under t.tunnel.example, each query answered.
    DnsTunnel(DnsTunnelArgs),
    /// Flood spread over the hosts of 10.201.7.0/24, none of them hit hard (carpet bombing).
    CarpetBomb(CarpetBombArgs),
    /// One large, healthy TCP download by a protected host from an outside server (or an
    /// upload, or to a protected server).
    BulkTransfer(BulkTransferArgs),
    /// UDP reflection through one reflector service (or, with --normal, its ordinary use).
    Reflection(ReflectionArgs),
}

/// Options of `mix`.
#[derive(Args, Debug)]
pub(super) struct MixArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Frames to write (exact).
    #[arg(long, default_value_t = MixParams::default().packets)]
    packets: u64,
    /// Flows to start.
    #[arg(long, default_value_t = MixParams::default().flows)]
    flows: u64,
    /// Seconds of trace time over which flows start.
    #[arg(long, value_name = "SECS", default_value_t = MixParams::default().duration.as_secs())]
    duration: u64,
    /// Fraction of flows over IPv6.
    #[arg(long, default_value_t = MixParams::default().ipv6_share)]
    ipv6_share: f64,
    /// Fraction of flows in an 802.1Q VLAN.
    #[arg(long, default_value_t = MixParams::default().vlan_share)]
    vlan_share: f64,
}

impl MixArgs {
    pub(super) fn params(&self) -> MixParams {
        MixParams {
            packets: self.packets,
            flows: self.flows,
            duration: Duration::from_secs(self.duration),
            ipv6_share: self.ipv6_share,
            vlan_share: self.vlan_share,
            start: self.common.start,
            seed: self.common.seed,
        }
    }
}

/// Options of `syn-flood`.
#[derive(Args, Debug)]
pub(super) struct SynFloodArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// SYNs in the attack.
    #[arg(long, default_value_t = SynFloodParams::default().packets)]
    packets: u64,
    /// Number of victims.
    #[arg(long, default_value_t = SynFloodParams::default().victims)]
    victims: u32,
    /// Distinct spoofed sources.
    #[arg(long, default_value_t = SynFloodParams::default().sources)]
    sources: u64,
    /// Attack rate, packets per second of trace time.
    #[arg(long, default_value_t = SynFloodParams::default().pps)]
    pps: u64,
    /// Seconds of benign traffic to the victims before the attack.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    warmup_secs: u64,
}

impl SynFloodArgs {
    pub(super) fn params(&self) -> SynFloodParams {
        SynFloodParams {
            packets: self.packets,
            victims: self.victims,
            sources: self.sources,
            pps: self.pps,
            warmup: Duration::from_secs(self.warmup_secs),
            start: self.common.start,
            seed: self.common.seed,
        }
    }
}

/// Options of `udp-flood` and `icmp-flood`.
#[derive(Args, Debug)]
pub(super) struct FloodArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Attack packets.
    #[arg(long, default_value_t = FloodParams::default().packets)]
    packets: u64,
    /// Packets per second of trace time.
    #[arg(long, default_value_t = FloodParams::default().pps)]
    pps: u64,
    /// Sources (at most 256).
    #[arg(long, default_value_t = FloodParams::default().sources)]
    sources: u32,
    /// Zero bytes of payload per packet.
    #[arg(long, default_value_t = FloodParams::default().payload_bytes)]
    payload_bytes: usize,
    /// ICMP only: the victim answers every echo request.
    #[arg(long)]
    replies: bool,
}

impl FloodArgs {
    pub(super) fn params(&self) -> FloodParams {
        FloodParams {
            packets: self.packets,
            pps: self.pps,
            sources: self.sources,
            payload_bytes: self.payload_bytes,
            replies: self.replies,
            start: self.common.start,
            seed: self.common.seed,
            ..FloodParams::default()
        }
    }
}

/// Options of `port-scan`.
#[derive(Args, Debug)]
pub(super) struct PortScanArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Ports probed.
    #[arg(long, default_value_t = PortScanParams::default().ports)]
    ports: u16,
    /// Probes per second of trace time.
    #[arg(long, default_value_t = PortScanParams::default().pps)]
    pps: u64,
    /// Share of closed ports answering RST.
    #[arg(long, default_value_t = PortScanParams::default().rst_share)]
    rst_share: f64,
}

impl PortScanArgs {
    pub(super) fn params(&self) -> PortScanParams {
        PortScanParams {
            ports: self.ports,
            pps: self.pps,
            rst_share: self.rst_share,
            start: self.common.start,
            seed: self.common.seed,
            ..PortScanParams::default()
        }
    }
}

/// Options of `host-sweep`.
#[derive(Args, Debug)]
pub(super) struct HostSweepArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Port probed.
    #[arg(long, default_value_t = HostSweepParams::default().port)]
    port: u16,
    /// Probes per second of trace time.
    #[arg(long, default_value_t = HostSweepParams::default().pps)]
    pps: u64,
    /// Share of hosts answering SYN-ACK (and of the rest answering RST).
    #[arg(long, default_value_t = HostSweepParams::default().live_share)]
    live_share: f64,
}

impl HostSweepArgs {
    pub(super) fn params(&self) -> HostSweepParams {
        HostSweepParams {
            port: self.port,
            pps: self.pps,
            live_share: self.live_share,
            start: self.common.start,
            seed: self.common.seed,
            ..HostSweepParams::default()
        }
    }
}

/// Options of `dns-amplification`.
#[derive(Args, Debug)]
pub(super) struct DnsAmplificationArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Responses.
    #[arg(long, default_value_t = DnsAmplificationParams::default().packets)]
    packets: u64,
    /// Responses per second of trace time.
    #[arg(long, default_value_t = DnsAmplificationParams::default().pps)]
    pps: u64,
    /// Reflectors.
    #[arg(long, default_value_t = DnsAmplificationParams::default().reflectors)]
    sources: u32,
    /// Target DNS message size of each response.
    #[arg(long, default_value_t = DnsAmplificationParams::default().response_bytes)]
    response_bytes: usize,
}

impl DnsAmplificationArgs {
    pub(super) fn params(&self) -> DnsAmplificationParams {
        DnsAmplificationParams {
            packets: self.packets,
            pps: self.pps,
            reflectors: self.sources,
            response_bytes: self.response_bytes,
            start: self.common.start,
            seed: self.common.seed,
            ..DnsAmplificationParams::default()
        }
    }
}

/// Options of `dns-tunnel`.
#[derive(Args, Debug)]
pub(super) struct DnsTunnelArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Queries.
    #[arg(long, default_value_t = DnsTunnelParams::default().queries)]
    queries: u64,
    /// Queries per second of trace time.
    #[arg(long, default_value_t = DnsTunnelParams::default().qps)]
    qps: u64,
}

impl DnsTunnelArgs {
    pub(super) fn params(&self) -> DnsTunnelParams {
        DnsTunnelParams {
            queries: self.queries,
            qps: self.qps,
            start: self.common.start,
            seed: self.common.seed,
            ..DnsTunnelParams::default()
        }
    }
}

/// Options of `carpet-bomb`.
#[derive(Args, Debug)]
pub(super) struct CarpetBombArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Attack packets.
    #[arg(long, default_value_t = CarpetBombParams::default().packets)]
    packets: u64,
    /// Packets per second of trace time, over the whole /24.
    #[arg(long, default_value_t = CarpetBombParams::default().pps)]
    pps: u64,
    /// What is sent.
    #[arg(long, value_enum, default_value_t = CarpetArg::Udp)]
    protocol: CarpetArg,
    /// Hosts hit, .1 upward (at most 254).
    #[arg(long, default_value_t = CarpetBombParams::default().hosts)]
    hosts: u32,
    /// Distinct sources, 198.18.0.0 upward (at most 131072).
    #[arg(long, default_value_t = CarpetBombParams::default().sources)]
    sources: u32,
}

/// `--protocol` of `carpet-bomb`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum CarpetArg {
    Udp,
    Syn,
    Icmp,
}

impl CarpetBombArgs {
    pub(super) fn params(&self) -> CarpetBombParams {
        CarpetBombParams {
            packets: self.packets,
            pps: self.pps,
            protocol: match self.protocol {
                CarpetArg::Udp => CarpetProtocol::Udp,
                CarpetArg::Syn => CarpetProtocol::Syn,
                CarpetArg::Icmp => CarpetProtocol::Icmp,
            },
            hosts: self.hosts,
            sources: self.sources,
            start: self.common.start,
            seed: self.common.seed,
            ..CarpetBombParams::default()
        }
    }
}

/// Options of `bulk-transfer`.
#[derive(Args, Debug)]
pub(super) struct BulkTransferArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// Payload bytes downloaded.
    #[arg(long, default_value_t = TransferParams::default().bytes)]
    bytes: u64,
    /// Payload rate, bits per second of trace time.
    #[arg(long, default_value_t = TransferParams::default().bits_per_second)]
    bits_per_second: u64,
    /// Over IPv6 (`fd00:201::50` from `2001:db8::80`).
    #[arg(long)]
    ipv6: bool,
    /// The client uploads the data (to port 443) instead of downloading it.
    #[arg(long)]
    upload: bool,
    /// The server is protected (10.201.0.80, `fd00:201::80`), as for an internal backup.
    #[arg(long)]
    internal: bool,
}

impl BulkTransferArgs {
    pub(super) fn params(&self) -> TransferParams {
        TransferParams {
            bytes: self.bytes,
            bits_per_second: self.bits_per_second,
            ipv6: self.ipv6,
            upload: self.upload,
            internal: self.internal,
            start: self.common.start,
            seed: self.common.seed,
        }
    }
}

/// Options of `reflection`.
#[derive(Args, Debug)]
pub(super) struct ReflectionArgs {
    #[command(flatten)]
    pub(super) common: Common,
    /// The reflecting service.
    #[arg(long, value_enum, default_value_t = ServiceArg::Ntp)]
    service: ServiceArg,
    /// inbound: victim protected, reflectors outside; internal: both protected; outbound:
    /// our servers reflect to an outside victim.
    #[arg(long, value_enum, default_value_t = LayoutArg::Inbound)]
    layout: LayoutArg,
    /// Responses.
    #[arg(long, default_value_t = ReflectionParams::default().packets)]
    packets: u64,
    /// Responses per second of trace time.
    #[arg(long, default_value_t = ReflectionParams::default().pps)]
    pps: u64,
    /// Reflectors (at most 250).
    #[arg(long, default_value_t = ReflectionParams::default().reflectors)]
    reflectors: u32,
    /// The spoofed requests are on the link too.
    #[arg(long)]
    requests: bool,
    /// Ordinary use: one response of ordinary size per request of the victim's own.
    #[arg(long)]
    normal: bool,
}

/// `--service` of `reflection`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum ServiceArg {
    Dns,
    Ntp,
    Ssdp,
    Memcached,
    Cldap,
    Chargen,
    Snmp,
    WsDiscovery,
}

/// `--layout` of `reflection`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum LayoutArg {
    Inbound,
    Internal,
    Outbound,
}

impl ReflectionArgs {
    pub(super) fn params(&self) -> ReflectionParams {
        ReflectionParams {
            service: match self.service {
                ServiceArg::Dns => ReflectorService::Dns,
                ServiceArg::Ntp => ReflectorService::Ntp,
                ServiceArg::Ssdp => ReflectorService::Ssdp,
                ServiceArg::Memcached => ReflectorService::Memcached,
                ServiceArg::Cldap => ReflectorService::Cldap,
                ServiceArg::Chargen => ReflectorService::Chargen,
                ServiceArg::Snmp => ReflectorService::Snmp,
                ServiceArg::WsDiscovery => ReflectorService::WsDiscovery,
            },
            layout: match self.layout {
                LayoutArg::Inbound => ReflectionLayout::Inbound,
                LayoutArg::Internal => ReflectionLayout::Internal,
                LayoutArg::Outbound => ReflectionLayout::Outbound,
            },
            packets: self.packets,
            pps: self.pps,
            reflectors: self.reflectors,
            requests: self.requests,
            normal: self.normal,
            start: self.common.start,
            seed: self.common.seed,
        }
    }
}

/// Parses `--start`: an RFC 3339 time at or after the Unix epoch.
fn parse_start(text: &str) -> Result<Timestamp, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| e.to_string())?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let nanos = u64::try_from(since.as_nanos()).map_err(|e| e.to_string())?;
    Ok(Timestamp::from_nanos(nanos))
}
