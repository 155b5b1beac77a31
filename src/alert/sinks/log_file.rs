//! The append-only JSON-lines alert log.
//!
//! Owns [`LogFile`]: one [`Alert`] JSON object per line, written with a single `write_all`
//! per alert on an unbuffered file opened in append mode (so each line reaches the kernel
//! before the next alert is handled). Does not own rotation itself, only following it.
//!
//! Rotation: before each line the path is checked against the open file (device and inode);
//! when logrotate (or anyone) has renamed or removed it, the file at the path is opened,
//! or created, and the line goes there. [`LogFile::reopen`] does the same at once; the
//! router calls it on SIGHUP. A `copytruncate` rotation needs nothing: appends follow the
//! new end of the file.
//!
//! Whole lines only: a write that fails part-way (a full disk takes what fits, then
//! refuses the rest) is undone by truncating the file back to where the line began, so the
//! next alert never lands on half a line. If even that fails, the next line starts with a
//! newline so it at least begins a line of its own. A failed line is retried once on a
//! freshly opened file, then dropped and counted (`retries_exhausted`).
//!
//! Invariant: the file holds only complete lines written by this sink, as long as no one
//! else writes to it.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::alert::Alert;
use crate::telemetry::AlertSinkMetrics;

/// The log file sink.
pub(crate) struct LogFile {
    path: PathBuf,
    file: Option<Opened>,
    /// A failed line could not be cut off: start the next one on a new line.
    torn: bool,
    metrics: AlertSinkMetrics,
}

/// The open file and the identity it had at the path when opened.
struct Opened {
    file: File,
    dev: u64,
    ino: u64,
}

impl Opened {
    /// Opens `path` for appending, creating it if needed.
    fn at(path: &Path) -> std::io::Result<Opened> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let m = file.metadata()?;
        Ok(Opened {
            file,
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

impl LogFile {
    /// A sink appending to `path`; the file is opened at the first alert.
    pub(crate) fn new(path: &Path, metrics: AlertSinkMetrics) -> LogFile {
        LogFile {
            path: path.to_owned(),
            file: None,
            torn: false,
            metrics,
        }
    }

    /// Appends one line for `alert`.
    pub(crate) fn write(&mut self, alert: &Alert) {
        let mut line = serde_json::to_vec(alert).unwrap_or_default();
        line.push(b'\n');
        if self.was_rotated() {
            self.file = None;
        }
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

    /// Closes the file and opens the one now at the path (SIGHUP after a rotation).
    pub(crate) fn reopen(&mut self) {
        self.file = None;
        if let Err(e) = self.opened() {
            tracing::warn!(
                path = %self.path.display(), error = %e,
                "Cannot reopen the alert log; retrying at the next alert."
            );
        }
    }

    /// Whether the path no longer names the open file (renamed or removed).
    fn was_rotated(&self) -> bool {
        let Some(open) = &self.file else {
            return false;
        };
        match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != (open.dev, open.ino),
            Err(_) => true,
        }
    }

    /// The open file, opening (or creating) the path first if needed.
    fn opened(&mut self) -> std::io::Result<&mut File> {
        let open = if let Some(open) = self.file.take() {
            open
        } else {
            Opened::at(&self.path)?
        };
        Ok(&mut self.file.insert(open).file)
    }

    /// Writes `line` whole or not at all (see the module doc).
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        let torn = self.torn;
        let file = self.opened()?;
        let before = file.metadata()?.len();
        let written = if torn {
            file.write_all(b"\n").and_then(|()| file.write_all(line))
        } else {
            file.write_all(line)
        };
        let Err(e) = written else {
            self.torn = false;
            return Ok(());
        };
        if let Err(cut) = file.set_len(before) {
            self.torn = true;
            tracing::error!(
                path = %self.path.display(), error = %cut,
                "Cannot remove a partly written alert line."
            );
        }
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertKind;
    use crate::telemetry::Metrics;
    use crate::vocabulary::RuleKind;

    fn alert(rule: &str) -> Alert {
        Alert {
            time: 1.0,
            started: 1.0,
            last_seen: 1.0,
            value: 2.0,
            threshold: 1.0,
            ..Alert::new(rule, AlertKind::Rule(RuleKind::Volume))
        }
    }

    fn rules(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Alert>(l).unwrap().rule)
            .collect()
    }

    #[test]
    fn a_renamed_log_is_followed_by_a_new_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let rotated = dir.path().join("alerts.jsonl.1");
        let metrics = Metrics::new(&[], 10).unwrap();
        let mut log = LogFile::new(&path, metrics.alerts.sink("log_file"));
        log.write(&alert("before"));
        std::fs::rename(&path, &rotated).unwrap();
        log.write(&alert("after"));
        assert_eq!(rules(&rotated), ["before"]);
        assert_eq!(rules(&path), ["after"]);
        // logrotate's `create`: an empty file is put at the path; it is used as it is.
        std::fs::rename(&path, &rotated).unwrap();
        std::fs::write(&path, "").unwrap();
        log.write(&alert("third"));
        assert_eq!(rules(&path), ["third"]);
    }

    #[test]
    fn reopen_creates_the_file_at_the_path_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let metrics = Metrics::new(&[], 10).unwrap();
        let mut log = LogFile::new(&path, metrics.alerts.sink("log_file"));
        log.write(&alert("before"));
        std::fs::remove_file(&path).unwrap();
        log.reopen();
        assert!(path.exists());
        log.write(&alert("after"));
        assert_eq!(rules(&path), ["after"]);
    }
}
