//! Bidirectional flow tracking: which conversations are live, how much each carried, and
//! how TCP connections progress.
//!
//! Owns the canonical [`FlowKey`] (both directions of a 5-tuple map to one key), the
//! per-flow [`FlowRecord`] with its TCP state machine, and the bounded [`FlowTable`] with
//! idle/active timeouts and eviction. Does not own decoding (it reads
//! [`crate::decode::Decoded`]), clocks (time is the packet time the caller passes), logging
//! or metrics (ended flows are handed to a callback with an [`EndReason`]; the caller counts).
//!
//! Invariants: memory is fixed by `max_flows` when the table is built; per packet the
//! table does O(1) work, no allocation, no syscall and cannot panic on packet data.
//!
//! ```
//! use netwarden::flow::{EndReason, FlowKey, FlowTable, FlowTableConfig};
//! use netwarden::timestamp::Timestamp;
//!
//! let mut table = FlowTable::new(FlowTableConfig::default());
//! let (key, side) = FlowKey::new("10.0.0.1:5353".parse()?, "10.0.0.2:53".parse()?, 17);
//! let mut ended = Vec::new();
//! let update = table.update(key, side, Timestamp::from_secs_nanos(1, 0), 80, None, &mut |_, _| {});
//! assert!(update.created);
//! // UDP flows idle out after 60 s by default.
//! table.expire(Timestamp::from_secs_nanos(61, 0), &mut |record, reason| {
//!     ended.push((*record.key(), reason));
//! });
//! assert_eq!(ended, [(key, EndReason::Idle)]);
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

mod index;
mod key;
mod record;
mod table;

pub use key::{FlowKey, Side};
pub use record::{FlowRecord, TcpState};
pub use table::{EndReason, FlowTable, FlowTableConfig, FlowTimeouts, FlowUpdate, Located};
