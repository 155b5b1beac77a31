//! `exfiltration`: data leaving the protected networks, per protected source.
//!
//! - **Key:** the source, a protected host sending to outside addresses. Only outbound
//!   packets count, and only their TCP and UDP payload bytes: a download sends
//!   acknowledgements without payload, and a backup between protected hosts is internal,
//!   not outbound. The alert's asset is the source.
//! - **Value:** the source's payload bytes over the span, the last `windows` windows (the
//!   running one included), sliding by one window. The same is kept per (source,
//!   destination) pair.
//! - **Bound** of a source: the larger of its data grade's floor (`threshold`,
//!   `important_threshold`, `core_threshold`, by the host group of the source) and
//!   `headroom` times its usual volume. The condition holds when the source's span bytes
//!   reach its bound, or its span bytes to one destination it had not sent to before
//!   reach the bound divided by `new_destination_factor`.
//! - **Learned usual volume:** the largest span a source sent at the end of a window,
//!   decaying with half-life `memory`. A peak is learned once it has passed (the span is
//!   down to half of it) and the source is under its bound: while a transfer grows or is
//!   over its bound the usual volume stays where it was, so a transfer cannot teach itself
//!   normal half-way; after it, the usual volume includes it (a backup server alerts on
//!   its first large run, then only on runs beyond `headroom` times its usual). A host
//!   that never uploads is judged by its floor.
//! - **First-seen destinations:** a pair is new when a bloom filter of the pairs earlier
//!   windows saw under their bound holds neither generation of it (2^16 bits per
//!   generation, two generations; the older is dropped when the newer has taken
//!   [`BLOOM_CAPACITY`] pairs). A pair is judged when its table entry is first rolled, and
//!   a new one stays new for its first span (`windows` windows): the factor applies to
//!   what a source sends in the first minute of contact with an address.
//! - **Evidence:** the destinations (bytes over the span), and annotations `destination`,
//!   `bytes`, `duration`, `ports` (of the largest pair), `usual_share` (the value against
//!   the usual volume), `first_seen_destination` and `bound`.
//!
//! Memory is bounded whatever the traffic: a source table and a pair table of `max_keys`
//! entries each, where a full bucket evicts its lightest entry (bytes plus learned
//! volume), and the fixed bloom filter. Spoofed or scattered traffic evicts light pairs;
//! a real transfer is heavy.
//!
//! Several workers: only the running window's counts merge (bytes add, first and last
//! packet times take the extremes, services merge as space-saving lists); the completed
//! windows, the usual volume and the bloom filter are the evaluator's own.

use std::net::IpAddr;

use super::{Hashes, contributors, ip_from_bits, service_name};
use crate::alert::ContributorKind;
use crate::config::{ExfiltrationParams, MAX_EXFILTRATION_WINDOWS};
use crate::detect::scope::Scope;
use crate::detect::sketch::{KeyTable, Merge, Reset, TopK, Weight, hash128, ip_bits, mix64};
use crate::detect::{AlertKey, Finding, PacketView, Rule};
use crate::networks::Direction;
use crate::timestamp::Timestamp;
use crate::vocabulary::DataGrade;

/// Completed windows an accumulator keeps (the span's others).
const DONE: usize = MAX_EXFILTRATION_WINDOWS as usize - 1;

/// 64-bit words per bloom generation: 2^16 bits.
const BLOOM_WORDS: usize = 1024;

/// Pairs one bloom generation takes before the older is dropped: 8 bits per pair and two
/// probes, about 5 % false positives when full.
pub(super) const BLOOM_CAPACITY: u32 = 8192;

/// Destinations listed in an alert.
const LISTED: usize = 5;

/// Bytes of one running window plus the completed ones of the span.
#[derive(Clone, Copy, Default)]
struct Span {
    /// The running window's bytes.
    now: u64,
    /// Completed windows' bytes, a ring shared by position with every accumulator.
    done: [u64; DONE],
    /// Sum of the completed windows in the span.
    sum: u64,
}

impl Span {
    fn total(&self) -> u64 {
        self.now.saturating_add(self.sum)
    }

    /// Ends the running window: it replaces the oldest completed one at `pos` of a ring
    /// of `len`.
    fn roll(&mut self, pos: usize, len: usize) {
        if let Some(slot) = self.done.get_mut(pos).filter(|_| len > 0) {
            self.sum = self.sum.saturating_sub(*slot).saturating_add(self.now);
            *slot = self.now;
        }
        self.now = 0;
    }
}

#[derive(Default)]
pub(super) struct SourceAcc {
    span: Span,
    /// The usual span volume the bound is judged by.
    usual: f64,
    /// The usual volume including spans over the bound, adopted once back under it.
    candidate: f64,
}

impl Weight for SourceAcc {
    fn weight(&self) -> u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let usual = self.usual as u64;
        self.span.total().saturating_add(usual)
    }
}

impl Merge for SourceAcc {
    /// The running window's bytes: the span's history and usual volume are the
    /// evaluator's own.
    fn merge(&mut self, other: &SourceAcc) {
        self.span.now = self.span.now.saturating_add(other.span.now);
    }
}

impl Reset for SourceAcc {
    /// Small and without lists: the whole default.
    fn reset(&mut self) {
        *self = SourceAcc::default();
    }
}

/// Whether a pair's destination was new to its source.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Seen {
    /// Not rolled yet: judged by the bloom filter as it stands.
    #[default]
    Unjudged,
    Known,
    New,
}

#[derive(Default)]
pub(super) struct PairAcc {
    span: Span,
    /// First and last packet since the pair last had an empty span.
    first: Timestamp,
    last: Timestamp,
    /// Services (`protocol << 16 | destination port`) by bytes.
    services: TopK<u32, 4>,
    seen: Seen,
    /// Windows rolled since the pair's first packet.
    age: u32,
}

impl Weight for PairAcc {
    fn weight(&self) -> u64 {
        self.span.total()
    }
}

impl Merge for PairAcc {
    fn merge(&mut self, other: &PairAcc) {
        if other.span.now == 0 {
            return;
        }
        if self.first == Timestamp::ZERO || other.first < self.first {
            self.first = other.first;
        }
        self.last = self.last.max(other.last);
        self.span.now = self.span.now.saturating_add(other.span.now);
        self.services.merge(&other.services);
    }
}

impl Reset for PairAcc {
    fn reset(&mut self) {
        let PairAcc {
            span,
            first,
            last,
            services,
            seen,
            age,
        } = self;
        *span = Span::default();
        (*first, *last) = (Timestamp::ZERO, Timestamp::ZERO);
        services.reset();
        *seen = Seen::default();
        *age = 0;
    }
}

/// Two generations of a bloom filter of (source, destination) pair hashes.
struct Bloom {
    newer: Vec<u64>,
    older: Vec<u64>,
    taken: u32,
}

impl Bloom {
    fn new() -> Bloom {
        Bloom {
            newer: vec![0; BLOOM_WORDS],
            older: vec![0; BLOOM_WORDS],
            taken: 0,
        }
    }

    /// The two bits of `hash`, as (word, mask) pairs.
    fn probes(hash: u64) -> [(usize, u64); 2] {
        let bits = BLOOM_WORDS * 64;
        let again = mix64(hash);
        [hash, again].map(|h| {
            let bit = usize::try_from(h).unwrap_or(0) % bits;
            (bit / 64, 1u64 << (bit % 64))
        })
    }

    fn holds(words: &[u64], hash: u64) -> bool {
        Bloom::probes(hash)
            .iter()
            .all(|&(w, mask)| words.get(w).is_some_and(|v| v & mask != 0))
    }

    fn contains(&self, hash: u64) -> bool {
        Bloom::holds(&self.newer, hash) || Bloom::holds(&self.older, hash)
    }

    fn insert(&mut self, hash: u64) {
        if Bloom::holds(&self.newer, hash) {
            return;
        }
        if self.taken >= BLOOM_CAPACITY {
            std::mem::swap(&mut self.newer, &mut self.older);
            self.newer.fill(0);
            self.taken = 0;
        }
        for (w, mask) in Bloom::probes(hash) {
            if let Some(v) = self.newer.get_mut(w) {
                *v |= mask;
            }
        }
        self.taken += 1;
    }

    fn clear(&mut self) {
        self.newer.fill(0);
        self.older.fill(0);
        self.taken = 0;
    }
}

pub(in crate::detect) struct Exfiltration {
    pub(super) sources: KeyTable<IpAddr, SourceAcc>,
    pub(super) pairs: KeyTable<(IpAddr, IpAddr), PairAcc>,
    known: Bloom,
    /// Windows in the span.
    windows: u32,
    /// Completed windows in the span (`windows - 1`), and the ring's oldest.
    done_len: usize,
    pos: usize,
    floors: [f64; 3],
    headroom: f64,
    /// The usual volume's factor per window: 2^(-window / memory).
    decay: f64,
    new_factor: f64,
}

/// Hash of a pair from its source's hash and its destination's.
fn pair_hash(src: u64, dst: u64) -> u64 {
    src ^ mix64(dst)
}

impl Exfiltration {
    pub(super) fn new(rule: &Rule, p: &ExfiltrationParams) -> Exfiltration {
        let grades = [DataGrade::General, DataGrade::Important, DataGrade::Core];
        let memory = p.memory.0.as_secs_f64().max(1e-3);
        Exfiltration {
            sources: KeyTable::new(rule.max_keys),
            pairs: KeyTable::new(rule.max_keys),
            known: Bloom::new(),
            windows: p.windows,
            done_len: usize::try_from(p.windows.saturating_sub(1))
                .unwrap_or(0)
                .min(DONE),
            pos: 0,
            floors: grades.map(|g| p.floor(g)),
            headroom: p.headroom,
            decay: (-rule.window.as_secs_f64() / memory).exp2(),
            new_factor: p.new_destination_factor,
        }
    }

    #[inline]
    pub(super) fn observe(&mut self, p: &PacketView<'_>, h: &mut Hashes) {
        if p.direction != Direction::Outbound || p.payload_len == 0 {
            return;
        }
        let bytes = u64::from(p.payload_len);
        let src_hash = h.src(p);
        if let Some(mut acc) = self.sources.entry_weighing(p.src, src_hash, bytes) {
            acc.span.now = acc.span.now.saturating_add(bytes);
        }
        let hash = pair_hash(src_hash, h.dst(p));
        if let Some(mut acc) = self.pairs.entry_weighing((p.src, p.dst), hash, bytes) {
            if acc.first == Timestamp::ZERO {
                acc.first = p.ts;
            }
            acc.last = acc.last.max(p.ts);
            acc.span.now = acc.span.now.saturating_add(bytes);
            let service = u32::from(p.protocol) << 16 | u32::from(p.dst_port);
            acc.services.add(service, bytes);
        }
    }

    /// The bound of source `src` with accumulator `acc`.
    fn bound(&self, rule: &Rule, src: IpAddr, acc: &SourceAcc) -> f64 {
        let group = match &rule.scope {
            Scope::Group(name, _) => Some(name.as_str()),
            _ => None,
        };
        let floor = match rule.protection.asset(Some(src), group).grade {
            DataGrade::General => self.floors[0],
            DataGrade::Important => self.floors[1],
            DataGrade::Core => self.floors[2],
        };
        floor.max(self.headroom * acc.usual)
    }

    /// Whether the pair of hash `hash` is new to its source.
    fn is_new(&self, acc: &PairAcc, hash: u64) -> bool {
        match acc.seen {
            Seen::Unjudged => !self.known.contains(hash),
            Seen::Known => false,
            Seen::New => true,
        }
    }

    /// Whether a pair's bytes cross its source's `bound`.
    fn pair_over(&self, acc: &PairAcc, hash: u64, bound: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let bytes = acc.span.total() as f64;
        let factor = if self.is_new(acc, hash) {
            self.new_factor
        } else {
            1.0
        };
        bytes >= bound / factor
    }

    /// The source's hash and its accumulator, for a pair's source.
    fn source_of(&self, src: IpAddr) -> (u64, Option<&SourceAcc>) {
        let hash = hash128(ip_bits(src));
        (hash, self.sources.get(src, hash))
    }

    /// Whether source `src` is over its bound (by its own bytes, or a pair's to a new
    /// destination), and the bound.
    fn judge(&self, rule: &Rule, src: IpAddr, acc: &SourceAcc) -> (bool, f64) {
        #[allow(clippy::cast_precision_loss)]
        let value = acc.span.total() as f64;
        let bound = self.bound(rule, src, acc);
        if value >= bound {
            return (true, bound);
        }
        // A pair is at most its source's bytes: below bound / factor none crosses.
        if value < bound / self.new_factor {
            return (false, bound);
        }
        let src_hash = hash128(ip_bits(src));
        let over = self.pairs.iter().any(|(&(s, d), p)| {
            s == src && self.pair_over(p, pair_hash(src_hash, hash128(ip_bits(d))), bound)
        });
        (over, bound)
    }

    pub(super) fn evaluate(&self, rule: &Rule, hold: &mut dyn FnMut(Finding)) {
        for (&src, acc) in self.sources.iter() {
            let (over, bound) = self.judge(rule, src, acc);
            if over {
                #[allow(clippy::cast_precision_loss)]
                let value = acc.span.total() as f64;
                let pairs = self.pairs_of(src);
                let src_hash = hash128(ip_bits(src));
                hold(self.finding(src, src_hash, value, bound, acc, &pairs));
            }
        }
    }

    /// The pairs of source `src`, the largest span first.
    fn pairs_of(&self, src: IpAddr) -> Vec<(IpAddr, &PairAcc)> {
        let mut pairs: Vec<_> = self
            .pairs
            .iter()
            .filter(|((s, _), p)| *s == src && p.span.total() > 0)
            .map(|(&(_, d), p)| (d, p))
            .collect();
        pairs.sort_by(|a, b| b.1.span.total().cmp(&a.1.span.total()).then(a.0.cmp(&b.0)));
        pairs
    }

    fn finding(
        &self,
        src: IpAddr,
        src_hash: u64,
        value: f64,
        bound: f64,
        acc: &SourceAcc,
        pairs: &[(IpAddr, &PairAcc)],
    ) -> Finding {
        let mut top: TopK<u128, LISTED> = TopK::default();
        for (dst, p) in pairs.iter().take(LISTED) {
            top.add(ip_bits(*dst), p.span.total());
        }
        let mut list = Vec::new();
        contributors(&mut list, ContributorKind::Destination, &top, 1, |b| {
            ip_from_bits(b).to_string()
        });
        let mut evidence = Vec::new();
        let mut port = None;
        if let Some((dst, p)) = pairs.first() {
            let hash = pair_hash(src_hash, hash128(ip_bits(*dst)));
            let duration = p.last.saturating_since(p.first);
            let services = p.services.sorted();
            port = services
                .first()
                .and_then(|&(s, _)| u16::try_from(s & 0xffff).ok());
            let ports: Vec<String> = services.iter().map(|&(s, _)| service_name(s)).collect();
            evidence.push(("destination", dst.to_string()));
            evidence.push(("bytes", p.span.total().to_string()));
            evidence.push(("duration", format!("{:.0}s", duration.as_secs_f64())));
            evidence.push(("ports", ports.join(", ")));
            let new = self.is_new(p, hash);
            evidence.push(("first_seen_destination", new.to_string()));
        }
        let share = if acc.usual >= 1.0 {
            format!("{:.0}%", 100.0 * value / acc.usual)
        } else {
            "no usual volume learned".to_owned()
        };
        evidence.push(("usual_share", share));
        evidence.push(("bound", format!("{bound:.0}")));
        Finding {
            key: AlertKey {
                src: Some(src),
                dst: None,
                aux: 0,
            },
            value,
            contributors: list,
            port,
            sources: None,
            evidence,
        }
    }

    /// Ends a window: judges new pairs, learns the pairs and usual volumes of the sources
    /// under their bound, and moves every span on by one window.
    pub(super) fn roll(&mut self, rule: &Rule) {
        // Judged before any span moves on.
        let judged: Vec<bool> = self
            .sources
            .iter()
            .map(|(&src, acc)| self.judge(rule, src, acc).0)
            .collect();
        self.roll_pairs(rule);
        let (decay, pos, len) = (self.decay, self.pos, self.done_len);
        for ((_, mut acc), over) in self.sources.iter_mut().zip(judged) {
            #[allow(clippy::cast_precision_loss)]
            let total = acc.span.total() as f64;
            acc.candidate = (acc.candidate * decay).max(total);
            // Learned once the peak has passed (the span is down to half of it) and the
            // source is under its bound: a transfer still growing, or over its bound, is
            // not learned, so it cannot raise its own bound.
            acc.usual = if !over && 2.0 * total <= acc.candidate {
                acc.candidate
            } else {
                acc.usual * decay
            };
            acc.span.roll(pos, len);
        }
        if len > 0 {
            self.pos = (pos + 1) % len;
        }
    }

    /// The pairs' part of [`Exfiltration::roll`].
    fn roll_pairs(&mut self, rule: &Rule) {
        let mut judged = Vec::new();
        for (&(src, dst), acc) in self.pairs.iter() {
            let (src_hash, source) = self.source_of(src);
            let hash = pair_hash(src_hash, hash128(ip_bits(dst)));
            let new = self.is_new(acc, hash);
            let bound = source.map_or(f64::INFINITY, |s| self.bound(rule, src, s));
            let over = self.pair_over(acc, hash, bound)
                || source.is_some_and(|s| {
                    #[allow(clippy::cast_precision_loss)]
                    let total = s.span.total() as f64;
                    total >= bound
                });
            judged.push((hash, new, over));
        }
        let (pos, len) = (self.pos, self.done_len);
        for ((_, mut acc), &(hash, new, over)) in self.pairs.iter_mut().zip(&judged) {
            if !over && acc.span.total() > 0 {
                self.known.insert(hash);
            }
            acc.age = acc.age.saturating_add(1);
            acc.seen = if new && acc.age < self.windows {
                Seen::New
            } else {
                Seen::Known
            };
            acc.span.roll(pos, len);
            if acc.span.total() == 0 {
                *acc = PairAcc::default();
            }
        }
    }

    /// Forgets every source, pair and learned destination.
    pub(super) fn clear(&mut self) {
        self.sources.clear();
        self.pairs.clear();
        self.known.clear();
        self.pos = 0;
    }
}
