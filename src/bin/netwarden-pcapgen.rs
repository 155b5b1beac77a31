//! `netwarden-pcapgen`: writes a deterministic synthetic pcap and prints its ground truth.
//!
//! A thin edge over `netwarden::synth::scenarios`: parse the command line, stream the
//! scenario's frames into a classic pcap file (Ethernet link type), then print one JSON
//! object with the scenario name, file, seed and the scenario's ground truth to stdout.
//! A progress line goes to stderr. Exit codes: 0 success, 1 I/O failure, 64 usage error
//! (including scenario parameters that cannot produce a trace).
//!
//! ```text
//! netwarden-pcapgen mix --out /tmp/mix.pcap --packets 100000 --flows 4000 --seed 7
//! netwarden-pcapgen syn-flood --out /tmp/flood.pcap --packets 20000 --warmup-secs 5
//! ```

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use netwarden::synth::pcap_writer::{PcapLinkType, PcapWriter};
use netwarden::synth::scenarios::{
    self, DEFAULT_SEED, DnsAmplificationParams, DnsTunnelParams, FloodParams, HostSweepParams,
    MixParams, PortScanParams, ScenarioError, SynFloodParams,
};
use netwarden::timestamp::Timestamp;
use serde::Serialize;

/// `EX_USAGE` from sysexits.h.
const EXIT_USAGE: u8 = 64;
/// Output buffer: large writes keep a 4 GB trace to about a thousand syscalls.
const WRITE_BUFFER_BYTES: usize = 8 << 20;

/// Generate deterministic synthetic traffic as a pcap file and print its ground truth as JSON.
#[derive(Parser, Debug)]
#[command(name = "netwarden-pcapgen", version)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

/// Options every scenario takes.
#[derive(Args, Debug)]
struct Common {
    /// Output pcap file (overwritten).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Seed; the same seed and options always give a byte-identical file.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Timestamp of the trace start, RFC 3339.
    #[arg(long, value_name = "TIME", default_value = "2026-01-01T00:00:00Z", value_parser = parse_start)]
    start: Timestamp,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Realistic gateway mix: TCP sessions, DNS lookups, pings; exactly --packets frames.
    Mix(MixArgs),
    /// Spoofed SYN flood to victims 10.201.0.10 upward, ports 80/443.
    SynFlood(SynFloodArgs),
    /// UDP flood from one or a few sources to one victim.
    UdpFlood(FloodArgs),
    /// ICMP echo-request flood from one or a few sources to one victim.
    IcmpFlood(FloodArgs),
    /// SYN scan of ports 1..=--ports of one host.
    PortScan(PortScanArgs),
    /// SYN sweep of one port across 10.201.9.0/24.
    HostSweep(HostSweepArgs),
    /// Large DNS responses from many reflectors to a victim that sent no queries.
    DnsAmplification(DnsAmplificationArgs),
    /// DNS tunnel: long base32 labels under t.tunnel.example, each query answered.
    DnsTunnel(DnsTunnelArgs),
}

/// Options of `mix`.
#[derive(Args, Debug)]
struct MixArgs {
    #[command(flatten)]
    common: Common,
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
    fn params(&self) -> MixParams {
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
struct SynFloodArgs {
    #[command(flatten)]
    common: Common,
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
    fn params(&self) -> SynFloodParams {
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
struct FloodArgs {
    #[command(flatten)]
    common: Common,
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
}

impl FloodArgs {
    fn params(&self) -> FloodParams {
        FloodParams {
            packets: self.packets,
            pps: self.pps,
            sources: self.sources,
            payload_bytes: self.payload_bytes,
            start: self.common.start,
            seed: self.common.seed,
            ..FloodParams::default()
        }
    }
}

/// Options of `port-scan`.
#[derive(Args, Debug)]
struct PortScanArgs {
    #[command(flatten)]
    common: Common,
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
    fn params(&self) -> PortScanParams {
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
struct HostSweepArgs {
    #[command(flatten)]
    common: Common,
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
    fn params(&self) -> HostSweepParams {
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
struct DnsAmplificationArgs {
    #[command(flatten)]
    common: Common,
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
    fn params(&self) -> DnsAmplificationParams {
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
struct DnsTunnelArgs {
    #[command(flatten)]
    common: Common,
    /// Queries.
    #[arg(long, default_value_t = DnsTunnelParams::default().queries)]
    queries: u64,
    /// Queries per second of trace time.
    #[arg(long, default_value_t = DnsTunnelParams::default().qps)]
    qps: u64,
}

impl DnsTunnelArgs {
    fn params(&self) -> DnsTunnelParams {
        DnsTunnelParams {
            queries: self.queries,
            qps: self.qps,
            start: self.common.start,
            seed: self.common.seed,
            ..DnsTunnelParams::default()
        }
    }
}

fn parse_start(text: &str) -> Result<Timestamp, String> {
    let time = humantime::parse_rfc3339(text).map_err(|e| e.to_string())?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let nanos = u64::try_from(since.as_nanos()).map_err(|e| e.to_string())?;
    Ok(Timestamp::from_nanos(nanos))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            drop(e.print());
            return ExitCode::from(code);
        }
    };
    match run(&cli.scenario) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netwarden-pcapgen: {e:#}");
            if e.downcast_ref::<ScenarioError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(scenario: &Scenario) -> anyhow::Result<()> {
    match scenario {
        Scenario::Mix(a) => generate(&a.common, "mix", |e| scenarios::mix(&a.params(), e)),
        Scenario::SynFlood(a) => generate(&a.common, "syn-flood", |e| {
            scenarios::syn_flood(&a.params(), e)
        }),
        Scenario::UdpFlood(a) => generate(&a.common, "udp-flood", |e| {
            scenarios::udp_flood(&a.params(), e)
        }),
        Scenario::IcmpFlood(a) => generate(&a.common, "icmp-flood", |e| {
            scenarios::icmp_flood(&a.params(), e)
        }),
        Scenario::PortScan(a) => generate(&a.common, "port-scan", |e| {
            scenarios::port_scan(&a.params(), e)
        }),
        Scenario::HostSweep(a) => generate(&a.common, "host-sweep", |e| {
            scenarios::host_sweep(&a.params(), e)
        }),
        Scenario::DnsAmplification(a) => generate(&a.common, "dns-amplification", |e| {
            scenarios::dns_amplification(&a.params(), e)
        }),
        Scenario::DnsTunnel(a) => generate(&a.common, "dns-tunnel", |e| {
            scenarios::dns_tunnel(&a.params(), e)
        }),
    }
}

/// Runs one scenario into `common.out` and prints its truth as JSON on stdout.
fn generate<T: Serialize>(
    common: &Common,
    name: &str,
    scenario: impl FnOnce(&mut dyn FnMut(Timestamp, &[u8])) -> Result<T, ScenarioError>,
) -> anyhow::Result<()> {
    let began = Instant::now();
    let path = common.out.as_path();
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = PcapWriter::with_capacity(WRITE_BUFFER_BYTES, file, PcapLinkType::ETHERNET)
        .with_context(|| format!("writing {}", path.display()))?;
    // The scenario callback cannot fail: keep the first error and stop writing.
    let mut write_error: Option<io::Error> = None;
    let truth = scenario(&mut |ts, frame| {
        if write_error.is_none()
            && let Err(e) = writer.write_frame(ts, frame)
        {
            write_error = Some(e);
        }
    })?;
    if let Some(e) = write_error {
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    writer
        .finish()
        .with_context(|| format!("writing {}", path.display()))?;
    report(common, path, name, &truth)?;
    eprintln!(
        "netwarden-pcapgen: wrote {} in {:.2?}.",
        path.display(),
        began.elapsed()
    );
    Ok(())
}

/// Prints `{"scenario", "file", "seed", "start_ns", ...truth}` as one line of JSON.
fn report<T: Serialize>(common: &Common, path: &Path, name: &str, truth: &T) -> anyhow::Result<()> {
    let mut json = serde_json::to_value(truth).context("serialising the ground truth")?;
    if let Some(map) = json.as_object_mut() {
        map.insert("scenario".into(), name.into());
        map.insert("file".into(), path.display().to_string().into());
        map.insert("seed".into(), common.seed.into());
        map.insert("start_ns".into(), common.start.as_nanos().into());
        map.insert("link_type".into(), PcapLinkType::ETHERNET.0.into());
    }
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{json}").context("writing the ground truth to stdout")?;
    Ok(())
}
