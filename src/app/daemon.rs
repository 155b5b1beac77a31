//! `netwarden run`: the daemon.
//!
//! Threads (names fit Linux's 15-character limit):
//! - `nw-<k>-<iface>`: one per capture worker, each owning its source, pipeline and flow
//!   table; run-to-completion, nothing shared per packet;
//! - `nw-admin`: a current-thread tokio runtime serving `/metrics`, `/healthz`, `/readyz`,
//!   so telemetry answers even when the workers are saturated;
//! - `nw-alert`: the alert router (`crate::alert::sinks`), its own current-thread runtime
//!   delivering alerts to Alertmanager, the webhook and the log file; workers hand it alerts
//!   without ever waiting;
//! - main: a current-thread tokio runtime waiting for SIGINT/SIGTERM or a worker failure.
//!   It also runs the self-alert monitor (`crate::health`, once a second).
//!
//! Shutdown: the first signal sets the shared flag; workers notice it within one read
//! timeout, drain their flows (reason `shutdown`) and exit; then the alert router delivers
//! what is still queued for up to `alerting.shutdown_grace`. A second signal exits at once.
//! A worker that fails stops the whole process with a non-zero status, so a supervisor
//! restarts it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail};
use prometheus::IntGauge;
use tokio::sync::{mpsc, oneshot, watch};

use super::privileges;
use super::reload::{self, Reloader};
use super::systemd::{self, HeartbeatCheck, Notifier, Watchdog};
use super::{FILE_INTERFACE, Shared, init_logging, key_detection_hashes, load_run_config};
use crate::admin::{self, AdminState};
use crate::alert::sinks::{AlertRouter, RouterSettings, StateDir, state_directory};
use crate::capture::afpacket::{AfPacketOptions, AfPacketSource, default_interfaces};
use crate::capture::pcap_file::PcapFileSource;
use crate::capture::ring::{self, RingShape};
use crate::capture::{CaptureError, Source};
use crate::cli::{RunArgs, Speed};
use crate::config::{CaptureConfig, Config, FanoutMode};
use crate::detect::{Detector, RuleSet, sketch};
use crate::health;
use crate::pipeline::worker::{Drive, Pace, Stopped, drive};
use crate::pipeline::{self, Detection, Judge, Pipeline, PipelineOptions};
use crate::telemetry::WorkerMetrics;

/// The HTTP endpoint on its own thread. Dropping it stops the server and joins the thread.
pub struct AdminThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Readiness flag served on `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// The bound address (useful when the configured port was 0).
    pub local_addr: SocketAddr,
}

/// The metrics endpoint bound on the calling thread, not serving yet: the daemon binds
/// while it may still need privileges (a port below 1024 as root), and starts the thread
/// once they are gone, so the thread never holds them.
pub struct BoundAdmin {
    settings: admin::Settings,
    runtime: tokio::runtime::Runtime,
    listener: tokio::net::TcpListener,
}

impl AdminThread {
    /// Binds `config.metrics.listen` (failing start-up on a clash) and serves on a new
    /// thread, with the endpoint's limits sized against the descriptors open now.
    ///
    /// # Errors
    /// The web configuration cannot be loaded, the address cannot be bound or the runtime
    /// cannot start.
    pub fn start(config: &Config, shared: &Shared, ready: bool) -> anyhow::Result<AdminThread> {
        Self::bind(config)?.serve(shared, ready)
    }

    /// Binds `config.metrics.listen` on the calling thread (failing start-up on a clash).
    ///
    /// # Errors
    /// The web configuration cannot be loaded, the address cannot be bound or the runtime
    /// cannot start.
    pub fn bind(config: &Config) -> anyhow::Result<BoundAdmin> {
        let settings = admin::Settings::from_config(config)?;
        let addr = settings.listen;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the admin runtime")?;
        let listener = runtime
            .block_on(admin::bind(addr))
            .with_context(|| format!("binding the metrics endpoint on {addr}"))?;
        Ok(BoundAdmin {
            settings,
            runtime,
            listener,
        })
    }
}

impl BoundAdmin {
    /// Serves on a new thread, with the endpoint's limits sized against the descriptors
    /// open now.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn serve(self, shared: &Shared, ready: bool) -> anyhow::Result<AdminThread> {
        let BoundAdmin {
            settings,
            runtime,
            listener,
        } = self;
        let local_addr = listener.local_addr().unwrap_or(settings.listen);
        let ready = Arc::new(AtomicBool::new(ready));
        let state = AdminState {
            metrics: Arc::clone(&shared.metrics),
            ready: Arc::clone(&ready),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nw-admin".to_owned())
            .spawn(move || {
                let shutdown = async move {
                    drop(stopped.await);
                };
                if let Err(e) = runtime.block_on(admin::serve(listener, &settings, state, shutdown))
                {
                    tracing::error!(error = %e, "Metrics endpoint failed.");
                }
            })
            .context("spawning the admin thread")?;
        Ok(AdminThread {
            stop: Some(stop),
            thread: Some(thread),
            ready,
            local_addr,
        })
    }
}

impl Drop for AdminThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

/// One capture worker before it starts.
struct WorkerPlan {
    thread_name: String,
    source: Box<dyn Source>,
    metrics: WorkerMetrics,
    options: PipelineOptions,
    pace: Option<Pace>,
}

/// Runs the `run` command until a signal or a worker failure.
///
/// # Errors
/// Config errors (exit 78, an unknown `[daemon] user` included), capture sources that
/// cannot be opened, a failed worker.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config = load_run_config(args)?;
    init_logging(&config);
    privileges::forbid_new_privileges()?;
    let account = privileges::find_user(&config.daemon.user, args.config.config.as_deref())?;
    // Before any rule set exists: every worker, the evaluator and every reload share it.
    key_detection_hashes(args.overrides.hash_seed, sketch::random_hash_key)?;
    // Blocklist files are read here, so a bad one stops start-up before capture begins.
    let rules = Arc::new(RuleSet::build(&config)?);
    let shared = Shared::new(&config)?;
    count_rules(&rules, &shared);
    // Opened (and by a root start handed to the service user) while root may still be
    // needed for that; nothing in it is read or written before privileges are dropped.
    let state = open_state_directory(&config, account.as_ref())?;
    let plans = match &args.pcap {
        Some(path) => vec![file_worker(path, args.speed, &config, &shared)?],
        None => live_workers(&config, &shared)?,
    };
    let bound = AdminThread::bind(&config)?;
    // Sockets are open and the listener bound; root is no longer needed, and of the
    // capabilities only CAP_NET_RAW, by a live capture, which reattaches interfaces that
    // come back. Before any other thread starts, so none holds more.
    if let Some(account) = &account {
        privileges::drop_to_user(account)?;
    }
    privileges::keep_only_needed(args.pcap.is_none())?;
    let admin = bound.serve(&shared, false)?;
    // After the drop, so the state file is only ever touched as the service user; before
    // the workers, so no alert of theirs has nowhere to go.
    let alerts = AlertRouter::start(
        RouterSettings::from_config(&config.alerting)?
            .with_state_directory(state)
            .with_networks(Arc::clone(&shared.networks)),
        &shared.metrics.alerts,
    )
    .context("starting alert delivery")?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let (failed_tx, mut failed_rx) = mpsc::unbounded_channel::<anyhow::Error>();
    // systemd: the watchdog reads each worker's heartbeat gauge.
    let heartbeats = plans.iter().map(|p| p.metrics.heartbeat.clone()).collect();
    let (workers, rule_updates) =
        spawn_workers(plans, &rules, &shared, &alerts, &shutdown, &failed_tx)?;
    drop(failed_tx);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // Before anyone is told the daemon is ready: a SIGTERM from then on is a clean stop,
    // never the default action that kills the process without draining.
    let mut signals = {
        let _entered = runtime.enter();
        ShutdownSignals::install().context("installing the SIGTERM and SIGINT handlers")?
    };
    admin.ready.store(true, Ordering::Release);
    tracing::info!(listen = %admin.local_addr, workers = workers.len(), "Netwarden is running.");
    let (notifier, watchdog) = notify_ready(&admin, workers.len(), heartbeats)?;
    start_control(
        &runtime,
        args,
        config,
        &shared,
        &alerts,
        Reloading {
            rules,
            rule_updates,
        },
    );
    let failure = runtime.block_on(async {
        tokio::select! {
            signal = signals.recv() => {
                tracing::info!(signal, "Shutting down.");
                None
            }
            Some(error) = failed_rx.recv() => Some(error),
        }
    });
    shutdown.store(true, Ordering::Release);
    notifier.stopping();
    drop(watchdog);
    drain(&runtime, &mut signals, workers, alerts);
    drop(admin);
    // A reload's read stuck on a file (a hung mount) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match failure {
        Some(error) => Err(error.context("a capture thread failed")),
        None => Ok(()),
    }
}

/// Exports how many rules can alert, by kind, and warns when none can: detection is off.
fn count_rules(rules: &RuleSet, shared: &Shared) {
    let kinds = super::reload::alerting_kinds(rules);
    if kinds.is_empty() {
        tracing::warn!(
            rules = rules.rules().len(),
            "No rule can alert (none loaded, or only shadow rules): detection is off."
        );
    }
    shared.metrics.reload.count_rules(kinds);
}

/// The state directory where firing alerts survive a restart, open and checked (see
/// [`StateDir`]); handed to `account` when root starts for it. `None` when persistence is
/// off or the directory cannot be used (with a warning).
///
/// # Errors
/// The directory is unsafe: writable by others than the service user, owned by another
/// account, or a link root was to hand over.
fn open_state_directory(
    config: &Config,
    account: Option<&nix::unistd::User>,
) -> anyhow::Result<Option<StateDir>> {
    let Some(path) = state_directory(
        &config.daemon.state_directory,
        std::env::var_os("STATE_DIRECTORY").as_deref(),
    ) else {
        return Ok(None);
    };
    let hand_to = account
        .filter(|_| nix::unistd::Uid::effective().is_root())
        .map(|a| (a.uid, a.gid));
    match StateDir::open(&path, hand_to) {
        Ok(dir) => Ok(Some(dir)),
        Err(e) if e.is_unsafe() => Err(e.into()),
        Err(e) => {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::new(e)),
                "Cannot use the state directory; firing alerts will not survive a restart."
            );
            Ok(None)
        }
    }
}

/// systemd: readiness once capture and `/metrics` are up, then the watchdog (when the unit
/// asks for one), which checks every worker's heartbeat.
fn notify_ready(
    admin: &AdminThread,
    workers: usize,
    heartbeats: Vec<IntGauge>,
) -> anyhow::Result<(Notifier, Option<Watchdog>)> {
    let notifier = Notifier::from_env();
    notifier.ready(&format!(
        "Capturing with {workers} workers; metrics on {}.",
        admin.local_addr
    ));
    let watchdog = systemd::watchdog_interval()
        .map(|every| Watchdog::start(Notifier::from_env(), every, HeartbeatCheck::new(heartbeats)))
        .transpose()
        .context("starting the watchdog")?;
    Ok((notifier, watchdog))
}

/// What a reload replaces: the running rules, and where each worker takes new ones.
struct Reloading {
    rules: Arc<RuleSet>,
    rule_updates: Vec<RuleUpdates>,
}

/// Spawns on `runtime` the tasks that act on the running daemon: the self-alert monitor
/// (judged once a second from the daemon's own metrics, sent through the alert router)
/// and the reloader (SIGHUP and watched files reload rules, host groups and blocklists,
/// and hand the monitor each new config).
fn start_control(
    runtime: &tokio::runtime::Runtime,
    args: &RunArgs,
    config: Config,
    shared: &Shared,
    alerts: &AlertRouter,
    reloading: Reloading,
) {
    let (config_updates, _) = watch::channel(Arc::new(config.clone()));
    health::spawn(
        runtime,
        &config,
        &shared.metrics,
        &alerts.handle(),
        &config_updates,
    );
    runtime.spawn(reload::run(Reloader::new(
        args.clone(),
        config,
        reloading.rules,
        reloading.rule_updates,
        config_updates,
        shared.metrics.reload.clone(),
    )));
}

/// Waits for the workers to drain their flows, then gives queued alerts their grace
/// period; a second signal meanwhile exits at once.
fn drain(
    runtime: &tokio::runtime::Runtime,
    signals: &mut ShutdownSignals,
    workers: Vec<JoinHandle<()>>,
    alerts: AlertRouter,
) {
    runtime.block_on(async {
        let drained = tokio::task::spawn_blocking(move || {
            for w in workers {
                if w.join().is_err() {
                    tracing::error!("A worker thread panicked.");
                }
            }
            alerts.shutdown()
        });
        tokio::select! {
            _ = drained => {}
            signal = signals.recv() => {
                tracing::warn!(signal, "Second signal: exiting immediately.");
                std::process::exit(130);
            }
        }
    });
}

/// Where the reloader sends new rule sets.
type RuleUpdates = std::sync::mpsc::Sender<Arc<RuleSet>>;

/// Starts one thread per worker plan, and with several workers the evaluator that judges
/// their packets together; returns the threads' handles (the evaluator's last, so it is
/// joined after the workers that feed it) and where the reloader sends new rule sets.
fn spawn_workers(
    plans: Vec<WorkerPlan>,
    rules: &Arc<RuleSet>,
    shared: &Shared,
    alerts: &AlertRouter,
    shutdown: &Arc<AtomicBool>,
    failed: &mpsc::UnboundedSender<anyhow::Error>,
) -> anyhow::Result<(Vec<JoinHandle<()>>, Vec<RuleUpdates>)> {
    let (updates_tx, updates) = std::sync::mpsc::channel();
    let detection = Detection::new(
        Detector::new(Arc::clone(rules)).with_updates(updates),
        alerts.handle().alert_output(),
    )
    .with_metrics(shared.metrics.detection.clone());
    let (judges, evaluator): (Vec<Judge>, _) = if plans.len() == 1 {
        (vec![detection.into()], None)
    } else {
        let (evaluator, collectors) = pipeline::share(detection, plans.len());
        (
            collectors.into_iter().map(Judge::from).collect(),
            Some(evaluator),
        )
    };
    let mut threads = Vec::with_capacity(plans.len() + 1);
    for (plan, judge) in plans.into_iter().zip(judges) {
        let name = plan.thread_name.clone();
        let shutdown = Arc::clone(shutdown);
        let failed = failed.clone();
        let handle = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                supervised(&name, &failed, || {
                    run_worker(plan, judge, &shutdown).map_err(anyhow::Error::new)
                });
            })
            .context("spawning a worker thread")?;
        threads.push(handle);
    }
    if let Some(evaluator) = evaluator {
        let failed = failed.clone();
        let handle = std::thread::Builder::new()
            .name("nw-evaluator".to_owned())
            .spawn(move || {
                supervised("nw-evaluator", &failed, || {
                    evaluator.run();
                    Ok(())
                });
            })
            .context("spawning the evaluator thread")?;
        threads.push(handle);
    }
    Ok((threads, vec![updates_tx]))
}

/// Runs a hot-path thread's `body`; an error or a panic is logged and reported on
/// `failed`, which stops the daemon (systemd restarts it), so a dead worker or evaluator
/// never leaves the daemon running blind.
fn supervised(
    thread: &str,
    failed: &mpsc::UnboundedSender<anyhow::Error>,
    body: impl FnOnce() -> anyhow::Result<()>,
) {
    let error = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            anyhow::anyhow!("thread {thread} panicked: {message}")
        }
    };
    tracing::error!(thread, error = %format_args!("{error:#}"), "Capture thread failed.");
    drop(failed.send(error));
}

/// The signals that stop the daemon, caught from the moment they are installed.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers; must run inside the runtime that will wait on them.
    fn install() -> std::io::Result<ShutdownSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM with the signal's name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Drives one worker until shutdown, then drains its flows.
fn run_worker(plan: WorkerPlan, judge: Judge, shutdown: &AtomicBool) -> Result<(), CaptureError> {
    let WorkerPlan {
        mut source,
        metrics,
        options,
        pace,
        ..
    } = plan;
    // The flow-table cap, for the "flow table at cap" alert (the table clamps
    // max_flows only far above the config's limit, so this is its capacity).
    metrics
        .flows_capacity
        .set(i64::try_from(options.flows.max_flows).unwrap_or(i64::MAX));
    let mut pipeline = Pipeline::new(options);
    pipeline.set_detector(judge);
    let stopped = drive(
        source.as_mut(),
        &mut pipeline,
        &metrics,
        Drive {
            shutdown,
            pace,
            progress: None,
        },
    )?;
    if stopped == Stopped::EndOfSource {
        pipeline.publish_window();
        tracing::info!("Capture file finished; still serving metrics until stopped.");
        // The end of the file is a live link gone silent: packet time runs on from the
        // last packet at wall-clock speed (as `Next::Idle` ticks a quiet live link), so
        // flows expire and alerts resolve after their resolve_delay.
        let last = pipeline.totals().last_ts;
        let ended = std::time::Instant::now();
        while !shutdown.load(Ordering::Acquire) {
            if let Some(last) = last {
                pipeline.tick(last.saturating_add(ended.elapsed()));
                pipeline.flush(&metrics);
            }
            // A finished file is not a stuck worker: keep the watchdog's heartbeat going.
            let now = crate::timestamp::Timestamp::now().as_nanos() / 1_000_000_000;
            metrics
                .heartbeat
                .set(i64::try_from(now).unwrap_or(i64::MAX));
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pipeline.finish(&metrics);
    Ok(())
}

fn file_worker(
    path: &Path,
    speed: Speed,
    config: &Config,
    shared: &Shared,
) -> anyhow::Result<WorkerPlan> {
    let source = PcapFileSource::open(path)?;
    Ok(WorkerPlan {
        thread_name: "nw-0-pcap".to_owned(),
        source: Box::new(source),
        metrics: shared.metrics.worker(FILE_INTERFACE, "pcap-0"),
        options: shared.pipeline_options(config, 0, 1),
        pace: match speed {
            Speed::Times(x) => Pace::new(x),
            Speed::Max => None,
        },
    })
}

/// How a worker's socket captures, from `[capture]`; `fanout_group` when the interface
/// has several workers.
fn capture_options(c: &CaptureConfig, fanout_group: Option<u16>) -> AfPacketOptions {
    let mode = match c.fanout {
        FanoutMode::Hash => ring::FanoutMode::Hash,
        FanoutMode::Cpu => ring::FanoutMode::Cpu,
        FanoutMode::Qm => ring::FanoutMode::QueueMapping,
    };
    AfPacketOptions {
        promiscuous: c.promiscuous,
        snap_length_bytes: u32::try_from(c.snap_length_bytes).unwrap_or(u32::MAX),
        ring: RingShape {
            block_bytes: c.ring_block_bytes,
            block_count: c.ring_blocks,
            block_timeout: c.ring_block_timeout.0,
        },
        read_timeout: c.read_timeout.0,
        fanout: fanout_group.map(|group| (group, mode)),
        filter: c.filter.as_ref().map(|f| {
            f.instructions()
                .iter()
                .map(|i| ring::BpfInstruction {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect()
        }),
    }
}

fn live_workers(config: &Config, shared: &Shared) -> anyhow::Result<Vec<WorkerPlan>> {
    let interfaces = if config.capture.interfaces.is_empty() {
        default_interfaces()
    } else {
        config.capture.interfaces.clone()
    };
    if interfaces.is_empty() {
        bail!("no interface to capture on: none is up except loopback; name one with --interface");
    }
    let per_interface = config.capture.workers_per_interface;
    let total = interfaces.len() * per_interface;
    let mut plans = Vec::with_capacity(total);
    for (i, interface) in interfaces.iter().enumerate() {
        // A fanout group id is shared host-wide per interface; mixing in the pid keeps two
        // netwarden processes on one interface from splitting each other's traffic.
        let group =
            u16::try_from((std::process::id() as usize).wrapping_add(i) & 0xffff).unwrap_or(0);
        for k in 0..per_interface {
            let options = capture_options(&config.capture, (per_interface > 1).then_some(group));
            let source = AfPacketSource::open(interface, &options)?;
            let index = plans.len();
            let worker = format!("{interface}-{k}");
            let mut thread_name = format!("nw-{k}-{interface}");
            thread_name.truncate(15);
            plans.push(WorkerPlan {
                thread_name,
                source: Box::new(source),
                metrics: shared.metrics.worker(interface, &worker),
                options: shared.pipeline_options(config, index, total),
                pace: None,
            });
        }
        tracing::info!(interface = %interface, workers = per_interface, "Capturing.");
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_thread_is_reported_with_its_name_and_message() {
        let (failed, mut reports) = mpsc::unbounded_channel();
        supervised("nw-evaluator", &failed, || panic!("merge went wrong"));
        let report = reports.try_recv().expect("the panic is reported");
        let text = format!("{report:#}");
        assert!(text.contains("nw-evaluator"), "{text}");
        assert!(text.contains("merge went wrong"), "{text}");
    }

    #[test]
    fn a_failing_thread_is_reported_and_a_finished_one_is_not() {
        let (failed, mut reports) = mpsc::unbounded_channel();
        supervised("nw-0-eth0", &failed, || Ok(()));
        assert!(reports.try_recv().is_err(), "a clean end is no failure");
        supervised("nw-0-eth0", &failed, || Err(anyhow::anyhow!("ring gone")));
        let report = reports.try_recv().expect("the error is reported");
        assert!(format!("{report:#}").contains("ring gone"));
    }
}
