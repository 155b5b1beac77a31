//! The bounded flow table: lookup, update, idle/active timeouts and eviction.
//!
//! Owns [`FlowTable`] and its configuration ([`FlowTableConfig`], [`FlowTimeouts`]), and the
//! reasons a flow ends ([`EndReason`]). Does not read a clock (time is the `now` the caller
//! passes), log, or count metrics: every flow that ends is handed to the caller's `ended`
//! callback with its reason, and the caller counts.
//!
//! # Layout
//! - `nodes`: a slab of records, allocated once for `max_flows` entries, recycled through a
//!   free list. A node is 128 bytes aligned to 64: the fields a lookup reads share its first
//!   cache line, the counters it then writes the second.
//! - `links`: the list neighbours of each slab entry, in their own dense array (8 bytes per
//!   flow), so relinking a flow's neighbours touches a small, mostly cached array instead of
//!   two more random records. A free entry's `next` link threads the free list.
//! - `index`: a [`FlowIndex`] of slab indices by key hash, so each key is stored once (in
//!   its node): one array of 8-byte slots, at most three quarters full, whose slots a
//!   lookup reads usually in one cache line. [`FlowTable::locate`] hashes a key and starts
//!   loading that line, so a caller that knows the key early overlaps the miss with other
//!   work before [`FlowTable::update_located`].
//! - `lists`: intrusive doubly linked lists through `links`, one per (timeout class,
//!   answered or not). A flow is moved to the tail of its list on every packet, so each list
//!   is ordered both by last packet time and by recency: expiry pops list heads, and
//!   eviction compares at most one head per list. Both are O(1) per flow ended.
//!
//! # Invariants
//! - `len() <= capacity()` always; memory never grows with traffic.
//! - `links.len() == nodes.len()`, and every index stored in `index`, `lists`, `free_head`
//!   or `links` is `< nodes.len()`.
//! - A live node is in exactly one list (the one [`list_of`] names for its record) and in
//!   `index`; a free node is in neither.
//! - The table clock never runs backwards: a `now` older than the newest seen so far is
//!   treated as the newest. This keeps every list sorted by `last_seen`, so packets with
//!   out-of-order capture timestamps cannot make a flow expire early.

use std::hash::BuildHasher;
use std::time::Duration;

use hashbrown::DefaultHashBuilder;

use super::index::FlowIndex;
use super::key::{FlowKey, Side};
use super::record::{FlowRecord, TcpState};
use crate::decode::{TcpFlags, ip_protocol};
use crate::timestamp::Timestamp;

/// Idle timeouts per kind of flow, plus the active timeout that splits long flows.
///
/// A flow is idle-expired once `now - last_seen >= timeout` (the boundary itself expires).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// TCP flows in `SynSent` or `SynReceived`.
    pub tcp_half_open: Duration,
    /// TCP flows in `Established`.
    pub tcp_established: Duration,
    /// TCP flows in `Closing` (one FIN seen).
    pub tcp_closing: Duration,
    /// TCP flows in `Closed` (both FINs or a RST seen).
    pub tcp_closed: Duration,
    /// UDP flows.
    pub udp: Duration,
    /// ICMP and `ICMPv6` flows.
    pub icmp: Duration,
    /// Flows of every other IP protocol.
    pub other: Duration,
    /// A flow is ended and restarted by its next packet once `now - first_seen >= active`.
    pub active: Duration,
}

impl Default for FlowTimeouts {
    fn default() -> FlowTimeouts {
        FlowTimeouts {
            tcp_half_open: Duration::from_secs(30),
            tcp_established: Duration::from_secs(300),
            tcp_closing: Duration::from_secs(60),
            tcp_closed: Duration::from_secs(10),
            udp: Duration::from_secs(60),
            icmp: Duration::from_secs(30),
            other: Duration::from_secs(60),
            active: Duration::from_secs(1800),
        }
    }
}

impl FlowTimeouts {
    /// The idle timeout of a flow of `protocol` in TCP state `state`.
    pub fn idle(&self, protocol: u8, state: TcpState) -> Duration {
        self.for_class(Class::of(protocol, state))
    }

    /// The idle timeout of a timeout class.
    fn for_class(&self, class: Class) -> Duration {
        match class {
            Class::TcpHalfOpen => self.tcp_half_open,
            Class::TcpEstablished => self.tcp_established,
            Class::TcpClosing => self.tcp_closing,
            Class::TcpClosed => self.tcp_closed,
            Class::Udp => self.udp,
            Class::Icmp => self.icmp,
            Class::Other => self.other,
        }
    }
}

/// Size and timeouts of a [`FlowTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// Most flows held at once; a new flow beyond it evicts one. Clamped to
    /// `1..=u32::MAX - 1`. The table allocates 146 to 158 bytes per flow up front: a
    /// 128-byte record, an 8-byte list link and 10.7 to 21.3 bytes of hash index.
    pub max_flows: usize,
    /// Idle and active timeouts.
    pub timeouts: FlowTimeouts,
}

impl Default for FlowTableConfig {
    fn default() -> FlowTableConfig {
        FlowTableConfig {
            max_flows: 262_144,
            timeouts: FlowTimeouts::default(),
        }
    }
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Its idle timeout ran out (any state but TCP `Closed`).
    Idle,
    /// It lasted the active timeout; its next packet started a new flow.
    ActiveTimeout,
    /// A TCP flow in `Closed` whose closed-state timeout ran out or whose tuple a new SYN reused.
    TcpClosed,
    /// The table was full and a new flow needed its slot.
    Evicted,
    /// The table was drained at shutdown.
    Shutdown,
}

impl EndReason {
    /// Every reason, in label order.
    pub const ALL: [EndReason; 5] = [
        EndReason::Idle,
        EndReason::ActiveTimeout,
        EndReason::TcpClosed,
        EndReason::Evicted,
        EndReason::Shutdown,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::ActiveTimeout => "active_timeout",
            EndReason::TcpClosed => "tcp_closed",
            EndReason::Evicted => "evicted",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// What one [`FlowTable::update`] did to the packet's flow.
// Four independent facts about one packet, each read on its own by detection: no two
// of them form a state an enum would name.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowUpdate {
    /// The packet started a new flow (first packet, or the old flow had just ended).
    pub created: bool,
    /// TCP state after the packet ([`TcpState::None`] for other protocols).
    pub state: TcpState,
    /// TCP state before the packet (`None` when `created`).
    pub previous_state: TcpState,
    /// Packets in the flow, both directions, including this one.
    pub packets_in_flow: u64,
    /// The packet was sent by the side that started the flow.
    pub is_initiator_side: bool,
    /// The packet is the first one seen from the side that did not start the flow.
    pub is_first_reply: bool,
    /// Packets have been seen from both sides, counting this one: the flow is a
    /// conversation, not one-way traffic (what flood rules tell apart).
    pub is_answered: bool,
}

/// A flow key hashed for one [`FlowTable`] by [`FlowTable::locate`], whose index slots are
/// on their way into the cache. Only that table's `update_located` may take it: another
/// table hashes with another key.
#[derive(Clone, Copy, Debug)]
pub struct Located {
    key: FlowKey,
    hash: u64,
}

/// A bounded table of bidirectional flows, driven by packet time.
pub struct FlowTable {
    nodes: Vec<Node>,
    /// List neighbours of `nodes[i]`, indexed alike.
    links: Vec<Link>,
    /// Head of the free list (linked through `Link::next`), or `NIL`.
    free_head: u32,
    lists: [List; LIST_COUNT],
    /// Idle timeout in nanoseconds of the flows in each list.
    list_timeout_ns: [u64; LIST_COUNT],
    active_ns: u64,
    index: FlowIndex,
    hasher: DefaultHashBuilder,
    capacity: usize,
    len: usize,
    /// Newest `now` seen (see the module invariants).
    clock: Timestamp,
    /// Counter stamped on a node at each packet: its order across lists is recency.
    seq: u64,
}

/// End-of-list and free-list marker; never a valid index since `capacity < u32::MAX`.
const NIL: u32 = u32::MAX;

/// `Node::list` of a node in no list (free, or being inserted).
const UNLINKED: u8 = u8::MAX;

/// Timeout classes (one idle timeout each).
const CLASS_COUNT: usize = 7;

/// One list per timeout class and answered/unanswered.
const LIST_COUNT: usize = CLASS_COUNT * 2;

/// A flow's idle-timeout class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    TcpHalfOpen,
    TcpEstablished,
    TcpClosing,
    TcpClosed,
    Udp,
    Icmp,
    Other,
}

impl Class {
    /// In list order: list `2 * i + unanswered` holds flows of `ALL[i]`.
    const ALL: [Class; CLASS_COUNT] = [
        Class::TcpHalfOpen,
        Class::TcpEstablished,
        Class::TcpClosing,
        Class::TcpClosed,
        Class::Udp,
        Class::Icmp,
        Class::Other,
    ];

    fn of(protocol: u8, state: TcpState) -> Class {
        match state {
            TcpState::SynSent | TcpState::SynReceived => Class::TcpHalfOpen,
            TcpState::Established => Class::TcpEstablished,
            TcpState::Closing => Class::TcpClosing,
            TcpState::Closed => Class::TcpClosed,
            TcpState::None => match protocol {
                ip_protocol::UDP => Class::Udp,
                ip_protocol::ICMP | ip_protocol::ICMPV6 => Class::Icmp,
                _ => Class::Other,
            },
        }
    }
}

/// The list a record belongs in: its timeout class, split into flows that got an answer and
/// flows that did not (one side only, or a TCP SYN with no SYN-ACK) — the ones a
/// spoofed-source flood creates, which eviction takes first.
fn list_of(record: &FlowRecord) -> u8 {
    let class = Class::of(record.key().protocol(), record.tcp_state());
    let unanswered = !record.is_answered() || record.tcp_state() == TcpState::SynSent;
    // `Class` has 7 variants, so the result is below LIST_COUNT = 14.
    (class as u8) * 2 + u8::from(unanswered)
}

/// Whether a list holds unanswered flows.
const fn is_unanswered_list(list: usize) -> bool {
    list % 2 == 1
}

/// The class of the flows in list `list`.
#[allow(clippy::indexing_slicing)]
fn class_of_list(list: usize) -> Class {
    // INVARIANT: list < LIST_COUNT = 2 * CLASS_COUNT.
    Class::ALL[list / 2]
}

/// First and last node of a list, or `NIL`.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY_LIST: List = List {
    head: NIL,
    tail: NIL,
};

/// Neighbours of a node in its list; for a free node, `next` is the next free node.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
}

const NO_LINK: Link = Link {
    prev: NIL,
    next: NIL,
};

#[repr(C, align(64))]
struct Node {
    record: FlowRecord,
    /// Value of `FlowTable::seq` at this flow's latest packet.
    seq: u64,
    /// Which list the node is in, or `UNLINKED`.
    list: u8,
}

/// Slab entry `i` (of `nodes` or `links`).
#[allow(clippy::indexing_slicing)]
#[inline]
fn at<T>(slab: &[T], i: u32) -> &T {
    // INVARIANT: every index the table stores is < nodes.len() == links.len() (module
    // invariants); a violation is a bug in this file, not something packet data can cause.
    &slab[i as usize]
}

/// Slab entry `i`, mutably.
#[allow(clippy::indexing_slicing)]
#[inline]
fn at_mut<T>(slab: &mut [T], i: u32) -> &mut T {
    // INVARIANT: as in `at`.
    &mut slab[i as usize]
}

impl FlowTable {
    /// Allocates a table for `config.max_flows` flows; it never allocates again.
    pub fn new(config: FlowTableConfig) -> FlowTable {
        let capacity = config.max_flows.clamp(1, (NIL - 1) as usize);
        let timeouts = config.timeouts;
        let list_timeout_ns =
            std::array::from_fn(|list| nanos(timeouts.for_class(class_of_list(list))));
        FlowTable {
            nodes: Vec::with_capacity(capacity),
            links: Vec::with_capacity(capacity),
            free_head: NIL,
            lists: [EMPTY_LIST; LIST_COUNT],
            list_timeout_ns,
            active_ns: nanos(timeouts.active),
            index: FlowIndex::with_capacity(capacity),
            hasher: DefaultHashBuilder::default(),
            capacity,
            len: 0,
            clock: Timestamp::ZERO,
            seq: 0,
        }
    }

    /// Accounts one packet of `wire_bytes` travelling on `side` of `key`'s flow at `now`.
    ///
    /// `tcp_flags` are the packet's TCP flags (`None` for other protocols). Any flow this
    /// ends is passed to `ended` first, before the new one is inserted:
    /// - an existing flow whose idle timeout has passed (even if [`FlowTable::expire`] has
    ///   not run yet) ends with `Idle` (`TcpClosed` if it is TCP `Closed`);
    /// - else one that has lasted the active timeout ends with `ActiveTimeout`;
    /// - else a TCP `Closed` flow hit by a SYN without ACK ends with `TcpClosed`;
    /// - a new flow in a full table evicts, with `Evicted`, the least recently seen
    ///   unanswered flow (one side only, or TCP `SynSent`), or if there is none the least
    ///   recently seen flow.
    ///
    /// In each of these cases the packet then starts a new flow. O(1), no allocation.
    pub fn update(
        &mut self,
        key: FlowKey,
        side: Side,
        now: Timestamp,
        wire_bytes: u32,
        tcp_flags: Option<TcpFlags>,
        ended: &mut impl FnMut(&FlowRecord, EndReason),
    ) -> FlowUpdate {
        let located = Located {
            key,
            hash: self.hasher.hash_one(key),
        };
        self.update_located(located, side, now, wire_bytes, tcp_flags, ended)
    }

    /// Hashes `key` for this table and starts loading the index slots its lookup will read
    /// (a hint: nothing is read yet). Call it as soon as the key is known and do other work
    /// before [`FlowTable::update_located`], so that load overlaps that work.
    #[inline]
    pub fn locate(&self, key: FlowKey) -> Located {
        let hash = self.hasher.hash_one(key);
        self.index.prefetch(hash);
        Located { key, hash }
    }

    /// [`FlowTable::update`] of a key [`FlowTable::locate`] hashed for this table.
    #[inline]
    pub fn update_located(
        &mut self,
        located: Located,
        side: Side,
        now: Timestamp,
        wire_bytes: u32,
        tcp_flags: Option<TcpFlags>,
        ended: &mut impl FnMut(&FlowRecord, EndReason),
    ) -> FlowUpdate {
        let Located { key, hash } = located;
        let now = self.advance_clock(now);
        if let Some(i) = self.find(hash, &key) {
            match self.restart_reason(i, now, tcp_flags) {
                None => return self.touch(i, side, now, wire_bytes, tcp_flags, false),
                Some(reason) => self.remove(i, hash, reason, ended),
            }
        } else if self.len >= self.capacity {
            self.evict(ended);
        }
        let i = self.insert(key, hash, side, now, tcp_flags);
        self.touch(i, side, now, wire_bytes, tcp_flags, true)
    }

    /// Ends, through `ended`, every flow whose idle timeout has passed at `now` (reason
    /// `TcpClosed` for TCP `Closed` flows, `Idle` otherwise) and returns how many ended.
    ///
    /// Cost is proportional to the number ended. Call it about once per second of packet time.
    pub fn expire(
        &mut self,
        now: Timestamp,
        ended: &mut impl FnMut(&FlowRecord, EndReason),
    ) -> usize {
        let now = self.advance_clock(now);
        let mut count = 0;
        for list in 0..LIST_COUNT {
            let reason = if class_of_list(list) == Class::TcpClosed {
                EndReason::TcpClosed
            } else {
                EndReason::Idle
            };
            let timeout = self.timeout_of_list(list);
            loop {
                let head = self.list(list).head;
                if head == NIL || !elapsed(at(&self.nodes, head).record.last_seen(), now, timeout) {
                    break;
                }
                self.remove(head, self.hash_of(head), reason, ended);
                count += 1;
            }
        }
        count
    }

    /// Ends every flow with `Shutdown` and empties the table (keeping its memory).
    pub fn drain(&mut self, ended: &mut impl FnMut(&FlowRecord, EndReason)) {
        for list in &self.lists {
            let mut i = list.head;
            while i != NIL {
                ended(&at(&self.nodes, i).record, EndReason::Shutdown);
                i = at(&self.links, i).next;
            }
        }
        self.nodes.clear();
        self.links.clear();
        self.index.clear();
        self.lists = [EMPTY_LIST; LIST_COUNT];
        self.free_head = NIL;
        self.len = 0;
    }

    /// The flow of `key`, if the table holds it (whether or not its timeout has passed).
    pub fn get(&self, key: &FlowKey) -> Option<&FlowRecord> {
        let i = self.find(self.hasher.hash_one(key), key)?;
        Some(&at(&self.nodes, i).record)
    }

    /// Number of flows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if and only if the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most flows the table holds (`max_flows` after clamping).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn advance_clock(&mut self, now: Timestamp) -> Timestamp {
        self.clock = self.clock.max(now);
        self.clock
    }

    #[inline]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<u32> {
        let nodes = &self.nodes;
        self.index.find(hash, |i| at(nodes, i).record.key() == key)
    }

    fn hash_of(&self, i: u32) -> u64 {
        self.hasher.hash_one(at(&self.nodes, i).record.key())
    }

    /// Why the flow in node `i` must end before a packet at `now` with `tcp_flags` is
    /// counted, if it must.
    #[inline]
    fn restart_reason(
        &self,
        i: u32,
        now: Timestamp,
        tcp_flags: Option<TcpFlags>,
    ) -> Option<EndReason> {
        let n = at(&self.nodes, i);
        let record = &n.record;
        let closed = record.tcp_state() == TcpState::Closed;
        if elapsed(
            record.last_seen(),
            now,
            self.timeout_of_list(usize::from(n.list)),
        ) {
            Some(if closed {
                EndReason::TcpClosed
            } else {
                EndReason::Idle
            })
        } else if elapsed(record.first_seen(), now, self.active_ns) {
            Some(EndReason::ActiveTimeout)
        } else if closed && tcp_flags.is_some_and(TcpFlags::is_syn_only) {
            Some(EndReason::TcpClosed)
        } else {
            None
        }
    }

    /// Counts the packet in node `i` and moves the node to the tail of its (new) list.
    // Forced inline: `update` calls it on the per-packet hit path and the compiler otherwise
    // keeps a call; inlining measured ~6% fewer instructions per update.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn touch(
        &mut self,
        i: u32,
        side: Side,
        now: Timestamp,
        wire_bytes: u32,
        tcp_flags: Option<TcpFlags>,
        created: bool,
    ) -> FlowUpdate {
        self.seq += 1;
        let n = at_mut(&mut self.nodes, i);
        n.seq = self.seq;
        let record = &mut n.record;
        let is_initiator_side = side == record.initiator();
        let is_first_reply = !is_initiator_side && record.packets(side) == 0;
        let previous_state = record.record_packet(side, now, wire_bytes, tcp_flags);
        let update = FlowUpdate {
            created,
            state: record.tcp_state(),
            previous_state,
            packets_in_flow: record.total_packets(),
            is_initiator_side,
            is_first_reply,
            is_answered: record.is_answered(),
        };
        let (from, to) = (n.list, list_of(record));
        self.move_to_tail(i, from, to);
        update
    }

    /// Takes a free slab entry (or a fresh one), fills it and indexes it; the caller links it.
    fn insert(
        &mut self,
        key: FlowKey,
        hash: u64,
        side: Side,
        now: Timestamp,
        tcp_flags: Option<TcpFlags>,
    ) -> u32 {
        let fresh = Node {
            record: FlowRecord::new(key, side, now, tcp_flags),
            seq: 0,
            list: UNLINKED,
        };
        let i = if self.free_head == NIL {
            // INVARIANT: len < capacity <= NIL - 1 here and free entries are counted in
            // nodes.len() - len, so a new entry's index fits in u32 and is not NIL.
            #[allow(clippy::cast_possible_truncation)]
            let i = self.nodes.len() as u32;
            self.nodes.push(fresh);
            self.links.push(NO_LINK);
            i
        } else {
            let i = self.free_head;
            let link = at_mut(&mut self.links, i);
            self.free_head = link.next;
            *link = NO_LINK;
            *at_mut(&mut self.nodes, i) = fresh;
            i
        };
        // INVARIANT: len < capacity, the flows the index was built for, and `i` is free.
        let indexed = self.index.insert(hash, i);
        debug_assert!(
            indexed,
            "the index holds fewer flows than the table's capacity"
        );
        self.len += 1;
        i
    }

    /// Ends the flow in node `i` (whose key hashes to `hash`) and frees the node.
    fn remove(
        &mut self,
        i: u32,
        hash: u64,
        reason: EndReason,
        ended: &mut impl FnMut(&FlowRecord, EndReason),
    ) {
        let list = at(&self.nodes, i).list;
        self.unlink(i, list);
        self.index.remove(hash, i);
        let n = at_mut(&mut self.nodes, i);
        n.list = UNLINKED;
        ended(&n.record, reason);
        at_mut(&mut self.links, i).next = self.free_head;
        self.free_head = i;
        self.len -= 1;
    }

    /// Ends the least recently seen unanswered flow, or if there is none the least recently
    /// seen flow.
    fn evict(&mut self, ended: &mut impl FnMut(&FlowRecord, EndReason)) {
        let victim = self.least_recent(true).or_else(|| self.least_recent(false));
        if let Some(i) = victim {
            self.remove(i, self.hash_of(i), EndReason::Evicted, ended);
        }
    }

    /// The least recently seen flow among the unanswered lists (`unanswered_only`) or all.
    fn least_recent(&self, unanswered_only: bool) -> Option<u32> {
        (0..LIST_COUNT)
            .filter(|&l| !unanswered_only || is_unanswered_list(l))
            .map(|l| self.list(l).head)
            .filter(|&head| head != NIL)
            .min_by_key(|&head| at(&self.nodes, head).seq)
    }

    /// Moves node `i` from list `from` (or `UNLINKED`) to the tail of list `to`.
    #[inline]
    fn move_to_tail(&mut self, i: u32, from: u8, to: u8) {
        if from == to && self.list(usize::from(to)).tail == i {
            return; // Already in place: the common case of a burst on one flow.
        }
        self.unlink(i, from);
        at_mut(&mut self.nodes, i).list = to;
        let list = usize::from(to);
        let tail = self.list(list).tail;
        *at_mut(&mut self.links, i) = Link {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.list_mut(list).head = i;
        } else {
            at_mut(&mut self.links, tail).next = i;
        }
        self.list_mut(list).tail = i;
    }

    /// Takes node `i` out of list `list`, unless that is `UNLINKED`.
    #[inline]
    fn unlink(&mut self, i: u32, list: u8) {
        if list == UNLINKED {
            return;
        }
        let Link { prev, next } = std::mem::replace(at_mut(&mut self.links, i), NO_LINK);
        let list = usize::from(list);
        if prev == NIL {
            self.list_mut(list).head = next;
        } else {
            at_mut(&mut self.links, prev).next = next;
        }
        if next == NIL {
            self.list_mut(list).tail = prev;
        } else {
            at_mut(&mut self.links, next).prev = prev;
        }
    }

    #[allow(clippy::indexing_slicing)]
    fn list(&self, list: usize) -> &List {
        // INVARIANT: list ids come from `list_of` or `0..LIST_COUNT`, all < LIST_COUNT.
        &self.lists[list]
    }

    #[allow(clippy::indexing_slicing)]
    fn list_mut(&mut self, list: usize) -> &mut List {
        // INVARIANT: as in `list`.
        &mut self.lists[list]
    }

    #[allow(clippy::indexing_slicing)]
    fn timeout_of_list(&self, list: usize) -> u64 {
        // INVARIANT: as in `list`.
        self.list_timeout_ns[list]
    }
}

/// Whether at least `timeout_ns` passed from `since` to `now`.
fn elapsed(since: Timestamp, now: Timestamp, timeout_ns: u64) -> bool {
    now.as_nanos().saturating_sub(since.as_nanos()) >= timeout_ns
}

/// A duration in nanoseconds, saturating.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);

    /// Ended flows, in the order the table reported them.
    #[derive(Default)]
    struct Ended(Vec<(FlowKey, EndReason)>);

    impl Ended {
        fn sink(&mut self) -> impl FnMut(&FlowRecord, EndReason) + '_ {
            |record, reason| self.0.push((*record.key(), reason))
        }

        fn take(&mut self) -> Vec<(FlowKey, EndReason)> {
            std::mem::take(&mut self.0)
        }
    }

    fn key(protocol: u8, n: u16) -> (FlowKey, Side) {
        let src: SocketAddr = format!("10.0.0.1:{}", 1000 + n).parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:80".parse().unwrap();
        FlowKey::new(src, dst, protocol)
    }

    fn secs(s: u64) -> Timestamp {
        Timestamp::from_secs_nanos(s, 0)
    }

    fn table(max_flows: usize) -> FlowTable {
        FlowTable::new(FlowTableConfig {
            max_flows,
            ..FlowTableConfig::default()
        })
    }

    /// Sends one packet and returns the update.
    fn send(
        t: &mut FlowTable,
        ended: &mut Ended,
        (key, side): (FlowKey, Side),
        now: Timestamp,
        flags: Option<TcpFlags>,
    ) -> FlowUpdate {
        t.update(key, side, now, 100, flags, &mut ended.sink())
    }

    /// Checks every structural invariant from the module doc.
    fn check_invariants(t: &FlowTable) {
        assert_eq!(t.links.len(), t.nodes.len());
        let mut seen = 0;
        for (l, list) in t.lists.iter().enumerate() {
            let mut prev = NIL;
            let mut i = list.head;
            let mut last_seq = 0;
            let mut last_seen = Timestamp::ZERO;
            while i != NIL {
                let n = at(&t.nodes, i);
                assert_eq!(usize::from(n.list), l);
                assert_eq!(usize::from(list_of(&n.record)), l);
                assert_eq!(at(&t.links, i).prev, prev);
                assert!(n.seq > last_seq, "list {l} not in recency order");
                assert!(
                    n.record.last_seen() >= last_seen,
                    "list {l} not in time order"
                );
                assert_eq!(t.find(t.hash_of(i), n.record.key()), Some(i));
                last_seq = n.seq;
                last_seen = n.record.last_seen();
                prev = i;
                i = at(&t.links, i).next;
                seen += 1;
            }
            assert_eq!(list.tail, prev);
        }
        assert_eq!(seen, t.len());
        assert_eq!(t.index.len(), t.len());
        let mut free = 0;
        let mut i = t.free_head;
        while i != NIL {
            assert_eq!(at(&t.nodes, i).list, UNLINKED);
            i = at(&t.links, i).next;
            free += 1;
        }
        assert_eq!(free + t.len(), t.nodes.len());
        assert!(t.len() <= t.capacity());
    }

    #[test]
    fn first_packet_creates_and_later_packets_hit() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let (k, side) = key(ip_protocol::UDP, 1);
        let u = send(&mut t, &mut ended, (k, side), secs(1), None);
        assert!(u.created);
        assert!(u.is_initiator_side);
        assert!(!u.is_first_reply);
        assert_eq!(
            (u.state, u.previous_state, u.packets_in_flow),
            (TcpState::None, TcpState::None, 1)
        );
        let u = send(&mut t, &mut ended, (k, side.opposite()), secs(2), None);
        assert!(!u.created && !u.is_initiator_side && u.is_first_reply);
        let u = send(&mut t, &mut ended, (k, side.opposite()), secs(3), None);
        assert!(!u.is_first_reply);
        assert_eq!(u.packets_in_flow, 3);
        let r = t.get(&k).unwrap();
        assert_eq!((r.packets(side), r.packets(side.opposite())), (1, 2));
        assert_eq!(r.total_bytes(), 300);
        assert_eq!((r.first_seen(), r.last_seen()), (secs(1), secs(3)));
        assert_eq!(t.len(), 1);
        assert!(ended.take().is_empty());
        check_invariants(&t);
    }

    #[test]
    fn tcp_update_reports_state_transitions() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let (k, side) = key(ip_protocol::TCP, 1);
        let u = send(&mut t, &mut ended, (k, side), secs(1), Some(SYN));
        assert_eq!(
            (u.previous_state, u.state),
            (TcpState::None, TcpState::SynSent)
        );
        let u = send(
            &mut t,
            &mut ended,
            (k, side.opposite()),
            secs(1),
            Some(SYN_ACK),
        );
        assert_eq!(
            (u.previous_state, u.state),
            (TcpState::SynSent, TcpState::SynReceived)
        );
        assert!(u.is_first_reply);
        let u = send(&mut t, &mut ended, (k, side), secs(1), Some(ACK));
        assert_eq!(u.state, TcpState::Established);
        check_invariants(&t);
    }

    #[test]
    fn syn_ack_first_flow_counts_the_syn_ack_as_reply() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let (k, side) = key(ip_protocol::TCP, 1);
        let u = send(&mut t, &mut ended, (k, side), secs(1), Some(SYN_ACK));
        assert!(u.created && !u.is_initiator_side && u.is_first_reply);
        assert_eq!(t.get(&k).unwrap().initiator(), side.opposite());
    }

    /// Puts one flow of each timeout class in the table at `start`.
    fn one_flow_per_class(
        t: &mut FlowTable,
        ended: &mut Ended,
        start: Timestamp,
    ) -> Vec<(FlowKey, Duration, EndReason)> {
        let d = FlowTimeouts::default();
        let mut out = Vec::new();
        let tcp_script: [(&[TcpFlags], Duration, EndReason); 4] = [
            (&[SYN], d.tcp_half_open, EndReason::Idle),
            (&[ACK], d.tcp_established, EndReason::Idle),
            (&[FIN_ACK], d.tcp_closing, EndReason::Idle),
            (&[RST], d.tcp_closed, EndReason::TcpClosed),
        ];
        for (n, (flags, timeout, reason)) in (0u16..).zip(tcp_script) {
            let (k, side) = key(ip_protocol::TCP, n);
            for &f in flags {
                send(t, ended, (k, side), start, Some(f));
            }
            out.push((k, timeout, reason));
        }
        for (n, (protocol, timeout)) in (10u16..).zip([
            (ip_protocol::UDP, d.udp),
            (ip_protocol::ICMP, d.icmp),
            (ip_protocol::ICMPV6, d.icmp),
            (47, d.other),
        ]) {
            let k = key(protocol, n);
            send(t, ended, k, start, None);
            out.push((k.0, timeout, EndReason::Idle));
        }
        out
    }

    #[test]
    fn expire_honours_each_class_timeout_at_the_exact_boundary() {
        let start = secs(1000);
        let mut t = table(64);
        let mut ended = Ended::default();
        let flows = one_flow_per_class(&mut t, &mut ended, start);
        let mut deadlines: Vec<_> = flows.iter().map(|&(_, timeout, _)| timeout).collect();
        deadlines.sort_unstable();
        deadlines.dedup();
        for timeout in deadlines {
            let just_before = start.saturating_add(timeout.saturating_sub(Duration::from_nanos(1)));
            t.expire(just_before, &mut ended.sink());
            let early = ended.take();
            assert!(
                early
                    .iter()
                    .all(|(k, _)| flows.iter().any(|&(fk, to, _)| fk == *k && to < timeout)),
                "ended before its timeout: {early:?}"
            );
            let count = t.expire(start.saturating_add(timeout), &mut ended.sink());
            let mut got = ended.take();
            let mut want: Vec<_> = flows
                .iter()
                .filter(|f| f.1 == timeout)
                .map(|&(k, _, r)| (k, r))
                .collect();
            got.sort_by_key(|(k, _)| format!("{k:?}"));
            want.sort_by_key(|(k, _)| format!("{k:?}"));
            assert_eq!(got, want, "timeout {timeout:?}");
            assert_eq!(count, want.len());
            check_invariants(&t);
        }
        assert!(t.is_empty());
    }

    #[test]
    fn idle_flow_hit_before_expire_runs_restarts() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let k = key(ip_protocol::UDP, 1);
        send(&mut t, &mut ended, k, secs(10), None);
        assert!(!send(&mut t, &mut ended, k, secs(69), None).created);
        let u = send(&mut t, &mut ended, k, secs(129), None);
        assert!(u.created);
        assert_eq!(u.packets_in_flow, 1);
        assert_eq!(ended.take(), [(k.0, EndReason::Idle)]);
        assert_eq!(t.get(&k.0).unwrap().first_seen(), secs(129));
    }

    #[test]
    fn closed_flow_hit_after_its_timeout_ends_as_tcp_closed() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let k = key(ip_protocol::TCP, 1);
        send(&mut t, &mut ended, k, secs(10), Some(RST));
        let u = send(&mut t, &mut ended, k, secs(20), Some(ACK));
        assert!(u.created);
        assert_eq!(u.state, TcpState::Established);
        assert_eq!(ended.take(), [(k.0, EndReason::TcpClosed)]);
    }

    #[test]
    fn active_timeout_splits_a_busy_flow() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let k = key(ip_protocol::UDP, 1);
        let start = secs(100);
        let active = FlowTimeouts::default().active;
        for s in (0..1800).step_by(30) {
            assert_eq!(
                send(
                    &mut t,
                    &mut ended,
                    k,
                    start.saturating_add(Duration::from_secs(s)),
                    None
                )
                .created,
                s == 0
            );
        }
        let almost = start.saturating_add(active.saturating_sub(Duration::from_nanos(1)));
        assert!(!send(&mut t, &mut ended, k, almost, None).created);
        assert!(ended.take().is_empty());
        let u = send(&mut t, &mut ended, k, start.saturating_add(active), None);
        assert!(u.created);
        assert_eq!(ended.take(), [(k.0, EndReason::ActiveTimeout)]);
        assert_eq!(
            t.get(&k.0).unwrap().first_seen(),
            start.saturating_add(active)
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn syn_after_close_starts_a_new_flow() {
        let mut t = table(16);
        let mut ended = Ended::default();
        let (k, side) = key(ip_protocol::TCP, 1);
        let back = side.opposite();
        send(&mut t, &mut ended, (k, side), secs(1), Some(SYN));
        send(&mut t, &mut ended, (k, back), secs(1), Some(SYN_ACK));
        send(&mut t, &mut ended, (k, side), secs(1), Some(FIN_ACK));
        let u = send(&mut t, &mut ended, (k, back), secs(2), Some(FIN_ACK));
        assert_eq!(u.state, TcpState::Closed);
        // Late ACK and a stray SYN-ACK stay in the closed flow.
        assert!(!send(&mut t, &mut ended, (k, side), secs(2), Some(ACK)).created);
        assert!(!send(&mut t, &mut ended, (k, back), secs(3), Some(SYN_ACK)).created);
        assert!(ended.take().is_empty());
        let u = send(&mut t, &mut ended, (k, back), secs(4), Some(SYN));
        assert!(u.created);
        assert_eq!(u.state, TcpState::SynSent);
        assert_eq!(ended.take(), [(k, EndReason::TcpClosed)]);
        assert_eq!(t.get(&k).unwrap().initiator(), back);
        check_invariants(&t);
    }

    #[test]
    fn full_table_evicts_unanswered_flows_first() {
        let mut t = table(3);
        let mut ended = Ended::default();
        let (answered_udp, s1) = key(ip_protocol::UDP, 1);
        let (answered_tcp, s2) = key(ip_protocol::TCP, 2);
        let (syn_only, s3) = key(ip_protocol::TCP, 3);
        send(&mut t, &mut ended, (answered_udp, s1), secs(1), None);
        send(
            &mut t,
            &mut ended,
            (answered_udp, s1.opposite()),
            secs(1),
            None,
        );
        send(&mut t, &mut ended, (answered_tcp, s2), secs(2), Some(ACK));
        send(
            &mut t,
            &mut ended,
            (answered_tcp, s2.opposite()),
            secs(2),
            Some(ACK),
        );
        // The SYN-only flow is the most recently seen, and still goes first.
        send(&mut t, &mut ended, (syn_only, s3), secs(3), Some(SYN));
        send(&mut t, &mut ended, (syn_only, s3), secs(4), Some(SYN));
        let newcomer = key(ip_protocol::UDP, 4);
        assert!(send(&mut t, &mut ended, newcomer, secs(5), None).created);
        assert_eq!(ended.take(), [(syn_only, EndReason::Evicted)]);
        // The newcomer has seen one side only, so it is next.
        send(&mut t, &mut ended, key(ip_protocol::UDP, 5), secs(6), None);
        assert_eq!(ended.take(), [(newcomer.0, EndReason::Evicted)]);
        // With every flow answered, the least recently seen goes.
        let (k5, s5) = key(ip_protocol::UDP, 5);
        send(&mut t, &mut ended, (k5, s5.opposite()), secs(7), None);
        send(&mut t, &mut ended, key(ip_protocol::UDP, 6), secs(8), None);
        assert_eq!(ended.take(), [(answered_udp, EndReason::Evicted)]);
        assert_eq!(t.len(), 3);
        check_invariants(&t);
    }

    #[test]
    fn eviction_picks_least_recent_across_classes_with_packet_order_breaking_ties() {
        let mut t = table(3);
        let mut ended = Ended::default();
        // All at the same instant: packet order decides.
        let udp = key(ip_protocol::UDP, 1);
        let syn = key(ip_protocol::TCP, 2);
        let icmp = key(ip_protocol::ICMP, 3);
        send(&mut t, &mut ended, syn, secs(1), Some(SYN));
        send(&mut t, &mut ended, udp, secs(1), None);
        send(&mut t, &mut ended, icmp, secs(1), None);
        send(&mut t, &mut ended, syn, secs(1), Some(SYN));
        send(&mut t, &mut ended, key(47, 4), secs(1), None);
        send(&mut t, &mut ended, key(47, 5), secs(1), None);
        assert_eq!(
            ended.take(),
            [(udp.0, EndReason::Evicted), (icmp.0, EndReason::Evicted)]
        );
        check_invariants(&t);
    }

    #[test]
    fn drain_ends_everything_and_table_is_reusable() {
        let mut t = table(8);
        let mut ended = Ended::default();
        let flows = one_flow_per_class(&mut t, &mut ended, secs(5));
        assert_eq!(t.len(), 8);
        t.drain(&mut ended.sink());
        let mut got = ended.take();
        got.sort_by_key(|(k, _)| format!("{k:?}"));
        let mut want: Vec<_> = flows
            .iter()
            .map(|&(k, _, _)| (k, EndReason::Shutdown))
            .collect();
        want.sort_by_key(|(k, _)| format!("{k:?}"));
        assert_eq!(got, want);
        assert!(t.is_empty());
        assert_eq!(t.get(&flows[0].0), None);
        check_invariants(&t);
        assert!(send(&mut t, &mut ended, key(ip_protocol::UDP, 99), secs(6), None).created);
        assert_eq!(t.len(), 1);
        check_invariants(&t);
    }

    #[test]
    fn clock_never_runs_backwards() {
        let mut t = table(8);
        let mut ended = Ended::default();
        let k = key(ip_protocol::UDP, 1);
        send(&mut t, &mut ended, k, secs(100), None);
        // An out-of-order packet is counted at the newest time seen.
        send(&mut t, &mut ended, k, secs(40), None);
        assert_eq!(t.get(&k.0).unwrap().last_seen(), secs(100));
        assert_eq!(t.expire(secs(10), &mut ended.sink()), 0);
        let k2 = key(ip_protocol::UDP, 2);
        send(&mut t, &mut ended, k2, secs(1), None);
        assert_eq!(t.get(&k2.0).unwrap().first_seen(), secs(100));
        assert_eq!(t.expire(secs(160), &mut ended.sink()), 2);
        check_invariants(&t);
    }

    #[test]
    fn memory_is_fixed_under_churn() {
        let mut t = table(64);
        let mut ended = Ended::default();
        let fixed = |t: &FlowTable| {
            (
                t.nodes.capacity(),
                t.links.capacity(),
                t.index.allocation_size(),
            )
        };
        let before = fixed(&t);
        let mut state = 0x2545_f491_u32;
        for step in 0..20_000u64 {
            // xorshift: a cheap deterministic mix of hits, misses, flags and sides.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let protocol =
                [ip_protocol::TCP, ip_protocol::UDP, ip_protocol::ICMP, 47][(state & 3) as usize];
            let (k, side) = key(protocol, u16::try_from((state >> 2) % 300).unwrap());
            let side = if state & 0x100 == 0 {
                side
            } else {
                side.opposite()
            };
            let flags = [SYN, SYN_ACK, ACK, FIN_ACK, RST][((state >> 9) % 5) as usize];
            // 50 ms per packet, plus a long quiet spell every 5000 packets so that flows
            // also end by idling, not only by eviction.
            let now = Timestamp::from_nanos(step * 50_000_000 + step / 5000 * 400_000_000_000);
            t.update(k, side, now, 60, Some(flags), &mut ended.sink());
            if step % 20 == 0 {
                t.expire(now, &mut ended.sink());
            }
            if step % 997 == 0 {
                check_invariants(&t);
            }
        }
        check_invariants(&t);
        assert!(ended.0.iter().any(|e| e.1 == EndReason::Evicted));
        assert!(ended.0.iter().any(|e| e.1 == EndReason::Idle));
        assert_eq!(fixed(&t), before);
    }

    #[test]
    fn preallocation_matches_the_documented_size() {
        assert_eq!(size_of::<Node>(), 128);
        for max_flows in [1_000, 262_144, 300_000] {
            let t = table(max_flows);
            let bytes = t.nodes.capacity() * size_of::<Node>()
                + t.links.capacity() * size_of::<Link>()
                + t.index.allocation_size();
            let per_flow = bytes / max_flows;
            assert!((146..=158).contains(&per_flow), "{max_flows}: {per_flow}");
        }
    }

    #[test]
    fn zero_max_flows_still_holds_one() {
        let mut t = table(0);
        let mut ended = Ended::default();
        assert_eq!(t.capacity(), 1);
        send(&mut t, &mut ended, key(ip_protocol::UDP, 1), secs(1), None);
        send(&mut t, &mut ended, key(ip_protocol::UDP, 2), secs(1), None);
        assert_eq!(
            ended.take(),
            [(key(ip_protocol::UDP, 1).0, EndReason::Evicted)]
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn idle_timeout_follows_protocol_and_state() {
        let d = FlowTimeouts::default();
        assert_eq!(d.idle(ip_protocol::TCP, TcpState::SynSent), d.tcp_half_open);
        assert_eq!(
            d.idle(ip_protocol::TCP, TcpState::SynReceived),
            d.tcp_half_open
        );
        assert_eq!(
            d.idle(ip_protocol::TCP, TcpState::Established),
            d.tcp_established
        );
        assert_eq!(d.idle(ip_protocol::TCP, TcpState::Closing), d.tcp_closing);
        assert_eq!(d.idle(ip_protocol::TCP, TcpState::Closed), d.tcp_closed);
        assert_eq!(d.idle(ip_protocol::UDP, TcpState::None), d.udp);
        assert_eq!(d.idle(ip_protocol::ICMPV6, TcpState::None), d.icmp);
        assert_eq!(d.idle(132, TcpState::None), d.other);
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let c = FlowTableConfig::default();
        assert_eq!(c.max_flows, 262_144);
        let t = c.timeouts;
        let secs = |d: Duration| d.as_secs();
        assert_eq!(
            [
                t.tcp_half_open,
                t.tcp_established,
                t.tcp_closing,
                t.tcp_closed,
                t.udp,
                t.icmp,
                t.other,
                t.active
            ]
            .map(secs),
            [30, 300, 60, 10, 60, 30, 60, 1800]
        );
    }

    #[test]
    fn end_reason_labels() {
        assert_eq!(
            EndReason::ALL.map(EndReason::as_str),
            [
                "idle",
                "active_timeout",
                "tcp_closed",
                "evicted",
                "shutdown"
            ]
        );
    }
}
