//! Build script: the revision `netwarden_build_info` reports.
//!
//! Sets `NETWARDEN_REVISION` for the crate: the environment variable of that name when
//! set and not empty (release pipelines building from a tarball pass the commit so), else
//! the commit git reports for the source tree (`git rev-parse --short=12 HEAD`), else
//! `unknown` (no git, or not a checkout). Does not own: the metric itself (`src/telemetry/metrics.rs`).
//!
//! Invariant: the value is a short printable label value; the script never fails the
//! build.

use std::path::Path;
use std::process::Command;

/// Longest revision kept, in bytes.
const MAX_LEN: usize = 64;

fn main() {
    println!("cargo::rerun-if-env-changed=NETWARDEN_REVISION");
    let revision = std::env::var("NETWARDEN_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    let clean: String = revision
        .trim()
        .chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_LEN)
        .collect();
    println!("cargo::rustc-env=NETWARDEN_REVISION={clean}");
}

/// Runs git in the package folder; `None` when it is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The checked-out commit; reruns the script when HEAD or the branch it points at moves.
fn git_revision() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty())?;
    for path in ["HEAD", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", path]) {
            rerun_if_exists(&p);
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(p) = git(&["rev-parse", "--path-format=absolute", "--git-path", &branch])
    {
        rerun_if_exists(&p);
    }
    Some(commit)
}

fn rerun_if_exists(path: &str) {
    if Path::new(path).exists() {
        println!("cargo::rerun-if-changed={path}");
    }
}
