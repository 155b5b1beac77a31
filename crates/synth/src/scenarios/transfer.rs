//! `bulk-transfer`: one large, healthy TCP transfer: the busy conversation flood rules
//! must not mistake for a flood, and, sent the other way, the upload an exfiltration
//! rule must tell from a download.
//!
//! Owns [`bulk_transfer`] and its ground truth. A protected client (10.201.0.50, or
//! `fd00:201::50`) fetches `bytes` from an outside server (198.18.0.80, or
//! `2001:db8::80`) port 80 over one connection: handshake, request, full-sized segments
//! at a constant `bits_per_second` of payload, one delayed ACK per two segments, FIN
//! teardown. Every packet belongs to one established, answered flow. With `upload` the
//! client sends the data (to port 443) and the server acknowledges it; with `internal`
//! the server is a protected host (10.201.0.80, or `fd00:201::80`), as for a backup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::{ACK, Endpoints, FIN, Hosts, PSH, SYN, seg};
use super::{
    DEFAULT_SEED, DEFAULT_START, NANOS_PER_SEC, ScenarioError, Tally, TraceTotals, require,
};
use crate::rng::{Draw as _, Rng};

/// Round-trip time between client and server.
const RTT_NS: u64 = 20_000_000;
/// Bytes of the HTTP request.
const REQUEST_BYTES: usize = 180;

/// Parameters of [`bulk_transfer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferParams {
    /// Payload bytes downloaded.
    pub bytes: u64,
    /// Payload rate in bits per second of trace time.
    pub bits_per_second: u64,
    /// Over IPv6 instead of IPv4.
    pub ipv6: bool,
    /// The client sends the data instead of receiving it.
    pub upload: bool,
    /// The server is a protected host instead of an outside one.
    pub internal: bool,
    /// Time of the SYN.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for TransferParams {
    fn default() -> TransferParams {
        TransferParams {
            bytes: 300_000_000,
            bits_per_second: 50_000_000,
            ipv6: false,
            upload: false,
            internal: false,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`bulk_transfer`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransferTruth {
    /// All frames.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The protected host that opens the connection.
    pub client: IpAddr,
    /// The server it downloads from (or uploads to).
    pub server: IpAddr,
    /// The data went from the client to the server.
    pub upload: bool,
    /// Data segments (from the server, or the client in an upload).
    pub data_packets: u64,
    /// ACKs of data (from the other side).
    pub ack_packets: u64,
    /// Time of the first data segment (ns since the epoch).
    pub data_start_ns: u64,
    /// Time of the last data segment (ns since the epoch).
    pub data_end_ns: u64,
}

/// Generates one bulk download (or upload).
///
/// # Errors
/// [`ScenarioError`] if `bytes` or `bits_per_second` is 0.
pub fn bulk_transfer(
    params: &TransferParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<TransferTruth, ScenarioError> {
    require(params.bytes > 0, "bytes", "must be > 0")?;
    require(params.bits_per_second > 0, "bits_per_second", "must be > 0")?;
    let mut rng = Rng::stream(params.seed, 20);
    let (hosts, client, server) = hosts(params.ipv6, params.internal);
    let ports = (
        rng.between_u16(32768, 60999),
        if params.upload { 443 } else { 80 },
    );
    let mut ep = Endpoints::new(hosts, ports, None, true, &mut rng);
    let mss: u64 = if params.ipv6 { 1440 } else { 1460 };
    let mut tally = Tally::new(emit);
    let mut frame = Vec::with_capacity(1600);
    let mut truth = TransferTruth {
        totals: TraceTotals::default(),
        client,
        server,
        upload: params.upload,
        data_packets: 0,
        ack_packets: 0,
        data_start_ns: 0,
        data_end_ns: 0,
    };
    let t0 = params.start.as_nanos();
    let (mut c, mut s) = (rng.next_u32(), rng.next_u32());
    let mut send = |ep: &mut Endpoints, at: u64, from_client: bool, segment| {
        ep.write_tcp(&mut frame, from_client, segment);
        tally.emit(at, &frame);
    };
    send(&mut ep, t0, true, seg(c, 0, SYN, 0));
    send(
        &mut ep,
        t0 + RTT_NS / 2,
        false,
        seg(s, c.wrapping_add(1), SYN | ACK, 0),
    );
    (c, s) = (c.wrapping_add(1), s.wrapping_add(1));
    send(&mut ep, t0 + RTT_NS, true, seg(c, s, ACK, 0));
    send(
        &mut ep,
        t0 + RTT_NS + 50_000,
        true,
        seg(c, s, PSH | ACK, REQUEST_BYTES),
    );
    c = c.wrapping_add(u32::try_from(REQUEST_BYTES).unwrap_or(0));
    // Payload time per full segment, exact in total: segment k leaves at k·mss·8/rate.
    let data_start = t0 + 2 * RTT_NS;
    let at_byte = |offset: u64| {
        let ns =
            u128::from(offset) * 8 * u128::from(NANOS_PER_SEC) / u128::from(params.bits_per_second);
        data_start.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    };
    let mut offset = 0u64;
    truth.data_start_ns = data_start;
    // From here `s` is the data sender's sequence and `c` the acknowledging side's: in
    // an upload the client sends and the server acknowledges.
    let client_acks = !params.upload;
    if params.upload {
        (c, s) = (s, c);
    }
    while offset < params.bytes {
        let len = mss.min(params.bytes - offset);
        let at = at_byte(offset);
        let next = at_byte(offset + len);
        let last = offset + len == params.bytes;
        let flags = if last { PSH | ACK } else { ACK };
        let len_usize = usize::try_from(len).unwrap_or(0);
        send(&mut ep, at, !client_acks, seg(s, c, flags, len_usize));
        s = s.wrapping_add(u32::try_from(len).unwrap_or(0));
        truth.data_packets += 1;
        truth.data_end_ns = at;
        if truth.data_packets.is_multiple_of(2) || last {
            // Between this segment and the next, so frames stay in time order.
            send(
                &mut ep,
                at + (next - at) / 2,
                client_acks,
                seg(c, s, ACK, 0),
            );
            truth.ack_packets += 1;
        }
        offset += len;
    }
    let end = truth.data_end_ns + RTT_NS;
    send(&mut ep, end, !client_acks, seg(s, c, FIN | ACK, 0));
    send(
        &mut ep,
        end + RTT_NS / 2,
        client_acks,
        seg(c, s.wrapping_add(1), FIN | ACK, 0),
    );
    let fin_ack = seg(s.wrapping_add(1), c.wrapping_add(1), ACK, 0);
    send(&mut ep, end + RTT_NS, !client_acks, fin_ack);
    truth.totals = tally.totals;
    Ok(truth)
}

/// The client and server of a transfer, as [`Hosts`] and as addresses.
fn hosts(ipv6: bool, internal: bool) -> (Hosts, IpAddr, IpAddr) {
    if ipv6 {
        let client = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x50);
        let server = if internal {
            Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x80)
        } else {
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80)
        };
        let hosts = Hosts::V6 { client, server };
        (hosts, IpAddr::V6(client), IpAddr::V6(server))
    } else {
        let client = Ipv4Addr::new(10, 201, 0, 50);
        let server = if internal {
            Ipv4Addr::new(10, 201, 0, 80)
        } else {
            Ipv4Addr::new(198, 18, 0, 80)
        };
        let hosts = Hosts::V4 { client, server };
        (hosts, IpAddr::V4(client), IpAddr::V4(server))
    }
}
