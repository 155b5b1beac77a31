//! Dropping root after start-up: switch to `[daemon] user`, keep only `CAP_NET_RAW`, and
//! hand that user the state directory root created.
//!
//! Started as root outside systemd, netwarden opens its capture sockets and binds
//! `/metrics` first, then calls [`drop_to_user`]. Under systemd there is nothing to drop:
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
//! Invariants: called from the main thread before the workers are spawned, so they
//! inherit the reduced sets (capability sets are per thread; threads started earlier lose
//! every capability at the uid change, since only the calling thread keeps them).
//! Any failure is an error that stops start-up: half-dropped privileges are not an option.

use std::path::Path;

use anyhow::{Context as _, bail};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User};

/// The one capability kept: opening `AF_PACKET` sockets (e.g. for a later reload).
const KEPT: Capability = Capability::CAP_NET_RAW;

/// Switches to `user` if it is set and the process runs as root, first handing it the
/// state directory `state` (and what is in it) that root created. Returns whether it did.
///
/// # Errors
/// The user does not exist or any step of the switch fails.
pub(super) fn drop_to_user(user: &str, state: Option<&Path>) -> anyhow::Result<bool> {
    if user.is_empty() {
        return Ok(false);
    }
    let account = User::from_name(user)
        .with_context(|| format!("looking up user `{user}`"))?
        .with_context(|| format!("[daemon] user `{user}` does not exist"))?;
    if !Uid::effective().is_root() {
        tracing::info!(user, "Not running as root; keeping the current identity.");
        return Ok(false);
    }
    if let Some(dir) = state.filter(|d| d.is_dir()) {
        give(dir, &account).with_context(|| format!("handing {} to `{user}`", dir.display()))?;
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

/// Makes `account` the owner of `dir` and of the files directly in it.
fn give(dir: &Path, account: &User) -> std::io::Result<()> {
    let owner = |p: &Path| {
        std::os::unix::fs::chown(p, Some(account.uid.as_raw()), Some(account.gid.as_raw()))
    };
    owner(dir)?;
    for entry in std::fs::read_dir(dir)? {
        owner(&entry?.path())?;
    }
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
        assert!(!drop_to_user("", None).unwrap());
    }
}
