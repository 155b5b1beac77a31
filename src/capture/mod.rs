//! Packet sources: live interfaces and capture files behind one interface.
//!
//! Owns [`Frame`] (one captured frame: packet-clock timestamp, link type, borrowed bytes),
//! the [`Source`] trait the pipeline pulls frames from, and [`CaptureError`] (which file
//! or interface, with [`FileError`] or [`InterfaceError`] as its source saying what
//! failed, and the operating system's error below that when there is one). Backends:
//! [`afpacket`] (an AF_PACKET TPACKET_V3 ring, [`ring`], with PACKET_FANOUT) and [`pcap_file`] (pcap and
//! pcapng through the `pcap-parser` crate).
//!
//! Does not own: decoding (frames are handed on untouched) or counting.

pub mod afpacket;
pub mod pcap_file;
pub mod ring;

use std::path::PathBuf;

use crate::decode::LinkType;
use crate::timestamp::Timestamp;

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// When the frame was captured (packet clock).
    pub ts: Timestamp,
    /// How to decode `data`.
    pub link: LinkType,
    /// The captured bytes (possibly cut at the snap length).
    pub data: &'a [u8],
    /// Length of the frame on the wire, at least `data.len()`.
    pub wire_len: u32,
}

/// What a source yields on each pull.
#[derive(Debug)]
pub enum Next<'a> {
    /// A frame.
    Frame(Frame<'a>),
    /// Nothing arrived within the read timeout (live only): flush, check for shutdown.
    Idle,
    /// The source is exhausted (end of file).
    End,
}

/// Kernel-side capture statistics since the previous call (PACKET_STATISTICS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the kernel queued to this socket.
    pub received: u64,
    /// Frames the kernel dropped because the receive ring was full.
    pub dropped: u64,
    /// Times the ring filled up and the kernel froze the queue.
    pub freezes: u64,
}

/// A stream of captured frames.
pub trait Source: Send {
    /// Pulls the next frame, waiting at most the source's read timeout.
    ///
    /// # Errors
    /// An unrecoverable capture error (socket error, unreadable or unsupported file).
    fn next(&mut self) -> Result<Next<'_>, CaptureError>;

    /// Kernel drop statistics since the last call; `None` for sources without them.
    fn kernel_stats(&mut self) -> Option<KernelStats> {
        None
    }

    /// Whether the source captures now (a live interface exists and its link is up);
    /// `None` for sources without the notion.
    fn is_up(&self) -> Option<bool> {
        None
    }

    /// Bytes the kernel has mapped into the process for this source now (a capture ring):
    /// resident, so counted in the process's RSS, but allocated by the kernel without
    /// charging the service's memory cgroup, so not in what `MemoryHigh` and `MemoryMax`
    /// limit. 0 for sources without such memory.
    fn kernel_mapped_bytes(&self) -> u64 {
        0
    }

    /// Fraction of the source consumed (0.0 to 1.0), for progress display of files.
    fn progress(&self) -> Option<f64> {
        None
    }
}

/// Capture failures, each naming the interface or file; the cause is the error's source.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A capture file could not be opened or read.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: FileError,
    },
    /// A capture file uses a link type netwarden does not decode.
    #[error(
        "{path}: unsupported link type {linktype} ({name}); supported: Ethernet (1), raw IP (101, 228, 229), BSD loopback (0, 108), Linux cooked SLL (113) and SLL2 (276), NFLOG (239)"
    )]
    UnsupportedLinkType {
        /// The file.
        path: PathBuf,
        /// The numeric LINKTYPE_ value.
        linktype: u32,
        /// Its usual name, when known.
        name: &'static str,
    },
    /// A live interface could not be opened or read.
    #[error("interface {interface}")]
    Interface {
        /// The interface.
        interface: String,
        /// What went wrong.
        #[source]
        source: InterfaceError,
    },
}

/// Why a capture file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening it failed.
    #[error("cannot open")]
    Open(#[source] std::io::Error),
    /// Reading its first bytes failed.
    #[error("cannot read header")]
    ReadHeader(#[source] std::io::Error),
    /// It has no bytes.
    #[error("empty file")]
    Empty,
    /// It ends inside the file header.
    #[error("cannot read header: cut short")]
    HeaderCutShort,
    /// It starts with neither magic number.
    #[error("not a pcap or pcapng file (unknown magic number)")]
    UnknownFormat,
    /// Reading a record failed (an I/O error, not a cut or corrupt record: those end the
    /// file early with a warning).
    #[error("read failed")]
    Read(#[source] std::io::Error),
}

/// Why a live interface could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    /// The capture socket or its ring could not be set up.
    #[error("cannot open the capture ring (needs CAP_NET_RAW)")]
    Ring(#[source] std::io::Error),
    /// Waiting for or reading frames failed for another reason than a link going down.
    #[error("read failed")]
    Read(#[source] std::io::Error),
}
