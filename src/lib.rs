//! netwarden: a network-security telemetry monitor for Linux gateways.
//!
//! The crate is a library with a thin binary (`src/main.rs`), so tests, benches and fuzz
//! targets drive the same code as the daemon. Data flows one way through the modules:
//!
//! ```text
//! capture ──> decode ──> flow ──> (detect) ──> metrics / alerts
//!   │           │          │
//!   │           │          └─ flow/      bidirectional flow table, bounded, packet-clock timeouts
//!   │           └─ decode/   zero-copy, panic-free wire parsers → Decoded summary
//!   └─ capture/  AF_PACKET (pnet, PACKET_FANOUT) and pcap/pcapng files → Frame
//!
//! pipeline/  the synchronous hot loop: Frame → decode → flow → per-worker counters
//! telemetry/ Prometheus registry and metric definitions, top-talker sketch, firing alerts
//! health/    self-alerts: the daemon judges its own metrics and alerts when it goes blind
//! vocabulary severities, alert states and kinds: the words config and alerts share
//! app/       daemon lifecycle: threads, tokio edges (HTTP, signals), replay driver
//! admin/     the /metrics endpoint: timeouts, connection cap, TLS and basic auth
//! config/    TOML schema, defaults, validation with file:line:key errors
//! protection graded protection: host groups as assets (level, data grade), severity matrix
//! rng.rs     the one seeded PRNG: retry jitter here, traffic in crates/synth
//! tls.rs     rustls provider and PEM files, for the endpoint and alert delivery
//!
//! cidr_map      the CIDR prefix lookup shared by networks, blocklists and host groups
//! space_saving  the space-saving top-K shared by detection and telemetry
//! prefetch      cache prefetch hints for the hot path (ring frames, flow index)
//! ```
//!
//! Leaves: `vocabulary`, `timestamp`, `decode`, `rng` depend on nothing else in the crate;
//! `config` depends only on `vocabulary`.
//!
//! The traffic generator used by tests and benches is a crate of its own,
//! `crates/synth` (`netwarden-synth`, binary `netwarden-pcapgen`); the daemon does not link it.

pub mod admin;
pub mod alert;
pub mod app;
pub mod capture;
pub mod cidr_map;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod health;
pub mod networks;
pub mod pipeline;
mod prefetch;
pub mod protection;
pub mod rng;
pub mod space_saving;
pub mod telemetry;
pub mod timestamp;
pub mod tls;
pub mod vocabulary;
