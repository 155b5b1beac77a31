//! The metrics endpoint survives the network it listens on: half-sent requests and idle
//! connections time out, a full endpoint makes room for a client that asks at once, and
//! thousands of idle connections under systemd's default file limit neither silence
//! `/metrics` nor keep an alert from reaching a real Alertmanager.
//!
//! Each test runs the real daemon (`netwarden run --pcap`, which keeps serving after the
//! file ends); every process started is stopped by a guard's `Drop`, ports are picked free.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Alertmanager, Proc, free_port, http_get, metric_sum, pcaps_dir, short_syn_flood,
    syn_flood_rules, wait_for,
};

/// systemd's default soft limit on open files (`LimitNOFILE=1024:524288`).
const SYSTEMD_DEFAULT_NOFILE: &str = "1024";

/// Starts `netwarden run --speed max --pcap <pcap>` with `config` under a file limit of
/// `nofile` (soft and hard, through `prlimit`), and waits until `/readyz` answers.
fn daemon(config: &Path, pcap: &Path, port: u16, nofile: &str) -> Proc {
    let child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_netwarden"))
        .env("STATE_DIRECTORY", common::fresh_state_dir())
        .args(["run", "--speed", "max", "--config"])
        .arg(config)
        .arg("--pcap")
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Proc(child);
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "daemon never became ready");
    daemon
}

/// A config serving metrics on `port` with `extra` TOML after the `[metrics]` keys.
fn config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("netwarden.toml");
    std::fs::write(
        &path,
        format!(
            "[[networks]]\nname = \"victims\"\ncidrs = [\"10.201.0.0/16\"]\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes `s`; returns what it sent and how long that took.
fn read_until_closed(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn rejections(port: u16, reason: &str) -> u64 {
    let (_, body) = http_get(port, "/metrics").unwrap();
    metric_sum(
        &body,
        "netwarden_http_rejections_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

#[test]
fn half_sent_requests_and_idle_connections_are_closed_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(
        dir.path(),
        port,
        "header_read_timeout = \"1s\"\nidle_timeout = \"3s\"",
    );
    let pcap = pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap");
    let _daemon = daemon(&config, &pcap, port, SYSTEMD_DEFAULT_NOFILE);

    // A request whose head never ends is dropped unanswered after the header timeout.
    let mut slow = connect(port);
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(&mut slow);
    assert_eq!(answer, "", "a half-sent request was answered");
    assert!(took < Duration::from_secs(3), "held for {took:?}");

    // A silent new connection gets the same header timeout.
    let (_, took) = read_until_closed(&mut connect(port));
    assert!(
        took < Duration::from_secs(3),
        "silent connection held {took:?}"
    );

    // A kept-alive connection is closed once idle for idle_timeout, not before.
    let mut kept = connect(port);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0_u8; 12];
    kept.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let (_, took) = read_until_closed(&mut kept);
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(6)).contains(&took),
        "idle connection closed after {took:?}"
    );
    assert!(rejections(port, "header_timeout") >= 2);
    assert!(rejections(port, "idle_timeout") >= 1);
}

#[test]
fn a_full_endpoint_closes_its_oldest_idle_connection_for_a_new_client() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), port, "max_connections = 4");
    let pcap = pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap");
    let _daemon = daemon(&config, &pcap, port, SYSTEMD_DEFAULT_NOFILE);
    let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(port)).collect();
    // Let the server accept all four before the fifth arrives.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, body) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The oldest idle connection made room; the newest three stay open.
    let (_, took) = read_until_closed(&mut idle[0]);
    assert!(took < Duration::from_secs(2), "oldest kept for {took:?}");
    assert!(
        metric_sum(
            &body,
            "netwarden_http_rejections_total",
            &["reason=\"evicted\""]
        ) >= 1,
        "{body}"
    );
    idle[3]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut idle[3]);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Raises this process's soft file limit so that it can hold `n` sockets.
fn allow_open_files(n: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < n {
        assert!(hard >= n, "the hard file limit {hard} is below {n}");
        setrlimit(Resource::RLIMIT_NOFILE, n, hard).unwrap();
    }
}

#[test]
fn idle_connections_under_the_default_file_limit_starve_neither_metrics_nor_alerts() {
    const IDLE: usize = 2_000;
    allow_open_files(4_096);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(
        dir.path().join("rules.d/flood.toml"),
        syn_flood_rules("60s"),
    )
    .unwrap();
    let port = free_port();
    let am_port = free_port();
    // A cap far above what 1,024 descriptors allow: the daemon must lower it itself.
    let config = config(
        dir.path(),
        port,
        &format!(
            "max_connections = 65536\n[alerting]\n\
             alertmanager_urls = [\"http://127.0.0.1:{am_port}\"]\n\
             initial_backoff = \"50ms\"\nmax_backoff = \"500ms\"\nmax_attempts = 1000"
        ),
    );
    let pcap = dir.path().join("flood.pcap");
    short_syn_flood(&pcap, 3, "7");
    let daemon = daemon(&config, &pcap, port, SYSTEMD_DEFAULT_NOFILE);
    // The flood alert fires while Alertmanager is down: delivery keeps retrying.
    let retrying = wait_for(20, || {
        let (_, body) = http_get(port, "/metrics")?;
        (metric_sum(&body, "netwarden_alert_send_errors_total", &[]) >= 3).then_some(())
    });
    assert!(retrying.is_some(), "the flood alert was never attempted");

    // A server that stops accepting leaves connects hanging once its backlog is full:
    // bound the whole phase.
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let connecting = Instant::now();
    let idle: Vec<TcpStream> = (0..IDLE)
        .take_while(|_| connecting.elapsed() < Duration::from_secs(20))
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok())
        .collect();
    assert!(
        idle.len() > IDLE / 2,
        "only {} connections opened",
        idle.len()
    );

    let started = Instant::now();
    let answered = wait_for(15, || http_get(port, "/metrics").filter(|(s, _)| *s == 200));
    assert!(
        answered.is_some(),
        "/metrics did not answer within 15 s of {} idle connections",
        idle.len()
    );
    let took = started.elapsed();

    let am = Alertmanager::start(am_port);
    let delivered = am.wait_alert("NetwardenSynFlood", 30);
    assert!(
        delivered.is_some(),
        "the alert never reached Alertmanager with {} idle connections open",
        idle.len()
    );
    let (_, body) = answered.unwrap();
    assert_eq!(
        metric_sum(&body, "netwarden_alerts_dropped_total", &[]),
        0,
        "{body}"
    );
    let open = metric_sum(&body, "netwarden_http_connections_open", &[]);
    assert!(
        open < 1_024,
        "{open} connections held under a limit of 1,024"
    );
    eprintln!(
        "/metrics answered in {took:?} with {} idle connections; {open} held open",
        idle.len()
    );
    drop(idle);
    drop(daemon);
}
