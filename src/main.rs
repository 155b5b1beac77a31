//! The `netwarden` binary: parse the command line, run the command, map the outcome to an
//! exit code (0 success, 1 runtime failure, 64 usage error, 78 configuration error).

use std::process::ExitCode;

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser as _;
use netwarden::cli::{Cli, Command};
use netwarden::config::ConfigErrors;

/// `EX_USAGE` from `sysexits.h`.
const EXIT_USAGE: u8 = 64;
/// `EX_CONFIG` from `sysexits.h`.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            drop(e.print());
            return ExitCode::from(code);
        }
    };
    let result = match &cli.command {
        Command::Run(args) => netwarden::app::daemon::run(args),
        Command::Replay(args) => netwarden::app::replay::run(args),
        Command::CheckConfig(arg) => check_config(arg),
        Command::Rules(netwarden::cli::RulesCommand::Test(args)) => {
            netwarden::app::rules_test::run(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(errors) = e.downcast_ref::<ConfigErrors>() {
                eprintln!("netwarden: invalid configuration:\n{errors}");
                return ExitCode::from(EXIT_CONFIG);
            }
            eprintln!("netwarden: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(args: &netwarden::cli::CheckConfigArgs) -> anyhow::Result<()> {
    let loaded = netwarden::config::load(args.config.config.as_deref())?;
    // The user `run` switches to must exist.
    netwarden::app::check_user(&loaded.config, loaded.path.as_deref())?;
    // Building the rules reads the blocklist files, whose lines are checked too.
    netwarden::detect::RuleSet::build(&loaded.config)?;
    // The web configuration, with the certificate and key it names, as start-up loads it.
    netwarden::admin::check_web_config(&loaded.config)?;
    // Alert delivery's TLS files and secret files, likewise.
    netwarden::alert::sinks::RouterSettings::from_config(&loaded.config.alerting)?;
    let shown = loaded.path.as_deref().map_or_else(
        || netwarden::config::BUILT_IN_PATH.to_owned(),
        |p| p.display().to_string(),
    );
    eprintln!("{shown}: configuration is valid");
    if args.print_matrix {
        let matrix = loaded.config.protection.severity_matrix.table();
        let mut out = std::io::stdout().lock();
        out.write_all(matrix.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the severity matrix")?;
    }
    Ok(())
}
