//! The firing-alert state file, `<state directory>/alerts.json`, so a restart neither
//! loses a firing alert nor fires it twice.
//!
//! Owns where the state directory is ([`state_directory`]: `STATE_DIRECTORY`, as systemd's
//! `StateDirectory=` sets it, else `[daemon] state_directory`), the file format (a version
//! and the firing [`Alert`] records), reading it at start, and writing it atomically: a
//! temporary file in the same directory, flushed to disk, renamed over the old one, so a
//! crash leaves the old file or the new one, never half of one. Does not own: when to
//! write (the router's once-a-second persistence tick) or what a restored alert means
//! (`firing`).
//!
//! Failure policy: persistence is an aid, never a reason to stop. A directory that cannot
//! be created or written disables it with one warning; failed writes warn once until a
//! write succeeds again; an unreadable or corrupt file (or entry) is ignored with a warning.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, AlertState};

/// The file's name in the state directory.
pub(crate) const FILE_NAME: &str = "alerts.json";

/// The format version written; files of another version are ignored.
const VERSION: u32 = 1;

/// The state directory: the first entry of `from_env` (the value of `STATE_DIRECTORY`,
/// which systemd sets to a colon-separated list) when it is set and non-empty, else
/// `configured`; `None` when both are empty (persistence off).
pub fn state_directory(configured: &Path, from_env: Option<&OsStr>) -> Option<PathBuf> {
    let env = from_env
        .and_then(OsStr::to_str)
        .and_then(|v| v.split(':').find(|d| !d.is_empty()));
    match env {
        Some(dir) => Some(PathBuf::from(dir)),
        None => (!configured.as_os_str().is_empty()).then(|| configured.to_owned()),
    }
}

/// What is written.
#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    alerts: &'a [&'a Alert],
}

/// What is read: entries are parsed one by one so a bad one costs only itself.
#[derive(Deserialize)]
struct Read {
    version: u32,
    alerts: Vec<serde_json::Value>,
}

/// The state file of one running router.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
    /// The last write failed (and was warned about).
    failing: bool,
}

impl StateFile {
    /// Creates `dir` if needed and checks that a file can be written there; `None`, after
    /// one warning, if not.
    pub(crate) fn open(dir: &Path) -> Option<StateFile> {
        let state = StateFile {
            path: dir.join(FILE_NAME),
            tmp: dir.join(format!(".{FILE_NAME}.tmp")),
            failing: false,
        };
        let probe = std::fs::create_dir_all(dir)
            .and_then(|()| File::create(&state.tmp))
            .and_then(|_| std::fs::remove_file(&state.tmp));
        match probe {
            Ok(()) => Some(state),
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(), error = %e,
                    "Cannot use the state directory; firing alerts will not survive a restart."
                );
                None
            }
        }
    }

    /// The firing alerts of the last run; empty when there is no file, and, with a
    /// warning, when it cannot be read or parsed.
    pub(crate) fn load(&self) -> Vec<Alert> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(
                    path = %self.path.display(), error = %e,
                    "Cannot read the alert state file; ignoring it."
                );
                return Vec::new();
            }
        };
        let read = match serde_json::from_str::<Read>(&text) {
            Ok(read) if read.version == VERSION => read,
            Ok(read) => {
                tracing::warn!(
                    path = %self.path.display(), version = read.version,
                    "Alert state file of an unknown version; ignoring it."
                );
                return Vec::new();
            }
            Err(e) => {
                tracing::warn!(
                    path = %self.path.display(), error = %e,
                    "Alert state file is corrupt; ignoring it."
                );
                return Vec::new();
            }
        };
        let total = read.alerts.len();
        let alerts: Vec<Alert> = read
            .alerts
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Alert>(v).ok())
            .filter(|a| a.state == AlertState::Firing)
            .collect();
        if alerts.len() < total {
            tracing::warn!(
                path = %self.path.display(), ignored = total - alerts.len(),
                "Alert state file has unreadable entries; ignoring them."
            );
        }
        alerts
    }

    /// Replaces the file with `alerts`; true on success. A failure is warned about once
    /// until a write succeeds again.
    pub(crate) fn save(&mut self, alerts: &[&Alert]) -> bool {
        match self.write(alerts) {
            Ok(()) => {
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(
                        path = %self.path.display(), error = %e,
                        "Cannot write the alert state file; firing alerts may not survive a restart."
                    );
                }
                self.failing = true;
                false
            }
        }
    }

    fn write(&self, alerts: &[&Alert]) -> std::io::Result<()> {
        let body = serde_json::to_vec(&Written {
            version: VERSION,
            alerts,
        })
        .map_err(std::io::Error::other)?;
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)?;
        // Make the rename itself durable; a failure here leaves a complete file anyway.
        if let Some(dir) = self.path.parent() {
            drop(File::open(dir).and_then(|d| d.sync_all()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::{AlertKind, Severity};
    use crate::vocabulary::RuleKind;

    fn alert(rule: &str) -> Alert {
        Alert {
            rule: rule.into(),
            kind: AlertKind::Rule(RuleKind::SynFlood),
            severity: Severity::Critical,
            state: AlertState::Firing,
            time: 1_700_000_002.0,
            started: 1_700_000_000.5,
            last_seen: 1_700_000_002.0,
            value: 5_000.0,
            threshold: 1_000.0,
            src: None,
            dst: Some("192.0.2.10".parse().unwrap()),
            network: Some("dmz".into()),
            protocol: None,
            port: None,
            contributors: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn state_directory_prefers_systemd_then_config_and_empty_is_off() {
        let conf = Path::new("/var/lib/netwarden");
        assert_eq!(
            state_directory(conf, Some(OsStr::new("/var/lib/private/nw:/var/lib/other"))),
            Some(PathBuf::from("/var/lib/private/nw"))
        );
        assert_eq!(state_directory(conf, None), Some(conf.to_owned()));
        assert_eq!(
            state_directory(conf, Some(OsStr::new(""))),
            Some(conf.to_owned())
        );
        assert_eq!(state_directory(Path::new(""), None), None);
    }

    #[test]
    fn saved_alerts_load_back_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let mut state = StateFile::open(&nested).unwrap();
        assert!(state.load().is_empty(), "no file yet");
        let (a, b) = (alert("syn_flood"), alert("udp_flood"));
        assert!(state.save(&[&a, &b]));
        assert_eq!(state.load(), [a.clone(), b]);
        assert!(state.save(&[&a]));
        assert_eq!(state.load(), [a]);
        let names: Vec<_> = std::fs::read_dir(&nested)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn corrupt_file_or_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateFile::open(dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "{\"version\":1,\"alerts\":[").unwrap();
        assert!(state.load().is_empty());
        std::fs::write(&path, "{\"version\":9,\"alerts\":[]}").unwrap();
        assert!(state.load().is_empty());
        let good = serde_json::to_value(alert("syn_flood")).unwrap();
        let mut resolved = good.clone();
        resolved["state"] = "resolved".into();
        let body = serde_json::json!({"version": 1, "alerts": [{"rule": 3}, good, resolved]});
        std::fs::write(&path, body.to_string()).unwrap();
        assert_eq!(state.load(), [alert("syn_flood")]);
    }

    #[test]
    fn unusable_directory_disables_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        assert!(StateFile::open(&file.join("state")).is_none());
    }

    #[test]
    fn failed_write_reports_false_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("state");
        let mut state = StateFile::open(&sub).unwrap();
        std::fs::remove_dir(&sub).unwrap();
        assert!(!state.save(&[&alert("syn_flood")]));
        assert!(state.failing);
        std::fs::create_dir(&sub).unwrap();
        assert!(state.save(&[&alert("syn_flood")]));
        assert!(!state.failing);
    }
}
