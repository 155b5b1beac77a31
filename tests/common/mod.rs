//! Helpers shared by the integration tests: where the public captures are, running the
//! real binary, and parsing the capture manifest.

// Test helpers: a failed unwrap or panic here is a failed test, with its message.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The public captures: `$NETWARDEN_PCAPS`, else `../shared/pcaps` beside the checkout.
pub fn pcaps_dir() -> PathBuf {
    let dir = std::env::var_os("NETWARDEN_PCAPS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps"),
        PathBuf::from,
    );
    assert!(
        dir.join("MANIFEST.md").exists(),
        "public captures not found at {} (set NETWARDEN_PCAPS)",
        dir.display()
    );
    dir
}

/// The netwarden binary under test.
pub fn netwarden() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netwarden"))
}

/// Runs `netwarden replay --json` on `files` with extra `args`; returns the parsed summary
/// and the raw output. Panics with the stderr on a non-zero exit.
pub fn replay_json(files: &[&Path], args: &[&str]) -> serde_json::Value {
    let out = netwarden()
        .arg("replay")
        .arg("--json")
        .args(files)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay of {files:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_stdout_json(&out)
}

/// Parses the single JSON object on stdout.
pub fn parse_stdout_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

/// Packet counts per capture (path relative to the pcaps dir) from MANIFEST.md's tables:
/// rows whose first cell is a backquoted path and whose 5th cell is the packet count.
pub fn manifest_packet_counts() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(pcaps_dir().join("MANIFEST.md")).unwrap();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `file` | source | format | link type | packets | ...
        if cells.len() > 6 && cells[1].starts_with('`') {
            let file = cells[1].trim_matches('`');
            if let Ok(n) = cells[5].replace(',', "").parse::<u64>() {
                counts.insert(file.to_owned(), n);
            }
        }
    }
    counts
}

/// Every capture file in `sub` (recursively), sorted.
pub fn captures_in(sub: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![pcaps_dir().join(sub)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A temporary file holding `text`.
pub fn temp_file(text: &str, suffix: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://127.0.0.1:port{path}`: (status, body), or `None` if nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    // Chunked bodies carry size lines; metric lines never look like bare hex numbers.
    let body = body
        .lines()
        .filter(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join("\n");
    Some((status, body))
}

/// Sum of every sample of integer-valued `metric` (a counter or count gauge) whose labels
/// contain all of `labels` (`key="value"`).
pub fn metric_sum(text: &str, metric: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `f` every 100 ms until it returns `Some` or `secs` pass.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends `signal` (e.g. "TERM") to `child` and waits for it, returning its exit status.
pub fn stop(child: &mut std::process::Child, signal: &str) -> std::process::ExitStatus {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("netwarden did not stop within 10 s of SIG{signal}");
}
