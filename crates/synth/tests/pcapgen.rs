//! The `netwarden-pcapgen` binary is a thin edge over `netwarden_synth::pcapgen::generate`:
//! it writes the same bytes and prints the same ground truth as the library, and maps
//! failures to the documented exit codes (64 usage, 1 I/O).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args`.
fn pcapgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netwarden-pcapgen"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn binary_writes_and_prints_what_the_library_returns() {
    let dir = tempfile::tempdir().unwrap();
    let from_binary = dir.path().join("binary.pcap");
    let from_library = dir.path().join("library.pcap");
    let options = ["--packets", "300", "--sources", "50", "--seed", "9"];
    let out = pcapgen(
        &[
            &["syn-flood", "--out", from_binary.to_str().unwrap()],
            &options[..],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let command_line = [
        "netwarden-pcapgen",
        "syn-flood",
        "--out",
        from_library.to_str().unwrap(),
    ]
    .into_iter()
    .chain(options);
    let generated = netwarden_synth::pcapgen::generate(command_line).unwrap();
    assert_eq!(generated.path, from_library);
    let mut truth = generated.truth;
    truth["file"] = printed["file"].clone();
    assert_eq!(printed, truth);
    assert_eq!(printed["packets"], 300);
    assert_eq!(read(&from_binary), read(&from_library));
}

#[test]
fn failures_exit_with_their_documented_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("x.pcap");
    let out_file = out_file.to_str().unwrap();
    let code = |args: &[&str]| pcapgen(args).status.code();
    assert_eq!(code(&["no-such-scenario", "--out", out_file]), Some(64));
    assert_eq!(
        code(&["syn-flood", "--pps", "0", "--out", out_file]),
        Some(64)
    );
    assert_eq!(
        code(&["syn-flood", "--out", "/nonexistent/dir/x.pcap"]),
        Some(1)
    );
    assert_eq!(code(&["--version"]), Some(0));
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
