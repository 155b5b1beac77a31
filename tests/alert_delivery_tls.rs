//! Alert delivery over HTTPS with credentials, against Debian's `prometheus-alertmanager`
//! started with a web configuration that requires TLS and basic authentication (and, for
//! mutual TLS, a client certificate). Certificates are generated at run time
//! (`common::TestPki`); the password lives in a file, as the config demands.

// Test code: a failed unwrap or panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Alertmanager, TestPki, free_port, metric_sum, wait_for};
use netwarden::alert::sinks::{AlertRouter, RouterSettings};
use netwarden::alert::{Alert, AlertKind, Severity};
use netwarden::config::{AlertingConfig, BasicAuthConfig, HumanDuration, TlsClientConfig};
use netwarden::telemetry::Metrics;
use netwarden::vocabulary::RuleKind;

const USER: &str = "netwarden";
const PASSWORD: &str = "alerts-only";

fn flood() -> Alert {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    Alert {
        severity: Severity::Critical,
        time: now,
        started: now - 5.0,
        last_seen: now,
        value: 25_000.0,
        threshold: 1_000.0,
        dst: Some("192.0.2.10".parse().unwrap()),
        protocol: Some("tcp".into()),
        ..Alert::new("syn_flood", AlertKind::Rule(RuleKind::SynFlood))
    }
}

/// `[alerting]` towards `am` with fast retries, trusting the test CA, as `USER` with the
/// password in `dir/password`.
fn config(am: &Alertmanager, pki: &TestPki, dir: &Path, password: &str) -> AlertingConfig {
    std::fs::write(dir.join("password"), format!("{password}\n")).unwrap();
    AlertingConfig {
        alertmanager_urls: vec![am.url()],
        initial_backoff: HumanDuration::millis(50),
        max_backoff: HumanDuration::millis(200),
        timeout: HumanDuration::secs(2),
        max_attempts: 1_000,
        shutdown_grace: HumanDuration::millis(500),
        tls_config: TlsClientConfig {
            ca_file: pki.path("ca.pem"),
            ..TlsClientConfig::default()
        },
        basic_auth: BasicAuthConfig {
            username: USER.to_owned(),
            password_file: dir.join("password"),
        },
        ..AlertingConfig::default()
    }
}

fn start(config: &AlertingConfig) -> (AlertRouter, Arc<Metrics>) {
    let mut problems = Vec::new();
    config.validate(&mut |k: &str, m: String| problems.push(format!("{k}: {m}")));
    assert!(problems.is_empty(), "{problems:?}");
    let metrics = Arc::new(Metrics::new(&[], 10).unwrap());
    let router = AlertRouter::start(
        RouterSettings::from_config(config).unwrap(),
        &metrics.alerts,
    )
    .unwrap();
    (router, metrics)
}

/// Send errors of the first Alertmanager with `error_type`.
fn errors(metrics: &Metrics, error_type: &str) -> u64 {
    metric_sum(
        &metrics.render(),
        "netwarden_alert_send_errors_total",
        &[&format!("error_type=\"{error_type}\"")],
    )
}

#[test]
fn alerts_reach_an_alertmanager_that_requires_tls_and_basic_auth() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(&dir.path().join("web.yml"), (USER, PASSWORD), "", "");
    let am = Alertmanager::start_tls(free_port(), &web, pki.client(USER, PASSWORD));
    assert!(am.url().starts_with("https://"));

    // A wrong password is refused by Alertmanager (401): not delivered, not retried.
    let (wrong, metrics) = start(&config(&am, &pki, dir.path(), "guess"));
    wrong.handle().alert_output().emit(flood());
    let refused = wait_for(10, || (errors(&metrics, "status_4xx") >= 1).then_some(()));
    assert!(refused.is_some(), "{}", metrics.render());
    assert_eq!(wrong.shutdown(), 0);
    assert!(am.alerts().is_empty());

    // Without the test CA (system roots only) the certificate is not trusted.
    let mut untrusted = config(&am, &pki, dir.path(), PASSWORD);
    untrusted.tls_config.ca_file = std::path::PathBuf::new();
    let (router, metrics) = start(&untrusted);
    router.handle().alert_output().emit(flood());
    let tls_failed = wait_for(10, || (errors(&metrics, "tls") >= 1).then_some(()));
    assert!(tls_failed.is_some(), "{}", metrics.render());
    drop(router);
    assert!(am.alerts().is_empty());

    let (router, metrics) = start(&config(&am, &pki, dir.path(), PASSWORD));
    router.handle().alert_output().emit(flood());
    let got = am
        .wait_alert("NetwardenSynFlood", 20)
        .expect("the alert reaches Alertmanager over TLS with basic auth");
    assert_eq!(got["labels"]["dst"], "192.0.2.10");
    assert_eq!(router.shutdown(), 0);
    let sent = metric_sum(&metrics.render(), "netwarden_alerts_sent_total", &[]);
    assert_eq!(sent, 1);
}

#[test]
fn a_client_certificate_is_presented_when_alertmanager_requires_one() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(
        &dir.path().join("web.yml"),
        (USER, PASSWORD),
        &format!(
            "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
            pki.path("ca.pem").display()
        ),
        "",
    );
    let am = Alertmanager::start_tls(free_port(), &web, pki.client_with_cert(USER, PASSWORD));

    // Without the client certificate the handshake is refused: nothing arrives.
    let (router, metrics) = start(&config(&am, &pki, dir.path(), PASSWORD));
    router.handle().alert_output().emit(flood());
    let failing = wait_for(10, || {
        let text = metrics.render();
        (metric_sum(&text, "netwarden_alert_send_errors_total", &[]) >= 2).then_some(())
    });
    assert!(failing.is_some(), "{}", metrics.render());
    drop(router);
    assert!(am.alerts().is_empty());

    let mut with_cert = config(&am, &pki, dir.path(), PASSWORD);
    with_cert.tls_config.cert_file = pki.path("client.pem");
    with_cert.tls_config.key_file = pki.path("client-key.pem");
    let (router, _) = start(&with_cert);
    router.handle().alert_output().emit(flood());
    assert!(
        am.wait_alert("NetwardenSynFlood", 20).is_some(),
        "the alert reaches Alertmanager with mutual TLS"
    );
    assert_eq!(router.shutdown(), 0);
}

#[test]
fn check_config_refuses_credentials_written_in_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[alerting]\nalertmanager_urls = [\"https://alice:hunter2@am.example:9093\"]\n",
    )
    .unwrap();
    let out = common::netwarden()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":2:1: key `alerting.alertmanager_urls`: a URL holds credentials"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the password is echoed: {stderr}"
    );
}

#[test]
fn check_config_names_an_unreadable_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        "[alerting]\nalertmanager_urls = [\"https://am.example:9093\"]\n\
         [alerting.basic_auth]\nusername = \"netwarden\"\npassword_file = \"missing\"\n",
    )
    .unwrap();
    let out = common::netwarden()
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing: key `alerting.basic_auth.password_file`: cannot read"),
        "{stderr}"
    );
}

#[test]
fn the_daemon_delivers_over_tls_with_files_named_relative_to_its_config() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    let web = pki.web_config(&dir.path().join("web.yml"), (USER, PASSWORD), "", "");
    let am = Alertmanager::start_tls(free_port(), &web, pki.client(USER, PASSWORD));
    std::fs::copy(pki.path("ca.pem"), dir.path().join("ca.pem")).unwrap();
    std::fs::write(dir.path().join("am-password"), PASSWORD).unwrap();
    std::fs::create_dir(dir.path().join("rules.d")).unwrap();
    std::fs::write(
        dir.path().join("rules.d/flood.toml"),
        common::syn_flood_rules("60s"),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[[networks]]\nname = \"victims\"\ncidrs = [\"10.201.0.0/16\"]\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n\
             [alerting]\nalertmanager_urls = [\"{}\"]\n\
             [alerting.tls_config]\nca_file = \"ca.pem\"\n\
             [alerting.basic_auth]\nusername = \"{USER}\"\npassword_file = \"am-password\"\n",
            am.url()
        ),
    )
    .unwrap();
    let pcap = dir.path().join("flood.pcap");
    common::short_syn_flood(&pcap, 3, "11");
    let _daemon = common::Proc(
        common::netwarden()
            .args(["run", "--speed", "max", "--config"])
            .arg(&config)
            .arg("--pcap")
            .arg(&pcap)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let got = am.wait_alert("NetwardenSynFlood", 30);
    assert!(got.is_some(), "the daemon's flood alert never arrived");
}
