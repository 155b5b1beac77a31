//! `netwarden run --pcap`: a capture file feeds the daemon, which serves metrics exactly
//! as for a live interface, and stops cleanly on SIGTERM.

mod common;

use std::process::Stdio;

use common::{free_port, http_get, metric_sum, netwarden, pcaps_dir, stop, wait_for};

#[test]
fn run_pcap_serves_metrics_and_stops_on_sigterm() {
    let port = free_port();
    let pcap = pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap");
    let mut child = netwarden()
        .args([
            "run",
            "--speed",
            "max",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--protect",
            "10.0.0.0/24",
            "--pcap",
        ])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "never became ready");
    assert_eq!(http_get(port, "/healthz").map(|r| r.0), Some(200));
    // All 4,993 frames of the capture are counted once the file is done.
    let metrics = wait_for(30, || {
        let (_, body) = http_get(port, "/metrics")?;
        (metric_sum(&body, "netwarden_packets_total", &[]) >= 4993).then_some(body)
    })
    .expect("packets never all counted");
    assert_eq!(metric_sum(&metrics, "netwarden_packets_total", &[]), 4993);
    assert_eq!(
        metric_sum(
            &metrics,
            "netwarden_capture_received_packets_total",
            &["interface=\"pcap\""]
        ),
        4993
    );
    // The scanner 10.0.0.140 and its targets are all inside 10.0.0.0/24.
    assert_eq!(
        metric_sum(
            &metrics,
            "netwarden_network_packets_total",
            &["network=\"10.0.0.0/24\"", "direction=\"internal\""]
        ),
        4993
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "netwarden_packets_total",
            &["direction=\"internal\"", "protocol=\"tcp\""]
        ),
        4993
    );
    assert_eq!(
        metric_sum(&metrics, "netwarden_tcp_flags_total", &["flag=\"syn\""]),
        4993
    );
    assert!(metric_sum(&metrics, "netwarden_flows_created_total", &[]) >= 1000);
    assert!(metrics.contains("netwarden_build_info{"));
    assert!(
        metrics.contains(
            "netwarden_top_talker_bytes_per_second{address=\"10.0.0.140\",role=\"source\"}"
        ),
        "{metrics}"
    );
    let status = stop(&mut child, "TERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn run_refuses_a_port_that_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let pcap = pcaps_dir().join("benign/zeek_http_get.pcap");
    let out = netwarden()
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("binding the metrics endpoint"));
}

#[test]
fn sigterm_as_soon_as_ready_is_a_clean_stop() {
    // Readiness is announced only once SIGTERM is caught: a service manager that stops
    // the daemon right after it reports ready gets a drained, successful exit, not a
    // process killed by the signal's default action.
    for _ in 0..5 {
        let port = free_port();
        let pcap = pcaps_dir().join("attacks/cce15_icmp_flood.pcap");
        let mut child = netwarden()
            .args([
                "run",
                "--speed",
                "1",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--pcap")
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while http_get(port, "/readyz").is_none_or(|(s, _)| s != 200) {
            assert!(std::time::Instant::now() < deadline, "never became ready");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let status = stop(&mut child, "TERM");
        assert!(status.success(), "exit status {status:?}");
    }
}
