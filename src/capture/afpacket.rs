//! Live capture from a network interface through pnet's AF_PACKET channel.
//!
//! Owns opening the socket (so its descriptor is known, its receive buffer can be sized and
//! PACKET_STATISTICS can be read from it), configuring pnet (read timeout, buffer sized to the snap length, promiscuous
//! mode, PACKET_FANOUT in hash mode so several workers can share one interface and both
//! directions of a flow reach the same worker), and listing the interfaces a default
//! config watches.
//!
//! The crate's `unsafe` blocks live here: `getsockopt(PACKET_STATISTICS)` and
//! `setsockopt(SO_RCVBUFFORCE)` have no safe wrapper in pnet, libc or socket2. Each states
//! what makes it sound.

use std::io;
use std::time::Duration;

use pnet_datalink::{Channel, Config as PnetConfig, DataLinkReceiver, FanoutOption, FanoutType};

use super::{CaptureError, Frame, InterfaceError, KernelStats, Next, Source};
use crate::decode::LinkType;
use crate::timestamp::Timestamp;

/// `PACKET_STATISTICS` from `<linux/if_packet.h>` (not exported by the libc crate).
const PACKET_STATISTICS: libc::c_int = 6;

/// `struct tpacket_stats` from `<linux/if_packet.h>`.
#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: libc::c_uint,
    tp_drops: libc::c_uint,
}

/// How to open a live capture.
#[derive(Clone, Debug)]
pub struct AfPacketOptions {
    /// Put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// Largest frame kept (the receive buffer size).
    pub snap_length_bytes: usize,
    /// Kernel socket receive buffer: how large a burst is absorbed while the worker is busy.
    pub socket_buffer_bytes: usize,
    /// How long one read waits before reporting [`Next::Idle`].
    pub read_timeout: Duration,
    /// PACKET_FANOUT group shared by the workers of one interface; `None` for a single worker.
    pub fanout_group: Option<u16>,
}

/// One AF_PACKET socket bound to one interface.
pub struct AfPacketSource {
    interface: String,
    rx: Box<dyn DataLinkReceiver>,
    /// The socket pnet reads from; pnet owns and closes it, this copy is only read for
    /// statistics while `rx` is alive.
    fd: libc::c_int,
}

impl AfPacketSource {
    /// Opens a capture socket on `interface`.
    ///
    /// # Errors
    /// The interface does not exist, or the socket cannot be opened or bound (usually a
    /// missing `CAP_NET_RAW`).
    pub fn open(
        interface: &str,
        options: &AfPacketOptions,
    ) -> Result<AfPacketSource, CaptureError> {
        let err = |source: InterfaceError| CaptureError::Interface {
            interface: interface.to_owned(),
            source,
        };
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == interface)
            .ok_or_else(|| err(InterfaceError::NotFound))?;
        let fd = open_packet_socket(options.socket_buffer_bytes)
            .map_err(|e| err(InterfaceError::Socket(e)))?;
        let config = PnetConfig {
            read_buffer_size: options.snap_length_bytes,
            read_timeout: Some(options.read_timeout),
            promiscuous: options.promiscuous,
            linux_fanout: options.fanout_group.map(|group_id| FanoutOption {
                group_id,
                fanout_type: FanoutType::HASH,
                defrag: true,
                rollover: false,
            }),
            socket_fd: Some(fd),
            ..PnetConfig::default()
        };
        match pnet_datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => Ok(AfPacketSource {
                interface: interface.to_owned(),
                rx,
                fd,
            }),
            Ok(_) => Err(err(InterfaceError::NotEthernet)),
            Err(e) => Err(err(InterfaceError::Channel(e))),
        }
    }
}

impl Source for AfPacketSource {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        match self.rx.next() {
            Ok(data) => Ok(Next::Frame(Frame {
                ts: Timestamp::now(),
                link: LinkType::Ethernet,
                data,
                wire_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            })),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(Next::Idle)
            }
            Err(e) => Err(CaptureError::Interface {
                interface: self.interface.clone(),
                source: InterfaceError::Read(e),
            }),
        }
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        read_packet_statistics(self.fd).ok()
    }
}

/// Names of the interfaces that are up and not loopback: what an empty
/// `capture.interfaces` means.
pub fn default_interfaces() -> Vec<String> {
    pnet_datalink::interfaces()
        .into_iter()
        .filter(|i| i.is_up() && !i.is_loopback())
        .map(|i| i.name)
        .collect()
}

/// Opens a raw AF_PACKET socket receiving every protocol, with a receive buffer of
/// `buffer_bytes` (forced past `net.core.rmem_max` when the process has `CAP_NET_ADMIN`).
/// Returns the descriptor, which the caller hands to pnet.
fn open_packet_socket(buffer_bytes: usize) -> io::Result<libc::c_int> {
    use std::os::fd::IntoRawFd;
    let protocol = u16::try_from(libc::ETH_P_ALL).unwrap_or(3).to_be();
    let socket = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(libc::c_int::from(protocol))),
    )?;
    if force_receive_buffer(&socket, buffer_bytes).is_err() {
        // Without CAP_NET_ADMIN the kernel caps the size at net.core.rmem_max.
        socket.set_recv_buffer_size(buffer_bytes)?;
    }
    Ok(socket.into_raw_fd())
}

/// `setsockopt(SO_RCVBUFFORCE)`: like `SO_RCVBUF` but not capped by `rmem_max`.
#[allow(unsafe_code)]
fn force_receive_buffer(socket: &socket2::Socket, bytes: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: `value` is a live c_int and `len` is its exact size; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&value).cast::<libc::c_void>(),
            len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads (and thereby resets) the socket's PACKET_STATISTICS counters.
#[allow(unsafe_code)]
fn read_packet_statistics(fd: libc::c_int) -> io::Result<KernelStats> {
    let mut stats = TpacketStats::default();
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<TpacketStats>()).unwrap_or(8);
    // SAFETY: `stats` is a live, properly aligned `struct tpacket_stats` and `len` holds its
    // exact size, so the kernel writes at most that many bytes into it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            PACKET_STATISTICS,
            std::ptr::from_mut(&mut stats).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // tp_packets counts every frame the socket saw, including the dropped ones.
    Ok(KernelStats {
        received: u64::from(stats.tp_packets.saturating_sub(stats.tp_drops)),
        dropped: u64::from(stats.tp_drops),
    })
}
