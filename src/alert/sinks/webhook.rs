//! The generic webhook encoding: the [`Alert`] record itself, as JSON.
//!
//! Owns only the body; the webhook gets the same queue, retry and drop accounting as an
//! Alertmanager (`delivery`), one POST per transition, so a receiver sees each firing and
//! each resolve exactly once when it acknowledges with a 2xx.

use bytes::Bytes;

use crate::alert::Alert;

/// The JSON body for one transition (the serde form of [`Alert`]).
pub(crate) fn encode(alert: &Alert) -> Bytes {
    // Strings, numbers (non-finite ones become null) and maps: serialization cannot fail.
    Bytes::from(serde_json::to_vec(alert).unwrap_or_default())
}
