//! `netwarden-pcapgen` as a library: parse its command line, write the scenario's pcap,
//! return the ground truth the binary prints.
//!
//! Owns the steps between the command line and the file: [`generate`] streams a scenario's
//! frames into a classic pcap file (Ethernet link type) and returns one JSON object with
//! the scenario name, file, seed, start and the scenario's ground truth. Tests call it
//! in-process and get exactly what the binary prints. Does not own: printing, exit codes
//! or progress lines (the binary, `src/bin/netwarden-pcapgen.rs`), nor the traffic itself
//! ([`crate::scenarios`]).

mod args;

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use clap::Parser as _;
use netwarden::timestamp::Timestamp;
use serde::Serialize;

use crate::pcap_writer::{PcapLinkType, PcapWriter};
use crate::scenarios::{self, ScenarioError};
use args::{Cli, Common, Scenario};

/// Output buffer: large writes keep a 4 GB trace to about a thousand syscalls.
const WRITE_BUFFER_BYTES: usize = 8 << 20;

/// Why a run of the generator failed.
#[derive(Debug, thiserror::Error)]
pub enum PcapgenError {
    /// The command line is wrong, or asked for `--help` or `--version` (see
    /// [`clap::Error::use_stderr`]).
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The scenario's parameters cannot produce a trace.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The output file could not be created.
    #[error("creating {}", path.display())]
    Create {
        /// The output file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The output file could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The ground truth could not be turned into JSON.
    #[error("serialising the ground truth")]
    Truth(#[source] serde_json::Error),
}

/// A written capture and its ground truth.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The pcap file written.
    pub path: PathBuf,
    /// `{"scenario", "file", "seed", "start_ns", "link_type", ...truth}`.
    pub truth: serde_json::Value,
}

/// Parses `args` as the command line of `netwarden-pcapgen` (the first item is the program
/// name), writes the pcap it asks for and returns the ground truth.
///
/// ```no_run
/// let generated = netwarden_synth::pcapgen::generate([
///     "netwarden-pcapgen", "syn-flood", "--packets", "1000", "--out", "/tmp/flood.pcap",
/// ])?;
/// assert_eq!(generated.truth["packets"], 1000);
/// # Ok::<(), netwarden_synth::pcapgen::PcapgenError>(())
/// ```
pub fn generate<I, T>(args: I) -> Result<Generated, PcapgenError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    match &cli.scenario {
        Scenario::Mix(a) => write(&a.common, "mix", |e| scenarios::mix(&a.params(), e)),
        Scenario::SynFlood(a) => write(&a.common, "syn-flood", |e| {
            scenarios::syn_flood(&a.params(), e)
        }),
        Scenario::UdpFlood(a) => write(&a.common, "udp-flood", |e| {
            scenarios::udp_flood(&a.params(), e)
        }),
        Scenario::IcmpFlood(a) => write(&a.common, "icmp-flood", |e| {
            scenarios::icmp_flood(&a.params(), e)
        }),
        Scenario::PortScan(a) => write(&a.common, "port-scan", |e| {
            scenarios::port_scan(&a.params(), e)
        }),
        Scenario::HostSweep(a) => write(&a.common, "host-sweep", |e| {
            scenarios::host_sweep(&a.params(), e)
        }),
        Scenario::DnsAmplification(a) => write(&a.common, "dns-amplification", |e| {
            scenarios::dns_amplification(&a.params(), e)
        }),
        Scenario::DnsTunnel(a) => write(&a.common, "dns-tunnel", |e| {
            scenarios::dns_tunnel(&a.params(), e)
        }),
        Scenario::CarpetBomb(a) => write(&a.common, "carpet-bomb", |e| {
            scenarios::carpet_bomb(&a.params(), e)
        }),
        Scenario::BulkTransfer(a) => write(&a.common, "bulk-transfer", |e| {
            scenarios::bulk_transfer(&a.params(), e)
        }),
        Scenario::Reflection(a) => write(&a.common, "reflection", |e| {
            scenarios::reflection(&a.params(), e)
        }),
    }
}

/// Runs one scenario into `common.out` and returns its truth with the run's parameters.
fn write<T: Serialize>(
    common: &Common,
    name: &str,
    scenario: impl FnOnce(&mut dyn FnMut(Timestamp, &[u8])) -> Result<T, ScenarioError>,
) -> Result<Generated, PcapgenError> {
    let path = common.out.as_path();
    let failed = |source| PcapgenError::Write {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(|source| PcapgenError::Create {
        path: path.to_owned(),
        source,
    })?;
    let mut writer = PcapWriter::with_capacity(WRITE_BUFFER_BYTES, file, PcapLinkType::ETHERNET)
        .map_err(failed)?;
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
        return Err(failed(e));
    }
    writer.finish().map_err(failed)?;
    Ok(Generated {
        path: path.to_owned(),
        truth: report(common, path, name, &truth)?,
    })
}

/// `{"scenario", "file", "seed", "start_ns", "link_type", ...truth}`.
fn report<T: Serialize>(
    common: &Common,
    path: &Path,
    name: &str,
    truth: &T,
) -> Result<serde_json::Value, PcapgenError> {
    let mut json = serde_json::to_value(truth).map_err(PcapgenError::Truth)?;
    if let Some(map) = json.as_object_mut() {
        map.insert("scenario".into(), name.into());
        map.insert("file".into(), path.display().to_string().into());
        map.insert("seed".into(), common.seed.into());
        map.insert("start_ns".into(), common.start.as_nanos().into());
        map.insert("link_type".into(), PcapLinkType::ETHERNET.0.into());
    }
    Ok(json)
}
