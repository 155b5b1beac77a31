//! Model-based test of `flow::FlowTable`: random sequences of updates, expiries and drains run
//! against the table and against a plain `HashMap` model of the documented semantics
//! (timeouts, active split, SYN reuse of a closed tuple, eviction order, clock clamping).
//! After every operation both must agree on the update's result, the multiset of ended
//! `(key, reason)` events, the set of live flows and their counters, and `len() <= max_flows`.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use netwarden::decode::{TcpFlags, ip_protocol};
use netwarden::flow::{
    EndReason, FlowKey, FlowTable, FlowTableConfig, FlowTimeouts, FlowUpdate, Side, TcpState,
};
use netwarden::timestamp::Timestamp;
use proptest::prelude::*;

/// Small timeouts (whole seconds) so random time steps of half a second hit every boundary.
fn timeouts() -> FlowTimeouts {
    let s = Duration::from_secs;
    FlowTimeouts {
        tcp_half_open: s(3),
        tcp_established: s(10),
        tcp_closing: s(5),
        tcp_closed: s(2),
        udp: s(6),
        icmp: s(4),
        other: s(7),
        active: s(20),
    }
}

/// The key space: a few flows of each kind, so ops collide often.
fn keys() -> Vec<FlowKey> {
    let v4 = |last: u8, port: u16| SocketAddr::from(([10, 0, 0, last], port));
    let v6 = |last: u16, port: u16| {
        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last), port))
    };
    [
        (v4(1, 1000), v4(2, 80), ip_protocol::TCP),
        (v4(3, 1001), v4(2, 80), ip_protocol::TCP),
        (v6(1, 5000), v6(2, 443), ip_protocol::TCP),
        (v4(1, 53), v4(9, 53), ip_protocol::UDP),
        (v6(1, 7), v6(2, 7), ip_protocol::ICMPV6),
        (v4(1, 0), v4(2, 0), 47),
    ]
    .into_iter()
    .map(|(a, b, protocol)| FlowKey::new(a, b, protocol).0)
    .collect()
}

const FLAGS: [u8; 9] = [
    TcpFlags::SYN,
    TcpFlags::SYN | TcpFlags::ACK,
    TcpFlags::ACK,
    TcpFlags::PSH | TcpFlags::ACK,
    TcpFlags::FIN | TcpFlags::ACK,
    TcpFlags::RST,
    TcpFlags::RST | TcpFlags::ACK,
    0,
    TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
];

#[derive(Clone, Debug)]
enum Op {
    Update {
        key: FlowKey,
        reverse: bool,
        /// TCP flags, used only when the key is TCP.
        flags: u8,
        bytes: u32,
        /// Clock step in half seconds; negative steps test the clamp.
        step: i64,
    },
    Expire {
        step: i64,
    },
    Drain,
}

fn step() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        8 => 1i64..=4,
        4 => 5i64..=24,
        1 => 25i64..=50,
        1 => -4i64..0,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (
            prop::sample::select(keys()),
            any::<bool>(),
            prop::sample::select(FLAGS.to_vec()),
            40u32..1500,
            step(),
        )
            .prop_map(|(key, reverse, flags, bytes, step)| Op::Update { key, reverse, flags, bytes, step }),
        3 => step().prop_map(|step| Op::Expire { step }),
        1 => Just(Op::Drain),
    ]
}

/// What the model keeps per flow.
#[derive(Clone, Debug)]
struct MFlow {
    first: u64,
    last: u64,
    /// Recency: the model's packet counter at this flow's latest packet.
    touched: u64,
    state: TcpState,
    initiator: Side,
    packets: [u64; 2],
    bytes: [u64; 2],
    fin: [bool; 2],
}

impl MFlow {
    fn unanswered(&self) -> bool {
        self.packets[0] == 0 || self.packets[1] == 0 || self.state == TcpState::SynSent
    }
}

struct Model {
    max_flows: usize,
    timeouts: FlowTimeouts,
    clock: u64,
    touches: u64,
    flows: HashMap<FlowKey, MFlow>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The element of a `[Forward, Reverse]` pair for `side`.
fn of_side<T: Copy>(pair: [T; 2], side: Side) -> T {
    let [forward, reverse] = pair;
    match side {
        Side::Forward => forward,
        Side::Reverse => reverse,
    }
}

/// Mutable [`of_side`].
fn of_side_mut<T>(pair: &mut [T; 2], side: Side) -> &mut T {
    let [forward, reverse] = pair;
    match side {
        Side::Forward => forward,
        Side::Reverse => reverse,
    }
}

/// The TCP transition rules as `TcpState::next` documents them.
fn model_next(state: TcpState, f: u8, fin_both: bool) -> TcpState {
    let syn = f & TcpFlags::SYN != 0;
    let ack = f & TcpFlags::ACK != 0;
    if f & TcpFlags::RST != 0 || state == TcpState::Closed {
        TcpState::Closed
    } else if f & TcpFlags::FIN != 0 {
        if fin_both {
            TcpState::Closed
        } else {
            TcpState::Closing
        }
    } else if syn && !ack {
        if state == TcpState::None {
            TcpState::SynSent
        } else {
            state
        }
    } else if syn {
        match state {
            TcpState::None | TcpState::SynSent => TcpState::SynReceived,
            s => s,
        }
    } else {
        match state {
            TcpState::None => TcpState::Established,
            TcpState::SynSent | TcpState::SynReceived if ack => TcpState::Established,
            s => s,
        }
    }
}

impl Model {
    fn idle(&self, key: &FlowKey, state: TcpState) -> u64 {
        let t = &self.timeouts;
        ns(match (key.protocol(), state) {
            (_, TcpState::SynSent | TcpState::SynReceived) => t.tcp_half_open,
            (_, TcpState::Established) => t.tcp_established,
            (_, TcpState::Closing) => t.tcp_closing,
            (_, TcpState::Closed) => t.tcp_closed,
            (ip_protocol::UDP, _) => t.udp,
            (ip_protocol::ICMP | ip_protocol::ICMPV6, _) => t.icmp,
            _ => t.other,
        })
    }

    fn idle_reason(f: &MFlow) -> EndReason {
        if f.state == TcpState::Closed {
            EndReason::TcpClosed
        } else {
            EndReason::Idle
        }
    }

    fn update(
        &mut self,
        key: FlowKey,
        side: Side,
        now: u64,
        bytes: u32,
        flags: Option<u8>,
        ended: &mut Vec<(FlowKey, EndReason)>,
    ) -> FlowUpdate {
        self.clock = self.clock.max(now);
        let now = self.clock;
        let is_tcp = key.protocol() == ip_protocol::TCP;
        let f = flags.unwrap_or(0);
        if let Some(flow) = self.flows.get(&key) {
            let reason = if now - flow.last >= self.idle(&key, flow.state) {
                Some(Self::idle_reason(flow))
            } else if now - flow.first >= ns(self.timeouts.active) {
                Some(EndReason::ActiveTimeout)
            } else if flow.state == TcpState::Closed
                && f & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST) == TcpFlags::SYN
            {
                Some(EndReason::TcpClosed)
            } else {
                None
            };
            if let Some(reason) = reason {
                self.flows.remove(&key);
                ended.push((key, reason));
            }
        }
        let created = !self.flows.contains_key(&key);
        if created && self.flows.len() >= self.max_flows {
            let least_recent = |unanswered_only: bool| {
                self.flows
                    .iter()
                    .filter(|(_, f)| !unanswered_only || f.unanswered())
                    .min_by_key(|(_, f)| f.touched)
                    .map(|(k, _)| *k)
            };
            if let Some(victim) = least_recent(true).or_else(|| least_recent(false)) {
                self.flows.remove(&victim);
                ended.push((victim, EndReason::Evicted));
            }
        }
        let syn_ack =
            f & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST) == TcpFlags::SYN | TcpFlags::ACK;
        let flow = self.flows.entry(key).or_insert(MFlow {
            first: now,
            last: now,
            touched: 0,
            state: TcpState::None,
            initiator: if is_tcp && syn_ack {
                side.opposite()
            } else {
                side
            },
            packets: [0; 2],
            bytes: [0; 2],
            fin: [false; 2],
        });
        self.touches += 1;
        let is_initiator_side = side == flow.initiator;
        let is_first_reply = !is_initiator_side && of_side(flow.packets, side) == 0;
        let previous_state = flow.state;
        flow.last = now;
        flow.touched = self.touches;
        *of_side_mut(&mut flow.packets, side) += 1;
        *of_side_mut(&mut flow.bytes, side) += u64::from(bytes);
        if is_tcp {
            *of_side_mut(&mut flow.fin, side) |= f & TcpFlags::FIN != 0;
            flow.state = model_next(flow.state, f, flow.fin == [true, true]);
        }
        FlowUpdate {
            created,
            state: flow.state,
            previous_state,
            packets_in_flow: flow.packets.iter().sum(),
            is_initiator_side,
            is_first_reply,
            is_answered: flow.packets.iter().all(|&n| n > 0),
        }
    }

    fn expire(&mut self, now: u64, ended: &mut Vec<(FlowKey, EndReason)>) -> usize {
        self.clock = self.clock.max(now);
        let now = self.clock;
        let dead: Vec<FlowKey> = self
            .flows
            .iter()
            .filter(|(k, f)| now - f.last >= self.idle(k, f.state))
            .map(|(k, _)| *k)
            .collect();
        for k in &dead {
            if let Some(f) = self.flows.remove(k) {
                ended.push((*k, Self::idle_reason(&f)));
            }
        }
        dead.len()
    }

    fn drain(&mut self, ended: &mut Vec<(FlowKey, EndReason)>) {
        ended.extend(self.flows.drain().map(|(k, _)| (k, EndReason::Shutdown)));
    }
}

/// Ended events in a canonical order, for multiset comparison.
fn sorted(mut events: Vec<(FlowKey, EndReason)>) -> Vec<(String, EndReason)> {
    let mut out: Vec<_> = events
        .drain(..)
        .map(|(k, r)| (format!("{k:?}"), r))
        .collect();
    out.sort_by(|a, b| (&a.0, a.1.as_str()).cmp(&(&b.0, b.1.as_str())));
    out
}

fn run(max_flows: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let keys = keys();
    let mut table = FlowTable::new(FlowTableConfig {
        max_flows,
        timeouts: timeouts(),
    });
    let mut model = Model {
        max_flows,
        timeouts: timeouts(),
        clock: 0,
        touches: 0,
        flows: HashMap::new(),
    };
    // Start away from zero so negative steps have room.
    let mut t: i64 = 1_000_000_000_000;
    for (n, op) in ops.iter().enumerate() {
        let mut got = Vec::new();
        let mut want = Vec::new();
        let mut sink = |r: &netwarden::flow::FlowRecord, reason| got.push((*r.key(), reason));
        match *op {
            Op::Update {
                key,
                reverse,
                flags,
                bytes,
                step,
            } => {
                t += step * 500_000_000;
                let side = if reverse {
                    Side::Reverse
                } else {
                    Side::Forward
                };
                let flags = (key.protocol() == ip_protocol::TCP).then_some(flags);
                let now = u64::try_from(t)?;
                let real = table.update(
                    key,
                    side,
                    Timestamp::from_nanos(now),
                    bytes,
                    flags.map(TcpFlags),
                    &mut sink,
                );
                let expected = model.update(key, side, now, bytes, flags, &mut want);
                prop_assert_eq!(real, expected, "op {} {:?}", n, op);
            }
            Op::Expire { step } => {
                t += step * 500_000_000;
                let now = u64::try_from(t)?;
                let real = table.expire(Timestamp::from_nanos(now), &mut sink);
                let expected = model.expire(now, &mut want);
                prop_assert_eq!(real, expected, "op {} {:?}", n, op);
            }
            Op::Drain => {
                table.drain(&mut sink);
                model.drain(&mut want);
            }
        }
        prop_assert_eq!(
            sorted(got),
            sorted(want),
            "ended events of op {} {:?}",
            n,
            op
        );
        prop_assert_eq!(table.len(), model.flows.len(), "len after op {}", n);
        prop_assert!(table.len() <= table.capacity());
        prop_assert_eq!(table.is_empty(), model.flows.is_empty());
        for key in &keys {
            let real = table.get(key);
            let expected = model.flows.get(key);
            prop_assert_eq!(real.is_some(), expected.is_some(), "presence of {:?}", key);
            if let (Some(r), Some(m)) = (real, expected) {
                prop_assert_eq!(r.tcp_state(), m.state);
                prop_assert_eq!(r.initiator(), m.initiator);
                prop_assert_eq!(r.first_seen(), Timestamp::from_nanos(m.first));
                prop_assert_eq!(r.last_seen(), Timestamp::from_nanos(m.last));
                for side in Side::ALL {
                    prop_assert_eq!(r.packets(side), of_side(m.packets, side));
                    prop_assert_eq!(r.bytes(side), of_side(m.bytes, side));
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn table_matches_model(max_flows in 1usize..=5, ops in prop::collection::vec(op(), 1..120)) {
        run(max_flows, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// With room for every key, nothing is ever evicted: only timeouts and drains end flows.
    #[test]
    fn roomy_table_matches_model(ops in prop::collection::vec(op(), 1..200)) {
        run(keys().len(), &ops)?;
    }
}
