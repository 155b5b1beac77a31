//! TLS and basic authentication on the metrics endpoint, configured the way Prometheus
//! users already do: an exporter-toolkit web configuration file (`--web-config-file`).
//!
//! Certificates are generated at run time (`common::TestPki`). The checks go through real
//! clients: curl (`--cacert`, `--user`), a real Prometheus scraping with `scheme: https`,
//! `tls_config` and `basic_auth`, and a real Alertmanager that must accept the very same
//! file, as `node_exporter` and every toolkit user does.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{
    Alertmanager, Proc, Prometheus, TestPki, curl_get, free_port, netwarden, pcaps_dir, wait_for,
};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// `netwarden run` on a small capture with metrics on `port` and `extra` arguments;
/// waits until `/readyz` answers to `client`.
fn daemon(dir: &Path, port: u16, extra: &[&str], pki: &TestPki) -> Proc {
    let config = dir.join("netwarden.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let child = netwarden()
        .args(["run", "--speed", "max", "--config"])
        .arg(&config)
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let daemon = Proc(child);
    let client = pki.client(USER, PASSWORD);
    let ready = wait_for(20, || {
        client.get(port, "/readyz").filter(|(s, _)| *s == 200)
    });
    assert!(
        ready.is_some(),
        "daemon never became ready over TLS: {}",
        std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
    );
    daemon
}

#[test]
fn tls_and_basic_auth_admit_the_right_user_only_and_refuse_plain_http() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(
        &dir.path().join("web.yml"),
        (USER, PASSWORD),
        "",
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    );
    let port = free_port();
    let _daemon = daemon(
        dir.path(),
        port,
        &["--web-config-file", web.to_str().unwrap()],
        &pki,
    );
    let url = format!("https://127.0.0.1:{port}/metrics");
    let ca = pki.path("ca.pem");

    let (status, body) = pki.client(USER, PASSWORD).get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("netwarden_build_info"), "{body}");
    let (status, _) = curl_get(&url, &["--cacert".as_ref(), ca.as_os_str()]).unwrap();
    assert_eq!(status, 401, "no credentials");
    let (status, _) = pki.client(USER, "wrong").get(port, "/metrics").unwrap();
    assert_eq!(status, 401, "wrong password");
    let (status, _) = pki
        .client("mallory", PASSWORD)
        .get(port, "/metrics")
        .unwrap();
    assert_eq!(status, 401, "unknown user");
    // The configured header is on every answer, refusals included.
    let (status, headers) = curl_get(
        &url,
        &["--cacert".as_ref(), ca.as_os_str(), "--head".as_ref()],
    )
    .unwrap();
    assert_eq!(status, 401);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("x-frame-options: deny"),
        "{headers}"
    );
    // Plain HTTP on the TLS port gets no answer.
    assert_eq!(
        curl_get(
            &format!("http://127.0.0.1:{port}/metrics"),
            &["--user".as_ref(), format!("{USER}:{PASSWORD}").as_ref()]
        ),
        None
    );
    // A client that does not trust the CA cannot connect.
    assert_eq!(curl_get(&url, &[]), None);
}

#[test]
fn prometheus_scrapes_over_https_with_basic_auth() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(&dir.path().join("web.yml"), (USER, PASSWORD), "", "");
    // The config key instead of the flag, relative to the config file.
    let port = free_port();
    std::fs::write(
        dir.path().join("netwarden.toml"),
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\nweb_config_file = \"web.yml\"\n"),
    )
    .unwrap();
    assert!(web.ends_with("web.yml"));
    let child = netwarden()
        .args(["run", "--speed", "max", "--config"])
        .arg(dir.path().join("netwarden.toml"))
        .arg("--pcap")
        .arg(pcaps_dir().join("attacks/pcaphunt_ps-tcp_syn.pcap"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _daemon = Proc(child);
    let client = pki.client(USER, PASSWORD);
    let ready = wait_for(20, || {
        client.get(port, "/readyz").filter(|(s, _)| *s == 200)
    });
    assert!(ready.is_some(), "daemon never became ready over TLS");

    let storage = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start_with(
        storage.path(),
        &format!(
            "  - job_name: netwarden\n    scheme: https\n    tls_config:\n      \
             ca_file: {}\n    basic_auth:\n      username: {USER}\n      \
             password: '{PASSWORD}'\n    static_configs:\n      \
             - targets: ['127.0.0.1:{port}']\n",
            pki.path("ca.pem").display()
        ),
    );
    let up = prometheus.wait_for_data("up{job=\"netwarden\"} == 1", 30);
    assert!(
        up.is_some(),
        "Prometheus could not scrape: {:?}",
        prometheus.query("up")
    );
    let scraped = prometheus.wait_for_data("netwarden_build_info", 10);
    assert!(scraped.is_some(), "no netwarden series scraped");
}

#[test]
fn alertmanager_accepts_the_same_web_configuration_file() {
    // The toolkit's own parser (in Debian's prometheus-alertmanager) takes the file
    // netwarden takes, headers and all.
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(
        &dir.path().join("web.yml"),
        (USER, PASSWORD),
        "",
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
    );
    let port = free_port();
    let _daemon = daemon(
        dir.path(),
        port,
        &["--web-config-file", web.to_str().unwrap()],
        &pki,
    );
    let am = Alertmanager::start_tls(free_port(), &web, pki.client(USER, PASSWORD));
    assert!(am.alerts().is_empty());
}

#[test]
fn check_config_reports_a_bad_web_configuration_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing-key.pem\n\
         basic_auth_users:\n  prometheus: not-a-hash\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("netwarden.toml"),
        "[metrics]\nweb_config_file = \"web.yml\"\n",
    )
    .unwrap();
    let out = netwarden()
        .args(["check-config", "--config"])
        .arg(dir.path().join("netwarden.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.yml:5:1: key `basic_auth_users.prometheus`: not a bcrypt hash"),
        "{stderr}"
    );
}
