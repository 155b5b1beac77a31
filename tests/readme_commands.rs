//! The README's "Two commands" work as written. The commands are read from README.md
//! itself, not copied here, so editing the README changes what is tested.
//!
//! The first (run the daemon) is run exactly as written, from the repository root, inside a
//! network namespace made for the test: loopback plus a veth pair, so there are up
//! non-loopback interfaces to capture on and port 9847 is free. The test waits until
//! `/metrics` answers with netwarden's metrics for those interfaces, sends SIGTERM to the
//! daemon and expects a clean exit. The first `cargo run --release` may have to compile, so
//! the start timeout is generous.
//!
//! The second (the test suite) is the suite running this test, so it is not run here; CI
//! runs `.ci/run`, and the test checks that `.ci/run` executes exactly that command.
//!
//! Needs root (network namespaces); skipped with a message otherwise.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The repository root: the daemon package's directory.
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How long the first command may take to answer on `/metrics`, compilation included.
const START_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// How long the daemon may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The metrics address the README promises for the default config.
const METRICS_URL: &str = "http://127.0.0.1:9847/metrics";

/// The two veth ends inside the namespace: the interfaces the daemon must capture on.
const VETH: [&str; 2] = ["rdm0", "rdm1"];

/// The commands of the README's "Two commands" block: the lines of the first code block
/// after that heading, without comments and blank lines, continuation lines joined.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(REPO).join("README.md")).unwrap();
    let after_heading = readme
        .split_once("\n## Two commands\n")
        .unwrap_or_else(|| panic!("README.md has no `## Two commands` section"))
        .1;
    let mut lines = after_heading.lines().skip_while(|l| !l.starts_with("```"));
    assert!(
        lines.next().is_some(),
        "no code block after `## Two commands` in README.md"
    );
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in lines.take_while(|l| !l.starts_with("```")) {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => commands.push(std::mem::take(&mut pending) + line),
        }
    }
    commands
}

/// Whether the test runs as root (effective user id 0).
fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs `ip args…`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with loopback and a veth pair up; deleted (veths with it) on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!("nw-readme-{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        let n = ns.name.as_str();
        ip(&["-n", n, "link", "set", "lo", "up"]);
        ip(&[
            "-n", n, "link", "add", VETH[0], "type", "veth", "peer", "name", VETH[1],
        ]);
        for end in VETH {
            ip(&["-n", n, "link", "set", end, "up"]);
        }
        ns
    }

    /// `ip netns exec <ns> program`.
    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        drop(
            Command::new("ip")
                .args(["netns", "del", &self.name])
                .output(),
        );
    }
}

/// The first command running in its own process group (cargo, then the daemon); the whole
/// group is killed on drop, so a failed assertion leaves nothing behind.
struct Started {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl Started {
    /// Runs `command` with `sh -c` in `ns`, from the repository root.
    fn spawn(ns: &Netns, command: &str, state_dir: &Path) -> Started {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = ns
            .exec("sh")
            .arg("-c")
            .arg(command)
            .current_dir(REPO)
            // The daemon keeps firing alerts in its state directory (default
            // /var/lib/netwarden); a fresh one keeps the host's untouched.
            .env("STATE_DIRECTORY", state_dir)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        Started { child, log }
    }

    /// The end of what cargo and the daemon wrote (stdout and stderr).
    fn output(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let skip = text.len().saturating_sub(6000);
        let start = (skip..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_owned()
    }

    /// The daemon's process id: the process of this group whose name is `netwarden`.
    fn daemon_pid(&self) -> Option<u32> {
        let group = self.child.id();
        std::fs::read_dir("/proc").ok()?.find_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid pgrp …`; comm may hold spaces, so split at the last ')'.
            let (head, tail) = stat.rsplit_once(") ")?;
            let comm = head.split_once(" (")?.1;
            let pgrp: u32 = tail.split_whitespace().nth(2)?.parse().ok()?;
            (pgrp == group && comm == "netwarden").then_some(pid)
        })
    }

    /// Whether process `pid` has a handler for SIGTERM (bit 15 of `SigCgt` in its status).
    fn catches_sigterm(pid: u32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (libc::SIGTERM - 1)) != 0)
    }

    /// Waits up to `timeout` for the command to exit.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        status
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        drop(Command::new("kill").args(["-KILL", "--", &group]).output());
        drop(self.child.wait());
    }
}

/// Polls `done` every 100 ms for up to `timeout`; whether it became true.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Python (installed by scripts/test.sh) fetching the metrics inside the namespace.
const SCRAPE: &str = r"
import sys, urllib.request
try:
    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
except Exception as e:
    sys.exit(str(e))
";

/// The metrics page inside `ns` once it shows netwarden capturing on both veth ends, or
/// why not (the page, or the error fetching it).
fn scrape(ns: &Netns) -> Result<String, String> {
    let out = ns
        .exec("python3")
        .args(["-c", SCRAPE, METRICS_URL])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let capturing = VETH.iter().all(|end| {
        body.contains(&format!(
            "netwarden_capture_received_packets_total{{interface=\"{end}\"}}"
        ))
    });
    if body.contains("netwarden_build_info") && capturing {
        Ok(body)
    } else {
        Err(body)
    }
}

#[test]
fn readme_run_command_serves_metrics_and_stops_cleanly_on_sigterm() {
    if !is_root() {
        eprintln!(
            "SKIPPED: running the README's first command needs root (it creates a network \
             namespace); scripts/test.sh runs as root"
        );
        return;
    }
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "README's two commands: {commands:?}");
    let run = &commands[0];
    let ns = Netns::new();
    let state_dir = tempfile::tempdir().unwrap();
    let mut started = Started::spawn(&ns, run, state_dir.path());

    let deadline = Instant::now() + START_TIMEOUT;
    let body = loop {
        if let Some(status) = started.child.try_wait().unwrap() {
            panic!(
                "`{run}` exited ({status}) before serving {METRICS_URL}:\n{}",
                started.output()
            );
        }
        match scrape(&ns) {
            Ok(body) => break body,
            Err(last) => assert!(
                Instant::now() < deadline,
                "`{run}` did not serve netwarden metrics for {VETH:?} on {METRICS_URL} \
                 within {START_TIMEOUT:?}; last answer: {last}\noutput:\n{}",
                started.output()
            ),
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(
        !body.contains("interface=\"lo\""),
        "loopback must not be captured:\n{body}"
    );

    let pid = started.daemon_pid().unwrap_or_else(|| {
        panic!(
            "no process named netwarden under `{run}`:\n{}",
            started.output()
        )
    });
    // The daemon installs its SIGTERM handler a moment after /metrics answers; a SIGTERM
    // before that would end it by the default action, which is not what is under test.
    let handler = wait_until(STOP_TIMEOUT, || Started::catches_sigterm(pid));
    assert!(
        handler,
        "netwarden (pid {pid}) never installed a SIGTERM handler:\n{}",
        started.output()
    );
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -TERM {pid} failed");
    let status = started.wait(STOP_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "`{run}` did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
            started.output()
        )
    });
    assert!(
        status.success(),
        "`{run}` did not exit cleanly on SIGTERM ({status}):\n{}",
        started.output()
    );
}

#[test]
fn ci_runs_the_readme_test_command() {
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "README's two commands: {commands:?}");
    let test_command = &commands[1];
    let script = std::fs::read_to_string(Path::new(REPO).join(".ci/run")).unwrap();
    let steps: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // From the repository root (the script's parent directory), then the command itself.
    assert!(
        steps.contains(&r#"cd "$(dirname "$0")/..""#),
        ".ci/run does not change to the repository root:\n{script}"
    );
    let last = steps.last().copied().unwrap_or_default();
    assert_eq!(
        last.strip_prefix("exec ").unwrap_or(last),
        test_command,
        ".ci/run must end by running the README's test command:\n{script}"
    );
}
