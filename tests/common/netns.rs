//! Test networks: two network namespaces (`x` and `y`) joined by a bridge in the root
//! namespace, each behind a veth whose root end (`xr`, `yr`) is a bridge port netwarden
//! can capture on. Everything is named after a per-topology id and removed on drop.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs a shell command, panicking with its output on failure.
pub fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether live tests may run: root, and not skipped with `NETWARDEN_SKIP_LIVE`.
pub fn live_tests_enabled(test: &str) -> bool {
    if std::env::var_os("NETWARDEN_SKIP_LIVE").is_some() {
        eprintln!("NETWARDEN_SKIP_LIVE set: skipping {test}");
        return false;
    }
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "{test} needs root (network namespaces); set NETWARDEN_SKIP_LIVE=1 to skip it knowingly"
    );
    true
}

/// Namespaces `x` (10.77.0.1) and `y` (10.77.0.2), bridge and veths; removed on drop.
pub struct Topology {
    /// Suffix of every name.
    pub id: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Topology {
    /// Builds the topology (IPv6 off, static neighbours, so only the test's traffic flows).
    pub fn new() -> Topology {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}{n}", std::process::id() % 10_000);
        let t = Topology { id };
        let i = &t.id;
        sh(&format!(
            "set -e
            ip netns add nwx{i}; ip netns add nwy{i}
            ip link add nwbr{i} type bridge
            ip link add nxr{i} type veth peer name nx{i}
            ip link add nyr{i} type veth peer name ny{i}
            for d in nwbr{i} nxr{i} nyr{i}; do sysctl -qw net.ipv6.conf.$d.disable_ipv6=1; done
            ip link set nx{i} netns nwx{i}; ip link set ny{i} netns nwy{i}
            ip link set nxr{i} master nwbr{i}; ip link set nyr{i} master nwbr{i}
            ip link set nwbr{i} up; ip link set nxr{i} up; ip link set nyr{i} up
            ip netns exec nwx{i} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            ip netns exec nwy{i} sysctl -qw net.ipv6.conf.all.disable_ipv6=1
            ip -n nwx{i} addr add 10.77.0.1/24 dev nx{i}; ip -n nwx{i} link set nx{i} up
            ip -n nwy{i} addr add 10.77.0.2/24 dev ny{i}; ip -n nwy{i} link set ny{i} up
            mx=$(ip -n nwx{i} -o link show nx{i} | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p')
            my=$(ip -n nwy{i} -o link show ny{i} | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p')
            ip -n nwx{i} neigh add 10.77.0.2 lladdr $my dev nx{i} nud permanent
            ip -n nwy{i} neigh add 10.77.0.1 lladdr $mx dev ny{i} nud permanent"
        ));
        t
    }

    /// Namespace `x`.
    pub fn x(&self) -> String {
        format!("nwx{}", self.id)
    }

    /// Namespace `y`.
    pub fn y(&self) -> String {
        format!("nwy{}", self.id)
    }

    /// The root end of `x`'s veth: a bridge port carrying both directions.
    pub fn capture_interface(&self) -> String {
        format!("nxr{}", self.id)
    }

    /// Sends `count` 802.1Q-tagged frames (VLAN `vid`) holding UDP datagrams of
    /// `payload` bytes from 10.77.100.1 to 10.77.100.2, written raw on `x`'s veth, as a trunk
    /// port would carry them. The receiving end's kernel strips the tag into the frame's
    /// metadata, as NICs with VLAN offload do.
    pub fn send_vlan_udp(&self, vid: u16, count: u32, payload: usize) {
        let script = r"
import socket, struct, sys
ifname, vid, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
src = s.getsockname()[4]
def checksum(b):
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
udp = struct.pack('!HHHH', 40000, 9, 8 + size, 0) + b'x' * size
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton('10.77.100.1'), socket.inet_aton('10.77.100.2'))
ip = ip[:10] + struct.pack('!H', checksum(ip)) + ip[12:]
frame = b'\xff' * 6 + src + struct.pack('!HHH', 0x8100, vid, 0x0800) + ip + udp
for _ in range(count):
    s.send(frame)
";
        let status = Command::new("ip")
            .args(["netns", "exec", &self.x(), "python3", "-c", script])
            .arg(format!("nx{}", self.id))
            .args([vid.to_string(), count.to_string(), payload.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "VLAN sender failed");
    }

    /// Sends `count` UDP datagrams of `payload` bytes from `x` to `dst:9` (discard; `y`
    /// answers with ICMP port unreachable, which is not UDP). Returns when all are sent.
    pub fn send_udp(&self, dst: &str, count: u32, payload: usize) {
        let script = "import socket, sys\n\
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
            for _ in range(int(sys.argv[2])): s.sendto(b'x' * int(sys.argv[3]), (sys.argv[1], 9))\n";
        let status = Command::new("ip")
            .args(["netns", "exec", &self.x(), "python3", "-c", script, dst])
            .args([count.to_string(), payload.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "sender failed");
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let i = &self.id;
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ip netns del nwx{i}; ip netns del nwy{i}; ip link del nwbr{i}; ip link del nxr{i}; ip link del nyr{i}"
            ))
            .output();
    }
}
