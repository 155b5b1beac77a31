//! Live capture through the TPACKET_V3 ring, on veths in network namespaces the tests
//! create: exact frame and wire-byte counts past the snap length, VLAN tags the kernel
//! stripped, kernel drops when a worker stalls, and interfaces that go down, disappear or
//! do not exist yet.
//!
//! Needs root (CI runs as root). Set `NETWARDEN_SKIP_LIVE=1` to skip it knowingly elsewhere.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};

use common::netns::{Topology, live_tests_enabled, sh};
use common::{free_port, http_get, metric_sum, netwarden, stop, temp_file, wait_for};

/// A running `netwarden run` capturing on one interface.
struct Daemon {
    child: Child,
    port: u16,
    interface: String,
    _config: tempfile::NamedTempFile,
}

impl Daemon {
    /// Starts netwarden on `interface` with `[capture]` settings `capture` (TOML lines).
    fn start(interface: &str, capture: &str) -> Daemon {
        let config = temp_file(
            &format!("[capture]\nread_timeout = \"50ms\"\n{capture}\n"),
            ".toml",
        );
        let port = free_port();
        let child = netwarden()
            .args(["run", "--config"])
            .arg(config.path())
            .args(["--interface", interface, "--protect", "10.77.0.0/15"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let ready = wait_for(20, || http_get(port, "/readyz").filter(|(s, _)| *s == 200));
        assert!(ready.is_some(), "netwarden never became ready");
        Daemon {
            child,
            port,
            interface: interface.to_owned(),
            _config: config,
        }
    }

    fn metrics(&self) -> String {
        http_get(self.port, "/metrics").unwrap().1
    }

    /// The sum of `metric` on this interface with `labels`.
    fn sum(&self, body: &str, metric: &str, labels: &[&str]) -> u64 {
        let interface = format!("interface=\"{}\"", self.interface);
        let mut all = vec![interface.as_str()];
        all.extend_from_slice(labels);
        metric_sum(body, metric, &all)
    }

    /// Waits until this interface's UDP packet counter reaches `want`; returns the metrics.
    fn wait_udp_packets(&self, want: u64) -> String {
        let body = wait_for(20, || {
            let body = self.metrics();
            (self.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]) >= want)
                .then_some(body)
        });
        body.unwrap_or_else(|| self.metrics())
    }

    /// Waits until `netwarden_capture_up` of this interface is `up`.
    fn wait_capture_up(&self, up: bool) -> bool {
        wait_for(20, || {
            let body = self.metrics();
            let line = format!("netwarden_capture_up{{interface=\"{}\"", self.interface);
            let value = body
                .lines()
                .find(|l| l.starts_with(&line))?
                .rsplit(' ')
                .next()?;
            (value == if up { "1" } else { "0" }).then_some(())
        })
        .is_some()
    }

    fn stop(mut self) {
        let status = stop(&mut self.child, "INT");
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed assertion leaves no daemon behind; after `stop` this is a no-op.
        drop(self.child.kill());
        drop(self.child.wait());
    }
}

/// Ethernet + IPv4 + UDP headers in front of a datagram's payload.
const UDP_FRAME_OVERHEAD: u64 = 14 + 20 + 8;

#[test]
fn ring_counts_every_frame_and_its_wire_length_beyond_the_snap_length() {
    if !live_tests_enabled("the ring count test") {
        return;
    }
    let topo = Topology::new();
    let daemon = Daemon::start(&topo.capture_interface(), "snap_length_bytes = 128");
    topo.send_udp("10.77.0.2", 300, 1400);
    topo.send_udp("10.77.0.2", 200, 10);
    let body = daemon.wait_udp_packets(500);
    let udp = ["protocol=\"udp\""];
    assert_eq!(
        daemon.sum(&body, "netwarden_packets_total", &udp),
        500,
        "{body}"
    );
    // Frames of 1442 bytes were cut at 128, but their length on the wire is counted.
    let wire = 300 * (1400 + UDP_FRAME_OVERHEAD) + 200 * (10 + UDP_FRAME_OVERHEAD);
    assert_eq!(
        daemon.sum(&body, "netwarden_bytes_total", &udp),
        wire,
        "{body}"
    );
    assert_eq!(
        daemon.sum(&body, "netwarden_capture_dropped_packets_total", &[]),
        0,
        "{body}"
    );
    assert_eq!(
        metric_sum(&body, "netwarden_decode_errors_total", &[]),
        0,
        "{body}"
    );
    daemon.stop();
}

#[test]
fn a_small_ring_wraps_around_many_times_without_losing_a_frame() {
    if !live_tests_enabled("the ring wrap-around test") {
        return;
    }
    let topo = Topology::new();
    // Eight 8 KiB blocks hold about 300 small frames: 3000 frames go round the ring about
    // ten times, and every block must be handed back for the next round to land.
    let daemon = Daemon::start(
        &topo.capture_interface(),
        "snap_length_bytes = 128\nring_block_bytes = 8192\nring_blocks = 8",
    );
    let script = "import socket, time\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        for i in range(3000):\n\
        \x20   s.sendto(b'x' * 64, ('10.77.0.2', 9))\n\
        \x20   if i % 10 == 9: time.sleep(0.001)\n";
    let status = Command::new("ip")
        .args(["netns", "exec", &topo.x(), "python3", "-c", script])
        .status()
        .unwrap();
    assert!(status.success());
    let body = daemon.wait_udp_packets(3000);
    assert_eq!(
        daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]),
        3000,
        "{body}"
    );
    // The ring is resident but not charged to the service's memory cgroup: exported, so
    // the memory alert can leave it out.
    // (Workers report it with their kernel statistics, once a second.)
    let ring = wait_for(20, || {
        let body = daemon.metrics();
        (daemon.sum(&body, "netwarden_capture_ring_bytes", &[]) == 8 * 8192).then_some(())
    });
    assert!(
        ring.is_some(),
        "the ring's 64 KiB never showed in netwarden_capture_ring_bytes: {}",
        daemon.metrics()
    );
    assert_eq!(
        daemon.sum(&body, "netwarden_capture_dropped_packets_total", &[]),
        0,
        "{body}"
    );
    daemon.stop();
}

#[test]
fn vlan_tags_the_kernel_strips_are_restored_and_counted() {
    if !live_tests_enabled("the VLAN test") {
        return;
    }
    let topo = Topology::new();
    let daemon = Daemon::start(&topo.capture_interface(), "");
    topo.send_vlan_udp(100, 100, 100);
    let body = daemon.wait_udp_packets(100);
    let udp = ["protocol=\"udp\""];
    assert_eq!(
        daemon.sum(&body, "netwarden_packets_total", &udp),
        100,
        "{body}"
    );
    // The 802.1Q tag is part of each frame's length on the wire.
    let wire = 100 * (100 + UDP_FRAME_OVERHEAD + 4);
    assert_eq!(
        daemon.sum(&body, "netwarden_bytes_total", &udp),
        wire,
        "{body}"
    );
    // Decoded through the tag: the addresses are the VLAN's, inside the protected range.
    let internal = ["direction=\"internal\"", "protocol=\"udp\""];
    assert_eq!(
        daemon.sum(&body, "netwarden_packets_total", &internal),
        100,
        "{body}"
    );
    assert_eq!(
        metric_sum(&body, "netwarden_decode_errors_total", &[]),
        0,
        "{body}"
    );
    daemon.stop();
}

#[test]
fn a_stalled_worker_loses_frames_in_the_kernel_and_counts_them_without_hanging() {
    if !live_tests_enabled("the ring overflow test") {
        return;
    }
    let topo = Topology::new();
    // A ring of two 8 KiB blocks holds a few dozen 300-byte frames.
    let daemon = Daemon::start(
        &topo.capture_interface(),
        "snap_length_bytes = 128\nring_block_bytes = 8192\nring_blocks = 2",
    );
    let pid = daemon.child.id().to_string();
    sh(&format!("kill -STOP {pid}"));
    topo.send_udp("10.77.0.2", 2000, 250);
    sh(&format!("kill -CONT {pid}"));
    let body = wait_for(20, || {
        let body = daemon.metrics();
        let dropped = daemon.sum(&body, "netwarden_capture_dropped_packets_total", &[]);
        let seen = daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]);
        (dropped > 0 && seen + dropped >= 2000).then_some(body)
    });
    let body = body.unwrap_or_else(|| daemon.metrics());
    let dropped = daemon.sum(&body, "netwarden_capture_dropped_packets_total", &[]);
    let seen = daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]);
    assert!(dropped > 0, "no kernel drops counted: {body}");
    assert!(seen > 0 && seen < 2000, "{seen} frames seen: {body}");
    assert!(
        seen + dropped >= 2000,
        "{seen} seen + {dropped} dropped < 2000 sent: {body}"
    );
    assert!(
        daemon.sum(&body, "netwarden_capture_ring_freezes_total", &[]) > 0,
        "{body}"
    );
    // Still capturing after the stall.
    topo.send_udp("10.77.0.2", 10, 10);
    let after = daemon.wait_udp_packets(seen + 10);
    assert!(daemon.sum(&after, "netwarden_packets_total", &["protocol=\"udp\""]) >= seen + 10);
    daemon.stop();
}

/// Sends UDP from x to y until the daemon counts some, for up to 20 s: a bridge port
/// forwards again only once it is back in the forwarding state. Panics, saying `when`,
/// if nothing is counted.
fn assert_counts_udp_again(topo: &Topology, daemon: &Daemon, when: &str) {
    let counted = wait_for(20, || {
        topo.send_udp("10.77.0.2", 1, 10);
        let body = daemon.metrics();
        (daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]) > 0).then_some(())
    });
    assert!(
        counted.is_some(),
        "nothing counted {when}: {}",
        daemon.metrics()
    );
}

#[test]
fn capture_resumes_when_a_link_comes_back_up() {
    if !live_tests_enabled("the link flap test") {
        return;
    }
    let topo = Topology::new();
    let iface = topo.capture_interface();
    let daemon = Daemon::start(&iface, "");
    assert!(daemon.wait_capture_up(true), "{}", daemon.metrics());
    sh(&format!("ip link set {iface} down"));
    assert!(
        daemon.wait_capture_up(false),
        "down not seen: {}",
        daemon.metrics()
    );
    sh(&format!("ip link set {iface} up"));
    assert!(
        daemon.wait_capture_up(true),
        "up not seen: {}",
        daemon.metrics()
    );
    assert_counts_udp_again(&topo, &daemon, "after the link came back");
    daemon.stop();
}

#[test]
fn a_deleted_and_recreated_interface_is_captured_again() {
    if !live_tests_enabled("the interface recreation test") {
        return;
    }
    let topo = Topology::new();
    let i = topo.id.clone();
    let daemon = Daemon::start(&topo.capture_interface(), "");
    assert!(daemon.wait_capture_up(true));
    sh(&format!("ip link del nxr{i}"));
    assert!(
        daemon.wait_capture_up(false),
        "deletion not seen: {}",
        daemon.metrics()
    );
    // Recreate it with a new index, as a VLAN or veth recreated by the network stack is.
    sh(&format!(
        "set -e
        ip link add nxr{i} type veth peer name nx{i}
        ip link set nx{i} netns nwx{i}
        ip -n nwx{i} addr add 10.77.0.1/24 dev nx{i}; ip -n nwx{i} link set nx{i} up
        ip link set nxr{i} master nwbr{i}; ip link set nxr{i} up
        my=$(ip -n nwy{i} -o link show ny{i} | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p')
        ip -n nwx{i} neigh add 10.77.0.2 lladdr $my dev nx{i} nud permanent"
    ));
    assert!(
        daemon.wait_capture_up(true),
        "recreation not seen: {}",
        daemon.metrics()
    );
    assert_counts_udp_again(&topo, &daemon, "on the new interface");
    daemon.stop();
}

#[test]
fn an_interface_that_does_not_exist_yet_is_waited_for() {
    if !live_tests_enabled("the late interface test") {
        return;
    }
    let topo = Topology::new();
    let i = topo.id.clone();
    let late = format!("nwlate{i}");
    let daemon = Daemon::start(&late, "");
    assert!(daemon.wait_capture_up(false), "{}", daemon.metrics());
    // The late interface: a second port of x's network, on the same bridge.
    sh(&format!(
        "set -e
        ip link add {late} type veth peer name nz{i}
        ip link set nz{i} netns nwx{i}; ip -n nwx{i} link set nz{i} up
        ip link set {late} master nwbr{i}; ip link set {late} up"
    ));
    assert!(daemon.wait_capture_up(true), "{}", daemon.metrics());
    // Flooded by the bridge until it learns where y is: broadcast to be sure.
    let status = Command::new("ip")
        .args(["netns", "exec", &topo.x(), "python3", "-c"])
        .arg(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n\
             s.bind(('10.77.0.1', 0))\n\
             [s.sendto(b'x', ('10.77.0.255', 9)) for _ in range(20)]\n",
        )
        .status()
        .unwrap();
    assert!(status.success());
    let body = daemon.wait_udp_packets(20);
    assert!(
        daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]) >= 20,
        "{body}"
    );
    sh(&format!("ip link del {late}"));
    daemon.stop();
}

/// `tcpdump -ddd -y EN10MB 'not udp'`, as `capture.filter` takes it.
const NOT_UDP_FILTER: &str = "12\n40 0 0 12\n21 0 2 2048\n48 0 0 23\n21 6 7 17\n21 0 6 34525\n\
    48 0 0 20\n21 3 0 17\n21 0 3 44\n48 0 0 54\n21 0 1 17\n6 0 0 0\n6 0 0 262144\n";

#[test]
fn a_capture_filter_drops_what_it_names_and_keeps_the_rest() {
    if !live_tests_enabled("the capture filter test") {
        return;
    }
    let topo = Topology::new();
    let daemon = Daemon::start(
        &topo.capture_interface(),
        &format!("snap_length_bytes = 128\nfilter = \"\"\"\n{NOT_UDP_FILTER}\"\"\""),
    );
    topo.send_udp("10.77.0.2", 300, 1000);
    // 50 echo requests and their replies: ICMP, which the filter keeps (as it keeps the
    // few port-unreachable errors `y` sends back for the datagrams).
    topo.send_ping("10.77.0.2", 50, 1000);
    let icmp = ["protocol=\"icmp\""];
    let body = wait_for(20, || {
        let body = daemon.metrics();
        (daemon.sum(&body, "netwarden_packets_total", &icmp) >= 100).then_some(body)
    })
    .unwrap_or_else(|| daemon.metrics());
    let packets = daemon.sum(&body, "netwarden_packets_total", &icmp);
    assert!(packets >= 100, "{body}");
    assert_eq!(
        daemon.sum(&body, "netwarden_packets_total", &["protocol=\"udp\""]),
        0,
        "the filter named UDP: {body}"
    );
    // The filter's `ret #262144` is capped at the snap length, and each frame's length on
    // the wire is still counted: every one of these is longer than 128 bytes.
    assert!(
        daemon.sum(&body, "netwarden_bytes_total", &icmp) >= packets * 129,
        "{body}"
    );
    assert_eq!(
        metric_sum(&body, "netwarden_decode_errors_total", &[]),
        0,
        "{body}"
    );
    daemon.stop();
}
