//! Live capture from a network interface through a TPACKET_V3 ring.
//!
//! Owns [`AfPacketSource`]: one capture socket ([`super::ring::RxRing`]) on one interface,
//! named by the operator, and keeping that interface captured while it comes and goes:
//! - a link that goes down and up again is captured again by the same socket (the kernel
//!   re-attaches it); the source only clears the socket's `ENETDOWN`;
//! - an interface that is deleted and recreated (a new index) gets a new socket;
//! - an interface that does not exist yet is waited for.
//!
//! While the interface is missing the source reports [`Next::Idle`] every read timeout,
//! so the worker keeps flushing and watching for shutdown, and [`Source::is_up`] says
//! `false` (the `netwarden_capture_up` gauge). Also owns listing the interfaces a
//! default config watches, and the snap-length socket filter.
//!
//! pnet is used for interface discovery only (names, indexes, flags); the socket and its
//! ring are `super::ring`'s.

use std::time::{Duration, Instant};

use super::ring::{BpfInstruction, FanoutMode, RingOptions, RingShape, RingStats, RxRing};
use super::{CaptureError, Frame, InterfaceError, KernelStats, Next, Source};
use crate::decode::LinkType;

/// How often a missing interface is looked for, and a quiet one checked.
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// `BPF_RET | BPF_K`: return a constant (the number of bytes to keep).
const BPF_RET_K: u16 = 0x06;

/// How to open a live capture.
#[derive(Clone, Debug)]
pub struct AfPacketOptions {
    /// Put the interface in promiscuous mode.
    pub promiscuous: bool,
    /// Largest part of a frame kept; longer frames are cut, their wire length kept.
    pub snap_length_bytes: u32,
    /// The receive ring.
    pub ring: RingShape,
    /// How long one read waits before reporting [`Next::Idle`].
    pub read_timeout: Duration,
    /// PACKET_FANOUT group and mode shared by the workers of one interface; `None` for a
    /// single worker.
    pub fanout: Option<(u16, FanoutMode)>,
    /// The operator's socket filter (checked classic BPF whose returns are all constants);
    /// `None` keeps every frame.
    pub filter: Option<Vec<BpfInstruction>>,
}

/// Where the source stands with its interface.
enum Attachment {
    /// Capturing through `ring`, bound to interface `index`.
    Attached { ring: RxRing, index: u32 },
    /// The interface does not exist (yet, or any more).
    Missing,
}

/// One capture socket on one interface.
pub struct AfPacketSource {
    interface: String,
    options: AfPacketOptions,
    attachment: Attachment,
    /// The socket reported the link down, and no frame has arrived since.
    link_down: bool,
    /// When to look at the interface again (reattach, or check it still exists).
    next_check: Instant,
}

impl AfPacketSource {
    /// Opens a capture socket on `interface`; an interface that does not exist yet is
    /// waited for (see the module doc).
    ///
    /// # Errors
    /// The socket cannot be opened (usually a missing `CAP_NET_RAW`) or the kernel refuses
    /// the ring.
    pub fn open(
        interface: &str,
        options: &AfPacketOptions,
    ) -> Result<AfPacketSource, CaptureError> {
        let mut source = AfPacketSource {
            interface: interface.to_owned(),
            options: options.clone(),
            attachment: Attachment::Missing,
            link_down: false,
            next_check: Instant::now(),
        };
        if !source.attach()? {
            tracing::warn!(interface = %interface, "Interface does not exist; waiting for it.");
        }
        Ok(source)
    }

    /// Opens a socket on the interface if it exists; `Ok(false)` when it does not.
    fn attach(&mut self) -> Result<bool, CaptureError> {
        self.next_check = Instant::now() + RECHECK_INTERVAL;
        let Some(link) = find_interface(&self.interface) else {
            return Ok(false);
        };
        let ring = RxRing::open(&RingOptions {
            interface_index: link.index,
            shape: self.options.ring,
            fanout: self.options.fanout,
            promiscuous: self.options.promiscuous,
            filter: socket_filter(
                self.options.filter.as_deref(),
                self.options.snap_length_bytes,
            ),
        })
        .map_err(|e| self.error(InterfaceError::Ring(e)))?;
        self.attachment = Attachment::Attached {
            ring,
            index: link.index,
        };
        self.link_down = !link.up;
        Ok(true)
    }

    fn error(&self, source: InterfaceError) -> CaptureError {
        CaptureError::Interface {
            interface: self.interface.clone(),
            source,
        }
    }

    /// Once per [`RECHECK_INTERVAL`] while idle: reattach a missing interface, drop the
    /// socket of one that was deleted (its index is gone or belongs to a new interface),
    /// and follow the link's state.
    fn recheck(&mut self) -> Result<(), CaptureError> {
        if Instant::now() < self.next_check {
            return Ok(());
        }
        self.next_check = Instant::now() + RECHECK_INTERVAL;
        let link = find_interface(&self.interface);
        match (&self.attachment, link) {
            (Attachment::Attached { index, .. }, Some(link)) if *index == link.index => {
                if self.link_down && link.up {
                    tracing::info!(interface = %self.interface, "Interface is up; capturing again.");
                }
                self.link_down = !link.up;
            }
            (Attachment::Attached { .. }, _) => {
                tracing::warn!(interface = %self.interface, "Interface was removed; waiting for it to come back.");
                self.attachment = Attachment::Missing;
                // A recreated interface is picked up at once.
                if self.attach()? {
                    tracing::info!(interface = %self.interface, "Interface is back; capturing.");
                }
            }
            (Attachment::Missing, Some(_)) => {
                if self.attach()? {
                    tracing::info!(interface = %self.interface, "Interface is present; capturing.");
                }
            }
            (Attachment::Missing, None) => {}
        }
        Ok(())
    }
}

impl Source for AfPacketSource {
    fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        let timeout = self.options.read_timeout;
        let advanced = match &mut self.attachment {
            Attachment::Attached { ring, .. } => ring.advance(timeout),
            Attachment::Missing => {
                std::thread::sleep(timeout);
                Ok(false)
            }
        };
        match advanced {
            Ok(true) => self.link_down = false,
            Ok(false) => {
                self.recheck()?;
                return Ok(Next::Idle);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                if !self.link_down {
                    tracing::warn!(interface = %self.interface, "Interface went down; capture resumes when it is up.");
                    self.link_down = true;
                }
                self.recheck()?;
                return Ok(Next::Idle);
            }
            Err(e) => return Err(self.error(InterfaceError::Read(e))),
        }
        let Attachment::Attached { ring, .. } = &self.attachment else {
            return Ok(Next::Idle);
        };
        Ok(ring.current().map_or(Next::Idle, |frame| {
            Next::Frame(Frame {
                ts: frame.ts,
                link: LinkType::Ethernet,
                data: frame.data,
                wire_len: frame.wire_len,
            })
        }))
    }

    fn kernel_stats(&mut self) -> Option<KernelStats> {
        let Attachment::Attached { ring, .. } = &mut self.attachment else {
            return None;
        };
        let RingStats {
            received,
            dropped,
            freezes,
        } = ring.stats().ok()?;
        Some(KernelStats {
            received,
            dropped,
            freezes,
        })
    }

    fn is_up(&self) -> Option<bool> {
        Some(matches!(self.attachment, Attachment::Attached { .. }) && !self.link_down)
    }

    fn kernel_mapped_bytes(&self) -> u64 {
        match &self.attachment {
            Attachment::Attached { ring, .. } => {
                u64::try_from(ring.shape().total_bytes()).unwrap_or(u64::MAX)
            }
            Attachment::Missing => 0,
        }
    }
}

/// What the capture needs to know of an interface.
struct Link {
    index: u32,
    /// Administratively up and running (carrier present).
    up: bool,
}

/// Interface `name`, if it exists.
fn find_interface(name: &str) -> Option<Link> {
    pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == name)
        .map(|i| Link {
            index: i.index,
            up: i.is_up() && i.is_running(),
        })
}

/// The socket filter: the operator's `filter` with every constant return capped at
/// `snap_length_bytes` (a filter's return value is the number of bytes kept), or, without
/// one, a program that keeps every frame cut at the snap length.
fn socket_filter(filter: Option<&[BpfInstruction]>, snap_length_bytes: u32) -> Vec<BpfInstruction> {
    let Some(program) = filter else {
        return vec![BpfInstruction {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: snap_length_bytes,
        }];
    };
    program
        .iter()
        .map(|&i| match i.code {
            BPF_RET_K => BpfInstruction {
                k: i.k.min(snap_length_bytes),
                ..i
            },
            _ => i,
        })
        .collect()
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
