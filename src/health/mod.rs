//! Self-alerts: netwarden tells on-call, through its own alert path, when it
//! goes blind or its accuracy degrades.
//!
//! Once a second ([`PERIOD`], wall clock, on a tokio task of the daemon's main runtime,
//! never on a capture worker) the monitor gathers the daemon's own metric registry into a
//! [`Reading`], judges six conditions and sends their transitions, with a `for` hold and a
//! resolve delay each, to the alert router like any detection:
//!
//! | rule | key label | holds when |
//! |---|---|---|
//! | `netwarden_interface_silent` | `interface` | no packet for `silent_after` |
//! | `netwarden_capture_dropping` | `interface` | kernel drops / (received + drops) over `window` above `max_ratio` |
//! | `netwarden_flow_table_full` | `worker` | `netwarden_flows_active` ≥ `netwarden_flows_capacity` |
//! | `netwarden_detection_state_full` | — (one alert naming the rules) | `netwarden_rule_keys_evicted_total` of any rule rose within `window` |
//! | `netwarden_blocklist_stale` | `detection_rule`, `file` | the file is older than its rule's `max_age`, or unreadable |
//! | `netwarden_alert_delivery_failing` | `sink` | 3 failed attempts or drops since the sink last delivered, the latest within `window`; or a queue non-empty for all of `window` |
//!
//! Every self-alert has `kind = "self"` and the labels `component = "netwarden"` and
//! `instance` (`[self_alerts] instance`, default the host name); `netwarden_self_alerts_firing`
//! counts the firing ones by rule and severity.
//!
//! Module map: `reading` (metrics → numbers), `conditions` (numbers → what holds, with
//! the memory that windows need), `tracker` (holds → firing/resolved), `monitor` (settings,
//! reloads, the task). Does not own: the metrics themselves (`crate::telemetry`), delivery
//! (`crate::alert::sinks`), or the `[self_alerts]` schema (`crate::config`).

mod conditions;
mod monitor;
mod reading;
mod tracker;

pub use conditions::{Condition, Memory, Observation, Thresholds};
pub use monitor::{PERIOD, SelfMonitor, run, spawn};
pub use reading::{
    BlocklistFile, BlocklistReading, CaptureReading, FlowTableReading, Reading, SinkReading,
};
pub use tracker::{KIND, Tick, Tracker};
