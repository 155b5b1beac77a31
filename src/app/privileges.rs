//! Dropping root after start-up: switch to `[daemon] user` and keep only `CAP_NET_RAW`;
//! keep even that only when live capture may reopen a socket; no new privileges ever.
//! (The state directory is handed to that user before, through its open handle, by
//! `alert::sinks::StateDir`: never through a path, never the files in it.)
//!
//! Started as root outside systemd, netwarden looks the user up first ([`find_user`]: a
//! user that does not exist is a configuration error), opens its capture sockets and binds
//! `/metrics`, then calls [`drop_to_user`]. Under systemd there is nothing to drop:
//! the unit starts it unprivileged (`DynamicUser=`) with `CAP_NET_RAW` as an ambient
//! capability, so the process is not root and this is a no-op.
//!
//! The sequence is the classic one, through safe wrappers (`unsafe` is denied crate-wide):
//! `nix` for `prctl(PR_SET_KEEPCAPS)`, `setgroups`, `setgid`, `setuid` and the passwd
//! lookup, and the `caps` crate for `capset`/`PR_CAPBSET_DROP`, which `nix` does not wrap:
//! 1. shrink the bounding set to `CAP_NET_RAW` (needs `CAP_SETPCAP`, so while still root);
//! 2. `PR_SET_KEEPCAPS`, so the permitted set survives the change of uid;
//! 3. `setgroups([gid])`, `setgid`, `setuid` (glibc applies these to every thread);
//! 4. permitted and effective sets to `{CAP_NET_RAW}`, inheritable and ambient empty;
//! 5. check that `setuid(0)` now fails.
//!
//! Then, in every start (root or not, under systemd or not), [`keep_only_needed`] leaves
//! `CAP_NET_RAW` only to a live capture (which reattaches interfaces that come back) and
//! nothing to a capture file; [`forbid_new_privileges`] ran first of all.
//!
//! Invariants: called from the main thread before the workers are spawned, so they
//! inherit the reduced sets (capability sets are per thread; threads started earlier lose
//! every capability at the uid change, since only the calling thread keeps them).
//! Any failure is an error that stops start-up: half-dropped privileges are not an option.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User};

use crate::config::{BUILT_IN_PATH, ConfigError, ConfigErrors};

/// The one capability kept: opening `AF_PACKET` sockets (e.g. for a later reload).
const KEPT: Capability = Capability::CAP_NET_RAW;

/// The account `[daemon] user` names (`None` when it is empty), looked up at start-up
/// before anything is opened. `config` is the file the config came from (`None` for the
/// built-in default), for the error message.
///
/// # Errors
/// [`ConfigErrors`] naming `daemon.user` (so the process exits 78, `EX_CONFIG`) when no
/// such user exists; the lookup's own error when the user database cannot be read.
pub(super) fn find_user(user: &str, config: Option<&Path>) -> anyhow::Result<Option<User>> {
    if user.is_empty() {
        return Ok(None);
    }
    match User::from_name(user).with_context(|| format!("looking up user `{user}`"))? {
        Some(account) => Ok(Some(account)),
        None => Err(unknown_user(user, config).into()),
    }
}

/// The configuration error for a `[daemon] user` that does not exist, located in the
/// config file when it can be read again.
fn unknown_user(user: &str, config: Option<&Path>) -> ConfigErrors {
    let path = config.map_or_else(|| PathBuf::from(BUILT_IN_PATH), Path::to_owned);
    let source = config
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    ConfigErrors(vec![ConfigError::at_key(
        &path,
        &source,
        "daemon.user",
        format!("user `{user}` does not exist"),
    )])
}

/// Switches to `account` if the process runs as root. Returns whether it did. (The state
/// directory is handed over before, through its handle: `alert::sinks::StateDir`.)
///
/// # Errors
/// Any step of the switch fails.
pub(super) fn drop_to_user(account: &User) -> anyhow::Result<bool> {
    let user = account.name.as_str();
    if !Uid::effective().is_root() {
        tracing::info!(user, "Not running as root; keeping the current identity.");
        return Ok(false);
    }
    switch(account.uid, account.gid).with_context(|| format!("dropping privileges to `{user}`"))?;
    tracing::info!(
        user,
        uid = account.uid.as_raw(),
        gid = account.gid.as_raw(),
        "Dropped root; keeping only CAP_NET_RAW."
    );
    Ok(true)
}

/// Sets `PR_SET_NO_NEW_PRIVS`: nothing this process could ever execute gains privileges
/// (setuid binaries, file capabilities). Under systemd `NoNewPrivileges=yes` does the
/// same; started any other way, this is the only guard. netwarden executes nothing, so it
/// costs nothing.
///
/// # Errors
/// The kernel refuses (it never does on Linux ≥ 3.5).
pub(super) fn forbid_new_privileges() -> anyhow::Result<()> {
    nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")
}

/// Keeps only the capabilities the running daemon needs, once capture sockets are open,
/// `/metrics` is bound and root (if any) was dropped: `CAP_NET_RAW` when `reopens_capture`
/// (live capture reattaches an interface that was deleted and comes back, or did not
/// exist at start, and opening that socket needs it), nothing otherwise (a capture file
/// is never reopened). Inheritable and ambient sets are emptied either way (netwarden
/// executes nothing), and the bounding set shrinks to match when the process may change
/// it (`CAP_SETPCAP`, i.e. still root: under systemd the unit's
/// `CapabilityBoundingSet=` already did). Call on the main thread before any other
/// thread starts: capability sets are per thread and threads inherit them.
///
/// # Errors
/// A capability set cannot be changed.
pub(super) fn keep_only_needed(reopens_capture: bool) -> anyhow::Result<()> {
    let kept: CapsHashSet = std::iter::once(KEPT).filter(|_| reopens_capture).collect();
    let effective = caps::read(None, CapSet::Effective).context("reading the effective set")?;
    if effective.contains(&Capability::CAP_SETPCAP) {
        let bounding = caps::read(None, CapSet::Bounding).context("reading the bounding set")?;
        for cap in bounding.into_iter().filter(|c| !kept.contains(c)) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("clearing the ambient set")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable set")?;
    let kept: CapsHashSet = kept.intersection(&effective).copied().collect();
    caps::set(None, CapSet::Effective, &kept).context("setting the effective set")?;
    caps::set(None, CapSet::Permitted, &kept).context("setting the permitted set")?;
    tracing::info!(
        kept = ?kept.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "Capabilities reduced to what capture needs."
    );
    Ok(())
}

fn switch(uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let bounding = caps::read(None, CapSet::Bounding).context("reading the bounding set")?;
    for cap in bounding.into_iter().filter(|c| *c != KEPT) {
        caps::drop(None, CapSet::Bounding, cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    nix::sys::prctl::set_keepcaps(true).context("prctl(PR_SET_KEEPCAPS)")?;
    nix::unistd::setgroups(&[gid]).context("setgroups")?;
    nix::unistd::setgid(gid).context("setgid")?;
    nix::unistd::setuid(uid).context("setuid")?;
    let kept: CapsHashSet = std::iter::once(KEPT).collect();
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &kept).context("setting the effective set")?;
    caps::set(None, CapSet::Permitted, &kept).context("setting the permitted set")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable set")?;
    caps::clear(None, CapSet::Ambient).context("clearing the ambient set")?;
    nix::sys::prctl::set_keepcaps(false).context("prctl(PR_SET_KEEPCAPS, 0)")?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("regained root after dropping it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_user_keeps_the_identity() {
        assert!(find_user("", None).unwrap().is_none());
    }

    #[test]
    fn unknown_user_is_a_config_error_at_its_key() {
        let err = find_user("no-such-user-nw", None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<ConfigErrors>().map(ToString::to_string),
            Some(format!(
                "{BUILT_IN_PATH}: key `daemon.user`: user `no-such-user-nw` does not exist"
            ))
        );
    }

    #[test]
    fn existing_user_is_found() {
        let root = find_user("root", None).unwrap().unwrap();
        assert!(root.uid.is_root());
    }
}
