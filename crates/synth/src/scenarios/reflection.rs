//! `reflection`: UDP reflection and amplification through one reflector service, or the
//! same service used as it normally is.
//!
//! Owns [`reflection`] and its ground truth. Reflectors answer a victim whose address was
//! spoofed; each request brings `responses_per_request` responses whose sizes follow the
//! service's published abuse (NTP `monlist`, memcached `stats`, DNS `ANY`, SSDP and
//! WS-Discovery probes, CLDAP searches, chargen, SNMP `GetBulk`). Layouts:
//! - `inbound`: the victim is protected (10.201.0.50), the reflectors outside
//!   (198.18.128.1 upward);
//! - `internal`: victim and reflectors protected (reflectors 10.201.5.1 upward), the
//!   reflectors beside the victim;
//! - `outbound`: our servers (10.201.5.1 upward) are the reflectors, the victim outside
//!   (198.18.0.66).
//!
//! With `requests` the spoofed requests are on the link too (each just before its
//! responses); without, only the responses are. With `normal` the service is used as it
//! should be: every request is the victim's own and brings one response of ordinary size
//! (a factor of 1 to 4), as a busy client or server of the service sees.
//! Responses larger than a frame are split into several full-sized datagrams (IP
//! fragmentation is not modelled).

use std::net::{IpAddr, Ipv4Addr};

use netwarden::timestamp::Timestamp;
use serde::Serialize;

use super::endpoints::link;
use super::{
    DEFAULT_SEED, DEFAULT_START, ScenarioError, Tally, TraceTotals, rate_offset_ns, require,
};
use crate::dns::{DnsAnswers, DnsMessage, rtype};
use crate::frame::{FrameSpec, IpSpec, Ipv4Spec, Payload, TransportSpec, UdpSpec};
use crate::rng::{Draw as _, Rng};

/// First outside reflector: 198.18.128.1.
const OUTSIDE_REFLECTOR: u32 = 0xc612_8001;
/// First protected reflector: 10.201.5.1.
const INSIDE_REFLECTOR: u32 = 0x0ac9_0501;
/// Most reflectors.
const MAX_REFLECTORS: u32 = 250;
/// The name DNS reflectors are asked about.
const NAME: [&[u8]; 2] = [b"example", b"org"];
/// The victim port reflections are aimed at.
const ATTACKED_PORT: u16 = 443;

/// A UDP service abused as a reflector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReflectorService {
    Dns,
    Ntp,
    Ssdp,
    Memcached,
    Cldap,
    Chargen,
    Snmp,
    WsDiscovery,
}

/// Sizes of one exchange: UDP payload bytes of a request and of each response, and
/// responses per request.
struct Exchange {
    request: usize,
    response: usize,
    responses: u64,
}

impl ReflectorService {
    /// The service's UDP port.
    pub fn port(self) -> u16 {
        match self {
            ReflectorService::Dns => 53,
            ReflectorService::Ntp => 123,
            ReflectorService::Ssdp => 1900,
            ReflectorService::Memcached => 11211,
            ReflectorService::Cldap => 389,
            ReflectorService::Chargen => 19,
            ReflectorService::Snmp => 161,
            ReflectorService::WsDiscovery => 3702,
        }
    }

    /// An abusive exchange (DNS sizes are those of its messages, set elsewhere).
    fn abused(self) -> Exchange {
        let (request, response, responses) = match self {
            ReflectorService::Dns => (0, 0, 1),
            ReflectorService::Ntp => (8, 468, 10),
            ReflectorService::Ssdp => (94, 320, 10),
            ReflectorService::Memcached => (15, 1400, 20),
            ReflectorService::Cldap => (52, 1400, 2),
            ReflectorService::Chargen => (1, 512, 1),
            ReflectorService::Snmp => (60, 1400, 1),
            ReflectorService::WsDiscovery => (20, 1400, 2),
        };
        Exchange {
            request,
            response,
            responses,
        }
    }

    /// An ordinary exchange.
    fn normal(self) -> Exchange {
        let (request, response) = match self {
            ReflectorService::Dns => (0, 0),
            ReflectorService::Ntp => (48, 48),
            ReflectorService::Ssdp => (94, 320),
            ReflectorService::Memcached => (40, 120),
            ReflectorService::Cldap => (52, 180),
            ReflectorService::Chargen => (1, 74),
            ReflectorService::Snmp => (60, 120),
            ReflectorService::WsDiscovery => (700, 1000),
        };
        Exchange {
            request,
            response,
            responses: 1,
        }
    }
}

/// Where victim and reflectors are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReflectionLayout {
    Inbound,
    Internal,
    Outbound,
}

/// Parameters of [`reflection`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReflectionParams {
    /// The service reflecting.
    pub service: ReflectorService,
    /// Where victim and reflectors are.
    pub layout: ReflectionLayout,
    /// Responses sent.
    pub packets: u64,
    /// Responses per second of trace time.
    pub pps: u64,
    /// Reflectors, used round-robin (at most 250).
    pub reflectors: u32,
    /// The spoofed requests are on the link too.
    pub requests: bool,
    /// Ordinary use instead of abuse.
    pub normal: bool,
    /// Time of the first request or response.
    pub start: Timestamp,
    /// Seed.
    pub seed: u64,
}

impl Default for ReflectionParams {
    fn default() -> ReflectionParams {
        ReflectionParams {
            service: ReflectorService::Ntp,
            layout: ReflectionLayout::Inbound,
            packets: 20_000,
            pps: 10_000,
            reflectors: 20,
            requests: false,
            normal: false,
            start: DEFAULT_START,
            seed: DEFAULT_SEED,
        }
    }
}

/// Ground truth of a [`reflection`] trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReflectionTruth {
    /// All frames.
    #[serde(flatten)]
    pub totals: TraceTotals,
    /// The service.
    pub service: ReflectorService,
    /// Its UDP port.
    pub port: u16,
    /// The victim (the destination of the responses).
    pub victim: Ipv4Addr,
    /// The reflectors that answered.
    pub reflectors: Vec<Ipv4Addr>,
    /// Response frames.
    pub responses: u64,
    /// Request frames on the link.
    pub requests: u64,
    /// Wire bytes of the responses.
    pub response_bytes: u64,
    /// Wire bytes of the requests.
    pub request_bytes: u64,
    /// Time of the first frame (ns since the epoch).
    pub attack_start_ns: u64,
}

/// Generates reflected responses of one service (and the requests, if asked).
///
/// # Errors
/// [`ScenarioError`] for zero `pps` or `reflectors` outside `1..=250`.
pub fn reflection(
    params: &ReflectionParams,
    emit: impl FnMut(Timestamp, &[u8]),
) -> Result<ReflectionTruth, ScenarioError> {
    require(params.pps > 0, "pps", "must be > 0")?;
    let ok = (1..=MAX_REFLECTORS).contains(&params.reflectors);
    require(ok, "reflectors", "must be in 1..=250")?;
    let (victim, first) = match params.layout {
        ReflectionLayout::Inbound => (Ipv4Addr::new(10, 201, 0, 50), OUTSIDE_REFLECTOR),
        ReflectionLayout::Internal => (Ipv4Addr::new(10, 201, 0, 50), INSIDE_REFLECTOR),
        ReflectionLayout::Outbound => (Ipv4Addr::new(198, 18, 0, 66), INSIDE_REFLECTOR),
    };
    let service = params.service;
    let exchange = if params.normal {
        service.normal()
    } else {
        service.abused()
    };
    let requests = params.requests || params.normal;
    let mut rng = Rng::stream(params.seed, 60);
    let mut tally = Tally::new(emit);
    let mut frame = Vec::with_capacity(1600);
    let mut truth = ReflectionTruth {
        totals: TraceTotals::default(),
        service,
        port: service.port(),
        victim,
        reflectors: Vec::new(),
        responses: 0,
        requests: 0,
        response_bytes: 0,
        request_bytes: 0,
        attack_start_ns: 0,
    };
    let victim_inside = params.layout != ReflectionLayout::Outbound;
    let reflector_inside = params.layout != ReflectionLayout::Inbound;
    let request = payload(service, &exchange, params.normal, false);
    let response = payload(service, &exchange, params.normal, true);
    let mut victim_port = 0;
    for j in 0..params.packets {
        let round = j / exchange.responses;
        let k = u32::try_from(round % u64::from(params.reflectors)).unwrap_or(0);
        let reflector = Ipv4Addr::from(first + k);
        let at = params
            .start
            .as_nanos()
            .saturating_add(rate_offset_ns(j, params.pps));
        if j % exchange.responses == 0 {
            victim_port = if params.normal {
                rng.between_u16(1024, 65535)
            } else {
                // Attack tools aim the reflections at one port of the victim.
                ATTACKED_PORT
            };
            if requests {
                let to = (victim, victim_port, reflector, service.port());
                write(&mut frame, to, victim_inside, &request);
                tally.emit(at, &frame);
                truth.requests += 1;
                truth.request_bytes += u64::try_from(frame.len()).unwrap_or(0);
            }
            if truth.reflectors.last().is_none_or(|&r| r < reflector) {
                truth.reflectors.push(reflector);
            }
        }
        let from = (reflector, service.port(), victim, victim_port);
        write(&mut frame, from, reflector_inside, &response);
        tally.emit(at, &frame);
        truth.responses += 1;
        truth.response_bytes += u64::try_from(frame.len()).unwrap_or(0);
    }
    truth.totals = tally.totals;
    truth.attack_start_ns = truth.totals.first_ts_ns;
    Ok(truth)
}

/// The UDP payload of a request or response of `service`, abused or `normal`.
fn payload(
    service: ReflectorService,
    exchange: &Exchange,
    normal: bool,
    response: bool,
) -> Vec<u8> {
    if service != ReflectorService::Dns {
        let len = if response {
            exchange.response
        } else {
            exchange.request
        };
        return vec![0x5a; len];
    }
    let addrs = [
        IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2)),
    ];
    let query = DnsMessage::query(0x4e57, &NAME, if normal { rtype::A } else { rtype::ANY });
    let message = match (response, normal) {
        (false, _) => query,
        (true, true) => query.answer(DnsAnswers::Addrs {
            addrs: &addrs,
            ttl: 300,
        }),
        // About 3,000 bytes of TXT records.
        (true, false) => query.answer(DnsAnswers::Opaque {
            rtype: rtype::TXT,
            count: 7,
            rdata_len: 400,
            ttl: 3600,
        }),
    };
    let mut out = Vec::new();
    message.write(&mut out);
    out
}

/// Writes one UDP frame (src, src port, dst, dst port) into `frame`.
fn write(
    frame: &mut Vec<u8>,
    (src, sp, dst, dp): (Ipv4Addr, u16, Ipv4Addr, u16),
    from_inside: bool,
    payload: &[u8],
) {
    frame.clear();
    FrameSpec {
        link: link(from_inside, None),
        ip: IpSpec::V4(Ipv4Spec {
            dont_fragment: false,
            ..Ipv4Spec::new(src, dst)
        }),
        transport: TransportSpec::Udp(UdpSpec {
            src_port: sp,
            dst_port: dp,
        }),
        payload: Payload::Bytes(payload),
        l4_checksum: true,
    }
    .write(frame);
}
