//! One flow's state: counters per direction, first/last seen and the TCP connection state.
//!
//! Owns [`FlowRecord`] and the TCP state machine [`TcpState::next`]. Does not own timeouts,
//! eviction or the choice of when a record ends: that is [`super::FlowTable`]'s job.
//!
//! # Invariants
//! - A record is created for its first packet and then updated only through
//!   [`FlowRecord::record_packet`]; `first_seen <= last_seen` as long as the caller's clock
//!   never runs backwards (the table guarantees it).
//! - Counters saturate instead of overflowing; nothing here can panic.
//! - Records are small (at most 128 bytes, checked by a test): the table preallocates one per
//!   possible flow.

use super::key::{FlowKey, Side};
use crate::decode::{TcpFlags, ip_protocol};
use crate::timestamp::Timestamp;

/// Connection state of a TCP flow, as far as a passive observer can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// Not a TCP flow (also the state before a TCP flow's first packet).
    #[default]
    None,
    /// A SYN was seen, no SYN-ACK yet.
    SynSent,
    /// A SYN-ACK was seen, the handshake's final ACK not yet.
    SynReceived,
    /// Handshake complete, or a mid-stream pickup.
    Established,
    /// One side sent a FIN.
    Closing,
    /// Both sides sent a FIN, or either sent a RST.
    Closed,
}

impl TcpState {
    /// Every state, in label order.
    pub const ALL: [TcpState; 6] = [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::Established,
        TcpState::Closing,
        TcpState::Closed,
    ];

    /// A short stable name, for labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::None => "none",
            TcpState::SynSent => "syn_sent",
            TcpState::SynReceived => "syn_received",
            TcpState::Established => "established",
            TcpState::Closing => "closing",
            TcpState::Closed => "closed",
        }
    }

    /// The state after a packet with `flags`; `fin_both_sides` says whether, counting this
    /// packet, a FIN has now been seen from both sides.
    ///
    /// Rules, first match wins (a passive observer sees packets the endpoints may drop, so
    /// this is deliberately lenient and never refuses a transition):
    /// 1. RST → `Closed`.
    /// 2. `Closed` stays `Closed` (a SYN reusing the tuple starts a new flow in the table).
    /// 3. FIN → `Closed` if `fin_both_sides`, else `Closing`.
    /// 4. SYN without ACK: `None` → `SynSent`; any other state is kept (retransmission).
    /// 5. SYN-ACK: `None` or `SynSent` → `SynReceived`; any other state is kept.
    /// 6. No SYN, FIN or RST: `None` → `Established` (a mid-stream pickup: the flow began
    ///    before we looked); `SynSent` or `SynReceived` with ACK → `Established` (the
    ///    handshake's last ACK; from `SynSent` the SYN-ACK was missed); otherwise kept.
    #[must_use]
    pub fn next(self, flags: TcpFlags, fin_both_sides: bool) -> TcpState {
        if flags.has(TcpFlags::RST) {
            return TcpState::Closed;
        }
        if self == TcpState::Closed {
            return TcpState::Closed;
        }
        if flags.has(TcpFlags::FIN) {
            return if fin_both_sides {
                TcpState::Closed
            } else {
                TcpState::Closing
            };
        }
        if flags.is_syn_only() {
            return if self == TcpState::None {
                TcpState::SynSent
            } else {
                self
            };
        }
        if flags.is_syn_ack() {
            return match self {
                TcpState::None | TcpState::SynSent => TcpState::SynReceived,
                other => other,
            };
        }
        match self {
            TcpState::None => TcpState::Established,
            TcpState::SynSent | TcpState::SynReceived if flags.has(TcpFlags::ACK) => {
                TcpState::Established
            }
            other => other,
        }
    }
}

/// Everything the table keeps about one flow.
///
/// `repr(C)` pins the field order so that everything a lookup reads (key, state, first and
/// last seen) sits in the first 64 bytes and the counters in the next 32.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FlowRecord {
    key: FlowKey,
    initiator: Side,
    tcp_state: TcpState,
    /// Union of the TCP flags seen, indexed by side: `[Forward, Reverse]`.
    tcp_flags: [TcpFlags; 2],
    first_seen: Timestamp,
    last_seen: Timestamp,
    /// Indexed by side.
    packets: [u64; 2],
    /// Wire bytes, indexed by side.
    bytes: [u64; 2],
}

impl FlowRecord {
    /// A record for a flow whose first packet travels on `side` at `now`, with no packet
    /// counted yet (follow with [`FlowRecord::record_packet`]).
    ///
    /// The initiator is the first packet's side, except that a TCP flow first seen at its
    /// SYN-ACK was initiated by the other side.
    pub(crate) fn new(
        key: FlowKey,
        side: Side,
        now: Timestamp,
        tcp_flags: Option<TcpFlags>,
    ) -> FlowRecord {
        let answered_syn =
            key.protocol() == ip_protocol::TCP && tcp_flags.is_some_and(TcpFlags::is_syn_ack);
        FlowRecord {
            key,
            first_seen: now,
            last_seen: now,
            packets: [0; 2],
            bytes: [0; 2],
            initiator: if answered_syn { side.opposite() } else { side },
            tcp_state: TcpState::None,
            tcp_flags: [TcpFlags::default(); 2],
        }
    }

    /// Counts one packet of `wire_bytes` on `side` at `now` and advances the TCP state.
    /// Returns the TCP state before the packet.
    ///
    /// The state machine runs if and only if the key's protocol is TCP; a TCP packet given
    /// without flags counts as one with no flags set. `tcp_flags` of other protocols are ignored.
    pub(crate) fn record_packet(
        &mut self,
        side: Side,
        now: Timestamp,
        wire_bytes: u32,
        tcp_flags: Option<TcpFlags>,
    ) -> TcpState {
        self.last_seen = now;
        let packets = pick_mut(&mut self.packets, side);
        *packets = packets.saturating_add(1);
        let bytes = pick_mut(&mut self.bytes, side);
        *bytes = bytes.saturating_add(u64::from(wire_bytes));
        let previous = self.tcp_state;
        if self.key.protocol() == ip_protocol::TCP {
            let flags = tcp_flags.unwrap_or_default();
            let seen = pick_mut(&mut self.tcp_flags, side);
            seen.0 |= flags.0;
            let [forward, reverse] = self.tcp_flags;
            let fin_both_sides = (forward.0 & reverse.0 & TcpFlags::FIN) != 0;
            self.tcp_state = previous.next(flags, fin_both_sides);
        }
        previous
    }

    /// The flow's key.
    pub const fn key(&self) -> &FlowKey {
        &self.key
    }

    /// The side that started the flow.
    pub const fn initiator(&self) -> Side {
        self.initiator
    }

    /// Packet time of the first packet.
    pub const fn first_seen(&self) -> Timestamp {
        self.first_seen
    }

    /// Packet time of the latest packet.
    pub const fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    /// Packets seen on `side`.
    pub const fn packets(&self, side: Side) -> u64 {
        *pick(&self.packets, side)
    }

    /// Wire bytes seen on `side`.
    pub const fn bytes(&self, side: Side) -> u64 {
        *pick(&self.bytes, side)
    }

    /// Packets seen in both directions.
    pub const fn total_packets(&self) -> u64 {
        self.packets[0].saturating_add(self.packets[1])
    }

    /// Wire bytes seen in both directions.
    pub const fn total_bytes(&self) -> u64 {
        self.bytes[0].saturating_add(self.bytes[1])
    }

    /// Returns true if and only if packets were seen in both directions.
    pub const fn is_answered(&self) -> bool {
        self.packets[0] != 0 && self.packets[1] != 0
    }

    /// TCP connection state ([`TcpState::None`] for other protocols).
    pub const fn tcp_state(&self) -> TcpState {
        self.tcp_state
    }

    /// Union of the TCP flags sent on `side`.
    pub const fn tcp_flags(&self, side: Side) -> TcpFlags {
        *pick(&self.tcp_flags, side)
    }
}

/// The element of a per-side pair that belongs to `side`.
const fn pick<T>(pair: &[T; 2], side: Side) -> &T {
    match side {
        Side::Forward => &pair[0],
        Side::Reverse => &pair[1],
    }
}

/// Mutable [`pick`].
fn pick_mut<T>(pair: &mut [T; 2], side: Side) -> &mut T {
    match side {
        Side::Forward => &mut pair[0],
        Side::Reverse => &mut pair[1],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Forward as F, Reverse as R};
    use TcpState::{Closed, Closing, Established, SynReceived, SynSent};

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const PSH_ACK: TcpFlags = TcpFlags(TcpFlags::PSH | TcpFlags::ACK);
    const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);
    const RST_ACK: TcpFlags = TcpFlags(TcpFlags::RST | TcpFlags::ACK);

    fn tcp_key() -> FlowKey {
        FlowKey::new(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            ip_protocol::TCP,
        )
        .0
    }

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, 0)
    }

    /// Plays `packets` into a fresh record and returns the state after each one.
    fn play(packets: &[(Side, TcpFlags)]) -> (FlowRecord, Vec<TcpState>) {
        let (first_side, first_flags) = packets[0];
        let mut record = FlowRecord::new(tcp_key(), first_side, ts(1), Some(first_flags));
        let states = packets
            .iter()
            .map(|&(side, flags)| {
                record.record_packet(side, ts(1), 60, Some(flags));
                record.tcp_state()
            })
            .collect();
        (record, states)
    }

    #[test]
    fn full_handshake_and_orderly_close() {
        let (record, states) = play(&[
            (F, SYN),
            (R, SYN_ACK),
            (F, ACK),
            (F, PSH_ACK),
            (R, FIN_ACK),
            (F, ACK),
            (F, FIN_ACK),
            (R, ACK),
        ]);
        assert_eq!(
            states,
            [
                SynSent,
                SynReceived,
                Established,
                Established,
                Closing,
                Closing,
                Closed,
                Closed
            ]
        );
        assert_eq!(record.initiator(), F);
        assert_eq!(
            record.tcp_flags(F),
            TcpFlags(TcpFlags::SYN | TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN)
        );
    }

    #[test]
    fn mid_stream_pickup_goes_straight_to_established() {
        let (record, states) = play(&[(R, PSH_ACK), (F, ACK)]);
        assert_eq!(states, [Established, Established]);
        assert_eq!(record.initiator(), R);
    }

    #[test]
    fn rst_closes_from_any_state() {
        for prefix in [
            &[][..],
            &[(F, SYN)],
            &[(F, SYN), (R, SYN_ACK)],
            &[(F, ACK)],
            &[(F, FIN_ACK)],
        ] {
            let mut packets = prefix.to_vec();
            packets.push((R, RST_ACK));
            let (_, states) = play(&packets);
            assert_eq!(states.last(), Some(&Closed), "after {prefix:?}");
        }
        assert_eq!(play(&[(F, RST)]).1, [Closed]);
    }

    #[test]
    fn closed_is_sticky() {
        let (_, states) = play(&[(F, SYN), (R, RST_ACK), (F, SYN_ACK), (F, ACK), (F, SYN)]);
        assert_eq!(states, [SynSent, Closed, Closed, Closed, Closed]);
    }

    #[test]
    fn syn_ack_first_means_the_other_side_initiated() {
        let (record, states) = play(&[(R, SYN_ACK), (F, ACK)]);
        assert_eq!(states, [SynReceived, Established]);
        assert_eq!(record.initiator(), F);
    }

    #[test]
    fn ack_after_syn_without_syn_ack_is_established() {
        assert_eq!(play(&[(F, SYN), (F, ACK)]).1, [SynSent, Established]);
    }

    #[test]
    fn retransmitted_syn_keeps_state() {
        assert_eq!(play(&[(F, SYN), (F, SYN)]).1, [SynSent, SynSent]);
        assert_eq!(
            play(&[(F, SYN), (R, SYN_ACK), (R, SYN_ACK), (F, SYN)]).1,
            [SynSent, SynReceived, SynReceived, SynReceived]
        );
        assert_eq!(play(&[(F, ACK), (F, SYN)]).1, [Established, Established]);
    }

    #[test]
    fn retransmitted_fin_from_one_side_stays_closing() {
        assert_eq!(
            play(&[(F, ACK), (F, FIN_ACK), (F, FIN_ACK), (R, ACK)]).1,
            [Established, Closing, Closing, Closing]
        );
    }

    #[test]
    fn non_tcp_records_count_but_keep_state_none() {
        let (key, side) = FlowKey::new(
            "10.0.0.1:5353".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap(),
            ip_protocol::UDP,
        );
        let mut record = FlowRecord::new(key, side, ts(5), Some(SYN_ACK));
        assert_eq!(
            record.record_packet(side, ts(5), 80, Some(RST)),
            TcpState::None
        );
        record.record_packet(side.opposite(), ts(7), 120, None);
        assert_eq!(record.tcp_state(), TcpState::None);
        assert_eq!(record.initiator(), side);
        assert_eq!(record.packets(side), 1);
        assert_eq!(record.bytes(side.opposite()), 120);
        assert_eq!(record.total_packets(), 2);
        assert_eq!(record.total_bytes(), 200);
        assert_eq!((record.first_seen(), record.last_seen()), (ts(5), ts(7)));
        assert!(record.is_answered());
        assert_eq!(record.tcp_flags(side), TcpFlags::default());
    }

    #[test]
    fn counters_saturate() {
        let mut record = FlowRecord::new(tcp_key(), F, ts(1), None);
        record.bytes = [u64::MAX - 1, u64::MAX];
        record.record_packet(F, ts(1), u32::MAX, None);
        assert_eq!(record.bytes(F), u64::MAX);
        assert_eq!(record.total_bytes(), u64::MAX);
    }

    #[test]
    fn record_fits_in_128_bytes() {
        assert!(
            size_of::<FlowRecord>() <= 128,
            "{}",
            size_of::<FlowRecord>()
        );
    }

    #[test]
    fn state_names_are_distinct() {
        let mut names: Vec<_> = TcpState::ALL.iter().map(|s| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TcpState::ALL.len());
    }
}
