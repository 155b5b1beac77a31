#![allow(clippy::unwrap_used)] // Benchmark set-up: a failed unwrap is a broken benchmark.

//! Criterion benchmarks of the hot path: decoding, flow-table updates, and the whole
//! per-frame pipeline (decode + classify + count + flow), on traffic generated in memory by
//! `netwarden_synth` (a realistic gateway mix, and a spoofed-source SYN flood).
//!
//!     cargo bench --bench pipeline
//!
//! Throughput is reported in frames per second on one core.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netwarden::capture::Frame;
use netwarden::decode::{LinkType, Transport, decode_frame};
use netwarden::flow::{FlowKey, FlowTable, FlowTableConfig};
use netwarden::networks::NetworkSet;
use netwarden::pipeline::{Pipeline, PipelineOptions};
use netwarden::telemetry::TopTalkerBoard;
use netwarden::timestamp::Timestamp;
use netwarden_synth::scenarios::{MixParams, SynFloodParams, mix, syn_flood};

/// Frames stored back to back, so iterating them is cache-friendly and allocation-free.
struct Trace {
    bytes: Vec<u8>,
    frames: Vec<(Timestamp, usize, usize)>,
}

impl Trace {
    fn collect(generate: impl FnOnce(&mut dyn FnMut(Timestamp, &[u8]))) -> Trace {
        let mut t = Trace {
            bytes: Vec::new(),
            frames: Vec::new(),
        };
        generate(&mut |ts, data| {
            t.frames.push((ts, t.bytes.len(), data.len()));
            t.bytes.extend_from_slice(data);
        });
        t
    }

    fn iter(&self) -> impl Iterator<Item = Frame<'_>> {
        self.frames.iter().map(|&(ts, at, len)| {
            let data = self.bytes.get(at..at + len).unwrap_or(&[]);
            Frame {
                ts,
                link: LinkType::Ethernet,
                data,
                wire_len: u32::try_from(len).unwrap_or(u32::MAX),
            }
        })
    }

    fn len(&self) -> u64 {
        self.frames.len() as u64
    }
}

fn mix_trace() -> Trace {
    let params = MixParams {
        packets: 500_000,
        flows: 20_000,
        duration: Duration::from_secs(12),
        ..MixParams::default()
    };
    Trace::collect(|emit| {
        mix(&params, emit).unwrap();
    })
}

fn flood_trace() -> Trace {
    let params = SynFloodParams {
        packets: 500_000,
        sources: 300_000,
        ..SynFloodParams::default()
    };
    Trace::collect(|emit| {
        syn_flood(&params, emit).unwrap();
    })
}

fn pipeline() -> Pipeline {
    // The generator's clients and victims live in these ranges.
    let nets = [netwarden::config::NetworkConfig {
        name: "lan".to_owned(),
        cidrs: vec![
            "10.201.0.0/16".parse().unwrap(),
            "fd00:201::/64".parse().unwrap(),
        ],
    }];
    Pipeline::new(PipelineOptions {
        flows: FlowTableConfig::default(),
        networks: Arc::new(NetworkSet::new(&nets)),
        top_talkers: Arc::new(TopTalkerBoard::new(10).unwrap()),
        top_talkers_window: Duration::from_secs(10),
        worker_index: 0,
    })
}

fn benches(c: &mut Criterion) {
    for (name, trace) in [("mix", mix_trace()), ("syn_flood", flood_trace())] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(trace.len()));
        g.sample_size(20);

        g.bench_function("decode", |b| {
            b.iter(|| {
                for f in trace.iter() {
                    black_box(decode_frame(f.link, black_box(f.data)));
                }
            });
        });

        let updates: Vec<_> = trace
            .iter()
            .filter_map(|f| {
                let d = decode_frame(f.link, f.data);
                let flags = match d.transport {
                    Transport::Tcp(t) => Some(t.flags),
                    _ => None,
                };
                FlowKey::from_decoded(&d).map(|(k, s)| (k, s, f.ts, f.wire_len, flags))
            })
            .collect();
        g.bench_function("flow_update", |b| {
            b.iter(|| {
                let mut table = FlowTable::new(FlowTableConfig::default());
                for &(key, side, ts, len, flags) in &updates {
                    black_box(table.update(key, side, ts, len, flags, &mut |_, _| {}));
                }
            });
        });

        g.bench_function("pipeline", |b| {
            b.iter(|| {
                let mut p = pipeline();
                for f in trace.iter() {
                    p.process(&f);
                }
                black_box(p.totals().packets)
            });
        });
        g.finish();
    }
}

criterion_group!(pipeline_benches, benches);
criterion_main!(pipeline_benches);
