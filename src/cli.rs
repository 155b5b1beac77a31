//! Command-line interface: clap types only, no behaviour.
//!
//! `app` turns these raw values into a running daemon or a replay; `main` maps the outcome
//! to an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Cidr;

/// Network-security telemetry monitor for Linux gateways.
#[derive(Debug, Parser)]
#[command(name = "netwarden", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: capture, count, serve /metrics until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Run capture files through the pipeline and print a summary.
    Replay(ReplayArgs),
    /// Validate a configuration file and exit (non-zero with every problem on error).
    CheckConfig(CheckConfigArgs),
    /// Work with detection rules.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `netwarden rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Run rule test cases (captures and the alerts they must and must not raise); exits
    /// non-zero with a readable diff on any mismatch.
    Test(RulesTestArgs),
}

/// `netwarden rules test`.
#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// The test file (TOML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// `netwarden check-config`.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also print the severity matrix in effect (rule severity × protection level →
    /// alert severity) on stdout.
    #[arg(long)]
    pub print_matrix: bool,
}

/// `--config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file (TOML). Without it the built-in default (the shipped
    /// config/netwarden.toml) is used.
    #[arg(long, short = 'c', value_name = "PATH", env = "NETWARDEN_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Overrides every command that runs the pipeline accepts.
#[derive(Debug, Clone, Args)]
pub struct Overrides {
    /// Serve /metrics on this address instead of `metrics.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Protect this CIDR (repeatable); replaces the configured protected networks.
    #[arg(long = "protect", value_name = "CIDR")]
    pub protect: Vec<Cidr>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// TLS and basic authentication for /metrics from this web configuration file
    /// (Prometheus exporter-toolkit format, as `node_exporter`'s `--web.config.file`);
    /// replaces `metrics.web_config_file`.
    #[arg(long, value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Key of every detection hash (key tables, distinct counters). `run` draws one from
    /// the operating system at start, so nobody can aim spoofed keys at a tracked key's
    /// slot; `replay` uses 0, so its output is the same on every run. Give one to make a
    /// `run` reproducible, or a replay behave as a daemon keyed differently would.
    #[arg(long, value_name = "N", env = "NETWARDEN_HASH_SEED")]
    pub hash_seed: Option<u64>,
}

/// `netwarden run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Capture on this interface (repeatable); replaces `capture.interfaces`.
    #[arg(
        long = "interface",
        short = 'i',
        value_name = "NAME",
        conflicts_with = "pcap"
    )]
    pub interfaces: Vec<String>,
    /// Feed the daemon from a capture file instead of interfaces, paced by its timestamps.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Replay speed for --pcap: a multiple of real time (2 = twice as fast), or `max` for
    /// as fast as possible.
    #[arg(long, value_name = "X", default_value = "1", requires = "pcap", value_parser = parse_speed)]
    pub speed: Speed,
}

/// `netwarden replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng), read in order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Spread the frames by flow over this many pipelines, judged by one shared
    /// detector, as that many live capture workers are (the alerts should be those of
    /// one worker).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
}

/// Replay pacing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// A multiple of real time.
    Times(f64),
    /// As fast as possible.
    Max,
}

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Speed::Max);
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed::Times(x)),
        _ => Err(format!("`{s}` is not a positive number or `max`")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn speed_accepts_multiples_and_max() {
        assert_eq!(parse_speed("2.5"), Ok(Speed::Times(2.5)));
        assert_eq!(parse_speed("MAX"), Ok(Speed::Max));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("fast").is_err());
    }

    #[test]
    fn overrides_parse() {
        let cli = Cli::try_parse_from([
            "netwarden",
            "run",
            "-i",
            "eth0",
            "--interface",
            "eth1",
            "--protect",
            "10.0.0.0/8",
            "--listen",
            "127.0.0.1:9999",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            unreachable!("parsed as run")
        };
        assert_eq!(run.interfaces, ["eth0", "eth1"]);
        assert_eq!(run.overrides.protect.len(), 1);
        assert_eq!(
            run.overrides.listen,
            Some("127.0.0.1:9999".parse().unwrap())
        );
    }
}
