//! `netwarden-synth`: deterministic synthetic traffic (frames, pcap files and attack/benign
//! scenarios) for netwarden's tests, benchmarks and fixtures.
//!
//! netwarden may not commit third-party captures, so fixtures, benchmarks and detection
//! tests use traffic made here. The daemon never links this crate: it is a dev-dependency
//! of `netwarden` and depends on the `netwarden` library only for `Timestamp` (and, in its
//! tests, the decoder). Owns:
//! - [`rng`]: the distributions scenarios draw ([`Draw`]) over netwarden's one seeded
//!   generator, `netwarden::rng::Rng` (`xoshiro256**` seeded by `SplitMix64`). No `rand` crate.
//! - [`checksum`]: the Internet checksum (RFC 1071).
//! - [`frame`]: [`FrameSpec`], a frame builder writing Ethernet/802.1Q (or raw IP, or Linux
//!   SLL) + IPv4/IPv6 + TCP/UDP/ICMP echo into a reused `Vec<u8>`.
//! - [`dns`]: DNS query/response payloads.
//! - [`pcap_writer`]: classic libpcap file output.
//! - [`scenarios`]: streaming scenario generators (`mix`, floods, scans, DNS abuse) that
//!   report their ground truth.
//! - [`pcapgen`]: the `netwarden-pcapgen` command line as a library, so tests get the same
//!   capture and ground truth in-process as from the binary (`src/bin/netwarden-pcapgen.rs`).
//!
//! Does not own: decoding (`netwarden::decode`) or capture input.
//!
//! # Invariants
//! - Same parameters and seed give the same bytes on every platform: generators use only
//!   integer arithmetic and exactly rounded IEEE-754 operations (see [`rng`]), never libm.
//! - Generators stream: memory is bounded by the number of concurrently active sessions,
//!   never by the number of packets.
//! - Inputs here are our own parameters, not packet data; nothing in this crate parses
//!   untrusted bytes.

pub mod checksum;
pub mod dns;
pub mod frame;
pub mod pcap_writer;
pub mod pcapgen;
pub mod rng;
pub mod scenarios;

pub use dns::{DnsAnswers, DnsMessage};
pub use frame::{
    EthernetSpec, FrameSpec, IcmpEchoSpec, IpSpec, Ipv4Spec, Ipv6Spec, LinkSpec, Payload, TcpSpec,
    TransportSpec, UdpSpec,
};
pub use pcap_writer::{PcapLinkType, PcapWriter};
pub use rng::{Draw, Rng};
