//! The firing-alert state file, `<state directory>/alerts.json`, so a restart neither
//! loses a firing alert nor fires it twice.
//!
//! Owns where the state directory is ([`state_directory`]: `STATE_DIRECTORY`, as systemd's
//! `StateDirectory=` sets it, else `[daemon] state_directory`), the file format (a version
//! and the firing [`Alert`] records), reading it at start, and writing it atomically: a
//! temporary file in the same directory, flushed to disk, renamed over the old one, so a
//! crash leaves the old file or the new one, never half of one. Does not own: opening and
//! checking the directory (`state_dir`), when to write (the router's once-a-second
//! persistence tick) or what a restored alert means (`firing`).
//!
//! Links: every file is opened relative to the directory's handle and never through a
//! symbolic link (`O_NOFOLLOW`); the temporary file is created exclusively (`O_EXCL`, mode
//! 0600), and whatever already has its name (a stale file, a planted link) is unlinked,
//! never written through. The file read at start must be a regular file of at most
//! [`MAX_FILE_BYTES`], and a firing table that would not fit is not written.
//!
//! Failure policy: persistence is an aid, never a reason to stop. A directory that cannot
//! be written disables it with one warning; failed writes warn once until a write succeeds
//! again; an unreadable, oversized or corrupt file (or entry) is ignored with a warning.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde::{Deserialize, Serialize};

use super::state_dir::StateDir;
use crate::alert::{Alert, AlertState};

/// The file's name in the state directory.
pub(crate) const FILE_NAME: &str = "alerts.json";

/// The temporary file's name, renamed over [`FILE_NAME`] once complete.
const TMP_NAME: &str = ".alerts.json.tmp";

/// Largest state file read or written: far above what a full firing table of the default
/// size takes (about 1 KiB an alert), far below the daemon's memory limit.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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
    dir: StateDir,
    /// The file's path, for messages.
    path: PathBuf,
    /// The last write failed (and was warned about).
    failing: bool,
}

impl StateFile {
    /// Checks that a file can be written in `dir`; `None`, after one warning, if not.
    pub(crate) fn open(dir: StateDir) -> Option<StateFile> {
        let state = StateFile {
            path: dir.path().join(FILE_NAME),
            dir,
            failing: false,
        };
        match state.create_tmp().and_then(|_| state.remove_tmp()) {
            Ok(()) => Some(state),
            Err(e) => {
                tracing::warn!(
                    dir = %state.dir.path().display(), error = %e,
                    "Cannot use the state directory; firing alerts will not survive a restart."
                );
                None
            }
        }
    }

    /// The firing alerts of the last run; empty when there is no file, and, with a
    /// warning, when it cannot be read or parsed.
    pub(crate) fn load(&self) -> Vec<Alert> {
        let text = match self.read() {
            Ok(Some(text)) => text,
            Ok(None) => return Vec::new(),
            Err(e) => {
                tracing::warn!(
                    path = %self.path.display(), error = %e,
                    "Cannot read the alert state file; ignoring it."
                );
                return Vec::new();
            }
        };
        let read = match serde_json::from_slice::<Read>(&text) {
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

    /// The file's bytes; `None` when there is none. A link, anything but a regular file,
    /// or a file over [`MAX_FILE_BYTES`] is an error.
    fn read(&self) -> std::io::Result<Option<Vec<u8>>> {
        // Non-blocking, so a FIFO planted under the name cannot hold the open.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = match openat(self.dir.fd(), FILE_NAME, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(None),
            Err(nix::errno::Errno::ELOOP) => {
                return Err(std::io::Error::other("it is a symbolic link"));
            }
            Err(e) => return Err(e.into()),
        };
        let file = File::from(fd);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "{} bytes, over the limit of {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let mut text = Vec::new();
        file.take(MAX_FILE_BYTES).read_to_end(&mut text)?;
        Ok(Some(text))
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
        if u64::try_from(body.len()).map_or(true, |n| n > MAX_FILE_BYTES) {
            return Err(std::io::Error::other(format!(
                "{} firing alerts take {} bytes, over the limit of {MAX_FILE_BYTES}",
                alerts.len(),
                body.len()
            )));
        }
        let mut file = self.create_tmp()?;
        let written = file.write_all(&body).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            drop(self.remove_tmp());
            return Err(e);
        }
        renameat(self.dir.fd(), TMP_NAME, self.dir.fd(), FILE_NAME)?;
        // Make the rename itself durable; a failure here leaves a complete file anyway.
        let _ = nix::unistd::fsync(self.dir.fd());
        Ok(())
    }

    /// Creates the temporary file, new and empty: whatever had its name before is
    /// unlinked first, so nothing is ever written through a link planted there.
    fn create_tmp(&self) -> std::io::Result<File> {
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mode = Mode::S_IRUSR | Mode::S_IWUSR;
        let create = || openat(self.dir.fd(), TMP_NAME, flags, mode);
        let fd = match create() {
            Err(nix::errno::Errno::EEXIST) => {
                self.remove_tmp()?;
                create()?
            }
            other => other?,
        };
        Ok(File::from(fd))
    }

    /// Unlinks the temporary file's name (the link itself, if it is one).
    fn remove_tmp(&self) -> std::io::Result<()> {
        unlinkat(self.dir.fd(), TMP_NAME, UnlinkatFlags::NoRemoveDir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertKind, Severity};
    use crate::vocabulary::RuleKind;

    fn alert(rule: &str) -> Alert {
        Alert {
            severity: Severity::Critical,
            time: 1_700_000_002.0,
            started: 1_700_000_000.5,
            last_seen: 1_700_000_002.0,
            value: 5_000.0,
            threshold: 1_000.0,
            dst: Some("192.0.2.10".parse().unwrap()),
            network: Some("dmz".into()),
            ..Alert::new(rule, AlertKind::Rule(RuleKind::SynFlood))
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

    /// A state file in a new directory `dir/name`.
    fn state_in(dir: &Path, name: &str) -> StateFile {
        StateFile::open(StateDir::open(&dir.join(name), None).unwrap()).unwrap()
    }

    #[test]
    fn saved_alerts_load_back_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let mut state = state_in(dir.path(), "a/b");
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
        let state = state_in(dir.path(), "s");
        let path = dir.path().join("s").join(FILE_NAME);
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
    fn a_link_planted_as_the_temporary_file_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let mut state = state_in(dir.path(), "s");
        std::os::unix::fs::symlink(&victim, dir.path().join("s").join(TMP_NAME)).unwrap();
        assert!(state.save(&[&alert("syn_flood")]));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert_eq!(state.load(), [alert("syn_flood")]);
        let meta = std::fs::symlink_metadata(dir.path().join("s").join(FILE_NAME)).unwrap();
        assert!(meta.is_file());
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_link_fifo_or_oversized_file_in_place_of_the_state_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_in(dir.path(), "s");
        let path = dir.path().join("s").join(FILE_NAME);
        let elsewhere = dir.path().join("elsewhere.json");
        let body = serde_json::json!({"version": 1, "alerts": [alert("syn_flood")]});
        std::fs::write(&elsewhere, body.to_string()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(state.load().is_empty(), "read through a link");
        std::fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        assert!(state.load().is_empty(), "a FIFO is not a state file");
        std::fs::remove_file(&path).unwrap();
        let big = File::create(&path).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(state.load().is_empty(), "over the size limit");
    }

    #[test]
    fn failed_write_reports_false_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = state_in(dir.path(), "s");
        // A directory under the temporary file's name cannot be unlinked as a file.
        let blocker = dir.path().join("s").join(TMP_NAME);
        std::fs::create_dir(&blocker).unwrap();
        assert!(!state.save(&[&alert("syn_flood")]));
        assert!(state.failing);
        std::fs::remove_dir(&blocker).unwrap();
        assert!(state.save(&[&alert("syn_flood")]));
        assert!(!state.failing);
    }
}
