//! `netwarden-pcapgen`: writes a deterministic synthetic pcap and prints its ground truth.
//!
//! A thin edge over [`netwarden_synth::pcapgen::generate`]: run it on the command line,
//! print the JSON object it returns (scenario name, file, seed and the scenario's ground
//! truth) on stdout and a progress line on stderr. Exit codes: 0 success, 1 I/O failure,
//! 64 usage error (including scenario parameters that cannot produce a trace).
//!
//! ```text
//! netwarden-pcapgen mix --out /tmp/mix.pcap --packets 100000 --flows 4000 --seed 7
//! netwarden-pcapgen syn-flood --out /tmp/flood.pcap --packets 20000 --warmup-secs 5
//! ```

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use netwarden_synth::pcapgen::{self, PcapgenError};

/// `EX_USAGE` from sysexits.h.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let began = Instant::now();
    let generated = match pcapgen::generate(std::env::args_os()) {
        Ok(generated) => generated,
        Err(PcapgenError::Usage(e)) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            drop(e.print());
            return ExitCode::from(code);
        }
        Err(e) => {
            let code = if matches!(e, PcapgenError::Scenario(_)) {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            };
            eprintln!("netwarden-pcapgen: {:#}", anyhow::Error::from(e));
            return code;
        }
    };
    if let Err(e) = print_truth(&generated.truth) {
        eprintln!("netwarden-pcapgen: {e:#}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "netwarden-pcapgen: wrote {} in {:.2?}.",
        generated.path.display(),
        began.elapsed()
    );
    ExitCode::SUCCESS
}

/// Prints the ground truth as one line of JSON.
fn print_truth(truth: &serde_json::Value) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{truth}").context("writing the ground truth to stdout")
}
