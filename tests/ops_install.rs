//! `scripts/install.sh` into a staging directory (`DESTDIR`): every file lands where the
//! unit, the README and the Grafana provisioning expect it, and a re-install keeps an
//! edited config.

// Test code: a failed unwrap or panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn install(dest: &Path) {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .env("DESTDIR", dest)
        .env("NETWARDEN_BINARY", env!("CARGO_BIN_EXE_netwarden"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn install_script_places_every_file_and_keeps_an_existing_config() {
    let dest = tempfile::tempdir().unwrap();
    let d = dest.path();
    install(d);
    for file in [
        "usr/bin/netwarden",
        "lib/systemd/system/netwarden.service",
        "etc/netwarden/netwarden.toml",
        "etc/netwarden/rules.d/default.toml",
        "etc/netwarden/rules.d/blocklist.toml",
        "etc/netwarden/blocklist.txt",
        "etc/logrotate.d/netwarden",
        "usr/share/netwarden/dashboards/grafana/traffic-overview.json",
        "usr/share/netwarden/dashboards/grafana/daemon-health.json",
        "usr/share/netwarden/dashboards/grafana/security.json",
        "usr/share/netwarden/dashboards/grafana/incident.json",
        "usr/share/netwarden/dashboards/grafana/provisioning/dashboards/netwarden.yml",
        "usr/share/netwarden/dashboards/grafana/provisioning/datasources/netwarden.yml",
        "usr/share/netwarden/dashboards/prometheus/netwarden-rules.yml",
        "usr/share/netwarden/dashboards/prometheus/netwarden-fleet.yml",
        "usr/share/netwarden/dashboards/prometheus/scrape.yml",
        "usr/share/netwarden/dashboards/alertmanager/alertmanager.yml",
        "usr/share/doc/netwarden/README.md",
        // Where the default [alerting] runbook_base_url points.
        "usr/share/doc/netwarden/runbooks/NetwardenSynFlood.md",
        "usr/share/doc/netwarden/runbooks/NetwardenInterfaceSilent.md",
        "usr/share/doc/netwarden/runbooks/NetwardenDown.md",
    ] {
        assert!(d.join(file).is_file(), "{file} not installed");
    }
    let unit = std::fs::read_to_string(d.join("lib/systemd/system/netwarden.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/bin/netwarden run --config /etc/netwarden/netwarden.toml")
    );
    // The provisioning provider reads the dashboards from where they were installed.
    let provider = std::fs::read_to_string(
        d.join("usr/share/netwarden/dashboards/grafana/provisioning/dashboards/netwarden.yml"),
    )
    .unwrap();
    assert!(provider.contains("path: /usr/share/netwarden/dashboards/grafana"));

    let config = d.join("etc/netwarden/netwarden.toml");
    // The installed config, its rule files and the blocklist they name load as a whole.
    let check = Command::new(env!("CARGO_BIN_EXE_netwarden"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    std::fs::write(&config, "# edited on site\n").unwrap();
    install(d);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "# edited on site\n"
    );
    assert!(d.join("etc/netwarden/netwarden.toml.dist").is_file());
}
