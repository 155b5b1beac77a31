//! A memory-mapped AF_PACKET receive ring (TPACKET_V3), the crate's only raw socket code.
//!
//! Owns [`RxRing`]: one packet socket bound to one interface, its ring of blocks shared
//! with the kernel, and the walk over the frames of each block. The kernel fills a block
//! with frames and retires it to user space when it is full or when the block timeout
//! passes; [`RxRing::advance`] moves to each frame of a retired block in order
//! ([`RxRing::current`] reads it), then hands the block back to the kernel and goes on
//! with the next one. There is no system call per frame: one `poll` at most per block,
//! and none while blocks are waiting.
//!
//! Each frame carries the kernel's nanosecond timestamp, its captured bytes and its length
//! on the wire. A VLAN tag the kernel (or the NIC) stripped is put back in front of the
//! EtherType, so the decoder sees the frame as it was on the wire.
//!
//! Also here, because they are the same kind of socket call: the socket filter (classic
//! BPF, which also cuts frames at the snap length), PACKET_FANOUT, promiscuous
//! membership and PACKET_STATISTICS (`tpacket_stats_v3`, with queue freezes).
//!
//! Does not own: choosing the interface (pnet's interface list) or decoding.
//!
//! # Safety
//! Every `unsafe` block of the ring is in this file (the crate's other one, a prefetch
//! hint, is in `crate::prefetch`) and states why it is sound. The mapping lives as
//! long as the [`RxRing`]; a frame borrows the ring mutably, so the block it lies in
//! cannot be handed back while the frame is alive. Values the kernel writes into the ring
//! (offsets, lengths, counts) are checked against the block's bounds before any byte is
//! read, as if they came from the wire.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::prefetch::prefetch;
use crate::timestamp::Timestamp;

/// Size of the kernel's frame header (`struct tpacket3_hdr`).
const FRAME_HEADER_BYTES: usize = std::mem::size_of::<libc::tpacket3_hdr>();
/// Size of the kernel's block header (`struct tpacket_block_desc`).
const BLOCK_HEADER_BYTES: usize = std::mem::size_of::<libc::tpacket_block_desc>();
/// Bytes of an 802.1Q tag.
const VLAN_TAG_BYTES: usize = 4;
/// The same, as a wire length.
const VLAN_TAG_WIRE_BYTES: u32 = 4;
/// The TPID of an 802.1Q tag, when the kernel does not report one.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// Offset of the EtherType in an Ethernet header (after two MAC addresses).
const ETHERTYPE_OFFSET: usize = 12;
/// Alignment of frames in a TPACKET_V3 block (the kernel's `V3_ALIGNMENT`).
const FRAME_ALIGN: usize = 8;
/// Slot size announced to the kernel; with TPACKET_V3 frames are packed back to back in a
/// block and this only has to divide the block size.
const FRAME_SLOT_BYTES: usize = 2048;

/// Shape of a receive ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingShape {
    /// Bytes per block: a multiple of the page size and a power of two, large enough for
    /// the biggest frame kept.
    pub block_bytes: usize,
    /// Number of blocks.
    pub block_count: usize,
    /// The kernel retires a block that holds frames after this long even when it is not
    /// full, so a quiet link still delivers its frames promptly.
    pub block_timeout: Duration,
}

impl RingShape {
    /// Memory the ring maps: what it costs per capture socket.
    pub fn total_bytes(&self) -> usize {
        self.block_bytes.saturating_mul(self.block_count)
    }
}

/// How workers share an interface (PACKET_FANOUT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutMode {
    /// By flow hash (both directions of a flow to one socket); IP fragments are
    /// reassembled first so they follow their flow.
    Hash,
    /// By the CPU that received the frame.
    Cpu,
    /// By the NIC's receive queue (queue mapping), for multi-queue NICs with RSS.
    QueueMapping,
}

impl FanoutMode {
    /// The `PACKET_FANOUT` type and flags.
    fn type_flags(self) -> u32 {
        match self {
            FanoutMode::Hash => libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG,
            FanoutMode::Cpu => libc::PACKET_FANOUT_CPU,
            FanoutMode::QueueMapping => libc::PACKET_FANOUT_QM,
        }
    }
}

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    /// Operation.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

/// Everything that opens a ring on one interface.
#[derive(Clone, Debug)]
pub struct RingOptions {
    /// Interface index.
    pub interface_index: u32,
    /// Ring shape.
    pub shape: RingShape,
    /// Join the fanout group `(id, mode)`.
    pub fanout: Option<(u16, FanoutMode)>,
    /// Put the interface in promiscuous mode while the socket is open.
    pub promiscuous: bool,
    /// Socket filter; its return value is the number of bytes kept, so it also applies the
    /// snap length.
    pub filter: Vec<BpfInstruction>,
}

/// One frame of the ring, borrowed until the next call.
#[derive(Clone, Copy, Debug)]
pub struct RingFrame<'a> {
    /// Kernel receive time.
    pub ts: Timestamp,
    /// Captured bytes (with a stripped VLAN tag restored).
    pub data: &'a [u8],
    /// Length on the wire (with a stripped VLAN tag counted).
    pub wire_len: u32,
}

/// `PACKET_STATISTICS` since the previous read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames delivered to the ring.
    pub received: u64,
    /// Frames dropped because no block was free.
    pub dropped: u64,
    /// Times the ring filled up and the kernel froze the queue.
    pub freezes: u64,
}

/// Where the frame that [`RxRing::advance`] found is read from.
#[derive(Clone, Copy, Debug)]
struct Current {
    ts: Timestamp,
    /// Offset in the current block (unless `restored`).
    start: usize,
    len: usize,
    wire_len: u32,
    /// The bytes are in `scratch` (a VLAN tag was put back).
    restored: bool,
}

/// The block being walked.
#[derive(Clone, Copy, Debug)]
struct Walk {
    /// Frames left in the block.
    remaining: u32,
    /// Offset of the next frame from the block start.
    offset: usize,
}

/// The shared mapping of the ring.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly what `mmap` returned and nothing borrows
        // the mapping any more (frames borrow the ring, which is being dropped).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

// SAFETY: the mapping is plain memory shared with the kernel; it moves with the ring to
// its worker thread and is used by one thread at a time.
unsafe impl Send for Mapping {}

/// A TPACKET_V3 receive ring on one interface.
pub struct RxRing {
    // Field order matters: the mapping is unmapped before the socket is closed.
    map: Mapping,
    fd: OwnedFd,
    shape: RingShape,
    /// Index of the block being walked, or awaited next.
    block: usize,
    walk: Option<Walk>,
    current: Option<Current>,
    /// A frame whose stripped VLAN tag is restored is copied here.
    scratch: Box<[u8]>,
}

impl RxRing {
    /// Opens a packet socket, maps its ring and binds it to the interface.
    ///
    /// The socket receives nothing until it is bound, after the filter and ring are in
    /// place, so no frame of another interface or outside the filter slips in.
    ///
    /// # Errors
    /// The socket cannot be created (no `CAP_NET_RAW`), the kernel refuses the ring shape
    /// or the filter, the interface does not exist, or the mapping fails.
    pub fn open(options: &RingOptions) -> io::Result<RxRing> {
        let shape = options.shape;
        check_shape(&shape)?;
        // SAFETY: plain socket(2); the returned descriptor is owned right below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                0, // no protocol: nothing is queued before bind
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_option(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )?;
        attach_filter(&fd, &options.filter)?;
        let request = libc::tpacket_req3 {
            tp_block_size: to_uint(shape.block_bytes)?,
            tp_block_nr: to_uint(shape.block_count)?,
            tp_frame_size: to_uint(FRAME_SLOT_BYTES)?,
            tp_frame_nr: to_uint(shape.block_bytes / FRAME_SLOT_BYTES * shape.block_count)?,
            tp_retire_blk_tov: to_uint(
                usize::try_from(shape.block_timeout.as_millis())
                    .unwrap_or(usize::MAX)
                    .max(1),
            )?,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &request)?;
        let map = map_ring(&fd, shape.total_bytes())?;
        let index = libc::c_int::try_from(options.interface_index)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        if options.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: index,
                mr_type: libc::c_ushort::try_from(libc::PACKET_MR_PROMISC).unwrap_or(1),
                mr_alen: 0,
                mr_address: [0; 8],
            };
            set_option(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        }
        bind(&fd, index)?;
        if let Some((group, mode)) = options.fanout {
            let value = u32::from(group) | (mode.type_flags() << 16);
            set_option(&fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &value)?;
        }
        Ok(RxRing {
            map,
            fd,
            shape,
            block: 0,
            walk: None,
            current: None,
            scratch: vec![0; shape.block_bytes.saturating_add(VLAN_TAG_BYTES)].into_boxed_slice(),
        })
    }

    /// Moves to the next frame, waiting at most `timeout` for the kernel to retire a
    /// block; `Ok(false)`: nothing arrived in time. [`RxRing::current`] then reads it.
    ///
    /// The block of the previous frame goes back to the kernel once all its frames have
    /// been read.
    ///
    /// # Errors
    /// `poll` failed for another reason than a signal, or the socket reported an error
    /// (`ENETDOWN` when the link went down).
    pub fn advance(&mut self, timeout: Duration) -> io::Result<bool> {
        self.current = None;
        let mut waited = false;
        loop {
            if let Some(walk) = self.walk {
                let found = (walk.remaining > 0)
                    .then(|| self.frame_header(walk.offset))
                    .flatten();
                if let Some((header, next)) = found {
                    if let Some(next) = next {
                        self.prefetch_frame(next, usize::from(header.tp_mac));
                    }
                    self.walk = Some(Walk {
                        remaining: walk.remaining - 1,
                        offset: next.unwrap_or(self.shape.block_bytes),
                    });
                    if let Some(span) = self.frame_span(walk.offset, &header) {
                        self.current = Some(self.locate(span, &header));
                        return Ok(true);
                    }
                    // A frame outside its block: skip it, the next header says where to go on.
                    continue;
                }
                // The block is done (or the kernel's numbers are inconsistent): give it back.
                self.release(self.block);
                self.block = (self.block + 1) % self.shape.block_count;
                self.walk = None;
            }
            if let Some(walk) = self.retired(self.block) {
                self.walk = Some(walk);
                continue;
            }
            if waited {
                return Ok(false);
            }
            self.wait(timeout)?;
            waited = true;
        }
    }

    /// The frame [`RxRing::advance`] moved to, if it found one.
    pub fn current(&self) -> Option<RingFrame<'_>> {
        let c = self.current?;
        let data = if c.restored {
            self.scratch.get(..c.len)?
        } else {
            // SAFETY: `c.start..c.start + c.len` lies inside the current block
            // (`frame_span` checked it), which user space owns until the next `advance`,
            // and that takes `&mut self`, so not while this borrow of `self` lives.
            unsafe {
                std::slice::from_raw_parts(
                    self.block_ptr(self.block).add(c.start).cast_const(),
                    c.len,
                )
            }
        };
        Some(RingFrame {
            ts: c.ts,
            data,
            wire_len: c.wire_len,
        })
    }

    /// Reads and resets the socket's PACKET_STATISTICS.
    ///
    /// # Errors
    /// The `getsockopt` failed.
    pub fn stats(&mut self) -> io::Result<RingStats> {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = socklen::<libc::tpacket_stats_v3>();
        // SAFETY: `stats` is a live `tpacket_stats_v3` and `len` its exact size, so the
        // kernel writes at most that many bytes into it.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // tp_packets counts every frame the socket saw, including the dropped ones.
        Ok(RingStats {
            received: u64::from(stats.tp_packets.saturating_sub(stats.tp_drops)),
            dropped: u64::from(stats.tp_drops),
            freezes: u64::from(stats.tp_freeze_q_cnt),
        })
    }

    /// The shape the ring was opened with.
    pub fn shape(&self) -> RingShape {
        self.shape
    }

    /// Start of block `index` in the mapping.
    fn block_ptr(&self, index: usize) -> *mut u8 {
        // SAFETY: `index < block_count` (callers keep it so), so the offset stays inside
        // the mapping of `block_bytes * block_count` bytes.
        unsafe { self.map.base.as_ptr().add(index * self.shape.block_bytes) }
    }

    /// The status word of block `index`, shared with the kernel.
    // Blocks are page aligned and frame offsets checked to be 8-aligned (see the SAFETY
    // comments), so the byte pointer is aligned for the header type it is cast to.
    #[allow(clippy::cast_ptr_alignment)]
    fn block_status(&self, index: usize) -> &AtomicU32 {
        let header = self.block_ptr(index).cast::<libc::tpacket_block_desc>();
        // SAFETY: a block starts with a `tpacket_block_desc` (page aligned, so aligned for
        // it); `block_status` is its first `u32` after `version` and `offset_to_priv`,
        // which the kernel and this process only access atomically, and it lives as long
        // as the mapping, which outlives `&self`.
        unsafe {
            let status = std::ptr::addr_of_mut!((*header).hdr.bh1.block_status);
            AtomicU32::from_ptr(status)
        }
    }

    /// The walk over block `index` if the kernel has retired it to user space.
    // Blocks are page aligned and frame offsets checked to be 8-aligned (see the SAFETY
    // comments), so the byte pointer is aligned for the header type it is cast to.
    #[allow(clippy::cast_ptr_alignment)]
    fn retired(&self, index: usize) -> Option<Walk> {
        // Acquire: the frames the kernel wrote before setting the status are visible.
        if self.block_status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return None;
        }
        let header = self.block_ptr(index).cast::<libc::tpacket_block_desc>();
        // SAFETY: the block belongs to user space now (status USER, acquired above), so
        // the kernel does not write its header; the pointer is in the mapping and aligned.
        let (count, first) = unsafe {
            let h = std::ptr::read(std::ptr::addr_of!((*header).hdr.bh1));
            (h.num_pkts, h.offset_to_first_pkt)
        };
        Some(Walk {
            remaining: count,
            offset: usize::try_from(first).unwrap_or(usize::MAX),
        })
    }

    /// The frame header at `offset` of the current block, and the offset of the next
    /// frame (none for the last), if the header lies inside the block.
    // Blocks are page aligned and frame offsets checked to be 8-aligned (see the SAFETY
    // comments), so the byte pointer is aligned for the header type it is cast to.
    #[allow(clippy::cast_ptr_alignment)]
    fn frame_header(&self, offset: usize) -> Option<(libc::tpacket3_hdr, Option<usize>)> {
        let end = offset.checked_add(FRAME_HEADER_BYTES)?;
        if offset < BLOCK_HEADER_BYTES
            || end > self.shape.block_bytes
            || !offset.is_multiple_of(FRAME_ALIGN)
        {
            return None;
        }
        // SAFETY: `offset..end` lies inside the current block (checked above), which user
        // space owns while it is walked; the offset is 8-byte aligned and the block page
        // aligned, so the read is aligned for `tpacket3_hdr`.
        let header = unsafe {
            std::ptr::read(
                self.block_ptr(self.block)
                    .add(offset)
                    .cast::<libc::tpacket3_hdr>(),
            )
        };
        let next = match header.tp_next_offset {
            0 => None,
            n => offset.checked_add(usize::try_from(n).ok()?),
        };
        Some((header, next))
    }

    /// Starts loading the frame header at `offset` of the current block, and the first
    /// bytes of its frame if they start `mac` bytes further (as in the frame before it),
    /// into the cache while the frame before is processed. The kernel wrote them from
    /// another CPU, so the first read of each frame missed the cache, and that miss was
    /// most of the cost of moving to the next frame. A hint only: nothing is read.
    #[inline]
    fn prefetch_frame(&self, offset: usize, mac: usize) {
        let block = self.block_ptr(self.block).cast_const();
        for at in [offset, offset.saturating_add(mac)] {
            if at < self.shape.block_bytes {
                prefetch(block.wrapping_add(at));
            }
        }
    }

    /// Where the bytes of the frame described by `header` at `offset` lie in the current
    /// block (start, length); `None` when they would reach outside it.
    fn frame_span(&self, offset: usize, header: &libc::tpacket3_hdr) -> Option<(usize, usize)> {
        let start = offset.checked_add(usize::from(header.tp_mac))?;
        let captured = usize::try_from(header.tp_snaplen).ok()?;
        (start.checked_add(captured)? <= self.shape.block_bytes).then_some((start, captured))
    }

    /// Where the frame described by `header`, whose bytes are `span` of the current
    /// block, is read from; a VLAN tag the kernel stripped is restored into `scratch`.
    fn locate(&mut self, (start, len): (usize, usize), header: &libc::tpacket3_hdr) -> Current {
        let plain = Current {
            ts: Timestamp::from_secs_nanos(u64::from(header.tp_sec), u64::from(header.tp_nsec)),
            start,
            len,
            wire_len: header.tp_len,
            restored: false,
        };
        if header.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
            return plain;
        }
        let tpid = if header.tp_status & libc::TP_STATUS_VLAN_TPID_VALID == 0 {
            ETHERTYPE_VLAN
        } else {
            header.hv1.tp_vlan_tpid
        };
        // The tag control information is 16 bits; the kernel's field is wider.
        let tci = u16::try_from(header.hv1.tp_vlan_tci & 0xffff).unwrap_or_default();
        // SAFETY: as in `current`: the span lies inside the current block, owned by user
        // space; `scratch` is a separate allocation, so the two do not overlap.
        let data = unsafe {
            std::slice::from_raw_parts(self.block_ptr(self.block).add(start).cast_const(), len)
        };
        match restore_vlan_tag(data, tpid, tci, &mut self.scratch) {
            Some(restored) => Current {
                len: restored,
                wire_len: header.tp_len.saturating_add(VLAN_TAG_WIRE_BYTES),
                restored: true,
                ..plain
            },
            // A runt without room for MAC addresses: the decoder counts it as truncated.
            None => plain,
        }
    }

    /// Hands block `index` back to the kernel.
    fn release(&self, index: usize) {
        // Release: every read of the block's frames happens before the kernel may reuse it.
        self.block_status(index)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }

    /// Waits up to `timeout` for the socket to become readable.
    fn wait(&self, timeout: Duration) -> io::Result<()> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one live `pollfd` and the count says one.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, millis) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        if pfd.revents & libc::POLLERR != 0 {
            return Err(take_socket_error(&self.fd));
        }
        Ok(())
    }
}

/// Copies `data` into `scratch` with the tag `tpid`/`tci` inserted after the MAC
/// addresses, returning the restored length; `None` when the frame is too short to hold
/// them or `scratch` too small.
fn restore_vlan_tag(data: &[u8], tpid: u16, tci: u16, scratch: &mut [u8]) -> Option<usize> {
    let total = data.len().checked_add(VLAN_TAG_BYTES)?;
    let macs = data.get(..ETHERTYPE_OFFSET)?;
    let rest = data.get(ETHERTYPE_OFFSET..)?;
    let out = scratch.get_mut(..total)?;
    let (head, tail) = out.split_at_mut(ETHERTYPE_OFFSET);
    head.copy_from_slice(macs);
    let (tag, body) = tail.split_at_mut(VLAN_TAG_BYTES);
    tag.copy_from_slice(&(u32::from(tpid) << 16 | u32::from(tci)).to_be_bytes());
    body.copy_from_slice(rest);
    Some(total)
}

/// Refuses a shape the kernel would refuse with a bare `EINVAL`, saying why.
fn check_shape(shape: &RingShape) -> io::Result<()> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
    // SAFETY: sysconf has no memory effects.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    if !shape.block_bytes.is_power_of_two() || shape.block_bytes < page.max(FRAME_SLOT_BYTES) {
        return Err(invalid(
            "ring block size must be a power of two of at least one page",
        ));
    }
    if shape.block_count == 0 {
        return Err(invalid("ring needs at least one block"));
    }
    Ok(())
}

fn to_uint(value: usize) -> io::Result<libc::c_uint> {
    libc::c_uint::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ring size out of range"))
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// `setsockopt(fd, level, name, value)`.
fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` and the length is its exact size; the kernel only
    // reads it. Each caller passes the type the option expects.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            socklen::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Attaches a classic BPF program (`SO_ATTACH_FILTER`).
fn attach_filter(fd: &OwnedFd, program: &[BpfInstruction]) -> io::Result<()> {
    let mut instructions: Vec<libc::sock_filter> = program
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    let fprog = libc::sock_fprog {
        len: u16::try_from(instructions.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?,
        filter: instructions.as_mut_ptr(),
    };
    // The kernel copies the program during the call; `instructions` outlives it.
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Maps the ring of `fd`.
fn map_ring(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
    // SAFETY: a fresh shared mapping of the socket's ring; the kernel checks `len`
    // against the ring it set up and fails otherwise.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
    Ok(Mapping { base, len })
}

/// Binds `fd` to interface `index`, receiving every protocol.
fn bind(fd: &OwnedFd, index: libc::c_int) -> io::Result<()> {
    // SAFETY: `sockaddr_ll` is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::c_ushort::try_from(libc::AF_PACKET).unwrap_or(17);
    addr.sll_protocol = u16::try_from(libc::ETH_P_ALL).unwrap_or(3).to_be();
    addr.sll_ifindex = index;
    // SAFETY: `addr` is a live `sockaddr_ll` and the length is its exact size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&addr).cast(),
            socklen::<libc::sockaddr_ll>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The pending error of a socket (`SO_ERROR`), e.g. `ENETDOWN` when its interface went.
fn take_socket_error(fd: &OwnedFd) -> io::Error {
    let mut code: libc::c_int = 0;
    let mut len = socklen::<libc::c_int>();
    // SAFETY: `code` is a live c_int and `len` its exact size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            std::ptr::from_mut(&mut code).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        io::Error::last_os_error()
    } else {
        io::Error::from_raw_os_error(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tag_goes_back_between_the_macs_and_the_ethertype() {
        let frame: Vec<u8> = (0..12).chain([0x08, 0x00, 0x45, 0x00]).collect();
        let mut scratch = [0u8; 64];
        let len = restore_vlan_tag(&frame, 0x8100, 0x2064, &mut scratch).unwrap();
        assert_eq!(len, frame.len() + 4);
        let out = &scratch[..len];
        assert_eq!(&out[..12], &frame[..12]);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&out[16..], &frame[12..]);
    }

    #[test]
    fn vlan_restore_refuses_runts_and_small_scratch() {
        let mut scratch = [0u8; 64];
        assert!(restore_vlan_tag(&[0; 11], 0x8100, 1, &mut scratch).is_none());
        let mut tiny = [0u8; 15];
        assert!(restore_vlan_tag(&[0; 12], 0x8100, 1, &mut tiny).is_none());
    }

    #[test]
    fn shapes_the_kernel_would_refuse_are_named() {
        let shape = |block_bytes, block_count| RingShape {
            block_bytes,
            block_count,
            block_timeout: Duration::from_millis(10),
        };
        assert!(check_shape(&shape(1 << 20, 8)).is_ok());
        assert!(check_shape(&shape(3 << 20, 8)).is_err());
        assert!(check_shape(&shape(1 << 20, 0)).is_err());
        assert!(check_shape(&shape(1024, 8)).is_err());
        assert_eq!(shape(1 << 20, 8).total_bytes(), 8 << 20);
    }
}
