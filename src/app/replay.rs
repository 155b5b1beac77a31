//! `netwarden replay`: capture files through the same pipeline as live traffic, then a
//! summary (human-readable, or one JSON object with `--json`).
//!
//! Files are read in order by one worker, so the result is deterministic: the same files
//! and config always give the same counts, flows and alerts. `--workers N` spreads the
//! frames by flow over N pipelines with one shared detector, as N live workers would be. On a terminal, progress is
//! shown on stderr; stdout carries only the summary.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use super::{FILE_INTERFACE, Shared, init_logging, key_detection_hashes, load_config};
use crate::alert::Alert;
use crate::capture::pcap_file::{Ending, PcapFileSource};
use crate::cli::ReplayArgs;
use crate::detect::{Detector, RuleSet, sketch};
use crate::flow::EndReason;
use crate::pipeline::worker::{Drive, drive};
use crate::pipeline::{Detection, Fanout, Pipeline, Stage, Totals, share};
use crate::telemetry::{Protocol, WorkerMetrics};
use crate::timestamp::Timestamp;

/// What a replay found.
#[derive(Clone, Debug, Serialize)]
pub struct ReplaySummary {
    /// Frames read.
    pub packets: u64,
    /// Wire bytes of those frames.
    pub bytes: u64,
    /// Flows started.
    pub flows: u64,
    /// Flows started, by protocol.
    pub flows_by_protocol: serde_json::Map<String, serde_json::Value>,
    /// Flows ended, by reason (all remaining flows end with `shutdown`).
    pub flows_ended: serde_json::Map<String, serde_json::Value>,
    /// Frames whose decoding stopped early.
    pub decode_errors: u64,
    /// Packets by protocol.
    pub protocols: serde_json::Map<String, serde_json::Value>,
    /// Earliest packet timestamp, seconds since the epoch.
    pub first_ts: Option<f64>,
    /// Latest packet timestamp, seconds since the epoch.
    pub last_ts: Option<f64>,
    /// Wall-clock duration of the replay.
    pub wall_seconds: f64,
    /// Per-file outcome.
    pub files: Vec<FileSummary>,
    /// Alert transitions raised during the replay.
    pub alerts: Vec<serde_json::Value>,
}

/// One file's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    /// The file.
    pub path: PathBuf,
    /// Frames read from it.
    pub packets: u64,
    /// `complete`, or why reading stopped early.
    pub ending: String,
}

/// Runs the `replay` command.
///
/// # Errors
/// Config errors, an unreadable or unsupported file.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config, &args.overrides)?;
    init_logging(&config);
    // The public key by default: a replay's output is the same on every run.
    key_detection_hashes(args.overrides.hash_seed, || sketch::FIXED_HASH_KEY)?;
    let summary = replay(args, &config)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &summary).context("writing summary")?;
        writeln!(out).context("writing summary")?;
    } else {
        write_human(&mut out, &summary).context("writing summary")?;
    }
    Ok(())
}

/// Replays `args.files` through one pipeline (or `args.workers` behind a [`Fanout`])
/// with `config`'s rules.
///
/// # Errors
/// An unreadable or unsupported file, or a metrics endpoint that cannot start.
pub fn replay(args: &ReplayArgs, config: &crate::config::Config) -> anyhow::Result<ReplaySummary> {
    let shared = Shared::new(config)?;
    let admin = match args.overrides.listen {
        Some(_) => Some(super::daemon::AdminThread::start(config, &shared, true)?),
        None => None,
    };
    let metrics = shared.metrics.worker(FILE_INTERFACE, "0");
    let rules = Arc::new(RuleSet::build(config).context("reading the rules' blocklist files")?);
    let collected = Arc::new(Mutex::new(Vec::new()));
    let detection = Detection::new(
        Detector::new(Arc::clone(&rules)),
        Box::new(Arc::clone(&collected)),
    )
    .with_metrics(shared.metrics.detection.clone());
    let started = Instant::now();
    let workers = usize::from(args.workers.max(1));
    let (totals, files) = if workers == 1 {
        let mut pipeline = Pipeline::new(shared.pipeline_options(config, 0, 1));
        pipeline.set_detector(detection);
        let files = read_files(&args.files, &mut pipeline, &metrics)?;
        pipeline.finish(&metrics);
        (*pipeline.totals(), files)
    } else {
        let (evaluator, collectors) = share(detection, workers);
        let evaluator = std::thread::Builder::new()
            .name("nw-evaluator".to_owned())
            .spawn(move || evaluator.run())
            .context("spawning the evaluator thread")?;
        let pipelines = collectors.into_iter().enumerate().map(|(k, collector)| {
            let mut p = Pipeline::new(shared.pipeline_options(config, k, workers));
            p.set_detector(collector.in_lockstep());
            p
        });
        let mut fanout = Fanout::new(pipelines.collect());
        let files = read_files(&args.files, &mut fanout, &metrics);
        // Finished (or dropped, on error) collectors let the evaluator end.
        fanout.finish(&metrics);
        let totals = fanout.totals();
        drop(fanout);
        if evaluator.join().is_err() {
            anyhow::bail!("the evaluator thread panicked");
        }
        (totals, files?)
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    drop(admin);
    let alerts = std::mem::take(&mut *collected.lock().unwrap_or_else(PoisonError::into_inner));
    summarize(&totals, wall_seconds, files, &alerts)
}

/// Runs `paths` in order through `pipeline`, showing progress on a terminal; returns each
/// file's outcome. Flows are not drained.
///
/// # Errors
/// An unreadable or unsupported file.
fn read_files<P: Stage>(
    paths: &[PathBuf],
    pipeline: &mut P,
    metrics: &WorkerMetrics,
) -> anyhow::Result<Vec<FileSummary>> {
    let shutdown = AtomicBool::new(false);
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut files = Vec::new();
    for path in paths {
        let before = pipeline.packets();
        let mut source = PcapFileSource::open(path)?;
        let mut report =
            |packets: u64, fraction: Option<f64>| progress.show(path, packets, fraction);
        drive(
            &mut source,
            pipeline,
            metrics,
            Drive {
                shutdown: &shutdown,
                pace: None,
                progress: Some(&mut report),
            },
        )?;
        let ending = match source.ending() {
            Some(Ending::Truncated(why)) => format!("truncated: {why}"),
            _ => "complete".to_owned(),
        };
        files.push(FileSummary {
            path: path.clone(),
            packets: pipeline.packets() - before,
            ending,
        });
    }
    progress.clear();
    Ok(files)
}

/// The summary of a replay from the pipeline's totals.
///
/// # Errors
/// An alert that cannot be encoded as JSON (a bug).
fn summarize(
    t: &Totals,
    wall_seconds: f64,
    files: Vec<FileSummary>,
    alerts: &[Alert],
) -> anyhow::Result<ReplaySummary> {
    let by_protocol = |counts: &[u64]| {
        Protocol::ALL
            .iter()
            .zip(counts)
            .map(|(p, n)| (p.as_str().to_owned(), serde_json::Value::from(*n)))
            .collect()
    };
    Ok(ReplaySummary {
        packets: t.packets,
        bytes: t.bytes,
        flows: t.flows,
        flows_by_protocol: by_protocol(&t.flows_by_protocol),
        flows_ended: EndReason::ALL
            .iter()
            .zip(t.flows_ended)
            .map(|(r, n)| (r.as_str().to_owned(), serde_json::Value::from(n)))
            .collect(),
        decode_errors: t.decode_errors,
        protocols: by_protocol(&t.protocols),
        first_ts: t.first_ts.map(Timestamp::as_secs_f64),
        last_ts: t.last_ts.map(Timestamp::as_secs_f64),
        wall_seconds,
        files,
        alerts: alerts
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .context("encoding alerts")?,
    })
}

fn write_human(out: &mut impl Write, s: &ReplaySummary) -> std::io::Result<()> {
    #[allow(clippy::cast_precision_loss)]
    let rate = if s.wall_seconds > 0.0 {
        s.packets as f64 / s.wall_seconds
    } else {
        0.0
    };
    writeln!(out, "packets        {}", s.packets)?;
    writeln!(out, "bytes          {}", s.bytes)?;
    writeln!(out, "flows          {}", s.flows)?;
    writeln!(out, "decode errors  {}", s.decode_errors)?;
    if let (Some(first), Some(last)) = (s.first_ts, s.last_ts) {
        writeln!(
            out,
            "packet time    {first:.6} .. {last:.6} ({:.3} s)",
            last - first
        )?;
    }
    writeln!(
        out,
        "wall time      {:.3} s ({rate:.0} packets/s)",
        s.wall_seconds
    )?;
    for f in &s.files {
        writeln!(
            out,
            "file           {} ({} packets, {})",
            f.path.display(),
            f.packets,
            f.ending
        )?;
    }
    writeln!(out, "alerts         {}", s.alerts.len())
}

/// Progress line on a terminal, redrawn at most four times a second.
struct Progress {
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            started: Instant::now(),
            last: None,
        }
    }

    fn show(&mut self, path: &std::path::Path, packets: u64, fraction: Option<f64>) {
        if !self.enabled
            || self
                .last
                .is_some_and(|l| l.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        #[allow(clippy::cast_precision_loss)]
        let rate = packets as f64 / secs;
        let percent = fraction
            .map(|f| format!(" {:5.1}%", f * 100.0))
            .unwrap_or_default();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        eprint!("\r\x1b[2K{name}{percent}  {packets} packets  {rate:.0} packets/s");
    }

    fn clear(&self) {
        if self.enabled && self.last.is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}
