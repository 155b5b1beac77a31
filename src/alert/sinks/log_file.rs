//! The append-only JSON-lines alert log.
//!
//! Owns [`LogFile`]: one [`Alert`] JSON object per line, written with a single `write_all`
//! per alert on an unbuffered file opened in append mode (so each line reaches the kernel
//! before the next alert is handled, and lines of concurrent writers do not interleave).
//! On a write error the file is reopened once (it may have been rotated or its disk
//! remounted) and the line written again; if that fails too the alert is dropped and
//! counted. Does not own rotation: rename the file and netwarden's next failure or restart
//! reopens the path.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::alert::Alert;
use crate::telemetry::AlertSinkMetrics;

/// The log file sink.
pub(crate) struct LogFile {
    path: PathBuf,
    file: Option<File>,
    metrics: AlertSinkMetrics,
}

impl LogFile {
    /// A sink appending to `path`; the file is opened at the first alert.
    pub(crate) fn new(path: &Path, metrics: AlertSinkMetrics) -> LogFile {
        LogFile {
            path: path.to_owned(),
            file: None,
            metrics,
        }
    }

    /// Appends one line for `alert`.
    pub(crate) fn write(&mut self, alert: &Alert) {
        let mut line = serde_json::to_vec(alert).unwrap_or_default();
        line.push(b'\n');
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let result = self.append(&line);
            self.metrics
                .duration
                .observe(started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    self.metrics.sent.inc();
                    return;
                }
                Err(e) => {
                    self.metrics.error("io");
                    self.file = None;
                    tracing::warn!(
                        path = %self.path.display(), error = %e,
                        "Cannot write the alert log."
                    );
                }
            }
        }
        self.metrics.retries_exhausted.inc();
    }

    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            ),
        };
        file.write_all(line)
    }
}
