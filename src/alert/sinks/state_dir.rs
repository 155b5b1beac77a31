//! The state directory as one open handle, checked before anything is kept in it.
//!
//! Owns [`StateDir`]: the directory opened once, at start, and the checks that make it
//! safe to keep state in: it is a real directory, owned by the service user and writable
//! by nobody else. A root start that drops to `[daemon] user` hands the directory to that
//! user here, through the handle (`fchown` on the open directory, never on a path), and
//! only a directory it reached without following a link; the files inside are never
//! handed over (the service user replaces them, which needs only the directory). Every
//! state file is then opened relative to the handle (`state`), so renaming or relinking
//! the path afterwards changes nothing.
//!
//! Does not own: the files in the directory (`state`) or where the directory is
//! ([`super::state_directory`]).
//!
//! Invariants: a directory that someone other than the service user could write to, or
//! one owned by another account, is refused ([`StateDirError::is_unsafe`]): the daemon
//! must not start on it. A directory that merely cannot be created or opened is not
//! unsafe: the caller turns persistence off.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::unistd::{Gid, Uid};

/// Mode of a state directory netwarden creates: the service user only.
const CREATED_MODE: u32 = 0o700;

/// Permission bits that let the group or others change the directory's entries.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// It cannot be created or opened (persistence is turned off).
    #[error("cannot create or open the state directory {}", path.display())]
    Open {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Root was to hand it to the service user, but the path is a symbolic link.
    #[error(
        "the state directory {} is a symbolic link; root hands only a real directory to the service user",
        path.display()
    )]
    Link {
        /// The directory.
        path: PathBuf,
    },
    /// It belongs to an account other than the service user (or root, before hand-over).
    #[error(
        "the state directory {} belongs to uid {owner}, not to the service user (uid {user})",
        path.display()
    )]
    Owner {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The service user.
        user: u32,
    },
    /// Its group or others may create, replace or delete its files.
    #[error(
        "the state directory {} is writable by its group or others (mode {mode:04o}); only the service user may write to it (chmod go-w)",
        path.display()
    )]
    Writable {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Root could not hand it to the service user.
    #[error("handing the state directory {} to uid {user}", path.display())]
    HandOver {
        /// The directory.
        path: PathBuf,
        /// The service user.
        user: u32,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

impl StateDirError {
    /// Whether the directory is unsafe to start on (as opposed to merely unusable).
    pub fn is_unsafe(&self) -> bool {
        !matches!(self, StateDirError::Open { .. })
    }
}

/// The open state directory; cheap to clone (one shared handle).
#[derive(Clone, Debug)]
pub struct StateDir {
    path: PathBuf,
    handle: Arc<File>,
}

impl StateDir {
    /// Opens `path` (creating it, mode 0700, when missing) for the current user, or, with
    /// `hand_to` (a root start that will drop to that user), for that user, handing the
    /// directory over when root owns it.
    ///
    /// # Errors
    /// [`StateDirError`]; see [`StateDirError::is_unsafe`].
    pub fn open(path: &Path, hand_to: Option<(Uid, Gid)>) -> Result<StateDir, StateDirError> {
        let opened = |source| StateDirError::Open {
            path: path.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(CREATED_MODE)
            .create(path)
            .map_err(opened)?;
        let is_link = || std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
        let handle = match open_dir(path, true) {
            // Not root: a link leads to no more than the user could reach anyway (systemd's
            // `DynamicUser=` makes the state directory one); the checks below apply to the
            // directory it leads to.
            Err(_) if hand_to.is_none() && is_link() => open_dir(path, false),
            Err(_) if is_link() => {
                return Err(StateDirError::Link {
                    path: path.to_owned(),
                });
            }
            other => other,
        }
        .map_err(opened)?;
        let dir = StateDir {
            path: path.to_owned(),
            handle: Arc::new(handle),
        };
        dir.check_and_hand_over(hand_to)?;
        Ok(dir)
    }

    /// Refuses a directory others could write to or that another account owns; gives a
    /// root-owned one to `hand_to`.
    fn check_and_hand_over(&self, hand_to: Option<(Uid, Gid)>) -> Result<(), StateDirError> {
        let meta = self
            .handle
            .metadata()
            .map_err(|source| StateDirError::Open {
                path: self.path.clone(),
                source,
            })?;
        let user = hand_to.map_or_else(Uid::effective, |(uid, _)| uid).as_raw();
        let mode = meta.mode() & 0o7777;
        if mode & WRITABLE_BY_OTHERS != 0 {
            return Err(StateDirError::Writable {
                path: self.path.clone(),
                mode,
            });
        }
        let owner = meta.uid();
        match hand_to {
            _ if owner == user => Ok(()),
            Some((uid, gid)) if owner == 0 => {
                std::os::unix::fs::fchown(&*self.handle, Some(uid.as_raw()), Some(gid.as_raw()))
                    .map_err(|source| StateDirError::HandOver {
                        path: self.path.clone(),
                        user,
                        source,
                    })
            }
            _ => Err(StateDirError::Owner {
                path: self.path.clone(),
                owner,
                user,
            }),
        }
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The handle state files are opened relative to.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.handle.as_fd()
    }
}

/// Opens the directory at `path`; with `no_follow`, fails on a link.
fn open_dir(path: &Path, no_follow: bool) -> std::io::Result<File> {
    let no_follow = if no_follow { libc::O_NOFOLLOW } else { 0 };
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC | no_follow)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn me() -> (Uid, Gid) {
        (Uid::effective(), Gid::effective())
    }

    #[test]
    fn a_missing_directory_is_created_for_the_user_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/state");
        StateDir::open(&path, None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert_eq!(meta.uid(), Uid::effective().as_raw());
    }

    #[test]
    fn a_directory_writable_by_group_or_others_is_refused() {
        for mode in [0o777, 0o770, 0o1777, 0o702] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            for hand_to in [None, Some(me())] {
                let err = StateDir::open(dir.path(), hand_to).unwrap_err();
                assert!(err.is_unsafe(), "{err}");
                assert!(
                    err.to_string().contains("writable by its group or others"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn a_link_is_never_handed_over_but_may_be_followed_without_hand_over() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = StateDir::open(&link, Some(me())).unwrap_err();
        assert!(matches!(err, StateDirError::Link { .. }), "{err}");
        assert!(err.is_unsafe());
        StateDir::open(&link, None).unwrap();
    }

    #[test]
    fn a_directory_of_another_account_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = (
            Uid::from_raw(Uid::effective().as_raw().wrapping_add(1)),
            Gid::effective(),
        );
        if Uid::effective().is_root() {
            // Root hands over only what root owns: not a directory of a third account.
            std::os::unix::fs::chown(dir.path(), Some(4242), None).unwrap();
        }
        let err = StateDir::open(dir.path(), Some(other)).unwrap_err();
        assert!(matches!(err, StateDirError::Owner { .. }), "{err}");
    }

    #[test]
    fn an_unusable_path_is_not_unsafe() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let err = StateDir::open(&file.join("state"), None).unwrap_err();
        assert!(!err.is_unsafe(), "{err}");
    }
}
