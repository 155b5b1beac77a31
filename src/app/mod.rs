//! Application wiring: turns CLI arguments and config into running pipelines.
//!
//! Owns the steps every command shares (load and override the config, start logging,
//! build metrics and pipeline options) and the two drivers: [`daemon`] (`netwarden run`:
//! worker threads + a tokio runtime for HTTP and signals) and [`replay`] (`netwarden
//! replay`: capture files through one pipeline, then a summary). `anyhow` is allowed here,
//! at the binary edge; library modules return typed errors. The daemon's operating-system
//! edges live beside it: [`systemd`] (readiness, watchdog), `privileges` (dropping root)
//! and `reload` (SIGHUP and watched files).

pub mod daemon;
mod logging;
mod privileges;
mod reload;
pub mod replay;
pub mod rules_test;
pub mod systemd;

use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::{ConfigArg, Overrides, RunArgs};
use crate::config::{self, Config, ConfigErrors, LogFormat, NetworkConfig};
use crate::flow::{FlowTableConfig, FlowTimeouts};
use crate::networks::NetworkSet;
use crate::pipeline::PipelineOptions;
use crate::protection::Protection;
use crate::telemetry::Metrics;

/// Loads the config named by `--config` (or the built-in default) and applies the
/// command-line overrides, re-validating the result.
///
/// # Errors
/// [`ConfigErrors`] (exit code 78) naming file, line and key.
pub fn load_config(arg: &ConfigArg, overrides: &Overrides) -> Result<Config, ConfigErrors> {
    let mut config = config::load(arg.config.as_deref())?.config;
    if let Some(listen) = overrides.listen {
        config.metrics.listen = listen;
    }
    if !overrides.protect.is_empty() {
        config.networks = overrides
            .protect
            .iter()
            .map(|cidr| NetworkConfig {
                name: cidr.to_string(),
                cidrs: vec![*cidr],
            })
            .collect();
    }
    if overrides.log_json {
        config.log.format = LogFormat::Json;
    }
    if let Some(file) = &overrides.web_config_file {
        config.metrics.web_config_file.clone_from(file);
    }
    let problems = config.validate();
    if problems.is_empty() {
        Ok(config)
    } else {
        let path = std::path::PathBuf::from("<command line>");
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|(key, message)| config::ConfigError {
                    path: path.clone(),
                    line: None,
                    column: None,
                    key: Some(key),
                    message,
                })
                .collect(),
        ))
    }
}

/// The config `netwarden run` starts and reloads with: [`load_config`], then
/// `--interface`, which replaces `capture.interfaces`. Start-up and every reload call
/// this one function, so a reload sees the command line exactly as start-up did.
///
/// # Errors
/// As [`load_config`].
fn load_run_config(args: &RunArgs) -> Result<Config, ConfigErrors> {
    let mut config = load_config(&args.config, &args.overrides)?;
    if !args.interfaces.is_empty() {
        config.capture.interfaces.clone_from(&args.interfaces);
    }
    Ok(config)
}

/// Starts logging as the config says (`RUST_LOG` wins over `log.level`).
pub fn init_logging(config: &Config) {
    logging::init(&config.log);
}

/// Checks that `[daemon] user`, if set, exists, as `run` does before anything else
/// (`file` is the config file, `None` for the built-in default).
///
/// # Errors
/// [`ConfigErrors`] naming `daemon.user` for an unknown user (exit 78); the lookup's own
/// error when the user database cannot be read.
pub fn check_user(config: &Config, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    privileges::find_user(&config.daemon.user, file).map(drop)
}

/// Sets the process's detection hash key: `seed` if given (`--hash-seed`), else
/// `default`. Called once per process, before any rule set is built.
///
/// # Errors
/// The key was already set to another value (a bug: tables would disagree).
pub fn key_detection_hashes(
    seed: Option<u64>,
    default: impl FnOnce() -> u64,
) -> anyhow::Result<()> {
    let key = seed.unwrap_or_else(default);
    crate::detect::sketch::set_hash_key(key).context("keying the detection hashes")
}

/// Interface label of traffic read from files (`run --pcap` and `replay`).
pub const FILE_INTERFACE: &str = "pcap";

/// Everything the pipelines of one process share.
pub struct Shared {
    /// The metric registry and handles.
    pub metrics: Arc<Metrics>,
    /// Protected networks.
    pub networks: Arc<NetworkSet>,
}

impl Shared {
    /// Builds metrics and the network set from `config`.
    ///
    /// # Errors
    /// Metric registration failed (a bug).
    pub fn new(config: &Config) -> anyhow::Result<Shared> {
        let protection = Protection::new(config);
        let networks = Arc::new(NetworkSet::with_host_groups(
            &config.networks,
            &config.host_groups,
            &protection,
        ));
        let metrics = Arc::new(
            Metrics::new(networks.segments(), config.metrics.top_talkers)
                .context("registering metrics")?,
        );
        Ok(Shared { metrics, networks })
    }

    /// Options for worker `worker_index` of `workers`.
    pub fn pipeline_options(
        &self,
        config: &Config,
        worker_index: usize,
        workers: usize,
    ) -> PipelineOptions {
        PipelineOptions {
            flows: flow_table_config(config, workers),
            networks: Arc::clone(&self.networks),
            top_talkers: Arc::clone(&self.metrics.top_talkers),
            top_talkers_window: config.metrics.top_talkers_window.0,
            worker_index,
        }
    }
}

/// The flow table of one of `workers` workers: the configured cap split evenly.
fn flow_table_config(config: &Config, workers: usize) -> FlowTableConfig {
    let t = &config.flows.timeouts;
    FlowTableConfig {
        max_flows: (config.flows.max_flows / workers.max(1)).max(1),
        timeouts: FlowTimeouts {
            tcp_half_open: t.tcp_half_open.0,
            tcp_established: t.tcp_established.0,
            tcp_closing: t.tcp_closing.0,
            tcp_closed: t.tcp_closed.0,
            udp: t.udp.0,
            icmp: t.icmp.0,
            other: t.other.0,
            active: t.active.0,
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn run_args(command_line: &[&str]) -> RunArgs {
        match Cli::try_parse_from(command_line).unwrap().command {
            Command::Run(args) => args,
            other => unreachable!("parsed as run: {other:?}"),
        }
    }

    #[test]
    fn run_config_takes_interfaces_and_overrides_from_the_command_line() {
        let args = run_args(&[
            "netwarden",
            "run",
            "-i",
            "eth1",
            "-i",
            "eth2",
            "--listen",
            "127.0.0.1:9999",
        ]);
        let config = load_run_config(&args).unwrap();
        assert_eq!(config.capture.interfaces, ["eth1", "eth2"]);
        assert_eq!(config.metrics.listen, "127.0.0.1:9999".parse().unwrap());
    }
}
