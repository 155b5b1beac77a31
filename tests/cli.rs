//! The command line: `--version`, `check-config` (valid, invalid with `file:line:key`, exit
//! codes, what would switch detection off or make it hang), overrides, and usage errors.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::{netwarden, temp_file};

#[test]
fn version_prints_the_crate_version() {
    let out = netwarden().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("netwarden {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_config_and_the_builtin_default() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/netwarden.toml");
    let out = netwarden()
        .args(["check-config", "--config", shipped])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = netwarden()
        .arg("check-config")
        .env_remove("NETWARDEN_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_file_line_and_key_of_every_problem() {
    let bad = temp_file(
        "[capture]\nworkers_per_interface = 0\n\n[flows]\nmax_flows = 12\n",
        ".toml",
    );
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(bad.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = bad.path().display().to_string();
    assert!(
        stderr.contains(&format!("{file}:2:1: key `capture.workers_per_interface`")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:5:1: key `flows.max_flows`")),
        "{stderr}"
    );

    let typo = temp_file(
        "[metrics]\nlisten = \"127.0.0.1:9\"\ntop_talker = 5\n",
        ".toml",
    );
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(typo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3:1: key `metrics.top_talker`: unknown field",
            typo.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_config_reports_every_rule_problem_at_its_line_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(&config, "[metrics]\ntop_talkers = 0\n").unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    let rule = |name: &str, extra: &str| {
        format!("[[rules]]\nname = \"{name}\"\nkind = \"volume\"\nseverity = \"info\"\n{extra}\n")
    };
    let rules = dir.path().join("rules.d/floods.toml");
    std::fs::write(
        &rules,
        rule("one", "threshold = 5")
            + &rule("two", "threshold = 5\nk = 3")
            + &rule("three", "threshold = -1"),
    )
    .unwrap();
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (main, rules) = (config.display(), rules.display());
    for expected in [
        format!("{main}:2:1: key `metrics.top_talkers`: must be 1 to"),
        format!("{rules}:11:1: key `rules.k`: rule `two` (kind `volume`): unknown field `k`"),
        format!("{rules}:16:1: key `rules.threshold`: rule `three`: threshold must be a positive"),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
    }
}

#[test]
fn check_config_reads_blocklist_files_and_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("netwarden.toml"),
        "[[rules]]\nname = \"bad_hosts\"\nkind = \"blocklist\"\nseverity = \"warning\"\nfiles = [\"bad.txt\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.txt"),
        "# feed\n192.0.2.1\n192.0.2.300\n",
    )
    .unwrap();
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(dir.path().join("netwarden.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.txt:3"), "{stderr}");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let out = netwarden()
        .args(["check-config", "--config", "/nonexistent/netwarden.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/netwarden.toml: cannot read")
    );
}

/// `check-config` on `config` written as `netwarden.toml` in `dir`: exit code and stderr;
/// it must answer within 10 s (a blocking read would not).
fn check_config_in(dir: &std::path::Path, config: &str) -> (Option<i32>, String) {
    let path = dir.join("netwarden.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = netwarden()
        .args(["check-config", "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let answered = common::wait_for(10, || child.try_wait().unwrap());
    if answered.is_none() {
        drop(child.kill());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        answered.is_some(),
        "check-config did not answer within 10 s"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_refuses_what_would_switch_detection_off_or_hang() {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().join("netwarden.toml").display().to_string();
    // A rules folder the config names but that is missing.
    let (code, stderr) = check_config_in(dir.path(), "rules_dir = \"rules.d\"\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!("{shown}:1:1: key `rules_dir`: rules folder ")),
        "{stderr}"
    );
    // A FIFO in the rules folder, and one in place of a blocklist.
    let rules = dir.path().join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    nix::unistd::mkfifo(&rules.join("a.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let (code, stderr) = check_config_in(dir.path(), "rules_dir = \"rules.d\"\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("a.toml: not a regular file (a FIFO)"),
        "{stderr}"
    );
    std::fs::remove_file(rules.join("a.toml")).unwrap();
    let list = dir.path().join("list.txt");
    nix::unistd::mkfifo(&list, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let blocklist = format!(
        "[[rules]]\nname = \"bl\"\nkind = \"blocklist\"\nseverity = \"warning\"\nfiles = [{:?}]\n",
        list.display().to_string()
    );
    let (code, stderr) = check_config_in(dir.path(), &blocklist);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("list.txt: rule `bl`: blocklist: not a regular file (a FIFO)"),
        "{stderr}"
    );
    // A user that does not exist.
    let (code, stderr) = check_config_in(dir.path(), "[daemon]\nuser = \"no-such-user-nw\"\n");
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{shown}:2:1: key `daemon.user`: user `no-such-user-nw` does not exist"
        )),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_64() {
    let out = netwarden().args(["replay"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = netwarden().args(["run", "--speed", "2"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64), "--speed needs --pcap");
}

#[test]
fn replay_refuses_a_file_that_is_not_a_capture() {
    let junk = temp_file("definitely not a pcap file, just text", ".pcap");
    let out = netwarden().arg("replay").arg(junk.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&junk.path().display().to_string())
            && stderr.contains("not a pcap or pcapng file"),
        "{stderr}"
    );
}

#[test]
fn replay_is_keyed_by_the_public_hash_key_unless_given_one() {
    let pcap = common::pcaps_dir().join("attacks/stopddos_pkt.TCP.synflood.spoofed.pcap");
    let replay = |extra: &[&str]| {
        let out = netwarden()
            .arg("replay")
            .arg(&pcap)
            .args(["--json", "--protect", "10.10.10.0/24"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        summary.as_object_mut().unwrap().remove("wall_seconds");
        summary
    };
    let default = replay(&[]);
    assert_eq!(replay(&["--hash-seed", "0"]), default);
    // Another key still finds the flood (its tables differ, its verdict does not).
    let keyed = replay(&["--hash-seed", "12345"]);
    let fired = |s: &serde_json::Value| {
        s["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "syn_flood" && a["state"] == "firing")
    };
    assert!(fired(&default) && fired(&keyed));
}
