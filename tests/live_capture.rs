//! Live capture on real interfaces: two network namespaces joined by a bridge in the root
//! namespace; netwarden captures on one bridge port with two PACKET_FANOUT workers while the
//! namespaces exchange a known number of UDP packets in both directions.
//!
//! Needs root (CI runs as root). Set `NETWARDEN_SKIP_LIVE=1` to skip it knowingly elsewhere.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use common::netns::Topology;
use common::{free_port, http_get, metric_sum, netwarden, stop, temp_file, wait_for};

/// Python run inside a namespace: bind `flows` UDP sockets, wait for the peer to bind its
/// own (so no ICMP port-unreachable is generated), send `count` datagrams on each.
const SENDER: &str = r"
import socket, sys, time
me, peer, base_me, base_peer, flows, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
socks = []
for i in range(flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((me, base_me + i))
    socks.append(s)
time.sleep(1.5)
for k in range(count):
    for i, s in enumerate(socks):
        s.sendto(b'x' * 100, (peer, base_peer + i))
time.sleep(1.5)
";

/// UDP flows each namespace opens; each sends `COUNT` datagrams per flow.
const FLOWS: u64 = 64;
const COUNT: u64 = 10;

/// Starts the sender in each namespace and waits for both.
fn exchange_traffic(topo: &Topology) {
    let send = |ns: String, me: &str, peer: &str, base_me: u64, base_peer: u64| {
        Command::new("ip")
            .args(["netns", "exec", &ns, "python3", "-c", SENDER, me, peer])
            .args([base_me, base_peer, FLOWS, COUNT].map(|n| n.to_string()))
            .spawn()
            .unwrap()
    };
    let mut x = send(topo.x(), "10.77.0.1", "10.77.0.2", 20_000, 30_000);
    let mut y = send(topo.y(), "10.77.0.2", "10.77.0.1", 30_000, 20_000);
    assert!(
        x.wait().unwrap().success() && y.wait().unwrap().success(),
        "senders failed"
    );
}

/// Starts `netwarden run` on `iface` with two fanout workers; returns it and its port.
fn start_netwarden(iface: &str) -> (std::process::Child, u16, tempfile::NamedTempFile) {
    let config = temp_file(
        "[capture]\nworkers_per_interface = 2\nread_timeout = \"50ms\"\n",
        ".toml",
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = netwarden()
        .args(["run", "--config"])
        .arg(config.path())
        .args([
            "--interface",
            iface,
            "--listen",
            &listen,
            "--protect",
            "10.77.0.0/24",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
    assert!(ready.is_some(), "never ready");
    (child, port, config)
}

#[test]
fn live_capture_counts_both_directions_on_fanout_workers() {
    if std::env::var_os("NETWARDEN_SKIP_LIVE").is_some() {
        eprintln!("NETWARDEN_SKIP_LIVE set: skipping the live capture test");
        return;
    }
    let topo = Topology::new();
    let iface = topo.capture_interface();
    let (mut child, port, _config) = start_netwarden(&iface);
    exchange_traffic(&topo);

    let expected = 2 * FLOWS * COUNT;
    let iface_label = format!("interface=\"{iface}\"");
    let udp = [iface_label.as_str(), "protocol=\"udp\""];
    let body = wait_for(20, || {
        let (_, body) = http_get(port, "/metrics")?;
        (metric_sum(&body, "netwarden_packets_total", &udp) >= expected).then_some(body)
    });
    let body = body.unwrap_or_else(|| http_get(port, "/metrics").unwrap().1);
    let dropped = metric_sum(
        &body,
        "netwarden_capture_dropped_packets_total",
        &[&iface_label],
    );
    assert_eq!(dropped, 0, "kernel drops: {body}");
    assert!(body.contains(&format!(
        "netwarden_capture_dropped_packets_total{{{iface_label},reason=\"kernel\"}} 0"
    )));
    assert_eq!(
        metric_sum(&body, "netwarden_packets_total", &udp),
        expected,
        "{body}"
    );
    let internal = ["network=\"10.77.0.0/24\"", "direction=\"internal\""];
    assert_eq!(
        metric_sum(&body, "netwarden_network_packets_total", &internal),
        expected
    );
    // Both directions of every flow reached the same worker: one flow per 5-tuple. A
    // namespace may emit a stray packet of its own (an IGMP report when its interface comes
    // up), which can add at most one flow each; a fanout that split directions would add
    // about FLOWS / 2.
    let stray = metric_sum(&body, "netwarden_packets_total", &[&iface_label]) - expected;
    let created = metric_sum(&body, "netwarden_flows_created_total", &[]);
    assert!(
        (FLOWS..=FLOWS + stray).contains(&created),
        "{created} flows, {stray} stray: {body}"
    );
    for k in 0..2 {
        let worker = format!("worker=\"{iface}-{k}\"");
        let flows = metric_sum(&body, "netwarden_flows_created_total", &[&worker]);
        assert!(flows > 0, "fanout gave worker {k} nothing");
    }
    let status = stop(&mut child, "INT");
    assert!(status.success(), "{status:?}");
    drop(topo);
}
