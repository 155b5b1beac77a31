//! Deterministic synthetic traffic: frames, pcap files and attack/benign scenarios.
//!
//! netwarden may not commit third-party captures, so fixtures, benchmarks and detection
//! tests use traffic made here. Owns:
//! - [`rng`]: a small seeded PRNG (`xoshiro256**` seeded by `SplitMix64`). No `rand` crate.
//! - [`checksum`]: the Internet checksum (RFC 1071).
//! - [`frame`]: [`FrameSpec`], a frame builder writing Ethernet/802.1Q (or raw IP, or Linux
//!   SLL) + IPv4/IPv6 + TCP/UDP/ICMP echo into a reused `Vec<u8>`.
//! - [`dns`]: DNS query/response payloads.
//! - [`pcap_writer`]: classic libpcap file output.
//! - [`scenarios`]: streaming scenario generators (`mix`, floods, scans, DNS abuse) that
//!   report their ground truth.
//!
//! Does not own: decoding (`decode`), capture input, or the CLI (`src/bin/netwarden-pcapgen.rs`).
//!
//! # Invariants
//! - Same parameters and seed give the same bytes on every platform: generators use only
//!   integer arithmetic and exactly rounded IEEE-754 operations (see [`rng`]), never libm.
//! - Generators stream: memory is bounded by the number of concurrently active sessions,
//!   never by the number of packets.
//! - Inputs here are our own parameters, not packet data; nothing in this module parses
//!   untrusted bytes.

pub mod checksum;
pub mod dns;
pub mod frame;
pub mod pcap_writer;
pub mod rng;
pub mod scenarios;

pub use dns::{DnsAnswers, DnsMessage};
pub use frame::{
    EthernetSpec, FrameSpec, IcmpEchoSpec, IpSpec, Ipv4Spec, Ipv6Spec, LinkSpec, Payload, TcpSpec,
    TransportSpec, UdpSpec,
};
pub use pcap_writer::{PcapLinkType, PcapWriter};
pub use rng::Rng;
