//! Benign sessions shared by the scenarios: a TCP connection, a DNS lookup, an ICMP ping.
//!
//! Owns the three session state machines. Each writes its next frame with `next_frame` and
//! says how long until the one after, so the scheduler can interleave thousands of them.
//! Does not own: addressing and header state (`endpoints`), choosing addresses or sizes
//! (the scenario does), or time bookkeeping.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::endpoints::{ACK, Endpoints, FIN, PSH, RST, SYN, seg};
use crate::dns::{DnsAnswers, DnsMessage, rtype};
use crate::frame::Payload;
use crate::rng::{Draw as _, Rng};

/// How a TCP session should look; `packets` is exact unless below the minimum.
#[derive(Clone, Copy, Debug)]
pub(super) struct TcpPlan {
    pub(super) packets: u64,
    /// Torn down by a client RST instead of a FIN exchange.
    pub(super) rst: bool,
    /// The client sends the bulk data.
    pub(super) upload: bool,
}

impl TcpPlan {
    /// Fewest packets a session can have: handshake (3), request (1), one data segment and
    /// its ACK (2), and the teardown (RST: 1, FIN/FIN/ACK: 3).
    pub(super) fn min_packets(rst: bool) -> u64 {
        if rst { 7 } else { 9 }
    }
}

/// A TCP connection: handshake, request, bulk data with delayed ACKs, FIN or RST teardown.
///
/// The data phase of `r` packets starts with `singles` segments acknowledged one by one
/// (Linux quick-ack at connection start), then pairs of segments with one delayed ACK each;
/// `singles` is chosen from `r mod 3` so that any `r >= 2` is reachable exactly.
#[derive(Clone, Debug)]
pub(super) struct TcpSession {
    ep: Endpoints,
    rst: bool,
    upload: bool,
    emitted: u64,
    /// Index one past the last data-phase packet.
    data_end: u64,
    singles: u64,
    segments_left: u64,
    mss: usize,
    last_len: usize,
    request_len: usize,
    client_seq: u32,
    server_seq: u32,
    rtt_ns: u64,
    gap_mean_ns: u64,
}

impl TcpSession {
    pub(super) fn new(ep: Endpoints, plan: TcpPlan, rng: &mut Rng) -> TcpSession {
        let packets = plan.packets.max(TcpPlan::min_packets(plan.rst));
        let teardown = if plan.rst { 1 } else { 3 };
        let data_packets = packets - 4 - teardown;
        let singles = [0, 2, 1]
            .get(usize::try_from(data_packets % 3).unwrap_or(0))
            .copied();
        let singles = singles.unwrap_or(0);
        let segments = singles + (data_packets - 2 * singles) / 3 * 2;
        let mss = if ep.is_v6() { 1440 } else { 1460 };
        let rtt_ns = rng.between(500_000, 80_000_000);
        TcpSession {
            ep,
            rst: plan.rst,
            upload: plan.upload,
            emitted: 0,
            data_end: 4 + data_packets,
            singles,
            segments_left: segments,
            mss,
            last_len: usize::try_from(rng.between(1, 1440)).unwrap_or(mss),
            request_len: usize::try_from(rng.between(80, 700)).unwrap_or(100),
            client_seq: rng.next_u32(),
            server_seq: rng.next_u32(),
            rtt_ns,
            gap_mean_ns: rtt_ns / 8,
        }
    }

    /// Writes the next frame; returns the delay to the following one, `None` after the last.
    pub(super) fn next_frame(&mut self, rng: &mut Rng, out: &mut Vec<u8>) -> Option<u64> {
        let index = self.emitted;
        self.emitted += 1;
        let half_rtt = self.rtt_ns / 2;
        let (c, s) = (self.client_seq, self.server_seq);
        match index {
            0 => {
                self.ep.write_tcp(out, true, seg(c, 0, SYN, 0));
                Some(half_rtt)
            }
            1 => {
                self.ep
                    .write_tcp(out, false, seg(s, c.wrapping_add(1), SYN | ACK, 0));
                self.client_seq = c.wrapping_add(1);
                self.server_seq = s.wrapping_add(1);
                Some(half_rtt)
            }
            2 => {
                self.ep.write_tcp(out, true, seg(c, s, ACK, 0));
                Some(100_000)
            }
            3 => {
                self.ep
                    .write_tcp(out, true, seg(c, s, PSH | ACK, self.request_len));
                self.client_seq = c.wrapping_add(u32::try_from(self.request_len).unwrap_or(0));
                Some(half_rtt)
            }
            i if i < self.data_end => Some(self.data(i - 4, rng, out)),
            i => self.teardown(i - self.data_end, out),
        }
    }

    /// Data-phase packet `j`: a data segment from the sender or an ACK from the receiver.
    fn data(&mut self, j: u64, rng: &mut Rng, out: &mut Vec<u8>) -> u64 {
        let is_ack = if j < 2 * self.singles {
            j % 2 == 1
        } else {
            (j - 2 * self.singles) % 3 == 2
        };
        let sender_is_client = self.upload;
        let (snd, rcv) = if sender_is_client {
            (self.client_seq, self.server_seq)
        } else {
            (self.server_seq, self.client_seq)
        };
        if is_ack {
            self.ep
                .write_tcp(out, !sender_is_client, seg(rcv, snd, ACK, 0));
            return if j + 5 == self.data_end {
                self.rtt_ns / 2
            } else {
                rng.between(1_000, 5_000)
            };
        }
        self.segments_left = self.segments_left.saturating_sub(1);
        let (len, flags) = if self.segments_left == 0 {
            (self.last_len, PSH | ACK)
        } else {
            (self.mss, ACK)
        };
        self.ep
            .write_tcp(out, sender_is_client, seg(snd, rcv, flags, len));
        let next = snd.wrapping_add(u32::try_from(len).unwrap_or(0));
        if sender_is_client {
            self.client_seq = next;
        } else {
            self.server_seq = next;
        }
        rng.exp_nanos(self.gap_mean_ns) / 4 + 20_000
    }

    /// Teardown packet `k`: client RST, or server FIN, client FIN, server ACK.
    fn teardown(&mut self, k: u64, out: &mut Vec<u8>) -> Option<u64> {
        let (c, s) = (self.client_seq, self.server_seq);
        match (self.rst, k) {
            (true, _) => {
                self.ep.write_tcp(out, true, seg(c, s, RST | ACK, 0));
                None
            }
            (false, 0) => {
                self.ep.write_tcp(out, false, seg(s, c, FIN | ACK, 0));
                Some(self.rtt_ns / 2)
            }
            (false, 1) => {
                self.ep
                    .write_tcp(out, true, seg(c, s.wrapping_add(1), FIN | ACK, 0));
                Some(self.rtt_ns / 2)
            }
            (false, _) => {
                let ack = seg(s.wrapping_add(1), c.wrapping_add(1), ACK, 0);
                self.ep.write_tcp(out, false, ack);
                None
            }
        }
    }
}

/// Second-level labels of mix DNS names.
const DNS_SERVICES: [&[u8]; 4] = [b"cdn", b"api", b"www", b"mail"];
/// Zones of mix DNS names (under `.test`, RFC 2606).
const DNS_ZONES: [&[u8]; 3] = [b"example", b"corp", b"svc"];

/// A DNS lookup: one query and, unless it goes unanswered, one response.
#[derive(Clone, Debug)]
pub(super) struct DnsSession {
    ep: Endpoints,
    id: u16,
    host: u32,
    service: &'static [u8],
    zone: &'static [u8],
    answer: Option<IpAddr>,
    ttl: u32,
    delay_ns: u64,
    queried: bool,
}

impl DnsSession {
    /// A lookup of `h<n>.<service>.<zone>.test`; the answer is an address of the server
    /// ranges matching the flow's IP version.
    pub(super) fn new(ep: Endpoints, answered: bool, rng: &mut Rng) -> DnsSession {
        let suffix = rng.next_u32();
        let answer = if ep.is_v6() {
            let low = u16::try_from(suffix & 0xfff).unwrap_or(0) + 1;
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x10, 0, 0, 0, low))
        } else {
            IpAddr::V4(Ipv4Addr::from(0xc612_0100 + (suffix & 0xfff)))
        };
        DnsSession {
            ep,
            id: rng.next_u16(),
            host: u32::try_from(rng.below(100_000)).unwrap_or(0),
            service: rng.pick(&DNS_SERVICES, b"www"),
            zone: rng.pick(&DNS_ZONES, b"example"),
            answer: answered.then_some(answer),
            ttl: u32::try_from(rng.between(30, 3600)).unwrap_or(300),
            delay_ns: rng.between(300_000, 50_000_000),
            queried: false,
        }
    }

    /// Writes the query, then the response; returns the delay to the response if any.
    pub(super) fn next_frame(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        let mut label = [0u8; 11];
        let host = decimal_label(&mut label, b'h', self.host);
        let qname: [&[u8]; 4] = [host, self.service, self.zone, b"test"];
        let qtype = if self.ep.is_v6() {
            rtype::AAAA
        } else {
            rtype::A
        };
        let query = DnsMessage::query(self.id, &qname, qtype);
        match (self.queried, self.answer) {
            (false, answer) => {
                self.queried = true;
                self.ep.write_udp(out, true, Payload::Dns(&query));
                answer.map(|_| self.delay_ns)
            }
            (true, answer) => {
                let addrs: &[IpAddr] = match &answer {
                    Some(addr) => std::slice::from_ref(addr),
                    None => &[],
                };
                let response = query.answer(DnsAnswers::Addrs {
                    addrs,
                    ttl: self.ttl,
                });
                self.ep.write_udp(out, false, Payload::Dns(&response));
                None
            }
        }
    }
}

/// Writes `prefix` followed by the decimal digits of `value` into `buf`; returns the label.
pub(super) fn decimal_label(buf: &mut [u8; 11], prefix: u8, mut value: u32) -> &[u8] {
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        if let Some(slot) = digits.get_mut(n) {
            *slot = b'0' + u8::try_from(value % 10).unwrap_or(0);
        }
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    buf[0] = prefix;
    for (slot, digit) in buf.iter_mut().skip(1).zip(digits.iter().take(n).rev()) {
        *slot = *digit;
    }
    buf.get(..=n).unwrap_or_default()
}

/// A ping: `echoes` requests one second apart, each answered after the RTT.
#[derive(Clone, Debug)]
pub(super) struct IcmpSession {
    ep: Endpoints,
    ident: u16,
    echoes: u16,
    emitted: u16,
    rtt_ns: u64,
}

impl IcmpSession {
    /// The identifier is the flow's client port, so flows stay distinct.
    pub(super) fn new(ep: Endpoints, echoes: u16, rng: &mut Rng) -> IcmpSession {
        let ident = ep.client_port();
        IcmpSession {
            ep,
            ident,
            echoes,
            emitted: 0,
            rtt_ns: rng.between(500_000, 100_000_000),
        }
    }

    /// Writes the next request or reply; returns the delay to the following one.
    pub(super) fn next_frame(&mut self, out: &mut Vec<u8>) -> Option<u64> {
        let seq = self.emitted / 2 + 1;
        let is_request = self.emitted.is_multiple_of(2);
        self.emitted += 1;
        self.ep.write_echo(out, is_request, self.ident, seq);
        if is_request {
            Some(self.rtt_ns)
        } else if seq < self.echoes {
            Some(1_000_000_000 - self.rtt_ns)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::endpoints::Hosts;
    use super::*;

    fn endpoints(rng: &mut Rng) -> Endpoints {
        let hosts = Hosts::V4 {
            client: Ipv4Addr::new(10, 201, 1, 1),
            server: Ipv4Addr::new(198, 18, 1, 1),
        };
        Endpoints::new(hosts, (40000, 443), None, true, rng)
    }

    fn run(session: &mut TcpSession, rng: &mut Rng) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut out = Vec::new();
        loop {
            let next = session.next_frame(rng, &mut out);
            frames.push(out.clone());
            if next.is_none() {
                return frames;
            }
        }
    }

    #[test]
    fn tcp_session_has_exactly_the_planned_packets() {
        let mut rng = Rng::new(1);
        for packets in 7..40 {
            for rst in [true, false] {
                let plan = TcpPlan {
                    packets,
                    rst,
                    upload: packets % 2 == 0,
                };
                let mut session = TcpSession::new(endpoints(&mut rng), plan, &mut rng);
                let expected = packets.max(TcpPlan::min_packets(rst));
                assert_eq!(
                    run(&mut session, &mut rng).len() as u64,
                    expected,
                    "{plan:?}"
                );
            }
        }
    }

    #[test]
    fn tcp_session_sequence_numbers_are_consistent() {
        let mut rng = Rng::new(2);
        let plan = TcpPlan {
            packets: 20,
            rst: false,
            upload: false,
        };
        let mut session = TcpSession::new(endpoints(&mut rng), plan, &mut rng);
        let frames = run(&mut session, &mut rng);
        let field = |f: &[u8], at: usize| u32::from_be_bytes(f[at..at + 4].try_into().unwrap());
        let flags: Vec<u8> = frames.iter().map(|f| f[47]).collect();
        assert_eq!(&flags[..3], &[SYN, SYN | ACK, ACK]);
        assert_eq!(&flags[flags.len() - 3..], &[FIN | ACK, FIN | ACK, ACK]);
        // SYN-ACK acknowledges ISN + 1; the final ACK acknowledges the client FIN.
        assert_eq!(field(&frames[1], 42), field(&frames[0], 38).wrapping_add(1));
        let client_fin = &frames[frames.len() - 2];
        assert_eq!(
            field(&frames[frames.len() - 1], 42),
            field(client_fin, 38).wrapping_add(1)
        );
        // Every server data segment starts where the previous one ended.
        let server_data: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|f| f[34..36] == 443u16.to_be_bytes() && f.len() > 60)
            .collect();
        for pair in server_data.windows(2) {
            let len = u32::try_from(pair[0].len() - 54).unwrap();
            assert_eq!(field(pair[1], 38), field(pair[0], 38).wrapping_add(len));
        }
    }

    #[test]
    fn decimal_label_renders_digits() {
        let mut buf = [0u8; 11];
        assert_eq!(decimal_label(&mut buf, b'h', 0), b"h0");
        assert_eq!(decimal_label(&mut buf, b'h', 99_999), b"h99999");
        assert_eq!(decimal_label(&mut buf, b'x', u32::MAX), b"x4294967295");
    }

    #[test]
    fn ping_alternates_request_and_reply() {
        let mut rng = Rng::new(3);
        let mut session = IcmpSession::new(endpoints(&mut rng), 3, &mut rng);
        let mut out = Vec::new();
        let mut types = Vec::new();
        loop {
            let next = session.next_frame(&mut out);
            types.push(out[34]);
            if next.is_none() {
                break;
            }
        }
        assert_eq!(types, [8, 0, 8, 0, 8, 0]);
    }
}
