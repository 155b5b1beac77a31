//! Reading a file the configuration names: a regular file, of bounded size, that cannot
//! make the reader wait.
//!
//! Owns [`read_text`] and the size limits of the files netwarden reads as configuration:
//! the main file and rule files ([`MAX_CONFIG_BYTES`]) and blocklists
//! ([`MAX_BLOCKLIST_BYTES`]). The file is opened non-blocking (a FIFO planted in its place
//! neither blocks the open nor the read), then must be a regular file (not a FIFO, a
//! device, a socket or a directory) no larger than its limit; the read itself stops at the
//! limit, so a file that grows meanwhile is refused too.
//!
//! Does not own: what the text means (the callers parse it).

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Largest config or rule file read.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// Largest blocklist file read (a million entries of about 40 bytes).
pub const MAX_BLOCKLIST_BYTES: u64 = 64 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening, inspecting or reading it failed.
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    /// It is not a regular file.
    #[error("not a regular file (a {0})")]
    NotAFile(&'static str),
    /// It is larger than its limit.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// It is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
}

/// The text of the regular file `path`, at most `limit` bytes.
///
/// # Errors
/// [`ReadError`].
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadError::Io)?;
    check_regular(&file, limit)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if u64::try_from(bytes.len()).map_or(true, |n| n > limit) {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

/// Refuses anything but a regular file of at most `limit` bytes.
fn check_regular(file: &File, limit: u64) -> Result<(), ReadError> {
    let meta = file.metadata().map_err(ReadError::Io)?;
    let kind = meta.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_fifo() {
        Some("FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("device")
    } else if kind.is_socket() {
        Some("socket")
    } else if kind.is_dir() {
        Some("directory")
    } else {
        Some("special file")
    };
    if let Some(what) = what {
        return Err(ReadError::NotAFile(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "x = 1\n").unwrap();
        assert_eq!(read_text(&path, 6).unwrap(), "x = 1\n");
        assert!(matches!(
            read_text(&path, 5),
            Err(ReadError::TooLarge { limit: 5 })
        ));
    }

    #[test]
    fn a_fifo_or_device_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("rules.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Nobody writes to it: a blocking read would wait for ever.
        assert_eq!(
            read_text(&fifo, MAX_CONFIG_BYTES).unwrap_err().to_string(),
            "not a regular file (a FIFO)"
        );
        assert_eq!(
            read_text(Path::new("/dev/zero"), MAX_CONFIG_BYTES)
                .unwrap_err()
                .to_string(),
            "not a regular file (a device)"
        );
        assert!(matches!(
            read_text(dir.path(), MAX_CONFIG_BYTES),
            Err(ReadError::NotAFile("directory"))
        ));
    }
}
