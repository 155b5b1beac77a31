//! `netwarden replay --json` over the public captures in `../shared/pcaps`: exact packet
//! counts against the manifest (capinfos), no panic on hostile input, flow counts equal to
//! tshark's conversation counts.

// Test code: a failed expectation is a failed test, with its message.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{
    captures_in, manifest_packet_counts, netwarden, parse_stdout_json, pcaps_dir, replay_json,
    temp_file,
};

#[test]
fn packet_counts_match_the_manifest_for_attacks_and_benign() {
    let expected = manifest_packet_counts();
    let mut checked = 0;
    for sub in ["attacks", "benign"] {
        for path in captures_in(sub) {
            let rel = path
                .strip_prefix(pcaps_dir())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let want = *expected
                .get(&rel)
                .unwrap_or_else(|| panic!("{rel} missing from MANIFEST.md"));
            let summary = replay_json(&[&path], &[]);
            assert_eq!(summary["packets"], want, "{rel}: packet count");
            assert_eq!(summary["files"][0]["ending"], "complete", "{rel}");
            assert!(summary["alerts"].is_array(), "{rel}: alerts array present");
            for key in [
                "bytes",
                "flows",
                "decode_errors",
                "first_ts",
                "last_ts",
                "wall_seconds",
            ] {
                assert!(summary.get(key).is_some(), "{rel}: summary lacks {key}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} captures checked");
}

#[test]
fn malformed_captures_never_panic_and_errors_are_counted() {
    let mut decode_errors = 0;
    let mut unsupported = 0;
    let mut files = 0;
    for path in captures_in("malformed") {
        files += 1;
        let out = netwarden()
            .arg("replay")
            .arg("--json")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "{}: panic: {stderr}",
            path.display()
        );
        match out.status.code() {
            Some(0) => {
                let summary = parse_stdout_json(&out);
                decode_errors += summary["decode_errors"].as_u64().unwrap();
            }
            Some(1) => {
                // The only acceptable failure is a clear refusal naming the file.
                assert!(
                    stderr.contains(&path.display().to_string())
                        && (stderr.contains("unsupported link type")
                            || stderr.contains("not a pcap")),
                    "{}: unexpected failure: {stderr}",
                    path.display()
                );
                unsupported += 1;
            }
            other => panic!("{}: exit {other:?}: {stderr}", path.display()),
        }
    }
    assert!(files > 250, "only {files} malformed captures found");
    assert!(
        decode_errors > 100,
        "decode errors counted across malformed captures: {decode_errors}"
    );
    assert!(
        unsupported > 0 && unsupported < files / 2,
        "{unsupported} of {files} refused"
    );
}

/// TCP and UDP conversations as tshark counts them (`-z conv,tcp` / `-z conv,udp`).
fn tshark_conversations(path: &std::path::Path, proto: &str) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-q", "-r"])
        .arg(path)
        .args(["-z", &format!("conv,{proto}")])
        .output()
        .expect("tshark is installed by scripts/test.sh");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Conversation rows look like "10.0.0.1:1234 <-> 10.0.0.2:80  ...".
    u64::try_from(text.lines().filter(|l| l.contains("<->")).count()).unwrap()
}

#[test]
fn flow_counts_match_tshark_conversations() {
    // Timeouts longer than any capture, so every conversation is exactly one flow.
    let config = temp_file(
        "[flows.timeouts]\ntcp_half_open = \"1d\"\ntcp_established = \"1d\"\ntcp_closing = \"1d\"\ntcp_closed = \"1d\"\nudp = \"1d\"\nicmp = \"1d\"\nother = \"1d\"\nactive = \"30d\"\n",
        ".toml",
    );
    let config_path = config.path().to_str().unwrap();
    for name in [
        "benign/chrissanders_http_espn.pcapng",
        "benign/chrissanders_tcp_ports.pcapng",
        "benign/zeek_wikipedia.pcap",
        "benign/zeek_workshop_2011_browse.pcap",
        "benign/suricata_dns-udp-google.com-a-aaaa-mx.pcap",
        "attacks/chrissanders_synscan.pcapng",
    ] {
        let path = pcaps_dir().join(name);
        let summary = replay_json(&[&path], &["--config", config_path]);
        for proto in ["tcp", "udp"] {
            assert_eq!(
                summary["flows_by_protocol"][proto].as_u64().unwrap(),
                tshark_conversations(&path, proto),
                "{name}: {proto} flows vs tshark conversations"
            );
        }
    }
}

#[test]
fn replay_is_deterministic() {
    let path = pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap");
    let mut a = replay_json(&[&path], &[]);
    let mut b = replay_json(&[&path, &path], &[]);
    a["wall_seconds"] = 0.into();
    b["wall_seconds"] = 0.into();
    assert_eq!(
        b["packets"].as_u64().unwrap(),
        2 * a["packets"].as_u64().unwrap()
    );
    let mut c = replay_json(&[&path], &[]);
    c["wall_seconds"] = 0.into();
    assert_eq!(a, c, "same input, same summary");
}
